"""What a diagram shows, read from a BPMN file: the semantic elements and their DI (shapes, edges).

Pure data, no drawing: :func:`read_diagram` returns a :class:`Diagram` for one
process of a file, taken from the file's DI (``bpmndi:BPMNPlane``) where it has
one for that process, else ``None`` (the caller then lays it out itself, see
:mod:`bpm.diagram.layout`). The XML is parsed without DTDs, entities or network,
like the model parser does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

MODEL_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

#: containers of flow elements
CONTAINERS = frozenset({"process", "subProcess", "transaction", "adHocSubProcess"})
#: semantic kinds drawn as edges
EDGE_KINDS = frozenset({"sequenceFlow", "messageFlow", "association", "dataInputAssociation", "dataOutputAssociation"})
#: elements that are not drawn themselves (definitions, their parts, expressions ...)
_SKIPPED = frozenset({"definitions", "collaboration", "laneSet", "extensionElements", "documentation"})


@dataclass(frozen=True, slots=True)
class Element:
    """One semantic BPMN element that may be drawn."""

    id: str
    kind: str  #: the BPMN tag's local name: userTask, startEvent, exclusiveGateway ...
    name: str = ""
    parent: str | None = None  #: the process or subprocess holding it
    event: str | None = None  #: an event's definition: timer, message, signal, error ...
    interrupting: bool = True  #: False for non-interrupting boundary and event-subprocess starts
    loop: str | None = None  #: "parallel", "sequential" (multi-instance) or "standard"
    event_subprocess: bool = False
    source: str | None = None  #: edges
    target: str | None = None
    default: bool = False  #: a gateway's or activity's default flow
    conditional: bool = False  #: a sequence flow with a condition leaving an activity
    attached_to: str | None = None  #: a boundary event's host
    lane_members: tuple[str, ...] = ()  #: a lane's flowNodeRefs
    process_ref: str | None = None  #: a participant's process


@dataclass(frozen=True, slots=True)
class Bounds:
    x: float
    y: float
    width: float
    height: float

    @property
    def cx(self) -> float:
        return self.x + self.width / 2

    @property
    def cy(self) -> float:
        return self.y + self.height / 2


@dataclass(frozen=True, slots=True)
class Shape:
    element: Element
    bounds: Bounds
    expanded: bool = True  #: subprocesses and pools drawn open (their content inside)
    horizontal: bool = True  #: pools and lanes: header on the left
    label: Bounds | None = None


@dataclass(frozen=True, slots=True)
class Edge:
    element: Element
    points: tuple[tuple[float, float], ...]
    label: Bounds | None = None


@dataclass(slots=True)
class Diagram:
    """Everything to draw, in drawing order (containers before their content)."""

    shapes: list[Shape] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def extent(self) -> Bounds:
        """The rectangle holding every shape, edge point and label."""
        xs: list[float] = []
        ys: list[float] = []
        for shape in self.shapes:
            for box in (shape.bounds, shape.label):
                if box is not None:
                    xs += [box.x, box.x + box.width]
                    ys += [box.y, box.y + box.height]
        for edge in self.edges:
            xs += [p[0] for p in edge.points]
            ys += [p[1] for p in edge.points]
            if edge.label is not None:
                xs += [edge.label.x, edge.label.x + edge.label.width]
                ys += [edge.label.y, edge.label.y + edge.label.height]
        if not xs:
            return Bounds(0, 0, 100, 100)
        return Bounds(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


@dataclass(slots=True)
class SourceModel:
    """The semantic elements of one file, and its root for DI lookups."""

    root: etree._Element
    elements: dict[str, Element]

    def in_process(self, element_id: str, process_key: str) -> bool:
        """Whether an element belongs (at any depth) to the process ``process_key``."""
        seen = 0
        current: str | None = element_id
        while current is not None and seen < 10_000:
            if current == process_key:
                return True
            found = self.elements.get(current)
            current = found.parent if found else None
            seen += 1
        return False


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def local(tag: object) -> str:
    """The local name of a ``{namespace}name`` tag ("" for comments and the like)."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


_MODEL_PREFIX = f"{{{MODEL_NS}}}"


def _is_model(node: etree._Element) -> bool:
    tag = node.tag
    return isinstance(tag, str) and tag.startswith(_MODEL_PREFIX)


def _event_definition(node: etree._Element) -> str | None:
    for child in node:
        name = local(child.tag)
        if _is_model(child) and name.endswith("EventDefinition"):
            return name[: -len("EventDefinition")]
    return None


def _loop(node: etree._Element) -> str | None:
    for child in node:
        name = local(child.tag)
        if name == "multiInstanceLoopCharacteristics":
            return "sequential" if child.get("isSequential", "false").strip() == "true" else "parallel"
        if name == "standardLoopCharacteristics":
            return "standard"
    return None


def _parent_id(node: etree._Element) -> str | None:
    parent = node.getparent()
    while parent is not None:
        if _is_model(parent) and local(parent.tag) in CONTAINERS:
            return parent.get("id")
        parent = parent.getparent()
    return None


