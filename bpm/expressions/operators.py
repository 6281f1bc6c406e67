"""Comparison and arithmetic operators, and the work each costs."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from bpm.expressions.costs import _text_units
from bpm.expressions.limits import MAX_EXPONENT
from bpm.expressions.temporal import temporal_add, temporal_key, temporal_subtract
from bpm.expressions.values import _bool_text, _check_size, _Fault, _is_list, _is_number, _kind, _number, _short


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
    keys = temporal_key(left, right)
    if keys is not None:
        return bool(_ORDERINGS[op](*keys))
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
    moved = temporal_add(left, right)
    if moved is not None:
        return moved
    if isinstance(left, str) and isinstance(right, str):
        _check_size(len(left) + len(right))
        return left + right
    if _is_list(left) and _is_list(right):
        _check_size(len(left) + len(right))
        return [*left, *right]
    raise _Fault(f"cannot add a {_kind(left)} and a {_kind(right)}")


def _subtract(left: Any, right: Any) -> Any:
    moved = temporal_subtract(left, right)
    if moved is not None:
        return moved
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
