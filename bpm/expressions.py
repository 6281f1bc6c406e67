"""The one safe expression evaluator for conditions, scripts and attribute templates.

Process models carry expressions in several dialects; all are parsed by one
union grammar into an immutable AST and run by a small tree-walking evaluator:

- JUEL (Camunda, Flowable, Activiti): ``${approved}``, ``#{a eq 'x'}``,
  ``${order.items[0].price > 10 && !done}``, ``${empty list}``;
- FEEL (Camunda 8): ``= x > 5 and y = "a"``, ``= not(done)``; with a FEEL
  ``language`` hint, adjacent names join into one (``Vacation Approval``);
  quantified and ``for`` expressions: ``= some r in risks satisfies r = "red"``,
  ``= every x in xs, y in x satisfies y > 0``, ``= for x in xs return x * 2``
  (every dialect reads these; see :class:`_Loop`);
- Python-like (SpiffWorkflow): ``answer == 'Yes'``, ``not val``,
  ``a if c else b``, ``x in ['a', 'b']``.

Nothing here runs Python code: no ``eval``/``exec``/``compile`` and no ``ast``.
Values are JSON-like (``dict``, ``list``, ``str``, ``int``, ``float``, ``bool``,
``None``); no attribute of a Python object is ever read; only the functions of
:data:`FUNCTIONS` and the methods of :data:`METHODS` can be called. Sizes, depth,
numbers and work are bounded (``MAX_*`` below), and every failure - syntax,
missing name, bad type, bound exceeded - raises
:class:`bpm.errors.ExpressionError` naming the culprit and the expression.

Interface:

- ``compile_expression(text, language=None) -> Expression`` for conditions and
  script expressions (syntax errors surface here, at deployment);
- ``compile_template(text) -> Expression`` for attribute values (assignee,
  candidate users, due date, priority): literal text with ``${...}`` parts;
- ``Expression.evaluate(variables)`` and ``Expression.evaluate_condition(variables)``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, NamedTuple, NoReturn, TypeVar

from bpm.errors import ExpressionError

__all__ = [
    "CHARS_PER_UNIT",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_INT",
    "MAX_NODES",
    "MAX_SEQUENCE",
    "MAX_SOURCE_LENGTH",
    "MAX_STEPS",
    "MAX_VALUE_DEPTH",
    "MAX_WORK",
    "METHODS",
    "NODE_WORK",
    "Expression",
    "ExpressionError",
    "WorkLog",
    "WorkMeter",
    "compile_expression",
    "compile_template",
    "record_work",
]

MAX_SOURCE_LENGTH: Final = 4096
"""Longest accepted expression or template source, in characters."""
MAX_DEPTH: Final = 64
"""Deepest accepted nesting of the syntax tree (and of the parser)."""
MAX_NODES: Final = 2000
"""Most syntax-tree nodes in one expression or template."""
MAX_INT: Final = 10**100
"""Largest integer magnitude an operation may produce."""
MAX_EXPONENT: Final = 1000
"""Largest exponent magnitude accepted by ``**``."""
MAX_SEQUENCE: Final = 100_000
"""Longest string or list an operation may build."""

JUEL: Final = "juel"
FEEL: Final = "feel"
PLAIN: Final = "plain"

_MAX_CONVERTED_TEXT: Final = 400
_MAX_ROUND_DIGITS: Final = 100
_MAX_INT_BITS_AS_TEXT: Final = 13_000
_CLIP: Final = 200

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


# --------------------------------------------------------------------------- errors


class _Fault(Exception):
    """A runtime failure; the evaluation boundary adds the source and re-raises it."""


class _Missing(_Fault):
    """A variable, property or index that is not there (``empty`` treats it as null)."""


def _clip(source: str) -> str:
    return source if len(source) <= _CLIP else source[: _CLIP - 3] + "..."


def _error(message: str, source: str) -> ExpressionError:
    return ExpressionError(f"{message} in '{_clip(source)}'")


# --------------------------------------------------------------------------- values


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_list(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _kind(value: Any) -> str:
    """The JSON-ish type name of a value, for messages (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if _is_list(value):
        return "list"
    if isinstance(value, Mapping):
        return "map"
    return type(value).__name__


def _short(value: Any) -> str:
    """A short display of a scalar for messages; containers show their kind only."""
    if isinstance(value, str):
        return repr(_clip(value))
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        return "a very large integer"
    if value is None or isinstance(value, bool | int | float):
        return _to_text(value) if value is not None else "null"
    return f"a {_kind(value)}"


def _number(value: Any) -> int | float:
    """Check that an arithmetic result is a finite number within the integer bound."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Fault(f"arithmetic produced a {_kind(value)}")
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise _Fault("integer result exceeds 10**100 in magnitude")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Fault("numeric result is not a finite number")
    return value


def _check_size(size: int) -> None:
    if size > MAX_SEQUENCE:
        raise _Fault(f"result would be longer than {MAX_SEQUENCE} items")


def _to_text(value: Any) -> str:
    """Convert a value to text as templates do: null is empty, booleans are lower case."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS_AS_TEXT:
            raise _Fault("integer is too large to convert to text")
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if _is_list(value) or isinstance(value, Mapping):
        return _json_text(value)
    raise _Fault(f"cannot convert a {_kind(value)} to text")


def _json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(type(value).__name__)


def _json_text(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError, RecursionError):
        raise _Fault(f"cannot convert a {_kind(value)} to text") from None
    _check_size(len(text))
    return text


def _bool_text(text: str) -> bool | None:
    """JUEL's reading of a string as a boolean, or None if it is neither word."""
    word = text.strip().lower()
    return True if word == "true" else False if word == "false" else None


def _truthy(value: Any, dialect: str) -> bool:
    """Truthiness: null, false, 0, "" and empty lists/maps are false.

    In JUEL a string is true only if it reads "true" (case-insensitive), as
    JUEL's coercion to Boolean does.
    """
    if isinstance(value, str) and dialect == JUEL:
        return _bool_text(value) is True
    if value is None or isinstance(value, bool | int | float | str | list | tuple | dict):
        return bool(value)
    if isinstance(value, Mapping):
        return len(value) > 0
    return True


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str) or _is_list(value) or isinstance(value, Mapping):
        return len(value) == 0
    return False


