"""Every diagram in processes/ reads at 100% in bpmn-js on one or two screens: everything is
drawn, no shapes on top of each other, no flow drawn through a task it does not touch or crossing
another flow, no label hiding a shape, another label or sitting on another flow's line, and every
task, gateway and event carries the one-line documentation the properties panel shows."""

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


def test_checker_sees_crossing_flows_and_flows_through_labels(tmp_path: Path) -> None:
    """Two flows that cross in the middle count; two flows that only meet at a shared gateway
    do not. A label with another flow's line through it counts."""
    bpmn = tmp_path / "crossing.bpmn"
    bpmn.write_text(_CROSSING)
    d = diagram_layout.load(bpmn)
    assert diagram_layout.crossing_flows(d) == ["f_down crosses f_right"]
    assert diagram_layout.flows_through_labels(d) == ["f_down is drawn through the label of f_right"]


def test_flows_meeting_at_a_shape_do_not_cross() -> None:
    cross = diagram_layout.segments_cross
    assert cross((0, 0), (10, 10), (0, 10), (10, 0))  # an X
    assert not cross((0, 0), (10, 0), (10, 0), (10, 10))  # one ends where the other starts
    assert not cross((0, 5), (10, 5), (5, 5), (5, 10))  # one ends on the other (a T)
    assert not cross((0, 0), (10, 0), (0, 3), (10, 3))  # side by side


def test_checker_sees_a_diagram_larger_than_two_screens(tmp_path: Path) -> None:
    bpmn = tmp_path / "wide.bpmn"
    bpmn.write_text(_BROKEN)
    d = diagram_layout.load(bpmn)
    assert diagram_layout.too_large(d) == []
    d.shapes["e"] = diagram_layout.Box(3900, 22, 36, 36)  # 3,936 px wide: more than two screens
    assert diagram_layout.too_large(d) == [
        "3936 x 80 px does not fit two 1920 x 1080 screens"]
    d.shapes["e"] = diagram_layout.Box(1800, 2000, 36, 36)  # one screen wide, two high: fits
    assert diagram_layout.too_large(d) == []


_CROSSING = """<?xml version="1.0"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
 xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
 xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI">
 <bpmn:process id="p">
  <bpmn:exclusiveGateway id="g"/>
  <bpmn:task id="a"/><bpmn:task id="b"/><bpmn:task id="c"/><bpmn:task id="d"/>
  <bpmn:sequenceFlow id="f_right" name="Ja" sourceRef="g" targetRef="a"/>
  <bpmn:sequenceFlow id="f_up" sourceRef="g" targetRef="b"/>
  <bpmn:sequenceFlow id="f_down" sourceRef="c" targetRef="d"/>
 </bpmn:process>
 <bpmndi:BPMNDiagram id="dg"><bpmndi:BPMNPlane id="pl" bpmnElement="p">
  <bpmndi:BPMNShape id="g_di" bpmnElement="g"><dc:Bounds x="0" y="175" width="50" height="50"/>
  </bpmndi:BPMNShape>
  <bpmndi:BPMNShape id="a_di" bpmnElement="a"><dc:Bounds x="400" y="160" width="100" height="80"/>
  </bpmndi:BPMNShape>
  <bpmndi:BPMNShape id="b_di" bpmnElement="b"><dc:Bounds x="-25" y="0" width="100" height="80"/>
  </bpmndi:BPMNShape>
  <bpmndi:BPMNShape id="c_di" bpmnElement="c"><dc:Bounds x="150" y="0" width="100" height="80"/>
  </bpmndi:BPMNShape>
  <bpmndi:BPMNShape id="d_di" bpmnElement="d"><dc:Bounds x="150" y="300" width="100" height="80"/>
  </bpmndi:BPMNShape>
  <bpmndi:BPMNEdge id="f_right_di" bpmnElement="f_right">
   <di:waypoint x="50" y="200"/><di:waypoint x="400" y="200"/>
   <bpmndi:BPMNLabel><dc:Bounds x="180" y="184" width="40" height="14"/></bpmndi:BPMNLabel>
  </bpmndi:BPMNEdge>
  <bpmndi:BPMNEdge id="f_up_di" bpmnElement="f_up">
   <di:waypoint x="25" y="175"/><di:waypoint x="25" y="80"/>
  </bpmndi:BPMNEdge>
  <bpmndi:BPMNEdge id="f_down_di" bpmnElement="f_down">
   <di:waypoint x="200" y="80"/><di:waypoint x="200" y="300"/>
  </bpmndi:BPMNEdge>
 </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>
"""


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
