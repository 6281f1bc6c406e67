"""The one committer: turn an engine step into backend steps, write them once, then run the outbox.

Every use case that moves instances ends here. :meth:`Committer.commit` plans the
step (with what it causes in parents and children), writes it in one atomic
``apply_steps`` and then hands the plan's outbox (signals to broadcast, new
external tasks for in-process handlers) to the ``after_commit`` hook. Nothing
the outbox does can turn a write that happened into an error: its failures are
logged by the hook, never raised to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from backends import once
from backends.base import Backend, id_scope
from bpm.copying import maker
from bpm.definitions import DefinitionCache
from bpm.engine import Engine, StepResult
from bpm.errors import ConcurrentModification
from bpm.model.spec import ProcessSpec
from bpm.planner import Outbox, Plan, Planner, Preconditions, reaches_others
from bpm.records import Definition, Instance, Step, Task

log = logging.getLogger(__name__)
MAX_RETRIES = 20
#: starts an instance at a start event (:meth:`Committer.start_at`'s signature)
StartAt = Callable[..., str]
#: Preconditions(history=...) and Instance(...), as their classes make them (bpm.copying.maker)
_started_pre = maker(Preconditions, "history")
_make_instance = maker(Instance)


def _no_outbox(outbox: Outbox) -> None:
    """The default ``after_commit`` hook: nothing to carry out."""


class Committer:
    """Plans, writes and follows up engine steps against one backend."""

    def __init__(
        self,
        backend: Backend,
        cache: DefinitionCache,
        engine: Engine,
        now_ms: Callable[[], int],
        *,
        strict_errors: bool = False,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.engine = engine
        self.now_ms = now_ms
        self.planner = Planner(cache, engine, backend.instance, now_ms, strict_errors=strict_errors)
        #: carries out a committed plan's outbox; must not raise (see :meth:`commit`)
        self.after_commit: Callable[[Outbox], None] = _no_outbox
        #: called with the steps of every committed plan, after the write (metrics); must not raise
        self.observers: list[Callable[[list[Step]], None]] = []

    def spec_of(self, instance: Instance) -> ProcessSpec:
        """The parsed spec of the definition an instance runs."""
        return self.planner.spec_of(instance)

    def commit(
        self,
        instance: Instance,
        spec: ProcessSpec,
        result: StepResult,
        pre: Preconditions | None = None,
        *,
        new: bool = False,
    ) -> Plan:
        """Write one engine step, and what it causes in other instances, atomically.

        Raises ConcurrentModification when an instance changed meanwhile (callers retry),
        and the planner's errors (nothing is written then). Once written, the outbox is
        carried out; whatever fails there is logged, never raised.
        """
        if reaches_others(instance, result):
            with id_scope(instance.id):  # children and their tasks in the instance's partition
                plan = self.planner.plan(instance, spec, result, pre, new=new)
        else:  # no engine runs in the plan: no ids are made
            plan = self.planner.plan_alone(instance, spec, result, pre, new=new)
        steps = [*plan.steps.values()]  # (plan.ordered())
        self.backend.apply_steps(steps)
        if once.last_write_replayed():  # an Idempotency-Key retry: the first run wrote it (its outbox)
            return plan
        for observe in self.observers:
            try:
                observe(steps)
            except Exception:  # metrics must never fail a write that happened
                log.exception("a commit observer failed")
        outbox = plan.outbox
        if outbox.thrown or outbox.externals:  # (not outbox.empty)
            self.follow_up(outbox)
        return plan

    def follow_up(self, outbox: Outbox) -> None:
        """Carry out an outbox after its commit; a failure is a log line, not the caller's error."""
        if outbox.empty:
            return
        try:
            self.after_commit(outbox)
        except Exception:  # the write happened: nothing here may undo the caller's success
            log.exception("work after a commit failed (the commit stands)")

    def start_at(
        self,
        definition: Definition,
        spec: ProcessSpec,
        start_event: str | None,
        variables: Mapping[str, Any],
        *,
        user: str | None,
        actor: str | None = None,
        app_name: str | None = None,
        business_key: str | None = None,
    ) -> str:
        """Start an instance at ``start_event`` (None: the none start event); return its id."""
        definition_id = definition.definition_id
        # (what audit makes, inline: once per start)
        now = self.now_ms()  # the start's time: its history entry's and the instance's create_time
        started = {"time": now, "type": "instance.started", "user": user, "actor": actor or user}
        started["definitionId"] = definition_id
        instance_id = self.backend.new_id()
        with id_scope(instance_id):  # its tasks and children in its partition
            result = self.engine.start(spec, variables, user, start_event)
        instance = _make_instance(  # positionally: id, definition_id, process_key, process_name, state, create_time,
            instance_id,  # create_by, app_name, ended, end_time, rev, business_key
            definition_id,
            definition.key,
            spec.label,
            result.state,
            now,
            user or "",
            app_name or definition.app_name,
            False,
            None,
            0,
            business_key or "",
        )
        keyed = once.current()  # the request's Idempotency-Key write, if it has one
        if keyed is not None:
            once.starting(instance.id)  # a later run's replay answers this id
        self.commit(instance, spec, result, _started_pre([started]), new=True)
        # a replayed start: the first run's instance
        return instance_id if keyed is None else once.committed_instance_id(instance_id)

    def audit(
        self,
        kind: str,
        *,
        user: str | None,
        actor: str | None,
        task: Task | None = None,
        now: int | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A history entry of ``kind`` made at ``now`` (None: read the clock); the task's fields when
        ``task`` is given."""
        entry: dict[str, Any] = {"time": self.now_ms() if now is None else now, "type": kind}
        if task is not None:
            entry["taskId"] = task.id
            entry["taskName"] = task.name
            entry["elementId"] = task.task_definition_key
        entry["user"] = user
        entry["actor"] = actor
        if extra:
            entry.update(extra)
        return entry


def retrying(attempt: Callable[[], Any], what: str = "the process instance kept changing; try again") -> Any:
    """Run ``attempt`` again while it raises ConcurrentModification (at most MAX_RETRIES times)."""
    for _ in range(MAX_RETRIES):
        try:
            return attempt()
        except ConcurrentModification:
            continue
    raise ConcurrentModification(what)
