"""Every diagram in processes/ reads at 100% in bpmn-js: everything is drawn, no shapes on top
of each other, no flow drawn through a task it does not touch, no label hiding a shape or another
label, and every task, gateway and event carries the one-line documentation the properties panel
shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.processes import diagram_layout

PROCESSES = Path(__file__).resolve().parents[2] / "processes"
DIAGRAMS = sorted(PROCESSES.glob("*/*.bpmn"))


def test_every_process_folder_is_checked() -> None:
    assert len(DIAGRAMS) >= 7


@pytest.mark.parametrize("check", sorted(diagram_layout.CHECKS))
@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: p.stem)
def test_diagram_reads_cleanly(path: Path, check: str) -> None:
    found = diagram_layout.CHECKS[check](diagram_layout.load(path))
    assert found == [], f"{path.relative_to(PROCESSES)}: {check}:\n  " + "\n  ".join(found)


def test_checker_sees_a_flow_through_an_unrelated_task(tmp_path: Path) -> None:
    """The checker itself: a straight flow from a start event over a task to an end event."""
    bpmn = tmp_path / "broken.bpmn"
    bpmn.write_text(_BROKEN)
    d = diagram_layout.load(bpmn)
    assert diagram_layout.flows_through_shapes(d) == ["f2 is drawn through t"]
    assert diagram_layout.overlapping_shapes(d) == ["e overlaps t"]
    assert diagram_layout.missing_di(d) == ["f1: no shape or edge"]
    assert diagram_layout.colliding_labels(d) == ["label of s covers t"]
    assert diagram_layout.undocumented(d) == ["e: no documentation", "t: no documentation"]


_BROKEN = """<?xml version="1.0"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
 xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
 xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI">
 <bpmn:process id="p">
  <bpmn:startEvent id="s"><bpmn:documentation>Start.</bpmn:documentation></bpmn:startEvent>
  <bpmn:userTask id="t"/>
  <bpmn:endEvent id="e"/>
  <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
  <bpmn:sequenceFlow id="f2" sourceRef="s" targetRef="e"/>
 </bpmn:process>
 <bpmndi:BPMNDiagram id="d"><bpmndi:BPMNPlane id="pl" bpmnElement="p">
  <bpmndi:BPMNShape id="s_di" bpmnElement="s"><dc:Bounds x="0" y="22" width="36" height="36"/>
   <bpmndi:BPMNLabel><dc:Bounds x="40" y="30" width="100" height="20"/></bpmndi:BPMNLabel>
  </bpmndi:BPMNShape>
  <bpmndi:BPMNShape id="t_di" bpmnElement="t"><dc:Bounds x="100" y="0" width="100" height="80"/>
  </bpmndi:BPMNShape>
  <bpmndi:BPMNShape id="e_di" bpmnElement="e"><dc:Bounds x="180" y="22" width="36" height="36"/>
  </bpmndi:BPMNShape>
  <bpmndi:BPMNEdge id="f2_di" bpmnElement="f2">
   <di:waypoint x="36" y="40"/><di:waypoint x="180" y="40"/>
  </bpmndi:BPMNEdge>
 </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>
"""
