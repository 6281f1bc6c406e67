"""Draw a :class:`~bpm.diagram.model.Diagram` as one SVG document (a string).

Every shape and edge is a ``<g data-element-id="<BPMN id>">`` with the classes
``bpm-shape``/``bpm-edge``, ``bpm-<kind>`` and, on an instance, ``bpm-active``,
``bpm-done`` or ``bpm-incident``. The look comes from presentation attributes, so
the drawing also works where a page's CSP blocks the embedded ``<style>``
(which only adds the highlight colours; a page restates them in its own CSS).
Every text from the file is XML-escaped; ids and names never reach markup raw.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from itertools import pairwise

from bpm.diagram.glyphs import (
    FILL,
    STROKE,
    collapsed_marker,
    event_marker,
    gateway_marker,
    loop_marker,
    n,
    task_icon,
)
from bpm.diagram.model import CONTAINERS, Bounds, Diagram, Edge, Shape

MARGIN = 20.0
FONT = 'font-family="Arial, Helvetica, sans-serif" font-size="12"'
CHAR_WIDTH = 6.2
LINE_HEIGHT = 14.0
#: the colours of a highlighted element (the page's CSS repeats them)
STYLE = (
    ".bpm-active>.bpm-body{stroke:#1a7f37;stroke-width:3px;fill:#dafbe1}"
    ".bpm-done>.bpm-body{stroke:#0969da;fill:#ddf4ff}"
    ".bpm-incident>.bpm-body{stroke:#cf222e;stroke-width:3px;fill:#ffebe9}"
    ".bpm-edge.bpm-done>.bpm-line{stroke:#0969da;stroke-width:2.5px}"
)
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_MARKER = 'markerUnits="userSpaceOnUse" viewBox="0 0 10 10"'
DEFS = (
    "<defs>"
    f'<marker id="bpm-arrow" {_MARKER} refX="10" refY="5" markerWidth="11" markerHeight="11"'
    ' orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#22242a"/></marker>'
    f'<marker id="bpm-open-arrow" {_MARKER} refX="10" refY="5" markerWidth="11" markerHeight="11"'
    ' orient="auto"><path d="M0,0 L10,5 L0,10" fill="none" stroke="#22242a"/></marker>'
    f'<marker id="bpm-circle" {_MARKER} refX="5" refY="5" markerWidth="10" markerHeight="10">'
    '<circle cx="5" cy="5" r="4" fill="#ffffff" stroke="#22242a"/></marker>'
    f'<marker id="bpm-diamond" {_MARKER} refX="0" refY="5" markerWidth="14" markerHeight="14"'
    ' orient="auto"><path d="M0,5 L5,1.7 L10,5 L5,8.3 z" fill="#ffffff" stroke="#22242a"/></marker>'
    "</defs>"
)


def esc(text: object) -> str:
    """Text or attribute value, XML-escaped (quotes too), characters XML cannot hold dropped."""
    return html.escape(_INVALID_XML.sub("", str(text)), quote=True)


def _classes(kind: str, element_id: str, base: str, states: dict[str, str]) -> str:
    state = states.get(element_id)
    return f"{base} bpm-{kind}" + (f" bpm-{state}" if state else "")


def _title(name: str, kind: str, state: str | None) -> str:
    words = [name or "", f"({kind})"] + ([f"- {state}"] if state else [])
    return f"<title>{esc(' '.join(w for w in words if w))}</title>"


def wrap(text: str, width: float) -> list[str]:
    """Words into lines of at most ``width`` pixels (long words cut)."""
    per_line = max(int(width / CHAR_WIDTH), 4)
    lines: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > per_line:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:per_line])
            word = word[per_line:]
        candidate = f"{current} {word}".strip()
        if len(candidate) > per_line and current:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines[:8]


def text_block(text: str, cx: float, cy: float, width: float, *, anchor: str = "middle") -> str:
    """Centred wrapped text."""
    if not text:
        return ""
    lines = wrap(text, width)
    top = cy - (len(lines) - 1) * LINE_HEIGHT / 2 + 4
    spans = "".join(
        f'<tspan x="{n(cx)}" y="{n(top + i * LINE_HEIGHT)}">{esc(line)}</tspan>' for i, line in enumerate(lines)
    )
    return f'<text class="bpm-label" {FONT} text-anchor="{anchor}" fill="{STROKE}">{spans}</text>'


def _outside_label(shape: Shape) -> str:
    name = shape.element.name
    if not name:
        return ""
    if shape.label is not None and shape.label.width > 0:
        box = shape.label
        return text_block(name, box.cx, box.cy, max(box.width, 90))
    b = shape.bounds
    lines = len(wrap(name, 110))
    return text_block(name, b.cx, b.y + b.height + 8 + lines * LINE_HEIGHT / 2, 110)


def _rect(b: Bounds, *, rx: float = 0, fill: str = FILL, width: float = 1.5, dash: str = "", body: bool = True) -> str:
    cls = ' class="bpm-body"' if body else ""
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<rect{cls} x="{n(b.x)}" y="{n(b.y)}" width="{n(b.width)}" height="{n(b.height)}" rx="{n(rx)}"'
        f' fill="{fill}" stroke="{STROKE}" stroke-width="{n(width)}"{dashed}/>'
    )


def _activity(shape: Shape) -> str:
    e, b = shape.element, shape.bounds
    kind = e.kind
    container = kind in CONTAINERS
    dash = "2 3" if e.event_subprocess else ""
    width = 4.0 if kind == "callActivity" else 1.5
    fill = "none" if container and shape.expanded else FILL
    parts = [_rect(b, rx=10, fill=fill, width=width, dash=dash)]
    if kind == "transaction":
        inner = Bounds(b.x + 3, b.y + 3, b.width - 6, b.height - 6)
        parts.append(_rect(inner, rx=8, fill="none", width=1, body=False))
    if container and shape.expanded:
        parts.append(
            f'<text class="bpm-label" {FONT} x="{n(b.x + 8)}" y="{n(b.y + 16)}" fill="{STROKE}">{esc(e.name)}</text>'
        )
    else:
        icon = task_icon(kind, b)
        parts.append(icon)
        parts.append(text_block(e.name, b.cx, b.cy + (5 if icon else 0), b.width - 12))
        if container or kind == "callActivity":
            parts.append(collapsed_marker(b, e.loop is not None))
    if e.loop:
        shifted = Bounds(b.x + (14 if container and not shape.expanded else 0), b.y, b.width, b.height)
        parts.append(loop_marker(e.loop, shifted))
    return "".join(parts)


def _event(shape: Shape) -> str:
    e, b = shape.element, shape.bounds
    cx, cy, r = b.cx, b.cy, min(b.width, b.height) / 2
    dash = "" if e.interrupting else ' stroke-dasharray="4 3"'
    width = 4 if e.kind == "endEvent" else 1.5
    parts = [
        f'<circle class="bpm-body" cx="{n(cx)}" cy="{n(cy)}" r="{n(r)}" fill="{FILL}" stroke="{STROKE}"'
        f' stroke-width="{n(width)}"{dash}/>'
    ]
    if e.kind in ("intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"):
        parts.append(
            f'<circle cx="{n(cx)}" cy="{n(cy)}" r="{n(max(r - 3, 1))}" fill="none" stroke="{STROKE}"'
            f' stroke-width="1.2"{dash}/>'
        )
    parts.append(event_marker(e.event, b, filled=e.kind in ("endEvent", "intermediateThrowEvent")))
    parts.append(_outside_label(shape))
    return "".join(parts)


def _gateway(shape: Shape) -> str:
    b = shape.bounds
    points = f"{n(b.cx)},{n(b.y)} {n(b.x + b.width)},{n(b.cy)} {n(b.cx)},{n(b.y + b.height)} {n(b.x)},{n(b.cy)}"
    return (
        f'<polygon class="bpm-body" points="{points}" fill="{FILL}" stroke="{STROKE}" stroke-width="1.5"/>'
        + gateway_marker(shape.element.kind, b)
        + _outside_label(shape)
    )


def _pool_or_lane(shape: Shape) -> str:
    e, b = shape.element, shape.bounds
    header = 30.0
    parts = [_rect(b, fill="none", width=1.5 if e.kind == "participant" else 1)]
    if shape.horizontal:
        parts.append(f'<path d="M{n(b.x + header)},{n(b.y)} v{n(b.height)}" stroke="{STROKE}" fill="none"/>')
        cx, cy = b.x + header / 2, b.cy
        rotate = f' transform="rotate(-90 {n(cx)} {n(cy)})"'
        parts.append(
            f'<text class="bpm-label" {FONT} text-anchor="middle" x="{n(cx)}" y="{n(cy + 4)}"{rotate}'
            f' fill="{STROKE}">{esc(e.name)}</text>'
        )
    else:
        parts.append(f'<path d="M{n(b.x)},{n(b.y + header)} h{n(b.width)}" stroke="{STROKE}" fill="none"/>')
        parts.append(text_block(e.name, b.cx, b.y + header / 2, b.width - 8))
    return "".join(parts)


def _artifact(shape: Shape) -> str:
    e, b = shape.element, shape.bounds
    kind = e.kind
    if kind == "textAnnotation":
        text = e.name
        return (
            f'<path class="bpm-body" d="M{n(b.x + 10)},{n(b.y)} h-10 v{n(b.height)} h10" fill="none"'
            f' stroke="{STROKE}"/>' + text_block(text, b.x + 6, b.cy, b.width - 8, anchor="start")
        )
    if kind == "group":
        return _rect(b, rx=8, fill="none", width=1.2, dash="8 4 2 4") + _outside_label(shape)
    if kind in ("dataObjectReference", "dataObject", "dataInput", "dataOutput"):
        fold = min(10.0, b.width / 3)
        d = (
            f"M{n(b.x)},{n(b.y)} h{n(b.width - fold)} l{n(fold)},{n(fold)} v{n(b.height - fold)}"
            f" h{n(-b.width)} z M{n(b.x + b.width - fold)},{n(b.y)} v{n(fold)} h{n(fold)}"
        )
        return f'<path class="bpm-body" d="{d}" fill="{FILL}" stroke="{STROKE}"/>' + _outside_label(shape)
    if kind == "dataStoreReference":
        ry = min(8.0, b.height / 5)
        d = (
            f"M{n(b.x)},{n(b.y + ry)} a{n(b.width / 2)},{n(ry)} 0 0 1 {n(b.width)},0 v{n(b.height - 2 * ry)}"
            f" a{n(b.width / 2)},{n(ry)} 0 0 1 {n(-b.width)},0 z"
            f" M{n(b.x)},{n(b.y + ry)} a{n(b.width / 2)},{n(ry)} 0 0 0 {n(b.width)},0"
        )
        return f'<path class="bpm-body" d="{d}" fill="{FILL}" stroke="{STROKE}"/>' + _outside_label(shape)
    return _rect(b, rx=4, width=1) + text_block(e.name, b.cx, b.cy, b.width - 8)


def draw_shape(shape: Shape, states: dict[str, str]) -> str:
    e = shape.element
    kind = e.kind
    if kind.endswith("Event"):
        body = _event(shape)
    elif kind.endswith("Gateway"):
        body = _gateway(shape)
    elif kind in ("participant", "lane"):
        body = _pool_or_lane(shape)
    elif kind.endswith("Task") or kind in CONTAINERS or kind in ("task", "callActivity"):
        body = _activity(shape)
    else:
        body = _artifact(shape)
    state = states.get(e.id)
    return (
        f'<g data-element-id="{esc(e.id)}" class="{_classes(kind, e.id, "bpm-shape", states)}">'
        f"{_title(e.name, kind, state)}{body}</g>"
    )


def draw_edge(edge: Edge, states: dict[str, str]) -> str:
    e = edge.element
    d = "M" + " L".join(f"{n(x)},{n(y)}" for x, y in edge.points)
    attrs = ""
    if e.kind == "sequenceFlow":
        attrs = ' marker-end="url(#bpm-arrow)"' + (' marker-start="url(#bpm-diamond)"' if e.conditional else "")
    elif e.kind == "messageFlow":
        attrs = ' stroke-dasharray="6 4" marker-start="url(#bpm-circle)" marker-end="url(#bpm-open-arrow)"'
    elif e.kind == "dataOutputAssociation" or e.kind == "dataInputAssociation":
        attrs = ' stroke-dasharray="2 3" marker-end="url(#bpm-open-arrow)"'
    else:
        attrs = ' stroke-dasharray="2 3"'
    parts = [f'<path class="bpm-line" d="{d}" fill="none" stroke="{STROKE}" stroke-width="1.5"{attrs}/>']
    if e.default and len(edge.points) >= 2:
        (x1, y1), (x2, y2) = edge.points[0], edge.points[1]
        length = max(((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5, 1)
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        mx, my = x1 + ux * 10, y1 + uy * 10
        start = f"M{n(mx - 5 * ux + 5 * uy)},{n(my - 5 * uy - 5 * ux)}"
        parts.append(f'<path d="{start} l{n(10 * ux - 10 * uy)},{n(10 * uy + 10 * ux)}" stroke="{STROKE}"/>')
    if e.name:
        if edge.label is not None and edge.label.width > 0:
            parts.append(text_block(e.name, edge.label.cx, edge.label.cy, max(edge.label.width, 60)))
        else:
            parts.append(_edge_label(e.name, edge.points))
    state = states.get(e.id)
    return (
        f'<g data-element-id="{esc(e.id)}" class="{_classes(e.kind, e.id, "bpm-edge", states)}">'
        f"{_title(e.name, e.kind, state)}{''.join(parts)}</g>"
    )


def _edge_label(name: str, points: tuple[tuple[float, float], ...]) -> str:
    """A flow's name without DI: above its last horizontal segment, or beside its first vertical one."""
    for (x1, y1), (x2, y2) in reversed(list(pairwise(points))):
        if abs(y1 - y2) < 0.5 and abs(x2 - x1) >= 30:
            lines = len(wrap(name, 80))
            return text_block(name, (x1 + x2) / 2, y1 - 6 - lines * LINE_HEIGHT / 2, 80)
    (x1, y1), (x2, y2) = points[0], points[1]
    return text_block(name, x1 + 6, (y1 + y2) / 2, 80, anchor="start")


