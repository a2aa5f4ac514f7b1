"""The linear maps of the hashes: the DCT, area resampling, flips and turns of coefficients.

Owns the matrices (cached per size) and the algebra on blocks of DCT
coefficients that lets an original's flips and quarter turns be hashed without
touching its pixels again. Pure numpy.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from provenance._core.phash._scheme import F32, LAYOUT

__all__ = ["area_matrices", "dct_matrix", "dihedral", "layouts"]


@functools.cache
def dct_matrix(n: int) -> npt.NDArray[np.float64]:
    """The unnormalised DCT-II of scipy as a matrix: ``y = D @ x``, ``D[k, i] = 2 cos(...)``."""
    k = np.arange(n, dtype=np.float64)[:, None]
    i = np.arange(n, dtype=np.float64)[None, :]
    matrix: npt.NDArray[np.float64] = 2.0 * np.cos(np.pi * k * (2.0 * i + 1.0) / (2.0 * n))
    return matrix


def area_matrices(start: F32, stop: F32, n: int, m: int) -> F32:
    """Area-resampling matrices taking cells ``[start, stop)`` of ``n`` to ``m`` outputs.

    ``start`` and ``stop`` have any shape ``S`` (cell units); the result is
    ``S + (m, n)``. Each output cell averages the input it covers, weighted by
    overlap, which is an anti-aliasing filter when shrinking.
    """
    fraction = np.arange(m + 1, dtype=np.float32) / np.float32(m)
    edges = start[..., None] + (stop - start)[..., None] * fraction  # S + (m+1,)
    lo = edges[..., :-1, None]
    hi = edges[..., 1:, None]
    cells = np.arange(n, dtype=np.float32)
    overlap = np.minimum(hi, cells + 1) - np.maximum(lo, cells)
    weights: F32 = np.clip(overlap, 0.0, None) / np.maximum(hi - lo, np.float32(1e-6))
    return weights


def dihedral(coeffs: F32, name: str) -> F32:
    """The coefficients of the flipped or turned window, from its own (last two axes)."""
    odd_u, odd_v = _odd_signs(coeffs.shape[-2], coeffs.shape[-1])
    # Rows of the block are vertical frequencies, columns horizontal ones. Mirroring
    # left-right negates odd horizontal frequencies; a transpose swaps the axes.
    if name == "identity":
        return coeffs
    if name == "flip_h":
        return coeffs * odd_v
    if name == "flip_v":
        return coeffs * odd_u
    if name == "rot180":
        return coeffs * odd_u * odd_v
    t = np.swapaxes(coeffs, -1, -2)
    if name == "transpose":
        return t
    if name == "rot90":
        return t * odd_u  # np.rot90 (counter-clockwise) = flip_v(transpose)
    if name == "rot270":
        return t * odd_v
    if name == "transverse":
        return t * odd_u * odd_v
    raise KeyError(name)


@functools.cache
def _odd_signs(rows: int, columns: int) -> tuple[F32, F32]:
    """-1 at odd vertical (``(rows, 1)``) and odd horizontal (``(1, columns)``) frequencies."""
    odd_u = np.where(np.arange(rows)[:, None] % 2 == 1, -1.0, 1.0).astype(np.float32)
    odd_v = np.where(np.arange(columns)[None, :] % 2 == 1, -1.0, 1.0).astype(np.float32)
    return odd_u, odd_v


def layouts(coeffs: F32) -> F32:
    """The layout of each block of coefficients (``(..., 32, 32)`` to ``(..., 8, 8)``)."""
    layout: F32 = coeffs[..., :LAYOUT, :LAYOUT].copy()
    layout[..., 0, 0] = 0.0
    return layout
