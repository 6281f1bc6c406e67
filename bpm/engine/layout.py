"""What every step of a spec looks up the same way, worked out once per spec (specs are immutable)."""

from __future__ import annotations

from dataclasses import dataclass

from bpm.engine import conditions
from bpm.model.spec import EventBasedGateway, ExclusiveGateway, InclusiveGateway, ParallelGateway, ProcessSpec

#: the elements whose outgoing flows are chosen by their own rules (see Gateways.select_flows)
GATEWAYS = frozenset({ParallelGateway, ExclusiveGateway, InclusiveGateway, EventBasedGateway})


@dataclass(frozen=True, slots=True)
class Layout:
    """One spec's facts for its steps (shared by every step of the spec: read only)."""

    #: element id -> ``(flow id, target id)`` of each element (not a gateway) that leaves by one
    #: outgoing sequence flow without a condition or ``take`` listeners: the flow every token takes
    exits: dict[str, tuple[str, str]]
    #: whether an inclusive gateway joins (else no step looks for one to fire)
    inclusive_joins: bool
    #: whether any event is conditional (else the hooks of :mod:`bpm.engine.conditions` have nothing to do)
    conditional: bool


#: id(spec) -> (the spec, its layout); specs are immutable and few
_LAYOUTS: dict[int, tuple[ProcessSpec, Layout]] = {}


def layout(spec: ProcessSpec) -> Layout:
    """The spec's :class:`Layout`, worked out at its first step."""
    known = _LAYOUTS.get(id(spec))
    if known is not None and known[0] is spec:
        return known[1]
    found = _work_out(spec)
    if len(_LAYOUTS) > 4096:
        _LAYOUTS.clear()
    _LAYOUTS[id(spec)] = (spec, found)
    return found


def _work_out(spec: ProcessSpec) -> Layout:
    exits: dict[str, tuple[str, str]] = {}
    for element in spec.elements.values():
        if len(element.outgoing) != 1 or type(element) in GATEWAYS:
            continue
        flow = spec.flows[element.outgoing[0]]
        if flow.condition is None and not flow.listeners:
            exits[element.id] = (flow.id, flow.target)
    return Layout(
        exits,
        any(type(e) is InclusiveGateway and len(e.incoming) > 1 for e in spec.elements.values()),
        conditions.has_conditions(spec),
    )
