"""An automatic layout for processes drawn without DI: left to right, one column per step.

Each container (the process, every subprocess) is laid out on its own: its flow
nodes get a rank (the longest path from a node nobody flows into, back edges of
loops left out), the nodes of a rank form a column, and every node takes the
next free row of its column, preferring its first predecessor's row so that
straight runs stay straight. Subprocesses are laid out first and drawn open,
as big as their content. Event subprocesses go below the main flow. Boundary
events sit on their host's lower edge. Flows are routed with right angles;
back edges go around underneath. Work is linear in nodes and flows (plus the
sorting of each column).
"""

from __future__ import annotations

from collections import defaultdict

from bpm.diagram.model import CONTAINERS, Bounds, Diagram, Edge, Element, Shape, SourceModel

TASK = (100.0, 80.0)
EVENT = (36.0, 36.0)
GATEWAY = (50.0, 50.0)
GAP_X = 80.0
GAP_Y = 40.0
PADDING = 40.0
HEADER = 24.0
BOUNDARY = 36.0


def is_flow_node(element: Element) -> bool:
    kind = element.kind
    if kind in ("boundaryEvent", "process"):
        return False
    return kind.endswith(("Task", "Event", "Gateway")) or kind in CONTAINERS or kind in ("task", "callActivity")


def _size(element: Element) -> tuple[float, float]:
    if element.kind.endswith("Event"):
        return EVENT
    if element.kind.endswith("Gateway"):
        return GATEWAY
    return TASK


class _Box:
    """A laid-out container's content, relative to its own origin."""

    def __init__(self) -> None:
        self.shapes: list[Shape] = []
        self.edges: list[Edge] = []
        self.width = 0.0
        self.height = 0.0


