"""SVG diagrams drawn from BPMN DI, and the automatic layout for files without DI (bpm.diagram).

Every shape is a ``<g data-element-id>`` with ``bpm-<kind>``; highlights become
``bpm-active``/``bpm-done``/``bpm-incident``; text is escaped; every deployable
file of the shared corpus draws; a big model's layout work stays linear (counted,
not timed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path

import pytest
from lxml import etree

from backends.memory import MemoryBackend
from bpm.diagram import Highlights, draw
from bpm.diagram.layout import auto_layout
from bpm.diagram.model import read_diagram, read_source
from bpm.errors import InvalidDefinition
from bpm.runtime import Runtime
from tests.conftest import PROCESSES, SHARED_BPMN

SVG_NS = "http://www.w3.org/2000/svg"
NS = {"s": SVG_NS}
HOSTILE = "<img src=x onerror=alert(1)> & \"quoted\" 'single'"


def parse(svg: str) -> etree._Element:
    root = etree.fromstring(svg.encode("utf-8"))
    assert root.tag == f"{{{SVG_NS}}}svg"
    return root


def groups(root: etree._Element) -> dict[str, etree._Element]:
    found = {g.get("data-element-id"): g for g in root.iter(f"{{{SVG_NS}}}g") if g.get("data-element-id")}
    return found


def classes(group: etree._Element) -> set[str]:
    return set((group.get("class") or "").split())


# -- a model with every kind of element, drawn from DI ----------------------------------------

#: (id, tag, inner XML, attributes, (x, y, w, h))
NODES: list[tuple[str, str, str, str, tuple[int, int, int, int]]] = [
    ("start", "startEvent", "<messageEventDefinition/>", "", (0, 100, 36, 36)),
    ("user", "userTask", "", "", (80, 80, 100, 80)),
    ("service", "serviceTask", "", "", (220, 80, 100, 80)),
    ("script", "scriptTask", "", "", (360, 80, 100, 80)),
    ("send", "sendTask", "", "", (500, 80, 100, 80)),
    ("receive", "receiveTask", "", "", (640, 80, 100, 80)),
    ("manual", "manualTask", "", "", (780, 80, 100, 80)),
    ("rule", "businessRuleTask", "", "", (920, 80, 100, 80)),
    ("plain", "task", "<multiInstanceLoopCharacteristics isSequential='true'/>", "", (1060, 80, 100, 80)),
    ("call", "callActivity", "<multiInstanceLoopCharacteristics/>", 'calledElement="x"', (1200, 80, 100, 80)),
    ("xor", "exclusiveGateway", "", "", (0, 300, 50, 50)),
    ("and", "parallelGateway", "", "", (100, 300, 50, 50)),
    ("or", "inclusiveGateway", "", "", (200, 300, 50, 50)),
    ("evgw", "eventBasedGateway", "", "", (300, 300, 50, 50)),
    ("complex", "complexGateway", "", "", (400, 300, 50, 50)),
    ("timer", "intermediateCatchEvent", "<timerEventDefinition/>", "", (500, 300, 36, 36)),
    ("signal", "intermediateThrowEvent", "<signalEventDefinition/>", "", (600, 300, 36, 36)),
    ("link", "intermediateCatchEvent", "<linkEventDefinition/>", "", (650, 300, 36, 36)),
    ("cond", "intermediateCatchEvent", "<conditionalEventDefinition/>", "", (700, 300, 36, 36)),
    ("errorEnd", "endEvent", "<errorEventDefinition/>", "", (750, 300, 36, 36)),
    ("escEnd", "endEvent", "<escalationEventDefinition/>", "", (800, 300, 36, 36)),
    ("term", "endEvent", "<terminateEventDefinition/>", "", (850, 300, 36, 36)),
    ("comp", "intermediateThrowEvent", "<compensateEventDefinition/>", "", (900, 300, 36, 36)),
    ("end", "endEvent", "", "", (950, 300, 36, 36)),
    (
        "note",
        "textAnnotation",
        f"<text>{HOSTILE.replace('&', '&amp;').replace('<', '&lt;')}</text>",
        "",
        (0, 400, 120, 40),
    ),
    ("data", "dataObjectReference", "", 'dataObjectRef="do1"', (200, 400, 36, 50)),
    ("store", "dataStoreReference", "", "", (300, 400, 50, 50)),
]
BOUNDARY = (
    "bnd",
    '<boundaryEvent id="bnd" attachedToRef="user" cancelActivity="false"><timerEventDefinition/></boundaryEvent>',
)


def _xml_attr(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def every_kind_xml(name_of: dict[str, str] | None = None) -> str:
    name_of = name_of or {}
    nodes = "".join(
        f'<{tag} id="{i}" name="{_xml_attr(name_of.get(i, i.title()))}" {attrs}>{inner}</{tag}>'
        for i, tag, inner, attrs, _ in NODES
    )
    sub = (
        '<subProcess id="sub" name="Sub"><startEvent id="subStart"/><userTask id="inner" name="Inner"/>'
        '<sequenceFlow id="fsub" sourceRef="subStart" targetRef="inner"/></subProcess>'
        '<subProcess id="evsub" triggeredByEvent="true"><startEvent id="evStart" isInterrupting="false">'
        "<messageEventDefinition/></startEvent></subProcess>"
        '<transaction id="tx" name="Tx"/>'
    )
    flows = (
        '<sequenceFlow id="f1" name="go" sourceRef="start" targetRef="user"/>'
        '<sequenceFlow id="f2" sourceRef="user" targetRef="service"><conditionExpression>${x}</conditionExpression>'
        "</sequenceFlow>"
        '<sequenceFlow id="f3" sourceRef="xor" targetRef="and"/>'
        '<association id="a1" sourceRef="note" targetRef="user"/><dataObject id="do1"/>'
    )
    shapes = "".join(
        f'<bpmndi:BPMNShape id="{i}_di" bpmnElement="{i}"><dc:Bounds x="{x}" y="{y}" width="{w}" height="{h}"/>'
        "</bpmndi:BPMNShape>"
        for i, _, _, _, (x, y, w, h) in NODES
    )
    shapes += (
        '<bpmndi:BPMNShape id="pool_di" bpmnElement="pool" isHorizontal="true"><dc:Bounds x="-60" y="-40" width="1500"'
        ' height="700"/></bpmndi:BPMNShape>'
        '<bpmndi:BPMNShape id="lane_di" bpmnElement="lane1" isHorizontal="true"><dc:Bounds x="-30" y="-40" width="1470"'
        ' height="350"/></bpmndi:BPMNShape>'
        '<bpmndi:BPMNShape id="bnd_di" bpmnElement="bnd"><dc:Bounds x="130" y="142" width="36" height="36"/>'
        "</bpmndi:BPMNShape>"
        '<bpmndi:BPMNShape id="sub_di" bpmnElement="sub" isExpanded="true"><dc:Bounds x="400" y="450" width="300"'
        ' height="150"/></bpmndi:BPMNShape>'
        '<bpmndi:BPMNShape id="subStart_di" bpmnElement="subStart"><dc:Bounds x="420" y="500" width="36" height="36"/>'
        "</bpmndi:BPMNShape>"
        '<bpmndi:BPMNShape id="inner_di" bpmnElement="inner"><dc:Bounds x="500" y="480" width="100" height="80"/>'
        "</bpmndi:BPMNShape>"
        '<bpmndi:BPMNShape id="evsub_di" bpmnElement="evsub" isExpanded="false"><dc:Bounds x="750" y="450" width="100"'
        ' height="80"/></bpmndi:BPMNShape>'
        '<bpmndi:BPMNShape id="tx_di" bpmnElement="tx"><dc:Bounds x="900" y="450" width="100" height="80"/>'
        "</bpmndi:BPMNShape>"
    )
    edges = (
        '<bpmndi:BPMNEdge id="f1_di" bpmnElement="f1"><di:waypoint x="36" y="118"/><di:waypoint x="80" y="118"/>'
        '<bpmndi:BPMNLabel><dc:Bounds x="40" y="90" width="30" height="14"/></bpmndi:BPMNLabel></bpmndi:BPMNEdge>'
        '<bpmndi:BPMNEdge id="f2_di" bpmnElement="f2"><di:waypoint x="180" y="120"/><di:waypoint x="220" y="120"/>'
        "</bpmndi:BPMNEdge>"
        '<bpmndi:BPMNEdge id="f3_di" bpmnElement="f3"><di:waypoint x="50" y="325"/><di:waypoint x="75" y="325"/>'
        '<di:waypoint x="75" y="325"/><di:waypoint x="100" y="325"/></bpmndi:BPMNEdge>'
        '<bpmndi:BPMNEdge id="mf_di" bpmnElement="mf"><di:waypoint x="1250" y="160"/><di:waypoint x="1250" y="700"/>'
        "</bpmndi:BPMNEdge>"
        '<bpmndi:BPMNEdge id="fsub_di" bpmnElement="fsub"><di:waypoint x="456" y="518"/><di:waypoint x="500" y="518"/>'
        "</bpmndi:BPMNEdge>"
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"'
        ' xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"'
        ' xmlns:di="http://www.omg.org/spec/DD/20100524/DI" id="defs" targetNamespace="t">'
        '<collaboration id="collab"><participant id="pool" name="The pool" processRef="kinds"/>'
        '<participant id="other" name="Other"/><messageFlow id="mf" sourceRef="call" targetRef="other"/>'
        "</collaboration>"
        f'<process id="kinds" name="Every kind" isExecutable="true"><laneSet id="ls"><lane id="lane1" name="Lane one">'
        f"<flowNodeRef>user</flowNodeRef></lane></laneSet>{nodes}{sub}{BOUNDARY[1]}{flows}</process>"
        f'<bpmndi:BPMNDiagram id="d"><bpmndi:BPMNPlane id="p" bpmnElement="collab">{shapes}{edges}'
        "</bpmndi:BPMNPlane></bpmndi:BPMNDiagram></definitions>"
    )


def test_every_element_kind_is_a_group_with_its_kind_class() -> None:
    drawing = draw(every_kind_xml(), "kinds", title="Every kind")
    assert not drawing.auto_layout and drawing.layout_work == 0
    found = groups(parse(drawing.svg))
    for element_id, tag, *_ in NODES:
        assert f"bpm-{tag}" in classes(found[element_id]), element_id
        assert "bpm-shape" in classes(found[element_id])
    expected = {
        "pool": "bpm-participant",
        "lane1": "bpm-lane",
        "bnd": "bpm-boundaryEvent",
        "sub": "bpm-subProcess",
        "inner": "bpm-userTask",
        "evsub": "bpm-subProcess",
        "tx": "bpm-transaction",
        "f1": "bpm-sequenceFlow",
        "f3": "bpm-sequenceFlow",
        "mf": "bpm-messageFlow",
    }
    for element_id, kind in expected.items():
        assert kind in classes(found[element_id]), element_id
    assert "bpm-edge" in classes(found["f1"]) and "bpm-shape" not in classes(found["f1"])
    assert drawing.shapes == len(NODES) + 8 and drawing.edges == 5


def _markup(svg: str, element_id: str) -> str:
    return etree.tostring(groups(parse(svg))[element_id], encoding="unicode")


def test_markers_of_tasks_events_gateways_and_flows() -> None:
    svg = draw(every_kind_xml(), "kinds").svg
    body = {i: _markup(svg, i) for i in groups(parse(svg))}
    # task icons: a person, a gear (dashed teeth), a filled envelope for send, an outlined one for receive
    assert body["user"].count("<circle") == 1 and body["service"].count('stroke-dasharray="2.2 1.9"') == 1
    filled_rect, filled_path = re.compile(r'<rect[^>]*fill="#22242a"'), re.compile(r'<path[^>]*fill="#22242a"')
    assert filled_rect.search(body["send"]) and not filled_rect.search(body["receive"])
    assert body["plain"].count("<path") == 1  # only the sequential marker
    assert 'stroke-width="4"' in body["call"]  # call activity: thick border (+ marker, parallel lines)
    # events: end events are thick, throw markers filled, catch markers hollow, non-interrupting dashed
    assert 'stroke-width="4"' in body["end"] and 'stroke-width="4"' in body["errorEnd"]
    assert body["term"].count("<circle") == 2
    assert filled_path.search(body["signal"]) and not filled_path.search(body["timer"])
    assert body["timer"].count("<circle") == 3  # two rings and the clock face
    assert 'stroke-dasharray="4 3"' in body["bnd"] and 'stroke-dasharray="4 3"' not in body["timer"]
    assert 'stroke-dasharray="2 3"' in body["evsub"]  # event subprocess: dotted border
    # gateways: a diamond and their marker
    for gateway in ("xor", "and", "or", "evgw", "complex"):
        assert "<polygon" in body[gateway]
    assert body["or"].count("<circle") == 1 and body["evgw"].count("<circle") == 2
    # flows: arrows, the conditional diamond, the message flow's circle and open arrow, the label
    assert 'marker-end="url(#bpm-arrow)"' in body["f1"] and ">go<" in body["f1"]
    assert 'marker-start="url(#bpm-diamond)"' in body["f2"]
    assert 'marker-start="url(#bpm-circle)"' in body["mf"] and "url(#bpm-open-arrow)" in body["mf"]
    assert 'd="M50,325 L75,325 L75,325 L100,325"' in body["f3"]  # the waypoints as given
    # pools and lanes carry their names, rotated
    assert "The pool" in body["pool"] and "rotate(-90" in body["lane1"]


def test_instance_highlights_become_classes() -> None:
    xml = (PROCESSES / "booking_room.bpmn").read_text()
    moves = [("entered", "Start"), ("left", "Start"), ("entered", "ReviewBooking"), ("task.claimed", None)]
    moves += [("left", "ReviewBooking"), ("entered", "SizeGateway"), ("left", "SizeGateway")]
    moves += [("entered", "ManagerApproval")]
    history = [{"type": f"element.{kind}" if element else kind, "elementId": element} for kind, element in moves]
    highlights = Highlights.of(active=["ManagerApproval"], history=history, incidents=["ConfirmBooking"])
    found = groups(parse(draw(xml, "bookingRoom", highlights=highlights).svg))
    assert "bpm-active" in classes(found["ManagerApproval"])
    assert {"bpm-done"} <= classes(found["ReviewBooking"]) and "bpm-active" not in classes(found["ReviewBooking"])
    assert "bpm-incident" in classes(found["ConfirmBooking"])
    for flow in ("Flow_toReview", "Flow_toSize", "Flow_large"):
        assert "bpm-done" in classes(found[flow]), flow
    for flow in ("Flow_small", "Flow_toDecision", "Flow_approved"):
        assert not classes(found[flow]) & {"bpm-done", "bpm-active"}, flow
    assert not classes(found["Booked"]) & {"bpm-done", "bpm-active", "bpm-incident"}


def test_hostile_names_and_ids_are_escaped() -> None:
    names = {"user": HOSTILE, "xor": "</text><script>alert(1)</script>"}
    svg = draw(every_kind_xml(names), "kinds", title=HOSTILE).svg
    root = parse(svg)
    assert not [e for e in root.iter() if etree.QName(e).localname in ("img", "script", "foreignObject")]
    texts = ["".join(t.itertext()) for t in root.iter(f"{{{SVG_NS}}}text")]
    assert any("<img" in t for t in texts)  # the name is there, as text
    assert root.get("aria-label") == HOSTILE
    assert "onerror" not in {a for e in root.iter() for a in e.attrib}
    # ids and names with quotes cannot break out of attributes
    xml = every_kind_xml().replace('id="user"', 'id="u&quot;ser"').replace('bpmnElement="user"', "bpmnElement='u\"ser'")
    found = groups(parse(draw(xml, "kinds").svg))
    assert 'u"ser' in found


# -- automatic layout -------------------------------------------------------------------------


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _flow_node_boxes(shapes: Iterable) -> list[tuple[str, tuple[float, float, float, float]]]:
    return [
        (s.element.id, (s.bounds.x, s.bounds.y, s.bounds.width, s.bounds.height))
        for s in shapes
        if s.element.kind not in ("boundaryEvent", "subProcess")
    ]


@pytest.mark.parametrize(
    ("file", "key"),
    [
        ("booking_room.bpmn", "bookingRoom"),
        ("onboarding.bpmn", "onboarding"),
        ("parallel_review.bpmn", "parallelReview"),
    ],
)
def test_a_file_without_di_is_laid_out(file: str, key: str) -> None:
    xml = (PROCESSES / file).read_text()
    source = read_source(xml)
    assert read_diagram(source, key) is None
    diagram, work = auto_layout(source, key)
    drawing = draw(xml, key)
    assert drawing.auto_layout and drawing.layout_work == work
    found = groups(parse(drawing.svg))
    drawable = [e for e in source.elements.values() if e.kind not in ("process", "laneSet")]
    assert {e.id for e in drawable} <= set(found), {e.id for e in drawable} - set(found)
    boxes = _flow_node_boxes(diagram.shapes)
    for index, (a_id, a) in enumerate(boxes):
        for b_id, b in boxes[index + 1 :]:
            assert not _overlaps(a, b), (a_id, b_id)
    # flows run left to right except loops
    for edge in diagram.edges:
        assert len(edge.points) >= 2


def test_booking_room_layout_puts_each_step_right_of_the_previous() -> None:
    source = read_source((PROCESSES / "booking_room.bpmn").read_text())
    diagram, _ = auto_layout(source, "bookingRoom")
    x = {s.element.id: s.bounds.x for s in diagram.shapes}
    assert x["Start"] < x["ReviewBooking"] < x["SizeGateway"] < x["ManagerApproval"] < x["ApprovedGateway"]
    assert x["ApprovedGateway"] < x["ConfirmBooking"] < x["Booked"]


def big_process(tasks: int) -> str:
    """A DI-less chain of ``tasks`` user tasks, with a gateway fork/join every 10 and a loop back."""
    nodes = ['<startEvent id="s"/>']
    flows = []
    previous = "s"
    for i in range(tasks):
        if i % 10 == 5:
            nodes += [
                f'<parallelGateway id="fork{i}"/>',
                f'<userTask id="side{i}"/>',
                f'<parallelGateway id="join{i}"/>',
            ]
            flows += [(previous, f"fork{i}"), (f"fork{i}", f"side{i}"), (f"side{i}", f"join{i}")]
            flows += [(f"fork{i}", f"t{i}"), (f"t{i}", f"join{i}")]
            nodes.append(f'<userTask id="t{i}" name="Task {i}"/>')
            previous = f"join{i}"
            continue
        nodes.append(f'<userTask id="t{i}" name="Task number {i}"/>')
        flows.append((previous, f"t{i}"))
        previous = f"t{i}"
    nodes += ['<exclusiveGateway id="again"/>', '<endEvent id="e"/>']
    flows += [(previous, "again"), ("again", "e"), ("again", "t0")]
    body = "".join(nodes) + "".join(
        f'<sequenceFlow id="f{n}" sourceRef="{a}" targetRef="{b}"/>' for n, (a, b) in enumerate(flows)
    )
    return (
        '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">'
        f'<process id="big" isExecutable="true">{body}</process></definitions>'
    )


def test_a_big_model_is_laid_out_with_linear_work() -> None:
    xml = big_process(150)
    source = read_source(xml)
    nodes = sum(1 for e in source.elements.values() if e.kind not in ("process", "sequenceFlow"))
    flows = sum(1 for e in source.elements.values() if e.kind == "sequenceFlow")
    drawing = draw(xml, "big")
    assert nodes >= 150 and drawing.shapes == nodes and drawing.edges == flows
    assert drawing.layout_work == nodes + flows  # each node and flow placed once
    found = groups(parse(drawing.svg))
    assert len(found) == nodes + flows
    diagram, _ = auto_layout(source, "big")
    boxes = _flow_node_boxes(diagram.shapes)
    by_column: dict[float, list[tuple[float, float, float, float]]] = {}
    for _, box in boxes:
        by_column.setdefault(box[0], []).append(box)
    for column in by_column.values():  # no two shapes of one column overlap
        column.sort(key=lambda b: b[1])
        for a, b in pairwise(column):
            assert a[1] + a[3] <= b[1]


def test_a_big_model_with_di_draws_every_shape() -> None:
    path = SHARED_BPMN / "miwg" / "B.2.0.bpmn"
    if not path.is_file():
        pytest.skip("../shared/bpmn is not present")
    source = read_source(path.read_bytes())
    key = next(e.id for e in source.elements.values() if e.kind == "process")
    drawing = draw(path.read_bytes(), key)
    assert not drawing.auto_layout and drawing.shapes >= 90 and drawing.shapes + drawing.edges >= 180
    assert len(groups(parse(drawing.svg))) >= drawing.shapes


# -- the shared corpus --------------------------------------------------------------------------

FILES = sorted(p for p in SHARED_BPMN.rglob("*") if p.suffix in (".bpmn", ".xml")) if SHARED_BPMN.is_dir() else []


@pytest.mark.skipif(not FILES, reason="../shared/bpmn is not present")
def test_every_deployable_corpus_file_draws() -> None:
    runtime = Runtime(MemoryBackend())
    drawn = 0
    for path in FILES:
        try:
            definitions = runtime.deploy(path.read_bytes(), file=path.name)
        except InvalidDefinition:
            continue
        for definition in definitions:
            drawing = draw(definition.xml, definition.key, title=definition.name)
            found = groups(parse(drawing.svg))
            assert drawing.shapes > 0 and found, (path.name, definition.key)
            spec = runtime.cache.spec(definition)
            assert set(spec.elements) & set(found), (path.name, definition.key)
            drawn += 1
    assert drawn >= 50


def test_a_file_with_di_for_another_process_only_is_laid_out(tmp_path: Path) -> None:
    xml = every_kind_xml().replace("</definitions>", "") + (
        '<process id="second"><startEvent id="s2"/><sequenceFlow id="g" sourceRef="s2" targetRef="e2"/>'
        '<endEvent id="e2"/></process></definitions>'
    )
    drawing = draw(xml, "second")
    assert drawing.auto_layout and set(groups(parse(drawing.svg))) == {"s2", "g", "e2"}
