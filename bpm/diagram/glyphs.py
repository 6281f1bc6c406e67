"""The small pictures inside shapes: task type icons, event definition markers, gateway markers, loop markers.

Each function returns SVG markup (strings of trusted constants and numbers only)
positioned relative to a shape's bounds.
"""

from __future__ import annotations

from bpm.diagram.model import Bounds

STROKE = "#22242a"
FILL = "#ffffff"


def n(value: float) -> str:
    """A number, short."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else str(rounded)


def _path(d: str, *, fill: str = "none", stroke: str = STROKE, width: float = 1.2, extra: str = "") -> str:
    return f'<path d="{d}" fill="{fill}" stroke="{stroke}" stroke-width="{n(width)}"{extra}/>'


# -- tasks ----------------------------------------------------------------------------------


def task_icon(kind: str, b: Bounds) -> str:
    x, y = b.x + 8, b.y + 8  # top-left corner of a 16x16 icon
    if kind == "userTask":
        return (
            f'<circle cx="{n(x + 8)}" cy="{n(y + 4)}" r="3.5" fill="{FILL}" stroke="{STROKE}" stroke-width="1.2"/>'
            + _path(f"M{n(x + 1)},{n(y + 16)} v-3 c0,-4 3,-5.5 7,-5.5 c4,0 7,1.5 7,5.5 v3 z", fill=FILL)
        )
    if kind == "serviceTask":
        return (
            f'<circle cx="{n(x + 8)}" cy="{n(y + 8)}" r="6" fill="{FILL}" stroke="{STROKE}" stroke-width="3"'
            ' stroke-dasharray="2.2 1.9"/>'
            f'<circle cx="{n(x + 8)}" cy="{n(y + 8)}" r="4.2" fill="{FILL}" stroke="{STROKE}" stroke-width="1"/>'
            f'<circle cx="{n(x + 8)}" cy="{n(y + 8)}" r="1.6" fill="none" stroke="{STROKE}" stroke-width="1"/>'
        )
    if kind == "scriptTask":
        return _path(
            f"M{n(x + 3)},{n(y)} h11 c-3,3 -3,5 0,8 c3,3 3,5 0,8 h-11 c3,-3 3,-5 0,-8 c-3,-3 -3,-5 0,-8 z"
            f" M{n(x + 4)},{n(y + 5)} h6 M{n(x + 5)},{n(y + 8)} h6 M{n(x + 5)},{n(y + 11)} h6",
            fill=FILL,
        )
    if kind in ("sendTask", "receiveTask"):
        return envelope(x, y + 2, 16, 12, filled=kind == "sendTask")
    if kind == "manualTask":
        return _path(
            f"M{n(x)},{n(y + 7)} l5,-4 h8 a1,1 0 0 1 0,2 h-5 h7 a1,1 0 0 1 0,2 h-7 h6 a1,1 0 0 1 0,2 h-6"
            f" h5 a1,1 0 0 1 0,2 h-9 l-4,-2 z",
            fill=FILL,
        )
    if kind == "businessRuleTask":
        return (
            f'<rect x="{n(x)}" y="{n(y + 2)}" width="16" height="12" fill="{FILL}" stroke="{STROKE}"/>'
            f'<rect x="{n(x)}" y="{n(y + 2)}" width="16" height="3.5" fill="{STROKE}" stroke="{STROKE}"/>'
            + _path(f"M{n(x)},{n(y + 9.5)} h16 M{n(x + 5)},{n(y + 5.5)} v8.5", width=1)
        )
    return ""


def loop_marker(loop: str | None, b: Bounds) -> str:
    if loop is None:
        return ""
    x, y = b.cx - 6, b.y + b.height - 16
    if loop == "parallel":
        return _path(f"M{n(x + 2)},{n(y)} v12 M{n(x + 6)},{n(y)} v12 M{n(x + 10)},{n(y)} v12", width=2)
    if loop == "sequential":
        return _path(f"M{n(x)},{n(y + 2)} h12 M{n(x)},{n(y + 6)} h12 M{n(x)},{n(y + 10)} h12", width=2)
    return _path(f"M{n(x + 3)},{n(y + 11)} a5.5,5.5 0 1 1 6,0 m0,0 l1,-4 m-1,4 l-4,-1", width=1.4)


def collapsed_marker(b: Bounds, with_loop: bool) -> str:
    x = b.cx - 7 - (10 if with_loop else 0)
    y = b.y + b.height - 17
    return f'<rect x="{n(x)}" y="{n(y)}" width="14" height="14" fill="{FILL}" stroke="{STROKE}"/>' + _path(
        f"M{n(x + 3)},{n(y + 7)} h8 M{n(x + 7)},{n(y + 3)} v8", width=1.5
    )


def envelope(x: float, y: float, w: float, h: float, *, filled: bool) -> str:
    fill, line = (STROKE, FILL) if filled else (FILL, STROKE)
    return (
        f'<rect x="{n(x)}" y="{n(y)}" width="{n(w)}" height="{n(h)}" fill="{fill}" stroke="{STROKE}" stroke-width="1"/>'
        + _path(f"M{n(x)},{n(y)} l{n(w / 2)},{n(h / 2)} l{n(w / 2)},{n(-h / 2)}", stroke=line, width=1)
    )


# -- events ---------------------------------------------------------------------------------


def event_marker(definition: str | None, b: Bounds, *, filled: bool) -> str:
    """The marker of an event definition, inside the event's circle (filled when throwing)."""
    if definition is None:
        return ""
    cx, cy, r = b.cx, b.cy, min(b.width, b.height) / 2
    fill = STROKE if filled else FILL
    s = r / 18  # the markers are drawn for a 36 px event
    if definition == "message":
        return envelope(cx - 8 * s, cy - 5.5 * s, 16 * s, 11 * s, filled=filled)
    if definition == "timer":
        hands = _path(f"M{n(cx)},{n(cy)} l0,{n(-8 * s)} M{n(cx)},{n(cy)} l{n(5 * s)},{n(2 * s)}", width=1.4)
        ticks = "".join(
            _path(f"M{n(cx + dx * 9 * s)},{n(cy + dy * 9 * s)} l{n(dx * 2 * s)},{n(dy * 2 * s)}", width=1)
            for dx, dy in ((0, -1), (1, 0), (0, 1), (-1, 0))
        )
        circle = (
            f'<circle cx="{n(cx)}" cy="{n(cy)}" r="{n(11 * s)}" fill="{FILL}" stroke="{STROKE}" stroke-width="1.4"/>'
        )
        return circle + ticks + hands
    if definition == "signal":
        return _path(f"M{n(cx)},{n(cy - 9 * s)} l{n(8 * s)},{n(14 * s)} h{n(-16 * s)} z", fill=fill)
    if definition == "error":
        return _path(
            f"M{n(cx - 8 * s)},{n(cy + 8 * s)} l{n(4 * s)},{n(-15 * s)} l{n(5 * s)},{n(8 * s)} l{n(4 * s)},{n(-9 * s)}"
            f" l{n(-3 * s)},{n(15 * s)} l{n(-5 * s)},{n(-8 * s)} z",
            fill=fill,
        )
    if definition == "escalation":
        return _path(
            f"M{n(cx)},{n(cy - 9 * s)} l{n(7 * s)},{n(17 * s)} l{n(-7 * s)},{n(-6 * s)} l{n(-7 * s)},{n(6 * s)} z",
            fill=fill,
        )
    if definition == "conditional":
        page = f'x="{n(cx - 6 * s)}" y="{n(cy - 8 * s)}" width="{n(12 * s)}" height="{n(16 * s)}"'
        return f'<rect {page} fill="{FILL}" stroke="{STROKE}"/>' + _path(
            "".join(f"M{n(cx - 4 * s)},{n(cy + dy * s)} h{n(8 * s)} " for dy in (-5, -1.5, 2, 5.5)), width=1
        )
    if definition == "link":
        return _path(
            f"M{n(cx - 8 * s)},{n(cy - 3 * s)} h{n(9 * s)} v{n(-5 * s)} l{n(7 * s)},{n(8 * s)} l{n(-7 * s)},{n(8 * s)}"
            f" v{n(-5 * s)} h{n(-9 * s)} z",
            fill=fill,
        )
    if definition == "terminate":
        return f'<circle cx="{n(cx)}" cy="{n(cy)}" r="{n(11 * s)}" fill="{STROKE}"/>'
    if definition == "compensate":
        return _path(
            f"M{n(cx - 9 * s)},{n(cy)} l{n(8 * s)},{n(-6 * s)} v{n(12 * s)} z M{n(cx - 1 * s)},{n(cy)}"
            f" l{n(8 * s)},{n(-6 * s)} v{n(12 * s)} z",
            fill=fill,
        )
    if definition == "cancel":
        return _path(
            f"M{n(cx - 7 * s)},{n(cy - 7 * s)} l{n(14 * s)},{n(14 * s)} M{n(cx + 7 * s)},{n(cy - 7 * s)}"
            f" l{n(-14 * s)},{n(14 * s)}",
            width=4 * s,
        )
    return _path(  # multiple, parallelMultiple and anything unknown: a pentagon
        f"M{n(cx)},{n(cy - 9 * s)} l{n(8.5 * s)},{n(6 * s)} l{n(-3 * s)},{n(10 * s)} h{n(-11 * s)}"
        f" l{n(-3 * s)},{n(-10 * s)} z",
        fill=fill,
    )


