"""Format conformance: every image format c2pa reads gets the verdict it should.

For each of JPEG, PNG, WebP, TIFF, DNG, HEIC, HEIF, AVIF and GIF, made in the test run
(tests/_formats.py), signed with our development keys:

* signed with our key, verified against our anchors: ``trusted`` (C2PA and XMP);
* signed with another organisation's key: ``valid_untrusted`` against our anchors;
* one byte of coded image data changed after signing: ``tampered``;
* ``exiftool -all=``: ``known_stripped`` with the inventory holding the original;
* every metadata block removed by our own stripper: ``no_provenance`` without
  the inventory and ``known_stripped`` with it.

HEIF is a generic HEIF (``ftyp`` brand ``mif1`` only). c2pa-rs 0.91 reads and
signs every one of these (``Builder`` and ``Reader`` list image/tiff,
image/x-adobe-dng, image/heic, image/heif, image/avif and image/gif), so no
format is skipped as unsupported; BigTIFF, which c2pa reads and we do not parse,
gets the C2PA verdict alone (the last test).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from provenance import (
    Inventory,
    SigningKey,
    Status,
    TrustPolicy,
    UnsupportedFormat,
    sign,
    sign_renditions,
    verify,
)
from provenance._core.containers import BlockKind, ImageFormat, detect_format, inspect, strip
from provenance._core.hashing import essence_hash
from provenance._core.types import EvidenceSource
from provenance._io.c2pa import sign_c2pa
from provenance.verify import XMP_NOT_CHECKED
from tests._formats import ALL_FORMATS, encode, picture, sample
from tests.conftest import sample_record

RECORD = sample_record("forest-path.jpg")
IPTC_AI = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
_IDS = [fmt.value for fmt in ALL_FORMATS]
_EXIFTOOL = pytest.mark.skipif(shutil.which("exiftool") is None, reason="ExifTool is absent")

# ExifTool 12.57 removes (or, in HEIF, empties) our XMP and EXIF but keeps c2pa's
# block, which it does not know (PNG caBX, WebP C2PA chunk, TIFF tag 0xCD41, the
# HEIF uuid box, GIF C2PA_GIF extension): the C2PA hard binding then fails while
# the coded image data is unchanged. That is known_stripped by decision 14
# (docs/architecture.md): the binding failed, the essence is the signed one. ExifTool
# removes a JPEG's APP11 JUMBF instead, and the inventory recognises the essence.


@pytest.fixture
def inventory(tmp_path: Path) -> Iterator[Inventory]:
    with Inventory(tmp_path / "inventory.sqlite") as inv:
        yield inv


def _source(tmp_path: Path, fmt: ImageFormat) -> Path:
    path = tmp_path / f"original.{fmt.extension}"
    path.write_bytes(sample(fmt))
    return path


def _signed(
    tmp_path: Path, fmt: ImageFormat, key: SigningKey, inventory: Inventory | None = None
) -> Path:
    dst = tmp_path / f"signed.{fmt.extension}"
    sign(_source(tmp_path, fmt), dst, record=RECORD, key=key, inventory=inventory)
    return dst


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=_IDS)
def test_made_files_are_the_format_they_claim(fmt: ImageFormat) -> None:
    assert detect_format(sample(fmt)) is fmt
    assert inspect(sample(fmt)).xmp is None


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=_IDS)
def test_signed_with_our_key_is_trusted_by_c2pa_and_xmp(
    fmt: ImageFormat, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    dst = _signed(tmp_path, fmt, signing_key)
    assert detect_format(dst.read_bytes()) is fmt
    verdict = verify(dst, trust=trust)
    assert verdict.status is Status.TRUSTED, verdict.failure_codes
    says = {e.source: e.status for e in verdict.evidence}
    assert says == {EvidenceSource.C2PA: Status.TRUSTED, EvidenceSource.XMP: Status.TRUSTED}
    assert verdict.record == RECORD
    # The essence signed is the input's: metadata went in as bytes (decision 3).
    assert verdict.essence_sha256_hex == essence_hash(sample(fmt))


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=_IDS)
def test_signed_by_another_key_is_valid_untrusted(
    fmt: ImageFormat, other_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    verdict = verify(_signed(tmp_path, fmt, other_key), trust=trust)
    assert verdict.status is Status.VALID_UNTRUSTED
    assert {e.status for e in verdict.evidence} == {Status.VALID_UNTRUSTED}


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=_IDS)
def test_pixels_changed_after_signing_are_tampered(
    fmt: ImageFormat, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    dst = _signed(tmp_path, fmt, signing_key)
    data = bytearray(dst.read_bytes())
    start, end = max(inspect(bytes(data)).essence_ranges, key=lambda r: r[1] - r[0])
    data[(start + end) // 2] ^= 0x10
    dst.write_bytes(bytes(data))
    verdict = verify(dst, trust=trust)
    assert verdict.status is Status.TAMPERED
    says = {e.source: e.status for e in verdict.evidence}
    assert says == {EvidenceSource.C2PA: Status.TAMPERED, EvidenceSource.XMP: Status.TAMPERED}


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=_IDS)
def test_every_block_stripped_is_known_with_the_inventory(
    fmt: ImageFormat,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    dst = _signed(tmp_path, fmt, signing_key, inventory)
    stripped = tmp_path / f"cdn-copy.{fmt.extension}"
    stripped.write_bytes(strip(dst.read_bytes(), frozenset(BlockKind)))
    assert inspect(stripped.read_bytes()).blocks == ()
    assert verify(stripped, trust=trust).status is Status.NO_PROVENANCE
    verdict = verify(stripped, trust=trust, inventory=inventory)
    assert verdict.status is Status.KNOWN_STRIPPED
    assert verdict.record == RECORD


@_EXIFTOOL
@pytest.mark.interop
@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=_IDS)
def test_exiftool_strip_all_is_known_stripped(
    fmt: ImageFormat,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    dst = _signed(tmp_path, fmt, signing_key, inventory)
    before = dst.read_bytes()
    subprocess.run(
        ["exiftool", "-q", "-q", "-all=", "-overwrite_original", str(dst)], check=True, timeout=60
    )
    after = dst.read_bytes()
    assert essence_hash(after) == essence_hash(before)
    assert after != before and b"provn:Statement" not in after
    verdict = verify(dst, trust=trust, inventory=inventory)
    assert verdict.status is Status.KNOWN_STRIPPED, verdict.failure_codes
    assert verdict.record == RECORD


def _bigtiff() -> bytes:
    out = io.BytesIO()
    picture().save(out, "TIFF", big_tiff=True)
    return out.getvalue()


def test_bigtiff_gets_the_c2pa_verdict_and_says_the_xmp_was_not_checked(
    signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    # c2pa reads and signs BigTIFF (64-bit offsets); our TIFF parser does not.
    data = _bigtiff()
    assert data[:4] == b"II+\x00"
    src = tmp_path / "big.tif"
    src.write_bytes(data)
    with pytest.raises(UnsupportedFormat, match="BigTIFF") as refused:
        sign(src, tmp_path / "out.tif", record=RECORD, key=signing_key)
    assert str(refused.value).startswith(str(src))
    assert not (tmp_path / "out.tif").exists()
    # No manifest either: nothing could be checked, so it is an error, not a verdict.
    with pytest.raises(UnsupportedFormat, match="BigTIFF"):
        verify(src, trust=trust)
    manifest = {
        "claim_generator_info": [{"name": "another tool", "version": "1"}],
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": IPTC_AI}]},
            }
        ],
    }
    signed, _ = sign_c2pa(data, "image/tiff", manifest, signing_key)
    src.write_bytes(signed)
    verdict = verify(src, trust=trust)
    assert verdict.status is Status.TRUSTED
    assert XMP_NOT_CHECKED in verdict.failure_codes
    says = {e.source: e for e in verdict.evidence}
    assert says[EvidenceSource.C2PA].status is Status.TRUSTED
    assert "only the C2PA manifest was checked" in says[EvidenceSource.XMP].detail
    assert verdict.essence_sha256_hex is None


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=_IDS)
def test_inventory_rows_let_a_resized_jpeg_copy_be_found(
    fmt: ImageFormat, signing_key: SigningKey, inventory: Inventory, tmp_path: Path
) -> None:
    # The same inventory rows in every format: the essence hash and the perceptual
    # hashes (decoded from the original: HEIC through pillow-heif, AVIF by Pillow).
    image = picture(3, (320, 240))
    src = tmp_path / f"original.{fmt.extension}"
    src.write_bytes(encode(image, fmt))
    result = sign(
        src,
        tmp_path / f"signed.{fmt.extension}",
        record=RECORD,
        key=signing_key,
        inventory=inventory,
    )
    entry = inventory.find_by_essence(essence_hash(src.read_bytes()))
    assert entry is not None and entry.asset_id == result.asset_id
    copy = tmp_path / "storefront-copy.jpg"
    image.resize((200, 150)).save(copy, "JPEG", quality=80)
    verdict = verify(copy, inventory=inventory)
    assert verdict.status is Status.SYNTHETIC_DUPLICATE
    assert verdict.asset_id == result.asset_id


@pytest.mark.parametrize("fmt", [f for f in ALL_FORMATS if f is not ImageFormat.DNG], ids=str)
def test_renditions_of_a_signed_original_keep_its_format_and_verify(
    fmt: ImageFormat, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    original = _signed(tmp_path, fmt, signing_key)
    results = sign_renditions(original, tmp_path / "r", sizes=[(48, 48)], key=signing_key)
    (result,) = results
    assert result.path is not None
    rendition = Path(result.path)
    assert rendition.suffix == f".{fmt.extension}"
    # pillow-heif writes HEVC with the 'heic' brand: a HEIF original's rendition is HEIC.
    expected = ImageFormat.HEIC if fmt is ImageFormat.HEIF else fmt
    assert detect_format(rendition.read_bytes()) is expected
    verdict = verify(rendition, trust=trust)
    assert verdict.status is Status.TRUSTED
    assert verdict.record is not None and verdict.record.model == RECORD.model


def test_renditions_of_a_dng_are_refused_with_a_reason(
    signing_key: SigningKey, tmp_path: Path
) -> None:
    original = _signed(tmp_path, ImageFormat.DNG, signing_key)
    with pytest.raises(UnsupportedFormat, match="DNG") as refused:
        sign_renditions(original, tmp_path / "r", sizes=[(48, 48)], key=signing_key)
    assert str(refused.value).startswith(str(original))
    assert not (tmp_path / "r").exists()
