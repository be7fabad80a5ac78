"""Yearly fee run benchmark: register_fee_run for N registered professionals, through to their
invoices and invoice e-mails, on PostgreSQL.

    python bench/fee_run.py                      # N = 10,000, two job processes
    python bench/fee_run.py --n 1000 --workers 1

1. N professionals in the register (plus 5% who are not) are bulk-inserted as in
   bench/register_fee.py: SYNTHETIC rows, not made through the handlers.
2. Through the product from there on: register_fee_run is deployed; the shared clock moves past
   1 January; its timer fires; the ``register_fee/fan_out`` job runs; its messages are routed
   in beat's batches (``drain_batch``, drained as a worker's tick does: ``inline=True``),
   starting N ``register_fee`` instances; each makes its invoice (``register_fee/create_invoice``,
   database-only) inside the advance that starts it.
3. Every job the run produces (``email/send`` with the invoice's PDF, plus the UBL for
   organisations; a ``register_fee/create_invoice`` job only where the inline run failed) is
   run by ``--workers`` processes side by side, each calling
   ``engine.run_job`` (what a Celery worker does, without the broker), until none is left.
   E-mails go over SMTP to a local aiosmtpd server that accepts everything.

The clock for the figure starts when the fan-out job starts and stops when the last e-mail is
sent. Asserts only that every professional got one invoice and one e-mail.
Last line: ``bench-fee-run: invoices=<n> seconds=<s> per_s=<x>``
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from bench.register_fee import PG, YEAR, add_professionals  # noqa: E402
from bench.smtp_sink import Sink, smtp_sink  # noqa: E402


def _run_jobs(worker: int, workers: int, operators: tuple[str, ...]) -> tuple[int, float]:
    """One job process: run its share (job id modulo workers) of the queued jobs, until none."""
    from certflow.bootstrap import build_engine
    from certflow.store.db import reset_engines, session_scope
    from certflow.store.models import Job

    reset_engines()  # a forked child must not share the parent's sockets
    engine = build_engine()
    ran, cpu = 0, time.process_time()
    while True:
        with session_scope() as s:
            ids = s.scalars(select(Job.id).where(Job.status == "queued", Job.operator.in_(operators),
                                                 Job.id % workers == worker).order_by(Job.id).limit(500)).all()
        if not ids:
            return ran, time.process_time() - cpu
        for job_id in ids:
            engine.run_job(job_id)
            ran += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="professionals in the register (default 10,000)")
    ap.add_argument("--workers", type=int, default=2, help="job processes side by side (default 2)")
    ap.add_argument("--profile", metavar="FILE", help="run everything in this process under cProfile, into FILE")
    args = ap.parse_args()

    with smtp_sink() as (sink, port):
        run(args, sink, port)


def run(args: argparse.Namespace, sink: Sink, port: int) -> None:
    name = f"certflow_bench_feerun_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    var = Path(tempfile.mkdtemp(prefix="bench-fee-run-"))
    os.environ.update(DATABASE_URL=f"{PG}/{name}", CERTFLOW_VAR_DIR=str(var), CERTFLOW_ENV="test",
                      CERTFLOW_SMTP_HOST="127.0.0.1", CERTFLOW_SMTP_PORT=str(port))
    try:
        from certflow.bootstrap import build_engine, create_schema
        from certflow.clock import CLOCK, parse_duration
        from certflow.engine.facade import Actor
        from certflow.settings import get_settings, reset_settings
        from certflow.store.billing import Invoice
        from certflow.store.db import reset_engines, session_scope
        from certflow.store.models import Job

        reset_settings()
        reset_engines()
        create_schema()
        engine = build_engine()
        engine.deploy(Actor.system("bench"), ROOT / "processes", only=["register_fee", "register_fee_run"])
        began = time.perf_counter()
        with session_scope() as s:
            add_professionals(s, args.n, engine.now(), outside=max(1, args.n // 20))
        print(f"{args.n} professionals (+{max(1, args.n // 20)} outside the register): SYNTHETIC rows, "
              f"{time.perf_counter() - began:.1f} s")
        with session_scope() as s:  # past 1 January YEAR: the run's timer is due
            gap = f"{YEAR}-01-02T00:00:00+00:00"
            from datetime import datetime

            days = (datetime.fromisoformat(gap) - engine.now()).days + 1
            CLOCK.advance(s, parse_duration(f"P{max(days, 0)}D"), allowed=True)
        engine.fire_due_timers()
        with session_scope() as s:
            [fan_out] = s.scalars(select(Job.id).where(Job.operator == "register_fee/fan_out")).all()
        reset_engines()

        import cProfile

        profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not wall: the machine is shared
        if profiler:
            profiler.enable()
        began, cpu = time.perf_counter(), time.process_time()
        assert engine.run_job(fan_out) == "done"
        fanned, fan_cpu = time.perf_counter() - began, time.process_time() - cpu
        while engine.drain_messages(get_settings().drain_batch, inline=True):  # as beat's tick on a worker
            pass
        routed, route_cpu = time.perf_counter() - began, time.process_time() - cpu - fan_cpu
        print(f"fan-out job {fanned:.1f} s ({1000 * fan_cpu / args.n:.1f} ms CPU per professional); "
              f"{args.n} register_fee instances started by {routed:.1f} s "
              f"(routing: {1000 * route_cpu / args.n:.1f} ms CPU each)")
        reset_engines()
        operators = ("register_fee/create_invoice", "email/send")
        if profiler:
            results = [_run_jobs(0, 1, operators)]
            profiler.disable()
            profiler.dump_stats(args.profile)
        else:
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(args.workers) as pool:
                results = pool.starmap(_run_jobs, [(i, args.workers, operators) for i in range(args.workers)])
        elapsed = time.perf_counter() - began
        cpu = time.process_time() - cpu + sum(c for _, c in results)
        with session_scope() as s:
            invoices = int(s.scalar(select(func.count()).select_from(Invoice)) or 0)
            jobs = dict(s.execute(select(Job.operator, func.count()).group_by(Job.operator)).all())
        print(f"jobs run: {sum(r for r, _ in results)} by {args.workers} processes "
              f"({1000 * sum(c for _, c in results) / args.n:.1f} ms CPU per professional); jobs written: {jobs}")
        print(f"invoices {invoices}, e-mails received by the SMTP server {sink.received}; "
              f"CPU in this process and the job processes: {1000 * cpu / max(invoices, 1):.1f} ms per invoice; "
              f"load average {os.getloadavg()[0]:.1f}")
        assert invoices == args.n and sink.received == args.n, (invoices, sink.received)
        print(f"bench-fee-run: invoices={invoices} seconds={elapsed:.1f} per_s={invoices / elapsed:.1f}")
    finally:
        from certflow.store.db import reset_engines

        reset_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
