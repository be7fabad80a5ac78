"""Timer benchmark: N instances due at once, fired by a real Celery worker and beat on
PostgreSQL + Redis.

    python bench/timers.py                       # 100,000 due, worker with 2 processes
    python bench/timers.py --due 20000 --batch 1 # one timer per transaction, for the ratio

1. Through the product: deploy bench/data/timer_wait (start, a one-hour timer, end) and start
   one instance. Bulk path, SYNTHETIC rows (business key ``SYN-…``): that instance's row is
   copied N-1 times with one INSERT … SELECT over generate_series (same state, same due time).
2. The shared clock moves two hours on (as `certflow clock advance PT2H` would); then a worker
   (``--workers`` processes) and beat (1 s ticks) start, and the time until every instance
   has fired and completed is measured.

Prints figures and asserts nothing about time (only that every instance completed once).
Last line: ``bench-timers: due=<n> fired_s=<x> per_s=<y>``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from sqlalchemy import create_engine, func, select, text  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
CLONE = """
INSERT INTO instances (id, definition_id, process_id, business_key, status, state, serializer_version,
                       version, next_due_at, has_incident, projected, started_by, subject,
                       created_at, updated_at, ended_at)
SELECT md5('syn' || g), definition_id, process_id, 'SYN-' || g, status, state, serializer_version,
       version, next_due_at, has_incident, projected, started_by, subject, created_at, updated_at, ended_at
FROM instances, generate_series(1, :n) AS g WHERE instances.business_key = 'T0'
"""


def backend_cpu(url: str, database: str) -> float:
    """CPU seconds the PostgreSQL backends serving ``database`` have used (local server, read
    from /proc): with the client's own CPU, a cost per timer that the machine's load hardly moves."""
    conn_engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with conn_engine.connect() as conn:
            pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
                                {"d": database}).scalars().all()
    finally:
        conn_engine.dispose()
    ticks, total = os.sysconf("SC_CLK_TCK"), 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its live children (the worker's pool processes)."""
    ticks, total, todo = os.sysconf("SC_CLK_TCK"), 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--due", type=int, default=100_000, help="instances due at once (default 100,000)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--batch", type=int, default=None, help="timers per transaction (default: the setting)")
    ap.add_argument("--timeout", type=float, default=600, help="give up after this many seconds")
    ap.add_argument("--in-process", action="store_true",
                    help="fire in this process (fire_due_timers, no worker/beat): the per-timer cost")
    ap.add_argument("--profile", metavar="FILE", help="with --in-process: write a cProfile of the firing here")
    args = ap.parse_args()
    name = f"certflow_bench_timers_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    var = Path(tempfile.mkdtemp(prefix="bench-timers-"))
    os.environ.update(DATABASE_URL=f"{PG}/{name}", CERTFLOW_VAR_DIR=str(var), REDIS_URL="redis://127.0.0.1:6379/0",
                      CERTFLOW_QUEUE=f"certflow-bench-{uuid.uuid4().hex[:8]}", CERTFLOW_BEAT_INTERVAL_SECONDS="1")
    if args.batch:
        os.environ["CERTFLOW_TIMER_BATCH"] = str(args.batch)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        from certflow.bootstrap import build_engine, create_schema
        from certflow.clock import CLOCK, parse_duration
        from certflow.engine.facade import Actor
        from certflow.store.db import session_scope
        from certflow.store.models import Instance

        create_schema()
        engine = build_engine()
        staff = Actor.system("bench")
        engine.deploy(staff, ROOT / "bench" / "data", only=["timer_wait"])
        engine.start(staff, "timer_wait", "T0", {})
        began = time.perf_counter()
        with session_scope() as s:
            s.execute(text(CLONE), {"n": args.due - 1})
        raw = create_engine(f"{PG}/{name}", isolation_level="AUTOCOMMIT")
        with raw.connect() as conn:
            conn.execute(text("ANALYZE instances"))
        raw.dispose()
        print(f"1 instance started through the product; {args.due - 1} SYNTHETIC copies inserted "
              f"(bulk path) in {time.perf_counter() - began:.1f} s")
        with session_scope() as s:
            CLOCK.advance(s, parse_duration("PT2H"), allowed=True)

        def running() -> int:
            with session_scope() as s:
                return int(s.scalar(select(func.count()).select_from(Instance).where(Instance.status == "running")) or 0)

        if args.in_process:
            import cProfile

            profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU: the machine is shared
            began, cpu, db_cpu = time.perf_counter(), time.process_time(), backend_cpu(f"{PG}/postgres", name)
            if profiler:
                profiler.enable()
            fired = engine.fire_due_timers(limit=None)
            if profiler:
                profiler.disable()
                profiler.dump_stats(args.profile)
            elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
            db_cpu = backend_cpu(f"{PG}/postgres", name) - db_cpu
            assert running() == args.due - fired, "fired and still running do not add up"
            print(f"bench-timers: due={args.due} fired_s={elapsed:.1f} per_s={fired / elapsed:.0f} "
                  f"cpu_ms_per_timer={1000 * cpu / max(fired, 1):.2f} db_cpu_ms_per_timer={1000 * db_cpu / max(fired, 1):.2f} "
                  f"(in-process)")
            return
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        log = open(var / "topology.log", "wb")
        began = time.perf_counter()
        procs.append(subprocess.Popen([sys.executable, "-m", "certflow.cli", "worker", f"--concurrency={args.workers}",
                                       "--without-gossip", "--without-mingle", "--without-heartbeat",
                                       "--loglevel=WARNING"], cwd=ROOT, env=env, stdout=log, stderr=log))
        procs.append(subprocess.Popen([sys.executable, "-m", "certflow.cli", "beat", "--loglevel=WARNING"],
                                      cwd=ROOT, env=env, stdout=log, stderr=log))
        db_cpu = backend_cpu(f"{PG}/postgres", name)
        left, last = args.due, time.perf_counter()
        while left and time.perf_counter() - began < args.timeout:
            time.sleep(1)
            left = running()
            if time.perf_counter() - last > 15:
                print(f"  {time.perf_counter() - began:6.0f} s: {args.due - left} fired")
                last = time.perf_counter()
        elapsed = time.perf_counter() - began
        cpu = sum(tree_cpu(p.pid) for p in procs)
        db_cpu = backend_cpu(f"{PG}/postgres", name) - db_cpu
        # Stopped on the timeout, the worker may commit another batch after the last count:
        # stop it first, then count what fired and what completed from the same rows.
        fired = args.due - left  # at the last count, within the time measured
        stop(procs)
        stopped = args.due - running()
        print(f"CPU per fired timer: worker+beat {1000 * cpu / max(fired, 1):.2f} ms (with their start-up), "
              f"PostgreSQL backends {1000 * db_cpu / max(fired, 1):.2f} ms; load average {os.getloadavg()[0]:.1f}")
        with session_scope() as s:
            completed = s.scalar(select(func.count()).select_from(Instance).where(Instance.status == "completed"))
        assert completed == stopped, f"{completed} completed but {stopped} fired"
        note = "" if not left else f" (stopped after {args.timeout:.0f} s with {left} still due)"
        print(f"fired {fired} of {args.due} in {elapsed:.1f} s, from starting the worker and beat{note}")
        print(f"bench-timers: due={args.due} fired_s={elapsed:.1f} per_s={fired / elapsed:.0f}")
    finally:
        stop(procs)
        from certflow.store.db import reset_engines

        reset_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
