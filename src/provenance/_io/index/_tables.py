"""The parts of a :class:`~provenance.FleetIndex`: segments, hash tables, keys.

A *segment* holds rows (hashes in memory or memory-mapped), their *runs* (rows
of one asset with consecutive ids: the row ids and assets cost nothing per row)
and its tables; a *table* orders the rows by a key of chosen bits, computed one
byte of the hash at a time through 256-entry lookup tables. Pure numpy, apart
from mapping a segment's hash file.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import mmap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from provenance._io.index._scan import Words

I64 = npt.NDArray[np.int64]

# Rows keyed per step when tables are built: bounds the temporaries.
_BUILD_STEP = 1 << 20
# A bit keys a table only when this share of the rows (or more) has it set, and as many not.
_BALANCE = 0.25
# Hash bits past a table's key kept for each row in bucket order (one byte a row): a
# lookup drops most candidates by them before it reads a hash (issue 16, _probe.py).
EXTRA_BITS = 8


@dataclass(frozen=True, slots=True)
class _Table:
    """Rows bucketed by ``positions`` bits (bit ``i`` of the key is ``positions[i]``)."""

    positions: npt.NDArray[np.intp]
    order: npt.NDArray[np.int32] | npt.NDArray[np.int64]
    offsets: npt.NDArray[np.int32] | npt.NDArray[np.int64]
    # Bit i of extra[j] is hash bit extra_positions[i] of row order[j] (None: not kept).
    extra_positions: npt.NDArray[np.intp] | None = None
    extra: npt.NDArray[np.uint8] | None = None


@dataclass(frozen=True, slots=True)
class _Segment:
    """Rows with their runs and tables (no tables: scanned)."""

    words: Words
    run_starts: I64  # row number where each run starts
    run_ids: I64  # its first row id (ids are consecutive within a run)
    run_assets: I64
    tables: tuple[_Table, ...]
    file: Path | None
    # Runs by asset when run_assets is not already sorted (a store that writes
    # an asset's rows later than newer assets'); None when it is.
    by_asset: I64 | None = None
    sorted_assets: I64 | None = None

    @property
    def rows(self) -> int:
        return int(self.words.shape[0])

    def row_ids(self, rows: I64) -> I64:
        run = np.searchsorted(self.run_starts, rows, side="right") - 1
        ids: I64 = self.run_ids[run] + (rows - self.run_starts[run])
        return ids

    def assets_of(self, rows: I64) -> I64:
        run = np.searchsorted(self.run_starts, rows, side="right") - 1
        assets: I64 = self.run_assets[run]
        return assets

    def rows_of(self, assets: I64) -> I64:
        """Every row number of these (sorted, distinct) assets in this segment."""
        keys = self.run_assets if self.sorted_assets is None else self.sorted_assets
        lo = np.searchsorted(keys, assets, side="left")
        size = np.searchsorted(keys, assets, side="right") - lo
        if not size.any():
            return np.zeros(0, np.int64)
        hit = _ranges(lo.astype(np.int64), size.astype(np.int64))
        if self.by_asset is not None:
            hit = self.by_asset[hit]
        last = self.run_starts.shape[0] - 1
        ends = np.where(hit < last, self.run_starts[np.minimum(hit + 1, last)], self.rows)
        starts = self.run_starts[hit]
        return _ranges(starts, ends - starts)


def bit_positions(words: Words) -> npt.NDArray[np.bool_]:
    """``(n, 64 W)`` bits of each hash, bit ``b`` being bit ``63 - b % 64`` of word ``b // 64``.

    That is the hash written out most significant bit first, the order in which
    :mod:`provenance._core.phash` packs its coefficients.
    """
    big = np.ascontiguousarray(words.astype(">u8")).view(np.uint8)
    bits: npt.NDArray[np.bool_] = np.unpackbits(big, axis=-1).astype(bool)
    return bits


def dct_bit_order(side: int) -> list[int]:
    """Bit positions of a ``side`` x ``side`` block of DCT signs, lowest frequencies first.

    For hashes whose bit ``side * u + v`` is the sign of coefficient ``(u, v)``
    (row-major, most significant first: :mod:`provenance._core.phash`'s default
    scheme, ``side`` 16), ordered by ``u + v`` then ``u``. Low frequencies change
    least under resizing, re-encoding and blur, so they key the tables first.
    """
    return sorted(range(side * side), key=lambda b: (b // side + b % side, b // side))


_KeyTables = tuple[tuple[int, npt.NDArray[np.uint32]], ...]


@functools.lru_cache(maxsize=64)
def _key_tables_cached(positions: tuple[int, ...], words_per_hash: int) -> _KeyTables:
    by_byte: dict[int, list[tuple[int, int]]] = {}
    for j, b in enumerate(positions):
        # Bit b is bit 7 - b % 8 of big-endian byte b // 8, which a little-endian
        # uint64 keeps at byte 7 - (b // 8) % 8 of its word.
        column = (b // 64) * 8 + 7 - (b // 8) % 8
        by_byte.setdefault(column, []).append((7 - b % 8, j))
    values = np.arange(256, dtype=np.uint32)
    per_byte = {}
    for column, bits in by_byte.items():
        lut = np.zeros(256, dtype=np.uint32)
        for shift, j in bits:
            lut |= ((values >> np.uint32(shift)) & np.uint32(1)) << np.uint32(j)
        per_byte[column] = lut
    # Two bytes at a time (a little-endian uint16 holds bytes 2c and 2c + 1): half
    # the lookups, each into a 256 KB table; 25% faster here than byte by byte.
    pairs = np.arange(1 << 16, dtype=np.uint32)
    out = []
    for pair in sorted({column // 2 for column in per_byte}):
        table = np.zeros(1 << 16, dtype=np.uint32)
        if 2 * pair in per_byte:
            table |= per_byte[2 * pair][pairs & np.uint32(0xFF)]
        if 2 * pair + 1 in per_byte:
            table |= per_byte[2 * pair + 1][pairs >> np.uint32(8)]
        table.flags.writeable = False
        out.append((pair, table))
    return tuple(out)


def _key_tables(positions: npt.NDArray[np.intp], words_per_hash: int) -> _KeyTables:
    """Per pair of bytes of the hash holding key bits: a table of its part of the key."""
    return _key_tables_cached(tuple(int(b) for b in positions), words_per_hash)


def _keys(words: Words, tables: _KeyTables) -> npt.NDArray[np.uint32]:
    """The table key of each row: one lookup per pair of bytes of the hash, OR-ed.

    Measured here, 1M rows of 256 bits: about 0.2 s a table, against 8 s
    unpacking every bit and gathering the key's (busy machine).
    """
    columns = np.ascontiguousarray(words, dtype=np.uint64).view(np.uint16)
    key = np.zeros(words.shape[0], dtype=np.uint32)
    for column, lut in tables:
        key |= lut[columns[:, column]]
    return key


def _ranges(starts: I64, sizes: I64) -> I64:
    """``starts[i] .. starts[i] + sizes[i]`` for every ``i``, concatenated, without a loop."""
    offsets = np.cumsum(sizes) - sizes
    out: I64 = np.repeat(starts - offsets, sizes) + np.arange(int(sizes.sum()), dtype=np.int64)
    return out


def _segment(
    words: Words, starts: I64, ids: I64, assets: I64, tables: tuple[_Table, ...], file: Path | None
) -> _Segment:
    """A segment, with its runs ordered by asset when they are not already."""
    if assets.size < 2 or bool(np.all(assets[1:] >= assets[:-1])):
        return _Segment(words, starts, ids, assets, tables, file)
    order = np.argsort(assets, kind="stable").astype(np.int64)
    return _Segment(words, starts, ids, assets, tables, file, order, assets[order])


def _run_starts(ids: I64, assets: I64) -> I64:
    """Where a run starts: a new asset, or a gap in the ids."""
    cut = np.ones(ids.shape[0], dtype=bool)
    cut[1:] = (assets[1:] != assets[:-1]) | (ids[1:] != ids[:-1] + 1)
    starts: I64 = np.flatnonzero(cut).astype(np.int64)
    return starts


def _with_tables(segment: _Segment, tables: tuple[_Table, ...]) -> _Segment:
    return dataclasses.replace(segment, tables=tables)


def _give_back_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; else nothing).

    A build frees many arrays of a few MB (each chunk's runs and keys, a feed's own
    pages) that the C allocator keeps for reuse; a verifier then holds them for its
    whole life.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc
        return None
    return trim


def _mapped(file: Path, rows: int, words_per_hash: int) -> Words:
    """The first ``rows`` hashes of ``file``, memory-mapped read-only with their page tables made.

    ``MAP_POPULATE`` maps every page at once (reading any the page cache lacks):
    about 1 s for the 7 GB of 10M assets, where a fresh mapping took a minor fault
    per page a lookup touched, for as long as pages were new: the first 100
    radius-2 lookups at 10M took 22.7 ms of CPU each instead of 5.5.
    """
    length = rows * words_per_hash * 8
    populate = getattr(mmap, "MAP_POPULATE", None)
    if length == 0 or populate is None:  # nothing to map, or not Linux
        memmap: Words = np.memmap(file, dtype="<u8", mode="r", shape=(rows, words_per_hash))
        return memmap
    with file.open("rb") as handle:
        view = mmap.mmap(
            handle.fileno(), length, flags=mmap.MAP_SHARED | populate, prot=mmap.PROT_READ
        )
    mapped: Words = np.frombuffer(view, dtype="<u8").reshape(rows, words_per_hash)
    return mapped


def _keys_of(
    words: Words, positions: list[npt.NDArray[np.intp]], words_per_hash: int
) -> list[npt.NDArray[np.uint32]]:
    """Each table's key of every row, in one pass over ``words``.

    Each step reads its rows once (a copy from a mapped file) and takes each
    pair of bytes that keys some table once, for every table it keys: 15-25%
    faster here than a pass per table (``--fleet``-like builds, 5.5M rows).
    """
    n = words.shape[0]
    users: dict[int, list[tuple[int, npt.NDArray[np.uint32]]]] = {}
    for t, p in enumerate(positions):
        for pair, lut in _key_tables(p, words_per_hash):
            users.setdefault(pair, []).append((t, lut))
    keys = [np.zeros(n, dtype=np.uint32) for _ in positions]
    for lo in range(0, n, _BUILD_STEP):
        hi = min(n, lo + _BUILD_STEP)
        columns = np.ascontiguousarray(words[lo:hi], dtype=np.uint64).view(np.uint16)
        for pair, tables in users.items():
            column = columns[:, pair]
            if len(tables) > 1:  # gathered once for every table it keys
                column = np.ascontiguousarray(column)
            for t, lut in tables:
                keys[t][lo:hi] |= lut[column]
    return keys


def balanced_positions(
    sample: Words, bit_order: list[int], tables: int, key_bits: int
) -> list[npt.NDArray[np.intp]]:
    """Each table's key bits: ``bit_order``, bits balanced in ``sample`` first.

    A bit is balanced when 25-75% of the rows have it set (nearly constant bits
    make a few huge buckets). Table ``j`` takes every ``tables``-th of the chosen
    bits from ``j``, so a narrower key is a prefix of a wider one: bit ``i`` of a
    key is the same hash bit at every width (:func:`_sealed_tables`).
    """
    share = bit_positions(np.asarray(sample)).mean(axis=0)
    balanced = [b for b in bit_order if _BALANCE <= share[b] <= 1 - _BALANCE]
    rest = [b for b in bit_order if not _BALANCE <= share[b] <= 1 - _BALANCE]
    chosen = (balanced + rest)[: key_bits * tables]
    return [np.array(chosen[j::tables], dtype=np.intp) for j in range(tables)]


def extra_bits(key_bits: int, available: int) -> int:
    """Extra bits kept past a key of ``key_bits`` when a table has ``available`` positions."""
    return max(0, min(EXTRA_BITS, available - key_bits))


def _nearest(words: Words, rows: I64, qs: Words) -> npt.NDArray[np.uint16]:
    """For each row, its least distance to any of the query hashes.

    The rows are gathered once, then each word is made a contiguous column: the
    XOR and popcount of every query hash then run over contiguous memory (half
    the time of strided columns of the gathered block, 186k rows x 3 hashes).
    """
    block = np.take(words, rows, axis=0)
    columns = [np.ascontiguousarray(block[:, w]) for w in range(block.shape[1])]
    del block
    # No query hash: no row is near (65535, past any distance of a real hash).
    near = np.full(rows.shape[0], np.iinfo(np.uint16).max, dtype=np.uint16)
    for q in qs:
        dist = np.bitwise_count(columns[0] ^ q[0]).astype(np.uint16)
        for w in range(1, len(columns)):
            dist += np.bitwise_count(columns[w] ^ q[w])
        np.minimum(near, dist, out=near)
    return near
