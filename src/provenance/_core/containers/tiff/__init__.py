"""TIFF and DNG (TIFF 6.0, Adobe DNG 1.x): read IFDs, insert and strip metadata.

This module owns the byte layout of classic (32-bit offset) TIFF files, and of
DNG, which is TIFF with a ``DNGVersion`` tag in IFD0. It walks the IFD chain and
every ``SubIFDs`` tree (DNG keeps its raw image there), classifies metadata tags,
finds the essence ranges, and rewrites IFD0 to add, replace or remove tags. It
never decodes or re-encodes the image, never does file I/O, never imports c2pa.

Metadata blocks are tag values: XMP is tag 700 (XMP spec part 3, 1.1.4) in IFD0,
a C2PA manifest store is tag 0xCD41 (C2PA 2.x, A.4.3, what c2pa-rs writes), ICC
is tag 34675, the EXIF and GPS IFD pointers are tags 34665 and 34853, IPTC and
Photoshop resources are tags 33723 and 34377. A block's range is the tag's value
bytes, or the 12-byte entry itself when the value fits inline.

Essence (decision 5 of DESIGN.md): the image data that the strips or tiles of
every image IFD point at (``StripOffsets``/``StripByteCounts`` or
``TileOffsets``/``TileByteCounts``), IFD after IFD, strip after strip, in *that*
order rather than file order: a rewriter (ExifTool, c2pa-rs) may move the strips
and the essence hash must not change. The IFD entries themselves (which hold
offsets) are not covered; the perceptual hash is the tool for a re-encoding.

Rewriting: the new IFD0 is appended to the file and the header points at it; the
old IFD0 stays as dead bytes and every other offset in the file stays valid, so
nothing else moves. The value bytes of a replaced or removed tag are zeroed (no
stale XMP or manifest is left for a carver to find). BigTIFF (version 43) is
refused with :class:`~provenance.errors.UnsupportedFormat`.

Layout: ``_ifd`` (tags, IFD entries, the bounded reader and walk), ``_read`` (blocks,
essence, DNG, ASCII tags), ``_write`` (a new IFD0 appended, old values zeroed).
"""

from __future__ import annotations

from provenance._core.containers.tiff._ifd import (
    MAX_IFDS,
    MAX_STRIPS,
    PERSONAL_TAGS,
    TAG_C2PA,
    TAG_DNG_VERSION,
    TAG_XMP,
)
from provenance._core.containers.tiff._read import ascii_tags, essence_ranges, inspect, is_dng
from provenance._core.containers.tiff._write import embed, set_xmp, strip

__all__ = [
    "MAX_IFDS",
    "MAX_STRIPS",
    "PERSONAL_TAGS",
    "TAG_C2PA",
    "TAG_DNG_VERSION",
    "TAG_XMP",
    "ascii_tags",
    "embed",
    "essence_ranges",
    "inspect",
    "is_dng",
    "set_xmp",
    "strip",
]
