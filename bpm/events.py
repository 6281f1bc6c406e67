"""Use cases of events and service work: timers, messages, signals, external tasks.

Mixed into :class:`bpm.runtime.Runtime`. Exactly-once firing rests on the
instance revision: two workers may both compute a timer's step, but only one
write succeeds; the other re-reads, finds the subscription gone and stops.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from backends.base import Definition, ExternalTaskRecord, Instance, id_scope, start_timer_member
from bpm.engine import timers
from bpm.engine.engine import StepResult, Subscription, Thrown
from bpm.errors import (
    BpmError,
    ConcurrentModification,
    Conflict,
    ExternalTaskNotFound,
    NotFound,
    TaskNotActive,
    Unprocessable,
    ValidationError,
)
from bpm.model.spec import ProcessSpec, StartEvent
from bpm.planner import Preconditions

if TYPE_CHECKING:
    from bpm.runtime import Runtime

log = logging.getLogger(__name__)
MAX_RETRIES = 20
#: failures of one timer's step before it stops being due (kept as an incident in the state)
TIMER_RETRIES = 3
TIMER_BACKOFF_MS = 60_000
MAX_SIGNAL_DEPTH = 10
IN_PROCESS_WORKER = "in-process"

#: a Python handler for an external-task topic: variables in, variables out
Handler = Callable[[Mapping[str, Any]], Mapping[str, Any] | None]


class EventUseCases:
    """Timers, messages, signals and external tasks (see the module docstring)."""

    handlers: dict[str, Handler]

    # -- helpers the mixin expects from Runtime ---------------------------------------

    def _self(self) -> Runtime:
        return self  # type: ignore[return-value]

    def _retrying(self, attempt: Callable[[], Any]) -> Any:
        for _ in range(MAX_RETRIES):
            try:
                return attempt()
            except ConcurrentModification:
                continue
        raise ConcurrentModification("the process instance kept changing; try again")

    # -- timers -----------------------------------------------------------------------

    def fire_due_timers(self, now: int | None = None, limit: int = 100) -> int:
        """Fire every timer due at ``now`` (default: the clock); return how many fired."""
        rt = self._self()
        now = rt.now_ms() if now is None else now
        fired = 0
        for member, due in rt.backend.due_timers(now, limit):
            kind, _, rest = member.partition("|")
            first, _, second = rest.partition("|")
            try:
                if kind == "start":
                    fired += self._fire_start_timer(member, first, second, due)
                else:
                    fired += self._fire_instance_timer(member, first, second, due)
            except BpmError as exc:  # one broken timer must not stop the others
                log.warning("timer %s could not fire: %s", member, exc.message)
        return fired

    def _fire_instance_timer(self, member: str, instance_id: str, sub_id: str, due: int) -> int:
        rt = self._self()

        def attempt() -> int:
            instance = rt.backend.instance(instance_id)
            sub = (instance.state.get("subs", {}) if instance else {}).get(sub_id)
            if instance is None or instance.ended or sub is None or sub.get("due") != due:
                rt.backend.take_timer(member, due, None)  # stale: fired or moved meanwhile
                return 0
            spec = rt.spec_of(instance)
            try:
                with id_scope(instance.id):
                    result = rt.engine.trigger(spec, instance.state, sub_id)
            except ConcurrentModification:
                raise
            except BpmError as exc:
                self._timer_failed(instance, spec, sub_id, exc)
                return 0
            rt.commit(instance, spec, result)
            return 1

        return int(self._retrying(attempt))

    def _timer_failed(self, instance: Instance, spec: ProcessSpec, sub_id: str, error: BpmError) -> None:
        """A timer whose step fails is retried later (back-off), and after TIMER_RETRIES
        failures stops being due: it stays waiting in the instance, marked with the error,
        so it never starves the timers behind it."""
        rt = self._self()
        state = copy.deepcopy(instance.state)
        sub = state["subs"][sub_id]
        failures = int(sub.get("failures", 0)) + 1
        sub.update(failures=failures, error=error.message)
        now = rt.now_ms()
        entry = {"time": now, "type": "timer.failed", "elementId": sub["el"], "errorCode": error.code,
                 "message": error.message, "failures": failures}
        index = Subscription(sub_id, "timer", sub["el"], None, sub["due"])
        result = StepResult(state, history=[entry])
        if failures >= TIMER_RETRIES:
            sub["incident"] = True
            result.unsubscribed.append(index)
        else:
            sub["due"] = now + TIMER_BACKOFF_MS * 2 ** (failures - 1)
            result.subscribed.append(Subscription(sub_id, "timer", sub["el"], None, sub["due"]))
        log.warning("timer %s of instance %s failed (%s); failure %d", sub_id, instance.id, error.code, failures)
        rt.commit(instance, spec, result)

    def _fire_start_timer(self, member: str, definition_id: str, element_id: str, due: int) -> int:
        rt = self._self()
        try:
            definition = rt.cache.get(definition_id)
        except NotFound:
            rt.backend.remove_timer(member)
            return 0
        spec = rt.cache.spec(definition)
        start = spec.elements.get(element_id)
        if not isinstance(start, StartEvent) or start.event is None:
            rt.backend.remove_timer(member)
            return 0
        next_due = _next_start_due(start, definition, due, rt.now_ms())
        if not rt.backend.take_timer(member, due, next_due):
            return 0  # another worker took it
        try:
            rt.start_at(definition, spec, element_id, {}, user=None)
        except BpmError:
            if next_due is None:  # a one-off start is tried again later rather than lost
                rt.backend.schedule_timer(member, rt.now_ms() + TIMER_BACKOFF_MS)
            raise
        return 1

    def schedule_start_timers(self, deployed: Iterable[Definition]) -> None:
        """Schedule the timer start events of newly deployed versions; drop the old versions'."""
        rt = self._self()
        for definition in deployed:
            for old in rt.cache.versions(definition.key):
                if old.version < definition.version:
                    for start in _starts_of(rt.cache.spec(old), "timer"):
                        rt.backend.remove_timer(start_timer_member(old.definition_id, start.id))
            for start in _starts_of(rt.cache.spec(definition), "timer"):
                due = _first_start_due(start, definition)
                if due is not None:
                    rt.backend.schedule_timer(start_timer_member(definition.definition_id, start.id), due)

    def incidents(self, instance_id: str) -> list[dict[str, Any]]:
        """The instance's incidents: external tasks out of retries and timers that kept failing."""
        rt = self._self()
        instance = rt.instance(instance_id)
        found = [
            {"id": e.id, "type": "externalTask", "element_id": e.element_id, "topic": e.topic,
             "error_message": e.error_message, "error_details": e.error_details}
            for e in rt.backend.instance_externals(instance_id) if e.incident
        ]
        found += [
            {"id": sub_id, "type": "timer", "element_id": sub["el"], "topic": None,
             "error_message": sub.get("error"), "error_details": None}
            for sub_id, sub in instance.state.get("subs", {}).items() if sub.get("incident")
        ]
        return found

    def retry_timer(self, instance_id: str, sub_id: str, *, actor: str | None = None) -> None:
        """Resolve a timer incident: the timer is due again now (three more tries)."""
        rt = self._self()

        def attempt() -> None:
            instance = rt.instance(instance_id)
            sub = instance.state.get("subs", {}).get(sub_id)
            if sub is None or sub.get("kind") != "timer" or not sub.get("incident"):
                raise NotFound(f"instance '{instance_id}' has no timer incident '{sub_id}'", code="INCIDENT_NOT_FOUND")
            state = copy.deepcopy(instance.state)
            timer = state["subs"][sub_id]
            for key in ("incident", "error", "failures"):
                timer.pop(key, None)
            timer["due"] = rt.now_ms()
            entry = {"time": timer["due"], "type": "timer.retried", "elementId": timer["el"], "user": None,
                     "actor": actor}
            result = StepResult(state, subscribed=[Subscription(sub_id, "timer", timer["el"], None, timer["due"])],
                                history=[entry])
            rt.commit(instance, rt.spec_of(instance), result)

        self._retrying(attempt)

    # -- messages and signals ---------------------------------------------------------

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

        Raises NotFound (MESSAGE_NOT_CORRELATED) when nothing matches and Conflict
        (MESSAGE_AMBIGUOUS) when several waits match and ``all_matches`` is false.
        """
        matches = self._message_waits(name, business_key, instance_id, correlation)
        if not matches:
            return self._start_by_message(name, business_key, instance_id, variables, user)
        if len(matches) > 1 and not all_matches:
            raise Conflict(f"{len(matches)} waits match message '{name}'; narrow the correlation",
                           code="MESSAGE_AMBIGUOUS")
        delivered = [self._trigger(iid, sub_id, variables) for iid, sub_id in matches]
        return {"resultType": "Execution", "instanceIds": sorted({i for i in delivered if i})}

    def _message_waits(
        self,
        name: str,
        business_key: str | None,
        instance_id: str | None,
        correlation: Mapping[str, Any] | None,
    ) -> list[tuple[str, str]]:
        rt = self._self()
        waits = rt.backend.subscriptions("message", name)
        if instance_id is not None:
            waits = [w for w in waits if w[0] == instance_id]
        ids = list(dict.fromkeys(w[0] for w in waits))
        instances = dict(zip(ids, rt.backend.instances(ids), strict=True)) if ids else {}
        matches = []
        for iid, sub_id in waits:
            instance = instances.get(iid)
            if instance is None or instance.ended:
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
        rt = self._self()
        if instance_id is None:
            rt.cache.refresh_if_stale()
            starts = [(d, s, e) for d, s, e in self._event_starts("message") if e.event and e.event.ref == name]
            if len(starts) > 1:
                raise Conflict(f"several processes start on message '{name}'", code="MESSAGE_AMBIGUOUS")
            if starts:
                definition, spec, start = starts[0]
                new_id = rt.start_at(definition, spec, start.id, variables or {}, user=user,
                                     business_key=business_key)
                return {"resultType": "ProcessDefinition", "instanceIds": [new_id]}
        raise NotFound(f"no process instance or start event waits for message '{name}'",
                       code="MESSAGE_NOT_CORRELATED")

    def _event_starts(self, kind: str) -> list[tuple[Definition, ProcessSpec, StartEvent]]:
        rt = self._self()
        found = []
        for definition in rt.cache.latest():
            spec = rt.cache.spec(definition)
            found.extend((definition, spec, start) for start in _starts_of(spec, kind))
        return found

    def _trigger(self, instance_id: str, sub_id: str, variables: Mapping[str, Any] | None) -> str | None:
        rt = self._self()

        def attempt() -> str | None:
            instance = rt.backend.instance(instance_id)
            if instance is None or instance.ended or sub_id not in instance.state.get("subs", {}):
                return None
            spec = rt.spec_of(instance)
            with id_scope(instance.id):
                result = rt.engine.trigger(spec, instance.state, sub_id, variables)
            rt.commit(instance, spec, result)
            return instance_id

        return self._retrying(attempt)  # type: ignore[no-any-return]

    def broadcast_signal(
        self, name: str, variables: Mapping[str, Any] | None = None, *, user: str | None = None, _depth: int = 0
    ) -> dict[str, Any]:
        """Deliver a signal to every wait for it and start every process with that signal start."""
        rt = self._self()
        if _depth > MAX_SIGNAL_DEPTH:
            raise Unprocessable(f"signal '{name}' keeps throwing signals ({MAX_SIGNAL_DEPTH} levels)",
                                code="SIGNAL_LOOP")
        self._signal_depth = _depth
        triggered = [self._trigger(iid, sub_id, variables) for iid, sub_id in rt.backend.subscriptions("signal", name)]
        rt.cache.refresh_if_stale()
        started = [
            rt.start_at(definition, spec, start.id, variables or {}, user=user)
            for definition, spec, start in self._event_starts("signal")
            if start.event is not None and start.event.ref == name
        ]
        return {"triggered": len([t for t in triggered if t]), "instanceIds": started}

    def after_commit(self, thrown: list[Thrown], externals: list[ExternalTaskRecord]) -> None:
        """Broadcast the signals a step threw, and run in-process handlers of new external tasks."""
        depth = getattr(self, "_signal_depth", 0)
        for event in thrown:
            if event.kind == "signal" and event.name:
                self.broadcast_signal(event.name, None, _depth=depth + 1)
        self._signal_depth = depth
        for external in externals:
            if external.topic in getattr(self, "handlers", {}):
                self._run_handler(external)

    # -- external tasks ---------------------------------------------------------------

    def register_handler(self, topic: str, handler: Handler) -> None:
        """Run ``handler`` in-process for new external tasks of ``topic`` (instead of a worker)."""
        self.handlers = {**getattr(self, "handlers", {}), topic: handler}

    def _run_handler(self, external: ExternalTaskRecord) -> None:
        rt = self._self()
        locked = rt.backend.fetch_and_lock(IN_PROCESS_WORKER, {external.topic: 60_000}, 50, rt.now_ms())
        for task in (t for t in locked if t.id == external.id):
            variables = self.external_variables(task)
            try:
                output = self.handlers[task.topic](variables)
            except Exception as exc:
                log.exception("in-process handler for topic %s failed", task.topic)
                self.fail_external(task.id, IN_PROCESS_WORKER, 0, 0, f"{type(exc).__name__}: {exc}", None)
                continue
            self.complete_external(task.id, IN_PROCESS_WORKER, dict(output or {}))
        for task in (t for t in locked if t.id != external.id):
            rt.backend.unlock_external(task.id)

    def external_variables(self, task: ExternalTaskRecord) -> dict[str, Any]:
        rt = self._self()
        instance = rt.backend.instance(task.instance_id)
        variables = copy.deepcopy(instance.state.get("vars", {})) if instance else {}
        variables.update(copy.deepcopy(task.variables))
        return variables

    def fetch_and_lock(
        self, worker: str, topics: Mapping[str, int], max_tasks: int = 10
    ) -> list[tuple[ExternalTaskRecord, dict[str, Any]]]:
        """Lock up to ``max_tasks`` tasks of ``topics`` (name -> lock ms) for ``worker``."""
        rt = self._self()
        if not worker or not topics:
            raise ValidationError("a worker id and at least one topic are required")
        locked = rt.backend.fetch_and_lock(worker, dict(topics), max_tasks, rt.now_ms())
        return [(task, self.external_variables(task)) for task in locked]

    def _external(self, external_id: str) -> ExternalTaskRecord:
        task = self._self().backend.external_task(external_id)
        if task is None:
            raise ExternalTaskNotFound(f"external task '{external_id}' does not exist")
        if not task.active:
            raise TaskNotActive(f"external task '{external_id}' is {task.status}")
        return task

    def _external_step(
        self,
        external_id: str,
        worker: str,
        run: Callable[[ProcessSpec, Instance], StepResult],
        history: dict[str, Any],
    ) -> None:
        rt = self._self()

        def attempt() -> None:
            task = self._external(external_id)
            if task.worker != worker:
                raise Conflict(f"external task '{external_id}' is not locked by worker '{worker}'",
                               code="LOCK_LOST")
            instance = rt.instance(task.instance_id)
            spec = rt.spec_of(instance)
            entry = {**history, "taskId": task.id, "taskName": task.name, "elementId": task.element_id}
            pre = Preconditions(complete_external=external_id, external_worker=worker, history=[entry])
            with id_scope(instance.id):
                result = run(spec, instance)
            rt.commit(instance, spec, result, pre)

        self._retrying(attempt)

    def complete_external(self, external_id: str, worker: str, variables: Mapping[str, Any] | None = None) -> None:
        """The worker that holds the lock completes the task; the instance runs on."""
        rt = self._self()
        entry = {"time": rt.now_ms(), "type": "external.completed", "user": None, "actor": worker}
        self._external_step(
            external_id, worker,
            lambda spec, inst: rt.engine.complete_external(spec, inst.state, external_id, variables),
            entry,
        )

    def bpmn_error_external(
        self,
        external_id: str,
        worker: str,
        code: str,
        message: str = "",
        variables: Mapping[str, Any] | None = None,
    ) -> None:
        """The worker reports a BPMN error, caught by a boundary or an event subprocess."""
        rt = self._self()
        entry = {"time": rt.now_ms(), "type": "external.bpmnError", "user": None, "actor": worker,
                 "errorCode": code}
        self._external_step(
            external_id, worker,
            lambda spec, inst: rt.engine.throw_error(spec, inst.state, external_id, code, message, variables),
            entry,
        )

    def fail_external(
        self,
        external_id: str,
        worker: str,
        retries: int,
        retry_timeout: int,
        error_message: str | None,
        error_details: str | None,
    ) -> ExternalTaskRecord:
        """Report a failure: retried later while ``retries`` > 0, else an incident."""
        rt = self._self()
        return rt.backend.fail_external(external_id, worker, max(0, retries), max(0, retry_timeout),
                                        error_message, error_details, rt.now_ms())

    def set_external_retries(self, external_id: str, retries: int) -> ExternalTaskRecord:
        """Resolve an incident (or change the retries) of an external task."""
        rt = self._self()
        if retries < 0:
            raise ValidationError("retries must be 0 or more")
        self._external(external_id)
        return rt.backend.set_external_retries(external_id, retries, rt.now_ms())

    def extend_external_lock(self, external_id: str, worker: str, duration: int) -> ExternalTaskRecord:
        rt = self._self()
        return rt.backend.extend_external_lock(external_id, worker, duration, rt.now_ms())

    def unlock_external(self, external_id: str) -> ExternalTaskRecord:
        self._external(external_id)
        return self._self().backend.unlock_external(external_id)

    def external_task(self, external_id: str) -> ExternalTaskRecord:
        """One external task, active or closed. Raises ExternalTaskNotFound."""
        task = self._self().backend.external_task(external_id)
        if task is None:
            raise ExternalTaskNotFound(f"external task '{external_id}' does not exist")
        return task

    def instance_externals(self, instance_id: str) -> list[ExternalTaskRecord]:
        """The instance's active external tasks, incidents included. Raises InstanceNotFound."""
        rt = self._self()
        rt.instance(instance_id)
        return rt.backend.instance_externals(instance_id)


