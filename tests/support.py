"""Test support shared by every tier: test handlers (registered by name, like real ones),
the Harness around an Engine, and the locations of test data."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import event, select, text

import handlers
from certflow.clock import CLOCK
from certflow.engine.facade import Actor, Engine
from certflow.store.db import get_engine, session_scope
from certflow.store.models import Job, Message
from certflow.services import access, accounts

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("CERTFLOW_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("CERTFLOW_TEST_REDIS", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI") == "true"
# Set by bench/mutation.py for its runs (docs/testing.md, "How it stays fast"): tests that are
# not about an invoice's PDF or UBL then skip rendering them (tests/handlers/test_invoicing.py).
MUTATION_RUN = os.environ.get("CERTFLOW_MUTATION_RUN") == "1"
FLOW_DIR = ROOT / "tests" / "engine" / "data"
MESSAGING_DIR = ROOT / "tests" / "engine" / "data_messaging"
CHAIN_DIR = ROOT / "tests" / "engine" / "data_chain"


def blocked_on_a_lock(engine: Any, thread: threading.Thread, timeout: float = 60.0) -> bool:
    """Whether ``thread`` comes to wait for a lock in ``engine``'s PostgreSQL database (True as
    soon as PostgreSQL shows a session of that database waiting for one; False if the thread
    ends first). Asked of the database rather than slept on: as fast as the machine allows, and
    a thread still on its way to the lock on a loaded machine is not taken for a blocked one."""
    query = text("SELECT count(*) FROM pg_stat_activity "
                 "WHERE datname = current_database() AND wait_event_type = 'Lock'")
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while thread.is_alive() and time.monotonic() < deadline:
            if conn.execute(query).scalar():
                return True
            conn.rollback()  # a fresh snapshot of pg_stat_activity on the next read
            time.sleep(0.02)
    return False


# -- test handlers (registered once, by name, like real ones) ---------------------------------
class EchoIn(BaseModel):
    value: str


@handlers.handler("test/echo")
def _echo(ctx: handlers.HandlerContext, data: EchoIn) -> dict[str, Any]:
    return {"value": data.value, "key": ctx.idempotency_key}


class FailIn(BaseModel):
    value: str = ""



@handlers.handler("test/fail")
def _fail(ctx: handlers.HandlerContext, data: FailIn) -> dict[str, Any]:
    raise handlers.HandlerError("the service is down")


@handlers.handler("test/db_effect", effects="database")
def _db_effect(ctx: handlers.HandlerContext, data: EchoIn) -> dict[str, Any]:
    """Only writes certflow's database (a message row, keyed): runs inside a worker's advance."""
    ctx.emit("db_effect", {"value": data.value, "key": ctx.idempotency_key}, idempotency_key=ctx.idempotency_key)
    return {"value": data.value, "key": ctx.idempotency_key}


@handlers.handler("test/db_fail", effects="database")
def _db_fail(ctx: handlers.HandlerContext, data: EchoIn) -> dict[str, Any]:
    ctx.emit("db_effect", {"value": data.value, "key": ctx.idempotency_key}, idempotency_key=ctx.idempotency_key)
    raise handlers.HandlerError("the database-only step failed after writing")


class FanOutIn(BaseModel):
    count: int


@handlers.handler("test/fanout")
def _fanout(ctx: handlers.HandlerContext, data: FanOutIn) -> dict[str, Any]:
    year = ctx.now.year
    for n in range(data.count):
        ctx.emit("hello", {"business_key": f"Y{year}-{n}", "key": str(n)},
                 idempotency_key=f"{ctx.idempotency_key}:{n}")
    return {"count": data.count}


class SlowEffectIn(BaseModel):
    value: str


@handlers.handler("test/slow_effect")
def _slow_effect(ctx: handlers.HandlerContext, data: SlowEffectIn) -> dict[str, Any]:
    """What the fault tests kill workers in the middle of: leaves a marker file when it starts
    (``<var>/started/<job>.<pid>.<random>``), takes ``CERTFLOW_TEST_SLOW_SECONDS``, and sends one "email" keyed by
    the job's idempotency key (a unique constraint): the effect that must never happen twice."""
    import time
    import uuid

    from sqlalchemy.exc import IntegrityError

    from certflow.store.communications import EmailMessage

    started = ctx.settings.var_dir / "started"
    started.mkdir(parents=True, exist_ok=True)
    (started / f"{ctx.idempotency_key.replace(':', '_')}.{os.getpid()}.{uuid.uuid4().hex[:8]}").touch()
    time.sleep(float(os.environ.get("CERTFLOW_TEST_SLOW_SECONDS", "0.4")))
    try:
        with ctx.session.begin_nested():
            ctx.session.add(EmailMessage(
                idempotency_key=ctx.idempotency_key, recipient="cas", to_address="cas@example.org",
                subject=f"About {data.value}", template="test", language="nl", body_text="",
                body_html="", status="sent", sent_at=ctx.now, created_at=ctx.now))
    except IntegrityError:
        pass  # sent by an earlier delivery of this job: the constraint makes it once
    return {"value": data.value, "key": ctx.idempotency_key}


