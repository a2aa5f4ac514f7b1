"""Hamming search over packed perceptual hashes (DESIGN.md decision 7).

A :class:`HammingIndex` holds ``N`` hashes of ``W`` 64-bit words each, as one
contiguous ``(N, W)`` ``uint64`` array, with an ``int64`` id per row. It answers
"which rows lie within ``r`` bits of this hash, nearest first" exactly, in one
of two ways chosen per query:

* **Brute force**: XOR and ``np.bitwise_count`` over the whole array, in chunks
  of :data:`_CHUNK_ROWS` rows so memory stays bounded; about 18 ms per query
  over 10M 64-bit hashes here (``benchmarks/index.py``).
* **Multi-index hashing** (Norouzi, Punjani & Fleet, CVPR 2012): ``m`` disjoint
  *bands* of ``b_j`` bits are cut from the hash and, for each band, the rows are
  bucketed by the band's value (a counting sort: an ``order`` array and the
  bucket ``offsets``). Given per-band radii ``s_j`` with ``sum(s_j + 1) > r``,
  two hashes within ``r`` bits differ in at most ``s_j`` bits on some band
  (pigeonhole: else they would differ in at least ``sum(s_j + 1)`` bits). So
  probing every bucket within ``s_j`` of the query's band values yields every
  true match; the candidates are then verified with the full distance. The
  radii are chosen per ``(bands, r)`` by a small dynamic programme minimising
  the expected probes plus candidates (:func:`_radii`). Results are the same as
  brute force; when the expected or actual work would cost more than a scan (a
  large radius), the query falls back to the scan.

Bands are ``b ~ log2(N) - 2`` bits (about four rows per bucket), never span a
word, and share a word's 64 bits out evenly when that widens them by at most
one bit (21 + 21 + 22 at 10M rows). Their number is capped so that the index
structures stay within :data:`MEMORY_BUDGET` times the raw hashes (4 bytes per
row per band for ``order`` plus 4 bytes per bucket for ``offsets``).

Rows added after the bands were built go to an unindexed *tail* that is scanned;
the bands are rebuilt once the tail passes :data:`_TAIL_FRACTION` of the rows. On
a memory-mapped index the tail is an array of its own, so the mapped hashes are
not copied into private memory until that rebuild.

:meth:`HammingIndex.save` writes one file (a small JSON header and the arrays,
64-byte aligned) and :meth:`HammingIndex.load` memory-maps it, so loading costs
no more than reading the header.

Pure apart from :meth:`~HammingIndex.save`/:meth:`~HammingIndex.load`: numpy in,
numpy and :class:`Neighbor` values out. It knows nothing of images or schemes.
"""

from __future__ import annotations

import functools
import json
import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from provenance._core.hamming import hamming
from provenance._io.atomic import write_atomic_chunks
from provenance.errors import CorruptFile, ProvenanceError

__all__ = ["MEMORY_BUDGET", "HammingIndex", "Neighbor", "hamming_distances"]

Words = npt.NDArray[np.uint64]
Ids = npt.NDArray[np.int64]

MEMORY_BUDGET = 2.0
"""Index structures (bands) may take at most this many times the raw hash bytes."""

# Rows scanned per step of the brute-force path: 256k rows of one word is 2 MiB
# of hashes (a few MiB of temporaries), which stays in L2/L3 and was the fastest
# chunk measured here (1M-row chunks: same speed, 16x the temporaries).
_CHUNK_ROWS = 1 << 18
# Below this many rows a scan takes well under a millisecond: no bands.
_MIN_INDEXED_ROWS = 1 << 14
# Tail rows (added after the last build) allowed before the bands are rebuilt.
_TAIL_FRACTION = 0.1
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

_MAGIC = b"PROVHIX1"
_FORMAT_VERSION = 1
_ALIGN = 64


@dataclass(frozen=True, slots=True)
class Neighbor:
    """One row found by a query.

    Attributes:
        row_id: The id stored with the row.
        distance: Hamming distance to the query, in bits.
    """

    row_id: int
    distance: int


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