def _size(value: Any) -> int:
    if isinstance(value, str) or _is_list(value) or isinstance(value, Mapping):
        return len(value)
    raise _Fault(f"a {_kind(value)} has no length")


# --------------------------------------------------------------------------- work accounting


def _env_budget(name: str, default: int) -> int:
    """A positive integer limit from the environment (read once, at import), else ``default``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from None
    if value <= 0:
        raise ValueError(f"environment variable {name}={raw!r} must be positive")
    return value


MAX_WORK: Final = _env_budget("BPM_EXPRESSION_WORK_BUDGET", 1_000_000)
"""Work budget of one evaluation (or one script), in work units; see :class:`WorkMeter`."""
NODE_WORK: Final = 100
"""Work units of one syntax-node visit, function call or loop binding."""
MAX_STEPS: Final = MAX_WORK // NODE_WORK
"""The most syntax-node visits and loop bindings one evaluation can make (the budget spent on nothing else)."""
CHARS_PER_UNIT: Final = 8
"""Characters of text scanned, copied or produced per work unit."""
LOOP_ITEM_WORK: Final = 4
"""Work units of one item that Python code (not a C loop) looks at: membership and min/max scans, walks."""
MAX_VALUE_DEPTH: Final = 256
"""Deepest nesting of a value the evaluator will measure, compare, convert or return."""


def _text_units(length: int) -> int:
    return 1 + length // CHARS_PER_UNIT


def _scalar_size(value: Any) -> tuple[int, int] | None:
    """``(weight, characters)`` of a scalar, or None for a container (see :meth:`WorkMeter.size`)."""
    if isinstance(value, str):
        return _text_units(len(value) + 2), len(value) + 2
    if isinstance(value, bool) or value is None:
        return 1, 5
    if isinstance(value, int):
        digits = value.bit_length() * 31 // 100 + 2
        return _text_units(digits), digits
    if isinstance(value, list | tuple | Mapping):
        return None
    return 1, 24  # floats; other objects cannot be converted or serialised anyway


def _slots(container: Any) -> int:
    """Items a walk of ``container`` looks at: its elements, or a map's keys and values."""
    return 2 * len(container) if isinstance(container, Mapping) else len(container)


def _flat_size(container: Any) -> tuple[int, int] | None:
    """The size of a list of scalars of one type, computed at C speed; None for anything else."""
    if isinstance(container, Mapping):
        return None
    kinds = set(map(type, container))
    count = len(container)
    if not kinds:
        return 1, 2
    if len(kinds) > 1:
        return None
    kind = kinds.pop()
    if kind is int:
        return 1 + count, 2 + 4 * count + sum(map(int.bit_length, container)) * 31 // 100
    if kind is str:
        total = sum(map(len, container)) + 2 * count
        return 1 + count + total // CHARS_PER_UNIT, 2 + total + 2 * count
    if kind in (float, bool, type(None)):
        return 1 + count, 2 + 28 * count
    return None


def _top_items(value: Any) -> int:
    return _slots(value) if isinstance(value, list | tuple | Mapping) else 0


def _items(value: Any) -> int:
    return len(value) if isinstance(value, list | tuple) else 1


