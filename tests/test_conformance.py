"""Conformance: drive every executable public model under ../shared/bpmn/ to an end.

For each file (each on a fresh memory backend, with the files of its folder that
define the processes it calls deployed first) and for each executable process the
file deploys, a generic driver plays the outside world: it claims and completes
user tasks (as their assignee, else as a candidate), completes external tasks
(fetch and lock by topic), delivers the messages and signals instances wait for,
and fires timers by moving an injected clock to the earliest due. Where a gateway
needs data to reach each of its ends, the model runs once per end with inputs from
:data:`RUNS` (tests/data/conformance/runs.json).

Each run ends "ran to the end" (the end events the history shows), "stopped" with a
named :class:`~bpm.errors.BpmError` code, or "stopped at deployment". The tally is
printed (``pytest -s``); the outcome of every run is locked in :data:`EXPECTED`.
The SpiffWorkflow models (LGPL) are read from ../shared/bpmn at test time, never
copied into the project; the test skips when that folder is missing.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from backends.base import Definition, Instance, Task
from backends.memory import MemoryBackend
from bpm.errors import BpmError, InvalidDefinition
from bpm.model.spec import ProcessSpec, StartEvent
from bpm.runtime import Runtime
from tests.conftest import DATA, SHARED_BPMN

FOLDERS = ("camunda-bpm-platform", "bpmn-engine", "spiffworkflow", "miwg")
T0 = 1_900_000_000_000  # 2030-03-17: after every absolute timer date of the corpus
MAX_ROUNDS = 200
USER = "conformance"
WORKER = "conformance-worker"
ACTIONS = ("task", "external", "message", "signal", "timer")

FILES = (
    sorted(p for folder in FOLDERS for p in (SHARED_BPMN / folder).glob("*") if p.suffix in (".bpmn", ".xml"))
    if SHARED_BPMN.is_dir()
    else []
)


# -- per-model inputs ----------------------------------------------------------------


Answers = Mapping[str, Any]  # name -> variables, or a list of them (1st, 2nd ... use; the last repeats)


@dataclass(frozen=True)
class Run:
    """One way through a model: start variables, and what the outside world answers.

    ``tasks`` and ``externals`` map an element id (or ``*``) to the variables its
    completion sets; ``messages`` a message name to the variables it carries; each
    may be a list, used in turn. ``bpmn_errors`` maps an external task's element id
    to the BPMN error code its worker reports. ``deliver`` caps how often a message
    or signal name is delivered. ``prefer`` orders the driver's actions (e.g. timers
    before tasks, to take a boundary timer's path).
    """

    label: str = ""
    variables: Mapping[str, Any] = field(default_factory=dict)
    tasks: Answers = field(default_factory=dict)
    externals: Answers = field(default_factory=dict)
    messages: Answers = field(default_factory=dict)
    bpmn_errors: Mapping[str, str] = field(default_factory=dict)
    deliver: Mapping[str, int] = field(default_factory=dict)
    prefer: tuple[str, ...] = ACTIONS

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Run:
        unknown = set(data) - {"label", "variables", "tasks", "externals", "messages", "bpmnErrors", "deliver",
                               "prefer"}
        assert not unknown, f"unknown run keys {unknown}"
        prefer = tuple(data.get("prefer", ()))
        assert set(prefer) <= set(ACTIONS), prefer
        prefer += tuple(a for a in ACTIONS if a not in prefer)
        return cls(
            label=data.get("label", ""),
            variables=data.get("variables", {}),
            tasks=data.get("tasks", {}),
            externals=data.get("externals", {}),
            messages=data.get("messages", {}),
            bpmn_errors=data.get("bpmnErrors", {}),
            deliver=data.get("deliver", {}),
            prefer=prefer,
        )


def load_runs() -> dict[str, list[Run]]:
    """``folder/file#processKey`` -> its runs (default: one run without data)."""
    path = DATA / "conformance" / "runs.json"
    raw = json.loads(path.read_text()) if path.is_file() else {}
    return {model: [Run.from_json(r) for r in runs] for model, runs in raw.items() if not model.startswith("_")}


