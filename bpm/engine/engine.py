"""The token engine: plain-data instance state in, new state and side effects out.

The engine never mutates the state it is given: it works on a deep copy, so a
step that fails half way (an expression error, a loop) leaves the caller's
state untouched and the use case can report the error with nothing changed.

State format (version 2), all JSON-serialisable::

    {"format": 2, "seq": 7, "ended": False, "vars": {...},
     "tokens": {"t3": {"el": "Task_1", "scope": "root", "flow": "Flow_2", "task": "<task id>"}},
     "scopes": {"root": {"el": None, "parent": None, "token": None},
                "s2": {"el": "Sub_1", "parent": "root", "token": "t2", "vars": {...}}},
     "subs": {"e4": {"kind": "timer", "el": "Boundary_1", "token": "t3", "scope": "root", "due": 1700000000000}},
     "mi": {"m5": {"el": "Task_2", "scope": "root", "token": "t4", "total": 3, "done": 1, ...}}}

A token waits at a user task (``task``), an external task (``ext``), a parallel
or inclusive join (``join``), a subprocess whose scope runs (``sub``), a called
process (``call``), an event (``event``: its subscriptions are in ``subs``) or
a multi-instance body (``body``). Tokens of multi-instance inner activities
carry ``mi`` and their local variables in ``vars``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bpm.copying import copy_plain
from bpm.engine import conditions, mappings, timers
from bpm.engine.evaluation import evaluating
from bpm.engine.resolve import DEFAULT_PRIORITY as DEFAULT_PRIORITY  # re-exported: the engine's names
from bpm.engine.resolve import (
    _catch_variables,
    _catches,
    _condition,
    _evaluate,
    _map_in,
    _map_out,
    resolve_task,
)
from bpm.engine.resolve import parse_due as parse_due
from bpm.engine.results import (
    CallRequest,
    NewExternalTask,
    StepResult,
    Subscription,
    Thrown,
    UncaughtError,
)
from bpm.engine.results import NewTask as NewTask
from bpm.engine.scripts import run_script
from bpm.errors import BpmError, ExpressionError, NoMatchingFlow, Unprocessable
from bpm.expressions.beans import BeanRegistry
from bpm.model.spec import (
    BoundaryEvent,
    CallActivity,
    Element,
    EndEvent,
    EventBasedGateway,
    EventDefinition,
    ExclusiveGateway,
    ExternalTask,
    InclusiveGateway,
    IntermediateCatchEvent,
    IntermediateThrowEvent,
    ParallelGateway,
    ProcessSpec,
    ReceiveTask,
    ScriptTask,
    StartEvent,
    SubProcess,
    UserTask,
)

STATE_FORMAT = 2
ROOT = "root"
MAX_STEPS = 10_000
MAX_MULTI_INSTANCES = 1000
WAIT_KEYS = ("task", "ext", "join", "sub", "call", "event", "body")
SUBSCRIBABLE = frozenset({"timer", "message", "signal", "conditional"})


class Engine:
    """Runs specs. Stateless apart from its collaborators; safe to share between threads."""

    def __init__(self, new_id: Callable[[], str], now_ms: Callable[[], int], beans: BeanRegistry | None = None) -> None:
        self.new_id = new_id
        self.now_ms = now_ms
        #: the beans expressions may call (see :mod:`bpm.expressions.beans`); steps also read ``now_ms``
        self.beans = beans

    # -- starting ---------------------------------------------------------------------

    @evaluating
    def start(
        self,
        spec: ProcessSpec,
        variables: Mapping[str, Any],
        initiator: str | None = None,
        start_event: str | None = None,
    ) -> StepResult:
        """Start an instance at ``start_event`` (default: the first none start event)."""
        state: dict[str, Any] = {
            "format": STATE_FORMAT,
            "seq": 0,
            "ended": False,
            "vars": copy_plain(dict(variables)),
            "tokens": {},
            "scopes": {ROOT: {"el": None, "parent": None, "token": None}},
            "subs": {},
            "mi": {},
        }
        start = spec.element(start_event or spec.default_start_id())
        if isinstance(start, StartEvent) and start.initiator:
            # as in Camunda: an unknown starter is null (an unassigned task), not a missing variable
            if initiator is not None:
                state["vars"][start.initiator] = initiator
            else:
                state["vars"].setdefault(start.initiator, None)
        run = _Run(self, spec, state)
        conditions.begin(run, None)
        run.open_scope_events(ROOT, spec.event_subprocesses)
        run.spawn(start.id, ROOT, None)
        return run.finish()

    # -- moving on from wait states ---------------------------------------------------

    @evaluating
    def complete_task(
        self,
        spec: ProcessSpec,
        state: Mapping[str, Any],
        task_id: str,
        variables: Mapping[str, Any] | None = None,
        *,
        owned: bool = False,
    ) -> StepResult:
        """Complete the user task ``task_id``: merge ``variables``, leave the task, run on.

        ``owned``: ``state`` is the caller's private copy (a fresh read), which the step may
        take as its own working copy instead of copying it again."""
        return self._resume(spec, state, "task", task_id, variables, owned)

    @evaluating
    def complete_external(
        self,
        spec: ProcessSpec,
        state: Mapping[str, Any],
        external_id: str,
        variables: Mapping[str, Any] | None = None,
    ) -> StepResult:
        """Complete the external task ``external_id`` and run on."""
        return self._resume(spec, state, "ext", external_id, variables)

    @evaluating
    def call_returned(
        self,
        spec: ProcessSpec,
        state: Mapping[str, Any],
        child_id: str,
        child_variables: Mapping[str, Any],
    ) -> StepResult:
        """The child instance of a call activity ended: map its variables out, run on."""
        run = self._run(spec, state, None)
        token_id = run.find_token("call", child_id)
        element = spec.element(run.tokens[token_id]["el"])
        if isinstance(element, CallActivity):
            run.state["vars"].update(_map_out(element, child_variables, run.visible_vars(token_id)))
        run.tokens[token_id].pop("call", None)
        run.leave(token_id)
        return run.finish()

    @evaluating
    def call_error(
        self,
        spec: ProcessSpec,
        state: Mapping[str, Any],
        child_id: str,
        code: str | None,
        message: str = "",
    ) -> StepResult | None:
        """A BPMN error nothing caught in the child ``child_id`` is thrown at its call activity.

        Returns the step when a boundary of the call activity or an event subprocess
        around it catches the error (the call activity, and so the child, is cancelled);
        None when nothing here catches it either (the state is unchanged; the caller
        walks on up, as Camunda 7 does).
        """
        run = self._run(spec, state, None)
        token_id = run.find_token("call", child_id)
        if not run.throw("error", code, message, token_id, from_activity=True):
            return None
        return run.finish()

    @evaluating
    def call_failed(
        self,
        spec: ProcessSpec,
        state: Mapping[str, Any],
        child_id: str,
        code: str | None,
        message: str = "",
    ) -> StepResult:
        """A child that ended with an error recorded by an older version (``escaped_error`` in its
        state): caught at the call activity as :meth:`call_error`, else the call activity completes."""
        caught = self.call_error(spec, state, child_id, code, message)
        if caught is not None:
            return caught
        run = self._run(spec, state, None)
        token_id = run.find_token("call", child_id)
        run.tokens[token_id].pop("call", None)
        run.leave(token_id)
        return run.finish()

    def _resume(
        self,
        spec: ProcessSpec,
        state: Mapping[str, Any],
        wait_key: str,
        wait_id: str,
        variables: Mapping[str, Any] | None,
        owned: bool = False,
    ) -> StepResult:
        run = self._run(spec, state, variables, owned)
        token_id = run.find_token(wait_key, wait_id)
        run.tokens[token_id].pop(wait_key, None)
        run.leave(token_id)
        return run.finish()

    def _run(
        self, spec: ProcessSpec, state: Mapping[str, Any], variables: Mapping[str, Any] | None, owned: bool = False
    ) -> _Run:
        # conditional events compare the variables with the state given: that one must stay as it was
        mine = owned and type(state) is dict and not conditions.has_conditions(spec)
        new_state = upgrade_state(state if mine else copy_plain(dict(state)))  # type: ignore[arg-type]
        if new_state["ended"]:
            raise Unprocessable("the process instance has ended", code="INSTANCE_ENDED")
        if variables:
            new_state["vars"].update(copy_plain(dict(variables)))
        run = _Run(self, spec, new_state)
        conditions.begin(run, state, variables)  # variable changes: those given, and against the state given
        return run

    @evaluating
    def trigger(
        self,
        spec: ProcessSpec,
        state: Mapping[str, Any],
        subscription_id: str,
        variables: Mapping[str, Any] | None = None,
    ) -> StepResult:
        """A timer fired, or a message or signal arrived, for one subscription."""
        run = self._run(spec, state, variables)
        if subscription_id not in run.subs:
            raise Unprocessable(f"subscription '{subscription_id}' is no longer waiting", code="NOT_WAITING")
        run.fire(subscription_id)
        return run.finish()

    @evaluating
    def throw_error(
        self,
        spec: ProcessSpec,
        state: Mapping[str, Any],
        external_id: str,
        code: str,
        message: str = "",
        variables: Mapping[str, Any] | None = None,
    ) -> StepResult:
        """An external task reports a BPMN error; a matching boundary or event subprocess catches it.

        Uncaught, the token at the external task ends there, as at a none end event, and
        the result reports the error (:class:`UncaughtError`) for a calling process."""
        run = self._run(spec, state, variables)
        token_id = run.find_token("ext", external_id)
        if not run.throw("error", code, message, token_id, from_activity=True):
            run.tokens[token_id].pop("ext", None)
            run.uncaught(code, message, token_id)
            run.end_token(token_id)
        return run.finish()

    def cancel(self, state: Mapping[str, Any]) -> StepResult:
        """End the instance at once, cancelling every open task, subscription and child."""
        new_state = upgrade_state(copy_plain(dict(state)))
        result = StepResult(new_state)
        for token in new_state["tokens"].values():
            _collect_cancellation(token, result)
        for sub_id, sub in new_state["subs"].items():
            if sub["kind"] != "conditional":  # conditional subscriptions live in the state only
                result.unsubscribed.append(_subscription(sub_id, sub))
        new_state["tokens"], new_state["subs"], new_state["mi"] = {}, {}, {}
        new_state["scopes"] = {ROOT: new_state["scopes"][ROOT]}
        new_state["ended"] = True
        return result


def upgrade_state(state: dict[str, Any]) -> dict[str, Any]:
    """Bring a stored state of an older format up to the current one."""
    state.setdefault("subs", {})
    state.setdefault("mi", {})
    state["format"] = STATE_FORMAT
    return state


def next_cycle_due(cycle: timers.Cycle, due: int, remaining: int | None, now: int) -> tuple[int, int | None] | None:
    """The next (due, remaining) of a cycle fired at ``due``, after ``now``.

    Periods missed while no worker ran (or the clock jumped ahead) are skipped and
    use up their repeats: a late timer fires once, not once per missed period.
    """
    following = cycle.next_after(due, remaining)
    if following is None or following[0] > now:
        return following
    skipped = (now - following[0]) // cycle.period_ms + 1
    next_due = following[0] + skipped * cycle.period_ms
    left = None if following[1] is None else following[1] - skipped
    if (left is not None and left < 0) or (cycle.end is not None and next_due > cycle.end):
        return None
    return next_due, left


def called_children(state: Mapping[str, Any]) -> list[str]:
    """The ids of the child instances the instance's call activities wait for, sorted."""
    return sorted({t["call"] for t in state.get("tokens", {}).values() if t.get("call")})


