"""FleetIndex: candidates by hash tables, every row of a found asset compared in full."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from provenance import FleetIndex, HammingIndex, RowChunk
from provenance._io.index._tables import bit_positions, dct_bit_order

ROWS_PER_ASSET = 22


def _inventory(rng: np.random.Generator, assets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = assets * ROWS_PER_ASSET
    words = rng.integers(0, 2**64, size=(n, 4), dtype=np.uint64)
    ids = np.arange(1, n + 1, dtype=np.int64)
    owners = (np.arange(n) // ROWS_PER_ASSET + 1000).astype(np.int64)
    return ids, owners, words


def _chunks(ids: np.ndarray, owners: np.ndarray, words: np.ndarray, step: int) -> list[RowChunk]:
    return [
        RowChunk(ids[lo : lo + step], owners[lo : lo + step], words[lo : lo + step])
        for lo in range(0, ids.shape[0], step)
    ]


def _flipped(rng: np.random.Generator, row: np.ndarray, count: int) -> np.ndarray:
    out = row.copy()
    for bit in rng.choice(256, size=count, replace=False):
        out[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
    return out


def _exact_best(index: HammingIndex, owners: dict[int, int], qs: np.ndarray) -> dict[int, tuple]:
    best: dict[int, tuple[int, int]] = {}
    for q in qs:
        for hit in index.query(q, k=200, max_distance=51):
            asset = owners[hit.row_id]
            key = (hit.distance, hit.row_id)
            if asset not in best or key < best[asset]:
                best[asset] = key
    return best


@pytest.mark.parametrize("spill", [False, True])
def test_lookups_agree_with_the_exact_index(tmp_path: Path, spill: bool) -> None:
    rng = np.random.default_rng(7)
    ids, owners, words = _inventory(rng, 3000)
    index = FleetIndex(words_per_hash=4, segment_rows=10_000, hash_dir=tmp_path if spill else None)
    assert index.extend(_chunks(ids, owners, words, 7000)) == ids.shape[0]
    assert len(index) == ids.shape[0] and index.tail == 0 and index.last_row_id == ids[-1]
    assert index.segments >= 1
    exact = HammingIndex(words, ids)
    owner_of = dict(zip(ids.tolist(), owners.tolist(), strict=True))
    for asset in rng.choice(3000, size=25, replace=False):
        rows = asset * ROWS_PER_ASSET + rng.choice(ROWS_PER_ASSET, size=3, replace=False)
        qs = np.stack([_flipped(rng, words[r], int(rng.integers(5, 25))) for r in rows])
        found = index.lookup(qs, max_distance=51, k=5)
        expected = _exact_best(exact, owner_of, qs)
        assert found, "a copy within 25 bits is found"
        assert found[0].asset == asset + 1000
        # Whatever the tables found is then exact: the same row and distance.
        for match in found:
            assert expected[match.asset] == (match.distance, match.row_id)
    if spill:
        assert list(tmp_path.glob("fleet-*.u64")), "hashes live in mapped files"
    with index:
        pass
    assert not list(tmp_path.glob("fleet-*.u64")) and len(index) == 0


def test_whole_lookup_keeps_the_nearest_row_of_every_query_hash() -> None:
    rng = np.random.default_rng(3)
    ids, owners, words = _inventory(rng, 500)
    index = FleetIndex(words_per_hash=4, segment_rows=1)
    index.extend(_chunks(ids, owners, words, 11_000))
    far = rng.integers(0, 2**64, size=(1, 4), dtype=np.uint64)  # matches nothing
    near = _flipped(rng, words[5 * ROWS_PER_ASSET + 4], 3)[None, :]
    found = index.lookup(np.concatenate([far, near]), max_distance=51)
    assert found[0].asset == 1005
    assert found[0].row_id == ids[5 * ROWS_PER_ASSET + 4]
    assert found[0].distance == 3
    assert index.lookup(far, max_distance=51) == []
    assert index.lookup(near, max_distance=51, k=0) == []


def test_refresh_adds_only_newer_rows_and_scans_them_until_a_segment_is_due() -> None:
    rng = np.random.default_rng(5)
    ids, owners, words = _inventory(rng, 400)
    index = FleetIndex(words_per_hash=4, segment_rows=5000)
    store = _chunks(ids, owners, words, 1000)

    def source(after: int) -> list[RowChunk]:
        return [c for c in store if c.row_ids[-1] > after]

    added, checked = index.refresh(source, now=0.0, checked_at=-np.inf, max_age_s=10.0)
    assert added == ids.shape[0] and checked == 0.0
    # New rows of a new asset arrive; within the staleness bound nothing is asked.
    more = rng.integers(0, 2**64, size=(22, 4), dtype=np.uint64)
    store.append(RowChunk(np.arange(ids[-1] + 1, ids[-1] + 23), np.full(22, 9), more))
    assert index.refresh(source, now=5.0, checked_at=checked, max_age_s=10.0) == (0, 0.0)
    assert index.lookup(more[3], max_distance=0) == []
    added, checked = index.refresh(source, now=10.0, checked_at=checked, max_age_s=10.0)
    assert added == 22 and checked == 10.0
    assert index.tail == 22  # below segment_rows: scanned, exact
    [match] = index.lookup(more[3], max_distance=0)
    assert (match.asset, match.row_id, match.distance) == (9, ids[-1] + 4, 0)
    # Feeding the same rows again changes nothing.
    assert index.extend(store) == 0


def test_segments_merge_and_stay_searchable() -> None:
    rng = np.random.default_rng(11)
    ids, owners, words = _inventory(rng, 600)
    index = FleetIndex(words_per_hash=4, segment_rows=1000)
    for chunk in _chunks(ids, owners, words, 1100):
        index.extend([chunk])
    # Geometric sizes: far fewer segments than chunks fed.
    assert index.segments <= 5
    for asset in (0, 299, 599):
        row = asset * ROWS_PER_ASSET + 7
        [match, *_] = index.lookup(words[row], max_distance=10)
        assert (match.asset, match.row_id, match.distance) == (asset + 1000, ids[row], 0)


def test_an_asset_split_over_segments_is_compared_in_full() -> None:
    rng = np.random.default_rng(13)
    first = rng.integers(0, 2**64, size=(30, 4), dtype=np.uint64)
    later = rng.integers(0, 2**64, size=(2, 4), dtype=np.uint64)
    index = FleetIndex(words_per_hash=4, segment_rows=16)
    index.extend([RowChunk(np.arange(1, 31), np.full(30, 1), first)])
    index.extend([RowChunk(np.array([40, 41]), np.array([1, 1]), later)])
    # The query is near row 41 (in the tail) and farther from row 2 (in a segment).
    q = _flipped(rng, later[1], 2)
    [match] = index.lookup(np.stack([q, _flipped(rng, first[1], 9)]), max_distance=51)
    assert (match.asset, match.row_id, match.distance) == (1, 41, 2)


def test_bit_positions_are_most_significant_first() -> None:
    bits = bit_positions(np.array([[1 << 63, 1]], dtype=np.uint64))
    assert bits.shape == (1, 128)
    assert np.flatnonzero(bits[0]).tolist() == [0, 127]


def test_bad_input_is_refused_with_the_reason() -> None:
    index = FleetIndex(words_per_hash=4)
    with pytest.raises(ValueError, match="ascending"):
        index.extend([RowChunk(np.array([2, 1]), np.array([1, 1]), np.zeros((2, 4), np.uint64))])
    with pytest.raises(ValueError, match="want W = 4"):
        index.extend([RowChunk(np.array([1]), np.array([1]), np.zeros((1, 2), np.uint64))])
    with pytest.raises(ValueError, match="queries have 2 words"):
        index.lookup(np.zeros(2, np.uint64), max_distance=3)
    with pytest.raises(ValueError, match="distinct positions"):
        FleetIndex(words_per_hash=1, bit_order=[0, 0])
    with pytest.raises(ValueError, match=">= 1"):
        FleetIndex(words_per_hash=0)
    assert index.lookup(np.zeros(4, np.uint64), max_distance=3) == []


def test_assets_out_of_order_are_found_with_all_their_rows() -> None:
    rng = np.random.default_rng(17)
    words = rng.integers(0, 2**64, size=(8, 4), dtype=np.uint64)
    # Asset 5's rows, then asset 3's, then asset 5 again (a re-sign adding rows).
    owners = np.array([5, 5, 5, 3, 3, 3, 5, 5])
    index = FleetIndex(words_per_hash=4, segment_rows=1)
    index.extend([RowChunk(np.arange(1, 9), owners, words)])
    assert index.segments == 1 and index.tail == 0
    qs = np.stack([_flipped(rng, words[0], 30), _flipped(rng, words[7], 1)])
    [match] = index.lookup(qs, max_distance=51)
    assert (match.asset, match.row_id, match.distance) == (5, 8, 1)
    [match] = index.lookup(words[4], max_distance=0)
    assert (match.asset, match.row_id) == (3, 5)


def test_dct_bit_order_takes_the_lowest_frequencies_first() -> None:
    order = dct_bit_order(16)
    assert sorted(order) == list(range(256))
    assert order[:6] == [0, 1, 16, 2, 17, 32]  # (0,0); (0,1) (1,0); (0,2) (1,1) (2,0)


def test_a_copy_differing_on_every_key_bit_is_missed_once_its_segment_has_tables() -> None:
    # The first stage is approximate: a row within max_distance whose key bits all
    # differ from the query's (beyond probe_radius) is no candidate. While the rows
    # are a tail they are scanned and it is found; once they have tables, it is not.
    rng = np.random.default_rng(19)
    words = rng.integers(0, 2**64, size=(64, 1), dtype=np.uint64)
    query = words[10].copy()
    query[0] ^= np.uint64(0xFF << 56)  # the 8 key bits (positions 0-7), 8 bits away
    index = FleetIndex(
        words_per_hash=1,
        tables=1,
        probe_radius=1,
        key_bits=8,
        bit_order=range(64),
        segment_rows=1000,
    )
    index.extend([RowChunk(np.arange(1, 65), np.arange(64), words)])
    assert index.tail == 64
    [match, *_] = index.lookup(query, max_distance=8)
    assert (match.asset, match.distance) == (10, 8)
    sealed = FleetIndex(
        words_per_hash=1,
        tables=1,
        probe_radius=1,
        key_bits=8,
        bit_order=range(64),
        segment_rows=1,
    )
    sealed.extend([RowChunk(np.arange(1, 65), np.arange(64), words)])
    assert sealed.tail == 0
    assert 10 not in [m.asset for m in sealed.lookup(query, max_distance=8, k=64)]
    assert sealed.lookup(words[10], max_distance=0)[0].asset == 10


def test_a_lookup_may_probe_further_than_the_index_s_default() -> None:
    # The tables do not depend on the probe radius: one lookup may probe keys two bits
    # away where the index's default (1) stops at one, and then finds the row.
    rng = np.random.default_rng(23)
    words = rng.integers(0, 2**64, size=(64, 1), dtype=np.uint64)
    query = words[10].copy()
    query[0] ^= np.uint64(0b11 << 62)  # key bits 0 and 1: two bits away
    index = FleetIndex(
        words_per_hash=1,
        tables=1,
        probe_radius=1,
        key_bits=8,
        bit_order=range(64),
        segment_rows=1,
    )
    index.extend([RowChunk(np.arange(1, 65), np.arange(64), words)])
    assert index.tail == 0
    assert 10 not in [m.asset for m in index.lookup(query, max_distance=2, k=64)]
    [match, *_] = index.lookup(query, max_distance=2, k=64, probe_radius=2)
    assert (match.asset, match.distance) == (10, 2)
    with pytest.raises(ValueError, match="probe_radius"):
        index.lookup(query, max_distance=2, probe_radius=-1)


@pytest.mark.parametrize("steps", [False, True])
def test_tables_built_together_equal_a_stable_sort_by_each_key(
    monkeypatch: pytest.MonkeyPatch, steps: bool
) -> None:
    from provenance._io.index import _sort
    from provenance._io.index import _tables as keying
    from provenance._io.index._sort import _tables

    if steps:  # the in-place moves and the offsets cross many step ends
        monkeypatch.setattr(keying, "_BUILD_STEP", 7)
        monkeypatch.setattr(_sort, "_BUILD_STEP", 7)
        monkeypatch.setattr(_sort, "_COUNT_STEP", 11)
    rng = np.random.default_rng(11)
    words = rng.integers(0, 2**64, size=(5000, 4), dtype=np.uint64)
    order = dct_bit_order(16)
    positions = [np.array(order[j:36:3], dtype=np.intp) for j in range(3)]
    bits = bit_positions(words)
    for positions_j, table in zip(positions, _tables(words, positions, 4), strict=True):
        # Bit i of the key is bit positions_j[i] of the hash.
        key = (bits[:, positions_j].astype(np.int64) << np.arange(positions_j.shape[0])).sum(1)
        assert np.array_equal(table.order, np.argsort(key, kind="stable"))
        counts = np.bincount(key, minlength=1 << positions_j.shape[0])
        assert np.array_equal(table.offsets, np.concatenate([[0], np.cumsum(counts)]))


def test_a_cold_build_finds_what_an_incremental_build_finds(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    ids, owners, words = _inventory(rng, 2000)
    cold = FleetIndex(words_per_hash=4, segment_rows=4096, hash_dir=tmp_path)
    cold.extend(_chunks(ids, owners, words, 5000))  # one call: one segment, built once
    grown = FleetIndex(words_per_hash=4, segment_rows=4096)
    for chunk in _chunks(ids, owners, words, 3000):  # refreshes: segments, merged
        grown.extend([chunk])
    assert cold.segments == 1 and grown.segments + (grown.tail > 0) > 1
    for asset in rng.choice(2000, size=30, replace=False):
        rows = asset * ROWS_PER_ASSET + rng.choice(ROWS_PER_ASSET, size=3, replace=False)
        qs = np.stack([_flipped(rng, words[r], int(rng.integers(3, 12))) for r in rows])
        expected = grown.lookup(qs, max_distance=51, k=5, probe_radius=3)
        assert expected and expected[0].asset == asset + 1000
        assert cold.lookup(qs, max_distance=51, k=5, probe_radius=3) == expected
    cold.close()


def test_keys_computed_as_a_bulk_feed_arrives_make_the_same_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provenance._io.index import _fleet

    rng = np.random.default_rng(9)
    ids, owners, words = _inventory(rng, 4000)  # 88,000 rows: one chunk past _EARLY_KEY_ROWS
    early = FleetIndex(words_per_hash=4, bit_order=dct_bit_order(16), hash_dir=tmp_path)
    early.extend([RowChunk(ids[:80_000], owners[:80_000], words[:80_000])])  # keyed early
    early.extend([RowChunk(ids[80_000:], owners[80_000:], words[80_000:])])  # and a small one
    monkeypatch.setattr(_fleet, "_EARLY_KEY_ROWS", 1 << 40)
    late = FleetIndex(words_per_hash=4, bit_order=dct_bit_order(16))
    late.extend([RowChunk(ids[:80_000], owners[:80_000], words[:80_000])])  # keyed at sealing
    late.extend([RowChunk(ids[80_000:], owners[80_000:], words[80_000:])])
    # One segment each (sealed after the first chunk), then the rest is a tail.
    assert early.segments == late.segments == 1 and early.tail == late.tail == 8000
    for a, b in zip(early._segments[0].tables, late._segments[0].tables, strict=True):
        assert a.positions.shape[0] == 13  # log2(80,000) - 3: cut from 24-bit keys
        assert np.array_equal(a.positions, b.positions)
        assert np.array_equal(a.order, b.order) and np.array_equal(a.offsets, b.offsets)
    for asset in rng.choice(4000, size=10, replace=False):
        qs = np.stack([_flipped(rng, words[asset * ROWS_PER_ASSET + v], 8) for v in (0, 5)])
        assert early.lookup(qs, max_distance=51) == late.lookup(qs, max_distance=51)
    early.close()


def test_packed_keys_reserve_less_when_the_system_refuses_the_estimate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from provenance._io.index import _sort

    real = _sort._fresh
    asked: list[int] = []

    def fresh(count: int) -> np.ndarray:
        asked.append(count)
        if count > 1000:
            raise OSError(12, "Cannot allocate memory")
        return real(count)

    monkeypatch.setattr(_sort, "_fresh", fresh)
    slots = _sort._PackedKeys(1 << 20, least=10)  # an estimate far above the rows
    assert asked[0] == 1 << 20 and slots.packed.shape[0] <= 1000
    slots.append(np.arange(10, dtype=np.uint32))
    assert np.array_equal(slots.take() >> np.uint64(32), np.arange(10))
    with pytest.raises(OSError, match="Cannot allocate"):
        _sort._PackedKeys(1 << 20, least=5000)  # not even the rows at hand


def test_packed_keys_keep_every_row_in_order_when_they_grow() -> None:
    from provenance._io.index._sort import _PackedKeys, _table_of_sorted

    slots = _PackedKeys(5)  # too small an estimate: grown (copied) twice
    parts = [np.array(k, dtype=np.uint32) for k in ([3, 1, 3], [0, 2, 1, 3, 0, 1, 2], [1, 3])]
    for part in parts:
        slots.append(part)
    keys = np.concatenate(parts)
    items = slots.take()
    assert items.shape == (12,) and slots.used == 12
    assert np.array_equal(items >> np.uint64(32), keys)
    assert np.array_equal(items & np.uint64(0xFFFFFFFF), np.arange(12))
    table = _table_of_sorted(items, np.arange(3, dtype=np.intp))  # 8 buckets, some empty
    assert np.array_equal(table.order, np.argsort(keys, kind="stable"))
    counts = np.bincount(keys, minlength=8)
    assert np.array_equal(table.offsets, np.concatenate([[0], np.cumsum(counts)]))
