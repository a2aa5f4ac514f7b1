"""Build, parse and merge the signed provenance XMP packet (DESIGN.md decision 4).

The packet carries the IPTC fields other tools read (``Iptc4xmpExt:DigitalSourceType``,
the IPTC 2025.1 ``AISystemUsed``/``AISystemVersionUsed``/``AIPromptInformation``),
the ``xmpMM`` identifiers, and our own ``provn`` namespace: the signed statement,
its detached signature, the certificate chain and the lineage hashes. The
signature is what makes the packet useful where the C2PA manifest was dropped.

This module owns the XML and nothing else: bytes in, values out. It never does
file I/O, never signs or verifies (the statement is an opaque string here), and
never parses with :mod:`xml.etree` directly: every untrusted byte goes through
:mod:`defusedxml` with DTDs, entities and external references forbidden, and
through size, depth and element-count limits, so time and memory stay bounded
on any input.

Decisions:
    * Packets are UTF-8 only (a UTF-8 BOM is allowed). XMP in JPEG APP1, PNG
      iTXt and WebP ``XMP `` chunks is UTF-8 by specification; accepting UTF-16
      would add a decoding path for no real file.
    * We write simple properties as elements (long values, newlines and quotes
      stay readable and exact), and read both element and attribute forms,
      because other tools (ExifTool among them) rewrite packets their own way.
    * No padding: the C2PA hard binding covers the packet, so in-place editing
      (what padding is for) breaks the signature anyway, and every byte is added
      to every image.

Layout: ``_names`` (namespaces, property tags, field tables, prefixes), ``_model``
(:class:`XmpProvenance` and its checks), ``_tree`` (the bounded defusedxml parse),
``_write`` (build and merge a packet), ``_read`` (read our fields and flatten a packet).
"""

from __future__ import annotations

from provenance._core.xmp._model import XmpProvenance
from provenance._core.xmp._names import (
    MAX_PACKET_BYTES,
    NS_IPTC_EXT,
    NS_PROVENANCE,
    NS_ST_REF,
    NS_XMP_MM,
)
from provenance._core.xmp._read import parse_packet, read_properties
from provenance._core.xmp._write import build_packet, check_packet

__all__ = [
    "MAX_PACKET_BYTES",
    "NS_IPTC_EXT",
    "NS_PROVENANCE",
    "NS_ST_REF",
    "NS_XMP_MM",
    "XmpProvenance",
    "build_packet",
    "check_packet",
    "parse_packet",
    "read_properties",
]