def _children(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield key
            yield item
    else:
        yield from value


@dataclass(slots=True)
class WorkLog:
    """What :func:`record_work` saw: evaluations run, their total and largest work."""

    evaluations: int = 0
    total: int = 0
    largest: int = 0

    def add(self, used: int) -> None:
        self.evaluations += 1
        self.total += used
        self.largest = max(self.largest, used)


_WORK_LOG: ContextVar[WorkLog | None] = ContextVar("bpm_expression_work_log", default=None)


@contextmanager
def record_work() -> Iterator[WorkLog]:
    """Record the work of every evaluation run in this context (tests, benchmarks, metrics)."""
    log = WorkLog()
    token = _WORK_LOG.set(log)
    try:
        yield log
    finally:
        _WORK_LOG.reset(token)


class WorkMeter:
    """The work an evaluation spends, charged before each operation does it.

    Units: one per syntax-node visit is :data:`NODE_WORK`; one per item of a
    list or map that an operation allocates, copies, scans or compares (a
    nested value counts every item it would have once written out, shared
    references included); one per :data:`CHARS_PER_UNIT` characters of text
    scanned, copied or produced. A charge that would take :attr:`used` past
    :attr:`budget` is refused (the evaluation then fails with
    :class:`ExpressionError`) and the operation is not done, so ``used`` never
    exceeds ``budget``. One meter may span several evaluations (a script's
    statements share one budget).
    """

    __slots__ = ("_sizes", "budget", "used")

    def __init__(self, budget: int | None = None) -> None:
        self.budget = MAX_WORK if budget is None else budget
        self.used = 0
        # id -> (value, weight, characters) of containers already measured; holding the
        # value keeps its id from being reused while the meter lives
        self._sizes: dict[int, tuple[Any, int, int]] = {}

    @property
    def remaining(self) -> int:
        return self.budget - self.used

    def charge(self, units: int) -> None:
        """Spend ``units`` or raise (spending nothing) when the budget cannot cover them."""
        if units > self.budget - self.used:
            raise _Fault(f"evaluation exceeded its budget of {self.budget} work units")
        self.used += units

    def size(self, value: Any, limit: int | None = None) -> tuple[int, int]:
        """``(weight, characters)``: items of ``value`` written out, and its JSON length estimate.

        The weight is one per scalar and container plus one per
        :data:`CHARS_PER_UNIT` characters of each scalar's text; shared
        references count once per occurrence. Measuring charges one unit per
        item looked at, each distinct container being looked at once per meter.
        Stops early, returning a weight above ``limit``, once the weight passes it.
        """
        scalar = _scalar_size(value)
        if scalar is not None:
            return scalar
        known = self._sizes.get(id(value))
        if known is not None:
            return known[1], known[2]
        return self._measure(value, self.remaining if limit is None else limit)

    def _measure(self, root: Any, limit: int) -> tuple[int, int]:
        # An explicit stack (values may nest deeper than Python recursion allows); each
        # container is charged its item count when it is entered, before it is walked.
        sizes = self._sizes
        flat = self._flat(root)
        if flat is not None:
            return flat
        frames: list[list[Any]] = [[root, _children(root), 1, 2]]
        grand = 1
        while frames:
            frame = frames[-1]
            descend = None
            weight, chars = frame[2], frame[3]
            for child in frame[1]:
                kind = type(child)
                if kind is str:
                    length = len(child) + 2
                    weight += 1 + length // CHARS_PER_UNIT
                    chars += length + 2
                    grand += 1 + length // CHARS_PER_UNIT
                elif kind is int:
                    weight += 1
                    chars += child.bit_length() * 31 // 100 + 4
                    grand += 1
                elif kind is float or kind is bool or child is None:
                    weight += 1
                    chars += 26
                    grand += 1
                else:
                    known = sizes.get(id(child))
                    size = known[1:] if known is not None else _scalar_size(child)
                    if size is None:
                        size = self._flat(child)
                        if size is None:
                            descend = child
                            break
                    weight += size[0]
                    chars += size[1] + 2
                    grand += size[0]
                if grand > limit:
                    return limit + 1, chars
            frame[2], frame[3] = weight, chars
            if descend is not None:
                if len(frames) >= MAX_VALUE_DEPTH:
                    raise _Fault(f"cannot use a value nested deeper than {MAX_VALUE_DEPTH} levels")
                frames.append([descend, _children(descend), 1, 2])
                grand += 1
                continue
            frames.pop()
            sizes[id(frame[0])] = (frame[0], weight, chars)
            if not frames:
                return weight, chars
            frames[-1][2] += weight
            frames[-1][3] += chars + 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _flat(self, container: Any) -> tuple[int, int] | None:
        """Size a container of one scalar type at C speed; else charge for walking it in Python."""
        self.charge(_slots(container))
        size = _flat_size(container)
        if size is None:
            self.charge(_slots(container) * (LOOP_ITEM_WORK - 1))
            return None
        self._sizes[id(container)] = (container, *size)
        return size

    def weight(self, value: Any, limit: int | None = None) -> int:
        return self.size(value, limit)[0]

    # ---- the cost of each kind of operation (charged by the caller before it acts)

    def text_cost(self, value: Any) -> int:
        """Converting ``value`` to text: refused when the text would be too long."""
        weight, chars = self.size(value)
        if weight > self.remaining:
            return weight
        if chars > MAX_SEQUENCE + 2:
            raise _Fault(f"text would be longer than {MAX_SEQUENCE} characters")
        return weight + chars // CHARS_PER_UNIT

    def equality_cost(self, left: Any, right: Any) -> int:
        """Deep ``==``: at most the smaller side is walked (bounded by the remaining budget)."""
        if isinstance(left, bool) and isinstance(right, str):
            return self.weight(right)
        if isinstance(right, bool) and isinstance(left, str):
            return self.weight(left)
        if _top_items(right) < _top_items(left):
            left, right = right, left  # measure the side that looks smaller first
        first = self.weight(left)
        return min(first, self.weight(right, limit=min(first, self.remaining)))

    def order_cost(self, left: Any, right: Any) -> int:
        if isinstance(left, str) and isinstance(right, str):
            return _text_units(min(len(left), len(right)))
        return 1

    def membership_cost(self, container: Any, item: Any) -> int:
        """``item in container``: a substring search, a scan with deep ``==``, or a key lookup."""
        if isinstance(container, str):
            return _text_units(len(container) + (len(item) if isinstance(item, str) else 0))
        if isinstance(container, list | tuple):
            # each element is compared at most as deeply as it is itself, in a Python loop
            return self.weight(container) + LOOP_ITEM_WORK * len(container)
        return _text_units(len(item)) if isinstance(item, str) else 1

    def sequence_cost(self, *values: Any) -> int:
        """Copying or scanning strings and lists once, item by item (not deeply)."""
        units = 1
        for value in values:
            if isinstance(value, str):
                units += len(value) // CHARS_PER_UNIT
            elif isinstance(value, list | tuple):
                units += len(value)
        return units

    def scan_cost(self, *values: Any) -> int:
        """min/max: every item is compared, in a Python loop, at most as deeply as it is itself."""
        return sum(self.weight(value) + LOOP_ITEM_WORK * _items(value) for value in values)

    def finish(self, used: int) -> None:
        """Report one evaluation's work to the :func:`record_work` log of this context, if any."""
        log = _WORK_LOG.get()
        if log is not None:
            log.add(used)


# --------------------------------------------------------------------------- operators


def _equals(left: Any, right: Any) -> bool:
    """Equality with JUEL/FEEL-friendly coercion.

    Numbers compare numerically (``1 == 1.0``); a boolean equals the strings
    "true"/"false" it reads as; a boolean never equals a number; otherwise
    Python equality.
    """
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    if isinstance(left, bool) or isinstance(right, bool):
        if isinstance(left, str):
            return _bool_text(left) is right
        if isinstance(right, str):
            return _bool_text(right) is left
        return left is right
    return bool(left == right)


def _identical(left: Any, right: Any) -> bool:
    """Python's ``is`` for JSON values: equal and of the same type."""
    if left is None or right is None or isinstance(left, bool) or isinstance(right, bool):
        return left is right
    return type(left) is type(right) and bool(left == right)


_ORDERINGS: Final[Mapping[str, Callable[[Any, Any], bool]]] = MappingProxyType(
    {
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
    }
)


def _order(op: str, left: Any, right: Any) -> bool:
    both_numbers = _is_number(left) and _is_number(right)
    if both_numbers or (isinstance(left, str) and isinstance(right, str)):
        return bool(_ORDERINGS[op](left, right))
    raise _Fault(f"cannot compare a {_kind(left)} and a {_kind(right)} with '{op}'")


def _contains(container: Any, item: Any) -> bool:
    """Membership: substring of a string, element of a list, key of a map."""
    if isinstance(container, str):
        if not isinstance(item, str):
            raise _Fault(f"cannot look for a {_kind(item)} in a string")
        return item in container
    if _is_list(container):
        return any(_equals(item, element) for element in container)
    if isinstance(container, Mapping):
        hashable = item is None or isinstance(item, str | int | float)
        return hashable and item in container
    raise _Fault(f"cannot look for a value in a {_kind(container)}")


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return _equals(left, right)
    if op == "!=":
        return not _equals(left, right)
    if op == "in":
        return _contains(right, left)
    if op == "not in":
        return not _contains(right, left)
    if op == "is":
        return _identical(left, right)
    if op == "is not":
        return not _identical(left, right)
    return _order(op, left, right)


def _require_numbers(op: str, left: Any, right: Any) -> None:
    if not (_is_number(left) and _is_number(right)):
        raise _Fault(f"cannot apply '{op}' to a {_kind(left)} and a {_kind(right)}")


def _require_divisor(right: Any) -> None:
    if right == 0:
        raise _Fault("division by zero")


def _add(left: Any, right: Any) -> Any:
    if _is_number(left) and _is_number(right):
        return _number(left + right)
    if isinstance(left, str) and isinstance(right, str):
        _check_size(len(left) + len(right))
        return left + right
    if _is_list(left) and _is_list(right):
        _check_size(len(left) + len(right))
        return [*left, *right]
    raise _Fault(f"cannot add a {_kind(left)} and a {_kind(right)}")


def _subtract(left: Any, right: Any) -> Any:
    _require_numbers("-", left, right)
    return _number(left - right)


def _repeat(sequence: str | list[Any] | tuple[Any, ...], count: int) -> Any:
    _check_size(len(sequence) * max(count, 0))
    return sequence * count if isinstance(sequence, str) else list(sequence) * count


def _multiply(left: Any, right: Any) -> Any:
    if _is_number(left) and _is_number(right):
        return _number(left * right)
    count_right = isinstance(right, int) and not isinstance(right, bool)
    if count_right and (isinstance(left, str) or _is_list(left)):
        return _repeat(left, right)
    count_left = isinstance(left, int) and not isinstance(left, bool)
    if count_left and (isinstance(right, str) or _is_list(right)):
        return _repeat(right, left)
    raise _Fault(f"cannot multiply a {_kind(left)} and a {_kind(right)}")


def _divide(left: Any, right: Any) -> Any:
    _require_numbers("/", left, right)
    _require_divisor(right)
    return _number(left / right)


def _floor_divide(left: Any, right: Any) -> Any:
    _require_numbers("//", left, right)
    _require_divisor(right)
    return _number(left // right)


def _modulo(left: Any, right: Any) -> Any:
    _require_numbers("%", left, right)
    _require_divisor(right)
    return _number(left % right)


def _digits_of_power(base: int | float, exponent: int | float) -> float:
    """An upper estimate of the decimal digits of an integer power (0 if not one)."""
    if isinstance(base, float) or isinstance(exponent, float) or exponent <= 0 or abs(base) <= 1:
        return 0.0
    return exponent * math.log10(abs(base))


def _power(base: Any, exponent: Any) -> Any:
    """``**``, refusing before computing anything whose result would be too large."""
    _require_numbers("**", base, exponent)
    if abs(exponent) > MAX_EXPONENT:
        raise _Fault(f"exponent {_short(exponent)} is larger than {MAX_EXPONENT}")
    if _digits_of_power(base, exponent) > 101:
        raise _Fault("power result would exceed 10**100 in magnitude")
    if base == 0 and exponent < 0:
        raise _Fault("division by zero")
    result = base**exponent
    if isinstance(result, complex):
        raise _Fault("power of a negative number to a fractional exponent")
    return _number(result)


_ARITHMETIC: Final[Mapping[str, Callable[[Any, Any], Any]]] = MappingProxyType(
    {
        "+": _add,
        "-": _subtract,
        "*": _multiply,
        "/": _divide,
        "//": _floor_divide,
        "%": _modulo,
        "**": _power,
    }
)


def _arithmetic(op: str, left: Any, right: Any) -> Any:
    try:
        return _ARITHMETIC[op](left, right)
    except ZeroDivisionError:
        raise _Fault("division by zero") from None
    except OverflowError:
        raise _Fault(f"numeric overflow in '{op}'") from None


def _repeat_count(left: Any, right: Any) -> tuple[Any, int] | None:
    """``(sequence, count)`` when ``left * right`` repeats a string or list, else None."""
    for sequence, count in ((left, right), (right, left)):
        is_count = isinstance(count, int) and not isinstance(count, bool)
        if is_count and (isinstance(sequence, str) or _is_list(sequence)):
            return sequence, max(count, 0)
    return None


def _arithmetic_cost(op: str, left: Any, right: Any) -> int:
    """Work units of ``left op right``, refusing oversized results before they are built.

    Numbers cost one unit (their size is bounded by ``MAX_INT``); concatenation
    copies both sides; repetition builds ``len * count`` items or characters.
    The references a repeated list shares are charged when something walks them.
    """
    if op == "+" and ((isinstance(left, str) and isinstance(right, str)) or (_is_list(left) and _is_list(right))):
        _check_size(len(left) + len(right))
        return 1 + len(left) + len(right) if _is_list(left) else _text_units(len(left) + len(right))
    repeat = _repeat_count(left, right) if op == "*" else None
    if repeat is None:
        return 1
    sequence, count = repeat
    _check_size(len(sequence) * count)
    return _text_units(len(sequence) * count) if isinstance(sequence, str) else 1 + len(sequence) * count


def _negate(op: str, operand: Any) -> Any:
    if not _is_number(operand):
        raise _Fault(f"cannot apply unary '{op}' to a {_kind(operand)}")
    return _number(-operand if op == "-" else operand)


# --------------------------------------------------------------------------- lookups


def _check_name(name: str) -> None:
    if name.startswith("_"):
        raise _Fault(f"names starting with '_' are not allowed: {_short(name)}")


def _get_property(target: Any, name: str) -> Any:
    """``a.b``: a key of a map; nothing else has properties."""
    if isinstance(target, Mapping):
        if name in target:
            return target[name]
        raise _Missing(f"unknown property '{name}'")
    if target is None:
        raise _Missing(f"cannot read property '{name}' of null")
    raise _Fault(f"cannot read property '{name}' of a {_kind(target)}")


def _get_key(target: Mapping[Any, Any], key: Any) -> Any:
    if isinstance(key, str):
        _check_name(key)
    elif not (key is None or isinstance(key, int | float)):
        raise _Fault(f"a {_kind(key)} cannot be a map key")
    if key in target:
        return target[key]
    raise _Missing(f"unknown property {_short(key)}")


def _get_position(target: Sequence[Any], key: Any, one_based: bool) -> Any:
    if isinstance(key, bool) or not isinstance(key, int):
        raise _Fault(f"a list index must be an integer, not a {_kind(key)}")
    index = key - 1 if one_based and key > 0 else key
    if one_based and key == 0:
        index = len(target)
    if -len(target) <= index < len(target):
        return target[index]
    raise _Missing(f"index {_short(key)} is out of range")


def _get_item(target: Any, key: Any, one_based: bool) -> Any:
    """``a[k]``: a map key, or a list/string position (1-based in FEEL)."""
    if isinstance(target, Mapping):
        return _get_key(target, key)
    if _is_list(target) or isinstance(target, str):
        return _get_position(target, key, one_based)
    if target is None:
        raise _Missing("cannot index null")
    raise _Fault(f"cannot index a {_kind(target)}")


# --------------------------------------------------------------------------- functions


@dataclass(frozen=True, slots=True)
class _Builtin:
    """A whitelisted function or method: its implementation, arity and documentation."""

    impl: Callable[..., Any]
    min_args: int
    max_args: int | None
    doc: str
    cost: Callable[..., int]  # (meter, *args) -> work units, charged before impl runs


def _require_text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _Fault(f"'{name}' needs a string, not a {_kind(value)}")
    return value


def _require_number(name: str, value: Any) -> int | float:
    if not _is_number(value):
        raise _Fault(f"'{name}' needs a number, not a {_kind(value)}")
    return value


def _checked_text(text: str) -> str:
    _check_size(len(text))
    return text


def _parse_number(text: str, convert: Callable[[str], int | float]) -> int | float:
    if len(text) > _MAX_CONVERTED_TEXT:
        raise _Fault("cannot convert a string that long to a number")
    try:
        return _number(convert(text.strip()))
    except ValueError:
        raise _Fault(f"cannot convert {_short(text)} to a number") from None


def _fn_int(value: Any) -> int | float:
    if isinstance(value, str):
        return _parse_number(value, int)
    if isinstance(value, bool) or _is_number(value):
        try:
            return _number(int(value))
        except (ValueError, OverflowError):
            raise _Fault(f"cannot convert {_short(value)} to an integer") from None
    raise _Fault(f"cannot convert a {_kind(value)} to an integer")


def _fn_float(value: Any) -> int | float:
    if isinstance(value, str):
        return _parse_number(value, float)
    if isinstance(value, bool) or _is_number(value):
        try:
            return _number(float(value))
        except OverflowError:
            raise _Fault("integer is too large to convert to a float") from None
    raise _Fault(f"cannot convert a {_kind(value)} to a number")


def _extreme(name: str, args: tuple[Any, ...], op: str) -> Any:
    items = args[0] if len(args) == 1 and _is_list(args[0]) else args
    if not items:
        raise _Fault(f"'{name}' of an empty list")
    best = items[0]
    for item in items[1:]:
        if _order(op, item, best):
            best = item
    return best


def _fn_round(value: Any, digits: Any = None) -> int | float:
    _require_number("round", value)
    if isinstance(value, float) and not math.isfinite(value):
        raise _Fault("cannot round a number that is not finite")
    if digits is None:
        return _number(round(value))
    if isinstance(digits, bool) or not isinstance(digits, int):
        raise _Fault(f"'round' needs an integer number of digits, not a {_kind(digits)}")
    if abs(digits) > _MAX_ROUND_DIGITS:
        raise _Fault(f"'round' accepts at most {_MAX_ROUND_DIGITS} digits")
    return _number(round(value, digits))


def _fn_abs(value: Any) -> int | float:
    return _number(abs(_require_number("abs", value)))


def _free(meter: WorkMeter, *args: Any) -> int:
    return 0


def _copying(meter: WorkMeter, *args: Any) -> int:
    return meter.sequence_cost(*args)


def _scanning(meter: WorkMeter, *args: Any) -> int:
    return meter.scan_cost(*args)


def _converting(meter: WorkMeter, value: Any) -> int:
    return 0 if value is None or isinstance(value, str | bool) else meter.text_cost(value)


def _comparing(meter: WorkMeter, left: Any, right: Any) -> int:
    return meter.equality_cost(left, right)


def _searching(meter: WorkMeter, container: Any, item: Any) -> int:
    return meter.membership_cost(container, item)


def _prefix(meter: WorkMeter, receiver: Any, prefix: Any) -> int:
    return meter.sequence_cost(prefix)


_FUNCTIONS: Final[Mapping[str, _Builtin]] = MappingProxyType(
    {
        "len": _Builtin(_size, 1, 1, "len(x): length of a string, list or map", _free),
        "str": _Builtin(
            _to_text, 1, 1, "str(x): x as text (null -> '', 'true'/'false', lists/maps as JSON)", _converting
        ),
        "int": _Builtin(_fn_int, 1, 1, "int(x): integer from a number, boolean or string", _copying),
        "float": _Builtin(_fn_float, 1, 1, "float(x): number from a number, boolean or string", _copying),
        "abs": _Builtin(_fn_abs, 1, 1, "abs(x): absolute value of a number", _free),
        "min": _Builtin(lambda *a: _extreme("min", a, "<"), 1, None, "min(list) or min(a, b, ...)", _scanning),
        "max": _Builtin(lambda *a: _extreme("max", a, ">"), 1, None, "max(list) or max(a, b, ...)", _scanning),
        "round": _Builtin(_fn_round, 1, 2, "round(x[, digits]): x rounded half to even", _free),
        "lower": _Builtin(
            lambda s: _checked_text(_require_text("lower", s).lower()), 1, 1, "lower(s): s in lower case", _copying
        ),
        "upper": _Builtin(
            lambda s: _checked_text(_require_text("upper", s).upper()), 1, 1, "upper(s): s in upper case", _copying
        ),
        "contains": _Builtin(
            _contains, 2, 2, "contains(c, x): substring of a string, element of a list, key of a map", _searching
        ),
    }
)

FUNCTIONS: Final[Mapping[str, str]] = MappingProxyType({name: builtin.doc for name, builtin in _FUNCTIONS.items()})
"""The whitelist of plain functions, ``name -> description``; no other name may be called."""


def _text_method(name: str, receiver: Any) -> str:
    if not isinstance(receiver, str):
        raise _Fault(f"method '{name}' needs a string, not a {_kind(receiver)}")
    return receiver


def _m_equals_ignore_case(receiver: Any, other: Any) -> bool:
    text = _text_method("equalsIgnoreCase", receiver)
    return isinstance(other, str) and text.casefold() == other.casefold()


def _m_starts_with(receiver: Any, prefix: Any) -> bool:
    return _text_method("startsWith", receiver).startswith(_require_text("startsWith", prefix))


def _m_ends_with(receiver: Any, suffix: Any) -> bool:
    return _text_method("endsWith", receiver).endswith(_require_text("endsWith", suffix))


_METHODS: Final[Mapping[str, _Builtin]] = MappingProxyType(
    {
        "size": _Builtin(_size, 0, 0, "x.size(): length of a string, list or map", _free),
        "length": _Builtin(_size, 0, 0, "x.length(): length of a string, list or map", _free),
        "isEmpty": _Builtin(
            lambda r: _size(r) == 0, 0, 0, "x.isEmpty(): whether a string, list or map is empty", _free
        ),
        "equals": _Builtin(_equals, 1, 1, "x.equals(y): same as x == y", _comparing),
        "equalsIgnoreCase": _Builtin(
            _m_equals_ignore_case, 1, 1, "s.equalsIgnoreCase(t): case-insensitive equality", _copying
        ),
        "contains": _Builtin(_contains, 1, 1, "x.contains(y): substring of a string, element of a list", _searching),
        "startsWith": _Builtin(_m_starts_with, 1, 1, "s.startsWith(p): whether s starts with p", _prefix),
        "endsWith": _Builtin(_m_ends_with, 1, 1, "s.endsWith(p): whether s ends with p", _prefix),
        "toLowerCase": _Builtin(
            lambda r: _checked_text(_text_method("toLowerCase", r).lower()),
            0,
            0,
            "s.toLowerCase(): s in lower case",
            _copying,
        ),
        "toUpperCase": _Builtin(
            lambda r: _checked_text(_text_method("toUpperCase", r).upper()),
            0,
            0,
            "s.toUpperCase(): s in upper case",
            _copying,
        ),
        "trim": _Builtin(lambda r: _text_method("trim", r).strip(), 0, 0, "s.trim(): s without outer spaces", _copying),
    }
)

METHODS: Final[Mapping[str, str]] = MappingProxyType({name: builtin.doc for name, builtin in _METHODS.items()})
"""The whitelist of JUEL-style methods, ``name -> description``, callable as ``x.name(...)``."""


# --------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class _Name:
    name: str


@dataclass(frozen=True, slots=True)
class _Attr:
    target: _Node
    name: str


@dataclass(frozen=True, slots=True)
class _Index:
    target: _Node
    key: _Node


@dataclass(frozen=True, slots=True)
class _ListDisplay:
    items: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Call:
    name: str
    args: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _MethodCall:
    target: _Node
    name: str
    args: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Unary:
    op: str
    operand: _Node


@dataclass(frozen=True, slots=True)
class _Not:
    operand: _Node


@dataclass(frozen=True, slots=True)
class _Empty:
    operand: _Node


@dataclass(frozen=True, slots=True)
class _Logical:
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True, slots=True)
class _Binary:
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True, slots=True)
class _Compare:
    ops: tuple[str, ...]
    operands: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Conditional:
    test: _Node
    then: _Node
    orelse: _Node


