"""What changed between two versions of a process, in the terms a process owner edits:
elements added, removed and changed, per property (name, lane, form, due, handler, each
parameter, timer, message, condition, documentation), and files added, removed or changed.

Read from the BPMN XML, not from the SpiffWorkflow spec, so a diagram that no longer parses
still diffs; layout (DI) is left out on purpose: moving a shape is not a change of process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from certflow.engine.deploy import BPMN_NS, read_xml

SPIFF_NS = "{http://spiffworkflow.org/bpmn/schema/1.0/core}"
_SKIP = {"laneSet", "extensionElements", "documentation", "incoming", "outgoing", "lane",
         "conditionExpression", "timeDuration", "timeDate", "timeCycle", "flowNodeRef"}


@dataclass
class Change:
    element: str
    kind: str  # added | removed | changed
    type: str
    name: str
    properties: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)


@dataclass
class VersionDiff:
    elements: list[Change]
    files: dict[str, str]  # path -> added | removed | changed

    @property
    def empty(self) -> bool:
        return not self.elements and not self.files

    def counts(self) -> dict[str, int]:
        found = {"added": 0, "removed": 0, "changed": 0}
        for change in self.elements:
            found[change.kind] += 1
        return found


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _text(node: etree._Element | None) -> str | None:
    return None if node is None else (node.text or "").strip()


def element_properties(bpmn: str) -> dict[str, dict[str, str]]:
    """Every flow element of every process: {id: {property: value}}."""
    root = read_xml_text(bpmn)
    if root is None:
        return {}
    lanes = {}
    for lane in root.iter(f"{BPMN_NS}lane"):
        for ref in lane.findall(f"{BPMN_NS}flowNodeRef"):
            lanes[(ref.text or "").strip()] = lane.get("name") or lane.get("id") or ""
    found: dict[str, dict[str, str]] = {}
    for process in root.iter(f"{BPMN_NS}process", f"{BPMN_NS}subProcess"):
        for node in process:
            kind = _local(node.tag)
            if not kind or kind in _SKIP or node.get("id") is None:
                continue
            found[node.get("id")] = _describe(node, kind, lanes)
    return found


def read_xml_text(text: str) -> etree._Element | None:
    try:
        return read_xml(None, text)
    except (etree.XMLSyntaxError, ValueError):
        return None


def _describe(node: etree._Element, kind: str, lanes: dict[str, str]) -> dict[str, str]:
    props = {"type": kind, "name": node.get("name") or ""}
    if node.get("id") in lanes:
        props["lane"] = lanes[node.get("id")]
    for attr in ("sourceRef", "targetRef", "attachedToRef", "messageRef", "default"):
        if node.get(attr) is not None:
            props[attr] = node.get(attr)
    if kind == "boundaryEvent":  # modelers leave out the default (true) when they save
        props["cancelActivity"] = node.get("cancelActivity") or "true"
    doc = node.find(f"{BPMN_NS}documentation")
    if doc is not None:
        props["documentation"] = _text(doc) or ""
    condition = node.find(f"{BPMN_NS}conditionExpression")
    if condition is not None:
        props["condition"] = _text(condition) or ""
    for prop in node.iter(f"{SPIFF_NS}property"):
        props[prop.get("name") or "?"] = prop.get("value") or ""
    for operator in node.iter(f"{SPIFF_NS}serviceTaskOperator"):
        props["handler"] = operator.get("id") or ""
        if operator.get("resultVariable"):
            props["result variable"] = operator.get("resultVariable") or ""
        for param in operator.iter(f"{SPIFF_NS}parameter"):
            props[f"parameter {param.get('id')}"] = param.get("value") or ""
    for tag in ("messageVariable", "script", "preScript", "postScript"):
        found = node.find(f".//{SPIFF_NS}{tag}")
        if found is None:
            found = node.find(f"{BPMN_NS}{tag}")
        if found is not None:
            props[tag] = _text(found) or ""
    for definition in node:
        local = _local(definition.tag)
        if local.endswith("EventDefinition"):
            props["event"] = local.removesuffix("EventDefinition")
            if definition.get("messageRef"):
                props["message"] = definition.get("messageRef") or ""
            for timer in ("timeDuration", "timeDate", "timeCycle"):
                value = definition.find(f"{BPMN_NS}{timer}")
                if value is not None:
                    props["timer"] = f"{timer}: {_text(value)}"
    return props


def diff(old: dict[str, str], new: dict[str, str]) -> VersionDiff:
    """``old`` and ``new`` are sources maps ({path: text})."""
    files = {}
    for path in sorted(set(old) | set(new)):
        if path not in old:
            files[path] = "added"
        elif path not in new:
            files[path] = "removed"
        elif old[path] != new[path]:
            files[path] = "changed"
    before, after = _all_elements(old), _all_elements(new)
    changes = []
    for element in sorted(set(before) | set(after)):
        a, b = before.get(element), after.get(element)
        if a is None:
            assert b is not None
            changes.append(Change(element, "added", b["type"], b.get("name", "")))
        elif b is None:
            changes.append(Change(element, "removed", a["type"], a.get("name", "")))
        elif a != b:
            props = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
            changes.append(Change(element, "changed", b["type"], b.get("name", ""), props))
    return VersionDiff(changes, files)


def _all_elements(sources: dict[str, str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for path, text in sorted(sources.items()):
        if path.endswith(".bpmn"):
            found.update(element_properties(text))
    return found
