"""Celery app: broker Redis when ``REDIS_URL`` is set, otherwise kombu's SQLAlchemy transport
on a local SQLite file (a real broker and a real worker, with no server to install).

Tasks carry only a job id; the worker reads the job row. Acks are late and lost workers
re-queue, and the engine makes redelivery harmless (see certflow.engine.jobs).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from time import perf_counter

from celery import Celery
from celery.signals import (after_task_publish, setup_logging, worker_init, worker_process_init,
                            worker_process_shutdown)
from kombu.transport.sqlalchemy import Channel as SqlChannel
from kombu.transport.sqlalchemy import Transport as SqlTransport
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from certflow.engine.dto import JobMessage
from certflow.observability import metrics
from certflow.observability.context import current, log_context
from certflow.settings import Settings, get_settings

if TYPE_CHECKING:
    from certflow.engine.facade import Engine as CertflowEngine

log = logging.getLogger(__name__)
# Which process this is (worker or beat), for the log lines; set by the CLI before starting.
ROLE = {"name": "worker"}


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
#
# Several processes share the one SQLite file (worker, beat, the web app publishing), and each
# creates the broker's tables and its queue row on first use. kombu guards that with a thread
# lock, which does not reach across processes: two that start together both find no queue row,
# both insert it, and the loser dies of "UNIQUE constraint failed: kombu_queue.name" (or of
# "table kombu_queue already exists"). EmbeddedChannel takes the other process's row instead.
class EmbeddedChannel(SqlChannel):  # type: ignore[misc]
    def _open(self) -> Any:
        for attempt in range(5):
            try:
                return super()._open()
            except OperationalError as exc:  # create_all raced another process's create_all
                if "already exists" not in str(exc) or attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _get_or_create(self, queue: str) -> Any:
        try:
            return super()._get_or_create(queue)
        except IntegrityError:
            # Another process created the queue between our look and our insert: use theirs.
            self.session.rollback()
            existing = self.session.query(self.queue_cls).filter(self.queue_cls.name == queue).first()
            if existing is None:
                raise
            return existing


class EmbeddedTransport(SqlTransport):  # type: ignore[misc]
    Channel = EmbeddedChannel
    # kombu hands every transport option to create_engine, so the interval is set here.
    polling_interval = 0.1


def make_publisher(celery: Celery) -> Callable[[list[JobMessage]], None]:
    def publish(messages: list[JobMessage]) -> None:
        # One producer (and its connection) for all of them: acquired per message it cost a
        # sixth of publishing one (a fan-out publishes thousands after its batches commit).
        with celery.producer_or_acquire() as producer:
            for message in messages:
                # An outbox job says so: its run locks the job's row alone (certflow.engine.outbox).
                celery.send_task("certflow.run_job", args=[message.job_id],
                                 kwargs={"detached": True} if message.detached else None, producer=producer)

    return publish


app = make_app(get_settings())
publish = make_publisher(app)


@setup_logging.connect
def _json_logs(**_: object) -> None:
    # Connecting here stops Celery from installing its own log format.
    from certflow.observability.logs import configure_logging

    settings = get_settings()
    configure_logging(ROLE["name"], settings.log_format, settings.log_level)


@worker_init.connect
def _preload(**_: object) -> None:
    """In the worker's main process, before it forks the pool: the engine's and the handlers'
    modules and what they load lazily (certflow.bootstrap.preload), frozen out of the cyclic collector (see ``_engine``).
    Each child imported them on its first job, ~0.6 s CPU, and again whenever a child is
    replaced (a lost worker, kill -9); now it builds only the engine itself (~70 ms). Nothing
    here connects, so a child shares no socket with its parent."""
    from certflow.bootstrap import freeze_heap, preload

    preload(get_settings())
    freeze_heap()


@worker_process_init.connect
def _fresh_connections(**_: object) -> None:
    # A forked child must not share its parent's database sockets.
    from certflow.store.db import reset_engines

    reset_engines()


@worker_process_shutdown.connect
def _child_gone(**_: object) -> None:
    metrics.child_exited(os.getpid())


@after_task_publish.connect
def _published(sender: str | None = None, **_: object) -> None:
    if ROLE["name"] == "beat" and sender == "certflow.tick":
        metrics.beat_tick_sent()


_FROZEN: dict[str, bool] = {}


def _engine() -> CertflowEngine:
    """The process's engine. The first time: what was loaded to build it (modules, the
    deployed definitions, the handlers) lives as long as the worker, so it is moved out of the
    cyclic garbage collector's view (certflow.bootstrap.freeze_heap)."""
    from certflow.bootstrap import engine, freeze_heap

    eng = engine()
    if not _FROZEN:
        _FROZEN["done"] = True
        freeze_heap()
    return eng


