"""Escalation benchmark: latency from due time to escalation, and the sweep query's cost.

    python bench/escalation.py                  # 10,000 waiting tasks, then EXPLAIN at 10,000
    python bench/escalation.py --million        # ... and EXPLAIN again at 1,000,000 open tasks

On PostgreSQL (127.0.0.1:5432, user postgres) and Redis (127.0.0.1:6379) with a real Celery
worker and beat (``python -m certflow.cli worker|beat``), beat ticking every ``--interval`` s.

1. The test process ``casework`` (tests/engine/data_escalation, default policy: escalate at the
   due time) is deployed and 100 real instances are started. Then N queue rows are
   bulk-inserted over those instances (SYNTHETIC rows: the sweep reads only the queue and the
   instance's definition), not yet due.
2. Worker and beat start. Once the worker has run beat's first tick, the rows get due times
   spread over ``--spread`` seconds from a few seconds ahead, so tasks fall due continuously
   while beat runs (not while the worker is still starting: that time is not escalation
   latency). The bench waits until every row is escalated and reads the audit: latency =
   actual time - planned (due) time of each ``task_escalated`` event.
3. The sweep's query (``certflow.engine.escalation.due_steps``: 200 rows, FOR UPDATE SKIP
   LOCKED) is EXPLAIN ANALYZEd and timed with 200 tasks due among N open ones; with
   ``--million``, SYNTHETIC rows (generate_series, 10% with nothing left to do) bring the
   queue to 1,000,000 open tasks and it is measured again.

Prints figures and the plans; asserts nothing about time. Last line:
``bench-escalation: tasks=<n> p50_s=<x> p95_s=<y> sweep_ms=<z>`` (sweep_ms at n open tasks).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from sqlalchemy import create_engine, func, insert, select, text, update  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
REDIS = os.environ.get("CERTFLOW_TEST_REDIS", "redis://127.0.0.1:6379/0")
SWEEP_BATCH = 200


def setup(var: Path, name: str, interval: float) -> str:
    url = f"{PG}/{name}"
    processes = var / "processes"
    shutil.copytree(ROOT / "tests" / "engine" / "data_escalation", processes)
    (processes / "casework" / "escalation.json").unlink()  # the default policy
    shutil.copytree(ROOT / "processes" / "shared", processes / "shared")
    os.environ.update(DATABASE_URL=url, REDIS_URL=REDIS, CERTFLOW_VAR_DIR=str(var), CERTFLOW_ENV="test",
                      CERTFLOW_PROCESSES_DIR=str(processes), CERTFLOW_QUEUE=f"bench-esc-{name}",
                      CERTFLOW_BEAT_INTERVAL_SECONDS=str(interval))
    return url


def seed(n: int) -> list[str]:
    """100 real instances, then ``n`` synthetic queue rows, not yet due (``arm``)."""
    from certflow.bootstrap import build_engine, create_schema
    from certflow.engine.facade import Actor
    from certflow.store.db import session_scope
    from certflow.store.models import HumanTask, Instance

    create_schema()
    engine = build_engine()
    staff = Actor("bench", ("office",), True)
    engine.deploy(staff)
    for i in range(100):
        engine.start(staff, "casework", f"BENCH-{i}", {"assessor": "ada", "candidate": "cas"})
    now = datetime.now(timezone.utc)
    with session_scope() as s:
        s.execute(update(HumanTask).values(next_escalation_at=None))  # the real ones stay quiet
        instances = s.scalars(select(Instance.id)).all()
        ids = [f"syn-{i:07d}" for i in range(n)]
        rows = [dict(id=tid, instance_id=instances[i % len(instances)], process_id="casework",
                     business_key="BENCH", element_id="assess", title="synthetic", candidate_group="assessor",
                     assignee=None, form="done.json", priority=50, created_at=now, claimed_at=None, context={},
                     escalation_level=0, due_at=now + timedelta(days=1), next_escalation_at=None)
                for i, tid in enumerate(ids)]
        for start in range(0, n, 5000):
            s.execute(insert(HumanTask), rows[start:start + 5000])
    return ids


def arm(url: str, n: int, spread: float) -> datetime:
    """Give the synthetic rows their due times: spread over ``spread`` seconds from 3 s ahead."""
    first_due = datetime.now(timezone.utc) + timedelta(seconds=3)
    db = create_engine(url)
    with db.begin() as conn:
        conn.execute(text(
            "UPDATE human_tasks SET due_at = :first + make_interval(secs => :spread * "
            "CAST(substring(id from 5) AS integer) / :n), next_escalation_at = :first + "
            "make_interval(secs => :spread * CAST(substring(id from 5) AS integer) / :n) "
            "WHERE business_key = 'BENCH' AND title = 'synthetic'"),
            {"first": first_due, "spread": spread, "n": n})
    db.dispose()
    return first_due


def worker_ticked(var: Path) -> bool:
    log = var / "worker.log"
    return log.exists() and any("certflow.tick[" in line and "succeeded" in line
                                for line in log.read_text(errors="replace").splitlines())


def run_topology(var: Path, url: str, n: int, spread: float, timeout: float) -> tuple[float, datetime]:
    from certflow.store.db import session_scope
    from certflow.store.models import HumanTask

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "certflow.cli", *args], cwd=ROOT, env=env,
                              stdout=open(var / f"{args[0]}.log", "wb"), stderr=subprocess.STDOUT)
             for args in (["worker", "--concurrency=2", "--without-gossip", "--without-mingle",
                           "--without-heartbeat"], ["beat"])]
    try:
        booted = time.monotonic()
        while not worker_ticked(var):
            if time.monotonic() - booted > 300:
                raise SystemExit("the worker ran no tick in 300 s; worker log:\n"
                                 + (var / "worker.log").read_text()[-3000:])
            time.sleep(0.5)
        print(f"worker and beat up in {time.monotonic() - booted:.1f} s (first tick run)")
        first_due = arm(url, n, spread)
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            with session_scope() as s:
                done = s.scalar(select(func.count()).select_from(HumanTask).where(
                    HumanTask.business_key == "BENCH", HumanTask.escalated_to.is_not(None),
                    HumanTask.title == "synthetic"))
            if done == n:
                break
            time.sleep(0.5)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
    return time.monotonic() - started, first_due


def latencies() -> list[float]:
    from certflow.store.db import session_scope
    from certflow.store.models import AuditEvent

    with session_scope() as s:
        rows = s.execute(select(AuditEvent.at, AuditEvent.detail).where(
            AuditEvent.action == "task_escalated", AuditEvent.task_id.like("syn-%"))).all()
    return sorted((at - datetime.fromisoformat(d["planned_at"])).total_seconds() for at, d in rows)


def sweep_query(url: str, open_tasks: int, label: str) -> float:
    """EXPLAIN ANALYZE and time the sweep's query with SWEEP_BATCH tasks due among the open ones."""
    from sqlalchemy.dialects import postgresql

    from certflow.engine.escalation import due_steps

    db = create_engine(url)
    now = datetime.now(timezone.utc)
    with db.begin() as conn:
        conn.execute(text("UPDATE human_tasks SET next_escalation_at = now() + interval '1 day' "
                          "WHERE next_escalation_at IS NOT NULL AND next_escalation_at <= now() + interval '1 day'"))
        conn.execute(text("UPDATE human_tasks SET next_escalation_at = now() - interval '1 minute' WHERE id IN "
                          f"(SELECT id FROM human_tasks WHERE title = 'synthetic' ORDER BY id LIMIT {SWEEP_BATCH})"))
        conn.execute(text("ANALYZE human_tasks"))
        count = conn.scalar(text("SELECT count(*) FROM human_tasks"))
    sql = str(due_steps(now, SWEEP_BATCH).compile(dialect=postgresql.dialect(),
                                                        compile_kwargs={"literal_binds": True}))
    print(f"\n--- sweep query at {count:,} open tasks ({label}) ---\n{sql}\n")
    with db.connect() as conn:
        plan = conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")).scalars().all()
        conn.rollback()
        print("\n".join(plan))
        times = []
        for _ in range(25):
            t0 = time.perf_counter()
            rows = conn.execute(text(sql)).all()
            times.append((time.perf_counter() - t0) * 1000)
            conn.rollback()
        assert len(rows) == SWEEP_BATCH
    db.dispose()
    median = statistics.median(times)
    print(f"sweep query at {count:,} open tasks: median {median:.2f} ms over 25 runs ({SWEEP_BATCH} rows due)")
    return median


