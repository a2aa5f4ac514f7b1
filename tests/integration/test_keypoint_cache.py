"""The keypoint vote index's cache file (issue 21): loaded, refreshed, never trusted blindly."""

from __future__ import annotations

import hashlib
import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

import provenance.inventory._indexes as indexes_module
from provenance import SigningKey, Status, TrustPolicy, verify
from provenance._core import keypoints
from provenance._core.types import SignResult
from provenance.inventory import Inventory
from tests.conftest import sample_record
from tests.integration.test_partial_copy import flat, save_jpeg, screenshot
from tests.integration.test_synthetic_duplicate import Media, sign_into

SCHEME = keypoints.SCHEME


@pytest.fixture(autouse=True)
def cache_from_one_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(indexes_module, "KEYPOINT_CACHE_MIN_ROWS", 1)


def features(seed: int) -> keypoints.LocalFeatures:
    """Made-up local features: 200 random descriptors (an image's worth)."""
    rng = np.random.default_rng(seed)
    n = 200
    return keypoints.LocalFeatures(
        points=rng.random((n, 2), dtype=np.float32) * 300,
        descriptors=rng.integers(0, 256, (n, 32), dtype=np.uint8),
        width=384,
        height=384,
        scale=1.0,
        colour=np.zeros((16, 16, 3), np.uint8),
        angles=np.zeros(n, np.float32),
    )


def add_asset(inv: Inventory, tag: str) -> str:
    """Record a made-up asset ``asset-<tag>`` with made-up local features."""

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
    assert inv.add_keypoints(result.asset_id, features(int(h("seed")[:8], 16)), scheme=SCHEME)
    return result.asset_id


def best(inv: Inventory, tag: str) -> str:
    """The asset the vote index ranks first for asset ``tag``'s own features."""
    seed = int(hashlib.sha256(f"{tag}:seed".encode()).hexdigest()[:8], 16)
    voted = inv.keypoint_index(SCHEME).candidates(features(seed), k=1)
    [(entry, _)] = inv.keypoint_features([voted[0][0]])
    return entry.asset_id


def test_a_second_handle_loads_the_cache_and_reads_only_newer_rows(tmp_path: Path) -> None:
    db = tmp_path / "inv.sqlite"
    cache = tmp_path / f"inv.sqlite.{SCHEME}.kidx"
    with Inventory(db) as writer:
        for tag in "abc":
            add_asset(writer, tag)
        assert best(writer, "b") == "asset-b"
        assert writer._indexes.keypoint_cache_writes == 1
        assert writer._indexes.keypoint_rows_read == 3
    assert cache.stat().st_mode & 0o777 == 0o600
    with Inventory(db, read_only=True) as reader:
        assert best(reader, "c") == "asset-c"
        assert reader._indexes.keypoint_cache_loads == 1
        assert reader._indexes.keypoint_rows_read == 0  # nothing rebuilt from the rows
        assert len(reader.keypoint_index(SCHEME)) == 3
    with Inventory(db) as writer:
        add_asset(writer, "d")  # after the cache was written
    with Inventory(db, read_only=True) as reader:
        assert best(reader, "d") == "asset-d"
        assert reader._indexes.keypoint_cache_loads == 1
        assert reader._indexes.keypoint_rows_read == 1  # the cache, then the one new row
        assert reader._indexes.keypoint_cache_writes == 0  # read-only: not rewritten


def test_a_handle_refreshes_a_loaded_cache_with_rows_another_handle_wrote(
    tmp_path: Path,
) -> None:
    db = tmp_path / "inv.sqlite"
    with Inventory(db) as writer:
        add_asset(writer, "a")
        writer.keypoint_index(SCHEME)
        with Inventory(db) as reader:
            assert best(reader, "a") == "asset-a"
            assert reader._indexes.keypoint_cache_loads == 1
            add_asset(writer, "b")
            assert best(reader, "b") == "asset-b"  # refreshed: the new row appended
            assert len(reader.keypoint_index(SCHEME)) == 2


def _truncate(cache: Path, other: Path) -> None:
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])


def _garbage(cache: Path, other: Path) -> None:
    cache.write_bytes(b"\x00garbage" * 100)


