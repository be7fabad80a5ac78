"""Checks of the documents certflow sends out, with tools nobody on the project wrote.

``en16931_errors(xml)`` runs CEN's EN 16931 UBL business rules (compiled Schematron, see
tests/data/en16931/README.md) with Saxon-HE and returns the fatal failed assertions.
``layout_problems(pdf)`` reads the positioned words of every page with pdfplumber and reports text
that runs outside the margins or over other text. ``decode_qr(pdf)`` renders the first page with
PDFium and decodes the QR codes on it with ZXing, as a phone camera would.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
EN16931_XSLT = DATA / "en16931" / "EN16931-UBL-validation.xslt"
MM = 72 / 25.4
_FAILED = re.compile(r"<svrl:failed-assert\b(?P<attrs>[^>]*)>.*?<svrl:text>(?P<text>.*?)</svrl:text>",
                     re.S)


@dataclass(frozen=True)
class RuleFailure:
    rule: str
    flag: str
    text: str


@cache
def _saxon() -> tuple[Any, Any]:
    from saxonche import PySaxonProcessor

    proc = PySaxonProcessor(license=False)
    executable = proc.new_xslt30_processor().compile_stylesheet(stylesheet_file=str(EN16931_XSLT))
    return proc, executable


def en16931_report(xml: str) -> list[RuleFailure]:
    """Every failed assertion of the CEN rules (fatal and warning) for one UBL document."""
    proc, executable = _saxon()
    svrl = executable.transform_to_string(xdm_node=proc.parse_xml(xml_text=xml))
    if not svrl or "schematron-output" not in svrl:
        raise AssertionError(f"the EN 16931 rules produced no report: {svrl!r}")
    failures = []
    for match in _FAILED.finditer(svrl):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', match.group("attrs")))
        failures.append(RuleFailure(attrs.get("id", "?"), attrs.get("flag", "fatal"),
                                    " ".join(match.group("text").split())))
    return failures


def en16931_errors(xml: str) -> list[RuleFailure]:
    """The fatal ones: what makes an EN 16931 receiver reject the document."""
    return [f for f in en16931_report(xml) if f.flag == "fatal"]


# -- PDF layout ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Box:
    text: str
    x0: float
    top: float
    x1: float
    bottom: float
    page: int

    def overlaps(self, other: Box, slack: float = 0.5) -> bool:
        return (self.page == other.page and self.x0 < other.x1 - slack
                and other.x0 < self.x1 - slack and self.top < other.bottom - slack
                and other.top < self.bottom - slack)


def text_boxes(pdf: bytes) -> list[Box]:
    """One box per word, in PDF points from the page's top-left corner."""
    import pdfplumber

    boxes = []
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        for number, page in enumerate(doc.pages):
            for word in page.extract_words(use_text_flow=False, keep_blank_chars=False,
                                           x_tolerance=1.5):
                boxes.append(Box(word["text"], word["x0"], word["top"], word["x1"],
                                 word["bottom"], number))
    return boxes


def layout_problems(pdf: bytes, side_mm: float = 20.0, end_mm: float = 10.0) -> list[str]:
    """Words outside the left/right margins (``side_mm``) or the top/bottom ones (``end_mm``),
    and letters drawn over other letters (two texts placed on top of each other)."""
    import pdfplumber

    problems: list[str] = []
    side, end = side_mm * MM - 0.5, end_mm * MM - 0.5  # half a point for rounding
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        sizes = [(page.width, page.height) for page in doc.pages]
        for number, page in enumerate(doc.pages):
            problems += [f"page {number + 1}: {a!r} and {b!r} are drawn over each other"
                         for a, b in sorted(_overlapping_letters(page.chars))]
    for box in text_boxes(pdf):
        width, height = sizes[box.page]
        if box.x0 < side or box.x1 > width - side or box.top < end or box.bottom > height - end:
            problems.append(f"{box.text!r} runs outside the margins (x {box.x0 / MM:.1f}-"
                            f"{box.x1 / MM:.1f} mm, y {box.top / MM:.1f}-{box.bottom / MM:.1f} mm "
                            f"on a {width / MM:.0f} mm page)")
    return problems


def _overlapping_letters(chars: list[dict[str, Any]], slack: float = 0.6) -> set[tuple[str, str]]:
    """Pairs of (the words around) letters whose boxes intersect: a sweep over x, so only
    neighbours are compared."""
    ordered = sorted((c for c in chars if c["text"].strip()), key=lambda c: c["x0"])
    found = set()
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            if b["x0"] >= a["x1"] - slack:
                break
            if a["top"] < b["bottom"] - slack and b["top"] < a["bottom"] - slack:
                found.add((_word_at(chars, a), _word_at(chars, b)))
    return found


def _word_at(chars: list[dict[str, Any]], char: dict[str, Any]) -> str:
    """The run of letters drawn on the same baseline as ``char`` and touching it."""
    line = sorted((c for c in chars if abs(c["top"] - char["top"]) < 0.1), key=lambda c: c["x0"])
    i = line.index(char)
    lo = hi = i
    while lo > 0 and line[lo - 1]["text"].strip() and line[lo]["x0"] - line[lo - 1]["x1"] < 1:
        lo -= 1
    while (hi + 1 < len(line) and line[hi + 1]["text"].strip()
           and line[hi + 1]["x0"] - line[hi]["x1"] < 1):
        hi += 1
    return "".join(c["text"] for c in line[lo:hi + 1])


# -- QR codes ----------------------------------------------------------------------------------
def decode_qr(pdf: bytes, page: int = 0, scale: float = 4.0) -> list[bytes]:
    """The raw payloads of the QR codes found on the rendered page."""
    import pypdfium2
    import zxingcpp

    doc = pypdfium2.PdfDocument(pdf)
    try:
        image = doc[page].render(scale=scale).to_pil()
    finally:
        doc.close()
    return [r.bytes for r in zxingcpp.read_barcodes(image)
            if r.format == zxingcpp.BarcodeFormat.QRCode]
