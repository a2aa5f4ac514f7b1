"""The second check of a candidate: its thresholds and the :class:`Confirmation`.

Owns how a candidate original found by the primary hash is confirmed or refused
by three parts independent of that hash's bits (the mid band's signs, the
coarse layout's correlation, the mean colour), each against a calibrated
threshold and a strict limit. Reads the original's side from its descriptor
(:mod:`provenance._core.phash._descriptor`). Pure: values in, values out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from provenance._core.phash._bits import hamming
from provenance._core.phash._dct256 import QueryFeatures, query_colours, query_features
from provenance._core.phash._descriptor import Descriptor, parse_descriptor
from provenance._core.phash._scheme import CONFIRM_WORDS, LAYOUT, LOW, MID, U64

__all__ = [
    "COLOUR_STRICT",
    "COLOUR_THRESHOLD",
    "CONFIRM_STRICT",
    "CONFIRM_THRESHOLD",
    "LAYOUT_STRICT",
    "LAYOUT_THRESHOLD",
    "Confirmation",
    "colour_distance",
    "colour_distance_sig",
    "confirm",
    "confirm_distance",
    "confirm_distance_bits",
    "confirmation",
    "layout_correlation",
]

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

# A query whose chromaticity is this close to (0, 0) is grey: its colour says nothing.
_GREY_CHROMA = 0.005


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
            f"mid band {self.mid_distance}/{MID * MID - LOW * LOW} bits, "
            f"layout {layout}, colour {colour}"
        )


# --- from a query's features (no decoding) ---------------------------------------------


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
    parsed = parse_descriptor(descriptor)
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
    parsed = parse_descriptor(descriptor)
    query_words = np.asarray(query, dtype=np.uint64).reshape(CONFIRM_WORDS)
    if variant is None:
        return _nearest_variant(parsed, query_words)[1]
    return _mid_distance(parsed, query_words, variant)


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
    return _layout(parse_descriptor(descriptor), query, variant)


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
    return _colour(parse_descriptor(descriptor), query)


def _mid_distance(parsed: Descriptor, query_words: U64, variant: str) -> int:
    """Mid-band distance of a query row to the descriptor's row ``variant``."""
    return int(hamming(parsed.mid_row(variant), query_words))


def _nearest_variant(parsed: Descriptor, query_words: U64) -> tuple[str, int]:
    """The row the descriptor covers whose mid band is nearest (the first of ties)."""
    distances = {v: _mid_distance(parsed, query_words, v) for v in parsed.variants()}
    variant = min(distances, key=distances.__getitem__)
    return variant, distances[variant]


def _layout(parsed: Descriptor, query: npt.ArrayLike, variant: str) -> float | None:
    stored = parsed.layout_row(variant)
    if stored is None:
        return None
    found = np.asarray(query, dtype=np.float32).reshape(LAYOUT * LAYOUT).copy()
    found[0] = 0.0  # the mean, whatever the caller passed
    norms = float(np.linalg.norm(stored)) * float(np.linalg.norm(found))
    if norms <= 0.0:
        return None
    return float(np.dot(stored, found)) / norms


def _colour(parsed: Descriptor, query: npt.ArrayLike) -> float | None:
    stored = parsed.colour
    colour = np.asarray(query, dtype=np.float32).reshape(2)
    if (
        stored is None
        or min(float(np.abs(colour).max()), float(np.abs(stored).max())) < _GREY_CHROMA
    ):
        return None
    return float(np.abs(colour - stored).max())


# --- from a decoded query ----------------------------------------------------------------


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
