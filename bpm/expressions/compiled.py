"""The public face: :class:`Expression` and the compile functions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from types import MappingProxyType
from typing import Any, Final

from bpm.errors import ExpressionError
from bpm.expressions.beans import BeanRegistry, active_beans
from bpm.expressions.builtins import _EXECUTION_METHODS, _FUNCTIONS, _METHODS
from bpm.expressions.costs import _PLAIN_SCALARS, WorkMeter, report_work, scalar_equality_cost, scalar_order_cost
from bpm.expressions.evaluator import _Evaluator
from bpm.expressions.limits import FEEL, JUEL, MAX_SOURCE_LENGTH, MAX_WORK, NODE_WORK, PLAIN
from bpm.expressions.operators import _compare
from bpm.expressions.parser import _parse, _template_tree
from bpm.expressions.syntax import _Call, _Compare, _Literal, _MethodCall, _Name, _Node
from bpm.expressions.values import _error, _Fault

_LANGUAGES: Final = MappingProxyType(
    {
        "": PLAIN,
        "python": PLAIN,
        "spiff": PLAIN,
        "spiffworkflow": PLAIN,
        "juel": JUEL,
        "el": JUEL,
        "uel": JUEL,
        "feel": FEEL,
    }
)


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled expression or template: immutable, hashable, safe to share across threads.

    ``source`` is the text as written in the model; ``dialect`` is ``"juel"``,
    ``"feel"`` or ``"plain"``. ``Expression(text)`` alone compiles ``text`` with
    :func:`compile_expression`.
    """

    source: str
    dialect: str = PLAIN
    root: _Node | None = field(default=None, repr=False)
    #: a comparison of one variable with a literal (see :func:`_quick_form`), else None
    quick: tuple[str, str, Any, bool] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.root is None:
            compiled = compile_expression(self.source)
            object.__setattr__(self, "dialect", compiled.dialect)
            object.__setattr__(self, "root", compiled.root)
        object.__setattr__(self, "quick", _quick_form(self.root))

    def evaluate(self, variables: Mapping[str, Any], meter: WorkMeter | None = None) -> Any:
        """The expression's value; raises :class:`ExpressionError` on any failure.

        The work is charged to ``meter`` (a fresh one with the default budget when
        None); its ``used`` tells the work done, also after a failure.
        """
        return self._guard(variables, meter, _result_value)

    def evaluate_condition(self, variables: Mapping[str, Any], meter: WorkMeter | None = None) -> bool:
        """The value's truthiness (JUEL reads "true"/"false" strings); raises ExpressionError."""
        quick = self.quick
        if quick is not None and meter is None and type(variables) is dict:
            holds = _quick_compare(quick, variables)
            if holds is not None:
                return holds
        return self._guard(variables, meter, _truthy_value)

    def unknown_calls(self, beans: BeanRegistry | None = None) -> tuple[str, ...]:
        """Functions and methods this expression calls that no evaluation can run (beans, Java methods ...).

        For deploy-time checks: ``${approvalService.find(x)}`` gives ``("approvalService.find",)``
        unless ``beans`` (default: the registry in effect, :func:`~bpm.expressions.beans.use_beans`)
        has a bean ``approvalService`` with a public method ``find``; ``${foo()}`` gives ``("foo",)``,
        ``${a.b.c()}`` gives ``("c",)``; whitelisted calls are not listed.
        """
        registry = active_beans() if beans is None else beans
        found: list[str] = []
        stack: list[Any] = [self._tree()]
        while stack:
            node = stack.pop()
            if isinstance(node, _Call) and node.name not in _FUNCTIONS:
                found.append(node.name)
            elif isinstance(node, _MethodCall):
                named = node.target.name if isinstance(node.target, _Name) else None
                runnable = named == "execution" and node.name in _EXECUTION_METHODS
                if runnable or (named is not None and registry.has_method(named, node.name)):
                    pass
                elif named is not None and named in registry:
                    found.append(f"{named}.{node.name}")
                elif node.name not in _METHODS:
                    found.append(f"{named}.{node.name}" if named is not None else node.name)
            if is_dataclass(node):
                for item in fields(node):
                    child = getattr(node, item.name)
                    stack.extend(child if isinstance(child, tuple) else [child])
        return tuple(dict.fromkeys(found))

    def _tree(self) -> _Node:
        if self.root is None:  # pragma: no cover - __post_init__ always sets it
            raise _Fault("expression is not compiled")
        return self.root

    def _guard(
        self, variables: Mapping[str, Any], meter: WorkMeter | None, run: Callable[[_Evaluator, _Node], Any]
    ) -> Any:
        if type(variables) is not dict and not isinstance(variables, Mapping):
            raise _error(f"variables must be a mapping, not {type(variables).__name__}", self.source)
        meter = WorkMeter() if meter is None else meter
        started = meter.used
        try:
            return run(_Evaluator(variables, self.dialect, meter), self._tree())
        except _Fault as fault:
            raise _error(str(fault), self.source) from None
        except ExpressionError:
            raise
        except Exception as exc:  # last resort: nothing else may escape the boundary
            raise _error(f"evaluation failed ({type(exc).__name__})", self.source) from exc
        finally:
            meter.finish(meter.used - started)