def read_source(xml: str | bytes) -> SourceModel:
    """Parse a BPMN file (as stored at deployment) into its drawable semantic elements."""
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    root = etree.fromstring(data, _safe_parser())
    elements: dict[str, Element] = {}
    defaults = {n.get("default") for n in root.iter() if _is_model(n) and n.get("default")}
    kinds = {n.get("id"): local(n.tag) for n in root.iter() if _is_model(n) and n.get("id")}
    for node in root.iter():
        if not _is_model(node):
            continue
        kind = local(node.tag)
        element_id = node.get("id")
        if not element_id and kind == "sequenceFlow":  # allowed by some engines' test files
            element_id = f"{kind}:{node.get('sourceRef', '')}->{node.get('targetRef', '')}:{len(elements)}"
        if not element_id or kind in _SKIPPED or kind.endswith(("EventDefinition", "LoopCharacteristics")):
            continue
        source_kind = kinds.get(node.get("sourceRef"), "")
        has_condition = any(local(c.tag) == "conditionExpression" for c in node)
        elements[element_id] = Element(
            id=element_id,
            kind=kind,
            name=(node.get("name") or _annotation(node)).strip(),
            parent=_parent_id(node),
            event=_event_definition(node) if kind.endswith("Event") else None,
            interrupting=node.get("cancelActivity", "true").strip() != "false"
            and node.get("isInterrupting", "true").strip() != "false",
            loop=_loop(node),
            event_subprocess=node.get("triggeredByEvent", "false").strip() == "true",
            source=node.get("sourceRef") or _association_end(node, "sourceRef"),
            target=node.get("targetRef") or _association_end(node, "targetRef"),
            default=element_id in defaults,
            conditional=has_condition and not source_kind.endswith("Gateway"),
            attached_to=node.get("attachedToRef"),
            lane_members=tuple((ref.text or "").strip() for ref in node if local(ref.tag) == "flowNodeRef"),
            process_ref=node.get("processRef"),
        )
    return SourceModel(root, elements)


def _annotation(node: etree._Element) -> str:
    """A text annotation's text (other elements have none)."""
    for child in node:
        if local(child.tag) == "text" and child.text:
            return child.text
    return ""


def _association_end(node: etree._Element, name: str) -> str | None:
    """Data associations name their ends in child elements."""
    for child in node:
        if local(child.tag) == name and child.text:
            return child.text.strip()
    return None


def _bounds(node: etree._Element) -> Bounds | None:
    for child in node:
        if local(child.tag) == "Bounds":
            try:
                return Bounds(*(float(child.get(a, "0")) for a in ("x", "y", "width", "height")))
            except ValueError:
                return None
    return None


def _label_bounds(node: etree._Element) -> Bounds | None:
    for child in node:
        if local(child.tag) == "BPMNLabel":
            return _bounds(child)
    return None


def _plane_for(source: SourceModel, process_key: str) -> etree._Element | None:
    """The DI plane that draws ``process_key``: its own, its collaboration's, or one holding its shapes."""
    planes = [p for p in source.root.iter(f"{{{DI_NS}}}BPMNPlane")]
    participants = {e.id for e in source.elements.values() if e.process_ref == process_key}
    for plane in planes:
        ref = plane.get("bpmnElement")
        if ref == process_key:
            return plane
    for plane in planes:
        refs = {s.get("bpmnElement") for s in plane.iter(f"{{{DI_NS}}}BPMNShape")}
        if participants & refs:
            return plane
    for plane in planes:
        for shape in plane.iter(f"{{{DI_NS}}}BPMNShape"):
            ref = shape.get("bpmnElement") or ""
            if ref in source.elements and source.in_process(ref, process_key):
                return plane
    return None


def read_diagram(source: SourceModel, process_key: str) -> Diagram | None:
    """The DI of ``process_key``'s plane (None when the file has no DI for it)."""
    plane = _plane_for(source, process_key)
    if plane is None:
        return None
    diagram = Diagram()
    for node in plane:
        name = local(node.tag)
        element = source.elements.get(node.get("bpmnElement") or "")
        if element is None:
            continue
        if name == "BPMNShape":
            bounds = _bounds(node)
            if bounds is None:
                continue
            expanded = node.get("isExpanded", "true" if element.kind == "participant" else "false") == "true"
            horizontal = node.get("isHorizontal", "true") != "false"
            diagram.shapes.append(Shape(element, bounds, expanded, horizontal, _label_bounds(node)))
        elif name == "BPMNEdge":
            points: list[tuple[float, float]] = []
            for waypoint in node:
                if local(waypoint.tag) == "waypoint":
                    try:
                        points.append((float(waypoint.get("x", "0")), float(waypoint.get("y", "0"))))
                    except ValueError:
                        continue
            if len(points) >= 2:
                diagram.edges.append(Edge(element, tuple(points), _label_bounds(node)))
    if not diagram.shapes:
        return None
    diagram.shapes.sort(key=_drawing_order)
    return diagram


def _drawing_order(shape: Shape) -> int:
    """Pools, then lanes, then expanded subprocesses and groups, then the rest (boundaries last)."""
    kind = shape.element.kind
    if kind == "participant":
        return 0
    if kind == "lane":
        return 1
    if kind in CONTAINERS and shape.expanded:
        return 2
    if kind == "boundaryEvent":
        return 4
    return 3
