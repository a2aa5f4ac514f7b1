"""Perceptual hashes of decoded pixels, vectorized over batches (architecture decision 6).

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

The package, one job per module (this ``__init__`` only re-exports)::

    _scheme.py       the default scheme's name, sizes, windows, flips and row names
    _grids.py        decoded images to grey/RGB grids; the trim of a uniform border
    _transforms.py   DCT and area-resampling matrices; flips and turns of coefficients
    _bits.py         coefficients to packed bits; Hamming distance
    _blas.py         one BLAS thread for the small matrix products
    _compat.py       the compatible scheme (imagehash.phash, batched)
    _dct256.py       the default scheme: query and reference hashes
    _descriptor.py   the persisted descriptor, versions 1-4 (DescriptorError on bad bytes)
    _confirm.py      the second check of a candidate and its thresholds
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from provenance._core.phash._bits import hamming
from provenance._core.phash._compat import compat_hashes
from provenance._core.phash._confirm import (
    COLOUR_STRICT,
    COLOUR_THRESHOLD,
    CONFIRM_STRICT,
    CONFIRM_THRESHOLD,
    LAYOUT_STRICT,
    LAYOUT_THRESHOLD,
    Confirmation,
    colour_distance,
    confirm,
    confirm_distance,
    confirmation,
    layout_correlation,
)
from provenance._core.phash._dct256 import (
    QueryFeatures,
    ReferenceHashes,
    query_features,
    query_hashes,
    reference_hashes,
    reference_hashes_batch,
)
from provenance._core.phash._grids import resize_flat, resize_grey
from provenance._core.phash._scheme import (
    DIHEDRAL,
    MATCH_THRESHOLD,
    QUERY_VARIANTS,
    REFERENCE_VARIANTS,
    SCHEME,
    WORDS,
)

__all__ = [
    "COLOUR_STRICT",
    "COLOUR_THRESHOLD",
    "CONFIRM_STRICT",
    "CONFIRM_THRESHOLD",
    "DIHEDRAL",
    "LAYOUT_STRICT",
    "LAYOUT_THRESHOLD",
    "MATCH_THRESHOLD",
    "QUERY_VARIANTS",
    "REFERENCE_VARIANTS",
    "SCHEME",
    "WORDS",
    "Confirmation",
    "QueryFeatures",
    "ReferenceHashes",
    "colour_distance",
    "compat_hashes",
    "confirm",
    "confirm_distance",
    "confirmation",
    "hamming",
    "layout_correlation",
    "query_features",
    "query_hashes",
    "reference_hashes",
    "reference_hashes_batch",
    "resize_flat",
    "resize_grey",
]

# Names this module exported before it became a package (issue 18), now internal:
# still served, with a DeprecationWarning, for one release.
_MOVED = {
    "COMPAT_SIZE": "_compat",
    "CONFIRM_WORDS": "_scheme",
    "FRAME": "_scheme",
    "WINDOWS": "_scheme",
    "colour_distance_sig": "_confirm",
    "colour_signatures": "_grids",
    "compat_hashes_from_grey": "_compat",
    "confirm_bits": "_dct256",
    "confirm_distance_bits": "_confirm",
    "frame_coefficients": "_dct256",
    "grey_grids": "_grids",
    "query_colours": "_dct256",
    "trim_boxes": "_grids",
    "window_coefficients": "_dct256",
}


def __getattr__(name: str) -> Any:
    """Serve a name moved into an internal module, with a DeprecationWarning."""
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = f"{__name__}.{_MOVED[name]}"
    warnings.warn(
        f"provenance._core.phash.{name} is internal since the phash package split and will be "
        f"removed from provenance._core.phash in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module), name)
