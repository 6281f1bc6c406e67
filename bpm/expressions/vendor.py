"""Flowable's ``variables:`` functions and the ``execution`` object's variable methods.

``${variables:get(x)}`` (also ``vars:`` and ``var:``) names a variable - quoted
or not, as Flowable reads it - and never fails on a missing one;
``${execution.getVariable('x')}`` and ``${execution.hasVariable('x')}`` read the
process variables. Each function receives the variables first.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any, Final

from bpm.expressions.faults import _Fault
from bpm.expressions.limits import MAX_SEQUENCE
from bpm.expressions.operators import _contains, _equals, _order
from bpm.expressions.values import _is_empty, _kind

NAMESPACES: Final = frozenset({"variables", "vars", "var"})
"""Flowable's namespaces for the variable functions; all mean ``variables``."""
_MISSING: Final = object()


def _name(function: str, name: Any) -> str:
    if not isinstance(name, str):
        raise _Fault(f"'{function}' needs a variable name, not a {_kind(name)}")
    if name.startswith("_"):
        raise _Fault(f"names starting with '_' are not allowed: {name[:40]!r}")
    return name


def _value(variables: Mapping[str, Any], function: str, name: Any) -> Any:
    return variables.get(_name(function, name), _MISSING)


def _get(variables: Mapping[str, Any], name: Any) -> Any:
    value = _value(variables, "variables:get", name)
    return None if value is _MISSING else value


def _get_or_default(variables: Mapping[str, Any], name: Any, default: Any) -> Any:
    value = _value(variables, "variables:getOrDefault", name)
    return default if value is _MISSING or value is None else value


def _exists(variables: Mapping[str, Any], name: Any) -> bool:
    return _value(variables, "variables:exists", name) is not _MISSING


def _is_empty_variable(variables: Mapping[str, Any], name: Any) -> bool:
    value = _value(variables, "variables:isEmpty", name)
    return value is _MISSING or _is_empty(value)


def _equals_variable(variables: Mapping[str, Any], name: Any, other: Any) -> bool:
    value = _value(variables, "variables:equals", name)
    return value is not _MISSING and _equals(value, other)


def _contains_all(variables: Mapping[str, Any], name: Any, *items: Any) -> bool:
    value = _value(variables, "variables:contains", name)
    return value not in (_MISSING, None) and all(_contains(value, item) for item in items)


def _contains_any(variables: Mapping[str, Any], name: Any, *items: Any) -> bool:
    value = _value(variables, "variables:containsAny", name)
    return value not in (_MISSING, None) and any(_contains(value, item) for item in items)


def _comparison(function: str, op: str) -> Callable[[Mapping[str, Any], Any, Any], bool]:
    def compare(variables: Mapping[str, Any], name: Any, other: Any) -> bool:
        value = _value(variables, function, name)
        return value is not _MISSING and value is not None and _order(op, value, other)

    return compare


def _base64(variables: Mapping[str, Any], name: Any) -> str | None:
    value = _value(variables, "variables:base64", name)
    if value is _MISSING or value is None:
        return None
    if not isinstance(value, str):
        raise _Fault(f"'variables:base64' needs a string variable, not a {_kind(value)}")
    if len(value) * 4 // 3 > MAX_SEQUENCE:
        raise _Fault(f"result would be longer than {MAX_SEQUENCE} items")
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


_Entry = tuple[Callable[..., Any], int, int | None, str]
_LOWER_THAN: Final = _comparison("variables:lowerThan", "<")
_LOWER_OR_EQUAL: Final = _comparison("variables:lowerThanOrEquals", "<=")
_GREATER_THAN: Final = _comparison("variables:greaterThan", ">")
_GREATER_OR_EQUAL: Final = _comparison("variables:greaterThanOrEquals", ">=")

