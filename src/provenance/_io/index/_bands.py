"""Multi-index hashing: the bands, their layout, their radii and the probe (decision 7).

``m`` disjoint *bands* of ``b_j`` bits are cut from the hash and, for each band,
the rows are bucketed by the band's value (a counting sort: an ``order`` array
and the bucket ``offsets``). Given per-band radii ``s_j`` with
``sum(s_j + 1) > r``, two hashes within ``r`` bits differ in at most ``s_j``
bits on some band, so probing every bucket within ``s_j`` of the query's band
values yields every true match (Norouzi, Punjani & Fleet, CVPR 2012).

Pure numpy; :class:`provenance._io.index.HammingIndex` holds the bands.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from provenance._io.index._scan import Words, _distances

MEMORY_BUDGET = 2.0
"""Index structures (bands) may take at most this many times the raw hash bytes."""

_MIN_TAIL = 1 << 14
# Cost model of the multi-index path, in units of one word read by a scan
# (about 2.7 ns here: 10M x 256-bit rows scan in ~110 ms). A probe (one bucket
# lookup) costs about 10, a candidate (gathering its row, verifying it) about
# 20 (benchmarks/index.py, 10M x 256 bits at radius 51: 27 ns and 56 ns). The
# radius given to each band is chosen to minimise the expected cost, and the
# query scans instead when even that would cost more than the scan.
_PROBE_COST = 10.0
_CANDIDATE_COST = 20.0
# Band layouts are chosen for queries at this fraction of the hash's bits (51 of
# 256, the default perceptual scheme's threshold; 13 of 64).
_DESIGN_RADIUS = 0.2
# Widest band: its offsets array takes 4 bytes per possible key (64 MiB at 24).
_MAX_BAND_BITS = 24
# Never enumerate more neighbour keys per band than this.
_MAX_PROBES_PER_BAND = 1 << 20


@dataclass(frozen=True, slots=True)
class _Band:
    """``bits`` bits of word ``word`` starting at bit ``shift``, bucketed."""

    word: int
    shift: int
    bits: int
    order: npt.NDArray[np.int32] | npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int32] | npt.NDArray[np.int64]

    def keys(self, words: Words) -> npt.NDArray[np.int64]:
        mask = np.uint64((1 << self.bits) - 1)
        keys: npt.NDArray[np.int64] = (
            (words[..., self.word] >> np.uint64(self.shift)) & mask
        ).astype(np.int64)
        return keys


def _band_plan(n: int, words_per_hash: int) -> list[tuple[int, int, int]]:
    """(word, shift, bits) of each band for ``n`` rows of ``words_per_hash`` words.

    Several layouts are costed with the query cost model at the design radius
    (:data:`_DESIGN_RADIUS` of the hash's bits) and the cheapest is kept: bands
    of ``log2(n) - 2`` bits (about four rows per bucket), and each word's 64
    bits shared evenly among 2 to 8 bands. More bands (narrower, fuller
    buckets) beat fewer, emptier ones once the memory budget allows them: at
    22M x 256-bit rows, 12 bands of 21-22 bits cost about a tenth of 8 bands of
    22 bits (fleetindex; the fixed rule switched to 8 bands past 2**24 rows).
    """
    bits = int(min(_MAX_BAND_BITS, max(8, math.floor(math.log2(max(n, 2))) - 2)))
    layouts = [[bits] * (64 // bits)]
    for per_word in range(2, 9):
        even = [64 // per_word + (1 if i < 64 % per_word else 0) for i in range(per_word)]
        if max(even) <= _MAX_BAND_BITS:
            layouts.append(even)
    radius = max(1, round(_DESIGN_RADIUS * 64 * words_per_hash))
    best_cost, best = math.inf, _fill_plan(n, words_per_hash, layouts[0])
    for widths in layouts:
        plan = _fill_plan(n, words_per_hash, widths)
        found = _radii(tuple(b for _, _, b in plan), radius, n)
        cost = found[0] if found is not None else math.inf
        if cost < best_cost:
            best_cost, best = cost, plan
    return best


def _fill_plan(n: int, words_per_hash: int, widths: list[int]) -> list[tuple[int, int, int]]:
    """Bands of ``widths`` in each word, round-robin over the words, within the budget."""
    shifts = [sum(widths[:i]) for i in range(len(widths))]
    # Bands go round-robin over the words, then down each word, while the
    # structures (4 bytes per row for order, 4 per bucket for offsets) fit.
    budget = MEMORY_BUDGET * 8 * words_per_hash * n
    plan: list[tuple[int, int, int]] = []
    used = 0
    for slot in range(len(widths)):
        for word in range(words_per_hash):
            cost = 4 * n + 4 * ((1 << widths[slot]) + 1)
            if plan and used + cost > budget:
                return plan
            plan.append((word, shifts[slot], widths[slot]))
            used += cost
    return plan


def _build_bands(words: Words, words_per_hash: int) -> tuple[_Band, ...]:
    n = words.shape[0]
    index_type = np.int32 if n < 2**31 - 1 else np.int64
    bands = []
    for word, shift, bits in _band_plan(n, words_per_hash):
        mask = np.uint64((1 << bits) - 1)
        keys = ((words[:, word] >> np.uint64(shift)) & mask).astype(np.uint32)
        counts = np.bincount(keys, minlength=1 << bits)
        offsets = np.zeros((1 << bits) + 1, dtype=index_type)
        np.cumsum(counts, out=offsets[1:])
        order = _bucket_order(keys, index_type)
        bands.append(_Band(word, shift, bits, order, offsets))
    return tuple(bands)


def _bucket_order(
    keys: npt.NDArray[np.uint32], index_type: type[np.int32] | type[np.int64]
) -> npt.NDArray[np.int32] | npt.NDArray[np.int64]:
    """Row numbers ordered by key, rows of one key in row order (a stable argsort).

    Sorting ``key << 32 | row`` as one ``uint64`` array is the same order and
    was about ten times faster here than ``np.argsort(kind="stable")`` (numpy's
    vectorised sort of 64-bit integers: 0.27 s against 2.8 s for 4M keys).
    """
    n = keys.shape[0]
    if n >= 1 << 32:
        order: npt.NDArray[Any] = np.argsort(keys, kind="stable")
    else:
        order = keys.astype(np.uint64) << np.uint64(32)
        order |= np.arange(n, dtype=np.uint64)
        order.sort()
        order &= np.uint64(0xFFFFFFFF)
    if index_type is np.int32:
        return order.astype(np.int32)
    return order.astype(np.int64)


@functools.lru_cache(maxsize=64)
def _masks(bits: int, radius: int) -> npt.NDArray[np.int64]:
    """Every ``bits``-bit mask with at most ``radius`` bits set, by popcount."""
    levels = [np.zeros(1, dtype=np.int64)]
    single = np.int64(1) << np.arange(bits, dtype=np.int64)
    for level in range(1, min(radius, bits) + 1):
        prev = levels[-1]
        grown = (prev[:, None] | single[None, :]).reshape(-1)
        grown = np.unique(grown[np.bitwise_count(grown) == level])
        levels.append(grown)
    out = np.concatenate(levels)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=4096)
def _probe_count(bits: int, radius: int) -> int:
    return sum(math.comb(bits, i) for i in range(min(radius, bits) + 1)) if radius >= 0 else 0


@functools.lru_cache(maxsize=256)
def _radii(widths: tuple[int, ...], r: int, rows: int) -> tuple[float, tuple[int, ...]] | None:
    """Cheapest per-band radii that still find every match within ``r``, and their cost.

    Any radii ``s_j`` (``-1``: band skipped) with ``sum(s_j + 1) > r`` are exact:
    a hash that differed in more than ``s_j`` bits on every band would differ in
    more than ``r`` bits in all. Among those, this picks the radii of least
    expected cost (probes plus uniform-data candidates, ``rows / 2**bits`` per
    probe) by dynamic programming over the bands.
    """
    need = r + 1
    best: dict[int, tuple[float, tuple[int, ...]]] = {0: (0.0, ())}
    for bits in widths:
        per_probe = _PROBE_COST + _CANDIDATE_COST * rows / (1 << bits)
        nxt: dict[int, tuple[float, tuple[int, ...]]] = {}
        for got, (cost, radii) in best.items():
            for radius in range(-1, bits + 1):
                probes = _probe_count(bits, radius)
                if probes > _MAX_PROBES_PER_BAND:
                    break
                reach = min(need, got + radius + 1)
                total = cost + probes * per_probe
                if reach not in nxt or total < nxt[reach][0]:
                    nxt[reach] = (total, (*radii, radius))
                if reach == need:
                    break
        best = nxt
    return best.get(need)


def _probe(
    bands: tuple[_Band, ...], words: Words, indexed: int, q: Words, r: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """Exact matches within ``r`` among the indexed rows, or None if a scan is cheaper."""
    plan = _radii(tuple(b.bits for b in bands), r, indexed)
    budget = float(indexed * words.shape[1])  # what the scan costs
    if plan is None or plan[0] > budget:
        return None
    radii = plan[1]
    probes = sum(_probe_count(b.bits, rad) for b, rad in zip(bands, radii, strict=True))
    pieces: list[npt.NDArray[Any]] = []
    total = 0
    for band, radius in zip(bands, radii, strict=True):
        if radius < 0:
            continue
        key = int(band.keys(q.reshape(1, -1))[0])
        keys = _masks(band.bits, radius) ^ key
        lo = band.offsets[keys]
        hi = band.offsets[keys + 1]
        size = (hi - lo).astype(np.int64)
        nonempty = size > 0
        lo, size = lo[nonempty].astype(np.int64), size[nonempty]
        count = int(size.sum())
        total += count
        if probes * _PROBE_COST + total * _CANDIDATE_COST > budget:
            return None  # skewed buckets: more candidates than expected
        if count == 0:
            continue
        # Concatenate the ranges lo[i]..lo[i]+size[i] without a Python loop.
        starts = np.cumsum(size) - size
        positions = np.repeat(lo - starts, size) + np.arange(count, dtype=np.int64)
        pieces.append(band.order[positions])
    if not pieces:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # Verify every candidate (duplicates too: a row found by two bands), then
    # deduplicate the few hits by sorting; np.unique over all candidates was
    # ten times slower than the verification itself (numpy 2.4's hash unique).
    rows = np.concatenate(pieces).astype(np.int64)
    # np.take along axis 0 copies whole rows; words[rows] on a 2-D array was
    # four times slower (29 ms vs 6 ms for 200k candidates of 10M x 256 bits).
    dist = _distances(np.take(words, rows, axis=0), q)
    keep = np.flatnonzero(dist <= r)
    rows = rows[keep]
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    first = np.ones(rows.shape[0], dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    return rows[first], dist[keep][order][first].astype(np.int64)
