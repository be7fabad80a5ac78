"""The worker's publisher (worker.app.make_publisher): a list of jobs goes to the broker over
one producer, every job as its own ``certflow.run_job`` message."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import pytest
from celery import Celery

from certflow.engine.dto import JobMessage
from worker.app import make_publisher


def test_many_jobs_are_published_over_one_producer(monkeypatch: pytest.MonkeyPatch) -> None:
    app = Celery("certflow-test", broker="memory://")
    app.conf.update(task_default_queue="publish-test", task_ignore_result=True)
    acquired: list[Any] = []
    real = app.producer_or_acquire

    @contextmanager
    def counted(producer: Any = None) -> Any:
        with real(producer) as used:
            if producer is None:  # acquired from the pool, not handed in
                acquired.append(used)
            yield used

    monkeypatch.setattr(app, "producer_or_acquire", counted)
    make_publisher(app)([JobMessage(n, "email/send") for n in (1, 2, 3)])
    assert len(acquired) == 1
    with app.connection_for_read() as conn:
        queue = conn.SimpleQueue("publish-test")
        bodies = [queue.get(timeout=1) for _ in range(3)]
        jobs = [m.headers["task"] for m in bodies], [m.payload[0] for m in bodies]
        for m in bodies:
            m.ack()
        queue.close()
    assert jobs == (["certflow.run_job"] * 3, [[1], [2], [3]])
