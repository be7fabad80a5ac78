"""Orders, every path of processes/orders through the real store and handlers — in-process jobs
on SQLite, and a real Celery worker on PostgreSQL + Redis."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

import handlers
from certflow.engine.errors import InvalidInput
from certflow.settings import get_settings
from certflow.store.billing import Invoice
from certflow.store.communications import EmailMessage
from certflow.store.db import session_scope
from certflow.store.models import Instance
from certflow.store.register import CertificateCopy
from certflow.services.certificates import certificate_pdf
from tests.processes.conftest import ADDRESS
from tests.processes.driver import Driver, candidate_term_end
from tests.processes.test_recertification_supervisor import certify

SHIP_TO = {"name": "Bea Boekhouder", "street": "Stationsplein 5", "postal_code": "3511 ED",
           "city": "Utrecht", "country": "NL"}


@pytest.fixture
def shop(driver: Driver) -> Driver:
    driver.person("bea", ["candidate"], address=ADDRESS)
    return driver


def order(d: Driver, customer: str, product: str, key: str, **extra: Any) -> str:
    view = d.engine.start(d.people[customer], "orders", key, {"customer": customer, "product": product, **extra})
    d.settle()
    return view.id


def mails(d: Driver, recipient: str) -> list[str]:
    """This process's emails to ``recipient`` (other processes, like the register fee, mail too)."""
    return [t for t in d.emails(recipient) if t.startswith("orders/")]


def body(template: str) -> str:
    """The text of the last email sent from ``template``."""
    with session_scope() as s:
        last = s.scalars(select(EmailMessage).where(EmailMessage.template == template)
                         .order_by(EmailMessage.created_at.desc())).first()
        assert last is not None, f"no {template} email"
        return last.body_text


def invoices(key: str) -> dict[str, Invoice]:
    """The order's invoice (and credit note, if any), by kind; with their lines loaded."""
    with session_scope() as s:
        found = {i.kind: i for i in s.scalars(select(Invoice).where(Invoice.reference == f"Bestelling {key}"))}
        for invoice in found.values():
            invoice.lines  # noqa: B018 - load before the session closes
            s.expunge(invoice)
        return found


def totals(invoice: Invoice) -> tuple[str, str, str]:
    return str(invoice.net_total), str(invoice.vat_total), str(invoice.gross_total)


def pay(d: Driver, key: str) -> None:
    invoice = invoices(key)["invoice"]
    d.engine.deliver_message(d.people["olga"], "payment_received", {"amount": str(invoice.gross_total)},
                             correlation={"invoice_number": invoice.number})
    d.settle()


def copies() -> list[tuple[str, str]]:
    with session_scope() as s:
        return [(c.certificate_id, c.language) for c in s.scalars(select(CertificateCopy))]


def status(d: Driver, instance_id: str) -> str:
    return d.engine.instance(d.people["olga"], instance_id).status


def test_english_certificate_is_made_after_payment(shop: Driver) -> None:
    cert = certify(shop, "cas")
    instance_id = order(shop, "cas", "english_certificate", "ORD-1")
    invoice = invoices("ORD-1")["invoice"]
    assert totals(invoice) == ("22.00", "4.62", "26.62")
    [line] = invoice.lines
    assert (line.product, line.quantity, str(line.vat_rate), line.vat_inclusive) == ("english_certificate", 1, "21.00", False)
    assert invoice.customer_username == "cas" and invoice.status == "open"
    assert mails(shop, "cas") == ["orders/invoice_sent"]
    shop.later("P2D")
    assert copies() == []  # nothing is made before the payment
    pay(shop, "ORD-1")
    assert copies() == [(cert.id, "en")]
    with session_scope() as s:
        assert certificate_pdf(s, cert.id, "en").startswith(b"%PDF")
    assert mails(shop, "cas") == ["orders/invoice_sent", "orders/english_certificate_ready"]
    assert cert.register_number in body("orders/english_certificate_ready")
    assert status(shop, instance_id) == "completed"


