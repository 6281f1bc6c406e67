"""How records and options travel to and from Redis: hash fields, URL options, script replies."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, fields
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from backends.base import (
    Definition,
    ExternalTaskRecord,
    Instance,
    Task,
)
from bpm.errors import (
    BpmError,
    ConcurrentModification,
    Conflict,
    ExternalTaskNotFound,
    InstanceNotFound,
    NotCandidate,
    TaskAlreadyClaimed,
    TaskNotActive,
    TaskNotFound,
)
from bpm.jsontext import one_shot

R = TypeVar("R", Definition, ExternalTaskRecord, Instance, Task)
_INT_FIELDS = frozenset(
    {
        "available_at",
        "create_time",
        "deploy_time",
        "due_date",
        "end_time",
        "lock_expiry",
        "priority",
        "retries",
        "rev",
        "version",
    }
)
_JSON_FIELDS = frozenset({"candidate_groups", "candidate_roles", "candidate_users", "state", "variables"})
#: the hash field of a record field no script reads, shortened: in a small hash
#: (listpack) every field name is stored in full with each record
SHORT_NAMES = {
    "app_name": "an",
    "business_key": "bk",
    "create_by": "cb",
    "definition_id": "di",
    "description": "ds",
    "due_date": "dd",
    "element_id": "el",
    "form_key": "fk",
    "kind": "k",
    "loadlink_entity_id": "le",
    "loadlink_param": "lp",
    "parent_id": "pi",
    "parent_task_id": "pt",
    "process_key": "pk",
    "process_name": "pn",
    "variables": "v",
}
#: a task's hash fields the scripts read, shortened too (tasks only: the scripts read
#: external tasks by their full names); the scripts use these names
TASK_NAMES = {
    "candidate_groups": "cg",
    "candidate_roles": "cr",
    "candidate_users": "cu",
    "create_time": "ct",
    "instance_id": "ii",
    "name": "n",
    "task_definition_key": "tk",
}
_LONG_NAMES = {short: name for name, short in {**SHORT_NAMES, **TASK_NAMES}.items()}
_BOOL_FIELDS = frozenset({"ended", "history_truncated", "incident"})


def split_options(url: str, names: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """Remove our query parameters (``names``) from ``url``; return (url, {name: value}).

    Everything else is kept byte for byte, since redis-py parses the URL itself.
    """
    base, mark, rest = url.partition("?")
    query, hash_mark, fragment = rest.partition("#")
    found: dict[str, str] = {}
    kept = []
    for item in query.split("&") if mark else []:
        name, _, value = item.partition("=")
        if unquote(name) in names:
            found[unquote(name)] = unquote(value)
        elif item:
            kept.append(item)
    rebuilt = base + ("?" + "&".join(kept) if kept else "") + hash_mark + fragment
    return rebuilt, found


def split_prefix(url: str) -> tuple[str, str | None]:
    """Remove a ``prefix`` query parameter from ``url``; return (url, prefix or None)."""
    rebuilt, found = split_options(url, ("prefix",))
    return rebuilt, found.get("prefix")


#: json.dumps(value, ensure_ascii=False, separators=(",", ":")) without making an encoder per call
_ENCODE = one_shot(json.JSONEncoder(ensure_ascii=False, separators=(",", ":")))
#: a str as a JSON string (what _ENCODE writes for it)
_STRING = json.encoder.encode_basestring


def as_json(value: Any) -> str:
    return _ENCODE(value)


_RECORD_NAMES: dict[type, frozenset[str]] = {
    kind: frozenset(f.name for f in fields(kind)) for kind in (Definition, ExternalTaskRecord, Instance, Task)
}


def build(kind: type[R], data: Mapping[str, Any]) -> R:
    """``kind.from_dict(data)`` (unknown names left out) without reading the dataclass's fields each time."""
    names = _RECORD_NAMES[kind]
    if names.issuperset(data):  # nothing to leave out
        return kind(**data)
    return kind(**{name: value for name, value in data.items() if name in names})


