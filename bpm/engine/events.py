"""Events: subscriptions, boundary events, event subprocesses, errors and escalations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bpm.engine import conditions, timers
from bpm.engine.resolve import _catch_variables, _catches, _evaluate
from bpm.engine.results import Subscription, Thrown
from bpm.engine.step import ROOT, SUBSCRIBABLE, Step
from bpm.errors import ExpressionError, Unprocessable
from bpm.model.spec import (
    BoundaryEvent,
    Element,
    EventBasedGateway,
    EventDefinition,
    IntermediateCatchEvent,
    ReceiveTask,
    StartEvent,
    SubProcess,
)


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


def _subscription(sub_id: str, sub: Mapping[str, Any]) -> Subscription:
    return Subscription(sub_id, sub["kind"], sub["el"], sub.get("name"), sub.get("due"))


class Events(Step):
    """The step's event handling (a part of ``bpm.engine.engine._Run``)."""

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