def render(diagram: Diagram, *, title: str, states: dict[str, str] | None = None) -> str:
    """The whole SVG document; ``states`` maps element ids to ``active``/``done``/``incident``."""
    states = states or {}
    box = diagram.extent()
    x, y = box.x - MARGIN, box.y - MARGIN
    width, height = box.width + 2 * MARGIN, box.height + 2 * MARGIN
    containers = [s for s in diagram.shapes if _is_container(s)]
    others = [s for s in diagram.shapes if not _is_container(s)]
    body: Iterable[str] = (
        *(draw_shape(s, states) for s in containers),
        *(draw_edge(e, states) for e in diagram.edges),
        *(draw_shape(s, states) for s in others),
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="bpm-diagram" role="img" aria-label="{esc(title)}"'
        f' viewBox="{n(x)} {n(y)} {n(width)} {n(height)}" width="{n(width)}" height="{n(height)}">'
        f"<title>{esc(title)}</title><style>{STYLE}</style>{DEFS}"
        f'<rect x="{n(x)}" y="{n(y)}" width="{n(width)}" height="{n(height)}" fill="#ffffff"/>'
        + "".join(body)
        + "</svg>"
    )


def _is_container(shape: Shape) -> bool:
    kind = shape.element.kind
    return kind in ("participant", "lane", "group") or (kind in CONTAINERS and shape.expanded)
