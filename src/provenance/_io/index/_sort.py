"""Tables from keys: the sort of ``key << 32 | row`` items, bucket offsets, extra bits.

A :class:`~provenance.FleetIndex` segment's tables (:mod:`._tables`) are built
here, either from every row's keys at once (:func:`_tables`: a merge, a sealed
tail) or, in a cold build, from sort items written as a store's pages arrive
(:class:`_PackedKeys`, :func:`_keys_into`, :func:`_sealed_tables`). Pure numpy,
apart from the anonymous memory the sort items live in.
"""

from __future__ import annotations

import concurrent.futures
import mmap

import numpy as np
import numpy.typing as npt

from provenance._io.index._bands import _bucket_order
from provenance._io.index._scan import Words
from provenance._io.index._tables import (
    _BUILD_STEP,
    _key_tables,
    _keys_of,
    _Table,
    extra_bits,
)

# Rows keyed per step as a page arrives (_keys_into): its temporaries stay in the cache.
_KEY_STEP = 1 << 16
# Items a _PackedKeys reserves at most before it has to grow (2**31 rows: 16 GiB of address).
_MAX_PACKED = 1 << 31
# Keys counted per step when bucket offsets are made (bounds np.bincount's intp copy).
_COUNT_STEP = 1 << 24


def _tables(
    words: Words,
    positions: list[npt.NDArray[np.intp]],
    words_per_hash: int,
    key_bits: int | None = None,
) -> tuple[_Table, ...]:
    """The tables keyed by each of ``positions``, their keys computed in one pass over ``words``.

    With ``key_bits``, the first ``key_bits`` positions key a table and the rest
    are its extra bits (:func:`_with_extra`).
    """
    return _tables_from_keys(_keys_of(words, positions, words_per_hash), positions, key_bits)


