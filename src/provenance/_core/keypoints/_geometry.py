"""Descriptor matches and the RANSAC fits a placement is measured on.

A similarity (rotation, uniform scale, shift) first; for a copy no similarity
maps (stretched, keystoned, photographed at an angle) a perspective map, kept
only when plausible. :func:`provenance._core.keypoints.locate` judges them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from provenance._core.keypoints._libs import load_cv2
from provenance._core.keypoints._record import F32, Ints, LocalFeatures

MAX_MATCH_BITS = 64
"""A descriptor pair further apart than this (of 256 bits) is no match."""

RATIO = 0.85
"""Lowe's ratio test: the nearest query descriptor must beat the second by this."""

ANGLE_TOLERANCE = 20.0
"""A RANSAC inlier counts only when its two keypoints' orientations differ by the
transform's rotation within this many degrees. Chance inliers have random
orientations, so about 1 in 9 of them passes; on 80 corpus originals x 4 hard
transforms true copies kept their confirmation at 20 as at 30 degrees, while
random false pairs with at least 5 inliers fell from 170 to 13 of 4,000 (with the
cross-check of :func:`_matches`)."""

RANSAC_PIXELS = 5.0
"""RANSAC reprojection tolerance, in the query's working pixels."""

MAX_ANISOTROPY = 1.6
"""A perspective placement may stretch the copy by at most this much in one
direction over the other (the ratio of the local map's singular values at the
reference's centre): a page that shows a picture squeezed to another aspect, or
a photo of a screen taken at an angle. Measured: see docs/search.md, "Stretched,
keystoned and covered copies"."""

MAX_FORESHORTENING = 1.6
"""A perspective placement's local scale may differ by at most this factor between
the reference's corners (1 for a similarity; about 1.2 for a 10% keystone)."""


def _matches(query: LocalFeatures, reference: LocalFeatures) -> tuple[Ints, Ints]:
    """Reference and query indices of mutually nearest descriptor pairs passing the ratio test.

    A pair is kept when the query descriptor is the reference descriptor's
    nearest, clearly nearer than the second (:data:`RATIO`), within
    :data:`MAX_MATCH_BITS`, and the reference descriptor is also the query
    descriptor's nearest (cross-check): a pair that is only one side's best
    is as often a coincidence between unrelated pictures as a copy.
    """
    cv2 = load_cv2()
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    chosen: dict[int, list[int]] = {}  # query index -> reference indices choosing it
    for pair in matcher.knnMatch(reference.descriptors, query.descriptors, k=2):
        if not pair or pair[0].distance > MAX_MATCH_BITS:
            continue
        best = pair[0]
        if len(pair) > 1 and best.distance >= RATIO * pair[1].distance:
            continue
        chosen.setdefault(best.trainIdx, []).append(best.queryIdx)
    if not chosen:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    # The cross-check only for the query points some reference point chose (a few
    # hundred of a query's 1,500): far cheaper than a second full brute-force pass.
    wanted = np.fromiter(chosen, np.intp, len(chosen))
    src: list[int] = []
    dst: list[int] = []
    for match in matcher.match(query.descriptors[wanted], reference.descriptors):
        point = int(wanted[match.queryIdx])
        if match.trainIdx in chosen[point]:  # each other's nearest: one pair per point
            src.append(match.trainIdx)
            dst.append(point)
    return np.array(src, np.intp), np.array(dst, np.intp)


def _agreeing(
    query: LocalFeatures,
    reference: LocalFeatures,
    src: Ints,
    dst: Ints,
    degrees: float | npt.NDArray[np.float64],
) -> npt.NDArray[np.bool_]:
    """Which matches turn their keypoint's orientation by the transform's rotation.

    A similarity that rotates the picture by ``degrees`` (image coordinates,
    y down, as OpenCV measures keypoint angles) turns every keypoint's
    orientation by the same angle; a match that lands within the RANSAC
    tolerance by chance has a random orientation (``degrees`` per match for a
    perspective map, whose rotation varies across the picture). All True for a
    reference stored without orientations.
    """
    if query.angles is None or reference.angles is None:
        return np.ones(len(src), bool)
    turn = query.angles[dst] - reference.angles[src] - np.float32(degrees)
    off = np.abs((turn + 180.0) % 360.0 - 180.0)
    return np.asarray(off <= ANGLE_TOLERANCE, dtype=bool)


@dataclass(frozen=True, slots=True)
class Fit:
    """A RANSAC similarity (or perspective map) from reference working pixels to the query's."""

    src: F32  # reference points of the tentative matches
    matrix: npt.NDArray[np.float64]  # 2x3, working pixels to working pixels (a perspective
    # map's first-order form at the reference's centre)
    keep: npt.NDArray[np.bool_]  # RANSAC inliers whose orientations turned with it
    scale: float  # query pixels per reference pixel
    turn: float  # degrees, in image coordinates (y down)
    dst: F32  # query points of the tentative matches
    pairs: tuple[Ints, Ints]  # reference and query indices of the tentative matches
    homography: npt.NDArray[np.float64] | None = None  # 3x3, for a perspective map


