"""The invoice as an A4 PDF a Dutch bookkeeper accepts, with an EPC (SEPA) QR code to pay it.

It carries what Dutch law asks of an invoice (Wet OB art. 35a): number, issue date, supplier and
customer name and address, the supplier's VAT id, description, supply date, the amount per VAT
rate with the rate and the VAT, and the payment details (IBAN, betalingskenmerk, term). It is
set in embedded DejaVu fonts, so a customer called Łukasz or Παπαδόπουλος is printed as written,
and stored as PDF/A-2b (certflow.services.pdfa): invoices are kept for 7 years. The output is
byte-for-byte reproducible, so rendering twice yields the same file.

Every text that could be long is measured before it is placed: table headers wrap inside their
column, values in the details block are right-aligned to the margin, and the supplier block
starts as far left as its longest line needs.
"""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import segno
from babel import Locale
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from certflow.services.billing.epc import EpcTransfer, epc_qr as make_epc_qr
from certflow.services.pdf_fonts import SANS, SANS_BOLD, register_fonts
from certflow.services.pdfa import to_pdfa
from certflow.settings import Settings
from certflow.store.billing import Invoice
from certflow.services.billing.numbers import format_payment_reference
from certflow.services.billing.totals import cents, totals

PAYMENT_TERM_DAYS = 30
LEFT, RIGHT, TOP = 20 * mm, A4[0] - 20 * mm, A4[1] - 20 * mm
FONT, BOLD = SANS, SANS_BOLD
HOME_COUNTRY = "NL"

