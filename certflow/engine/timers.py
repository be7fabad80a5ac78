"""Due timers, fired in bulk: the scheduler's side of the runtime (beat's tick drives it).

An instance whose earliest timer is due (``instances.next_due_at``, a projection) is picked
and locked with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so schedulers running side by side
(ticks on several worker processes, two beats) take disjoint instances and none fires twice;
on SQLite every writer holds the database lock (``BEGIN IMMEDIATE``). A batch of instances is
advanced in one transaction: each is an advance of its own (restore, engine, projections,
audit), and their instance rows and audit rows are written together, once per batch, with
each row's optimistic version still checked. A process killed mid-batch commits nothing: its
instances stay due and the next tick fires them.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from certflow.engine.dto import JobMessage
from certflow.engine.projections import table_of
from certflow.engine.runtime import AUDIT_INSERT
from certflow.store.models import Incident, Instance

if TYPE_CHECKING:
    from certflow.engine.runtime import Advance, Runtime

    _Base = Runtime
else:
    _Base = object

log = logging.getLogger(__name__)


class TimersMixin(_Base):
    def fire_due_timers(self, limit: int | None = 500, budget_seconds: float | None = None) -> int:
        """Advance instances whose earliest timer is due, in due order, until ``limit`` fired,
        ``budget_seconds`` passed or none is due. Returns how many were advanced.

        Batched: each transaction picks up to ``timer_batch`` due instances and locks them
        (see the module docstring). Nothing is published before a batch's commit."""
        fired = 0
        deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
        while limit is None or fired < limit:
            batch = self.settings.timer_batch if limit is None else min(self.settings.timer_batch, limit - fired)
            n = self._fire_batch(batch)
            fired += n
            if n < batch or (deadline is not None and time.monotonic() >= deadline):
                break
        return fired

    def _fire_batch(self, size: int) -> int:
        """One batch, all in one transaction. Normally without savepoints (they cost two round
        trips per instance) and with the rows of the whole batch written together; if any
        advance fails, the whole batch is rolled back and fired again with a savepoint per
        instance, so the failing one alone gets its incident and the others still fire."""
        try:
            return self._fire(size, isolated=False)
        except _Isolate:
            return self._fire(size, isolated=True)

    def _fire(self, size: int, isolated: bool) -> int:
        done: list[tuple[Advance, list[JobMessage]]] = []
        with self.session() as session:
            session.autoflush = False
            postgres = _is_postgres(session)
            instances = session.scalars(_DUE_PG if postgres else _DUE, {"now": self.now(), "size": size}).all()
            saved = []
            for instance in instances:
                if not isolated:
                    try:
                        done.append(self._fire_one(session, instance, write_audit=False))
                    except Exception as exc:
                        raise _Isolate from exc
                    # Out of the unit of work: the next advance's flush would write this row
                    # alone; the batch writes all of them in one statement below.
                    saved.append(saved_row(instance))
                    session.expunge(instance)
                    continue
                try:
                    with session.begin_nested():
                        done.append(self._fire_one(session, instance, write_audit=True))
                        session.flush()  # the instance row too, so a stale version fails here
                except Exception as exc:
                    self._timer_incident(session, instance.id, exc)
            if saved:
                write_instances(session, saved, postgres)
                for advance, _ in done:
                    advance.instance.version += 1  # detached: what the row now holds
            events = [] if isolated else [event for advance, _ in done for event in advance.events]
            if events:
                insert_audit(session, events, postgres)
        for advance, published in done:
            self._checkin(advance.instance, advance.workflow, advance.states)
            self.after_commit(advance, published)
        return len(instances)

    def _fire_one(self, session: Session, instance: Instance, write_audit: bool) -> tuple[Advance, list[JobMessage]]:
        advance, before = self.open_advance(session, instance, "timer")
        # do_engine_steps refreshes timers only at its end, so the due timer would cost a
        # second engine round; refreshing first runs it in the first (same outcome).
        advance.workflow.refresh_timers()
        advance.audit("timers_checked")
        return advance, self.save(advance, before, write_audit)

    def _timer_incident(self, session: Session, instance_id: str, exc: Exception) -> None:
        log.exception("timer advance of %s failed", instance_id)
        instance = session.get(Instance, instance_id)
        if instance is None:
            return
        instance.next_due_at, instance.has_incident = None, True  # stop re-firing until resolved
        session.add(Incident(instance_id=instance_id, task_id="", element_id="(timer)", operator="engine",
                             error=str(exc), traceback=traceback.format_exc(), attempts=1,
                             status="open", created_at=self.now()))
        session.flush()


