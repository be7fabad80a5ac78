"""Supervisor-backed recertification, every path of processes/recertification_supervisor through
the real store and handlers — in-process jobs on SQLite, and a real Celery worker on
PostgreSQL + Redis. The professional is certified directly through the real handlers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

import handlers
from certflow.engine.dto import TaskView
from certflow.engine.errors import Forbidden, InvalidInput
from certflow.engine.messaging import emit
from certflow.settings import get_settings
from certflow.store.billing import Invoice
from certflow.store.communications import EmailMessage
from certflow.store.db import session_scope
from certflow.store.models import Message
from certflow.store.register import Certificate, RegisterEntry
from certflow.services.certificates import LOCAL_ZONE, add_years
from tests.processes.conftest import ADDRESS
from tests.processes.driver import Driver, candidate_term_end, expired_days_ago

PROCESS = "recertification_supervisor"
MAIL = "recertification/supervisor/"
REFERENCE = "Hercertificering met supervisor"
DOSSIER = {"practice": "Loopbaancoach bij een gemeente, 20 uur per week",
           "development": "Opleiding narratieve loopbaanbegeleiding; intervisiegroep",
           "reflection": "Ik stel scherpere vragen en werk meer met het netwerk van de cliënt"}
STATEMENT = {"statement_outcome": "signed", "statement": "Cas heeft zich aantoonbaar ontwikkeld.",
             "period_from": "2023-09-01", "period_to": "2026-05-31", "sessions": 12, "signed": True,
             "signature_name": "Sam Supervisor"}
ASSESSED = {"assessment_advice": "positive", "assessment_notes": "Ontwikkeling goed onderbouwd"}


@pytest.fixture
def recert(driver: Driver) -> Driver:
    driver.person("sam", ["supervisor"])
    driver.person("ria", ["assessor"])
    return driver


def certify(d: Driver, holder: str, expires_in_days: int = 120,
            mentor: str | None = "mila") -> Certificate:
    """A certified professional, made through the real handlers: certificate, Register entry and
    the mentor of their first certification."""
    today = d.engine.now().astimezone(LOCAL_ZONE).date()
    expiry = today + timedelta(days=expires_in_days)
    valid_from = add_years(expiry, -get_settings().certificate_validity_years)
    with session_scope() as s:
        def run(operator: str, params: dict[str, Any]) -> dict[str, Any]:
            ctx = handlers.HandlerContext(session=s, now=d.engine.now(), settings=get_settings(),
                                          idempotency_key=f"test:{holder}:{operator}")
            return handlers.get(operator)(ctx, params)

        cert = run("certificates/issue", {"holder": holder, "valid_from": valid_from.isoformat()})
        run("register/enter", {"holder": holder, "certificate_id": cert["certificate_id"]})
        if mentor:
            run("register/set_relations", {"holder": holder, "mentor": mentor})
    return certificate(cert["certificate_id"])


def certificate(certificate_id: str) -> Certificate:
    with session_scope() as s:
        cert = s.get(Certificate, certificate_id)
        assert cert is not None
        s.expunge(cert)
        return cert


def entry_of(holder: str) -> RegisterEntry:
    with session_scope() as s:
        entry = s.scalars(select(RegisterEntry).where(RegisterEntry.holder == holder)).one()
        s.expunge(entry)
        return entry


def sign_up(d: Driver, specialisation: str = "") -> str:
    view = d.engine.start(d.people["cas"], PROCESS, "RECERT-cas",
                          {"candidate": "cas", "supervisor": "sam", "specialisation": specialisation})
    d.settle()
    return view.id


def mails(d: Driver, recipient: str) -> list[str]:
    """This process's emails to ``recipient`` (other processes, like the register fee, mail too)."""
    return [t for t in d.emails(recipient) if t.startswith(MAIL)]


def body(template: str) -> str:
    """The text of the last email sent from ``template``."""
    with session_scope() as s:
        rows = s.scalars(select(EmailMessage).where(EmailMessage.template == MAIL + template)
                         .order_by(EmailMessage.created_at)).all()
        return rows[-1].body_text


def invoice_of(d: Driver) -> Invoice:
    with session_scope() as s:
        invoice = s.scalars(select(Invoice).where(Invoice.kind == "invoice",
                                                  Invoice.reference == REFERENCE)).one()
        s.expunge(invoice)
        return invoice


def pay(d: Driver) -> None:
    invoice = invoice_of(d)
    d.engine.deliver_message(d.people["olga"], "payment_received", {"amount": str(invoice.gross_total)},
                             correlation={"invoice_number": invoice.number})
    d.settle()


