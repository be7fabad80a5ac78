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
   claims): first pages and keyset next pages, the overdue view, their own tasks, their
   groups' unassigned work, one group, due within a week; staff looking at a group. Each page
   is timed on its own (a next page is a request of its own), as the API makes it; per page:
   SQL statements, time waiting on them, CPU time in this process and in the PostgreSQL
   backends it used (from /proc: the machine may be shared, CPU is the steadier figure).
   ``--compare /work/main`` times another checkout's certflow on the same database,
   alternating, for a before/after ratio in one run.
4. For the ratio, in the same run: the query shape from before issue 12 (OR over assignee and
   groups, ``ORDER BY due_at IS NULL, due_at, …``, 500 rows, one definition lookup per row),
   replayed as SQL on the same table (its indexes are gone, so this is indicative only).

Prints figures and asserts nothing about time. Last line:
``bench-inbox: open=<n> p50_ms=<x> p95_ms=<y>``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def use_tree(tree: Path) -> None:
    """Import certflow (and tests.support) from ``tree``: main's checkout, for a before/after
    ratio on the same database."""
    sys.path[:] = [str(tree)] + [p for p in sys.path if Path(p or ".").resolve() not in (ROOT / "bench", ROOT)]


use_tree(ROOT)

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


BACKENDS: list[int] = []  # the server processes of this process's pool (for their CPU time)


