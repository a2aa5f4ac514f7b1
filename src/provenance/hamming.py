"""Hamming distance between packed perceptual hashes: the one implementation.

Pure. ``np.bitwise_count`` (numpy 2) over the XOR of ``uint64`` words is the
fastest form measured on this kind of machine (decision 7 in
docs/architecture.md); the perceptual hash, the index and the inventory's
candidate check all count bits here.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["hamming"]


def hamming(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Hamming distances between packed hashes, words on the last axis (broadcast).

    For the 64-bit compatible hashes (shape ``(N,)``), add the word axis:
    ``hamming(x[:, None], y[:, None])``.

    Args:
        a: ``(..., W)`` ``uint64``.
        b: ``(..., W)`` ``uint64``.

    Returns:
        ``(...)`` distances in bits.
    """
    x = np.asarray(a, dtype=np.uint64)
    y = np.asarray(b, dtype=np.uint64)
    counts = np.bitwise_count(np.bitwise_xor(x, y))
    distances: npt.NDArray[np.int64] = counts.sum(axis=-1, dtype=np.int64)
    return distances
