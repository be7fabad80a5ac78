"""Celery app: broker Redis when ``REDIS_URL`` is set, otherwise kombu's SQLAlchemy transport
on a local SQLite file (a real broker and a real worker, with no server to install).

Tasks carry only a job id; the worker reads the job row. Acks are late and lost workers
re-queue, and the engine makes redelivery harmless (see certflow.engine.jobs).
"""

from __future__ import annotations

import logging

from celery import Celery
from celery.signals import worker_process_init

from certflow.engine.dto import JobMessage
from certflow.settings import get_settings

log = logging.getLogger(__name__)
settings = get_settings()

app = Celery("certflow", broker=settings.broker_url)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    broker_transport_options={"polling_interval": 0.2},
    beat_schedule={
        "certflow-tick": {"task": "certflow.tick", "schedule": settings.beat_interval_seconds},
    },
    timezone="UTC",
)


@worker_process_init.connect
def _fresh_connections(**_: object) -> None:
    # A forked child must not share its parent's database sockets.
    from certflow.store.db import reset_engines

    reset_engines()


@app.task(name="certflow.run_job")
def run_job(job_id: int) -> str:
    from certflow.bootstrap import engine

    return engine().run_job(job_id)


@app.task(name="certflow.tick")
def tick() -> dict[str, int]:
    """Beat's heartbeat: fire due timers, publish due and lost jobs."""
    from certflow.bootstrap import engine

    eng = engine()
    return {"timers": eng.fire_due_timers(), "jobs": eng.sweep_jobs()}


def publish(messages: list[JobMessage]) -> None:
    for message in messages:
        run_job.apply_async(args=[message.job_id])
