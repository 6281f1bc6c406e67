"""The token engine: plain-data instance state in, new state and task changes out.

The engine never mutates the state it is given: it works on a deep copy, so a
step that fails half way (an expression error, a loop) leaves the caller's
state untouched and the use case can report the error with nothing changed.

State format (version 1), all JSON-serialisable::

    {"format": 1, "seq": 7, "ended": False,
     "vars": {...},
     "tokens": {"t3": {"el": "Task_1", "scope": "root", "flow": "Flow_2", "task": "<task id>"}},
     "scopes": {"root": {"el": None, "parent": None, "token": None},
                "s2": {"el": "Sub_1", "parent": "root", "token": "t2"}}}

A token waits at a user task (``task`` set), at a parallel join (``join``
set) or at a subprocess whose scope is running (``sub`` set).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bpm.errors import BpmError, ExpressionError, NoMatchingFlow, Unprocessable
from bpm.model.spec import (
    Element,
    EndEvent,
    ExclusiveGateway,
    ParallelGateway,
    ProcessSpec,
    StartEvent,
    SubProcess,
    UserTask,
)

STATE_FORMAT = 1
ROOT = "root"
MAX_STEPS = 10_000
DEFAULT_PRIORITY = 50


@dataclass(frozen=True, slots=True)
class NewTask:
    """A user task the step opened, with its assignment resolved."""

    id: str
    element_id: str
    name: str
    description: str
    assignee: str | None
    candidate_users: tuple[str, ...]
    candidate_groups: tuple[str, ...]
    candidate_roles: tuple[str, ...]
    due_date: int | None
    priority: int
    form_key: str | None = None


@dataclass(slots=True)
class StepResult:
    """What one engine step produced: the new state and the task changes."""

    state: dict[str, Any]
    created: list[NewTask] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return bool(self.state["ended"])


class Engine:
    """Runs one spec. Stateless apart from its collaborators; safe to share."""

    def __init__(self, new_id: Callable[[], str], now_ms: Callable[[], int]) -> None:
        self._new_id = new_id
        self._now_ms = now_ms

    def start(
        self,
        spec: ProcessSpec,
        variables: Mapping[str, Any],
        initiator: str | None = None,
    ) -> StepResult:
        """Start an instance at the first none start event and run until all tokens wait."""
        state: dict[str, Any] = {
            "format": STATE_FORMAT,
            "seq": 0,
            "ended": False,
            "vars": copy.deepcopy(dict(variables)),
            "tokens": {},
            "scopes": {ROOT: {"el": None, "parent": None, "token": None}},
        }
        if not spec.start_ids:
            raise Unprocessable(f"process '{spec.key}' has no none start event")
        start = spec.element(spec.start_ids[0])
        if isinstance(start, StartEvent) and start.initiator:
            # as in Camunda: an unknown starter is null (an unassigned task), not a missing variable
            if initiator is not None:
                state["vars"][start.initiator] = initiator
            else:
                state["vars"].setdefault(start.initiator, None)
        run = _Run(self, spec, state)
        run.spawn(start.id, ROOT, None)
        return run.finish()

    def complete_task(
        self,
        spec: ProcessSpec,
        state: Mapping[str, Any],
        task_id: str,
        variables: Mapping[str, Any] | None = None,
    ) -> StepResult:
        """Complete the user task ``task_id``: merge ``variables``, leave the task, run on."""
        new_state = copy.deepcopy(dict(state))
        token_id = _token_of_task(new_state, task_id)
        if variables:
            new_state["vars"].update(copy.deepcopy(dict(variables)))
        run = _Run(self, spec, new_state)
        token = new_state["tokens"][token_id]
        token.pop("task", None)
        run.leave(token_id)
        return run.finish()

    def cancel(self, state: Mapping[str, Any]) -> StepResult:
        """End the instance at once, cancelling every open task."""
        new_state = copy.deepcopy(dict(state))
        cancelled = [t["task"] for t in new_state["tokens"].values() if t.get("task")]
        new_state["tokens"] = {}
        new_state["scopes"] = {ROOT: new_state["scopes"][ROOT]}
        new_state["ended"] = True
        return StepResult(new_state, [], cancelled)


def _token_of_task(state: Mapping[str, Any], task_id: str) -> str:
    for token_id, token in state["tokens"].items():
        if token.get("task") == task_id:
            return str(token_id)
    raise BpmError(f"task '{task_id}' has no waiting token in its instance", code="STATE_CORRUPT")


class _Run:
    """One engine step: a work queue of token moves over a private copy of the state."""

    def __init__(self, engine: Engine, spec: ProcessSpec, state: dict[str, Any]) -> None:
        self.engine = engine
        self.spec = spec
        self.state = state
        self.tokens: dict[str, dict[str, Any]] = state["tokens"]
        self.scopes: dict[str, dict[str, Any]] = state["scopes"]
        self.queue: deque[tuple[str, str]] = deque()
        self.result = StepResult(state)
        self.steps = 0

    # -- bookkeeping -----------------------------------------------------------------

    def next_id(self, prefix: str) -> str:
        self.state["seq"] += 1
        return f"{prefix}{self.state['seq']}"

    def spawn(self, element_id: str, scope: str, flow: str | None) -> str:
        token_id = self.next_id("t")
        self.tokens[token_id] = {"el": element_id, "scope": scope, "flow": flow}
        self.queue.append(("enter", token_id))
        return token_id

    def finish(self) -> StepResult:
        while self.queue:
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise Unprocessable(
                    f"process '{self.spec.key}' ran {MAX_STEPS} steps without waiting (an endless loop?)",
                    code="ENDLESS_LOOP",
                )
            action, token_id = self.queue.popleft()
            if token_id not in self.tokens:
                continue  # removed by a terminate end event meanwhile
            if action == "enter":
                self.enter(token_id)
            else:
                self.leave(token_id)
        return self.result

    # -- entering elements -----------------------------------------------------------

    def enter(self, token_id: str) -> None:
        token = self.tokens[token_id]
        element = self.spec.element(token["el"])
        if isinstance(element, UserTask):
            self.open_task(token, element)
        elif isinstance(element, ParallelGateway) and len(element.incoming) > 1:
            self.arrive_at_join(token_id, element)
        elif isinstance(element, SubProcess):
            self.enter_subprocess(token_id, element)
        elif isinstance(element, EndEvent):
            self.end(token_id, element)
        else:
            self.queue.append(("leave", token_id))

    def open_task(self, token: dict[str, Any], element: UserTask) -> None:
        task_id = self.engine._new_id()
        token["task"] = task_id
        self.result.created.append(self.resolve_task(task_id, element))

    def resolve_task(self, task_id: str, element: UserTask) -> NewTask:
        variables = self.state["vars"]
        assignee = _one_name(element.assignee, variables, element)
        return NewTask(
            id=task_id,
            element_id=element.id,
            name=element.label,
            description=element.documentation,
            assignee=assignee,
            candidate_users=_names(element.candidate_users, variables, element),
            candidate_groups=_names(element.candidate_groups, variables, element),
            candidate_roles=_names(element.candidate_roles, variables, element),
            due_date=_due_date(element, variables, self.engine._now_ms()),
            priority=_priority(element, variables),
            form_key=element.form_key,
        )

    def arrive_at_join(self, token_id: str, element: ParallelGateway) -> None:
        token = self.tokens[token_id]
        token["join"] = True
        waiting = self._join_waiters(element.id, token["scope"])
        if not all(waiting.get(flow) for flow in element.incoming):
            return
        for flow in element.incoming:  # one token per flow; extra arrivals wait for the next round
            del self.tokens[waiting[flow][0]]
        merged = self.spawn_waiting(element.id, token["scope"])
        self.queue.append(("leave", merged))

    def _join_waiters(self, element_id: str, scope: str) -> dict[str, list[str]]:
        waiting: dict[str, list[str]] = {}
        for tid, tok in self.tokens.items():
            if tok.get("join") and tok["el"] == element_id and tok["scope"] == scope:
                waiting.setdefault(tok["flow"], []).append(tid)
        return waiting

    def spawn_waiting(self, element_id: str, scope: str) -> str:
        token_id = self.next_id("t")
        self.tokens[token_id] = {"el": element_id, "scope": scope, "flow": None}
        return token_id

    def enter_subprocess(self, token_id: str, element: SubProcess) -> None:
        if not element.start_ids:
            raise Unprocessable(f"subprocess '{element.id}' has no start event")
        scope_id = self.next_id("s")
        token = self.tokens[token_id]
        self.scopes[scope_id] = {"el": element.id, "parent": token["scope"], "token": token_id}
        token["sub"] = scope_id
        self.spawn(element.start_ids[0], scope_id, None)

    # -- leaving elements ------------------------------------------------------------

    def leave(self, token_id: str) -> None:
        token = self.tokens[token_id]
        element = self.spec.element(token["el"])
        flows = self.select_flows(element)
        if not flows:
            self.consume(token_id)
            return
        scope = token["scope"]
        del self.tokens[token_id]
        for flow_id in flows:
            self.spawn(self.spec.flow(flow_id).target, scope, flow_id)

    def select_flows(self, element: Element) -> list[str]:
        if isinstance(element, ParallelGateway):
            return list(element.outgoing)
        if isinstance(element, ExclusiveGateway):
            return [self.choose_exclusive(element)]
        taken = [f for f in element.outgoing if f != element.default and self.condition_holds(f)]
        if not taken and element.default:
            taken = [element.default]
        if element.outgoing and not taken:
            raise NoMatchingFlow(
                f"no outgoing sequence flow of '{element.label}' ({element.id}) has a condition that holds"
            )
        return taken

    def choose_exclusive(self, element: ExclusiveGateway) -> str:
        for flow_id in element.outgoing:
            if flow_id != element.default and self.condition_holds(flow_id):
                return flow_id
        if element.default:
            return element.default
        raise NoMatchingFlow(
            f"exclusive gateway '{element.label}' ({element.id}) has no outgoing flow whose "
            "condition holds and no default flow"
        )

    def condition_holds(self, flow_id: str) -> bool:
        condition = self.spec.flow(flow_id).condition
        if condition is None:
            return True
        try:
            return condition.evaluate_condition(self.state["vars"])  # type: ignore[attr-defined]
        except ExpressionError as exc:
            raise ExpressionError(f"condition of sequence flow '{flow_id}': {exc.message}") from exc

    # -- ending ----------------------------------------------------------------------

    def end(self, token_id: str, element: EndEvent) -> None:
        scope = self.tokens[token_id]["scope"]
        if element.terminate:
            self.clear_scope(scope)
            self.complete_scope(scope)
        else:
            self.consume(token_id)

    def consume(self, token_id: str) -> None:
        scope = self.tokens.pop(token_id)["scope"]
        if not any(t["scope"] == scope for t in self.tokens.values()):
            self.complete_scope(scope)

    def clear_scope(self, scope: str) -> None:
        """Remove every token of ``scope`` and its nested scopes, cancelling their tasks."""
        for tid, tok in list(self.tokens.items()):
            if tok["scope"] != scope or tid not in self.tokens:
                continue
            if tok.get("sub"):
                self.clear_scope(tok["sub"])
                self.scopes.pop(tok["sub"], None)
            if tok.get("task"):
                self.result.cancelled.append(tok["task"])
            del self.tokens[tid]

    def complete_scope(self, scope: str) -> None:
        if scope == ROOT:
            self.clear_scope(ROOT)
            self.state["ended"] = True
            return
        owner = self.scopes.pop(scope)["token"]
        token = self.tokens[owner]
        token.pop("sub", None)
        self.queue.append(("leave", owner))


def _evaluate(template: Any, variables: Mapping[str, Any], element: Element, what: str) -> Any:
    try:
        return template.evaluate(variables)
    except ExpressionError as exc:
        raise ExpressionError(f"{what} of '{element.label}' ({element.id}): {exc.message}") from exc


def _one_name(template: Any, variables: Mapping[str, Any], element: Element) -> str | None:
    if template is None:
        return None
    value = _evaluate(template, variables, element, "assignee")
    if value is None or value == "":
        return None
    if isinstance(value, (dict, list, bool)):
        raise ExpressionError(f"assignee of '{element.label}' ({element.id}) is not a user name: {value!r}")
    return str(value).strip() or None


def _names(templates: Iterable[Any], variables: Mapping[str, Any], element: Element) -> tuple[str, ...]:
    names: list[str] = []
    for template in templates:
        value = _evaluate(template, variables, element, "candidates")
        items = value if isinstance(value, (list, tuple)) else str(value or "").split(",")
        for item in items:
            if isinstance(item, (dict, list)):
                raise ExpressionError(f"candidate of '{element.label}' ({element.id}) is not a name: {item!r}")
            name = str(item).strip() if item is not None else ""
            if name and name not in names:
                names.append(name)
    return tuple(names)


def _priority(element: UserTask, variables: Mapping[str, Any]) -> int:
    if element.priority is None:
        return DEFAULT_PRIORITY
    value = _evaluate(element.priority, variables, element, "priority")
    try:
        priority = int(str(value).strip())
    except (TypeError, ValueError):
        raise ExpressionError(f"priority of '{element.label}' ({element.id}) is not a number: {value!r}") from None
    return max(1, min(99, priority))


_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)


def parse_due(value: Any, now_ms: int) -> int | None:
    """An epoch-ms due date from epoch ms, an ISO 8601 date/date-time, or a duration from now."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    match = _DURATION.fullmatch(text)
    if match and text not in ("P", "PT"):
        parts = {k: float(v) for k, v in match.groupdict().items() if v}
        return now_ms + int(dt.timedelta(**parts).total_seconds() * 1000)
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp() * 1000)


def _due_date(element: UserTask, variables: Mapping[str, Any], now_ms: int) -> int | None:
    if element.due_date is None:
        return None
    value = _evaluate(element.due_date, variables, element, "due date")
    try:
        return parse_due(value, now_ms)
    except (TypeError, ValueError, OverflowError):
        raise ExpressionError(
            f"due date of '{element.label}' ({element.id}) is not a date or duration: {value!r}"
        ) from None
