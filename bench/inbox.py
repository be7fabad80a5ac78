"""Inbox benchmark: the staff inbox with a million open tasks on PostgreSQL.

    python bench/inbox.py                  # 1,000,000 open tasks
    python bench/inbox.py --open 100000 --calls 300

1. Through the product: deploy processes/certification and start --real certifications (each
   runs its confirmation job in-process and waits in the office's eligibility check).
2. Bulk path, SYNTHETIC rows (labelled so in their business key, ``SYN-…``): the rest of the
   open tasks are inserted with one INSERT … SELECT over generate_series, spread over those
   real instances, 8 groups, 70% unassigned, the rest claimed by 2,000 people, due dates over
   ±60 days (20% undated), four priorities.
3. Timed: ``Engine.inbox_page`` as different officers (two groups each, some with own
   claims), first pages and keyset next pages, plus staff group views and the overdue filter;
   each call in its own transaction, as the API makes it. The SQL statements per call are
   counted.
4. For the ratio, in the same run: the query shape from before issue 12 (OR over assignee and
   groups, ``ORDER BY due_at IS NULL, due_at, …``, 500 rows, one definition lookup per row),
   replayed as SQL on the same table (its indexes are gone, so this is indicative only).

Prints figures and asserts nothing about time. Last line:
``bench-inbox: open=<n> p50_ms=<x> p95_ms=<y>``
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from sqlalchemy import create_engine, event, text  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
GROUPS = ["office", "mentor", "committee", "certifier", "coordinator", "assessor", "finance", "support"]
START = {"candidate": "cas", "eligibility_route": "hbo_diploma", "motivation": "bench"}

SYNTHETIC = """
INSERT INTO human_tasks (id, instance_id, process_id, business_key, element_id, title,
                         candidate_group, assignee, form, priority, due_at, created_at, claimed_at, context)
SELECT md5('syn' || g), r.instance_id, 'certification', 'SYN-' || g, r.element_id, r.title,
       (ARRAY['office','mentor','committee','certifier','coordinator','assessor','finance','support'])[1 + g % 8],
       CASE WHEN g % 10 < 7 THEN NULL ELSE 'user' || (g % 2000) END,
       r.form, (ARRAY[10, 50, 70, 90])[1 + (g / 7) % 4],
       CASE WHEN g % 5 = 0 THEN NULL ELSE now() + ((g::bigint * 7919) % 172800 - 86400) * interval '1 minute' END,
       now() - (g % 100000) * interval '1 second', NULL, '{}'::json
FROM generate_series(1, :n) AS g
JOIN (SELECT row_number() OVER () - 1 AS k, instance_id, element_id, title, form FROM human_tasks) r
  ON r.k = g % :real
