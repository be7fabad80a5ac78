"""The embedded default after an hour idle: as fast as in its first minute?

    python bench/embedded_idle.py                 # burst, one hour idle, burst again
    python bench/embedded_idle.py --idle 300      # five minutes

The README's default topology as `make run` starts it: a SQLite database, kombu's SQLite
broker (no Redis), one worker process (solo pool) and beat at its production interval, each a
separate process. A burst of ``--burst`` service tasks is started through the product (each
start writes an outbox job, published to the broker after commit); the figure is the time until
every job is done. Then nothing happens for ``--idle`` seconds but beat's ticks, sampled once a
minute: the broker's rows (visible = waiting, all = also delivered and not yet cleaned up), the
worker's and beat's CPU seconds and resident memory. Then the same burst again.

Asserts nothing about time. Last line:
  bench-embedded: burst=<n> first_s=<x> after_idle_s=<y> idle_s=<s> broker_rows_max=<r> worker_cpu_idle_s=<c>
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]


def _proc(pid: int) -> tuple[float, int]:
    """CPU seconds (user + system) and resident KiB of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss_kib = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024
    return cpu, rss_kib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--burst", type=int, default=100, help="service tasks per burst (default 100)")
    ap.add_argument("--idle", type=float, default=3600, help="seconds idle between the bursts (default 3600)")
    ap.add_argument("--beat-interval", default="2", help="beat's tick in seconds (default 2, production's)")
    args = ap.parse_args()

    var = Path(tempfile.mkdtemp(prefix="bench-embedded-"))
    url = f"sqlite:///{var / 'certflow.sqlite'}"
    os.environ.update(CERTFLOW_VAR_DIR=str(var), DATABASE_URL=url, REDIS_URL="", CERTFLOW_ENV="test")

    from sqlalchemy import create_engine, func, select, text

    from certflow.bootstrap import build_engine, create_schema
    from certflow.settings import get_settings, reset_settings
    from certflow.store.db import reset_engines, session_scope
    from certflow.store.models import Job
    from tests.integration.topology import Topology, wait_for
    from tests.support import FLOW_DIR, Harness
    from worker.app import make_app, make_publisher

    reset_settings()
    reset_engines()
    create_schema(url)
    settings = get_settings()
    assert settings.broker_url.startswith("sqla+sqlite"), settings.broker_url
    harness = Harness(build_engine(make_publisher(make_app(settings))))
    harness.engine.deploy(harness.staff, FLOW_DIR)
    broker = create_engine(settings.broker_url.removeprefix("sqla+"))

    def broker_rows(visible_only: bool) -> int:
        with broker.connect() as conn:
            if not conn.dialect.has_table(conn, "kombu_message"):
                return 0
            where = " WHERE visible = 1" if visible_only else ""
            return int(conn.execute(text(f"SELECT count(*) FROM kombu_message{where}")).scalar_one())

    def unfinished() -> int:
        with session_scope() as s:
            return int(s.scalar(select(func.count()).select_from(Job).where(Job.status != "done")) or 0)

    topology = Topology(var, {"CERTFLOW_BEAT_INTERVAL_SECONDS": args.beat_interval})
    try:
        topology.worker(concurrency=1)
        topology.beat()
        wait_for(lambda: broker_rows(False) > 0, what="beat's first tick", topology=topology)
        worker_pid, beat_pid = topology.procs["worker"].pid, topology.procs["beat"].pid

        def burst(tag: str) -> float:
            began = time.monotonic()
            for i in range(args.burst):
                harness.engine.start(harness.staff, "flow", f"{tag}{i}", {"key": f"{tag}{i}"})
            wait_for(lambda: unfinished() == 0, timeout=600, what=f"burst {tag} to clear", topology=topology)
            return time.monotonic() - began

        first = burst("A")
        print(f"first burst: {args.burst} service tasks cleared in {first:.2f} s", flush=True)
        wait_for(lambda: broker_rows(True) == 0, what="the broker queue to drain", topology=topology)

        idle_began = time.monotonic()
        cpu0 = _proc(worker_pid)[0], _proc(beat_pid)[0]
        rows_max = 0
        print(f"{'min':>5} {'visible':>8} {'all rows':>9} {'worker cpu s':>13} {'worker MiB':>11} "
              f"{'beat cpu s':>11} {'beat MiB':>9}", flush=True)
        while (elapsed := time.monotonic() - idle_began) < args.idle:
            time.sleep(min(60.0, args.idle - elapsed))
            visible, rows = broker_rows(True), broker_rows(False)
            rows_max = max(rows_max, rows)
            (wcpu, wrss), (bcpu, brss) = _proc(worker_pid), _proc(beat_pid)
            print(f"{(time.monotonic() - idle_began) / 60:5.1f} {visible:8d} {rows:9d} {wcpu - cpu0[0]:13.2f} "
                  f"{wrss / 1024:11.1f} {bcpu - cpu0[1]:11.2f} {brss / 1024:9.1f}", flush=True)
        idle = time.monotonic() - idle_began
        worker_idle_cpu = _proc(worker_pid)[0] - cpu0[0]

        second = burst("B")
        print(f"after {idle / 60:.1f} min idle: {args.burst} service tasks cleared in {second:.2f} s "
              f"({second / first:.2f}x the first); load average {os.getloadavg()[0]:.1f}", flush=True)
        print(f"bench-embedded: burst={args.burst} first_s={first:.2f} after_idle_s={second:.2f} "
              f"idle_s={idle:.0f} broker_rows_max={rows_max} worker_cpu_idle_s={worker_idle_cpu:.1f}")
    finally:
        topology.stop()
        broker.dispose()
        reset_engines()


if __name__ == "__main__":
    main()
