"""A worker keeps an instance's work in its own process: the jobs its advance writes for that
instance run next in the same worker (its live workflow is cached there), not round the
broker. They are committed outbox rows all the same, so a worker that dies before running them
loses nothing. The chain diagram is start -> a, b (database) -> c (outside) -> d (database)
-> review."""

from __future__ import annotations

import pytest

import certflow.bootstrap
from certflow.engine.dto import JobMessage
from tests.support import Harness, db_effects as _effects, job_states as _jobs
from worker import app as worker_app



def test_the_worker_runs_the_instance_s_next_job_itself_and_the_broker_sees_one_message(
        chain: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h = chain
    monkeypatch.setattr(certflow.bootstrap, "engine", lambda: h.engine)
    h.engine.start(h.staff, "chain", "K1", {"key": "K1"})
    [first] = h.published  # the web's advance wrote a's job
    hits = h.engine.live_hits
    assert worker_app.run_job(first.job_id) == "done"
    # c's job (outside effects) ran in this worker right after a's, never through the broker.
    assert h.published == [first]
    assert _jobs() == [("a", "done"), ("c", "done")]
    assert _effects() == ["a-K1", "b-K1", "d-K1"]
    assert [t.element_id for t in h.engine.inbox(h.staff)] == ["review"]
    assert h.engine.live_hits >= hits + 2  # both advances found the workflow cached
    assert worker_app.run_job(first.job_id) == "ignored:done"  # a redelivery changes nothing
    assert _effects() == ["a-K1", "b-K1", "d-K1"]


def test_with_chaining_off_every_job_goes_through_the_broker(
        chain: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h = chain
    monkeypatch.setattr(certflow.bootstrap, "engine", lambda: h.engine)
    monkeypatch.setattr(h.engine.settings, "job_chain_limit", 0)
    h.engine.start(h.staff, "chain", "K1", {"key": "K1"})
    [first] = h.published
    assert worker_app.run_job(first.job_id) == "done"
    assert _jobs() == [("a", "done"), ("c", "queued")]
    assert [m.job_id for m in h.published[1:]] == [h.jobs()[1].id]  # c's job was published


def test_a_chained_job_the_worker_never_ran_is_swept_to_the_broker(chain: Harness) -> None:
    h = chain
    h.engine.start(h.staff, "chain", "K1", {"key": "K1"})
    [first] = h.published
    kept: list[JobMessage] = []
    assert h.engine.run_job(first.job_id, chain=kept) == "done"
    assert len(kept) == 1 and h.published == [first]  # kept for this worker, not published
    # The worker dies here. The job is a committed row: the sweep publishes it.
    assert _jobs() == [("a", "done"), ("c", "queued")]
    h.advance("PT1M")
    assert h.engine.sweep_jobs() == 1
    assert h.published[-1].job_id == kept[0].job_id
    h.run_jobs()
    assert _effects() == ["a-K1", "b-K1", "d-K1"] and _jobs() == [("a", "done"), ("c", "done")]
