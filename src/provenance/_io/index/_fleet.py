"""Duplicate search at fleet scale: an approximate first stage over every row (issue 16).

:class:`FleetIndex` answers "which assets have a row within ``r`` bits of any of
these query hashes" for inventories of millions of assets (22 rows each), where
the exact :class:`~provenance.HammingIndex` no longer fits a process (10M
assets are 220M rows: 7 GB of hashes, 10 GB more of bands) nor answers in time
(a radius of 20% of the bits makes exact multi-index hashing probe ~2% of rows).

1. **Candidates** come from a few hash *tables* per segment of rows (bit-sampling
   LSH with a probe radius, Indyk & Motwani 1998; the multi-probe of Lv et al.
   2007): each table keys a row by ``key_bits`` chosen bits, and a query probes
   every key within ``probe_radius`` bits of its own. A row within ``r`` bits of
   the query is found when, on some table, it differs in at most ``probe_radius``
   of that table's bits. That is not guaranteed (this stage may miss a match),
   so the bits are the caller's most robust ones (``bit_order``: for a DCT hash,
   the lowest frequencies) and only balanced ones (set in 25-75% of the rows)
   key a table, which keeps the buckets even on real, skewed hashes.
   A table also keeps the next :data:`~._tables.EXTRA_BITS` bits of each row's
   hash (one byte a row, in bucket order): a row in a bucket ``L`` bits from the
   query's key is a candidate only if it differs in at most ``5 - L`` of them
   (:mod:`._probe`), which drops most of an unrelated query's rows before any hash
   is read and no copy the probes alone find (measured on the real copies).
2. **Check**: every candidate row is compared in full (``np.bitwise_count``) with
   the query hash whose probe found it. An asset with a row within ``r`` is then
   compared row by row with every query hash, so its distance and best row are
   those an exact search gives.

Memory per row is 5 bytes per table (the bucket order, the extra bits); each segment adds its
bucket offsets (4 bytes per key) and 24 bytes per *run* (rows of one asset with
consecutive ids, as a store writes them: one run per asset), so row ids and
assets cost nothing per row. The hashes themselves are kept in memory or, with
``hash_dir``, written to a file there and memory-mapped: file-backed pages the
kernel can drop and read back, not the process's own memory, read only at
candidate rows. Each index writes its own file (processes do not share one yet).

Refresh: :meth:`FleetIndex.extend` takes :class:`RowChunk` batches from any store
(ids ascending; rows at or below :attr:`FleetIndex.last_row_id` are skipped).
New rows are scanned exactly until there are ``segment_rows`` of them; they then
become a segment with its own tables, and segments of similar size are merged
(sizes stay geometric: O(log N) segments, each row rebuilt O(log N) times). One
``extend`` of every row (a cold build) makes one segment; its keys are computed
chunk by chunk as the rows arrive, the bits chosen from the first chunk.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from provenance._io.index._probe import near_assets
from provenance._io.index._scan import Ids, Words, _as_words
from provenance._io.index._sort import _keys_into, _PackedKeys, _sealed_tables, _tables
from provenance._io.index._tables import (
    _give_back_freed_memory,
    _mapped,
    _nearest,
    _run_starts,
    _Segment,
    _segment,
    _Table,
    _with_tables,
    balanced_positions,
    dct_bit_order,
    extra_bits,
)

I64 = npt.NDArray[np.int64]

# Bits a table keys by, at most: its offsets take 4 bytes per key (64 MiB at 24).
_MAX_KEY_BITS = 24
# A first chunk of a tail this large (a bulk feed) has its keys computed as rows arrive.
_EARLY_KEY_ROWS = 1 << 16


@dataclass(frozen=True, slots=True)
class RowChunk:
    """Rows as a store hands them to :meth:`FleetIndex.extend`.

    Attributes:
        row_ids: ``(n,)`` ascending row keys (the store's primary key).
        assets: ``(n,)`` the asset key of each row.
        words: ``(n, W)`` ``uint64`` hashes.
    """

    row_ids: Ids
    assets: Ids
    words: Words


@dataclass(frozen=True, slots=True)
class AssetMatch:
    """One asset found by :meth:`FleetIndex.lookup`.

    Attributes:
        asset: The asset key.
        row_id: Its row nearest to any query hash (the first such row on ties).
        distance: That distance in bits.
    """

    asset: int
    row_id: int
    distance: int


class FleetIndex:
    """Approximate-then-exact search over millions of assets; see the module docstring.

    Args:
        words_per_hash: ``W``: 64-bit words per hash.
        tables: Hash tables per segment (4 bytes per row each).
        probe_radius: Key bits a probe may differ in (``1 + k + k(k-1)/2`` probes at 2).
        bit_order: Bit positions, most robust first (see :func:`bit_positions`);
            default: in hash order. Unbalanced bits are skipped.
        segment_rows: New rows scanned exactly before they get tables.
        hash_dir: Keep the hashes of each segment in a file here, memory-mapped.
        key_bits: Bits per table key; default ``log2(rows) - 3`` of each segment
            (about eight rows a bucket), at most 24.

    Raises:
        ValueError: A parameter out of range.
    """

    __slots__ = (
        "_bit_order",
        "_expected",
        "_hash_dir",
        "_key_bits",
        "_last",
        "_pending",
        "_probe_radius",
        "_segment_rows",
        "_segments",
        "_serial",
        "_tables",
        "_tail_cache",
        "_tail_keys",
        "_tail_positions",
        "_tail_rows",
        "_tail_runs",
        "_tail_words",
        "_words_per_hash",
    )

    def __init__(
        self,
        *,
        words_per_hash: int,
        tables: int = 3,
        probe_radius: int = 2,
        bit_order: Sequence[int] | None = None,
        segment_rows: int = 1 << 16,
        hash_dir: str | os.PathLike[str] | None = None,
        key_bits: int | None = None,
    ) -> None:
        if words_per_hash < 1 or tables < 1 or probe_radius < 0 or segment_rows < 1:
            raise ValueError("words_per_hash, tables and segment_rows must be >= 1, radius >= 0")
        if key_bits is not None and not 1 <= key_bits <= _MAX_KEY_BITS:
            raise ValueError(f"key_bits must be 1 to {_MAX_KEY_BITS}")
        bits = 64 * words_per_hash
        order = list(range(bits)) if bit_order is None else [int(b) for b in bit_order]
        if len(set(order)) != len(order) or any(not 0 <= b < bits for b in order):
            raise ValueError(f"bit_order must list distinct positions below {bits}")
        self._words_per_hash = words_per_hash
        self._tables = tables
        self._probe_radius = probe_radius
        self._bit_order = order
        self._segment_rows = segment_rows
        self._key_bits = key_bits
        self._hash_dir = None if hash_dir is None else Path(hash_dir)
        self._segments: list[_Segment] = []
        self._last = 0
        self._serial = 0
        self._pending: Path | None = None
        self._expected = 0
        self._reset_tail()

    @staticmethod
    def dct_bit_order(side: int) -> list[int]:
        """Bits of a ``side`` x ``side`` block of DCT signs, lowest frequencies first.

        The ``bit_order`` for :mod:`provenance`'s default perceptual scheme is
        ``FleetIndex.dct_bit_order(16)`` (bit ``16 u + v`` is coefficient ``(u, v)``).
        """
        return dct_bit_order(side)

    def close(self) -> None:
        """Delete the hash files this index wrote in ``hash_dir``; it is empty afterwards."""
        for segment in self._segments:
            if segment.file is not None:
                segment.file.unlink(missing_ok=True)
        if self._pending is not None:
            self._pending.unlink(missing_ok=True)
        self._segments = []
        self._last = 0
        self._reset_tail()

    def __enter__(self) -> FleetIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _reset_tail(self) -> None:
        self._tail_runs: list[tuple[I64, I64, I64]] = []
        self._tail_words: list[Words] = []
        self._tail_rows = 0
        self._tail_cache: _Segment | None = None
        self._pending = None
        # Keys computed as rows arrive (a large first chunk chose the bits): each
        # table's sort items at the widest width; cut to the segment's at sealing.
        self._tail_keys: list[_PackedKeys] = []
        self._tail_positions: list[npt.NDArray[np.intp]] | None = None

    # --- shape ----------------------------------------------------------------------

    def __len__(self) -> int:
        return sum(s.rows for s in self._segments) + self._tail_rows

    def __repr__(self) -> str:
        return (
            f"FleetIndex({len(self)} rows, {len(self._segments)} segments, "
            f"{self._tail_rows} tail, {self._tables} tables)"
        )

    @property
    def words_per_hash(self) -> int:
        """``W``: 64-bit words per hash."""
        return self._words_per_hash

    @property
    def last_row_id(self) -> int:
        """The largest row id held (0 when empty): ask the store for rows above it."""
        return self._last

    @property
    def tail(self) -> int:
        """Rows not yet in a segment (scanned exactly)."""
        return self._tail_rows

    @property
    def segments(self) -> int:
        """Segments with tables."""
        return len(self._segments)

    @property
    def table_bytes(self) -> int:
        """Bytes of the tables and runs (private to the process)."""
        total = 0
        for s in self._segments:
            total += s.run_starts.nbytes + s.run_ids.nbytes + s.run_assets.nbytes
            total += sum(t.order.nbytes + t.offsets.nbytes for t in s.tables)
            total += sum(0 if t.extra is None else t.extra.nbytes for t in s.tables)
        return total

    @property
    def hash_bytes(self) -> int:
        """Bytes of the hashes (memory-mapped with ``hash_dir``)."""
        return len(self) * self._words_per_hash * 8

    # --- feeding ----------------------------------------------------------------------

    def extend(self, chunks: Iterable[RowChunk], *, expected_rows: int = 0) -> int:
        """Add rows from a store, in row-id order; returns how many were new.

        The hashes of a chunk are kept as given (not copied) until they join a
        segment: do not change them afterwards. Rows whose id is not above
        :attr:`last_row_id` are skipped, so a chunk fed twice is harmless.

        Args:
            chunks: The rows, in batches.
            expected_rows: About how many rows this call adds (a cold build from
                a store: its largest row key). With it, the keys of a bulk feed
                are written where the tables are sorted, with no copy at the
                end; a wrong figure costs a copy (too low) or address space only.

        Raises:
            ValueError: A chunk's shapes disagree, its ids are not ascending, or
                its hashes have another word count.
        """
        added = 0
        self._expected = max(0, expected_rows)
        for chunk in chunks:
            ids = np.asarray(chunk.row_ids, dtype=np.int64).reshape(-1)
            assets = np.asarray(chunk.assets, dtype=np.int64).reshape(-1)
            words = _as_words(chunk.words, "words")
            if words.shape != (ids.shape[0], self._words_per_hash) or assets.shape != ids.shape:
                raise ValueError(
                    f"a chunk of {ids.shape[0]} ids has {assets.shape[0]} assets and "
                    f"hashes of shape {words.shape} (want W = {self._words_per_hash})"
                )
            if ids.size > 1 and bool(np.any(np.diff(ids) <= 0)):
                raise ValueError("row ids must be ascending within a chunk")
            new = ids > self._last
            if not new.any():
                continue
            if not new.all():
                ids, assets, words = ids[new], assets[new], words[new]
            self._append_tail(ids, assets, words)
            self._last = int(ids[-1])
            added += ids.shape[0]
        if self._tail_rows >= self._segment_rows:
            self._seal()
        return added

    def _append_tail(self, ids: I64, assets: I64, words: Words) -> None:
        n = words.shape[0]
        if self._tail_rows == 0 and n >= _EARLY_KEY_ROWS:
            # A bulk feed (a cold build): the bits are chosen from this chunk and
            # every chunk is keyed as it arrives, while the store reads the next
            # (inventory._pages), instead of in one pass over the hashes at sealing.
            widest = self._key_bits_for(1 << 40)
            widest += extra_bits(widest, len(self._bit_order) // self._tables)
            self._tail_positions = balanced_positions(
                words[:: max(1, n // 16384)], self._bit_order, self._tables, widest
            )
        if self._tail_positions is not None:
            if not self._tail_keys:
                size = max(self._expected, 2 * n)
                self._tail_keys = [_PackedKeys(size, least=n) for _ in self._tail_positions]
            _keys_into(words, self._tail_positions, self._words_per_hash, self._tail_keys)
        starts = _run_starts(ids, assets)
        self._tail_runs.append((starts + self._tail_rows, ids[starts], assets[starts]))
        if self._hash_dir is None:
            self._tail_words.append(words)
        else:
            if self._pending is None:
                self._pending = self._new_file()
            with self._pending.open("ab") as handle:
                np.ascontiguousarray(words, dtype="<u8").tofile(handle)
        self._tail_rows += ids.shape[0]
        self._tail_cache = None

    def _new_file(self) -> Path:
        assert self._hash_dir is not None  # noqa: S101 - only called with a hash_dir
        self._serial += 1
        file = self._hash_dir / f"fleet-{os.getpid()}-{id(self):x}-{self._serial}.u64"
        file.touch()
        return file

    def refresh(
        self,
        source: Callable[[int], Iterable[RowChunk]],
        *,
        now: float,
        checked_at: float,
        max_age_s: float,
    ) -> tuple[int, float]:
        """Ask ``source`` for the rows above :attr:`last_row_id`, at most every ``max_age_s``.

        Args:
            source: Given the last row id held, yields the rows above it.
            now: The caller's clock (seconds).
            checked_at: When the last refresh asked (``-inf`` before the first).
            max_age_s: Staleness bound: rows another process wrote are found at
                most this late (plus the time the refresh takes).

        Returns:
            Rows added, and the new ``checked_at``.
        """
        if now - checked_at < max_age_s:
            return 0, checked_at
        return self.extend(source(self._last)), now

    def _seal(self) -> None:
        """Turn the tail into a segment, then merge segments of similar size."""
        tail = self._tail_segment()
        tables = self._early_tables(tail.rows)
        self._reset_tail()
        if tables is None:
            tables = self._tables_for(tail.words)
        self._segments.append(_with_tables(tail, tables))
        while len(self._segments) > 1 and 2 * self._segments[-1].rows >= self._segments[-2].rows:
            newer = self._segments.pop()
            older = self._segments.pop()
            self._segments.append(self._merge(older, newer))
        _give_back_freed_memory()

    def _merge(self, older: _Segment, newer: _Segment) -> _Segment:
        words: Words = np.concatenate([np.asarray(older.words), np.asarray(newer.words)])
        file = None
        if self._hash_dir is not None:
            file = self._new_file()
            words.astype("<u8").tofile(file)
            words = _mapped(file, words.shape[0], self._words_per_hash)
        shift = older.rows
        merged = _segment(
            words,
            np.concatenate([older.run_starts, newer.run_starts + shift]),
            np.concatenate([older.run_ids, newer.run_ids]),
            np.concatenate([older.run_assets, newer.run_assets]),
            (),
            file,
        )
        for old in (older, newer):
            if old.file is not None:
                old.file.unlink(missing_ok=True)
        return _with_tables(merged, self._tables_for(merged.words))

    def _tail_segment(self) -> _Segment:
        if self._tail_cache is None:
            if self._pending is not None:
                words = _mapped(self._pending, self._tail_rows, self._words_per_hash)
            elif len(self._tail_words) == 1:
                words = self._tail_words[0]
            else:
                words = np.concatenate(self._tail_words)
                self._tail_words = [words]
            starts, ids, assets = (
                np.concatenate(part) for part in zip(*self._tail_runs, strict=True)
            )
            self._tail_runs = [(starts, ids, assets)]
            self._tail_cache = _segment(words, starts, ids, assets, (), self._pending)
        return self._tail_cache

    def _key_bits_for(self, rows: int) -> int:
        """Bits per key of a segment of ``rows`` rows: about eight rows a bucket."""
        key_bits = self._key_bits or int(
            min(_MAX_KEY_BITS, max(8, math.floor(math.log2(max(rows, 2))) - 3))
        )
        return min(key_bits, len(self._bit_order) // self._tables)

    def _tables_for(self, words: Words) -> tuple[_Table, ...]:
        n = words.shape[0]
        sample = words[:: max(1, n // 16384)]
        key_bits = self._key_bits_for(n)
        kept = key_bits + extra_bits(key_bits, len(self._bit_order) // self._tables)
        positions = balanced_positions(sample, self._bit_order, self._tables, kept)
        # Every table's key in one pass over the hashes; then one table at a time,
        # each key array consumed by its sort (one sort buffer at a time).
        return _tables(words, positions, self._words_per_hash, key_bits)

    def _early_tables(self, rows: int) -> tuple[_Table, ...] | None:
        """The tail's tables from the keys computed as it arrived (None: none were)."""
        if self._tail_positions is None:
            return None
        parts, self._tail_keys = self._tail_keys, []
        return _sealed_tables(parts, self._tail_positions, self._key_bits_for(rows))

    # --- lookups ----------------------------------------------------------------------

    def lookup(
        self,
        words: npt.ArrayLike,
        *,
        max_distance: int,
        k: int = 5,
        probe_radius: int | None = None,
    ) -> list[AssetMatch]:
        """The ``k`` nearest assets with a row within ``max_distance`` of any query hash.

        Args:
            words: ``(Q, W)`` ``uint64``: every hash of one query (``(W,)``: one).
            max_distance: The match threshold, in bits.
            k: At most this many assets.
            probe_radius: Key bits a probe may differ in, for this lookup only
                (the tables do not depend on it); default the index's. One more
                finds more of the far copies for about seven times the probes.

        Returns:
            Assets by (distance, row id); each with its nearest row, compared in full.

        Raises:
            ValueError: Wrong word count, or a negative ``k``/``max_distance``.
        """
        qs = _as_words(words, "queries")
        if qs.shape[1] != self._words_per_hash:
            raise ValueError(f"queries have {qs.shape[1]} words, the index {self._words_per_hash}")
        if k < 0 or max_distance < 0 or (probe_radius is not None and probe_radius < 0):
            raise ValueError("k, max_distance and probe_radius must be >= 0")
        radius = self._probe_radius if probe_radius is None else probe_radius
        parts = list(self._segments)
        if self._tail_rows:
            parts.append(self._tail_segment())
        if k == 0 or not parts or qs.shape[0] == 0:
            return []
        hits = [near_assets(segment, qs, max_distance, radius) for segment in parts]
        assets = np.unique(np.concatenate(hits))
        if assets.size == 0:
            return []
        return _complete(parts, assets, qs, max_distance, k)


def _complete(parts: list[_Segment], assets: I64, qs: Words, r: int, k: int) -> list[AssetMatch]:
    """Every row of the found assets, compared in full: the exact best row of each."""
    best: dict[int, tuple[int, int]] = {}
    for segment in parts:
        rows = segment.rows_of(assets)
        if rows.size == 0:
            continue
        dist = _nearest(segment.words, rows, qs)
        keep = dist <= r
        for asset, row_id, d in zip(
            segment.assets_of(rows[keep]).tolist(),
            segment.row_ids(rows[keep]).tolist(),
            dist[keep].tolist(),
            strict=True,
        ):
            if asset not in best or (d, row_id) < best[asset]:
                best[asset] = (d, row_id)
    ranked = sorted(best.items(), key=lambda item: item[1])[:k]
    return [AssetMatch(asset, row_id, d) for asset, (d, row_id) in ranked]
