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
from kombu.transport.sqlalchemy import Transport as SqlTransport
from sqlalchemy import Engine, create_engine, text

from certflow.engine.dto import JobMessage
from certflow.settings import Settings, get_settings

log = logging.getLogger(__name__)


def make_app(settings: Settings) -> Celery:
    embedded = settings.broker_url.startswith("sqla+")
    # The embedded broker goes through EmbeddedTransport (kombu's SQL transport, polled faster).
    broker = settings.broker_url.removeprefix("sqla+") if embedded else settings.broker_url
    celery = Celery("certflow", broker=broker)
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
    if embedded:
        celery.conf.update(worker_pool="solo", broker_transport="worker.app:EmbeddedTransport")
    return celery


# The embedded default (kombu's SQLite transport) has no asynchronous I/O, so Celery runs its
# blocking loop: an ack made by a pool process is only performed between two 2-second
# ``drain_events`` waits, and with a prefetch of one the worker takes one message per 2 s,
# less than beat's tick alone adds. The solo pool runs the task inside ``drain_events`` and the
# ack right after it, so the next message is fetched at once; a short polling interval picks up
# a new message within 0.1 s of its publish. (SQLite serializes writers anyway, so more pool
# processes bought nothing.)
class EmbeddedTransport(SqlTransport):  # type: ignore[misc]
    # kombu hands every transport option to create_engine, so the interval is set here.
    polling_interval = 0.1


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
    """Beat's heartbeat: fire due timers, route pending messages, publish due and lost jobs,
    and apply due escalation steps (reminders, escalations) to human tasks."""
    from certflow.bootstrap import engine

    eng = engine()
    timers = eng.fire_due_timers(limit=None, budget_seconds=eng.settings.timer_budget_seconds)
    return {"timers": timers, "messages": eng.drain_messages(eng.settings.drain_batch),
            "buffered": eng.correlate_buffered(), "expired": eng.expire_buffered(),
            "jobs": eng.sweep_jobs(), "escalations": eng.sweep_escalations(),
            "pruned": prune_delivered(eng.settings)}


_BROKER_DB: dict[str, Engine] = {}


def prune_delivered(settings: Settings) -> int:
    """Delete delivered messages from the embedded broker's table. kombu's SQL transport only
    marks a fetched message invisible and keeps it, and its fetch query walks those rows in
    timestamp order: a beat tick every 2 s leaves 43,000 of them a day, and every poll gets
    slower. A delivered message is never read again (a redelivery is written as a new row), so
    deleting it is safe."""
    if not settings.broker_url.startswith("sqla+"):
        return 0
    url = settings.broker_url.removeprefix("sqla+")
    if url not in _BROKER_DB:
        _BROKER_DB[url] = create_engine(url, connect_args={"timeout": 30})
    with _BROKER_DB[url].begin() as conn:
        if not conn.dialect.has_table(conn, "kombu_message"):
            return 0
        return int(conn.execute(text("DELETE FROM kombu_message WHERE visible = 0")).rowcount or 0)
