"""The monitor on the small test diagram: the filtered, paged instance list; one instance with
its markers, timeline and data; and moving an instance to the newest version (it moves and
runs to the end there; it is refused, naming the element, and nothing changes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from certflow.bootstrap import build_engine
from certflow.engine.errors import Conflict, Forbidden, InvalidInput
from certflow.engine.facade import Actor
from certflow.engine.monitor import InstanceFilter
from certflow.store.db import session_scope
from certflow.store.models import AuditEvent, HumanTask, Instance
from tests.engine.test_runtime import edited, office_task, start
from tests.support import FLOW_DIR, Harness

OWNER = Actor("olga", ("process_owner",), True)
OFFICE = Actor("office", ("office",), True)

INSERT_STEP = ('<bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="approved_gw"/>',
               '<bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="stamp"/>'
               '<bpmn:scriptTask id="stamp" name="Stamp"><bpmn:incoming>f3</bpmn:incoming>'
               '<bpmn:outgoing>f3b</bpmn:outgoing><bpmn:script>migrated = True</bpmn:script></bpmn:scriptTask>'
               '<bpmn:sequenceFlow id="f3b" sourceRef="stamp" targetRef="approved_gw"/>')


@pytest.fixture
def flow(harness: Harness) -> Harness:
    harness.engine.deploy(harness.staff, FLOW_DIR)
    return harness


def at_review(h: Harness, key: str = "K1") -> str:
    instance_id = start(h, key)
    h.run_jobs()
    return instance_id


def test_list_filters_and_pages(flow: Harness) -> None:
    _list_filters_and_pages(flow)


@pytest.mark.integration
def test_list_filters_and_pages_on_postgresql(pg_url: str) -> None:
    h = Harness(build_engine())
    h.engine.deploy(h.staff, FLOW_DIR)
    _list_filters_and_pages(h)


def _list_filters_and_pages(flow: Harness) -> None:
    ids = [at_review(flow, f"APP-{n}") for n in range(5)]
    other = start(flow, "ZZZ-1")
    flow.engine.cancel(flow.staff, ids[0], "duplicate")
    engine = flow.engine
    everything = engine.monitor_page(OFFICE)
    assert [r.id for r in everything.rows][:1] == [other]  # newest first
    assert {r.id for r in engine.monitor_page(OFFICE, InstanceFilter(business_key="APP-")).rows} == set(ids)
    assert engine.monitor_page(OFFICE, InstanceFilter(business_key="app-")).rows == []  # as typed
    assert [r.id for r in engine.monitor_page(OFFICE, InstanceFilter(business_key="APP-3")).rows] == [ids[3]]
    running = engine.monitor_page(OFFICE, InstanceFilter(status="cancelled")).rows
    assert [r.id for r in running] == [ids[0]]
    assert {r.id for r in engine.monitor_page(OFFICE, InstanceFilter(process_id="flow", version=1)).rows} == set(ids + [other])
    assert engine.monitor_page(OFFICE, InstanceFilter(process_id="flow", version=2)).rows == []
    assert engine.monitor_page(OFFICE, InstanceFilter(has_incident=True)).rows == []
    assert engine.monitor_page(OFFICE, InstanceFilter(overdue=True)).rows == []
    flow.advance("P11D")  # past review's 10 days (the reminder fires at 7, the escalation at 14)
    late = {r.id for r in engine.monitor_page(OFFICE, InstanceFilter(overdue=True)).rows}
    assert late == set(ids[1:])
    assert all(r.overdue and r.open_steps == ["Review request"]
               for r in engine.monitor_page(OFFICE, InstanceFilter(overdue=True)).rows)
    first = engine.monitor_page(OFFICE, limit=2)
    second = engine.monitor_page(OFFICE, after=first.next, limit=2)
    third = engine.monitor_page(OFFICE, after=second.next, limit=2)
    assert third.next is None
    seen = [r.id for p in (first, second, third) for r in p.rows]
    assert sorted(seen) == sorted(ids + [other]) and len(set(seen)) == 6


def test_bad_filters_and_who_may_look(flow: Harness) -> None:
    with pytest.raises(InvalidInput) as bad:
        InstanceFilter.from_dict({"status": "sleeping"})
    assert bad.value.details["field"] == "status"
    with pytest.raises(InvalidInput):
        InstanceFilter.from_dict({"version": "two", "process_id": "flow"})
    with pytest.raises(InvalidInput):
        InstanceFilter.from_dict({"version": "2"})  # a version needs its process
    with pytest.raises(InvalidInput):
        flow.engine.monitor_page(OFFICE, after="not-a-cursor")
    for outsider in (Actor("cas", ("candidate",), False), Actor("cert", ("certifier",), True)):
        with pytest.raises(Forbidden):
            flow.engine.monitor_page(outsider)


def test_instance_detail_markers_timeline_and_data(flow: Harness) -> None:
    instance_id = at_review(flow)
    detail = flow.engine.monitor_detail(OFFICE, instance_id)
    assert "review" in detail.active and "review_late" in detail.active
    assert {"start", "make_ref"} <= set(detail.done)
    assert detail.data is not None and detail.data["key"] == "K1"
    actions = [(e.action, e.element_id) for e in detail.timeline]
    assert ("instance_started", None) in actions and ("completed", "make_ref") in actions
    assert detail.element_names["review"] == "Review request"
    [opened] = [e for e in detail.timeline if e.action == "ready" and e.element_id == "review"]
    assert opened.due_at is not None and not opened.late  # an open task's due time, not yet late
    assert detail.migration.newest_version == 1 and not detail.migration.possible
    hidden = flow.engine.monitor_detail(OWNER, instance_id)
    assert hidden.data is None and "key" in hidden.data_keys  # a process owner sees no personal data
    assert 'id="flow"' in flow.engine.diagram_xml(OFFICE, instance_id)


def test_migrates_and_runs_to_the_end_on_the_new_version(flow: Harness, tmp_path: Path) -> None:
    instance_id = at_review(flow)
    task_id = office_task(flow)
    flow.engine.claim(flow.staff, task_id)
    with session_scope() as session:
        due_before = session.get(Instance, instance_id).next_due_at  # type: ignore[union-attr]
    [v2] = flow.engine.deploy(flow.staff, edited(tmp_path, *INSERT_STEP))
    check = flow.engine.monitor_detail(OWNER, instance_id).migration
    assert check.possible and (check.current_version, check.newest_version) == (1, 2)

    flow.engine.migrate_instance(OWNER, instance_id, "the stamp step is new")

    view = flow.engine.instance(flow.staff, instance_id)
    assert view.version == 2
    with session_scope() as session:
        instance = session.get(Instance, instance_id)
        assert instance is not None and instance.next_due_at == due_before  # the timers keep running
        entry = session.get(HumanTask, task_id)
        assert entry is not None and entry.assignee == "office"  # the same task, still claimed
        [moved] = session.scalars(select(AuditEvent).where(AuditEvent.action == "instance_migrated")).all()
        assert moved.detail["from_version"] == 1 and moved.detail["to_version"] == 2
        assert moved.actor == "olga"
    flow.engine.complete(flow.staff, task_id, {"approved": True})
    assert flow.engine.instance(flow.staff, instance_id).data["migrated"] is True  # v2's new step ran
    ref = flow.engine.instance(flow.staff, instance_id).data["ref"]
    flow.engine.deliver_message(flow.staff, "paid", {}, {"ref": ref})
    done = flow.engine.instance(flow.staff, instance_id)
    assert done.status == "completed" and done.version == 2
    with pytest.raises(Conflict, match="completed"):
        flow.engine.migrate_instance(OWNER, instance_id)


def review_renamed(tmp_path: Path) -> Path:
    """The flow with its review task under another id: an instance at review cannot move."""
    renamed = edited(tmp_path, 'id="review" name="Review request"', 'id="assess" name="Assess request"')
    text = (renamed / "flow" / "flow.bpmn").read_text()
    text = text.replace('targetRef="review"', 'targetRef="assess"').replace('sourceRef="review"', 'sourceRef="assess"')
    text = text.replace('attachedToRef="review"', 'attachedToRef="assess"').replace(">review<", ">assess<")
    (renamed / "flow" / "flow.bpmn").write_text(text)
    return renamed


def test_refused_naming_the_missing_element_and_nothing_changes(flow: Harness, tmp_path: Path) -> None:
    instance_id = at_review(flow)
    flow.engine.deploy(flow.staff, review_renamed(tmp_path))
    check = flow.engine.monitor_detail(OWNER, instance_id).migration
    assert not check.possible and "review" in check.elements
    assert "Review request (review) does not exist in version 2" in check.refusals[0]

    with pytest.raises(Conflict) as refused:
        flow.engine.migrate_instance(OWNER, instance_id)
    assert "Review request (review)" in refused.value.message and "version 2" in refused.value.message
    assert refused.value.details["elements"][0] == "review"

    view = flow.engine.instance(flow.staff, instance_id)
    assert view.version == 1
    with session_scope() as session:
        assert not session.scalars(select(AuditEvent).where(AuditEvent.action == "instance_migrated")).all()
    flow.engine.complete(flow.staff, office_task(flow), {"approved": False})  # still runs on v1
    assert flow.engine.instance(flow.staff, instance_id).status == "completed"


def test_only_process_owners_and_admins_migrate(flow: Harness, tmp_path: Path) -> None:
    instance_id = at_review(flow)
    with pytest.raises(Conflict, match="already runs on version 1"):
        flow.engine.migrate_instance(Actor("ada", ("admin",), True), instance_id)
    flow.engine.deploy(flow.staff, edited(tmp_path, *INSERT_STEP))
    for actor in (OFFICE, Actor("cora", ("coordinator",), True), Actor("cas", ("candidate",), False)):
        with pytest.raises(Forbidden):
            flow.engine.migrate_instance(actor, instance_id)
    assert flow.engine.instance(flow.staff, instance_id).version == 1
    flow.engine.migrate_instance(Actor("ada", ("admin",), True), instance_id)
    assert flow.engine.instance(flow.staff, instance_id).version == 2
