"""Geometric confirmation: where a reference lies in a query (:func:`locate`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from provenance._core.keypoints._geometry import (
    Fit,
    fit_perspective,
    fit_similarity,
    perspective_at,
)
from provenance._core.keypoints._record import LocalFeatures
from provenance._core.keypoints._region import (
    Colours,
    compare_region,
    compare_visible,
    hull_coverage,
    inlier_spread,
)

MIN_INLIERS = 20
"""A placement needs at least this many RANSAC inliers (false pairs of the corpus
reach 12 at most; true copies 60 to 200: ``benchmarks/robustness.py``)."""

MIN_SPREAD = 0.25
"""The inliers must span at least this share of the reference's width or height
(a cluster of repeated texture in one corner is no copy)."""

MIN_COVERAGE = 0.02
"""The inliers' convex hull must cover at least this share of the matched region (the
part of the reference that lies inside the query). A degenerate inlier set (points
along one edge or line, or clustered in a small patch of repeated texture) passes
:data:`MIN_SPREAD`, which looks at one side only, but covers almost no area;
a copy's inliers lie all over the picture. Measured (``benchmarks/robustness.py``):
1,472 true copies of the corpus with 20+ inliers cover a median 0.29, 0.044 at
their 1st percentile, 0.019 at the least; chance inlier sets of unrelated pairs
(5+ inliers) a median 0.0017."""

MAX_COLOUR_DIFFERENCE = 0.10
"""The located region, warped back onto the reference, must have its colours: mean
chroma difference over the coloured cells (0-1). The same product in another
colour has the same keypoints; this is what tells it apart. When both sides have
colour (:data:`MIN_HUE_CHROMA`), it is the difference left once a global chroma
scale (:data:`CHROMA_SCALE_RANGE`) is taken out, in the reference's units; with
the hue rule (:data:`MIN_HUE_AGREEMENT`) beside it."""

MIN_HUE_CHROMA = 0.02
"""Below this root-mean-square chroma (reference or located region), hue is noise:
the colour rule is the plain difference (:data:`MAX_COLOUR_DIFFERENCE`) as before
2026-12-07, so a grey copy of a coloured asset is still refused by its missing
chroma, and a near-grey asset is judged as it always was."""

CHROMA_SCALE_RANGE = (0.5, 2.5)
"""A filter's chroma scale the colour rule accepts: the located region's
root-mean-square chroma over the reference's. Saturation x1.6 with contrast x1.3
(``ImageEnhance``) scales the corpus's pictures by 0.97-2.15 (1st-99th
percentile; clipping keeps saturated ones lower), saturation x0.6 by 0.56-0.65."""

MIN_HUE_AGREEMENT = 0.80
"""Hue agreement a coloured region needs: the cosine between the reference's and
the region's per-cell chroma vectors, weighted by chroma (a global scale leaves
it at 1; a hue rotation by t degrees makes it about cos t). On the corpus's true
copies 0.947 at the least unfiltered, 0.78-0.82 at the least under a filter
(clipped saturated colours turn a little); hue rotated 45 degrees 0.62-0.78, 90
degrees 0.20 at most, a red-blue swap -0.99 at the 1st percentile."""

MIN_LAYOUT = 0.85
"""The located region's 16x16 luma must correlate with the reference's this well:
true copies of the corpus reach 0.84 at their 1st percentile and 0.91 at the 2nd;
another photo of the same animal matched on half its body 0.58-0.82."""

MIN_INLIER_RATIO = 0.60
"""At least this share of the tentative matches must agree with the transform (true
copies of the corpus: 0.68 at the 1st percentile; look-alikes 0.46-0.57)."""

SCALE_RANGE = (0.08, 12.0)
"""Plausible size of the copy: query pixels per reference pixel (working sizes)."""

PERSPECTIVE_FROM = 8
"""A placement the similarity does not confirm is fitted again with a perspective map
(a homography: a photo of a screen, a keystoned or stretched copy) when the
similarity found at least this many inliers; the perspective placement replaces it
only when it passes every rule."""

COVERED_MIN_INLIERS = 40
"""Leaving covered cells out of the colour and layout rules (a sticker over the copy)
needs twice :data:`MIN_INLIERS`, and a query region with colour (a grey copy is
judged on every cell, as before: see :data:`MIN_HUE_CHROMA`). Another photo of the
same animal on white (a look-alike of the corpus) was confirmed with 29-37 inliers
when the cells where its pose differs were left out as covered (docs/search.md,
"Stretched, keystoned and covered copies")."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a reference image was found in a query, and how well it fits.

    Attributes:
        box: ``(left, top, right, bottom)`` in pixels of the query as given: the
            reference's outline mapped into the query, clipped to it.
        inliers: Matches consistent with the transform (RANSAC inliers).
        matches: Tentative matches (descriptor pairs passing the ratio test).
        transform: Row-major 2x3 similarity from the reference's working pixels
            to the query's pixels as given; for a perspective placement, the
            perspective map's first-order (affine) form at the reference's centre.
        scale: Query pixels per reference pixel, both at their working sizes.
        rotation_degrees: Counter-clockwise rotation of the copy.
        spread: How far the inliers reach across the reference (the larger
            share of its width or height their bounding box spans).
        coverage: Area of the inliers' convex hull over the area of the matched
            region (the part of the reference inside the query), 0-1.
        colours: The colour rule's measurements of the located region warped
            back onto the reference (chroma difference, a filter's chroma scale,
            hue agreement; None: grey, or too little inside).
        layout: Correlation of the located region's coarse luma with the
            reference's (None: flat, or too little inside).
        failures: The acceptance rules it fails (empty: a confirmed placement).
        homography: Row-major 3x3 perspective map from the reference's working
            pixels to the query's pixels as given, when the copy was located by
            one (stretched, keystoned, photographed at an angle); None for a
            similarity.
        hidden: The share of the located region's cells left out of the
            colour and layout rules as covered by something laid over the copy
            (a sticker, a badge; :func:`provenance._core.keypoints._region.compare_visible`),
            0 when every cell was compared.
        mirrored: Found in the query's mirror image (:func:`mirror_placement`):
            the copy is the reference mirrored left-right, then rotated by
            ``rotation_degrees``; ``box`` and ``transform`` are in the query's
            own pixels, the transform a reflection.
    """

    box: tuple[int, int, int, int]
    inliers: int
    matches: int
    transform: tuple[float, float, float, float, float, float]
    scale: float
    rotation_degrees: float
    spread: float
    coverage: float
    colours: Colours | None
    layout: float | None
    failures: tuple[str, ...]
    homography: tuple[float, ...] | None = None
    hidden: float = 0.0
    mirrored: bool = False

    @property
    def colour_difference(self) -> float | None:
        """Mean chroma difference of the located region (None: grey, or too little inside)."""
        return None if self.colours is None else self.colours.difference

    @property
    def confirmed(self) -> bool:
        """Whether every acceptance rule holds."""
        return not self.failures

    def describe(self) -> str:
        """One line for evidence: inliers, transform and box."""
        left, top, right, bottom = self.box
        model = "a similarity" if self.homography is None else "a perspective map"
        mirror = "mirrored, " if self.mirrored else ""
        covered = f", {self.hidden:.0%} of it covered" if self.hidden else ""
        return (
            f"{self.inliers} of {self.matches} keypoint matches agree on {model} "
            f"({mirror}scale {self.scale:.2f}, rotation {self.rotation_degrees:.1f} deg), "
            f"box ({left}, {top}, {right}, {bottom}), spread {self.spread:.2f}{covered}"
        )


def mirror_placement(placement: Placement, width: float) -> Placement:
    """A placement located in a query's mirror image, in the query's own pixels.

    The mirror image is the query flipped left-right: ``x' = width - x`` in
    pixels of the query as given (a vertical flip is this mirror turned by 180
    degrees, which a similarity covers). The box is mirrored back (``left =
    width - right``, still covering the copy), and the transform composed with
    the flip: ``(a, -b, tx; b, a, ty)`` becomes ``(-a, b, width - tx; b, a, ty)``,
    which maps the reference's working pixels into the query as given: the
    reference mirrored left-right (``x -> -x``), rotated, scaled and shifted.
    The rotation of that reading, counter-clockwise as seen, is the mirrored
    fit's negated. A perspective map (``homography``) is composed with the
    flip alike. The acceptance measurements do not change (they were taken
    on the mirror image, whose pixels are the query's).

    Args:
        placement: :func:`locate` of the mirror image's features (``mirrored``
            False).
        width: The query's width in its pixels as given (the features'
            ``width * scale``).

    Raises:
        ValueError: ``placement`` is mirrored already.
    """
    if placement.mirrored:
        raise ValueError("the placement is mirrored already")
    left, top, right, bottom = placement.box
    a, b_neg, tx, b, d, ty = placement.transform
    edge = math.ceil(width)
    box = (
        max(0, math.floor(width - right)),
        top,
        min(edge, math.ceil(width - left)),
        bottom,
    )
    transform = (-a, -b_neg, round(width - tx, 3), b, d, ty)
    homography = placement.homography
    if homography is not None:
        # The flip after the map: its first row becomes width * third row - first row.
        top_row = [width * homography[6 + i] - homography[i] for i in range(3)]
        homography = (*(round(v, 9) for v in top_row), *homography[3:])
    return replace(
        placement,
        box=box,
        transform=transform,
        homography=homography,
        rotation_degrees=-placement.rotation_degrees,
        mirrored=True,
    )


def _box(
    to_query: npt.NDArray[np.float64], query: LocalFeatures, reference: LocalFeatures
) -> tuple[int, int, int, int]:
    """The reference's outline mapped into the query as given (2x3 or 3x3), clipped to it."""
    corners = np.array(
        [[0, 0], [reference.width, 0], [reference.width, reference.height], [0, reference.height]],
        dtype=np.float64,
    )
    if to_query.shape == (3, 3):
        mapped, _ = perspective_at(to_query, corners)
    else:
        mapped = corners @ to_query[:, :2].T + to_query[:, 2]
    full_w, full_h = query.width * query.scale, query.height * query.scale
    left = int(np.clip(np.floor(mapped[:, 0].min()), 0, full_w))
    top = int(np.clip(np.floor(mapped[:, 1].min()), 0, full_h))
    right = int(np.clip(np.ceil(mapped[:, 0].max()), 0, full_w))
    bottom = int(np.clip(np.ceil(mapped[:, 1].max()), 0, full_h))
    return left, top, right, bottom


