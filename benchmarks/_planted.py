"""Synthetic ORB descriptors that hit a query as often as real unrelated ones do.

Shared by ``robustness.py --partial-rank-only`` (a planted inverted file) and
``index.py --fleet-verify N --planted-keypoints`` (planted rows of an inventory's
keypoint table): each synthetic descriptor is a real reference descriptor of the
corpus with :data:`RANK_FLIPS` of its bits flipped, drawn from the corpus groups
of the *other* fold (:func:`fold`) than the queries', so no synthetic descriptor
is a noisy copy of a queried photo's own.
"""

from __future__ import annotations

import zlib

import numpy as np

RANK_FLIPS = 0.01
"""Bit-flip rate of a synthetic descriptor from the real one it is drawn from. Measured
on the corpus (every 6th query of each transform against the indexed descriptors of
the other groups): a query descriptor is within 28 bits of an unrelated stored one
at a rate of 1.8e-4 to 9.0e-4 per pair (screenshots the highest); descriptors drawn
from real ones with 1% of the bits flipped hit at that rate (2.3e-4 to 9.3e-4 at 0%,
half of it at 2%, 1e-8 at the 25% the cost test uses, where no synthetic
descriptor ever votes)."""


def fold(group: str) -> int:
    """The fold (0 or 1) of a corpus group: queries of one fold meet the other's descriptors."""
    return zlib.crc32(group.encode()) % 2


def flips(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    """``(n, 32)`` masks with each of the 256 bits set with probability ``p``."""
    counts = rng.binomial(256, p, n)
    bits = np.zeros(n * 256, bool)
    bits[np.repeat(np.arange(n) * 256, counts) + rng.integers(0, 256, int(counts.sum()))] = True
    return np.packbits(bits.reshape(n, 256), axis=1)


def descendants(rng: np.random.Generator, pool: np.ndarray, n: int) -> np.ndarray:
    """``(n, 32)`` synthetic descriptors: random ``pool`` rows with :data:`RANK_FLIPS` flipped."""
    return np.ascontiguousarray(pool[rng.integers(0, len(pool), n)] ^ flips(rng, n, RANK_FLIPS))
