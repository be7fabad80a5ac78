"""Page benchmark: render time of the inbox and a task page with 10,000 open tasks on
PostgreSQL, through the whole web stack (TestClient: session cookie, CSRF, facade, Jinja2).

Seeding: one real certification instance is started through the engine; its queue entry is
then copied into N open eligibility tasks of N instances (distinct candidates, business keys
and due dates, a tenth overdue), which is what the inbox query and the task page read. A
reference request (/api/health) is timed in the same run, so the page figures can be read
against the machine's load at that moment. Prints figures; asserts nothing about time.
Last line:
  bench-web: inbox_p95_ms=<x> task_page_p95_ms=<y>
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get("CERTFLOW_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def create_database() -> tuple[str, Any]:
    from sqlalchemy import create_engine, text

    name = f"certflow_bench_web_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", (admin, name)


def drop_database(handle: Any) -> None:
    from sqlalchemy import text

    from certflow.store.db import reset_engines

    reset_engines()
    admin, name = handle
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def seed(n: int) -> str:
    """N open office tasks; returns the username of the office clerk who will look."""
    from sqlalchemy import insert, select

    from certflow.bootstrap import build_engine, migrate
    from certflow.clock import CLOCK
    from certflow.engine.facade import Actor
    from certflow.store.db import session_scope
    from certflow.store.models import HumanTask, Instance, Job
    from tests.support import create_user

    migrate()
    engine = build_engine()
    engine.deploy(Actor.system(), ROOT / "processes", only=["certification"])
    with session_scope() as s:
        create_user(s, "olga", "Olga Office", ["office"], is_staff=True, password="bench password!")
        create_user(s, "cas0", "Cas Nul", ["candidate"])
    engine.start(Actor("cas0", ("candidate",)), "certification", "APP-0",
                 {"candidate": "cas0", "eligibility_route": "hbo_diploma", "motivation": "bench"})
    with session_scope() as s:  # the confirmation e-mail; then the eligibility task is open
        queued = list(s.scalars(select(Job.id).where(Job.status == "queued")))
    for job_id in queued:
        engine.run_job(job_id)
    now = CLOCK.now()
    with session_scope() as s:
        template = s.scalars(select(HumanTask)).one()
        source = s.get(Instance, template.instance_id)
        assert source is not None
        instances, tasks = [], []
        for i in range(1, n):
            iid = uuid.uuid4().hex
            instances.append({"id": iid, "definition_id": source.definition_id,
                              "process_id": source.process_id, "business_key": f"APP-{i}",
                              "status": "running", "state": {}, "serializer_version": source.serializer_version,
                              "version": 1, "has_incident": False, "started_by": f"cas{i}",
                              "subject": f"cas{i}", "created_at": now, "updated_at": now})
            tasks.append({"id": str(uuid.uuid4()), "instance_id": iid, "process_id": template.process_id,
                          "business_key": f"APP-{i}", "element_id": template.element_id,
                          "title": template.title, "candidate_group": template.candidate_group,
                          "assignee": None, "form": template.form, "priority": 50,
                          "due_at": now + timedelta(hours=(i % 200) - 20), "created_at": now,
                          "context": {}})
        for start in range(0, len(instances), 2000):
            s.execute(insert(Instance), instances[start:start + 2000])
            s.execute(insert(HumanTask), tasks[start:start + 2000])
    return "olga"


def measure(username: str, rounds: int) -> dict[str, list[float]]:
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from certflow.services import access
    from certflow.settings import get_settings
    from certflow.store.db import session_scope
    from certflow.store.models import HumanTask
    from certflow.web.app import create_app

    client = TestClient(create_app())
    with session_scope() as s:
        cookie = access.start_session(s, get_settings(), username, "bench")[0]
        task_ids = list(s.scalars(select(HumanTask.id).limit(rounds)))
    client.cookies.set("certflow_session", cookie)
    timings: dict[str, list[float]] = {"health": [], "inbox": [], "task": []}
    for warm in ("/api/health", "/inbox", f"/inbox/tasks/{task_ids[0]}"):
        assert client.get(warm).status_code == 200, warm
    for i in range(rounds):
        for name, url in (("health", "/api/health"), ("inbox", "/inbox"),
                          ("task", f"/inbox/tasks/{task_ids[i % len(task_ids)]}")):
            started = time.perf_counter()
            response = client.get(url)
            timings[name].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    url, handle = create_database()
    var = tempfile.mkdtemp(prefix="bench-web-")
    os.environ.update({"DATABASE_URL": url, "CERTFLOW_ENV": "test", "CERTFLOW_VAR_DIR": var,
                       "REDIS_URL": "", "CERTFLOW_ARGON2_TIME_COST": "1", "CERTFLOW_ARGON2_MEMORY_KIB": "1024"})
    try:
        started = time.perf_counter()
        who = seed(args.tasks)
        print(f"seeded {args.tasks} open tasks in {time.perf_counter() - started:.1f} s; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        timings = measure(who, args.rounds)
    finally:
        drop_database(handle)
    for name, samples in timings.items():
        print(f"{name:7s} n={len(samples)} median={statistics.median(samples):7.1f} ms  "
              f"p95={p95(samples):7.1f} ms")
    ref = p95(timings["health"])
    print(f"ratios to /api/health p95 ({ref:.1f} ms): inbox x{p95(timings['inbox']) / ref:.1f}, "
          f"task page x{p95(timings['task']) / ref:.1f}; load average now {os.getloadavg()[0]:.1f}")
    print(f"bench-web: inbox_p95_ms={p95(timings['inbox']):.1f} task_page_p95_ms={p95(timings['task']):.1f}")


if __name__ == "__main__":
    main()
