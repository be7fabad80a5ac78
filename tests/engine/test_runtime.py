"""The persisted engine on the small test diagram (tests/engine/data/flow): every step is its
own advance, so the instance is saved and restored between all of them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from certflow import i18n
from certflow.engine.errors import Conflict, DeployError, Forbidden, InvalidInput, NotFound
from certflow.store.db import session_scope
from certflow.store.models import AuditEvent, Definition, Instance, Job
from tests.support import FLOW_DIR, Harness, statements


@pytest.fixture
def flow(harness: Harness) -> Harness:
    harness.engine.deploy(harness.staff, FLOW_DIR)
    return harness


def edited(tmp_path: Path, old: str, new: str, source: Path = FLOW_DIR, bpmn: str = "flow/flow.bpmn",
           also: tuple[Path, ...] = ()) -> Path:
    """A copy of a processes folder with one edit in one diagram (the edit must apply)."""
    target = tmp_path / "procs"
    shutil.copytree(source, target / source.name if also else target)
    for extra in also:
        shutil.copytree(extra, target / extra.name)
    path = target / bpmn
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return target


def start(h: Harness, key: str = "K1") -> str:
    return h.engine.start(h.staff, "flow", key, {"key": key}).id


def office_task(h: Harness) -> str:
    [task] = [t for t in h.engine.inbox(h.staff) if t.element_id == "review"]
    return task.id


def test_deploy_versions_and_unchanged_redeploy(harness: Harness, tmp_path: Path) -> None:
    [first] = harness.engine.deploy(harness.staff, FLOW_DIR)
    assert (first.process_id, first.version, first.created) == ("flow", 1, True)
    [again] = harness.engine.deploy(harness.staff, FLOW_DIR)
    assert (again.version, again.created) == (1, False)
    instance_id = start(harness)
    changed = edited(tmp_path, 'name="Review request"', 'name="Review the request"')
    [second] = harness.engine.deploy(harness.staff, changed)
    assert (second.version, second.created) == (2, True)
    assert harness.engine.instance(harness.staff, instance_id).version == 1  # keeps its version
    assert harness.engine.start(harness.staff, "flow", "K2", {"key": "K2"}).version == 2
    # Back to the first diagram (a studio deploy reverted, the files deployed after one): a
    # newer version with the first's content, not an IntegrityError.
    [back] = harness.engine.deploy(harness.staff, FLOW_DIR)
    assert (back.version, back.created) == (3, True)
    assert harness.engine.start(harness.staff, "flow", "K3", {"key": "K3"}).version == 3
    assert harness.engine.instance(harness.staff, instance_id).version == 1


def test_service_task_waits_for_a_worker_then_user_task_reaches_the_queue(flow: Harness) -> None:
    instance_id = start(flow)
    [job] = flow.jobs()
    assert (job.operator, job.params, job.status) == ("test/echo", {"value": "R-K1"}, "queued")
    assert [m.job_id for m in flow.published] == [job.id]  # published after commit
    assert flow.engine.inbox(flow.staff) == []
    assert flow.run_jobs() == ["done"]
    [task] = flow.engine.inbox(flow.staff)
    assert (task.element_id, task.candidate_group, task.form, task.priority) == ("review", "office", "review.json", 70)
    assert task.due_at is not None and (task.due_at - task.created_at).days == 10
    assert task.form_schema and task.form_schema["required"] == ["approved"]
    view = flow.engine.instance(flow.staff, instance_id)
    assert view.data["ref"]["value"] == "R-K1"


def test_complete_validates_the_form_and_routes_the_message(flow: Harness) -> None:
    instance_id = start(flow)
    flow.run_jobs()
    task_id = office_task(flow)
    with pytest.raises(InvalidInput) as bad:
        flow.engine.complete(flow.staff, task_id, {"approved": "yes"})
    assert "approved" in bad.value.message
    assert office_task(flow) == task_id  # nothing changed
    flow.engine.complete(flow.staff, task_id, {"approved": True})
    with pytest.raises((NotFound, Conflict)):
        flow.engine.complete(flow.staff, task_id, {"approved": True})  # a second click
    view = flow.engine.instance(flow.staff, instance_id)
    assert view.waiting_for == ["paid (ref={'value': 'R-K1', 'key': '" + view.data["ref"]["key"] + "'})"] or view.waiting_for
    with pytest.raises(NotFound):
        flow.engine.deliver_message(flow.staff, "paid", {"amount": 1}, correlation={"ref": "nope"})
    ref = view.data["ref"]
    [target] = flow.engine.deliver_message(flow.staff, "paid", {"amount": 1}, correlation={"ref": ref})
    assert target == instance_id
    assert flow.engine.instance(flow.staff, instance_id).status == "completed"


def test_default_flow_ends_rejected(flow: Harness) -> None:
    instance_id = start(flow)
    flow.run_jobs()
    flow.engine.complete(flow.staff, office_task(flow), {"approved": False, "note": "no"})
    assert flow.engine.instance(flow.staff, instance_id).status == "completed"
    actions = [e["element_id"] for e in flow.engine.history(flow.staff, instance_id) if e["action"] == "completed"]
    assert "end_rejected" in actions and "end_done" not in actions


def test_claim_rules(flow: Harness) -> None:
    start(flow)
    flow.run_jobs()
    alice = flow.user("alice", ["office"])
    bob = flow.user("bob", ["office"])
    outsider = flow.user("eve", ["mentor"])
    task_id = office_task(flow)
    assert flow.engine.claim(alice, task_id).assignee == "alice"
    with pytest.raises(Conflict):
        flow.engine.claim(bob, task_id)
    with pytest.raises(Conflict):
        flow.engine.complete(bob, task_id, {"approved": True})
    assert [t.id for t in flow.engine.inbox(bob)] == []
    with pytest.raises(Forbidden):
        flow.engine.claim(outsider, task_id)
    with pytest.raises(Forbidden):
        flow.engine.unclaim(bob, task_id)
    flow.engine.unclaim(alice, task_id)
    flow.engine.assign(flow.staff, task_id, "bob")
    assert [t.id for t in flow.engine.inbox(bob)] == [task_id]
    with pytest.raises(Forbidden):
        flow.engine.assign(alice, task_id, "alice")


def test_reminder_then_interrupting_escalation(flow: Harness) -> None:
    instance_id = start(flow)
    flow.run_jobs()
    review = office_task(flow)
    flow.advance("P6D")
    assert [j.element_id for j in flow.jobs()] == ["make_ref"]  # not yet
    flow.advance("P2D")  # day 8: the non-interrupting reminder
    assert [j.element_id for j in flow.jobs()] == ["make_ref", "remind"]
    flow.run_jobs()
    assert office_task(flow) == review  # still open
    assert [t.overdue for t in flow.engine.inbox(flow.staff)] == [False]
    flow.advance("P3D")  # day 11: overdue, not yet escalated
    assert [t.overdue for t in flow.engine.inbox(flow.staff, overdue=True)] == [True]
    flow.advance("P4D")  # day 15: the interrupting timer
    tasks = flow.engine.inbox(flow.staff)
    assert [t.element_id for t in tasks] == ["escalate"]
    assert tasks[0].candidate_group == "coordinator"
    with session_scope() as s:
        assert s.get(Instance, instance_id).next_due_at is None


def test_stale_result_is_dropped(flow: Harness) -> None:
    instance_id = start(flow)
    flow.engine.cancel(flow.staff, instance_id, "applicant withdrew")
    [job] = flow.jobs()
    assert job.status == "stale"
    assert flow.engine.deliver_result(job.id, result={"value": "late"}) == "stale"
    assert flow.engine.run_job(job.id) == "ignored:stale"
    assert flow.engine.instance(flow.staff, instance_id).status == "cancelled"


def test_duplicate_delivery_has_one_effect(flow: Harness) -> None:
    instance_id = start(flow)
    [job] = flow.jobs()
    assert flow.engine.run_job(job.id) == "done"
    assert flow.engine.run_job(job.id) == "ignored:done"
    with session_scope() as s:
        completions = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.instance_id == instance_id, AuditEvent.action == "service_completed"))
    assert completions == 1


def test_a_job_s_advance_locks_its_instance_from_the_job_and_reads_the_job_once(flow: Harness) -> None:
    """The lock statement finds the instance from the job (no read before the lock) and reads
    the job's row with it, once, and the projection knows the instance's open jobs from the
    last save (no read of them back): the job is marked done, the next written."""
    start(flow)
    [job] = flow.jobs()
    with statements() as seen:
        assert flow.engine.run_job(job.id) == "done"
    assert seen[0].startswith("SELECT instances.id") and "JOIN jobs ON jobs.instance_id = instances.id" in seen[0]
    assert seen[0].endswith("WHERE jobs.id = ?")
    reads = [s for s in seen if s.startswith("SELECT") and " jobs" in s]
    assert reads == [seen[0]]
    assert not [s for s in seen if s.startswith("UPDATE jobs") and "stale" in s]
    assert [(j.element_id, j.status) for j in flow.jobs()] == [("make_ref", "done")]


def test_a_duplicate_delivery_advances_nothing(flow: Harness) -> None:
    instance_id = start(flow)
    [job] = flow.jobs()
    flow.engine.run_job(job.id)
    with session_scope() as s:
        version = s.get(Instance, instance_id).version
    with statements() as seen:
        assert flow.engine.run_job(job.id) == "ignored:done"
    assert seen and all(s.startswith("SELECT") for s in seen)  # it wrote nothing
    with session_scope() as s:
        assert s.get(Instance, instance_id).version == version
    with pytest.raises(NotFound, match="^no job 999999$"):
        flow.engine.run_job(999_999)
    with pytest.raises(NotFound, match="^no job 999999$"):
        flow.engine.deliver_result(999_999, result={})


def test_a_completion_locks_its_instance_from_the_task_and_reads_the_task_once(flow: Harness) -> None:
    start(flow)
    flow.run_jobs()
    task_id = office_task(flow)
    with statements() as seen:
        flow.engine.complete(flow.staff, task_id, {"approved": True})
    assert seen[0].startswith("SELECT instances.id") and "FROM human_tasks WHERE human_tasks.id = ?" in seen[0]
    assert len([s for s in seen if s.startswith("SELECT") and "WHERE human_tasks.id = ?" in s]) == 2
    with pytest.raises(NotFound, match="no open task"):
        flow.engine.complete(flow.staff, task_id, {"approved": True})


def test_a_save_sets_status_and_next_due_time_only_when_they_change(flow: Harness) -> None:
    """SQLite rewrites an index entry for every column an UPDATE sets, changed or not, and the
    status and next due time are in four indexes: a save sets them only when the advance
    changed them, and the row then holds what the engine says."""
    instance_id = start(flow)
    with statements() as seen:
        flow.run_jobs()  # the review task waits with its timers: a due time, the same status
    saves = [s for s in seen if s.startswith("UPDATE instances")]
    assert saves and not [s for s in saves if "status=?" in s or "ended_at=?" in s]
    assert [s for s in saves if "next_due_at=?" in s]
    with session_scope() as s:
        due = s.get(Instance, instance_id).next_due_at
    assert due is not None
    with statements() as seen:
        flow.engine.cancel(flow.staff, instance_id, "withdrawn")  # its timers go with it
    assert [s for s in seen if s.startswith("UPDATE instances") and "next_due_at=?" in s]
    with session_scope() as s:
        row = s.get(Instance, instance_id)
        assert (row.status, row.next_due_at, row.ended_at is not None) == ("cancelled", None, True)


def test_open_incidents_list_oldest_first_and_the_history_newest_first(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The office's queue of open incidents starts with the one waiting longest; the history
    (every status, which only grows) with the latest; both lists stop at MAX_INCIDENTS."""
    from datetime import datetime, timedelta, timezone

    from certflow.engine import jobs
    from certflow.store.models import Incident

    harness.engine.deploy(harness.staff, FLOW_DIR)
    instance_id = start(harness)
    day = datetime(2026, 3, 2, tzinfo=timezone.utc)
    with session_scope() as s:  # SYNTHETIC incidents: only the listing is under test
        for n, status in enumerate(["open", "skipped", "open", "retried", "open"]):
            s.add(Incident(instance_id=instance_id, task_id=f"t{n}", element_id=f"e{n}", operator="x",
                           error="boom", traceback="", attempts=1, status=status,
                           created_at=day + timedelta(days=n)))
    assert [i.element_id for i in harness.engine.incidents(harness.staff)] == ["e0", "e2", "e4"]
    assert [i.element_id for i in harness.engine.incidents(harness.staff, None)] == ["e4", "e3", "e2", "e1", "e0"]
    assert [i.element_id for i in harness.engine.incidents(harness.staff, "skipped")] == ["e1"]
    monkeypatch.setattr(jobs, "MAX_INCIDENTS", 2)
    assert [i.element_id for i in harness.engine.incidents(harness.staff)] == ["e0", "e2"]
    assert [i.element_id for i in harness.engine.incidents(harness.staff, None)] == ["e4", "e3"]


