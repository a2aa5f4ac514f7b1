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
"""

from __future__ import annotations

import re

# Only for the Element type and TreeBuilder; every parse goes through defusedxml.
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Final, TypeAlias

from defusedxml.common import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from provenance.errors import XmpError

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

NS_PROVENANCE: Final = "https://schemas.provenance.dev/xmp/1.0/"
NS_IPTC_EXT: Final = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
NS_XMP_MM: Final = "http://ns.adobe.com/xap/1.0/mm/"
NS_ST_REF: Final = "http://ns.adobe.com/xap/1.0/sType/ResourceRef#"

MAX_PACKET_BYTES: Final = 1 << 20
"""Packets larger than this (1 MiB) are refused before any parsing."""

_NS_X: Final = "adobe:ns:meta/"
_NS_RDF: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_NS_XML: Final = "http://www.w3.org/XML/1998/namespace"

# Real packets nest about ten levels (xmpmeta/RDF/Description/History/Seq/li/...);
# a Photoshop packet with a long history has some tens of thousands of elements
# at 1 MiB. Both limits bound memory and recursion on hostile input.
_MAX_DEPTH: Final = 64
_MAX_ELEMENTS: Final = 100_000

_PREFERRED_PREFIXES: Final = {
    _NS_X: "x",
    _NS_RDF: "rdf",
    NS_IPTC_EXT: "Iptc4xmpExt",
    NS_XMP_MM: "xmpMM",
    NS_ST_REF: "stRef",
    NS_PROVENANCE: "provn",
}

_PACKET_HEADER: Final = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
_PACKET_TRAILER: Final = '\n<?xpacket end="w"?>'


def _tag(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


_X_XMPMETA: Final = _tag(_NS_X, "xmpmeta")
_RDF_RDF: Final = _tag(_NS_RDF, "RDF")
_RDF_DESCRIPTION: Final = _tag(_NS_RDF, "Description")
_RDF_ABOUT: Final = _tag(_NS_RDF, "about")
_RDF_RESOURCE: Final = _tag(_NS_RDF, "resource")
_RDF_PARSE_TYPE: Final = _tag(_NS_RDF, "parseType")
_RDF_SEQ: Final = _tag(_NS_RDF, "Seq")
_RDF_BAG: Final = _tag(_NS_RDF, "Bag")
_RDF_ALT: Final = _tag(_NS_RDF, "Alt")
_RDF_LI: Final = _tag(_NS_RDF, "li")
_XML_LANG: Final = _tag(_NS_XML, "lang")

_DERIVED_FROM: Final = _tag(NS_XMP_MM, "DerivedFrom")
_CERTIFICATE_CHAIN: Final = _tag(NS_PROVENANCE, "CertificateChain")
_STATEMENT: Final = _tag(NS_PROVENANCE, "Statement")
_ST_DOCUMENT_ID: Final = _tag(NS_ST_REF, "documentID")
_ST_INSTANCE_ID: Final = _tag(NS_ST_REF, "instanceID")

# Simple properties as (dataclass field, property tag, qualified name for messages).
# _HEAD_FIELDS are written before xmpMM:DerivedFrom, _TAIL_FIELDS after it, then
# the certificate chain and the statement.
_HEAD_FIELDS: Final = (
    (
        "digital_source_type",
        _tag(NS_IPTC_EXT, "DigitalSourceType"),
        "Iptc4xmpExt:DigitalSourceType",
    ),
    ("ai_system", _tag(NS_IPTC_EXT, "AISystemUsed"), "Iptc4xmpExt:AISystemUsed"),
    (
        "ai_system_version",
        _tag(NS_IPTC_EXT, "AISystemVersionUsed"),
        "Iptc4xmpExt:AISystemVersionUsed",
    ),
    ("ai_prompt", _tag(NS_IPTC_EXT, "AIPromptInformation"), "Iptc4xmpExt:AIPromptInformation"),
    ("document_id", _tag(NS_XMP_MM, "DocumentID"), "xmpMM:DocumentID"),
    ("instance_id", _tag(NS_XMP_MM, "InstanceID"), "xmpMM:InstanceID"),
)
_TAIL_FIELDS: Final = (
    ("asset_id", _tag(NS_PROVENANCE, "AssetID"), "provn:AssetID"),
    ("parent_sha256", _tag(NS_PROVENANCE, "ParentSHA256"), "provn:ParentSHA256"),
    (
        "parent_essence_sha256",
        _tag(NS_PROVENANCE, "ParentEssenceSHA256"),
        "provn:ParentEssenceSHA256",
    ),
    ("essence_sha256", _tag(NS_PROVENANCE, "EssenceSHA256"), "provn:EssenceSHA256"),
    ("signature_algorithm", _tag(NS_PROVENANCE, "SignatureAlgorithm"), "provn:SignatureAlgorithm"),
    ("signature", _tag(NS_PROVENANCE, "Signature"), "provn:Signature"),
)
_SIMPLE_FIELDS: Final = (*_HEAD_FIELDS, *_TAIL_FIELDS, ("statement", _STATEMENT, "provn:Statement"))

# Top-level properties this module owns besides every provn:* one. They are
# always removed from an existing packet, so the merged packet describes exactly
# the XmpProvenance written into it.
_OWNED_FOREIGN: Final = frozenset({tag for _, tag, _ in _HEAD_FIELDS} | {_DERIVED_FROM})

_QNAMES: Final = {
    **{tag: qname for _, tag, qname in _SIMPLE_FIELDS},
    _DERIVED_FROM: "xmpMM:DerivedFrom",
    _CERTIFICATE_CHAIN: "provn:CertificateChain",
    _ST_DOCUMENT_ID: "xmpMM:DerivedFrom/stRef:documentID",
    _ST_INSTANCE_ID: "xmpMM:DerivedFrom/stRef:instanceID",
}

_REQUIRED: Final = (
    "digital_source_type",
    "essence_sha256",
    "statement",
    "signature",
    "signature_algorithm",
)
_SHA256_FIELDS: Final = ("essence_sha256", "parent_sha256", "parent_essence_sha256")

_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_BASE64: Final = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_ALGORITHM: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
# XML 1.0 section 2.2 Char, negated: what no XML 1.0 document may contain.
_NOT_XML_CHAR: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_Node: TypeAlias = "str | ET.Element"
"""A property value as found: an attribute value, or the property element."""


@dataclass(frozen=True, slots=True)
class XmpProvenance:
    """What the provenance XMP packet says, field by field.

    The dataclass itself does not validate; :func:`build_packet` and
    :func:`parse_packet` apply the same checks, so whatever one accepts the other
    returns unchanged. Optional fields are ``None`` or non-empty.

    Attributes:
        digital_source_type: Full IPTC URI (``Iptc4xmpExt:DigitalSourceType``).
        essence_sha256: 64 lowercase hex digits (``provn:EssenceSHA256``).
        statement: The signed canonical JSON text, opaque here (``provn:Statement``).
        signature: Base64 detached signature over the statement (``provn:Signature``).
        signature_algorithm: For example ``"ES256"`` (``provn:SignatureAlgorithm``).
        certificate_chain: Base64 DER certificates, leaf first
            (``provn:CertificateChain``, an ``rdf:Seq``).
        ai_system: ``Iptc4xmpExt:AISystemUsed`` (IPTC 2025.1).
        ai_system_version: ``Iptc4xmpExt:AISystemVersionUsed`` (IPTC 2025.1).
        ai_prompt: ``Iptc4xmpExt:AIPromptInformation`` (IPTC 2025.1).
        document_id: ``xmpMM:DocumentID``, e.g. ``"xmp.did:<uuid>"``.
        instance_id: ``xmpMM:InstanceID``, e.g. ``"xmp.iid:<uuid>"``.
        derived_from_document_id: ``xmpMM:DerivedFrom/stRef:documentID``.
        derived_from_instance_id: ``xmpMM:DerivedFrom/stRef:instanceID``.
        asset_id: ``provn:AssetID``.
        parent_sha256: ``provn:ParentSHA256``, 64 lowercase hex digits.
        parent_essence_sha256: ``provn:ParentEssenceSHA256``, 64 lowercase hex digits.
    """

    digital_source_type: str
    essence_sha256: str
    statement: str
    signature: str
    signature_algorithm: str
    certificate_chain: tuple[str, ...]
    ai_system: str | None = None
    ai_system_version: str | None = None
    ai_prompt: str | None = None
    document_id: str | None = None
    instance_id: str | None = None
    derived_from_document_id: str | None = None
    derived_from_instance_id: str | None = None
    asset_id: str | None = None
    parent_sha256: str | None = None
    parent_essence_sha256: str | None = None


# --------------------------------------------------------------------------- build


def build_packet(prov: XmpProvenance, *, existing: bytes | None = None) -> bytes:
    """Return a complete UTF-8 XMP packet carrying ``prov``.

    With ``existing`` (the packet already in the file), everything in it is kept
    (other namespaces and their prefixes, several ``rdf:Description`` elements,
    arrays, structures, ``xmpMM:History``...) except the properties this module
    owns: every ``provn:*`` property, ``Iptc4xmpExt:DigitalSourceType``,
    ``AISystemUsed``, ``AISystemVersionUsed``, ``AIPromptInformation``, and
    ``xmpMM:DocumentID``, ``InstanceID``, ``DerivedFrom``. Those are always
    removed, even when ``prov`` leaves one unset, so that
    ``parse_packet(build_packet(prov, existing=...)) == prov``; a caller who
    wants to keep an earlier DocumentID passes it in ``prov`` (or as
    ``derived_from_document_id``). Our properties go in a new ``rdf:Description``.

    Args:
        prov: The values to write.
        existing: A packet to merge into, parsed as safely as :func:`parse_packet`.

    Returns:
        The packet: ``xpacket`` wrapper, ``x:xmpmeta``, ``rdf:RDF``, no padding.

    Raises:
        XmpError: A field is invalid (named in the message: empty, a character
            XML 1.0 does not allow, bad hex or base64), ``existing`` is unsafe or
            malformed, or the result would exceed :data:`MAX_PACKET_BYTES`.
    """
    _check(prov)
    if existing is None:
        meta, rdf = _rewrap(ET.Element(_X_XMPMETA))
        declared: list[tuple[str, str]] = []
    else:
        root, declared = _parse_tree(existing)
        meta, rdf = _rewrap(root)
        _remove_owned(rdf)
    _append_description(rdf, prov)
    prefixes = _prefix_map(declared, reserve=True)
    out: list[str] = [_PACKET_HEADER]
    _serialize(meta, prefixes, frozenset(), out, top_level=False)
    out.append(_PACKET_TRAILER)
    packet = "".join(out).encode("utf-8")
    if len(packet) > MAX_PACKET_BYTES:
        raise XmpError(f"XMP packet would be {len(packet)} bytes, over {MAX_PACKET_BYTES}")
    return packet


def check_packet(packet: bytes) -> None:
    """Check that ``packet`` can be merged by :func:`build_packet` (``existing=``).

    Args:
        packet: An XMP packet found in a file.

    Raises:
        XmpError: It is unsafe or malformed (the reason is in the message).
    """
    _parse_tree(packet)


def _rewrap(root: ET.Element) -> tuple[ET.Element, ET.Element]:
    """Return ``(x:xmpmeta, rdf:RDF)`` for an existing tree, creating what is missing."""
    rdf = _find_rdf(root)
    meta = ET.Element(_X_XMPMETA, dict(root.attrib) if root.tag == _X_XMPMETA else {})
    if rdf is None:
        # An empty x:xmpmeta, or XML that holds no XMP at all: nothing to keep.
        rdf = ET.Element(_RDF_RDF)
    rdf.tail = "\n"
    meta.text = "\n"
    meta.append(rdf)
    return meta, rdf


def _remove_owned(rdf: ET.Element) -> None:
    """Drop our properties from every top-level description, then empty descriptions."""
    for desc in list(rdf):
        if desc.tag != _RDF_DESCRIPTION:
            continue
        for name in list(desc.attrib):
            if _is_owned(name):
                del desc.attrib[name]
        for child in list(desc):
            if _is_owned(child.tag):
                _remove(desc, child)
        has_properties = len(desc) > 0 or any(
            not name.startswith((f"{{{_NS_RDF}}}", f"{{{_NS_XML}}}")) for name in desc.attrib
        )
        if not has_properties:
            _remove(rdf, desc)


def _remove(parent: ET.Element, child: ET.Element) -> None:
    """Remove ``child``; a last child hands its tail on, so the layout stays stable."""
    children = list(parent)
    if children[-1] is child and len(children) > 1:
        children[-2].tail = child.tail
    parent.remove(child)


def _is_owned(tag: str) -> bool:
    return tag.startswith(f"{{{NS_PROVENANCE}}}") or tag in _OWNED_FOREIGN


def _append_description(rdf: ET.Element, prov: XmpProvenance) -> None:
    """Append an ``rdf:Description`` holding ``prov`` to ``rdf``."""
    about = next(
        (d.get(_RDF_ABOUT) for d in rdf if d.tag == _RDF_DESCRIPTION and d.get(_RDF_ABOUT)),
        "",
    )
    desc = ET.Element(_RDF_DESCRIPTION, {_RDF_ABOUT: about or ""})
    items: list[ET.Element] = []

    def simple(tag: str, value: str | None, parent_items: list[ET.Element]) -> None:
        if value is not None:
            element = ET.Element(tag)
            element.text = value
            parent_items.append(element)

    for field, tag, _ in _HEAD_FIELDS:
        simple(tag, getattr(prov, field), items)
    if prov.derived_from_document_id is not None or prov.derived_from_instance_id is not None:
        derived = ET.Element(_DERIVED_FROM, {_RDF_PARSE_TYPE: "Resource"})
        fields: list[ET.Element] = []
        simple(_ST_DOCUMENT_ID, prov.derived_from_document_id, fields)
        simple(_ST_INSTANCE_ID, prov.derived_from_instance_id, fields)
        _indent(derived, fields, "\n   ", "\n  ")
        items.append(derived)
    for field, tag, _ in _TAIL_FIELDS:
        simple(tag, getattr(prov, field), items)
    chain = ET.Element(_CERTIFICATE_CHAIN)
    seq = ET.SubElement(chain, _RDF_SEQ)
    lis: list[ET.Element] = []
    for cert in prov.certificate_chain:
        simple(_RDF_LI, cert, lis)
    _indent(seq, lis, "\n    ", "\n   ")
    chain.text, seq.tail = "\n   ", "\n  "
    items.append(chain)
    simple(_STATEMENT, prov.statement, items)
    _indent(desc, items, "\n  ", "\n ")

    # Keep the existing layout: our description takes the indentation its siblings use.
    siblings = list(rdf)
    if siblings:
        desc.tail = siblings[-1].tail
        siblings[-1].tail = rdf.text or "\n "
    else:
        rdf.text, desc.tail = "\n ", "\n"
    rdf.append(desc)


def _indent(parent: ET.Element, children: list[ET.Element], inner: str, outer: str) -> None:
    parent.text = inner
    for child in children:
        child.tail = inner
        parent.append(child)
    if children:
        children[-1].tail = outer


# ----------------------------------------------------------------------- serialize


def _serialize(
    element: ET.Element,
    prefixes: dict[str, str],
    in_scope: frozenset[str],
    out: list[str],
    *,
    top_level: bool,
) -> None:
    """Write ``element`` as XML text, declaring each namespace where first needed.

    A top-level ``rdf:Description`` declares every namespace of its subtree, as
    XMP writers do, so the items of an array of structures do not repeat them.
    Depth is bounded by ``_MAX_DEPTH`` (parsed trees) or by construction.
    """
    used = _subtree_namespaces(element) if top_level else _element_namespaces(element)
    declare = sorted(used - in_scope, key=lambda uri: prefixes[uri])
    name = _qname(element.tag, prefixes)
    out.append(f"<{name}")
    for key, value in element.attrib.items():
        out.append(f' {_qname(key, prefixes)}="{_escape_attribute(value)}"')
    for uri in declare:
        out.append(f' xmlns:{prefixes[uri]}="{_escape_attribute(uri)}"')
    children = list(element)
    if not children and not element.text:
        out.append("/>")
    else:
        out.append(">")
        out.append(_escape_text(element.text or ""))
        scope = in_scope | frozenset(declare)
        for child in children:
            _serialize(child, prefixes, scope, out, top_level=element.tag == _RDF_RDF)
            out.append(_escape_text(child.tail or ""))
        out.append(f"</{name}>")


def _namespace(name: str) -> str | None:
    if name.startswith("{"):
        uri = name[1:].partition("}")[0]
        return None if uri == _NS_XML else uri
    return None


def _element_namespaces(element: ET.Element) -> set[str]:
    names = [element.tag, *element.attrib]
    return {uri for uri in map(_namespace, names) if uri is not None}


def _subtree_namespaces(element: ET.Element) -> set[str]:
    used: set[str] = set()
    for node in element.iter():
        used |= _element_namespaces(node)
    return used


def _qname(name: str, prefixes: dict[str, str]) -> str:
    if not name.startswith("{"):
        return name
    uri, _, local = name[1:].partition("}")
    if uri == _NS_XML:
        return f"xml:{local}"
    return f"{prefixes[uri]}:{local}"


def _escape_text(text: str) -> str:
    # "\r" must be a character reference: parsers turn a literal CR into LF.
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _escape_attribute(text: str) -> str:
    # Attribute-value normalisation turns literal tab/LF/CR into spaces.
    return _escape_text(text).replace('"', "&quot;").replace("\t", "&#9;").replace("\n", "&#10;")


def _prefix_map(declared: list[tuple[str, str]], *, reserve: bool) -> _PrefixMap:
    """Map each namespace URI to one prefix, unique in the whole packet.

    The packet's own prefixes are kept; ``x`` and ``rdf`` are reserved for their
    usual namespaces when writing; URIs with no usable prefix get ``ns1``, ``ns2``...
    """
    return _PrefixMap(declared, reserve=reserve)


class _PrefixMap(dict[str, str]):
    """A URI-to-prefix dict that invents a unique prefix for an unknown URI."""

    def __init__(self, declared: list[tuple[str, str]], *, reserve: bool) -> None:
        super().__init__()
        self._taken: set[str] = {"xml", "xmlns"}
        if reserve:
            for uri in (_NS_X, _NS_RDF):
                self._assign(uri, _PREFERRED_PREFIXES[uri])
        for prefix, uri in declared:
            if uri and uri not in self and uri != _NS_XML:
                self._assign(uri, prefix)

    def _assign(self, uri: str, prefix: str) -> str:
        if not prefix or prefix in self._taken:
            base = _PREFERRED_PREFIXES.get(uri, "ns")
            prefix, n = base, 1
            while prefix in self._taken:
                prefix, n = f"{base}{n}", n + 1
        self._taken.add(prefix)
        self[uri] = prefix
        return prefix

    def __missing__(self, uri: str) -> str:
        return self._assign(uri, _PREFERRED_PREFIXES.get(uri, ""))


# --------------------------------------------------------------------------- parse


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


def _properties(holder: ET.Element) -> dict[str, list[_Node]]:
    """Collect the properties of a description or structure, both forms.

    Attribute form (``<rdf:Description ns:Name="v"/>``) and element form are
    merged; ``rdf:*`` and ``xml:*`` attributes are syntax, not properties.
    """
    found: dict[str, list[_Node]] = {}
    for name, value in holder.attrib.items():
        uri = _namespace(name)
        if uri is not None and uri != _NS_RDF:
            found.setdefault(name, []).append(value)
    for child in holder:
        if _namespace(child.tag) != _NS_RDF:
            found.setdefault(child.tag, []).append(child)
    return found


def _top_level_properties(rdf: ET.Element) -> dict[str, list[_Node]]:
    merged: dict[str, list[_Node]] = {}
    for desc in rdf:
        if desc.tag == _RDF_DESCRIPTION:
            for name, nodes in _properties(desc).items():
                merged.setdefault(name, []).extend(nodes)
    return merged


def _has_property_attributes(element: ET.Element) -> bool:
    return any(_namespace(name) not in (None, _NS_RDF) for name in element.attrib)


def _as_simple(node: _Node) -> str | None:
    """The value of a simple property, or ``None`` when ``node`` is not one."""
    if isinstance(node, str):
        return node
    if len(node) or _RDF_PARSE_TYPE in node.attrib or _has_property_attributes(node):
        return None
    resource = node.get(_RDF_RESOURCE)
    if resource is not None:
        return None if (node.text or "").strip() else resource
    return node.text or ""


def _as_struct(node: _Node) -> ET.Element | None:
    """The element holding a structure's fields, or ``None`` when not a structure."""
    if isinstance(node, str):
        return None
    parse_type = node.get(_RDF_PARSE_TYPE)
    if parse_type is not None:
        return node if parse_type == "Resource" else None
    if (node.text or "").strip():
        return None
    children = list(node)
    if len(children) == 1 and children[0].tag == _RDF_DESCRIPTION:
        return children[0]
    if not children and _has_property_attributes(node):
        return node
    return None