@dataclass(frozen=True, slots=True)
class _Template:
    parts: tuple[str | _Node, ...]


@dataclass(frozen=True, slots=True)
class _Loop:
    """FEEL ``some``/``every ... satisfies`` and ``for ... return`` over one or more contexts.

    ``some x in a, y in b satisfies c`` binds ``x`` to each item of ``a``, then
    ``y`` to each item of ``b`` (which may use ``x``), and so on: the contexts
    nest, and the condition or ``return`` body sees every name bound. A bound
    name shadows a variable of the same name in the later domains and the body
    only. ``some`` is true when at least one binding satisfies the condition
    (false for an empty list), ``every`` when all do (true for an empty list);
    both stop at the first binding that decides. ``for`` returns the list of
    body values, one per binding (the cartesian product, flattened). A domain
    must be a list.
    """

    kind: str  # "some" | "every" | "for"
    names: tuple[str, ...]
    domains: tuple[_Node, ...]
    body: _Node


_Node = (
    _Literal
    | _Name
    | _Attr
    | _Index
    | _ListDisplay
    | _Call
    | _MethodCall
    | _Unary
    | _Not
    | _Empty
    | _Logical
    | _Binary
    | _Compare
    | _Conditional
    | _Template
    | _Loop
)
_N = TypeVar("_N", bound=_Node)