class _PackedKeys:
    """One table's sort items ``key << 32 | row`` written as rows arrive (a cold build).

    Each chunk's keys go straight into the array the table is sorted in, at the
    rows' final places: no per-table key array to join, widen and copy at
    sealing. ``capacity`` is the caller's estimate (a server's last row key);
    pages past it are never touched, so an estimate too high costs address
    space only; one too low grows the array (a copy).

    The array is anonymous memory of its own (:func:`_fresh`), not numpy's:
    numpy asks for huge pages, which the kernel compacts memory for on first
    touch: 4-5 s of CPU per 2 GiB here against 1.2-1.5 s in small pages, with
    the page cache full of a server's table.
    """

    __slots__ = ("packed", "used")

    def __init__(self, capacity: int, *, least: int = 1) -> None:
        size = max(1, least, min(capacity, _MAX_PACKED))
        while True:
            try:
                self.packed = _fresh(size)
                break
            except OSError:  # more address space than the system lends: reserve less
                if size <= max(1, least):
                    raise
                size = max(1, least, size // 2)
        self.used = 0

    def append(self, keys: npt.NDArray[np.uint32]) -> None:
        n = keys.shape[0]
        if self.used + n > self.packed.shape[0]:
            grown = _fresh(max(2 * self.packed.shape[0], self.used + n))
            grown[: self.used] = self.packed[: self.used]
            self.packed = grown
        out = self.packed[self.used : self.used + n]
        out[...] = keys
        out <<= np.uint64(32)
        out |= np.arange(self.used, self.used + n, dtype=np.uint64)
        self.used += n

    def take(self) -> npt.NDArray[np.uint64]:
        """The items appended, in one array (the memory past them is never touched)."""
        packed, self.packed = self.packed[: self.used], _fresh(1)
        return packed


def _fresh(count: int) -> npt.NDArray[np.uint64]:
    """``count`` uint64 in private anonymous memory mapped for them (small pages).

    Private: the process's own memory, which ``MADV_DONTNEED`` gives back
    (:func:`_shrink`); a shared anonymous map would be shared memory that keeps
    its pages until unmapped. Unmapped when the last array over it goes.
    """
    buffer = mmap.mmap(-1, count * 8, flags=mmap.MAP_PRIVATE)
    return np.frombuffer(buffer, dtype=np.uint64, count=count)


def _shrink(items: npt.NDArray[np.uint64], keep: int) -> None:
    """Give back the memory of ``items`` past its first ``keep`` bytes (kept in place)."""
    if items.flags.owndata:
        items.resize(-(-keep // 8), refcheck=False)  # realloc: shrunk in place, not copied
        return
    buffer: object = items
    while isinstance(buffer, np.ndarray):  # a view's base, down to the memory's owner
        buffer = buffer.base
    if isinstance(buffer, memoryview):
        buffer = buffer.obj
    if isinstance(buffer, mmap.mmap):
        at = items.ctypes.data - np.frombuffer(buffer, dtype=np.uint8).ctypes.data
        start = -(-(at + keep) // mmap.PAGESIZE) * mmap.PAGESIZE
        end = at + items.nbytes
        if end > start:
            buffer.madvise(mmap.MADV_DONTNEED, start, end - start)


def _keys_into(
    words: Words,
    positions: list[npt.NDArray[np.intp]],
    words_per_hash: int,
    out: list[_PackedKeys],
) -> None:
    """Each table's key of every row of ``words``, appended to ``out`` (as :func:`_keys_of`).

    In steps of ``_KEY_STEP`` rows into buffers made once (the temporaries stay
    in the cache), each pair of bytes widened to an index once for every table
    it keys: about 25% less CPU than :func:`_keys_of` on 2M-row pages here.
    """
    users: dict[int, list[tuple[int, npt.NDArray[np.uint32]]]] = {}
    for t, p in enumerate(positions):
        for pair, lut in _key_tables(p, words_per_hash):
            users.setdefault(pair, []).append((t, lut))
    n = words.shape[0]
    step = min(n, _KEY_STEP)
    index = np.empty(step, dtype=np.intp)
    part = np.empty(step, dtype=np.uint32)
    keys = [np.empty(step, dtype=np.uint32) for _ in positions]
    for lo in range(0, n, step):
        m = min(n, lo + step) - lo
        columns = np.ascontiguousarray(words[lo : lo + m], dtype=np.uint64).view(np.uint16)
        for key in keys:
            key[:m] = 0
        for pair, tables in users.items():
            np.copyto(index[:m], columns[:, pair], casting="unsafe")
            for t, lut in tables:
                np.take(lut, index[:m], out=part[:m])
                keys[t][:m] |= part[:m]
        for key, slot in zip(keys, out, strict=True):
            slot.append(key[:m])


def _sealed_tables(
    packed: list[_PackedKeys], positions: list[npt.NDArray[np.intp]], key_bits: int
) -> tuple[_Table, ...]:
    """Tables from items written at ``positions``' width, cut to ``key_bits``; two at a time.

    The :func:`extra_bits` after a table's key bits are kept as its extra bits
    (:func:`_extra_in_place` moves them below the key, so they ride in the sort).
    numpy sorts without holding the GIL, and each table is sorted in its own
    array (no extra memory), so two threads use both cores at the end of a cold
    build, when the server has nothing left to send.
    """
    items = [slot.take() for slot in packed]
    n = items[0].shape[0] if items else 0
    extra = extra_bits(key_bits, positions[0].shape[0]) if n < 2**31 - 1 else 0
    kept = key_bits + extra
    # The low bits of a key are its narrower self (balanced_positions): the rest is cut.
    keep = np.uint64((((1 << kept) - 1) << 32) | 0xFFFFFFFF)

    def table(item: npt.NDArray[np.uint64], p: npt.NDArray[np.intp]) -> _Table:
        # In the table's own thread: numpy's element-wise passes release the GIL too.
        if extra:
            _extra_in_place(item, key_bits, extra)  # cuts the bits past them as it moves
        elif kept < p.shape[0]:
            item &= keep
        return _table_of_sorted(item, p[:kept], key_bits if extra else None)

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        built = pool.map(table, items, positions)
        return tuple(built)


def _extra_in_place(items: npt.NDArray[np.uint64], key_bits: int, extra: int) -> None:
    """Items ``(.. extra, key) << 32 | row`` made ``(key << 8 | extra) << 32 | row``.

    Only the ``extra`` bits above the key are kept (the rest of a wider key is
    cut). In steps (the temporaries stay small): a table's rows then sort by
    bucket, and within it by extra bits, as :func:`_with_extra`'s do.
    """
    low = np.uint64((1 << key_bits) - 1)
    bits = np.uint64((1 << extra) - 1)
    rows = np.uint64(0xFFFFFFFF)
    shift, eight, half = np.uint64(key_bits), np.uint64(8), np.uint64(32)
    for lo in range(0, items.shape[0], _BUILD_STEP):
        part = items[lo : lo + _BUILD_STEP]
        high = part >> half
        moved = ((high & low) << eight) | ((high >> shift) & bits)
        moved <<= half
        part &= rows
        part |= moved


def _tables_from_keys(
    keys: list[npt.NDArray[np.uint32]],
    positions: list[npt.NDArray[np.intp]],
    key_bits: int | None = None,
) -> tuple[_Table, ...]:
    """The tables of these keys, one at a time; ``keys`` is emptied (each consumed by its sort).

    With ``key_bits``, bits past it are extra bits (:func:`_with_extra`); default none.
    """
    built = []
    for t, p in enumerate(positions):
        key, keys[t] = keys[t], np.zeros(0, np.uint32)
        if key_bits is not None and key_bits < p.shape[0] and key.shape[0] < 2**31 - 1:
            built.append(_with_extra(key, p, key_bits))
        else:
            if key_bits is not None and key_bits < p.shape[0]:
                key &= np.uint32((1 << key_bits) - 1)  # rows past int32: no extra bits
            built.append(_table_of(key, p[:key_bits]))
        del key
    return tuple(built)


def _with_extra(
    key: npt.NDArray[np.uint32], positions: npt.NDArray[np.intp], key_bits: int
) -> _Table:
    """:func:`_table_of` for keys whose bits past ``key_bits`` are kept per row (``extra``).

    Each key is turned into ``bucket << 8 | extra`` in place while the buckets are
    counted; the extra bits then ride in :func:`_table_of`'s sort of ``key << 32 |
    row`` and come out in bucket order with no gather (within a bucket, rows are
    by extra bits, then row). ``key`` is consumed.
    """
    n = key.shape[0]
    buckets = 1 << key_bits
    low, shift, eight = np.uint32(buckets - 1), np.uint32(key_bits), np.uint32(8)
    counts = np.zeros(buckets, dtype=np.int64)
    for lo in range(0, n, _COUNT_STEP):
        part = key[lo : lo + _COUNT_STEP]
        extra = part >> shift
        part &= low
        counts += np.bincount(part, minlength=buckets)
        part <<= eight
        part |= extra
    offsets = np.zeros(buckets + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    del counts
    packed = key.astype(np.uint64)
    key.resize(0, refcheck=False)
    packed <<= np.uint64(32)
    for lo in range(0, n, _BUILD_STEP):
        packed[lo : lo + _BUILD_STEP] |= np.arange(lo, min(n, lo + _BUILD_STEP), dtype=np.uint64)
    packed.sort()
    # Little-endian: the row is the low uint32 of each, the extra bits its fifth byte.
    order = np.ascontiguousarray(packed.view(np.uint32)[::2]).view(np.int32)
    extra_bytes = np.ascontiguousarray(packed.view(np.uint8)[4::8])
    del packed
    return _Table(positions[:key_bits], order, offsets, positions[key_bits:], extra_bytes)


def _table_of(key: npt.NDArray[np.uint32], positions: npt.NDArray[np.intp]) -> _Table:
    """The table of rows whose keys are ``key``: rows ordered by key, and the bucket offsets.

    ``key`` is consumed (do not use it afterwards).
    """
    n = key.shape[0]
    if n >= 1 << 32:
        index_type = np.int64
        buckets = 1 << positions.shape[0]
        counts = np.zeros(buckets, dtype=np.int64)
        # In steps: np.bincount copies its input to intp (8 bytes a row) first.
        for lo in range(0, n, _COUNT_STEP):
            counts += np.bincount(key[lo : lo + _COUNT_STEP], minlength=buckets)
        offsets = np.zeros(buckets + 1, dtype=index_type)
        np.cumsum(counts, out=offsets[1:])
        return _Table(positions, _bucket_order(key, index_type), offsets)
    # _bucket_order's sort of ``key << 32 | row``, with the key array freed
    # before the sort and the row numbers added in steps (no second n-row array):
    # 1.8 GB less at the peak of a 220M-row build.
    packed = key.astype(np.uint64)
    key.resize(0, refcheck=False)
    packed <<= np.uint64(32)
    for lo in range(0, n, _BUILD_STEP):
        packed[lo : lo + _BUILD_STEP] |= np.arange(lo, min(n, lo + _BUILD_STEP), dtype=np.uint64)
    return _table_of_sorted(packed, positions)


def _table_of_sorted(
    packed: npt.NDArray[np.uint64], positions: npt.NDArray[np.intp], key_bits: int | None = None
) -> _Table:
    """The table of the items ``key << 32 | row`` (fewer than 2**32 rows), sorted here in place.

    With ``key_bits``, the items are ``(key << 8 | extra) << 32 | row``
    (:func:`_extra_in_place`): the first ``key_bits`` of ``positions`` key the
    table and the rest are its extra bits, kept per row in bucket order.
    ``packed`` is consumed: the order is written over it and it is shrunk to that.
    """
    n = packed.shape[0]
    index_type = np.int32 if n < 2**31 - 1 else np.int64
    packed.sort()
    extra: npt.NDArray[np.uint8] | None = None
    shift = 0
    if key_bits is not None:
        # Little-endian: the extra bits are each item's fifth byte.
        extra = np.ascontiguousarray(packed.view(np.uint8)[4::8])
        shift = 8
    width = positions.shape[0] if key_bits is None else key_bits
    halves = packed.view(np.uint32)  # little-endian: row number, then key
    offsets = _offsets_of_sorted(halves[1::2], 1 << width, index_type, shift)
    # The row numbers, moved in place to the first half: step i reads items at
    # or after those it writes, so nothing is overwritten before it is read.
    for lo in range(0, n, _BUILD_STEP):
        hi = min(n, lo + _BUILD_STEP)
        halves[lo:hi] = halves[2 * lo : 2 * hi : 2]
    del halves
    _shrink(packed, 4 * n)
    order: npt.NDArray[np.int32] | npt.NDArray[np.int64] = packed.view(np.int32)[:n]
    if index_type is np.int64:
        order = order.view(np.uint32).astype(np.int64)
    if extra is None:
        return _Table(positions, order, offsets)
    return _Table(positions[:width], order, offsets, positions[width:], extra)


def _offsets_of_sorted(
    keys: npt.NDArray[np.uint32],
    buckets: int,
    index_type: type[np.int32] | type[np.int64],
    shift: int = 0,
) -> npt.NDArray[np.int32] | npt.NDArray[np.int64]:
    """Bucket offsets of sorted ``keys >> shift``: where each bucket's rows start (``buckets + 1``).

    From where the sorted keys change, in steps: a pass in order, against
    np.bincount's scattered counting (7 of the 9 s of a 220M-row table here).
    """
    n = keys.shape[0]
    offsets: npt.NDArray[np.int32] | npt.NDArray[np.int64] = (
        np.full(buckets + 1, n, dtype=np.int32)
        if index_type is np.int32
        else np.full(buckets + 1, n, dtype=np.int64)
    )
    if n == 0:
        return offsets
    by = np.uint32(shift)
    for lo in range(0, n, _COUNT_STEP):
        part = keys[lo : lo + _COUNT_STEP + 1] >> by
        at = np.flatnonzero(part[1:] != part[:-1]) + 1
        offsets[part[at]] = at + lo
    offsets[: int(keys[0] >> by) + 1] = 0
    # A key with no rows starts where the next key with rows does (or at n).
    filled: npt.NDArray[np.int32] | npt.NDArray[np.int64] = np.minimum.accumulate(offsets[::-1])[
        ::-1
    ].copy()
    return filled