def _as_array(node: _Node) -> tuple[str, list[ET.Element]] | None:
    """``(array tag, rdf:li items)``, or ``None`` when ``node`` is not an array."""
    if isinstance(node, str) or _RDF_PARSE_TYPE in node.attrib or (node.text or "").strip():
        return None
    children = list(node)
    if len(children) != 1 or children[0].tag not in (_RDF_SEQ, _RDF_BAG, _RDF_ALT):
        return None
    items = list(children[0])
    if any(item.tag != _RDF_LI for item in items):
        return None
    return children[0].tag, items


def _only(found: dict[str, list[_Node]], tag: str) -> _Node | None:
    nodes = found.get(tag, [])
    if len(nodes) > 1:
        raise XmpError(f"{_QNAMES.get(tag, tag)} has several values")
    return nodes[0] if nodes else None


def _simple(found: dict[str, list[_Node]], tag: str) -> str | None:
    node = _only(found, tag)
    if node is None:
        return None
    value = _as_simple(node)
    if value is None:
        raise XmpError(f"{_QNAMES[tag]} is not a simple text value")
    return value


def parse_packet(packet: bytes) -> XmpProvenance | None:
    """Read our provenance properties from an XMP packet.

    Properties are found in any top-level ``rdf:Description``, in element or
    attribute form (ExifTool and others rewrite packets their own way), with or
    without the ``xpacket`` wrapper and ``x:xmpmeta``.

    Args:
        packet: The packet bytes, UTF-8, at most :data:`MAX_PACKET_BYTES`.

    Returns:
        The values, or ``None`` when the packet has no ``provn:Statement`` (it is
        not ours).

    Raises:
        XmpError: The packet is oversized, not UTF-8, not well-formed, has a DTD,
            entity or external reference, or has our statement with properties
            missing, repeated or malformed.
    """
    root, _ = _parse_tree(packet)
    rdf = _find_rdf(root)
    if rdf is None:
        return None
    found = _top_level_properties(rdf)
    if _only(found, _STATEMENT) is None:
        return None
    values = {field: _simple(found, tag) for field, tag, _ in _SIMPLE_FIELDS}

    derived_document_id = derived_instance_id = None
    derived = _only(found, _DERIVED_FROM)
    if derived is not None:
        holder = _as_struct(derived)
        if holder is None:
            raise XmpError("xmpMM:DerivedFrom is not a structure")
        fields = _properties(holder)
        derived_document_id = _simple(fields, _ST_DOCUMENT_ID)
        derived_instance_id = _simple(fields, _ST_INSTANCE_ID)

    chain_node = _only(found, _CERTIFICATE_CHAIN)
    if chain_node is None:
        raise XmpError("provn:CertificateChain is missing")
    array = _as_array(chain_node)
    if array is None or array[0] != _RDF_SEQ:
        raise XmpError("provn:CertificateChain is not an rdf:Seq")
    chain: list[str] = []
    for item in array[1]:
        cert = _as_simple(item)
        if cert is None:
            raise XmpError("provn:CertificateChain holds an item that is not text")
        chain.append(cert)

    def required(field: str) -> str:
        value = values[field]
        if value is None:
            qname = next(q for f, _, q in _SIMPLE_FIELDS if f == field)
            raise XmpError(f"{qname} is missing")
        return value

    prov = XmpProvenance(
        digital_source_type=required("digital_source_type"),
        essence_sha256=required("essence_sha256"),
        statement=required("statement"),
        signature=required("signature"),
        signature_algorithm=required("signature_algorithm"),
        certificate_chain=tuple(chain),
        ai_system=values["ai_system"],
        ai_system_version=values["ai_system_version"],
        ai_prompt=values["ai_prompt"],
        document_id=values["document_id"],
        instance_id=values["instance_id"],
        derived_from_document_id=derived_document_id,
        derived_from_instance_id=derived_instance_id,
        asset_id=values["asset_id"],
        parent_sha256=values["parent_sha256"],
        parent_essence_sha256=values["parent_essence_sha256"],
    )
    _check(prov)
    return prov


