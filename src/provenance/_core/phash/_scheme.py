"""What the default scheme (``dct256-v1``) is: its name, sizes, windows, flips and rows.

Owns the constants every part of the scheme shares (the grid, the DCT bands, the
match threshold) and the names of the rows an original stores and a query is
hashed as (``"window:dihedral"``), with the rules for which rows an image keeps.
Pure: constants and small functions of names and boxes; no pixels.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from provenance.errors import DescriptorError

__all__ = [
    "CONFIRM_WORDS",
    "DIHEDRAL",
    "F32",
    "FRAME",
    "GRID",
    "LAYOUT",
    "LOW",
    "MATCH_THRESHOLD",
    "MID",
    "QUERY_VARIANTS",
    "REFERENCE_VARIANTS",
    "ROUND",
    "SCHEME",
    "SIDE",
    "U64",
    "WINDOWS",
    "WORDS",
    "applies",
    "frame_boxes",
    "parse_variant",
    "untrimmed",
    "window_applies",
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

CONFIRM_WORDS = 12
"""``uint64`` words of one mid-band confirmation hash (768 bits)."""

# Working grid of the default scheme: big enough to trim a 1% border, small
# enough that a batch of grids is a few MB.
GRID = 128
# Side of the resampled window whose DCT is taken.
SIDE = 64
# Low band (primary hash) and the outer edge of the mid band (confirmation).
LOW = 16
MID = 32
# Side of the block of lowest coefficients whose magnitudes are the layout.
LAYOUT = 8
# Coefficients are rounded to this many decimals (grey in [0, 1]) before the
# median comparison, so that a flat image hashes the same on every machine.
ROUND = 6

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


def parse_variant(variant: str) -> tuple[str, str]:
    """``(window, dihedral)`` of a variant name; the window keeps its :data:`FRAME` prefix."""
    window, _, dihedral = variant.partition(":")
    if WINDOWS.get(window.removeprefix(FRAME)) is None or (dihedral or "identity") not in DIHEDRAL:
        raise DescriptorError(f"unknown variant {variant!r}")
    return window, dihedral or "identity"


def frame_boxes(count: int, n: int) -> F32:
    """``count`` boxes of the whole ``n`` x ``n`` grid ``(top, bottom, left, right)``."""
    return np.tile(np.array([0, n, 0, n], dtype=np.float32), (count, 1))


def untrimmed(box: F32, frame: F32) -> bool:
    """Whether the trim found nothing (the box is the whole frame)."""
    return bool(np.array_equal(box, frame))


def applies(variant: str, box: F32, frame: F32) -> bool:
    """Whether an original with this trimmed box stores ``variant`` (see REFERENCE_VARIANTS)."""
    return window_applies(parse_variant(variant)[0], box, frame)


def window_applies(window: str, box: F32, frame: F32) -> bool:
    """:func:`applies` for every variant of ``window`` (as :func:`parse_variant` names it)."""
    if window == f"{FRAME}full" and untrimmed(box, frame):
        return False  # the same pixels as "full": the first row again
    if window.removeprefix(FRAME) in _NARROW:
        kept = (
            (box[1] - box[0]) * (box[3] - box[2]) / ((frame[1] - frame[0]) * (frame[3] - frame[2]))
        )
        return bool(kept >= _FULL_BLEED)
    return True
