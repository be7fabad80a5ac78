"""Reads the diagram interchange (DI) of a BPMN file and reports what makes a diagram hard to read:
elements without a shape, overlapping shapes, flows drawn through unrelated shapes, flows crossing
each other, labels on top of shapes, of each other or of another flow's line, a diagram larger
than two screens at 100%, and tasks/gateways/events without a one-line documentation.

Plain geometry on axis-aligned boxes (events and gateways are checked by their bounding box,
which is stricter than their drawn outline). Used by test_diagram_layout.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lxml import etree

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
}
FLOW_NODE_TAGS = (
    "startEvent", "endEvent", "intermediateThrowEvent", "intermediateCatchEvent", "boundaryEvent",
    "task", "userTask", "serviceTask", "scriptTask", "receiveTask", "sendTask", "manualTask",
    "businessRuleTask", "callActivity", "subProcess",
    "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
)
# Touching is fine; only a real overlap (more than this many px) counts.
TOLERANCE = 2.0
# A screen at 100% zoom; a diagram may take two of them side by side, or two stacked.
SCREEN_W, SCREEN_H = 1920, 1080

Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    def overlaps(self, other: Box, tol: float = TOLERANCE) -> bool:
        return (
            self.x + tol < other.x + other.w and other.x + tol < self.x + self.w
            and self.y + tol < other.y + other.h and other.y + tol < self.y + self.h
        )

    def shrunk(self, by: float) -> Box:
        return Box(self.x + by, self.y + by, self.w - 2 * by, self.h - 2 * by)

    def hit_by_segment(self, a: tuple[float, float], b: tuple[float, float]) -> bool:
        """True if segment a-b passes through the inside of the box (Liang-Barsky clipping)."""
        (x0, y0), (x1, y1) = a, b
        dx, dy = x1 - x0, y1 - y0
        lo, hi = 0.0, 1.0
        for p, q in ((-dx, x0 - self.x), (dx, self.x + self.w - x0),
                     (-dy, y0 - self.y), (dy, self.y + self.h - y0)):
            if p == 0:
                if q <= 0:
                    return False
                continue
            t = q / p
            if p < 0:
                lo = max(lo, t)
            else:
                hi = min(hi, t)
            if lo >= hi:
                return False
        return True


@dataclass
class Diagram:
    name: str
    nodes: dict[str, etree._Element]  # flow node id -> model element
    flows: dict[str, tuple[str, str]]  # sequence flow id -> (source, target)
    attached: dict[str, str]  # boundary event id -> host id
    needs_di: set[str]  # every id that must be drawn
    shapes: dict[str, Box]
    edges: dict[str, list[tuple[float, float]]]
    labels: dict[str, Box]  # owning element id -> label bounds


def _box(el: etree._Element) -> Box:
    return Box(*(float(el.get(k, "0")) for k in ("x", "y", "width", "height")))


def load(path: Path) -> Diagram:
    root = etree.parse(str(path)).getroot()
    nodes: dict[str, etree._Element] = {}
    for tag in FLOW_NODE_TAGS:
        for el in root.iterfind(f".//bpmn:process//bpmn:{tag}", NS):
            nodes[el.get("id")] = el
    flows = {
        f.get("id"): (f.get("sourceRef"), f.get("targetRef"))
        for f in root.iterfind(".//bpmn:sequenceFlow", NS)
    }
    attached = {i: el.get("attachedToRef") for i, el in nodes.items() if el.get("attachedToRef")}
    needs = set(nodes) | set(flows)
    needs |= {el.get("id") for el in root.iterfind(".//bpmn:lane", NS)}
    needs |= {el.get("id") for el in root.iterfind(".//bpmn:participant", NS)}
    shapes: dict[str, Box] = {}
    labels: dict[str, Box] = {}
    edges: dict[str, list[tuple[float, float]]] = {}
    for s in root.iterfind(".//bpmndi:BPMNShape", NS):
        bounds = s.find("dc:Bounds", NS)
        if bounds is not None:
            shapes[s.get("bpmnElement")] = _box(bounds)
        label = s.find("bpmndi:BPMNLabel/dc:Bounds", NS)
        if label is not None:
            labels[s.get("bpmnElement")] = _box(label)
    for e in root.iterfind(".//bpmndi:BPMNEdge", NS):
        edges[e.get("bpmnElement")] = [
            (float(w.get("x")), float(w.get("y"))) for w in e.iterfind("di:waypoint", NS)
        ]
        label = e.find("bpmndi:BPMNLabel/dc:Bounds", NS)
        if label is not None:
            labels[e.get("bpmnElement")] = _box(label)
    return Diagram(path.stem, nodes, flows, attached, needs, shapes, edges, labels)


def missing_di(d: Diagram) -> list[str]:
    drawn = set(d.shapes) | set(d.edges)
    return sorted(f"{i}: no shape or edge" for i in d.needs_di - drawn)


def overlapping_shapes(d: Diagram) -> list[str]:
    ids = sorted(i for i in d.nodes if i in d.shapes)
    problems = []
    for n, a in enumerate(ids):
        for b in ids[n + 1:]:
            if d.attached.get(a) == b or d.attached.get(b) == a:
                continue  # a boundary event sits on its host's border
            if d.shapes[a].overlaps(d.shapes[b]):
                problems.append(f"{a} overlaps {b}")
    return problems


def _own_shapes(d: Diagram, flow: str) -> set[str]:
    ends = set(d.flows[flow])
    own = set(ends)
    own |= {b for b, host in d.attached.items() if host in ends}  # boundary events on the ends
    own |= {d.attached[e] for e in ends if e in d.attached}  # the host a boundary flow leaves
    return own


def flows_through_shapes(d: Diagram) -> list[str]:
    problems = []
    for flow, points in sorted(d.edges.items()):
        if flow not in d.flows:
            continue
        own = _own_shapes(d, flow)
        for node, box in sorted(d.shapes.items()):
            if node not in d.nodes or node in own:
                continue
            inner = box.shrunk(TOLERANCE)
            if any(inner.hit_by_segment(p, q) for p, q in zip(points, points[1:])):
                problems.append(f"{flow} is drawn through {node}")
    return problems


def colliding_labels(d: Diagram) -> list[str]:
    problems = []
    items = sorted(d.labels.items())
    for owner, label in items:
        for node, box in sorted(d.shapes.items()):
            if node in d.nodes and label.overlaps(box):
                problems.append(f"label of {owner} covers {node}")
    for n, (a, la) in enumerate(items):
        for b, lb in items[n + 1:]:
            if la.overlaps(lb):
                problems.append(f"label of {a} overlaps label of {b}")
    return problems


def _orientation(p: Point, q: Point, r: Point) -> int:
    v = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
    return 0 if abs(v) < 1e-6 else (1 if v > 0 else -1)


def segments_cross(a: Point, b: Point, c: Point, e: Point) -> bool:
    """True if segments a-b and c-e cross properly (each passes through the other's inside).
    Touching (one ends on the other, as two flows meeting at a shared endpoint do) does not count."""
    return (_orientation(a, b, c) * _orientation(a, b, e) < 0
            and _orientation(c, e, a) * _orientation(c, e, b) < 0)


def _segments(points: list[Point]) -> list[tuple[Point, Point]]:
    return list(zip(points, points[1:]))


def crossing_flows(d: Diagram) -> list[str]:
    ids = sorted(f for f in d.edges if f in d.flows)
    problems = []
    for n, f in enumerate(ids):
        for g in ids[n + 1:]:
            if any(segments_cross(a, b, c, e)
                   for a, b in _segments(d.edges[f]) for c, e in _segments(d.edges[g])):
                problems.append(f"{f} crosses {g}")
    return problems


def flows_through_labels(d: Diagram) -> list[str]:
    """A label with another flow's line through it reads as that flow's label."""
    problems = []
    for owner, label in sorted(d.labels.items()):
        inner = label.shrunk(TOLERANCE)
        for flow, points in sorted(d.edges.items()):
            if flow == owner or flow not in d.flows:
                continue
            if any(inner.hit_by_segment(p, q) for p, q in _segments(points)):
                problems.append(f"{flow} is drawn through the label of {owner}")
    return problems


def bounding_box(d: Diagram) -> Box:
    boxes = list(d.shapes.values()) + list(d.labels.values())
    xs = [b.x for b in boxes] + [b.x + b.w for b in boxes]
    ys = [b.y for b in boxes] + [b.y + b.h for b in boxes]
    for points in d.edges.values():
        xs += [x for x, _ in points]
        ys += [y for _, y in points]
    return Box(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


def too_large(d: Diagram) -> list[str]:
    box = bounding_box(d)
    side_by_side = box.w <= 2 * SCREEN_W and box.h <= SCREEN_H
    stacked = box.w <= SCREEN_W and box.h <= 2 * SCREEN_H
    if side_by_side or stacked:
        return []
    return [f"{box.w:.0f} x {box.h:.0f} px does not fit two {SCREEN_W} x {SCREEN_H} screens"]


def undocumented(d: Diagram) -> list[str]:
    problems = []
    for i, el in sorted(d.nodes.items()):
        doc = el.find("bpmn:documentation", NS)
        text = (doc.text or "").strip() if doc is not None else ""
        if not text:
            problems.append(f"{i}: no documentation")
        elif "\n" in text:
            problems.append(f"{i}: documentation is more than one line")
    return problems


CHECKS = {
    "missing DI": missing_di,
    "overlapping shapes": overlapping_shapes,
    "flow through a shape": flows_through_shapes,
    "label collision": colliding_labels,
    "flow through a label": flows_through_labels,
    "crossing flows": crossing_flows,
    "larger than two screens": too_large,
    "documentation": undocumented,
}


def problems(path: Path) -> dict[str, list[str]]:
    d = load(path)
    return {name: found for name, check in CHECKS.items() if (found := check(d))}