def redact(url: str) -> str:
    """The URL without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    return url.replace(parts.netloc, f"{name}:***@{host}", 1)


def encode(record: Task | Instance | Definition | ExternalTaskRecord) -> dict[str, str]:
    """A record as hash fields: strings, JSON for lists and dicts, None left out; a task
    also without its id (its key ends in it) and the fields at their default, and with
    TASK_NAMES."""
    out: dict[str, str] = {}
    for name, stored, empty, default, kind in _encoding(type(record)):  # type: ignore[arg-type]  # a class is hashable
        value = getattr(record, name)
        if value is None or (empty and value in _EMPTY) or (default is not _NONE and value == default):
            continue  # absent: the field's (empty) default; no empty fields stored; a task's other defaults
        if kind == "json":
            out[stored] = _ENCODE(value)
        elif kind == "bool":
            out[stored] = "1" if value else "0"
        else:
            out[stored] = str(value)
    return out


_EMPTY: tuple[Any, ...] = ("", False, [], {})
_NONE = object()


@functools.cache
def _encoding(kind: type) -> tuple[tuple[str, str, bool, Any, str], ...]:
    """How :func:`encode` writes each field of a record class: (name, hash field, has an
    empty default, a default also left out or _NONE, "json"/"bool"/"text"); a task's id left out."""
    task = kind is Task
    empty_defaults = _empty_defaults(kind)
    found = []
    for f in fields(kind):
        if task and f.name == "id":
            continue  # the key ends in it
        stored = (task and TASK_NAMES.get(f.name)) or SHORT_NAMES.get(f.name, f.name)
        default = _TASK_DEFAULTS.get(f.name, _NONE) if task else _NONE  # priority 50, loadlink_param "=", status active
        kind_ = "json" if f.name in _JSON_FIELDS else "bool" if f.name in _BOOL_FIELDS else "text"
        found.append((f.name, stored, f.name in empty_defaults, default, kind_))
    return tuple(found)


#: a task's fields with a default other than empty that are left out at that default
#: (the scripts read a missing priority as 50 and a missing status as active)
_TASK_DEFAULTS = {
    f.name: f.default for f in fields(Task) if isinstance(f.default, (int, str)) and f.default not in ("", False)
}


@functools.cache
def _empty_defaults(kind: type) -> frozenset[str]:
    """The fields of a record class whose default is empty ("", False, [] or {})."""
    empty = set()
    for f in fields(kind):
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if default is not MISSING and default in ("", False, [], {}):
            empty.add(f.name)
    return frozenset(empty)


def decode_fields(data: Mapping[str, str]) -> dict[str, Any]:
    """Hash fields back to Python values (the inverse of :func:`encode`)."""
    return _decoded(data.items())


def decode_flat(flat: list[str]) -> dict[str, Any]:
    """``decode_fields(pairs(flat))`` without the dict between them, for a flat reply of a
    hash (each field named once, as HGETALL answers)."""
    if len(flat) % 2:
        pairs(flat)  # raises what it raises for an odd count
    values = iter(flat)
    return _decoded(zip(values, values, strict=False))  # an even count


