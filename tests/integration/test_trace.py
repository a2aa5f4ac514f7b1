"""trace(): lineage from the file, then from the inventory, for each way a copy is found."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provenance import SigningKey, Status, TrustPolicy, sign, sign_renditions, trace
from provenance._core.containers import BlockKind, strip
from provenance.inventory import Inventory
from tests.conftest import sample_record

Media = Callable[[str], Path]
NAME = "kite-blue-sky.jpg"


@pytest.fixture
def inventory(tmp_path: Path) -> Iterator[Inventory]:
    with Inventory(tmp_path / "inventory.sqlite") as inv:
        yield inv


@pytest.fixture
def chain(
    media: Media, signing_key: SigningKey, inventory: Inventory, tmp_path: Path
) -> tuple[str, list[str], list[Path]]:
    """An original and two renditions made from it, all recorded."""
    original = tmp_path / NAME
    made = sign(
        media(NAME), original, record=sample_record(NAME), key=signing_key, inventory=inventory
    )
    results = sign_renditions(
        original,
        tmp_path / "r",
        sizes=[(600, 600), (150, 150)],
        key=signing_key,
        inventory=inventory,
    )
    paths = sorted((tmp_path / "r").iterdir())
    assert len(paths) == 2
    return made.asset_id, [r.asset_id for r in results], paths


def test_signed_rendition_lineage_from_the_file(
    chain: tuple[str, list[str], list[Path]], trust: TrustPolicy, inventory: Inventory
) -> None:
    original_id, rendition_ids, paths = chain
    result = trace(paths[0], trust=trust, inventory=inventory)
    assert result.verdict.status is Status.TRUSTED
    assert result.found_by == "manifest"
    assert [s.asset_id for s in result.steps][-1] == original_id
    assert result.steps[0].asset_id in rendition_ids
    assert result.steps[0].source == "manifest"
    assert result.to_dict()["lineage"][-1]["asset_id"] == original_id


def test_stripped_rendition_is_found_by_essence_and_traced_through_the_inventory(
    chain: tuple[str, list[str], list[Path]],
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    original_id, rendition_ids, paths = chain
    stripped = tmp_path / "cdn.jpg"
    stripped.write_bytes(strip(paths[1].read_bytes(), frozenset(BlockKind)))
    result = trace(stripped, trust=trust, inventory=inventory)
    assert result.verdict.status is Status.KNOWN_STRIPPED
    assert result.found_by == "essence"
    ids = [s.asset_id for s in result.steps]
    assert ids[-1] == original_id and ids[0] in rendition_ids and len(ids) == 2
    assert {s.source for s in result.steps} == {"inventory"}
    assert result.steps[-1].record == sample_record(NAME)


def test_xmp_only_copy_is_traced_from_the_signed_xmp(
    chain: tuple[str, list[str], list[Path]],
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    original_id, _, _ = chain
    xmp_only = tmp_path / "xmp-only.jpg"
    xmp_only.write_bytes(strip((tmp_path / NAME).read_bytes(), frozenset({BlockKind.C2PA})))
    result = trace(xmp_only, trust=trust, inventory=inventory)
    assert result.found_by == "xmp"
    assert [s.asset_id for s in result.steps] == [original_id]
    assert result.steps[0].source == "xmp"


def test_exact_copy_is_found_by_sha256_without_lineage_in_the_file(
    chain: tuple[str, list[str], list[Path]], inventory: Inventory, tmp_path: Path
) -> None:
    original_id, _, _ = chain
    result = trace(tmp_path / NAME, inventory=inventory)
    assert result.verdict.status is Status.VALID_UNTRUSTED
    assert [s.asset_id for s in result.steps] == [original_id]


def test_unknown_photo_has_no_lineage(media: Media, inventory: Inventory) -> None:
    result = trace(media("forest-path.jpg"), inventory=inventory)
    assert result.verdict.status is Status.NO_PROVENANCE
    assert result.found_by is None and result.steps == ()
