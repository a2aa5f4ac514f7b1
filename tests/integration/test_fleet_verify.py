"""verify's perceptual step on a large or server inventory: one FleetIndex lookup (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provenance import SigningKey, Status, TrustPolicy, Verdict, verify
from provenance._core import phash
from provenance.errors import InventoryError
from provenance.inventory import FLEET_MIN_ASSETS, FLEET_MIN_ASSETS_ENV_VAR, Inventory
from provenance.verify import PERCEPTUAL_MATCH
from tests.integration.test_index_refresh import Clock, clock  # noqa: F401 - fixture
from tests.integration.test_synthetic_duplicate import Media, degraded_copy, sign_into
from tests.servers import ThrowawayServer


def _searched_with(inv: Inventory) -> set[str]:
    """Which of the handle's indexes exist: "exact" and/or "fleet"."""
    built = set()
    if inv._indexes._perceptual:
        built.add("exact")
    if inv._indexes._fleet:
        built.add("fleet")
    return built


def _same(a: Verdict, b: Verdict) -> None:
    """The same verdict and evidence (the time each was made aside)."""
    assert a.status is b.status
    assert a.asset_id == b.asset_id
    assert a.perceptual_distance == b.perceptual_distance
    assert a.failure_codes == b.failure_codes
    assert a.evidence == b.evidence


def test_verify_above_the_threshold_finds_a_resized_copy_through_the_fleet_index(
    tmp_path: Path, media: Media, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    db = tmp_path / "inv.sqlite"
    with Inventory(db) as signer_side:
        sign_into(signer_side, media("forest-path.jpg"), tmp_path / "a.jpg", signing_key)
        signed = tmp_path / "boats.jpg"
        result = sign_into(signer_side, media("rowing-boats-sunset.jpg"), signed, signing_key)
    copy = degraded_copy(signed, tmp_path / "copy.jpg", scale=0.4)
    with Inventory(db, fleet_min_assets=3) as small:  # 2 assets: below, exact
        exact = verify(copy, trust=trust, inventory=small, partial=False)
        assert _searched_with(small) == {"exact"}
    with Inventory(db, fleet_min_assets=2) as large:  # 2 assets: at it, the fleet index
        fleet = verify(copy, trust=trust, inventory=large, partial=False)
        assert _searched_with(large) == {"fleet"}
    assert exact.status is Status.SYNTHETIC_DUPLICATE
    assert exact.asset_id == result.asset_id
    assert PERCEPTUAL_MATCH in exact.failure_codes
    _same(fleet, exact)


def test_a_fleet_verifier_finds_an_asset_signed_after_its_index_was_built(
    tmp_path: Path,
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    clock: Clock,  # noqa: F811 - the fixture
) -> None:
    db = tmp_path / "inv.sqlite"
    with (
        Inventory(db) as signer_side,
        Inventory(db, index_refresh_s=5, fleet_min_assets=0) as verifier,
    ):
        sign_into(signer_side, media("forest-path.jpg"), tmp_path / "a.jpg", signing_key)
        assert verifier.searched_perceptual_rows(phash.SCHEME) > 0  # built now
        rows = len(verifier.fleet_index(phash.SCHEME))
        signed = tmp_path / "boats.jpg"
        result = sign_into(signer_side, media("rowing-boats-sunset.jpg"), signed, signing_key)
        copy = degraded_copy(signed, tmp_path / "copy.jpg")
        stale = verify(copy, trust=trust, inventory=verifier, partial=False)
        assert stale.status is Status.NO_PROVENANCE  # within the staleness bound
        clock.now += 5
        verdict = verify(copy, trust=trust, inventory=verifier, partial=False)
        assert verdict.status is Status.SYNTHETIC_DUPLICATE
        assert verdict.asset_id == result.asset_id
        assert len(verifier.fleet_index(phash.SCHEME)) > rows  # refreshed, not rebuilt
        assert _searched_with(verifier) == {"fleet"}


def test_the_threshold_comes_from_the_environment_and_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "inv.sqlite"
    assert FLEET_MIN_ASSETS > 0
    monkeypatch.setenv(FLEET_MIN_ASSETS_ENV_VAR, "0")
    with Inventory(db) as inv:
        assert inv.searched_perceptual_rows(phash.SCHEME) == 0
        assert _searched_with(inv) == set()  # an empty fleet index is not kept
        assert inv._indexes.uses_fleet(phash.SCHEME)
    monkeypatch.setenv(FLEET_MIN_ASSETS_ENV_VAR, "many")
    with pytest.raises(InventoryError, match=r"PROVENANCE_FLEET_MIN_ASSETS.*'many'") as caught:
        Inventory(db)
    assert str(caught.value).startswith(str(db))
    with pytest.raises(InventoryError, match="fleet_min_assets must be"):
        Inventory(db, fleet_min_assets=-1)


def test_a_server_inventory_always_searches_with_the_fleet_index(
    postgresql_server: ThrowawayServer,
    tmp_path: Path,
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
) -> None:
    url = postgresql_server.new_database()
    with Inventory(url) as inv:
        signed = tmp_path / "boats.jpg"
        result = sign_into(inv, media("rowing-boats-sunset.jpg"), signed, signing_key)
        verdict = verify(degraded_copy(signed, tmp_path / "c.jpg"), trust=trust, inventory=inv)
        assert verdict.status is Status.SYNTHETIC_DUPLICATE
        assert verdict.asset_id == result.asset_id
        assert _searched_with(inv) == {"fleet"}
