"""Deep copies of plain data and records, without ``copy.deepcopy``'s per-object bookkeeping.

Process state, variables and history entries are plain JSON-like data (dicts, lists,
strings, numbers, booleans, None). :func:`copy_plain` copies such data through
``marshal`` (C code, several times faster than a Python walk), and falls back to
``copy.deepcopy`` for anything marshal does not take exactly (a dict or str subclass,
a datetime, a record ...), so the result is what ``copy.deepcopy`` gives. (One
difference, outside plain data: marshal turns a bytearray or memoryview into bytes.
State is JSON: the Redis backend could not store those either.)

:func:`clone` also copies records (dataclasses): one generated copier per record
type, which takes the fields declared as plain scalars (``str``, ``int | None`` ...) as
they are and copies the others.
"""

from __future__ import annotations

import copy
import dataclasses
import marshal
from collections.abc import Callable
from typing import Any

#: exact types whose values never change (their copy is themselves)
SCALARS: frozenset[type] = frozenset({str, int, float, bool, type(None), bytes})
#: field annotations of records whose values need no copy
_SCALAR_HINTS = frozenset(
    {"str", "int", "float", "bool", "bytes", "str | None", "int | None", "float | None", "bool | None"}
)
_MARSHALLED = frozenset({dict, list, tuple, set, frozenset})


def copy_plain(value: Any) -> Any:
    """A deep copy of plain data (what ``copy.deepcopy`` returns, faster)."""
    kind = type(value)
    if kind in SCALARS:
        return value
    if kind in _MARSHALLED:
        if not value:
            return kind()  # an empty container (task variables, mostly): no marshal round trip
        try:
            return marshal.loads(marshal.dumps(value))
        except (ValueError, TypeError):  # something in it marshal does not take exactly
            pass
    return copy.deepcopy(value)


def freeze(value: Any) -> Any:
    """A stored form of plain data: marshalled bytes (which the garbage collector never walks),
    else a deep copy. :func:`thaw` gives back a fresh deep copy of it each time."""
    try:
        return marshal.dumps(value)
    except (ValueError, TypeError):
        return copy.deepcopy(value)


def thaw(frozen: Any) -> Any:
    """A fresh deep copy of what :func:`freeze` stored."""
    return marshal.loads(frozen) if type(frozen) is bytes else copy.deepcopy(frozen)


def shallow_copy(record: Any) -> Any:
    """A new record with the same field values (records only: a generated copier per type)."""
    return shallow_copier(type(record))(record)


def shallow_copier(kind: type) -> Callable[[Any], Any]:
    """:func:`shallow_copy`'s copier of one record type (for callers that know the type: one call less)."""
    copier = _SHALLOW.get(kind)
    if copier is None:
        copier = _SHALLOW[kind] = _generate(kind, lambda hint: "{v}")
    return copier


def cloner(kind: type) -> Callable[[Any], Any]:
    """:func:`clone`'s copier of one record type (for callers that know the type: one call less)."""
    return _COPIERS.get(kind) or _copier_for(kind)


def clone(value: Any) -> Any:
    """A deep copy of plain data and records (dataclass instances)."""
    kind = type(value)
    if kind in SCALARS:
        return value
    copier = _COPIERS.get(kind)
    if copier is None:
        copier = _copier_for(kind)
    return copier(value)


_COPIERS: dict[type, Callable[[Any], Any]] = dict.fromkeys(_MARSHALLED, copy_plain)
_SHALLOW: dict[type, Callable[[Any], Any]] = {}


def _copier_for(kind: type) -> Callable[[Any], Any]:
    """The copier of a record type (generated once), or ``copy.deepcopy`` for anything else.

    A record's copy is made without running its ``__init__`` (its fields are set one by
    one): a scalar field is taken as it is, a ``list[str]`` is copied shallowly (its
    strings need no copy), anything else is cloned.
    """
    if not dataclasses.is_dataclass(kind) or kind.__setattr__ is not object.__setattr__:  # frozen: no setattr
        return copy.deepcopy
    copier = _generate(kind, _deep_field)
    _COPIERS[kind] = copier
    return copier


