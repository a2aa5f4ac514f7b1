"""FleetIndex lookups: probes by level, extra bits per row, one query hash per candidate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageEnhance

from provenance import AssetMatch, FleetIndex, RowChunk
from provenance._core import phash
from provenance._io.index._probe import EXTRA_BUDGET
from provenance._io.index._tables import EXTRA_BITS, bit_positions, dct_bit_order

SAMPLE_MEDIA = Path(__file__).resolve().parents[2] / "sample_media"
R = phash.MATCH_THRESHOLD


def _flip(word: int, *bits: int) -> np.ndarray:
    """A one-word hash with these hash bits flipped (bit b is bit 63 - b of the word)."""
    for b in bits:
        word ^= 1 << (63 - b)
    return np.array([word], dtype=np.uint64)


def _one_table(rows: np.ndarray) -> FleetIndex:
    # Key: hash bits 0-7; extra bits: 8-15 (bit_order in hash order, every bit kept).
    index = FleetIndex(words_per_hash=1, tables=1, key_bits=8, bit_order=range(64), segment_rows=1)
    index.extend([RowChunk(np.arange(1, rows.shape[0] + 1), np.arange(rows.shape[0]), rows)])
    return index


def test_a_row_far_on_the_key_must_be_near_on_the_extra_bits() -> None:
    # Three key bits flipped (a level-3 probe) leaves EXTRA_BUDGET - 3 extra bits.
    rng = np.random.default_rng(4)
    rows = rng.integers(0, 2**64, size=(200, 1), dtype=np.uint64)
    index = _one_table(rows)
    [table] = index._segments[0].tables
    assert table.extra is not None and table.extra_positions is not None
    assert table.extra_positions.tolist() == list(range(8, 8 + EXTRA_BITS))
    word = int(rows[17, 0])
    allowed = EXTRA_BUDGET - 3
    near = _flip(word, 0, 1, 2, *range(8, 8 + allowed))
    far = _flip(word, 0, 1, 2, *range(8, 9 + allowed))
    assert index.lookup(near, max_distance=8, k=200, probe_radius=3)[0] == AssetMatch(
        17, 18, 3 + allowed
    )
    assert 17 not in [m.asset for m in index.lookup(far, max_distance=8, k=200, probe_radius=3)]
    # The same bits flipped outside the key and extra bits: found at the first level.
    outside = _flip(word, *range(40, 44 + allowed))
    assert index.lookup(outside, max_distance=8, k=200)[0].asset == 17


def test_extra_bits_are_the_hash_bits_of_each_row_in_bucket_order() -> None:
    rng = np.random.default_rng(8)
    words = rng.integers(0, 2**64, size=(30_000, 4), dtype=np.uint64)
    index = FleetIndex(words_per_hash=4, bit_order=dct_bit_order(16), segment_rows=1)
    index.extend([RowChunk(np.arange(1, 30_001), np.arange(30_000) // 22, words)])
    bits = bit_positions(words)
    for table in index._segments[0].tables:
        assert table.extra is not None and table.extra_positions is not None
        assert table.extra_positions.shape[0] == EXTRA_BITS
        order = table.order.astype(np.int64)
        weights = 1 << np.arange(EXTRA_BITS)
        assert np.array_equal(table.extra, (bits[order][:, table.extra_positions] * weights).sum(1))
        key = (bits[order][:, table.positions] * (1 << np.arange(table.positions.shape[0]))).sum(1)
        assert np.all(np.diff(key) >= 0), "rows in bucket order"
        counts = np.bincount(key, minlength=1 << table.positions.shape[0])
        assert np.array_equal(table.offsets, np.concatenate([[0], np.cumsum(counts)]))
        assert sorted(order.tolist()) == list(range(30_000))


def _copies(image: Image.Image) -> list[Image.Image]:
    w, h = image.size
    small = image.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS)
    cropped = image.crop((w // 20, h // 20, w - w // 20, h - h // 20))
    brighter = ImageEnhance.Brightness(image).enhance(1.3)
    rotated = image.rotate(3, Image.Resampling.BICUBIC, fillcolor="white")
    overlaid = image.copy()
    ImageDraw.Draw(overlaid).rectangle((w // 10, h // 10, w // 3, h // 4), fill="white")
    return [small, cropped, brighter, rotated, overlaid]


def _exact(words: np.ndarray, assets: np.ndarray, qs: np.ndarray) -> list[AssetMatch]:
    dist = np.bitwise_count(qs[:, None, :] ^ words[None, :, :]).sum(-1).min(axis=0)
    best: dict[int, tuple[int, int]] = {}
    for row in np.flatnonzero(dist <= R):
        key = (int(dist[row]), int(row) + 1)
        if int(assets[row]) not in best or key < best[int(assets[row])]:
            best[int(assets[row])] = key
    ranked = sorted(best.items(), key=lambda item: item[1])
    return [AssetMatch(a, row_id, d) for a, (d, row_id) in ranked]


@pytest.mark.parametrize("key_bits", [21, 24])
def test_real_copies_get_the_exact_search_s_matches(key_bits: int) -> None:
    # sample_media's reference rows (19-23 per photo) and copies of each photo: the
    # index at the key width of 1M (21 bits) and 10M assets (24), verify's radius 3.
    paths = sorted(p for p in SAMPLE_MEDIA.iterdir() if p.suffix in {".jpg", ".png", ".webp"})
    images = []
    for path in paths:
        with Image.open(path) as opened:
            images.append(opened.convert("RGB"))
    refs = phash.reference_hashes_batch(images)
    words = np.concatenate([ref.words for ref in refs])
    assets = np.concatenate([np.full(len(ref.variants), i) for i, ref in enumerate(refs)])
    index = FleetIndex(
        words_per_hash=phash.WORDS,
        bit_order=FleetIndex.dct_bit_order(16),
        key_bits=key_bits,
        segment_rows=1,
    )
    index.extend([RowChunk(np.arange(1, words.shape[0] + 1), assets.astype(np.int64), words)])
    assert index.tail == 0 and all(t.extra is not None for t in index._segments[0].tables)
    checked = 0
    for owner, image in enumerate(images):
        for copy in phash.query_features(_copies(image)):
            expected = _exact(words, assets, copy.words)
            found = index.lookup(copy.words, max_distance=R, k=len(images), probe_radius=3)
            assert found == expected
            checked += owner in [m.asset for m in expected]
    assert checked >= 4 * len(images), "most copies are within the threshold of their photo"


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    assets=st.integers(1, 120),
    words_per_hash=st.sampled_from([1, 4]),
    flips=st.integers(0, 40),
    max_distance=st.integers(0, 60),
    probe_radius=st.integers(0, 4),
)
def test_lookups_return_only_exact_distances_within_max_distance(
    seed: int, assets: int, words_per_hash: int, flips: int, max_distance: int, probe_radius: int
) -> None:
    rng = np.random.default_rng(seed)
    n = assets * 5
    words = rng.integers(0, 2**64, size=(n, words_per_hash), dtype=np.uint64)
    owners = np.arange(n, dtype=np.int64) // 5
    index = FleetIndex(words_per_hash=words_per_hash, segment_rows=64)
    index.extend([RowChunk(np.arange(1, n + 1), owners, words)])
    qs = words[rng.choice(n, size=3)].copy()
    for q in qs:
        for bit in rng.choice(
            64 * words_per_hash, size=min(flips, 64 * words_per_hash), replace=False
        ):
            q[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
    found = index.lookup(qs, max_distance=max_distance, k=assets, probe_radius=probe_radius)
    dist = np.bitwise_count(qs[:, None, :] ^ words[None, :, :]).sum(-1).min(axis=0)
    assert [m.asset for m in found] == list(dict.fromkeys(m.asset for m in found))
    for m in found:
        assert m.distance <= max_distance
        assert m.distance == dist[m.row_id - 1]  # exact: compared in full
        own = np.flatnonzero(owners == m.asset)
        # The asset's nearest row (the first on ties), as the exact search gives.
        assert (m.distance, m.row_id) == min((int(dist[r]), int(r) + 1) for r in own)
    assert [(m.distance, m.row_id) for m in found] == sorted((m.distance, m.row_id) for m in found)
    exact = {int(owners[r]) for r in np.flatnonzero(dist <= max_distance)}
    assert {m.asset for m in found} <= exact
    if probe_radius >= 2 and flips == 0 and max_distance >= 0:
        assert {int(owners[r]) for r in np.flatnonzero(dist == 0)} <= {m.asset for m in found}


def test_extra_bits_are_the_same_whether_keyed_as_rows_arrive_or_at_sealing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from provenance._io.index import _fleet

    rng = np.random.default_rng(12)
    words = rng.integers(0, 2**64, size=(80_000, 4), dtype=np.uint64)
    chunk = RowChunk(np.arange(1, 80_001), np.arange(80_000) // 22, words)
    early = FleetIndex(words_per_hash=4, bit_order=dct_bit_order(16))
    early.extend([chunk])  # keyed at the widest key plus extra bits, cut at sealing
    monkeypatch.setattr(_fleet, "_EARLY_KEY_ROWS", 1 << 40)
    late = FleetIndex(words_per_hash=4, bit_order=dct_bit_order(16))
    late.extend([chunk])
    for a, b in zip(early._segments[0].tables, late._segments[0].tables, strict=True):
        assert a.extra is not None and b.extra is not None
        assert a.positions.shape[0] == 13 and a.extra.shape == (80_000,)
        assert np.array_equal(a.extra_positions, b.extra_positions)
        assert np.array_equal(a.order, b.order) and np.array_equal(a.extra, b.extra)