# --------------------------------------------------------------------------- tokenizer


class _Token(NamedTuple):
    kind: str  # "num", "str", "name", "kw", "op" or "end"
    value: Any
    pos: int


_KEYWORDS: Final = frozenset(
    {
        "and", "or", "not", "in", "is", "if", "then", "else",
        "div", "mod", "eq", "ne", "lt", "gt", "le", "ge", "empty",
        "true", "false", "True", "False", "null", "None",
    }
)  # fmt: skip
_CONSTANTS: Final[Mapping[str, Any]] = MappingProxyType(
    {"true": True, "True": True, "false": False, "False": False, "null": None, "None": None}
)
_OPERATORS: Final = (
    "**", "//", "==", "!=", "<=", ">=", "&&", "||",
    "+", "-", "*", "/", "%", "<", ">", "=", "!", "?", ":", "(", ")", "[", "]", ",", ".",
)  # fmt: skip
_SPACE_RE: Final = re.compile(r"\s+")
_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE: Final = re.compile(r"(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+(?:[eE][+-]?[0-9]+)?")
_ESCAPES: Final[Mapping[str, str]] = MappingProxyType(
    {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "\\": "\\", "'": "'", '"': '"', "/": "/"}
)
_HEX4_RE: Final = re.compile(r"[0-9A-Fa-f]{4}")