def _deep_field(hint: str) -> str:
    if hint in _SCALAR_HINTS:
        return "{v}"
    if hint == "list[str]":
        return "[*{v}]"
    if hint.startswith("dict["):  # an empty plain dict (task variables, mostly) made inline
        return "(c({v}) if {v} or type({v}) is not dict else {{}})"
    return "c({v})"


def maker(kind: type, *given: str) -> Callable[..., Any]:
    """A function that makes a ``kind`` record as ``kind(...)`` does (same parameters, defaults and
    default factories), without ``type.__call__`` running the generated ``__init__``. With
    ``given`` field names: it takes just those, positionally in that order, and gives the other
    fields their defaults. (Calling a record's class costs several times a plain function call,
    and binding many keyword arguments about twice a positional call: hot paths call a maker of
    the fields they set, positionally.)

    Only for plain records: a dataclass, not frozen, without ``__post_init__``, every field in
    ``__init__`` and not keyword-only, and that ``__init__`` the dataclass's own (else TypeError)."""
    made = _MAKERS.get((kind, given))
    if made is not None:
        return made
    init = getattr(kind, "__init__", None)
    if (
        not dataclasses.is_dataclass(kind)
        or kind.__setattr__ is not object.__setattr__  # type: ignore[comparison-overlap]
        or hasattr(kind, "__post_init__")
        or any(not f.init or f.kw_only for f in dataclasses.fields(kind))
        or getattr(getattr(init, "__code__", None), "co_filename", None) != "<string>"  # not a hand-written one
    ):
        raise TypeError(f"{kind.__name__} is not a plain record")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    if len(set(given)) != len(given) or not fields.keys() >= set(given):
        raise TypeError(f"{kind.__name__} has no fields {given}, or they repeat")
    # the function's own names start with "_m_": no field's parameter hides them
    namespace: dict[str, Any] = {"_m_kind": kind, "_m_new": object.__new__, "_m_missing": _MISSING}
    params, body = [], ["    _m_record = _m_new(_m_kind)"]
    for f in fields.values():
        if f.name.startswith("_m_"):
            raise TypeError(f"{kind.__name__}.{f.name}: a field name maker reserves")
        value = f.name
        if f.default is not dataclasses.MISSING:
            namespace[f"_m_default_{f.name}"] = f.default
            default = f"_m_default_{f.name}"
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_m_factory_{f.name}"] = f.default_factory
            default = "_m_missing"
            value = f"_m_factory_{f.name}() if {f.name} is _m_missing else {f.name}"
        elif given and f.name not in given:
            raise TypeError(f"{kind.__name__}.{f.name} has no default: it must be given")
        else:
            default = ""
        if not given:
            params.append(f"{f.name}={default}" if default else f.name)
        elif f.name not in given:
            value = f"_m_factory_{f.name}()" if default == "_m_missing" else default
        body.append(f"    _m_record.{f.name} = {value}")
    source = f"def _m_make({', '.join(given or params)}):\n" + "\n".join(body) + "\n    return _m_record\n"
    exec(source, namespace)  # field names are identifiers: nothing else goes in
    made = _MAKERS[(kind, given)] = namespace["_m_make"]
    return made


_MISSING = object()
_MAKERS: dict[tuple[type, tuple[str, ...]], Callable[..., Any]] = {}


def _generate(kind: type, field_copy: Callable[[str], str]) -> Callable[[Any], Any]:
    """``copy_record(v)``: a new ``kind`` without ``__init__``, each field set to ``field_copy``'s
    expression of ``v.<field>`` (by the field's annotation)."""
    if not dataclasses.is_dataclass(kind):
        raise TypeError(f"{kind.__name__} is not a record (dataclass)")
    lines = ["def copy_record(v):", "    r = new(k)"]
    for f in dataclasses.fields(kind):
        lines.append(f"    r.{f.name} = " + field_copy(str(f.type)).format(v=f"v.{f.name}"))
    lines.append("    return r")
    namespace: dict[str, Any] = {"k": kind, "c": clone, "new": object.__new__}
    exec("\n".join(lines) + "\n", namespace)  # field names are identifiers: nothing else goes in
    copier: Callable[[Any], Any] = namespace["copy_record"]
    return copier