def test_book_is_shipped_after_payment(shop: Driver) -> None:
    instance_id = order(shop, "bea", "book", "ORD-2", quantity=1, shipping_address=SHIP_TO)
    invoice = invoices("ORD-2")["invoice"]
    assert totals(invoice) == ("22.94", "2.06", "25.00")  # 25.00 including 9% VAT and shipping
    [line] = invoice.lines
    assert (line.product, line.quantity, str(line.vat_rate), line.vat_inclusive) == ("book", 1, "9.00", True)
    assert mails(shop, "bea") == ["orders/invoice_sent"]
    assert shop.inbox("olga") == []  # nothing to ship before the payment
    pay(shop, "ORD-2")
    [ship] = [t for t in shop.inbox("olga") if t.element_id == "ship_book"]
    assert (ship.title, ship.candidate_group) == ("Boek verzenden", "office")
    assert ship.context == {"customer": "bea", "quantity": 1, "shipping_address": SHIP_TO,
                            "invoice_number": invoice.number}
    with pytest.raises(InvalidInput, match="shipped"):
        shop.engine.complete(shop.people["olga"], ship.id, {"shipped": False, "tracking_code": ""})
    shop.do("olga", "ship_book", {"shipped": True, "tracking_code": "3SCMI0001234"})
    assert mails(shop, "bea") == ["orders/invoice_sent", "orders/book_shipped"]
    assert "3SCMI0001234" in body("orders/book_shipped")
    assert status(shop, instance_id) == "completed" and copies() == []


def test_unpaid_order_is_reminded_then_cancelled_and_credited(shop: Driver) -> None:
    instance_id = order(shop, "bea", "book", "ORD-3", quantity=2)
    assert totals(invoices("ORD-3")["invoice"]) == ("45.87", "4.13", "50.00")
    deadline = candidate_term_end(shop.engine.now(), "P30D")  # or through the next working day
    shop.later("P15D")
    assert mails(shop, "bea") == ["orders/invoice_sent", "orders/payment_reminder"]
    shop.until(deadline - timedelta(minutes=10))
    assert mails(shop, "bea") == ["orders/invoice_sent", "orders/payment_reminder"]
    shop.until(deadline + timedelta(minutes=10))  # past the payment term
    assert mails(shop, "bea") == ["orders/invoice_sent", "orders/payment_reminder", "orders/cancelled"]
    assert status(shop, instance_id) == "completed" and shop.inbox("olga") == []
    found = invoices("ORD-3")
    assert (found["invoice"].status, totals(found["credit_note"])) == ("credited", ("-45.87", "-4.13", "-50.00"))
    with pytest.raises(Exception, match="no instance is waiting"):
        shop.engine.deliver_message(shop.people["olga"], "payment_received", {},
                                    correlation={"invoice_number": found["invoice"].number})


def refusal(d: Driver, customer: str, data: dict[str, Any]) -> str:
    with pytest.raises(InvalidInput) as refused:
        d.engine.start(d.people[customer], "orders", "ORD-X", {"customer": customer, **data})
    assert refused.value.details == {"guard": "orders/english_certificate_allowed"}
    return refused.value.message


def test_guard_refuses_what_cannot_be_ordered(shop: Driver) -> None:
    message = refusal(shop, "bea", {"product": "english_certificate"})
    assert message == ("An English certificate can only be ordered by the holder of a valid certificate "
                       "in the Register Loopbaanprofessional; once you are (re)certified you can order it")
    certify(shop, "cas", expires_in_days=-1)
    assert "holder of a valid certificate" in refusal(shop, "cas", {"product": "english_certificate"})
    assert "Unknown product 'mug'" in refusal(shop, "bea", {"product": "mug"})
    assert "'quantity' must be" in refusal(shop, "bea", {"product": "book"})
    assert "'quantity' must be" in refusal(shop, "bea", {"product": "book", "quantity": 0})
    with session_scope() as s:
        assert s.scalars(select(Instance).where(Instance.process_id == "orders")).all() == []
        assert s.scalars(select(Invoice).where(Invoice.reference.startswith("Bestelling"))).all() == []


def test_handlers_refuse_what_they_cannot_do(shop: Driver) -> None:
    """The operators' own refusals, called as a worker would (no diagram needed)."""
    with session_scope() as s:
        ctx = handlers.HandlerContext(session=s, now=shop.engine.now(), idempotency_key="test:orders",
                                      settings=get_settings())
        with pytest.raises(handlers.PermanentError, match="'bea' is not in the register"):
            handlers.get("orders/current_certificate")(ctx, {"holder": "bea"})
        names = handlers.get("supervision/names")(ctx, {"holder": "bea", "supervisor": "nobody"})
    assert names == {"holder_name": "Bea", "supervisor_name": "nobody"}


def test_an_order_is_always_in_the_name_of_whoever_places_it(driver) -> None:
    from sqlalchemy import select

    from certflow.store.db import session_scope
    from certflow.store.models import Instance

    ann = driver.person("ann", ["candidate"], address={"street": "Dorpsstraat 2", "postal_code": "1234 AB", "city": "Ede", "country": "NL"})
    view = driver.engine.start(ann, "orders", "ORDER-ann-1", {"customer": "cas", "product": "book", "quantity": 1})
    with session_scope() as s:
        assert s.scalar(select(Instance.subject).where(Instance.id == view.id)) == "ann"
    driver.settle()
    assert driver.emails("cas") == []  # nothing billed to, or sent to, the person named
