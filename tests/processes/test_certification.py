"""First certification, every path of processes/certification through the real store and
handlers — in-process jobs on SQLite, and a real Celery worker on PostgreSQL + Redis."""

from __future__ import annotations


import pytest
from sqlalchemy import select

from certflow.settings import get_settings
from certflow.store.billing import Invoice
from certflow.store.db import session_scope
from certflow.store.register import Certificate, RegisterEntry
from tests.processes.conftest import ADDRESS
from tests.processes.driver import Driver
DOSSIER = {"knowledge": "Theorie", "tasks": "Begeleiding", "competences": "Coaching", "hours_spent": 35}


@pytest.fixture
def cert(driver: Driver) -> Driver:
    return driver


def apply(d: Driver, key: str = "APP-1") -> str:
    view = d.engine.start(d.people["cas"], "certification", key,
                          {"candidate": "cas", "eligibility_route": "hbo_diploma", "motivation": "Ik wil"})
    d.settle()
    return view.id


def invoice_of(d: Driver) -> Invoice:
    with session_scope() as s:
        return s.scalars(select(Invoice)).one()


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
    cert.do("olga", "assign_mentor", {"mentor": "mila"})
    assert cert.emails("cas")[-1] == "certification/mentor_assigned"
    [dossier] = cert.inbox("cas")
    assert (dossier.element_id, dossier.assignee) == ("write_dossier", "cas")
    assert (dossier.due_at - dossier.created_at).days == 120
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
    assert cert.emails("cas")[-1] == "certification/granted"


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


def test_unpaid_invoice_reminders_then_cancelled(cert: Driver) -> None:
    instance_id = apply(cert)
    cert.do("olga", "check_eligibility", {"eligible": True, "remarks": ""})
    cert.later("P15D")
    assert cert.emails("cas").count("certification/payment_reminder") == 1
    cert.later("P14D")
    assert cert.emails("cas").count("certification/payment_reminder") == 2
    cert.later("P17D")  # day 46: past the 45-day deadline
    assert cert.emails("cas")[-1] == "certification/application_cancelled"
    assert cert.emails("cas").count("certification/payment_reminder") == 2
    assert cert.engine.instance(cert.people["olga"], instance_id).status == "completed"
    with pytest.raises(Exception, match="no instance is waiting"):
        cert.engine.deliver_message(cert.people["olga"], "payment_received", {},
                                    correlation={"invoice_number": invoice_of(cert).number})


def test_late_dossier_reminder_escalation_extend_then_cancel(cert: Driver) -> None:
    instance_id = through_payment(cert)
    cert.later("P91D")
    assert cert.emails("cas")[-1] == "certification/dossier_reminder"
    assert [t.element_id for t in cert.inbox("cas")] == ["write_dossier"]
    cert.later("P30D")  # day 121: the coordinator takes over
    assert cert.inbox("cas") == []
    assert [t.element_id for t in cert.inbox("cor")] == ["handle_overdue_dossier"]
    cert.do("cor", "handle_overdue_dossier", {"decision": "extend", "new_due_note": "Tot na de zomer"})
    [again] = cert.inbox("cas")
    assert again.element_id == "write_dossier"
    cert.later("P121D")
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
