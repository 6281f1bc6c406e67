"""A small driver for engine tests: load a .bpmn file, start, and work it like a backend would.

It keeps what a backend keeps (state, open user and external tasks, subscriptions,
call requests), moves a fake clock for timers and round-trips the state through
JSON on ``reload()``.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from bpm.engine import Engine, NewTask
from bpm.engine.engine import CallRequest, NewExternalTask, StepResult, Subscription, Thrown
from bpm.model.parser import parse_bpmn
from bpm.model.spec import ProcessSpec

DATA = Path(__file__).resolve().parent / "data"
NOW = 1_900_000_000_000


def load_spec(path: Path | str, key: str | None = None) -> ProcessSpec:
    path = Path(path)
    if not path.is_absolute():
        path = DATA / path
    parsed = parse_bpmn(path.read_bytes(), file=path.name)
    if key is None:
        return parsed.processes[0]
    return next(p for p in parsed.processes if p.key == key)


class Driver:
    """Holds one instance's state and what it waits for, as a backend would."""

    def __init__(self, spec: ProcessSpec) -> None:
        counter = itertools.count(1)
        self.spec = spec
        self.clock = NOW
        self.engine = Engine(lambda: f"id-{next(counter)}", lambda: self.clock)
        self.state: dict[str, Any] = {}
        self.tasks: dict[str, NewTask] = {}
        self.externals: dict[str, NewExternalTask] = {}
        self.subs: dict[str, Subscription] = {}
        self.calls: list[CallRequest] = []
        self.calls_cancelled: list[str] = []
        self.thrown: list[Thrown] = []
        self.cancelled: list[str] = []
        self.history: list[dict[str, Any]] = []

    def start(
        self, variables: dict[str, Any] | None = None, initiator: str | None = None, start_event: str | None = None
    ) -> Driver:
        self._apply(self.engine.start(self.spec, variables or {}, initiator=initiator, start_event=start_event))
        return self

    def _apply(self, result: StepResult) -> None:
        self.state = result.state
        for task_id in result.cancelled:
            self.tasks.pop(task_id, None)
            self.cancelled.append(task_id)
        for task in result.created:
            self.tasks[task.id] = task
        for external_id in result.externals_cancelled:
            self.externals.pop(external_id, None)
            self.cancelled.append(external_id)
        for external in result.externals:
            self.externals[external.id] = external
        for sub in result.unsubscribed:
            self.subs.pop(sub.id, None)
        for sub in result.subscribed:
            self.subs[sub.id] = sub
        self.calls.extend(result.calls)
        self.calls_cancelled.extend(result.calls_cancelled)
        self.thrown.extend(result.thrown)
        self.history.extend(result.history)
        assert set(self.subs) == set(self.state["subs"]), "subscription events must mirror the state"

    # -- what waits ------------------------------------------------------------------

    def waiting(self) -> list[str]:
        """Element ids of the open user tasks, sorted."""
        return sorted(t.element_id for t in self.tasks.values())

    def external_waiting(self) -> list[str]:
        return sorted(t.element_id for t in self.externals.values())

    def subscribed(self) -> list[tuple[str, str]]:
        return sorted((s.kind, s.element_id) for s in self.subs.values())

    def task(self, element_id: str) -> NewTask:
        return next(t for t in self.tasks.values() if t.element_id == element_id)

    # -- moving on -------------------------------------------------------------------

    def complete(self, element_id: str, variables: dict[str, Any] | None = None) -> Driver:
        task = self.task(element_id)
        result = self.engine.complete_task(self.spec, self.state, task.id, variables)
        del self.tasks[task.id]
        self._apply(result)
        return self

    def complete_external(self, element_id: str, variables: dict[str, Any] | None = None) -> Driver:
        external = next(t for t in self.externals.values() if t.element_id == element_id)
        result = self.engine.complete_external(self.spec, self.state, external.id, variables)
        del self.externals[external.id]
        self._apply(result)
        return self

    def throw_error(self, element_id: str, code: str, message: str = "") -> Driver:
        external = next(t for t in self.externals.values() if t.element_id == element_id)
        result = self.engine.throw_error(self.spec, self.state, external.id, code, message)
        self.externals.pop(external.id, None)
        self._apply(result)
        return self

    def trigger(self, sub: Subscription, variables: dict[str, Any] | None = None) -> Driver:
        self._apply(self.engine.trigger(self.spec, self.state, sub.id, variables))
        return self

    def message(self, name: str | None, variables: dict[str, Any] | None = None) -> Driver:
        sub = next(s for s in self.subs.values() if s.kind == "message" and s.name == name)
        return self.trigger(sub, variables)

    def signal(self, name: str | None, variables: dict[str, Any] | None = None) -> Driver:
        for sub in [s for s in self.subs.values() if s.kind == "signal" and s.name == name]:
            if sub.id in self.subs:
                self.trigger(sub, variables)
        return self

    def advance(self, ms: int) -> Driver:
        """Move the clock and fire every timer that falls due, in order."""
        self.clock += ms
        while True:
            due = sorted(
                (s for s in self.subs.values() if s.kind == "timer" and s.due is not None and s.due <= self.clock),
                key=lambda s: (s.due, s.id),
            )
            if not due:
                return self
            self.trigger(due[0])

    def call_returned(self, child_id: str, variables: dict[str, Any]) -> Driver:
        self._apply(self.engine.call_returned(self.spec, self.state, child_id, variables))
        return self

    def reload(self) -> Driver:
        """Save and reload the state as a backend does (JSON round trip)."""
        self.state = json.loads(json.dumps(self.state))
        return self

    @property
    def ended(self) -> bool:
        return bool(self.state["ended"])
