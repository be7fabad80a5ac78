"""The certificate as an A4 PDF, in Dutch or English (reportlab; bytes identical for identical
input, so a re-render can be compared with what was issued). Set in embedded DejaVu fonts, so
the holder's name prints as written in any Latin, Greek or Cyrillic letters, and stored as
PDF/A-2b like the invoices."""

from __future__ import annotations

from datetime import datetime
from io import BytesIO

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from certflow.localtime import LOCAL_TZ as LOCAL_ZONE
from certflow.services.email import long_date
from certflow.services.pdf_fonts import SANS, SANS_BOLD, SERIF_BOLD, register_fonts
from certflow.services.pdfa import to_pdfa
from certflow.store.register import Certificate

# The certifier's calendar: the date of issue printed is a Dutch date.
INK = colors.HexColor("#1d5c63")

TEXT = {
    "nl": {
        "title": "Certificaat", "declares": "{issuer} verklaart hierbij dat",
        "statement": "voldoet aan de eisen voor certificering als loopbaanprofessional en is "
                     "ingeschreven in het Register Loopbaanprofessional.",
        "register_number": "Registernummer", "level": "Niveau",
        "specialisation": "Specialisatie", "valid_from": "Geldig vanaf",
        "valid_until": "Geldig tot", "issued": "Uitgegeven op", "signed": "Namens {issuer}",
        "verify": "De actuele status van dit certificaat is na te gaan in het openbare "
                  "Register Loopbaanprofessional.",
    },
    "en": {
        "title": "Certificate", "declares": "{issuer} hereby declares that",
        "statement": "meets the requirements for certification as a career professional and "
                     "is entered in the Register Loopbaanprofessional (Register of Career "
                     "Professionals).",
        "register_number": "Register number", "level": "Level",
        "specialisation": "Specialisation", "valid_from": "Valid from",
        "valid_until": "Valid until", "issued": "Issued on", "signed": "On behalf of {issuer}",
        "verify": "The current status of this certificate can be checked in the public "
                  "Register Loopbaanprofessional.",
    },
}
LEVELS = {"RL": {"nl": "Loopbaanprofessional (RL)", "en": "Career Professional (RL)"}}




def render_pdf(cert: Certificate, holder_name: str, issuer: str, language: str) -> bytes:
    """An A4 certificate. ``invariant`` keeps the bytes identical for identical input, so a
    re-render (a copy, a retry) can be compared with what was issued."""
    register_fonts()
    text = TEXT.get(language, TEXT["nl"])
    title = f"{text['title']} {cert.register_number}"
    buf = BytesIO()
    pdf = Canvas(buf, pagesize=A4, invariant=True, initialFontName=SANS)
    pdf.setTitle(title)
    pdf.setAuthor(issuer)
    pdf.setSubject(holder_name)
    width, height = A4
    _frame(pdf, width, height)
    _heading(pdf, width, height, issuer, text)
    _declaration(pdf, width, height, holder_name, issuer, text)
    _details(pdf, width, _detail_rows(cert, language, text))
    _signature(pdf, width, cert.created_at, issuer, language, text)
    pdf.showPage()
    pdf.save()
    return to_pdfa(buf.getvalue(), title=title, author=issuer, created=cert.created_at)


def _frame(pdf: Canvas, width: float, height: float) -> None:
    pdf.setStrokeColor(INK)
    pdf.setLineWidth(3)
    pdf.rect(12 * mm, 12 * mm, width - 24 * mm, height - 24 * mm)
    pdf.setLineWidth(0.8)
    pdf.rect(16 * mm, 16 * mm, width - 32 * mm, height - 32 * mm)


def _heading(pdf: Canvas, width: float, height: float, issuer: str, text: dict[str, str]) -> None:
    pdf.setFillColor(INK)
    pdf.setFont(SANS_BOLD, 13)
    pdf.drawCentredString(width / 2, height - 40 * mm, issuer.upper())
    pdf.setFont(SANS, 11)
    pdf.drawCentredString(width / 2, height - 46 * mm, "Register Loopbaanprofessional")
    pdf.setFont(SERIF_BOLD, 44)
    pdf.drawCentredString(width / 2, height - 75 * mm, text["title"])


def _declaration(pdf: Canvas, width: float, height: float, holder_name: str, issuer: str,
                 text: dict[str, str]) -> None:
    pdf.setFillColor(colors.black)
    pdf.setFont(SANS, 12)
    pdf.drawCentredString(width / 2, height - 95 * mm, text["declares"].format(issuer=issuer))
    # Long names shrink to fit between the margins rather than run off the page.
    size = min(30.0, 30.0 * (width - 60 * mm) / stringWidth(holder_name, SERIF_BOLD, 30))
    pdf.setFont(SERIF_BOLD, size)
    pdf.drawCentredString(width / 2, height - 115 * mm, holder_name)
    pdf.setStrokeColor(INK)
    pdf.line(45 * mm, height - 119 * mm, width - 45 * mm, height - 119 * mm)
    pdf.setFont(SANS, 12)
    y = height - 130 * mm
    for line in simpleSplit(text["statement"], SANS, 12, width - 70 * mm):
        pdf.drawCentredString(width / 2, y, line)
        y -= 6 * mm


def _detail_rows(cert: Certificate, language: str, text: dict[str, str]) -> list[tuple[str, str]]:
    level = LEVELS.get(cert.level, {}).get(language, cert.level)
    rows = [(text["register_number"], cert.register_number), (text["level"], level)]
    if cert.specialisation:
        rows.append((text["specialisation"], cert.specialisation))
    rows += [(text["valid_from"], long_date(cert.valid_from, language)),
             (text["valid_until"], long_date(cert.valid_until, language))]
    return rows


def _details(pdf: Canvas, width: float, rows: list[tuple[str, str]]) -> None:
    y = 125 * mm
    for label, value in rows:
        pdf.setFont(SANS, 11)
        pdf.drawRightString(width / 2 - 4 * mm, y, f"{label}:")
        pdf.setFont(SANS_BOLD, 11)
        pdf.drawString(width / 2 + 4 * mm, y, value)
        y -= 8 * mm


def _signature(pdf: Canvas, width: float, issued: datetime, issuer: str, language: str,
               text: dict[str, str]) -> None:
    pdf.setFont(SANS, 11)
    issued_on = long_date(issued.astimezone(LOCAL_ZONE).date(), language)
    pdf.drawString(30 * mm, 62 * mm, f"{text['issued']} {issued_on}")
    pdf.line(width - 95 * mm, 62 * mm, width - 30 * mm, 62 * mm)
    pdf.drawCentredString(width - 62.5 * mm, 56 * mm, text["signed"].format(issuer=issuer))
    pdf.setFont(SANS, 9)
    pdf.setFillColor(colors.grey)
    y = 26 * mm
    for line in simpleSplit(text["verify"], SANS, 9, width - 60 * mm):
        pdf.drawCentredString(width / 2, y, line)
        y -= 4 * mm
