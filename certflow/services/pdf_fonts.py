"""The fonts every certflow PDF is set in: DejaVu, embedded, so any name prints as written.

The 14 standard PDF fonts (Helvetica, Times) are not embedded and only cover Latin-1: Łukasz,
Şeyma or Παπαδόπουλος cannot be printed with them, and PDF/A forbids non-embedded fonts anyway.
The TrueType files live in ``certflow/fonts`` (see its README for source and licence); reportlab
embeds the subset of glyphs a document uses.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FONT_DIR = Path(__file__).resolve().parents[1] / "fonts"
SANS, SANS_BOLD = "DejaVuSans", "DejaVuSans-Bold"
SERIF, SERIF_BOLD = "DejaVuSerif", "DejaVuSerif-Bold"


@cache
def register_fonts() -> None:
    """Register the four faces with reportlab, once per process; idempotent."""
    for name in (SANS, SANS_BOLD, SERIF, SERIF_BOLD):
        pdfmetrics.registerFont(TTFont(name, str(FONT_DIR / f"{name}.ttf")))