LABELS = {
    "nl": {"invoice": "FACTUUR", "credit_note": "CREDITNOTA", "number": "Factuurnummer",
           "issue": "Factuurdatum", "credit_issue": "Datum creditnota", "supply": "Leverdatum", "due": "Vervaldatum",
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
           "issue": "Invoice date", "credit_issue": "Credit note date", "supply": "Date of supply", "due": "Due date",
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
    """Dutch notation: € 1.234,56 (a no-break space after the euro sign)."""
    text = f"{cents(abs(value)):,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{'-' if value < 0 else ''}€\u00a0{text}"  # no line break inside an amount


def unit_euro(value: Decimal) -> str:
    """A unit price: in cents, or to 4 places when derived from a VAT-inclusive price, so
    quantity x unit visibly adds up to the line amount."""
    if value == cents(value):
        return euro(value)
    text = f"{abs(value):,.4f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{'-' if value < 0 else ''}€\u00a0{text}"  # no line break inside an amount


def percent(rate: Decimal) -> str:
    return f"{rate.normalize():f}".replace(".", ",")


def dutch_date(d: date) -> str:
    return d.strftime("%d-%m-%Y")


def epc_qr(invoice: Invoice, settings: Settings) -> segno.QRCode | None:
    """The EPC QR code banking apps scan to pre-fill the transfer, with the betalingskenmerk
    as its structured reference (certflow.services.billing.epc); none for a credit note."""
    if invoice.kind != "invoice" or invoice.gross_total <= 0:
        return None
    return make_epc_qr(EpcTransfer(
        name=settings.supplier_name, iban=settings.supplier_iban, amount=invoice.gross_total,
        reference=invoice.payment_reference, bic=settings.supplier_bic))


def draw_qr(canvas: Canvas, qr: segno.QRCode, x: float, y: float, size: float, border: int = 4) -> None:
    """The code as black squares on the white page, ``size`` wide with its lower left corner at
    (``x``, ``y``), inside the quiet zone of ``border`` modules QR readers need. Drawn as one
    filled path of the dark runs of each row: sharp at any zoom or print resolution, and no
    image to build and compress (which cost more than the code itself)."""
    matrix = qr.matrix
    modules = len(matrix) + 2 * border
    runs = []
    for row_no, row in enumerate(matrix):
        top = border + len(matrix) - 1 - row_no  # PDF's y axis points up
        col = 0
        while col < len(row):
            if row[col]:
                start = col
                while col < len(row) and row[col]:
                    col += 1
                runs.append(f"{border + start} {top} {col - start} 1 re")
            else:
                col += 1
    canvas.saveState()
    canvas.translate(x, y)
    canvas.scale(size / modules, size / modules)
    canvas.setFillColorRGB(0, 0, 0)  # RGB, as the page's other colours: the output intent is sRGB
    canvas.addLiteral("\n".join(runs) + "\nf")
    canvas.restoreState()


def country_name(code: str, language: str) -> str:
    """``BE`` -> "België" / "Belgium"; text that is not an ISO code is printed as given."""
    code = code.strip()
    if len(code) == 2 and code.isalpha():
        return str(Locale(language).territories.get(code.upper(), code))
    return code


def render_pdf(invoice: Invoice, settings: Settings) -> bytes:
    """The invoice or credit note as PDF/A-2b bytes."""
    register_fonts()
    labels = LABELS.get(invoice.language, LABELS["nl"])
    title = f"{labels[invoice.kind]} {invoice.number}"
    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=A4, invariant=True, pageCompression=1, initialFontName=FONT)
    canvas.setTitle(title)
    canvas.setAuthor(settings.supplier_name)
    _header(canvas, invoice, settings, labels)
    y = _lines(canvas, invoice, labels, 185 * mm)
    y = _summary(canvas, invoice, labels, y - 8 * mm)
    _payment(canvas, invoice, settings, labels, y - 12 * mm)
    _footer(canvas, settings, labels)
    canvas.showPage()
    canvas.save()
    return to_pdfa(buf.getvalue(), title=title, author=settings.supplier_name,
                   created=invoice.created_at)


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Lines of at most ``width``: broken at spaces, and inside a word too long for a line
    (a reference like APP-2026-000017-HERCERTIFICERING has no space to break at)."""
    lines: list[str] = []
    for line in simpleSplit(text, font, size, width):
        while stringWidth(line, font, size) > width and len(line) > 1:
            cut = len(line) - 1
            while cut > 1 and stringWidth(line[:cut], font, size) > width:
                cut -= 1
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    return lines


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
    widest = max(stringWidth(line, BOLD if i == 0 else FONT, 9) for i, line in enumerate(supplier))
    _text_block(canvas, RIGHT - max(widest, 62 * mm), TOP, supplier, bold_first=True)
    address = invoice.customer_address
    country = str(address.get("country") or HOME_COUNTRY)
    customer = [invoice.customer_name, address.get("street", ""),
                f"{address.get('postal_code', '')}  {address.get('city', '')}"]
    if country.strip().upper() not in (HOME_COUNTRY, "NEDERLAND", "THE NETHERLANDS"):
        customer.append(country_name(country, invoice.language))
    lines = [part for line in customer for part in simpleSplit(line, FONT, 10, 95 * mm)]
    _text_block(canvas, LEFT, TOP - 30 * mm, lines, size=10, bold_first=True)
    _meta(canvas, invoice, labels, TOP - 52 * mm)


def _meta(canvas: Canvas, invoice: Invoice, labels: dict[str, str], y: float) -> None:
    """Number, dates and references: labels at a fixed left edge, values right-aligned to the
    margin, so a long value grows leftwards instead of off the page."""
    credit = invoice.kind == "credit_note"
    rows = [(labels["credit_number" if credit else "number"], invoice.number),
            (labels["credit_issue" if credit else "issue"], dutch_date(invoice.issue_date)),
            (labels["supply"], dutch_date(invoice.supply_date))]
    if not credit:
        rows += [(labels["due"], dutch_date(invoice.due_date)),
                 (labels["payref"], format_payment_reference(invoice.payment_reference))]
    elif invoice.credits_invoice is not None:
        rows.append((labels["credits"], invoice.credits_invoice.number))
    if invoice.reference:
        rows.append((labels["ref"], invoice.reference))
    for label, value in rows:
        canvas.setFont(FONT, 9)
        canvas.drawString(RIGHT - 80 * mm, y, label)
        canvas.setFont(BOLD, 9)
        for part in wrap(value, BOLD, 9, 40 * mm)[:3]:
            canvas.drawRightString(RIGHT, y, part)
            y -= 12


# Left edge of the description, then the RIGHT edges and widths of quantity, unit price, VAT
# rate and amount. Headers wrap within their width, so no language makes two of them collide.
_DESC = LEFT
_COLUMNS = (("qty", LEFT + 84 * mm, 16 * mm), ("unit", LEFT + 114 * mm, 27 * mm),
            ("rate", LEFT + 132 * mm, 15 * mm), ("amount", RIGHT, 35 * mm))
_DESC_WIDTH = LEFT + 84 * mm - 16 * mm - 4 * mm - _DESC


def _lines(canvas: Canvas, invoice: Invoice, labels: dict[str, str], y: float) -> float:
    canvas.setFont(BOLD, 9)
    canvas.drawString(_DESC, y, labels["desc"])
    depth = 1
    for key, right, width in _COLUMNS:
        parts = simpleSplit(labels[key], BOLD, 9, width)
        for n, part in enumerate(parts):
            canvas.drawRightString(right, y - n * 11, part)
        depth = max(depth, len(parts))
    y -= (depth - 1) * 11
    canvas.line(LEFT, y - 3, RIGHT, y - 3)
    y -= 14
    canvas.setFont(FONT, 9)
    for line in invoice.lines:
        values = {"qty": str(line.quantity), "unit": unit_euro(line.unit_net),
                  "rate": f"{percent(line.vat_rate)}%", "amount": euro(line.line_net)}
        for key, right, _width in _COLUMNS:
            canvas.drawRightString(right, y, values[key])
        description = line.description
        if line.vat_inclusive:
            description += " " + labels["incl"].format(price=euro(line.unit_price),
                                                       rate=percent(line.vat_rate))
        for part in simpleSplit(description, FONT, 9, _DESC_WIDTH):
            canvas.drawString(_DESC, y, part)
            y -= 12
    canvas.line(LEFT, y + 6, RIGHT, y + 6)
    return y


def _summary(canvas: Canvas, invoice: Invoice, labels: dict[str, str], y: float) -> float:
    x_label, x_value = LEFT + 70 * mm, RIGHT
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
    size = 34 * mm
    draw_qr(canvas, qr, RIGHT - size, y - size + 9, size)
    canvas.setFont(FONT, 7)
    canvas.drawCentredString(RIGHT - size / 2, y - size + 3, labels["scan"])


def _footer(canvas: Canvas, settings: Settings, labels: dict[str, str]) -> None:
    """The supplier's particulars, centred, on as many lines as the page width needs."""
    canvas.setFont(FONT, 7)
    parts = [settings.supplier_name, settings.supplier_address,
             f"{labels['kvk']} {settings.supplier_kvk}", f"{labels['vat_id']} {settings.supplier_vat_id}",
             f"IBAN {settings.supplier_iban}"]
    lines: list[str] = []
    for part in parts:
        joined = f"{lines[-1]} · {part}" if lines else part
        if lines and stringWidth(joined, FONT, 7) <= RIGHT - LEFT:
            lines[-1] = joined
        else:
            lines.append(part)
    y = 12 * mm + 9 * (len(lines) - 1)
    for line in lines:
        canvas.drawCentredString(A4[0] / 2, y, line)
        y -= 9