# -- gateways -------------------------------------------------------------------------------


def _cross(cx: float, cy: float, r: float) -> str:
    return f"M{n(cx - r)},{n(cy - r)} l{n(2 * r)},{n(2 * r)} M{n(cx + r)},{n(cy - r)} l{n(-2 * r)},{n(2 * r)}"


def _plus(cx: float, cy: float, r: float) -> str:
    return f"M{n(cx - r)},{n(cy)} h{n(2 * r)} M{n(cx)},{n(cy - r)} v{n(2 * r)}"


def _circle(cx: float, cy: float, r: float, width: float = 1.0) -> str:
    return f'<circle cx="{n(cx)}" cy="{n(cy)}" r="{n(r)}" fill="none" stroke="{STROKE}" stroke-width="{n(width)}"/>'


def gateway_marker(kind: str, b: Bounds) -> str:
    cx, cy = b.cx, b.cy
    s = min(b.width, b.height) / 50
    if kind == "exclusiveGateway":
        return _path(_cross(cx, cy, 8 * s), width=4 * s)
    if kind == "parallelGateway":
        return _path(_plus(cx, cy, 11 * s), width=4 * s)
    if kind == "inclusiveGateway":
        return _circle(cx, cy, 10 * s, 3 * s)
    if kind == "eventBasedGateway":
        return (
            _circle(cx, cy, 12 * s)
            + _circle(cx, cy, 10 * s)
            + _path(
                f"M{n(cx)},{n(cy - 6 * s)} l{n(6 * s)},{n(4.5 * s)} l{n(-2.5 * s)},{n(7 * s)} h{n(-7 * s)}"
                f" l{n(-2.5 * s)},{n(-7 * s)} z",
                width=1.2,
            )
        )
    if kind == "complexGateway":
        return _path(_plus(cx, cy, 11 * s) + " " + _cross(cx, cy, 8 * s), width=3 * s)
    return ""
