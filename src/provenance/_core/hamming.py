"""Hamming distance between packed perceptual hashes: the one implementation.

Pure. ``np.bitwise_count`` (numpy 2) over the XOR of ``uint64`` words is the
fastest form measured on this kind of machine (decision 7 in
docs/architecture.md); the perceptual hash, the index and the inventory's
candidate check all count bits here. For one pair (a row read back from the
database against the query) ``int.bit_count`` on the bytes is faster:
0.3 us against 2.3 us per 4-word pair for ``np.frombuffer`` and a numpy XOR
(``benchmarks/hamming.py``, 2 cores under load 10).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["hamming", "hamming_bytes"]


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


def hamming_bytes(a: bytes, b: bytes) -> int:
    """Hamming distance between two packed hashes of the same length, as bytes.

    Args:
        a: Packed hash bytes (any word order, the same for both).
        b: Packed hash bytes, ``len(b) == len(a)``.

    Returns:
        The distance in bits.

    Raises:
        ValueError: The lengths differ.
    """
    if len(a) != len(b):
        raise ValueError(f"hashes of {len(a)} and {len(b)} bytes cannot be compared")
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).bit_count()