VARIABLE_FUNCTIONS: Final[Mapping[str, _Entry]] = {
    "get": (_get, 1, 1, "variables:get(x): the variable's value, null when it is missing"),
    "getOrDefault": (_get_or_default, 2, 2, "variables:getOrDefault(x, d): the value, or d when missing or null"),
    "exists": (_exists, 1, 1, "variables:exists(x): whether the variable is set"),
    "isEmpty": (_is_empty_variable, 1, 1, "variables:isEmpty(x) (empty): missing, null, '' or an empty list/map"),
    "empty": (_is_empty_variable, 1, 1, "variables:empty(x): same as isEmpty"),
    "isNotEmpty": (lambda v, x: not _is_empty_variable(v, x), 1, 1, "variables:isNotEmpty(x) (notEmpty)"),
    "notEmpty": (lambda v, x: not _is_empty_variable(v, x), 1, 1, "variables:notEmpty(x): same as isNotEmpty"),
    "equals": (_equals_variable, 2, 2, "variables:equals(x, v) (eq): the variable equals v"),
    "eq": (_equals_variable, 2, 2, "variables:eq(x, v): same as equals"),
    "notEquals": (lambda v, x, o: not _equals_variable(v, x, o), 2, 2, "variables:notEquals(x, v) (ne)"),
    "ne": (lambda v, x, o: not _equals_variable(v, x, o), 2, 2, "variables:ne(x, v): same as notEquals"),
    "contains": (_contains_all, 2, None, "variables:contains(x, a, ...): the string/list holds every value"),
    "containsAny": (_contains_any, 2, None, "variables:containsAny(x, a, ...): it holds one of the values"),
    "lowerThan": (_LOWER_THAN, 2, 2, "variables:lowerThan(x, v) (lessThan, lt): x < v"),
    "lessThan": (_LOWER_THAN, 2, 2, "variables:lessThan(x, v): x < v"),
    "lt": (_LOWER_THAN, 2, 2, "variables:lt(x, v): x < v"),
    "lowerThanOrEquals": (_LOWER_OR_EQUAL, 2, 2, "variables:lowerThanOrEquals(x, v) (lessThanOrEquals, lte)"),
    "lessThanOrEquals": (_LOWER_OR_EQUAL, 2, 2, "variables:lessThanOrEquals(x, v): x <= v"),
    "lte": (_LOWER_OR_EQUAL, 2, 2, "variables:lte(x, v): x <= v"),
    "greaterThan": (_GREATER_THAN, 2, 2, "variables:greaterThan(x, v) (gt): x > v"),
    "gt": (_GREATER_THAN, 2, 2, "variables:gt(x, v): x > v"),
    "greaterThanOrEquals": (_GREATER_OR_EQUAL, 2, 2, "variables:greaterThanOrEquals(x, v) (gte): x >= v"),
    "gte": (_GREATER_OR_EQUAL, 2, 2, "variables:gte(x, v): x >= v"),
    "base64": (_base64, 1, 1, "variables:base64(x): the string variable in base64"),
}
"""Flowable's variable functions, by name (called as ``variables:name(...)``)."""


def _get_variable(variables: Mapping[str, Any], name: Any) -> Any:
    value = variables.get(_name("getVariable", name), _MISSING)
    return None if value is _MISSING else value


def _has_variable(variables: Mapping[str, Any], name: Any) -> bool:
    return _name("hasVariable", name) in variables


EXECUTION_METHODS: Final[Mapping[str, _Entry]] = {
    "getVariable": (_get_variable, 1, 1, "execution.getVariable('x'): the variable's value, null when missing"),
    "getVariableLocal": (_get_variable, 1, 1, "execution.getVariableLocal('x'): same as getVariable"),
    "hasVariable": (_has_variable, 1, 1, "execution.hasVariable('x'): whether the variable is set"),
    "hasVariableLocal": (_has_variable, 1, 1, "execution.hasVariableLocal('x'): same as hasVariable"),
}
"""Methods of the ``execution`` object (when no variable is called ``execution``)."""
