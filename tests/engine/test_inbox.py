"""The inbox pages through open tasks in queue order: due first (undated last), then higher
priority, then older; each page is 50 by default and a cursor leads to the next, never
repeating or skipping a task, whatever mix of dated, undated, claimed and group work."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import insert

from certflow.engine.errors import InvalidInput
from certflow.engine.facade import Actor
from certflow.engine.inbox import sort_key
from certflow.store.db import session_scope
from certflow.store.models import HumanTask
from tests.support import FLOW_DIR, Harness


@pytest.fixture
def crowded(harness: Harness) -> tuple[Harness, str]:
    """One real instance (for its definition's forms) and 180 queue rows inserted directly
    (synthetic) with many ties in due date and priority."""
    h = harness
    h.engine.deploy(h.staff, FLOW_DIR)
    instance_id = h.engine.start(h.staff, "flow", "K1", {"key": "K1"}).id
    h.run_jobs()
    now = h.engine.now()
    rng = random.Random(7)
    rows = []
    for n in range(180):
        rows.append(dict(
            id=f"t{n:04d}", instance_id=instance_id, process_id="flow", business_key=f"B{n}",
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


def _expected(actor: Actor, overdue: bool | None = None, now: object = None) -> list[str]:
    with session_scope() as s:
        entries = s.query(HumanTask).all()
    mine = [e for e in entries if e.assignee == actor.username
            or (e.assignee is None and e.candidate_group in actor.groups)]
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
