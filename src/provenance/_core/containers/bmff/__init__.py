"""HEIF, HEIC and AVIF (ISO/IEC 14496-12 boxes, 23008-12 items): read and insert metadata.

This module owns the byte layout of still-image ISO-BMFF files: it walks the
top-level boxes, reads the ``meta`` box (``pitm``, ``iinf``/``infe``, ``iloc``,
``idat``, ``iprp``/``ipco``/``ipma``, ``iref``), classifies items and boxes as
metadata, finds the essence ranges, and rebuilds ``meta`` to add, replace or
unlink items. It never decodes HEVC or AV1, never does file I/O, never imports c2pa.

Format: ``ftyp`` brands tell AVIF (``avif``/``avis``) from HEIC (``heic``,
``heix``, ``heim``, ``heis``, ``hevc``, ``hevx``) from other HEIF (``mif1``,
``msf1``). Metadata: XMP is an item of type ``mime`` with content type
``application/rdf+xml``; EXIF an item of type ``Exif``; a C2PA manifest store is
the top-level ``uuid`` box ``D8FEC3D6-1B0E-483C-9297-5828877EC481`` (what
c2pa-rs writes).

Essence (decision 5 of DESIGN.md): the data extents of every coded image item
(every item but ``mime``, ``Exif`` and ``uri `` items), item after item in
item-ID order, then the decoder configuration and geometry properties
(``hvcC``, ``av1C``, ``ispe``, ``pixi``, ``irot``, ``imir``, ``clap``,
``lsel``, ``a1op``, ``a1lx``) in file order. Logical order, not file order: a
rewriter (c2pa-rs inserts its box after ``ftyp`` and shifts ``iloc``) moves data
without changing the hash. ``colr`` (ICC) is outside, as in the other formats,
and is not reported as a block (it is an item property, not removable alone).

Rewriting (:func:`set_xmp`, :func:`strip`): ``meta`` is rebuilt with a new
``iloc`` (version 1 or 2, base offsets folded into the extents), file offsets
after ``meta`` are shifted by its change in size, and a new XMP packet goes into
an ``mdat`` box appended at the end. Files with a ``moov`` box (image sequences,
whose sample tables hold file offsets too) are read but not rewritten.

Layout: ``_boxes`` (box and item records, the box walker, limits), ``_read`` (parse
``meta``, classify items, essence), ``_write`` (rebuild ``meta`` and the file).
"""

from __future__ import annotations

from provenance._core.containers.bmff._boxes import (
    C2PA_UUID,
    MAX_BOXES,
    MAX_ITEMS,
    XMP_CONTENT_TYPE,
)
from provenance._core.containers.bmff._read import brand_format, essence_ranges, inspect
from provenance._core.containers.bmff._write import embed, set_xmp, strip

__all__ = [
    "C2PA_UUID",
    "MAX_BOXES",
    "MAX_ITEMS",
    "XMP_CONTENT_TYPE",
    "brand_format",
    "embed",
    "essence_ranges",
    "inspect",
    "set_xmp",
    "strip",
]
