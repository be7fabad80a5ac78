"""Engine benchmark: N first-certification lifecycles (granted path)

  (a) on bare SpiffWorkflow in memory (its own script engine, no persistence),
  (b) through the persisted engine on SQLite in one process (jobs run in-process),
  (c) end to end on PostgreSQL + Redis with separate Celery worker processes.

Handlers are the same fast fakes in (b) and (c) (bench/fake_handlers.py), and (a) feeds the
same results, so the ratios measure the engine and its persistence. Prints figures; asserts
nothing about time. Last line:
  bench-engine: a_ms=<x> b_ms=<y> c_ms=<z> b/a=<r> c/a=<r> c_per_s=<n>
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Callable
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this file is bench/engine.py; make `handlers` the package

PROCESS = ROOT / "processes"
START = {"candidate": "cas", "eligibility_route": "hbo_diploma", "motivation": "bench"}
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("check_eligibility", {"eligible": True, "remarks": ""}),
    ("pay", {}),
    ("assign_mentor", {"mentor": "mila"}),
    ("write_dossier", {"knowledge": "k", "tasks": "t", "competences": "c", "hours_spent": 30}),
    ("review_dossier", {"approved": True, "feedback": "ok"}),
    ("oral_assessment", {"advice": "positive", "notes": "ok"}),
    ("decide_certification", {"granted": True, "reason": "ok"}),
]

# Untimed lifecycles before (a) and (b) are timed: a process's first lifecycle pays one-off
# costs (lazy imports, compiled expressions, the script evaluator's start), 190-250 ms in (a)
# alone, which spread over 30 lifecycles would add 6-8 ms to each. --warm 0: none.
WARM = 1
# CPU milliseconds per lifecycle of (a) and (b), both in this process (SQLite too): on a
# loaded machine their ratio moves far less than the wall-clock one.
CPU_MS: dict[str, float] = {}
# Advances that found their workflow in their process's live cache, and those that decoded it.
HITS: dict[str, tuple[int, int]] = {}


# -- (a) bare SpiffWorkflow ------------------------------------------------------------------
def bare(n: int) -> float:
    one = bare_runner()
    for i in range(WARM):
        one(f"AW{i}")
    began, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        one(f"A{i}")
    CPU_MS["a"] = (time.process_time() - cpu) * 1000 / n
    return (time.perf_counter() - began) * 1000 / n


def bare_runner() -> Callable[[str], None]:
    """One granted lifecycle on bare SpiffWorkflow, by business key."""
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.bpmn.util import BpmnEvent
    from SpiffWorkflow.util.task import TaskState

    from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment

    from bench.fake_handlers import FAKE_RESULTS
    from certflow.engine.sandbox_builtins import make_date_helpers
    from certflow.engine.spiff import AsyncServiceTask, complete_service_task, make_parser

    parser = make_parser()
    for path in sorted((PROCESS / "certification").glob("*.bpmn")):
        parser.add_bpmn_file(str(path))
    spec, subs = parser.get_spec("certification"), parser.get_subprocess_specs("certification")
    # SpiffWorkflow's own, unsandboxed script engine, with the diagrams' date helpers (deadline(),
    # term_end(): the payment term is on working days) as plain globals.
    script_engine = PythonScriptEngine(TaskDataEnvironment(make_date_helpers(lambda: datetime.now(timezone.utc))))

    def settle(wf: Any) -> None:
        while True:
            wf.do_engine_steps()
            started = [t for t in wf.get_tasks(state=TaskState.STARTED) if isinstance(t.task_spec, AsyncServiceTask)]
            if not started:
                return
            for task in started:
                complete_service_task(task, dict(FAKE_RESULTS.get(task.task_spec.operation_name, {"ok": True})))

    def one(key: str) -> None:
        wf = BpmnWorkflow(spec, subs, script_engine=script_engine)
        wf.get_tasks(state=TaskState.READY)[0].data.update(START, business_key=key)
        settle(wf)
        for element, data in STEPS:
            if element == "pay":
                [task] = [t for t in wf.get_tasks(state=TaskState.WAITING) if t.task_spec.bpmn_id == "wait_payment"]
                wf.catch(BpmnEvent(task.task_spec.event_definition, {"amount": "786.50"}))
            else:
                [task] = [t for t in wf.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.bpmn_id == element]
                task.data.update(data)
                task.run()
            settle(wf)
        assert wf.is_completed(), "bare lifecycle did not finish"

    settled_as_served()  # as (b)'s process is
    return one


# -- (b) and (c): the persisted engine ---------------------------------------------------------
def lifecycle(engine: Any, staff: Any, people: dict[str, Any], key: str, settle: Any,
              find_task: Any = None) -> None:
    find_task = find_task or (lambda instance_id, element: wait_task(engine, instance_id, element))
    instance_id = engine.start(people["cas"], "certification", key, START).id
    settle(instance_id)
    for element, data in STEPS:
        if element == "pay":
            engine.deliver_message(staff, "payment_received", {"amount": "786.50"},
                                   correlation={"invoice_number": f"INV-{key}"})
        else:
            task = find_task(instance_id, element)
            actor = {"write_dossier": people["cas"], "review_dossier": people["mila"]}.get(element, staff)
            engine.complete(actor, task, data)
        settle(instance_id)
    status = engine.instance(staff, instance_id).status
    assert status == "completed", f"{key} ended {status}"


def wait_task(engine: Any, instance_id: str, element: str, timeout: float = 60) -> str:
    from certflow.store.models import HumanTask
    from sqlalchemy import select

    deadline, pause = time.monotonic() + timeout, 0.002
    while time.monotonic() < deadline:
        with engine.reading(clock=False) as s:  # as the inbox reads: no write lock on SQLite
            found = s.scalar(select(HumanTask.id).where(HumanTask.instance_id == instance_id,
                                                        HumanTask.element_id == element))
        if found:
            return str(found)
        time.sleep(pause)
        pause = min(pause * 1.5, 0.03)  # don't let the harness eat the CPU it measures
    raise TimeoutError(f"{instance_id}: no {element} task")


def setup(url: str, var: Path) -> tuple[Any, Any, dict[str, Any]]:
    os.environ.update(DATABASE_URL=url, CERTFLOW_VAR_DIR=str(var), CERTFLOW_HANDLER_MODULES="bench.fake_handlers")
    from certflow.bootstrap import build_engine, create_schema
    from certflow.engine.facade import Actor
    from certflow.settings import reset_settings
    from certflow.store.db import reset_engines, session_scope
    from tests.support import create_user

    reset_settings()
    reset_engines()
    import bench.fake_handlers  # noqa: F401

    create_schema(url)
    engine = build_engine()
    staff = Actor("olga", ("office", "mentor", "committee", "certifier", "candidate"), True)
    with session_scope() as s:
        create_user(s, "cas", "Cas", ["candidate"], address={"street": "a", "postal_code": "1234 AB", "city": "U"})
        create_user(s, "olga", "Olga", list(staff.groups), is_staff=True)
        create_user(s, "mila", "Mila", ["mentor"])
    engine.deploy(staff, PROCESS, only=["certification"])
    return engine, staff, {"cas": Actor("cas", ("candidate",), False), "mila": Actor("mila", ("mentor",), False)}


def persisted_sqlite(n: int) -> float:
    engine, one = persisted_runner()
    for i in range(WARM):
        one(f"BW{i}")
    began, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        one(f"B{i}")
    CPU_MS["b"] = (time.process_time() - cpu) * 1000 / n
    HITS["b"] = (engine.live_hits, engine.live_misses)
    return (time.perf_counter() - began) * 1000 / n


def persisted_runner() -> tuple[Any, Callable[[str], None]]:
    """The persisted engine on a new SQLite database, and one granted lifecycle through it by
    business key, its jobs run in this process exactly as the engine publishes them."""
    var = Path(tempfile.mkdtemp(prefix="bench-b-"))
    engine, staff, people = setup(f"sqlite:///{var / 'b.sqlite'}", var)
    published: list[Any] = []
    engine.publisher = published.extend

    def settle(_instance_id: str) -> None:
        while published:
            message = published.pop(0)
            engine.run_job(message.job_id, detached=message.detached)

    settled_as_served()
    return engine, lambda key: lifecycle(engine, staff, people, key, settle)


def settled_as_served() -> None:
    """What this process loaded so far, out of the garbage collector's passes, as a web or a
    worker process does once started (certflow.bootstrap.freeze_heap)."""
    from certflow.bootstrap import freeze_heap

    freeze_heap()


def end_to_end(n: int, workers: int, drivers: int, driver_procs: int = 1) -> tuple[float, float]:
    """``drivers`` threads drive the lifecycles, spread over ``driver_procs`` processes (a real
    deployment has several web processes; threads of one process share its GIL)."""
    from sqlalchemy import create_engine, text

    name = f"certflow_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    var = Path(tempfile.mkdtemp(prefix="bench-c-"))
    os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    os.environ["CERTFLOW_QUEUE"] = f"certflow-bench-{uuid.uuid4().hex[:8]}"  # this run's own queue
    dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
    engine, staff, people = setup(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", var)
    # The workers count their live-cache hits in prometheus-client's multiprocess files.
    metrics_dir = var / "metrics"
    metrics_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    procs = [subprocess.Popen([sys.executable, "-m", "certflow.cli", "worker", f"--concurrency={workers}",
                               "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=WARNING"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(var / "worker.log", "wb"))]
    driven: list[tuple[int, int, float]] = []  # per driver process: live hits, misses, CPU seconds
    try:
        time.sleep(3)  # let the worker connect
        keys = [f"C{i}" for i in range(n)]
        shares = [keys[p::driver_procs] for p in range(driver_procs)]
        threads = [max(1, drivers // driver_procs + (p < drivers % driver_procs)) for p in range(driver_procs)]
        watch = CpuWatch(procs[0].pid, name)
        watch.start()
        began = time.perf_counter()
        if driver_procs == 1:
            driven.append(drive(engine, staff, people, dsn, shares[0], threads[0]))
        else:
            driven.extend(drive_in_processes(engine, staff, people, dsn, shares, threads))
        elapsed = time.perf_counter() - began
        for kind, seconds in watch.stop().items():
            CPU_MS[f"c {kind}"] = seconds * 1000 / n
        CPU_MS["c drivers"] = sum(seconds for _, _, seconds in driven) * 1000 / n
        return elapsed * 1000 / n, n / elapsed
    finally:
        for p in procs:
            p.terminate()
            p.wait(20)
        HITS["c driver"] = (sum(h for h, _, _ in driven), sum(m for _, m, _ in driven))
        HITS["c workers"] = worker_hits(metrics_dir)
        from certflow.store.db import reset_engines

        reset_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def drive(engine: Any, staff: Any, people: dict[str, Any], dsn: str, keys: list[str], threads: int
          ) -> tuple[int, int, float]:
    """Drive ``keys``' lifecycles in ``threads`` threads of this process, as a web process's
    requests would; returns its live-cache hits, misses and CPU seconds."""
    from certflow.settings import get_settings
    from worker.app import make_app, make_publisher

    engine.publisher = make_publisher(make_app(get_settings()))
    settled_as_served()  # a web process's start
    errors: list[BaseException] = []

    def run(share: list[str]) -> None:
        waiter = Waiter(dsn)
        try:
            for key in share:
                lifecycle(engine, staff, people, key, waiter.settle, waiter.task)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            waiter.close()

    cpu = time.process_time()
    pool = [threading.Thread(target=run, args=(keys[d::threads],)) for d in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return engine.live_hits, engine.live_misses, time.process_time() - cpu


def drive_in_processes(engine: Any, staff: Any, people: dict[str, Any], dsn: str, shares: list[list[str]],
                       threads: list[int]) -> list[tuple[int, int, float]]:
    """``drive`` in forked processes, each with its own database pool and broker connection."""
    import multiprocessing

    from certflow.store import db

    def child(conn: Any, keys: list[str], count: int) -> None:
        for pooled in db._ENGINES.values():
            pooled.dispose(close=False)  # the parent's sockets stay the parent's
        try:
            conn.send(drive(engine, staff, people, dsn, keys, count))
        except BaseException as exc:  # noqa: BLE001
            conn.send(exc)

    fork = multiprocessing.get_context("fork")
    pipes = [fork.Pipe(duplex=False) for _ in shares]
    children = [fork.Process(target=child, args=(w, keys, count))
                for (_, w), keys, count in zip(pipes, shares, threads)]
    for c in children:
        c.start()
    results = [r.recv() for r, _ in pipes]
    for c in children:
        c.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


class CpuWatch:
    """CPU seconds used from ``start`` on by the worker (its process and every descendant)
    and by the PostgreSQL backends serving the bench database, read from /proc every second
    (a process that exits counts up to its last reading; a read costs about 3 ms of the
    drivers' process, so not more often)."""

    def __init__(self, worker_pid: int, database: str) -> None:
        self.worker_pid, self.database = worker_pid, database
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.first = {pid: cpu for pid, (_, cpu) in self._read().items()}
        self.thread.start()

    def stop(self) -> dict[str, float]:
        self.stopped.set()
        self.thread.join()
        self.last.update(self._read())
        used = {"workers": 0.0, "postgres": 0.0}
        for pid, (kind, cpu) in self.last.items():
            used[kind] += cpu - self.first.get(pid, 0.0)
        return used

    def _run(self) -> None:
        while not self.stopped.wait(1.0):
            self.last.update(self._read())

    def _read(self) -> dict[int, tuple[str, float]]:
        tick = os.sysconf("SC_CLK_TCK")
        parents: dict[int, int] = {}
        found: dict[int, tuple[str, float]] = {}
        cpu: dict[int, float] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            pid, fields = int(entry.name), stat[stat.rindex(")") + 2:].split()
            parents[pid], cpu[pid] = int(fields[1]), (int(fields[11]) + int(fields[12])) / tick
            if cmdline.startswith(b"postgres: ") and f" {self.database} ".encode() in cmdline:
                found[pid] = ("postgres", cpu[pid])
        for pid in cpu:
            ancestor = pid
            while ancestor > 1 and ancestor != self.worker_pid:
                ancestor = parents.get(ancestor, 1)
            if ancestor == self.worker_pid:
                found[pid] = ("workers", cpu[pid])
        return found


def worker_hits(metrics_dir: Path) -> tuple[int, int]:
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))
    counts = {"hit": 0.0, "miss": 0.0}
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == "certflow_live_workflow_total":
                counts[sample.labels["result"]] += sample.value
    return int(counts["hit"]), int(counts["miss"])


