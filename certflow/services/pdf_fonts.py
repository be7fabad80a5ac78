"""The fonts every certflow PDF is set in: DejaVu, embedded, so any name prints as written.

The 14 standard PDF fonts (Helvetica, Times) are not embedded and only cover Latin-1: Łukasz,
Şeyma or Παπαδόπουλος cannot be printed with them, and PDF/A forbids non-embedded fonts anyway.
The TrueType files live in ``certflow/fonts`` (see its README for source and licence); reportlab
embeds the subset of glyphs a document uses.

Importing this module also turns off reportlab's ASCII85 layer over its compressed streams
(``rl_config.useA85``): it exists for 7-bit channels, which a PDF in a database, a download or a
base64 mail attachment never passes through. It made every stream a quarter larger, cost a pure
Python encoding in every render, and made pikepdf (certflow.services.pdfa) decode and compress
every stream again at save.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from reportlab import rl_config
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FONT_DIR = Path(__file__).resolve().parents[1] / "fonts"
SANS, SANS_BOLD = "DejaVuSans", "DejaVuSans-Bold"
SERIF, SERIF_BOLD = "DejaVuSerif", "DejaVuSerif-Bold"

rl_config.useA85 = 0  # see the module docstring


@cache
def register_fonts() -> None:
    """Register the four faces with reportlab, once per process; idempotent."""
    for name in (SANS, SANS_BOLD, SERIF, SERIF_BOLD):
        pdfmetrics.registerFont(TTFont(name, str(FONT_DIR / f"{name}.ttf")))