def fit_similarity(query: LocalFeatures, reference: LocalFeatures) -> Fit | None:
    """Match descriptors and fit a similarity with RANSAC; None with too few matches."""
    if len(query) < 3 or len(reference) < 3:
        return None
    ref_index, query_index = _matches(query, reference)
    if len(ref_index) < 3:
        return None
    src, dst = reference.points[ref_index], query.points[query_index]
    cv2 = load_cv2()
    matrix, mask = cv2.estimateAffinePartial2D(
        src,
        dst,
        method=cv2.RANSAC,
        ransacReprojThreshold=RANSAC_PIXELS,
        maxIters=2000,
        confidence=0.995,
        refineIters=10,
    )
    if matrix is None or mask is None:
        return None
    a, b = float(matrix[0, 0]), float(matrix[1, 0])
    turn = math.degrees(math.atan2(b, a))
    # RANSAC inliers whose keypoint orientations turned with the picture.
    keep = mask.reshape(-1).astype(bool) & _agreeing(query, reference, ref_index, query_index, turn)
    return Fit(
        src=src,
        matrix=matrix,
        keep=keep,
        scale=math.hypot(a, b),
        turn=turn,
        dst=dst,
        pairs=(ref_index, query_index),
    )


def perspective_at(
    homography: npt.NDArray[np.float64], points: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The perspective map at ``points`` (n x 2): mapped points and local 2x2 linear parts."""
    h = homography
    x, y = points[:, 0], points[:, 1]
    w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    u = (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / w
    v = (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / w
    jac = np.empty((len(points), 2, 2), np.float64)
    jac[:, 0, 0] = (h[0, 0] - u * h[2, 0]) / w
    jac[:, 0, 1] = (h[0, 1] - u * h[2, 1]) / w
    jac[:, 1, 0] = (h[1, 0] - v * h[2, 0]) / w
    jac[:, 1, 1] = (h[1, 1] - v * h[2, 1]) / w
    return np.stack([u, v], axis=1), jac


def fit_perspective(query: LocalFeatures, reference: LocalFeatures, fit: Fit) -> Fit | None:
    """The tentative matches of ``fit`` fitted with a RANSAC perspective map, if plausible.

    Plausible: the reference's outline maps to a convex quadrilateral in front of
    the camera, not mirrored, stretched by at most :data:`MAX_ANISOTROPY` at its
    centre and foreshortened by at most :data:`MAX_FORESHORTENING` between its
    corners. The orientation check follows the map's local rotation at each match.
    """
    if len(fit.src) < 8:
        return None
    cv2 = load_cv2()
    homography, mask = cv2.findHomography(
        fit.src, fit.dst, cv2.RANSAC, RANSAC_PIXELS, maxIters=2000, confidence=0.995
    )
    if homography is None or mask is None or abs(float(homography[2, 2])) < 1e-12:
        return None
    h = np.asarray(homography, np.float64) / float(homography[2, 2])
    centre = np.array([reference.width / 2, reference.height / 2], np.float64)
    middle = _plausible_middle(h, reference, centre)
    if middle is None:
        return None
    mapped, linear = middle
    turn = math.degrees(math.atan2(linear[1, 0] - linear[0, 1], linear[0, 0] + linear[1, 1]))
    _, at_matches = perspective_at(h, fit.src.astype(np.float64))
    turns = np.degrees(
        np.arctan2(
            at_matches[:, 1, 0] - at_matches[:, 0, 1], at_matches[:, 0, 0] + at_matches[:, 1, 1]
        )
    )
    ref_index, query_index = fit.pairs
    keep = mask.reshape(-1).astype(bool) & _agreeing(
        query, reference, ref_index, query_index, turns
    )
    affine = np.hstack([linear, (mapped - linear @ centre)[:, None]])
    return Fit(
        src=fit.src,
        matrix=affine,
        keep=keep,
        scale=math.sqrt(float(np.linalg.det(linear))),
        turn=turn,
        dst=fit.dst,
        pairs=fit.pairs,
        homography=h,
    )


def _plausible_middle(
    h: npt.NDArray[np.float64], reference: LocalFeatures, centre: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
    """The map at the reference's centre (point, 2x2 linear part), or None when implausible.

    Implausible: a corner behind the camera, a mirrored or folded outline, local
    scales further apart than :data:`MAX_FORESHORTENING` between the corners, or
    a stretch beyond :data:`MAX_ANISOTROPY` at the centre.
    """
    cv2 = load_cv2()
    width, height = float(reference.width), float(reference.height)
    outline = np.array([[0, 0], [width, 0], [width, height], [0, height], centre], np.float64)
    if (outline @ h[2, :2] + h[2, 2] <= 0).any():
        return None  # part of the picture behind the camera
    mapped, jac = perspective_at(h, outline)
    det = np.linalg.det(jac)
    if (det <= 0).any() or not cv2.isContourConvex(mapped[:4].astype(np.float32)):
        return None  # mirrored or folded
    local = np.sqrt(det[:4])
    if local.max() > MAX_FORESHORTENING * local.min():
        return None
    singular = np.linalg.svd(jac[4], compute_uv=False)
    if singular[0] > MAX_ANISOTROPY * singular[1]:
        return None
    return mapped[4], jac[4]
