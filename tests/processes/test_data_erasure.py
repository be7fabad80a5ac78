"""Erasure requests, every path of processes/data_erasure through the real store and handlers:
approved (anonymised, invoices kept), refused (with the ground emailed), and refused at the
start while a case is still running."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from certflow.engine.errors import Conflict, InvalidInput
from certflow.services import case_documents as documents
from certflow.services import access, email_changes, task_drafts
from certflow.settings import get_settings
from certflow.store.accounts import EmailChange, PendingSignUp, SignInAttempt
from certflow.store.billing import Invoice
from certflow.store.communications import EmailMessage
from certflow.store.db import session_scope
from certflow.store.models import Instance, User
from certflow.store.workspace import Document
from tests.processes.driver import Driver
from tests.services.conftest import tx

PDF = b"%PDF-1.4\n%%EOF\n"


def ask(d: Driver, who: str = "cas") -> str:
    view = d.engine.start(d.people[who], "data_erasure", f"erasure-{who}", {"candidate": who, "reason": "Weg ermee"})
    d.settle()
    return view.id


def finished_application(d: Driver) -> str:
    """An application with a document that the office found not eligible: a finished case."""
    view = d.engine.start(d.people["cas"], "certification", "APP-1",
                          {"candidate": "cas", "eligibility_route": "evc", "motivation": "Ik wil"})
    d.settle()
    tx(documents.upload, d.people["cas"], view.id, "diploma.pdf", PDF)
    d.do("olga", "check_eligibility", {"eligible": False, "remarks": "Geen EVC-rapport"})
    return view.id


def book_invoice(d: Driver) -> str:
    d.engine.start(d.people["cas"], "orders", "BOOK-1", {"customer": "cas", "product": "book", "quantity": 1})
    d.settle()
    with session_scope() as s:
        invoice = s.scalars(select(Invoice).where(Invoice.customer_username == "cas")).one()
        number, amount = invoice.number, str(invoice.gross_total)
    d.engine.deliver_message(d.people["olga"], "payment_received", {"amount": amount},
                             correlation={"invoice_number": number})
    d.settle()
    d.do("olga", "ship_book", {"shipped": True, "tracking_code": "3S123"})
    return number


def test_approved_request_anonymises_and_keeps_invoices(driver: Driver) -> None:
    application = finished_application(driver)
    number = book_invoice(driver)
    erasure = ask(driver)
    [task] = [t for t in driver.inbox("olga") if t.element_id == "review_erasure"]
    assert task.context == {"candidate": "cas", "reason": "Weg ermee"}
    with session_scope() as s:  # a draft of some task kept on Mijn CMI: personal data too
        task_drafts.save(s, "cas", "some-task", {"knowledge": "mijn verhaal"}, driver.engine.now())
        # and a new address she asked for, waiting for its link (certflow.services.email_changes)
        email_changes.ask(s, get_settings(), "cas", "cas.new@example.org")
        # A sign-up waiting with her address is a stranger's, never hers (one left from before
        # an account getting an address deleted them): erasing her leaves it alone. Erasure
        # looked sign-ups up by address, so an account that had set its address to a
        # stranger's erased the stranger's sign-up with itself.
        s.add(PendingSignUp(token_hash="stranger-sign-up", email=s.get(User, "cas").email,
                            display_name="Stranger", language="nl", address={"city": "Utrecht"},
                            date_of_birth=None, password_hash="x", created_at=driver.engine.now(),
                            expires_at=driver.engine.now() + timedelta(hours=24)))
        # A wrong password of hers a minute ago: her address and IP, kept for the rate limit.
        access.sign_in(s, get_settings(), "CAS@example.org", "not her password", "10.0.0.7")
        assert s.scalars(select(SignInAttempt.ip)).all() == ["10.0.0.7"]
    driver.do("olga", "review_erasure", {"approved": True, "note": ""})
    with session_scope() as s:
        assert task_drafts.load(s, "cas", "some-task") is None
        assert s.scalars(select(EmailChange)).all() == []
        assert s.get(PendingSignUp, "stranger-sign-up") is not None
        assert s.scalars(select(SignInAttempt)).all() == []
        user = s.get(User, "cas")
        assert user.display_name == "Geanonimiseerd" and user.address == {} and "cas" not in user.email
        assert s.get(Instance, application) is None
        assert s.scalars(select(Document)).all() == []
        invoice = s.scalars(select(Invoice).where(Invoice.number == number)).one()
        assert invoice.customer_username == "cas" and invoice.customer_name  # kept 7 years
        mails = s.scalars(select(EmailMessage).where(EmailMessage.recipient == "cas")).all()
        assert mails and all(m.body_text == "" and m.to_address == "" for m in mails)
        done = s.get(Instance, erasure)
        assert done.status == "completed"
    data = driver.engine.instance(driver.people["olga"], erasure).data
    # The last mail went out before the address was erased (the case waited for it); what the
    # case keeps of it names the person, not the address.
    assert data["approved_email"]["status"] == "sent" and data["approved_email"]["recipient"] == "cas"
    assert "@" not in str(data)
    result = data["erasure"]
    assert result["cases_removed"] == 2 and result["documents_removed"] == 1
    assert result["invoices_kept"] == 1 and result["invoices_kept_until"].endswith("-12-31")


def test_refused_request_tells_the_ground_and_changes_nothing(driver: Driver) -> None:
    application = finished_application(driver)
    ask(driver)
    driver.do("olga", "review_erasure", {"approved": False, "note": "Er loopt een geschil over uw factuur."})
    assert driver.emails("cas")[-1] == "privacy/erasure_refused"
    with session_scope() as s:
        assert s.get(User, "cas").display_name != "Geanonimiseerd"
        assert s.get(Instance, application) is not None
        body = s.scalars(select(EmailMessage.body_text).where(
            EmailMessage.template == "privacy/erasure_refused")).one()
    assert "geschil over uw factuur" in body


def test_not_while_a_case_is_running(driver: Driver) -> None:
    driver.engine.start(driver.people["cas"], "certification", "APP-2",
                        {"candidate": "cas", "eligibility_route": "evc", "motivation": "Ik wil"})
    with pytest.raises(InvalidInput) as refused:
        driver.engine.start(driver.people["cas"], "data_erasure", "erasure-cas", {"candidate": "cas"})
    assert "APP-2" in refused.value.message and "finished" in refused.value.message


def test_nobody_takes_another_persons_case_number(driver: Driver) -> None:
    """The case numbers Mijn CMI gives a person's own requests (``ann:erasure``) are theirs:
    started first by cas, ann's own erasure request could not start, and cas was told her
    case's instance id. A number someone else holds is refused without naming anything."""
    ann = driver.person("ann", ["candidate"], address={"street": "Dorpsstraat 1", "postal_code": "1234 AB",
                                                     "city": "Ergens"})
    with pytest.raises(InvalidInput, match="starts with your own username: cas:"):
        driver.engine.start(driver.people["cas"], "data_erasure", "ann:erasure", {"candidate": "cas"})
    own = driver.engine.start(ann, "data_erasure", "ann:erasure", {"candidate": "ann", "reason": "Weg ermee"})
    assert own.business_key == "ann:erasure"
    with pytest.raises(Conflict) as again:
        driver.engine.start(ann, "data_erasure", "ann:erasure", {"candidate": "ann"})
    assert own.id in again.value.message  # their own case, named to them
    free = driver.engine.start(ann, "data_erasure", "ERASE-1", {"candidate": "ann"})
    with pytest.raises(Conflict) as taken:
        driver.engine.start(driver.people["cas"], "data_erasure", "ERASE-1", {"candidate": "cas"})
    assert free.id not in taken.value.message and "choose another" in taken.value.message
