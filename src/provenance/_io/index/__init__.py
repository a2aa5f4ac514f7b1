"""Hamming search over packed perceptual hashes (DESIGN.md decision 7).

Two indexes: :class:`HammingIndex` (exact, described below; every row of an
inventory up to about a million assets) and :class:`FleetIndex`
(:mod:`provenance._io.index._fleet`: an approximate first stage over hash tables,
then every row of the assets it finds compared in full; millions of assets,
fed in :class:`RowChunk` batches by any store and refreshed by row id).

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

from provenance._io.index._bands import MEMORY_BUDGET
from provenance._io.index._fleet import AssetMatch, FleetIndex, RowChunk
from provenance._io.index._hamming import HammingIndex, Neighbor
from provenance._io.index._scan import hamming_distances

__all__ = [
    "MEMORY_BUDGET",
    "AssetMatch",
    "FleetIndex",
    "HammingIndex",
    "Neighbor",
    "RowChunk",
    "hamming_distances",
]
