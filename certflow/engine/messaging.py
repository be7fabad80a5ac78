"""Messages between processes, routed after commit.

A message thrown by a diagram and not caught inside it, or emitted by a handler for a fan-out,
is stored as a ``messages`` row in the transaction that produced it. ``drain_messages`` then
delivers each one — to the instance waiting for it (matched on any payload value, the way a
catch event's ``correlation`` names it), or by starting the process whose start event catches
it (the payload's ``business_key`` names the new instance). The row's status changes in the
same transaction as the delivery, so a crash in between delivers it again, never twice.

A backlog of messages that start instances (the yearly fee run's thousands) is started in
batches: up to ``start_batch`` picked in one transaction, each instance its own advance, their
rows written together (``_start_batch``). A batch commits whole or not at all; when one start
fails, the batch is started again one message per transaction, so that one fails alone.

A message published from outside (the API, a payment) when nobody waits yet can be buffered
with a time-to-live, as Zeebe does: it is correlated, once, when a subscription with its name
and correlation key opens (checked after every advance that opens a subscription, after
buffering, and by beat), and marked expired when its time is up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update

from certflow.clock import CLOCK, OFFSET_COLUMN
from certflow.engine import rules
from certflow.engine.errors import CertflowError, Conflict
from certflow.engine.projections import correlation_key, table_of
from certflow.engine.timers import insert_audit, saved_row, write_instances
from certflow.store.base import new_id
from certflow.store.db import dialect_insert
from certflow.store.models import Instance, Message, Subscription

if TYPE_CHECKING:
    from certflow.engine.runtime import Advance, Runtime

    _Base = Runtime
else:
    _Base = object

log = logging.getLogger(__name__)


def candidate_keys(payload: dict[str, Any]) -> list[str]:
    keys = [correlation_key(k, v) for k, v in payload.items() if isinstance(v, (str, int))]
    if isinstance(payload.get("business_key"), str):
        keys.append(correlation_key(None, payload["business_key"]))
    return keys


# One more than routed: it tells the drain whether to look again (see ``drain_messages``).
_NEXT_PENDING = (select(Message.id).where(Message.status == "pending").order_by(Message.id)
                 .limit(bindparam("size")))
_NEXT_PENDING_SKIP_LOCKED = _NEXT_PENDING.with_for_update(skip_locked=True)
# The same, reading the shared clock's offset in the same statement (the pick is the drain
# transaction's first read; a pick that finds nothing needs no time).
_NEXT_PENDING_CLOCK = _NEXT_PENDING.add_columns(OFFSET_COLUMN)
_NEXT_PENDING_SKIP_LOCKED_CLOCK = _NEXT_PENDING_SKIP_LOCKED.add_columns(OFFSET_COLUMN)
_MESSAGE = select(Message.name, Message.payload, Message.status).where(Message.id == bindparam("message_id"))
_TARGETS = select(Subscription.instance_id).where(Subscription.message_name == bindparam("name"),
                                                 Subscription.correlation_key.in_(bindparam("keys", expanding=True)))
# A batch of starts (``_start_plan``): the picked messages after the first, who waits for
# them, and which of their business keys run already.
_MESSAGES_OF = (select(Message.id, Message.name, Message.payload, Message.status)
                .where(Message.id.in_(bindparam("ids", expanding=True))).order_by(Message.id))
_WAITED_FOR = (select(Subscription.message_name, Subscription.correlation_key)
               .where(Subscription.message_name.in_(bindparam("names", expanding=True)),
                      Subscription.correlation_key.in_(bindparam("keys", expanding=True))))
_RUNNING_KEYS = (select(Instance.process_id, Instance.business_key)
                 .where(Instance.business_key.in_(bindparam("keys", expanding=True)), Instance.status == "running"))
_MESSAGES = table_of(Message)
# Buffered messages live at ``now`` that an open subscription waits for (correlate_buffered).
_BUFFERED_ALL = (select(Message.id, Subscription.instance_id)
                 .join(Subscription, (Subscription.message_name == Message.name)
                       & (Subscription.correlation_key == Message.correlation_key))
                 .where(Message.status == "buffered", Message.expires_at > bindparam("now")))
_BUFFERED = _BUFFERED_ALL.order_by(Message.id).limit(bindparam("limit"))
_BUFFERED_FOR = (_BUFFERED_ALL.where(Subscription.instance_id == bindparam("instance_id"))
                 .order_by(Message.id).limit(bindparam("limit")))
_STARTED = (update(_MESSAGES).where(_MESSAGES.c.id == bindparam("b_id"))
            .values(status="started", outcome=bindparam("outcome"), handled_at=bindparam("handled_at")))


class MessagingMixin(_Base):
    _draining = False
    # A drain was asked for while this one ran (a delivery threw a message): look again.
    _reentered = False
    # (latest definition ids, message name -> process it starts): see _message_start_process.
    _message_starts: tuple[tuple[int, ...], dict[str, str]] | None = None

    if TYPE_CHECKING:  # provided by the facade

        def _catch(self, adv: Advance, name: str, key: str, payload: dict[str, Any]) -> None: ...

        def create_instance(self, session: Any, definition: Any, username: str, business_key: str,
                            data: dict[str, Any], message: tuple[str, dict[str, Any], int | None] | None = None,
                            inline: bool = False, write_audit: bool = True, inserted: Instance | None = None
                            ) -> tuple[Advance, list[Any]]: ...

        def new_instance(self, definition: Any, username: str, business_key: str, data: dict[str, Any],
                         message: tuple[str, dict[str, Any], int | None] | None, now: Any) -> Instance: ...

        def start_in(self, session: Any, username: str, process_id: str, business_key: str, data: dict[str, Any],
                     message: tuple[str, dict[str, Any], int | None] | None = None, view: Any = None,
                     inline: bool = False) -> tuple[str, Callable[[], None]]: ...

    def drain_messages(self, limit: int = 10_000, inline: bool = False) -> int:
        """Route pending messages, oldest first. Re-entrant calls return at once: the outer
        loop picks up whatever the inner deliveries threw.

        ``inline``: the caller is a worker (beat's tick, a job's advance), so the advances that
        deliver or start run the database-only service tasks they reach inside themselves
        (certflow.engine.inline), as a job's advance does: a message-started register_fee
        instance makes its invoice in the advance that starts it, not in a job of its own.
        A web process drains with the default: it only writes the jobs.

        The loop stops when the pick saw no second pending message and no delivery asked for
        a drain, without a transaction that finds none (each advance that throws drains after
        its commit, so most drains route one message). A message committed meanwhile by
        another process is routed by the drain its writer runs after commit, or by beat's
        next tick, as one committed just after a final empty look would be."""
        if self._draining:
            self._reentered = True  # the loop below looks again for what this caller wrote
            return 0
        self._draining = True
        try:
            handled, more = 0, True
            while more and handled < limit:
                self._reentered = False
                found, more = self._route_next(inline, min(self.settings.start_batch, limit - handled))
                handled += found
                more = more or self._reentered
            return handled
        finally:
            self._draining = False

    def _route_next(self, inline: bool = False, size: int = 1) -> tuple[int, bool]:
        """Route the oldest pending message, or, when it starts an instance, up to ``size``
        oldest that all do (``_start_batch``). Returns how many were routed and whether
        another was pending when they were picked. They are picked and looked up (and, when
        nobody takes one, settled) in one transaction; messages that start instances start
        them in that same transaction too."""
        started: list[Callable[[], None]] = []
        starting: int | None = None
        batch: list[_Start] = []
        try:
            with self.session(clock=False) as session:  # the pick reads the clock
                read_clock = self.settings.clock_controllable
                if session.bind is not None and session.bind.dialect.name == "postgresql":
                    query = _NEXT_PENDING_SKIP_LOCKED_CLOCK if read_clock else _NEXT_PENDING_SKIP_LOCKED
                else:
                    query = _NEXT_PENDING_CLOCK if read_clock else _NEXT_PENDING
                rows = session.execute(query, {"size": size + 1}).all()
                if not rows:
                    return 0, False
                if read_clock:
                    CLOCK.refreshed(rows[0][1])
                picked = [row[0] for row in rows]
                message_id, more = picked[0], len(picked) > 1
                # Read under the pick's lock (SKIP LOCKED on PostgreSQL; SQLite's BEGIN IMMEDIATE
                # holds the database's): a status of pending here is still pending at commit.
                message = session.connection().execute(_MESSAGE, {"message_id": message_id}).one_or_none()
                if message is None or message.status != "pending":
                    return 1, more
                name, payload = message.name, dict(message.payload)
                targets = session.connection().execute(_TARGETS, {
                    "name": name, "keys": candidate_keys(payload)}).scalars().all()
                starts = None if targets else self._message_start_process(session, name)
                if not targets and not starts:  # settled here, under that lock: no claim of its own
                    _mark(session, message_id, "unrouted",
                          f"nobody waits for {name!r} and no process starts on it", self.now())
                    return 1, more
                if starts:
                    if size > 1 and more:
                        batch = self._start_plan(session, _Start(message_id, name, payload, starts),
                                                 list(picked[1:size]))
                    starting = message_id
                    if len(batch) > 1:
                        started = self._start_batch(session, batch, inline)
                    else:
                        started = [self._start_on(session, starts, name, payload, message_id, inline)]
        except Exception as exc:
            if starting is None:
                raise
            if len(batch) > 1:  # rolled back, all of it: each again in a transaction of its own
                log.info("a batch of %d starts failed (%s); starting them one by one", len(batch), exc)
                return self._route_one_by_one(len(batch), inline)
            self._routing_failed(starting, exc)  # rolled back with the pick: settled on its own
            return 1, more
        if started:
            for committed in started:
                committed()
            routed = max(len(batch), 1)
            return routed, len(picked) > routed
        try:
            # The first delivery claims the message (pending -> delivered) in its own
            # transaction; a drainer that loses that race delivers to nobody.
            for n, instance_id in enumerate(dict.fromkeys(targets)):
                with self.advancing(instance_id, f"message:{name}", inline=inline) as adv:
                    if n == 0:
                        claim(adv.session, message_id)
                    self._catch_any(adv, name, payload)
                    _mark(adv.session, message_id, "delivered", f"to {instance_id}", adv.now)
        except Exception as exc:
            self._routing_failed(message_id, exc)
        return 1, more

    def _route_one_by_one(self, count: int, inline: bool) -> tuple[int, bool]:
        """Route up to ``count`` of the oldest pending messages, each in its own transaction."""
        routed, more = 0, True
        while more and routed < count:
            found, more = self._route_next(inline)
            routed += found
        return routed, more

    # -- a batch of starts -------------------------------------------------------------------
    def _start_plan(self, session: Any, first: _Start, following: list[int]) -> list[_Start]:
        """``first`` and those of the ``following`` picked messages (locked by the pick, in
        order) that start an instance too, up to the first that does not: one that someone
        waits for, that starts nothing, that carries no business key, or whose key is taken
        (running, or earlier in the batch). That one is routed on its own, as before."""
        if not _valid_key(first.payload.get("business_key")):
            return [first]  # refused on its own, with the reason
        rows = session.execute(_MESSAGES_OF, {"ids": following}).all()
        keys = {key for row in rows for key in candidate_keys(dict(row.payload))}
        waited = set(session.execute(_WAITED_FOR, {"names": sorted({row.name for row in rows}),
                                                   "keys": sorted(keys)}).tuples()) if keys else set()
        batch, taken = [first], {(first.process_id, first.payload.get("business_key"))}
        processes: dict[str, str | None] = {first.name: first.process_id}
        for row in rows:
            payload = dict(row.payload)
            if row.name not in processes:
                processes[row.name] = self._message_start_process(session, row.name)
            process_id, key = processes[row.name], payload.get("business_key")
            if (row.status != "pending" or process_id is None or not _valid_key(key) or (process_id, key) in taken
                    or any((row.name, k) in waited for k in candidate_keys(payload))):
                break
            taken.add((process_id, key))
            batch.append(_Start(row.id, row.name, payload, process_id))
        if len(batch) < 2:
            return batch
        running = set(session.execute(_RUNNING_KEYS, {"keys": sorted({s.payload["business_key"] for s in batch})})
                      .tuples())
        for n, start in enumerate(batch):
            if (start.process_id, start.payload["business_key"]) in running:
                return batch[:n]  # refused on its own (already running), with the reason
        return batch

    def _start_batch(self, session: Any, batch: list[_Start], inline: bool) -> list[Callable[[], None]]:
        """Start an instance per message of ``batch`` (``_start_plan``) in this transaction:
        each is an advance of its own (workflow, engine, inline service tasks, projections),
        and their messages, instance rows and audit rows are written together at the end.
        Any failure raises and rolls all of it back (the caller then starts them one by one,
        so a failing one fails alone, as it always did); nothing is published before commit."""
        postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
        done: list[tuple[Advance, list[Any]]] = []
        definitions: dict[str, Any] = {}
        for process_id in {start.process_id for start in batch}:
            definitions[process_id] = self.definition(session, rules.latest_id(session, process_id))
        now = self.now()
        # Their rows first, in one INSERT (the projections' rows refer to them); they stay
        # out of the session: the batch writes their saved state below, as timers do.
        instances = [self.new_instance(definitions[start.process_id], f"message:{start.name}",
                                       start.payload["business_key"], {}, (start.name, start.payload, None), now)
                     for start in batch]
        for instance in instances:
            instance.id, instance.version, instance.has_incident = new_id(), 1, False
        session.connection().execute(_INSERT_INSTANCES, [_new_row(instance) for instance in instances])
        for n, (start, instance) in enumerate(zip(batch, instances)):
            advance, published = self.create_instance(
                session, definitions[start.process_id], f"message:{start.name}", start.payload["business_key"],
                {}, (start.name, start.payload, None), inline=inline, write_audit=False, inserted=instance)
            if _waits_for_later(advance, batch[n + 1:]):
                raise Conflict(f"instance {advance.instance.id} waits for a message later in its batch")
            done.append((advance, published))
        write_instances(session, [saved_row(advance.instance) for advance, _ in done], postgres)
        insert_audit(session, [event for advance, _ in done for event in advance.events], postgres)
        session.connection().execute(_STARTED, [
            {"b_id": start.message_id, "outcome": f"started {advance.instance.id}", "handled_at": now}
            for start, (advance, _) in zip(batch, done)])
        for advance, _ in done:
            advance.instance.version += 1  # detached: what its row now holds

        def committed(advance: Advance, published: list[Any]) -> Callable[[], None]:
            def after() -> None:
                self._checkin(advance.instance, advance.workflow, advance.states)
                self.after_commit(advance, published)
            return after

        return [committed(advance, published) for advance, published in done]

    def _routing_failed(self, message_id: int, exc: Exception) -> None:
        if isinstance(exc, AlreadyRouted):
            return  # another drainer routed it meanwhile: its outcome stands
        if isinstance(exc, CertflowError):
            self._settle(message_id, "failed", exc.message)
            return
        # A broken diagram must not stop the other messages.
        log.error("routing message %s failed", message_id, exc_info=exc)
        self._settle(message_id, "failed", f"{type(exc).__name__}: {exc}")

    def _start_on(self, session: Any, process_id: str, name: str, payload: dict[str, Any], message_id: int,
                  inline: bool) -> Callable[[], None]:
        key = payload.get("business_key")
        if not isinstance(key, str) or not key:
            raise Conflict(f"message {name!r} starts {process_id} but carries no business_key")
        return self.start_in(session, f"message:{name}", process_id, key, {}, (name, payload, message_id),
                             inline=inline)[1]

    def _settle(self, message_id: int, status: str, outcome: str) -> None:
        with self.session() as session:
            try:
                claim(session, message_id)
            except AlreadyRouted:
                return  # another drainer routed it meanwhile: its outcome stands
            _mark(session, message_id, status, outcome, self.now())

    def _message_start_process(self, session: Any, name: str) -> str | None:
        """The process whose latest version starts on message ``name``. Deployed versions never
        change, so the map from message to process is kept per set of latest versions: a
        deploy changes that set, and only then is it made again (from the elements the
        runtime keeps by version: ``latest_elements`` reads the latest versions' ids only)."""
        latest = self.latest_elements(session)
        ids = tuple(sorted(definition_id for definition_id, _ in latest.values()))
        if self._message_starts is None or self._message_starts[0] != ids:
            starts: dict[str, str] = {}
            for process_id, (_, elements) in latest.items():  # by process id: the first wins a tie
                for element in elements.values():
                    if element.get("type") == "StartEvent" and element.get("message"):
                        starts.setdefault(element["message"], process_id)
            self._message_starts = (ids, starts)
        return self._message_starts[1].get(name)

    def _catch_any(self, adv: Any, name: str, payload: dict[str, Any]) -> None:
        keys = set(candidate_keys(payload))
        for key in keys:
            try:
                self._catch(adv, name, key, payload)
                return
            except Conflict:
                continue
        raise Conflict(f"instance {adv.instance.id} stopped waiting for {name!r}")


    # -- buffering (Zeebe's model) ---------------------------------------------------------------
    def after_commit(self, advance: Advance, published: list[Any]) -> None:
        super().after_commit(advance, published)
        # Only a subscription this advance opened can match a message buffered before it: one
        # that was open already was looked up after the advance that opened it (and beat looks
        # again, should that process have died in between). No second walk of the tree either.
        # Live at the moment the subscription opened (the advance's), read in one statement.
        if advance.instance.status == "running" and advance.subscribed:
            self.correlate_buffered(advance.instance.id, now=advance.now)

    def buffer_message(self, name: str, key: str, payload: dict[str, Any], ttl: timedelta, actor: str) -> int:
        """Keep a message nobody waits for yet until ``ttl`` has passed; the instance whose
        subscription (name + correlation key) opens in that time receives it, once."""
        with self.session() as session:
            now = self.now()
            message = Message(name=name, payload=payload, status="buffered", correlation_key=key,
                              expires_at=now + ttl, created_at=now,
                              outcome=f"published by {actor} before anyone waited")
            session.add(message)
            session.flush()
            message_id = message.id
        # A subscription that opened while this was being stored saw no message: look again now
        # that it is committed. (Whichever of the two commits last finds the other.)
        self.correlate_buffered()
        return message_id

    def correlate_buffered(self, instance_id: str | None = None, limit: int = 1000,
                           now: datetime | None = None) -> int:
        """Deliver each buffered message live at ``now`` (default: the clock's) to an instance
        now waiting for it (this one's, or any); beat calls this too, so a crash between commit
        and delivery loses nothing. The look-up is one read on its own snapshot (``reading``),
        no transaction: after every advance that opened a subscription it ran as BEGIN, a
        clock read, the query and COMMIT. Each delivery is an advance of its own that claims
        the message first, so a message seen here is still delivered once."""
        with self.reading(clock=now is None) as session:
            query, params = _BUFFERED, {"now": now or self.now(), "limit": limit}
            if instance_id is not None:
                query, params["instance_id"] = _BUFFERED_FOR, instance_id
            pairs = session.connection().execute(query, params).all()
        return sum(self._deliver_buffered(message_id, target) for message_id, target in pairs)

    def _deliver_buffered(self, message_id: int, instance_id: str) -> int:
        try:
            with self.advancing(instance_id, "message:buffered") as adv:
                claim(adv.session, message_id, "buffered")  # a second correlator stops here
                message = adv.session.get(Message, message_id)
                assert message is not None and message.correlation_key is not None
                self._catch(adv, message.name, message.correlation_key, dict(message.payload))
                _mark(adv.session, message_id, "delivered", f"to {instance_id} (buffered)", adv.now)
        except (AlreadyRouted, Conflict):
            return 0  # delivered by someone else, or the instance stopped waiting meanwhile
        return 1

    def expire_buffered(self) -> int:
        """Buffered messages past their time-to-live are kept, marked expired, never delivered."""
        with self.session() as session:
            now = self.now()
            result = session.execute(update(Message).where(
                Message.status == "buffered", Message.expires_at <= now).values(
                status="expired", handled_at=now, outcome="nobody waited for it within its time-to-live"))
            return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class _Start:
    """A picked message that starts an instance of ``process_id``."""

    message_id: int
    name: str
    payload: dict[str, Any]
    process_id: str


_INSTANCES = table_of(Instance)
_INSERT_INSTANCES = insert(_INSTANCES)


def _new_row(instance: Instance) -> dict[str, Any]:
    return {column.key: getattr(instance, column.key) for column in _INSTANCES.columns}


def _valid_key(key: Any) -> bool:
    """A business key ``start_in`` accepts."""
    return isinstance(key, str) and 0 < len(key) <= 200


def _waits_for_later(advance: Any, later: list[_Start]) -> bool:
    """The instance just started waits for one of the batch's later messages: routed one by
    one, that message would be delivered to it, not start an instance of its own."""
    subscribed = {(name, key) for name, key in (advance.instance.projected or {}).get("subs") or []}
    return bool(subscribed) and any((s.name, key) in subscribed for s in later for key in candidate_keys(s.payload))


class AlreadyRouted(Exception):
    """Another drainer took this message first."""


def claim(session: Any, message_id: int, expected: str = "pending") -> None:
    """Lock the message row in this transaction and make sure it is still ``expected``."""
    status = session.scalar(select(Message.status).where(Message.id == message_id).with_for_update())
    if status != expected:
        raise AlreadyRouted(message_id)


_MARK = (update(_MESSAGES).where(_MESSAGES.c.id == bindparam("b_id"))
         .values(status=bindparam("b_status"), outcome=bindparam("b_outcome"), handled_at=bindparam("b_handled_at")))


def _mark(session: Any, message_id: int, status: str, outcome: str, now: Any) -> None:
    """Record a routed message's outcome: one Core UPDATE (the message is a committed row, its
    status read under lock by ``claim``), no ORM object to load and flush."""
    session.connection().execute(_MARK, {"b_id": message_id, "b_status": status, "b_outcome": outcome,
                                         "b_handled_at": now})


def emit(session: Any, name: str, payload: dict[str, Any], now: Any, idempotency_key: str | None = None,
         source_instance_id: str | None = None) -> bool:
    """Queue a message (a handler's fan-out). False when this key was queued before."""
    if idempotency_key and session.scalar(select(Message.id).where(Message.idempotency_key == idempotency_key)):
        return False
    with session.begin_nested():
        session.add(Message(idempotency_key=idempotency_key, name=name, payload=payload,
                            source_instance_id=source_instance_id, status="pending", created_at=now))
    session.info["emitted"] = session.info.get("emitted", 0) + 1  # the runner drains after commit
    return True


def emit_many(session: Any, name: str, keyed: list[tuple[str, dict[str, Any]]], now: Any,
              source_instance_id: str | None = None) -> int:
    """Queue many keyed messages with one read and one bulk INSERT; keys queued before (by
    an earlier or a concurrent run) are skipped. Returns how many were queued now."""
    fresh = dict(keyed)  # one message per key, however often it is named
    if not fresh:
        return 0
    known = set(session.scalars(select(Message.idempotency_key).where(Message.idempotency_key.in_(fresh))))
    rows = [dict(idempotency_key=key, name=name, payload=payload, source_instance_id=source_instance_id,
                 status="pending", created_at=now) for key, payload in fresh.items() if key not in known]
    if not rows:
        return 0
    statement = (dialect_insert(session)(Message).on_conflict_do_nothing(index_elements=["idempotency_key"])
                 .returning(Message.id))
    queued = len(session.execute(statement, rows).all())
    session.info["emitted"] = session.info.get("emitted", 0) + queued  # drained after commit
    return queued


__all__ = ["MessagingMixin", "emit", "emit_many", "Instance"]
