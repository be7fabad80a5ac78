"""The invoice as an A4 PDF a Dutch bookkeeper accepts, with an EPC (SEPA) QR code to pay it.

It carries what Dutch law asks of an invoice (Wet OB art. 35a): number, issue date, supplier and
customer name and address, the supplier's VAT id, description, supply date, the amount per VAT
rate with the rate and the VAT, and the payment details (IBAN, betalingskenmerk, term). The
output is byte-for-byte reproducible (``invariant``), so rendering twice yields the same file.
"""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import segno
import segno.helpers
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfgen.canvas import Canvas

from certflow.settings import Settings
from certflow.store.billing import Invoice
from certflow.services.billing.numbers import format_payment_reference
from certflow.services.billing.totals import cents, totals

PAYMENT_TERM_DAYS = 30
LEFT, RIGHT, TOP = 20 * mm, A4[0] - 20 * mm, A4[1] - 20 * mm
FONT, BOLD = "Helvetica", "Helvetica-Bold"

LABELS = {
    "nl": {"invoice": "FACTUUR", "credit_note": "CREDITNOTA", "number": "Factuurnummer",
           "issue": "Factuurdatum", "supply": "Leverdatum", "due": "Vervaldatum",
           "payref": "Betalingskenmerk", "ref": "Uw referentie", "credits": "Crediteert factuur",
           "credit_number": "Creditnotanummer", "reason": "Reden",
           "incl": "(à {price} per stuk incl. {rate}% btw)",
           "desc": "Omschrijving", "qty": "Aantal", "unit": "Prijs excl. btw", "rate": "Btw",
           "amount": "Bedrag excl. btw", "net_at": "Totaal excl. btw {rate}%",
           "vat_at": "Btw {rate}% over {net}", "total": "Totaal", "vat_id": "Btw-nummer",
           "kvk": "KvK", "scan": "Scan om te betalen",
           "pay": "Betaal binnen {days} dagen, uiterlijk {due}, {amount} op IBAN {iban} (BIC {bic}) "
                  "ten name van {name}, onder vermelding van betalingskenmerk {ref}.",
           "refund": "Dit bedrag wordt met de oorspronkelijke factuur verrekend of aan u terugbetaald."},
    "en": {"invoice": "INVOICE", "credit_note": "CREDIT NOTE", "number": "Invoice number",
           "issue": "Invoice date", "supply": "Date of supply", "due": "Due date",
           "payref": "Payment reference", "ref": "Your reference", "credits": "Credits invoice",
           "credit_number": "Credit note number", "reason": "Reason",
           "incl": "({price} each incl. {rate}% VAT)",
           "desc": "Description", "qty": "Qty", "unit": "Unit price excl. VAT", "rate": "VAT",
           "amount": "Amount excl. VAT", "net_at": "Total excl. VAT {rate}%",
           "vat_at": "VAT {rate}% on {net}", "total": "Total", "vat_id": "VAT number",
           "kvk": "Chamber of Commerce", "scan": "Scan to pay",
           "pay": "Please pay {amount} within {days} days, by {due}, to IBAN {iban} (BIC {bic}) "
                  "in the name of {name}, quoting payment reference {ref}.",
           "refund": "This amount is set off against the original invoice or refunded to you."},
}


def euro(value: Decimal) -> str:
    """Dutch notation: EUR 1.234,56 (the euro sign is in Helvetica's WinAnsi encoding)."""
    text = f"{cents(abs(value)):,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{'-' if value < 0 else ''}€ {text}"


def unit_euro(value: Decimal) -> str:
    """A unit price: in cents, or to 4 places when derived from a VAT-inclusive price, so
    quantity x unit visibly adds up to the line amount."""
    if value == cents(value):
        return euro(value)
    text = f"{abs(value):,.4f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{'-' if value < 0 else ''}€ {text}"


def percent(rate: Decimal) -> str:
    return f"{rate.normalize():f}".replace(".", ",")


def dutch_date(d: date) -> str:
    return d.strftime("%d-%m-%Y")


