"""A verifier's perceptual index: refreshed incrementally, at most every ``index_refresh_s``."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

import provenance.inventory._indexes as indexes_module
import provenance.inventory._perceptual as perceptual_module
from provenance import SigningKey, Status, TrustPolicy, verify
from provenance._core import keypoints, phash
from provenance._core.types import SignResult
from provenance.errors import InventoryError
from provenance.inventory import Inventory
from tests.conftest import sample_record
from tests.integration.test_synthetic_duplicate import Media, degraded_copy, sign_into


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(indexes_module, "_monotonic", fake)
    return fake


def add_asset(inv: Inventory, tag: str, words: np.ndarray) -> str:
    """Record a made-up asset ``asset-<tag>`` with ``words`` as its perceptual rows."""

    def h(kind: str) -> str:
        return hashlib.sha256(f"{tag}:{kind}".encode()).hexdigest()

    result = SignResult(
        path=None,
        asset_id=f"asset-{tag}",
        sha256_hex=h("file"),
        essence_sha256_hex=h("essence"),
        input_sha256_hex=h("input"),
        bytes_added=1,
        active_manifest=None,
        record=sample_record("forest-path.jpg"),
    )
    inv.record_signing(result, signer="CN=test", now=datetime(2026, 1, 1, tzinfo=timezone.utc))
    reference = phash.ReferenceHashes(
        words=words, variants=tuple(f"v{i}" for i in range(len(words))), descriptor=b""
    )
    inv.add_perceptual(result.asset_id, reference)
    return result.asset_id


def found(inv: Inventory, words: np.ndarray) -> list[str]:
    return [
        m.asset.asset_id
        for m in inv.find_perceptual(words, scheme=phash.SCHEME, max_distance=0, k=5)
    ]


def test_reader_sees_another_handles_rows_after_the_interval(tmp_path: Path, clock: Clock) -> None:
    db = tmp_path / "inv.sqlite"
    rng = np.random.default_rng(5)
    a, b, c = (rng.integers(0, 2**64, size=(4, phash.WORDS), dtype=np.uint64) for _ in "abc")
    with Inventory(db) as writer, Inventory(db, index_refresh_s=30) as reader:
        add_asset(writer, "a", a)
        assert found(reader, a[2]) == ["asset-a"]  # built at the first lookup
        index = reader.perceptual_index(phash.SCHEME)
        add_asset(writer, "b", b)
        clock.now += 29
        assert found(reader, b[0]) == []  # within the bound: not looked for yet
        clock.now += 2
        assert found(reader, b[0]) == ["asset-b"]
        # Refreshed in place (the new rows appended), not rebuilt.
        assert reader.perceptual_index(phash.SCHEME) is index
        assert len(index) == 8
        # Rows written through the reader's own handle are seen at once.
        add_asset(reader, "c", c)
        assert found(reader, c[3]) == ["asset-c"]
        # The writer (default interval 0) sees every row on every lookup.
        assert found(writer, c[3]) == ["asset-c"]


def test_refresh_interval_must_be_a_non_negative_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "inv.sqlite"
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InventoryError, match="index_refresh_s must be") as caught:
            Inventory(db, index_refresh_s=bad)
        assert str(caught.value).startswith(str(db))
    monkeypatch.setenv("PROVENANCE_INDEX_REFRESH_S", "soon")
    with pytest.raises(InventoryError, match=r"\$PROVENANCE_INDEX_REFRESH_S .*'soon'"):
        Inventory(db)
    with Inventory(db, index_refresh_s=0) as inv:  # an explicit value wins
        assert inv._indexes._index_refresh_s == 0


def test_refresh_interval_from_the_environment(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "inv.sqlite"
    rng = np.random.default_rng(7)
    a, b = (rng.integers(0, 2**64, size=(2, phash.WORDS), dtype=np.uint64) for _ in "ab")
    monkeypatch.setenv("PROVENANCE_INDEX_REFRESH_S", " 10 ")
    with Inventory(db) as writer, Inventory(db) as reader:
        add_asset(writer, "a", a)
        assert found(reader, a[0]) == ["asset-a"]
        add_asset(writer, "b", b)
        assert found(reader, b[0]) == []
        clock.now += 10
        assert found(reader, b[0]) == ["asset-b"]


def test_cache_is_not_rewritten_by_each_refresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(indexes_module, "INDEX_CACHE_MIN_ROWS", 1)
    monkeypatch.setattr(perceptual_module, "_ROWS_PER_READ", 2)  # rows read page by page
    db = tmp_path / "inv.sqlite"
    cache = tmp_path / f"inv.sqlite.{phash.SCHEME}.hidx"
    rng = np.random.default_rng(6)
    first = rng.integers(0, 2**64, size=(5, phash.WORDS), dtype=np.uint64)
    later = rng.integers(0, 2**64, size=(3, phash.WORDS), dtype=np.uint64)
    with Inventory(db) as writer, Inventory(db) as reader:
        add_asset(writer, "a", first)
        assert len(reader.perceptual_index(phash.SCHEME)) == 5  # built: cached
        written = cache.read_bytes()
        add_asset(writer, "b", later)
        assert len(reader.perceptual_index(phash.SCHEME)) == 8  # refreshed: not cached
        assert cache.read_bytes() == written
    # A new process maps the cache and reads only the rows added since.
    with Inventory(db, read_only=True) as fresh:
        np.testing.assert_array_equal(
            fresh.perceptual_index(phash.SCHEME).words, np.concatenate([first, later])
        )
        assert found(fresh, later[1]) == ["asset-b"]


def test_verifier_finds_a_copy_of_an_original_signed_elsewhere_after_refresh(
    tmp_path: Path, media: Media, signing_key: SigningKey, trust: TrustPolicy, clock: Clock
) -> None:
    db = tmp_path / "inv.sqlite"
    with Inventory(db) as signer_side, Inventory(db, index_refresh_s=5) as verifier:
        other = tmp_path / "other.jpg"
        sign_into(signer_side, media("forest-path.jpg"), other, signing_key)
        assert len(verifier.perceptual_index(phash.SCHEME)) > 0  # the verifier starts
        signed = tmp_path / "boats.jpg"
        result = sign_into(signer_side, media("rowing-boats-sunset.jpg"), signed, signing_key)
        copy = degraded_copy(signed, tmp_path / "copy.jpg")
        # The perceptual index is not refreshed before the interval. (The partial-copy
        # search is off here: its index is built on its first use, which is now.)
        stale = verify(copy, trust=trust, inventory=verifier, partial=False)
        assert stale.status is Status.NO_PROVENANCE
        clock.now += 5
        verdict = verify(copy, trust=trust, inventory=verifier)
        assert verdict.status is Status.SYNTHETIC_DUPLICATE
        assert verdict.asset_id == result.asset_id


def test_the_keypoint_index_keeps_the_same_staleness_bound(
    tmp_path: Path, media: Media, signing_key: SigningKey, clock: Clock
) -> None:
    """The partial-copy search's index refreshes on the perceptual index's schedule."""
    db = tmp_path / "inv.sqlite"
    with Inventory(db) as signer_side, Inventory(db, index_refresh_s=5) as verifier:
        sign_into(signer_side, media("forest-path.jpg"), tmp_path / "a.jpg", signing_key)
        scheme = keypoints.SCHEME
        assert _keypoint_assets(verifier, scheme) == 1
        sign_into(signer_side, media("rowing-boats-sunset.jpg"), tmp_path / "b.jpg", signing_key)
        assert _keypoint_assets(verifier, scheme) == 1  # within the bound: not looked for
        clock.now += 5
        assert _keypoint_assets(verifier, scheme) == 2


def _keypoint_assets(inv: Inventory, scheme: str) -> int:
    inv.keypoint_index(scheme)
    _, last = inv._indexes._keypoints[scheme]
    return int(last)


def test_a_fleet_index_is_built_and_refreshed_from_the_inventory_in_batches(
    tmp_path: Path,
) -> None:
    from provenance import FleetIndex

    db = tmp_path / "inv.sqlite"
    rng = np.random.default_rng(9)
    rows = [rng.integers(0, 2**64, size=(5, phash.WORDS), dtype=np.uint64) for _ in range(7)]
    with Inventory(db) as writer, Inventory(db) as reader:
        for i, words in enumerate(rows[:6]):
            add_asset(writer, str(i), words)
        index = FleetIndex(words_per_hash=phash.WORDS, segment_rows=8)
        # Batches of 4 rows: 30 rows arrive in 8 reads, each a row key above the last.
        chunks = list(reader.perceptual_chunks(phash.SCHEME, rows_per_chunk=4))
        assert [c.row_ids.shape[0] for c in chunks] == [4] * 7 + [2]
        assert index.extend(chunks) == 30
        with contextlib.closing(sqlite3.connect(db)) as conn:  # the asset keys chunks carry
            pks = dict(conn.execute("SELECT asset_id, asset_pk FROM assets").fetchall())
        [match] = index.lookup(rows[3][2], max_distance=0)
        assert match.asset == pks["asset-3"] and match.distance == 0
        # Another process records an asset; the refresh reads only what is newer.
        add_asset(writer, "new", rows[6])
        newer = list(reader.perceptual_chunks(phash.SCHEME, after=index.last_row_id))
        assert sum(c.row_ids.shape[0] for c in newer) == 5
        assert index.extend(newer) == 5
        [match] = index.lookup(rows[6][4], max_distance=0)
        assert match.asset == max(pks.values()) + 1
        assert list(reader.perceptual_chunks(phash.SCHEME, after=index.last_row_id)) == []
    with pytest.raises(InventoryError, match="scheme"), Inventory(db) as inv:
        next(inv.perceptual_chunks("bad scheme!"))


def test_the_handle_s_fleet_index_refreshes_within_the_staleness_bound(
    tmp_path: Path, clock: Clock
) -> None:
    db = tmp_path / "inv.sqlite"
    rng = np.random.default_rng(21)
    a, b = (rng.integers(0, 2**64, size=(6, phash.WORDS), dtype=np.uint64) for _ in "ab")
    hashes = tmp_path / "hashes"
    hashes.mkdir()
    with Inventory(db) as writer, Inventory(db, index_refresh_s=30) as reader:
        assert len(reader.fleet_index(phash.SCHEME)) == 0  # nothing yet: not kept
        add_asset(writer, "a", a)
        index = reader.fleet_index(phash.SCHEME, hash_dir=hashes)
        assert len(index) == 6 and index.last_row_id > 0
        [match] = index.lookup(a[1], max_distance=0)
        assert match.distance == 0
        add_asset(writer, "b", b)
        clock.now += 29
        assert reader.fleet_index(phash.SCHEME) is index
        assert index.lookup(b[2], max_distance=0) == []  # within the bound
        clock.now += 2
        assert reader.fleet_index(phash.SCHEME) is index  # refreshed in place
        assert len(index) == 12
        [match] = index.lookup(np.stack([b[2], a[0]]), max_distance=0, k=1)
        assert match.distance == 0
        assert list(hashes.iterdir()), "its hashes are in mapped files there"
    assert not list(hashes.iterdir()), "closing the inventory deletes them"
    with pytest.raises(InventoryError, match="scheme"), Inventory(db) as inv:
        inv.fleet_index("bad scheme!")
