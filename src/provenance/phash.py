"""Perceptual hashes of decoded pixels, vectorized over batches (decision 6 of DESIGN.md).

This module owns the third hash of decision 5: what makes a resized, re-encoded,
cropped, flipped or padded copy of an image recognisable. It has two schemes.

- **Compatible** (:func:`compat_hashes`): the 64-bit ``imagehash.phash``. The steps
  are imagehash's: grey (``convert("L")``), 32x32 LANCZOS, DCT-II along both axes
  (scipy's unnormalised convention), the top-left 8x8 coefficients compared with
  their median, bit 63 of the ``uint64`` is coefficient (0, 0), so
  ``int(str(imagehash.phash(im)), 16)`` is the same number. An image larger than
  256 pixels on a side is first point-sampled to 256x256 and its 32x32 LANCZOS
  reduction is then Pillow's filter as two matrix products over the whole batch;
  that changes a bit or so on real photos and is what makes it fast.
- **Default** (:data:`SCHEME`, ``dct256-v1``): 256 bits. The image is turned grey
  (alpha composited on white), reduced to a 128x128 grid, a uniform border (white
  padding, letterbox bars, a frame, the white ground of a packshot) is trimmed,
  and a window of the trimmed box is resampled to 64x64 by area averaging; its
  16x16 lowest DCT coefficients are compared with their median. Resampling and
  DCT are one matrix product per axis, precomputed per window, so a batch of
  images and windows costs two batched ``matmul`` calls.

  A found copy is hashed once (:func:`query_hashes`: the whole trimmed box). An
  original stores several hashes (:func:`reference_hashes`): the whole box, its
  flips and 90-degree rotations (free: a mirror changes the sign of the odd
  coefficients, a transpose transposes them), and sub-windows for crops. A
  candidate found by the hash is then confirmed by a second, independent hash
  (:func:`confirm`): the signs of the *mid-band* coefficients of the same window
  (frequencies 8 to 16 cycles per image, which the primary hash never looks at),
  the correlation of the window's coarse brightness layout (the magnitudes of its
  8x8 lowest coefficients, which the primary hash reduces to signs) and the mean
  colour, all kept in the original's ``descriptor`` (:func:`confirmation`).

Pure: ``PIL.Image`` or numpy arrays in, numpy arrays out. No paths, no file I/O,
no clock. Decoding files (and JPEG draft mode) is :mod:`provenance.fingerprint`'s
job. Pillow's decompression-bomb limit is never touched here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from PIL import Image
from threadpoolctl import ThreadpoolController

from provenance.errors import DescriptorError
from provenance.hamming import hamming

__all__ = [
    "COLOUR_STRICT",
    "COLOUR_THRESHOLD",
    "COMPAT_SIZE",
    "CONFIRM_STRICT",
    "CONFIRM_THRESHOLD",
    "CONFIRM_WORDS",
    "DIHEDRAL",
    "FRAME",
    "LAYOUT_STRICT",
    "LAYOUT_THRESHOLD",
    "MATCH_THRESHOLD",
    "QUERY_VARIANTS",
    "REFERENCE_VARIANTS",
    "SCHEME",
    "WINDOWS",
    "WORDS",
    "Confirmation",
    "QueryFeatures",
    "ReferenceHashes",
    "colour_distance",
    "colour_distance_sig",
    "colour_signatures",
    "compat_hashes",
    "compat_hashes_from_grey",
    "confirm",
    "confirm_bits",
    "confirm_distance",
    "confirm_distance_bits",
    "confirmation",
    "frame_coefficients",
    "grey_grids",
    "hamming",
    "layout_correlation",
    "query_colours",
    "query_features",
    "query_hashes",
    "reference_hashes",
    "reference_hashes_batch",
    "resize_flat",
    "resize_grey",
    "trim_boxes",
    "window_coefficients",
]

U64 = npt.NDArray[np.uint64]
F32 = npt.NDArray[np.float32]

SCHEME = "dct256-v1"
"""Name and version of the default scheme; stored next to every hash."""

WORDS = 4
"""``uint64`` words per default hash (256 bits)."""

MATCH_THRESHOLD = 51
"""Hamming distance (bits of 256) at or below which a query matches a reference row.

Calibrated by ``benchmarks/robustness.py``: over all pairs of distinct real photos,
the minimum distance between a copy's query hashes and the reference rows of another
photo is at or below this threshold for at most 1e-5 of the pairs: 51 bits on 304
photos (2.67M pairs, FPR 5.2e-6 with every query hash and every reference row; one
row alone would allow 55; see docs/concepts.md).
"""

CONFIRM_THRESHOLD = 300
"""Largest mid-band Hamming distance (bits of 768) :func:`confirm` accepts.

Checked by ``benchmarks/robustness.py``: the 99th percentile of true pairs matched
by the primary hash is 190-290 bits for resizing and re-encoding, so lowering it
loses recall; distinct photos average 383 bits (sd 15). Distinct look-alikes that
pass both DCT bands (planet discs on white, 150-195 bits) are told apart by the
colour and the layout, not by this threshold.
"""

CONFIRM_STRICT = 260
"""Mid-band distance past which that part is only *marginal* (see :class:`Confirmation`)."""

CONFIRM_WORDS = 12
"""``uint64`` words of one mid-band confirmation hash (768 bits)."""

COLOUR_THRESHOLD = 0.12
"""Largest colour difference (:func:`colour_distance`) :func:`confirm` accepts.

Calibrated by ``benchmarks/robustness.py`` (see docs/concepts.md): resized,
re-encoded, flipped and cropped copies stay well below it; look-alike packshots
of different colour (two planets on white) are far above it.
"""

COLOUR_STRICT = 0.06
"""Colour difference past which that part is only *marginal* (see :class:`Confirmation`)."""

LAYOUT_THRESHOLD = 0.90
"""Smallest layout correlation (:func:`layout_correlation`) :func:`confirm` accepts.

Calibrated by ``benchmarks/robustness.py`` (see docs/concepts.md): at 0.90, 0.2%
of the true copies the primary hash matches are lost (brightness +30%, which
clips highlights, loses most: 2%); the look-alike pairs of distinct photos that
passed the mid band and the colour (planet discs on white, a greyscale Uranus and
the Moon) correlate at 0.19-0.90.
"""

LAYOUT_STRICT = 0.97
"""Layout correlation below which that part is only *marginal* (see :class:`Confirmation`).

