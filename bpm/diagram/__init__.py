"""Process diagrams as SVG, drawn on the server from a BPMN file's DI, or laid out when it has none.

Pure Python on the stored XML of a definition (no Flask, no backend)::

    drawing = draw(definition.xml, "bookingRoom", title="booking room")
    drawing.svg            # the document
    draw(xml, key, highlights=Highlights.of(active=[...], history=[...], incidents=[...]))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bpm.diagram.layout import auto_layout, is_flow_node
from bpm.diagram.model import Diagram, SourceModel, read_diagram, read_source
from bpm.diagram.svg import render


@dataclass(frozen=True, slots=True)
class Highlights:
    """An instance's state on its diagram: where tokens wait, what ran, where incidents are."""

    active: frozenset[str] = frozenset()
    done: frozenset[str] = frozenset()
    incident: frozenset[str] = frozenset()
    #: (element left, element entered next): the sequence flows a token took
    taken: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def of(
        cls,
        *,
        active: Iterable[str] = (),
        history: Iterable[Mapping[str, Any]] = (),
        incidents: Iterable[str] = (),
    ) -> Highlights:
        """From the instance's waiting elements, its history (oldest first) and its incidents' element ids.

        The engine records a token's move as ``element.left`` of the source followed by
        ``element.entered`` of the target, so the flow taken into an element is the one
        from the element left most recently before it was entered.
        """
        left: set[str] = set()
        taken: set[tuple[str, str]] = set()
        last_left: str | None = None
        for entry in history:
            element = entry.get("elementId")
            if not isinstance(element, str):
                continue
            if entry.get("type") == "element.left":
                left.add(element)
                last_left = element
            elif entry.get("type") == "element.entered" and last_left is not None:
                taken.add((last_left, element))
        return cls(frozenset(active), frozenset(left), frozenset(incidents), frozenset(taken))

    def states(self, source: SourceModel) -> dict[str, str]:
        """Element id -> ``active``/``done``/``incident`` (an incident wins over active, active over done)."""
        states = dict.fromkeys(self.done, "done")
        for element in source.elements.values():
            if element.kind == "sequenceFlow" and (element.source, element.target) in self.taken:
                states[element.id] = "done"
        states.update(dict.fromkeys(self.active, "active"))
        states.update(dict.fromkeys(self.incident, "incident"))
        return states


@dataclass(frozen=True, slots=True)
class Drawing:
    svg: str
    shapes: int
    edges: int
    auto_layout: bool
    #: nodes and flows placed by the automatic layout (0 with DI)
    layout_work: int


def draw(xml: str | bytes, process_key: str, *, title: str = "", highlights: Highlights | None = None) -> Drawing:
    """The diagram of ``process_key`` in a BPMN file, as SVG."""
    source = read_source(xml)
    diagram: Diagram | None = read_diagram(source, process_key)
    if diagram is not None and not any(
        is_flow_node(s.element) and source.in_process(s.element.id, process_key) for s in diagram.shapes
    ):
        diagram = None  # DI that names none of the process's nodes (pools only, or ids that do not match)
    work = 0
    automatic = diagram is None
    if diagram is None:
        diagram, work = auto_layout(source, process_key)
    states = highlights.states(source) if highlights else {}
    svg = render(diagram, title=title or process_key, states=states)
    return Drawing(svg, len(diagram.shapes), len(diagram.edges), automatic, work)


__all__ = ["Drawing", "Highlights", "draw"]
