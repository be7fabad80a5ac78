"""The documents a customer receives, checked with tools nobody on the project wrote: UBL against
CEN's EN 16931 rules (Saxon), the EPC QR code decoded from the rendered PDF (PDFium + ZXing),
and the layout of every document kind read back with pdfplumber."""

from __future__ import annotations

import io
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import pikepdf
import pypdf
import pytest
from lxml import etree
from sqlalchemy.orm import Session

import handlers.certificates  # noqa: F401  (registers the operators)
import handlers.invoicing  # noqa: F401  (registers the operators)
from certflow.settings import Settings
from certflow.store.billing import Invoice, InvoiceLine
from certflow.store.models import User
from handlers import REGISTRY, PermanentError
from certflow.services.certificates import certificate_pdf
from certflow.services.billing.ubl import build_ubl
from tests.handlers._fixtures_records import NOW, add_user, engine, make_ctx, session, settings  # noqa: F401
from tests.support_documents import decode_qr, en16931_errors, en16931_report, layout_problems

NS = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
      "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}
PEPPOL = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
BELGIUM = {"street": "Wetstraat 16", "postal_code": "1000", "city": "Brussel", "country": "BE"}
NAMES = "Łukasz Wójcik-Şahin Παπαδοπούλου"


def run(session: Session, settings: Settings, operator: str, params: dict[str, Any],
        now: datetime = NOW) -> dict[str, Any]:
    return REGISTRY[operator](make_ctx(session, settings, uuid.uuid4().hex, now), params)


def customer(session: Session, username: str = "jan", *, organisation: bool = False,
             language: str = "nl", address: dict[str, str] | None = None,
             name: str = "Jan de Vries", kvk: str | None = "69599068",
             oin: str | None = None) -> User:
    user = add_user(session, username, name, language=language)
    if address is not None:
        user.address = address
    if organisation:
        user.customer_type, user.kvk_number, user.oin = "organisation", kvk, oin
        user.vat_id = "NL859871453B01"
    session.flush()
    return user


def invoiced(session: Session, settings: Settings, product: str = "certification",
             username: str = "jan", **params: Any) -> Invoice:
    result = run(session, settings, "invoicing/create_invoice",
                 {"customer": username, "product": product, **params})
    found = session.get(Invoice, result["invoice_id"])
    assert found is not None
    return found


def credited(session: Session, settings: Settings, original: Invoice) -> Invoice:
    result = run(session, settings, "invoicing/credit_note",
                 {"invoice_number": original.number, "reason": "Dubbel gefactureerd"})
    found = session.get(Invoice, result["invoice_id"])
    assert found is not None
    return found


def with_extra_line(session: Session, settings: Settings, invoice: Invoice, *, rate: str,
                    category: str, net: str) -> Invoice:
    """The invoice with a second line at another VAT rate, re-totalled and re-rendered (the
    fee tables never put two products on one invoice, but the documents must handle it)."""
    from certflow.services.billing.pdf import render_pdf
    from certflow.services.billing.totals import totals

    invoice.lines.append(InvoiceLine(
        position=2, product="extra", description="Extra regel", quantity=1,
        unit_price=Decimal(net), vat_inclusive=False, unit_net=Decimal(net),
        vat_rate=Decimal(rate), vat_category=category, line_net=Decimal(net)))
    computed = totals(invoice.lines)
    invoice.net_total, invoice.vat_total = computed.net, computed.vat
    invoice.gross_total = computed.gross
    invoice.pdf = render_pdf(invoice, settings)
    invoice.ubl_xml = build_ubl(invoice, settings)
    session.flush()
    return invoice


def xpath(xml: str, path: str) -> str:
    return str(etree.fromstring(xml.encode()).xpath(f"string({path})", namespaces=NS))


