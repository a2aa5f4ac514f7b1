"""JPEG (ITU T.81 / JFIF / EXIF) marker segments: read, insert and strip metadata.

This module owns the byte layout of JPEG files: it walks marker segments and
entropy-coded data, classifies APPn/COM segments as metadata blocks, finds the
essence ranges, and splices XMP/EXIF APP1 segments in or out. It never decodes
or re-encodes the image, never does file I/O and never imports c2pa.

Essence (decision 5 of DESIGN.md): every marker segment after SOI that is not
APPn (``0xFFE0``-``0xFFEF``) or COM (``0xFFFE``), wherever it is, each from its
``0xFF`` through its payload; the entropy-coded data after every SOS (including
RSTn markers and ``0xFF00`` stuffing); and EOI. SOI is not covered (it is the
same in every JPEG), nor are fill bytes (``0xFF`` padding before a marker, which
rewriting tools may add or drop), nor anything after EOI (trailers, MPF images).

Every length field is checked against the data before use, every loop advances
by at least one byte, and any malformed input raises :class:`ContainerError`.

Layout: ``_segments`` (markers, the segment walk, classification), ``_read`` (blocks,
essence, extended XMP), ``_write`` (splice XMP/EXIF APP1 segments in or out).
"""

from __future__ import annotations

from provenance._core.containers.jpeg._read import (
    c2pa_store,
    essence_ranges,
    extended_xmp_guid,
    inspect,
)
from provenance._core.containers.jpeg._segments import (
    EXTENDED_XMP_HEADER,
    MAX_EXIF_BYTES,
    MAX_EXTENDED_XMP_CHUNK_BYTES,
    MAX_MARKERS,
    MAX_STANDARD_XMP_BYTES,
    XMP_HEADER,
)
from provenance._core.containers.jpeg._write import (
    c2pa_slot,
    embed,
    embed_edits,
    set_exif,
    set_xmp,
    strip,
)

__all__ = [
    "EXTENDED_XMP_HEADER",
    "MAX_EXIF_BYTES",
    "MAX_EXTENDED_XMP_CHUNK_BYTES",
    "MAX_MARKERS",
    "MAX_STANDARD_XMP_BYTES",
    "XMP_HEADER",
    "c2pa_slot",
    "c2pa_store",
    "embed",
    "embed_edits",
    "essence_ranges",
    "extended_xmp_guid",
    "inspect",
    "set_exif",
    "set_xmp",
    "strip",
]