def test_a_job_whose_task_moved_on_is_marked_stale_and_a_failed_one_stays_failed(
        harness: Harness, tmp_path: Path) -> None:
    """Stale marking from the open jobs the last save wrote (not read back): a cancel makes a
    queued job stale; a job that failed into an incident stays failed when the task is skipped."""
    failing_flow(harness, tmp_path)
    harness.engine.settings = harness.engine.settings.model_copy(update={"job_max_attempts": 1})
    first = start(harness, "K1")
    assert harness.run_jobs() == ["incident"]
    [incident] = harness.engine.incidents(harness.staff)
    second = start(harness, "K2")
    harness.engine.cancel(harness.staff, second, "withdrawn")
    assert harness.engine.resolve_incident(harness.staff, incident.id, "skip") == "skipped"
    with session_scope() as s:
        states = s.execute(select(Job.instance_id, Job.status).order_by(Job.id)).all()
    assert states == [(first, "failed"), (second, "stale")]


def failing_flow(h: Harness, tmp_path: Path) -> None:
    h.engine.deploy(h.staff, edited(tmp_path, 'id="test/echo" resultVariable="ref"', 'id="test/fail" resultVariable="ref"'))


def test_retries_with_backoff_then_incident_retry_and_skip(harness: Harness, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    # A backoff no loaded machine outlasts between two rounds of run_jobs (with 1 s, a slow
    # first attempt let the retry fall due inside the same run_jobs call).
    harness.engine.settings = harness.engine.settings.model_copy(update={"job_backoff_seconds": 60})
    failing_flow(harness, tmp_path)
    instance_id = start(harness)
    assert harness.run_jobs() == ["retry"]
    [first, second] = harness.jobs()
    assert (second.attempt, second.status) == (2, "queued")
    # The retry waits the backoff from the moment the attempt failed, on the engine's clock.
    assert first.finished_at is not None and first.created_at <= second.created_at
    assert (second.available_at - second.created_at).total_seconds() == pytest.approx(60, abs=1e-3)
    for _ in range(4):
        harness.advance("PT1H")
        harness.run_jobs()
    [incident] = harness.engine.incidents(harness.staff)
    assert (incident.attempts, incident.error, incident.element_id) == (5, "the service is down", "make_ref")
    assert not hasattr(incident, "traceback")  # users see the error; the traceback is logged
    assert "HandlerError" in caplog.text and "Traceback" in caplog.text
    assert harness.engine.instance(harness.staff, instance_id).has_incident
    assert harness.engine.resolve_incident(harness.staff, incident.id, "retry") == "retried"
    assert harness.run_jobs() == ["incident"]
    [incident2] = harness.engine.incidents(harness.staff)
    assert harness.engine.resolve_incident(harness.staff, incident2.id, "skip") == "skipped"
    with pytest.raises(Conflict) as twice:  # a double click: said in the page's language
        harness.engine.resolve_incident(harness.staff, incident2.id, "skip")
    assert i18n.translate("nl", twice.value.message) == f"storing {incident2.id} is al afgehandeld (skipped)"
    view = harness.engine.instance(harness.staff, instance_id)
    assert not view.has_incident and [t.element_id for t in view.open_tasks] == ["review"]


def test_lost_publish_is_swept(flow: Harness) -> None:
    flow.engine.publisher = None  # the broker was unreachable at commit time
    start(flow)
    flow.published.clear()
    flow.engine.publisher = flow.published.extend
    assert flow.engine.sweep_jobs() == 0  # too recent: it may still be in flight
    flow.advance("PT1M")
    assert flow.engine.sweep_jobs() == 1
    assert len(flow.published) == 1


def test_unknown_ids_and_duplicate_start(flow: Harness) -> None:
    start(flow)
    with pytest.raises(Conflict):
        start(flow)
    with pytest.raises(NotFound):
        flow.engine.complete(flow.staff, "nope", {})
    with pytest.raises(NotFound):
        flow.engine.instance(flow.staff, "nope")
    with pytest.raises(NotFound):
        flow.engine.start(flow.staff, "nope", "k", {})


def test_candidate_cannot_see_someone_elses_instance(flow: Harness) -> None:
    instance_id = start(flow)
    stranger = flow.user("stranger", ["candidate"])
    with pytest.raises(Forbidden):
        flow.engine.instance(stranger, instance_id)
    with pytest.raises(Forbidden):
        flow.engine.deliver_message(stranger, "paid", {}, business_key="K1")


@pytest.mark.parametrize("edit, problem", [
    (('id="test/echo" resultVariable="ref"', 'id="nope/handler" resultVariable="ref"'), "[make_ref]: unknown handler 'nope/handler'"),
    (('value="review.json"', 'value="missing.json"'), "[review]: form 'missing.json' not found"),
    (('"P14D"', '"P14X"'), "[review_late]: timer"),
    (('approved == True', '().__class__.__base__'), "[f_yes]: condition of sequence flow 'f_yes': attribute"),
    (('approved == True', 'approved ==='), "[f_yes]: condition of sequence flow 'f_yes': not a Python expression"),
    (('id="value" type="str"', 'id="other" type="str"'), "[make_ref]: test/echo: missing parameter(s) ['value']"),
    (("<bpmn:process ", "<bpmn:process <"), "not valid XML"),
    (('<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'), "DOCTYPE"),
])
def test_bad_diagrams_are_refused_whole(harness: Harness, tmp_path: Path, edit: tuple[str, str], problem: str) -> None:
    with pytest.raises(DeployError) as refused:
        harness.engine.deploy(harness.staff, edited(tmp_path, *edit))
    assert problem in refused.value.message
    assert "flow.bpmn" in refused.value.message
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Definition)) == 0


