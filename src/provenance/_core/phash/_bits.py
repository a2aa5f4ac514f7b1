"""From DCT coefficients to packed bits, and from packed bits to Hamming distances.

Owns the bit layout of every hash (first bit most significant, ``uint64`` words)
and the split of a coefficient block into the low band (the primary hash) and
the mid band (the confirmation). Pure numpy.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from provenance._core.hamming import hamming
from provenance._core.phash._scheme import LOW, MID, U64

__all__ = ["hamming", "low_bits", "median", "mid_bits", "mid_mask", "pack"]


def low_bits(coeffs: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """The primary hash's bits: the 16x16 lowest coefficients above their median."""
    flat = coeffs[..., :LOW, :LOW].reshape(*coeffs.shape[:-2], LOW * LOW)
    bits: npt.NDArray[np.bool_] = flat > median(flat)[..., None]
    return bits


def median(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``np.median(values, axis=-1)`` of finite ``float32`` values, bit for bit, cheaper.

    np.median's own steps without its NaN check and temporaries: the middle value,
    or the float32 mean of the two middle values, found by a partition. Its mean
    adds them to 0 (so a median of -0.0 is 0.0), and so does this.
    """
    half = values.shape[-1] // 2
    zero = np.float32(0.0)
    if values.shape[-1] % 2:
        odd: npt.NDArray[np.float32] = np.partition(values, half, axis=-1)[..., half] + zero
        return odd
    middle = np.partition(values, (half - 1, half), axis=-1)
    even: npt.NDArray[np.float32] = (zero + middle[..., half - 1] + middle[..., half]) / np.float32(
        2
    )
    return even


@functools.cache
def mid_mask() -> npt.NDArray[np.bool_]:
    """The mid band of a 32x32 block: everything outside the 16x16 low band."""
    mask = np.ones((MID, MID), dtype=bool)
    mask[:LOW, :LOW] = False
    return mask


def mid_bits(coeffs: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """The confirmation's bits: the signs of the mid-band coefficients."""
    bits: npt.NDArray[np.bool_] = coeffs[..., mid_mask()] > 0
    return bits


def pack(bits: npt.NDArray[np.bool_]) -> U64:
    """Pack ``(..., 64*W)`` booleans into ``(..., W)`` ``uint64``, first bit most significant."""
    packed = np.packbits(bits, axis=-1)  # big-endian bytes
    words = packed.reshape(*bits.shape[:-1], -1, 8)
    out: U64 = np.ascontiguousarray(words).view(">u8")[..., 0].astype(np.uint64)
    return out