def epc_qr(invoice: Invoice, settings: Settings) -> segno.QRCode | None:
    """The EPC QR code banking apps scan to pre-fill the transfer; none for a credit note.

    The betalingskenmerk goes in the unstructured text: the EPC structured field is meant for
    ISO 11649 (RF) references, and Dutch banks pass the text through to the statement, where
    the CAMT import recognises the reference by its check digit.
    """
    if invoice.kind != "invoice" or invoice.gross_total <= 0:
        return None
    return segno.helpers.make_epc_qr(
        name=settings.supplier_name[:70],
        iban=settings.supplier_iban.replace(" ", ""),
        amount=invoice.gross_total,
        text=f"{invoice.payment_reference} {invoice.number}",
        bic=settings.supplier_bic or None,
    )


def render_pdf(invoice: Invoice, settings: Settings) -> bytes:
    """The invoice or credit note as PDF bytes."""
    labels = LABELS.get(invoice.language, LABELS["nl"])
    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=A4, invariant=True, pageCompression=1)
    canvas.setTitle(f"{labels[invoice.kind]} {invoice.number}")
    canvas.setAuthor(settings.supplier_name)
    _header(canvas, invoice, settings, labels)
    y = _lines(canvas, invoice, labels, 185 * mm)
    y = _summary(canvas, invoice, labels, y - 8 * mm)
    _payment(canvas, invoice, settings, labels, y - 12 * mm)
    _footer(canvas, settings, labels)
    canvas.showPage()
    canvas.save()
    return buf.getvalue()


def _text_block(canvas: Canvas, x: float, y: float, lines: list[str], size: float = 9,
                bold_first: bool = False) -> float:
    for i, line in enumerate(lines):
        canvas.setFont(BOLD if bold_first and i == 0 else FONT, size)
        canvas.drawString(x, y, line)
        y -= size * 1.35
    return y


def _header(canvas: Canvas, invoice: Invoice, settings: Settings, labels: dict[str, str]) -> None:
    canvas.setFont(BOLD, 20)
    canvas.drawString(LEFT, TOP - 6 * mm, labels[invoice.kind])
    supplier = [settings.supplier_name, *[p.strip() for p in settings.supplier_address.split(",")],
                f"{labels['vat_id']}: {settings.supplier_vat_id}", f"{labels['kvk']}: {settings.supplier_kvk}",
                f"IBAN: {settings.supplier_iban}", f"BIC: {settings.supplier_bic}"]
    _text_block(canvas, RIGHT - 62 * mm, TOP, supplier, bold_first=True)
    address = invoice.customer_address
    country = address.get("country", "NL")
    customer = [invoice.customer_name, address.get("street", ""),
                f"{address.get('postal_code', '')}  {address.get('city', '')}"]
    if country.upper() not in ("NL", "NEDERLAND"):
        customer.append(country)
    _text_block(canvas, LEFT, TOP - 30 * mm, customer, size=10, bold_first=True)
    _meta(canvas, invoice, labels, TOP - 52 * mm)


def _meta(canvas: Canvas, invoice: Invoice, labels: dict[str, str], y: float) -> None:
    number_label = labels["number" if invoice.kind == "invoice" else "credit_number"]
    rows = [(number_label, invoice.number), (labels["issue"], dutch_date(invoice.issue_date)),
            (labels["supply"], dutch_date(invoice.supply_date))]
    if invoice.kind == "invoice":
        rows += [(labels["due"], dutch_date(invoice.due_date)),
                 (labels["payref"], format_payment_reference(invoice.payment_reference))]
    elif invoice.credits_invoice is not None:
        rows.append((labels["credits"], invoice.credits_invoice.number))
    if invoice.reference:
        rows.append((labels["ref"], invoice.reference))
    for label, value in rows:
        canvas.setFont(FONT, 9)
        canvas.drawString(RIGHT - 62 * mm, y, label)
        canvas.setFont(BOLD, 9)
        canvas.drawString(RIGHT - 28 * mm, y, value)
        y -= 12


# Left edge of the description, then the RIGHT edges of quantity, unit price, rate and amount.
_DESC, _QTY, _UNIT, _RATE, _AMOUNT = LEFT, LEFT + 92 * mm, LEFT + 120 * mm, LEFT + 137 * mm, RIGHT