def grow(url: str, total: int) -> None:
    db = create_engine(url)
    with db.begin() as conn:
        have = conn.scalar(text("SELECT count(*) FROM human_tasks"))
        instance = conn.scalar(text("SELECT id FROM instances LIMIT 1"))
        t0 = time.perf_counter()
        conn.execute(text(
            "INSERT INTO human_tasks (id, instance_id, process_id, business_key, element_id, title, "
            "candidate_group, priority, due_at, created_at, context, escalation_level, next_escalation_at) "
            "SELECT 'mil-' || g, :instance, 'casework', 'MILLION', 'assess', 'synthetic-million', 'assessor', 50, "
            "now() + interval '30 days', now(), '{}', 0, CASE WHEN g % 10 = 0 THEN NULL "
            "ELSE now() + interval '2 days' + (g || ' seconds')::interval END "
            "FROM generate_series(1, :n) g"), {"instance": instance, "n": total - have})
        print(f"\ninserted {total - have:,} SYNTHETIC open tasks in {time.perf_counter() - t0:.1f} s")
    db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--interval", type=float, default=1.0, help="beat interval, seconds")
    ap.add_argument("--spread", type=float, default=20.0, help="due times spread over this many seconds")
    ap.add_argument("--million", action="store_true", help="also EXPLAIN at 1,000,000 open tasks")
    args = ap.parse_args()
    name = f"bench_escalation_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    var = Path(tempfile.mkdtemp(prefix="bench-escalation-"))
    try:
        url = setup(var, name, args.interval)
        print(f"database: PostgreSQL {name}; beat interval {args.interval} s; load average {os.getloadavg()}")
        t0 = time.perf_counter()
        ids = seed(args.n)
        print(f"seeded 100 real instances + {len(ids):,} SYNTHETIC queue rows in {time.perf_counter() - t0:.1f} s")
        took, first_due = run_topology(var, url, args.n, args.spread, timeout=args.spread + 600)
        print(f"due from {first_due:%H:%M:%S} over {args.spread:.0f} s")
        lat = latencies()
        if len(lat) != args.n:
            print(f"only {len(lat)} of {args.n} escalated; worker log:\n" + (var / "worker.log").read_text()[-3000:])
            raise SystemExit(1)
        p50, p95 = statistics.median(lat), lat[int(len(lat) * 0.95) - 1]
        print(f"escalated {len(lat):,} tasks in {took:.1f} s with a real worker and beat; latency due -> escalated: "
              f"p50 {p50:.2f} s, p95 {p95:.2f} s, max {lat[-1]:.2f} s "
              f"(p95 / beat interval = {p95 / args.interval:.2f}; target <= 2)")
        sweep_ms = sweep_query(url, args.n, "the escalated rows above, 200 made due again")
        if args.million:
            grow(url, 1_000_000)
            million_ms = sweep_query(url, 1_000_000, "1M: SYNTHETIC rows")
            print(f"sweep query 1,000,000 / {args.n:,} open tasks: {million_ms / sweep_ms:.2f}x")
        print(f"load average {os.getloadavg()}")
        print(f"bench-escalation: tasks={args.n} p50_s={p50:.2f} p95_s={p95:.2f} sweep_ms={sweep_ms:.2f}")
    finally:
        from certflow.store.db import reset_engines

        reset_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
