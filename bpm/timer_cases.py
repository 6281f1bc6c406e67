"""Use cases of timers: fire what is due, back off and record failures, schedule timer starts.

Exactly-once firing rests on the instance revision: two workers may both compute a
timer's step, but only one write succeeds; the other re-reads, finds the
subscription gone and stops.

Each timer's step, its commit included, runs inside its own failure handling: any
exception (an engine or planner error, a backend error on read, take or commit)
backs that timer off, and after :data:`TIMER_RETRIES` failures the timer becomes an
incident (kept in the instance state, no longer due). When even the failure cannot
be written (the backend refuses writes), the timer is held back in this process
instead, so it never stays first in line and starves the timers behind it.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from backends.base import id_scope
from bpm.committer import Committer, StartAt, retrying
from bpm.engine import timers
from bpm.engine.engine import StepResult, Subscription, next_cycle_due
from bpm.engine.evaluation import evaluation_context
from bpm.errors import BpmError, NotFound, Unprocessable
from bpm.expressions.beans import BeanRegistry
from bpm.model.spec import ProcessSpec, StartEvent
from bpm.records import Definition, start_timer_member

log = logging.getLogger(__name__)
#: failures of one timer's step before it stops being due (kept as an incident in the state)
TIMER_RETRIES = 3
TIMER_BACKOFF_MS = 60_000
#: the longest back-off of a timer held in this process (its failure could not be written)
MAX_HOLD_MS = 3_600_000


@dataclass(slots=True)
class _Hold:
    """A timer this process skips until ``until``: its failure could not be recorded in the backend."""

    failures: int
    until: int


def starts_of(spec: ProcessSpec, kind: str) -> list[StartEvent]:
    """The process-level start events of ``spec`` that wait for a ``kind`` event."""
    starts = (spec.element(e) for e in spec.event_start_ids)
    return [s for s in starts if isinstance(s, StartEvent) and s.event is not None and s.event.kind == kind]


def error_text(exc: BaseException) -> tuple[str, str]:
    """An error code and message for the history, for domain and other errors alike."""
    if isinstance(exc, BpmError):
        return exc.code, exc.message
    return type(exc).__name__, str(exc) or type(exc).__name__


class TimerCases:
    """Fires due timers against one committer; see the module docstring."""

    def __init__(self, committer: Committer, start_at: StartAt | None = None) -> None:
        self.committer = committer
        self.start_at: StartAt = start_at or committer.start_at
        self._holds: dict[str, _Hold] = {}
        self._lock = threading.Lock()

    # -- firing -----------------------------------------------------------------------

    def fire_due(self, now: int | None = None, limit: int = 100) -> int:
        """Fire up to ``limit`` timers due at ``now`` (default: the clock); return how many fired.

        A failing timer never stops the others; the backend's own errors while listing
        what is due are raised (the worker logs them and tries again next round).
        """
        now = self.committer.now_ms() if now is None else now
        held = self._held(now)
        fired = 0
        tried = 0
        for member, due in self.committer.backend.due_timers(now, limit + len(held)):
            if member in held:
                continue
            if tried >= limit:
                break
            tried += 1
            fired += self._fire_guarded(member, due)
        return fired

    def _held(self, now: int) -> set[str]:
        """The timers held back now; holds long over are forgotten (their timer fired or went away)."""
        with self._lock:
            for member in [m for m, hold in self._holds.items() if hold.until + 2 * MAX_HOLD_MS < now]:
                del self._holds[member]
            return {member for member, hold in self._holds.items() if hold.until > now}

    def _fire_guarded(self, member: str, due: int) -> int:
        try:
            fired = self._fire(member, due)
        except Exception as exc:  # any failure of this one timer: back it off, go on with the others
            self._failed(member, due, exc)
            return 0
        with self._lock:
            self._holds.pop(member, None)
        return fired

    def _fire(self, member: str, due: int) -> int:
        kind, _, rest = member.partition("|")
        first, _, second = rest.partition("|")
        if kind == "start":
            return self._fire_start_timer(member, first, second, due)
        return self._fire_instance_timer(member, first, second, due)

    def _fire_instance_timer(self, member: str, instance_id: str, sub_id: str, due: int) -> int:
        c = self.committer

        def attempt() -> int:
            instance = c.backend.instance(instance_id)
            sub = (instance.state.get("subs", {}) if instance else {}).get(sub_id)
            if instance is None or instance.ended or sub is None or sub.get("due") != due:
                c.backend.take_timer(member, due, None)  # stale: fired or moved meanwhile
                return 0
            spec = c.spec_of(instance)
            with id_scope(instance.id):
                result = c.engine.trigger(spec, instance.state, sub_id)
            c.commit(instance, spec, result)
            return 1

        return int(retrying(attempt))

    def _fire_start_timer(self, member: str, definition_id: str, element_id: str, due: int) -> int:
        c = self.committer
        try:
            definition = c.cache.get(definition_id)
        except NotFound:
            c.backend.remove_timer(member)
            return 0
        spec = c.cache.spec(definition)
        start = spec.elements.get(element_id)
        if not isinstance(start, StartEvent) or start.event is None:
            c.backend.remove_timer(member)
            return 0
        next_due = _next_start_due(start, definition, due, c.now_ms(), c.engine.beans)
        if not c.backend.take_timer(member, due, next_due):
            return 0  # another worker took it
        try:
            self.start_at(definition, spec, element_id, {}, user=None)
        except Exception:
            if next_due is None:  # a one-off start is tried again later rather than lost
                c.backend.schedule_timer(member, c.now_ms() + TIMER_BACKOFF_MS)
            raise
        return 1

    # -- failures ---------------------------------------------------------------------

    def _failed(self, member: str, due: int, exc: Exception) -> None:
        code, message = error_text(exc)
        if isinstance(exc, BpmError):
            log.warning("timer %s could not fire: %s %s", member, code, message)
        else:
            log.error("timer %s could not fire", member, exc_info=exc)
        kind, _, rest = member.partition("|")
        instance_id, _, sub_id = rest.partition("|")
        try:
            if kind == "inst" and self._record_failure(instance_id, sub_id, due, code, message):
                with self._lock:
                    self._holds.pop(member, None)
                return
        except Exception:
            log.exception("timer %s: its failure could not be recorded either", member)
        self._hold(member)

    def _hold(self, member: str) -> None:
        """Skip the timer in this process for a growing while (its failure was not written)."""
        now = self.committer.now_ms()
        with self._lock:
            failures = self._holds[member].failures + 1 if member in self._holds else 1
            wait = min(TIMER_BACKOFF_MS * 2 ** min(failures - 1, 16), MAX_HOLD_MS)
            self._holds[member] = _Hold(failures, now + wait)
        log.warning("timer %s held back in this process for %d ms (failure %d)", member, wait, failures)

    def _record_failure(self, instance_id: str, sub_id: str, due: int, code: str, message: str) -> bool:
        """Back the timer off in the instance (an incident after TIMER_RETRIES); False when it is gone."""
        c = self.committer

        def attempt() -> bool:
            instance = c.backend.instance(instance_id)
            if instance is None or instance.ended:
                return False
            state = copy.deepcopy(instance.state)
            sub = state.get("subs", {}).get(sub_id)
            if sub is None or sub.get("due") != due:
                return False
            failures = int(sub.get("failures", 0)) + 1
            sub.update(failures=failures, error=message)
            now = c.now_ms()
            entry = {
                "time": now,
                "type": "timer.failed",
                "elementId": sub["el"],
                "errorCode": code,
                "message": message,
                "failures": failures,
            }
            result = StepResult(state, history=[entry])
            if failures >= TIMER_RETRIES:
                sub["incident"] = True
                result.unsubscribed.append(Subscription(sub_id, "timer", sub["el"], None, due))
                log.error("timer %s of instance %s failed %d times: now an incident", sub_id, instance_id, failures)
            else:
                sub["due"] = now + TIMER_BACKOFF_MS * 2 ** (failures - 1)
                result.subscribed.append(Subscription(sub_id, "timer", sub["el"], None, sub["due"]))
            c.commit(instance, c.spec_of(instance), result)
            return True

        return bool(retrying(attempt))

    # -- incidents and scheduling -------------------------------------------------------

    def retry_timer(self, instance_id: str, sub_id: str, *, actor: str | None = None) -> None:
        """Resolve a timer incident: the timer is due again now (three more tries)."""
        c = self.committer

        def attempt() -> None:
            instance = c.backend.instance(instance_id)
            if instance is None:
                raise NotFound(f"process instance '{instance_id}' does not exist", code="INSTANCE_NOT_FOUND")
            sub = instance.state.get("subs", {}).get(sub_id)
            if sub is None or sub.get("kind") != "timer" or not sub.get("incident"):
                raise NotFound(f"instance '{instance_id}' has no timer incident '{sub_id}'", code="INCIDENT_NOT_FOUND")
            state = copy.deepcopy(instance.state)
            timer = state["subs"][sub_id]
            for key in ("incident", "error", "failures"):
                timer.pop(key, None)
            timer["due"] = c.now_ms()
            entry = {
                "time": timer["due"],
                "type": "timer.retried",
                "elementId": timer["el"],
                "user": None,
                "actor": actor,
            }
            result = StepResult(
                state, subscribed=[Subscription(sub_id, "timer", timer["el"], None, timer["due"])], history=[entry]
            )
            c.commit(instance, c.spec_of(instance), result)

        retrying(attempt)

    def schedule_start_timers(self, deployed: Iterable[Definition]) -> None:
        """Schedule the timer start events of newly deployed versions; drop the old versions'."""
        c = self.committer
        for definition in deployed:
            for old in c.cache.versions(definition.key):
                if old.version < definition.version:
                    for start in starts_of(c.cache.spec(old), "timer"):
                        c.backend.remove_timer(start_timer_member(old.definition_id, start.id))
            for start in starts_of(c.cache.spec(definition), "timer"):
                due = _first_start_due(start, definition, c.engine.beans)
                if due is not None:
                    c.backend.schedule_timer(start_timer_member(definition.definition_id, start.id), due)