@handlers.handler("test/notify", effects="outbox")
def _notify(ctx: handlers.HandlerContext, data: SlowEffectIn) -> dict[str, Any]:
    """An outbox handler (certflow.engine.outbox), as ``email/send`` is: sends one "email"
    keyed by the job's idempotency key. ``CERTFLOW_TEST_NOTIFY_FAILS``: ``retry`` fails in a
    way worth retrying (the mail server is down), ``permanent`` for good."""
    from certflow.store.communications import EmailMessage

    fails = os.environ.get("CERTFLOW_TEST_NOTIFY_FAILS")
    if fails == "retry":
        raise handlers.HandlerError("the mail server is down")
    if fails == "permanent":
        raise handlers.PermanentError("no such address")
    ctx.session.add(EmailMessage(
        idempotency_key=ctx.idempotency_key, recipient="cas", to_address="cas@example.org",
        subject=f"About {data.value}", template="test", language="nl", body_text="",
        body_html="", status="sent", sent_at=ctx.now, created_at=ctx.now))
    return {"value": data.value, "key": ctx.idempotency_key}


@handlers.guard("test/key_not_blocked")
def _guard(session: Any, now: Any, data: dict[str, Any]) -> str | None:
    if data.get("key") == "BLOCKED":
        return "this key is blocked; apply with another key instead"
    return None


# -- people --------------------------------------------------------------------------------
def create_user(session: Any, username: str, display_name: str, groups: list[str], *,
                is_staff: bool = False, token: str | None = None, password: str | None = None,
                **extra: Any) -> str:
    """An account with an API token (returned) and optionally a password, as tests need."""
    accounts.create(session, username, display_name, groups, is_staff=is_staff, now=CLOCK.now(),
                    password_hash=access.hash_password(password) if password else None, **extra)
    return access.create_token(session, username, "test", token=token)[0]


SCRIPT_DIAGRAM = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs"
                  targetNamespace="http://certflow.test/scripted">
  <bpmn:process id="scripted" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="script"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="script"/>
    <bpmn:sequenceFlow id="f2" sourceRef="script" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def script_process(tmp_path: Path, script: str) -> Path:
    """A processes folder with one process, ``scripted``: start, one script task ``script``, end."""
    from xml.sax.saxutils import escape

    folder = tmp_path / "processes" / "scripted"
    folder.mkdir(parents=True)
    (folder / "scripted.bpmn").write_text(SCRIPT_DIAGRAM.format(script=escape(script)))
    return folder.parent


# -- engine --------------------------------------------------------------------------------
class Harness:
    """An engine plus the tools a test needs: users, an in-process job runner, the clock."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.published: list[Any] = []
        self.staff = Actor("office", ("office", "coordinator"), True)

    def user(self, username: str, groups: list[str], staff: bool = False, **extra: Any) -> Actor:
        with session_scope() as session:
            create_user(session, username, username.title(), groups, is_staff=staff, **extra)
        return Actor(username, tuple(groups), staff)

    def run_jobs(self, rounds: int = 20) -> list[str]:
        """Run every due job the way a worker would (unit tier; the integration tier uses a
        real Celery worker)."""
        outcomes = []
        for _ in range(rounds):
            with session_scope() as session:
                ids = session.execute(select(Job.id, Job.detached).where(
                    Job.status == "queued", Job.available_at <= self.engine.now()).order_by(Job.id)).all()
            if not ids and not self.engine.drain_messages():
                break
            # As the broker's message says (JobMessage.detached: an outbox job).
            outcomes += [self.engine.run_job(i, detached=detached) for i, detached in ids]
        return outcomes

    def advance(self, duration: str) -> None:
        from certflow.clock import parse_duration

        with session_scope() as session:
            CLOCK.advance(session, parse_duration(duration), allowed=True)
        self.engine.fire_due_timers()

    def jobs(self) -> list[Job]:
        with session_scope() as session:
            return list(session.scalars(select(Job).order_by(Job.id)))


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL statements the block runs on the test database, whitespace folded."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def db_effects() -> list[str]:
    """The values the chain process's database-only handler left (its ``db_effect`` messages)."""
    with session_scope() as s:
        return sorted(m.payload["value"] for m in s.scalars(select(Message).where(Message.name == "db_effect")))


def job_states() -> list[tuple[str, str]]:
    """Every job's element and status, oldest first."""
    with session_scope() as s:
        return [(j.element_id, j.status) for j in s.scalars(select(Job).order_by(Job.id))]


def save_fails_for(engine: Any, business_key: str, monkeypatch: Any) -> None:
    """Make saving ``business_key``'s advance fail (a diagram that breaks when its timer fires);
    every other instance saves as usual."""
    save = engine.save

    def failing(advance: Any, *args: Any) -> Any:
        if advance.instance.business_key == business_key:
            raise RuntimeError("the diagram broke")
        return save(advance, *args)

    monkeypatch.setattr(engine, "save", failing)