def messages(name: str) -> list[dict[str, Any]]:
    with session_scope() as s:
        rows = s.scalars(select(Message).where(Message.name == name).order_by(Message.id))
        return [m.payload for m in rows]


def task(d: Driver, username: str, element_id: str) -> TaskView:
    [found] = [t for t in d.inbox(username) if t.element_id == element_id]
    return found


def through_statement(d: Driver, specialisation: str = "") -> str:
    instance_id = sign_up(d, specialisation)
    pay(d)
    d.do("cas", "write_dossier", DOSSIER)
    d.do("sam", "supervisor_statement", STATEMENT)
    return instance_id


def test_granted_without_specialisation(recert: Driver) -> None:
    old = certify(recert, "cas")
    instance_id = sign_up(recert)
    with session_scope() as s:
        assert s.scalars(select(RegisterEntry.supervisor)).one() == "sam"
    invoice = invoice_of(recert)
    totals = (str(invoice.net_total), str(invoice.vat_total), str(invoice.gross_total))
    assert totals == ("625.00", "131.25", "756.25")
    assert mails(recert, "cas") == [MAIL + "invoice_sent"]
    assert recert.inbox("cas") == [] and messages("recertification_started") == []
    pay(recert)
    assert messages("recertification_started") == [{"holder": "cas"}]
    assert mails(recert, "cas")[-1] == MAIL + "started"
    assert "Sam" in body("started") and "later aangemeld dan drie maanden" not in body("started")
    dossier = task(recert, "cas", "write_dossier")
    assert dossier.assignee == "cas" and dossier.due_at is not None
    assert (dossier.due_at - dossier.created_at).days == 60
    assert dossier.context["supervisor"] == "sam" and dossier.context["supervisor_remark"] is None
    assert dossier.context["current_certificate"]["valid_until"] == old.valid_until.isoformat()
    assert recert.inbox("sam") == []  # nothing for the supervisor before the dossier is in
    recert.do("cas", "write_dossier", DOSSIER)

    assert mails(recert, "sam") == [MAIL + "statement_requested"]
    assert "Cas heeft u gekozen als supervisor" in body("statement_requested")
    statement = task(recert, "sam", "supervisor_statement")
    assert (statement.assignee, statement.candidate_group) == ("sam", "supervisor")
    assert {k: statement.context[k] for k in DOSSIER} == DOSSIER
    assert statement.context["names"] == {"holder_name": "Cas", "supervisor_name": "Sam"}
    assert "invoice" not in statement.context and "payment" not in statement.context
    with pytest.raises(Forbidden, match="belongs to group 'supervisor'"):  # the candidate cannot sign it themselves
        recert.engine.complete(recert.people["cas"], statement.id, STATEMENT)
    with pytest.raises(InvalidInput, match="signed"):
        recert.engine.complete(recert.people["sam"], statement.id, {**STATEMENT, "signed": False})
    with pytest.raises(InvalidInput, match="signature_name"):
        recert.engine.complete(recert.people["sam"], statement.id,
                               {k: v for k, v in STATEMENT.items() if k != "signature_name"})
    assert recert.inbox("ria") == [] and recert.inbox("olga") == []
    recert.do("sam", "supervisor_statement", STATEMENT)

    recert.do("olga", "assign_assessor", {"assessor": "ria"})
    assessment = task(recert, "ria", "assess_dossier")
    assert assessment.context["statement"] == STATEMENT["statement"]
    assert assessment.context["sessions"] == 12 and assessment.context["practice"] == DOSSIER["practice"]
    recert.do("ria", "assess_dossier", ASSESSED)
    assert recert.inbox("kees") == []  # no specialisation: no oral assessment
    recert.do("cato", "decide_recertification", {"granted": True, "reason": "Voldoet"})

    assert recert.engine.instance(recert.people["olga"], instance_id).status == "completed"
    with session_scope() as s:
        new = s.scalars(select(Certificate).where(Certificate.id != old.id)).one()
        s.expunge(new)
    assert new.holder == "cas" and new.specialisation is None and new.status == "valid"
    assert new.valid_from == old.valid_until  # no gap, no overlap
    assert new.valid_until == add_years(old.valid_until, 3)
    entry = entry_of("cas")
    assert (entry.certificate_id, entry.status, entry.valid_until) == (new.id, "valid", new.valid_until)
    assert messages("recertified") == [{"holder": "cas", "certificate_id": new.id,
                                        "valid_until": new.valid_until.isoformat()}]
    assert mails(recert, "cas")[-1] == MAIL + "granted"
    assert mails(recert, "sam") == [MAIL + "statement_requested"]


