"""Yearly fee run benchmark: register_fee_run for N registered professionals, through to their
invoices and invoice e-mails, on PostgreSQL.

    python bench/fee_run.py                      # N = 10,000, two job processes
    python bench/fee_run.py --n 1000 --workers 1
    python bench/fee_run.py --n 1000 --after-routing   # jobs only once every instance is started

1. N professionals in the register (plus 5% who are not) are bulk-inserted as in
   bench/register_fee.py: SYNTHETIC rows, not made through the handlers.
2. Through the product from there on: register_fee_run is deployed; the shared clock moves past
   1 January; its timer fires; the ``register_fee/fan_out`` job runs; its messages are routed
   in beat's batches (``drain_batch``, drained as a worker's tick does: ``inline=True``),
   starting N ``register_fee`` instances; each makes its invoice (``register_fee/create_invoice``,
   database-only) inside the advance that starts it.
3. Every job the run produces (``email/send`` with the invoice's PDF, plus the UBL for
   organisations; a ``register_fee/create_invoice`` job only where the inline run failed) is
   run by ``--workers`` job processes side by side, each calling ``engine.run_job`` (what a
   Celery worker does, without the broker) on its share (job id modulo workers). As Celery
   workers take each job as soon as it is published, the job processes are started (and warm)
   before the fan-out, and look for queued jobs every 10 ms while the fan-out and routing run
   in the main process; they stop when routing is over and none is left. ``--after-routing``
   starts them only when routing is over (what this benchmark did before).
   E-mails go over SMTP to a local aiosmtpd server that accepts everything, in a process of
   its own: its CPU is not certflow's and is printed apart.

The clock for the figure starts when the fan-out job starts and stops when the last e-mail is
sent. CPU per invoice is that of the main process (fan-out, routing) and of the job processes
from then on; PostgreSQL's and the SMTP server's are not in it. Asserts only that every
professional got exactly one invoice, one e-mail row and one mail at the SMTP server, and that
nobody else got any.
``--profile FILE`` runs everything in this process under cProfile (CPU time), the jobs after
routing.
Last line: ``bench-fee-run: invoices=<n> seconds=<s> per_s=<x>``
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from bench.register_fee import PG, YEAR, add_professionals  # noqa: E402
from bench.smtp_sink import Sink, free_port  # noqa: E402

FORK = multiprocessing.get_context("fork")
POLL_SECONDS = 0.01  # a job process with nothing queued looks again after this
OPERATORS = ("register_fee/create_invoice", "email/send")


class _Recipients(Sink):
    """The sink, also counting the mails per recipient."""

    def __init__(self) -> None:
        super().__init__()
        self.recipients: Counter[str] = Counter()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.recipients.update(envelope.rcpt_tos)
        return await super().handle_DATA(server, session, envelope)


def _smtp_process(port: int, conn: Connection) -> None:
    """The SMTP server's process: serves until told to stop, then sends back what it received
    and the CPU it took meanwhile."""
    from aiosmtpd.controller import Controller

    sink = _Recipients()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    cpu = time.process_time()
    conn.send("ready")
    conn.recv()
    controller.stop()
    conn.send((sink.received, dict(sink.recipients), time.process_time() - cpu))


def _job_process(worker: int, workers: int, ready: Event, go: Event, routed: Event,
                 out: Connection) -> None:
    from certflow.bootstrap import build_engine, freeze_heap
    from certflow.store.db import reset_engines

    reset_engines()  # a forked child must not share the parent's sockets
    engine = build_engine()
    freeze_heap()  # as a Celery worker's process does once its engine is built (worker.app)
    ready.set()
    go.wait()
    try:
        out.send(_run_jobs(engine, worker, workers, routed))
    except BaseException as exc:
        out.send(exc)
        raise


def _run_jobs(engine: Any, worker: int, workers: int, routed: Event | None) -> tuple[int, float, int]:
    """Run this process's share of the queued jobs until routing is over (``routed`` set, or
    None: it was before) and none is left. Returns the jobs run, the CPU and the looks taken."""
    from certflow.store.db import session_scope
    from certflow.store.models import Job

    ran, looks, cpu = 0, 0, time.process_time()
    while True:
        over = routed is None or routed.is_set()  # before the look: what routing wrote is seen
        looks += 1
        with session_scope() as s:
            ids = s.execute(select(Job.id, Job.detached).where(
                Job.status == "queued", Job.operator.in_(OPERATORS),
                Job.id % workers == worker).order_by(Job.id).limit(500)).all()
        if not ids:
            if over:
                return ran, time.process_time() - cpu, looks
            time.sleep(POLL_SECONDS)
        for job_id, detached in ids:
            engine.run_job(job_id, detached=detached)  # as the broker's message says (JobMessage)
            ran += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="professionals in the register (default 10,000)")
    ap.add_argument("--workers", type=int, default=2, help="job processes side by side (default 2)")
    ap.add_argument("--after-routing", action="store_true",
                    help="start the job processes only when every instance is started")
    ap.add_argument("--profile", metavar="FILE", help="run everything in this process under cProfile, into FILE")
    args = ap.parse_args()

    port = free_port()
    smtp, child = FORK.Pipe()
    server = FORK.Process(target=_smtp_process, args=(port, child), daemon=True)
    server.start()  # forked before this process has threads or database connections
    assert smtp.recv() == "ready"
    try:
        run(args, port, smtp)
    finally:
        server.terminate()


def run(args: argparse.Namespace, port: int, smtp: Connection) -> None:
    name = f"certflow_bench_feerun_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    var = Path(tempfile.mkdtemp(prefix="bench-fee-run-"))
    os.environ.update(DATABASE_URL=f"{PG}/{name}", CERTFLOW_VAR_DIR=str(var), CERTFLOW_ENV="test",
                      CERTFLOW_SMTP_HOST="127.0.0.1", CERTFLOW_SMTP_PORT=str(port))
    procs: list[Any] = []
    try:
        from certflow.bootstrap import build_engine, create_schema
        from certflow.clock import CLOCK, parse_duration
        from certflow.engine.facade import Actor
        from certflow.settings import get_settings, reset_settings
        from certflow.store.billing import Invoice
        from certflow.store.communications import EmailMessage
        from certflow.store.db import reset_engines, session_scope
        from certflow.store.models import Job

        reset_settings()
        reset_engines()
        create_schema()
        engine = build_engine()
        engine.deploy(Actor.system("bench"), ROOT / "processes", only=["register_fee", "register_fee_run"])
        began = time.perf_counter()
        with session_scope() as s:
            professionals = add_professionals(s, args.n, engine.now(), outside=max(1, args.n // 20))
        import certflow

        print(f"{args.n} professionals (+{max(1, args.n // 20)} outside the register): SYNTHETIC rows, "
              f"{time.perf_counter() - began:.1f} s; certflow from {Path(certflow.__file__).resolve().parent}")
        with session_scope() as s:  # past 1 January YEAR: the run's timer is due
            gap = f"{YEAR}-01-02T00:00:00+00:00"
            from datetime import datetime

            days = (datetime.fromisoformat(gap) - engine.now()).days + 1
            CLOCK.advance(s, parse_duration(f"P{max(days, 0)}D"), allowed=True)
        engine.fire_due_timers()
        with session_scope() as s:
            [fan_out] = s.scalars(select(Job.id).where(Job.operator == "register_fee/fan_out")).all()
        reset_engines()

        overlap = not (args.profile or args.after_routing)
        go, routed = FORK.Event(), FORK.Event()
        results: list[Connection] = []

        def start_job_processes() -> None:
            for worker in range(args.workers):
                ready, (mine, theirs) = FORK.Event(), FORK.Pipe(duplex=False)
                procs.append(FORK.Process(target=_job_process,
                                          args=(worker, args.workers, ready, go, routed, theirs)))
                procs[-1].start()
                results.append(mine)
                ready.wait()

        if overlap:
            start_job_processes()  # warm, as Celery workers are, before the clock starts

        import cProfile

        profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not wall: the machine is shared
        if profiler:
            profiler.enable()
        from certflow.bootstrap import freeze_heap

        freeze_heap()  # the fan-out and routing run as in a worker's process, which froze its heap
        began, cpu = time.perf_counter(), time.process_time()
        go.set()
        assert engine.run_job(fan_out) == "done"
        fanned, fan_cpu = time.perf_counter() - began, time.process_time() - cpu
        while engine.drain_messages(get_settings().drain_batch, inline=True):  # as beat's tick on a worker
            pass
        routed.set()
        routed_at, route_cpu = time.perf_counter() - began, time.process_time() - cpu - fan_cpu
        print(f"fan-out job {fanned:.1f} s ({1000 * fan_cpu / args.n:.1f} ms CPU per professional); "
              f"{args.n} register_fee instances started by {routed_at:.1f} s "
              f"(routing: {1000 * route_cpu / args.n:.1f} ms CPU each)")
        if profiler:
            reset_engines()
            runs = [_run_jobs(engine, 0, 1, None)]
            profiler.disable()
            profiler.dump_stats(args.profile)
        else:
            if not overlap:
                reset_engines()
                start_job_processes()
            answers = [conn.recv() for conn in results]
            for proc in procs:
                proc.join()
            for answer in answers:
                if isinstance(answer, BaseException):
                    raise answer
            runs = answers
        elapsed = time.perf_counter() - began
        main_cpu = time.process_time() - cpu - (sum(c for _, c, _ in runs) if profiler else 0)
        jobs_cpu = sum(c for _, c, _ in runs)
        smtp.send("stop")
        received, recipients, smtp_cpu = smtp.recv()

        with session_scope() as s:
            invoiced = Counter({who: int(n) for who, n in s.execute(
                select(Invoice.customer_username, func.count()).group_by(Invoice.customer_username))})
            mailed = Counter({who: int(n) for who, n in s.execute(
                select(EmailMessage.recipient, func.count()).where(EmailMessage.status == "sent")
                .group_by(EmailMessage.recipient))})
            jobs = {operator: int(n) for operator, n in s.execute(
                select(Job.operator, func.count()).group_by(Job.operator))}
        invoices = sum(invoiced.values())
        mode = "by the time routing was over" if not overlap else "as they were queued"
        print(f"jobs run: {sum(r for r, _, _ in runs)} by {len(runs)} processes, {mode} "
              f"({1000 * jobs_cpu / args.n:.1f} ms CPU per professional, {sum(n for _, _, n in runs)} looks "
              f"for queued jobs); jobs written: {jobs}")
        print(f"invoices {invoices}, e-mails received by the SMTP server {received} "
              f"(its own CPU: {1000 * smtp_cpu / max(received, 1):.1f} ms per mail, not counted); "
              f"CPU in this process and the job processes: {1000 * (main_cpu + jobs_cpu) / max(invoices, 1):.1f} ms "
              f"per invoice; load average {os.getloadavg()[0]:.1f}")
        once = Counter({username: 1 for username in professionals})
        assert invoiced == once and mailed == once, "not one invoice and one e-mail per professional"
        assert recipients == Counter({f"{username}@example.nl": 1 for username in professionals}), \
            "the SMTP server did not receive one mail per professional"
        print(f"bench-fee-run: invoices={invoices} seconds={elapsed:.1f} per_s={invoices / elapsed:.1f}")
    finally:
        from certflow.store.db import reset_engines

        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        reset_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
