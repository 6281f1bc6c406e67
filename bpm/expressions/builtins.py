"""The whitelisted functions and methods, with their arity, documentation and cost."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from bpm.expressions.costs import WorkMeter, _top_items
from bpm.expressions.limits import _MAX_CONVERTED_TEXT, _MAX_ROUND_DIGITS, LOOP_ITEM_WORK
from bpm.expressions.operators import _contains, _equals, _order
from bpm.expressions.temporal import (
    DATE_METHODS,
    fn_date,
    fn_date_and_time,
    fn_duration,
    fn_now,
    fn_today,
    format_pattern,
)
from bpm.expressions.values import _check_size, _Fault, _is_list, _is_number, _kind, _number, _short, _size, _to_text
from bpm.expressions.vendor import EXECUTION_METHODS, VARIABLE_FUNCTIONS


@dataclass(frozen=True, slots=True)
class _Builtin:
    """A whitelisted function or method: its implementation, arity and documentation."""

    impl: Callable[..., Any]
    min_args: int
    max_args: int | None
    doc: str
    cost: Callable[..., int]  # (meter, *args) -> work units, charged before impl runs
    context: bool = False  # impl and cost take the variables after the meter / first


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


def _converting_receiver(meter: WorkMeter, receiver: Any, *pattern: Any) -> int:
    return _converting(meter, receiver) + meter.sequence_cost(*pattern)


def _comparing(meter: WorkMeter, left: Any, right: Any) -> int:
    return meter.equality_cost(left, right)


def _searching(meter: WorkMeter, container: Any, item: Any) -> int:
    return meter.membership_cost(container, item)


def _prefix(meter: WorkMeter, receiver: Any, prefix: Any) -> int:
    return meter.sequence_cost(prefix)


_CORE_FUNCTIONS: Final[Mapping[str, _Builtin]] = MappingProxyType(
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


def _variable_cost(meter: WorkMeter, variables: Mapping[str, Any], name: Any, *values: Any) -> int:
    """A Flowable variable function: compares or searches the variable's value once per value given."""
    target = variables.get(name) if isinstance(name, str) else None
    each = meter.weight(target) + LOOP_ITEM_WORK * _top_items(target)
    return each * max(1, len(values)) + sum(meter.weight(value) for value in values)


_VENDOR_FUNCTIONS: Final[Mapping[str, _Builtin]] = {
    "now": _Builtin(fn_now, 0, 0, "now(): the current date-time (Camunda's Date, FEEL's date and time)", _free),
    "dateTime": _Builtin(fn_now, 0, 0, "dateTime(): the current date-time, Joda-like (Camunda)", _free),
    "today": _Builtin(fn_today, 0, 0, "today(): the current date (FEEL)", _free),
    "date": _Builtin(fn_date, 1, 3, "date('2024-01-31'), date(dateTime) or date(y, m, d) (FEEL)", _copying),
    "date and time": _Builtin(fn_date_and_time, 1, 1, "date and time('2024-01-31T10:00:00Z') (FEEL)", _copying),
    "duration": _Builtin(fn_duration, 1, 1, "duration('P1DT2H'): an ISO 8601 duration (FEEL)", _copying),
    **{
        f"variables:{name}": _Builtin(impl, low, high, doc, _variable_cost, context=True)
        for name, (impl, low, high, doc) in VARIABLE_FUNCTIONS.items()
    },
}

_FUNCTIONS: Final[Mapping[str, _Builtin]] = MappingProxyType({**_CORE_FUNCTIONS, **_VENDOR_FUNCTIONS})

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


_CORE_METHODS: Final[Mapping[str, _Builtin]] = MappingProxyType(
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


def _m_to_string(receiver: Any, pattern: Any = None) -> str:
    """``x.toString()``: a date-time in ISO 8601 or a Joda pattern; anything else as ``str(x)``."""
    if pattern is not None:
        return format_pattern(receiver, pattern)
    return _to_text(receiver)


_DATE_METHODS: Final[Mapping[str, _Builtin]] = {
    name: _Builtin(impl, low, high, doc, _copying) for name, (impl, low, high, doc) in DATE_METHODS.items()
}
_METHODS: Final[Mapping[str, _Builtin]] = MappingProxyType(
    {
        **_CORE_METHODS,
        **_DATE_METHODS,
        "toString": _Builtin(
            _m_to_string, 0, 1, "x.toString([pattern]): text; dates in ISO 8601 or a Joda pattern", _converting_receiver
        ),
    }
)
_EXECUTION_METHODS: Final[Mapping[str, _Builtin]] = MappingProxyType(
    {
        name: _Builtin(impl, low, high, doc, _variable_cost, context=True)
        for name, (impl, low, high, doc) in EXECUTION_METHODS.items()
    }
)

METHODS: Final[Mapping[str, str]] = MappingProxyType({name: builtin.doc for name, builtin in _METHODS.items()})
"""The whitelist of JUEL-style methods, ``name -> description``, callable as ``x.name(...)``."""
