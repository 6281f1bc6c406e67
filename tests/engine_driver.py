"""A small driver for engine tests: load a .bpmn file, start, complete tasks by element id."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from bpm.engine import Engine, NewTask
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
    """Holds one instance's state and open tasks, as a backend would."""

    def __init__(self, spec: ProcessSpec) -> None:
        counter = itertools.count(1)
        self.spec = spec
        self.engine = Engine(lambda: f"task-{next(counter)}", lambda: NOW)
        self.state: dict[str, Any] = {}
        self.tasks: dict[str, NewTask] = {}
        self.cancelled: list[str] = []

    def start(self, variables: dict[str, Any] | None = None, initiator: str | None = None) -> Driver:
        self._apply(self.engine.start(self.spec, variables or {}, initiator=initiator))
        return self

    def _apply(self, result: Any) -> None:
        self.state = result.state
        for task_id in result.cancelled:
            self.tasks.pop(task_id, None)
            self.cancelled.append(task_id)
        for task in result.created:
            self.tasks[task.id] = task

    def waiting(self) -> list[str]:
        """Element ids of the open tasks, sorted."""
        return sorted(t.element_id for t in self.tasks.values())

    def task(self, element_id: str) -> NewTask:
        return next(t for t in self.tasks.values() if t.element_id == element_id)

    def complete(self, element_id: str, variables: dict[str, Any] | None = None) -> Driver:
        task = self.task(element_id)
        result = self.engine.complete_task(self.spec, self.state, task.id, variables)
        del self.tasks[task.id]
        self._apply(result)
        return self

    def reload(self) -> Driver:
        """Save and reload the state as a backend does (JSON round trip)."""
        self.state = json.loads(json.dumps(self.state))
        return self

    @property
    def ended(self) -> bool:
        return bool(self.state["ended"])