def read_properties(packet: bytes) -> dict[str, str]:
    """Flatten the packet's properties to ``{"prefix:Name": value}`` for reports.

    Simple properties appear under their qualified name (using the packet's own
    prefixes), structure fields as ``"xmpMM:DerivedFrom/stRef:documentID"``,
    ``rdf:Seq``/``rdf:Bag`` items as ``"dc:creator[1]"`` (1-based) and an
    ``rdf:Alt`` (language alternatives) as its ``x-default`` or first item. Where
    a name repeats, the first value wins. Shapes that fit none of these are
    skipped: this is a report, not a validator.

    Args:
        packet: The packet bytes, under the same limits as :func:`parse_packet`.

    Returns:
        The flat properties, in document order.

    Raises:
        XmpError: The packet cannot be parsed safely.
    """
    root, declared = _parse_tree(packet)
    rdf = _find_rdf(root)
    out: dict[str, str] = {}
    if rdf is None:
        return out
    prefixes = _prefix_map(declared, reserve=False)
    for name, nodes in _top_level_properties(rdf).items():
        for node in nodes:
            _flatten(_qname(name, prefixes), node, prefixes, out)
    return out


def _flatten(path: str, node: _Node, prefixes: dict[str, str], out: dict[str, str]) -> None:
    """Add ``node``'s values to ``out`` under ``path``; recursion is depth-bounded."""
    value = _as_simple(node)
    if value is not None:
        out.setdefault(path, value)
        return
    holder = _as_struct(node)
    if holder is not None:
        for name, fields in _properties(holder).items():
            for field in fields:
                _flatten(f"{path}/{_qname(name, prefixes)}", field, prefixes, out)
        return
    array = _as_array(node)
    if array is None:
        return
    kind, items = array
    if kind == _RDF_ALT:
        default = [item for item in items if item.get(_XML_LANG) == "x-default"]
        for item in (default or items)[:1]:
            _flatten(path, item, prefixes, out)
        return
    for index, item in enumerate(items, start=1):
        _flatten(f"{path}[{index}]", item, prefixes, out)


