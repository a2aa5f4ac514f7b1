"""Original -> renditions -> verify each: lineage back to the original from the file alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from provenance import RecordError, SigningKey, Status, TrustPolicy, sign, verify
from provenance.renditions import sign_renditions
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