def connect(url: str) -> Any:
    """The product's engine on ``url``, set up as a web process has it."""
    var = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    os.environ.update(DATABASE_URL=url, CERTFLOW_VAR_DIR=str(var), REDIS_URL="",
                      CERTFLOW_HANDLER_MODULES="bench.fake_handlers", CERTFLOW_CLOCK_CONTROLLABLE="false")
    from certflow.bootstrap import build_engine
    from certflow.settings import reset_settings
    from certflow.store.db import get_engine, reset_engines

    reset_settings()
    reset_engines()

    def note_backend(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            BACKENDS.append(cur.fetchone()[0])
        dbapi_conn.rollback()

    event.listen(get_engine(url), "connect", note_backend)
    return build_engine()


def build(url: str, n_open: int, n_real: int) -> int:
    from certflow.bootstrap import create_schema
    from certflow.engine.facade import Actor
    from certflow.store.db import session_scope
    from tests.support import create_user

    engine = connect(url)
    create_schema(url)
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
        # What autovacuum does after a bulk insert anyway (its insert threshold): statistics
        # and the visibility map, so the measured state is the steady one.
        conn.execute(text("VACUUM ANALYZE human_tasks"))
        total = int(conn.execute(text("SELECT count(*) FROM human_tasks")).scalar_one())
    raw.dispose()
    print(f"inserted {total - real} SYNTHETIC open tasks (bulk path) in {time.perf_counter() - began:.1f} s")
    return total


def workload(calls: int) -> Any:
    """The calls, as (actor, arguments, pages): officers' first pages (some paging on by
    cursor to the 2nd and 3rd), the overdue view, their own tasks, their groups' unassigned
    work, one of their groups, due within a week; and staff looking at a group."""
    from certflow.engine.facade import Actor
    from certflow.engine.inbox_filters import InboxFilter

    rng = random.Random(12)
    for n in range(calls):
        groups = tuple(rng.sample(GROUPS, 2))
        who = Actor(f"user{rng.randrange(2000)}", groups, n % 10 == 0)
        views: list[dict[str, Any]] = [
            {"group": rng.choice(GROUPS)}, {}, {}, {"overdue": True}, {"filters": InboxFilter(scope="mine")},
            {"filters": InboxFilter(scope="unassigned")}, {"filters": InboxFilter(group=groups[0])}, {},
            {"filters": InboxFilter(due_within_days=7)}, {}]
        yield who, views[n % 10], 3 if n % 10 == 2 else 1


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def measure(engine: Any, calls: int) -> dict[str, Any]:
    """Each page timed on its own (a cursor's next page is a request of its own)."""
    from certflow.store.db import get_engine

    sql = {"n": 0, "s": 0.0}

    def before(conn: Any, *_: Any) -> None:
        conn.info["bench_t"] = time.perf_counter()

    def after(conn: Any, *_: Any) -> None:
        sql["n"] += 1
        sql["s"] += time.perf_counter() - conn.info.pop("bench_t")

    event.listen(get_engine(), "before_cursor_execute", before)
    event.listen(get_engine(), "after_cursor_execute", after)
    timings: list[float] = []
    empty, seen = 0, []
    cpu, ticks = time.process_time(), cpu_ticks(BACKENDS)
    try:
        for who, kwargs, pages in workload(calls):
            after_cursor = None
            for _ in range(pages):
                began = time.perf_counter()
                page = engine.inbox_page(who, after=after_cursor, **kwargs)
                timings.append((time.perf_counter() - began) * 1000)
                empty += not page.tasks
                seen.append(hashlib.sha1(" ".join(t.id for t in page.tasks).encode()).hexdigest()[:12])
                after_cursor = page.next
                if after_cursor is None:
                    break
    finally:
        event.remove(get_engine(), "before_cursor_execute", before)
        event.remove(get_engine(), "after_cursor_execute", after)
    n = len(timings)
    return {"pages": timings, "empty": empty, "seen": seen, "statements": sql["n"] / n, "sql_ms": sql["s"] * 1000 / n,
            "cpu_ms": (time.process_time() - cpu) * 1000 / n,
            "db_cpu_ms": (cpu_ticks(BACKENDS) - ticks) * 1000 / os.sysconf("SC_CLK_TCK") / n}


def profile(engine: Any, calls: int) -> None:
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    measure(engine, calls)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def explain(engine: Any) -> None:
    """EXPLAIN ANALYZE of the statements of one call of each kind, as the inbox sent them."""
    from certflow.engine.facade import Actor
    from certflow.store.db import get_engine

    from certflow.engine.inbox_filters import InboxFilter

    officer = Actor("user7", ("office", "mentor"), False)
    cursor = engine.inbox_page(officer).next
    calls = {"first page": (officer, {}), "next page": (officer, {"after": cursor}),
             "staff group": (Actor("olga", ("office",), True), {"group": "mentor"}),
             "overdue": (officer, {"overdue": True}), "mine": (officer, {"filters": InboxFilter(scope="mine")}),
             "unassigned": (officer, {"filters": InboxFilter(scope="unassigned")}),
             "one of my groups": (officer, {"filters": InboxFilter(group="mentor")}),
             "due within 7 days": (officer, {"filters": InboxFilter(due_within_days=7)}),
             "one candidate": (officer, {"filters": InboxFilter(candidate="REAL-7")})}
    for label, (who, kwargs) in calls.items():
        seen: list[tuple[str, Any]] = []

        def keep(conn: Any, cur: Any, statement: str, params: Any, *_: Any) -> None:
            if statement.lstrip().upper().startswith(("SELECT", "WITH")) and statement.strip() != "SELECT 1":
                seen.append((statement, params))

        event.listen(get_engine(), "before_cursor_execute", keep)
        engine.inbox_page(who, **kwargs)
        event.remove(get_engine(), "before_cursor_execute", keep)
        with get_engine().connect() as conn:
            cur = conn.connection.cursor()
            for statement, params in seen:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, params)
                plan = [row[0] for row in cur.fetchall()]
                if label == "first page":
                    print("\n".join(plan))
                print(f"explain {label}: " + "; ".join(p.strip() for p in plan if p.strip().startswith(
                    ("Planning Time", "Execution Time"))))


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


def summary(result: dict[str, Any]) -> str:
    pages = result["pages"]
    return (f"{len(pages)} pages ({result['empty']} empty), p50={pct(pages, 50):.2f} ms p95={pct(pages, 95):.2f} ms max={max(pages):.1f} ms; "
            f"per page: {result['statements']:.1f} SQL statements, {result['sql_ms']:.2f} ms waiting on them, "
            f"CPU {result['cpu_ms']:.2f} ms here + {result['db_cpu_ms']:.2f} ms in PostgreSQL")


