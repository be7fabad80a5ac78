"""Monitor benchmark: the staff instance list (``Engine.monitor_page``) over many instances.

    python bench/monitor.py                       # 200,000 instances on SQLite
    python bench/monitor.py --instances 50000 --url postgresql+psycopg://postgres@127.0.0.1:5432/bench

1. Through the product: deploy processes/certification and start a few real certifications.
2. SYNTHETIC rows (business keys ``SYN-…``): the rest of the instances are copies of a real
   row inserted in bulk, spread over a year, 70% running, 5% with an open incident, one open
   task each for the running ones (a third of them overdue), 2,000 candidates, two versions.
3. Timed: each filter of the monitor page, first page and a keyset next page, each call in
   its own transaction as the page makes it.

Prints figures and asserts nothing about time. Last line:
``bench-monitor: instances=<n> worst_p50_ms=<x>``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from sqlalchemy import insert  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--url", default="")
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    os.environ.update(CERTFLOW_ENV="test", CERTFLOW_VAR_DIR=str(var), REDIS_URL="",
                      DATABASE_URL=args.url or f"sqlite:///{var / 'bench.sqlite'}")
    from certflow.bootstrap import build_engine, create_schema
    from certflow.engine.facade import Actor
    from certflow.engine.monitor import InstanceFilter
    from certflow.store.db import session_scope
    from certflow.store.models import Instance

    create_schema(os.environ["DATABASE_URL"])
    engine = build_engine()
    staff = Actor("office", ("office",), True)
    engine.deploy(Actor.system(), ROOT / "processes", only=["certification"])
    real = [engine.start(staff, "certification", f"REAL-{n}", {"candidate": "cas", "eligibility_route":
                                                               "hbo_diploma", "motivation": "bench"}).id
            for n in range(3)]
    now = engine.now()
    started = time.perf_counter()
    with session_scope() as session:
        model = session.get(Instance, real[0])
        assert model is not None
        base = {c: getattr(model, c) for c in ("definition_id", "process_id", "state", "serializer_version",
                                               "started_by", "updated_at")}
        batch, tasks, incidents = [], [], []
        for n in range(args.instances):
            iid = f"syn{n:029d}"
            running = n % 10 < 7
            batch.append({**base, "id": iid, "business_key": f"SYN-{n:07d}", "version": 1,
                          "status": "running" if running else ("completed" if n % 10 < 9 else "cancelled"),
                          "has_incident": n % 20 == 0, "subject": f"cand{n % 2000}",
                          "created_at": now - timedelta(minutes=n * 3)})
            if running:
                tasks.append({"id": f"t{iid}", "instance_id": iid, "process_id": "certification",
                              "business_key": f"SYN-{n:07d}", "element_id": "check_eligibility",
                              "title": "Toelaatbaarheid beoordelen", "candidate_group": "office",
                              "priority": 50, "created_at": now, "context": {},
                              "due_at": now + timedelta(days=(n % 30) - 10)})
            if n % 20 == 0:
                incidents.append({"instance_id": iid, "task_id": "x", "element_id": "send_confirmation",
                                  "operator": "email/send", "error": "bench", "traceback": "", "attempts": 5,
                                  "status": "open", "created_at": now})
            if len(batch) >= 20_000:
                _flush(session, batch, tasks, incidents)
        _flush(session, batch, tasks, incidents)
    print(f"inserted {args.instances} synthetic instances in {time.perf_counter() - started:.1f} s")
    filters = {
        "all, newest first": InstanceFilter(),
        "running": InstanceFilter(status="running"),
        "process + version": InstanceFilter(process_id="certification", version=1),
        "business key prefix": InstanceFilter(business_key="SYN-00123"),
        "candidate": InstanceFilter(candidate="cand42"),
        "has incident": InstanceFilter(has_incident=True),
        "overdue": InstanceFilter(overdue=True),
        "running, not overdue": InstanceFilter(status="running", overdue=False),
    }
    worst = 0.0
    print(f"{'filter':24} {'p50 ms':>8} {'p95 ms':>8} {'next p50':>9} rows")
    for name, flt in filters.items():
        first, nxt, rows = [], [], 0
        for _ in range(args.calls):
            t0 = time.perf_counter()
            page = engine.monitor_page(staff, flt)
            first.append((time.perf_counter() - t0) * 1000)
            rows = len(page.rows)
            if page.next:
                t0 = time.perf_counter()
                engine.monitor_page(staff, flt, after=page.next)
                nxt.append((time.perf_counter() - t0) * 1000)
        p50 = statistics.median(first)
        worst = max(worst, p50)
        p95 = sorted(first)[int(len(first) * 0.95) - 1]
        print(f"{name:24} {p50:8.1f} {p95:8.1f} {statistics.median(nxt) if nxt else 0:9.1f} {rows}")
    print(f"bench-monitor: instances={args.instances} worst_p50_ms={worst:.1f}")


def _flush(session: object, batch: list[dict[str, object]], tasks: list[dict[str, object]],
           incidents: list[dict[str, object]]) -> None:
    from certflow.engine.projections import table_of
    from certflow.store.models import HumanTask, Incident, Instance

    for model, rows in ((Instance, batch), (HumanTask, tasks), (Incident, incidents)):
        if rows:
            session.execute(insert(table_of(model)), rows)  # type: ignore[attr-defined]
            rows.clear()


if __name__ == "__main__":
    main()
