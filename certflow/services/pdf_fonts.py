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

So are, for the same reason, the two other objects reportlab writes for each subset in every
document: its ``Widths`` array (formatted number by number, 256 of them) and its ``ToUnicode``
CMap (compressed anew). Each face keeps their bytes for its last subsets too (``_KeptObjects``).
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


class _Formatted(pdfdoc.PDFObject):  # type: ignore[misc]  # untyped
    """An object's PDF bytes, formatted once."""

    def __init__(self, text: bytes) -> None:
        self.text = text

    def format(self, document: Any) -> bytes:
        return self.text


class _Kept:
    """The last ``KEPT_SUBSETS`` values made, by key."""

    def __init__(self) -> None:
        self._kept: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        with self._lock:
            value = self._kept.get(key)
            if value is not None:
                self._kept.move_to_end(key)
                return value
        value = make()
        with self._lock:
            self._kept[key] = value
            while len(self._kept) > KEPT_SUBSETS:
                self._kept.popitem(last=False)
        return value


class _KeptObjects:
    """A face's ``TTFont.addObjects`` (its subsets' objects into a document at save), with each
    subset's ``Widths`` array and ``ToUnicode`` CMap replaced by the bytes kept for the same
    widths and the same CMap text: formatted and compressed once, not in every document."""

    def __init__(self, add_objects: Callable[[Any], None]) -> None:
        self._add_objects = add_objects
        self.widths, self.cmaps = _Kept(), _Kept()

    def __call__(self, doc: Any) -> None:
        self._add_objects(doc)
        for font in doc.idToObject["BasicFonts"].dict.values():
            if not isinstance(font, pdfdoc.PDFTrueTypeFont):
                continue
            array = getattr(font, "Widths", None)
            if isinstance(array, pdfdoc.PDFArray):
                font.Widths = self.widths.get(tuple(array.sequence), lambda: _Formatted(array.format(doc)))
            stream = doc.idToObject.get(getattr(getattr(font, "ToUnicode", None), "name", None))
            if isinstance(stream, pdfdoc.PDFStream) and isinstance(stream.content, str):
                text = stream.content
                stream.content = self.cmaps.get(text, lambda: _FontProgram(text.encode("utf8")))


@cache
def register_fonts() -> None:
    """Register the four faces with reportlab, once per process; idempotent."""
    for name in (SANS, SANS_BOLD, SERIF, SERIF_BOLD):
        font = TTFont(name, str(FONT_DIR / f"{name}.ttf"))
        font.face.makeSubset = _KeptSubsets(font.face.makeSubset)
        font.addObjects = _KeptObjects(font.addObjects)  # type: ignore[method-assign]
        pdfmetrics.registerFont(font)