@app.task(name="certflow.run_job")
def run_job(job_id: int, detached: bool = False) -> str:
    """Run one job, then the jobs its result led to (up to ``job_chain_limit``), in this
    process, where their instances' live workflows are cached: an instance's burst of service
    tasks stays in one worker, and so does the work of an instance a thrown message started
    here (certflow.engine.jobs). What is left is published, also when the job itself failed
    after writing some. Each job's log lines carry its job, instance, task and originating
    request ids."""
    eng = _engine()
    limit = eng.settings.job_chain_limit
    chain: list[JobMessage] | None = [] if limit > 0 else None
    try:
        # From the broker: most likely written by another process's advance (the web's), so
        # its instance's workflow is not cached here; chained jobs follow this process's own.
        outcome = _run_one(eng, job_id, chain, load_state=True, detached=detached)
        ran = 0
        try:
            while chain and ran < limit:
                ran += 1
                message = chain.pop(0)
                _run_one(eng, message.job_id, chain, detached=message.detached)
        except Exception:  # as for a job from the broker: the sweep publishes the failed one again
            log.exception("a chained job failed; publishing the rest")
    finally:
        if chain:  # beyond the limit, or after a failure: the broker takes them
            eng.publish(chain)
    return outcome


def _run_one(eng: Any, job_id: int, chain: list[JobMessage] | None, load_state: bool = False,
             detached: bool = False) -> str:
    with log_context(job_id=job_id):
        started, outcome = perf_counter(), "error"
        try:
            outcome = _run_reconnecting(eng, job_id, chain, load_state, detached)
            return str(outcome)
        finally:
            seconds = perf_counter() - started
            handler = str(current().get("handler", "unknown"))
            metrics.job_finished(handler, outcome.split(":")[0], seconds)
            log.info("job %s %s: %s", job_id, handler, outcome, extra={"outcome": outcome,
                                                                      "duration_ms": round(seconds * 1000, 1)})


def _run_reconnecting(eng: Any, job_id: int, chain: list[JobMessage] | None, load_state: bool,
                      detached: bool = False) -> str:
    """``eng.run_job``, once more if its database connection turned out dead. Pooled
    connections are checked only after sitting idle (certflow.store.db), so the first job
    after a database restart finds the server gone; the pool has replaced its connections by
    then, and running the job again (it is safe to run twice) spares it the sweep's wait."""
    try:
        return str(eng.run_job(job_id, chain=chain, load_state=load_state, detached=detached))
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("job %s lost its database connection; running it again", job_id)
        return str(eng.run_job(job_id, chain=chain, load_state=load_state, detached=detached))


# When this process last finished a tick's work (time.monotonic()).
_LAST_TICK = {"done": float("-inf")}


@app.task(name="certflow.tick")
def tick() -> dict[str, int]:
    """Beat's heartbeat: fire due timers, route pending messages, publish due and lost jobs,
    and apply due escalation steps (reminders, escalations) to human tasks.

    Ticks share the jobs' queue, so a worker that is behind finds them stacked up behind its
    backlog (705 of 1,232 messages in the scale bench under load), then reaches them one after
    another. Each would be a full sweep of the database; a tick that arrives less than half an
    interval after this process finished one returns at once instead: the work it would do was
    just done, and a timer due in between waits at most half an interval more."""
    if time.monotonic() - _LAST_TICK["done"] < get_settings().beat_interval_seconds / 2:
        result = {"skipped": 1}
        metrics.tick_done(result)
        return result
    with log_context():
        eng = _engine()
        timers = eng.fire_due_timers(limit=None, budget_seconds=eng.settings.timer_budget_seconds)
        result = {"timers": timers, "messages": eng.drain_messages(eng.settings.drain_batch, inline=True),
                  "buffered": eng.correlate_buffered(), "expired": eng.expire_buffered(),
                  "jobs": eng.sweep_jobs(), "escalations": eng.sweep_escalations(),
                  "pruned": prune_delivered(eng.settings)}
    _LAST_TICK["done"] = time.monotonic()
    metrics.tick_done(result)
    return result


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