def _lines(canvas: Canvas, invoice: Invoice, labels: dict[str, str], y: float) -> float:
    canvas.setFont(BOLD, 9)
    canvas.drawString(_DESC, y, labels["desc"])
    for x, key in ((_QTY, "qty"), (_UNIT, "unit"), (_RATE, "rate"), (_AMOUNT, "amount")):
        canvas.drawRightString(x, y, labels[key])
    canvas.line(LEFT, y - 3, RIGHT, y - 3)
    y -= 14
    canvas.setFont(FONT, 9)
    for line in invoice.lines:
        canvas.drawRightString(_QTY, y, str(line.quantity))
        canvas.drawRightString(_UNIT, y, unit_euro(line.unit_net))
        canvas.drawRightString(_RATE, y, f"{percent(line.vat_rate)}%")
        canvas.drawRightString(_AMOUNT, y, euro(line.line_net))
        description = line.description
        if line.vat_inclusive:
            description += " " + labels["incl"].format(price=euro(line.unit_price),
                                                       rate=percent(line.vat_rate))
        for part in simpleSplit(description, FONT, 9, _QTY - _DESC - 14 * mm):
            canvas.drawString(_DESC, y, part)
            y -= 12
    canvas.line(LEFT, y + 6, RIGHT, y + 6)
    return y


def _summary(canvas: Canvas, invoice: Invoice, labels: dict[str, str], y: float) -> float:
    x_label, x_value = LEFT + 80 * mm, RIGHT
    canvas.setFont(FONT, 9)
    for rate in totals(invoice.lines).per_rate:
        canvas.drawString(x_label, y, labels["net_at"].format(rate=percent(rate.rate)))
        canvas.drawRightString(x_value, y, euro(rate.net))
        y -= 12
        canvas.drawString(x_label, y, labels["vat_at"].format(rate=percent(rate.rate), net=euro(rate.net)))
        canvas.drawRightString(x_value, y, euro(rate.vat))
        y -= 12
    canvas.line(x_label, y + 6, RIGHT, y + 6)
    y -= 4
    canvas.setFont(BOLD, 11)
    canvas.drawString(x_label, y, labels["total"])
    canvas.drawRightString(x_value, y, euro(invoice.gross_total))
    return y


def _payment(canvas: Canvas, invoice: Invoice, settings: Settings, labels: dict[str, str],
             y: float) -> None:
    qr = epc_qr(invoice, settings)
    if qr is None:
        text = f"{labels['reason']}: {invoice.note}\n{labels['refund']}" if invoice.note else labels["refund"]
        lines = [part for para in text.split("\n") for part in simpleSplit(para, FONT, 9, RIGHT - LEFT)]
        _text_block(canvas, LEFT, y, lines)
        return
    text = labels["pay"].format(
        days=PAYMENT_TERM_DAYS, due=dutch_date(invoice.due_date), amount=euro(invoice.gross_total),
        iban=settings.supplier_iban, bic=settings.supplier_bic, name=settings.supplier_name,
        ref=format_payment_reference(invoice.payment_reference))
    _text_block(canvas, LEFT, y, simpleSplit(text, FONT, 9, 110 * mm))
    png = io.BytesIO()
    qr.save(png, kind="png", scale=4, border=2)
    png.seek(0)
    size = 34 * mm
    canvas.drawImage(ImageReader(png), RIGHT - size, y - size + 9, width=size, height=size)
    canvas.setFont(FONT, 7)
    canvas.drawCentredString(RIGHT - size / 2, y - size + 3, labels["scan"])


def _footer(canvas: Canvas, settings: Settings, labels: dict[str, str]) -> None:
    canvas.setFont(FONT, 7)
    canvas.drawCentredString(A4[0] / 2, 12 * mm, " · ".join([
        settings.supplier_name, settings.supplier_address,
        f"{labels['kvk']} {settings.supplier_kvk}", f"{labels['vat_id']} {settings.supplier_vat_id}",
        f"IBAN {settings.supplier_iban}"]))