def _timer_text(start: StartEvent, deployed: Definition, beans: BeanRegistry | None) -> tuple[str, str]:
    """(kind, text) of a timer start event; ``now()``/``dateTime()`` in it read the deployment time
    (so that every evaluation gives the same schedule)."""
    definition = start.event
    assert definition is not None
    for kind, template in (
        ("cycle", definition.time_cycle),
        ("date", definition.time_date),
        ("duration", definition.time_duration),
    ):
        if template is not None:
            with evaluation_context(lambda: deployed.deploy_time, beans):
                return kind, str(template.evaluate({}))
    raise Unprocessable(f"timer start event '{start.id}' has no date, duration or cycle")


def _first_start_due(start: StartEvent, definition: Definition, beans: BeanRegistry | None) -> int | None:
    kind, text = _timer_text(start, definition, beans)
    if kind == "cycle":
        return timers.parse_cycle(text, definition.deploy_time).first_due
    return timers.due_from_value(text, definition.deploy_time)


def _next_start_due(
    start: StartEvent, definition: Definition, due: int, now: int, beans: BeanRegistry | None
) -> int | None:
    """After a firing at ``due``: the next due of a cycle after ``now`` (missed periods are skipped)."""
    kind, text = _timer_text(start, definition, beans)
    if kind != "cycle":
        return None
    cycle = timers.parse_cycle(text, definition.deploy_time)
    fired = (due - cycle.first_due) // cycle.period_ms + 1
    remaining = None if cycle.remaining is None else cycle.remaining - (fired - 1)
    following = next_cycle_due(cycle, due, remaining, now)
    return None if following is None else following[0]