def _failures(
    *,
    inliers: int,
    matches: int,
    spread: float,
    coverage: float,
    scale: float,
    box: tuple[int, int, int, int],
    colour: Colours | None,
    layout: float | None,
) -> tuple[str, ...]:
    """The acceptance rules a placement fails, in a fixed order (empty: confirmed)."""
    left, top, right, bottom = box
    failures = []
    if inliers < MIN_INLIERS:
        failures.append(f"{inliers} inliers < {MIN_INLIERS}")
    if inliers < MIN_INLIER_RATIO * matches:
        failures.append(f"inlier ratio {inliers / matches:.2f} < {MIN_INLIER_RATIO}")
    if spread < MIN_SPREAD:
        failures.append(f"spread {spread:.2f} < {MIN_SPREAD}")
    if coverage < MIN_COVERAGE:
        failures.append(f"inliers cover {coverage:.2f} < {MIN_COVERAGE} of the matched region")
    if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
        failures.append(f"scale {scale:.2f} outside {SCALE_RANGE}")
    if right - left < 8 or bottom - top < 8:
        failures.append("box outside the query")
    if colour is not None:
        failures.extend(_colour_failures(colour))
    if layout is not None and layout < MIN_LAYOUT:
        failures.append(f"layout correlation {layout:.2f} < {MIN_LAYOUT}")
    return tuple(failures)