def test_specialisation_sent_back_and_conflicted_assessor_then_granted(recert: Driver) -> None:
    old = certify(recert, "cas")
    instance_id = sign_up(recert, "Outplacement")
    pay(recert)
    recert.do("cas", "write_dossier", {**DOSSIER, "specialisation_case": "Tien jaar outplacement"})
    statement = task(recert, "sam", "supervisor_statement")
    assert statement.context["specialisation"] == "Outplacement"
    with pytest.raises(InvalidInput, match="supervisor_remark"):
        recert.engine.complete(recert.people["sam"], statement.id, {"statement_outcome": "sent_back"})
    recert.do("sam", "supervisor_statement", {"statement_outcome": "sent_back",
                                              "supervisor_remark": "Beschrijf ook de intervisie"})
    assert recert.inbox("sam") == []
    assert mails(recert, "cas")[-1] == MAIL + "dossier_sent_back"
    assert "Beschrijf ook de intervisie" in body("dossier_sent_back")
    again = task(recert, "cas", "write_dossier")
    assert again.context["supervisor_remark"] == "Beschrijf ook de intervisie"
    recert.do("cas", "write_dossier", {**DOSSIER, "development": "Plus intervisie", "specialisation_case": "x"})
    assert mails(recert, "sam") == [MAIL + "statement_requested"] * 2
    assert task(recert, "sam", "supervisor_statement").context["development"] == "Plus intervisie"
    recert.do("sam", "supervisor_statement", STATEMENT)

    recert.do("olga", "assign_assessor", {"assessor": "sam"})  # the supervisor: refused
    retry = task(recert, "olga", "assign_assessor")
    assert retry.context["assessor_check"] == {"ok": False, "problems": [
        "sam is not in the assessor group", "sam is cas's supervisor"]}
    assert recert.inbox("sam") == []
    recert.do("olga", "assign_assessor", {"assessor": "mila"})  # the mentor: refused too
    assert "mila was cas's mentor" in task(recert, "olga", "assign_assessor").context["assessor_check"]["problems"]
    recert.do("olga", "assign_assessor", {"assessor": "ria"})
    recert.do("ria", "assess_dossier", ASSESSED)

    assert mails(recert, "cas")[-1] == MAIL + "oral_assessment_planned"
    oral = task(recert, "kees", "oral_assessment")
    assert oral.context["specialisation"] == "Outplacement" and oral.context["specialisation_case"] == "x"
    assert "assessment_advice" not in oral.context  # the committee judges independently
    recert.do("kees", "oral_assessment", {"committee_advice": "positive", "committee_notes": "Sterk"})
    recert.do("cato", "decide_recertification", {"granted": True, "reason": "Voldoet, met specialisatie"})

    assert recert.engine.instance(recert.people["olga"], instance_id).status == "completed"
    with session_scope() as s:
        new = s.scalars(select(Certificate).where(Certificate.id != old.id)).one()
        s.expunge(new)
    assert (new.specialisation, new.valid_from, new.valid_until) == (
        "Outplacement", old.valid_until, add_years(old.valid_until, 3))
    assert entry_of("cas").certificate_id == new.id
    assert mails(recert, "cas")[-1] == MAIL + "granted"
    assert "met de specialisatie Outplacement" in body("granted") and new.register_number in body("granted")


def test_late_sign_up_reminders_then_not_granted(recert: Driver) -> None:
    old = certify(recert, "cas", expires_in_days=80)  # later than three months before expiry
    instance_id = sign_up(recert)
    pay(recert)
    assert "later aangemeld dan drie maanden" in body("started")
    recert.later("P46D")
    assert mails(recert, "cas")[-1] == MAIL + "dossier_reminder"
    recert.do("cas", "write_dossier", DOSSIER)
    recert.later("P11D")
    assert mails(recert, "sam") == [MAIL + "statement_requested",
                                    MAIL + "statement_reminder"]
    recert.do("sam", "supervisor_statement", STATEMENT)
    recert.do("olga", "assign_assessor", {"assessor": "ria"})
    recert.do("ria", "assess_dossier", {"assessment_advice": "negative", "assessment_notes": "Te mager"})
    with pytest.raises(InvalidInput, match="reason"):
        recert.engine.complete(recert.people["cato"], task(recert, "cato", "decide_recertification").id,
                               {"granted": False, "reason": ""})
    recert.do("cato", "decide_recertification", {"granted": False, "reason": "Onvoldoende ontwikkeling"})
    assert mails(recert, "cas")[-1] == MAIL + "not_granted"
    assert "Onvoldoende ontwikkeling" in body("not_granted")
    assert recert.engine.instance(recert.people["olga"], instance_id).status == "completed"
    with session_scope() as s:
        assert [c.id for c in s.scalars(select(Certificate))] == [old.id]
    assert entry_of("cas").valid_until == old.valid_until and messages("recertified") == []


