"""Read our provenance fields from a packet, and flatten any packet for reports."""

from __future__ import annotations

# Only for the Element type and TreeBuilder; every parse goes through defusedxml (_tree).
import xml.etree.ElementTree as ET

from provenance._core.xmp._model import XmpProvenance, _check
from provenance._core.xmp._names import (
    _CERTIFICATE_CHAIN,
    _DERIVED_FROM,
    _NS_RDF,
    _QNAMES,
    _RDF_ALT,
    _RDF_BAG,
    _RDF_DESCRIPTION,
    _RDF_LI,
    _RDF_PARSE_TYPE,
    _RDF_RESOURCE,
    _RDF_SEQ,
    _SIMPLE_FIELDS,
    _ST_DOCUMENT_ID,
    _ST_INSTANCE_ID,
    _STATEMENT,
    _XML_LANG,
    _namespace,
    _Node,
    _prefix_map,
    _qname,
)
from provenance._core.xmp._tree import _find_rdf, _parse_tree
from provenance.errors import XmpError


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
    derived_document_id, derived_instance_id = _derived_from(found)
    chain = _certificate_chain(found)

    prov = XmpProvenance(
        digital_source_type=_required(values, "digital_source_type"),
        essence_sha256=_required(values, "essence_sha256"),
        statement=_required(values, "statement"),
        signature=_required(values, "signature"),
        signature_algorithm=_required(values, "signature_algorithm"),
        certificate_chain=chain,
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


def _derived_from(found: dict[str, list[_Node]]) -> tuple[str | None, str | None]:
    """``xmpMM:DerivedFrom``'s document and instance IDs, or ``(None, None)`` without it."""
    derived = _only(found, _DERIVED_FROM)
    if derived is None:
        return None, None
    holder = _as_struct(derived)
    if holder is None:
        raise XmpError("xmpMM:DerivedFrom is not a structure")
    fields = _properties(holder)
    return _simple(fields, _ST_DOCUMENT_ID), _simple(fields, _ST_INSTANCE_ID)


def _certificate_chain(found: dict[str, list[_Node]]) -> tuple[str, ...]:
    """The ``provn:CertificateChain`` items, which must be an ``rdf:Seq`` of text."""
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
    return tuple(chain)


def _required(values: dict[str, str | None], field: str) -> str:
    """A simple field's value; a missing one is an error naming its qualified name."""
    value = values[field]
    if value is None:
        qname = next(q for f, _, q in _SIMPLE_FIELDS if f == field)
        raise XmpError(f"{qname} is missing")
    return value


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
