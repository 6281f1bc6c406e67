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

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from bpm.copying import copy_plain
from bpm.engine import conditions, mappings
from bpm.engine.evaluation import evaluating
from bpm.engine.events import Events, _subscription
from bpm.engine.events import next_cycle_due as next_cycle_due
from bpm.engine.executions import MAX_MULTI_INSTANCES as MAX_MULTI_INSTANCES
from bpm.engine.executions import Executions, _collect_cancellation
from bpm.engine.gateways import _GATEWAYS as _GATEWAYS
from bpm.engine.gateways import Gateways
from bpm.engine.resolve import DEFAULT_PRIORITY as DEFAULT_PRIORITY  # re-exported: the engine's names
from bpm.engine.resolve import _map_out, resolve_task
from bpm.engine.resolve import parse_due as parse_due
from bpm.engine.results import CallRequest as CallRequest  # re-exported: the engine's names
from bpm.engine.results import NewExternalTask as NewExternalTask
from bpm.engine.results import NewTask as NewTask
from bpm.engine.results import StepResult as StepResult
from bpm.engine.results import Subscription as Subscription
from bpm.engine.results import Thrown as Thrown
from bpm.engine.results import UncaughtError as UncaughtError
from bpm.engine.scripts import run_script
from bpm.engine.step import ROOT as ROOT
from bpm.engine.step import SUBSCRIBABLE as SUBSCRIBABLE
from bpm.errors import ExpressionError, Unprocessable
from bpm.expressions.beans import BeanRegistry
from bpm.model.spec import (
    CallActivity,
    Element,
    EndEvent,
    EventBasedGateway,
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
#: what a user task without expressions is resolved against (never read: see open_task)
_NO_VARIABLES: Mapping[str, Any] = MappingProxyType({})
MAX_STEPS = 10_000
WAIT_KEYS = ("task", "ext", "join", "sub", "call", "event", "body")


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
            "vars": copy_plain({**variables}),
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
        if run.layout.conditional:
            conditions.begin(run, None)
        if spec.event_subprocesses:
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
        owned: bool = False,
    ) -> StepResult:
        """Complete the user task ``task_id``: merge ``variables``, leave the task, run on.

        ``owned``: ``state`` is the caller's private copy (a fresh read), which the step may
        take as its own working copy instead of copying it again. (Positional for the
        completion's call: keywords through the :func:`evaluating` wrapper make a dict.)"""
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
            new_state["vars"].update(copy_plain({**variables}))
        run = _Run(self, spec, new_state)
        if run.layout.conditional:  # variable changes: those given, and against the state given
            conditions.begin(run, state, variables)
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


def called_children(state: Mapping[str, Any]) -> list[str]:
    """The ids of the child instances the instance's call activities wait for, sorted."""
    return sorted({t["call"] for t in state.get("tokens", {}).values() if t.get("call")})


def waiting_elements(state: Mapping[str, Any]) -> list[str]:
    """The ids of the elements where tokens wait (for instance views)."""
    return sorted({t["el"] for t in state.get("tokens", {}).values()})


class _Run(Events, Executions, Gateways):
    """One engine step: the step loop and what entering and leaving each element does.

    State and bookkeeping are in :class:`bpm.engine.step.Step`; the other parts in the modules of its bases.
    """

    # -- the step loop ---------------------------------------------------------------

    def finish(self) -> StepResult:
        queue, tokens, layout = self.queue, self.tokens, self.layout
        popleft = queue.popleft
        acts = _ACTIONS  # (the methods, called with self: no bound methods made per step)
        while True:
            steps = self.steps
            while queue:
                steps += 1
                if steps > MAX_STEPS:
                    raise Unprocessable(
                        f"process '{self.spec.key}' ran {MAX_STEPS} steps without waiting (an endless loop?)",
                        code="ENDLESS_LOOP",
                    )
                action, token_id = popleft()
                if token_id in tokens:  # else removed meanwhile (terminate, interrupting event)
                    acts[action](self, token_id)
            self.steps = steps
            if layout.inclusive_joins and self.fire_inclusive_joins():
                continue
            if not (layout.conditional and conditions.settle(self)):
                return self.result

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
        token = self.tokens[token_id]
        token["task"] = task_id
        resolved = (  # the variables only where an expression of the task reads them
            element.documentation
            or element.assignee is not None
            or element.candidate_users
            or element.candidate_groups
            or element.candidate_roles
            or element.due_date is not None
            or element.priority is not None
        )
        variables = self.visible_vars(token_id) if resolved else _NO_VARIABLES
        self.result.created.append(resolve_task(task_id, element, variables, self.now, token.get("vars") or {}))
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
        left = {"time": self.now, "type": "element.left", "elementId": element.id, "elementType": element.tag}
        left["elementName"] = element.name  # (self.history, inline: once per element left)
        self.result.history.append(left)
        if self.subs:
            self.drop_subs(token=token_id)
        plain = self.exits.get(element.id)
        if plain is not None:  # one unconditional flow, no listeners: what the general rule below does
            scope = token["scope"]
            del self.tokens[token_id]
            self.spawn(plain[1], scope, plain[0])
            return
        flows = self.select_flows(element, token_id)
        if not flows:
            self.consume(token_id)
            return
        mappings.taken(self, flows, token_id)
        scope = token["scope"]
        del self.tokens[token_id]
        for flow_id in flows:
            self.spawn(self.flows[flow_id].target, scope, flow_id)


#: the queued token moves, by name (what finish calls)
_ACTIONS: dict[str, Callable[[_Run, str], None]] = {"enter": _Run.enter, "leave": _Run.leave, "execute": _Run.execute}

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