def test_only_staff_deploy(harness: Harness) -> None:
    with pytest.raises(Forbidden):
        harness.engine.deploy(harness.user("c", ["candidate"]), FLOW_DIR)


def test_every_transition_is_audited(flow: Harness) -> None:
    instance_id = start(flow)
    flow.run_jobs()
    flow.engine.claim(flow.staff, office_task(flow))
    flow.engine.complete(flow.staff, office_task(flow), {"approved": False})
    history = flow.engine.history(flow.staff, instance_id)
    seen = [(e["action"], e["element_id"], e["actor"]) for e in history]
    assert ("instance_started", None, "office") in seen
    assert ("started", "make_ref", "office") in seen
    assert ("completed", "make_ref", "worker") in seen
    assert ("claimed", "review", "office") in seen
    assert ("completed", "review", "office") in seen
    assert seen[-1][0] == "instance_completed"
    _ = Job


def _guarded(h: Harness, tmp_path: Path, guard: str) -> Path:
    starters = '<spiffworkflow:property name="starters" value="candidate"/>'
    return edited(tmp_path, starters, starters + f'<spiffworkflow:property name="guard" value="{guard}"/>')


def test_start_guard_refuses_with_its_message_and_starts_nothing(harness: Harness, tmp_path: Path) -> None:
    harness.engine.deploy(harness.staff, _guarded(harness, tmp_path, "test/key_not_blocked"))
    with pytest.raises(InvalidInput, match="apply with another key instead"):
        harness.engine.start(harness.staff, "flow", "B1", {"key": "BLOCKED"})
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Instance)) == 0
    assert harness.engine.start(harness.staff, "flow", "B2", {"key": "fine"}).status == "running"


