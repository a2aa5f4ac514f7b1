"""The compatible scheme: the 64-bit ``imagehash.phash``, batched.

Owns the steps of imagehash's hash (grey, 32x32 LANCZOS, DCT-II along both axes,
the top-left 8x8 coefficients against their median) and the fast path for big
images: point-sampled to 256x256, then Pillow's LANCZOS filter as two matrix
products over the whole batch. Pure: decoded images in, ``uint64`` out.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image

from provenance._core.phash._bits import pack
from provenance._core.phash._blas import one_blas_thread
from provenance._core.phash._grids import WIDE_GREYS, resize_grey
from provenance._core.phash._scheme import F32, U64
from provenance._core.phash._transforms import dct_matrix

__all__ = ["COMPAT_GRID", "COMPAT_SIZE", "compat_hashes", "compat_hashes_from_grey"]

COMPAT_SIZE = 32
"""Side of the grey image of the imagehash-compatible scheme (hash_size 8 x 4)."""

COMPAT_GRID = 256
"""Side of the square grid big images are point-sampled to (8x8 points per output pixel)
before Pillow's LANCZOS weights are applied as matrices."""


def _compat_grey(image: Image.Image) -> npt.NDArray[np.uint8]:
    """The 32x32 grey image of imagehash, by its own steps (images up to the grid's side)."""
    if image.mode in WIDE_GREYS:
        small = resize_grey(image, (COMPAT_SIZE, COMPAT_SIZE), Image.Resampling.LANCZOS)
    else:
        # imagehash's exact steps (alpha is ignored, as imagehash ignores it).
        small = image.convert("L").resize((COMPAT_SIZE, COMPAT_SIZE), Image.Resampling.LANCZOS)
    return np.asarray(small, dtype=np.uint8)


def _compat_sampled(image: Image.Image) -> npt.NDArray[np.uint8]:
    """A big image point-sampled to the grid, then grey (the two steps commute)."""
    size = (COMPAT_GRID, COMPAT_GRID)
    return np.asarray(image.resize(size, Image.Resampling.NEAREST).convert("L"), dtype=np.uint8)


@functools.cache
def _lanczos_matrix(n_in: int, n_out: int) -> F32:
    """Pillow's LANCZOS weights taking ``n_in`` pixels to ``n_out`` as a matrix.

    As ``precompute_coeffs`` in Pillow's ``Resample.c``: support 3 pixels of the
    output, each row normalised to sum 1.
    """
    scale = n_in / n_out
    filter_scale = max(scale, 1.0)
    support = 3.0 * filter_scale
    weights = np.zeros((n_out, n_in), dtype=np.float64)
    for out in range(n_out):
        centre = (out + 0.5) * scale
        low = max(int(centre - support + 0.5), 0)
        high = min(int(centre + support + 0.5), n_in)
        x = (np.arange(low, high) - centre + 0.5) / filter_scale
        w = np.where(np.abs(x) < 3.0, np.sinc(x) * np.sinc(x / 3.0), 0.0)
        weights[out, low:high] = w / w.sum()
    matrix: F32 = weights.astype(np.float32)
    return matrix


@one_blas_thread
def _compat_reduce(grids: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """``(N, G, G)`` grey grids to ``(N, 32, 32)``: Pillow's two LANCZOS passes, batched.

    Pillow resizes horizontally, rounds to 8 bits, then vertically; so does this.
    """
    count, side = len(grids), grids.shape[-1]
    weights = _lanczos_matrix(side, COMPAT_SIZE)
    rows = grids.reshape(count * side, side).astype(np.float32) @ weights.T  # one GEMM
    rows = np.clip(np.round(rows), 0, 255).reshape(count, side, COMPAT_SIZE)
    small = np.clip(np.round(weights @ rows), 0, 255)
    out: npt.NDArray[np.uint8] = small.astype(np.uint8)
    return out


@one_blas_thread
def compat_hashes_from_grey(grey: npt.ArrayLike) -> U64:
    """The imagehash-compatible hash of ``(N, 32, 32)`` grey images (0-255).

    Args:
        grey: The images after imagehash's ``convert("L").resize((32, 32))``.

    Returns:
        ``(N,)`` ``uint64``; bit 63 is DCT coefficient (0, 0).

    Raises:
        ValueError: If ``grey`` is not ``(N, 32, 32)`` (a caller's bug, not bad input).
    """
    pixels = np.asarray(grey, dtype=np.float64)
    if pixels.ndim != 3 or pixels.shape[1:] != (COMPAT_SIZE, COMPAT_SIZE):
        raise ValueError(f"expected (N, 32, 32) grey images, got {pixels.shape}")
    d = dct_matrix(COMPAT_SIZE)[:8]  # only the 8 lowest frequencies are kept
    low = d @ pixels @ d.T  # (N, 8, 8): DCT along axis 0 then axis 1, as imagehash
    flat = low.reshape(len(pixels), 64)
    bits = flat > np.median(flat, axis=1, keepdims=True)
    return pack(bits)[:, 0]


def compat_hashes(images: Sequence[Image.Image]) -> U64:
    """The 64-bit ``imagehash.phash`` of each image, as ``uint64``.

    ``int(str(imagehash.phash(im)), 16)`` equals ``int(compat_hashes([im])[0])``
    bit for bit on images up to 256 pixels a side; on bigger ones the point
    sampling changes a bit or so (mean measured on real photos: see
    ``benchmarks/robustness.py``).

    Args:
        images: Decoded images in any mode.

    Returns:
        ``(N,)`` ``uint64``.
    """
    grey = np.empty((len(images), COMPAT_SIZE, COMPAT_SIZE), dtype=np.uint8)
    big: list[int] = []
    for i, image in enumerate(images):
        if max(image.size) > COMPAT_GRID and image.mode not in WIDE_GREYS:
            big.append(i)  # point-sampled, then reduced with the whole batch
        else:
            grey[i] = _compat_grey(image)
    if big:
        grey[big] = _compat_reduce(np.stack([_compat_sampled(images[i]) for i in big]))
    return compat_hashes_from_grey(grey)
