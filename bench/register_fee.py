"""Register fee benchmark: the yearly fan-out over N professionals.

    python bench/register_fee.py                 # N = 20,000 on SQLite in a temp dir
    python bench/register_fee.py --n 5000 --pg   # on PostgreSQL at 127.0.0.1:5432 (user postgres)
    python bench/register_fee.py --all           # run every invoice job, not a sample

1. N professionals in the register (users, certificates, register entries) are bulk-inserted
   directly, not through the handlers, plus 5% more who are NOT in the register on 1 January
   (lapsed, withdrawn, suspended, expired on 31 December) and must not be invoiced.
2. The ``register_fee/fan_out`` handler runs once, in-process: the invoices in bulk (without
   their PDF, made when the mail needs it) and one message per professional.
3. ``engine.drain_messages()`` routes them: N ``register_fee`` instances start, each waiting
   for its ``register_fee/create_invoice`` job.
4. Those invoice jobs run in-process (``engine.run_job``) for a sample, or all with ``--all``.

Prints figures and asserts nothing about time (only that the counts are right). Last line:
``bench-register-fee: n=<N> fanout_ms=<x> starts_per_s=<y>``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder comes first on sys.path and bench/handlers.py would shadow the
# real ``handlers`` package: put the project root first instead.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from sqlalchemy import func, insert, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

YEAR = 2027
PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
CHUNK = 5_000
ADDRESS = {"street": "Oudegracht 1", "postal_code": "3511 AA", "city": "Utrecht", "country": "NL"}
# Not in the register on 1 January YEAR: (status, valid_until)
OUTSIDE = (("lapsed", date(YEAR - 1, 6, 30)), ("withdrawn", date(YEAR + 1, 6, 30)),
           ("suspended", date(YEAR + 1, 6, 30)), ("valid", date(YEAR - 1, 12, 31)))


def add_professionals(session: Session, n: int, now: datetime, prefix: str = "prof",
                      outside: int = 0) -> list[str]:
    """Bulk-insert ``n`` professionals in the register on 1 January YEAR (every 10th with a
    recertification running) and ``outside`` who are not; returns the usernames of the ``n``."""
    from certflow.store.models import User
    from certflow.store.register import Certificate, RegisterEntry

    inside: list[str] = []
    for start in range(0, n + outside, CHUNK):
        users, certs, entries = [], [], []
        for i in range(start, min(start + CHUNK, n + outside)):
            username = f"{prefix}{i:06d}"
            if i < n:
                status = "recertification_running" if i % 10 == 9 else "valid"
                valid_until = date(YEAR + 1 + i % 3, 1 + i % 12, 1)
                inside.append(username)
            else:
                status, valid_until = OUTSIDE[i % len(OUTSIDE)]
            cert_id, number = uuid.uuid4().hex, f"RL-{prefix[:4]}-{i:07d}"
            users.append(dict(
                username=username, display_name=f"Professional {i}", email=f"{username}@example.nl",
                language="en" if i % 7 == 0 else "nl", address=ADDRESS, newsletter_opt_out=False,
                is_staff=False, groups=["candidate"], created_at=now))
            certs.append(dict(
                id=cert_id, idempotency_key=f"bulk-{username}", holder=username, register_number=number,
                level="RL", valid_from=valid_until.replace(year=valid_until.year - 3),
                valid_until=valid_until, status=status, language="nl", created_at=now))
            entries.append(dict(
                id=uuid.uuid4().hex, holder=username, register_number=number, certificate_id=cert_id,
                status=status, valid_until=valid_until, updated_at=now))
        session.execute(insert(User), users)
        session.execute(insert(Certificate), certs)
        session.execute(insert(RegisterEntry), entries)
    return inside


def setup(url: str, var: Path) -> tuple[Any, Any]:
    os.environ.update(DATABASE_URL=url, CERTFLOW_VAR_DIR=str(var), CERTFLOW_ENV="test")
    from certflow.bootstrap import build_engine, create_schema
    from certflow.engine.facade import Actor
    from certflow.settings import reset_settings
    from certflow.store.db import reset_engines

    reset_settings()
    reset_engines()
    create_schema(url)
    engine = build_engine()
    staff = Actor("olga", ("office",), True)
    engine.deploy(staff, ROOT / "processes", only=["register_fee", "register_fee_run"])
    return engine, staff


def run(n: int, sample: int | None) -> dict[str, float]:
    import handlers
    from certflow.store.db import session_scope
    from certflow.store.models import Instance, Job

    figures: dict[str, float] = {}
    now = datetime.now(timezone.utc)
    began = time.perf_counter()
    with session_scope() as s:
        add_professionals(s, n, now, outside=max(1, n // 20))
    figures["seed_ms"] = (time.perf_counter() - began) * 1000

    from certflow.bootstrap import build_engine

    engine = build_engine()
    began = time.perf_counter()
    with session_scope() as s:
        ctx = engine.handler_context(s, "bench-fan-out")
        result = handlers.get("register_fee/fan_out")(ctx, {"year": YEAR})
    figures["fanout_ms"] = (time.perf_counter() - began) * 1000
    assert result["count"] == result["queued"] == n, result
    print(f"fan-out:        {n} professionals, {figures['fanout_ms']:9.0f} ms "
          f"({n / figures['fanout_ms'] * 1000:8.0f} messages/s)   result={result}")

    began = time.perf_counter()
    routed = 0
    while True:
        batch = engine.drain_messages()
        routed += batch
        if not batch:
            break
    figures["drain_ms"] = (time.perf_counter() - began) * 1000
    with session_scope() as s:
        started = s.scalar(select(func.count()).select_from(Instance)
                           .where(Instance.process_id == "register_fee"))
        job_ids = s.scalars(select(Job.id).where(Job.operator == "register_fee/create_invoice",
                                                 Job.status == "queued").order_by(Job.id)).all()
    assert started == routed == n, (started, routed, n)
    figures["starts_per_s"] = n / figures["drain_ms"] * 1000
    print(f"instance starts: {n} register_fee instances, {figures['drain_ms']:9.0f} ms "
          f"({figures['starts_per_s']:8.0f} starts/s, {figures['drain_ms'] / n:.2f} ms each)")

    chosen = job_ids if sample is None else job_ids[:: max(1, len(job_ids) // sample)][:sample]
    began = time.perf_counter()
    outcomes = [engine.run_job(job_id) for job_id in chosen]
    figures["invoice_ms"] = (time.perf_counter() - began) * 1000 / max(1, len(chosen))
    assert outcomes == ["done"] * len(chosen), set(outcomes)
    print(f"invoice jobs:   {len(chosen)} of {len(job_ids)} run in-process, "
          f"{figures['invoice_ms']:.2f} ms each (handler: finds the invoice the fan-out made; then the advance)")
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000, help="professionals in the register (default 20,000)")
    ap.add_argument("--pg", action="store_true",
                    help="PostgreSQL at 127.0.0.1:5432 (user postgres, trust) instead of SQLite")
    ap.add_argument("--sample", type=int, default=200, help="invoice jobs to run in-process (default 200)")
    ap.add_argument("--all", action="store_true", help="run every invoice job")
    args = ap.parse_args()
    var = Path(tempfile.mkdtemp(prefix="bench-register-fee-"))
    admin, name = None, ""
    if args.pg:
        from sqlalchemy import create_engine, text

        name = f"certflow_bench_fee_{uuid.uuid4().hex[:8]}"
        admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = f"{PG}/{name}"
    else:
        url = f"sqlite:///{var / 'bench.sqlite'}"
    print(f"database: {'PostgreSQL ' + name if args.pg else url}")
    try:
        setup(url, var)
        figures = run(args.n, None if args.all else args.sample)
    finally:
        if admin is not None:
            from sqlalchemy import text

            from certflow.store.db import reset_engines

            reset_engines()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(f"bench-register-fee: n={args.n} fanout_ms={figures['fanout_ms']:.0f} "
          f"starts_per_s={figures['starts_per_s']:.1f}")


if __name__ == "__main__":
    main()