# -- UBL: EN 16931 for everyone, Peppol for organisations --------------------------------------
def test_every_document_kind_passes_the_en16931_rules(session: Session,
                                                      settings: Settings) -> None:
    customer(session, "jan")
    customer(session, "acme", organisation=True, name="Loopbaanpraktijk De Brug B.V.")
    customer(session, "gov", organisation=True, name="Gemeente Utrecht", kvk=None,
             oin="00000001002220647000")
    customer(session, "lea", address=BELGIUM, language="en", name=NAMES)
    documents = {
        "person invoice": invoiced(session, settings),
        "organisation invoice": invoiced(session, settings, username="acme"),
        "public body invoice": invoiced(session, settings, "register_fee", username="gov"),
        "book, VAT included": invoiced(session, settings, "book", quantity=3),
        "foreign customer": invoiced(session, settings, "english_certificate", username="lea"),
    }
    documents["person credit note"] = credited(session, settings, documents["person invoice"])
    documents["organisation credit note"] = credited(session, settings,
                                                     documents["organisation invoice"])
    documents["several rates"] = with_extra_line(
        session, settings, invoiced(session, settings, "book"), rate="21", category="standard",
        net="22.00")
    documents["zero-rated line"] = with_extra_line(
        session, settings, invoiced(session, settings, "register_fee"), rate="0",
        category="zero", net="10.00")
    for kind, document in documents.items():
        assert document.ubl_xml
        assert en16931_errors(document.ubl_xml) == [], kind
    zero = documents["zero-rated line"].ubl_xml or ""
    assert xpath(zero, "//cac:TaxSubtotal[cbc:TaxAmount = '0.00']/cac:TaxCategory/cbc:ID") == "Z"


def test_a_broken_document_fails_with_the_rule_that_says_why(session: Session,
                                                            settings: Settings) -> None:
    customer(session)
    xml = invoiced(session, settings).ubl_xml or ""
    wrong_total = xml.replace('<cbc:PayableAmount currencyID="EUR">786.50',
                              '<cbc:PayableAmount currencyID="EUR">786.51')
    assert {f.rule for f in en16931_errors(wrong_total)} == {"BR-CO-16"}
    no_buyer_name = xml.replace("<cbc:RegistrationName>Jan de Vries</cbc:RegistrationName>",
                                "<cbc:RegistrationName></cbc:RegistrationName>")
    assert "BR-07" in {f.rule for f in en16931_errors(no_buyer_name)}
    bad_scheme = xml.replace('schemeID="EM"', 'schemeID="XX"')
    assert "BR-CL-25" in {f.rule for f in en16931_report(bad_scheme)}


def test_an_organisation_gets_a_peppol_document_addressed_to_its_kvk_or_oin(
        session: Session, settings: Settings) -> None:
    customer(session, "acme", organisation=True, name="Loopbaanpraktijk De Brug B.V.")
    customer(session, "gov", organisation=True, name="Gemeente Utrecht", kvk="30280353",
             oin="00000001002220647000")
    company = invoiced(session, settings, username="acme").ubl_xml or ""
    assert xpath(company, "/*/cbc:CustomizationID") == PEPPOL
    assert xpath(company, "/*/cbc:ProfileID") == "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
    buyer = "//cac:AccountingCustomerParty/cac:Party"
    assert xpath(company, f"{buyer}/cbc:EndpointID") == "69599068"
    assert xpath(company, f"{buyer}/cbc:EndpointID/@schemeID") == "0106"
    assert xpath(company, f"{buyer}/cac:PartyLegalEntity/cbc:CompanyID/@schemeID") == "0106"
    assert xpath(company, f"{buyer}/cac:PartyTaxScheme/cbc:CompanyID") == "NL859871453B01"
    # PEPPOL-EN16931-CL008: every electronic address uses a scheme of the Peppol EAS list.
    schemes = etree.fromstring(company.encode()).xpath("//cbc:EndpointID/@schemeID", namespaces=NS)
    assert schemes == ["0106", "0106"]
    public = invoiced(session, settings, username="gov").ubl_xml or ""
    assert xpath(public, f"{buyer}/cbc:EndpointID") == "00000001002220647000"
    assert xpath(public, f"{buyer}/cbc:EndpointID/@schemeID") == "0190"


def test_a_private_person_gets_an_en16931_document_without_a_peppol_claim(
        session: Session, settings: Settings) -> None:
    customer(session)
    xml = invoiced(session, settings).ubl_xml or ""
    assert xpath(xml, "/*/cbc:CustomizationID") == "urn:cen.eu:en16931:2017"
    assert "peppol" not in xml
    assert xpath(xml, "//cac:AccountingCustomerParty//cbc:EndpointID/@schemeID") == "EM"


def test_an_organisation_without_kvk_or_oin_is_not_invoiced(session: Session,
                                                           settings: Settings) -> None:
    customer(session, "acme", organisation=True, kvk=None, oin=None)
    with pytest.raises(PermanentError, match="has no kvk_number or oin"):
        invoiced(session, settings, username="acme")


