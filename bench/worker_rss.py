"""Worker memory over many jobs: one Celery pool process (concurrency 1) on PostgreSQL + Redis
runs ``--jobs`` service-task jobs (the test flow's ``test/echo``); its resident set size is
sampled after the first ``--warmup`` jobs and at the end. Growth beyond the warm-up would be a
leak (a cache without bound, sessions or workflows kept alive). Prints figures; last line:
  bench-worker-rss: jobs=<n> rss_warm_mb=<a> rss_end_mb=<b> growth_mb=<b-a>
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.stack import flow_with, pool_children, rss_mb, stack, wait_until


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    args = parser.parse_args()
    with stack() as s:
        from sqlalchemy import func, select

        from certflow.engine.facade import Actor
        from certflow.store.db import session_scope
        from certflow.store.models import Job

        staff = Actor("office", ("office",), True)
        s.engine.deploy(staff, flow_with(Path(tempfile.mkdtemp()), "test/echo"))
        main_pid = s.worker(1).pid

        def done() -> int:
            with session_scope() as session:
                return int(session.scalar(select(func.count()).select_from(Job).where(Job.status == "done")) or 0)

        started = time.monotonic()
        warm = None
        for i in range(args.jobs):
            s.engine.start(staff, "flow", f"W{i}", {"key": f"W{i}"})
            if warm is None and i + 1 >= args.warmup:
                wait_until(lambda: done() >= args.warmup, timeout=600, what="the warm-up jobs")
                [child] = wait_until(lambda: pool_children(main_pid), timeout=30, what="the pool process")
                warm = rss_mb(child)
                print(f"after {args.warmup} jobs: pool process {child} RSS {warm:.1f} MB")
            elif warm is not None and (i + 1) % 1000 == 0:  # along the way: a plateau or a climb?
                print(f"after {done()} jobs: RSS {rss_mb(pool_children(main_pid)[0]):.1f} MB", flush=True)
        wait_until(lambda: done() >= args.jobs, timeout=3600, what="every job")
        [child] = pool_children(main_pid)
        end = rss_mb(child)
        elapsed = time.monotonic() - started
        assert warm is not None
        print(f"after {args.jobs} jobs: pool process {child} RSS {end:.1f} MB "
              f"({elapsed:.0f} s, {args.jobs / elapsed:.0f} jobs/s, load {os.getloadavg()[0]:.1f})")
        print(f"bench-worker-rss: jobs={args.jobs} rss_warm_mb={warm:.1f} rss_end_mb={end:.1f} "
              f"growth_mb={end - warm:.1f}")


if __name__ == "__main__":
    main()
