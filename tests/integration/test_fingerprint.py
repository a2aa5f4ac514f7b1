"""fingerprint() on real files: copies match, strangers do not, bad files fail clearly."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from provenance import CorruptFile, Fingerprint, ProvenanceError, fingerprint
from provenance._core import phash
from provenance._core.hashing import essence_hash

Media = Callable[[str], Path]


def _match(copy: Fingerprint, original: Fingerprint) -> tuple[int, str]:
    d = phash.hamming(copy.query, original.reference.words)
    row = int(d.argmin())
    return int(d[row]), original.reference.variants[row]


def test_fields_from_a_path(media: Media) -> None:
    path = media("rowing-boats-sunset.jpg")
    data = path.read_bytes()
    fp = fingerprint(path)
    assert fp.sha256_hex == hashlib.sha256(data).hexdigest()
    assert fp.essence_sha256_hex == essence_hash(data)
    assert (fp.width, fp.height) == (2560, 1600)
    assert fp.scheme == phash.SCHEME
    assert fp.query.shape == (phash.WORDS,)
    assert np.array_equal(fp.query, fp.reference.words[0])
    with Image.open(path) as full:
        full.load()
        # Draft decoding changes at most a couple of bits of the compatible hash.
        assert bin(fp.phash ^ int(str(imagehash.phash(full)), 16)).count("1") <= 3
        assert phash.hamming(fp.query, phash.query_hashes([full])[0]) <= 12


def test_bytes_and_path_agree(media: Media) -> None:
    path = media("packshot-fire-truck-white.png")
    by_path = fingerprint(path)
    by_bytes = fingerprint(path.read_bytes())
    assert by_path.sha256_hex == by_bytes.sha256_hex
    assert by_path.phash == by_bytes.phash
    assert np.array_equal(by_path.reference.words, by_bytes.reference.words)


def test_decoded_image_is_not_decoded_again(media: Media) -> None:
    path = media("kite-blue-sky.jpg")
    with Image.open(path) as im:
        im.load()
        decoded = im.copy()
    fp = fingerprint(path, image=decoded)
    assert fp.sha256_hex == hashlib.sha256(path.read_bytes()).hexdigest()
    assert fp.phash == int(phash.compat_hashes([decoded])[0])
    pixels_only = fingerprint(decoded)
    assert pixels_only.sha256_hex is None and pixels_only.essence_sha256_hex is None
    assert pixels_only.phash == fp.phash


@pytest.mark.parametrize(
    "name",
    ["fallen-maple-leaf.jpg", "lake-at-dusk.webp", "packshot-site-dumper-alpha.png"],
)
def test_resized_and_reencoded_copy_matches(media: Media, name: str) -> None:
    path = media(name)
    original = fingerprint(path)
    with Image.open(path) as im:
        im.load()
        flat = Image.new("RGBA", im.size, "white")
        flat.alpha_composite(im.convert("RGBA"))  # what a shop's JPEG export does
        small = flat.convert("RGB").resize(
            (im.width // 2, im.height // 2), Image.Resampling.LANCZOS
        )
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=60)
    copy = fingerprint(buffer.getvalue())
    distance, variant = _match(copy, original)
    assert distance <= phash.MATCH_THRESHOLD
    assert variant == "full:identity"
    with Image.open(io.BytesIO(buffer.getvalue())) as found:
        assert phash.confirm(found, original.reference.descriptor, variant=variant)


def test_flipped_copy_matches_its_flip_row(media: Media) -> None:
    path = media("forest-path.jpg")
    original = fingerprint(path)
    with Image.open(path) as im:
        flipped = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    distance, variant = _match(fingerprint(flipped), original)
    assert distance <= phash.MATCH_THRESHOLD
    assert variant == "full:flip_h"


def test_unrelated_photos_do_not_match(media: Media) -> None:
    names = ["fallen-maple-leaf.jpg", "forest-path.jpg", "kite-blue-sky.jpg", "moss-close-up.webp"]
    prints = [fingerprint(media(n)) for n in names]
    for i, a in enumerate(prints):
        for j, b in enumerate(prints):
            if i != j:
                assert _match(a, b)[0] > phash.MATCH_THRESHOLD


def test_truncated_jpeg_is_a_corrupt_file(media: Media, tmp_path: Path) -> None:
    data = media("forest-path.jpg").read_bytes()
    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(CorruptFile) as info:
        fingerprint(bad)
    assert str(info.value).startswith(str(bad))


def test_not_an_image_is_a_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"this is a text file, not a picture\n" * 10)
    with pytest.raises(CorruptFile, match="cannot decode") as info:
        fingerprint(bad)
    assert str(info.value).startswith(str(bad))


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    # 100,000 x 100,000 pixels claimed by a 100-byte PNG: Pillow's limit refuses it.
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(data)
    with pytest.raises(ProvenanceError, match="decompression bomb") as info:
        fingerprint(bomb)
    assert str(info.value).startswith(str(bomb))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProvenanceError, match="no such file"):
        fingerprint(tmp_path / "absent.jpg")


@pytest.mark.parametrize("mode", ["CMYK", "I;16", "P", "LA"])
def test_odd_modes_from_files(media: Media, tmp_path: Path, mode: str) -> None:
    path = media("moss-close-up.webp")
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    if mode == "I;16":
        converted = Image.fromarray(
            (np.asarray(rgb.convert("L"), dtype=np.uint16) * 257).astype("<u2")
        )
        target, fmt = tmp_path / "sixteen.png", "PNG"
    elif mode == "CMYK":
        converted, target, fmt = rgb.convert("CMYK"), tmp_path / "cmyk.jpg", "JPEG"
    else:
        converted, target, fmt = rgb.convert(mode), tmp_path / f"{mode}.png", "PNG"
    converted.save(target, fmt)
    copy = fingerprint(target)
    original = fingerprint(path)
    assert _match(copy, original)[0] <= phash.MATCH_THRESHOLD