# -- EPC QR, as a banking app reads it ---------------------------------------------------------
def test_the_qr_code_on_the_invoice_carries_the_reference_structured_and_two_decimals(
        session: Session, settings: Settings) -> None:
    customer(session)
    document = invoiced(session, settings)
    assert document.pdf is not None
    codes = decode_qr(document.pdf)
    assert len(codes) == 1
    assert len(codes[0]) <= 331
    lines = codes[0].decode("utf-8").split("\n")
    assert lines[:4] == ["BCD", "002", "1", "SCT"]  # EPC069-12 v2, UTF-8, SEPA credit transfer
    assert lines[4:8] == ["ABNANL2A", "Stichting CMI", "NL91ABNA0417164300", "EUR786.50"]
    assert lines[8] == ""  # no purpose code
    assert lines[9] == "4202600000000001"  # structured creditor reference: the betalingskenmerk
    assert lines[10:] in ([], [""])  # and no free text beside it
    book = invoiced(session, settings, "book", quantity=2)
    assert decode_qr(book.pdf or b"")[0].decode().split("\n")[7] == "EUR50.00"


def test_a_credit_note_has_no_qr_code(session: Session, settings: Settings) -> None:
    customer(session)
    note = credited(session, settings, invoiced(session, settings))
    assert decode_qr(note.pdf or b"") == []


# -- layout --------------------------------------------------------------------------------------
@pytest.mark.parametrize("language", ["nl", "en"])
def test_no_text_overlaps_or_leaves_the_margins(session: Session, settings: Settings,
                                               language: str) -> None:
    customer(session, "jan", language=language)
    customer(session, "lea", language=language, address=BELGIUM, name=NAMES)
    documents = [invoiced(session, settings, reference="APP-2026-000017-HERCERTIFICERING"),
                 invoiced(session, settings, "book", quantity=12),
                 invoiced(session, settings, "english_certificate", username="lea")]
    documents.append(credited(session, settings, documents[0]))
    documents.append(with_extra_line(session, settings, invoiced(session, settings, "book"),
                                     rate="21", category="standard", net="1234567.89"))
    for document in documents:
        assert layout_problems(document.pdf or b"") == [], (document.kind, document.number)


def test_credit_note_and_foreign_address_are_labelled_in_words(session: Session,
                                                              settings: Settings) -> None:
    customer(session, "lea", address=BELGIUM)
    note = credited(session, settings, invoiced(session, settings, username="lea"))
    text = pypdf.PdfReader(io.BytesIO(note.pdf or b"")).pages[0].extract_text()
    assert "Datum creditnota" in text and "Factuurdatum" not in text
    assert "België" in text and "\nBE\n" not in text


def test_names_in_any_script_print_on_invoice_and_certificate(session: Session,
                                                             settings: Settings) -> None:
    customer(session, "lea", name=NAMES)
    document = invoiced(session, settings, username="lea")
    issued = run(session, settings, "certificates/issue", {"holder": "lea"})
    certificate = certificate_pdf(session, issued["certificate_id"])
    for pdf in (document.pdf or b"", certificate):
        text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
        assert NAMES in " ".join(text.split()), text
        assert unembedded_fonts(pdf) == []
    assert layout_problems(certificate, side_mm=20, end_mm=20) == []