def _flip_a_header_byte(cache: Path, other: Path) -> None:
    data = bytearray(cache.read_bytes())
    data[data.index(b'"layout"') + 1] ^= 0x20
    cache.write_bytes(bytes(data))


def _another_inventorys(cache: Path, other: Path) -> None:
    shutil.copyfile(other, cache)


def _a_hamming_index(cache: Path, other: Path) -> None:
    from provenance._io.index import HammingIndex

    HammingIndex(np.zeros((2, 4), np.uint64), np.arange(2)).save(cache)


@pytest.mark.parametrize(
    "spoil", [_truncate, _garbage, _flip_a_header_byte, _another_inventorys, _a_hamming_index]
)
def test_a_spoilt_or_foreign_cache_is_rebuilt_with_a_warning(
    spoil: object, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db, elsewhere = tmp_path / "inv.sqlite", tmp_path / "other.sqlite"
    cache = tmp_path / f"inv.sqlite.{SCHEME}.kidx"
    with Inventory(elsewhere) as other:  # another inventory, the same last row
        for tag in "xb":
            add_asset(other, tag)
        other.keypoint_index(SCHEME)
    with Inventory(db) as inv:
        for tag in "ab":
            add_asset(inv, tag)
        inv.keypoint_index(SCHEME)
    assert callable(spoil)
    spoil(cache, tmp_path / f"other.sqlite.{SCHEME}.kidx")
    with caplog.at_level(logging.WARNING, logger="provenance.inventory"), Inventory(db) as inv:
        assert best(inv, "b") == "asset-b"
        assert inv._indexes.keypoint_cache_loads == 0
        assert inv._indexes.keypoint_rows_read == 2  # rebuilt from the rows
        assert inv._indexes.keypoint_cache_writes == 1  # and the cache written again
    assert [r for r in caplog.records if "keypoint index" in r.getMessage()], caplog.text
    assert str(cache) in caplog.text
    with Inventory(db, read_only=True) as inv:
        inv.keypoint_index(SCHEME)
        assert inv._indexes.keypoint_cache_loads == 1  # the rewritten cache is good


def test_verify_finds_a_partial_copy_through_a_corrupted_cache(
    tmp_path: Path,
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = tmp_path / "inv.sqlite"
    with Inventory(db) as inv:
        result = sign_into(inv, media("rowing-boats-sunset.jpg"), tmp_path / "s.jpg", signing_key)
        inv.keypoint_index(SCHEME)
    cache = tmp_path / f"inv.sqlite.{SCHEME}.kidx"
    cache.write_bytes(cache.read_bytes()[:100])
    page, _ = screenshot(flat(tmp_path / "s.jpg"))
    query = save_jpeg(page, tmp_path / "page.jpg")
    with caplog.at_level(logging.WARNING, logger="provenance.inventory"), Inventory(db) as inv:
        verdict = verify(query, trust=trust, inventory=inv)
    assert verdict.status is Status.SYNTHETIC_DUPLICATE
    assert verdict.asset_id == result.asset_id
    assert "rebuilt" in caplog.text


def test_inventory_index_writes_the_cache_a_read_only_verifier_then_loads(
    tmp_path: Path,
) -> None:
    from provenance.errors import InventoryError
    from tests.conftest import run_cli

    db = tmp_path / "inv.sqlite"
    cache = tmp_path / f"inv.sqlite.{SCHEME}.kidx"
    with Inventory(db) as inv:
        for tag in "ab":
            add_asset(inv, tag)
    with Inventory(db, read_only=True) as reader:
        reader.keypoint_index(SCHEME)  # built here, but a read-only handle writes nothing
        with pytest.raises(InventoryError, match="read-only"):
            reader.write_index_caches()
    assert not cache.exists()
    with Inventory(db) as inv:
        assert inv.write_index_caches() == [cache]
        cache.unlink()
        assert inv.write_index_caches() == [cache]  # written again from memory
        assert inv._indexes.keypoint_rows_read == 2
        cache.unlink()
    # The CLI runs in another process, where the test's lower threshold does not apply.
    done = run_cli("inventory", "index", "--inventory", db, subprocess=True)
    assert done.returncode == 0, done.stderr
    assert "no keypoint index cache" in done.stdout and not cache.exists()