RUNS = load_runs()


# -- outcomes --------------------------------------------------------------------------


@dataclass
class Outcome:
    model: str
    label: str
    kind: str  # "end" | "stopped" | "deployment" | "stuck" | "crash"
    detail: str
    code: str = ""

    @property
    def name(self) -> str:
        return f"{self.model} [{self.label}]" if self.label else self.model

    @property
    def summary(self) -> str:
        """What EXPECTED locks in: the kind, with the end events or the error code."""
        if self.kind == "end":
            return f"end: {self.detail}"
        return f"{self.kind}: {self.code}" if self.code else self.kind


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


class Stopped(Exception):
    """The driver cannot go on (nothing can move, or the round budget is spent)."""


# -- deployment -------------------------------------------------------------------------

PROCESS_ID = re.compile(r"<(?:\w+:)?process\b[^>]*?\bid=\"([^\"]+)\"")
CALLED = re.compile(r"\bcalledElement=\"([^\"]+)\"")


def dependencies(path: Path) -> list[Path]:
    """Files of the same folder that define the processes ``path`` calls, transitively."""
    defines: dict[str, Path] = {}
    for other in sorted(path.parent.iterdir()):
        if other.suffix in (".bpmn", ".xml"):
            for key in PROCESS_ID.findall(other.read_text(errors="replace")):
                defines.setdefault(key, other)  # several files define a key: the first by name
    found: list[Path] = []
    pending = [path]
    while pending:
        current = pending.pop()
        own = set(PROCESS_ID.findall(current.read_text(errors="replace")))
        for key in CALLED.findall(current.read_text(errors="replace")):
            target = defines.get(key)
            if key not in own and target is not None and target != path and target not in found:
                found.append(target)
                pending.append(target)
    return found


def model_name(path: Path, key: str | None = None) -> str:
    name = path.relative_to(SHARED_BPMN).as_posix()
    return f"{name}#{key}" if key else name


# -- the driver ------------------------------------------------------------------------


