"""The one bounded parse of untrusted packet bytes: defusedxml, size, depth and element limits."""

from __future__ import annotations

# Only for the Element type and TreeBuilder; every parse goes through defusedxml.
import xml.etree.ElementTree as ET

from defusedxml.common import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from provenance._core.xmp._names import _MAX_DEPTH, _MAX_ELEMENTS, _RDF_RDF, MAX_PACKET_BYTES
from provenance.errors import XmpError


class _Target:
    """Parser target: builds the tree, records prefixes, bounds depth and size."""

    def __init__(self) -> None:
        self._builder = ET.TreeBuilder()
        self._depth = 0
        self._elements = 0
        self.namespaces: list[tuple[str, str]] = []

    def start(self, tag: str, attrib: dict[str, str]) -> ET.Element:
        self._depth += 1
        self._elements += 1
        if self._depth > _MAX_DEPTH:
            raise XmpError(f"XMP packet nests deeper than {_MAX_DEPTH} elements")
        if self._elements > _MAX_ELEMENTS:
            raise XmpError(f"XMP packet has more than {_MAX_ELEMENTS} elements")
        return self._builder.start(tag, attrib)

    def end(self, tag: str) -> ET.Element:
        self._depth -= 1
        return self._builder.end(tag)

    def data(self, data: str) -> None:
        self._builder.data(data)

    def start_ns(self, prefix: str, uri: str) -> None:
        self.namespaces.append((prefix, uri))

    def close(self) -> ET.Element:
        return self._builder.close()


def _parse_tree(packet: bytes) -> tuple[ET.Element, list[tuple[str, str]]]:
    """Parse a packet safely into a tree and its ``(prefix, uri)`` declarations.

    Raises:
        XmpError: Oversized, not UTF-8, not well-formed, too deep, or with a
            DTD, entity declaration or external reference.
    """
    # 1. Size first: nothing larger is even decoded.
    if len(packet) > MAX_PACKET_BYTES:
        raise XmpError(f"XMP packet is {len(packet)} bytes, over the {MAX_PACKET_BYTES} limit")
    data = bytes(packet)
    # 2. UTF-8 only (a UTF-8 BOM is allowed). Checked here, and the parser is told
    #    so: expat would otherwise follow an XML declaration. It still switches
    #    to UTF-16 when a document starts with a NUL byte, and NUL is never
    #    allowed in XML, so a NUL anywhere is refused first.
    #    Trailing NULs and padding after the closing processing instruction are
    #    not XML but writers leave them (Photoshop 2022 ends its APP1 with a NUL
    #    after <?xpacket end="w"?>; some PNG iTXt texts end with one), and XMP
    #    readers skip them as ExifTool does: only the trailing run goes.
    data = data.removeprefix(b"\xef\xbb\xbf").strip(b" \t\r\n")
    if data.endswith(b"\x00"):
        data = data.rstrip(b" \t\r\n\x00")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise XmpError("XMP packet is not UTF-8") from None
    if b"\x00" in data:
        raise XmpError("XMP packet holds a NUL byte: not UTF-8 XML")
    if not data:
        raise XmpError("XMP packet is empty")
    # 3. defusedxml, with the DTD forbidden outright (it is also where XXE and
    #    billion-laughs entities live).
    target = _Target()
    parser = DefusedXMLParser(
        target=target,
        encoding="utf-8",
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    try:
        parser.feed(data)
        root = parser.close()
    except ParseError as exc:
        raise XmpError(f"XMP packet is not well-formed XML ({exc})") from None
    except DTDForbidden:
        raise XmpError("XMP packet has a DTD, which XMP never needs") from None
    except EntitiesForbidden:
        raise XmpError("XMP packet declares an entity, which XMP never needs") from None
    except ExternalReferenceForbidden:
        raise XmpError("XMP packet references an external entity") from None
    if not isinstance(root, ET.Element):  # pragma: no cover - TreeBuilder contract
        raise XmpError("XMP packet has no root element")
    return root, target.namespaces


def _find_rdf(root: ET.Element) -> ET.Element | None:
    found = list(root.iter(_RDF_RDF))
    if len(found) > 1:
        raise XmpError("XMP packet has several rdf:RDF elements")
    return found[0] if found else None
