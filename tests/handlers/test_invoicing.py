"""Invoices and credit notes: amounts, numbering, idempotency, PDF, EPC QR and UBL."""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pypdf
import pytest
from lxml import etree
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

import certflow.store.all_models  # noqa: F401  (registers every table)
import handlers.invoicing  # noqa: F401  (registers the operators)
from certflow.services.billing import invoices as invoice_service
from certflow.settings import Settings
from certflow.store.base import Base
from certflow.store.billing import Invoice, InvoiceSequence
from certflow.store.models import User
from handlers import REGISTRY, HandlerContext, PermanentError
from certflow.services.billing.numbers import check_digit, is_valid_payment_reference, payment_reference
from tests.support import IN_CI, MUTATION_RUN, PG_ADMIN, blocked_on_a_lock

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
UBL_DIR = Path(__file__).resolve().parents[1] / "data" / "ubl21" / "maindoc"
ADDRESS = {"street": "Oudegracht 1", "postal_code": "3511 AA", "city": "Utrecht", "country": "NL"}


NOT_RENDERED_PDF = b"%PDF- (not rendered: a mutation run, and this test is not about documents)"


@pytest.fixture(autouse=True)
def documents_only_where_tested(request: pytest.FixtureRequest,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Under bench/mutation.py, an invoice's PDF and UBL are made only in the tests marked
    ``documents`` (those that read them): rendering is most of an invoice test's time and every
    mutant runs these tests again. The normal suite renders every invoice it makes."""
    if MUTATION_RUN and request.node.get_closest_marker("documents") is None:
        monkeypatch.setattr(invoice_service, "render_pdf", lambda *_: NOT_RENDERED_PDF)
        monkeypatch.setattr(invoice_service, "build_ubl", lambda *_: "<not-rendered/>")


def add_user(session: Session, username: str = "jan", address: dict[str, Any] | None = None,
             language: str = "nl") -> User:
    user = User(username=username, display_name="Jan de Vries", email=f"{username}@example.nl",
                language=language, address=ADDRESS if address is None else address,
                groups=["candidate"],
                created_at=NOW)
    session.add(user)
    session.flush()
    return user


def run(session: Session, settings: Settings, operator: str, params: dict[str, Any],
        key: str | None = None, now: datetime = NOW) -> dict[str, Any]:
    ctx = HandlerContext(session=session, now=now, idempotency_key=key or uuid.uuid4().hex,
                         settings=settings)
    return REGISTRY[operator](ctx, params)


def invoice(session: Session, settings: Settings, product: str = "certification",
            **params: Any) -> dict[str, Any]:
    return run(session, settings, "invoicing/create_invoice",
               {"customer": "jan", "product": product, **params})


def warm_up() -> None:
    """One invoice and its credit note, rendered, on a throwaway database: loads everything an
    invoice test loads the first time (tests/conftest.py calls it once in a mutation run)."""
    import tempfile

    from tests.handlers._fixtures_records import _fresh_database

    engine = create_engine("sqlite://", creator=_fresh_database)
    with tempfile.TemporaryDirectory() as var, Session(engine) as session:
        settings = Settings(_env_file=None, env="test", var_dir=Path(var), smtp_host="")  # type: ignore[call-arg]
        add_user(session)
        number = invoice(session, settings)["invoice_number"]
        run(session, settings, "invoicing/credit_note", {"invoice_number": number, "reason": "x"})
    engine.dispose()
    for document in ("Invoice", "CreditNote"):
        ubl_schema(document)


# -- amounts ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("product", "net", "vat", "total"),
    [
        ("certification", "650.00", "136.50", "786.50"),
        ("recertification", "625.00", "131.25", "756.25"),
        ("register_fee", "133.00", "27.93", "160.93"),
        ("english_certificate", "22.00", "4.62", "26.62"),
        ("book", "22.94", "2.06", "25.00"),  # 25.00 incl. 9%: net derived, gross exact
    ],
)
def test_amounts_per_product(session: Session, settings: Settings, product: str, net: str,
                             vat: str, total: str) -> None:
    add_user(session)
    result = invoice(session, settings, product)
    assert (result["net"], result["vat"], result["total"]) == (net, vat, total)


def test_book_supplied_in_2018_carries_6_percent(session: Session, settings: Settings) -> None:
    add_user(session)
    result = invoice(session, settings, "book", supply_date="2018-06-01")
    assert (result["net"], result["vat"], result["total"]) == ("23.58", "1.42", "25.00")
    line = session.get(Invoice, result["invoice_id"]).lines[0]  # type: ignore[union-attr]
    assert line.vat_rate == Decimal("6.00") and line.vat_category == "low"


def test_quantity_multiplies_before_rounding(session: Session, settings: Settings) -> None:
    add_user(session)
    result = invoice(session, settings, "book", quantity=3)
    assert (result["net"], result["vat"], result["total"]) == ("68.81", "6.19", "75.00")


# -- numbering and idempotency ---------------------------------------------------------------
def test_numbers_are_consecutive_and_restart_each_year(session: Session,
                                                       settings: Settings) -> None:
    add_user(session)
    late = datetime(2026, 12, 31, 22, 0, tzinfo=timezone.utc)  # 23:00 in Amsterdam
    new_year = datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc)  # already 2027 there
    numbers = [run(session, settings, "invoicing/create_invoice",
                   {"customer": "jan", "product": "book"}, now=when)["invoice_number"]
               for when in (NOW, NOW, late, new_year, new_year)]
    assert numbers == ["2026-000001", "2026-000002", "2026-000003", "2027-000001", "2027-000002"]
    assert session.get(InvoiceSequence, 2026).last_seq == 3  # type: ignore[union-attr]


def test_same_key_returns_the_same_invoice(session: Session, settings: Settings) -> None:
    add_user(session)
    first = run(session, settings, "invoicing/create_invoice",
                {"customer": "jan", "product": "book"}, key="inst-1:task-9:1")
    again = run(session, settings, "invoicing/create_invoice",
                {"customer": "jan", "product": "book"}, key="inst-1:task-9:1")
    assert again == first
    assert session.scalar(select(func.count()).select_from(Invoice)) == 1
    assert session.get(InvoiceSequence, 2026).last_seq == 1  # type: ignore[union-attr]
    assert invoice(session, settings)["invoice_number"] == "2026-000002"


def test_result_shape(session: Session, settings: Settings) -> None:
    add_user(session)
    result = invoice(session, settings, reference="APP-2026-17")
    assert result == {
        "invoice_id": result["invoice_id"], "invoice_number": "2026-000001",
        "payment_reference": "4202600000000001", "net": "650.00", "vat": "136.50",
        "total": "786.50", "issue_date": "2026-03-02", "due_date": "2026-04-01",
    }
    stored = session.get(Invoice, result["invoice_id"])
    assert stored is not None and stored.reference == "APP-2026-17"
    assert stored.customer_address == ADDRESS and stored.status == "open"


# -- refusals --------------------------------------------------------------------------------
def test_unknown_customer_is_a_permanent_error(session: Session, settings: Settings) -> None:
    with pytest.raises(PermanentError, match="customer 'nobody' is unknown"):
        run(session, settings, "invoicing/create_invoice",
            {"customer": "nobody", "product": "certification"})


@pytest.mark.parametrize("missing", ["street", "postal_code", "city"])
def test_missing_address_field_is_named(session: Session, settings: Settings, missing: str) -> None:
    add_user(session, address={k: v for k, v in ADDRESS.items() if k != missing})
    with pytest.raises(PermanentError, match=f"customer 'jan' has no address.{missing}"):
        invoice(session, settings)
    assert session.scalar(select(func.count()).select_from(Invoice)) == 0


def test_no_address_at_all(session: Session, settings: Settings) -> None:
    add_user(session, address={})
    with pytest.raises(PermanentError, match="address.street, address.postal_code, address.city"):
        invoice(session, settings)


def test_unknown_product_and_bad_input(session: Session, settings: Settings) -> None:
    add_user(session)
    with pytest.raises(PermanentError, match="no fee for product 'coaching'"):
        invoice(session, settings, "coaching")
    with pytest.raises(PermanentError, match="quantity"):
        invoice(session, settings, quantity=0)


# -- payment reference -----------------------------------------------------------------------
def test_payment_reference_check_digit() -> None:
    # The Betaalvereniging's published example: (5)000 0567 8901 2345.
    assert check_digit("000056789012345") == 5
    assert is_valid_payment_reference("5000 0567 8901 2345")
    assert not is_valid_payment_reference("6000056789012345")
    assert check_digit("000000000000000") == 0  # 11 - 0 = 11 -> 0
    assert check_digit("000000000000006") == 1  # 12 mod 11 = 1, 11 - 1 = 10 -> 1
    refs = {payment_reference(2026, n) for n in range(1, 2000)}
    assert len(refs) == 1999 and all(is_valid_payment_reference(r) for r in refs)


# -- PDF and EPC QR --------------------------------------------------------------------------
@pytest.mark.documents
def test_pdf_is_a_complete_invoice(session: Session, settings: Settings) -> None:
    add_user(session)
    result = invoice(session, settings, reference="APP-7")
    stored = session.get(Invoice, result["invoice_id"])
    assert stored is not None and stored.pdf is not None
    assert stored.pdf.startswith(b"%PDF")
    page = pypdf.PdfReader(io.BytesIO(stored.pdf)).pages[0]
    content = page.extract_text()
    for expected in ("FACTUUR", "2026-000001", "02-03-2026", "01-04-2026", "Jan de Vries",
                     "Oudegracht 1", "3511 AA", "NL001234567B01", "12345678", "NL91ABNA0417164300",
                     "4202 6000 0000 0001", "€ 650,00", "€ 136,50", "€ 786,50", "21%", "APP-7",
                     "30 dagen"):
        assert expected in content, expected
    from tests.support_documents import decode_qr

    assert len(decode_qr(stored.pdf)) == 1  # the EPC QR code, as a phone camera reads it


@pytest.mark.documents
def test_english_customer_gets_an_english_invoice(session: Session, settings: Settings) -> None:
    add_user(session, language="en")
    stored = session.get(Invoice, invoice(session, settings)["invoice_id"])
    assert stored is not None and stored.pdf is not None
    content = pypdf.PdfReader(io.BytesIO(stored.pdf)).pages[0].extract_text()
    assert "INVOICE" in content and "Certification as a career professional" in content


# -- UBL -------------------------------------------------------------------------------------
PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


@cache
def ubl_schema(document: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(UBL_DIR / f"UBL-{document}-2.1.xsd"), PARSER))


def validate_ubl(xml: str, document: str) -> etree._ElementTree:
    schema = ubl_schema(document)
    doc = etree.parse(io.BytesIO(xml.encode()), PARSER)
    assert schema.validate(doc), schema.error_log
    return doc


NS = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
      "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}


@pytest.mark.documents
def test_ubl_invoice_validates_and_carries_the_invoice_fields(session: Session,
                                                             settings: Settings) -> None:
    add_user(session)
    stored = session.get(Invoice, invoice(session, settings, "book")["invoice_id"])
    assert stored is not None and stored.ubl_xml
    doc = validate_ubl(stored.ubl_xml, "Invoice")
    value = lambda path: doc.xpath(f"string({path})", namespaces=NS)  # noqa: E731
    assert value("/*/cbc:CustomizationID") == "urn:cen.eu:en16931:2017"  # a private person
    assert value("/*/cbc:InvoiceTypeCode") == "380"
    assert value("/*/cbc:ID") == "2026-000001"
    assert value("/*/cbc:DueDate") == "2026-04-01"
    assert value("/*/cbc:DocumentCurrencyCode") == "EUR"
    assert value("//cac:InvoiceLine/cbc:ID") == "1"
    assert value("//cac:AccountingSupplierParty//cbc:EndpointID/@schemeID") == "0106"
    assert value("//cac:AccountingSupplierParty//cac:PartyTaxScheme/cbc:CompanyID") == "NL001234567B01"
    assert value("//cac:PaymentMeans/cbc:PaymentMeansCode") == "58"
    assert value("//cac:PaymentMeans/cbc:PaymentID") == "4202600000000001"
    assert value("//cac:PayeeFinancialAccount/cbc:ID") == "NL91ABNA0417164300"
    assert value("//cac:TaxSubtotal/cbc:TaxableAmount") == "22.94"
    assert value("//cac:TaxSubtotal/cbc:TaxAmount") == "2.06"
    assert value("//cac:TaxSubtotal/cac:TaxCategory/cbc:ID") == "S"
    assert value("//cac:TaxSubtotal/cac:TaxCategory/cbc:Percent") == "9"
    assert value("//cac:LegalMonetaryTotal/cbc:PayableAmount") == "25.00"


# -- credit notes ----------------------------------------------------------------------------
@pytest.mark.documents
def test_credit_note_reverses_the_invoice(session: Session, settings: Settings) -> None:
    add_user(session)
    original = invoice(session, settings)
    note = run(session, settings, "invoicing/credit_note",
               {"invoice_number": original["invoice_number"], "reason": "Dubbel gefactureerd"},
               key="credit-1")
    assert note["invoice_number"] == "2026-000002"
    assert note["credits_invoice_number"] == "2026-000001"
    assert (note["net"], note["vat"], note["total"]) == ("-650.00", "-136.50", "-786.50")
    stored = session.get(Invoice, note["invoice_id"])
    assert stored is not None and stored.kind == "credit_note"
    assert stored.credits_invoice_id == original["invoice_id"]
    assert session.get(Invoice, original["invoice_id"]).status == "credited"  # type: ignore[union-attr]
    doc = validate_ubl(stored.ubl_xml or "", "CreditNote")
    ref = doc.xpath("string(//cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID)",
                    namespaces=NS)
    assert ref == "2026-000001"
    assert doc.xpath("string(//cac:LegalMonetaryTotal/cbc:PayableAmount)", namespaces=NS) == "786.50"
    content = pypdf.PdfReader(io.BytesIO(stored.pdf or b"")).pages[0].extract_text()
    assert "CREDITNOTA" in content and "2026-000001" in content and "-€ 786,50" in content
    # Same key: the same credit note; another key: refused, the invoice is already credited.
    assert run(session, settings, "invoicing/credit_note",
               {"invoice_number": "2026-000001", "reason": "x"}, key="credit-1") == note
    with pytest.raises(PermanentError, match="already credited"):
        run(session, settings, "invoicing/credit_note",
            {"invoice_number": "2026-000001", "reason": "again"})


def test_credit_note_refusals(session: Session, settings: Settings) -> None:
    add_user(session)
    with pytest.raises(PermanentError, match="no invoice numbered '2026-000404'"):
        run(session, settings, "invoicing/credit_note",
            {"invoice_number": "2026-000404", "reason": "x"})
    invoice(session, settings)
    run(session, settings, "invoicing/credit_note", {"invoice_number": "2026-000001", "reason": "x"})
    with pytest.raises(PermanentError, match="is a credit note"):
        run(session, settings, "invoicing/credit_note",
            {"invoice_number": "2026-000002", "reason": "x"})


# -- gapless numbering under concurrency (PostgreSQL) -----------------------------------------
@pytest.fixture
def pg_engine() -> Iterator[Any]:
    name = f"certflow_test_invoices_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI=true but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    engine = create_engine(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", pool_size=8)
    try:
        Base.metadata.create_all(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _worker(engine: Any, settings: Settings, worker: int, count: int,
            errors: list[BaseException]) -> None:
    """``count`` invoices, each in its own transaction; every 7th is rolled back after it
    took its number, as a crashing job would."""
    try:
        for i in range(count):
            with Session(engine) as session:
                result = run(session, settings, "invoicing/create_invoice",
                             {"customer": "jan", "product": "register_fee"}, key=f"w{worker}-{i}")
                assert result["invoice_number"].startswith("2026-")
                if i % 7 == 3:
                    session.rollback()
                else:
                    session.commit()
    except BaseException as exc:  # noqa: BLE001 - reported by the main thread
        errors.append(exc)


@pytest.mark.integration
def test_numbers_stay_gapless_under_concurrent_workers(pg_engine: Any, settings: Settings) -> None:
    with Session(pg_engine) as session:
        add_user(session)
        session.commit()
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_worker, args=(pg_engine, settings, w, 25, errors))
               for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors
    with Session(pg_engine) as session:
        seqs = session.scalars(select(Invoice.seq).order_by(Invoice.seq)).all()
        keys = session.scalars(select(Invoice.idempotency_key)).all()
        last = session.get(InvoiceSequence, 2026)
    rolled_back = 4 * sum(1 for i in range(25) if i % 7 == 3)
    assert len(seqs) == 100 - rolled_back
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no duplicate
    assert last is not None and last.last_seq == len(seqs)
    assert len(set(keys)) == len(keys)


@pytest.mark.integration
def test_a_redelivered_job_waiting_on_the_lock_gets_the_first_invoice(
        pg_engine: Any, settings: Settings) -> None:
    """The second run passes the unlocked key check, waits for the sequence lock, and must
    then find the first run's invoice instead of taking a second number."""
    with Session(pg_engine) as session:
        add_user(session)
        session.commit()
    params = {"customer": "jan", "product": "book"}
    first_session = Session(pg_engine)
    first = run(first_session, settings, "invoicing/create_invoice", params, key="same")
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with Session(pg_engine) as session:
                results.append(run(session, settings, "invoicing/create_invoice", params,
                                   key="same"))
                session.commit()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    assert blocked_on_a_lock(pg_engine, thread)  # on the year's sequence row
    first_session.commit()
    first_session.close()
    thread.join(timeout=30)
    assert not errors, errors
    assert results == [first]
    with Session(pg_engine) as session:
        assert session.scalar(select(func.count()).select_from(Invoice)) == 1
        assert session.get(InvoiceSequence, 2026).last_seq == 1  # type: ignore[union-attr]
