"""Shared decode: sign the pipeline's bytes, hash its decoded image; rendition marks."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from PIL import Image

import provenance
from provenance import RenditionMark, Status
from provenance._core import containers
from provenance._core.hashing import essence_hash, sha256_hex
from provenance._io.keys import SigningKey, TrustPolicy
from provenance.inventory import Inventory
from provenance.sign import perceptual_hash
from tests.conftest import sample_record

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=timezone.utc)


def _decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.copy()


def _rendition(image: Image.Image, box: tuple[int, int]) -> tuple[bytes, Image.Image]:
    small = image.copy()
    small.thumbnail(box, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.convert("RGB").save(out, "JPEG", quality=80)
    return out.getvalue(), small


@pytest.mark.parametrize(
    "name", ["forest-path.jpg", "packshot-site-dumper-alpha.png", "lake-at-dusk.webp"]
)
def test_embed_equals_set_xmp_then_set_exif(media: Callable[[str], Path], name: str) -> None:
    data = media(name).read_bytes()
    info = containers.inspect(data)
    packet = (
        b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/><?xpacket end="w"?>'
    )
    tiff = b"II*\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    expected = containers.set_exif(containers.set_xmp(data, packet), tiff)
    assert containers.embed(data, info, xmp=packet, exif=tiff) == expected
    kept = containers.embed(data, info, xmp=packet, exif=None)
    assert kept == containers.set_xmp(data, packet)
    assert essence_hash(kept) == essence_hash(data)


def test_sign_bytes_hashes_the_shared_decode(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy
) -> None:
    data = media("kite-blue-sky.jpg").read_bytes()
    decoded = _decode(data)
    signed, result = provenance.sign_bytes(
        data, record=sample_record("kite-blue-sky.jpg"), key=signing_key, image=decoded, now=NOW
    )
    assert result.perceptual_hash == perceptual_hash(_decode(signed))
    assert result.to_dict()["perceptual_hash"] == result.perceptual_hash
    assert provenance.verify_bytes(signed, trust=trust).status is Status.TRUSTED
    _, plain = provenance.sign_bytes(
        data, record=sample_record("kite-blue-sky.jpg"), key=signing_key, now=NOW
    )
    assert plain.perceptual_hash is None
    assert "perceptual_hash" not in plain.to_dict()


def test_perceptual_hash_of_a_large_image_is_close_to_the_full_size_hash(
    media: Callable[[str], Path],
) -> None:
    import imagehash

    image = _decode(media("rowing-boats-sunset.jpg").read_bytes())
    ours = imagehash.hex_to_hash(perceptual_hash(image))
    assert ours - imagehash.phash(image) <= 4


@pytest.fixture
def original(
    media: Callable[[str], Path], signing_key: SigningKey, tmp_path: Path
) -> tuple[bytes, provenance.SignResult, Image.Image, Inventory]:
    data = media("forest-path.jpg").read_bytes()
    decoded = _decode(data)
    signed, result = provenance.sign_bytes(
        data, record=sample_record("forest-path.jpg"), key=signing_key, image=decoded, now=NOW
    )
    path = tmp_path / "original.jpg"
    path.write_bytes(signed)
    inventory = Inventory(tmp_path / "inventory.sqlite", durable=False)
    result = provenance.SignResult(**{**_fields(result), "path": str(path)})
    inventory.record_signing(result, signer=signing_key.subject, now=NOW)
    return signed, result, decoded, inventory


def _fields(result: provenance.SignResult) -> dict[str, object]:
    return {name: getattr(result, name) for name in result.__slots__}


def test_inventory_mark_leaves_the_bytes_and_verify_recognises_them(
    original: tuple[bytes, provenance.SignResult, Image.Image, Inventory],
    signing_key: SigningKey,
    trust: TrustPolicy,
    tmp_path: Path,
) -> None:
    _, parent, decoded, inventory = original
    data, image = _rendition(decoded, (140, 140))
    out, result = provenance.sign_rendition(data, parent, key=signing_key, image=image, now=NOW)
    assert out is data
    assert result.bytes_added == 0 and result.active_manifest is None
    assert result.sha256_hex == sha256_hex(data)
    assert result.parent_sha256_hex == parent.sha256_hex
    assert result.perceptual_hash == perceptual_hash(image)
    path = tmp_path / "140.jpg"
    path.write_bytes(out)
    inventory.record_many(
        [provenance.SignResult(**{**_fields(result), "path": str(path)})],
        signer=signing_key.subject,
        now=NOW,
    )
    verdict = provenance.verify(path, trust=trust, inventory=inventory)
    assert verdict.status is Status.KNOWN_STRIPPED
    assert verdict.record is not None and verdict.record.parents[0].sha256_hex == parent.sha256_hex
    assert [a.asset_id for a in inventory.ancestors(result.asset_id)] == [parent.asset_id]


def test_xmp_mark_is_verifiable_from_the_file_alone(
    original: tuple[bytes, provenance.SignResult, Image.Image, Inventory],
    signing_key: SigningKey,
    trust: TrustPolicy,
) -> None:
    _, parent, decoded, _ = original
    data, _ = _rendition(decoded, (285, 285))
    out, result = provenance.sign_rendition(
        data, parent, key=signing_key, mark=RenditionMark.XMP, now=NOW
    )
    assert result.active_manifest is None and result.bytes_added > 0
    assert not containers.inspect(out).has_c2pa
    verdict = provenance.verify_bytes(out, trust=trust)
    assert verdict.status is Status.TRUSTED
    assert verdict.record is not None
    assert verdict.record.parents[0].asset_id == parent.asset_id


def test_c2pa_mark_carries_the_lineage(
    original: tuple[bytes, provenance.SignResult, Image.Image, Inventory],
    signing_key: SigningKey,
    trust: TrustPolicy,
) -> None:
    signed, parent, decoded, _ = original
    data, _ = _rendition(decoded, (700, 560))
    with pytest.raises(ValueError, match="parent_data"):
        provenance.sign_rendition(data, parent, key=signing_key, mark=RenditionMark.C2PA)
    out, result = provenance.sign_rendition(
        data, parent, key=signing_key, mark=RenditionMark.C2PA, parent_data=signed, now=NOW
    )
    assert result.active_manifest is not None
    verdict = provenance.verify_bytes(out, trust=trust)
    assert verdict.status is Status.TRUSTED
    assert [step.asset_id for step in verdict.lineage] == [result.asset_id, parent.asset_id]


def test_sign_without_c2pa_option(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy
) -> None:
    data = media("moss-close-up.webp").read_bytes()
    signed, result = provenance.sign_bytes(
        data,
        record=sample_record("moss-close-up.webp"),
        key=signing_key,
        options=provenance.SignOptions(c2pa=False),
    )
    assert result.active_manifest is None
    assert not containers.inspect(signed).has_c2pa
    assert provenance.verify_bytes(signed, trust=trust).status is Status.TRUSTED
