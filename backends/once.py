"""The write of a request that carries an ``Idempotency-Key`` (see :mod:`bpm.api.idempotency`).

While such a request runs, :func:`keyed` holds a :class:`KeyedWrite` for it: a
request id derived from the key's record (the same for every run of the same
request) and how long to keep the commit marker. A backend that can mark a commit
atomically (Redis: ``backends/lua/_once.lua``) gives the request's first write
script that id, keeps the ``done:<id>`` marker with the write, in the write's own
slot, for ``ttl_ms``, and answers a later run's write from the marker instead of
writing again (:meth:`KeyedWrite.replay`). Only the first write that commits is
keyed; later writes of the same request run as usual.

The engine side tells which instance a start writes (:func:`starting`) and needs
two things from a replay: the id of the instance the first run started
(:func:`committed_instance_id`: a re-run plans a new one) and whether
the write it just made was a replay (:func:`last_write_replayed`: then its outbox
and metrics belong to the first run).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from bpm.errors import Conflict


@dataclass(slots=True)
class KeyedWrite:
    """The keyed write of one request (see the module docstring)."""

    request_id: str
    ttl_ms: int
    #: an earlier run of the request is known to have committed: this run may only replay
    must_replay: bool = False
    #: an earlier run of the request may have committed (its lock ran out, or it was released)
    retry: bool = False
    #: this run (a write that finds its own marker is redis-py's retry of the same call)
    run: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: the instance the next write starts (:func:`starting`), kept with its marker
    starting: str = ""
    #: the request's keyed write committed, in this run or (replayed) in an earlier one
    committed: bool = False
    #: ... in an earlier run: this run's write was answered from its marker
    replayed: bool = False
    #: the instance the replayed write created (a start), if any
    instance_id: str | None = None
    #: the last write of this request was a replay
    last_replayed: bool = False

    @property
    def pending(self) -> bool:
        """The request has not committed its keyed write yet (the next write is keyed)."""
        return not self.committed

    def committed_now(self) -> None:
        self.committed, self.last_replayed = True, False

    def replay(self, instance_id: str | None) -> None:
        self.committed = self.replayed = self.last_replayed = True
        self.instance_id = instance_id or None

    def unkeyed_write(self) -> None:
        self.last_replayed = False


_CURRENT: ContextVar[KeyedWrite | None] = ContextVar("bpm_keyed_write", default=None)


def current() -> KeyedWrite | None:
    """The running request's keyed write (None: no Idempotency-Key)."""
    return _CURRENT.get()


def start(write: KeyedWrite | None) -> None:
    """Make ``write`` the running request's (None: none); :func:`keyed` for a ``with`` block."""
    _CURRENT.set(write)


@contextmanager
def keyed(write: KeyedWrite) -> Iterator[KeyedWrite]:
    token = _CURRENT.set(write)
    try:
        yield write
    finally:
        _CURRENT.reset(token)


def starting(instance_id: str) -> None:
    """A start is about to write ``instance_id``: a later run's replay answers this id."""
    write = _CURRENT.get()
    if write is not None and write.pending:
        write.starting = instance_id


def committed_instance_id(planned: str) -> str:
    """The id a start answers: ``planned``, or the first run's when its write was replayed."""
    write = _CURRENT.get()
    if write is not None and write.last_replayed and write.instance_id:
        return write.instance_id
    return planned


def last_write_replayed() -> bool:
    """The request's last write was a replay of an earlier run's commit (nothing was written)."""
    write = _CURRENT.get()
    return write is not None and write.last_replayed


def replay_mismatch() -> Conflict:
    """The error of a write that may only replay (``must_replay``) but finds no marker."""
    return Conflict(
        "an earlier run of this request (same Idempotency-Key) committed a change this run "
        "does not repeat; nothing was written",
        code="IDEMPOTENT_REPLAY_MISMATCH",
    )