def test_unpaid_reminders_then_cancelled_and_credited(recert: Driver) -> None:
    certify(recert, "cas")
    instance_id = sign_up(recert)
    deadline = candidate_term_end(recert.engine.now(), "P30D")  # or through the next working day
    recert.later("P11D")
    assert mails(recert, "cas").count(MAIL + "payment_reminder") == 1
    recert.later("P10D")
    assert mails(recert, "cas").count(MAIL + "payment_reminder") == 2
    recert.until(deadline - timedelta(minutes=10))
    assert MAIL + "cancelled" not in mails(recert, "cas")
    recert.until(deadline + timedelta(minutes=10))  # past the payment term
    assert mails(recert, "cas")[-1] == MAIL + "cancelled"
    assert recert.engine.instance(recert.people["olga"], instance_id).status == "completed"
    with session_scope() as s:
        invoices = {i.kind: (i.status, str(i.gross_total))
                    for i in s.scalars(select(Invoice).where(Invoice.reference == REFERENCE))}
    assert invoices == {"invoice": ("credited", "756.25"), "credit_note": ("paid", "-756.25")}
    assert messages("recertification_started") == [] and recert.inbox("cas") == []
    assert entry_of("cas").status == "valid"


def refusal(d: Driver, data: dict[str, Any], who: str = "cas", key: str = "RECERT-x") -> str:
    with pytest.raises(InvalidInput) as refused:
        d.engine.start(d.people[who], PROCESS, key, data)
    assert refused.value.details == {"guard": "recertification/supervisor_signup_allowed"}
    return refused.value.message


def test_sign_up_guard(recert: Driver) -> None:
    ok = {"candidate": "cas", "supervisor": "sam", "specialisation": ""}
    assert "not in the register" in refusal(recert, ok)  # not certified yet
    certify(recert, "cas")
    assert "'ria' is not a supervisor known to CMI" in refusal(recert, {**ok, "supervisor": "ria"})
    assert "needs 'supervisor'" in refusal(recert, {"candidate": "cas", "specialisation": ""})
    assert "'specialisation' is" in refusal(recert, {"candidate": "cas", "supervisor": "sam"})
    recert.person("ann", ["candidate", "supervisor"], address=ADDRESS)
    certify(recert, "ann", mentor=None)
    assert "your own supervisor" in refusal(recert, {**ok, "candidate": "ann", "supervisor": "ann"}, "ann")
    sign_up(recert)
    assert "already running" in refusal(recert, ok)  # signed up, not yet paid
    assert "already running" in refusal(recert, ok, "olga")  # nor by the office on their behalf
    pay(recert)
    assert entry_of("cas").status == "valid"  # the lifecycle process would mark it; none runs here
    recert.person("bo", ["candidate"], address=ADDRESS)
    certify(recert, "bo", expires_in_days=expired_days_ago(recert.engine.now().astimezone(LOCAL_ZONE).date()))
    assert "expired on" in refusal(recert, {**ok, "candidate": "bo"}, "bo")


def test_the_certificate_lifecycle_follows_the_recertification(recert: Driver) -> None:
    """The contract with processes/certificate_lifecycle: it hears recertification_started after
    the payment and recertified after the new certificate is in the Register."""
    old = certify(recert, "cas")
    with session_scope() as s:
        emit(s, "certificate_issued", {"business_key": "lifecycle-cas", "holder": "cas", "certificate_id": old.id,
                                       "register_number": old.register_number,
                                       "valid_until": old.valid_until.isoformat()}, recert.engine.now())
    recert.engine.drain_messages()
    recert.settle()
    through_statement(recert)
    assert entry_of("cas").status == "recertification_running"
    recert.do("olga", "assign_assessor", {"assessor": "ria"})
    recert.do("ria", "assess_dossier", ASSESSED)
    recert.do("cato", "decide_recertification", {"granted": True, "reason": "Voldoet"})
    entry = entry_of("cas")
    assert (entry.status, entry.valid_until) == ("valid", add_years(old.valid_until, 3))
    with session_scope() as s:
        routed = {m.name: m.status for m in s.scalars(select(Message))}
    assert routed == {"certificate_issued": "started", "recertification_started": "delivered",
                      "recertified": "delivered"}