class RecordingRuntime(Runtime):
    """A runtime that notes the instances started at a start event (timer, message, signal)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started: list[str] = []

    def start_at(self, *args: Any, **kwargs: Any) -> str:
        instance_id = super().start_at(*args, **kwargs)
        self.started.append(instance_id)
        return instance_id


class Driver:
    """Plays the outside world for one run of one process."""

    def __init__(self, runtime: RecordingRuntime, clock: Clock, run: Run) -> None:
        self.rt = runtime
        self.clock = clock
        self.run = run
        self.used: Counter[str] = Counter()  # answers given, per table entry
        self.delivered: Counter[str] = Counter()  # messages and signals, per name

    def answer(self, table: str, answers: Answers, key: str) -> dict[str, Any]:
        name = key if key in answers else "*"
        found = answers.get(name, {})
        if isinstance(found, list):
            index = self.used[f"{table}:{name}"]
            self.used[f"{table}:{name}"] += 1
            found = found[min(index, len(found) - 1)]
        return dict(found)

    def may_deliver(self, name: str) -> bool:
        return name not in self.run.deliver or self.delivered[name] < self.run.deliver[name]

    # -- the family of instances (the root and its call-activity children) -------------

    def family(self, root_id: str) -> list[Instance]:
        found: list[Instance] = []
        pending = [root_id]
        while pending:
            instance = self.rt.backend.instance(pending.pop(0))
            if instance is None:
                continue
            found.append(instance)
            pending.extend(t["call"] for t in instance.state.get("tokens", {}).values() if t.get("call"))
        return found

    # -- starting ------------------------------------------------------------------------

    def start(self, key: str, spec: ProcessSpec) -> str:
        """At the none start event, else by the message, signal or timer of an event start."""
        variables = dict(self.run.variables)
        if spec.start_ids:
            return self.rt.start(unique_id=key, variables=variables, user=USER, business_key=f"conformance-{key}")
        for element_id in spec.event_start_ids:
            start = spec.element(element_id)
            assert isinstance(start, StartEvent) and start.event is not None
            kind, name = start.event.kind, start.event.ref
            if kind == "message" and name:
                self.rt.correlate_message(name, variables=variables, user=USER)
            elif kind == "signal" and name:
                self.rt.broadcast_signal(name, variables, user=USER)
            elif kind == "timer":
                dues = [due for member, due in self.rt.backend.due_timers(2**62, 1000) if member.startswith("start|")]
                if dues:
                    self.clock.now = max(self.clock.now, min(dues))
                    if self.rt.fire_due_timers() == 0:  # logged and skipped: start here for the error
                        self.rt.engine.start(spec, {}, start_event=element_id)
            mine = [i for i in self.rt.started if self.rt.instance(i).process_key == key]
            if mine:
                return mine[0]
        raise Stopped("no start event the driver can trigger")

    # -- rounds ------------------------------------------------------------------------

    def drive(self, root_id: str) -> None:
        """One action a round (the first of ``prefer`` that can act) until the root ends."""
        for _ in range(MAX_ROUNDS):
            if self.rt.instance(root_id).ended:
                return
            live = [i for i in self.family(root_id) if not i.ended]
            if not any(getattr(self, f"do_{action}")(live) for action in self.run.prefer):
                waiting = sorted({t["el"] for i in live for t in i.state.get("tokens", {}).values()})
                raise Stopped(f"nothing can move; tokens wait at {', '.join(waiting) or 'nothing'}")
        raise Stopped(f"still running after {MAX_ROUNDS} rounds")

    def do_task(self, live: list[Instance]) -> bool:
        for instance in live:
            tasks = sorted((t for t in self.rt.instance_tasks(instance.id) if t.active),
                           key=lambda t: (t.create_time, t.task_definition_key))
            if tasks:
                self.complete_task(tasks[0])
                return True
        return False

    def complete_task(self, task: Task) -> None:
        """As its assignee; else claimed by a candidate user, or by USER in the candidate groups."""
        user = task.assignee
        if user is None:
            user = task.candidate_users[0] if task.candidate_users else USER
            if task.candidate_groups or task.candidate_roles:
                self.rt.set_identity(user, task.candidate_groups, task.candidate_roles)
            self.rt.claim(task.id, user)
        self.rt.complete(task.id, user, self.answer("task", self.run.tasks, task.task_definition_key))

    def do_external(self, live: list[Instance]) -> bool:
        for instance in live:
            for external in self.rt.backend.instance_externals(instance.id):
                if not external.active or external.incident:
                    continue
                for task, _ in self.rt.fetch_and_lock(WORKER, {external.topic: 60_000}, 50):
                    if task.id != external.id:
                        self.rt.unlock_external(task.id)
                    elif task.element_id in self.run.bpmn_errors:
                        self.rt.bpmn_error_external(task.id, WORKER, self.run.bpmn_errors[task.element_id])
                    else:
                        answers = self.answer("external", self.run.externals, task.element_id)
                        self.rt.complete_external(task.id, WORKER, answers)
                return True
        return False

    def waits(self, live: list[Instance], kind: str) -> list[tuple[Instance, str, dict[str, Any]]]:
        return [
            (instance, sub_id, sub)
            for instance in live
            for sub_id, sub in sorted(instance.state.get("subs", {}).items(), key=lambda s: (len(s[0]), s[0]))
            if sub.get("kind") == kind
        ]

    def do_message(self, live: list[Instance]) -> bool:
        for instance, _, sub in self.waits(live, "message"):
            name = sub.get("name") or ""
            if self.may_deliver(name):
                self.delivered[name] += 1
                self.rt.correlate_message(name, instance_id=instance.id,
                                          variables=self.answer("message", self.run.messages, name))
                return True
        return False

    def do_signal(self, live: list[Instance]) -> bool:
        for _, _, sub in self.waits(live, "signal"):
            name = sub.get("name") or ""
            if self.may_deliver(name):
                self.delivered[name] += 1
                self.rt.broadcast_signal(name)
                return True
        return False

    def do_timer(self, live: list[Instance]) -> bool:
        timers = [(sub["due"], instance, sub_id) for instance, sub_id, sub in self.waits(live, "timer")
                  if sub.get("due") is not None]
        if not timers:
            return False
        due, instance, sub_id = min(timers, key=lambda t: t[0])
        self.clock.now = max(self.clock.now, due)
        if self.rt.fire_due_timers() == 0:
            # fire_due_timers logs and skips a timer whose step fails: run that step here for its error
            self.rt.engine.trigger(self.rt.spec_of(instance), instance.state, sub_id)
            raise Stopped(f"timer {sub_id} of {instance.id} was due but did not fire")
        return True


def end_events(runtime: Runtime, instance_id: str) -> list[str]:
    return sorted({
        e["elementId"] for e in runtime.history(instance_id)
        if e["type"] == "element.entered" and e.get("elementType") == "endEvent"
    })


def new_runtime(path: Path) -> tuple[RecordingRuntime, Clock, list[Definition]]:
    """A fresh runtime with ``path`` deployed after the files it calls. Raises InvalidDefinition."""
    clock = Clock()
    runtime = RecordingRuntime(MemoryBackend(), now_ms=clock)
    for dependency in dependencies(path):
        try:
            runtime.deploy(dependency.read_bytes(), file=dependency.name)
        except InvalidDefinition:
            pass  # a call activity reaching it stops with PROCESS_NOT_FOUND
    return runtime, clock, runtime.deploy(path.read_bytes(), file=path.name)


def run_model(path: Path, key: str, run: Run) -> Outcome:
    model = model_name(path, key)
    runtime, clock, _ = new_runtime(path)
    driver = Driver(runtime, clock, run)
    try:
        spec = runtime.cache.spec(runtime.cache.find(key=key))
        root_id = driver.start(key, spec)
        driver.drive(root_id)
    except BpmError as exc:
        return Outcome(model, run.label, "stopped", exc.message, exc.code)
    except Stopped as exc:
        return Outcome(model, run.label, "stuck", str(exc))
    except Exception as exc:  # noqa: BLE001 - reported, and failed by the test
        return Outcome(model, run.label, "crash", f"{type(exc).__name__}: {exc}")
    return Outcome(model, run.label, "end", ", ".join(end_events(runtime, root_id)) or "(no end event)")


def run_file(path: Path) -> list[Outcome]:
    name = model_name(path)
    try:
        _, _, deployed = new_runtime(path)
    except InvalidDefinition as exc:
        return [Outcome(name, "", "deployment", exc.detail, exc.code)]
    except Exception as exc:  # noqa: BLE001 - reported, and failed by the test
        return [Outcome(name, "", "crash", f"deployment: {type(exc).__name__}: {exc}")]
    if not deployed:
        return [Outcome(name, "", "not executable", "no executable process")]
    return [
        run_model(path, definition.key, run)
        for definition in deployed
        for run in RUNS.get(model_name(path, definition.key), [Run()])
    ]


def run_all() -> list[Outcome]:
    return [outcome for path in FILES for outcome in run_file(path)]


LABELS = {"end": "ran to the end", "stopped": "stopped", "deployment": "stopped at deployment",
          "stuck": "stuck", "crash": "CRASHED", "not executable": "not executable (skipped)"}


def format_tally(outcomes: list[Outcome]) -> str:
    counts = Counter(o.kind for o in outcomes)
    models = len({o.model.split("#")[0] for o in outcomes if o.kind != "not executable"})
    lines = ["", f"conformance: {models} executable files, {sum(counts.values()) - counts['not executable']} runs: "
             + ", ".join(f"{LABELS[k]} {counts[k]}" for k in LABELS if counts[k])]
    for o in outcomes:
        if o.kind == "end":
            lines.append(f"  {LABELS[o.kind]:21s} {o.name}: {o.detail}")
        elif o.kind == "not executable":
            lines.append(f"  {'not executable':21s} {o.name}")
        else:
            lines.append(f"  {LABELS[o.kind]:21s} {o.name}: {o.code} {o.detail}".rstrip())
    return "\n".join(lines)
