"""The tree-walking evaluator: one tree, one variables map, one work meter."""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Mapping
from typing import Any, cast

from bpm.expressions.beans import BEAN_CALL_WORK, active_beans, call_bean
from bpm.expressions.builtins import _EXECUTION_METHODS, _FUNCTIONS, _METHODS, _Builtin, _converting
from bpm.expressions.costs import WorkMeter, _text_units
from bpm.expressions.limits import CHARS_PER_UNIT, FEEL, JUEL, MAX_SEQUENCE, NODE_WORK
from bpm.expressions.operators import _arithmetic, _arithmetic_cost, _compare, _negate
from bpm.expressions.syntax import (
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
from bpm.expressions.temporal import is_temporal, plain
from bpm.expressions.values import (
    _check_size,
    _Fault,
    _get_item,
    _get_property,
    _is_empty,
    _is_list,
    _kind,
    _Missing,
    _to_text,
    _truthy,
)


def _whitelisted(table: Mapping[str, _Builtin], what: str, name: str) -> _Builtin:
    builtin = table.get(name)
    if builtin is None:
        raise _Fault(f"{what} '{name}' is not allowed")
    return builtin


class _Evaluator:
    """Walks one tree against one variables map, charging its meter before each operation."""

    __slots__ = ("bound", "charge", "dialect", "meter", "temporal", "variables")

    def __init__(self, variables: Mapping[str, Any], dialect: str, meter: WorkMeter) -> None:
        self.variables = variables
        self.dialect = dialect
        self.meter = meter
        self.charge = meter.charge
        self.bound: dict[str, Any] = {}  # names bound by the loops being run; they shadow variables
        self.temporal = False  # whether a date, date-time or duration was made (results then need converting)

    def truthy(self, value: Any) -> bool:
        if type(value) is bool:  # a comparison's result, mostly
            return value
        if isinstance(value, str) and self.dialect == JUEL:
            self.charge(_text_units(len(value)))  # JUEL reads the string as a boolean word
        return _truthy(value, self.dialect)

    def result(self, value: Any) -> Any:
        """Charge for the value leaving the evaluator: the engine stores (serialises) it."""
        if isinstance(value, list | tuple | Mapping):
            weight, chars = self.meter.size(value)
            self.charge(weight if weight > self.meter.remaining else weight + chars // CHARS_PER_UNIT)
        return plain(value) if self.temporal else value

    def visit(self, node: _Node) -> Any:
        self.charge(NODE_WORK)
        # the commonest nodes first, by exact type (the match below tries each class in turn)
        if type(node) is _Literal:
            return node.value
        if type(node) is _Name:
            return self.lookup(node.name)
        if type(node) is _Compare:
            return self.compare(node)
        return self.visit_other(node)

    def visit_other(self, node: _Node) -> Any:
        match node:
            case _Attr():
                return _get_property(self.visit(node.target), node.name)
            case _Index():
                key = self.visit(node.key)
                target = self.visit(node.target)
                if isinstance(key, str):
                    self.charge(_text_units(len(key)))  # hashing the key
                return _get_item(target, key, self.dialect == FEEL)
            case _ListDisplay():
                return [self.visit(item) for item in node.items]
            case _Call() | _MethodCall():
                return self.call(node)
            case _Unary():
                return _negate(node.op, self.visit(node.operand))
            case _Not():
                return not self.truthy(self.visit(node.operand))
            case _Empty():
                return self.empty(node.operand)
            case _Logical():
                return self.logical(node)
            case _Binary():
                return self.binary(node)
            case _Conditional():
                branch = node.then if self.truthy(self.visit(node.test)) else node.orelse
                return self.visit(branch)
            case _Template():
                return self.template(node)
            case _Loop():
                return self.loop(node)
        raise _Fault(f"unknown syntax node {type(node).__name__}")

    def lookup(self, name: str) -> Any:
        if name in self.bound:
            return self.bound[name]
        if name in self.variables:
            return self.variables[name]
        raise _Missing(f"unknown variable '{name}'")

    def empty(self, operand: _Node) -> bool:
        """JUEL ``empty``: a missing variable, property or index counts as null."""
        try:
            value = self.visit(operand)
        except _Missing:
            if isinstance(operand, _Name | _Attr | _Index):
                return True
            raise
        return _is_empty(value)

    def logical(self, node: _Logical) -> bool:
        left = self.truthy(self.visit(node.left))
        if left == (node.op == "or"):
            return left
        return self.truthy(self.visit(node.right))

    def binary(self, node: _Binary) -> Any:
        left = self.visit(node.left)
        right = self.visit(node.right)
        self.charge(_arithmetic_cost(node.op, left, right))
        return _arithmetic(node.op, left, right)

    def compare(self, node: _Compare) -> bool:
        left = self.visit(node.operands[0])
        if len(node.ops) == 1:  # one comparison (the usual case): no zip over a slice
            right = self.visit(node.operands[1])
            self.charge(self.comparison_cost(node.ops[0], left, right))
            return _compare(node.ops[0], left, right)
        for op, operand in zip(node.ops, node.operands[1:], strict=True):
            right = self.visit(operand)
            self.charge(self.comparison_cost(op, left, right))
            if not _compare(op, left, right):
                return False
            left = right
        return True

    def comparison_cost(self, op: str, left: Any, right: Any) -> int:
        if op in ("in", "not in"):
            return self.meter.membership_cost(right, left)
        if op in ("==", "!=", "is", "is not"):
            return self.meter.equality_cost(left, right)
        return self.meter.order_cost(left, right)

    def call(self, node: _Call | _MethodCall) -> Any:
        """Call a whitelisted function or method; anything else fails before its arguments run."""
        if isinstance(node, _Call):
            builtin = _whitelisted(_FUNCTIONS, "function", node.name)
            args = [self.visit(arg) for arg in node.args]
        elif self.is_execution(node.target):
            builtin = _whitelisted(_EXECUTION_METHODS, "execution method", node.name)
            args = [self.visit(arg) for arg in node.args]
        elif (bean := self.bean_name(node.target)) is not None:
            return self.call_bean(bean, node)
        else:
            builtin = _whitelisted(_METHODS, "method", node.name)
            target = self.visit(node.target)
            if target is None:
                raise _Fault(f"cannot call method '{node.name}' on null")
            args = [target, *(self.visit(arg) for arg in node.args)]
        if builtin.context:
            args = [ChainMap(self.bound, cast("dict[str, Any]", self.variables)), *args]  # read only
        self.charge(builtin.cost(self.meter, *args))
        value = builtin.impl(*args)
        if is_temporal(value):
            self.temporal = True
        return value

    def bean_name(self, target: _Node) -> str | None:
        """``bean.method(...)``: the registered bean a name means, unless a variable has that name."""
        if not isinstance(target, _Name) or target.name in self.bound or target.name in self.variables:
            return None
        return target.name if target.name in active_beans() else None

    def call_bean(self, bean: str, node: _MethodCall) -> Any:
        """Call a registered bean's public method (see :mod:`.beans`), charging the call and the values."""
        registry = active_beans()
        if not registry.has_method(bean, node.name):
            raise _Fault(f"method '{node.name}' of bean '{bean}' is not allowed")
        self.charge(BEAN_CALL_WORK)
        args = [self.visit(arg) for arg in node.args]
        for arg in args:
            self.charge(self.meter.size(arg)[0])
        try:
            value = call_bean(registry, bean, node.name, args)
        except (ValueError, TypeError) as exc:
            raise _Fault(str(exc)) from None
        self.charge(self.meter.size(value)[0])
        return value

    def is_execution(self, target: _Node) -> bool:
        """``execution.getVariable(...)``: the process's execution, unless a variable has that name."""
        if not isinstance(target, _Name) or target.name != "execution":
            return False
        return "execution" not in self.bound and "execution" not in self.variables

    def loop(self, node: _Loop) -> Any:
        """Run a ``some``/``every``/``for`` loop (see :class:`_Loop`)."""
        results: list[Any] = []

        def body() -> bool:
            """Run the body once; True when the loop is decided and stops."""
            value = self.visit(node.body)
            if node.kind == "for":
                _check_size(len(results) + 1)
                self.charge(1)
                results.append(value)
                return False
            return self.truthy(value) == (node.kind == "some")

        decided = self.each(node, 0, body)
        if node.kind == "for":
            return results
        return decided if node.kind == "some" else not decided

    def each(self, node: _Loop, index: int, body: Callable[[], bool]) -> bool:
        """Bind context ``index`` to each item of its domain in turn; True once ``body`` decides."""
        if index == len(node.names):
            return body()
        items = self.visit(node.domains[index])
        if not _is_list(items):
            raise _Fault(f"'{node.kind}' needs a list to iterate over, not a {_kind(items)}")
        if len(items) > MAX_SEQUENCE:
            raise _Fault(f"cannot iterate over a list longer than {MAX_SEQUENCE} items")
        name = node.names[index]
        shadowed = name in self.bound
        outer = self.bound.get(name)
        try:
            for item in items:
                self.charge(NODE_WORK)
                self.bound[name] = item
                if self.each(node, index + 1, body):
                    return True
            return False
        finally:
            if shadowed:
                self.bound[name] = outer
            else:
                self.bound.pop(name, None)

    def template(self, node: _Template) -> str:
        pieces: list[str] = []
        size = 0
        for part in node.parts:
            piece = part if isinstance(part, str) else self.text(self.visit(part))
            size += len(piece)
            _check_size(size)
            pieces.append(piece)
        self.charge(_text_units(size))
        return "".join(pieces)

    def text(self, value: Any) -> str:
        self.charge(_converting(self.meter, value))
        return _to_text(value)
