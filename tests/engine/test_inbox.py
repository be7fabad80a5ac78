"""The inbox pages through open tasks in queue order: due first (undated last), then higher
priority, then older; each page is 50 by default and a cursor leads to the next, never
repeating or skipping a task, whatever mix of dated, undated, claimed and group work, on
SQLite and on PostgreSQL; each row shows the form of the version its instance runs."""

from __future__ import annotations

import random
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from certflow.bootstrap import build_engine
from certflow.engine.errors import InvalidInput
from certflow.engine.facade import Actor
from certflow.engine.inbox import sort_key
from certflow.engine.inbox_filters import InboxFilter
from certflow.store.db import session_scope
from certflow.store.models import HumanTask, User
from tests.support import FLOW_DIR, Harness, create_user

MONITOR_OWNER = Actor("olga", ("process_owner",), True)


@pytest.fixture
def db_harness(any_db: str) -> Harness:
    h = Harness(build_engine())
    h.engine.publisher = h.published.extend
    return h


@pytest.fixture
def crowded(db_harness: Harness) -> tuple[Harness, str]:
    """One real instance (for its definition's forms) and 180 queue rows inserted directly
    (synthetic) with many ties in due date and priority."""
    h = db_harness
    h.engine.deploy(h.staff, FLOW_DIR)
    instance_id = h.engine.start(h.staff, "flow", "K1", {"key": "K1"}).id
    h.run_jobs()
    now = h.engine.now()
    rng = random.Random(7)
    rows = []
    for n in range(180):
        rows.append(dict(
            id=f"t{n:04d}", instance_id=instance_id, process_id="flow", business_key="K1",
            element_id="review", title="Review request", form="review.json",
            candidate_group=rng.choice(["office", "office", "coordinator", "mentor"]),
            assignee=rng.choice([None, None, None, "bob", "ann"]),
            priority=rng.choice([10, 50, 50, 90]),
            due_at=rng.choice([None, now - timedelta(days=1), now + timedelta(days=2), now + timedelta(days=5)]),
            created_at=now - timedelta(minutes=rng.choice([1, 2, 3])), claimed_at=None, context={},
        ))
    with session_scope() as s:
        s.execute(insert(HumanTask), rows)
    return h, instance_id


def _all_pages(h: Harness, actor: Actor, limit: int, **filters: object) -> list[str]:
    seen, after, pages = [], None, 0
    while True:
        page = h.engine.inbox_page(actor, limit=limit, after=after, **filters)  # type: ignore[arg-type]
        assert len(page.tasks) <= limit
        seen += [t.id for t in page.tasks]
        pages += 1
        if page.next is None:
            return seen
        after = page.next
        assert pages < 500


def _expected(actor: Actor, overdue: bool | None = None, now: object = None, scope: str = "all",
              group: str | None = None, due_before: object = None) -> list[str]:
    """The rule, in Python: mine plus my groups' unassigned work (or a group's: all of it for
    staff, its unassigned work and mine for a member), narrowed to mine or to nobody's by the
    scope, in queue order."""
    with session_scope() as s:
        entries = s.query(HumanTask).all()
    if group is not None:
        mine = [e for e in entries if e.candidate_group == group
                and (actor.is_staff or e.assignee is None or e.assignee == actor.username)]
    else:
        mine = [e for e in entries if e.assignee == actor.username
                or (e.assignee is None and e.candidate_group in actor.groups)]
    if due_before is not None:
        mine = [e for e in mine if e.due_at is not None and e.due_at <= due_before]  # type: ignore[operator]
    if scope == "mine":
        mine = [e for e in mine if e.assignee == actor.username]
    elif scope == "unassigned":
        mine = [e for e in mine if e.assignee is None]
    if overdue is not None:
        mine = [e for e in mine if (e.due_at is not None and e.due_at < now) == overdue]  # type: ignore[operator]
    return [e.id for e in sorted(mine, key=sort_key)]


@pytest.mark.parametrize("limit", [1, 7, 50])
def test_pages_cover_the_inbox_once_in_queue_order(crowded: tuple[Harness, str], limit: int) -> None:
    h, _ = crowded
    bob = Actor("bob", ("office", "coordinator"), False)
    expected = _expected(bob)
    assert len(expected) > 60
    assert _all_pages(h, bob, limit) == expected


