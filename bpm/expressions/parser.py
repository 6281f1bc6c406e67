"""The Pratt parser of the union grammar (JUEL, FEEL, Python-like) and of ``${...}`` templates."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Final, NoReturn

from bpm.expressions.builtins import _FUNCTIONS, _METHODS, _Builtin
from bpm.expressions.limits import FEEL, JUEL, MAX_DEPTH, MAX_NODES, PLAIN
from bpm.expressions.scanner import _CONSTANTS, _Scanner, _Token
from bpm.expressions.syntax import (
    _N,
    _Attr,
    _Binary,
    _Call,
    _Compare,
    _Conditional,
    _Empty,
    _Index,
    _ListDisplay,
    _Literal,
    _Logical,
    _Loop,
    _MethodCall,
    _Name,
    _Node,
    _Not,
    _Template,
    _Unary,
)
from bpm.expressions.values import _error, _short
from bpm.expressions.vendor import NAMESPACES

_COMPARISONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "==": "==", "=": "==", "eq": "==", "!=": "!=", "ne": "!=",
        "<": "<", "lt": "<", ">": ">", "gt": ">", "<=": "<=", "le": "<=", ">=": ">=", "ge": ">=",
        "in": "in", "is": "is",
    }
)  # fmt: skip
_BINARY: Final[Mapping[str, tuple[int, str]]] = MappingProxyType(
    {
        "+": (60, "+"), "-": (60, "-"),
        "*": (70, "*"), "/": (70, "/"), "div": (70, "/"), "//": (70, "//"),
        "%": (70, "%"), "mod": (70, "%"),
        "**": (90, "**"),
    }
)  # fmt: skip
_LOGICAL: Final[Mapping[str, tuple[int, str]]] = MappingProxyType(
    {"or": (20, "or"), "||": (20, "or"), "and": (30, "and"), "&&": (30, "and")}
)
_TERNARY_POWER: Final = 10
_NOT_POWER: Final = 40
_COMPARE_POWER: Final = 50
_UNARY_POWER: Final = 80
_POSTFIX_POWER: Final = 100
_FEEL_LOOPS: Final[Mapping[str, str]] = MappingProxyType({"some": "satisfies", "every": "satisfies", "for": "return"})
"""Loop keyword -> the word ending its contexts. They stay plain names: only ``some x in`` starts a loop."""


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "end of expression"
    if token.kind == "str":
        return "string literal"
    if token.kind == "num":
        return f"number {_short(token.value)}"
    return f"'{token.value}'"


class _Parser:
    """A Pratt parser over one token list, bounding nesting depth and node count."""

    def __init__(self, source: str, tokens: list[_Token], dialect: str, nodes: int) -> None:
        self.source = source
        self.tokens = tokens
        self.index = 0
        self.level = 0
        self.nodes = nodes
        self.dialect = dialect
        self.depths: dict[int, int] = {}
        self.stops: list[str] = []  # words ending the loop domains being parsed (FEEL names stop there)
        self.ternaries = 0  # open 'a ? b' parts, where 'b:c(' is the ternary's ':' rather than a namespace

    # ---- helpers

    def fail(self, message: str, token: _Token | None = None) -> NoReturn:
        where = (token or self.peek()).pos
        raise _error(f"{message} at position {where}", self.source)

    def unexpected(self, token: _Token) -> NoReturn:
        self.fail(f"syntax error: unexpected {_describe(token)}", token)

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.peek()
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def accept(self, value: str) -> bool:
        token = self.peek()
        if token.kind in ("op", "kw") and token.value == value:
            self.advance()
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.accept(value):
            self.fail(f"syntax error: expected '{value}', found {_describe(self.peek())}")

    def make(self, node: _N, *children: _Node, levels: int = 1) -> _N:
        """Register a new node, enforcing the depth and node-count bounds.

        ``levels`` is how many nesting levels the node adds (a loop: one per context).
        """
        depth = levels + max((self.depths[id(child)] for child in children), default=0)
        if depth > MAX_DEPTH:
            self.fail(f"expression nests deeper than {MAX_DEPTH} levels")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.fail(f"expression has more than {MAX_NODES} nodes")
        self.depths[id(node)] = depth
        return node

    # ---- grammar

    def parse(self) -> _Node:
        if self.peek().kind == "end":
            self.fail("empty expression")
        node = self.expression(0)
        if self.peek().kind != "end":
            self.unexpected(self.peek())
        return node

    def expression(self, min_power: int) -> _Node:
        self.level += 1
        if self.level > MAX_DEPTH:
            self.fail(f"expression nests deeper than {MAX_DEPTH} levels")
        try:
            left = self.prefix()
            while (power := self.infix_power()) > min_power:
                left = self.infix(left, power)
            return left
        finally:
            self.level -= 1

    def infix_power(self) -> int:
        token = self.peek()
        if token.kind not in ("op", "kw"):
            return -1
        value = token.value
        if value in ("?", "if"):
            return _TERNARY_POWER
        if value in _LOGICAL:
            return _LOGICAL[value][0]
        if value in _COMPARISONS or (value == "not" and self.is_next("in")):
            return _COMPARE_POWER
        if value in _BINARY:
            return _BINARY[value][0]
        if value in (".", "[", "("):
            return _POSTFIX_POWER
        return -1

    def is_next(self, value: str, ahead: int = 1) -> bool:
        token = self.peek(ahead)
        return token.kind in ("op", "kw") and token.value == value

    def infix(self, left: _Node, power: int) -> _Node:
        value = self.peek().value
        if power == _POSTFIX_POWER:
            return self.postfix(left)
        if power == _COMPARE_POWER:
            return self.comparison(left)
        self.advance()
        if value == "?":
            return self.ternary(left)
        if value == "if":
            return self.python_conditional(left)
        if value in _LOGICAL:
            right = self.expression(power)
            return self.make(_Logical(_LOGICAL[value][1], left, right), left, right)
        op = _BINARY[value][1]
        right = self.expression(power - 1 if op == "**" else power)
        return self.make(_Binary(op, left, right), left, right)

    def ternary(self, test: _Node) -> _Node:
        self.ternaries += 1
        try:
            then = self.expression(0)
        finally:
            self.ternaries -= 1
        self.expect(":")
        orelse = self.expression(_TERNARY_POWER - 1)
        return self.make(_Conditional(test, then, orelse), test, then, orelse)

    def python_conditional(self, then: _Node) -> _Node:
        test = self.expression(_TERNARY_POWER)
        self.expect("else")
        orelse = self.expression(_TERNARY_POWER - 1)
        return self.make(_Conditional(test, then, orelse), test, then, orelse)

    def comparison(self, left: _Node) -> _Node:
        ops: list[str] = []
        operands = [left]
        while self.infix_power() == _COMPARE_POWER:
            ops.append(self.comparison_operator())
            operands.append(self.expression(_COMPARE_POWER))
        return self.make(_Compare(tuple(ops), tuple(operands)), *operands)

    def comparison_operator(self) -> str:
        value = self.advance().value
        if value == "not":
            self.expect("in")
            return "not in"
        if value == "is" and self.accept("not"):
            return "is not"
        return _COMPARISONS[value]

    def postfix(self, target: _Node) -> _Node:
        token = self.advance()
        if token.value == "[":
            key = self.expression(0)
            self.expect("]")
            if isinstance(key, _Literal) and isinstance(key.value, str):
                self.check_name(key.value, token)
            return self.make(_Index(target, key), target, key)
        if token.value == "(":
            return self.function_call(target, token)
        return self.member(target)

    def member(self, target: _Node) -> _Node:
        token = self.advance()
        if token.kind not in ("name", "kw"):
            self.unexpected(token)
        self.check_name(token.value, token)
        if not self.is_next("(", 0):
            return self.make(_Attr(target, token.value), target)
        self.advance()
        args = self.arguments(token.value, _METHODS.get(token.value), token)
        return self.make(_MethodCall(target, token.value, args), target, *args)

    def function_call(self, callee: _Node, paren: _Token) -> _Node:
        if not isinstance(callee, _Name):
            self.fail("only whitelisted functions can be called", paren)
        args = self.arguments(callee.name, _FUNCTIONS.get(callee.name), paren)
        return self.make(_Call(callee.name, args), *args)

    def arguments(self, name: str, builtin: _Builtin | None, where: _Token) -> tuple[_Node, ...]:
        """Parse call arguments, checking the arity of whitelisted callables.

        Calls of anything else still compile, so that a model calling, say, a
        Java bean deploys; the call fails when it is evaluated.
        """
        args = self.sequence(")")
        if builtin is None:
            return args
        too_many = builtin.max_args is not None and len(args) > builtin.max_args
        if len(args) < builtin.min_args or too_many:
            self.fail(f"wrong number of arguments ({len(args)}) for '{name}'", where)
        return args

    def sequence(self, closer: str) -> tuple[_Node, ...]:
        """Comma-separated expressions up to ``closer`` (a trailing comma is allowed)."""
        items: list[_Node] = []
        while not self.accept(closer):
            items.append(self.expression(0))
            if not self.accept(","):
                self.expect(closer)
                break
        return tuple(items)

    def check_name(self, name: str, token: _Token) -> None:
        if name.startswith("_"):
            self.fail(f"names starting with '_' are not allowed: {_short(name)}", token)

    # ---- prefix forms

    def prefix(self) -> _Node:
        token = self.advance()
        if token.kind in ("num", "str"):
            return self.make(_Literal(token.value))
        if token.kind == "name":
            return self.name(token)
        if token.kind == "kw" and token.value in _CONSTANTS:
            return self.make(_Literal(_CONSTANTS[token.value]))
        if token.kind in ("op", "kw"):
            return self.prefix_operator(token)
        self.unexpected(token)

    def prefix_operator(self, token: _Token) -> _Node:
        value = token.value
        if value == "(":
            inner = self.expression(0)
            self.expect(")")
            return inner
        if value == "[":
            items = self.sequence("]")
            return self.make(_ListDisplay(items), *items)
        if value in ("-", "+"):
            operand = self.expression(_UNARY_POWER)
            return self.make(_Unary(value, operand), operand)
        if value in ("!", "not"):
            operand = self.expression(_NOT_POWER)
            return self.make(_Not(operand), operand)
        if value == "empty":
            operand = self.expression(_UNARY_POWER)
            return self.make(_Empty(operand), operand)
        if value == "if":
            return self.feel_conditional()
        self.unexpected(token)

    def feel_conditional(self) -> _Node:
        test = self.expression(0)
        self.expect("then")
        then = self.expression(0)
        self.expect("else")
        orelse = self.expression(_TERNARY_POWER - 1)
        return self.make(_Conditional(test, then, orelse), test, then, orelse)

    def name(self, token: _Token) -> _Node:
        name = token.value
        if name in _FEEL_LOOPS and self.peek().kind == "name" and self.is_next("in"):
            return self.loop(name)
        if name == "date" and self.is_next("and", 0) and self.peek(1).value == "time" and self.is_next("(", 2):
            self.advance()
            self.advance()
            return self.make(_Name("date and time"))  # FEEL's function with spaces in its name
        if self.is_namespace(name):
            return self.namespaced_call(name)
        if self.dialect == FEEL:
            name = self.feel_name(name)
        self.check_name(name, token)
        return self.make(_Name(name))

    def is_namespace(self, name: str) -> bool:
        """JUEL's ``ns:fn(...)``; inside ``a ? b : c(...)`` only for a namespace we know."""
        if self.dialect == FEEL or not self.is_next(":", 0) or self.peek(1).kind not in ("name", "kw"):
            return False
        if not self.is_next("(", 2):
            return False
        return name in NAMESPACES or self.ternaries == 0

    def namespaced_call(self, namespace: str) -> _Node:
        """``variables:get(x)`` (Flowable reads a bare ``x`` as the variable's name).

        Other namespaces (``bpmn:getDataObject``, ``fn:...``) fail at once, naming the function.
        """
        colon = self.advance()
        function = self.advance()
        if namespace not in NAMESPACES:
            self.fail(f"function '{namespace}:{function.value}' is not allowed", colon)
        paren = self.advance()
        full = f"variables:{function.value}"
        args = self.arguments(full, _FUNCTIONS.get(full), paren)
        if args and isinstance(args[0], _Name):
            args = (self.make(_Literal(args[0].name)), *args[1:])
        return self.make(_Call(full, args), *args)

    def loop(self, kind: str) -> _Node:
        """``some|every NAME in DOMAIN (, NAME in DOMAIN)* satisfies COND``, or ``for ... return BODY``.

        The body reaches as far as an ``if ... else`` would. While a domain is
        parsed, FEEL names do not join across the word that ends the contexts.
        """
        word = _FEEL_LOOPS[kind]
        names: list[str] = []
        domains: list[_Node] = []
        self.stops.append(word)
        try:
            while True:
                token = self.advance()
                if token.kind != "name":
                    self.fail(f"syntax error: expected a name after '{kind}', found {_describe(token)}", token)
                self.check_name(token.value, token)
                self.expect("in")
                names.append(token.value)
                domains.append(self.expression(0))
                if not self.accept(","):
                    break
        finally:
            self.stops.pop()
        token = self.peek()
        if token.kind != "name" or token.value != word:
            self.fail(f"syntax error: expected '{word}', found {_describe(token)}", token)
        self.advance()
        body = self.expression(_TERNARY_POWER - 1)
        node = _Loop(kind, tuple(names), tuple(domains), body)
        return self.make(node, *domains, body, levels=len(names))

    def feel_name(self, first: str) -> str:
        """FEEL names may contain spaces: adjacent plain names join into one."""
        words = [first]
        while self.peek().kind == "name" and self.peek().value not in self.stops:
            token = self.advance()
            self.check_name(token.value, token)
            words.append(token.value)
        return " ".join(words)


