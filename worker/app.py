"""Celery app: broker Redis when ``REDIS_URL`` is set, otherwise kombu's SQLAlchemy transport
on a local SQLite file (a real broker and a real worker, with no server to install).

Tasks carry only a job id; the worker reads the job row. Acks are late and lost workers
re-queue, and the engine makes redelivery harmless (see certflow.engine.jobs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import Celery
from celery.signals import worker_process_init

from certflow.engine.dto import JobMessage
from certflow.settings import Settings, get_settings

log = logging.getLogger(__name__)


def make_app(settings: Settings) -> Celery:
    celery = Celery("certflow", broker=settings.broker_url)
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=settings.queue,
        broker_connection_retry_on_startup=True,
        beat_schedule={
            "certflow-tick": {"task": "certflow.tick", "schedule": settings.beat_interval_seconds},
        },
        timezone="UTC",
    )
    return celery


def make_publisher(celery: Celery) -> Callable[[list[JobMessage]], None]:
    def publish(messages: list[JobMessage]) -> None:
        for message in messages:
            celery.send_task("certflow.run_job", args=[message.job_id])

    return publish


app = make_app(get_settings())
publish = make_publisher(app)


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
    """Beat's heartbeat: fire due timers, route pending messages, publish due and lost jobs."""
    from certflow.bootstrap import engine

    eng = engine()
    return {"timers": eng.fire_due_timers(), "messages": eng.drain_messages(eng.settings.drain_batch),
            "jobs": eng.sweep_jobs()}