The three strict limits are about the 98th percentile of true copies matched by
the primary hash, each part on its own (``benchmarks/robustness.py``).
"""

COMPAT_SIZE = 32
"""Side of the grey image of the imagehash-compatible scheme (hash_size 8 x 4)."""

# Working grid of the default scheme: big enough to trim a 1% border, small
# enough that a batch of grids is a few MB.
_GRID = 128
# Side of the resampled window whose DCT is taken.
_SIDE = 64
# Low band (primary hash) and the outer edge of the mid band (confirmation).
_LOW = 16
_MID = 32
# Side of the block of lowest coefficients whose magnitudes are the layout.
_LAYOUT = 8
# A border is "uniform" when the four corners are within this many grey levels
# of their median; a row or column belongs to the border while fewer than
# _TRIM_FRACTION of its cells differ from that colour by more than _TRIM_TOLERANCE.
_TRIM_TOLERANCE = 24.0
_TRIM_FRACTION = 0.01
# At most this fraction of an outer line may differ from the line's colour.
_TRIM_RING = 0.02
# A trim that would keep less than this fraction of a side is ignored (a near-flat image).
_TRIM_MIN_SIDE = 0.08
# Coefficients are rounded to this many decimals (grey in [0, 1]) before the
# median comparison, so that a flat image hashes the same on every machine.
_ROUND = 6
# Pillow reduces by an integer factor first when the image is this many times
# larger than the target (reducing_gap); the LANCZOS/BOX pass then sees few pixels.
_REDUCING_GAP = 3.0
# Before anything else, an image larger than this many times the target side is
# point-sampled (nearest neighbour) down to it. Reading every pixel of a 4 MP image
# (Pillow's reduce, a mode conversion) costs more than all the rest of the hash; a
# sample of 4x4 points per grid cell (default scheme) or 8x8 per cell (compatible
# scheme) is then averaged by the area (or LANCZOS) resampling, and the low DCT band
# averages thousands of them. Measured on real photos (docs/concepts.md): a few bits of 256
# change, resized copies stay far below MATCH_THRESHOLD.
_SAMPLE_FACTOR = 4
# The grid is an area (BOX) average, and so is Pillow's integer reduce: reducing
# by the whole factor first is the same filter, and four times cheaper.
_GRID_REDUCING_GAP = 1.0
# The compatible scheme samples big images to this square grid (8x8 points per
# output pixel), then applies Pillow's LANCZOS weights as matrices.
_COMPAT_GRID = 256

WINDOWS: dict[str, tuple[float, float, float, float]] = {
    "full": (0.0, 1.0, 0.0, 1.0),
    "c90": (0.05, 0.95, 0.05, 0.95),
    "c80": (0.10, 0.90, 0.10, 0.90),
    "tl90": (0.0, 0.9, 0.0, 0.9),
    "tr90": (0.0, 0.9, 0.1, 1.0),
    "bl90": (0.1, 1.0, 0.0, 0.9),
    "br90": (0.1, 1.0, 0.1, 1.0),
    "tl80": (0.0, 0.8, 0.0, 0.8),
    "tr80": (0.0, 0.8, 0.2, 1.0),
    "bl80": (0.2, 1.0, 0.0, 0.8),
    "br80": (0.2, 1.0, 0.2, 1.0),
    "tl95": (0.0, 0.95, 0.0, 0.95),
    "tr95": (0.0, 0.95, 0.05, 1.0),
    "bl95": (0.05, 1.0, 0.0, 0.95),
    "br95": (0.05, 1.0, 0.05, 1.0),
}
"""Sub-windows of a box, as fractions ``(top, bottom, left, right)``.

A variant's window is of the trimmed box, or of the whole frame when its name
has the :data:`FRAME` prefix (``"frame-tl90"``).
"""

FRAME = "frame-"
"""Prefix of a window of the whole frame (the image as is, nothing trimmed)."""

# The 95% windows are stored only for full-bleed images (the trim kept at least this
# share of the area). A packshot's 5% crop loses white ground, which the trim undoes;
# on small objects on white the 95% windows only add look-alike matches (two planet
# discs), measured by benchmarks/robustness.py.
_FULL_BLEED = 0.9
_NARROW = frozenset({"tl95", "tr95", "bl95", "br95"})

DIHEDRAL = (
    "identity",
    "flip_h",
    "flip_v",
    "rot180",
    "transpose",
    "rot90",
    "rot270",
    "transverse",
)
"""The eight flips and quarter turns, named as :class:`PIL.Image.Transpose` does."""

REFERENCE_VARIANTS: tuple[str, ...] = (
    *(f"full:{d}" for d in DIHEDRAL),
    f"{FRAME}full:identity",
    *(f"{FRAME}{w}:identity" for w in WINDOWS if w != "full"),
)
"""The rows an original may store, ``"window:dihedral"``, the query's own first.