def child(tree: Path, url: str, calls: int) -> dict[str, Any]:
    """One measuring process with certflow imported from ``tree`` (the same database)."""
    out = subprocess.run([sys.executable, __file__, "--database", url.rsplit("/", 1)[1], "--tree", str(tree),
                          "--calls", str(calls), "--json"], check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def compare(url: str, total: int, other: Path, calls: int, rounds: int) -> None:
    """Alternate ``other``'s tree and this one on the same database, ``rounds`` times."""
    results: dict[Path, list[dict[str, Any]]] = {other: [], ROOT: []}
    for _ in range(rounds):
        for tree in results:
            results[tree].append(child(tree, url, calls // rounds))
    merged = {}
    for tree, runs in results.items():
        n = [len(r["pages"]) for r in runs]
        merged[tree] = {"pages": [t for r in runs for t in r["pages"]], "empty": sum(r["empty"] for r in runs)} | {
            k: sum(r[k] * m for r, m in zip(runs, n)) / sum(n) for k in ("statements", "sql_ms", "cpu_ms", "db_cpu_ms")}
        print(f"{tree}: {summary(merged[tree])}")
    before, after = merged[other]["pages"], merged[ROOT]["pages"]
    pairs = [(a, b) for x, y in zip(results[other], results[ROOT]) for a, b in zip(x["seen"], y["seen"])]
    print(f"same tasks in the same order: {sum(a == b for a, b in pairs)} of {len(pairs)} pages "
          "(the overdue and due-within views may differ where a due time passed between the runs)")
    print(f"ratio {other.name}/{ROOT.name}: p50 {pct(before, 50) / pct(after, 50):.1f}x, "
          f"p95 {pct(before, 95) / pct(after, 95):.1f}x")
    print(f"bench-inbox ({other}): open={total} p50_ms={pct(before, 50):.2f} p95_ms={pct(before, 95):.2f}")
    print(f"bench-inbox: open={total} p50_ms={pct(after, 50):.2f} p95_ms={pct(after, 95):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--open", type=int, default=1_000_000, help="open tasks in total (default 1,000,000)")
    ap.add_argument("--real", type=int, default=200, help="of which started through the product")
    ap.add_argument("--calls", type=int, default=500, help="timed inbox calls (some read 3 pages)")
    ap.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE one call of each kind")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile N calls")
    ap.add_argument("--legacy-calls", type=int, default=20, help="calls of the old query shape (0: skip)")
    ap.add_argument("--compare", type=Path, metavar="TREE",
                    help="also time TREE's certflow (e.g. /work/main) on the same database, alternating")
    ap.add_argument("--rounds", type=int, default=4, help="alternations for --compare")
    ap.add_argument("--database", help="an existing bench database (from --keep): skip building")
    ap.add_argument("--keep", action="store_true", help="keep the database (prints its name)")
    ap.add_argument("--tree", type=Path, default=ROOT, help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    use_tree(args.tree.resolve())
    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    name = args.database or f"certflow_bench_inbox_{uuid.uuid4().hex[:8]}"
    url = f"{PG}/{name}"
    if not args.database:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        if args.database:
            engine = connect(url)
            with engine.sessions() as s:
                total = int(s.execute(text("SELECT count(*) FROM human_tasks")).scalar_one())
        else:
            total = build(url, args.open, args.real)
            engine = connect(url)  # a fresh process's engine, as a web worker has it
        from certflow.engine.facade import Actor

        engine.inbox_page(Actor("warm", ("office",), False))  # a running web process has its caches warm
        if args.json:
            print(json.dumps(measure(engine, args.calls)))
            return
        if args.explain:
            explain(engine)
        if args.profile:
            profile(engine, args.profile)
        if args.compare:
            compare(url, total, args.compare.resolve(), args.calls, args.rounds)
            return
        result = measure(engine, args.calls)
        print(f"inbox_page: {summary(result)}")
        if args.legacy_calls:
            old = legacy(url, args.legacy_calls)
            print(f"old query shape (500 rows + a lookup per row), same table: p50={pct(old, 50):.1f} ms "
                  f"p95={pct(old, 95):.1f} ms; ratio p50 old/new = {pct(old, 50) / pct(result['pages'], 50):.1f}")
        pages = result["pages"]
        print(f"bench-inbox: open={total} p50_ms={pct(pages, 50):.2f} p95_ms={pct(pages, 95):.2f}")
    finally:
        from certflow.store.db import reset_engines

        reset_engines()
        if not (args.keep or args.database):
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        elif args.keep:
            print(f"kept database {name} (--database {name})")


if __name__ == "__main__":
    main()
