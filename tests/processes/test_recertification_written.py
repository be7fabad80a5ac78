"""Written recertification, every path of processes/recertification_written through the real
store and handlers — in-process jobs on SQLite, and a real Celery worker on PostgreSQL + Redis.

The certified professional is made directly with the real handlers (certificates/issue and
register/enter), which is what first certification leaves behind, without driving it."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

import handlers
from certflow.engine.errors import InvalidInput
from certflow.localtime import local_date
from certflow.settings import get_settings
from certflow.store.billing import Invoice
from certflow.store.communications import EmailMessage
from certflow.store.db import session_scope
from certflow.store.models import Instance, Message
from certflow.store.register import Certificate, RegisterEntry
from certflow.services.certificates import add_years
from handlers.recertification import dutch_today
from tests.processes.driver import Driver, candidate_term_end, expired_days_ago

PROCESS = "recertification_written"
SAME = {"development_last_3_years": "Supervisie en een cursus ACT", "current_practice": "Zelfstandig, 20 trajecten per jaar"}
CHANGED = {**SAME, "knowledge": "Nieuwe theorie", "tasks": "Teamcoaching", "competences": "Groepsbegeleiding"}
DOSSIER_FIELDS = {"candidate", "level", "valid_until", "development_last_3_years", "current_practice",
                  "knowledge", "tasks", "competences"}


@pytest.fixture
def recert(driver: Driver) -> Driver:
    driver.person("ria", ["assessor"])
    driver.person("ab", ["assessor"])
    driver.person("ina", ["assessor"])
    return driver


# --- set-up: a certified professional, made with the real handlers ---------------------------

def run_handler(d: Driver, operator: str, key: str, **params: Any) -> dict[str, Any]:
    with session_scope() as session:
        ctx = handlers.HandlerContext(session=session, now=d.engine.now(), idempotency_key=key,
                                      settings=get_settings())
        return handlers.get(operator)(ctx, params)


def certify(d: Driver, days_left: int, holder: str = "cas", mentor: str | None = None) -> dict[str, Any]:
    """Give ``holder`` a valid certificate and Register entry expiring ``days_left`` days from
    today (Dutch date)."""
    until = dutch_today(d.engine.now()) + timedelta(days=days_left)
    cert = run_handler(d, "certificates/issue", f"test-issue-{holder}", holder=holder,
                       valid_from=add_years(until, -3).isoformat(), valid_years=3)
    run_handler(d, "register/enter", f"test-enter-{holder}", holder=holder,
                certificate_id=cert["certificate_id"])
    if mentor:
        run_handler(d, "register/set_relations", f"test-relations-{holder}", holder=holder, mentor=mentor)
    return cert


def sign_up(d: Driver, level: str = "same", key: str = "RECERT-cas") -> str:
    view = d.engine.start(d.people["cas"], PROCESS, key, {"candidate": "cas", "level": level})
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


def mails(d: Driver) -> list[str]:
    return [t.removeprefix("recertification/") for t in d.emails("cas") if t.startswith("recertification/")]


def task(d: Driver, username: str, element_id: str) -> Any:
    [found] = [t for t in d.inbox(username) if t.element_id == element_id]
    return found


def thrown(name: str) -> list[dict[str, Any]]:
    with session_scope() as s:
        return [dict(m.payload) for m in s.scalars(select(Message).where(Message.name == name).order_by(Message.id))]


def status(d: Driver, instance_id: str) -> str:
    return d.engine.instance(d.people["olga"], instance_id).status


def through_dossier(d: Driver, level: str = "same", assessors: tuple[str, str] = ("ria", "ab")) -> str:
    instance_id = sign_up(d, level)
    pay(d)
    d.do("olga", "assign_assessors", {"assessor_1": assessors[0], "assessor_2": assessors[1]})
    d.do("cas", "write_dossier_changed" if level == "changed" else "write_dossier_same",
         CHANGED if level == "changed" else SAME)
    return instance_id


def positive(why: str = "Laat ontwikkeling zien") -> dict[str, str]:
    return {"verdict": "positive", "question": "", "motivation": why}


def negative(why: str = "Geen actuele praktijk") -> dict[str, str]:
    return {"verdict": "negative", "question": "", "motivation": why}


def ask(question: str) -> dict[str, str]:
    return {"verdict": "question", "question": question, "motivation": ""}


# --- paths -----------------------------------------------------------------------------------

def test_same_level_both_positive_granted_without_a_gap(recert: Driver) -> None:
    old = certify(recert, days_left=120)
    instance_id = sign_up(recert)
    assert mails(recert) == ["signup_received", "invoice_sent"]
    invoice = invoice_of(recert)
    assert (str(invoice.net_total), str(invoice.vat_total), str(invoice.gross_total)) == ("625.00", "131.25", "756.25")
    assert invoice.customer_username == "cas"
    assert recert.inbox("olga") == []  # nothing to do before the payment
    pay(recert)
    assert thrown("recertification_started") == [{"holder": "cas"}]
    assert mails(recert)[-1] == "signup_accepted"

    office = task(recert, "olga", "assign_assessors")
    assert office.context == {"candidate": "cas", "level": "same", "valid_until": old["valid_until"],
                              "late_signup": False, "assessor_check": None}
    recert.do("olga", "assign_assessors", {"assessor_1": "ria", "assessor_2": "ab"})
    assert mails(recert)[-1] == "dossier_open"
    dossier = task(recert, "cas", "write_dossier_same")
    assert dossier.assignee == "cas" and [t.element_id for t in recert.inbox("cas")] == ["write_dossier_same"]
    # due six weeks before expiry, so the assessment can finish in time (a Dutch date: from
    # 23:00 UTC on, the UTC date is a day behind)
    assert local_date(dossier.due_at) == date.fromisoformat(old["valid_until"]) - timedelta(days=42)
    recert.do("cas", "write_dossier_same", SAME)

    first, second = task(recert, "ria", "assess_1"), task(recert, "ab", "assess_2")
    assert first.assignee == "ria" and second.assignee == "ab"
    assert recert.inbox("ab") == [second] and [t.element_id for t in recert.inbox("ria")] == ["assess_1"]
    assert set(first.context) == DOSSIER_FIELDS | {"questions_1"}
    assert first.context["development_last_3_years"] == SAME["development_last_3_years"]
    assert first.context["knowledge"] is None  # same level: not asked again
    recert.do("ria", "assess_1", positive("Duidelijke ontwikkeling"))
    second = task(recert, "ab", "assess_2")
    assert set(second.context) == DOSSIER_FIELDS | {"questions_2"}
    assert "Duidelijke ontwikkeling" not in str(second.context) and "positive" not in str(second.context)
    recert.do("ab", "assess_2", positive("Actieve praktijk"))

    decision = task(recert, "cato", "decide_recertification")
    assert decision.context["advice"] == "positive" and decision.context["committee_verdict"] is None
    assert decision.context["assessment_1"] == {"assessor": "ria", "verdict": "positive",
                                                "motivation": "Duidelijke ontwikkeling", "questions": []}
    assert decision.context["assessment_2"]["verdict"] == "positive"
    assert recert.inbox("kees") == []  # the assessors agree: no committee
    recert.do("cato", "decide_recertification", {"granted": True, "reason": "Beide beoordelaars positief"})

    assert status(recert, instance_id) == "completed"
    with session_scope() as s:
        new = s.scalars(select(Certificate).where(Certificate.id != old["certificate_id"])).one()
        entry = s.scalars(select(RegisterEntry)).one()
        assert new.valid_from.isoformat() == old["valid_until"]  # no gap, no overlap
        assert new.valid_until == add_years(date.fromisoformat(old["valid_until"]), 3)
        assert (entry.certificate_id, entry.status, entry.valid_until) == (new.id, "valid", new.valid_until)
        assert new.register_number != old["register_number"]
        new_id, new_until = new.id, new.valid_until.isoformat()
    assert thrown("recertified") == [{"holder": "cas", "certificate_id": new_id, "valid_until": new_until}]
    assert mails(recert) == ["signup_received", "invoice_sent", "signup_accepted", "dossier_open", "granted"]


def test_changed_level_question_goes_back_to_the_same_assessor_both_negative(recert: Driver) -> None:
    certify(recert, days_left=150)
    instance_id = sign_up(recert, level="changed")
    pay(recert)
    recert.do("olga", "assign_assessors", {"assessor_1": "ria", "assessor_2": "ab"})
    assert [t.element_id for t in recert.inbox("cas")] == ["write_dossier_changed"]
    with pytest.raises(InvalidInput):  # the changed-level dossier asks knowledge/tasks/competences again
        recert.engine.complete(recert.people["cas"], task(recert, "cas", "write_dossier_changed").id, SAME)
    recert.do("cas", "write_dossier_changed", CHANGED)
    assert task(recert, "ab", "assess_2").context["competences"] == "Groepsbegeleiding"

    recert.do("ria", "assess_1", negative("Onvoldoende ontwikkeling"))
    recert.do("ab", "assess_2", ask("Hoeveel groepen begeleidde u?"))
    assert mails(recert)[-1] == "question_asked"
    answer = task(recert, "cas", "answer_question_2")
    assert (answer.assignee, answer.context) == ("cas", {"question": "Hoeveel groepen begeleidde u?"})
    assert recert.inbox("ab") == [] and recert.inbox("ria") == []
    recert.do("cas", "answer_question_2", {"answer": "Vier per jaar"})

    again = task(recert, "ab", "assess_2")  # back to assessor 2, not to assessor 1
    assert again.assignee == "ab" and recert.inbox("ria") == []
    assert again.context["questions_2"] == [{"question": "Hoeveel groepen begeleidde u?", "answer": "Vier per jaar"}]
    # assessor 1 finished long before, yet nothing of that verdict reaches assessor 2
    assert set(again.context) == DOSSIER_FIELDS | {"questions_2"}
    assert "Onvoldoende ontwikkeling" not in str(again.context) and "negative" not in str(again.context)
    recert.do("ab", "assess_2", negative("Te weinig groepswerk"))

    decision = task(recert, "cato", "decide_recertification")
    assert decision.context["advice"] == "negative"
    assert decision.context["assessment_2"]["questions"] == [
        {"question": "Hoeveel groepen begeleidde u?", "answer": "Vier per jaar"}]
    with pytest.raises(InvalidInput):  # a refusal needs a reason
        recert.engine.complete(recert.people["cato"], decision.id, {"granted": False, "reason": ""})
    recert.do("cato", "decide_recertification", {"granted": False, "reason": "Beide beoordelaars negatief"})
    assert mails(recert)[-1] == "not_granted"
    assert status(recert, instance_id) == "completed"
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Certificate)) == 1
    assert thrown("recertified") == []


def test_conflicted_assessor_is_refused_then_disagreement_committee_positive(recert: Driver) -> None:
    old = certify(recert, days_left=50, mentor="ria")  # late sign-up: less than 3 months left
    instance_id = sign_up(recert)
    with session_scope() as s:
        body = s.scalars(select(EmailMessage).where(EmailMessage.template == "recertification/signup_received")).one().body_text
    assert "later aan dan drie maanden" in body
    pay(recert)
    assert task(recert, "olga", "assign_assessors").context["late_signup"] is True
    recert.do("olga", "assign_assessors", {"assessor_1": "ria", "assessor_2": "ab"})

    back = task(recert, "olga", "assign_assessors")  # the office chooses again, with the problem shown
    assert back.context["assessor_check"] == {"ok": False, "problems": ["ria was cas's mentor"]}
    assert recert.inbox("ria") == [] and "dossier_open" not in mails(recert)
    recert.do("olga", "assign_assessors", {"assessor_1": "ina", "assessor_2": "ab"})
    dossier = task(recert, "cas", "write_dossier_same")
    # little time left: the dossier still gets the minimum term of 14 days
    assert (dossier.due_at - dossier.created_at).days == 14
    recert.do("cas", "write_dossier_same", SAME)

    recert.do("ina", "assess_1", positive())
    recert.do("ab", "assess_2", negative())
    assert mails(recert)[-1] == "committee_review"
    committee = task(recert, "kees", "committee_assessment")
    assert committee.context["assessment_1"]["verdict"] == "positive"
    assert committee.context["assessment_2"]["verdict"] == "negative"
    recert.do("kees", "committee_assessment", {"committee_verdict": "positive", "committee_motivation": "Voldoende"})
    decision = task(recert, "cato", "decide_recertification")
    assert (decision.context["advice"], decision.context["committee_verdict"]) == ("positive", "positive")
    recert.do("cato", "decide_recertification", {"granted": True, "reason": "Commissie positief"})
    assert status(recert, instance_id) == "completed"
    assert mails(recert)[-1] == "granted"
    with session_scope() as s:
        entry = s.scalars(select(RegisterEntry)).one()
        assert entry.valid_until == add_years(date.fromisoformat(old["valid_until"]), 3)


def test_question_to_assessor_one_then_disagreement_committee_negative(recert: Driver) -> None:
    certify(recert, days_left=120)
    instance_id = through_dossier(recert)
    recert.do("ria", "assess_1", ask("Welke supervisie volgde u?"))
    assert task(recert, "cas", "answer_question_1").context == {"question": "Welke supervisie volgde u?"}
    recert.do("ab", "assess_2", positive())
    recert.do("cas", "answer_question_1", {"answer": "Tien sessies bij een LVSC-supervisor"})
    again = task(recert, "ria", "assess_1")
    assert again.context["questions_1"] == [{"question": "Welke supervisie volgde u?",
                                             "answer": "Tien sessies bij een LVSC-supervisor"}]
    assert "questions_2" not in again.context and "positive" not in str(again.context)
    recert.do("ria", "assess_1", negative())
    recert.do("kees", "committee_assessment", {"committee_verdict": "negative", "committee_motivation": "Onvoldoende"})
    assert task(recert, "cato", "decide_recertification").context["advice"] == "negative"
    recert.do("cato", "decide_recertification", {"granted": False, "reason": "Commissie negatief"})
    assert mails(recert)[-2:] == ["committee_review", "not_granted"]
    assert status(recert, instance_id) == "completed"


def test_unpaid_invoice_reminders_then_cancelled(recert: Driver) -> None:
    certify(recert, days_left=130)
    instance_id = sign_up(recert)
    deadline = candidate_term_end(recert.engine.now(), "P45D")  # or through the next working day
    recert.later("P15D")
    assert mails(recert).count("payment_reminder") == 1
    recert.later("P14D")
    assert mails(recert).count("payment_reminder") == 2
    recert.until(deadline - timedelta(minutes=10))
    assert "signup_cancelled" not in mails(recert)
    recert.until(deadline + timedelta(minutes=10))  # past the payment term
    assert mails(recert)[-1] == "signup_cancelled"
    assert mails(recert).count("payment_reminder") == 2
    assert status(recert, instance_id) == "completed"
    assert thrown("recertification_started") == []
    assert recert.inbox("olga") == []


def test_sign_up_after_expiry_is_refused_and_creates_nothing(recert: Driver) -> None:
    old = certify(recert, days_left=expired_days_ago(dutch_today(recert.engine.now())))
    with pytest.raises(InvalidInput, match="apply for first certification instead") as refused:
        recert.engine.start(recert.people["cas"], PROCESS, "RECERT-cas", {"candidate": "cas", "level": "same"})
    assert refused.value.message.startswith("Your certificate expired on ")
    assert date.fromisoformat(old["valid_until"]).strftime("%Y") in refused.value.message
    recert.settle()
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Instance).where(Instance.process_id == PROCESS)) == 0
        assert s.scalar(select(func.count()).select_from(Invoice)) == 0
    assert mails(recert) == []


def test_second_sign_up_while_one_runs_is_refused(recert: Driver) -> None:
    certify(recert, days_left=120)
    sign_up(recert)
    with pytest.raises(InvalidInput, match="already running"):
        recert.engine.start(recert.people["cas"], PROCESS, "RECERT-cas-2", {"candidate": "cas", "level": "same"})
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Instance).where(Instance.process_id == PROCESS)) == 1


def test_signup_data_cannot_preset_what_the_process_decides(recert) -> None:
    with pytest.raises(Exception, match="start.json rejected"):
        recert.engine.start(recert.people["cas"], PROCESS, "RECERT-x",
                            {"candidate": "cas", "level": "same", "granted": True})
    with pytest.raises(Exception, match="level"):
        recert.engine.start(recert.people["cas"], PROCESS, "RECERT-y", {"candidate": "cas", "level": "higher"})