The trimmed box with its flips and quarter turns; the whole frame (unless the
trim found nothing, when it is the first row again); and crop windows of the
whole frame (the 95% ones only on full-bleed images). A found copy is hashed
three ways (:data:`QUERY_VARIANTS`): the trim makes padding, borders and white
ground irrelevant, the whole frame survives what moves the trim (a brightened or
rotated packshot, a crop into the object), and the centre 80% of the frame leaves
out what is added at the edges (a shop's logo or text in a corner, the white
corners of a small rotation), matching the original's stored ``frame-c80`` row.
"""

QUERY_VARIANTS: tuple[str, ...] = (
    "full:identity",
    f"{FRAME}full:identity",
    f"{FRAME}c80:identity",
)
"""The hashes of a found copy (:func:`query_features`): trimmed box, whole frame,
centre 80% of the frame. The whole frame is left out when the trim found nothing."""


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


# --- decoding to grey ---------------------------------------------------------------


_Fn = TypeVar("_Fn", bound=Callable[..., Any])


@functools.cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def _one_blas_thread(fn: _Fn) -> _Fn:
    """Run ``fn``'s matrix products on one BLAS thread.

    The products here are small (at most 128 x 128 per image). A multi-threaded
    BLAS gains nothing on them, and on a busy machine its threads wait for each
    other: measured on 2 shared cores, one 64x128 @ 128x128 product took 2.1 ms
    with OpenBLAS's 2 threads and 0.07 ms with one, and the 18 reference hashes
    of a 1 MP image 167 ms instead of 5 ms. Callers in a process pool want one
    thread per worker anyway.
    """

    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        with _blas().limit(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return inner  # type: ignore[return-value]  # same signature, by functools.wraps


def resize_grey(
    image: Image.Image, size: tuple[int, int], resample: Image.Resampling
) -> Image.Image:
    """Resize and turn grey, compositing alpha on white; any mode Pillow decodes."""
    small = resize_flat(image, size, resample)
    return small.convert("L") if small.mode != "L" else small


# 16-bit and 32-bit greys: scaled, not clipped, on the way to 8 bits.
_WIDE_GREYS = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})


def resize_flat(
    image: Image.Image,
    size: tuple[int, int],
    resample: Image.Resampling,
    *,
    reducing_gap: float = _REDUCING_GAP,
) -> Image.Image:
    """Resize to ``L`` or ``RGB``, compositing alpha on white; any mode Pillow decodes."""
    mode = image.mode
    if mode in _WIDE_GREYS:
        # 16-bit and 32-bit greys: Pillow's convert("L") clips instead of scaling.
        array = np.asarray(image, dtype=np.float32)
        top = float(array.max()) if array.size else 0.0
        if top > 255.0:
            array = array * np.float32(255.0 / (65535.0 if top <= 65535.0 else top))
        elif mode == "F" and top <= 1.0:
            array = array * np.float32(255.0)
        grey = Image.fromarray(np.clip(array, 0.0, 255.0).astype(np.float32), "F")
        grey = grey.resize(size, resample, reducing_gap=reducing_gap)
        return Image.fromarray(np.asarray(grey).round().astype(np.uint8), "L")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA", "La", "RGBa"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX ...
    # Pillow premultiplies alpha while resizing RGBA/LA, so the reduction is correct.
    small = image.resize(size, resample, reducing_gap=reducing_gap)
    if small.mode in ("LA", "RGBA", "La", "RGBa"):
        if small.mode in ("La", "RGBa"):
            small = small.convert(small.mode.upper())
        ground = Image.new(small.mode, small.size, (255,) * len(small.getbands()))
        ground.alpha_composite(small)
        small = ground.convert("RGB" if small.mode == "RGBA" else "L")
    return small


def _sample(image: Image.Image, size: tuple[int, int], factor: int) -> Image.Image:
    """Point-sample ``image`` to at most ``factor`` times ``size`` (any mode, no conversion)."""
    width, height = image.size
    target = (min(width, factor * size[0]), min(height, factor * size[1]))
    if target == (width, height):
        return image
    return image.resize(target, Image.Resampling.NEAREST)


def grey_grids(images: Sequence[Image.Image], *, size: int = _GRID) -> F32:
    """Reduce each image to a ``size`` x ``size`` grey grid in [0, 1].

    The aspect ratio is not kept: every hash here is computed on a square grid,
    which makes the hashes insensitive to a squeezed aspect ratio, and sub-windows
    are fractions of the sides anyway.

    Args:
        images: Decoded images in any mode (alpha is composited on white,
            16-bit greys are scaled, CMYK and palettes are converted).
        size: The side of the grid.

    Returns:
        ``(N, size, size)`` ``float32``.
    """
    return _grids(images, size=size)[0]


def _grids(images: Sequence[Image.Image], *, size: int = _GRID) -> tuple[F32, F32]:
    """Grey grids (:func:`grey_grids`) and their ``(N, size, size, 3)`` RGB grids."""
    out = np.empty((len(images), size, size), dtype=np.float32)
    rgb = np.empty((len(images), size, size, 3), dtype=np.float32)
    for i, image in enumerate(images):
        sampled = _sample(image, (size, size), _SAMPLE_FACTOR)
        small = resize_flat(
            sampled, (size, size), Image.Resampling.BOX, reducing_gap=_GRID_REDUCING_GAP
        )
        pixels = np.asarray(small, dtype=np.float32)
        if small.mode == "L":
            out[i] = pixels
            rgb[i] = pixels[..., None]
        else:
            rgb[i] = pixels
            out[i] = np.asarray(small.convert("L"), dtype=np.float32)
    out *= np.float32(1.0 / 255.0)
    rgb *= np.float32(1.0 / 255.0)
    return out, rgb


def colour_signatures(rgb: F32, boxes: F32) -> F32:
    """The chromaticity of the mean colour inside each trimmed box.

    Two opponent coordinates of the mean ``(R, G, B)``, divided by ``R + G + B``
    so that brightness scaling leaves them alone: ``(R - G) / S`` and
    ``(R + G - 2B) / S``. Flips, turns, resizing and re-encoding keep them; a grey
    image has ``(0, 0)``.

    Args:
        rgb: ``(N, n, n, 3)`` RGB grids in [0, 1].
        boxes: ``(N, 4)`` trimmed boxes (:func:`trim_boxes`).

    Returns:
        ``(N, 2)`` ``float32``.
    """
    out = np.zeros((len(rgb), 2), dtype=np.float32)
    for i, box in enumerate(boxes):
        top, bottom = int(box[0]), max(int(np.ceil(box[1])), int(box[0]) + 1)
        left, right = int(box[2]), max(int(np.ceil(box[3])), int(box[2]) + 1)
        r, g, b = rgb[i, top:bottom, left:right].reshape(-1, 3).mean(axis=0)
        total = float(r + g + b) + 1e-6
        out[i] = ((r - g) / total, (r + g - 2 * b) / total)
    rounded: F32 = np.round(out, 4)
    return rounded


# --- DCT matrices -------------------------------------------------------------------


@functools.cache
def _dct_matrix(n: int) -> npt.NDArray[np.float64]:
    """The unnormalised DCT-II of scipy as a matrix: ``y = D @ x``, ``D[k, i] = 2 cos(...)``."""
    k = np.arange(n, dtype=np.float64)[:, None]
    i = np.arange(n, dtype=np.float64)[None, :]
    matrix: npt.NDArray[np.float64] = 2.0 * np.cos(np.pi * k * (2.0 * i + 1.0) / (2.0 * n))
    return matrix


def _area_matrices(start: F32, stop: F32, n: int, m: int) -> F32:
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


# --- compatible scheme --------------------------------------------------------------


def _compat_grey(image: Image.Image) -> npt.NDArray[np.uint8]:
    """The 32x32 grey image of imagehash, by its own steps (images up to the grid's side)."""
    if image.mode in _WIDE_GREYS:
        small = resize_grey(image, (COMPAT_SIZE, COMPAT_SIZE), Image.Resampling.LANCZOS)
    else:
        # imagehash's exact steps (alpha is ignored, as imagehash ignores it).
        small = image.convert("L").resize((COMPAT_SIZE, COMPAT_SIZE), Image.Resampling.LANCZOS)
    return np.asarray(small, dtype=np.uint8)


def _compat_sampled(image: Image.Image) -> npt.NDArray[np.uint8]:
    """A big image point-sampled to the grid, then grey (the two steps commute)."""
    size = (_COMPAT_GRID, _COMPAT_GRID)
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


@_one_blas_thread
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


@_one_blas_thread
def compat_hashes_from_grey(grey: npt.ArrayLike) -> U64:
    """The imagehash-compatible hash of ``(N, 32, 32)`` grey images (0-255).

    Args:
        grey: The images after imagehash's ``convert("L").resize((32, 32))``.

    Returns:
        ``(N,)`` ``uint64``; bit 63 is DCT coefficient (0, 0).
    """
    pixels = np.asarray(grey, dtype=np.float64)
    if pixels.ndim != 3 or pixels.shape[1:] != (COMPAT_SIZE, COMPAT_SIZE):
        raise ValueError(f"expected (N, 32, 32) grey images, got {pixels.shape}")
    d = _dct_matrix(COMPAT_SIZE)[:8]  # only the 8 lowest frequencies are kept
    low = d @ pixels @ d.T  # (N, 8, 8): DCT along axis 0 then axis 1, as imagehash
    flat = low.reshape(len(pixels), 64)
    bits = flat > np.median(flat, axis=1, keepdims=True)
    return _pack(bits)[:, 0]


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
        if max(image.size) > _COMPAT_GRID and image.mode not in _WIDE_GREYS:
            big.append(i)  # point-sampled, then reduced with the whole batch
        else:
            grey[i] = _compat_grey(image)
    if big:
        grey[big] = _compat_reduce(np.stack([_compat_sampled(images[i]) for i in big]))
    return compat_hashes_from_grey(grey)


# --- default scheme -----------------------------------------------------------------


def trim_boxes(grids: F32) -> F32:
    """Find the box inside a uniform border (padding, frame, white ground) of each grid.

    The two sides of an axis (top and bottom, or left and right) are trimmed
    together, and only when both outer lines are uniform (98% of their cells
    within 24 grey levels of the line's median) and of the same colour: white
    letterbox bars, a frame or a packshot's ground are; a sky at the top of a
    photo is not. Then every outer line where fewer than 1% of the cells differ
    from that colour is dropped.

    Args:
        grids: ``(N, n, n)`` grey grids in [0, 1] (:func:`grey_grids`).

    Returns:
        ``(N, 4)`` ``float32`` boxes ``(top, bottom, left, right)`` in cell units,
        half-open.
    """
    count, n, _ = grids.shape
    boxes = _frame_boxes(count, n)
    tolerance = np.float32(_TRIM_TOLERANCE / 255.0)
    # Edges: top, bottom, left, right, each (N, n).
    edges = np.stack([grids[:, 0, :], grids[:, -1, :], grids[:, :, 0], grids[:, :, -1]], 1)
    colours = np.median(edges, axis=2)  # (N, 4)
    uniform = (np.abs(edges - colours[..., None]) <= tolerance).mean(axis=2) >= 1 - _TRIM_RING
    for axis, (a, b) in enumerate(((0, 1), (2, 3))):
        same = uniform[:, a] & uniform[:, b] & (np.abs(colours[:, a] - colours[:, b]) <= tolerance)
        for i in np.flatnonzero(same):
            colour = (colours[i, a] + colours[i, b]) / 2
            differs = np.abs(grids[i] - colour) > tolerance
            lines = differs.mean(axis=1 - axis) >= _TRIM_FRACTION  # rows (axis 0) or columns
            inside = np.flatnonzero(lines)
            if inside.size == 0 or inside[-1] + 1 - inside[0] < _TRIM_MIN_SIDE * n:
                continue  # a (nearly) flat image: nothing to trim to
            # Sub-cell edges: the outermost content line is partly border; its share
            # of content is its mean deviation over that of the next line inward.
            deviation = np.abs(grids[i] - colour).mean(axis=1 - axis)
            first, last = int(inside[0]), int(inside[-1])
            boxes[i, 2 * axis] = first + 1 - _coverage(deviation, first, first + 1)
            boxes[i, 2 * axis + 1] = last + _coverage(deviation, last, last - 1)
    return boxes


def _coverage(deviation: F32, edge: int, inner: int) -> float:
    """Fraction of cell line ``edge`` covered by content, judged against line ``inner``."""
    if not 0 <= inner < deviation.size or deviation[inner] <= 0:
        return 1.0
    return float(np.clip(deviation[edge] / deviation[inner], 0.0, 1.0))


@_one_blas_thread
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
    n = grids.shape[-1]
    frac = np.asarray(windows, dtype=np.float32).reshape(-1, 4)  # (K, 4)
    height = (boxes[:, 1] - boxes[:, 0])[:, None]
    width = (boxes[:, 3] - boxes[:, 2])[:, None]
    top = boxes[:, 0, None] + frac[None, :, 0] * height  # (N, K)
    bottom = boxes[:, 0, None] + frac[None, :, 1] * height
    left = boxes[:, 2, None] + frac[None, :, 2] * width
    right = boxes[:, 2, None] + frac[None, :, 3] * width
    return _project(grids, _projection(top, bottom, n), _projection(left, right, n))


@_one_blas_thread
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
    d = _dct_matrix(_SIDE)[:_MID].astype(np.float32) / np.float32(_SIDE)  # (32, 64)
    projection: F32 = d @ _area_matrices(start, stop, n, _SIDE)  # S + (32, n)
    return projection


def _project(grids: F32, ry: F32, rx: F32) -> F32:
    coeffs = ry @ grids[:, None] @ np.swapaxes(rx, -1, -2)  # (N, K, 32, 32)
    rounded: F32 = np.round(coeffs, _ROUND)
    return rounded


def _dihedral(coeffs: F32, name: str) -> F32:
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


def _low_bits(coeffs: F32) -> npt.NDArray[np.bool_]:
    flat = coeffs[..., :_LOW, :_LOW].reshape(*coeffs.shape[:-2], _LOW * _LOW)
    bits: npt.NDArray[np.bool_] = flat > np.median(flat, axis=-1, keepdims=True)
    return bits


@functools.cache
def _mid_mask() -> npt.NDArray[np.bool_]:
    mask = np.ones((_MID, _MID), dtype=bool)
    mask[:_LOW, :_LOW] = False
    return mask


def _mid_bits(coeffs: F32) -> npt.NDArray[np.bool_]:
    bits: npt.NDArray[np.bool_] = coeffs[..., _mid_mask()] > 0
    return bits


def _pack(bits: npt.NDArray[np.bool_]) -> U64:
    """Pack ``(..., 64*W)`` booleans into ``(..., W)`` ``uint64``, first bit most significant."""
    packed = np.packbits(bits, axis=-1)  # big-endian bytes
    words = packed.reshape(*bits.shape[:-1], -1, 8)
    out: U64 = np.ascontiguousarray(words).view(">u8")[..., 0].astype(np.uint64)
    return out


def _parse_variant(variant: str) -> tuple[str, str]:
    """``(window, dihedral)`` of a variant name; the window keeps its :data:`FRAME` prefix."""
    window, _, dihedral = variant.partition(":")
    if _window_fractions(window) is None or (dihedral or "identity") not in DIHEDRAL:
        raise DescriptorError(f"unknown variant {variant!r}")
    return window, dihedral or "identity"


def _window_fractions(window: str) -> tuple[float, float, float, float] | None:
    return WINDOWS.get(window.removeprefix(FRAME))


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
    return _pack(_low_bits(coeffs))


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


def query_features(images: Sequence[Image.Image]) -> list[QueryFeatures]:
    """Every query hash of each image, with its confirmation bits and colour, in one pass.

    Args:
        images: Decoded queries in any mode.

    Returns:
        One :class:`QueryFeatures` per image.
    """
    grids, rgb = _grids(images)
    boxes = trim_boxes(grids)
    frames = _frame_boxes(len(grids), grids.shape[-1])
    trimmed = window_coefficients(grids, boxes, [WINDOWS["full"]])  # (N, 1, 32, 32)
    framed = frame_coefficients(grids, [WINDOWS["full"], WINDOWS["c80"]])
    coeffs = np.concatenate([trimmed, framed], axis=1)  # (N, 3, 32, 32), QUERY_VARIANTS
    words = _pack(_low_bits(coeffs))
    mid = _pack(_mid_bits(coeffs))
    layouts = _layouts(coeffs)
    colours = colour_signatures(rgb, boxes)
    out = []
    for i in range(len(grids)):
        keep = [0, 2] if _untrimmed(boxes[i], frames[i]) else [0, 1, 2]
        out.append(
            QueryFeatures(
                words=words[i, keep],
                mid=mid[i, keep],
                variants=tuple(QUERY_VARIANTS[k] for k in keep),
                colour=colours[i],
                layout=layouts[i, keep],
            )
        )
    return out


def _frame_boxes(count: int, n: int) -> F32:
    return np.tile(np.array([0, n, 0, n], dtype=np.float32), (count, 1))


def _untrimmed(box: F32, frame: F32) -> bool:
    return bool(np.array_equal(box, frame))


def _applies(variant: str, box: F32, frame: F32) -> bool:
    """Whether an original with this trimmed box stores ``variant`` (see REFERENCE_VARIANTS)."""
    window, _ = _parse_variant(variant)
    if window == f"{FRAME}full" and _untrimmed(box, frame):
        return False  # the same pixels as "full": the first row again
    if window.removeprefix(FRAME) in _NARROW:
        kept = (
            (box[1] - box[0]) * (box[3] - box[2]) / ((frame[1] - frame[0]) * (frame[3] - frame[2]))
        )
        return bool(kept >= _FULL_BLEED)
    return True


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
    grids, rgb = _grids(images)
    return _references(grids, rgb, tuple(variants))


def _references(grids: F32, rgb: F32, variants: tuple[str, ...]) -> list[ReferenceHashes]:
    # Every window the descriptor or a variant needs, each computed once.
    windows = list(_DESCRIPTOR_WINDOWS)
    for variant in variants:
        window, _ = _parse_variant(variant)
        if window not in windows:
            windows.append(window)
    boxes = trim_boxes(grids)
    frames = _frame_boxes(len(grids), grids.shape[-1])
    trimmed = [w for w in windows if not w.startswith(FRAME)]
    framed = [w for w in windows if w.startswith(FRAME)]
    parts = {
        **_window_map(grids, boxes, trimmed),
        **_window_map(grids, None, framed),
    }
    coeffs = np.stack([parts[w] for w in windows], axis=1)  # (N, len(windows), 32, 32)
    colours = _colour_bytes(colour_signatures(rgb, boxes))
    rows = []
    for variant in variants:
        window, dihedral = _parse_variant(variant)
        rows.append(_dihedral(coeffs[:, windows.index(window)], dihedral))
    words = _pack(_low_bits(np.stack(rows, axis=1)))  # (N, K, WORDS)
    described = [windows.index(w) for w in _DESCRIPTOR_WINDOWS]
    descriptors = _pack(_mid_bits(coeffs[:, described]))  # (N, len(DESCRIPTOR), CONFIRM_WORDS)
    layouts = _layout_bytes(_layouts(coeffs[:, described]))
    out = []
    for i in range(len(grids)):
        keep = [k for k, v in enumerate(variants) if _applies(v, boxes[i], frames[i])]
        out.append(
            ReferenceHashes(
                words=words[i, keep],
                variants=tuple(variants[k] for k in keep),
                descriptor=_DESCRIPTOR_TAG
                + colours[i]
                + descriptors[i].astype(">u8").tobytes()
                + layouts[i],
            )
        )
    return out


def _window_map(grids: F32, boxes: F32 | None, names: Sequence[str]) -> dict[str, F32]:
    """The coefficients of each named window: of the trimmed ``boxes``, or of the frame (None)."""
    if not names:
        return {}
    fractions = [WINDOWS[w.removeprefix(FRAME)] for w in names]
    coeffs = (
        frame_coefficients(grids, fractions)
        if boxes is None
        else window_coefficients(grids, boxes, fractions)
    )
    return {w: coeffs[:, k] for k, w in enumerate(names)}


_DESCRIPTOR_TAG = b"mid768cl-v4:"
# The windows a descriptor covers, in order: the trimmed box, then the whole frame
# and each of its windows. Version 4 is the colour signature (4 bytes), the mid-band
# words of each window (96 bytes each), then the layout of each (64 int8 each).
_DESCRIPTOR_WINDOWS: tuple[str, ...] = (
    "full",
    f"{FRAME}full",
    *(f"{FRAME}{w}" for w in WINDOWS if w != "full"),
)
# Older descriptors are still read (and confirmed without the checks they lack).
# Version 3 was version 4 without the layouts. Version 2 covered the windows of the
# trimmed box; version 1 was version 2 without the colour signature.
_DESCRIPTOR_TAG_V3 = b"mid768c-v3:"
_DESCRIPTOR_TAG_V2 = b"mid768c-v2:"
_DESCRIPTOR_TAG_V1 = b"mid768-v1:"
_DESCRIPTOR_WINDOWS_V2: tuple[str, ...] = (
    "full", "c90", "c80", "tl90", "tr90", "bl90", "br90", "tl80", "tr80", "bl80", "br80",
)  # fmt: skip


def _layouts(coeffs: F32) -> F32:
    """The layout of each block of coefficients (``(..., 32, 32)`` to ``(..., 8, 8)``)."""
    layout: F32 = coeffs[..., :_LAYOUT, :_LAYOUT].copy()
    layout[..., 0, 0] = 0.0
    return layout


def _layout_bytes(layouts: F32) -> list[bytes]:
    """Each image's ``(W, 8, 8)`` layouts as ``int8``, each window scaled to use +-127.

    A correlation does not see the scale, so it is not stored.
    """
    top = np.abs(layouts).max(axis=(-2, -1), keepdims=True)
    scaled = np.round(layouts * (127.0 / np.maximum(top, np.float32(1e-12)))).astype(np.int8)
    return [row.tobytes() for row in scaled]


def _colour_bytes(colours: F32) -> list[bytes]:
    """Each ``(2,)`` colour signature as two big-endian ``int16`` in 1e-4 units."""
    scaled = np.round(colours * 10_000).astype(">i2")
    return [row.tobytes() for row in scaled]


def reference_hashes(image: Image.Image) -> ReferenceHashes:
    """The hashes an original stores: trimmed box, flips, quarter turns, frame and crop windows.

    Args:
        image: The decoded original, any mode.

    Returns:
        Its :class:`ReferenceHashes`.
    """
    return reference_hashes_batch([image])[0]


@dataclass(frozen=True, slots=True)
class _Descriptor:
    """A parsed descriptor: what each version holds (None where it holds nothing)."""

    names: tuple[str, ...]
    words: U64  # (windows, CONFIRM_WORDS)
    colour: F32 | None  # (2,)
    layouts: F32 | None  # (windows, 8, 8)


# Version tag, windows, bytes of colour, bytes of layout per window.
_VERSIONS: tuple[tuple[bytes, tuple[str, ...], int, int], ...] = (
    (_DESCRIPTOR_TAG, _DESCRIPTOR_WINDOWS, 4, _LAYOUT * _LAYOUT),
    (_DESCRIPTOR_TAG_V3, _DESCRIPTOR_WINDOWS, 4, 0),
    (_DESCRIPTOR_TAG_V2, _DESCRIPTOR_WINDOWS_V2, 4, 0),
    (_DESCRIPTOR_TAG_V1, _DESCRIPTOR_WINDOWS_V2, 0, 0),
)


def _parse_descriptor(descriptor: bytes) -> _Descriptor:
    """Split a descriptor of any version; DescriptorError if it is none or has the wrong size."""
    version = next((v for v in _VERSIONS if descriptor.startswith(v[0])), None)
    if version is None:
        raise DescriptorError("not a mid768cl-v4, mid768c-v3, mid768c-v2 or mid768-v1 descriptor")
    tag, names, colour_size, layout_size = version
    body = descriptor[len(tag) :]
    mid_size = len(names) * CONFIRM_WORDS * 8
    expected = colour_size + mid_size + len(names) * layout_size
    if len(body) != expected:
        raise DescriptorError(
            f"descriptor has {len(body)} bytes after its tag, expected {expected}"
        )
    colour: F32 | None = None
    if colour_size:
        colour = np.frombuffer(body[:4], dtype=">i2").astype(np.float32) / np.float32(10_000)
    words: U64 = (
        np.frombuffer(body[colour_size : colour_size + mid_size], dtype=">u8")
        .astype(np.uint64)
        .reshape(len(names), CONFIRM_WORDS)
    )
    layouts: F32 | None = None
    if layout_size:
        raw = np.frombuffer(body[colour_size + mid_size :], dtype=np.int8)
        layouts = raw.astype(np.float32).reshape(len(names), _LAYOUT, _LAYOUT)
    return _Descriptor(names=names, words=words, colour=colour, layouts=layouts)


@functools.cache
def _mid_permutation(dihedral: str) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Where each mid-band bit of a window goes, and whether it flips, under ``dihedral``."""
    index = np.arange(_MID * _MID, dtype=np.float32).reshape(_MID, _MID) + 1.0
    moved = _dihedral(index, dihedral)[_mid_mask()]
    return (np.abs(moved).astype(np.intp) - 1), moved < 0


def confirm_bits(images: Sequence[Image.Image]) -> U64:
    """The mid-band confirmation hash of each image's trimmed box, as found.

    Args:
        images: Decoded queries in any mode.

    Returns:
        ``(N, CONFIRM_WORDS)`` ``uint64``.
    """
    grids = grey_grids(images)
    coeffs = window_coefficients(grids, trim_boxes(grids), [WINDOWS["full"]])[:, 0]
    return _pack(_mid_bits(coeffs))


def confirm_distance_bits(
    query: npt.ArrayLike, descriptor: bytes, *, variant: str | None = None
) -> int:
    """:func:`confirm_distance` from a query's mid-band bits (no decoding).

    Args:
        query: ``(CONFIRM_WORDS,)`` ``uint64``: the mid-band bits of the query
            row that matched (:attr:`QueryFeatures.mid`, or :func:`confirm_bits`).
        descriptor: :attr:`ReferenceHashes.descriptor` of the candidate original.
        variant: The matched reference row's name; None tries every row the
            descriptor covers.

    Returns:
        The smallest distance in bits (of 768).

    Raises:
        DescriptorError: If the descriptor or the variant is not of this scheme, or
            the descriptor does not cover the variant's window.
    """
    parsed = _parse_descriptor(descriptor)
    query_words = np.asarray(query, dtype=np.uint64).reshape(CONFIRM_WORDS)
    if variant is None:
        return _nearest_variant(parsed, query_words)[1]
    return _mid_distance(parsed, query_words, variant)


# The rows of the previous default (trimmed-box windows), still found in inventories.
_V2_VARIANTS: tuple[str, ...] = tuple(f"{w}:identity" for w in _DESCRIPTOR_WINDOWS_V2[1:])


def _window_index(parsed: _Descriptor, window: str) -> int:
    """Where the descriptor keeps ``window``; DescriptorError if it does not cover it."""
    if window not in parsed.names:
        raise DescriptorError(f"the descriptor does not cover window {window!r}")
    return parsed.names.index(window)


def _mid_distance(parsed: _Descriptor, query_words: U64, variant: str) -> int:
    """Mid-band distance of a query row to the descriptor's row ``variant``."""
    window, dihedral = _parse_variant(variant)
    turned = _turn_mid(parsed.words[_window_index(parsed, window)], dihedral)
    return int(hamming(turned, query_words))


def _nearest_variant(parsed: _Descriptor, query_words: U64) -> tuple[str, int]:
    """The row the descriptor covers whose mid band is nearest (the first of ties)."""
    covered = [
        v for v in (*REFERENCE_VARIANTS, *_V2_VARIANTS) if _parse_variant(v)[0] in parsed.names
    ]
    distances = {v: _mid_distance(parsed, query_words, v) for v in covered}
    variant = min(distances, key=distances.__getitem__)
    return variant, distances[variant]


def _turn_mid(words: U64, dihedral: str) -> U64:
    """The mid-band bits of a window's flip or turn, from the window's own bits."""
    if dihedral == "identity":
        return words
    bits = np.unpackbits(words.astype(">u8").view(np.uint8)).astype(bool)
    grid = np.zeros(_MID * _MID, dtype=bool)
    grid[_mid_mask().ravel()] = bits
    # Mid-band cell j of the turned window is source cell perm[j], negated where flip[j].
    perm, flip = _mid_permutation(dihedral)
    return _pack(grid[perm] ^ flip)


def confirm_distance(image: Image.Image, descriptor: bytes, *, variant: str | None = None) -> int:
    """Hamming distance (of 768 bits) between a query's mid band and an original's.

    Each query variant of the image (:data:`QUERY_VARIANTS`) is compared with
    the original's window (and flip or turn) named by ``variant``, the
    reference row the candidate matched; the smaller distance is returned. With
    no variant, the smallest distance over every row is returned.

    Args:
        image: The query (the found copy), decoded.
        descriptor: :attr:`ReferenceHashes.descriptor` of the candidate original.
        variant: The matched row's name, e.g. ``"full:flip_h"``.

    Returns:
        The distance; :func:`confirm` compares it with :data:`CONFIRM_THRESHOLD`.

    Raises:
        DescriptorError: If the descriptor or the variant is not of this scheme.
    """
    features = query_features([image])[0]
    return min(confirm_distance_bits(m, descriptor, variant=variant) for m in features.mid)


def confirm(image: Image.Image, descriptor: bytes, *, variant: str | None = None) -> bool:
    """Whether a candidate is confirmed by the second, independent check.

    Each query variant of the image is tried (:func:`confirmation`); one that
    passes confirms.

    Args:
        image: The query (the found copy), decoded.
        descriptor: :attr:`ReferenceHashes.descriptor` of the candidate original.
        variant: The matched reference row's name, when known.

    Returns:
        True when a query row passes every check the descriptor allows.

    Raises:
        DescriptorError: If the descriptor or the variant is not of this scheme.
    """
    features = query_features([image])[0]
    return any(
        confirmation(features, row, descriptor, variant=variant).confirmed
        for row in range(len(features.variants))
    )


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The second check of a candidate, part by part (:func:`confirmation`).

    Confirmed when every part is within its threshold (:data:`CONFIRM_THRESHOLD`,
    :data:`LAYOUT_THRESHOLD`, :data:`COLOUR_THRESHOLD`) and at most one is only
    marginal (past :data:`CONFIRM_STRICT`, :data:`LAYOUT_STRICT` or
    :data:`COLOUR_STRICT`). A part that is not judged is neither.

    Attributes:
        variant: The reference row compared (the matched one, or the one whose
            mid band is nearest when none was given).
        mid_distance: Mid-band Hamming distance, bits of 768
            (:data:`CONFIRM_THRESHOLD`).
        layout: Layout correlation (:data:`LAYOUT_THRESHOLD`); None for a
            descriptor older than version 4.
        colour: Colour difference (:data:`COLOUR_THRESHOLD`); None when colour
            cannot tell (a grey query or original, a version 1 descriptor).
    """

    variant: str
    mid_distance: int
    layout: float | None
    colour: float | None

    @property
    def failures(self) -> tuple[str, ...]:
        """Each failed part, said with its figure and limit; empty when confirmed."""
        out = []
        if self.mid_distance > CONFIRM_THRESHOLD:
            out.append(f"mid band {self.mid_distance} > {CONFIRM_THRESHOLD} bits")
        if self.layout is not None and self.layout < LAYOUT_THRESHOLD:
            out.append(f"layout correlation {self.layout:.3f} < {LAYOUT_THRESHOLD}")
        if self.colour is not None and self.colour > COLOUR_THRESHOLD:
            out.append(f"colour differs by {self.colour:.3f} > {COLOUR_THRESHOLD}")
        if not out and len(self.marginal) > 1:
            out.append("more than one part only marginal: " + ", ".join(self.marginal))
        return tuple(out)

    @property
    def marginal(self) -> tuple[str, ...]:
        """The parts within their threshold but past their strict limit, said with figures.

        A true copy that a transform degrades is usually degraded in one respect
        (a crop or a turn moves the mid band, brightening clips the layout, contrast
        shifts the colour); a look-alike of another photo (two gravestones, a cross
        and a candle on white) is mediocre in all of them. So one marginal part is
        accepted, two are not.
        """
        out = []
        if CONFIRM_STRICT < self.mid_distance <= CONFIRM_THRESHOLD:
            out.append(f"mid band {self.mid_distance} > {CONFIRM_STRICT} bits")
        if self.layout is not None and LAYOUT_THRESHOLD <= self.layout < LAYOUT_STRICT:
            out.append(f"layout {self.layout:.3f} < {LAYOUT_STRICT}")
        if self.colour is not None and COLOUR_STRICT < self.colour <= COLOUR_THRESHOLD:
            out.append(f"colour {self.colour:.3f} > {COLOUR_STRICT}")
        return tuple(out)

    @property
    def confirmed(self) -> bool:
        """Whether every part the descriptor allows passed."""
        return not self.failures

    def describe(self) -> str:
        """The figures, for evidence: ``"mid band 120/768 bits, layout 0.981, colour 0.004"``."""
        layout = "n/a" if self.layout is None else f"{self.layout:.3f}"
        colour = "n/a" if self.colour is None else f"{self.colour:.3f}"
        return (
            f"mid band {self.mid_distance}/{_MID * _MID - _LOW * _LOW} bits, "
            f"layout {layout}, colour {colour}"
        )


def confirmation(
    features: QueryFeatures, row: int, descriptor: bytes, *, variant: str | None = None
) -> Confirmation:
    """The second check of a candidate original, from a query's features (no decoding).

    Three parts, each independent of the primary hash's bits: the signs of the
    mid band (:func:`confirm_distance_bits`), the correlation of the coarse
    brightness layout (:func:`layout_correlation`) and the mean colour
    (:func:`colour_distance_sig`). A part the descriptor's version lacks, or
    that cannot tell (colour of a grey image), is not judged.

    Args:
        features: The query's :func:`query_features`.
        row: The query row that matched (index into ``features.variants``).
        descriptor: :attr:`ReferenceHashes.descriptor` of the candidate original.
        variant: The matched reference row's name; None compares with the row
            whose mid band is nearest.

    Returns:
        The :class:`Confirmation`.

    Raises:
        DescriptorError: If the descriptor or the variant is not of this scheme.
    """
    parsed = _parse_descriptor(descriptor)
    query_words = np.asarray(features.mid[row], dtype=np.uint64)
    if variant is None:
        variant, mid = _nearest_variant(parsed, query_words)
    else:
        mid = _mid_distance(parsed, query_words, variant)
    return Confirmation(
        variant=variant,
        mid_distance=mid,
        layout=_layout(parsed, features.layout[row], variant),
        colour=_colour(parsed, features.colour),
    )


def layout_correlation(query: npt.ArrayLike, descriptor: bytes, *, variant: str) -> float | None:
    """Correlation of a query row's coarse layout with the original's window.

    The layout is the 8x8 lowest DCT coefficients of the window without the mean:
    the brightness layout at 1/16 of the side, with its contrast. The primary hash
    keeps only whether each coefficient is above the median; two discs on white
    agree there, but not in how much brighter one side is than the other, or how
    dark the limb is. The correlation ignores brightness and contrast (an offset
    and a scale of the pixels). Flips and turns are applied to the stored layout.

    Args:
        query: ``(8, 8)`` layout of the query row that matched
            (:attr:`QueryFeatures.layout`).
        descriptor: :attr:`ReferenceHashes.descriptor` of the candidate original.
        variant: The matched reference row's name.

    Returns:
        The correlation in [-1, 1] (1: the same layout); None for a descriptor
        older than version 4, or when either layout is flat.

    Raises:
        DescriptorError: If the descriptor or the variant is not of this scheme, or
            the descriptor does not cover the variant's window.
    """
    return _layout(_parse_descriptor(descriptor), query, variant)


def _layout(parsed: _Descriptor, query: npt.ArrayLike, variant: str) -> float | None:
    window, dihedral = _parse_variant(variant)
    index = _window_index(parsed, window)
    if parsed.layouts is None:
        return None
    stored = _dihedral(parsed.layouts[index], dihedral).ravel()
    found = np.asarray(query, dtype=np.float32).reshape(_LAYOUT * _LAYOUT).copy()
    found[0] = 0.0  # the mean, whatever the caller passed
    norms = float(np.linalg.norm(stored)) * float(np.linalg.norm(found))
    if norms <= 0.0:
        return None
    return float(np.dot(stored, found)) / norms


# A query whose chromaticity is this close to (0, 0) is grey: its colour says nothing.
_GREY_CHROMA = 0.005


def query_colours(images: Sequence[Image.Image]) -> F32:
    """The colour signature of each image as found (:func:`colour_signatures`).

    Args:
        images: Decoded queries in any mode.

    Returns:
        ``(N, 2)`` ``float32``.
    """
    grids, rgb = _grids(images)
    return colour_signatures(rgb, trim_boxes(grids))


def colour_distance_sig(query: npt.ArrayLike, descriptor: bytes) -> float | None:
    """:func:`colour_distance` from a query's :func:`query_colours` row (no decoding).

    Args:
        query: ``(2,)`` colour signature of the query.
        descriptor: :attr:`ReferenceHashes.descriptor` of the candidate original.

    Returns:
        The largest difference of the two coordinates, or None when it cannot
        tell (a grey query or original, or a version 1 descriptor without colour).

    Raises:
        DescriptorError: If the descriptor is not of this scheme.
    """
    return _colour(_parse_descriptor(descriptor), query)


def _colour(parsed: _Descriptor, query: npt.ArrayLike) -> float | None:
    stored = parsed.colour
    colour = np.asarray(query, dtype=np.float32).reshape(2)
    if (
        stored is None
        or min(float(np.abs(colour).max()), float(np.abs(stored).max())) < _GREY_CHROMA
    ):
        return None
    return float(np.abs(colour - stored).max())


def colour_distance(image: Image.Image, descriptor: bytes) -> float | None:
    """How far the query's mean colour is from the original's (chromaticity units).

    The second part of the confirmation: two look-alikes (a yellow and a blue
    disc on white) can agree in both DCT bands but not in colour. A grey query
    (a greyscale copy) or a grey original is not judged by colour.

    Args:
        image: The query (the found copy), decoded.
        descriptor: :attr:`ReferenceHashes.descriptor` of the candidate original.

    Returns:
        The difference, compared with :data:`COLOUR_THRESHOLD`; None when
        colour cannot tell (grey query or original, version 1 descriptor).
    """
    return colour_distance_sig(query_colours([image])[0], descriptor)