def _colour_failures(colour: Colours) -> list[str]:
    """The colour rule's failures (empty: the located region has the reference's colours).

    A filter (saturation, contrast, brightness) scales every cell's chroma alike
    and keeps its hue; the same product in another colour turns the hue. So,
    when both sides have colour: the chroma scale must be plausible, the hues
    must agree, and what is left after the scale must be small. A near-grey side
    has no hue: the plain difference, as before.
    """
    grey = min(colour.reference_chroma, colour.query_chroma) < MIN_HUE_CHROMA
    if grey:
        if colour.difference > MAX_COLOUR_DIFFERENCE:
            return [
                f"colour differs by {colour.difference:.2f} > {MAX_COLOUR_DIFFERENCE} "
                f"(near-grey: chroma {colour.reference_chroma:.3f} here, "
                f"{colour.query_chroma:.3f} in the query)"
            ]
        return []
    failures = []
    low, high = CHROMA_SCALE_RANGE
    if not low <= colour.scale <= high:
        failures.append(
            f"colour differs in saturation: chroma x{colour.scale:.2f} outside {CHROMA_SCALE_RANGE}"
        )
    if colour.agreement < MIN_HUE_AGREEMENT:
        failures.append(
            f"colour differs in hue: agreement {colour.agreement:.2f} < {MIN_HUE_AGREEMENT}"
        )
    left = colour.scaled_difference / max(1.0, colour.scale)
    if left > MAX_COLOUR_DIFFERENCE:
        failures.append(
            f"colour differs by {left:.2f} > {MAX_COLOUR_DIFFERENCE} after chroma "
            f"x{colour.scale:.2f} (by {colour.difference:.2f} before)"
        )
    return failures