def test_unknown_start_guard_is_refused_at_deploy(harness: Harness, tmp_path: Path) -> None:
    with pytest.raises(DeployError, match=r"\[start\]: unknown start guard 'nope'"):
        harness.engine.deploy(harness.staff, _guarded(harness, tmp_path, "nope"))


def test_a_process_is_started_only_by_the_groups_it_names(flow: Harness) -> None:
    with pytest.raises(Forbidden, match="open to: candidate"):
        flow.engine.start(flow.user("mia", ["mentor"]), "flow", "M1", {"key": "M1"})


def test_non_staff_start_only_for_themselves(flow: Harness) -> None:
    cas = flow.user("cas", ["candidate"])
    view = flow.engine.start(cas, "flow", "SELF", {"key": "SELF", "candidate": "olga"})
    with session_scope() as s:
        assert s.get(Instance, view.id).subject == "cas"  # not who the data claimed
    assert view.data == {}  # the instance's data is for staff


def test_office_started_application_is_visible_to_its_candidate(flow: Harness) -> None:
    ann = flow.user("ann", ["candidate"])
    stranger = flow.user("bob", ["candidate"])
    instance_id = flow.engine.start(flow.staff, "flow", "ON-BEHALF", {"key": "x", "candidate": "ann"}).id
    assert [r["id"] for r in flow.engine.instances(ann)] == [instance_id]
    assert flow.engine.instance(ann, instance_id).status == "running"
    assert flow.engine.instances(stranger) == []
    with pytest.raises(Forbidden):
        flow.engine.instance(stranger, instance_id)