# ---------------------------------------------------------------------- validation


def _check(prov: XmpProvenance) -> None:
    """Apply the rules both directions share; the message names the field.

    Raises:
        XmpError: A field has the wrong type, is empty, holds a character XML 1.0
            does not allow, or is not the hex/base64/token it must be.
    """
    for field in XmpProvenance.__slots__:
        value = getattr(prov, field)
        if field == "certificate_chain":
            if not isinstance(value, tuple) or not value:
                raise XmpError("certificate_chain must be a non-empty tuple of base64 strings")
            for index, cert in enumerate(value):
                _check_text(f"certificate_chain[{index}]", cert)
                if not _BASE64.fullmatch(cert):
                    raise XmpError(f"certificate_chain[{index}] is not base64")
            continue
        if value is None and field not in _REQUIRED:
            continue
        _check_text(field, value)
    for field in _SHA256_FIELDS:
        value = getattr(prov, field)
        if value is not None and not _SHA256_HEX.fullmatch(value):
            raise XmpError(f"{field} is not 64 lowercase hex digits")
    if not _BASE64.fullmatch(prov.signature):
        raise XmpError("signature is not base64")
    if not _ALGORITHM.fullmatch(prov.signature_algorithm):
        raise XmpError(f"signature_algorithm {prov.signature_algorithm[:40]!r} is not a name")


def _check_text(field: str, value: object) -> None:
    if not isinstance(value, str):
        raise XmpError(f"{field} must be a string, not {type(value).__name__}")
    if not value:
        raise XmpError(f"{field} is empty")
    bad = _NOT_XML_CHAR.search(value)
    if bad is not None:
        raise XmpError(f"{field} contains U+{ord(bad.group()):04X}, which XML 1.0 does not allow")
