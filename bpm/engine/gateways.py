"""Gateways: the outgoing flows an element takes, and the joins where tokens wait for each other."""

from __future__ import annotations

from bpm.engine.layout import GATEWAYS as _GATEWAYS
from bpm.engine.step import Step
from bpm.errors import ExpressionError, NoMatchingFlow
from bpm.model.spec import Element, ExclusiveGateway, InclusiveGateway, ParallelGateway


class Gateways(Step):
    """The step's flow selection and joins (a part of ``bpm.engine.engine._Run``)."""

    def arrive_at_join(self, token_id: str, element: Element) -> None:
        token = self.tokens[token_id]
        token["join"] = True
        if isinstance(element, InclusiveGateway):
            return  # fired by fire_inclusive_joins once no other token can still arrive
        waiting = self.join_waiters(element.id, token["scope"])
        for flow in element.incoming:  # (a loop: a generator would make a closure per arrival)
            if not waiting.get(flow):
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

    def select_flows(self, element: Element, token_id: str) -> list[str]:
        outgoing = element.outgoing
        if len(outgoing) == 1 and type(element) not in _GATEWAYS and self.spec.flows[outgoing[0]].condition is None:
            return [outgoing[0]]  # the one flow, unconditional (as the general rule below takes it)
        if isinstance(element, ParallelGateway):
            return list(element.outgoing)
        if isinstance(element, ExclusiveGateway):
            return [self.choose_exclusive(element, token_id)]
        taken = self.holding(element, token_id)
        if not taken and element.default:
            taken = [element.default]
        if element.outgoing and not taken:
            raise NoMatchingFlow(
                f"no outgoing sequence flow of '{element.label}' ({element.id}) has a condition that holds"
            )
        return taken

    def holding(self, element: Element, token_id: str) -> list[str]:
        """The outgoing flows of ``element`` but its default whose conditions hold (a method of its
        own: the comprehension's closure cells are made only where it runs)."""
        return [f for f in element.outgoing if f != element.default and self.condition_holds(f, token_id)]

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
