"""File SHA-256 and essence hash: known values, coverage per format, invariance."""

from __future__ import annotations

import hashlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from provenance._core import containers
from provenance._core.containers import BlockKind
from provenance._core.hashing import essence_hash, hash_ranges, sha256_and_ranges, sha256_hex
from provenance.errors import ContainerError, UnsupportedFormat

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>'


def _encode(fmt: str, **options: object) -> bytes:
    image = Image.new("RGB", (64, 40), (250, 250, 250))
    ImageDraw.Draw(image).ellipse((4, 4, 40, 36), fill=(180, 20, 40))
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


FILES = {
    "jpeg": _encode("JPEG"),
    "png": _encode("PNG"),
    "webp": _encode("WEBP"),
    "webp_lossless": _encode("WEBP", lossless=True),
}


def test_sha256_hex_known_values() -> None:
    assert sha256_hex(b"") == ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert sha256_hex(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


@pytest.mark.parametrize("name", FILES)
def test_essence_hash_is_sha256_of_the_concatenated_ranges(name: str) -> None:
    data = FILES[name]
    ranges = containers.inspect(data).essence_ranges
    expected = hashlib.sha256(b"".join(data[s:e] for s, e in ranges)).hexdigest()
    assert essence_hash(data) == expected == hash_ranges(data, ranges)
    assert len(essence_hash(data)) == 64
    assert essence_hash(data) != sha256_hex(data)


def test_essence_per_format_by_hand() -> None:
    jpeg = FILES["jpeg"]
    # SOI, then Pillow's 18-byte JFIF APP0; everything from DQT through EOI is essence.
    assert jpeg[2:4] == b"\xff\xe0" and jpeg[20:22] == b"\xff\xdb"
    assert essence_hash(jpeg) == sha256_hex(jpeg[20:])
    png = FILES["png"]
    # Signature, then IHDR and IDAT chunks whole; IEND (the last 12 bytes) is not covered.
    assert essence_hash(png) == sha256_hex(png[8:-12])
    webp = FILES["webp"]
    # A simple lossy file: RIFF header, then the single 'VP8 ' chunk, covered whole.
    assert webp[12:16] == b"VP8 "
    assert essence_hash(webp) == sha256_hex(webp[12:])


@pytest.mark.parametrize("name", FILES)
def test_metadata_edits_leave_the_essence_hash_alone(name: str) -> None:
    data = FILES[name]
    tiff = b"MM\x00*\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00"
    edited = containers.set_exif(containers.set_xmp(data, XMP), tiff)
    assert sha256_hex(edited) != sha256_hex(data)
    assert essence_hash(edited) == essence_hash(data)
    assert essence_hash(containers.strip(edited, frozenset(BlockKind))) == essence_hash(data)


def test_different_images_have_different_essence_hashes() -> None:
    hashes = {essence_hash(data) for data in FILES.values()}
    assert len(hashes) == len(FILES)


def test_essence_hash_errors_are_provenance_errors() -> None:
    with pytest.raises(UnsupportedFormat):
        essence_hash(b"")
    with pytest.raises(UnsupportedFormat):
        essence_hash(b"%PDF-1.7")
    with pytest.raises(ContainerError):
        essence_hash(FILES["png"][:100])


def test_hash_ranges_concatenates_the_ranges() -> None:
    data = b"0123456789"
    assert hash_ranges(data, [(0, 3), (5, 7)]) == sha256_hex(b"01256")
    assert hash_ranges(data, []) == sha256_hex(b"")


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=0, max_size=300_000),
    st.lists(st.integers(0, 300_000), max_size=12),
)
def test_one_pass_equals_the_two_hashes(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({min(c, len(data)) for c in cuts})
    ranges = [(a, b) for a, b in zip(bounds[::2], bounds[1::2], strict=False) if a < b]
    assert sha256_and_ranges(data, ranges) == (sha256_hex(data), hash_ranges(data, ranges))


def test_one_pass_with_ranges_across_blocks() -> None:
    data = bytes(range(256)) * 1200  # 307,200 bytes: five 64 KB blocks
    ranges = [(0, 10), (65_530, 65_542), (70_000, 200_000), (262_144, 307_200)]
    assert sha256_and_ranges(data, ranges) == (sha256_hex(data), hash_ranges(data, ranges))
    assert sha256_and_ranges(data, []) == (sha256_hex(data), hashlib.sha256().hexdigest())