_QUICK_OPS = frozenset({"==", "!=", "<", "<=", ">", ">="})
#: the work of a quick comparison's three node visits (the comparison's own cost comes on top)
_QUICK_NODES_WORK = 3 * NODE_WORK


def _quick_form(root: _Node | None) -> tuple[str, str, Any, bool] | None:
    """``(name, op, literal, name_first)`` for a root that compares one variable with one plain literal
    (``approved == true``, ``${amount > 100}``): conditions on sequence flows, mostly."""
    if type(root) is not _Compare or len(root.ops) != 1 or root.ops[0] not in _QUICK_OPS:
        return None
    left, right = root.operands
    if type(left) is _Name and type(right) is _Literal and type(right.value) in _PLAIN_SCALARS:
        return left.name, root.ops[0], right.value, True
    if type(right) is _Name and type(left) is _Literal and type(left.value) in _PLAIN_SCALARS:
        return right.name, root.ops[0], left.value, False
    return None


def _quick_compare(quick: tuple[str, str, Any, bool], variables: dict[str, Any]) -> bool | None:
    """What the evaluator gives for a :func:`_quick_form` comparison, and the same work reported, without
    walking the tree; None where this does not apply (a missing variable, a container, a failure, the
    budget): the evaluator then runs it, and reports what fails as it does."""
    name, op, literal, name_first = quick
    if name not in variables:
        return None
    value = variables[name]
    if type(value) not in _PLAIN_SCALARS:
        return None
    left, right = (value, literal) if name_first else (literal, value)
    equality = op == "==" or op == "!="
    if equality and (value is True or value is False or value is None) and type(value) is type(literal):
        used = _QUICK_NODES_WORK + 1  # (scalar_equality_cost of two booleans or two nulls)
    else:
        cost = scalar_equality_cost(left, right) if equality else scalar_order_cost(left, right)
        used = _QUICK_NODES_WORK + cost
    if used > MAX_WORK:  # (a tiny BPM_EXPRESSION_WORK_BUDGET): the evaluator refuses it
        return None
    if equality and type(left) is type(right):  # _compare's coercions apply across types only
        holds = (left == right) is (op == "==")
    else:
        try:
            holds = _compare(op, left, right)
        except Exception:  # the evaluator's own run raises it as it should
            return None
    report_work(used)
    return holds


def _truthy_value(evaluator: _Evaluator, root: _Node) -> bool:
    return evaluator.truthy(evaluator.visit(root))


def _result_value(evaluator: _Evaluator, root: _Node) -> Any:
    return evaluator.result(evaluator.visit(root))


def _check_source(text: Any) -> str:
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, not {type(text).__name__}")
    if len(text) > MAX_SOURCE_LENGTH:
        raise _error(f"expression is longer than {MAX_SOURCE_LENGTH} characters", text)
    return text


def _language_dialect(language: str | None) -> str | None:
    """The dialect a ``language`` attribute asks for; raises if it is not supported."""
    if language is None:
        return None
    if not isinstance(language, str):
        raise ExpressionError(f"expression language {language!r} is not supported")
    key = language.strip().lower()
    if key in _LANGUAGES:
        return _LANGUAGES[key] if key else None
    if key.startswith(("http://", "https://")) and key.rstrip("/").endswith("/feel"):
        return FEEL
    raise ExpressionError(f"expression language '{language}' is not supported")


def _feel(source: str, start: int) -> Expression:
    root, _ = _parse(source, start, len(source), FEEL)
    return Expression(source, FEEL, root)


def compile_expression(text: str, language: str | None = None) -> Expression:
    """Compile a condition or script expression; raises ExpressionError on bad syntax.

    The dialect follows the text: ``${...}``/``#{...}`` is JUEL (text around
    or between several parts makes a string template), a leading ``=`` is
    FEEL, anything else is a bare expression of the union grammar, read in the
    dialect ``language`` names (``juel``, ``feel`` or a FEEL URI, ``python``...).
    """
    hint = _language_dialect(language)
    source = _check_source(text)
    body = source.strip()
    start = len(source) - len(source.lstrip())
    if not body:
        raise _error("empty expression", source)
    if body.startswith(("${", "#{")):
        root, dialect = _template_tree(source)
        return Expression(source, dialect, root)
    if body.startswith("="):
        return _feel(source, start + 1)
    dialect = hint or PLAIN
    root, _ = _parse(source, start, len(source), dialect)
    return Expression(source, dialect, root)


def compile_template(text: str) -> Expression:
    """Compile an attribute value: literal text with zero or more ``${...}``/``#{...}`` parts.

    Without parts it evaluates to the text; a lone part (ignoring surrounding
    spaces) to the part's value, unconverted; otherwise to the concatenation,
    parts converted to text (null as ""). A leading ``=`` makes it FEEL.
    """
    source = _check_source(text)
    if source.lstrip().startswith("="):
        return _feel(source, len(source) - len(source.lstrip()) + 1)
    root, dialect = _template_tree(source)
    return Expression(source, dialect, root)
