"""Faults, JSON-like values (kinds, text, truthiness) and property/index lookups."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from bpm.expressions.faults import _clip, _error, _Fault, _Missing
from bpm.expressions.limits import _MAX_INT_BITS_AS_TEXT, JUEL, MAX_INT, MAX_SEQUENCE
from bpm.expressions.temporal import is_temporal, temporal_kind, temporal_property

__all__ = ["_Fault", "_Missing", "_clip", "_error"]  # re-exported for the other modules


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
    if is_temporal(value):
        return temporal_kind(value)
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
    if is_temporal(value):
        return str(value)
    raise _Fault(f"cannot convert a {_kind(value)} to text")


def _json_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if is_temporal(value):
        return str(value)
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
    if is_temporal(target):
        return temporal_property(target, name)
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
