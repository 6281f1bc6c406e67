"""Executions: scopes (subprocesses, calls), multi-instance bodies and loops, and ending tokens and scopes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bpm.engine import mappings
from bpm.engine.resolve import _condition, _evaluate, _map_in
from bpm.engine.results import CallRequest, StepResult, UncaughtError
from bpm.engine.step import ROOT, Step
from bpm.errors import ExpressionError, Unprocessable
from bpm.model.spec import CallActivity, Element, EndEvent, SubProcess

MAX_MULTI_INSTANCES = 1000


def _collect_cancellation(token: Mapping[str, Any], result: StepResult) -> None:
    if token.get("task"):
        result.cancelled.append(token["task"])
    if token.get("ext"):
        result.externals_cancelled.append(token["ext"])
    if token.get("call"):
        result.calls_cancelled.append(token["call"])


class Executions(Step):
    """The step's scopes, loops and endings (a part of ``bpm.engine.engine._Run``)."""

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

    # -- ending ----------------------------------------------------------------------

    def end(self, token_id: str, element: EndEvent) -> None:
        if element.io_outputs or element.listeners:
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
        if scope in self.scopes:
            for token in self.tokens.values():  # (a loop: a generator would make a closure per call)
                if token["scope"] == scope:
                    return
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
        for tid in _of_scope(self.tokens, scope):
            self.cancel_token(tid)
        if self.subs:
            self.drop_subs(scope=scope)
            for sub_id in _of_scope(self.subs, scope):
                self.unsubscribe(sub_id)

    def complete_scope(self, scope: str) -> None:
        if self.subs:
            self.drop_subs(scope=scope)
        if scope == ROOT:
            self.clear_scope(ROOT)
            self.state["ended"] = True
            return
        owner = self.scopes.pop(scope)["token"]
        token = self.tokens[owner]
        token.pop("sub", None)
        self.queue.append(("leave", owner))


def _of_scope(entries: dict[str, dict[str, Any]], scope: str) -> list[str]:
    """The ids of the tokens or subscriptions of ``scope`` (a function of its own: the
    comprehension's closure cell is made only where it runs)."""
    return [entry_id for entry_id, entry in entries.items() if entry["scope"] == scope]