"""

LEGACY = """
SELECT * FROM human_tasks
WHERE assignee = :me OR (assignee IS NULL AND candidate_group IN (:g1, :g2))
ORDER BY due_at IS NULL, due_at, priority DESC, created_at LIMIT 500
"""


def build(url: str, n_open: int, n_real: int) -> Any:
    var = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    os.environ.update(DATABASE_URL=url, CERTFLOW_VAR_DIR=str(var), REDIS_URL="",
                      CERTFLOW_HANDLER_MODULES="bench.fake_handlers", CERTFLOW_CLOCK_CONTROLLABLE="false")
    from certflow.bootstrap import build_engine, create_schema
    from certflow.engine.facade import Actor
    from certflow.settings import reset_settings
    from certflow.store.db import reset_engines, session_scope
    from tests.support import create_user

    reset_settings()
    reset_engines()
    create_schema(url)
    engine = build_engine()
    published: list[Any] = []
    engine.publisher = published.extend
    staff = Actor("olga", ("office",), True)
    with session_scope() as s:
        create_user(s, "cas", "Cas", ["candidate"], address={"street": "a", "postal_code": "1234 AB", "city": "U"})
    engine.deploy(staff, ROOT / "processes", only=["certification"])
    began = time.perf_counter()
    for i in range(n_real):
        engine.start(staff, "certification", f"REAL-{i}", START)
        while published:
            engine.run_job(published.pop(0).job_id)
    print(f"built {n_real} open tasks through the product in {time.perf_counter() - began:.1f} s")
    began = time.perf_counter()
    with session_scope() as s:
        real = s.execute(text("SELECT count(*) FROM human_tasks")).scalar_one()
        s.execute(text(SYNTHETIC), {"n": n_open - real, "real": real})
    raw = create_engine(url, isolation_level="AUTOCOMMIT")
    with raw.connect() as conn:
        conn.execute(text("ANALYZE human_tasks"))
        total = conn.execute(text("SELECT count(*) FROM human_tasks")).scalar_one()
    raw.dispose()
    print(f"inserted {total - real} SYNTHETIC open tasks (bulk path) in {time.perf_counter() - began:.1f} s")
    return engine, total


def measure(engine: Any, calls: int) -> tuple[list[float], float]:
    from certflow.engine.facade import Actor
    from certflow.store.db import get_engine

    statements = [0]
    event.listen(get_engine(), "before_cursor_execute", lambda *a: statements.__setitem__(0, statements[0] + 1))
    rng = random.Random(12)
    timings = []
    for n in range(calls):
        who = Actor(f"user{rng.randrange(2000)}", tuple(rng.sample(GROUPS, 2)), n % 10 == 0)
        kind = n % 5
        began = time.perf_counter()
        if kind == 3 and who.is_staff:
            page = engine.inbox_page(who, group=rng.choice(GROUPS))
        elif kind == 4:
            page = engine.inbox_page(who, overdue=True)
        else:
            page = engine.inbox_page(who)
            if kind == 2 and page.next:  # a second and third page, by cursor
                page = engine.inbox_page(who, after=page.next)
                page = engine.inbox_page(who, after=page.next) if page.next else page
        timings.append((time.perf_counter() - began) * 1000)
        assert page.tasks, f"{who} has an empty inbox"
    return timings, statements[0] / calls


def explain(engine: Any) -> None:
    from certflow.engine.facade import Actor
    from certflow.store.db import get_engine

    seen: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "UNION ALL" in statement:
            seen.append((statement, params))

    event.listen(get_engine(), "before_cursor_execute", keep)
    engine.inbox_page(Actor("user7", ("office", "mentor"), False))
    event.remove(get_engine(), "before_cursor_execute", keep)
    statement, params = seen[0]
    with get_engine().connect() as conn:
        cursor = conn.connection.cursor()
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + statement, params)
        print("\n".join(row[0] for row in cursor.fetchall()))


def legacy(url: str, calls: int) -> list[float]:
    raw = create_engine(url)
    rng = random.Random(12)
    timings = []
    with raw.connect() as conn:
        for _ in range(calls):
            g1, g2 = rng.sample(GROUPS, 2)
            began = time.perf_counter()
            rows = conn.execute(text(LEGACY), {"me": f"user{rng.randrange(2000)}", "g1": g1, "g2": g2}).all()
            for row in rows:  # one definition lookup per row, as the old inbox did
                conn.execute(text("SELECT definition_id FROM instances WHERE id = :i"), {"i": row.instance_id})
            timings.append((time.perf_counter() - began) * 1000)
    raw.dispose()
    return timings


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--open", type=int, default=1_000_000, help="open tasks in total (default 1,000,000)")
    ap.add_argument("--real", type=int, default=200, help="of which started through the product")
    ap.add_argument("--calls", type=int, default=500, help="timed inbox calls")
    ap.add_argument("--explain", action="store_true", help="print the plan of one first-page query")
    ap.add_argument("--legacy-calls", type=int, default=20, help="calls of the old query shape (0: skip)")
    args = ap.parse_args()
    name = f"certflow_bench_inbox_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{PG}/{name}"
    try:
        engine, total = build(url, args.open, args.real)
        from certflow.engine.facade import Actor

        engine.inbox_page(Actor("warm", ("office",), False))  # a running web process has its caches warm
        if args.explain:
            explain(engine)
        timings, per_call = measure(engine, args.calls)
        p50, p95 = pct(timings, 50), pct(timings, 95)
        print(f"inbox_page: {args.calls} calls, p50={p50:.2f} ms p95={p95:.2f} ms max={max(timings):.1f} ms, "
              f"{per_call:.1f} SQL statements per call")
        if args.legacy_calls:
            old = legacy(url, args.legacy_calls)
            print(f"old query shape (500 rows + a lookup per row), same table: p50={pct(old, 50):.1f} ms "
                  f"p95={pct(old, 95):.1f} ms; ratio p50 old/new = {pct(old, 50) / p50:.1f}")
        print(f"bench-inbox: open={total} p50_ms={p50:.2f} p95_ms={p95:.2f}")
    finally:
        from certflow.store.db import reset_engines

        reset_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
