"""Independent readers on our signed files: ExifTool, and c2pa's own Reader.

ExifTool must see the C2PA (JUMBF) block, the digitalSourceType of the action,
and the IPTC fields of our XMP; c2pa's Reader, configured here without any of
our code, must validate the manifest against the development CA.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import c2pa
import pytest
from PIL import Image

from provenance import (
    RenditionMark,
    SigningKey,
    Status,
    TrustPolicy,
    sign,
    sign_bytes,
    sign_rendition,
    verify,
)
from provenance._core.containers import inspect
from provenance._core.hashing import essence_hash
from provenance._io.keys import DevKeyPaths
from tests.conftest import SAMPLE_MEDIA, sample_record

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("exiftool") is None, reason="ExifTool is not installed"),
]

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
FILES = ["forest-path.jpg", "packshot-fire-truck-white.png", "lake-at-dusk.webp"]


def exiftool(*args: str | Path) -> dict[str, list[str]]:
    """Every tag ExifTool reads, as group:name -> values (duplicates kept, all strings)."""
    done = subprocess.run(
        ["exiftool", "-args", "-G1", "-a", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    tags: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        name, _, value = line.removeprefix("-").partition("=")
        tags.setdefault(name, []).append(value)
    return tags


@pytest.fixture
def signed(
    media: Callable[[str], Path], signing_key: SigningKey, tmp_path: Path
) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        dst = tmp_path / f"signed-{name}"
        sign(media(name), dst, record=sample_record(name), key=signing_key)
        return dst

    return make


@pytest.mark.parametrize("name", ["forest-path.jpg", "packshot-fire-truck-white.png"])
def test_exiftool_sees_c2pa_block_and_action(name: str, signed: Callable[[str], Path]) -> None:
    tags = exiftool(signed(name))
    labels = tags["JUMBF:JUMDLabel"]
    assert "c2pa" in labels and "c2pa.signature" in labels
    assert "dev.provenance.statement" in labels
    assert tags["CBOR:ActionsAction"] == ["c2pa.created"]
    expected = IPTC + sample_record(name).digital_source_type.value
    assert tags["CBOR:ActionsDigitalSourceType"] == [expected]


@pytest.mark.parametrize("name", FILES)
def test_exiftool_reads_our_xmp(name: str, signed: Callable[[str], Path]) -> None:
    record = sample_record(name)
    tags = exiftool(signed(name))
    assert tags["XMP-iptcExt:DigitalSourceType"] == [record.digital_source_type.uri]
    assert tags["XMP-iptcExt:AISystemUsed"] == [record.model]
    assert tags["XMP-iptcExt:AISystemVersionUsed"] == [record.model_version]
    (statement,) = tags["XMP-provn:Statement"]
    assert json.loads(statement)["record"]["model"] == record.model


@pytest.mark.parametrize("name", ["forest-path.jpg", "lake-at-dusk.webp"])
def test_exiftool_reads_minimal_exif(name: str, signed: Callable[[str], Path]) -> None:
    # PNG is left out: ExifTool 12.57 skips a PNG eXIf chunk that follows a
    # caBX chunk ("IFD0 pointer references previous JUMBFBox directory"); it
    # reads the same eXIf once the caBX chunk is gone.
    tags = exiftool(signed(name))
    assert tags["IFD0:ImageDescription"] == ["AI-generated image"]
    assert sample_record(name).model in tags["IFD0:Software"][0]
    assert not any(key.startswith("GPS") for key in tags)


@pytest.mark.parametrize("name", FILES)
def test_exiftool_strip_all_leaves_essence_and_no_provenance(
    name: str, signed: Callable[[str], Path], trust: TrustPolicy
) -> None:
    path = signed(name)
    before = essence_hash(path.read_bytes())
    subprocess.run(
        ["exiftool", "-q", "-all=", "-overwrite_original", str(path)], check=True, timeout=60
    )
    after = path.read_bytes()
    assert b"provn" not in after
    assert essence_hash(after) == before
    verdict = verify(path, trust=trust)
    if inspect(after).has_c2pa:
        # ExifTool 12.57 removes XMP and EXIF from PNG and WebP but keeps the
        # caBX / C2PA chunk: the manifest's hard binding no longer matches, but
        # the image data is the signed essence: metadata removed, not tampered.
        assert verdict.status is Status.KNOWN_STRIPPED
        assert "assertion.dataHash.mismatch" in verdict.failure_codes
        assert "provenance.c2pa.binding.metadataOnly" in verdict.failure_codes
        assert verdict.record is not None
    else:
        assert verdict.status is Status.NO_PROVENANCE


@pytest.mark.parametrize("name", FILES)
def test_c2pa_reader_validates_our_manifest(
    name: str, signed: Callable[[str], Path], dev_keys: DevKeyPaths
) -> None:
    settings = {
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
        "trust": {"trust_anchors": dev_keys.ca_certificate.read_text()},
    }
    mime = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}[name.rsplit(".")[-1]]
    with (
        c2pa.Context(settings=c2pa.Settings.from_dict(settings)) as context,
        c2pa.Reader(mime, io.BytesIO(signed(name).read_bytes()), context=context) as reader,
    ):
        store = json.loads(reader.json())
    assert store["validation_state"] == "Trusted"
    manifest = store["manifests"][store["active_manifest"]]
    (actions,) = [a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions")]
    created = actions["data"]["actions"][0]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"].startswith(IPTC)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, whole chunk) of every chunk, walked independently of our parser."""
    found, pos = [], 8
    while pos < len(data):
        end = pos + 12 + int.from_bytes(data[pos : pos + 4], "big")
        found.append((data[pos + 4 : pos + 8], data[pos:end]))
        pos = end
    return found


