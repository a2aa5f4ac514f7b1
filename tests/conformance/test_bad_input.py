"""Truncated and bomb-sized files of every new format: a clear error, never a traceback.

A truncated file cannot be signed or verified: one error naming the file, nothing
written, the input untouched. A bomb-sized file (a small file whose header claims
more pixels than the decoding limit) is refused before decoding wherever
provenance would decode it; where decoding is optional (verify's perceptual step)
the verdict says the step was skipped and why.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from provenance import (
    CorruptFile,
    ImageTooLarge,
    Inventory,
    ProvenanceError,
    SigningKey,
    Status,
    TrustPolicy,
    fingerprint,
    sign,
    verify,
)
from provenance._core.containers import ImageFormat
from provenance._core.hashing import essence_hash
from provenance.fingerprint import MAX_PIXELS, MAX_PIXELS_ENV, max_pixels
from provenance.verify import PERCEPTUAL_UNDECODABLE
from tests._formats import NEW_FORMATS, sample, with_size
from tests.conftest import sample_record

RECORD = sample_record("forest-path.jpg")
_IDS = [fmt.value for fmt in NEW_FORMATS]
# 8000 x 8000 = 64 MP: over our 50 MP limit and under Pillow's own warning (89 MP),
# so only our check stands between it and a 192 MB decode.
OVER_OURS = (8000, 8000)
# 30000 x 30000 = 900 MP: over Pillow's hard limit too.
OVER_PILLOW = (30000, 30000)


@pytest.fixture
def inventory(tmp_path: Path) -> Iterator[Inventory]:
    with Inventory(tmp_path / "inventory.sqlite") as inv:
        yield inv


def _write(tmp_path: Path, fmt: ImageFormat, data: bytes, stem: str) -> Path:
    path = tmp_path / f"{stem}.{fmt.extension}"
    path.write_bytes(data)
    return path


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("fmt", NEW_FORMATS, ids=_IDS)
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_file_is_one_clear_error_and_nothing_is_written(
    fmt: ImageFormat, keep: float, signing_key: SigningKey, tmp_path: Path
) -> None:
    whole = sample(fmt)
    data = whole[: int(len(whole) * keep)]
    src = _write(tmp_path, fmt, data, "truncated")
    dst = tmp_path / f"out.{fmt.extension}"
    with pytest.raises(CorruptFile) as signed:
        sign(src, dst, record=RECORD, key=signing_key)
    assert str(signed.value).startswith(str(src))
    assert "truncated" in str(signed.value) or "past the end" in str(signed.value)
    assert not dst.exists() and sorted(p.name for p in tmp_path.iterdir()) == [src.name]
    assert src.read_bytes() == data
    with pytest.raises(CorruptFile) as verified:
        verify(src)
    assert str(verified.value).startswith(str(src))
    with pytest.raises(CorruptFile) as printed:
        fingerprint(src)
    assert str(printed.value).startswith(str(src))


@pytest.mark.parametrize("fmt", NEW_FORMATS, ids=_IDS)
@pytest.mark.parametrize("size", [OVER_OURS, OVER_PILLOW], ids=["64MP", "900MP"])
def test_bomb_sized_file_is_refused_before_signing_into_an_inventory(
    fmt: ImageFormat,
    size: tuple[int, int],
    signing_key: SigningKey,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    data = with_size(sample(fmt), fmt, *size)
    src = _write(tmp_path, fmt, data, "bomb")
    dst = tmp_path / f"out.{fmt.extension}"
    with pytest.raises(ImageTooLarge) as caught:
        sign(src, dst, record=RECORD, key=signing_key, inventory=inventory)
    message = str(caught.value)
    assert message.startswith(str(src)) and "not decoded" in message
    assert f"{size[0]}x{size[1]}" in message
    assert not dst.exists()
    assert src.read_bytes() == data
    assert inventory.find_by_essence(essence_hash(data)) is None
    with pytest.raises(ImageTooLarge, match="not decoded") as printed:
        fingerprint(src)
    assert str(printed.value).startswith(str(src))
    # Without an inventory nothing is decoded: the bytes are signed as they are.
    sign(src, dst, record=RECORD, key=signing_key)
    assert verify(dst).status is Status.VALID_UNTRUSTED


@pytest.mark.parametrize("fmt", NEW_FORMATS, ids=_IDS)
def test_bomb_sized_file_skips_the_perceptual_step_and_says_why(
    fmt: ImageFormat,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    # Something to compare with, so verify would decode the unknown file.
    other = _write(tmp_path, fmt, sample(fmt, seed=1), "other")
    sign(
        other,
        tmp_path / f"signed.{fmt.extension}",
        record=RECORD,
        key=signing_key,
        inventory=inventory,
    )
    bomb = _write(tmp_path, fmt, with_size(sample(fmt), fmt, *OVER_OURS), "bomb")
    verdict = verify(bomb, trust=trust, inventory=inventory)
    assert verdict.status is Status.NO_PROVENANCE
    assert PERCEPTUAL_UNDECODABLE in verdict.failure_codes
    (skipped,) = [e for e in verdict.evidence if PERCEPTUAL_UNDECODABLE in e.codes]
    assert "perceptual check skipped" in skipped.detail
    assert "exceeds the decoding limit" in skipped.detail


def test_png_of_169_megapixels_is_refused_before_decoding(
    signing_key: SigningKey, inventory: Inventory, tmp_path: Path
) -> None:
    # 13000 x 13000: under Pillow's hard limit (179 MP), where Pillow only warns.
    # Decoding it for the perceptual hash peaked at 1.4 GB RSS before the limit.
    src = tmp_path / "huge.png"
    src.write_bytes(_png_claiming(13000, 13000))
    with pytest.raises(ImageTooLarge, match="13000x13000"):
        sign(src, tmp_path / "out.png", record=RECORD, key=signing_key, inventory=inventory)
    assert not (tmp_path / "out.png").exists()


def test_the_limit_is_one_constant_overridable_per_call_and_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _write(tmp_path, ImageFormat.TIFF, sample(ImageFormat.TIFF), "small")
    assert max_pixels() == MAX_PIXELS
    assert fingerprint(src).width == 96
    with pytest.raises(ImageTooLarge, match="96x64 pixels"):
        fingerprint(src, max_pixels=96 * 64 - 1)
    assert fingerprint(src, max_pixels=96 * 64).height == 64
    monkeypatch.setenv(MAX_PIXELS_ENV, "1_000")
    assert max_pixels() == 1000
    with pytest.raises(ImageTooLarge):
        fingerprint(src)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ProvenanceError, match=MAX_PIXELS_ENV):
        fingerprint(src)
