"""Turn a reportlab PDF into PDF/A-2b, the archival form invoices are kept in for 7 years.

PDF/A-2b asks for (ISO 19005-2, level B): every font embedded (certflow.services.pdf_fonts), an
output intent naming the colour space the page colours mean (sRGB, with its ICC profile),
XMP metadata that declares the conformance and repeats the document info, a file identifier, and
no encryption, JavaScript or external content. reportlab writes none of the first three, so they
are added here with pikepdf. The result stays byte-for-byte reproducible for the same input, in
any process on any day (the ICC profile's creation date is fixed, see ``srgb_profile``).

The streams reportlab wrote are already Flate-compressed (certflow.services.pdf_fonts turns its
ASCII85 layer off), so pikepdf copies them as they are: letting qpdf decode and compress them
again cost a quarter of an invoice's rendering and changed nothing a reader sees.
"""

from __future__ import annotations

import io
import zlib
from datetime import datetime
from functools import cache
from xml.sax.saxutils import escape

import pikepdf
from PIL import ImageCms

PDFA_PART, PDFA_CONFORMANCE = "2", "B"
# The ICC header's creation date (ICC.1:2022 7.2.8: six big-endian uint16, bytes 24-35).
# LittleCMS stamps the moment the profile is made; a fixed one keeps every PDF reproducible.
ICC_DATE = slice(24, 36)
ICC_FIXED_DATE = bytes.fromhex("07d0 0001 0001 0000 0000 0000")  # 2000-01-01 00:00:00


@cache
def srgb_profile() -> bytes:
    """An sRGB ICC profile, made by LittleCMS (through Pillow) rather than shipped as a file,
    with a fixed creation date: otherwise two processes (or days) rendered different bytes."""
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[ICC_DATE] = ICC_FIXED_DATE
    return bytes(profile)


@cache
def _srgb_profile_deflated() -> bytes:
    return zlib.compress(srgb_profile())


def to_pdfa(pdf: bytes, *, title: str, author: str, created: datetime) -> bytes:
    """``pdf`` as PDF/A-2b with ``title``/``author`` in both the info dictionary and XMP."""
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        _output_intent(doc)
        moment = created.replace(microsecond=0).isoformat()
        metadata = pikepdf.Stream(doc, xmp_packet(title, author, moment))
        metadata.Type, metadata.Subtype = pikepdf.Name.Metadata, pikepdf.Name.XML
        doc.Root.Metadata = metadata
        # The info dictionary must agree with the XMP, date for date (ISO 19005-2, 6.6.2.3).
        pdf_date = created.strftime("D:%Y%m%d%H%M%S") + _offset(created)
        doc.docinfo["/Title"] = title
        doc.docinfo["/Author"] = author
        doc.docinfo["/Producer"] = "certflow"
        doc.docinfo["/Creator"] = "certflow"
        doc.docinfo["/CreationDate"] = pdf_date
        doc.docinfo["/ModDate"] = pdf_date
        out = io.BytesIO()
        # Streams are kept as reportlab compressed them (see the module docstring).
        doc.save(out, deterministic_id=True, fix_metadata_version=False, compress_streams=False,
                 stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return out.getvalue()


def xmp_packet(title: str, author: str, moment: str) -> bytes:
    """The XMP metadata pikepdf writes for ``title``, ``author`` and ``moment`` (ISO 8601), byte
    for byte: pikepdf makes it once per process with placeholders, and each document's values
    are put in, escaped as lxml escapes text. Building it through pikepdf's XMP model every
    time cost a third of this module's work per invoice."""
    packet = _xmp_template()
    for placeholder, value in ((_TITLE, title), (_AUTHOR, author), (_MOMENT, moment)):
        packet = packet.replace(placeholder, escape(value).encode())
    return packet


# Placeholders no title, name or date contains; lxml writes them as they are.
_TITLE, _AUTHOR, _MOMENT = b"certflow-xmp-title", b"certflow-xmp-author", b"certflow-xmp-moment"


@cache
def _xmp_template() -> bytes:
    with pikepdf.new() as doc:
        with doc.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
            meta["pdfaid:part"] = PDFA_PART
            meta["pdfaid:conformance"] = PDFA_CONFORMANCE
            meta["dc:title"] = _TITLE.decode()
            meta["dc:creator"] = [_AUTHOR.decode()]
            meta["pdf:Producer"] = "certflow"
            meta["xmp:CreatorTool"] = "certflow"
            meta["xmp:CreateDate"] = _MOMENT.decode()
            meta["xmp:ModifyDate"] = _MOMENT.decode()
            meta["xmp:MetadataDate"] = _MOMENT.decode()
        return bytes(doc.Root.Metadata.read_bytes())


def _offset(moment: datetime) -> str:
    delta = moment.utcoffset()
    if delta is None or not delta:
        return "Z"
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}'{abs(minutes) % 60:02d}'"


def _output_intent(doc: pikepdf.Pdf) -> None:
    icc = pikepdf.Stream(doc, b"")
    icc.write(_srgb_profile_deflated(), filter=pikepdf.Name.FlateDecode)
    icc["/N"] = 3
    intent = pikepdf.Dictionary(
        Type=pikepdf.Name.OutputIntent, S=pikepdf.Name.GTS_PDFA1,
        OutputConditionIdentifier=pikepdf.String("sRGB IEC61966-2.1"),
        Info=pikepdf.String("sRGB IEC61966-2.1"), DestOutputProfile=icc)
    doc.Root.OutputIntents = pikepdf.Array([intent])
