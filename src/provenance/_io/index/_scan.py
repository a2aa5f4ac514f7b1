"""Distances and the brute-force scan over packed hashes; shared checks of arrays.

Pure numpy: ``(N, W)`` ``uint64`` rows in, row numbers and distances out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from provenance._core.hamming import hamming

Words = npt.NDArray[np.uint64]
Ids = npt.NDArray[np.int64]
Segments = list[tuple[Words, int, int, int]]

# Rows scanned per step of the brute-force path: 256k rows of one word is 2 MiB
# of hashes (a few MiB of temporaries), which stays in L2/L3 and was the fastest
# chunk measured here (1M-row chunks: same speed, 16x the temporaries).
_CHUNK_ROWS = 1 << 18


def hamming_distances(words: npt.ArrayLike, query: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Bit distances between each row of ``words`` and one ``query`` hash.

    Args:
        words: ``(N, W)`` or ``(N,)`` ``uint64``.
        query: ``(W,)`` ``uint64`` (or a scalar for ``W == 1``).

    Returns:
        ``(N,)`` distances.
    """
    rows = _as_words(words, "words")
    q = _as_words(query, "query").reshape(-1)
    if q.shape[0] != rows.shape[1]:
        raise ValueError(f"query has {q.shape[0]} words, the hashes {rows.shape[1]}")
    return hamming(rows, q)


def _as_words(value: npt.ArrayLike, name: str) -> Words:
    array = np.asarray(value)
    if array.dtype != np.uint64:
        if array.dtype.kind not in "iu" or (array.size and np.min(array) < 0):
            raise ValueError(f"{name} must be uint64, got {array.dtype}")
        array = array.astype(np.uint64)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    elif array.ndim == 1:
        array = array.reshape(-1, 1) if name in ("words",) else array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(f"{name} must have shape (N, W), got {array.shape}")
    return array


def _ids_for(ids: npt.ArrayLike | None, n: int, *, start: int) -> Ids:
    if ids is None:
        return np.arange(start, start + n, dtype=np.int64)
    array = np.asarray(ids)
    if array.shape != (n,) or array.dtype.kind not in "iu":
        raise ValueError(f"ids must be {n} integers, got shape {array.shape} {array.dtype}")
    return np.array(array, dtype=np.int64, copy=True)


def _check_limits(k: int, max_distance: int | None) -> None:
    if k < 0:
        raise ValueError("k must be >= 0")
    if max_distance is not None and max_distance < 0:
        raise ValueError("max_distance must be >= 0")


def _distances(block: Words, q: Words) -> npt.NDArray[Any]:
    """Distances of a block of rows to one query, in the narrowest dtype that fits."""
    if block.shape[1] == 1:
        single: npt.NDArray[Any] = np.bitwise_count(block[:, 0] ^ q[0])
        return single
    dist: npt.NDArray[Any] = np.bitwise_count(block[:, 0] ^ q[0]).astype(np.uint16)
    for w in range(1, block.shape[1]):
        dist += np.bitwise_count(block[:, w] ^ q[w])
    return dist


def _scan(
    segments: Segments, q: Words, k: int, max_distance: int | None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Rows of each ``(array, start, stop, first row)`` within ``max_distance`` (or ``k`` best)."""
    state = _ScanState(k, max_distance)
    for words, start, stop, first in segments:
        step = max(4096, _CHUNK_ROWS // words.shape[1])  # about 2 MiB of hashes per step
        for lo in range(start, stop, step):
            hi = min(lo + step, stop)
            state.take(_distances(words[lo:hi], q), first + lo)
    return state.result()


def _scan_batch(
    segments: Segments, qs: Words, k: int, max_distance: int | None
) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
    """:func:`_scan` for several queries, sharing each chunk of rows."""
    states = [_ScanState(k, max_distance) for _ in range(qs.shape[0])]
    # Chunks small enough that a chunk stays in cache while every query passes over it.
    step = max(4096, _CHUNK_ROWS // 4)
    for words, start, stop, first in segments:
        for lo in range(start, stop, step):
            block = words[lo : min(lo + step, stop)]
            for qi, state in enumerate(states):
                state.take(_distances(block, qs[qi]), first + lo)
    for state in states:
        yield state.result()


class _ScanState:
    """The best rows so far of one scan; after ``k`` hits the cutoff tightens."""

    __slots__ = ("cutoff", "dist", "k", "rows")

    def __init__(self, k: int, max_distance: int | None) -> None:
        self.k = k
        self.cutoff = max_distance
        self.rows = np.zeros(0, np.int64)
        self.dist = np.zeros(0, np.int64)

    def take(self, dist: npt.NDArray[Any], offset: int) -> None:
        if self.cutoff is None:
            hit = _smallest(dist, self.k) if self.k < dist.shape[0] else np.arange(dist.shape[0])
        else:
            hit = np.flatnonzero(dist <= self.cutoff)
        if hit.size == 0:
            return
        rows = np.concatenate([self.rows, hit.astype(np.int64) + offset])
        dists = np.concatenate([self.dist, dist[hit].astype(np.int64)])
        if rows.size > self.k:
            top = _top_k(rows, dists, self.k)
            rows, dists = rows[top], dists[top]
        self.rows, self.dist = rows, dists
        if rows.size >= self.k:
            # Nothing farther than the current k-th best can enter any more.
            kth = int(dists.max())
            self.cutoff = kth if self.cutoff is None else min(self.cutoff, kth)

    def result(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        return self.rows, self.dist


def _smallest(dist: npt.NDArray[Any], k: int) -> npt.NDArray[np.intp]:
    """Indices of every row whose distance is within the ``k`` smallest (ties kept)."""
    cutoff = np.partition(dist, k - 1)[k - 1]
    return np.flatnonzero(dist <= cutoff)


def _top_k(
    rows: npt.NDArray[np.int64], dist: npt.NDArray[np.int64], k: int
) -> npt.NDArray[np.intp]:
    """Positions of the ``k`` best (distance, row) pairs, in that order."""
    order = np.lexsort((rows, dist))
    return order[:k]
