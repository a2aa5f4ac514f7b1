"""Names of the provenance XMP packet: namespaces, property tags, field tables, prefixes.

Pure values shared by the reader and the writer; nothing here parses or builds XML.
"""

from __future__ import annotations

import re

# Only for the Element type and TreeBuilder; every parse goes through defusedxml (_tree).
import xml.etree.ElementTree as ET
from typing import Final, TypeAlias

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


def _namespace(name: str) -> str | None:
    if name.startswith("{"):
        uri = name[1:].partition("}")[0]
        return None if uri == _NS_XML else uri
    return None


def _qname(name: str, prefixes: dict[str, str]) -> str:
    if not name.startswith("{"):
        return name
    uri, _, local = name[1:].partition("}")
    if uri == _NS_XML:
        return f"xml:{local}"
    return f"{prefixes[uri]}:{local}"


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
