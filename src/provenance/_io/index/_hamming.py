"""The exact Hamming index: :class:`HammingIndex` (decision 7; see :mod:`provenance._io.index`).

Holds the rows, their ids, the bands (:mod:`provenance._io.index._bands`) and an
unindexed tail; answers by the bands or by the scan (:mod:`provenance._io.index._scan`),
whichever costs less; saves to and maps from one file (:mod:`provenance._io.index._file`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from provenance._io.atomic import write_atomic_chunks
from provenance._io.index._bands import _Band, _build_bands, _probe
from provenance._io.index._file import _deserialize, _serialize
from provenance._io.index._scan import (
    Ids,
    Words,
    _as_words,
    _check_limits,
    _ids_for,
    _scan,
    _scan_batch,
    _top_k,
)
from provenance.errors import CorruptFile

# Below this many rows a scan takes well under a millisecond: no bands.
_MIN_INDEXED_ROWS = 1 << 14
# Tail rows (added after the last build) allowed before the bands are rebuilt.
_TAIL_FRACTION = 0.1
_MIN_TAIL = 1 << 14


@dataclass(frozen=True, slots=True)
class Neighbor:
    """One row found by a query.

    Attributes:
        row_id: The id stored with the row.
        distance: Hamming distance to the query, in bits.
    """

    row_id: int
    distance: int


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
