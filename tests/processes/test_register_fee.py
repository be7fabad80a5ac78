"""The yearly register fee, processes/register_fee_run (the 1 January fan-out) and
processes/register_fee (one professional's invoice, reminders and the office's escalation),
through the real store and handlers — in-process jobs on SQLite, and a real Celery worker on
PostgreSQL + Redis. The fan-out at scale runs in-process only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

import handlers
from bench.register_fee import add_professionals
from certflow.bootstrap import build_engine
from certflow.clock import CLOCK, parse_duration
from certflow.settings import get_settings
from certflow.store.billing import Invoice
from certflow.store.db import session_scope
from certflow.store.models import Instance, Job, Message
from certflow.store.register import RegisterEntry
from certflow.services.register_fee import reference_year
from tests.processes.conftest import ADDRESS
from tests.processes.driver import PROCESSES, Driver, candidate_term_end
from tests.support import Harness

# The clock starts at the real date (late November 2026): the first run is 1 January 2027.
FIRST_RUN = datetime(2026, 12, 31, 23, 0, tzinfo=timezone.utc)  # 00:00 in Amsterdam
STATUS_OPERATORS = {"suspended": "register/suspend", "withdrawn": "register/withdraw"}


# -- helpers ---------------------------------------------------------------------------------
def professional(d: Driver, username: str, status: str = "valid", **issue: Any) -> None:
    """A certified professional entered in the Register through the real handlers, then moved
    to ``status`` the way the lifecycle processes would."""
    d.person(username, ["candidate"], address=ADDRESS)
    with session_scope() as s:
        def run(operator: str, params: dict[str, Any]) -> dict[str, Any]:
            ctx = handlers.HandlerContext(session=s, now=d.engine.now(), settings=get_settings(),
                                          idempotency_key=f"seed:{operator}:{username}")
            return handlers.get(operator)(ctx, params)

        cert = run("certificates/issue", {"holder": username, **issue})
        run("register/enter", {"holder": username, "certificate_id": cert["certificate_id"]})
        if status == "recertification_running":
            run("register/recertification_started", {"holder": username})
        elif status == "lapsed":
            run("register/lapse", {"holder": username})
        elif status in STATUS_OPERATORS:
            run(STATUS_OPERATORS[status], {"holder": username, "reason": "test"})
    assert register_status(username) == status


def register_status(holder: str) -> str:
    with session_scope() as s:
        return s.scalars(select(RegisterEntry.status).where(RegisterEntry.holder == holder)).one()


def fee_instances(year: int | None = None) -> dict[str, str]:
    """business key -> status of the register_fee instances (of ``year``)."""
    with session_scope() as s:
        rows = s.execute(select(Instance.business_key, Instance.status)
                         .where(Instance.process_id == "register_fee")).tuples().all()
    return {k: v for k, v in rows if year is None or k.startswith(f"fee-{year}-")}


def invoices(kind: str = "invoice") -> list[Invoice]:
    with session_scope() as s:
        return list(s.scalars(select(Invoice).where(Invoice.kind == kind).order_by(Invoice.id)
                              .options(selectinload(Invoice.lines))))


def invoice_of(holder: str, year: int = 2027) -> Invoice:
    [found] = [i for i in fees(year) if i.customer_username == holder]
    return found


def fees(year: int) -> list[Invoice]:
    return [i for i in invoices() if i.reference == f"Registerbijdrage {year}"]


def fee_instance_id(holder: str, year: int = 2027) -> str:
    with session_scope() as s:
        return s.scalars(select(Instance.id).where(Instance.business_key == f"fee-{year}-{holder}")).one()


def started_twice() -> list[str]:
    """Business keys with more than one register_fee instance."""
    with session_scope() as s:
        return list(s.scalars(select(Instance.business_key).where(Instance.process_id == "register_fee")
                              .group_by(Instance.business_key).having(func.count() > 1)))


def pay(d: Driver, holder: str, year: int = 2027) -> None:
    invoice = invoice_of(holder, year)
    d.engine.deliver_message(d.people["olga"], "payment_received", {"amount": str(invoice.gross_total)},
                             correlation={"invoice_number": invoice.number})
    d.settle()


def run_again(d: Driver, key: str) -> dict[str, Any]:
    """The fan-out handler once more, as a retried job or a second run in the same year would."""
    with session_scope() as s:
        ctx = d.engine.handler_context(s, key)
        result = handlers.get("register_fee/fan_out")(ctx, {})
    d.engine.drain_messages()
    d.settle()
    return result


def run_results(d: Driver) -> list[dict[str, Any]]:
    """What each firing of the standing schedule instance reported (``fee_run``)."""
    with session_scope() as s:
        schedule = s.scalars(select(Instance).where(Instance.process_id == "register_fee_run",
                                                    Instance.business_key == "schedule")).one()
        workflow = d.engine.restore(schedule, d.engine.definition(s, schedule.definition_id))
    # Each firing is a completed branch under the start event, which itself keeps waiting.
    ends = [t for t in workflow.get_tasks()
            if t.task_spec.bpmn_id == "end" and t.state == TaskState.COMPLETED]
    return sorted((t.data["fee_run"] for t in ends), key=lambda r: r["year"])


def one_unpaid(d: Driver, holder: str = "pia") -> str:
    """One professional in the register, invoiced on 1 January 2027 (clock at 7 January)."""
    professional(d, holder)
    d.later("P40D")
    assert fee_instances() == {f"fee-2027-{holder}": "running"} and started_twice() == []
    return fee_instance_id(holder)


def until_escalated(d: Driver, deadline: datetime) -> None:
    d.until(deadline + timedelta(minutes=10))  # both reminders and the payment term
    assert [t.element_id for t in d.inbox("olga")] == ["handle_unpaid"]


# -- the yearly run --------------------------------------------------------------------------
def test_reference_year_is_the_dutch_new_year() -> None:
    assert reference_year(datetime(2027, 1, 1, 0, 5, tzinfo=timezone.utc)) == 2027
    # 23:30 UTC on 31 December is already 1 January in Amsterdam.
    assert reference_year(datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc)) == 2027
    # After a leap year the 365-day cycle fires on 31 December: that run is for the coming year.
    assert reference_year(datetime(2028, 12, 30, 23, 0, tzinfo=timezone.utc)) == 2029
    assert reference_year(datetime(2027, 6, 30, 12, 0, tzinfo=timezone.utc)) == 2027


def test_yearly_run_invoices_everyone_in_the_register_once(driver: Driver) -> None:
    d = driver
    for name in ("pia", "pim"):
        professional(d, name)
    professional(d, "pam", "recertification_running")
    professional(d, "lex", "lapsed")
    professional(d, "wim", "withdrawn")
    professional(d, "sus", "suspended")
    # Valid on paper but expires on 31 December, the day before the reference date.
    professional(d, "eva", valid_from="2023-12-31", valid_years=3)
    with session_scope() as s:
        [(key, status, due)] = s.execute(select(Instance.business_key, Instance.status, Instance.next_due_at)
                                         .where(Instance.process_id == "register_fee_run")).tuples().all()
    assert (key, status) == ("schedule", "running")
    assert due is not None and due.replace(tzinfo=timezone.utc) == FIRST_RUN

    d.later("P40D")  # 7 January 2027
    assert started_twice() == []  # one instance per message, even with two routers (PostgreSQL)
    assert fee_instances() == {f"fee-2027-{p}": "running" for p in ("pam", "pia", "pim")}
    assert run_results(d) == [{"year": 2027, "reference_date": "2027-01-01", "count": 3, "queued": 3}]
    billed = invoices()
    assert sorted(i.customer_username for i in billed) == ["pam", "pia", "pim"]
    for invoice in billed:
        amounts = (str(invoice.net_total), str(invoice.vat_total), str(invoice.gross_total))
        assert amounts == ("133.00", "27.93", "160.93")
        assert (invoice.reference, invoice.supply_date) == ("Registerbijdrage 2027", date(2027, 1, 1))
        assert invoice.status == "open"
        assert [line.product for line in invoice.lines] == ["register_fee"]
    for name in ("pia", "pim", "pam"):
        assert d.emails(name) == ["register_fee/invoice_sent"]
    for name in ("lex", "wim", "sus", "eva"):
        assert d.emails(name) == []

    # A retried job or a second run in the same year queues nothing and invoices nobody twice.
    assert run_again(d, "second-run")["queued"] == 0
    assert len(invoices()) == 3 and len(fee_instances()) == 3

    pay(d, "pia")
    d.later("P365D")  # 7 January 2028: the next year's run
    assert set(fee_instances(2028)) == {"fee-2028-pam", "fee-2028-pia", "fee-2028-pim"}
    assert started_twice() == []
    assert [r["year"] for r in run_results(d)] == [2027, 2028]
    assert sorted(i.customer_username for i in fees(2028)) == ["pam", "pia", "pim"]
    with session_scope() as s:
        statuses = s.execute(select(Message.status, func.count()).where(Message.name == "register_fee_due")
                             .group_by(Message.status)).tuples().all()
    assert statuses == [("started", 6)]


# -- one professional ------------------------------------------------------------------------
def test_paid_fee_is_thanked_and_completes(driver: Driver) -> None:
    d = driver
    instance_id = one_unpaid(d)
    pay(d, "pia")
    assert d.emails("pia") == ["register_fee/invoice_sent", "register_fee/payment_received"]
    assert d.engine.instance(d.people["olga"], instance_id).status == "completed"
    # The professional follows their own fee (the start event's subject is the holder).
    mine = d.engine.instances(d.people["pia"], "register_fee")
    assert {r["business_key"] for r in mine} == {"fee-2027-pia"}
    d.later("P30D")
    assert "register_fee/payment_reminder" not in d.emails("pia")
    assert register_status("pia") == "valid"


def test_unpaid_fee_reminders_then_office_suspends(driver: Driver) -> None:
    d = driver
    instance_id = one_unpaid(d)
    deadline = candidate_term_end(d.engine.now(), "P60D")  # 60 days, or through the next working day
    d.later("P22D")
    assert d.emails("pia").count("register_fee/payment_reminder") == 1
    d.later("P21D")
    assert d.emails("pia").count("register_fee/payment_reminder") == 2
    d.until(deadline - timedelta(minutes=10))
    assert d.inbox("olga") == []
    d.until(deadline + timedelta(minutes=10))  # past the payment term
    [task] = d.inbox("olga")
    assert (task.element_id, task.title) == ("handle_unpaid", "Onbetaalde registerbijdrage")
    assert task.context["holder"] == "pia" and task.context["year"] == 2027
    assert task.context["invoice_number"] == invoice_of("pia").number
    with pytest.raises(Exception):  # suspending needs a note: it goes into the Register history
        d.engine.complete(d.people["olga"], task.id, {"action": "suspend", "note": ""})
    d.do("olga", "handle_unpaid", {"action": "suspend", "note": "Niet bereikbaar"})
    assert register_status("pia") == "suspended"
    assert d.emails("pia")[-1] == "register_fee/suspended"
    assert d.emails("pia").count("register_fee/payment_reminder") == 2
    assert d.engine.instance(d.people["olga"], instance_id).status == "completed"
    d.later("P300D")  # past 1 January 2028: a suspended professional is not invoiced
    assert fee_instances(2028) == {}


def test_unpaid_fee_written_off_with_a_credit_note(driver: Driver) -> None:
    d = driver
    instance_id = one_unpaid(d)
    until_escalated(d, candidate_term_end(d.engine.now(), "P60D"))
    d.do("olga", "handle_unpaid", {"action": "write_off", "note": "Overleden; nabestaanden geïnformeerd"})
    [note] = invoices("credit_note")
    original = invoice_of("pia")
    assert note.credits_invoice_id == original.id and str(note.gross_total) == "-160.93"
    assert original.status == "credited"
    assert d.emails("pia")[-1] == "register_fee/written_off"
    assert register_status("pia") == "valid"
    assert d.engine.instance(d.people["olga"], instance_id).status == "completed"


def test_reminded_by_phone_waits_again_then_paid_during_escalation(driver: Driver) -> None:
    d = driver
    instance_id = one_unpaid(d)
    until_escalated(d, candidate_term_end(d.engine.now(), "P60D"))
    reminders = d.emails("pia").count("register_fee/payment_reminder")
    d.do("olga", "handle_unpaid", {"action": "reminded_by_phone", "note": "Betaalt deze week"})
    deadline = candidate_term_end(d.engine.now(), "P60D")
    view = d.engine.instance(d.people["olga"], instance_id)
    assert view.status == "running" and d.inbox("olga") == []
    assert view.waiting_for == [f"payment_received (invoice_number={invoice_of('pia').number})"]
    d.later("P22D")  # the wait starts over: reminders again ...
    assert d.emails("pia").count("register_fee/payment_reminder") == reminders + 1
    d.until(deadline + timedelta(minutes=10))  # ... and a new payment term
    assert [t.element_id for t in d.inbox("olga")] == ["handle_unpaid"]
    pay(d, "pia")  # the payment arrives while the office has the task
    assert d.inbox("olga") == []
    assert d.emails("pia")[-1] == "register_fee/payment_received"
    assert d.engine.instance(d.people["olga"], instance_id).status == "completed"


# -- scale (in-process only) -----------------------------------------------------------------
@pytest.fixture
def inprocess(sqlite_url: str) -> Iterator[Driver]:
    """The driver's in-process tier without coverage recording (2,000 instances to restore
    would only slow the check down; the paths are walked by the tests above)."""
    harness = Harness(build_engine())
    d = Driver(harness)
    harness.engine.deploy(harness.staff, PROCESSES, only=["register_fee", "register_fee_run"])
    d.person("olga", ["office"], staff=True)
    yield d


def test_one_fee_invoice_per_professional_and_year_whatever_runs_it(inprocess: Driver) -> None:
    d = inprocess
    professional(d, "pia")
    with session_scope() as s:
        results = [handlers.get("register_fee/create_invoice")(
            handlers.HandlerContext(session=s, now=d.engine.now(), idempotency_key=job, settings=get_settings()),
            {"holder": "pia", "year": 2027}) for job in ("instance-a:task:1", "instance-b:task:1")]
    assert results[0] == results[1]
    [invoice] = invoices()
    assert (invoice.reference, str(invoice.gross_total)) == ("Registerbijdrage 2027", "160.93")


def test_fan_out_over_2000_professionals(inprocess: Driver) -> None:
    d, n = inprocess, 2000
    with session_scope() as s:
        holders = add_professionals(s, n, d.engine.now(), outside=100)
    with session_scope() as s:
        CLOCK.advance(s, parse_duration("P40D"), allowed=True)
    d.engine.fire_due_timers()
    with session_scope() as s:
        [job_id] = s.scalars(select(Job.id).where(Job.operator == "register_fee/fan_out")).all()
    assert d.engine.run_job(job_id) == "done"
    assert run_results(d) == [{"year": 2027, "reference_date": "2027-01-01", "count": n, "queued": n}]
    # A fan-out this big is routed by beat in batches, not inside the job that emitted it.
    ticks = 0
    while d.engine.drain_messages(get_settings().drain_batch):
        ticks += 1
    assert ticks == n // get_settings().drain_batch
    with session_scope() as s:
        waiting = s.scalars(select(Job.id).where(Job.operator == "register_fee/create_invoice",
                                                 Job.status == "queued").order_by(Job.id)).all()
    assert len(waiting) == n
    assert fee_instances(2027) == {f"fee-2027-{h}": "running" for h in holders}
    for job in waiting[:: n // 3]:  # a sample of the invoices, made by the real handler
        assert d.engine.run_job(job) == "done"
    assert {str(i.gross_total) for i in invoices()} == {"160.93"}


def test_runs_that_fire_late_invoice_the_years_they_were_due_for(inprocess: Driver) -> None:
    """The scheduler was down (or the clock moved) across two New Years: on restart each missed
    run fires once and invoices its own year, none is taken for the year it ran in."""
    d = inprocess
    professional(d, "pia", valid_years=5)
    d.later("P800D")  # February 2029: the runs of 1 January 2027 and 2028, and the one of
    # 31 December 2028 (365-day cycle after a leap year: the run for 2029), all fire now
    assert [(r["year"], r["queued"]) for r in run_results(d)] == [(2027, 1), (2028, 1), (2029, 1)]
    assert sorted(fee_instances()) == ["fee-2027-pia", "fee-2028-pia", "fee-2029-pia"]
    assert sorted(i.reference for i in invoices()) == [f"Registerbijdrage {y}" for y in (2027, 2028, 2029)]


def test_a_worker_routing_the_run_makes_each_invoice_in_the_advance_that_starts_its_instance(
        inprocess: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Beat's tick drains as a worker (``drain_messages(inline=True)``): each register_fee
    instance makes its invoice while it starts, so the run writes one job per professional
    (the e-mail), not two."""
    d = inprocess
    for name in ("pia", "pim"):
        professional(d, name)
    drain = d.engine.drain_messages
    monkeypatch.setattr(d.engine, "drain_messages", lambda limit=10_000, inline=False: drain(limit, inline=True))
    d.later("P40D")  # 7 January 2027
    assert sorted(i.customer_username for i in fees(2027)) == ["pia", "pim"]
    for name in ("pia", "pim"):
        assert d.emails(name) == ["register_fee/invoice_sent"]
    with session_scope() as s:
        jobs = sorted(s.scalars(select(Job.operator)))
    assert jobs == ["email/send", "email/send", "register_fee/fan_out"]
    assert fee_instances() == {"fee-2027-pia": "running", "fee-2027-pim": "running"}
    pay(d, "pia")  # the instance moved on to wait for the payment of that invoice
    assert fee_instances() == {"fee-2027-pia": "completed", "fee-2027-pim": "running"}