class _Isolate(Exception):
    """An advance in a timer batch failed: fire the batch again, each in its own savepoint."""


def _is_postgres(session: Session) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


# Built once (statement construction and its cache key cost more than a small batch's rows).
_DUE = (select(Instance).where(Instance.status == "running", Instance.next_due_at <= bindparam("now"))
        .order_by(Instance.next_due_at).limit(bindparam("size")))
_DUE_PG = _DUE.with_for_update(skip_locked=True)

_SAVED = ("state", "serializer_version", "next_due_at", "projected", "status", "ended_at", "updated_at",
          "has_incident")
_INSTANCES = table_of(Instance)
_WRITE = (update(_INSTANCES)
          .where(_INSTANCES.c.id == bindparam("b_id"), _INSTANCES.c.version == bindparam("b_version"))
          .values(version=_INSTANCES.c.version + 1, **{c: bindparam(c, type_=_INSTANCES.c[c].type) for c in _SAVED}))
# PostgreSQL: a batch's rows in one statement, handed over as one JSON document the server
# unpacks (json_to_recordset). Per row this costs the client about half of what the
# executemany costs (statement parameters per row, then a pipeline message each) and the
# server one statement to plan instead of one per row. The WHERE keeps each row's version check.
_WRITE_PG = text("""
UPDATE instances AS i SET version = i.version + 1, state = v.state, serializer_version = v.serializer_version,
       next_due_at = v.next_due_at, projected = v.projected, status = v.status, ended_at = v.ended_at,
       updated_at = v.updated_at, has_incident = v.has_incident
FROM json_to_recordset(CAST(:rows AS json)) AS v(
       b_id varchar, b_version integer, state json, serializer_version varchar, next_due_at timestamptz,
       projected json, status varchar, ended_at timestamptz, updated_at timestamptz, has_incident boolean)
WHERE i.id = v.b_id AND i.version = v.b_version
""")
_AUDIT_PG = text("""
INSERT INTO audit_events (instance_id, task_id, element_id, actor, action, detail, at)
SELECT instance_id, task_id, element_id, actor, action, detail, at FROM json_to_recordset(CAST(:rows AS json))
    AS v(instance_id varchar, task_id varchar, element_id varchar, actor varchar, action varchar, detail json,
         at timestamptz)
""")
_TIMES = ("next_due_at", "ended_at", "updated_at", "at")


def saved_row(instance: Instance) -> dict[str, Any]:
    return {"b_id": instance.id, "b_version": instance.version, **{c: getattr(instance, c) for c in _SAVED}}


def write_instances(session: Session, rows: list[dict[str, Any]], postgres: bool) -> None:
    """Write a batch of saved instances, each only if it still has the version it was read at
    (the optimistic lock the ORM keeps for one row, kept here for many)."""
    if postgres:
        result = session.connection().execute(_WRITE_PG, {"rows": _as_json(rows)})
    else:
        result = session.connection().execute(_WRITE, rows)
    if result.rowcount != len(rows):
        raise StaleDataError(f"{len(rows) - result.rowcount} of {len(rows)} timer instances changed meanwhile")


def insert_audit(session: Session, events: list[dict[str, Any]], postgres: bool) -> None:
    """A batch's audit rows, in one statement."""
    if postgres:
        session.connection().execute(_AUDIT_PG, {"rows": _as_json(events)})
    else:
        session.connection().execute(AUDIT_INSERT, events)


def _as_json(rows: list[dict[str, Any]]) -> str:
    """Rows as one JSON array, datetimes as ISO 8601 with their offset. A naive datetime is
    refused, as UTCDateTime refuses it on the ORM path (the server would read it in its own
    time zone)."""
    def default(value: Any) -> str:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            return value.isoformat()
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    return json.dumps(rows, default=default)
