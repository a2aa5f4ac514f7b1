"""What the red team found in verdicts (issue 15), on real files signed here and altered.

1. An AI label laundered by re-signing a stripped copy as a photograph.
2. Edits outside the essence that change how the image decodes or displays.
3. Data appended after the image's end, and concatenated files.
4. Truncated signed files.
5. A bad CRC on an ancillary PNG chunk.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from provenance import SigningKey, Status, TrustPolicy, sign, verify, verify_bytes
from provenance._core import containers
from provenance._core.disclosure import disclosure_for
from provenance._core.record import DigitalSourceType
from provenance._core.verdicts import meets
from provenance._io.c2pa import sign_c2pa
from provenance._io.keys import DevKeyPaths
from provenance.errors import ContainerError
from provenance.inventory import Inventory
from tests.conftest import run_cli, sample_record

Media = Callable[[str], Path]
SIGNED = {
    "jpg": "rowing-boats-sunset.jpg",
    "png": "packshot-tractor-wheel-alpha.png",
    "webp": "lake-at-dusk.webp",
}
needs_exiftool = pytest.mark.skipif(shutil.which("exiftool") is None, reason="no ExifTool")
RELABELLED = "provenance.inventory.synthetic.relabelled"


def _signed(
    media: Media, key: SigningKey, ext: str, tmp_path: Path, inventory: Inventory | None = None
) -> Path:
    name = SIGNED[ext]
    dst = tmp_path / f"signed.{ext}"
    sign(media(name), dst, record=sample_record(name), key=key, inventory=inventory)
    return dst


# --- 1. relabelled AI assets ---------------------------------------------------


@needs_exiftool
def test_resigned_stripped_copy_declared_a_photo_is_tampered_and_discloses_synthetic(
    media: Media,
    signing_key: SigningKey,
    other_key: SigningKey,
    other_keys: DevKeyPaths,
    tmp_path: Path,
) -> None:
    with Inventory(tmp_path / "inv.sqlite") as inv:
        signed = _signed(media, signing_key, "jpg", tmp_path, inv)
        stripped = tmp_path / "s.jpg"
        subprocess.run(["exiftool", "-q", "-all=", "-o", str(stripped), str(signed)], check=True)
        photo = dataclasses.replace(
            sample_record(SIGNED["jpg"]), digital_source_type=DigitalSourceType.DIGITAL_CAPTURE
        )
        laundered = tmp_path / "t.jpg"
        sign(stripped, laundered, record=photo, key=other_key)
        anchors = TrustPolicy.from_pem(other_keys.ca_certificate)
        assert verify(laundered, trust=anchors).status is Status.TRUSTED  # without inventory
        verdict = verify(laundered, trust=anchors, inventory=inv)
        asset = inv.find_by_essence(verdict.essence_sha256_hex or "")
    assert asset is not None
    assert verdict.status is Status.TAMPERED
    assert RELABELLED in verdict.failure_codes
    (found,) = [e for e in verdict.evidence if RELABELLED in e.codes]
    assert asset.asset_id in found.detail and "digitalCapture" in found.detail
    assert verdict.record is not None and verdict.record.is_synthetic
    assert not meets(verdict.status, Status.TRUSTED, [Status.KNOWN_STRIPPED])
    assert disclosure_for(verdict).attributes()["data-synthetic"] == "true"
    # The same through the CLI: verify refuses it, disclosure says synthetic.
    anchors_pem = other_keys.ca_certificate
    inv_path = tmp_path / "inv.sqlite"
    checked = run_cli(
        "verify", "--json", "--trust-anchors", anchors_pem, "--inventory", inv_path, laundered
    )
    assert checked.returncode == 1, checked.stderr
    assert json.loads(checked.stdout)[0]["verdict"] == "tampered"
    shown = run_cli("disclosure", laundered, "--inventory", inv_path)
    assert shown.returncode == 0, shown.stderr
    assert 'data-synthetic="true"' in shown.stdout


def test_foreign_c2pa_manifest_over_an_ai_asset_is_relabelled(
    media: Media,
    signing_key: SigningKey,
    other_key: SigningKey,
    other_keys: DevKeyPaths,
    tmp_path: Path,
) -> None:
    """A plain C2PA manifest of another (anchored) signer, declaring a capture."""
    with Inventory(tmp_path / "inv.sqlite") as inv:
        signed = _signed(media, signing_key, "png", tmp_path, inv)
        definition = {
            "claim_generator_info": [{"name": "camera", "version": "1"}],
            "assertions": [
                {
                    "label": "c2pa.actions",
                    "data": {
                        "actions": [
                            {
                                "action": "c2pa.created",
                                "digitalSourceType": DigitalSourceType.DIGITAL_CAPTURE.uri,
                            }
                        ]
                    },
                }
            ],
        }
        # Our manifest and XMP removed, the pixels kept, someone else's manifest added.
        bare = containers.strip(
            signed.read_bytes(),
            frozenset({containers.BlockKind.C2PA, containers.BlockKind.XMP}),
        )
        foreign, _ = sign_c2pa(bare, "image/png", definition, other_key)
        anchors = TrustPolicy.from_pem(other_keys.ca_certificate)
        assert verify_bytes(foreign, trust=anchors).status is Status.TRUSTED
        verdict = verify_bytes(foreign, trust=anchors, inventory=inv)
    assert verdict.status is Status.TAMPERED
    assert RELABELLED in verdict.failure_codes
    assert verdict.record is not None and verdict.record.is_synthetic


def test_own_signed_file_with_inventory_is_not_relabelled(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    with Inventory(tmp_path / "inv.sqlite") as inv:
        signed = _signed(media, signing_key, "webp", tmp_path, inv)
        verdict = verify(signed, trust=trust, inventory=inv)
    assert verdict.status is Status.TRUSTED
    assert RELABELLED not in verdict.failure_codes


# --- 2. rendering changed outside the essence -----------------------------------

RENDERING = "provenance.metadata.renderingChanged"
TRAILING = "provenance.container.trailingData"
ADOBE_APP14 = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00"


def _refused(verdict_status: Status) -> bool:
    return verdict_status.is_failure and not meets(
        verdict_status, Status.VALID_UNTRUSTED, [Status.KNOWN_STRIPPED]
    )


def test_adobe_app14_inserted_after_soi_is_tampered(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    data = _signed(media, signing_key, "jpg", tmp_path).read_bytes()
    altered = data[:2] + ADOBE_APP14 + data[2:]
    verdict = verify_bytes(altered, trust=trust)
    assert verdict.essence_sha256_hex == verify_bytes(data, trust=trust).essence_sha256_hex
    assert verdict.status is Status.TAMPERED
    assert RENDERING in verdict.failure_codes
    assert "provenance.metadata.stripped" not in verdict.failure_codes
    assert any("APP14 Adobe" in e.detail for e in verdict.evidence)
    assert _refused(verdict.status)


def test_webp_canvas_size_changed_is_tampered(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    data = bytearray(_signed(media, signing_key, "webp", tmp_path).read_bytes())
    assert data[12:16] == b"VP8X"  # signing added XMP, so the extended layout
    width = int.from_bytes(data[24:27], "little") + 1
    data[24:27] = (width - 1 - 16).to_bytes(3, "little")  # 16 pixels narrower
    verdict = verify_bytes(bytes(data), trust=trust)
    assert verdict.status is Status.TAMPERED
    assert RENDERING in verdict.failure_codes
    assert any("VP8X canvas" in e.detail for e in verdict.evidence)


@needs_exiftool
@pytest.mark.parametrize("ext", ["jpg", "png", "webp"])
def test_exif_orientation_changed_is_tampered(
    ext: str, media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    signed = _signed(media, signing_key, ext, tmp_path)
    subprocess.run(
        ["exiftool", "-q", "-Orientation=6", "-n", "-overwrite_original", str(signed)], check=True
    )
    verdict = verify(signed, trust=trust)
    assert verdict.status is Status.TAMPERED
    assert RENDERING in verdict.failure_codes
    assert any("Orientation 6" in e.detail for e in verdict.evidence)


@needs_exiftool
@pytest.mark.parametrize("ext", ["jpg", "png", "webp"])
def test_descriptive_metadata_edit_stays_known_stripped(
    ext: str, media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    signed = _signed(media, signing_key, ext, tmp_path)
    subprocess.run(
        ["exiftool", "-q", "-Artist=Someone", "-XMP-dc:Title=New", "-overwrite_original", signed],
        check=True,
    )
    verdict = verify(signed, trust=trust)
    assert verdict.status is Status.KNOWN_STRIPPED
    assert RENDERING not in verdict.failure_codes and TRAILING not in verdict.failure_codes


# --- 3. trailing data ------------------------------------------------------------


@pytest.mark.parametrize("ext", ["jpg", "png", "webp"])
def test_appended_bytes_are_trailing_data_and_tampered(
    ext: str, media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    data = _signed(media, signing_key, ext, tmp_path).read_bytes()
    verdict = verify_bytes(data + bytes(range(256)) * 16, trust=trust)
    assert verdict.status is Status.TAMPERED
    assert TRAILING in verdict.failure_codes
    assert "provenance.metadata.stripped" not in verdict.failure_codes
    assert any("4096 bytes after the image's end" in e.detail for e in verdict.evidence)
    assert _refused(verdict.status)


def test_concatenated_jpeg_and_png_is_tampered(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    jpg = _signed(media, signing_key, "jpg", tmp_path).read_bytes()
    png = media(SIGNED["png"]).read_bytes()
    polyglot = tmp_path / "x.jpg"
    polyglot.write_bytes(jpg + png)
    verdict = verify(polyglot, trust=trust)
    assert verdict.status is Status.TAMPERED
    assert TRAILING in verdict.failure_codes
    assert any(f"{len(png)} bytes after" in e.detail for e in verdict.evidence)


@needs_exiftool
def test_stripped_copy_with_appended_bytes_is_not_known_stripped_by_inventory(
    media: Media, signing_key: SigningKey, tmp_path: Path
) -> None:
    with Inventory(tmp_path / "inv.sqlite") as inv:
        signed = _signed(media, signing_key, "jpg", tmp_path, inv)
        stripped = tmp_path / "s.jpg"
        subprocess.run(["exiftool", "-q", "-all=", "-o", str(stripped), str(signed)], check=True)
        assert verify(stripped, inventory=inv).status is Status.KNOWN_STRIPPED
        stripped.write_bytes(stripped.read_bytes() + b"TRAILINGJUNK")
        verdict = verify(stripped, inventory=inv)
    assert verdict.status is Status.TAMPERED
    assert TRAILING in verdict.failure_codes
    assert "provenance.metadata.stripped" not in verdict.failure_codes
    assert verdict.record is not None  # the asset it is a copy of, for the reviewer


# --- 5. bad CRC on an ancillary PNG chunk ----------------------------------------

BAD_CRC = "provenance.container.badCrc"


def _png_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """``(type, offset, end)`` of each chunk of a PNG."""
    found, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        found.append((data[pos + 4 : pos + 8], pos, pos + 12 + length))
        pos += 12 + length
    return found


def _text_chunk_with_bad_crc() -> bytes:
    payload = b"Comment\x00hello"
    return len(payload).to_bytes(4, "big") + b"tEXt" + payload + b"\x00\x00\x00\x00"


def test_unsigned_png_with_bad_text_crc_is_no_provenance_with_the_code(media: Media) -> None:
    data = media(SIGNED["png"]).read_bytes()
    altered = data[:33] + _text_chunk_with_bad_crc() + data[33:]  # right after IHDR
    verdict = verify_bytes(altered)
    assert verdict.status is Status.NO_PROVENANCE
    assert BAD_CRC in verdict.failure_codes
    assert any("bad CRC in 'tEXt' chunk at offset 33" in e.detail for e in verdict.evidence)


def test_signed_png_with_a_corrupted_ancillary_crc_is_tampered(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    data = _signed(media, signing_key, "png", tmp_path).read_bytes()
    for kind in (b"iTXt", b"caBX"):  # the XMP (under the binding), the manifest (outside it)
        _, _, end = next(c for c in _png_chunks(data) if c[0] == kind)
        altered = data[: end - 4] + bytes(b ^ 0xFF for b in data[end - 4 : end]) + data[end:]
        verdict = verify_bytes(altered, trust=trust)
        assert verdict.status is Status.TAMPERED, kind
        assert BAD_CRC in verdict.failure_codes


def test_png_with_a_bad_critical_crc_still_raises(media: Media) -> None:
    data = bytearray(media(SIGNED["png"]).read_bytes())
    data[29] ^= 0xFF  # the IHDR CRC
    with pytest.raises(ContainerError, match="bad CRC in 'IHDR' chunk"):
        verify_bytes(bytes(data))


# --- 4. truncated signed files ---------------------------------------------------

TRUNCATED = "provenance.container.truncated"


@pytest.mark.parametrize("ext", ["jpg", "png", "webp"])
def test_signed_file_missing_its_last_100_bytes_is_tampered(
    ext: str, media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    signed = _signed(media, signing_key, ext, tmp_path)
    record = verify(signed, trust=trust).record
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(signed.read_bytes()[:-100])
    verdict = verify(cut, trust=trust)
    assert verdict.status is Status.TAMPERED
    assert TRUNCATED in verdict.failure_codes
    assert "truncated" in verdict.evidence[0].detail
    assert verdict.record == record  # what it claimed, read from what is left


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_signed_file_cut_in_half_is_tampered(
    ext: str, media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    data = _signed(media, signing_key, ext, tmp_path).read_bytes()
    verdict = verify_bytes(data[: len(data) // 2], trust=trust)
    assert verdict.status is Status.TAMPERED
    assert TRUNCATED in verdict.failure_codes


def test_truncated_file_with_nothing_readable_still_raises(
    media: Media, signing_key: SigningKey, tmp_path: Path
) -> None:
    # Signing puts a WebP's manifest and XMP after the image data: half has neither.
    data = _signed(media, signing_key, "webp", tmp_path).read_bytes()
    with pytest.raises(ContainerError, match="truncated"):
        verify_bytes(data[: len(data) // 2])
    unsigned = media(SIGNED["jpg"]).read_bytes()
    with pytest.raises(ContainerError, match="truncated"):
        verify_bytes(unsigned[:-100])


def test_signed_xmp_without_c2pa_does_not_vouch_for_appended_bytes(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    """C2PA removed, signed XMP kept: the XMP vouches for the essence, not what follows."""
    data = _signed(media, signing_key, "jpg", tmp_path).read_bytes()
    bare = containers.strip(data, frozenset({containers.BlockKind.C2PA}))
    assert verify_bytes(bare, trust=trust).status is Status.TRUSTED
    verdict = verify_bytes(bare + b"\x00" * 64, trust=trust)
    assert verdict.status is Status.TAMPERED
    assert {TRAILING, "provenance.c2pa.missing"} <= set(verdict.failure_codes)


@needs_exiftool
def test_unsigned_photo_with_orientation_is_plain_no_provenance(
    media: Media, tmp_path: Path
) -> None:
    """Rendering blocks matter only where a signature or the inventory vouched for the essence."""
    photo = media("forest-path.jpg")
    subprocess.run(
        ["exiftool", "-q", "-Orientation=6", "-n", "-overwrite_original", photo], check=True
    )
    verdict = verify(photo)
    assert verdict.status is Status.NO_PROVENANCE
    assert verdict.failure_codes == ()
