"""Use cases of messages and signals, and the outbox of every commit.

A signal thrown by a step is broadcast after that step's commit (the outbox), so
a signal that keeps throwing signals is stopped at :data:`MAX_SIGNAL_DEPTH` and
logged, never the error of the request whose commit threw it. The depth belongs
to the request: a context variable, set around each nested broadcast and reset
afterwards, so no thread or later request ever sees another one's depth.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from backends.base import id_scope
from bpm.committer import Committer, StartAt, retrying
from bpm.errors import Conflict, NotFound, Unprocessable
from bpm.model.spec import ProcessSpec, StartEvent
from bpm.planner import Outbox
from bpm.records import Definition, ExternalTaskRecord
from bpm.timer_cases import starts_of

log = logging.getLogger(__name__)
MAX_SIGNAL_DEPTH = 10

#: how many signal broadcasts deep the current request (or worker round) is
_signal_depth: contextvars.ContextVar[int] = contextvars.ContextVar("bpm_signal_depth", default=0)


@contextmanager
def _deeper() -> Iterator[int]:
    depth = _signal_depth.get() + 1
    token = _signal_depth.set(depth)
    try:
        yield depth
    finally:
        _signal_depth.reset(token)


class MessageCases:
    """Correlate messages, broadcast signals, carry out outboxes."""

    def __init__(
        self,
        committer: Committer,
        run_handlers: Callable[[list[ExternalTaskRecord]], None],
        start_at: StartAt | None = None,
    ) -> None:
        self.committer = committer
        self.run_handlers = run_handlers
        self.start_at: StartAt = start_at or committer.start_at

    # -- the outbox ---------------------------------------------------------------------

    def after_commit(self, outbox: Outbox) -> None:
        """Broadcast the signals a step threw, and run in-process handlers of its new external tasks.

        Each piece is guarded on its own: a failure is logged and the rest goes on.
        """
        for event in outbox.thrown:
            if event.kind == "signal" and event.name:
                try:
                    with _deeper():
                        self.broadcast_signal(event.name, None)
                except Exception as exc:
                    log.error(
                        "signal %r thrown by %s was not fully delivered: %s",
                        event.name,
                        event.element_id,
                        getattr(exc, "message", exc),
                        exc_info=not isinstance(exc, Unprocessable),
                    )
        if outbox.externals:
            try:
                self.run_handlers(outbox.externals)
            except Exception:
                log.exception("in-process handlers after a commit failed")

    # -- messages -----------------------------------------------------------------------

    def correlate_message(
        self,
        name: str,
        *,
        business_key: str | None = None,
        instance_id: str | None = None,
        correlation: Mapping[str, Any] | None = None,
        variables: Mapping[str, Any] | None = None,
        all_matches: bool = False,
        user: str | None = None,
    ) -> dict[str, Any]:
        """Deliver a message to the one instance waiting for it (by business key, instance id
        or variables), else start the process with that message start event.

        Raises NotFound (MESSAGE_NOT_CORRELATED) when nothing matches, also when another
        request took the matching wait meanwhile and a second look finds none, and
        Conflict (MESSAGE_AMBIGUOUS) when several waits match and ``all_matches`` is false.
        """
        matches = self._message_waits(name, business_key, instance_id, correlation)
        if not matches:
            return self._start_by_message(name, business_key, instance_id, variables, user)
        for _ in range(2):  # a correlation that lost a race to another one looks once more
            if len(matches) > 1 and not all_matches:
                raise Conflict(
                    f"{len(matches)} waits match message '{name}'; narrow the correlation", code="MESSAGE_AMBIGUOUS"
                )
            delivered = sorted({i for i in (self.trigger(iid, sub_id, variables) for iid, sub_id in matches) if i})
            if delivered:
                return {"resultType": "Execution", "instanceIds": delivered}
            matches = self._message_waits(name, business_key, instance_id, correlation)
        raise NotFound(
            f"no process instance waits for message '{name}' any more (another correlation took it)",
            code="MESSAGE_NOT_CORRELATED",
        )

    def _message_waits(
        self,
        name: str,
        business_key: str | None,
        instance_id: str | None,
        correlation: Mapping[str, Any] | None,
    ) -> list[tuple[str, str]]:
        backend = self.committer.backend
        waits = backend.subscriptions("message", name)
        if instance_id is not None:
            waits = [w for w in waits if w[0] == instance_id]
        ids = list(dict.fromkeys(w[0] for w in waits))
        instances = dict(zip(ids, backend.instances(ids), strict=True)) if ids else {}
        matches = []
        for iid, sub_id in waits:
            instance = instances.get(iid)
            if instance is None or instance.ended or sub_id not in instance.state.get("subs", {}):
                continue
            if business_key is not None and instance.business_key != business_key:
                continue
            state_vars = instance.state.get("vars", {})
            if correlation and any(state_vars.get(k) != v for k, v in correlation.items()):
                continue
            matches.append((iid, sub_id))
        return matches

    def _start_by_message(
        self,
        name: str,
        business_key: str | None,
        instance_id: str | None,
        variables: Mapping[str, Any] | None,
        user: str | None,
    ) -> dict[str, Any]:
        c = self.committer
        if instance_id is None:
            c.cache.refresh_if_stale()
            starts = [(d, s, e) for d, s, e in self.event_starts("message") if e.event and e.event.ref == name]
            if len(starts) > 1:
                raise Conflict(f"several processes start on message '{name}'", code="MESSAGE_AMBIGUOUS")
            if starts:
                definition, spec, start = starts[0]
                new_id = self.start_at(
                    definition, spec, start.id, variables or {}, user=user, business_key=business_key
                )
                return {"resultType": "ProcessDefinition", "instanceIds": [new_id]}
        raise NotFound(f"no process instance or start event waits for message '{name}'", code="MESSAGE_NOT_CORRELATED")

    def event_starts(self, kind: str) -> list[tuple[Definition, ProcessSpec, StartEvent]]:
        cache = self.committer.cache
        found: list[tuple[Definition, ProcessSpec, StartEvent]] = []
        for definition in cache.latest():
            spec = cache.spec(definition)
            found.extend((definition, spec, start) for start in starts_of(spec, kind))
        return found

    def trigger(self, instance_id: str, sub_id: str, variables: Mapping[str, Any] | None) -> str | None:
        """Deliver one wait; the instance id, or None when it no longer waits (another took it)."""
        c = self.committer

        def attempt() -> str | None:
            instance = c.backend.instance(instance_id)
            if instance is None or instance.ended or sub_id not in instance.state.get("subs", {}):
                return None
            spec = c.spec_of(instance)
            with id_scope(instance.id):
                result = c.engine.trigger(spec, instance.state, sub_id, variables)
            c.commit(instance, spec, result)
            return instance_id

        return retrying(attempt)  # type: ignore[no-any-return]

    # -- signals ------------------------------------------------------------------------

    def broadcast_signal(
        self, name: str, variables: Mapping[str, Any] | None = None, *, user: str | None = None
    ) -> dict[str, Any]:
        """Deliver a signal to every wait for it and start every process with that signal start.

        Raises Unprocessable (SIGNAL_LOOP) only inside the outbox of an earlier commit,
        when signals keep throwing signals deeper than MAX_SIGNAL_DEPTH.
        """
        depth = _signal_depth.get()
        if depth > MAX_SIGNAL_DEPTH:
            raise Unprocessable(
                f"signal '{name}' keeps throwing signals ({MAX_SIGNAL_DEPTH} levels)", code="SIGNAL_LOOP"
            )
        c = self.committer
        waits = c.backend.subscriptions("signal", name)
        triggered = [self.trigger(iid, sub_id, variables) for iid, sub_id in waits]
        c.cache.refresh_if_stale()
        started = [
            self.start_at(definition, spec, start.id, variables or {}, user=user)
            for definition, spec, start in self.event_starts("signal")
            if start.event is not None and start.event.ref == name
        ]
        return {"triggered": len([t for t in triggered if t]), "instanceIds": started}