def _rounded_homography(to_query: npt.NDArray[np.float64]) -> tuple[float, ...]:
    """The 3x3 perspective map, row-major, normalised to 1 in its last cell: 9 decimals."""
    flat = (to_query / to_query[2, 2]).reshape(-1)
    return tuple(round(float(v), 9) for v in flat)


def _rounded(to_query: npt.NDArray[np.float64]) -> tuple[float, float, float, float, float, float]:
    """The 2x3 transform, row-major: 6 decimals for the linear part, 3 for the shift."""
    flat = to_query.reshape(-1)
    return (
        round(float(flat[0]), 6),
        round(float(flat[1]), 6),
        round(float(flat[2]), 3),
        round(float(flat[3]), 6),
        round(float(flat[4]), 6),
        round(float(flat[5]), 3),
    )


def locate(query: LocalFeatures, reference: LocalFeatures) -> Placement | None:
    """Find ``reference`` inside ``query``: matches, a RANSAC similarity, the box.

    A placement the similarity leaves unconfirmed with at least
    :data:`PERSPECTIVE_FROM` inliers is fitted again with a perspective map
    (a stretched, keystoned or photographed copy), then judged with the cells a
    flat overlay covers left out of its colours and layout (a sticker or badge:
    at most 30% of them, none holding an inlier; only with
    :data:`COVERED_MIN_INLIERS` and a query region with colour); either
    replaces it only when it passes every rule.

    Args:
        query: :func:`query_features` of the image being checked.
        reference: :func:`reference_features` of a stored original.

    Returns:
        The best placement with the rules it fails, or None when there are too
        few matches to fit a transform at all.
    """
    fit = fit_similarity(query, reference)
    if fit is None:
        return None
    placement = _placement(query, reference, fit)
    if placement.confirmed or placement.inliers < PERSPECTIVE_FROM:
        return placement
    fits = [fit]
    warped = fit_perspective(query, reference, fit)
    if warped is not None:
        other = _placement(query, reference, warped)
        if other.confirmed:
            return other
        fits.append(warped)
    if placement.colours is not None and placement.colours.query_chroma < MIN_HUE_CHROMA:
        return placement  # a grey copy stays judged on all its cells: colourways look alike grey
    for tried in fits:
        if int(tried.keep.sum()) >= COVERED_MIN_INLIERS:
            seen = _placement(query, reference, tried, covered=True)
            if seen.confirmed:
                return seen
    return placement


def _placement(
    query: LocalFeatures, reference: LocalFeatures, fit: Fit, *, covered: bool = False
) -> Placement:
    """Measure ``fit`` against every rule (``covered``: leaving out what covers the copy)."""
    kept = fit.src[fit.keep]
    inliers = int(fit.keep.sum())
    spread = inlier_spread(kept, reference)
    model = fit.matrix if fit.homography is None else fit.homography
    coverage = hull_coverage(kept, query, reference, model)
    # Into the query's pixels as given.
    to_query = fit.matrix.astype(np.float64) * query.scale
    exact = (
        None
        if fit.homography is None
        else np.diag([query.scale, query.scale, 1.0]) @ fit.homography
    )
    box = _box(to_query if exact is None else exact, query, reference)
    hidden = 0.0
    if covered:
        colour, layout, hidden = compare_visible(query, reference, model, kept)
    else:
        colour, layout = compare_region(query, reference, model)
    failures = _failures(
        inliers=inliers,
        matches=len(fit.src),
        spread=spread,
        coverage=coverage,
        scale=fit.scale,
        box=box,
        colour=colour,
        layout=layout,
    )
    return Placement(
        box=box,
        inliers=inliers,
        matches=len(fit.src),
        transform=_rounded(to_query),
        scale=fit.scale,
        rotation_degrees=-fit.turn,  # counter-clockwise as seen
        spread=spread,
        coverage=coverage,
        colours=colour,
        layout=layout,
        failures=failures,
        homography=None if exact is None else _rounded_homography(exact),
        hidden=hidden,
    )
