"""ExifTool, an independent reader and writer, against our XMP packets.

What ExifTool 12.57 shows (it predates IPTC 2025.1, so the AI fields are not in
its tag tables): it still files them under ``XMP-iptcExt`` with names made from
the property names, ``XMP-iptcExt:AISystemUsed``, ``XMP-iptcExt:AISystemVersionUsed``
and ``XMP-iptcExt:AIPromptInformation``; our own namespace appears as group
``XMP-provn`` (its prefix), ``provn:CertificateChain`` as a JSON list, and
``xmpMM:DerivedFrom`` as a structure with ``DocumentID``/``InstanceID`` under
``-struct``. ExifTool prints number-like text ("1.0") as a JSON number, so the
version used here is not number-like.

When ExifTool rewrites the XMP (any XMP edit), it regroups properties into one
``rdf:Description`` per namespace; with ``-api Compact=Shorthand`` it writes
simple properties as attributes. ExifTool writes literal newlines and tabs inside
those attributes, which XML attribute-value normalisation turns into spaces, so a
multi-line ``AIPromptInformation`` does not survive Shorthand mode; the signed
statement is canonical JSON (no raw newlines), so the signature is unaffected.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from provenance._core.xmp import XmpProvenance, build_packet, parse_packet, read_properties

pytestmark = pytest.mark.interop

EXIFTOOL = shutil.which("exiftool")
requires_exiftool = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not on PATH")

XMP_APP1_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
DST = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def make_prov(**overrides: Any) -> XmpProvenance:
    values: dict[str, Any] = {
        "digital_source_type": DST,
        "essence_sha256": "0123456789abcdef" * 4,
        "statement": '{"generator":"acme-gen","note":"caf\\u00e9 <b> & \\"q\\"","seed":42}',
        "signature": base64.b64encode(bytes(range(71))).decode(),
        "signature_algorithm": "ES256",
        "certificate_chain": (
            base64.b64encode(b"\x30\x82" + bytes(range(256)) * 2).decode(),
            base64.b64encode(b"\x30\x82" + bytes(reversed(range(256))) * 2).decode(),
        ),
        "ai_system": "acme-gen SDXL",
        "ai_system_version": "2.1.0-lightning",
        "ai_prompt": 'white sneaker, "studio" light <soft> & café',
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


def plain_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (240, 240, 240)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def jpeg_with_xmp(packet: bytes, jpeg: bytes | None = None) -> bytes:
    """SOI + one APP1 XMP segment + the rest of a JPEG (test helper, not the library's)."""
    jpeg = plain_jpeg() if jpeg is None else jpeg
    assert jpeg[:2] == b"\xff\xd8"
    payload = XMP_APP1_HEADER + packet
    assert len(payload) + 2 <= 0xFFFF
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment + jpeg[2:]


def xmp_from_jpeg(jpeg: bytes) -> bytes:
    """The packet of the (single) standard XMP APP1 segment, before the scan data."""
    assert jpeg[:2] == b"\xff\xd8"
    offset = 2
    while offset + 4 <= len(jpeg):
        marker = jpeg[offset + 1]
        if marker == 0xDA:
            break
        (length,) = struct.unpack(">H", jpeg[offset + 2 : offset + 4])
        body = jpeg[offset + 4 : offset + 2 + length]
        if marker == 0xE1 and body.startswith(XMP_APP1_HEADER):
            return body[len(XMP_APP1_HEADER) :]
        offset += 2 + length
    raise AssertionError("no XMP APP1 segment")


def exiftool(*args: str | Path) -> str:
    assert EXIFTOOL is not None
    done = subprocess.run([EXIFTOOL, *map(str, args)], capture_output=True, check=True, timeout=60)
    return done.stdout.decode("utf-8")


def exiftool_json(path: Path) -> dict[str, Any]:
    (tags,) = json.loads(exiftool("-j", "-G1", "-struct", path))
    assert isinstance(tags, dict)
    return tags


def assert_exiftool_reads(tags: dict[str, Any], prov: XmpProvenance) -> None:
    assert tags["XMP-iptcExt:DigitalSourceType"] == DST
    # Not in ExifTool 12.57's tables (IPTC 2025.1): shown under generated names.
    assert tags["XMP-iptcExt:AISystemUsed"] == prov.ai_system
    assert tags["XMP-iptcExt:AISystemVersionUsed"] == prov.ai_system_version
    assert tags["XMP-iptcExt:AIPromptInformation"] == prov.ai_prompt
    assert tags["XMP-xmpMM:DocumentID"] == prov.document_id
    assert tags["XMP-xmpMM:InstanceID"] == prov.instance_id
    assert tags["XMP-xmpMM:DerivedFrom"] == {
        "DocumentID": prov.derived_from_document_id,
        "InstanceID": prov.derived_from_instance_id,
    }
    assert tags["XMP-provn:Statement"] == prov.statement
    assert tags["XMP-provn:Signature"] == prov.signature
    assert tags["XMP-provn:SignatureAlgorithm"] == prov.signature_algorithm
    assert tags["XMP-provn:EssenceSHA256"] == prov.essence_sha256
    assert tags["XMP-provn:ParentSHA256"] == prov.parent_sha256
    assert tags["XMP-provn:ParentEssenceSHA256"] == prov.parent_essence_sha256
    assert tags["XMP-provn:AssetID"] == prov.asset_id
    assert tags["XMP-provn:CertificateChain"] == list(prov.certificate_chain)


@requires_exiftool
def test_exiftool_reads_our_packet_in_a_jpeg(tmp_path: Path) -> None:
    prov = make_prov()
    path = tmp_path / "signed.jpg"
    path.write_bytes(jpeg_with_xmp(build_packet(prov)))
    tags = exiftool_json(path)
    assert "ExifTool:Warning" not in tags
    assert_exiftool_reads(tags, prov)


@requires_exiftool
def test_exiftool_reads_our_packet_as_a_sidecar(tmp_path: Path) -> None:
    prov = make_prov()
    path = tmp_path / "signed.xmp"
    path.write_bytes(build_packet(prov))
    tags = exiftool_json(path)
    assert tags["File:FileType"] == "XMP"
    assert_exiftool_reads(tags, prov)


@requires_exiftool
def test_we_read_the_packet_exiftool_rewrote(tmp_path: Path) -> None:
    prov = make_prov()
    path = tmp_path / "edited.jpg"
    path.write_bytes(jpeg_with_xmp(build_packet(prov)))
    exiftool("-XMP-dc:Title=x", path, "-overwrite_original")
    rewritten = xmp_from_jpeg(path.read_bytes())
    assert b"Image::ExifTool" in rewritten  # ExifTool really rewrote the packet
    assert parse_packet(rewritten) == prov
    assert read_properties(rewritten)["dc:title"] == "x"


@requires_exiftool
def test_we_read_exiftool_shorthand_attribute_form(tmp_path: Path) -> None:
    prov = make_prov()
    path = tmp_path / "shorthand.jpg"
    path.write_bytes(jpeg_with_xmp(build_packet(prov)))
    exiftool("-api", "Compact=Shorthand,OneDesc", "-XMP-dc:Title=x", path, "-overwrite_original")
    rewritten = xmp_from_jpeg(path.read_bytes())
    # Simple properties really are attributes now.
    assert b"provn:Statement='" in rewritten
    assert b"<provn:Statement>" not in rewritten
    assert parse_packet(rewritten) == prov


@requires_exiftool
def test_merge_into_a_packet_exiftool_wrote(tmp_path: Path) -> None:
    source = tmp_path / "source.jpg"
    source.write_bytes(plain_jpeg())
    exiftool(
        "-XMP-dc:Title=Sneaker front",
        "-XMP-dc:Creator=Jane Studio",
        "-XMP-dc:Creator=ACME Retouch",
        "-XMP-photoshop:DateCreated=2024:03:01 10:12:33+01:00",
        "-XMP-xmp:CreatorTool=Adobe Photoshop 25.0",
        "-XMP-xmpMM:DocumentID=xmp.did:old",
        "-XMP-iptcExt:DigitalSourceType=http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture",
        source,
        "-overwrite_original",
    )
    existing = xmp_from_jpeg(source.read_bytes())
    prov = make_prov()
    merged = tmp_path / "merged.jpg"
    merged.write_bytes(jpeg_with_xmp(build_packet(prov, existing=existing), plain_jpeg()))
    tags = exiftool_json(merged)
    assert_exiftool_reads(tags, prov)
    assert tags["XMP-dc:Title"] == "Sneaker front"
    assert tags["XMP-dc:Creator"] == ["Jane Studio", "ACME Retouch"]
    assert tags["XMP-photoshop:DateCreated"] == "2024:03:01 10:12:33+01:00"
    assert tags["XMP-xmp:CreatorTool"] == "Adobe Photoshop 25.0"