def _parse(source: str, start: int, end: int, dialect: str, nodes: int = 0) -> tuple[_Node, int]:
    """Parse ``source[start:end]``; return the tree and the running node count."""
    parser = _Parser(source, _Scanner(source, start, end).tokens(), dialect, nodes)
    return parser.parse(), parser.nodes


def _part_end(source: str, start: int) -> int:
    """Index of the ``}`` closing the part whose body starts at ``start``."""
    depth = 0
    quote = ""
    index = start
    while index < len(source):
        char = source[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return index
            depth -= 1
        index += 1
    raise _error(f"unterminated '{source[start - 2 : start]}' at position {start - 2}", source)


def _segments(source: str) -> Iterator[str | tuple[int, int]]:
    """Split a template into literal text and ``(start, end)`` spans of ``${...}`` bodies."""
    literal: list[str] = []
    index = 0
    while index < len(source):
        if source.startswith(("\\${", "\\#{"), index):
            literal.append(source[index + 1 : index + 3])
            index += 3
        elif source.startswith(("${", "#{"), index):
            if literal:
                yield "".join(literal)
                literal = []
            end = _part_end(source, index + 2)
            yield index + 2, end
            index = end + 1
        else:
            literal.append(source[index])
            index += 1
    if literal:
        yield "".join(literal)


def _template_tree(source: str) -> tuple[_Node, str]:
    """Parse a template into a tree and the dialect it is evaluated in."""
    parts: list[str | _Node] = []
    nodes = 0
    for segment in _segments(source):
        if isinstance(segment, str):
            parts.append(segment)
            continue
        node, nodes = _parse(source, segment[0], segment[1], JUEL, nodes)
        parts.append(node)
    expressions = [part for part in parts if not isinstance(part, str)]
    if not expressions:
        return _Literal("".join(part for part in parts if isinstance(part, str))), PLAIN
    others = [part for part in parts if isinstance(part, str) and part.strip()]
    if len(expressions) == 1 and not others:
        return expressions[0], JUEL
    return _Template(tuple(parts)), JUEL
