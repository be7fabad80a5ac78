"""Gauges computed at scrape time from the projections, so they can never drift from the truth
and cost nothing between scrapes. Each is one indexed query (instances by status, open tasks,
open incidents, jobs in flight, timer lag) or one Redis call (queue depth).

Only the web process serves these (they describe the whole system, not a process); worker and
beat exporters serve what those processes recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from certflow.clock import CLOCK
from certflow.settings import Settings
from certflow.store.db import session_scope
from certflow.store.models import HumanTask, Incident, Instance, Job, Message

log = logging.getLogger(__name__)


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> Any:
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(name, doc, labels=labels)


def _seconds_since(now: datetime, then: datetime | None) -> float:
    return max((now - then).total_seconds(), 0.0) if then is not None else 0.0


class DatabaseCollector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Any]:
        ok = _gauge("certflow_scrape_ok", "1 when the database and broker answered this scrape", ["source"])
        try:
            with session_scope() as session:
                CLOCK.refresh(session)
                yield from self._from_database(session, CLOCK.now())
            ok.add_metric(["database"], 1)
        except Exception as exc:  # a scrape must answer even when the database does not
            log.warning("metrics: database query failed: %s", str(exc).splitlines()[0])
            ok.add_metric(["database"], 0)
        depth = _gauge("certflow_queue_depth", "Messages waiting on the broker queue", ["queue"])
        try:
            depth.add_metric([self.settings.queue], queue_depth(self.settings))
            ok.add_metric(["broker"], 1)
            yield depth
        except Exception as exc:  # likewise when the broker does not
            log.warning("metrics: broker queue length failed: %s", str(exc).splitlines()[0])
            ok.add_metric(["broker"], 0)
        yield ok

    def _from_database(self, s: Session, now: datetime) -> Iterator[Any]:
        instances = _gauge("certflow_instances", "Instances by process and status", ["process", "status"])
        for process, status, n in s.execute(select(Instance.process_id, Instance.status, func.count())
                                            .group_by(Instance.process_id, Instance.status)):
            instances.add_metric([process, status], n)
        yield instances

        overdue = case((HumanTask.due_at < now, "true"), else_="false")
        tasks = _gauge("certflow_open_tasks", "Open human tasks by candidate group and overdue", ["group", "overdue"])
        for group, late, n in s.execute(select(HumanTask.candidate_group, overdue, func.count())
                                        .group_by(HumanTask.candidate_group, overdue)):
            tasks.add_metric([group or "", late], n)
        yield tasks

        incidents = _gauge("certflow_open_incidents", "Open incidents by handler", ["handler"])
        for operator, n in s.execute(select(Incident.operator, func.count()).where(Incident.status == "open")
                                     .group_by(Incident.operator)):
            incidents.add_metric([operator], n)
        yield incidents

        jobs = _gauge("certflow_jobs_in_flight", "Jobs queued or running, by handler and status", ["handler", "status"])
        for operator, status, n in s.execute(select(Job.operator, Job.status, func.count())
                                             .where(Job.status.in_(("queued", "running")))
                                             .group_by(Job.operator, Job.status)):
            jobs.add_metric([operator, status], n)
        yield jobs

        oldest_job = s.scalar(select(func.min(Job.available_at)).where(Job.status == "queued", Job.available_at <= now))
        job_age = _gauge("certflow_oldest_queued_job_seconds", "Age of the oldest due job nobody has taken")
        job_age.add_metric([], _seconds_since(now, oldest_job))
        yield job_age

        oldest_due = s.scalar(select(func.min(Instance.next_due_at)).where(
            Instance.status == "running", Instance.next_due_at <= now))
        lag = _gauge("certflow_timer_lag_seconds", "Now minus the oldest due timer not yet fired (0: none due)")
        lag.add_metric([], _seconds_since(now, oldest_due))
        yield lag

        pending = _gauge("certflow_pending_messages", "Messages waiting to be routed")
        pending.add_metric([], s.scalar(select(func.count()).select_from(Message).where(Message.status == "pending")) or 0)
        yield pending


def queue_depth(settings: Settings) -> int:
    """Messages on the broker's queue. Redis: kombu keeps one list per priority step."""
    if settings.redis_url:
        import redis

        client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            names = [settings.queue] + [f"{settings.queue}\x06\x16{p}" for p in (3, 6, 9)]
            total = 0
            for name in names:
                total += int(client.llen(name))  # type: ignore[arg-type]  # sync client: an int
            return total
        finally:
            client.close()
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(settings.broker_url.removeprefix("sqla+"))
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("kombu_message"):
                return 0  # no worker has connected yet: nothing can be queued
            return int(conn.execute(text(
                "select count(*) from kombu_message m join kombu_queue q on q.id = m.queue_id "
                "where q.name = :q and m.visible"), {"q": settings.queue}).scalar() or 0)
    finally:
        engine.dispose()
