"""Scale-out benchmark: 1 web + N workers + 1 beat as separate processes against PostgreSQL +
Redis, driving whole first-certification lifecycles (granted path) through the HTTP API, all
at once, with the real handlers (emails, invoices, certificates, Register).

Every lifecycle is a candidate applying, the office checking eligibility, a payment registered
over the API, the office assigning a mentor, the candidate's dossier, the mentor's review, the
committee's oral assessment and the certifier's decision; the workers run every service task in
between. After the run the database is checked: every instance completed, one invoice per
candidate with unique numbers in an unbroken sequence, each email sent once, one certificate
and lifecycle per candidate, no incident, no job left. Each worker's own /metrics says how many
jobs it ran. Prints figures; asserts nothing about time. Usage:

  python bench/scale.py --workers 1,3 --lifecycles 500

Last line: bench-scale: workers=<n> lifecycles_per_s=<x> ...
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from certflow.launcher import die_with_parent  # noqa: E402

PG_ADMIN = os.environ.get("CERTFLOW_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("CERTFLOW_TEST_REDIS", "redis://127.0.0.1:6379/0")
STAFF = {"olga": ["office"], "cato": ["certifier"]}
PEOPLE = {"mila": ["mentor"], "kees": ["committee"]}
ADDRESS = {"street": "Oudegracht 1", "postal_code": "3511 AA", "city": "Utrecht", "country": "NL"}
DOSSIER = {"knowledge": "Theorie", "tasks": "Begeleiding", "competences": "Coaching", "hours_spent": 35}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the system under test --------------------------------------------------------------------
@dataclass
class Stack:
    """A fresh database and queue, and web + workers + beat as plain processes on them."""

    database_url: str
    redis_url: str
    var: Path
    workers: int = 3
    concurrency: int = 1
    queue: str = field(default_factory=lambda: f"certflow-scale-{uuid.uuid4().hex[:10]}")
    port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)
    cpu_seconds: float = 0.0  # CPU the stack's processes used (not PostgreSQL's or Redis's)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
                "CERTFLOW_QUEUE": self.queue, "CERTFLOW_VAR_DIR": str(self.var), "CERTFLOW_ENV": "test",
                "CERTFLOW_BEAT_INTERVAL_SECONDS": "0.5", "CERTFLOW_LOG_FORMAT": "json",
                "CERTFLOW_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT), **extra}

    def prepare(self, lifecycles: int) -> None:
        """Schema, every process deployed, staff and one candidate per lifecycle (with tokens)."""
        from certflow.bootstrap import build_engine, migrate
        from certflow.clock import CLOCK
        from certflow.engine.facade import Actor
        from certflow.services import access, accounts
        from certflow.store.db import reset_engines, session_scope

        def create_user(s: Any, name: str, display: str, groups: list[str], *, token: str,
                        is_staff: bool = False, **extra: Any) -> None:
            accounts.create(s, name, display, groups, is_staff=is_staff, now=CLOCK.now(), **extra)
            access.create_token(s, name, "bench", token=token)

        migrate(self.database_url)
        build_engine(database_url=self.database_url).deploy(Actor.system())
        with session_scope(self.database_url) as s:
            for name, groups in {**STAFF, **PEOPLE}.items():
                create_user(s, name, name.title(), groups, is_staff=name in STAFF, token=f"token-{name}")
            for i in range(lifecycles):
                create_user(s, f"cand{i}", f"Kandidaat {i}", ["candidate"], email=f"cand{i}@example.org",
                            address=ADDRESS, token=f"token-cand{i}")
        reset_engines()

    def start(self) -> None:
        self.var.mkdir(parents=True, exist_ok=True)
        self._spawn("web", ["certflow.cli", "web", "--port", str(self.port)], {})
        for n in range(1, self.workers + 1):
            name = f"worker{n}"
            self.metrics_ports[name] = free_port()
            self._spawn(name, ["certflow.cli", "worker", f"--concurrency={self.concurrency}", "--without-gossip",
                               "--without-mingle", "--without-heartbeat", f"--hostname={name}@%h"],
                        {"CERTFLOW_METRICS_PORT": str(self.metrics_ports[name])})
        self._spawn("beat", ["certflow.cli", "beat"], {})
        deadline = time.monotonic() + 180  # a loaded machine takes a while to import and connect
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200 and all(
                        self._scrape(port) is not None for port in self.metrics_ports.values()):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the stack did not come up:\n{self.logs()}")

    def _spawn(self, name: str, args: list[str], extra: dict[str, str]) -> None:
        log = open(self.var / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=self.env(**extra),
                                            stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)

    @staticmethod
    def _scrape(port: int) -> float | None:
        """Jobs this worker ran, from its own /metrics (None: not answering)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return None
        from prometheus_client.parser import text_string_to_metric_families

        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == "certflow_jobs_total")

    def jobs_per_worker(self) -> dict[str, float]:
        return {name: self._scrape(port) or 0.0 for name, port in self.metrics_ports.items()}

    def stop(self) -> None:
        """Stop every process; returns nothing, but ``cpu_seconds`` then holds what they used."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu_seconds = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in self.var.glob("*.log"))


# -- the people ---------------------------------------------------------------------------------
@dataclass
class Drive:
    base: str
    lifecycles: int
    in_flight: int = 16  # HTTP requests at once (one uvicorn process serves them)
    # Lifecycles under way at once; the rest wait their turn. Without a cap every lifecycle
    # polls at once and the first ones starve behind hundreds of polls (a 600 s wait).
    active: int = 100
    timeout: float = 600.0
    requests: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    async def call(self, client: httpx.AsyncClient, gate: asyncio.Semaphore, method: str, path: str,
                   who: str, body: Any = None) -> Any:
        async with gate:
            started = time.perf_counter()
            for attempt in range(3):
                try:
                    response = await client.request(method, path, json=body,
                                                    headers={"Authorization": f"Bearer token-{who}"})
                    break
                except httpx.TransportError:
                    if method != "GET" or attempt == 2:  # only a read is safe to send again blindly
                        raise
            self.latencies.append(time.perf_counter() - started)
            self.requests += 1
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path} as {who}: {response.status_code} {response.text[:300]}")
        return response.json()

    async def until(self, client: httpx.AsyncClient, gate: asyncio.Semaphore, instance_id: str,
                    ready: Callable[[dict[str, Any]], Any]) -> Any:
        """Poll the instance (as the office) with a growing pause until ``ready`` says so."""
        pause, deadline = 0.2, time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            view = await self.call(client, gate, "GET", f"/api/instances/{instance_id}", "olga")
            found = ready(view)
            if found:
                return found
            if view.get("has_incident"):
                raise RuntimeError(f"instance {instance_id} has an incident")
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 2.0)
        raise RuntimeError(f"instance {instance_id} did not get there in {self.timeout:.0f}s")

    async def task(self, client: httpx.AsyncClient, gate: asyncio.Semaphore, instance_id: str, element: str) -> str:
        return str(await self.until(client, gate, instance_id, lambda v: next(
            (t["id"] for t in v["open_tasks"] if t["element_id"] == element), None)))

    async def lifecycle(self, client: httpx.AsyncClient, gate: asyncio.Semaphore, i: int) -> None:
        cand, call = f"cand{i}", self.call
        started = await call(client, gate, "POST", "/api/instances", cand, {
            "process_id": "certification", "business_key": f"SCALE-{i}",
            "data": {"candidate": cand, "eligibility_route": "hbo_diploma", "motivation": "scale"}})
        iid = started["id"]

        async def do(who: str, element: str, data: dict[str, Any]) -> None:
            task_id = await self.task(client, gate, iid, element)
            await call(client, gate, "POST", f"/api/tasks/{task_id}/complete", who, {"data": data})

        await do("olga", "check_eligibility", {"eligible": True, "remarks": "diploma gezien"})
        # Pay once the instance waits for the payment (an earlier one is kept but not delivered).
        number = await self.until(client, gate, iid, lambda v: any(
            w.startswith("payment_received") for w in v["waiting_for"]) and v["data"]["invoice_number"])
        invoice = await call(client, gate, "GET", f"/api/invoices/{number}", "olga")
        await call(client, gate, "POST", "/api/payments", "olga", {
            "invoice_number": number, "amount": invoice["gross_total"], "external_id": f"scale-{i}"})
        await do("olga", "assign_mentor", {"mentor": "mila"})
        await do(cand, "write_dossier", DOSSIER)
        await do("mila", "review_dossier", {"approved": True, "feedback": "Goed"})
        await do("kees", "oral_assessment", {"advice": "positive", "notes": "Overtuigend"})
        await do("cato", "decide_certification", {"granted": True, "reason": "Voldoet"})
        await self.until(client, gate, iid, lambda v: v["status"] == "completed")

    async def run(self) -> float:
        gate, slots = asyncio.Semaphore(self.in_flight), asyncio.Semaphore(self.active)

        async def one(client: httpx.AsyncClient, i: int) -> None:
            async with slots:
                await self.lifecycle(client, gate, i)

        # Idle connections are dropped before uvicorn's 5 s keep-alive ends, so a request is
        # never sent on a connection the server is closing at that moment.
        limits = httpx.Limits(max_connections=self.in_flight, max_keepalive_connections=self.in_flight,
                              keepalive_expiry=2.0)
        async with httpx.AsyncClient(base_url=self.base, timeout=120, limits=limits) as client:
            started = time.perf_counter()
            results = await asyncio.gather(*(one(client, i) for i in range(self.lifecycles)),
                                           return_exceptions=True)
            seconds = time.perf_counter() - started
        self.failures = [f"lifecycle {i}: {r!r}" for i, r in enumerate(results) if isinstance(r, BaseException)]
        return seconds


# -- what must hold afterwards ----------------------------------------------------------------
def settle(database_url: str, timeout: float = 120.0) -> None:
    """Wait until no job and no message is still on its way (the last instances' follow-ups,
    such as starting the certificate lifecycle, may still be routed by beat's tick)."""
    from sqlalchemy import or_, select

    from certflow.store.db import session_scope
    from certflow.store.models import Job, Message

    # One statement, one snapshot: on PostgreSQL two statements see two (READ COMMITTED), and a
    # tick's commit between them (message delivered, its jobs queued) would look like idle.
    jobs = select(Job.id).where(Job.status.in_(("queued", "running"))).exists()
    messages = select(Message.id).where(Message.status == "pending").exists()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(database_url) as s:
            busy = s.scalar(select(or_(jobs, messages)))
        if not busy:
            return
        time.sleep(0.5)


def problems(database_url: str, lifecycles: int) -> list[str]:
    """Everything that would be corruption or a double effect; empty when all is well."""
    from sqlalchemy import func, select

    from certflow.store.billing import Invoice
    from certflow.store.communications import EmailMessage
    from certflow.store.db import session_scope
    from certflow.store.models import AuditEvent, Incident, Instance, Job
    from certflow.store.register import Certificate

    found = []
    with session_scope(database_url) as s:
        statuses = dict(s.execute(select(Instance.status, func.count()).where(
            Instance.process_id == "certification").group_by(Instance.status)).all())
        if statuses != {"completed": lifecycles}:
            found.append(f"certification instances by status: {statuses}")
        numbers = s.execute(select(func.count(), func.count(Invoice.number.distinct()), func.min(Invoice.seq),
                                   func.max(Invoice.seq)).where(Invoice.kind == "invoice")).one()
        if tuple(numbers) != (lifecycles, lifecycles, 1, lifecycles):
            found.append(f"invoices (count, distinct numbers, first seq, last seq): {tuple(numbers)}")
        doubles = s.execute(select(EmailMessage.recipient, EmailMessage.template, func.count())
                            .group_by(EmailMessage.recipient, EmailMessage.template)
                            .having(func.count() > 1).limit(5)).all()
        if doubles:
            found.append(f"emails sent twice: {doubles}")
        granted = s.scalar(select(func.count(EmailMessage.recipient.distinct())).where(
            EmailMessage.template == "certification/granted", EmailMessage.status == "sent"))
        if granted != lifecycles:
            found.append(f"{granted} candidates got the granted email, not {lifecycles}")
        certificates = s.execute(select(func.count(), func.count(Certificate.register_number.distinct()))).one()
        if tuple(certificates) != (lifecycles, lifecycles):
            found.append(f"certificates (count, distinct register numbers): {tuple(certificates)}")
        lifecycle = s.scalar(select(func.count()).where(Instance.process_id == "certificate_lifecycle",
                                                        Instance.status == "running"))
        if lifecycle != lifecycles:
            found.append(f"{lifecycle} certificate lifecycles running, not {lifecycles}")
        if s.scalar(select(func.count()).select_from(Incident)):
            found.append("incidents were opened")
        left = dict(s.execute(select(Job.status, func.count()).where(Job.status.in_(("queued", "running", "failed")))
                              .group_by(Job.status)).all())
        if left:
            found.append(f"jobs not finished: {left}")
        per_instance = s.execute(select(func.count(), func.count(AuditEvent.instance_id.distinct())).where(
            AuditEvent.action == "task_completed_by_user")).one()
        if tuple(per_instance) != (6 * lifecycles, lifecycles):
            found.append(f"user completions (count, instances): {tuple(per_instance)}; expected 6 per instance")
    return found


@dataclass
class Outcome:
    workers: int
    lifecycles: int
    seconds: float
    requests: int
    p50_ms: float
    p95_ms: float
    jobs: dict[str, float]
    cpu_seconds: float
    failures: list[str]
    problems: list[str]

    @property
    def per_s(self) -> float:
        return self.lifecycles / self.seconds


def run(stack: Stack, lifecycles: int, in_flight: int = 16, active: int = 100) -> Outcome:
    """Prepare, start, drive, check, stop. The caller owns the database (creates and drops)."""
    stack.prepare(lifecycles)
    stack.start()
    try:
        drive = Drive(stack.base, lifecycles, in_flight, active)
        # Its own thread: the caller may already run an event loop (a test session does).
        with ThreadPoolExecutor(1) as pool:
            seconds = pool.submit(asyncio.run, drive.run()).result()
        settle(stack.database_url)
        jobs = stack.jobs_per_worker()
    finally:
        stack.stop()
    found = problems(stack.database_url, lifecycles) if not drive.failures else []
    lat = sorted(drive.latencies) or [0.0]
    return Outcome(stack.workers, lifecycles, seconds, drive.requests, 1000 * lat[len(lat) // 2],
                   1000 * lat[int(len(lat) * 0.95)], jobs, stack.cpu_seconds, drive.failures, found)


def create_database() -> str:
    from sqlalchemy import create_engine, text

    name = f"certflow_scale_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    from certflow.store.db import reset_engines

    reset_engines()
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,3", help="worker process counts to compare, e.g. 1,3")
    parser.add_argument("--lifecycles", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=1, help="prefork processes per worker")
    parser.add_argument("--in-flight", type=int, default=16, help="HTTP requests at once")
    parser.add_argument("--active", type=int, default=100, help="lifecycles under way at once")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    first: Outcome | None = None
    for workers in counts:
        load = os.getloadavg()[0]
        url = create_database()
        try:
            with tempfile.TemporaryDirectory(prefix="certflow-scale-") as tmp:
                outcome = run(Stack(url, REDIS, Path(tmp), workers, args.concurrency), args.lifecycles, args.in_flight,
                              args.active)
        finally:
            drop_database(url)
        first = first or outcome
        shares = " ".join(f"{k}={v:.0f}" for k, v in outcome.jobs.items())
        print(f"workers={workers}: {outcome.lifecycles} lifecycles in {outcome.seconds:.1f}s "
              f"= {outcome.per_s:.2f}/s; {outcome.requests} requests (p50 {outcome.p50_ms:.0f} ms, "
              f"p95 {outcome.p95_ms:.0f} ms); jobs per worker: {shares}; load before {load:.1f}, "
              f"after {os.getloadavg()[0]:.1f}", flush=True)
        for line in (outcome.failures[:5] + outcome.problems):
            print(f"  PROBLEM {line}", flush=True)
        ok = "yes" if not outcome.failures and not outcome.problems else "no"
        print(f"bench-scale: workers={workers} lifecycles_per_s={outcome.per_s:.2f} lifecycles={outcome.lifecycles} "
              f"seconds={outcome.seconds:.1f} requests_per_s={outcome.requests / outcome.seconds:.1f} "
              f"p95_ms={outcome.p95_ms:.0f} cpu_s_per_lifecycle={outcome.cpu_seconds / outcome.lifecycles:.2f} "
              f"vs_first={outcome.per_s / first.per_s:.2f} correct={ok}", flush=True)


if __name__ == "__main__":
    main()
