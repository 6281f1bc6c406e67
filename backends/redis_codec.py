"""How records and options travel to and from Redis: hash fields, URL options, script replies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from typing import Any
from urllib.parse import unquote, urlsplit

from backends.base import Definition, ExternalTaskRecord, Instance, Task
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
_BOOL_FIELDS = frozenset({"ended", "incident"})


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


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def redact(url: str) -> str:
    """The URL without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    return url.replace(parts.netloc, f"{name}:***@{host}", 1)


def encode(record: Task | Instance | Definition | ExternalTaskRecord) -> dict[str, str]:
    """A record as hash fields: strings, JSON for lists and dicts, None left out."""
    out: dict[str, str] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if value is None:
            continue
        if f.name in _JSON_FIELDS:
            out[f.name] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        elif f.name in _BOOL_FIELDS:
            out[f.name] = "1" if value else "0"
        else:
            out[f.name] = str(value)
    return out


def decode_fields(data: Mapping[str, str]) -> dict[str, Any]:
    """Hash fields back to Python values (the inverse of :func:`encode`)."""
    out: dict[str, Any] = {}
    for name, raw in data.items():
        if name in _JSON_FIELDS:
            out[name] = json.loads(raw)
        elif name in _INT_FIELDS:
            out[name] = int(raw)
        elif name in _BOOL_FIELDS:
            out[name] = raw == "1"
        else:
            out[name] = raw
    return out


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