def _starts_of(spec: ProcessSpec, kind: str) -> list[StartEvent]:
    """The process-level start events of ``spec`` that wait for a ``kind`` event."""
    starts = (spec.element(e) for e in spec.event_start_ids)
    return [s for s in starts if isinstance(s, StartEvent) and s.event is not None and s.event.kind == kind]


def _timer_text(start: StartEvent) -> tuple[str, str]:
    definition = start.event
    assert definition is not None
    for kind, template in (("cycle", definition.time_cycle), ("date", definition.time_date),
                           ("duration", definition.time_duration)):
        if template is not None:
            return kind, str(template.evaluate({}))
    raise Unprocessable(f"timer start event '{start.id}' has no date, duration or cycle")


def _first_start_due(start: StartEvent, definition: Definition) -> int | None:
    kind, text = _timer_text(start)
    if kind == "cycle":
        return timers.parse_cycle(text, definition.deploy_time).first_due
    return timers.due_from_value(text, definition.deploy_time)


def _next_start_due(start: StartEvent, definition: Definition, due: int, now: int) -> int | None:
    """After a firing at ``due``: the next due of a cycle, counted from the deployment."""
    kind, text = _timer_text(start)
    if kind != "cycle":
        return None
    cycle = timers.parse_cycle(text, definition.deploy_time)
    fired = (due - cycle.first_due) // cycle.period_ms + 1
    remaining = None if cycle.remaining is None else cycle.remaining - (fired - 1)
    following = cycle.next_after(due, remaining)
    return None if following is None else following[0]