# -- PDF/A -----------------------------------------------------------------------------------------
def unembedded_fonts(pdf: bytes) -> list[str]:
    missing = []
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        for page in doc.pages:
            for name, font in page.Resources.get("/Font", {}).items():
                fonts = [font] + list(font.get("/DescendantFonts", []))
                if not any("/FontDescriptor" in f and any(
                        k in f.FontDescriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
                        for f in fonts):
                    missing.append(f"{name} {font.get('/BaseFont')}")
    return missing


def test_the_stored_invoice_is_pdfa(session: Session, settings: Settings) -> None:
    customer(session)
    document = invoiced(session, settings)
    with pikepdf.open(io.BytesIO(document.pdf or b"")) as pdf:
        meta = pdf.open_metadata()
        assert (meta["pdfaid:part"], meta["pdfaid:conformance"]) == ("2", "B")
        assert meta["dc:title"] == f"FACTUUR {document.number}"
        intent = pdf.Root.OutputIntents[0]
        assert intent.S == "/GTS_PDFA1" and intent.DestOutputProfile.N == 3
        assert not pdf.is_encrypted and "/JavaScript" not in pdf.Root.get("/Names", {})
    assert unembedded_fonts(document.pdf or b"") == []
    # Reproducible: the same invoice renders to the same bytes.
    from certflow.services.billing.pdf import render_pdf

    assert render_pdf(document, settings) == document.pdf


def test_an_invoice_rendered_again_later_is_the_same_file(session: Session, settings: Settings) -> None:
    """Whichever worker renders an invoice, whenever (the mail's attachment, a later download),
    the file is the same: nothing in it depends on the moment it was made. LittleCMS stamped
    the sRGB profile with the second it was created, once per process."""
    import time

    from certflow.services import pdfa
    from certflow.services.billing.pdf import render_pdf

    customer(session)
    document = invoiced(session, settings)
    pdfa.srgb_profile.cache_clear()
    pdfa._srgb_profile_deflated.cache_clear()
    time.sleep(1.1)  # a new profile is made in another second
    assert render_pdf(document, settings) == document.pdf


def test_an_invoice_is_the_same_file_whatever_the_process_rendered_before(
        session: Session, settings: Settings) -> None:
    """Each face keeps the font programs of its last subsets, and the bytes of their widths
    and CMaps (certflow.services.pdf_fonts): an invoice rendered after others, with other
    characters in their names (more subsets than are kept), is the file rendered with nothing
    kept, and every name still prints."""
    import hashlib

    from reportlab.pdfbase import pdfmetrics

    from certflow.services import pdf_fonts
    from certflow.services.billing.pdf import render_pdf

    def rendered_alone(document: Invoice) -> bytes:
        for face in ("DejaVuSans", "DejaVuSans-Bold"):
            font = pdfmetrics.getFont(face)
            font.face.makeSubset._kept.clear()
            font.addObjects.widths.clear()
            font.addObjects.cmaps.clear()
        return render_pdf(document, settings)

    names = ["Jan de Vries", NAMES] + [f"Zoë {c}ß" for c in "éëèïöüçñåøłóźżęąşğ"]
    people = [customer(session, f"p{n}", name=name) for n, name in enumerate(names)]
    documents = [invoiced(session, settings, username=p.username) for p in people]
    assert len(names) > pdf_fonts.KEPT_SUBSETS
    def digests(pdfs: list[bytes]) -> list[str]:  # a readable failure, not two lists of PDFs
        return [hashlib.sha256(pdf).hexdigest()[:12] for pdf in pdfs]

    alone = [rendered_alone(d) for d in documents]
    for _ in range(2):  # the first pass fills what is kept, the second renders from it
        assert digests([render_pdf(d, settings) for d in documents]) == digests(alone)
    for name, pdf in zip(names, alone):
        assert name in " ".join(pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text().split())


def test_the_pdfa_metadata_reads_back_as_written_whatever_the_characters() -> None:
    """Title and author reach the XMP metadata (which archives and PDF/A checkers read) as
    given, with XML's special characters and any script, agreeing with the info dictionary."""
    from datetime import timedelta, timezone

    from reportlab.pdfgen.canvas import Canvas

    from certflow.services.pdfa import to_pdfa

    buf = io.BytesIO()
    canvas = Canvas(buf, invariant=True)
    canvas.drawString(100, 100, "x")
    canvas.showPage()
    canvas.save()
    title, author = 'Factuur <2026-000001> & "kopie"', "Łukasz & Παπαδόπουλος <b.v.>"
    created = datetime(2026, 3, 1, 9, 30, 5, 123, tzinfo=timezone(timedelta(hours=1)))
    with pikepdf.open(io.BytesIO(to_pdfa(buf.getvalue(), title=title, author=author,
                                         created=created))) as pdf:
        meta = pdf.open_metadata()
        assert (meta["dc:title"], meta["dc:creator"]) == (title, [author])
        assert meta["xmp:CreateDate"] == meta["xmp:ModifyDate"] == "2026-03-01T09:30:05+01:00"
        assert (str(pdf.docinfo["/Title"]), str(pdf.docinfo["/Author"])) == (title, author)
        assert str(pdf.docinfo["/CreationDate"]) == "D:20260301093005+01'00'"


def test_pdfs_are_rendered_with_reportlabs_c_speedups() -> None:
    """rl_accel (a pinned dependency) replaces ReportLab's pure-Python number formatting,
    checksums and text widths: the same PDF bytes for about a quarter less CPU per invoice.
    Without it ReportLab silently falls back to Python."""
    from reportlab.lib import rl_accel

    assert {"fp_str", "calcChecksum", "instanceStringWidthTTF"} <= set(rl_accel._c_funcs)