def test_default_page_is_fifty_with_forms_and_overdue_filter(crowded: tuple[Harness, str]) -> None:
    h, _ = crowded
    bob = Actor("bob", ("office", "coordinator"), False)
    first = h.engine.inbox(bob)
    assert len(first) == 50
    assert all(t.form_schema is not None for t in first)  # one batched lookup, still every form
    now = h.engine.now()
    overdue = _all_pages(h, bob, 7, overdue=True)
    assert overdue == _expected(bob, True, now) and overdue
    assert _all_pages(h, bob, 7, overdue=False) == _expected(bob, False, now)


def test_staff_group_view_and_bad_cursor(crowded: tuple[Harness, str]) -> None:
    h, _ = crowded
    with session_scope() as s:
        mentor_work = sorted((e for e in s.query(HumanTask).all() if e.candidate_group == "mentor"), key=sort_key)
    assert _all_pages(h, h.staff, 9, group="mentor") == [e.id for e in mentor_work]
    with pytest.raises(InvalidInput):
        h.engine.inbox_page(h.staff, after="not-a-cursor")
    with pytest.raises(InvalidInput):
        h.engine.inbox_page(h.staff, limit=0)


@pytest.mark.parametrize("scope", ["all", "mine", "unassigned"])
def test_scopes_page_like_the_rule_with_and_without_a_group(crowded: tuple[Harness, str], scope: str) -> None:
    h, _ = crowded
    bob = Actor("bob", ("office", "coordinator"), False)
    flt = InboxFilter(scope=scope)
    assert _all_pages(h, bob, 8, filters=flt) == _expected(bob, scope=scope)
    assert _all_pages(h, bob, 8, filters=flt, group="office") == _expected(bob, scope=scope, group="office")
    # Not bob's group and bob is not staff: his own inbox, as without a group.
    assert _all_pages(h, bob, 8, filters=flt, group="mentor") == _expected(bob, scope=scope)
    staff_bob = Actor("bob", ("office",), True)
    assert _all_pages(h, staff_bob, 8, filters=flt, group="mentor") == _expected(
        staff_bob, scope=scope, group="mentor")


def test_a_candidate_pages_like_the_rule(crowded: tuple[Harness, str]) -> None:
    """A candidate's tasks come from one query over all sources, not one per source."""
    h, _ = crowded
    bob = Actor("bob", ("office", "coordinator"), False)
    now = h.engine.now()
    assert _all_pages(h, bob, 7, filters=InboxFilter(candidate="K1")) == _expected(bob)
    assert _all_pages(h, bob, 7, filters=InboxFilter(candidate="K1", overdue=True)) == _expected(bob, True, now)
    assert _all_pages(h, bob, 7, filters=InboxFilter(candidate="K1", scope="mine"), group="office") == _expected(
        bob, scope="mine", group="office")
    assert _all_pages(h, bob, 7, filters=InboxFilter(candidate="K2")) == []


def test_due_within_a_window_pages_like_the_rule(crowded: tuple[Harness, str]) -> None:
    h, _ = crowded
    bob = Actor("bob", ("office", "coordinator"), False)
    now = h.engine.now()
    window = _all_pages(h, bob, 6, filters=InboxFilter(due_within_days=3))
    assert window == _expected(bob, due_before=now + timedelta(days=3)) and window
    upcoming = _all_pages(h, bob, 6, filters=InboxFilter(due_within_days=3, overdue=False))
    assert upcoming == [t for t in window if t not in _expected(bob, True, now)] and upcoming


