"""Prometheus metrics recorded where the work happens: jobs, advances, ticks, HTTP requests.

Instruments are created on first use, not at import: in multiprocess mode (web with several
uvicorn workers, Celery's prefork children) ``PROMETHEUS_MULTIPROC_DIR`` must be set before
prometheus-client makes its first value, and ``certflow web`` / ``certflow worker`` set it at
start. Recording is one dictionary lookup plus one observe: cheap enough for the advance path.

What the projections already know (instances, open tasks, incidents, queue depth, timer lag)
is not recorded here but queried at scrape time: see ``certflow.observability.collector``.
"""

from __future__ import annotations

import os
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: a handler call is ms..minutes (a fan-out); an advance is ms..a second.
JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
ADVANCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class _Instruments:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

        disable_created_metrics()  # *_created series double the output and no panel uses them
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.job_seconds = Histogram("certflow_job_seconds", "Time to run a job: handler plus delivering its result",
                                     ["handler"], buckets=JOB_BUCKETS, registry=r)
        self.jobs = Counter("certflow_jobs", "Jobs run, by handler and outcome (done, retry, incident, stale)",
                            ["handler", "outcome"], registry=r)
        self.job_failures = Counter("certflow_job_failures", "Failed handler runs (a retry or an incident)",
                                    ["handler"], registry=r)
        self.advance = Histogram("certflow_advance_seconds", "Duration of one advance (lock, move, save)",
                                 buckets=ADVANCE_BUCKETS, registry=r)
        self.live_workflow = Counter(
            "certflow_live_workflow", "Advances that found their workflow cached in this process (hit) "
            "or decoded the stored state (miss)", ["result"], registry=r)
        self.ticks = Counter("certflow_ticks", "Beat ticks run by a worker", registry=r)
        self.ticks_sent = Counter("certflow_beat_ticks_sent", "Ticks beat put on the queue", registry=r)
        self.tick_work = Counter("certflow_tick_items", "What ticks did: timers fired, messages routed, jobs swept",
                                 ["kind"], registry=r)
        self.http = Histogram("certflow_http_request_seconds", "HTTP requests by route and status",
                              ["method", "route", "status"], buckets=HTTP_BUCKETS, registry=r)


@lru_cache(maxsize=1)
def instruments() -> _Instruments:
    return _Instruments()


def observe_advance(seconds: float) -> None:
    instruments().advance.observe(seconds)


def live_workflow(hit: bool) -> None:
    instruments().live_workflow.labels("hit" if hit else "miss").inc()


def job_finished(handler: str, outcome: str, seconds: float) -> None:
    i = instruments()
    i.job_seconds.labels(handler).observe(seconds)
    i.jobs.labels(handler, outcome).inc()
    if outcome in ("retry", "incident"):
        i.job_failures.labels(handler).inc()


def tick_done(result: dict[str, int]) -> None:
    i = instruments()
    i.ticks.inc()
    for kind, count in result.items():
        if count:
            i.tick_work.labels(kind).inc(count)


def beat_tick_sent() -> None:
    instruments().ticks_sent.inc()


def http_request(method: str, route: str, status: int, seconds: float) -> None:
    instruments().http.labels(method, route, str(status)).observe(seconds)


# -- exposition --------------------------------------------------------------------------------
def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess(directory: Path) -> None:
    """Before the first metric of a multi-process server (uvicorn workers, Celery prefork):
    an empty directory the processes share; old files would count a previous run."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)


def process_registry() -> Any:
    """This process's (or, in multiprocess mode, all its siblings') recorded metrics."""
    path = multiprocess_dir()
    if path is None:
        return instruments().registry
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    return registry


def render(*extra_collectors: Any) -> tuple[bytes, str]:
    """The text exposition of the recorded metrics plus the given collectors."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    body = generate_latest(process_registry())
    if extra_collectors:
        extra = CollectorRegistry(auto_describe=False)
        for collector in extra_collectors:
            extra.register(collector)
        body += generate_latest(extra)
    return body, CONTENT_TYPE_LATEST


def start_exporter(port: int, addr: str = "0.0.0.0") -> None:
    """For worker and beat, which serve no HTTP of their own: /metrics on ``port``."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=addr, registry=process_registry())


def child_exited(pid: int) -> None:
    """A prefork child or uvicorn worker is gone: drop its live-gauge files (counters stay)."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
