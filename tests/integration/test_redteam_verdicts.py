"""What the red team found in verdicts (issue 15), on real files signed here and altered.

1. An AI label laundered by re-signing a stripped copy as a photograph.
2. Edits outside the essence that change how the image decodes or displays.
3. Data appended after the image's end, and concatenated files.
4. Truncated signed files.
5. A bad CRC on an ancillary PNG chunk.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from provenance import SigningKey, Status, TrustPolicy, containers, sign, verify, verify_bytes
from provenance.c2pa_adapter import sign_c2pa
from provenance.disclosure import disclosure_for
from provenance.inventory import Inventory
from provenance.keys import DevKeyPaths
from provenance.record import DigitalSourceType
from provenance.verdicts import meets
from tests.conftest import sample_record

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
