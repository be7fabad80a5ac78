"""Soak: SIGKILL Celery pool processes in the middle of service tasks, hundreds of times, on
PostgreSQL + Redis with real worker and beat processes; then count what was lost or done twice.

Each instance of the test flow runs ``test/slow_effect`` (tests/support.py): it leaves a marker
file naming its job and process when it starts, sleeps, and sends one "email" under the job's
idempotency key. A killer thread watches the markers and kills the pool process running a
fresh one (each job at most ``--per-job`` times, so every instance can finish). At the end:
lost = instances that never got past the task, duplicated = extra emails or extra completed
jobs for one task. Prints figures; the last line is
  bench-soak: jobs=<n> kills=<k> lost=<l> duplicated=<d>
(tests/integration/test_faults.py runs the short version: 20 kills.)
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench.stack import flow_with, pool_children, stack, wait_until


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=600, help="instances (one killable job each)")
    parser.add_argument("--kills", type=int, default=500, help="SIGKILLs to deliver")
    parser.add_argument("--per-job", type=int, default=2, help="most kills of one job")
    parser.add_argument("--concurrency", type=int, default=4, help="worker pool processes")
    parser.add_argument("--slow", type=float, default=0.25, help="seconds the handler takes")
    args = parser.parse_args()
    with stack({"CERTFLOW_TEST_SLOW_SECONDS": str(args.slow)}) as s:
        from sqlalchemy import select

        from certflow.engine.facade import Actor
        from certflow.store.communications import EmailMessage
        from certflow.store.db import session_scope
        from certflow.store.models import HumanTask, Job

        staff = Actor("office", ("office",), True)
        s.engine.deploy(staff, flow_with(Path(tempfile.mkdtemp()), "test/slow_effect"))
        main_pid = s.worker(args.concurrency).pid
        s.beat()
        started_at = time.monotonic()
        kills = Counter[str]()
        stop = threading.Event()

        def killer() -> None:
            seen: set[str] = set()
            folder = s.var / "started"
            while not stop.is_set() and sum(kills.values()) < args.kills:
                fresh = {p.name for p in folder.iterdir()} - seen if folder.exists() else set()
                seen |= fresh
                for marker in fresh:
                    job, pid, _ = marker.rsplit(".", 2)
                    if kills[job] < args.per_job and int(pid) in pool_children(main_pid) and random.random() < 0.7:
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                            kills[job] += 1
                        except ProcessLookupError:
                            pass
                time.sleep(0.02)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        ids = [s.engine.start(staff, "flow", f"S{i}", {"key": f"S{i}"}).id for i in range(args.jobs)]

        def at_review() -> set[str]:
            with session_scope() as session:
                return set(session.scalars(select(HumanTask.instance_id).where(HumanTask.element_id == "review")))

        try:
            wait_until(lambda: sum(kills.values()) >= args.kills or len(at_review()) == len(ids),
                       timeout=3600, what="the kills")
        finally:
            stop.set()
        try:
            wait_until(lambda: len(at_review()) == len(ids), timeout=600, what="every instance past the task")
        except TimeoutError:
            pass
        elapsed = time.monotonic() - started_at
        done = at_review()
        with session_scope() as session:
            emails = Counter(k.split(":")[0] for k in session.scalars(select(EmailMessage.idempotency_key)))
            finished = Counter(session.scalars(select(Job.instance_id).where(
                Job.element_id == "make_ref", Job.status == "done")))
        lost = len(set(ids) - done)
        duplicated = sum(max(0, n - 1) for n in emails.values()) + sum(max(0, n - 1) for n in finished.values())
        total_kills = sum(kills.values())
        print(f"instances {len(ids)}, past the task {len(done)}, kills {total_kills} "
              f"({len(kills)} jobs killed at least once), {elapsed:.0f} s, load {os.getloadavg()[0]:.1f}")
        print(f"bench-soak: jobs={len(ids)} kills={total_kills} lost={lost} duplicated={duplicated}")


if __name__ == "__main__":
    main()