class HammingIndex:
    """Exact Hamming search over packed ``uint64`` hashes; see the module docstring.

    Args:
        words: ``(N, W)`` ``uint64`` hashes (``(N,)`` means ``W == 1``).
        ids: ``(N,)`` ``int64`` ids returned by queries; default ``0..N-1``.
        multi_index: Build bands (``True``), never (``False``) or when there
            are at least 16,384 rows (``None``).
        words_per_hash: ``W`` for an empty index.

    Raises:
        ValueError: Shapes or dtypes do not fit.
    """

    __slots__ = (
        "_bands",
        "_ids",
        "_indexed",
        "_more",
        "_more_ids",
        "_more_n",
        "_multi_index",
        "_n",
        "_words",
    )

    def __init__(
        self,
        words: npt.ArrayLike | None = None,
        ids: npt.ArrayLike | None = None,
        *,
        multi_index: bool | None = None,
        words_per_hash: int | None = None,
    ) -> None:
        if words is None:
            if words_per_hash is None or words_per_hash < 1:
                raise ValueError("an empty index needs words_per_hash >= 1")
            rows: Words = np.zeros((0, words_per_hash), dtype=np.uint64)
        else:
            rows = np.array(_as_words(words, "words"), dtype=np.uint64, order="C", copy=True)
            if words_per_hash is not None and rows.shape[1] != words_per_hash:
                raise ValueError(f"hashes have {rows.shape[1]} words, not {words_per_hash}")
        self._words: Words = rows
        self._n = rows.shape[0]
        self._ids: Ids = _ids_for(ids, self._n, start=0)
        self._init_more()
        self._multi_index = multi_index
        self._bands: tuple[_Band, ...] = ()
        self._indexed = 0
        self._maybe_build()

    # --- shape ----------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._n)

    def __repr__(self) -> str:
        return (
            f"HammingIndex({self._n} rows x {self.words_per_hash} words, "
            f"{len(self._bands)} bands, {self._n - self._indexed} tail)"
        )

    @property
    def words_per_hash(self) -> int:
        """``W``: 64-bit words per hash."""
        return int(self._words.shape[1])

    @property
    def words(self) -> Words:
        """The ``(N, W)`` hashes (read-only)."""
        view = self._words[: self._n - self._more_n]
        if self._more_n:
            view = np.concatenate([view, self._more[: self._more_n]])
        view.flags.writeable = False
        return view

    @property
    def ids(self) -> Ids:
        """The ``(N,)`` row ids (read-only)."""
        view = self._ids[: self._n - self._more_n]
        if self._more_n:
            view = np.concatenate([view, self._more_ids[: self._more_n]])
        view.flags.writeable = False
        return view

    @property
    def bands(self) -> int:
        """Number of multi-index bands (0: brute force only)."""
        return len(self._bands)

    @property
    def tail(self) -> int:
        """Rows added since the bands were last built (scanned, not bucketed)."""
        return int(self._n - self._indexed) if self._bands else int(self._n)

    @property
    def raw_bytes(self) -> int:
        """Bytes of the hashes themselves (``N * W * 8``)."""
        return int(self._n) * self.words_per_hash * 8

    @property
    def index_bytes(self) -> int:
        """Bytes of the band structures on top of the hashes and ids."""
        return sum(b.order.nbytes + b.offsets.nbytes for b in self._bands)

    # --- building ---------------------------------------------------------------------

    def add(self, words: npt.ArrayLike, ids: npt.ArrayLike | None = None) -> None:
        """Append hashes (and their ids; default: the next row numbers).

        Raises:
            ValueError: The word count differs from the index's.
        """
        rows = _as_words(words, "words")
        if rows.shape[1] != self.words_per_hash:
            raise ValueError(f"hashes have {rows.shape[1]} words, not {self.words_per_hash}")
        new_ids = _ids_for(ids, rows.shape[0], start=self._n)
        need = self._n + rows.shape[0]
        if self._more_n or (self._bands and not self._words.flags.writeable):
            # A mapped index (load()) keeps its mapped rows and takes the new ones
            # in a separate tail: copying the mapped hashes would turn pages that
            # processes share through the page cache into private memory.
            self._append_more(rows, new_ids)
        elif need > self._words.shape[0] or not self._words.flags.writeable:
            capacity = max(need, int(self._words.shape[0] * 1.5) + 1024)
            grown = np.empty((capacity, self.words_per_hash), dtype=np.uint64)
            grown[: self._n] = self._words[: self._n]
            grown_ids = np.empty(capacity, dtype=np.int64)
            grown_ids[: self._n] = self._ids[: self._n]
            self._words, self._ids = grown, grown_ids
            self._words[self._n : need] = rows
            self._ids[self._n : need] = new_ids
        else:
            self._words[self._n : need] = rows
            self._ids[self._n : need] = new_ids
        self._n = need
        self._maybe_build()

    def _init_more(self) -> None:
        self._more: Words = np.zeros((0, self._words.shape[1]), dtype=np.uint64)
        self._more_ids: Ids = np.zeros(0, dtype=np.int64)
        self._more_n = 0

    def _append_more(self, rows: Words, ids: Ids) -> None:
        need = self._more_n + rows.shape[0]
        if need > self._more.shape[0]:
            capacity = max(need, int(self._more.shape[0] * 1.5) + 1024)
            grown = np.empty((capacity, self.words_per_hash), dtype=np.uint64)
            grown[: self._more_n] = self._more[: self._more_n]
            grown_ids = np.empty(capacity, dtype=np.int64)
            grown_ids[: self._more_n] = self._more_ids[: self._more_n]
            self._more, self._more_ids = grown, grown_ids
        self._more[self._more_n : need] = rows
        self._more_ids[self._more_n : need] = ids
        self._more_n = need

    def _consolidate(self) -> None:
        """Fold the separate tail into one in-memory array (before the bands are rebuilt)."""
        if not self._more_n:
            return
        base = self._n - self._more_n
        self._words = np.concatenate([self._words[:base], self._more[: self._more_n]])
        self._ids = np.concatenate([self._ids[:base], self._more_ids[: self._more_n]])
        self._init_more()

    def _segments(self, start: int, stop: int) -> list[tuple[Words, int, int, int]]:
        """Rows ``start..stop`` as (array, lo, hi, row number of the array's first row)."""
        base = self._n - self._more_n
        out = []
        if start < min(stop, base):
            out.append((self._words, start, min(stop, base), 0))
        if stop > base:
            out.append((self._more, max(start, base) - base, stop - base, base))
        return out

    def rebuild(self) -> None:
        """Rebuild the bands over every row now (no tail left)."""
        self._bands = ()
        self._indexed = 0
        self._maybe_build(force=True)

    def _maybe_build(self, *, force: bool = False) -> None:
        wanted = self._multi_index is True or (
            self._multi_index is None and self._n >= _MIN_INDEXED_ROWS
        )
        if not wanted or self._n == 0:
            return
        tail = self._n - self._indexed
        if not force and self._bands and tail <= max(_MIN_TAIL, _TAIL_FRACTION * self._indexed):
            return
        self._consolidate()
        self._bands = _build_bands(self._words[: self._n], self.words_per_hash)
        self._indexed = self._n

    # --- queries ----------------------------------------------------------------------

    def query(
        self, words: npt.ArrayLike, *, k: int = 10, max_distance: int | None = None
    ) -> list[Neighbor]:
        """The ``k`` nearest rows to one hash, nearest first.

        Ties are broken by row order (earlier rows first), exactly as a full
        scan would, whichever path answered.

        Args:
            words: ``(W,)`` ``uint64`` hash.
            k: At most this many rows.
            max_distance: Only rows at most this many bits away; ``None`` scans
                everything (no bands are used).

        Returns:
            Up to ``k`` neighbours, by (distance, row).

        Raises:
            ValueError: Wrong word count or a negative ``k``/``max_distance``.
        """
        q = _as_words(words, "query").reshape(-1)
        if q.shape[0] != self.words_per_hash:
            raise ValueError(f"query has {q.shape[0]} words, the index {self.words_per_hash}")
        _check_limits(k, max_distance)
        if k == 0 or self._n == 0:
            return []
        rows, dist = self._search(q, k, max_distance)
        return self._neighbors(rows, dist, k)

    def query_batch(
        self, words: npt.ArrayLike, *, k: int = 10, max_distance: int | None = None
    ) -> list[list[Neighbor]]:
        """:meth:`query` for each row of a ``(Q, W)`` array, in order.

        Without bands, the queries share each pass over the hashes (one scan for
        the whole batch instead of one per query).
        """
        qs = _as_words(words, "queries")
        if qs.shape[1] != self.words_per_hash:
            raise ValueError(f"queries have {qs.shape[1]} words, the index {self.words_per_hash}")
        _check_limits(k, max_distance)
        if k == 0 or self._n == 0:
            return [[] for _ in range(qs.shape[0])]
        if self._bands and max_distance is not None:
            return [self._neighbors(*self._search(q, k, max_distance), k) for q in qs]
        return [
            self._neighbors(rows, dist, k)
            for rows, dist in _scan_batch(self._segments(0, self._n), qs, k, max_distance)
        ]

    def _search(
        self, q: Words, k: int, max_distance: int | None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        if max_distance is not None and self._bands:
            found = _probe(self._bands, self._words, self._indexed, q, max_distance)
            if found is not None:
                rows, dist = found
                if self._indexed < self._n:
                    t_rows, t_dist = _scan(
                        self._segments(self._indexed, self._n), q, k, max_distance
                    )
                    rows = np.concatenate([rows, t_rows])
                    dist = np.concatenate([dist, t_dist])
                return rows, dist
        return _scan(self._segments(0, self._n), q, k, max_distance)

    def _neighbors(
        self, rows: npt.NDArray[np.int64], dist: npt.NDArray[np.int64], k: int
    ) -> list[Neighbor]:
        if rows.size == 0:
            return []
        top = _top_k(rows, dist, k)
        picked = rows[top]
        base = self._n - self._more_n
        ids = np.empty(picked.shape, dtype=np.int64)
        low = picked < base
        ids[low] = self._ids[picked[low]]
        ids[~low] = self._more_ids[picked[~low] - base]
        return [Neighbor(int(i), int(d)) for i, d in zip(ids, dist[top], strict=True)]

    # --- persistence ------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index to one file, atomically (see :meth:`load`).

        The tail is folded into the bands first, so the file loads complete.

        Raises:
            OSError: The file cannot be written; nothing is left behind.
        """
        if self._indexed != self._n and (self._bands or self._multi_index is True):
            self.rebuild()
        self._consolidate()
        arrays: dict[str, np.ndarray[Any, Any]] = {
            "words": self._words[: self._n],
            "ids": self._ids[: self._n],
        }
        bands = []
        for i, band in enumerate(self._bands):
            arrays[f"order{i}"] = band.order
            arrays[f"offsets{i}"] = band.offsets
            bands.append({"word": band.word, "shift": band.shift, "bits": band.bits})
        return write_atomic_chunks(path, _serialize(arrays, {"bands": bands}))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = True) -> HammingIndex:
        """Open an index written by :meth:`save`.

        Args:
            path: The file.
            mmap: Map the arrays read-only instead of reading them (instant;
                pages are read on first use). :meth:`add` keeps them mapped and
                holds the new rows apart until the bands are rebuilt.

        Raises:
            ProvenanceError: The file cannot be read.
            CorruptFile: It is not an index file, or its arrays are cut short.
        """
        file = Path(path)
        header, arrays = _deserialize(file, mmap=mmap)
        words = arrays["words"]
        ids = arrays["ids"]
        if words.ndim != 2 or ids.shape != (words.shape[0],):
            raise CorruptFile("index arrays have inconsistent shapes", path=file)
        index = cls.__new__(cls)
        index._words = words
        index._ids = ids
        index._init_more()
        index._n = int(words.shape[0])
        index._multi_index = bool(header["bands"]) or None
        bands = []
        for i, spec in enumerate(header["bands"]):
            order, offsets = arrays[f"order{i}"], arrays[f"offsets{i}"]
            if order.shape != (index._n,) or offsets.shape != ((1 << int(spec["bits"])) + 1,):
                raise CorruptFile(f"band {i} does not match the hashes", path=file)
            bands.append(
                _Band(int(spec["word"]), int(spec["shift"]), int(spec["bits"]), order, offsets)
            )
        index._bands = tuple(bands)
        index._indexed = index._n if bands else 0
        return index


# --- helpers --------------------------------------------------------------------------


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


Segments = list[tuple[Words, int, int, int]]


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


# --- file format ------------------------------------------------------------------------
#
#   magic "PROVHIX1" | u64 header length | header JSON (utf-8) | padding | arrays
#
# The header names each array's dtype, shape and byte offset; arrays start on a
# 64-byte boundary so they can be memory-mapped in place.


def _serialize(
    arrays: dict[str, np.ndarray[Any, Any]], meta: dict[str, Any]
) -> Iterator[bytes | memoryview]:
    specs: dict[str, dict[str, Any]] = {}
    # Offsets are relative to the start of the array area, which is aligned too.
    offset = 0
    for name, array in arrays.items():
        offset = -(-offset // _ALIGN) * _ALIGN
        specs[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": offset}
        offset += array.nbytes
    header = json.dumps(
        {"version": _FORMAT_VERSION, **meta, "arrays": specs}, separators=(",", ":")
    ).encode("utf-8")
    head = _MAGIC + struct.pack("<Q", len(header)) + header
    yield head + b"\0" * (-len(head) % _ALIGN)
    written = 0
    for name, array in arrays.items():
        pad = specs[name]["offset"] - written
        if pad:
            yield b"\0" * pad
        data = np.ascontiguousarray(array)
        yield memoryview(data.view(np.uint8).reshape(-1).data)
        written = specs[name]["offset"] + array.nbytes


def _deserialize(
    file: Path, *, mmap: bool
) -> tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]]]:
    try:
        size = file.stat().st_size
        with file.open("rb") as handle:
            magic = handle.read(len(_MAGIC))
            if magic != _MAGIC:
                raise CorruptFile("not a provenance Hamming index file", path=file)
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > size:
                raise CorruptFile("index header is cut short", path=file)
            header = json.loads(handle.read(length).decode("utf-8"))
    except OSError as exc:
        raise ProvenanceError(f"cannot read index: {exc.strerror}", path=file) from None
    except (ValueError, struct.error) as exc:
        raise CorruptFile(f"index header is unreadable: {exc}", path=file) from None
    if not isinstance(header, dict) or header.get("version") != _FORMAT_VERSION:
        raise CorruptFile("unsupported index file version", path=file)
    base = len(_MAGIC) + 8 + length
    base += -base % _ALIGN
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    try:
        for name, spec in header["arrays"].items():
            dtype = np.dtype(spec["dtype"])
            shape = tuple(int(x) for x in spec["shape"])
            start = base + int(spec["offset"])
            nbytes = dtype.itemsize * math.prod(shape)
            if start + nbytes > size:
                raise CorruptFile(f"index array {name} is cut short", path=file)
            if nbytes == 0:
                arrays[name] = np.zeros(shape, dtype=dtype)
            elif mmap:
                arrays[name] = np.memmap(file, dtype=dtype, mode="r", offset=start, shape=shape)
            else:
                arrays[name] = np.fromfile(
                    file, dtype=dtype, count=math.prod(shape), offset=start
                ).reshape(shape)
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptFile(f"index header is malformed: {exc}", path=file) from None
    return header, arrays
