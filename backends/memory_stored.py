"""How the memory backend keeps an instance: a plain tuple of its fields, the state marshalled.

A plain tuple of scalars and bytes is a container the garbage collector stops tracking at the
first collection it survives (CPython untracks exact tuples whose items it need not walk); an
``Instance`` record is tracked for as long as it lives. Ended instances stay for their
retention, so each kept record is walked by every full collection: as tuples they are not
walked at all, and full collections come less often.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from bpm.copying import freeze, maker, thaw
from bpm.records import Instance, InstanceQuery

#: an instance as the memory backend keeps it (the fields of Instance, in order)
StoredInstance = tuple[Any, ...]

#: the fields of Instance, in the order of the stored tuple (checked against the record below)
FIELDS = (
    "id",
    "definition_id",
    "process_key",
    "process_name",
    "state",
    "create_time",
    "create_by",
    "app_name",
    "ended",
    "end_time",
    "rev",
    "business_key",
    "parent_id",
    "history_truncated",
)
if tuple(f.name for f in fields(Instance)) != FIELDS:  # pragma: no cover - a changed record
    raise ImportError("backends.memory_stored.FIELDS no longer lists the fields of Instance")
ID, PROCESS_KEY, STATE, CREATE_TIME, ENDED, REV, BUSINESS_KEY, TRUNCATED = (
    FIELDS.index(name)
    for name in ("id", "process_key", "state", "create_time", "ended", "rev", "business_key", "history_truncated")
)
#: an Instance of the stored fields, positionally (bpm.copying.maker: no type.__call__)
_instance = maker(Instance, *FIELDS)


def freeze_instance(instance: Instance, history_truncated: bool) -> StoredInstance:
    """The stored form of ``instance`` (its state marshalled: bpm.copying.freeze)."""
    i = instance
    return (
        i.id,
        i.definition_id,
        i.process_key,
        i.process_name,
        freeze(i.state),
        i.create_time,
        i.create_by,
        i.app_name,
        i.ended,
        i.end_time,
        i.rev,
        i.business_key,
        i.parent_id,
        history_truncated,
    )


def thaw_instance(stored: StoredInstance) -> Instance:
    """A stored instance as callers get it: a new record with a fresh copy of the state."""
    instance: Instance = _instance(*stored)
    instance.state = thaw(stored[STATE])
    return instance


def matching(query: InstanceQuery, stored: Iterable[StoredInstance]) -> list[StoredInstance]:
    """The stored instances ``query`` matches, in its order (``query.matches_fields`` and
    ``query.sort_key`` read on the tuples: no record made per stored instance; tested against
    them, and against the fields InstanceQuery has)."""
    test = query.matches_fields
    found = [s for s in stored if test(s[PROCESS_KEY], s[BUSINESS_KEY], s[ENDED])]
    found.sort(key=_newest_first)
    return found


def _newest_first(stored: StoredInstance) -> tuple[int, str]:
    return (-stored[CREATE_TIME], stored[ID])


def truncated(stored: StoredInstance) -> StoredInstance:
    """``stored`` with ``history_truncated`` set."""
    return (*stored[:TRUNCATED], True, *stored[TRUNCATED + 1 :])
