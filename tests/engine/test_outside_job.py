"""A job whose handler has outside effects (an e-mail) is one transaction on the worker: the
advance locks the instance, checks the task still waits, sends (keyed by the job), completes
the task and moves the instance on. The chain diagram is start -> a, b (database) -> c -> d
(database) -> review; here c sends an "e-mail" (``test/slow_effect``, keyed by the job)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

import certflow.engine.runtime as runtime
from certflow.store.communications import EmailMessage
from certflow.store.db import get_engine, session_scope
from tests.support import CHAIN_DIR, Harness, db_effects, job_states


@pytest.fixture
def mailing(harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setenv("CERTFLOW_TEST_SLOW_SECONDS", "0")
    target = tmp_path / "procs"
    shutil.copytree(CHAIN_DIR, target)
    bpmn = target / "chain" / "chain.bpmn"
    bpmn.write_text(bpmn.read_text().replace('id="test/echo" resultVariable="rc"',
                                             'id="test/slow_effect" resultVariable="rc"'))
    harness.engine.deploy(harness.staff, target)
    return harness


def emails() -> list[str]:
    with session_scope() as s:
        return list(s.scalars(select(EmailMessage.subject)))


def at_c(h: Harness) -> int:
    """Start an instance and run a's job: a and b ran inline, c's job waits. Returns c's job."""
    h.engine.start(h.staff, "chain", "K1", {"key": "K1"})
    assert h.engine.run_job(h.published[0].job_id) == "done"
    assert job_states() == [("a", "done"), ("c", "queued")] and emails() == []
    return h.published[-1].job_id


@pytest.fixture
def commits() -> Iterator[list[int]]:
    counted: list[int] = []

    def count(*_: Any) -> None:
        counted.append(1)

    engine = get_engine()
    event.listen(engine, "commit", count)
    yield counted
    event.remove(engine, "commit", count)


def test_an_email_job_sends_once_and_moves_the_instance_on_in_one_transaction(
        mailing: Harness, commits: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    h = mailing
    c_job = at_c(h)
    drained: list[int] = []  # d emits a message: its routing after commit is counted apart
    monkeypatch.setattr(h.engine, "drain_messages", lambda limit=0, inline=False: drained.append(len(commits)) or 0)
    commits.clear()
    assert h.engine.run_job(c_job) == "done"
    assert len(commits) == 1 and drained == [1]  # send, deliver, continue: one commit, not two
    assert emails() == ["About c-K1"]
    assert db_effects() == ["a-K1", "b-K1", "d-K1"]  # d ran inline after c, in that advance
    assert [t.element_id for t in h.engine.inbox(h.staff)] == ["review"]
    assert h.engine.run_job(c_job) == "ignored:done"  # a redelivery sends nothing
    assert emails() == ["About c-K1"]


def test_a_failure_after_the_email_keeps_it_and_the_instance_still_moves_on(
        mailing: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h = mailing
    c_job = at_c(h)
    real, failed = runtime.project, []

    def fails_once(*args: Any, **kwargs: Any) -> Any:
        if not failed:
            failed.append(1)
            raise RuntimeError("the save failed after the mail went out")
        return real(*args, **kwargs)

    monkeypatch.setattr(runtime, "project", fails_once)
    assert h.engine.run_job(c_job) == "done"
    assert failed == [1]
    # The e-mail's row committed with the claim; the result was then delivered on its own.
    assert emails() == ["About c-K1"]
    assert db_effects() == ["a-K1", "b-K1", "d-K1"]
    assert [t.element_id for t in h.engine.inbox(h.staff)] == ["review"]
    assert h.engine.run_job(c_job) == "ignored:done"
    assert emails() == ["About c-K1"]