def _label_below(element: Element, bounds: Bounds) -> Bounds | None:
    """Where the name of an event or gateway goes: centred under it."""
    if not element.name or not element.kind.endswith(("Event", "Gateway")):
        return None
    lines = min(len(element.name) // 16 + 1, 4)
    if element.kind.endswith("Gateway"):  # beside the corner its branches may leave from
        return Bounds(bounds.cx + 2, bounds.y + bounds.height - 4, 100, 14.0 * lines + 4)
    return Bounds(bounds.cx - 55, bounds.y + bounds.height + 4, 110, 14.0 * lines + 4)


def _moved(bounds: Bounds, dx: float, dy: float) -> Bounds:
    return Bounds(bounds.x + dx, bounds.y + dy, bounds.width, bounds.height)


def _shift(box: _Box, dx: float, dy: float) -> tuple[list[Shape], list[Edge]]:
    shapes = [
        Shape(s.element, _moved(s.bounds, dx, dy), s.expanded, s.horizontal, s.label and _moved(s.label, dx, dy))
        for s in box.shapes
    ]
    edges = [Edge(e.element, tuple((x + dx, y + dy) for x, y in e.points)) for e in box.edges]
    return shapes, edges


class AutoLayout:
    def __init__(self, source: SourceModel) -> None:
        self.elements = source.elements
        self.children: dict[str | None, list[Element]] = defaultdict(list)
        self.flows_in: dict[str | None, list[Element]] = defaultdict(list)
        self.boundaries: dict[str, list[Element]] = defaultdict(list)
        #: how many nodes and flows were placed (the work done; tests bound it)
        self.work = 0
        for element in source.elements.values():
            if element.kind == "sequenceFlow":
                self.flows_in[element.parent].append(element)
            elif element.kind == "boundaryEvent" and element.attached_to:
                self.boundaries[element.attached_to].append(element)
            elif is_flow_node(element):
                self.children[element.parent].append(element)

    def diagram(self, process_key: str) -> Diagram:
        box = self._container(process_key, depth=0)
        shapes, edges = _shift(box, PADDING, PADDING)
        return Diagram(shapes, edges)

    def _container(self, container: str, depth: int) -> _Box:
        nodes = self.children.get(container, [])
        main = [n for n in nodes if not n.event_subprocess]
        below = [n for n in nodes if n.event_subprocess]
        host_of = {b.id: b.attached_to for host in main for b in self.boundaries.get(host.id, [])}
        ids = {n.id for n in main}
        flows = [f for f in self.flows_in.get(container, []) if f.source and f.target]
        succ: dict[str, list[str]] = defaultdict(list)
        for flow in flows:
            source = host_of.get(flow.source or "", flow.source)
            if source in ids and flow.target in ids:
                succ[source].append(flow.target)  # type: ignore[arg-type]
        ranks = _ranks([n.id for n in main], succ)
        sizes: dict[str, tuple[float, float]] = {}
        inner: dict[str, _Box] = {}
        for node in nodes:
            if node.kind in CONTAINERS and depth < 50 and self.children.get(node.id):
                content = self._container(node.id, depth + 1)
                inner[node.id] = content
                sizes[node.id] = (content.width + 2 * PADDING, content.height + 2 * PADDING + HEADER)
            else:
                sizes[node.id] = _size(node)
            self.work += 1

        # columns and rows
        columns: dict[int, list[str]] = defaultdict(list)
        row_of: dict[str, int] = {}
        preds: dict[str, list[str]] = defaultdict(list)
        for source, targets in succ.items():
            for target in targets:
                preds[target].append(source)
        order = {n.id: index for index, n in enumerate(main)}
        for node_id in sorted(ids, key=lambda i: (ranks[i], order[i])):
            taken = {row_of[n] for n in columns[ranks[node_id]]}
            wanted = next((row_of[p] for p in preds[node_id] if p in row_of), 0)
            row = wanted
            while row in taken:
                row += 1
            row_of[node_id] = row
            columns[ranks[node_id]].append(node_id)
        col_width = {c: max(sizes[n][0] for n in members) for c, members in columns.items()}
        rows = max(row_of.values(), default=-1) + 1
        row_height = [0.0] * rows
        for node_id, row in row_of.items():
            row_height[row] = max(row_height[row], sizes[node_id][1])
        col_x: dict[int, float] = {}
        x = 0.0
        for column in sorted(col_width):
            col_x[column] = x
            x += col_width[column] + GAP_X
        row_y: list[float] = []
        y = 0.0
        for height in row_height:
            row_y.append(y)
            y += height + GAP_Y + (BOUNDARY / 2)
        box = _Box()
        placed: dict[str, Bounds] = {}
        for node_id, row in row_of.items():
            width, height = sizes[node_id]
            column = ranks[node_id]
            bounds = Bounds(
                col_x[column] + (col_width[column] - width) / 2,
                row_y[row] + (row_height[row] - height) / 2,
                width,
                height,
            )
            placed[node_id] = bounds
        width = max(x - GAP_X, 0.0)
        height = max(y - GAP_Y - BOUNDARY / 2, 0.0)
        # event subprocesses: a row below
        x = 0.0
        extra = 0.0
        for node in below:
            w, h = sizes[node.id]
            placed[node.id] = Bounds(x, height + GAP_Y + BOUNDARY, w, h)
            x += w + GAP_X
            extra = max(extra, h + GAP_Y + BOUNDARY)
        width = max(width, x - GAP_X)
        height += extra
        for node in nodes:
            bounds = placed[node.id]
            box.shapes.append(Shape(node, bounds, expanded=node.id in inner, label=_label_below(node, bounds)))
            if node.id in inner:
                shapes, edges = _shift(inner[node.id], bounds.x + PADDING, bounds.y + PADDING + HEADER)
                box.shapes += shapes
                box.edges += edges
            for index, boundary in enumerate(self.boundaries.get(node.id, [])):
                bx = bounds.x + bounds.width - BOUNDARY * (index + 1) - 4 * index - 6
                spot = Bounds(max(bx, bounds.x - BOUNDARY / 2), bounds.y + bounds.height - BOUNDARY / 2, *EVENT)
                placed[boundary.id] = spot
                box.shapes.append(Shape(boundary, spot, label=_label_below(boundary, spot)))
                self.work += 1
        boundary_ids = set(host_of)
        box.edges += [
            _route(f, placed, height, f.source in boundary_ids)
            for f in flows
            if f.source in placed and f.target in placed
        ]
        self.work += len(flows)
        box.width, box.height = width, height + BOUNDARY / 2
        return box


def _ranks(node_ids: list[str], succ: dict[str, list[str]]) -> dict[str, int]:
    """Longest-path ranks on the graph without its back edges (an iterative DFS finds them)."""
    incoming: dict[str, int] = dict.fromkeys(node_ids, 0)
    for targets in succ.values():
        for target in targets:
            incoming[target] = incoming.get(target, 0) + 1
    roots = [n for n in node_ids if incoming.get(n, 0) == 0] + node_ids
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    forward: dict[str, list[str]] = defaultdict(list)
    for root in roots:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, index = stack.pop()
            targets = succ.get(node, [])
            if index < len(targets):
                stack.append((node, index + 1))
                target = targets[index]
                if state.get(target) == 1:
                    continue  # a back edge: a loop
                forward[node].append(target)
                if target not in state:
                    state[target] = 1
                    stack.append((target, 0))
            else:
                state[node] = 2
    # longest path over the forward edges (Kahn's order)
    indegree: dict[str, int] = dict.fromkeys(node_ids, 0)
    for targets in forward.values():
        for target in targets:
            indegree[target] += 1
    rank = dict.fromkeys(node_ids, 0)
    ready = [n for n in node_ids if indegree[n] == 0]
    while ready:
        node = ready.pop()
        for target in forward.get(node, []):
            rank[target] = max(rank[target], rank[node] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return rank


def _route(flow: Element, placed: dict[str, Bounds], bottom: float, from_boundary: bool) -> Edge:
    """Right angles from the source's right side to the target's left; loops go underneath.

    A gateway's branches to another row leave from its top or bottom corner; flows that
    join a gateway from another row enter at its top or bottom corner.
    """
    source, target = placed[flow.source or ""], placed[flow.target or ""]
    source_is_gateway = _gateway(flow.source, placed, source)
    target_is_gateway = _gateway(flow.target, placed, target)
    if target.x > source.x + source.width:
        if from_boundary:
            sx, sy = source.cx, source.y + source.height
            return Edge(flow, ((sx, sy), (sx, target.cy), (target.x, target.cy)))
        sx, sy = source.x + source.width, source.cy
        tx, ty = target.x, target.cy
        if abs(sy - ty) <= 0.5:
            return Edge(flow, ((sx, sy), (tx, ty)))
        down = ty > sy
        if source_is_gateway:
            corner = source.y + source.height if down else source.y
            return Edge(flow, ((source.cx, corner), (source.cx, ty), (tx, ty)))
        if target_is_gateway:
            corner = target.y if down else target.y + target.height
            return Edge(flow, ((sx, sy), (target.cx, sy), (target.cx, corner)))
        mid = tx - GAP_X / 2
        return Edge(flow, ((sx, sy), (mid, sy), (mid, ty), (tx, ty)))
    low = max(bottom, source.y + source.height, target.y + target.height) + GAP_Y / 2
    points = (
        (source.cx, source.y + source.height),
        (source.cx, low),
        (target.cx, low),
        (target.cx, target.y + target.height),
    )
    return Edge(flow, points)


def _gateway(element_id: str | None, placed: dict[str, Bounds], bounds: Bounds) -> bool:
    return bounds.width == GATEWAY[0] and bounds.height == GATEWAY[1]


def auto_layout(source: SourceModel, process_key: str) -> tuple[Diagram, int]:
    """Lay out ``process_key`` of ``source``; the diagram and the work it took (nodes and flows placed)."""
    layout = AutoLayout(source)
    diagram = layout.diagram(process_key)
    return diagram, layout.work
