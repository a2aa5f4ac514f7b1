"""The default scheme (``dct256-v1``): hashes of windows of a grid, batched.

Owns the computation: a window of the trimmed box (or of the whole frame) is
area-resampled to 64x64 and DCT-transformed in one matrix product per axis; its
16x16 lowest coefficients against their median are the hash, its mid band, coarse
layout and the box's colour are what confirms a candidate. A found copy is
hashed a few ways (:func:`query_features`), an original many
(:func:`reference_hashes`). Pure: decoded images in, numpy arrays out.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from provenance._core.phash._bits import low_bits, mid_bits, pack
from provenance._core.phash._blas import one_blas_thread
from provenance._core.phash._descriptor import DESCRIPTOR_WINDOWS, descriptors_to_bytes
from provenance._core.phash._grids import (
    colour_signatures,
    grey_grids,
    grids_with_colour,
    trim_boxes,
)
from provenance._core.phash._scheme import (
    F32,
    FRAME,
    LOW,
    MID,
    QUERY_VARIANTS,
    REFERENCE_VARIANTS,
    ROUND,
    SCHEME,
    SIDE,
    U64,
    WINDOWS,
    frame_boxes,
    parse_variant,
    untrimmed,
    window_applies,
)
from provenance._core.phash._transforms import area_matrices, dct_matrix, dihedral, layouts

__all__ = [
    "QueryFeatures",
    "ReferenceHashes",
    "confirm_bits",
    "frame_coefficients",
    "query_colours",
    "query_features",
    "query_hashes",
    "reference_hashes",
    "reference_hashes_batch",
    "window_coefficients",
]


@dataclass(frozen=True, slots=True)
class ReferenceHashes:
    """What an original stores for the default scheme.

    Attributes:
        words: ``(K, WORDS)`` ``uint64``, one hash per variant; index them all.
        variants: The name of each row, ``"window:dihedral"`` (e.g. ``"full:flip_h"``).
        descriptor: The confirmation hashes of the windows, for :func:`confirm`.
        scheme: The scheme name (:data:`SCHEME`).
    """

    words: U64
    variants: tuple[str, ...]
    descriptor: bytes
    scheme: str = SCHEME


@dataclass(frozen=True, slots=True)
class QueryFeatures:
    """What a found copy is looked up and confirmed with.

    Attributes:
        words: ``(Q, WORDS)`` ``uint64``: the hash of each query variant.
        mid: ``(Q, CONFIRM_WORDS)`` ``uint64``: the mid-band bits of each.
        variants: The name of each row (:data:`QUERY_VARIANTS`; without the
            whole frame when the trim found nothing, since the trimmed box is
            then the frame).
        colour: ``(2,)`` colour signature (:func:`colour_signatures`).
        layout: ``(Q, 8, 8)`` ``float32``: the lowest DCT coefficients of each
            row with the mean (DC) set to 0 (:func:`layout_correlation`).
    """

    words: U64
    mid: U64
    variants: tuple[str, ...]
    colour: F32
    layout: F32


# --- coefficients of windows ---------------------------------------------------------


@one_blas_thread
def window_coefficients(
    grids: F32, boxes: F32, windows: Sequence[tuple[float, float, float, float]]
) -> F32:
    """The 32x32 lowest DCT coefficients of each window of each trimmed grid.

    A window (fractions of the trimmed box) is area-resampled to 64x64 and
    DCT-transformed in one product per axis: ``(D R_y) G (D R_x)^T``.

    Args:
        grids: ``(N, n, n)`` grey grids (:func:`grey_grids`).
        boxes: ``(N, 4)`` trimmed boxes (:func:`trim_boxes`).
        windows: ``K`` windows ``(top, bottom, left, right)`` as fractions.

    Returns:
        ``(N, K, 32, 32)`` ``float32``, rounded so that flat images are stable.
    """
    return _project(grids, *_box_projections(grids, boxes, windows))


def _box_projections(
    grids: F32, boxes: F32, windows: Sequence[tuple[float, float, float, float]]
) -> tuple[F32, F32]:
    """``(N, K, 32, n)`` projections of the rows and of the columns of windows of boxes."""
    n = grids.shape[-1]
    frac = np.asarray(windows, dtype=np.float32).reshape(-1, 4)  # (K, 4)
    height = (boxes[:, 1] - boxes[:, 0])[:, None]
    width = (boxes[:, 3] - boxes[:, 2])[:, None]
    top = boxes[:, 0, None] + frac[None, :, 0] * height  # (N, K)
    bottom = boxes[:, 0, None] + frac[None, :, 1] * height
    left = boxes[:, 2, None] + frac[None, :, 2] * width
    right = boxes[:, 2, None] + frac[None, :, 3] * width
    return _projection(top, bottom, n), _projection(left, right, n)


@one_blas_thread
def frame_coefficients(grids: F32, windows: Sequence[tuple[float, float, float, float]]) -> F32:
    """:func:`window_coefficients` of windows of the whole frame (no trimming).

    The same numbers (bit for bit), faster: the projections of a window of the
    frame do not depend on the image, so they are built once per window and
    grid size and reused for every image.

    Args:
        grids: ``(N, n, n)`` grey grids (:func:`grey_grids`).
        windows: ``K`` windows ``(top, bottom, left, right)`` as fractions.

    Returns:
        ``(N, K, 32, 32)`` ``float32``.
    """
    ry, rx = _frame_projections(grids.shape[-1], tuple(tuple(w) for w in windows))
    return _project(grids, ry, rx)


@functools.cache
def _frame_projections(
    n: int, windows: tuple[tuple[float, float, float, float], ...]
) -> tuple[F32, F32]:
    frac = np.asarray(windows, dtype=np.float32).reshape(-1, 4)  # (K, 4)
    side = np.float32(n)
    zero = np.float32(0.0)
    # The arithmetic of window_coefficients with the box (0, n, 0, n).
    ry = _projection(zero + frac[None, :, 0] * side, zero + frac[None, :, 1] * side, n)
    rx = _projection(zero + frac[None, :, 2] * side, zero + frac[None, :, 3] * side, n)
    ry.flags.writeable = False
    rx.flags.writeable = False
    return ry, rx


def _projection(start: F32, stop: F32, n: int) -> F32:
    """``D R``: the 32 lowest DCT rows of the area resampling of ``[start, stop)`` to 64 cells."""
    projection: F32 = _dct_rows() @ area_matrices(start, stop, n, SIDE)  # S + (32, n)
    return projection


@functools.cache
def _dct_rows() -> F32:
    """The 32 lowest rows of the 64-point DCT, scaled by 1/64, as float32 (read-only)."""
    d: F32 = dct_matrix(SIDE)[:MID].astype(np.float32) / np.float32(SIDE)  # (32, 64)
    d.flags.writeable = False
    return d


def _project(grids: F32, ry: F32, rx: F32) -> F32:
    product = ry @ grids[:, None] @ np.swapaxes(rx, -1, -2)  # (N, K, 32, 32)
    coeffs = product.astype(np.float32, copy=False)  # float32 already: the stubs say float64
    rounded: F32 = np.round(coeffs, ROUND, out=coeffs)  # in place: one temporary fewer
    return rounded


@functools.cache
def _named(
    names: tuple[str, ...],
) -> tuple[tuple[tuple[float, float, float, float], ...], tuple[int, ...], tuple[int, ...]]:
    """The fractions of named windows, which are of the trimmed box and which of the frame."""
    fractions = tuple(WINDOWS[w.removeprefix(FRAME)] for w in names)
    trimmed = tuple(k for k, w in enumerate(names) if not w.startswith(FRAME))
    framed = tuple(k for k, w in enumerate(names) if w.startswith(FRAME))
    return fractions, trimmed, framed


@one_blas_thread
def _coefficients(grids: F32, boxes: F32, names: tuple[str, ...]) -> F32:
    """The coefficients of each named window (of the trimmed ``boxes``, or of the frame).

    The windows of the frame have cached projections (:func:`frame_coefficients`),
    and so do those of a box the trim left whole (the frame's window, bit for bit):
    then every window is one product per axis. Only a trimmed box's windows are
    projected per image, in a second product.

    Returns:
        ``(N, len(names), 32, 32)`` ``float32``, as :func:`window_coefficients` and
        :func:`frame_coefficients` give them.
    """
    n = grids.shape[-1]
    fractions, trimmed, framed = _named(names)
    if not trimmed or untrimmed(boxes, frame_boxes(len(boxes), n)):
        return _project(grids, *_frame_projections(n, fractions))
    out = np.empty((len(grids), len(names), MID, MID), dtype=np.float32)
    out[:, trimmed] = _project(
        grids, *_box_projections(grids, boxes, [fractions[k] for k in trimmed])
    )
    if framed:
        out[:, framed] = _project(
            grids, *_frame_projections(n, tuple(fractions[k] for k in framed))
        )
    return out


# --- a found copy ----------------------------------------------------------------------

_QUERY_WINDOWS = tuple(parse_variant(v)[0] for v in QUERY_VARIANTS)


def query_hashes(images: Sequence[Image.Image]) -> U64:
    """The default hash of each image's trimmed box, as is (the first query variant).

    :func:`query_features` gives every query variant with what confirms it;
    this is its first row, kept for callers that want one hash per image.

    Args:
        images: Decoded images in any mode.

    Returns:
        ``(N, WORDS)`` ``uint64``.
    """
    grids = grey_grids(images)
    coeffs = window_coefficients(grids, trim_boxes(grids), [WINDOWS["full"]])[:, 0]
    return pack(low_bits(coeffs))


def query_features(images: Sequence[Image.Image]) -> list[QueryFeatures]:
    """Every query hash of each image, with its confirmation bits and colour, in one pass.

    Args:
        images: Decoded queries in any mode.

    Returns:
        One :class:`QueryFeatures` per image.
    """
    grids, rgb = grids_with_colour(images)
    boxes = trim_boxes(grids)
    frames = frame_boxes(len(grids), grids.shape[-1])
    coeffs = _coefficients(grids, boxes, _QUERY_WINDOWS)  # (N, 3, 32, 32), QUERY_VARIANTS
    words = pack(low_bits(coeffs))
    mid = pack(mid_bits(coeffs))
    layout = layouts(coeffs)
    colours = colour_signatures(rgb, boxes)
    out = []
    for i in range(len(grids)):
        keep = [0, 2] if untrimmed(boxes[i], frames[i]) else [0, 1, 2]
        out.append(
            QueryFeatures(
                words=words[i, keep],
                mid=mid[i, keep],
                variants=tuple(QUERY_VARIANTS[k] for k in keep),
                colour=colours[i],
                layout=layout[i, keep],
            )
        )
    return out


def confirm_bits(images: Sequence[Image.Image]) -> U64:
    """The mid-band confirmation hash of each image's trimmed box, as found.

    Args:
        images: Decoded queries in any mode.

    Returns:
        ``(N, CONFIRM_WORDS)`` ``uint64``.
    """
    grids = grey_grids(images)
    coeffs = window_coefficients(grids, trim_boxes(grids), [WINDOWS["full"]])[:, 0]
    return pack(mid_bits(coeffs))


def query_colours(images: Sequence[Image.Image]) -> F32:
    """The colour signature of each image as found (:func:`colour_signatures`).

    Args:
        images: Decoded queries in any mode.

    Returns:
        ``(N, 2)`` ``float32``.
    """
    grids, rgb = grids_with_colour(images)
    return colour_signatures(rgb, trim_boxes(grids))


# --- an original -----------------------------------------------------------------------


def reference_hashes(image: Image.Image) -> ReferenceHashes:
    """The hashes an original stores: trimmed box, flips, quarter turns, frame and crop windows.

    Args:
        image: The decoded original, any mode.

    Returns:
        Its :class:`ReferenceHashes`.
    """
    return reference_hashes_batch([image])[0]


def reference_hashes_batch(
    images: Sequence[Image.Image], *, variants: Sequence[str] = REFERENCE_VARIANTS
) -> list[ReferenceHashes]:
    """:func:`reference_hashes` for many images, in one vectorized pass.

    Args:
        images: Decoded originals in any mode.
        variants: Which rows to store (default :data:`REFERENCE_VARIANTS`); a
            row an image does not need (see there) is left out of its result.

    Returns:
        One :class:`ReferenceHashes` per image.
    """
    grids, rgb = grids_with_colour(images)
    return _references(grids, rgb, tuple(variants))


@dataclass(frozen=True, slots=True)
class _Plan:
    """What :func:`_references` computes for a tuple of variants, worked out once.

    Attributes:
        windows: Every window the descriptor or a variant needs, each once.
        rows: Per variant, the index of its window in ``windows`` and its turn.
        described: The indices of :data:`DESCRIPTOR_WINDOWS` in ``windows``.
        row_windows: Per variant, its window (which variants an image keeps
            depends on the window only).
    """

    windows: tuple[str, ...]
    rows: tuple[tuple[int, str], ...]
    described: tuple[int, ...]
    row_windows: tuple[str, ...]


@functools.cache
def _plan(variants: tuple[str, ...]) -> _Plan:
    windows = list(DESCRIPTOR_WINDOWS)
    parsed = [parse_variant(v) for v in variants]
    for window, _ in parsed:
        if window not in windows:
            windows.append(window)
    return _Plan(
        windows=tuple(windows),
        rows=tuple((windows.index(w), turn) for w, turn in parsed),
        described=tuple(windows.index(w) for w in DESCRIPTOR_WINDOWS),
        row_windows=tuple(w for w, _ in parsed),
    )


def _references(grids: F32, rgb: F32, variants: tuple[str, ...]) -> list[ReferenceHashes]:
    plan = _plan(variants)  # the names are resolved once per process, not per image
    boxes = trim_boxes(grids)
    frames = frame_boxes(len(grids), grids.shape[-1])
    coeffs = _coefficients(grids, boxes, plan.windows)  # (N, len(windows), 32, 32)
    # Only the low band of a turned block is hashed: turn that alone (the same bits).
    low = coeffs[..., :LOW, :LOW]
    rows = [dihedral(low[:, index], turn) for index, turn in plan.rows]
    words = pack(low_bits(np.stack(rows, axis=1)))  # (N, K, WORDS)
    described = coeffs[:, list(plan.described)]
    descriptors = descriptors_to_bytes(
        colour_signatures(rgb, boxes),
        pack(mid_bits(described)),  # (N, len(DESCRIPTOR_WINDOWS), CONFIRM_WORDS)
        layouts(described),
    )
    out = []
    for i in range(len(grids)):
        kept = {w: window_applies(w, boxes[i], frames[i]) for w in set(plan.row_windows)}
        keep = [k for k, w in enumerate(plan.row_windows) if kept[w]]
        out.append(
            ReferenceHashes(
                words=words[i, keep],
                variants=tuple(variants[k] for k in keep),
                descriptor=descriptors[i],
            )
        )
    return out