@pytest.mark.parametrize("undated", [False, True])
def test_equal_due_dates_priorities_and_times_page_once_each(db_harness: Harness, undated: bool) -> None:
    """Ties on everything but the id, across the actor's own and two groups' work: the keyset
    falls through to the id, so every page boundary lands inside a run of equal tasks."""
    h = db_harness
    h.engine.deploy(h.staff, FLOW_DIR)
    instance_id = h.engine.start(h.staff, "flow", "K1", {"key": "K1"}).id
    h.run_jobs()
    now = h.engine.now()
    due = None if undated else now + timedelta(days=3)
    with session_scope() as s:
        s.query(HumanTask).delete()
        s.execute(insert(HumanTask), [dict(
            id=f"t{n:03d}", instance_id=instance_id, process_id="flow", business_key=f"B{n}",
            element_id="review", title="Review request", form="review.json",
            candidate_group=("office", "mentor", "coordinator")[n % 3],
            assignee="bob" if n % 4 == 0 else None, priority=50, due_at=due,
            created_at=now, claimed_at=None, context={}) for n in range(97)])
    bob = Actor("bob", ("office", "mentor"), False)
    expected = _expected(bob)
    assert len(expected) > 50 and expected == sorted(expected)  # only the id tells them apart
    for limit in (1, 5, 50):
        assert _all_pages(h, bob, limit) == expected


def test_each_row_shows_the_form_of_the_version_its_instance_runs(harness: Harness, tmp_path: Path) -> None:
    """Definitions are cached per process: a deploy must not leave an open inbox showing the
    old form for new work, nor the new form for work still on the old version; a migrated
    instance shows the new one."""
    h = harness
    h.engine.deploy(h.staff, FLOW_DIR)
    first = h.engine.start(h.staff, "flow", "K1", {"key": "K1"}).id
    h.run_jobs()

    def forms() -> dict[str, str]:
        return {t.instance_id: t.form_schema["title"] for t in h.engine.inbox(h.staff)
                if t.element_id == "review" and t.form_schema}

    assert forms() == {first: "Review"}  # and the definition is now in the engine's cache
    changed = tmp_path / "procs"
    shutil.copytree(FLOW_DIR, changed)
    form = changed / "flow" / "forms" / "review.json"
    form.write_text(form.read_text().replace('"title": "Review"', '"title": "Review (v2)"'))
    [v2] = h.engine.deploy(h.staff, changed)
    assert v2.version == 2
    second = h.engine.start(h.staff, "flow", "K2", {"key": "K2"}).id
    h.run_jobs()
    assert forms() == {first: "Review", second: "Review (v2)"}
    h.engine.migrate_instance(MONITOR_OWNER, first, "the form changed")
    assert forms() == {first: "Review (v2)", second: "Review (v2)"}


def test_the_filters_offer_the_tasks_of_each_latest_version(db_harness: Harness, tmp_path: Path) -> None:
    """A renamed task is offered by its new name only, once, while an instance still runs on
    the first version (on SQLite and PostgreSQL)."""
    h = db_harness
    h.engine.deploy(h.staff, FLOW_DIR)
    h.engine.start(h.staff, "flow", "K1", {"key": "K1"})
    office = Actor("otto", ("office",), False)
    names = {t["element_id"]: t["name"] for t in h.engine.inbox_choices(h.staff)["tasks"]}
    assert names == {"review": "Review request", "escalate": "Handle late review"}
    assert [t["element_id"] for t in h.engine.inbox_choices(office)["tasks"]] == ["review"]

    changed = tmp_path / "procs"
    shutil.copytree(FLOW_DIR, changed)
    diagram = changed / "flow" / "flow.bpmn"
    renamed = diagram.read_text().replace('name="Review request"', 'name="Check the request"')
    for version, mark in ((2, ""), (3, "<!-- v3 -->")):  # v3: another version, the same tasks
        diagram.write_text(renamed + mark)
        [deployed] = h.engine.deploy(h.staff, changed)
        assert deployed.version == version
    choices = h.engine.inbox_choices(h.staff)
    assert [t["name"] for t in choices["tasks"] if t["element_id"] == "review"] == ["Check the request"]
    assert choices["processes"] == ["flow"] and choices["groups"] == ["coordinator", "office"]


@pytest.mark.integration
def test_a_read_leaves_the_pooled_connection_transactional(pg_url: str) -> None:
    """The inbox reads without a transaction of its own on PostgreSQL; the pooled connection it
    used must be back to all-or-nothing for the next unit of work."""
    h = Harness(build_engine())
    h.engine.inbox_page(h.staff)
    with pytest.raises(RuntimeError), session_scope() as s:
        create_user(s, "half", "Half", ["office"])
        s.flush()
        raise RuntimeError("halfway")
    with session_scope() as s:
        assert s.get(User, "half") is None
