"""One Hamming distance for perceptual hashes, the index and the inventory."""

from __future__ import annotations

import numpy as np
import pytest

from provenance._core import phash
from provenance._core.hamming import hamming, hamming_bytes
from provenance._io import index


def test_known_values_and_broadcasting() -> None:
    a = np.array([[0, 0], [2**64 - 1, 1]], dtype=np.uint64)
    assert hamming(a[0], a[1]).tolist() == 65
    assert hamming(a[:, None], a[None]).tolist() == [[0, 65], [65, 0]]
    rng = np.random.default_rng(7)
    x = rng.integers(0, 2**63, size=(50, 4), dtype=np.uint64)
    q = rng.integers(0, 2**63, size=4, dtype=np.uint64)
    expected = [
        sum(bin(int(p) ^ int(r)).count("1") for p, r in zip(row, q, strict=True)) for row in x
    ]
    assert hamming(x, q).tolist() == expected


def test_every_caller_uses_the_one_implementation() -> None:
    assert phash.hamming is hamming
    words = np.array([[1, 0], [3, 1]], dtype=np.uint64)
    query = np.array([0, 1], dtype=np.uint64)
    assert (
        index.hamming_distances(words, query).tolist() == hamming(words, query).tolist() == [2, 2]
    )


def test_hamming_bytes_agrees_with_the_array_form() -> None:
    rng = np.random.default_rng(11)
    for words in (1, 4, 9):
        a = rng.integers(0, 2**63, size=words, dtype=np.uint64)
        b = rng.integers(0, 2**63, size=words, dtype=np.uint64)
        packed = (a.astype("<u8").tobytes(), b.astype("<u8").tobytes())
        assert hamming_bytes(*packed) == int(hamming(a, b))
    assert hamming_bytes(b"\x00\xff", b"\xff\xff") == 8
    with pytest.raises(ValueError, match="cannot be compared"):
        hamming_bytes(b"\x00", b"\x00\x00")