def test_version_zero_is_not_the_latest(flow: Harness) -> None:
    with pytest.raises(NotFound):
        flow.engine.definition_source("flow", 0)
    assert flow.engine.definition_source("flow", 1)["version"] == 1


def test_a_running_job_is_left_alone_until_its_worker_counts_as_lost(flow: Harness) -> None:
    start(flow)
    [job] = flow.jobs()
    with session_scope() as s:
        s.get(Job, job.id).status = "running"  # a worker took it and is still busy
    flow.published.clear()
    flow.advance("PT5M")
    assert flow.engine.sweep_jobs() == 0  # long jobs (a big fan-out) are not run twice at once
    flow.advance("PT15M")
    assert flow.engine.sweep_jobs() == 1  # that worker died: run it again
    assert [m.job_id for m in flow.published] == [job.id]


@pytest.mark.parametrize("edit, problem", [
    (("'certification/application_received'", "'certification/no_such_letter'"),
     "[send_confirmation]: email/send: no template 'certification/no_such_letter'"),
    (("value=\"'certification'\"", "value=\"'certificaton'\""),
     "[create_invoice]: invoicing/create_invoice: product 'certificaton' has no fee"),
])
def test_a_typo_in_a_handler_parameter_fails_at_deploy(harness: Harness, tmp_path: Path, edit: tuple[str, str],
                                                       problem: str) -> None:
    from tests.support import ROOT

    target = edited(tmp_path, *edit, source=ROOT / "processes" / "certification",
                    bpmn="certification/certification.bpmn", also=(ROOT / "processes" / "shared",))
    with pytest.raises(DeployError) as refused:
        harness.engine.deploy(harness.staff, target)
    assert problem in refused.value.message


def test_a_job_behind_a_backlog_is_republished_ever_less_often(flow: Harness) -> None:
    """A worker minutes behind must not get a duplicate of every waiting job every tick: the
    queue would grow faster than it drains. Each republish waits as long again as the job had
    waited: after 30 s, then 1, 2 and 4 minutes."""
    start(flow)
    flow.published.clear()
    republished_at = []
    for second in range(10, 8 * 60 + 1, 10):  # beat ticks, 8 minutes, the job never taken
        flow.advance("PT10S")
        if flow.engine.sweep_jobs():
            republished_at.append(second)
    assert republished_at[0] <= 40  # a lost message is still found within a tick of 30 s
    for before, at in zip(republished_at, republished_at[1:]):
        assert at - before >= before  # then as long again as it had waited
    assert len(republished_at) == 4 == len(flow.published)  # [30, 70, 150, 300]; it was 16