class _Scanner:
    """Turns ``source[start:end]`` into tokens whose positions index ``source``."""

    def __init__(self, source: str, start: int, end: int) -> None:
        self.source = source
        self.pos = start
        self.end = end

    def fail(self, message: str) -> NoReturn:
        raise _error(f"syntax error: {message} at position {self.pos}", self.source)

    def tokens(self) -> list[_Token]:
        result: list[_Token] = []
        while True:
            token = self.next_token()
            result.append(token)
            if token.kind == "end":
                return result

    def next_token(self) -> _Token:
        space = _SPACE_RE.match(self.source, self.pos, self.end)
        if space:
            self.pos = space.end()
        if self.pos >= self.end:
            return _Token("end", None, self.pos)
        char = self.source[self.pos]
        if char in "'\"":
            return self.string(char)
        number = _NUMBER_RE.match(self.source, self.pos, self.end)
        if number:
            return self.number(number.group())
        name = _NAME_RE.match(self.source, self.pos, self.end)
        if name:
            return self.word(name.group())
        return self.operator()

    def word(self, text: str) -> _Token:
        token = _Token("kw" if text in _KEYWORDS else "name", text, self.pos)
        self.pos += len(text)
        return token

    def number(self, text: str) -> _Token:
        start = self.pos
        self.pos += len(text)
        if _NAME_RE.match(self.source, self.pos, self.end):
            self.fail(f"invalid number '{_clip(text)}'")
        if "." in text or "e" in text or "E" in text:
            value: int | float = float(text)
            if not math.isfinite(value):
                self.fail(f"number '{_clip(text)}' is out of range")
        else:
            value = int(text)
            if value > MAX_INT:
                self.fail("integer literal exceeds 10**100")
        return _Token("num", value, start)

    def operator(self) -> _Token:
        for op in _OPERATORS:
            if self.source.startswith(op, self.pos, self.end):
                token = _Token("op", op, self.pos)
                self.pos += len(op)
                return token
        self.fail(f"unexpected character {self.source[self.pos]!r}")

    def string(self, quote: str) -> _Token:
        start = self.pos
        self.pos += 1
        chars: list[str] = []
        while self.pos < self.end:
            char = self.source[self.pos]
            if char == quote:
                self.pos += 1
                return _Token("str", "".join(chars), start)
            if char == "\\":
                chars.append(self.escape())
            else:
                chars.append(char)
                self.pos += 1
        self.pos = start
        self.fail("unterminated string")

    def escape(self) -> str:
        """Decode the backslash escape at ``pos``; unknown escapes stay as written."""
        nxt = self.source[self.pos + 1] if self.pos + 1 < self.end else ""
        hex_end = self.pos + 6
        if nxt == "u" and hex_end <= self.end and _HEX4_RE.fullmatch(self.source, hex_end - 4, hex_end):
            self.pos = hex_end
            return chr(int(self.source[hex_end - 4 : hex_end], 16))
        if nxt in _ESCAPES:
            self.pos += 2
            return _ESCAPES[nxt]
        self.pos += 1
        return "\\"