def waiting_elements(state: Mapping[str, Any]) -> list[str]:
    """The ids of the elements where tokens wait (for instance views)."""
    return sorted({t["el"] for t in state.get("tokens", {}).values()})


def _collect_cancellation(token: Mapping[str, Any], result: StepResult) -> None:
    if token.get("task"):
        result.cancelled.append(token["task"])
    if token.get("ext"):
        result.externals_cancelled.append(token["ext"])
    if token.get("call"):
        result.calls_cancelled.append(token["call"])


def _subscription(sub_id: str, sub: Mapping[str, Any]) -> Subscription:
    return Subscription(sub_id, sub["kind"], sub["el"], sub.get("name"), sub.get("due"))


class _Run:
    """One engine step: a work queue of token moves over a private copy of the state."""

    def __init__(self, engine: Engine, spec: ProcessSpec, state: dict[str, Any]) -> None:
        self.engine = engine
        self.spec = spec
        self.elements = spec.elements
        self.flows = spec.flows
        self.state = state
        self.tokens: dict[str, dict[str, Any]] = state["tokens"]
        self.scopes: dict[str, dict[str, Any]] = state["scopes"]
        self.subs: dict[str, dict[str, Any]] = state["subs"]
        self.bodies: dict[str, dict[str, Any]] = state["mi"]
        self.queue: deque[tuple[str, str]] = deque()
        self.result = StepResult(state)
        self.steps = 0
        self.now = engine.now_ms()

    # -- bookkeeping -----------------------------------------------------------------

    def next_id(self, prefix: str) -> str:
        self.state["seq"] += 1
        return f"{prefix}{self.state['seq']}"

    def spawn(self, element_id: str, scope: str, flow: str | None, **extra: Any) -> str:
        token_id = self.next_id("t")
        self.tokens[token_id] = {"el": element_id, "scope": scope, "flow": flow, **extra}
        self.queue.append(("enter", token_id))
        return token_id

    def find_token(self, wait_key: str, wait_id: str) -> str:
        for token_id, token in self.tokens.items():
            if token.get(wait_key) == wait_id:
                return token_id
        raise BpmError(f"nothing in the instance waits for '{wait_id}'", code="STATE_CORRUPT")

    def history(self, kind: str, element: Element, **extra: Any) -> None:
        entry = {"time": self.now, "type": kind, "elementId": element.id, "elementType": element.tag}
        entry["elementName"] = element.name
        if extra:
            entry.update(extra)
        self.result.history.append(entry)

    def finish(self) -> StepResult:
        queue, tokens, spec = self.queue, self.tokens, self.spec
        acts = {"enter": self.enter, "leave": self.leave, "execute": self.execute}
        while True:
            while queue:
                self.steps += 1
                if self.steps > MAX_STEPS:
                    raise Unprocessable(
                        f"process '{self.spec.key}' ran {MAX_STEPS} steps without waiting (an endless loop?)",
                        code="ENDLESS_LOOP",
                    )
                action, token_id = queue.popleft()
                if token_id in tokens:  # else removed meanwhile (terminate, interrupting event)
                    acts[action](token_id)
            if not (inclusive_joins(spec) and self.fire_inclusive_joins()) and not conditions.settle(self):
                return self.result

    def visible_vars(self, token_id: str | None) -> dict[str, Any]:
        """Instance variables overlaid by the local ones of the token's scopes and the token."""
        layers: list[Mapping[str, Any]] = []
        token = self.tokens.get(token_id) if token_id else None
        if token is not None:
            if token.get("vars"):
                layers.append(token["vars"])
            scope_id: str | None = token["scope"]
            while scope_id is not None:
                scope = self.scopes.get(scope_id, {})
                if scope.get("vars"):
                    layers.append(scope["vars"])
                scope_id = scope.get("parent")
        merged = dict(self.state["vars"])
        for layer in reversed(layers):
            merged.update(layer)
        return merged

    # -- entering elements -----------------------------------------------------------

    def enter(self, token_id: str) -> None:
        token = self.tokens[token_id]
        element = self.elements[token["el"]]
        entered = {"time": self.now, "type": "element.entered", "elementId": element.id, "elementType": element.tag}
        entered["elementName"] = element.name  # (self.history, inline: once per element entered)
        self.result.history.append(entered)
        if element.io_inputs or element.listeners:
            mappings.entered(self, token_id, element)
        if type(element) is EndEvent and element.terminate:
            self.end(token_id, element)  # at once: tokens queued behind it never reach their own end
            return
        if element.loop is not None and "mi" not in token and "loop" not in token:
            self.subscribe_boundaries(token_id, element)
            if element.loop.kind == "multi":
                self.start_multi_instance(token_id, element)
                return
            token["loop"] = 0
            if element.loop.test_before and not self.loop_continues(token_id, element):
                self.queue.append(("leave", token_id))
                return
        elif element.boundary and "mi" not in token:
            self.subscribe_boundaries(token_id, element)
        self.queue.append(("execute", token_id))

    def execute(self, token_id: str) -> None:
        element = self.elements[self.tokens[token_id]["el"]]
        act = _EXECUTE.get(type(element))  # element classes are final: one lookup, no isinstance chain
        if act is None:
            self.queue.append(("leave", token_id))
        else:
            act(self, token_id, element)

    def join_or_pass(self, token_id: str, element: Element) -> None:
        if len(element.incoming) > 1:
            self.arrive_at_join(token_id, element)
        else:
            self.queue.append(("leave", token_id))

    def throw_and_leave(self, token_id: str, element: IntermediateThrowEvent) -> None:
        if element.event is not None:
            self.throw_event(token_id, element.event, element)
        if token_id in self.tokens:
            self.queue.append(("leave", token_id))

    def open_task(self, token_id: str, element: UserTask) -> None:
        task_id = self.engine.new_id()
        self.tokens[token_id]["task"] = task_id
        variables = self.visible_vars(token_id)
        local = dict(self.tokens[token_id].get("vars", {}))
        self.result.created.append(resolve_task(task_id, element, variables, self.now, local))
        if element.listeners:
            mappings.task_created(self, token_id, element, self.result.created[-1])

    def open_external(self, token_id: str, element: ExternalTask) -> None:
        external_id = self.engine.new_id()
        self.tokens[token_id]["ext"] = external_id
        self.result.externals.append(
            NewExternalTask(
                id=external_id,
                element_id=element.id,
                name=element.label,
                topic=element.topic or element.id,
                retries=element.retries,
                priority=element.priority,
                kind=element.tag,
                variables=dict(self.tokens[token_id].get("vars", {})),
            )
        )

    def run_script(self, token_id: str, element: ScriptTask) -> None:
        try:
            assigned, value = run_script(element.script, element.language, self.visible_vars(token_id))
        except ExpressionError as exc:
            raise ExpressionError(f"script of '{element.label}' ({element.id}): {exc.message}") from exc
        except Unprocessable as exc:
            raise Unprocessable(f"script task '{element.label}' ({element.id}): {exc.message}", code=exc.code) from exc
        self.state["vars"].update(assigned)
        if element.result_variable:
            self.state["vars"][element.result_variable] = value
        self.queue.append(("leave", token_id))

    def arrive_at_join(self, token_id: str, element: Element) -> None:
        token = self.tokens[token_id]
        token["join"] = True
        if isinstance(element, InclusiveGateway):
            return  # fired by fire_inclusive_joins once no other token can still arrive
        waiting = self.join_waiters(element.id, token["scope"])
        if not all(waiting.get(flow) for flow in element.incoming):
            return
        for flow in element.incoming:  # one token per flow; extra arrivals wait for the next round
            del self.tokens[waiting[flow][0]]
        merged = self.next_id("t")
        self.tokens[merged] = {"el": element.id, "scope": token["scope"], "flow": None}
        self.queue.append(("leave", merged))

    def join_waiters(self, element_id: str, scope: str) -> dict[str, list[str]]:
        waiting: dict[str, list[str]] = {}
        for tid, tok in self.tokens.items():
            if tok.get("join") and tok["el"] == element_id and tok["scope"] == scope:
                waiting.setdefault(tok["flow"], []).append(tid)
        return waiting

    def fire_inclusive_joins(self) -> bool:
        """Fire each inclusive join that has arrivals and can get no more; True if one fired."""
        pending: dict[tuple[str, str], list[str]] = {}
        for tid, tok in self.tokens.items():
            if tok.get("join") and isinstance(self.elements[tok["el"]], InclusiveGateway):
                pending.setdefault((tok["el"], tok["scope"]), []).append(tid)
        for (element_id, scope), arrived in pending.items():
            if self.can_still_arrive(element_id, scope, set(arrived)):
                continue
            for tid in arrived:
                del self.tokens[tid]
            merged = self.next_id("t")
            self.tokens[merged] = {"el": element_id, "scope": scope, "flow": None}
            self.queue.append(("leave", merged))
            return True
        return False

    def can_still_arrive(self, gateway: str, scope: str, arrived: set[str]) -> bool:
        for tid, tok in self.tokens.items():
            if tid in arrived or tok["scope"] != scope:
                continue
            if self.reaches(tok["el"], gateway):
                return True
        return False

    def reaches(self, start: str, target: str) -> bool:
        """Whether a path of sequence flows (or boundary events) leads from ``start`` to ``target``."""
        seen: set[str] = set()
        todo = [start]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            element = self.elements[current]
            nexts = [self.flows[f].target for f in element.outgoing] + list(element.boundary)
            if target in nexts:
                return True
            todo.extend(nexts)
        return False

    def enter_subprocess(self, token_id: str, element: SubProcess) -> None:
        if not element.start_ids:
            raise Unprocessable(f"subprocess '{element.id}' has no none start event")
        scope_id = self.open_scope(token_id, element)
        self.open_scope_events(scope_id, element.event_subprocesses)
        self.spawn(element.start_ids[0], scope_id, None)

    def open_scope(self, token_id: str, element: Element) -> str:
        scope_id = self.next_id("s")
        token = self.tokens[token_id]
        self.scopes[scope_id] = {"el": element.id, "parent": token["scope"], "token": token_id}
        if token.get("vars"):
            self.scopes[scope_id]["vars"] = dict(token["vars"])
        token["sub"] = scope_id
        return scope_id

    def open_scope_events(self, scope_id: str, event_subprocesses: Iterable[str]) -> None:
        """Subscribe the timer/message/signal starts of a scope's event subprocesses."""
        for esp_id in event_subprocesses:
            esp = self.elements[esp_id]
            assert isinstance(esp, SubProcess)
            for start_id in self.event_starts(esp):
                start = self.elements[start_id]
                assert isinstance(start, StartEvent) and start.event is not None
                if start.event.kind in SUBSCRIBABLE:
                    self.subscribe(start.event, start, None, scope_id)

    def event_starts(self, esp: SubProcess) -> list[str]:
        return [
            e.id
            for e in self.spec.elements.values()
            if e.scope == esp.id and isinstance(e, StartEvent) and e.event is not None
        ]

    def call(self, token_id: str, element: CallActivity) -> None:
        variables = self.visible_vars(token_id)
        if element.called_element is None:
            raise Unprocessable(f"call activity '{element.id}' names no process")
        key = str(_evaluate(element.called_element, variables, element, "called element") or "").strip()
        if not key:
            raise ExpressionError(f"called element of '{element.label}' ({element.id}) is empty")
        child_id = self.engine.new_id()
        self.tokens[token_id]["call"] = child_id
        business_key = None
        if element.business_key is not None:
            business_key = str(_evaluate(element.business_key, variables, element, "business key"))
        self.result.calls.append(
            CallRequest(
                token_id,
                element.id,
                child_id,
                key,
                element.binding,
                element.version,
                _map_in(element, variables),
                business_key,
            )
        )

    def wait_for_event(self, token_id: str, element: Element) -> None:
        self.tokens[token_id]["event"] = True
        if isinstance(element, ReceiveTask):
            definition = EventDefinition(kind="message", ref=element.message)
        else:
            assert isinstance(element, IntermediateCatchEvent) and element.event is not None
            definition = element.event
            if conditions.passes_on_arrival(self, token_id, element):
                self.tokens[token_id].pop("event", None)
                self.queue.append(("leave", token_id))
                return
        self.subscribe(definition, element, token_id, self.tokens[token_id]["scope"])

    def wait_at_event_gateway(self, token_id: str, element: EventBasedGateway) -> None:
        self.tokens[token_id]["event"] = True
        for flow_id in element.outgoing:
            target = self.spec.element(self.flows[flow_id].target)
            if isinstance(target, ReceiveTask):
                definition = EventDefinition(kind="message", ref=target.message)
            elif isinstance(target, IntermediateCatchEvent) and target.event is not None:
                definition = target.event
            else:
                raise Unprocessable(f"event-based gateway '{element.id}' leads to '{target.id}', not an event")
            self.subscribe(definition, target, token_id, self.tokens[token_id]["scope"], flow=flow_id)

    # -- subscriptions ---------------------------------------------------------------

    def subscribe(
        self, definition: EventDefinition, element: Element, token_id: str | None, scope: str, **extra: Any
    ) -> None:
        if definition.kind not in SUBSCRIBABLE:
            raise Unprocessable(f"'{element.id}' cannot wait for a {definition.kind} event")
        sub: dict[str, Any] = {"kind": definition.kind, "el": element.id, "token": token_id, "scope": scope, **extra}
        if definition.kind == "timer":
            sub.update(self.timer_schedule(definition, element, token_id))
        elif definition.kind == "conditional":
            self.subs[self.next_id("e")] = sub  # in the state only: its own variables trigger it (conditions.settle)
            return
        else:
            if not definition.ref:
                raise Unprocessable(f"'{element.id}' waits for a {definition.kind} with no name")
            sub["name"] = definition.ref
        sub_id = self.next_id("e")
        self.subs[sub_id] = sub
        self.result.subscribed.append(_subscription(sub_id, sub))

    def timer_schedule(self, definition: EventDefinition, element: Element, token_id: str | None) -> dict[str, Any]:
        variables = self.visible_vars(token_id)
        if definition.time_cycle is not None:
            text = str(_evaluate(definition.time_cycle, variables, element, "timer cycle"))
            cycle = timers.parse_cycle(text, self.now)
            return {"due": cycle.first_due, "cycle": text, "left": cycle.remaining}
        template = definition.time_date if definition.time_date is not None else definition.time_duration
        if template is None:
            raise Unprocessable(f"timer of '{element.id}' has no date, duration or cycle")
        value = _evaluate(template, variables, element, "timer")
        try:
            return {"due": timers.due_from_value(value, self.now)}
        except ExpressionError as exc:
            raise ExpressionError(f"timer of '{element.label}' ({element.id}): {exc.message}") from exc

    def unsubscribe(self, sub_id: str) -> None:
        sub = self.subs.pop(sub_id, None)
        if sub is not None and sub["kind"] != "conditional":
            self.result.unsubscribed.append(_subscription(sub_id, sub))

    def drop_subs(self, *, token: str | None = None, scope: str | None = None) -> None:
        if not self.subs:
            return
        for sub_id, sub in list(self.subs.items()):
            if (token is not None and sub["token"] == token) or (
                scope is not None and sub["token"] is None and sub["scope"] == scope
            ):
                self.unsubscribe(sub_id)

    def subscribe_boundaries(self, token_id: str, element: Element) -> None:
        if not element.boundary:
            return
        for boundary_id in element.boundary:
            boundary = self.elements[boundary_id]
            if isinstance(boundary, BoundaryEvent) and boundary.event and boundary.event.kind in SUBSCRIBABLE:
                self.subscribe(boundary.event, boundary, token_id, self.tokens[token_id]["scope"])

    def fire(self, sub_id: str) -> None:
        """Act on one subscription: catch event, boundary, event gateway or event subprocess."""
        sub = self.subs[sub_id]
        element = self.elements[sub["el"]]
        self.history("event.triggered", element)
        self.reschedule_or_drop(sub_id, element)
        if isinstance(element, BoundaryEvent):
            self.fire_boundary(element, sub["token"])
        elif isinstance(element, StartEvent):
            self.start_event_subprocess(element, sub["scope"])
        else:
            token_id = sub["token"]
            token = self.tokens[token_id]
            if sub.get("flow"):  # event-based gateway: the first event wins
                self.drop_subs(token=token_id)
                token.update({"el": element.id, "flow": sub["flow"]})
                self.history("element.entered", element)
            token.pop("event", None)
            self.drop_subs(token=token_id)
            self.queue.append(("leave", token_id))

    def reschedule_or_drop(self, sub_id: str, element: Element) -> None:
        """Keep subscriptions that can fire again (non-interrupting), rescheduling cycles."""
        sub = self.subs[sub_id]
        repeats = (isinstance(element, BoundaryEvent) and not element.cancel_activity) or (
            isinstance(element, StartEvent) and not element.interrupting
        )
        if repeats and sub["kind"] == "timer" and sub.get("cycle"):
            cycle = timers.parse_cycle(sub["cycle"], self.now)
            following = next_cycle_due(cycle, sub["due"], sub.get("left"), self.now)
            if following is not None:
                sub["due"], sub["left"] = following
                self.result.subscribed.append(_subscription(sub_id, sub))
                return
        if not repeats or sub["kind"] == "timer":
            self.unsubscribe(sub_id)

    def fire_boundary(
        self, boundary: BoundaryEvent, activity_token: str, extra: Mapping[str, Any] | None = None
    ) -> None:
        activity_token = self.outer_token(activity_token)
        scope = self.tokens[activity_token]["scope"]
        if boundary.cancel_activity:
            self.cancel_token(activity_token)
        self.spawn_through(boundary, scope, extra)

    def spawn_through(self, element: Element, scope: str, extra: Mapping[str, Any] | None = None) -> None:
        """A token appears at an event element (boundary, start) and leaves it at once."""
        if extra:
            self.state["vars"].update(extra)
        token_id = self.next_id("t")
        self.tokens[token_id] = {"el": element.id, "scope": scope, "flow": None}
        self.history("element.entered", element)
        self.queue.append(("leave", token_id))

    def start_event_subprocess(self, start: StartEvent, scope: str, extra: Mapping[str, Any] | None = None) -> None:
        esp = self.elements[start.scope or ""]
        if start.interrupting:
            self.clear_scope(scope)
        token_id = self.next_id("t")
        self.tokens[token_id] = {"el": esp.id, "scope": scope, "flow": None}
        self.history("element.entered", esp)
        inner = self.open_scope(token_id, esp)
        if isinstance(esp, SubProcess):
            self.open_scope_events(inner, esp.event_subprocesses)
        if extra:
            self.state["vars"].update(extra)
        inner_token = self.next_id("t")
        self.tokens[inner_token] = {"el": start.id, "scope": inner, "flow": None}
        self.history("element.entered", start)
        self.queue.append(("leave", inner_token))

    # -- errors and escalations ------------------------------------------------------

    def throw(self, kind: str, code: str | None, message: str, token_id: str, *, from_activity: bool = False) -> bool:
        """Propagate an error or escalation from ``token_id`` outwards; True when caught."""
        extra_for = _catch_variables(kind, code, message)
        token = self.tokens[token_id]
        if from_activity:
            element = self.elements[token["el"]]
            boundary = self.matching_boundary(element, kind, code)
            if boundary is not None:
                self.fire_boundary(boundary, token_id, extra_for(boundary.event))
                return True
        scope = token["scope"]
        while True:
            start = self.matching_event_start(scope, kind, code)
            if start is not None:
                self.start_event_subprocess(start, scope, extra_for(start.event))
                return True
            if scope == ROOT:
                return False
            owner = self.outer_token(self.scopes[scope]["token"])
            owner_element = self.elements[self.tokens[owner]["el"]]
            boundary = self.matching_boundary(owner_element, kind, code)
            if boundary is not None:
                self.fire_boundary(boundary, owner, extra_for(boundary.event))
                return True
            scope = self.tokens[owner]["scope"]

    def matching_boundary(self, element: Element, kind: str, code: str | None) -> BoundaryEvent | None:
        for boundary_id in element.boundary:
            boundary = self.elements[boundary_id]
            if isinstance(boundary, BoundaryEvent) and _catches(boundary.event, kind, code):
                return boundary
        return None

    def matching_event_start(self, scope: str, kind: str, code: str | None) -> StartEvent | None:
        scope_element = self.scopes[scope]["el"]
        if scope_element is None:
            esps: Iterable[str] = self.spec.event_subprocesses
        else:
            owner = self.elements[scope_element]
            esps = owner.event_subprocesses if isinstance(owner, SubProcess) else ()
        fallback = None
        for esp_id in esps:
            esp = self.elements[esp_id]
            assert isinstance(esp, SubProcess)
            for start_id in self.event_starts(esp):
                start = self.elements[start_id]
                if isinstance(start, StartEvent) and _catches(start.event, kind, code):
                    if start.event is not None and start.event.ref is not None:
                        return start  # a specific code wins over a catch-all
                    fallback = fallback or start
        return fallback

    def throw_event(self, token_id: str, definition: EventDefinition, element: Element) -> None:
        """Intermediate throw / end event side effects other than terminate."""
        kind = definition.kind
        if kind in ("message", "signal"):
            self.result.thrown.append(Thrown(kind, definition.ref or "", element.id, dict(self.state["vars"])))
            self.history(f"{kind}.thrown", element, name=definition.ref)  # the outgoing notification
        elif kind == "escalation":
            self.throw("escalation", definition.ref, "", token_id)
        elif kind == "error" and not self.throw("error", definition.ref, "", token_id):
            # uncaught here: the token ends as at a none end event (see end()), and the
            # result reports the error so that a calling process may catch it (as in Camunda 7)
            self.uncaught(definition.ref, "", token_id)

    # -- multi-instance and loops ----------------------------------------------------

    def start_multi_instance(self, token_id: str, element: Element) -> None:
        loop = element.loop
        assert loop is not None
        variables = self.visible_vars(token_id)
        items: list[Any] | None = None
        if loop.collection is not None:
            value = _evaluate(loop.collection, variables, element, "multi-instance collection")
            if isinstance(value, dict):
                value = list(value)
            if not isinstance(value, (list, tuple)):
                raise ExpressionError(
                    f"multi-instance collection of '{element.label}' ({element.id}) is not a list: {value!r}"
                )
            items = list(value)
            total = len(items)
        else:
            value = _evaluate(loop.cardinality, variables, element, "loop cardinality")
            try:
                total = int(str(value).strip())
            except ValueError:
                raise ExpressionError(
                    f"loop cardinality of '{element.label}' ({element.id}) is not a number: {value!r}"
                ) from None
        if total > MAX_MULTI_INSTANCES or total < 0:
            raise Unprocessable(f"multi-instance '{element.id}' asks for {total} instances (1..{MAX_MULTI_INSTANCES})")
        if total == 0:
            self.queue.append(("leave", token_id))
            return
        body_id = self.next_id("m")
        self.bodies[body_id] = {
            "el": element.id,
            "scope": self.tokens[token_id]["scope"],
            "token": token_id,
            "total": total,
            "done": 0,
            "started": 0,
            "items": items,
        }
        self.tokens[token_id]["body"] = body_id
        for _ in range(1 if loop.sequential else total):
            self.start_inner(body_id)

    def start_inner(self, body_id: str) -> None:
        body = self.bodies[body_id]
        element = self.elements[body["el"]]
        assert element.loop is not None
        index = body["started"]
        body["started"] += 1
        local: dict[str, Any] = {"loopCounter": index}
        if element.loop.element_variable:
            local[element.loop.element_variable] = body["items"][index] if body["items"] is not None else index
        local.update(self.body_counters(body))
        token_id = self.next_id("t")
        self.tokens[token_id] = {"el": element.id, "scope": body["scope"], "flow": None, "mi": body_id, "vars": local}
        self.queue.append(("execute", token_id))

    def body_counters(self, body: Mapping[str, Any]) -> dict[str, int]:
        active = sum(1 for t in self.tokens.values() if t.get("mi") and self.bodies.get(t["mi"]) is body)
        return {"nrOfInstances": body["total"], "nrOfCompletedInstances": body["done"], "nrOfActiveInstances": active}

    def inner_done(self, token_id: str) -> None:
        token = self.tokens.pop(token_id)
        body_id = token["mi"]
        body = self.bodies[body_id]
        body["done"] += 1
        element = self.elements[body["el"]]
        assert element.loop is not None
        counters = self.body_counters(body)
        finished = body["done"] >= body["total"]
        if not finished and element.loop.completion_condition is not None:
            variables = {**self.visible_vars(body["token"]), **token.get("vars", {}), **counters}
            finished = _condition(element.loop.completion_condition, variables, element, "completion condition")
        if finished:
            for tid in [t for t, tok in self.tokens.items() if tok.get("mi") == body_id]:
                self.cancel_token(tid)
            del self.bodies[body_id]
            outer = body["token"]
            self.tokens[outer].pop("body", None)
            self.queue.append(("leave", outer))
        elif element.loop.sequential:
            self.start_inner(body_id)

    def loop_continues(self, token_id: str, element: Element) -> bool:
        loop = element.loop
        assert loop is not None
        token = self.tokens[token_id]
        if loop.maximum is not None and token["loop"] >= loop.maximum:
            return False
        if loop.loop_condition is None:
            return True
        variables = {**self.visible_vars(token_id), "loopCounter": token["loop"]}
        return _condition(loop.loop_condition, variables, element, "loop condition")

    # -- leaving elements ------------------------------------------------------------

    def leave(self, token_id: str) -> None:
        token = self.tokens[token_id]
        element = self.elements[token["el"]]
        if "mi" in token:
            self.history("element.left", element)
            self.inner_done(token_id)
            return
        if element.loop is not None and element.loop.kind == "standard" and "loop" in token:
            token["loop"] += 1
            if self.loop_continues(token_id, element):
                self.queue.append(("execute", token_id))
                return
            token.pop("loop", None)
        if element.io_outputs or element.listeners:
            mappings.leaving(self, token_id, element)
        self.history("element.left", element)
        if self.subs:
            self.drop_subs(token=token_id)
        flows = self.select_flows(element, token_id)
        if not flows:
            self.consume(token_id)
            return
        mappings.taken(self, flows, token_id)
        scope = token["scope"]
        del self.tokens[token_id]
        for flow_id in flows:
            self.spawn(self.flows[flow_id].target, scope, flow_id)

    def select_flows(self, element: Element, token_id: str) -> list[str]:
        outgoing = element.outgoing
        if len(outgoing) == 1 and type(element) not in _GATEWAYS and self.spec.flows[outgoing[0]].condition is None:
            return [outgoing[0]]  # the one flow, unconditional (as the general rule below takes it)
        if isinstance(element, ParallelGateway):
            return list(element.outgoing)
        if isinstance(element, ExclusiveGateway):
            return [self.choose_exclusive(element, token_id)]
        taken = [f for f in element.outgoing if f != element.default and self.condition_holds(f, token_id)]
        if not taken and element.default:
            taken = [element.default]
        if element.outgoing and not taken:
            raise NoMatchingFlow(
                f"no outgoing sequence flow of '{element.label}' ({element.id}) has a condition that holds"
            )
        return taken

    def choose_exclusive(self, element: ExclusiveGateway, token_id: str) -> str:
        for flow_id in element.outgoing:
            if flow_id != element.default and self.condition_holds(flow_id, token_id):
                return flow_id
        if element.default:
            return element.default
        raise NoMatchingFlow(
            f"exclusive gateway '{element.label}' ({element.id}) has no outgoing flow whose "
            "condition holds and no default flow"
        )

    def condition_holds(self, flow_id: str, token_id: str) -> bool:
        condition = self.flows[flow_id].condition
        if condition is None:
            return True
        try:
            return bool(condition.evaluate_condition(self.visible_vars(token_id)))  # type: ignore[attr-defined]
        except ExpressionError as exc:
            raise ExpressionError(f"condition of sequence flow '{flow_id}': {exc.message}") from exc

    # -- ending ----------------------------------------------------------------------

    def end(self, token_id: str, element: EndEvent) -> None:
        mappings.leaving(self, token_id, element)
        scope = self.tokens[token_id]["scope"]
        if element.terminate:
            self.history("element.left", element)
            self.clear_scope(scope)
            self.complete_scope(scope)
            return
        if element.event is not None and element.event.kind != "terminate":
            self.throw_event(token_id, element.event, element)
        if token_id in self.tokens:
            self.history("element.left", element)
            self.consume(token_id)

    def uncaught(self, code: str | None, message: str, token_id: str) -> None:
        """Record a BPMN error nothing in this instance catches (history, and the result)."""
        element = self.elements[self.tokens[token_id]["el"]]
        self.history("error.uncaught", element, errorCode=code, errorMessage=message)
        self.result.uncaught.append(UncaughtError(code, message, element.id))

    def end_token(self, token_id: str) -> None:
        """End a token where it stands (an uncaught error): no outgoing flow is taken."""
        token = self.tokens[token_id]
        self.history("element.left", self.elements[token["el"]])
        self.drop_subs(token=token_id)
        if "mi" in token:
            self.inner_done(token_id)
        else:
            self.consume(token_id)

    def consume(self, token_id: str) -> None:
        scope = self.tokens.pop(token_id)["scope"]
        if scope in self.scopes and not any(t["scope"] == scope for t in self.tokens.values()):
            self.complete_scope(scope)

    def outer_token(self, token_id: str) -> str:
        """The token that stands for the whole activity (the multi-instance body's, if any)."""
        token = self.tokens[token_id]
        if token.get("mi") and token["mi"] in self.bodies:
            return str(self.bodies[token["mi"]]["token"])
        return token_id

    def cancel_token(self, token_id: str) -> None:
        """Remove a token and everything it waits for: task, external task, child, scope, inner instances."""
        token = self.tokens.pop(token_id, None)
        if token is None:
            return
        _collect_cancellation(token, self.result)
        self.drop_subs(token=token_id)
        if token.get("sub"):
            self.clear_scope(token["sub"])
            self.drop_subs(scope=token["sub"])
            self.scopes.pop(token["sub"], None)
        if token.get("body"):
            body_id = token["body"]
            for tid in [t for t, tok in self.tokens.items() if tok.get("mi") == body_id]:
                self.cancel_token(tid)
            self.bodies.pop(body_id, None)

    def clear_scope(self, scope: str) -> None:
        """Remove every token of ``scope`` and its nested scopes, cancelling what they wait for."""
        for tid in [t for t, tok in self.tokens.items() if tok["scope"] == scope]:
            self.cancel_token(tid)
        self.drop_subs(scope=scope)
        for sub_id in [s for s, sub in self.subs.items() if sub["scope"] == scope]:
            self.unsubscribe(sub_id)

    def complete_scope(self, scope: str) -> None:
        self.drop_subs(scope=scope)
        if scope == ROOT:
            self.clear_scope(ROOT)
            self.state["ended"] = True
            return
        owner = self.scopes.pop(scope)["token"]
        token = self.tokens[owner]
        token.pop("sub", None)
        self.queue.append(("leave", owner))


