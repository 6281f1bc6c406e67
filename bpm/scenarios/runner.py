"""Running scenarios: each on a fresh memory backend, with a clock that only ``advance`` moves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backends.memory import MemoryBackend
from bpm.engine.timers import duration_ms
from bpm.errors import BpmError
from bpm.records import Task
from bpm.runtime import Runtime
from bpm.scenarios.model import Scenario, ScenarioFile, Step

#: 2026-01-01T00:00:00Z: every scenario starts at the same instant
EPOCH_MS = 1_767_225_600_000
WORKER = "bpm-test"
MAX_TIMER_ROUNDS = 1000


class StepFailed(Exception):
    """A step did not do what the scenario says (the message has expected and actual)."""


class Clock:
    """The runtime's time in epoch ms; moved only by ``advance``."""

    def __init__(self, now: int = EPOCH_MS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@dataclass(frozen=True, slots=True)
class Outcome:
    """One scenario's result: None when it passed, else where it failed and why."""

    file: str
    scenario: str
    failure: str | None = None
    step: str | None = None
    context: str = ""


class ScenarioRun:
    """One scenario against its own runtime: the instances it started and what they show."""

    def __init__(self, suite: ScenarioFile, definitions: list[tuple[str, bytes]]) -> None:
        self.clock = Clock()
        self.runtime = Runtime(MemoryBackend(), None, now_ms=self.clock)
        for file, data in definitions:
            self.runtime.deploy(data, file=file)
        for user, identity in suite.identities.items():
            self.runtime.set_identity(user, identity["groups"], identity["roles"])
        self.instances: list[str] = []

    # -- what the scenario sees ------------------------------------------------------------

    def open_tasks(self) -> list[Task]:
        return [task for iid in self.instances for task in self.runtime.instance_tasks(iid)]

    def variables(self) -> dict[str, Any]:
        if not self.instances:
            return {}
        return dict(self.runtime.instance(self.instances[0]).state.get("vars", {}))

    def path(self) -> list[str]:
        """The elements the instances entered, in order (each once)."""
        seen: dict[str, None] = {}
        for iid in self.instances:
            for entry in self.runtime.history(iid):
                if entry.get("type") == "element.entered" and entry.get("elementId"):
                    seen.setdefault(str(entry["elementId"]), None)
        return list(seen)

    def names(self) -> dict[str, str]:
        """Element id -> name, for matching steps that name an element by its name."""
        found: dict[str, str] = {}
        for iid in self.instances:
            for entry in self.runtime.history(iid):
                if entry.get("elementId") and entry.get("elementName"):
                    found[str(entry["elementId"])] = str(entry["elementName"])
        return found

    def ended(self) -> bool:
        return bool(self.instances) and all(self.runtime.instance(i).ended for i in self.instances)

    def context(self) -> str:
        tasks = [t.task_definition_key for t in self.open_tasks()]
        return f"open tasks {tasks}, variables {self.variables()}, path {self.path()}"

    # -- steps -----------------------------------------------------------------------------

    def start(self, start: Mapping[str, Any]) -> None:
        self.instances.append(
            self.runtime.start(
                process_name=str(start["process"]),
                variables=start.get("variables") or {},
                user=start.get("user"),
                business_key=start.get("businessKey"),
            )
        )
        self.fire_due_timers()

    def run(self, step: Step) -> None:
        args = step.args if isinstance(step.args, Mapping) else {}
        wanted = args.get("fails")
        try:
            getattr(self, f"_{step.kind}")(step.args)
        except BpmError as exc:
            if wanted is None:
                raise StepFailed(f"failed with {exc.code}: {exc.message}") from exc
            if exc.code != wanted:
                raise StepFailed(f"expected the error {wanted}, got {exc.code}: {exc.message}") from exc
            return
        if wanted is not None:
            raise StepFailed(f"expected the error {wanted}, but the step succeeded")
        self.fire_due_timers()

    def task(self, wanted: Any) -> Task:
        tasks = self.open_tasks()
        for task in tasks:
            if wanted in (task.task_definition_key, task.name):
                return task
        raise StepFailed(f"no open task '{wanted}' (open: {[t.task_definition_key for t in tasks]})")

    def _claim(self, args: Mapping[str, Any]) -> None:
        self.runtime.claim(self.task(args["task"]).id, str(args["user"]))

    def _unclaim(self, args: Mapping[str, Any]) -> None:
        self.runtime.unclaim(self.task(args["task"]).id, args.get("user"))

    def _complete(self, args: Mapping[str, Any]) -> None:
        task = self.task(args["task"])
        self.runtime.complete(task.id, str(args.get("user") or task.assignee or ""), args.get("variables") or {})

    def _advance(self, text: str) -> None:
        try:
            self.clock.now += duration_ms(text)
        except (BpmError, ValueError) as exc:
            raise StepFailed(f"'{text}' is not an ISO 8601 duration such as PT2H") from exc

    def _message(self, args: Mapping[str, Any]) -> None:
        result = self.runtime.correlate_message(
            str(args["name"]),
            business_key=args.get("businessKey"),
            correlation=args.get("correlationKeys"),
            variables=args.get("variables") or {},
            user=args.get("user"),
        )
        self._track(result.get("instanceIds") or [])

    def _signal(self, args: Mapping[str, Any]) -> None:
        result = self.runtime.broadcast_signal(str(args["name"]), args.get("variables") or {}, user=args.get("user"))
        self._track(result.get("instanceIds") or [])

    def _external(self, args: Mapping[str, Any]) -> None:
        locked = self.runtime.fetch_and_lock(WORKER, {str(args["topic"]): 60_000}, 1)
        if not locked:
            raise StepFailed(f"no external task of the topic '{args['topic']}' is waiting")
        record = locked[0][0]
        if args.get("error"):
            self.runtime.bpmn_error_external(
                record.id, WORKER, str(args["error"]), str(args.get("message") or ""), args.get("variables") or {}
            )
        else:
            self.runtime.complete_external(record.id, WORKER, args.get("variables") or {})

    def _expect(self, args: Mapping[str, Any]) -> None:
        problems = self.compare(args)
        if problems:
            raise StepFailed("; ".join(problems))

    def _track(self, instance_ids: list[str]) -> None:
        for iid in instance_ids:
            if iid not in self.instances:
                self.instances.append(iid)

    def fire_due_timers(self) -> None:
        for _ in range(MAX_TIMER_ROUNDS):
            if self.runtime.fire_due_timers(limit=100) == 0:
                return
        raise StepFailed(f"timers still due after {MAX_TIMER_ROUNDS} rounds (a timer cycle without end?)")

    # -- expectations ----------------------------------------------------------------------

    def compare(self, expect: Mapping[str, Any]) -> list[str]:
        """What differs from ``expect`` (tasks, ended, passed, variables); empty when all hold."""
        problems = []
        names = self.names()
        if "tasks" in expect:
            actual = sorted(t.task_definition_key for t in self.open_tasks())
            wanted = sorted(_element_id(str(w), names) for w in expect["tasks"] or [])
            if actual != wanted:
                problems.append(f"expected open tasks {wanted}, actual {actual}")
        if "ended" in expect and bool(expect["ended"]) != self.ended():
            problems.append(f"expected ended: {bool(expect['ended'])}, actual {self.ended()}")
        if "passed" in expect:
            path = self.path()
            missing = [w for w in expect["passed"] or [] if _element_id(str(w), names) not in path]
            if missing:
                problems.append(f"expected the path to pass {missing}, actual path {path}")
        for name, value in (expect.get("variables") or {}).items():
            variables = self.variables()
            if name not in variables:
                problems.append(f"expected variable {name} = {value!r}, actual: not set")
            elif variables[name] != value:
                problems.append(f"expected variable {name} = {value!r}, actual {variables[name]!r}")
        return problems


def _element_id(wanted: str, names: Mapping[str, str]) -> str:
    """A BPMN id as given, or the id of the element with that name."""
    if wanted in names:
        return wanted
    return next((element for element, name in names.items() if name == wanted), wanted)


def run_scenario(suite: ScenarioFile, scenario: Scenario, definitions: list[tuple[str, bytes]]) -> Outcome:
    """Run one scenario; the outcome names the failing step with expected and actual."""
    file = str(suite.path)
    run: ScenarioRun | None = None
    label = "start"
    try:
        run = ScenarioRun(suite, definitions)
        if scenario.start is not None:
            run.start(scenario.start)
        for step in scenario.steps:
            label = step.label()
            run.run(step)
        label = "expect"
        if scenario.expect is not None:
            problems = run.compare(scenario.expect)
            if problems:
                raise StepFailed("; ".join(problems))
    except StepFailed as exc:
        return Outcome(file, scenario.name, str(exc), label, run.context() if run else "")
    except BpmError as exc:
        return Outcome(file, scenario.name, f"failed with {exc.code}: {exc.message}", label,
                       run.context() if run else "")  # fmt: skip
    return Outcome(file, scenario.name)
