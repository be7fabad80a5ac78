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

Each face keeps the font programs of the subsets it made last, with their compressed form
(``_KeptSubsets``): reportlab makes and compresses a subset's program for every document, a
third of rendering an invoice, while the subsets hardly vary. Its ASCII-readable subsets
give printable ASCII its own codes, so a subset differs from another only in the other
characters a document uses, in the order of their first use (``€``, ``à`` and ``·`` on every
invoice; a name's accents add a few variants). The program is a function of the subset alone,
so the PDF is the same, byte for byte.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from reportlab import rl_config
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FONT_DIR = Path(__file__).resolve().parents[1] / "fonts"
SANS, SANS_BOLD = "DejaVuSans", "DejaVuSans-Bold"
SERIF, SERIF_BOLD = "DejaVuSerif", "DejaVuSerif-Bold"

rl_config.useA85 = 0  # see the module docstring
KEPT_SUBSETS = 16  # per face


class _FontProgram(bytes):
    """A subset's TrueType program (``TTFontFace.makeSubset``), with its Flate form once made."""

    deflated: bytes | None = None


class _KeptSubsets:
    """A face's ``makeSubset``, keeping the programs of its last ``KEPT_SUBSETS`` subsets."""

    def __init__(self, make: Callable[[Sequence[int]], bytes]) -> None:
        self._make = make
        self._kept: OrderedDict[tuple[int, ...], _FontProgram] = OrderedDict()
        self._lock = threading.Lock()  # the web app renders in a thread pool

    def __call__(self, subset: Sequence[int]) -> bytes:
        key = tuple(subset)
        with self._lock:
            program = self._kept.get(key)
            if program is not None:
                self._kept.move_to_end(key)
                return program
        program = _FontProgram(self._make(subset))
        with self._lock:
            self._kept[key] = program
            while len(self._kept) > KEPT_SUBSETS:
                self._kept.popitem(last=False)
        return program


class _Flate(pdfdoc.PDFStreamFilterZCompress):  # type: ignore[misc]  # untyped
    """reportlab's Flate filter (a font program's stream is given the module's ``PDFZCompress``
    when it is made), compressing a kept font program once."""

    def encode(self, text: Any) -> bytes:
        if isinstance(text, _FontProgram):
            if text.deflated is None:
                text.deflated = super().encode(text)
            return text.deflated
        return bytes(super().encode(text))


pdfdoc.PDFZCompress = _Flate()


@cache
def register_fonts() -> None:
    """Register the four faces with reportlab, once per process; idempotent."""
    for name in (SANS, SANS_BOLD, SERIF, SERIF_BOLD):
        font = TTFont(name, str(FONT_DIR / f"{name}.ttf"))
        font.face.makeSubset = _KeptSubsets(font.face.makeSubset)
        pdfmetrics.registerFont(font)
