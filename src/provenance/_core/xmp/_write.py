"""Build the provenance packet, or merge it into an existing packet, as UTF-8 bytes."""

from __future__ import annotations

# Only for the Element type and TreeBuilder; every parse goes through defusedxml (_tree).
import dataclasses
import xml.etree.ElementTree as ET

from provenance._core.xmp._model import XmpProvenance, _check
from provenance._core.xmp._names import (
    _CERTIFICATE_CHAIN,
    _DERIVED_FROM,
    _HEAD_FIELDS,
    _NS_RDF,
    _NS_XML,
    _OWNED_FOREIGN,
    _PACKET_HEADER,
    _PACKET_TRAILER,
    _RDF_ABOUT,
    _RDF_DESCRIPTION,
    _RDF_LI,
    _RDF_PARSE_TYPE,
    _RDF_RDF,
    _RDF_SEQ,
    _ST_DOCUMENT_ID,
    _ST_INSTANCE_ID,
    _STATEMENT,
    _TAIL_FIELDS,
    _X_XMPMETA,
    MAX_PACKET_BYTES,
    NS_PROVENANCE,
    _namespace,
    _prefix_map,
    _qname,
)
from provenance._core.xmp._tree import _find_rdf, _parse_tree
from provenance.errors import XmpError


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
    packet = (_fresh_packet(prov) if existing is None else _merged_text(prov, existing)).encode()
    if len(packet) > MAX_PACKET_BYTES:
        raise XmpError(f"XMP packet would be {len(packet)} bytes, over {MAX_PACKET_BYTES}")
    return packet


def _merged_text(prov: XmpProvenance, existing: bytes | None) -> str:
    """The packet's text: ``prov`` in a new ``rdf:Description``, merged into ``existing``."""
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
    return "".join(out)


# A fresh packet (nothing to merge) is the same text for every ``prov`` of one shape
# (which optional fields are set, how many certificates) but for its escaped values.
# So its literal parts are written once per shape (a signer meets a handful), by
# _merged_text itself, with a numbered marker in each value's place (U+E000, which
# escaping leaves alone), and the values are escaped into the gaps: the same bytes
# (tests/unit/test_xmp.py compares them), 63 -> 23 us per packet (issue 20). A value
# may hold U+E000 itself: the template is split before any value goes in.
_FIELDS = tuple(field.name for field in dataclasses.fields(XmpProvenance))
_MARK = "\ue000"
_Template = tuple[tuple[str, ...], tuple[int, ...]]
_TEMPLATES: dict[tuple[object, ...], _Template] = {}


def _fresh_packet(prov: XmpProvenance) -> str:
    """:func:`_merged_text` of ``prov`` with nothing to merge, from its shape's template."""
    values = [getattr(prov, name) for name in _FIELDS]
    shape = tuple(len(v) if isinstance(v, tuple) else v is None for v in values)
    template = _TEMPLATES.get(shape)
    if template is None:
        template = _TEMPLATES[shape] = _template(values)
    literals, order = template
    flat = [v for value in values if value is not None for v in _flatten(value)]
    out = [literals[0]]
    for literal, index in zip(literals[1:], order, strict=True):
        out.append(_escape_text(flat[index]))
        out.append(literal)
    return "".join(out)


def _flatten(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (value,)


def _template(values: list[str | tuple[str, ...] | None]) -> _Template:
    """The literal parts of a fresh packet of this shape, and which value goes between each two."""
    count = 0
    marked: list[object] = []
    for value in values:
        if value is None:
            marked.append(None)
            continue
        ids = [f"{_MARK}{count + k}{_MARK}" for k in range(len(_flatten(value)))]
        count += len(ids)
        marked.append(tuple(ids) if isinstance(value, tuple) else ids[0])
    text = _merged_text(XmpProvenance(*marked), None)  # type: ignore[arg-type]
    parts = text.split(_MARK)
    # parts: literal, index, literal, index, ..., literal
    order = tuple(int(part) for part in parts[1::2])
    if sorted(order) != list(range(count)):  # pragma: no cover - a field written twice or never
        raise XmpError("the XMP template lost a field")
    return tuple(parts[0::2]), order


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
    covered: bool = False,
) -> None:
    """Write ``element`` as XML text, declaring each namespace where first needed.

    A top-level ``rdf:Description`` declares every namespace of its subtree, as
    XMP writers do, so the items of an array of structures do not repeat them;
    below it (``covered``) nothing is left to declare and nothing is looked up.
    Depth is bounded by ``_MAX_DEPTH`` (parsed trees) or by construction.
    """
    if covered:
        declare: list[str] = []
    else:
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
        scope = in_scope | frozenset(declare) if declare else in_scope
        below = covered or top_level  # a top-level element declared its whole subtree
        for child in children:
            _serialize(
                child, prefixes, scope, out, top_level=element.tag == _RDF_RDF, covered=below
            )
            out.append(_escape_text(child.tail or ""))
        out.append(f"</{name}>")


def _element_namespaces(element: ET.Element) -> set[str]:
    names = [element.tag, *element.attrib]
    return {uri for uri in map(_namespace, names) if uri is not None}


def _subtree_namespaces(element: ET.Element) -> set[str]:
    used: set[str] = set()
    for node in element.iter():
        used |= _element_namespaces(node)
    return used


def _escape_text(text: str) -> str:
    # "\r" must be a character reference: parsers turn a literal CR into LF.
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _escape_attribute(text: str) -> str:
    # Attribute-value normalisation turns literal tab/LF/CR into spaces.
    return _escape_text(text).replace('"', "&quot;").replace("\t", "&#9;").replace("\n", "&#10;")