def hit_rates() -> str:
    return "  ".join(f"{mode} {hits}/{hits + misses}" for mode, (hits, misses) in HITS.items())


class Waiter:
    """How a driver learns that the workers are done with an instance, or that a task is
    there: it polls, with sleeps growing from 2 to 30 ms (don't let the harness eat the CPU it
    measures). Each poll is one statement on the driver's own autocommit connection: through
    the engine's pool a poll was a checkout, a ping, BEGIN, the query and COMMIT, and the polls
    took 38% of the drivers' CPU (42 of 111 ms a lifecycle), CPU a real web process would not
    spend."""

    def __init__(self, dsn: str) -> None:
        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True)

    def close(self) -> None:
        self.conn.close()

    def poll(self, query: str, args: tuple[Any, ...], until_found: bool, what: str) -> Any:
        deadline, pause = time.monotonic() + 60, 0.002
        while time.monotonic() < deadline:
            row = self.conn.execute(query, args, prepare=True).fetchone()
            if (row is not None) == until_found:
                return row
            time.sleep(pause)
            pause = min(pause * 1.5, 0.03)
        raise TimeoutError(what)

    def settle(self, instance_id: str) -> None:
        self.poll("SELECT 1 FROM jobs WHERE instance_id = %s AND status IN ('queued', 'running') LIMIT 1",
                  (instance_id,), False, f"jobs of {instance_id} did not finish")

    def task(self, instance_id: str, element: str) -> str:
        row = self.poll("SELECT id FROM human_tasks WHERE instance_id = %s AND element_id = %s",
                        (instance_id, element), True, f"{instance_id}: no {element} task")
        return str(row[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30, help="lifecycles per mode (default 30)")
    ap.add_argument("--workers", type=int, default=2, help="Celery worker processes for (c)")
    ap.add_argument("--drivers", type=int, default=4, help="concurrent lifecycle drivers for (c)")
    ap.add_argument("--driver-procs", type=int, default=1,
                    help="processes the drivers are spread over, as web processes (default 1)")
    ap.add_argument("--skip-c", action="store_true", help="skip the PostgreSQL + Redis mode")
    ap.add_argument("--warm", type=int, default=1, help="untimed lifecycles before (a) and (b) (default 1)")
    args = ap.parse_args()
    global WARM
    WARM = args.warm
    a = bare(args.n)
    print(f"(a) bare SpiffWorkflow, in memory:        {a:8.2f} ms/lifecycle")
    b = persisted_sqlite(args.n)
    print(f"(b) persisted engine, SQLite, 1 process:  {b:8.2f} ms/lifecycle   b/a={b / a:.2f}")
    print(f"CPU per lifecycle: a {CPU_MS['a']:.2f} ms, b {CPU_MS['b']:.2f} ms, "
          f"b/a by CPU={CPU_MS['b'] / CPU_MS['a']:.2f}; load average {os.getloadavg()[0]:.1f}")
    if args.skip_c:
        c, per_s = float("nan"), float("nan")
    else:
        c, per_s = end_to_end(args.n, args.workers, args.drivers, args.driver_procs)
        print(f"(c) PostgreSQL + Redis + {args.workers} worker procs, {args.drivers} drivers in "
              f"{args.driver_procs} proc(s): {c:8.2f} ms/lifecycle (wall/n)  c/a={c / a:.2f}  {per_s:.1f} lifecycles/s")
        used = CPU_MS["c drivers"] + CPU_MS["c workers"] + CPU_MS["c postgres"]
        print(f"(c) CPU per lifecycle: drivers {CPU_MS['c drivers']:.1f} ms, workers {CPU_MS['c workers']:.1f} ms, "
              f"PostgreSQL {CPU_MS['c postgres']:.1f} ms: at most {os.cpu_count() or 1} cores / {used:.0f} ms = "
              f"{(os.cpu_count() or 1) * 1000 / used:.1f} lifecycles/s; load average {os.getloadavg()[0]:.1f}")
    print(f"live-workflow cache hits (advances): {hit_rates()}")
    print(f"bench-engine: a_ms={a:.2f} b_ms={b:.2f} c_ms={c:.2f} b/a={b / a:.2f} c/a={c / a:.2f} c_per_s={per_s:.1f}")


if __name__ == "__main__":
    main()
