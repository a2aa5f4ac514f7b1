"""A :class:`~provenance.FleetIndex` lookup's first stage: probes, extra bits, one query hash each.

For each query hash and table, the probes are every key within ``probe_radius``
bits of the hash's own, by how many bits they flip (the *level*). A bucket's rows
then pass only when their extra bits (:data:`~._tables.EXTRA_BITS` more hash bits,
kept per row in bucket order) differ from the query hash's in at most
``EXTRA_BUDGET - level`` bits: a row of a true copy that already differs in
several key bits is let through only if it differs in few of the next ones. Rows
that pass are compared in full with the one query hash whose probe found them,
not with every query hash (a copy's hash is near the stored row it was found by).

On the real copies of ``benchmarks/robustness.py`` (``benchmarks/index.py
--fleet``), a budget of 5 loses no copy that the probes alone find, at 21- and
24-bit keys, and drops about three quarters of the candidates of an unrelated
query before any hash is read (most of them come from level 3: 2,024 of the 2,325
probes of a 24-bit key, let through at 2 of 8 extra bits).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt

from provenance._io.index._bands import _masks
from provenance._io.index._scan import Words
from provenance._io.index._tables import _key_tables, _keys, _nearest, _ranges, _Segment, _Table

I64 = npt.NDArray[np.int64]

# Extra bits a row may differ in plus key bits its probe flipped (see the module docstring).
EXTRA_BUDGET = 5


def near_assets(segment: _Segment, qs: Words, r: int, probe_radius: int) -> I64:
    """Assets of ``segment`` with a candidate row within ``r`` of the query hash that found it."""
    if not segment.tables:  # a tail: scanned
        rows = np.arange(segment.rows, dtype=np.int64)
        return segment.assets_of(rows[_nearest(segment.words, rows, qs) <= r])
    words_per_hash = qs.shape[1]
    per_table = [_own_keys(table, qs, words_per_hash) for table in segment.tables]
    hits = []
    for q in range(qs.shape[0]):
        pieces = [
            _probe(table, int(keys[q]), int(extra[q]), probe_radius)
            for table, (keys, extra) in zip(segment.tables, per_table, strict=True)
        ]
        rows = np.concatenate(pieces).astype(np.int64)
        if rows.size:
            # In row order: neighbouring candidates share pages of the hash file.
            rows.sort()
            hits.append(rows[_nearest(segment.words, rows, qs[q : q + 1]) <= r])
    if not hits:
        return np.zeros(0, np.int64)
    return segment.assets_of(np.concatenate(hits))


def _own_keys(
    table: _Table, qs: Words, words_per_hash: int
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    """Each query hash's key in ``table`` and its extra bits (zeros when the table keeps none)."""
    keys = _keys(qs, _key_tables(table.positions, words_per_hash))
    if table.extra_positions is None:
        return keys, np.zeros_like(keys)
    return keys, _keys(qs, _key_tables(table.extra_positions, words_per_hash))


def _probe(table: _Table, key: int, extra: int, probe_radius: int) -> npt.NDArray[np.int32]:
    """Rows of the buckets within ``probe_radius`` bits of ``key`` whose extra bits pass."""
    width = table.positions.shape[0]
    keys = _masks(width, probe_radius) ^ key
    starts = table.offsets[keys]
    sizes = table.offsets[keys + 1] - starts
    extra_positions = table.extra_positions
    kept = 0 if table.extra is None or extra_positions is None else extra_positions.shape[0]
    pieces = []
    for begin, end, allowed in _levels(width, probe_radius, kept):
        size = sizes[begin:end]
        nonempty = size > 0
        at = _ranges(starts[begin:end][nonempty].astype(np.int64), size[nonempty].astype(np.int64))
        if table.extra is not None and allowed < kept:
            at = at[np.bitwise_count(table.extra[at] ^ np.uint8(extra)) <= allowed]
        pieces.append(table.order[at])
    return np.concatenate(pieces)


@functools.lru_cache(maxsize=256)
def _levels(width: int, probe_radius: int, kept: int) -> list[tuple[int, int, int]]:
    """``(begin, end, allowed)`` spans of :func:`_masks`' probes sharing one extra-bit allowance.

    The levels whose allowance is at least ``kept`` (no filter) are one span.
    """
    spans: list[tuple[int, int, int]] = []
    end = 0
    for level in range(min(probe_radius, width) + 1):
        begin, end = end, end + math.comb(width, level)
        allowed = max(0, EXTRA_BUDGET - level)
        if spans and allowed >= kept:
            spans[-1] = (spans[-1][0], end, allowed)
        else:
            spans.append((begin, end, allowed))
    return spans