#: id(spec) -> (the spec, whether it has an inclusive join); specs are immutable and few
_INCLUSIVE_JOINS: dict[int, tuple[ProcessSpec, bool]] = {}


def inclusive_joins(spec: ProcessSpec) -> bool:
    """Whether the spec has an inclusive gateway that joins (else no step needs to look for one)."""
    known = _INCLUSIVE_JOINS.get(id(spec))
    if known is not None and known[0] is spec:
        return known[1]
    found = any(type(e) is InclusiveGateway and len(e.incoming) > 1 for e in spec.elements.values())
    if len(_INCLUSIVE_JOINS) > 4096:
        _INCLUSIVE_JOINS.clear()
    _INCLUSIVE_JOINS[id(spec)] = (spec, found)
    return found


_GATEWAYS = frozenset({ParallelGateway, ExclusiveGateway, InclusiveGateway, EventBasedGateway})
#: what executing an element does, by its class (anything else: the token leaves at once)
_EXECUTE: dict[type, Callable[[_Run, str, Any], None]] = {
    UserTask: _Run.open_task,
    ExternalTask: _Run.open_external,
    ScriptTask: _Run.run_script,
    ParallelGateway: _Run.join_or_pass,
    InclusiveGateway: _Run.join_or_pass,
    EventBasedGateway: _Run.wait_at_event_gateway,
    SubProcess: _Run.enter_subprocess,
    CallActivity: _Run.call,
    IntermediateCatchEvent: _Run.wait_for_event,
    ReceiveTask: _Run.wait_for_event,
    IntermediateThrowEvent: _Run.throw_and_leave,
    EndEvent: _Run.end,
}