# --------------------------------------------------------------------------- parser

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
        then = self.expression(0)
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
        if self.dialect == FEEL:
            name = self.feel_name(name)
        self.check_name(name, token)
        return self.make(_Name(name))

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


# --------------------------------------------------------------------------- templates


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


# --------------------------------------------------------------------------- evaluator


def _whitelisted(table: Mapping[str, _Builtin], what: str, name: str) -> _Builtin:
    builtin = table.get(name)
    if builtin is None:
        raise _Fault(f"{what} '{name}' is not allowed")
    return builtin


class _Evaluator:
    """Walks one tree against one variables map, charging its meter before each operation."""

    __slots__ = ("bound", "charge", "dialect", "meter", "variables")

    def __init__(self, variables: Mapping[str, Any], dialect: str, meter: WorkMeter) -> None:
        self.variables = variables
        self.dialect = dialect
        self.meter = meter
        self.charge = meter.charge
        self.bound: dict[str, Any] = {}  # names bound by the loops being run; they shadow variables

    def truthy(self, value: Any) -> bool:
        if isinstance(value, str) and self.dialect == JUEL:
            self.charge(_text_units(len(value)))  # JUEL reads the string as a boolean word
        return _truthy(value, self.dialect)

    def result(self, value: Any) -> Any:
        """Charge for the value leaving the evaluator: the engine stores (serialises) it."""
        if isinstance(value, list | tuple | Mapping):
            weight, chars = self.meter.size(value)
            self.charge(weight if weight > self.meter.remaining else weight + chars // CHARS_PER_UNIT)
        return value

    def visit(self, node: _Node) -> Any:
        self.charge(NODE_WORK)
        match node:
            case _Literal():
                return node.value
            case _Name():
                return self.lookup(node.name)
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
            case _Compare():
                return self.compare(node)
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
        else:
            builtin = _whitelisted(_METHODS, "method", node.name)
            target = self.visit(node.target)
            if target is None:
                raise _Fault(f"cannot call method '{node.name}' on null")
            args = [target, *(self.visit(arg) for arg in node.args)]
        self.charge(builtin.cost(self.meter, *args))
        return builtin.impl(*args)

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


# --------------------------------------------------------------------------- public API


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

    def __post_init__(self) -> None:
        if self.root is None:
            compiled = compile_expression(self.source)
            object.__setattr__(self, "dialect", compiled.dialect)
            object.__setattr__(self, "root", compiled.root)

    def evaluate(self, variables: Mapping[str, Any], meter: WorkMeter | None = None) -> Any:
        """The expression's value; raises :class:`ExpressionError` on any failure.

        The work is charged to ``meter`` (a fresh one with the default budget when
        None); its ``used`` tells the work done, also after a failure.
        """
        return self._guard(variables, meter, lambda evaluator: evaluator.result(evaluator.visit(self._tree())))

    def evaluate_condition(self, variables: Mapping[str, Any], meter: WorkMeter | None = None) -> bool:
        """The value's truthiness (JUEL reads "true"/"false" strings); raises ExpressionError."""
        return self._guard(variables, meter, lambda evaluator: evaluator.truthy(evaluator.visit(self._tree())))

    def _tree(self) -> _Node:
        if self.root is None:  # pragma: no cover - __post_init__ always sets it
            raise _Fault("expression is not compiled")
        return self.root

    def _guard(self, variables: Mapping[str, Any], meter: WorkMeter | None, run: Callable[[_Evaluator], Any]) -> Any:
        if not isinstance(variables, Mapping):
            raise _error(f"variables must be a mapping, not {type(variables).__name__}", self.source)
        meter = WorkMeter() if meter is None else meter
        started = meter.used
        try:
            return run(_Evaluator(variables, self.dialect, meter))
        except _Fault as fault:
            raise _error(str(fault), self.source) from None
        except ExpressionError:
            raise
        except Exception as exc:  # last resort: nothing else may escape the boundary
            raise _error(f"evaluation failed ({type(exc).__name__})", self.source) from exc
        finally:
            meter.finish(meter.used - started)


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