def _in_small_idat_chunks(data: bytes, size: int) -> bytes:
    """``data`` with its image data cut into IDAT chunks of ``size`` bytes, as libpng writes."""
    chunks = _png_chunks(data)
    idat = b"".join(chunk[8:-4] for kind, chunk in chunks if kind == b"IDAT")
    cut = []
    for start in range(0, len(idat), size):
        payload = b"IDAT" + idat[start : start + size]
        crc = zlib.crc32(payload).to_bytes(4, "big")
        cut.append((len(payload) - 4).to_bytes(4, "big") + payload + crc)
    before = b"".join(chunk for kind, chunk in chunks[:1])
    after = b"".join(chunk for kind, chunk in chunks[1:] if kind != b"IDAT")
    return data[:8] + before + b"".join(cut) + after


def test_png_in_many_idat_chunks_signs_for_every_reader(
    signing_key: SigningKey, trust: TrustPolicy, dev_keys: DevKeyPaths, tmp_path: Path
) -> None:
    # libpng writes image data in 8 KiB IDAT chunks: c2pa walks each of them through
    # the stream, and our walk keeps only the metadata chunks and one essence range.
    # The signed original and a rendition whose parent ingredient is that PNG must
    # read the same to c2pa, ExifTool and verify.
    name = "packshot-fire-truck-white.png"
    data = _in_small_idat_chunks((SAMPLE_MEDIA / name).read_bytes(), 4096)
    idat = [chunk for kind, chunk in _png_chunks(data) if kind == b"IDAT"]
    assert len(idat) > 50
    record = sample_record(name)
    signed, original = sign_bytes(data, record=record, key=signing_key, name=name)
    # c2pa and our XMP added chunks; every IDAT chunk is carried byte for byte.
    assert [chunk for kind, chunk in _png_chunks(signed) if kind == b"IDAT"] == idat
    assert original.essence_sha256_hex == essence_hash(data) == essence_hash(signed)
    with Image.open(io.BytesIO(data)) as before, Image.open(io.BytesIO(signed)) as after:
        assert after.tobytes() == before.tobytes()
    small = io.BytesIO()
    with Image.open(io.BytesIO(data)) as image:
        image.resize((120, 90)).save(small, "PNG")
    child, _ = sign_rendition(
        small.getvalue(), original, key=signing_key, mark=RenditionMark.C2PA, parent_data=signed
    )
    settings = {
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
        "trust": {"trust_anchors": dev_keys.ca_certificate.read_text()},
    }
    for made, label in ((signed, "c2pa.created"), (child, "c2pa.opened")):
        path = tmp_path / f"{label}.png"
        path.write_bytes(made)
        with (
            c2pa.Context(settings=c2pa.Settings.from_dict(settings)) as context,
            c2pa.Reader("image/png", io.BytesIO(made), context=context) as reader,
        ):
            store = json.loads(reader.json())
        assert store["validation_state"] == "Trusted"
        manifest = store["manifests"][store["active_manifest"]]
        (actions,) = [a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions")]
        assert actions["data"]["actions"][0]["action"] == label
        assert verify(path, trust=trust).status is Status.TRUSTED
        tags = exiftool(path)
        assert "c2pa.signature" in tags["JUMBF:JUMDLabel"]
        assert tags["XMP-iptcExt:DigitalSourceType"] == [record.digital_source_type.uri]
    (ingredient,) = manifest["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    assert ingredient["active_manifest"] == original.active_manifest
