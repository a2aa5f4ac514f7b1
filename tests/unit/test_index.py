"""HammingIndex: every path gives exactly what a plain reference scan gives."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from provenance._io.index import HammingIndex, Neighbor, hamming_distances
from provenance.errors import CorruptFile


def reference(words: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int, r: int | None) -> list:
    """The obvious answer: popcount by Python ints, sort by (distance, row)."""
    qi = [int(x) for x in q]
    dist = [
        sum(bin(int(w) ^ qw).count("1") for w, qw in zip(row, qi, strict=True)) for row in words
    ]
    rows = [i for i, d in enumerate(dist) if r is None or d <= r]
    rows.sort(key=lambda i: (dist[i], i))
    return [Neighbor(int(ids[i]), dist[i]) for i in rows[:k]]


def near_copies(rng: np.random.Generator, base: np.ndarray, flips: int) -> np.ndarray:
    """``base`` with ``flips`` random bits flipped in each row."""
    out = base.copy()
    bits = base.shape[1] * 64
    for row in out:
        for b in rng.choice(bits, size=flips, replace=False):
            row[b // 64] ^= np.uint64(1) << np.uint64(b % 64)
    return out


@pytest.mark.parametrize("words_per_hash", [1, 2, 4])
def test_small_index_matches_reference(words_per_hash: int) -> None:
    rng = np.random.default_rng(words_per_hash)
    words = rng.integers(0, 2**64, size=(300, words_per_hash), dtype=np.uint64)
    ids = rng.integers(-(2**40), 2**40, size=300, dtype=np.int64)
    index = HammingIndex(words, ids)
    assert index.bands == 0
    for q in (words[7], near_copies(rng, words[11:12], 3)[0], words[0] ^ np.uint64(2**63 + 1)):
        for k, r in ((5, None), (300, None), (10, 64 * words_per_hash // 2), (3, 0), (50, 5)):
            assert index.query(q, k=k, max_distance=r) == reference(words, ids, q, k, r)


@pytest.mark.parametrize("words_per_hash", [1, 2, 4])
def test_multi_index_matches_brute_force(words_per_hash: int) -> None:
    rng = np.random.default_rng(100 + words_per_hash)
    n = 40_000
    words = rng.integers(0, 2**64, size=(n, words_per_hash), dtype=np.uint64)
    # Planted near duplicates at several distances, and exact duplicates (ties).
    targets = rng.choice(n, size=20, replace=False)
    for i, t in enumerate(targets):
        words[(t + 1) % n] = near_copies(rng, words[t : t + 1], i % 9)[0]
    words[5] = words[6]
    indexed = HammingIndex(words, multi_index=True)
    brute = HammingIndex(words, multi_index=False)
    assert indexed.bands >= 1 and brute.bands == 0
    queries = np.concatenate(
        [words[targets], near_copies(rng, words[targets[:5]], 4), words[[5, 6]]]
    )
    for r in (0, 4, 8, 12, 20):
        for q in queries:
            got = indexed.query(q, k=20, max_distance=r)
            assert got == brute.query(q, k=20, max_distance=r)
        batch = indexed.query_batch(queries, k=20, max_distance=r)
        assert batch == brute.query_batch(queries, k=20, max_distance=r)
    # Spot-check the brute path itself against the plain reference.
    ids = np.arange(n, dtype=np.int64)
    for q in queries[:4]:
        assert brute.query(q, k=7, max_distance=12) == reference(words, ids, q, 7, 12)
        assert brute.query(q, k=7) == reference(words, ids, q, 7, None)


def test_multi_index_finds_planted_matches() -> None:
    rng = np.random.default_rng(7)
    words = rng.integers(0, 2**64, size=(50_000, 1), dtype=np.uint64)
    copy = near_copies(rng, words[123:124], 9)[0]
    index = HammingIndex(words, multi_index=True)
    assert index.query(copy, k=1, max_distance=10) == [Neighbor(123, 9)]
    assert index.query(copy, k=1, max_distance=8) == []


def test_add_keeps_results_exact_through_tail_and_rebuild() -> None:
    rng = np.random.default_rng(3)
    first = rng.integers(0, 2**64, size=(20_000, 2), dtype=np.uint64)
    index = HammingIndex(first, multi_index=True)
    total = first
    for step in range(4):
        more = rng.integers(0, 2**64, size=(1_500 * (step + 1), 2), dtype=np.uint64)
        more[0] = near_copies(rng, first[step : step + 1], 5)[0]
        index.add(more)
        total = np.concatenate([total, more])
        reference_index = HammingIndex(total, multi_index=False)
        for q in (first[step], more[-1], total[len(total) // 2]):
            assert index.query(q, k=5, max_distance=10) == reference_index.query(
                q, k=5, max_distance=10
            )
    assert len(index) == len(total)
    np.testing.assert_array_equal(index.words, total)
    index.rebuild()
    assert index.query(first[0], k=3, max_distance=10)[0] == Neighbor(0, 0)


def test_add_with_ids_and_empty_index() -> None:
    index = HammingIndex(words_per_hash=2)
    assert index.query(np.zeros(2, np.uint64), k=3) == []
    index.add(np.array([[1, 0], [3, 0]], dtype=np.uint64), ids=np.array([40, 41]))
    index.add(np.array([[7, 1]], dtype=np.uint64))
    assert index.query(np.array([1, 0], np.uint64), k=3) == [
        Neighbor(40, 0),
        Neighbor(41, 1),
        Neighbor(2, 3),
    ]


@pytest.mark.parametrize("mmap", [True, False])
def test_save_and_load_round_trip(tmp_path: Path, mmap: bool) -> None:
    rng = np.random.default_rng(11)
    words = rng.integers(0, 2**64, size=(30_000, 2), dtype=np.uint64)
    ids = rng.integers(0, 2**50, size=30_000, dtype=np.int64)
    index = HammingIndex(words, ids, multi_index=True)
    index.add(words[:10] ^ np.uint64(1))  # a tail, folded in by save()
    path = index.save(tmp_path / "hashes.idx")
    loaded = HammingIndex.load(path, mmap=mmap)
    assert len(loaded) == len(index) and loaded.bands == index.bands
    for q in words[:5]:
        assert loaded.query(q, k=5, max_distance=6) == index.query(q, k=5, max_distance=6)
    # A mapped index can still grow (it copies first).
    loaded.add(words[:1])
    assert loaded.query(words[0], k=5, max_distance=0)[-1] == Neighbor(len(index), 0)


def test_load_refuses_other_and_truncated_files(tmp_path: Path) -> None:
    other = tmp_path / "other.idx"
    other.write_bytes(b"not an index at all")
    with pytest.raises(CorruptFile, match="not a provenance Hamming index"):
        HammingIndex.load(other)
    index = HammingIndex(np.arange(100, dtype=np.uint64))
    path = index.save(tmp_path / "cut.idx")
    path.write_bytes(path.read_bytes()[:-16])
    with pytest.raises(CorruptFile, match="cut short"):
        HammingIndex.load(path)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="uint64"):
        HammingIndex(np.array([[-1]]))
    index = HammingIndex(np.zeros((4, 2), np.uint64))
    with pytest.raises(ValueError, match="words"):
        index.query(np.zeros(3, np.uint64))
    with pytest.raises(ValueError, match="k must be"):
        index.query(np.zeros(2, np.uint64), k=-1)
    with pytest.raises(ValueError, match="ids must be"):
        HammingIndex(np.zeros((4, 2), np.uint64), ids=[1, 2])


def test_hamming_distances() -> None:
    words = np.array([[0, 0], [1, 3], [2**64 - 1, 0]], dtype=np.uint64)
    got = hamming_distances(words, np.array([0, 1], dtype=np.uint64))
    assert got.tolist() == [1, 2, 65]


def test_memory_stays_within_budget() -> None:
    rng = np.random.default_rng(5)
    for w in (1, 4):
        index = HammingIndex(rng.integers(0, 2**64, size=(100_000, w), dtype=np.uint64))
        assert index.bands >= 1
        assert index.index_bytes <= 2 * index.raw_bytes


def test_small_radius_takes_the_multi_index_path() -> None:
    from provenance._io.index import _bands as index_module

    rng = np.random.default_rng(9)
    words = rng.integers(0, 2**64, size=(40_000, 1), dtype=np.uint64)
    index = HammingIndex(words, multi_index=True)
    bands = index._bands
    probed = index_module._probe(bands, index._words, len(index), words[3], 4)
    assert probed is not None and 3 in probed[0].tolist()
    # A radius too large for the bands falls back to the scan (None).
    assert index_module._probe(bands, index._words, len(index), words[3], 40) is None


def test_uneven_bands_and_radii_stay_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    from provenance._io.index import _bands as index_module

    # Bands of 22, 21 and 21 bits covering the whole word (the 10M-row layout).
    monkeypatch.setattr(
        index_module, "_band_plan", lambda n, w: [(0, 0, 22), (0, 22, 21), (0, 43, 21)]
    )
    rng = np.random.default_rng(11)
    n = 40_000
    words = rng.integers(0, 2**64, size=(n, 1), dtype=np.uint64)
    for i, t in enumerate(rng.choice(n - 1, size=24, replace=False)):
        words[t + 1] = near_copies(rng, words[t : t + 1], i % 13)[0]
    indexed = HammingIndex(words, multi_index=True)
    brute = HammingIndex(words, multi_index=False)
    assert [b.bits for b in indexed._bands] == [22, 21, 21]
    queries = near_copies(rng, words[rng.choice(n, size=30, replace=False)], 3)
    for r in range(0, 13):
        if r <= 7:  # small radii take the bands, with unequal radii per band
            assert index_module._probe(indexed._bands, indexed._words, n, queries[0], r)
        for q in queries:
            assert indexed.query(q, k=30, max_distance=r) == brute.query(q, k=30, max_distance=r)


def test_band_radii_cover_the_radius() -> None:
    from provenance._io.index import _bands as index_module

    for widths in ((21, 21, 22) * 4, (17,) * 12, (13, 13, 13), (22,)):
        for r in range(0, 90, 3):
            plan = index_module._radii(widths, r, 10_000_000)
            if plan is None:
                continue
            radii = plan[1]
            assert len(radii) == len(widths)
            assert all(-1 <= s <= b for s, b in zip(radii, widths, strict=True))
            # Pigeonhole: every band at radius + 1 or more adds up to more than r.
            assert sum(s + 1 for s in radii) > r


def test_tail_counts_rows_outside_the_bands() -> None:
    rng = np.random.default_rng(21)
    words = rng.integers(0, 2**64, size=(20_000, 4), dtype=np.uint64)
    index = HammingIndex(words, multi_index=True)
    assert index.tail == 0
    index.add(words[:100] ^ np.uint64(1))
    assert index.tail == 100  # scanned until the tail passes 16,384 rows or 10%
    index.add(words[:16_300])
    assert index.tail == 0  # the bands were rebuilt over every row
    assert HammingIndex(words[:10]).tail == 10  # no bands: every row is scanned


def test_layout_is_the_cheapest_of_several_within_the_budget() -> None:
    from provenance._io.index import _bands as index_module

    def cost(plan: list[tuple[int, int, int]], n: int) -> float:
        found = index_module._radii(tuple(b for _, _, b in plan), 51, n)
        assert found is not None
        return found[0]

    for n in (1_000_000, 22_000_000, 220_000_000):
        plan = index_module._band_plan(n, 4)
        # Bands never span a word, never overlap, and fit the memory budget.
        for word in range(4):
            spans = sorted((s, s + b) for w, s, b in plan if w == word)
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
            assert all(hi <= 64 for _, hi in spans)
        structures = sum(4 * n + 4 * ((1 << b) + 1) for _, _, b in plan)
        assert structures <= index_module.MEMORY_BUDGET * 32 * n
        # At 22M rows the fixed log2(n) - 2 rule gave 8 bands of 22 bits: ten times the cost.
        fixed = index_module._fill_plan(n, 4, [min(24, int(np.log2(n)) - 2)] * 2)
        assert cost(plan, n) <= cost(fixed, n)
    assert len(index_module._band_plan(22_000_000, 4)) == 12


def test_chosen_layout_is_exact_on_biased_correlated_bits() -> None:
    from provenance._io.index import _bands as index_module

    # Real hashes have nearly constant and correlated bits, which skews the buckets.
    rng = np.random.default_rng(17)
    n = 60_000
    bits = rng.random((n, 256)) < np.linspace(0.05, 0.95, 256)
    bits[:, 1::2] ^= bits[:, ::2] & (rng.random((n, 128)) < 0.7)  # odd bits follow even ones
    words = np.packbits(bits, axis=1, bitorder="little").view("<u8").astype(np.uint64)
    for i, t in enumerate(rng.choice(n - 1, size=40, replace=False)):
        words[t + 1] = near_copies(rng, words[t : t + 1], i % 24)[0]
    indexed = HammingIndex(words, multi_index=True)
    brute = HammingIndex(words, multi_index=False)
    queries = near_copies(rng, words[rng.choice(n, size=12, replace=False)], 8)
    # At 60k rows radius 20 takes the bands (51 would scan: it costs less here).
    assert index_module._probe(indexed._bands, indexed._words, n, queries[0], 20) is not None
    for q in queries:
        for r in (12, 20):
            assert indexed.query(q, k=50, max_distance=r) == brute.query(q, k=50, max_distance=r)


def test_rows_added_to_a_mapped_index_stay_exact_and_leave_it_mapped(tmp_path: Path) -> None:
    rng = np.random.default_rng(23)
    words = rng.integers(0, 2**64, size=(20_000, 2), dtype=np.uint64)
    HammingIndex(words, ids=np.arange(20_000) * 3, multi_index=True).save(tmp_path / "i.hidx")
    index = HammingIndex.load(tmp_path / "i.hidx")
    more = near_copies(rng, words[:500], 4)
    index.add(more, ids=np.arange(20_000, 20_500) * 3)
    assert isinstance(index._words, np.memmap)  # not copied into private memory
    assert index.tail == 500 and len(index) == 20_500
    total = np.concatenate([words, more])
    ids = np.arange(20_500) * 3
    brute = HammingIndex(total, ids=ids, multi_index=False)
    np.testing.assert_array_equal(index.words, total)
    np.testing.assert_array_equal(index.ids, ids)
    for q in (words[7], more[7], more[-1], near_copies(rng, more[100:101], 3)[0]):
        for r in (None, 4, 12):
            assert index.query(q, k=8, max_distance=r) == brute.query(q, k=8, max_distance=r)
    assert index.query_batch(more[:3], k=2) == brute.query_batch(more[:3], k=2)
    # Enough rows to rebuild the bands: one in-memory array again, still exact.
    index.add(total[:17_000], ids=np.arange(20_500, 37_500) * 3)
    assert index.tail == 0 and not isinstance(index._words, np.memmap)
    total = np.concatenate([total, total[:17_000]])
    brute = HammingIndex(total, ids=np.arange(37_500) * 3, multi_index=False)
    for q in (words[9], more[9]):
        assert index.query(q, k=8, max_distance=12) == brute.query(q, k=8, max_distance=12)
    index.save(tmp_path / "j.hidx")
    np.testing.assert_array_equal(HammingIndex.load(tmp_path / "j.hidx").words, total)


def test_bucket_order_is_a_stable_argsort() -> None:
    from provenance._io.index import _bands as index_module

    rng = np.random.default_rng(29)
    for bits in (4, 16, 22):
        keys = rng.integers(0, 1 << bits, size=50_000, dtype=np.uint32)  # many equal keys
        for dtype in (np.int32, np.int64):
            order = index_module._bucket_order(keys, dtype)
            assert order.dtype == dtype
            np.testing.assert_array_equal(order, np.argsort(keys, kind="stable"))
