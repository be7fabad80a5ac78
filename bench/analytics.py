"""Analytics benchmark: the analytics page's and the dashboard's queries over many cases.

    python bench/analytics.py                         # SQLite, 20,000 cases
    python bench/analytics.py --db postgresql --cases 100000

processes/certification is deployed through the product; the cases are SYNTHETIC rows
(business keys ``SYN-…``) written in bulk: per case an instance (85% completed, 5% cancelled,
10% running), six ``task_completed_by_user`` audit events with known durations and due dates
(as the facade writes them), ten other audit events (the engine's transitions, noise the
queries must skip), and for running cases one open queue entry. Then timed, each call in its
own transaction as a page makes it: ``Engine.process_analytics`` over a year, over 90 days
(the page's default) and over 30 days, and ``Engine.queue_figures``; wall-clock and CPU ms. Prints figures and asserts nothing about time. Last line:
``bench-analytics: db=<db> cases=<n> audit_rows=<n> year_ms=<x> default_ms=<y> month_ms=<z> queue_ms=<q>``
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from sqlalchemy import create_engine, insert, text  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
STEPS = [("check_eligibility", "office", 5), ("assign_mentor", "office", 7), ("write_dossier", "candidate", 120),
         ("review_dossier", "mentor", 14), ("oral_assessment", "committee", 30), ("decide_certification", "certifier", 10)]
NOISE = ["ready", "completed", "started", "service_completed", "message_received"]


def database(kind: str, tmp: Path, keep: str | None = None) -> tuple[str, Any]:
    if kind == "sqlite":
        return f"sqlite:///{keep or tmp / 'bench.sqlite'}", None
    name = f"certflow_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return f"{PG}/{name}", (admin, name)


def seed(cases: int, definition_id: int, now: datetime) -> int:
    """Synthetic cases over the last year; returns the number of audit rows written."""
    from certflow.store.db import session_scope
    from certflow.store.models import AuditEvent, HumanTask, Instance

    rng = random.Random(7)
    written = 0
    batch = 2000
    for first in range(0, cases, batch):
        instances, events, open_tasks = [], [], []
        for n in range(first, min(first + batch, cases)):
            iid = uuid.uuid4().hex
            start = now - timedelta(days=rng.uniform(20, 365))
            status = "completed" if n % 20 < 17 else ("cancelled" if n % 20 == 17 else "running")
            at = start
            for element, group, due_days in STEPS if status != "running" else STEPS[:3]:
                created = at
                at = created + timedelta(days=rng.expovariate(1 / (due_days * 0.6)))
                events.append(dict(instance_id=iid, task_id=uuid.uuid4().hex, element_id=element, actor="syn",
                                   action="task_completed_by_user", at=at, detail={
                                       "data": {}, "created_at": created.isoformat(),
                                       "due_at": (created + timedelta(days=due_days)).isoformat(),
                                       "escalation_level": 0}))
            for k in range(10):
                events.append(dict(instance_id=iid, task_id=None, element_id="x", actor="syn",
                                   action=NOISE[k % len(NOISE)], detail={}, at=start + timedelta(minutes=k)))
            ended = at if status != "running" else None
            instances.append(dict(id=iid, definition_id=definition_id, process_id="certification",
                                  business_key=f"SYN-{n}", status=status, state={}, serializer_version="syn",
                                  version=1, started_by="syn", created_at=start, updated_at=at, ended_at=ended,
                                  has_incident=False))
            if status == "running":
                open_tasks.append(dict(id=uuid.uuid4().hex, instance_id=iid, process_id="certification",
                                       business_key=f"SYN-{n}", element_id="review_dossier", title="Dossier beoordelen",
                                       candidate_group="mentor", priority=50, created_at=at,
                                       due_at=at + timedelta(days=14), context={}, escalation_level=0))
        with session_scope() as s:
            s.execute(insert(Instance), instances)
            s.execute(insert(AuditEvent), events)
            if open_tasks:
                s.execute(insert(HumanTask), open_tasks)
        written += len(events)
    return written


def timed(call: Any, rounds: int) -> tuple[float, float]:
    """Median wall-clock ms, and median CPU ms of this process (on SQLite that is the query's
    own work, steady on a busy machine; on PostgreSQL the server's work is not in it)."""
    times, cpu = [], []
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(times), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--cases", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", help="SQLite: the database file to write and keep (reused if it exists)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        url, pg = database(args.db, tmp, args.keep)
        os.environ.update(CERTFLOW_ENV="test", CERTFLOW_VAR_DIR=str(tmp / "var"), DATABASE_URL=url, REDIS_URL="")
        try:
            run(args, url)
        finally:
            if pg:
                from certflow.store.db import reset_engines

                reset_engines()
                admin, name = pg
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run(args: argparse.Namespace, url: str) -> None:
    from sqlalchemy import select

    from certflow.bootstrap import build_engine, create_schema
    from certflow.engine.facade import Actor
    from certflow.store.db import session_scope
    from certflow.store.models import Definition

    reuse = bool(args.keep) and Path(args.keep).exists()
    if not reuse:
        create_schema(url)
    engine = build_engine()
    staff = Actor("bench", ("office",), True)
    if not reuse:
        engine.deploy(staff, ROOT / "processes", only=["certification"])
    with session_scope() as s:
        definition_id = s.scalar(select(Definition.id).where(Definition.process_id == "certification"))
        existing = s.scalar(text("SELECT count(*) FROM audit_events"))
    now = engine.now()
    t0 = time.perf_counter()
    rows = existing if reuse else seed(args.cases, definition_id, now)
    print(f"seeded {args.cases} SYNTHETIC cases, {rows} audit rows in {time.perf_counter() - t0:.1f} s ({args.db})")
    if args.db == "postgresql":
        with session_scope() as s:
            s.execute(text("ANALYZE"))
    year = (now - timedelta(days=365), now + timedelta(seconds=1))
    default = (now - timedelta(days=90), now + timedelta(seconds=1))
    month = (now - timedelta(days=30), now + timedelta(seconds=1))
    figures = engine.process_analytics(staff, "certification", *year)
    v = figures.versions[0]
    print(f"year: finished={v.finished} cancelled={v.cancelled} steps="
          + ", ".join(f"{s.element_id}:n={s.done},p50={s.p50 / 86400:.1f}d,p90={s.p90 / 86400:.1f}d,"
                      f"on_time={s.on_time_share:.0%}" for s in v.steps))
    year_ms, year_cpu = timed(lambda: engine.process_analytics(staff, "certification", *year), args.rounds)
    default_ms, default_cpu = timed(lambda: engine.process_analytics(staff, "certification", *default), args.rounds)
    month_ms, month_cpu = timed(lambda: engine.process_analytics(staff, "certification", *month), args.rounds)
    queue_ms, queue_cpu = timed(lambda: engine.queue_figures(staff), args.rounds)
    print(f"process_analytics over a year: {year_ms:.0f} ms (cpu {year_cpu:.0f}); "
          f"over 90 days: {default_ms:.0f} ms (cpu {default_cpu:.0f}); over 30 days: {month_ms:.0f} ms "
          f"(cpu {month_cpu:.0f}); queue_figures: {queue_ms:.0f} ms (cpu {queue_cpu:.0f}); load {os.getloadavg()[0]:.1f}")
    print(f"bench-analytics: db={args.db} cases={args.cases} audit_rows={rows} year_ms={year_ms:.0f} "
          f"default_ms={default_ms:.0f} month_ms={month_ms:.0f} queue_ms={queue_ms:.0f}")


if __name__ == "__main__":
    main()
