"""What the parts of an engine step share: its state, its bookkeeping, and the names they call on each other.

The step (``bpm.engine.engine._Run``) is put together from parts by responsibility:
:class:`bpm.engine.gateways.Gateways`, :class:`bpm.engine.events.Events` and
:class:`bpm.engine.executions.Executions`, each a subclass of :class:`Step`; the
element behaviour and the step loop stay in :mod:`bpm.engine.engine`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from bpm.engine.layout import layout
from bpm.engine.results import new_result
from bpm.errors import BpmError
from bpm.expressions.temporal import fixed_now_ms
from bpm.model.spec import Element, EventDefinition, ProcessSpec

ROOT = "root"
SUBSCRIBABLE = frozenset({"timer", "message", "signal", "conditional"})


class Collaborators(Protocol):
    """What a step uses of its engine (``bpm.engine.engine.Engine``)."""

    new_id: Callable[[], str]
    now_ms: Callable[[], int]


class Step:
    """One engine step: a work queue of token moves over a private copy of the state."""

    def __init__(self, engine: Collaborators, spec: ProcessSpec, state: dict[str, Any]) -> None:
        self.engine = engine
        self.spec = spec
        self.elements = spec.elements
        self.flows = spec.flows
        self.layout = layout(spec)
        self.exits = self.layout.exits
        self.state = state
        self.tokens: dict[str, dict[str, Any]] = state["tokens"]
        self.scopes: dict[str, dict[str, Any]] = state["scopes"]
        self.subs: dict[str, dict[str, Any]] = state["subs"]
        self.bodies: dict[str, dict[str, Any]] = state["mi"]
        self.queue: deque[tuple[str, str]] = deque()
        self.result = new_result(state)
        self.steps = 0
        # the clock its engine method set from now_ms on entry (bpm.engine.evaluation): no second read
        now = fixed_now_ms()
        self.now = self.result.now = engine.now_ms() if now is None else now

    # -- bookkeeping -----------------------------------------------------------------

    def next_id(self, prefix: str) -> str:
        self.state["seq"] += 1
        return f"{prefix}{self.state['seq']}"

    def spawn(self, element_id: str, scope: str, flow: str | None) -> str:
        state = self.state
        state["seq"] = seq = state["seq"] + 1
        token_id = f"t{seq}"  # next_id("t"), inline: once per token
        self.tokens[token_id] = {"el": element_id, "scope": scope, "flow": flow}
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
        merged = {**self.state["vars"]}
        if layers:
            for layer in reversed(layers):
                merged.update(layer)
        return merged

    if TYPE_CHECKING:  # defined by one part, called by another: declared here for the type checker only

        def leave(self, token_id: str) -> None: ...
        def open_scope(self, token_id: str, element: Element) -> str: ...
        def open_scope_events(self, scope_id: str, event_subprocesses: Iterable[str]) -> None: ...
        def drop_subs(self, *, token: str | None = None, scope: str | None = None) -> None: ...
        def unsubscribe(self, sub_id: str) -> None: ...
        def throw_event(self, token_id: str, definition: EventDefinition, element: Element) -> None: ...
        def uncaught(self, code: str | None, message: str, token_id: str) -> None: ...
        def outer_token(self, token_id: str) -> str: ...
        def cancel_token(self, token_id: str) -> None: ...
        def clear_scope(self, scope: str) -> None: ...