def _decoded(items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for stored, raw in items:
        read = _READS.get(stored)
        if read is None:  # a field of no other name, read as text
            out[stored] = raw
            continue
        name, kind = read
        if kind is _TEXT:
            out[name] = raw
        elif kind is _JSON:
            out[name] = json.loads(raw)
        elif kind is _INT:
            out[name] = int(raw)
        else:
            out[name] = raw == "1"
    return out


_TEXT, _JSON, _INT, _BOOL = "text", "json", "int", "bool"


def _read_of(stored: str) -> tuple[str, str]:
    """How :func:`decode_fields` reads a hash field: (the record field, its kind)."""
    name = _LONG_NAMES.get(stored, stored)
    if name in _JSON_FIELDS:
        return name, _JSON
    if name in _INT_FIELDS:
        return name, _INT
    if name in _BOOL_FIELDS:
        return name, _BOOL
    return name, _TEXT


#: every hash field read otherwise than as text under its own name -> how it is read (any
#: other field: as text, under its own name)
_READS = {stored: _read_of(stored) for stored in (*_LONG_NAMES, *_JSON_FIELDS, *_INT_FIELDS, *_BOOL_FIELDS)}


#: history entries are stored with their common keys and types shortened ("~" +
#: a code: no entry key or type starts with "~"), and read back in full
HISTORY_KEYS = {
    "time": "~t",
    "type": "~y",
    "elementId": "~e",
    "elementType": "~E",
    "elementName": "~n",
    "user": "~u",
    "actor": "~a",
    "definitionId": "~d",
}
HISTORY_TYPES = {
    "element.entered": "~i",
    "element.left": "~o",
    "instance.started": "~s",
    "task.completed": "~c",
    "task.claimed": "~l",
}
_HISTORY_LONG_KEYS = {short: name for name, short in HISTORY_KEYS.items()}
_HISTORY_LONG_TYPES = {short: name for name, short in HISTORY_TYPES.items()}


#: an element entry the engine wrote (exactly these keys) is stored as a JSON array
#: ``[time, type, elementId, elementType, elementName]``, its time in ms after the
#: instance's create time, its type 1 for element.entered, 0 for element.left, else
#: in full, its elementType a number for the types in ELEMENT_TYPE_CODES, and without
#: its elementName when that is "": no key names stored, and short numbers.
#: Only entries with an elementType are arrays (the history cap in _common.lua relies on it)
_ELEMENT_KEYS = ("time", "type", "elementId", "elementType", "elementName")
_ELEMENT_KEY_SET = frozenset(_ELEMENT_KEYS)
_ELEMENT_TYPES = {"element.entered": 1, "element.left": 0}
_ELEMENT_TYPE_NAMES = {code: kind for kind, code in _ELEMENT_TYPES.items()}
#: element types stored as their index here (append only: stored histories keep these numbers)
ELEMENT_TYPE_CODES = (
    "startEvent", "endEvent", "userTask", "serviceTask", "scriptTask", "exclusiveGateway",
    "parallelGateway", "inclusiveGateway", "eventBasedGateway", "intermediateCatchEvent",
    "intermediateThrowEvent", "boundaryEvent", "subProcess", "callActivity", "sendTask",
    "receiveTask", "manualTask", "businessRuleTask", "task",
)  # fmt: skip
_ELEMENT_TYPE_NUMBERS = {name: code for code, name in enumerate(ELEMENT_TYPE_CODES)}


def history_json(entry: Mapping[str, Any], created: int | None = None, definition_id: str | None = None) -> str:
    """A history entry as stored: with ``created`` (its instance's create time), an
    element entry as an array; else an object (see HISTORY_KEYS) where, with ``created``,
    an int time is ``~r``, ms after it, and with ``definition_id`` (its instance's) a
    definitionId equal to it is ``"~d": 0``; a user followed by an equal actor is ``~U``."""
    if created is not None and type(entry) is dict and len(entry) == 5:
        try:  # an element entry seen before: its array after the time is known
            tail = _ELEMENT_TAILS[(entry["type"], entry["elementId"], entry["elementType"], entry["elementName"])]
            time = entry["time"]
        except (KeyError, TypeError):  # another entry, one not seen, or an unhashable value
            pass
        else:
            if type(time) is int:
                return f"[{time - created}{tail}"
    kind = entry.get("type")
    if (
        created is not None
        and isinstance(kind, str)
        and entry.keys() == _ELEMENT_KEY_SET
        and type(entry["time"]) is int
    ):
        code, element_id, element_type, element_name = (
            _ELEMENT_TYPES.get(kind),
            entry["elementId"],
            entry["elementType"],
            entry["elementName"],
        )
        number = _ELEMENT_TYPE_NUMBERS.get(element_type) if type(element_type) is str else None
        if code is not None and number is not None and type(element_id) is str and type(element_name) is str:
            # the common case written out (the bytes as_json writes for the list below)
            name = "," + _STRING(element_name) if element_name else ""
            tail = f",{code},{_STRING(element_id)},{number}{name}]"
            if type(kind) is str:
                if len(_ELEMENT_TAILS) >= _ELEMENT_TAILS_SIZE:
                    _ELEMENT_TAILS.clear()
                _ELEMENT_TAILS[(kind, element_id, element_type, element_name)] = tail
            return f"[{entry['time'] - created}{tail}"
        values = [entry[name] for name in _ELEMENT_KEYS]
        values[0] -= created
        values[1] = _ELEMENT_TYPES.get(kind, kind)
        if isinstance(values[3], str):
            values[3] = _ELEMENT_TYPE_NUMBERS.get(values[3], values[3])
        if values[4] == "":
            del values[4]
        return as_json(values)
    short: dict[str, Any] = {}
    for name, value in entry.items():
        if name not in _SHORTENED_BY_VALUE:
            short[HISTORY_KEYS.get(name, name)] = value
        elif name == "time" and created is not None and type(value) is int:
            short["~r"] = value - created
        elif name == "definitionId" and definition_id is not None and value == definition_id:
            short["~d"] = 0
        elif name == "user" and _actor_follows(entry, value):
            short["~U"] = value
        elif name == "actor" and "~U" in short:
            continue
        elif name == "type" and isinstance(value, str) and value in HISTORY_TYPES:
            short["~y"] = HISTORY_TYPES[value]
        else:
            short[HISTORY_KEYS.get(name, name)] = value
    return as_json(short)


#: (type, elementId, elementType, elementName) of element entries (all str) -> their stored
#: array after its time: ``,<code>,<elementId>,<number>[,<elementName>]]`` (an entry whose
#: values equal these is written so by the general path too); emptied when it reaches the size
_ELEMENT_TAILS: dict[tuple[Any, ...], str] = {}
_ELEMENT_TAILS_SIZE = 4096
#: the entry members history_json stores under another name or leaves out depending on their value
_SHORTENED_BY_VALUE = frozenset({"time", "definitionId", "user", "actor", "type"})


def _actor_follows(entry: Mapping[str, Any], user: Any) -> bool:
    """Whether the member after ``user`` in ``entry`` is an ``actor`` equal to it."""
    names = list(entry)
    following = names.index("user") + 1
    return following < len(names) and names[following] == "actor" and entry["actor"] == user


def history_entry(stored: str, created: int, definition_id: str | None = None) -> dict[str, Any]:
    """A stored history entry in full (the inverse of :func:`history_json`)."""
    raw = json.loads(stored)
    if isinstance(raw, list):
        time, kind, element_id, element_type, *rest = raw
        element_name = rest[0] if rest else ""
        kind = _ELEMENT_TYPE_NAMES.get(kind, kind) if type(kind) is int else kind
        if type(element_type) is int:
            element_type = ELEMENT_TYPE_CODES[element_type]
        return dict(zip(_ELEMENT_KEYS, (created + time, kind, element_id, element_type, element_name), strict=True))
    entry: dict[str, Any] = {}
    for name, value in raw.items():
        if name == "~r":
            entry["time"] = created + value
        elif name == "~d" and value == 0:
            entry["definitionId"] = definition_id
        elif name == "~U":
            entry["user"] = entry["actor"] = value
        elif name == "~y" and isinstance(value, str) and value in _HISTORY_LONG_TYPES:
            entry["type"] = _HISTORY_LONG_TYPES[value]
        else:
            entry[_HISTORY_LONG_KEYS.get(name, name)] = value
    return entry


def _state_defaults() -> dict[str, Any]:
    """The members of an engine state (one with "format") stored only when they differ
    from these, the values every instance has until it uses subscriptions, multi-
    instance bodies or subprocesses (see Engine.start): ~90 bytes less per instance.
    A fresh copy on each call (a decoded state may change its members)."""
    return {"ended": False, "scopes": {"root": {"el": None, "parent": None, "token": None}}, "subs": {}, "mi": {}}


_STATE_DEFAULTS = _state_defaults()
_STATE_ORDER = ("format", "seq", "ended", "vars", "tokens", "scopes", "subs", "mi")


def state_json(state: Mapping[str, Any]) -> str:
    """An instance's engine state as stored: JSON without its default members."""
    return as_json(_compact_state(state))


def _compact_state(state: Mapping[str, Any]) -> Mapping[str, Any]:
    if "format" in state:
        return {name: value for name, value in state.items() if _STATE_DEFAULTS.get(name, state) != value}
    return state


def state_value(stored: str | None) -> dict[str, Any]:
    """A stored state in full (the inverse of :func:`state_json`; None: no state, {})."""
    if not stored:
        return {}
    return _full_state(json.loads(stored))


def _full_state(state: dict[str, Any]) -> dict[str, Any]:
    if "format" not in state:
        return state
    for name, default in _state_defaults().items():
        if name not in state:
            state[name] = default
    ordered = {name: state.pop(name) for name in _STATE_ORDER if name in state}
    return {**ordered, **state}


#: the instance fields stored in the header of its value, and first in its body, in order
_HEADER_FIELDS = frozenset({"id", "rev", "ended", "history_truncated"})
_BODY_FIELDS = ("definition_id", "process_name", "create_time", "create_by", "state")
#: short names of the other fields in the body (beside SHORT_NAMES)
_BODY_NAMES = {"end_time": "et"}
_BODY_LONG_NAMES = {short: name for name, short in {**SHORT_NAMES, **_BODY_NAMES}.items()}


#: the instance fields in the object after the body's first members: (name, stored name, empty default)
_INSTANCE_REST = tuple(
    (f.name, _BODY_NAMES.get(f.name) or SHORT_NAMES.get(f.name, f.name), f.name in _empty_defaults(Instance))
    for f in fields(Instance)
    if f.name not in _HEADER_FIELDS and f.name not in _BODY_FIELDS
)


def instance_body(instance: Instance) -> str:
    """The body of an instance's stored value: a JSON array of its definition id, process
    name, create time, creator and engine state (without its default members), then, when
    it has any, an object of its other fields but the header's (short names, absent when
    None or an empty default; ``pk`` absent when the definition id is ``<pk>:<version>``).

    The stored value (one string key, written by apply_steps.lua; see load_inst in
    _common.lua) is ``<rev>|<flags>|<active task ids>|<closed records>|<body>``: one key
    instead of a hash, a state string and a set of closed records."""
    rest: dict[str, Any] = {}
    for name, stored, empty in _INSTANCE_REST:
        value = getattr(instance, name)
        if value is None or (empty and value in _EMPTY):
            continue  # a default
        if name == "process_key" and instance.definition_id.rpartition(":")[0] == value:
            continue  # derivable
        rest[stored] = value
    body: list[Any] = [
        instance.definition_id,
        instance.process_name,
        instance.create_time,
        instance.create_by,
        _state_body(instance.state),
    ]
    if rest:
        body.append(rest)
    return as_json(body)


def _state_body(state: Mapping[str, Any]) -> Any:
    """An engine state in an instance's body: one of format 2 with only the known members as
    ``[seq, vars, tokens]`` and an object of its other members not at their default, if any;
    else as :func:`state_json` stores it."""
    if state.get("format") != 2 or not _STATE_CORE <= state.keys() <= _STATE_MEMBERS:
        return _compact_state(state)
    # _compact_state's members but the four of the list
    rest = {n: v for n, v in state.items() if n not in _STATE_LISTED and _STATE_DEFAULTS.get(n, state) != v}
    tokens = {
        name: [token[key] for key in _TOKEN_KEYS] if isinstance(token, dict) and tuple(token) == _TOKEN_KEYS else token
        for name, token in state["tokens"].items()
    }
    return [state["seq"], state["vars"], tokens, rest] if rest else [state["seq"], state["vars"], tokens]


#: the members of a state of format 2 that _state_body needs, may keep, and lists
_STATE_CORE = frozenset({"seq", "vars", "tokens"})
_STATE_MEMBERS = frozenset(_STATE_ORDER)
_STATE_LISTED = frozenset({"format", "seq", "vars", "tokens"})
#: JSON text's scanner (json.loads' own, without its checks for what our compact text never has)
_SCAN: Any = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in its __init__


def _loads(text: str) -> Any:
    """``json.loads(text)``: the scanner's value when it reads all of ``text``; else json.loads
    itself (surrounding whitespace, a byte-order mark, extra data, an error)."""
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


#: a token of exactly these members (in this order) is stored as the list of their values
_TOKEN_KEYS = ("el", "scope", "flow", "task")


def split_instance(stored: str) -> tuple[str, str, str, str, str]:
    """A stored instance value as (rev, flags, active task ids, closed records, body)."""
    rev, flags, tasks, records, body = stored.split("|", 4)
    return rev, flags, tasks, records, body


def decode_instance(instance_id: str, stored: str | None) -> Instance | None:
    """An instance from its stored value (the inverse of apply_steps.lua's write; None: none)."""
    if not stored:
        return None
    rev, flags, _, _, body = split_instance(stored)
    values = _loads(body)
    data = {_BODY_LONG_NAMES.get(name, name): value for name, value in (values[5] if len(values) > 5 else {}).items()}
    data.update(zip(_BODY_FIELDS, values, strict=False))
    state = data["state"]
    if isinstance(state, list):  # see _state_body
        tokens = {
            name: dict(zip(_TOKEN_KEYS, token, strict=True)) if isinstance(token, list) else token
            for name, token in state[2].items()
        }
        if len(state) == 3:  # no other members: _full_state's result made directly
            defaults = _state_defaults()
            data["state"] = {
                "format": 2,
                "seq": state[0],
                "ended": defaults["ended"],
                "vars": state[1],
                "tokens": tokens,
                "scopes": defaults["scopes"],
                "subs": defaults["subs"],
                "mi": defaults["mi"],
            }
        else:
            state = {"format": 2, "seq": state[0], "vars": state[1], "tokens": tokens, **(state[3:] or [{}])[0]}
            data["state"] = _full_state(state)
    else:
        data["state"] = _full_state(state)
    data.setdefault("process_key", data["definition_id"].rpartition(":")[0])
    data.update(id=instance_id, rev=int(rev), ended="e" in flags, history_truncated="t" in flags)
    return build(Instance, data)


def pairs(flat: list[str]) -> dict[str, str]:
    """A flat HGETALL reply from a script ``[f1, v1, f2, v2...]`` as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def script_error(reply: list[Any]) -> BpmError:
    """The domain error for a script's error reply ``[CODE, id, detail]``."""
    code, ident, detail = reply
    if code == "TASK_NOT_FOUND":
        return TaskNotFound(f"task '{ident}' does not exist")
    if code == "TASK_NOT_ACTIVE":
        return TaskNotActive(f"task '{ident}' is {detail}")
    if code == "TASK_ALREADY_CLAIMED":
        return TaskAlreadyClaimed(f"task '{ident}' is claimed by another user")
    if code == "TASK_NOT_CLAIMED":
        return Conflict(f"task '{ident}' is not claimed", code="TASK_NOT_CLAIMED")
    if code == "NOT_CANDIDATE":
        return NotCandidate(f"user '{detail}' is not a candidate for task '{ident}'")
    if code == "INSTANCE_NOT_FOUND":
        return InstanceNotFound(f"process instance '{ident}' does not exist")
    if code == "CONCURRENT_MODIFICATION":
        return ConcurrentModification(f"process instance '{ident}' changed meanwhile")
    if code == "INSTANCE_EXISTS":
        return Conflict(f"process instance '{ident}' already exists", code="INSTANCE_EXISTS")
    if code == "EXTERNAL_TASK_NOT_FOUND":
        return ExternalTaskNotFound(f"external task '{ident}' does not exist")
    if code == "EXTERNAL_TASK_NOT_ACTIVE":
        return TaskNotActive(f"external task '{ident}' is {detail}")
    if code == "LOCK_LOST":
        return Conflict(f"external task '{ident}' is not locked by worker '{detail}'", code="LOCK_LOST")
    raise RuntimeError(f"unexpected reply from a Redis script: {reply!r}")  # pragma: no cover
