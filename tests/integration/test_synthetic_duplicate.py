"""sign -> inventory with perceptual hashes; altered stripped copies are synthetic_duplicate."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from provenance import SigningKey, SignResult, Status, TrustPolicy, sign, verify
from provenance._core import phash
from provenance.inventory import Inventory
from provenance.renditions import sign_renditions
from provenance.verify import PERCEPTUAL_MATCH, PERCEPTUAL_UNCONFIRMED
from tests.conftest import sample_record

Media = Callable[[str], Path]


@pytest.fixture
def inventory(tmp_path: Path) -> Iterator[Inventory]:
    with Inventory(tmp_path / "inventory.sqlite") as inv:
        yield inv


def sign_into(inventory: Inventory, src: Path, dst: Path, key: SigningKey) -> SignResult:
    """Sign a sample with its sample record, recording it (and its hashes) in ``inventory``."""
    return sign(src, dst, record=sample_record(src.name), key=key, inventory=inventory)


def degraded_copy(src: Path, dst: Path, *, scale: float = 0.5, quality: int = 60) -> Path:
    """Decode, resize, re-encode as JPEG without any metadata (what a CDN does)."""
    with Image.open(src) as im:
        im.load()
        rgb = im.convert("RGB")
    small = rgb.resize((int(rgb.width * scale), int(rgb.height * scale)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=quality)
    dst.write_bytes(buffer.getvalue())
    return dst


@pytest.mark.parametrize("name", ["rowing-boats-sunset.jpg", "packshot-fire-truck-white.png"])
def test_resized_recompressed_stripped_copy_is_synthetic_duplicate(
    name: str,
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    signed = tmp_path / f"signed-{name}"
    result = sign_into(inventory, media(name), signed, signing_key)
    with Image.open(signed) as im:
        stored = phash.reference_hashes(im).variants
    assert len(inventory.perceptual_index(phash.SCHEME)) == len(stored)
    copy = degraded_copy(signed, tmp_path / "cdn-copy.jpg")
    # Without the inventory there is nothing to go on.
    assert verify(copy, trust=trust).status is Status.NO_PROVENANCE
    verdict = verify(copy, trust=trust, inventory=inventory)
    assert verdict.status is Status.SYNTHETIC_DUPLICATE
    assert verdict.asset_id == result.asset_id
    assert verdict.record == result.record
    assert verdict.perceptual_distance is not None
    assert 0 <= verdict.perceptual_distance <= phash.MATCH_THRESHOLD
    assert PERCEPTUAL_MATCH in verdict.failure_codes
    assert verdict.evidence[-1].status is Status.SYNTHETIC_DUPLICATE
    assert result.asset_id in verdict.evidence[-1].detail
    assert verdict.to_dict()["perceptual_distance"] == verdict.perceptual_distance


def test_flipped_copy_matches_and_unrelated_photo_does_not(
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    name = "kite-blue-sky.jpg"
    result = sign_into(inventory, media(name), tmp_path / "signed.jpg", signing_key)
    with Image.open(tmp_path / "signed.jpg") as im:
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "mirror.jpg", quality=80)
    mirrored = verify(tmp_path / "mirror.jpg", trust=trust, inventory=inventory)
    assert mirrored.status is Status.SYNTHETIC_DUPLICATE
    assert mirrored.asset_id == result.asset_id
    # An unrelated real photo: still no provenance, even with the inventory.
    other = verify(media("forest-path.jpg"), trust=trust, inventory=inventory)
    assert other.status is Status.NO_PROVENANCE
    assert other.asset_id is None and other.perceptual_distance is None


def test_the_same_product_in_another_colour_is_a_candidate_but_not_confirmed(
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    # A blue fire truck made from the red one (channels swapped): the grey hashes
    # and the layout agree, the colour does not. It is not our image.
    name = "packshot-fire-truck-white.png"
    sign_into(inventory, media(name), tmp_path / "signed.png", signing_key)
    with Image.open(tmp_path / "signed.png") as im:
        red, green, blue = im.convert("RGB").split()
        Image.merge("RGB", (blue, green, red)).save(tmp_path / "blue.jpg", quality=85)
    verdict = verify(tmp_path / "blue.jpg", trust=trust, inventory=inventory)
    assert verdict.status is Status.NO_PROVENANCE
    assert verdict.asset_id is None and verdict.perceptual_distance is None
    assert PERCEPTUAL_UNCONFIRMED in verdict.failure_codes
    unconfirmed = [e for e in verdict.evidence if PERCEPTUAL_UNCONFIRMED in e.codes]
    assert "not confirmed by the second check (colour differs by" in unconfirmed[0].detail


def test_sign_with_decoded_image_stores_the_same_hashes(
    media: Media, signing_key: SigningKey, tmp_path: Path
) -> None:
    name = "forest-path.jpg"
    src = media(name)
    with Image.open(src) as im:
        im.load()
        decoded = im.copy()
    with (
        Inventory(tmp_path / "a.sqlite") as from_file,
        Inventory(tmp_path / "b.sqlite") as from_pixels,
    ):
        sign(
            src,
            tmp_path / "a.jpg",
            record=sample_record(name),
            key=signing_key,
            inventory=from_file,
        )
        sign(
            src,
            tmp_path / "b.jpg",
            record=sample_record(name),
            key=signing_key,
            inventory=from_pixels,
            image=decoded,
        )
        a = from_file.perceptual_index(phash.SCHEME).words
        b = from_pixels.perceptual_index(phash.SCHEME).words
    # Draft decoding vs the full image: a few bits apart at most, far below the threshold.
    assert a.shape == b.shape
    assert int(phash.hamming(a, b).max()) <= phash.MATCH_THRESHOLD // 4


def test_renditions_store_perceptual_hashes(
    media: Media, signing_key: SigningKey, inventory: Inventory, tmp_path: Path
) -> None:
    name = "lake-at-dusk.webp"
    signed = tmp_path / "lake.webp"
    sign_into(inventory, media(name), signed, signing_key)
    results = sign_renditions(
        signed, tmp_path / "out", sizes=[(200, 200)], key=signing_key, inventory=inventory
    )
    with Image.open(signed) as im:
        original_rows = len(phash.reference_hashes(im).variants)
    with Image.open(results[0].path or signed) as im:
        rendition_rows = len(phash.reference_hashes(im).variants)
    index = inventory.perceptual_index(phash.SCHEME)
    assert len(index) == original_rows + rendition_rows
    match = inventory.find_perceptual(
        index.words[original_rows], scheme=phash.SCHEME, max_distance=0, k=1
    )
    assert [m.asset.asset_id for m in match] == [results[0].asset_id]


def test_index_cache_on_disk_is_used_and_refreshed(
    signing_key: SigningKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import provenance.inventory._indexes as indexes_module
    from provenance._io.index import HammingIndex

    monkeypatch.setattr(indexes_module, "INDEX_CACHE_MIN_ROWS", 1)
    db = tmp_path / "inv.sqlite"
    rng = np.random.default_rng(0)
    with Inventory(db) as inv:
        _fake_asset(inv, "one")
        words = rng.integers(0, 2**64, size=(3, phash.WORDS), dtype=np.uint64)
        inv.add_perceptual(_asset_id(inv), _reference(words))
        assert len(inv.perceptual_index(phash.SCHEME)) == 3
    cache = tmp_path / f"inv.sqlite.{phash.SCHEME}.hidx"
    assert cache.exists()
    with Inventory(db) as inv:
        index = inv.perceptual_index(phash.SCHEME)
        np.testing.assert_array_equal(index.words, words)
        got = inv.find_perceptual(words[1], scheme=phash.SCHEME, max_distance=3)
        assert [(m.distance, m.variant) for m in got] == [(0, "v1")]
    # A cache that lies (another database's rows) never invents a match.
    with Inventory(db) as inv:
        liar = HammingIndex(
            np.zeros((3, phash.WORDS), np.uint64), inv.perceptual_index(phash.SCHEME).ids
        )
        liar.save(cache)
    with Inventory(db) as inv:
        assert (
            inv.find_perceptual(
                np.zeros(phash.WORDS, np.uint64), scheme="dct256-v1", max_distance=3
            )
            == []
        )


def _fake_asset(inv: Inventory, tag: str) -> None:
    import hashlib
    from datetime import datetime, timezone

    from provenance._core.types import SignResult

    def h(kind: str) -> str:
        return hashlib.sha256(f"{tag}:{kind}".encode()).hexdigest()

    record = sample_record("forest-path.jpg")
    result = SignResult(
        path=None,
        asset_id=f"asset-{tag}",
        sha256_hex=h("file"),
        essence_sha256_hex=h("essence"),
        input_sha256_hex=h("input"),
        bytes_added=1,
        active_manifest=None,
        record=record,
    )
    inv.record_signing(result, signer="CN=test", now=datetime(2026, 1, 1, tzinfo=timezone.utc))


def _asset_id(inv: Inventory) -> str:
    return next(iter(inv.assets())).asset_id


def _reference(words: np.ndarray) -> phash.ReferenceHashes:
    return phash.ReferenceHashes(
        words=words, variants=tuple(f"v{i}" for i in range(len(words))), descriptor=b""
    )
