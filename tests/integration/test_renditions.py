"""Original -> renditions -> verify each: lineage back to the original from the file alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from provenance import RecordError, SigningKey, Status, TrustPolicy, sign, verify
from provenance._core import containers
from provenance._core.hashing import hash_ranges, sha256_hex
from provenance._core.record import ParentRef
from provenance.renditions import sign_renditions, unmarked_result
from tests.conftest import sample_record

SIZES = [(1200, 1200), (600, 600), (150, 150)]


@pytest.mark.parametrize(
    "name", ["rowing-boats-sunset.jpg", "packshot-site-dumper-alpha.png", "lake-at-dusk.webp"]
)
def test_three_renditions_lead_back_to_the_original(
    name: str,
    media: Callable[[str], Path],
    signing_key: SigningKey,
    trust: TrustPolicy,
    tmp_path: Path,
) -> None:
    original = tmp_path / f"signed-{name}"
    first = sign(media(name), original, record=sample_record(name), key=signing_key)
    results = sign_renditions(original, tmp_path / "r", sizes=SIZES, key=signing_key)
    assert len(results) == 3
    with Image.open(original) as im:
        full = im.size
    for result, (w, h) in zip(results, SIZES, strict=True):
        assert result.path is not None
        with Image.open(result.path) as im:
            assert im.width <= w and im.height <= h
            assert im.width <= full[0]
        verdict = verify(result.path, trust=trust)
        assert verdict.status is Status.TRUSTED
        assert result.parent_sha256_hex == first.sha256_hex
        assert verdict.record is not None
        assert verdict.record.parents[0].asset_id == first.asset_id
        assert [s.asset_id for s in verdict.lineage] == [result.asset_id, first.asset_id]
        assert verdict.lineage[-1].record == first.record


def test_unsigned_original_needs_a_record(
    media: Callable[[str], Path], signing_key: SigningKey, tmp_path: Path
) -> None:
    with pytest.raises(RecordError, match="carries no provenance record"):
        sign_renditions(media("forest-path.jpg"), tmp_path, sizes=[(100, 100)], key=signing_key)
    results = sign_renditions(
        media("forest-path.jpg"),
        tmp_path / "r",
        sizes=[(100, 100)],
        key=signing_key,
        record=sample_record("forest-path.jpg"),
    )
    assert verify(results[0].path or "").status is Status.VALID_UNTRUSTED


def test_unmarked_result_records_a_rendition_as_it_is(media: Callable[[str], Path]) -> None:
    # The public seam Magento's cache uses: nothing added, the parent's hash kept.
    data = media("forest-path.jpg").read_bytes()
    essence = hash_ranges(data, containers.essence_ranges(data))
    parent = ParentRef(sha256_hex="ab" * 32, essence_sha256_hex="cd" * 32, asset_id=None)
    record = sample_record("forest-path.jpg").replace(parents=(parent,))
    result = unmarked_result(data, essence, record=record, path="cache/forest-path.jpg")
    assert result.bytes_added == 0
    assert result.active_manifest is None
    assert result.sha256_hex == sha256_hex(data)
    assert result.essence_sha256_hex == essence
    assert result.parent_sha256_hex == "ab" * 32
    with pytest.raises(RecordError, match=r"^cache/forest-path\.jpg: .*original as a parent"):
        unmarked_result(
            data, essence, record=record.replace(parents=()), path="cache/forest-path.jpg"
        )
