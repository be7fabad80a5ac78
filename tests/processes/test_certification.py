"""First certification, every path of processes/certification through the real store and
handlers — in-process jobs on SQLite, and a real Celery worker on PostgreSQL + Redis."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from certflow.engine.errors import InvalidInput
from certflow.settings import get_settings
from certflow.store.billing import Invoice
from certflow.store.communications import EmailMessage
from certflow.store.db import session_scope
from certflow.store.models import Instance
from certflow.store.register import Certificate, RegisterEntry
from tests.integration.topology import wait_for
from tests.processes.conftest import ADDRESS
from tests.processes.driver import Driver, candidate_term_end

DOSSIER = {"knowledge": "Theorie", "tasks": "Begeleiding", "competences": "Coaching", "hours_spent": 35}


@pytest.fixture
def cert(driver: Driver) -> Driver:
    return driver


def apply(d: Driver, key: str = "APP-1") -> str:
    view = d.engine.start(d.people["cas"], "certification", key,
                          {"candidate": "cas", "eligibility_route": "hbo_diploma", "motivation": "Ik wil"})
    d.settle()
    return view.id


def later(d: Driver, duration: str) -> None:
    """``d.later``, and on the worker tier also wait for a timer that beat was firing at that
    very moment: the driver's own firing skips an instance beat holds locked (SKIP LOCKED) and
    then finds no job to wait for yet."""
    d.later(duration)
    if d.topology is None:
        return

    def timers_due() -> bool:
        with session_scope() as s:
            return s.scalar(select(Instance.id).where(
                Instance.status == "running", Instance.next_due_at <= d.engine.now()).limit(1)) is not None

    wait_for(lambda: not timers_due(), timeout=60, what="due timers to fire", topology=d.topology)
    d.settle()


def invoice_of(d: Driver) -> Invoice:
    with session_scope() as s:
        return s.scalars(select(Invoice).where(Invoice.kind == "invoice")).one()


def email_text(template: str) -> str:
    with session_scope() as s:
        return s.scalars(select(EmailMessage.body_text).where(EmailMessage.template == template)).one()


def lifecycle_of(d: Driver, holder: str = "cas") -> dict:
    """The certificate_lifecycle instance that first certification started for ``holder``
    (on the worker tier the start happens in the worker, right after the grant)."""
    def find() -> dict | None:
        rows = d.engine.instances(d.people["olga"], process_id="certificate_lifecycle")
        return next((r for r in rows if r["business_key"] == f"lifecycle-{holder}"), None)
    return wait_for(find, timeout=30, what="the lifecycle instance", topology=d.topology)


def pay(d: Driver) -> None:
    invoice = invoice_of(d)
    d.engine.deliver_message(d.people["olga"], "payment_received", {"amount": str(invoice.gross_total)},
                             correlation={"invoice_number": invoice.number})
    d.settle()


def through_payment(d: Driver) -> str:
    instance_id = apply(d)
    d.do("olga", "check_eligibility", {"eligible": True, "remarks": ""})
    pay(d)
    d.do("olga", "assign_mentor", {"mentor": "mila"})
    return instance_id


def grant(d: Driver) -> Certificate:
    """The whole first certification, granted; returns the certificate."""
    through_payment(d)
    d.do("cas", "write_dossier", DOSSIER)
    d.do("mila", "review_dossier", {"approved": True, "feedback": "Goed"})
    d.do("kees", "oral_assessment", {"advice": "positive", "notes": "Overtuigend"})
    d.do("cato", "decide_certification", {"granted": True, "reason": "Voldoet"})
    with session_scope() as s:
        return s.scalars(select(Certificate)).one()


def until(d: Driver, moment: datetime) -> None:
    """``later`` up to ``moment``."""
    seconds = math.ceil((moment - d.engine.now()).total_seconds())
    assert seconds > 0, f"the clock is already past {moment}"
    later(d, f"PT{seconds}S")


def cancelled_for_non_payment(d: Driver) -> str:
    instance_id = apply(d)
    d.do("olga", "check_eligibility", {"eligible": True, "remarks": ""})
    deadline = candidate_term_end(d.engine.now(), "P45D")  # 45 days, or through the next working day
    later(d, "P15D")
    assert d.emails("cas").count("certification/payment_reminder") == 1
    later(d, "P14D")
    assert d.emails("cas").count("certification/payment_reminder") == 2
    until(d, deadline - timedelta(minutes=10))
    assert "certification/application_cancelled" not in d.emails("cas")
    until(d, deadline + timedelta(minutes=10))  # past the payment term
    assert d.emails("cas")[-1] == "certification/application_cancelled"
    assert d.emails("cas").count("certification/payment_reminder") == 2
    return instance_id


def test_granted_path(cert: Driver) -> None:
    instance_id = apply(cert)
    assert cert.emails("cas") == ["certification/application_received"]
    assert [t.element_id for t in cert.inbox("olga")] == ["check_eligibility"]
    assert cert.inbox("mila") == [] and cert.inbox("cas") == []
    cert.do("olga", "check_eligibility", {"eligible": True, "remarks": "HBO-diploma gezien"})
    invoice = invoice_of(cert)
    assert (str(invoice.net_total), str(invoice.vat_total), str(invoice.gross_total)) == ("650.00", "136.50", "786.50")
    assert invoice.customer_username == "cas" and invoice.status == "open"
    assert cert.emails("cas")[-1] == "certification/invoice_sent"
    pay(cert)
    # Choosing a mentor, the office sees whom for: it said "Deze taak toont geen zaakgegevens".
    [assign] = cert.inbox("olga")
    assert assign.context == {"candidate": "cas", "eligibility_route": "hbo_diploma", "motivation": "Ik wil"}
    cert.do("olga", "assign_mentor", {"mentor": "mila"})
    assert cert.emails("cas")[-1] == "certification/mentor_assigned"
    letter = email_text("certification/mentor_assigned")
    assert "Mila" in letter and "mila" not in letter  # her display name, never her login
    [dossier] = cert.inbox("cas")
    assert (dossier.element_id, dossier.assignee) == ("write_dossier", "cas")
    assert dossier.due_at is not None and (dossier.due_at - dossier.created_at).days == 120
    with pytest.raises(Exception):
        cert.engine.complete(cert.people["cas"], dossier.id, {"knowledge": "x"})  # incomplete form
    cert.do("cas", "write_dossier", DOSSIER)
    cert.do("mila", "review_dossier", {"approved": True, "feedback": "Goed"})
    cert.do("kees", "oral_assessment", {"advice": "positive", "notes": "Overtuigend"})
    cert.do("cato", "decide_certification", {"granted": True, "reason": "Voldoet"})
    view = cert.engine.instance(cert.people["olga"], instance_id)
    assert view.status == "completed"
    with session_scope() as s:
        certificate = s.scalars(select(Certificate)).one()
        entry = s.scalars(select(RegisterEntry)).one()
    assert certificate.holder == "cas" and certificate.register_number.startswith("RL-")
    years = certificate.valid_until.year - certificate.valid_from.year
    assert years == get_settings().certificate_validity_years == 3
    assert (entry.holder, entry.status, entry.register_number) == ("cas", "valid", certificate.register_number)
    assert entry.mentor == "mila"  # so she never assesses cas's recertification
    assert cert.emails("cas")[-1] == "certification/granted"
    lifecycle = lifecycle_of(cert)
    assert lifecycle["status"] == "running"
    data = cert.engine.instance(cert.people["olga"], lifecycle["id"]).data
    assert {k: data[k] for k in ("holder", "certificate_id", "register_number", "valid_until")} == {
        "holder": "cas", "certificate_id": certificate.id, "register_number": certificate.register_number,
        "valid_until": certificate.valid_until.isoformat()}


def test_not_eligible_path(cert: Driver) -> None:
    instance_id = apply(cert)
    cert.do("olga", "check_eligibility", {"eligible": False, "remarks": "Geen HBO-niveau aangetoond"})
    assert cert.emails("cas") == ["certification/application_received", "certification/application_rejected"]
    assert cert.engine.instance(cert.people["olga"], instance_id).status == "completed"
    with session_scope() as s:
        assert s.scalars(select(Invoice)).all() == []


def test_mentor_sends_dossier_back_then_not_granted(cert: Driver) -> None:
    instance_id = through_payment(cert)
    cert.do("cas", "write_dossier", DOSSIER)
    cert.do("mila", "review_dossier", {"approved": False, "feedback": "Competenties uitwerken"})
    assert [t.element_id for t in cert.inbox("cas")] == ["write_dossier"]
    cert.do("cas", "write_dossier", {**DOSSIER, "competences": "Uitgewerkt"})
    cert.do("mila", "review_dossier", {"approved": True, "feedback": "Nu goed"})
    cert.do("kees", "oral_assessment", {"advice": "negative", "notes": "Onvoldoende"})
    cert.do("cato", "decide_certification", {"granted": False, "reason": "Competenties onvoldoende aangetoond"})
    assert cert.emails("cas")[-1] == "certification/not_granted"
    assert cert.engine.instance(cert.people["olga"], instance_id).status == "completed"
    with session_scope() as s:
        assert s.scalars(select(Certificate)).all() == []


def test_unpaid_invoice_reminders_then_cancelled_and_the_office_credits_it(cert: Driver) -> None:
    instance_id = cancelled_for_non_payment(cert)
    invoice = invoice_of(cert)
    with pytest.raises(Exception, match="no instance is waiting"):
        cert.engine.deliver_message(cert.people["olga"], "payment_received", {},
                                    correlation={"invoice_number": invoice.number})
    [task] = cert.inbox("olga")  # the office is told, in its inbox
    assert (task.element_id, task.title) == ("handle_cancelled_application", "Geannuleerde aanvraag afhandelen")
    assert task.context["candidate"] == "cas" and task.context["invoice_number"] == invoice.number
    assert task.context["invoice"]["total"] == "786.50"
    assert task.due_at is not None and (task.due_at - task.created_at).days == 10
    cert.do("olga", "handle_cancelled_application", {"credit_invoice": True, "note": ""})
    with session_scope() as s:
        original = s.scalars(select(Invoice).where(Invoice.kind == "invoice")).one()
        note = s.scalars(select(Invoice).where(Invoice.kind == "credit_note")).one()
        assert original.status == "credited" and str(note.gross_total) == "-786.50"
    assert cert.engine.instance(cert.people["olga"], instance_id).status == "completed"
    assert cert.emails("cas")[-1] == "certification/application_cancelled"


def test_cancelled_application_the_office_keeps_the_invoice(cert: Driver) -> None:
    instance_id = cancelled_for_non_payment(cert)
    [task] = cert.inbox("olga")
    cert.engine.claim(cert.people["olga"], task.id)
    with pytest.raises(InvalidInput, match="note"):  # not crediting needs a reason
        cert.engine.complete(cert.people["olga"], task.id, {"credit_invoice": False, "note": ""})
    cert.do("olga", "handle_cancelled_application",
            {"credit_invoice": False, "note": "Kandidaat heeft op dag 46 alsnog betaald; nieuwe aanvraag gestart"})
    assert invoice_of(cert).status == "open"
    with session_scope() as s:
        assert s.scalars(select(Invoice).where(Invoice.kind == "credit_note")).all() == []
    assert cert.engine.instance(cert.people["olga"], instance_id).status == "completed"


def test_late_dossier_reminder_escalation_extend_then_cancel(cert: Driver) -> None:
    instance_id = through_payment(cert)
    later(cert, "P91D")
    assert cert.emails("cas")[-1] == "certification/dossier_reminder"
    assert [t.element_id for t in cert.inbox("cas")] == ["write_dossier"]
    later(cert, "P30D")  # day 121: the coordinator takes over
    assert cert.inbox("cas") == []
    [overdue] = cert.inbox("cor")
    assert overdue.element_id == "handle_overdue_dossier"
    assert overdue.context == {"candidate": "cas", "mentor": "mila"}  # whose dossier, and who guides it
    cert.do("cor", "handle_overdue_dossier", {"decision": "extend", "new_due_note": "Tot na de zomer"})
    [again] = cert.inbox("cas")
    assert again.element_id == "write_dossier"
    later(cert, "P121D")
    cert.do("cor", "handle_overdue_dossier", {"decision": "cancel", "new_due_note": ""})
    assert cert.emails("cas")[-1] == "certification/dossier_overdue_escalated"
    assert cert.engine.instance(cert.people["olga"], instance_id).status == "completed"


def test_candidate_sees_only_their_own(cert: Driver) -> None:
    apply(cert, "APP-1")
    other = cert.person("ann", ["candidate"], address=ADDRESS)
    view = cert.engine.start(other, "certification", "APP-2", {"candidate": "ann", "eligibility_route": "evc", "motivation": "x"})
    assert [r["business_key"] for r in cert.engine.instances(other)] == ["APP-2"]
    with pytest.raises(Exception, match="may not see"):
        cert.engine.instance(cert.people["cas"], view.id)


def test_application_data_cannot_preset_what_the_office_decides(cert: Driver) -> None:
    with pytest.raises(Exception, match="start.json rejected"):
        cert.engine.start(cert.people["cas"], "certification", "APP-X",
                          {"candidate": "cas", "eligibility_route": "evc", "motivation": "m", "eligible": True})
    with pytest.raises(Exception, match="eligibility_route"):
        cert.engine.start(cert.people["cas"], "certification", "APP-Y",
                          {"candidate": "cas", "eligibility_route": "a friend said so", "motivation": "m"})
    assert cert.engine.instances(cert.people["cas"]) == []
