"""Local features that find a known image inside another one (issue 21).

A whole-image perceptual hash (:mod:`provenance._core.phash`) cannot recognise a picture
that is only *part* of the query: a product image shown at half the width of a
shop's web page (a screenshot), placed beside other pictures in a banner or a
collage, rotated a few degrees, or cropped well off-centre. This module does it
the classic way: ORB keypoints (oriented FAST corners, 256-bit rBRIEF
descriptors; Rublee et al., ICCV 2011) and a geometric check.

* An original stores :data:`REFERENCE_FEATURES` keypoints of its grey pixels
  reduced to at most :data:`REFERENCE_SIDE` pixels (:func:`reference_features`):
  each a 32-byte descriptor, its position and its orientation, 37 bytes, about
  10 KB per asset (:meth:`LocalFeatures.to_bytes`). They are computed from the
  decoded image the caller already holds, reduced once (an integer box
  reduction, then a small bilinear step).
* A query keeps up to :data:`QUERY_FEATURES` keypoints at up to
  :data:`QUERY_SIDE` pixels (:func:`query_features`), so an asset shown at 40% of
  a page still has about as many pixels as its reference.
* :class:`KeypointIndex` (faiss binary index: exact under :data:`FLAT_LIMIT`
  descriptors, an inverted file with an HNSW coarse quantizer above it) turns
  every query descriptor's nearest stored descriptors into votes per stored
  asset; the best-voted few are checked one by one.
* :func:`locate` matches the query against one reference (Lowe's ratio test and a
  cross-check: each side's nearest descriptor on Hamming distance), fits a
  similarity transform (rotation, uniform scale, translation) with RANSAC
  (OpenCV ``estimateAffinePartial2D``), counts only the inliers whose keypoint
  orientations turned with the transform, and reports where
  the reference lies in the query (a :class:`Placement`: box, inliers,
  transform). :attr:`Placement.failures` says which of the acceptance rules
  failed; the thresholds are measured in ``benchmarks/robustness.py`` (false
  pairs of the real-photo corpus) and documented in docs/search.md.

Mirror images are not found here (ORB is not mirror-invariant): the perceptual
hash's dihedral rows handle flips, and verify tries that fast path first.

Pure: ``PIL.Image`` or numpy arrays in, values out. No paths, no I/O, no clock.
OpenCV and faiss are imported on first use, so importing provenance stays cheap.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from provenance._core import phash

if TYPE_CHECKING:
    import types

__all__ = [
    "FLAT_LIMIT",
    "INDEXED_FEATURES",
    "MIN_COVERAGE",
    "MIN_INLIERS",
    "MIN_SPREAD",
    "QUERY_FEATURES",
    "QUERY_SIDE",
    "REFERENCE_FEATURES",
    "REFERENCE_SIDE",
    "SCHEME",
    "KeypointIndex",
    "LocalFeatures",
    "Placement",
    "locate",
    "query_features",
    "reference_features",
]

SCHEME = "orb256-v1"
"""Name of the stored keypoint scheme (ORB, 256-bit descriptors, this module's sizes)."""

REFERENCE_SIDE = 384
"""An original's grey pixels are reduced to at most this many pixels per side. Was 512:
ORB's cost follows the area (1 MP JPEG: 2.7-3.9 instead of 3.8-5.4 ms per image), and
recall on the corpus's partial copies did not fall (docs/search.md). Rows stored at
512 px are still matched: the query's 8-level pyramid spans both sizes."""

REFERENCE_FEATURES = 256
"""Keypoints kept per original (the strongest FAST responses over 8 pyramid levels)."""

REFERENCE_LEVELS = 8
"""ORB pyramid levels of an original (scale factor 1.2 between levels)."""

QUERY_SIDE = 1024
"""A query's grey pixels are reduced to at most this many pixels per side."""

QUERY_FEATURES = 1500
"""Keypoints kept per query: enough for an asset that fills 40% of it."""

MAX_MATCH_BITS = 64
"""A descriptor pair further apart than this (of 256 bits) is no match."""

VOTE_BITS = 28
"""A stored descriptor this near a query descriptor votes for its image. At 40 bits
the corners of a page's header and text voted for packshots on white, and a
screenshot's own asset ranked 6th-11th among 20k assets in 5 of 13 queries; at 28
bits it ranked 0th-7th in all 13 (``benchmarks/robustness.py``)."""

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
colour has the same keypoints; this is what tells it apart."""

MIN_LAYOUT = 0.85
"""The located region's 16x16 luma must correlate with the reference's this well:
true copies of the corpus reach 0.84 at their 1st percentile and 0.91 at the 2nd;
another photo of the same animal matched on half its body 0.58-0.82."""

MIN_INLIER_RATIO = 0.60
"""At least this share of the tentative matches must agree with the transform (true
copies of the corpus: 0.68 at the 1st percentile; look-alikes 0.46-0.57)."""

SCALE_RANGE = (0.08, 12.0)
"""Plausible size of the copy: query pixels per reference pixel (working sizes)."""

LIST_CAP = 4.0
"""An inverted list keeps at most this many times the mean list length."""

INDEXED_FEATURES = 96
"""Keypoints per stored image that vote (the strongest); all are used to locate it.
A copy still gets tens of votes, against a few for unrelated images, and the
index needs 96 x 40 bytes per asset in memory instead of 256 x 40."""

FLAT_LIMIT = 50_000
"""Up to this many stored descriptors (about 200 assets) the index is exact
(brute-force Hamming); beyond it an inverted file (a brute-force scan of 0.5M
descriptors took 3.6 s per query here)."""

_BYTES = 32
_FORMAT = struct.Struct("<4sHHHf")  # magic, count, width, height, scale
_MAGIC = b"orb2"  # with one orientation byte per keypoint
_MAGIC_V1 = b"orb1"  # without: still read
_FIXED = 16.0  # positions stored as uint16 sixteenths of a working pixel
_MAX_PER_ROW = 1024  # descriptor ids: row << 10 | index
_GRID = 16  # a reference's colour grid, per side
_COLOUR_BYTES = _GRID * _GRID * 3
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_WARP = 64  # the query is warped back onto the reference at this size, then averaged

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
Ints = npt.NDArray[np.intp]


@functools.cache
def _cv2() -> types.ModuleType:
    import cv2  # heavy: imported on first use only

    cv2.setNumThreads(1)  # verify and batches parallelise by process (decision 9)
    return cv2


@functools.cache
def _faiss() -> types.ModuleType:
    import faiss  # heavy: imported on first use only

    faiss.omp_set_num_threads(1)
    return faiss


@dataclass(frozen=True, slots=True)
class LocalFeatures:
    """Keypoints of one image at its working size.

    Attributes:
        points: ``(N, 2)`` ``float32`` keypoint positions ``(x, y)`` in working pixels.
        descriptors: ``(N, 32)`` ``uint8`` ORB descriptors, one row per point.
        width: Width of the working image.
        height: Height of the working image.
        scale: Pixels of the image as given per working pixel (1.0 or more).
        colour: ``(16, 16, 3)`` ``uint8`` mean RGB of a 16x16 grid over the
            working image (a reference), or the query's RGB at half its working
            size: what :func:`locate` compares colours with.
        angles: ``(N,)`` ``float32`` keypoint orientations in degrees (ORB's
            intensity centroid, ``[0, 360)``), or None for a record stored
            before they were kept (``orb1``): :func:`locate` then skips the
            orientation check.
    """

    points: F32
    descriptors: U8
    width: int
    height: int
    scale: float
    colour: U8
    angles: F32 | None = None

    def __len__(self) -> int:
        """The number of keypoints."""
        return int(self.descriptors.shape[0])

    def to_bytes(self) -> bytes:
        """The stored form: a 14-byte header, positions, descriptors, orientations, colours.

        Orientations are stored as one byte each (1.4 degrees a step); a
        record without them (``angles`` None) is written in the older ``orb1`` form.
        """
        fixed = np.clip(np.round(self.points * _FIXED), 0, 65535).astype("<u2")
        colour = np.ascontiguousarray(self.colour, dtype=np.uint8)
        if colour.shape != (_GRID, _GRID, 3):
            raise ValueError("only a reference's 16x16 colour grid is stored")
        parts = [fixed.tobytes(), np.ascontiguousarray(self.descriptors).tobytes()]
        magic = _MAGIC_V1
        if self.angles is not None:
            magic = _MAGIC
            steps = np.round(np.asarray(self.angles, np.float32) * (256 / 360)).astype(np.int64)
            parts.append((steps % 256).astype(np.uint8).tobytes())
        head = _FORMAT.pack(magic, len(self), self.width, self.height, self.scale)
        return head + b"".join(parts) + colour.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalFeatures:
        """Parse :meth:`to_bytes` output (``orb2``, or ``orb1`` without orientations).

        Raises:
            ValueError: Not this scheme's stored form, or truncated.
        """
        if len(data) < _FORMAT.size:
            raise ValueError("keypoint record too short")
        magic, count, width, height, scale = _FORMAT.unpack_from(data)
        per_point = {_MAGIC: 5 + _BYTES, _MAGIC_V1: 4 + _BYTES}.get(magic)
        if per_point is None or len(data) != _FORMAT.size + count * per_point + _COLOUR_BYTES:
            raise ValueError("not an orb1 or orb2 keypoint record")
        start = _FORMAT.size
        points = np.frombuffer(data, "<u2", count * 2, start).reshape(count, 2)
        descriptors = np.frombuffer(data, np.uint8, count * _BYTES, start + count * 4)
        angles = None
        if magic == _MAGIC:
            steps = np.frombuffer(data, np.uint8, count, start + count * (4 + _BYTES))
            angles = steps.astype(np.float32) * np.float32(360 / 256)
        colour = np.frombuffer(data, np.uint8, _COLOUR_BYTES, start + count * per_point)
        return cls(
            points=(points.astype(np.float32) / np.float32(_FIXED)),
            descriptors=descriptors.reshape(count, _BYTES),
            width=int(width),
            height=int(height),
            scale=float(scale),
            colour=colour.reshape(_GRID, _GRID, 3),
            angles=angles,
        )


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a reference image was found in a query, and how well it fits.

    Attributes:
        box: ``(left, top, right, bottom)`` in pixels of the query as given: the
            reference's outline mapped into the query, clipped to it.
        inliers: Matches consistent with the transform (RANSAC inliers).
        matches: Tentative matches (descriptor pairs passing the ratio test).
        transform: Row-major 2x3 similarity from the reference's working pixels
            to the query's pixels as given.
        scale: Query pixels per reference pixel, both at their working sizes.
        rotation_degrees: Counter-clockwise rotation of the copy.
        spread: How far the inliers reach across the reference (the larger
            share of its width or height their bounding box spans).
        coverage: Area of the inliers' convex hull over the area of the matched
            region (the part of the reference inside the query), 0-1.
        colour_difference: Mean chroma difference of the located region warped
            back onto the reference (None: grey, or too little inside).
        layout: Correlation of the located region's coarse luma with the
            reference's (None: flat, or too little inside).
        failures: The acceptance rules it fails (empty: a confirmed placement).
    """

    box: tuple[int, int, int, int]
    inliers: int
    matches: int
    transform: tuple[float, float, float, float, float, float]
    scale: float
    rotation_degrees: float
    spread: float
    coverage: float
    colour_difference: float | None
    layout: float | None
    failures: tuple[str, ...]

    @property
    def confirmed(self) -> bool:
        """Whether every acceptance rule holds."""
        return not self.failures

    def describe(self) -> str:
        """One line for evidence: inliers, transform and box."""
        left, top, right, bottom = self.box
        return (
            f"{self.inliers} of {self.matches} keypoint matches agree on a similarity "
            f"(scale {self.scale:.2f}, rotation {self.rotation_degrees:.1f} deg), "
            f"box ({left}, {top}, {right}, {bottom}), spread {self.spread:.2f}"
        )


def _working(image: Image.Image, side: int) -> tuple[U8, Image.Image, float]:
    """Grey pixels at most ``side`` per side, the flattened colour image, and the factor.

    One cheap reduction of the decoded image serves both (alpha composited on
    white): Pillow's integer box reduction (libImaging ``reduce``, premultiplied
    for alpha) to at least ``side`` and less than twice it, then OpenCV's
    bilinear resampling of the grey pixels to ``side`` (a step under 2x, so
    no antialiasing is needed). Measured on a 1 MP RGB image (CPU, loaded
    machine): 1.9 ms with Pillow's bilinear resample of the reduced image, 1.3
    ms this way; a 4 MP alpha PNG 45 ms through a full-resolution
    premultiplied resample, 17 ms this way.
    """
    cv2 = _cv2()
    width, height = image.size
    factor = max(width, height) // side
    if factor >= 2 and image.mode in ("RGB", "L", "RGBA", "LA"):
        image = image.reduce(factor)
    if image.mode not in ("RGB", "L"):
        # Alpha on white, palettes, CMYK, 16-bit greys...: phash's flattening, at this size.
        image = phash.resize_flat(image, image.size, Image.Resampling.BOX)
    grey = np.asarray(image.convert("L") if image.mode == "RGB" else image, dtype=np.uint8)
    factor_out = min(1.0, side / max(width, height, 1))
    size = (max(1, round(width * factor_out)), max(1, round(height * factor_out)))
    if (grey.shape[1], grey.shape[0]) != size:
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(grey), image, width / size[0]


def extract(
    image: Image.Image, *, side: int, features: int, reference: bool = True, levels: int = 8
) -> LocalFeatures:
    """ORB keypoints of ``image`` reduced to at most ``side`` pixels per side.

    Args:
        image: Decoded pixels, any mode (alpha is composited on white).
        side: Longest working side in pixels.
        features: Keep at most this many keypoints (strongest first).
        reference: Keep a 16x16 colour grid (what is stored); else the colour
            pixels at half the working size (what a query is compared with).
        levels: ORB pyramid levels (scale factor 1.2 between them).

    Returns:
        The keypoints; none for an image too small or too flat to have any.
    """
    cv2 = _cv2()
    grey, flat, scale = _working(image, side)
    orb = cv2.ORB_create(
        nfeatures=features,
        scaleFactor=1.2,
        nlevels=levels,
        edgeThreshold=15,
        patchSize=31,
        fastThreshold=12,
    )
    keypoints, descriptors = orb.detectAndCompute(grey, None)
    if descriptors is None or not keypoints:
        points = np.zeros((0, 2), np.float32)
        angles = np.zeros(0, np.float32)
        descriptors = np.zeros((0, _BYTES), np.uint8)
    else:
        # Strongest first: the index holds only the first INDEXED_FEATURES of a reference.
        response = np.fromiter((k.response for k in keypoints), np.float32, len(keypoints))
        # ORB may return a keypoint or two more than asked (ties at the cut).
        order = np.argsort(-response, kind="stable")[:features]
        points = cv2.KeyPoint_convert(keypoints).reshape(-1, 2)[order].astype(np.float32)
        angles = np.fromiter((k.angle for k in keypoints), np.float32, len(keypoints))[order]
        descriptors = descriptors[order]
    width, height = int(grey.shape[1]), int(grey.shape[0])
    colour_size = (_GRID, _GRID) if reference else (max(1, width // 2), max(1, height // 2))
    colour = flat.resize(colour_size, Image.Resampling.BOX)
    rgb = np.asarray(colour.convert("RGB") if colour.mode != "RGB" else colour, dtype=np.uint8)
    return LocalFeatures(
        points=points,
        descriptors=np.ascontiguousarray(descriptors, dtype=np.uint8),
        width=width,
        height=height,
        scale=scale,
        colour=np.ascontiguousarray(rgb),
        angles=angles,
    )


def reference_features(image: Image.Image) -> LocalFeatures:
    """What an original stores: :data:`REFERENCE_FEATURES` at :data:`REFERENCE_SIDE`."""
    return extract(image, side=REFERENCE_SIDE, features=REFERENCE_FEATURES, levels=REFERENCE_LEVELS)


def query_features(image: Image.Image) -> LocalFeatures:
    """What a query is searched with: :data:`QUERY_FEATURES` at :data:`QUERY_SIDE`."""
    return extract(image, side=QUERY_SIDE, features=QUERY_FEATURES, reference=False)


def _matches(query: LocalFeatures, reference: LocalFeatures) -> tuple[Ints, Ints]:
    """Reference and query indices of mutually nearest descriptor pairs passing the ratio test.

    A pair is kept when the query descriptor is the reference descriptor's
    nearest, clearly nearer than the second (:data:`RATIO`), within
    :data:`MAX_MATCH_BITS`, and the reference descriptor is also the query
    descriptor's nearest (cross-check): a pair that is only one side's best
    is as often a coincidence between unrelated pictures as a copy.
    """
    cv2 = _cv2()
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
    query: LocalFeatures, reference: LocalFeatures, src: Ints, dst: Ints, degrees: float
) -> npt.NDArray[np.bool_]:
    """Which matches turn their keypoint's orientation by the transform's rotation.

    A similarity that rotates the picture by ``degrees`` (image coordinates,
    y down, as OpenCV measures keypoint angles) turns every keypoint's
    orientation by the same angle; a match that lands within the RANSAC
    tolerance by chance has a random orientation. All True for a reference
    stored without orientations.
    """
    if query.angles is None or reference.angles is None:
        return np.ones(len(src), bool)
    turn = query.angles[dst] - reference.angles[src] - np.float32(degrees)
    off = np.abs((turn + 180.0) % 360.0 - 180.0)
    return np.asarray(off <= ANGLE_TOLERANCE, dtype=bool)


def locate(query: LocalFeatures, reference: LocalFeatures) -> Placement | None:
    """Find ``reference`` inside ``query``: matches, a RANSAC similarity, the box.

    Args:
        query: :func:`query_features` of the image being checked.
        reference: :func:`reference_features` of a stored original.

    Returns:
        The best placement with the rules it fails, or None when there are too
        few matches to fit a transform at all.
    """
    if len(query) < 3 or len(reference) < 3:
        return None
    ref_index, query_index = _matches(query, reference)
    if len(ref_index) < 3:
        return None
    src, dst = reference.points[ref_index], query.points[query_index]
    cv2 = _cv2()
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
    scale = math.hypot(a, b)
    turn = math.degrees(math.atan2(b, a))  # in image coordinates (y down)
    rotation = -turn  # counter-clockwise as seen
    # RANSAC inliers whose keypoint orientations turned with the picture.
    keep = mask.reshape(-1).astype(bool) & _agreeing(query, reference, ref_index, query_index, turn)
    inliers = int(keep.sum())
    spread = _spread(src[keep], reference)
    coverage = _coverage(src[keep], query, reference, matrix)
    # Into the query's pixels as given, then the reference's outline.
    to_query = matrix.astype(np.float64) * query.scale
    corners = np.array(
        [[0, 0], [reference.width, 0], [reference.width, reference.height], [0, reference.height]],
        dtype=np.float64,
    )
    mapped = corners @ to_query[:, :2].T + to_query[:, 2]
    full_w, full_h = query.width * query.scale, query.height * query.scale
    left = int(np.clip(np.floor(mapped[:, 0].min()), 0, full_w))
    top = int(np.clip(np.floor(mapped[:, 1].min()), 0, full_h))
    right = int(np.clip(np.ceil(mapped[:, 0].max()), 0, full_w))
    bottom = int(np.clip(np.ceil(mapped[:, 1].max()), 0, full_h))
    failures = []
    if inliers < MIN_INLIERS:
        failures.append(f"{inliers} inliers < {MIN_INLIERS}")
    if inliers < MIN_INLIER_RATIO * len(src):
        failures.append(f"inlier ratio {inliers / len(src):.2f} < {MIN_INLIER_RATIO}")
    if spread < MIN_SPREAD:
        failures.append(f"spread {spread:.2f} < {MIN_SPREAD}")
    if coverage < MIN_COVERAGE:
        failures.append(f"inliers cover {coverage:.2f} < {MIN_COVERAGE} of the matched region")
    if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
        failures.append(f"scale {scale:.2f} outside {SCALE_RANGE}")
    if right - left < 8 or bottom - top < 8:
        failures.append("box outside the query")
    colour, layout = _compare_region(query, reference, matrix)
    if colour is not None and colour > MAX_COLOUR_DIFFERENCE:
        failures.append(f"colour differs by {colour:.2f} > {MAX_COLOUR_DIFFERENCE}")
    if layout is not None and layout < MIN_LAYOUT:
        failures.append(f"layout correlation {layout:.2f} < {MIN_LAYOUT}")
    flat = to_query.reshape(-1)
    return Placement(
        box=(left, top, right, bottom),
        inliers=inliers,
        matches=len(src),
        transform=(
            round(float(flat[0]), 6),
            round(float(flat[1]), 6),
            round(float(flat[2]), 3),
            round(float(flat[3]), 6),
            round(float(flat[4]), 6),
            round(float(flat[5]), 3),
        ),
        scale=scale,
        rotation_degrees=rotation,
        spread=spread,
        coverage=coverage,
        colour_difference=colour,
        layout=layout,
        failures=tuple(failures),
    )


def _chroma(rgb: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Two opponent chroma axes (red-green, yellow-blue), 0-1 scale."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.asarray(np.stack([r - g, (r + g) / 2 - b], axis=-1) / 255.0, dtype=np.float32)


def _compare_region(
    query: LocalFeatures, reference: LocalFeatures, matrix: npt.NDArray[np.float64]
) -> tuple[float | None, float | None]:
    """Colour difference and brightness-layout correlation of the located region.

    The query's colour pixels are warped back onto the reference frame (the
    inverse of the fitted similarity) and averaged to the reference's 16x16 grid.
    Colour: the mean chroma difference over the cells where either side has
    colour (None when neither has: grey images). Layout: the correlation of the
    cells' luma (None when either is flat). Both None when too little of the
    reference lies inside the query.
    """
    cv2 = _cv2()
    if query.colour.ndim != 3 or query.colour.shape[0] < 2:
        return None, None
    # Destination (u, v) on a _WARP grid over the reference -> query colour pixels.
    thumb = query.colour.shape[1] / max(1, query.width)
    cell = np.diag([reference.width / _WARP, reference.height / _WARP, 1.0])
    to_thumb = thumb * (np.vstack([matrix, [0.0, 0.0, 1.0]]) @ cell)[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(query.colour, to_thumb, (_WARP, _WARP), flags=flags)
    inside = cv2.warpAffine(
        np.full(query.colour.shape[:2], 255, np.uint8), to_thumb, (_WARP, _WARP), flags=flags
    )
    grid = cv2.resize(warped.astype(np.float32), (_GRID, _GRID), interpolation=cv2.INTER_AREA)
    cover = cv2.resize(inside.astype(np.float32), (_GRID, _GRID), interpolation=cv2.INTER_AREA)
    valid = cover >= 250  # the whole cell lies inside the query
    if valid.sum() < _GRID * _GRID // 8:
        return None, None
    mine = reference.colour.astype(np.float32)
    layout = _correlation(mine[valid] @ _LUMA, grid[valid] @ _LUMA)
    ours = _chroma(mine)
    theirs = _chroma(grid)
    coloured = valid & (
        (np.hypot(ours[..., 0], ours[..., 1]) > 0.04)
        | (np.hypot(theirs[..., 0], theirs[..., 1]) > 0.04)
    )
    if not coloured.any():
        return None, layout
    difference = np.hypot(*(ours - theirs).transpose(2, 0, 1))
    return float(difference[coloured].mean()), layout


def _correlation(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float | None:
    """Pearson correlation; None when either side is flat (std below 2 grey levels)."""
    if a.size < 3 or float(a.std()) < 2.0 or float(b.std()) < 2.0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def _coverage(
    points: F32, query: LocalFeatures, reference: LocalFeatures, matrix: npt.NDArray[np.float64]
) -> float:
    """Convex hull area of ``points`` (reference pixels) over the matched region's area.

    The matched region is the reference's rectangle intersected with the query's
    outline mapped back onto the reference (the inverse of the fitted similarity):
    an off-centre crop or a copy cut by the edge of a screenshot is judged on
    what the query shows of it. 0 for fewer than 3 points or a line.
    """
    if len(points) < 3:
        return 0.0
    cv2 = _cv2()
    hull = float(cv2.contourArea(cv2.convexHull(np.ascontiguousarray(points, np.float32))))
    back = cv2.invertAffineTransform(matrix)
    outline = np.array(
        [[0, 0], [query.width, 0], [query.width, query.height], [0, query.height]], np.float64
    )
    seen = (outline @ back[:, :2].T + back[:, 2]).astype(np.float32)
    frame = np.array(
        [[0, 0], [reference.width, 0], [reference.width, reference.height], [0, reference.height]],
        np.float32,
    )
    matched, _ = cv2.intersectConvexConvex(frame, seen)
    if matched <= 0.0:
        return 0.0
    return min(1.0, hull / float(matched))


def _spread(points: F32, reference: LocalFeatures) -> float:
    """How far ``points`` reach across the reference: the larger share of its width or height."""
    if len(points) < 2:
        return 0.0
    extent = points.max(axis=0) - points.min(axis=0)
    across = float(extent[0]) / max(1, reference.width)
    down = float(extent[1]) / max(1, reference.height)
    return max(across, down)


class KeypointIndex:
    """Stored descriptors of many images; votes for the images a query may contain.

    Each stored image has an integer key (the inventory's row key). Below
    :data:`FLAT_LIMIT` descriptors the search is exact (faiss
    ``IndexBinaryFlat``); from it, the index is rebuilt as an inverted file
    (``IndexBinaryIVF``) whose lists are centred on stored descriptors sampled
    evenly (no k-means: binary k-means over millions of rows costs minutes), with
    an HNSW graph over those centres as the coarse quantizer, probing
    ``nprobe`` lists per query descriptor.

    Args:
        nprobe: Inverted lists probed per query descriptor (inverted file only).
        per_image: Descriptors stored per image (its strongest keypoints).
    """

    def __init__(self, *, nprobe: int = 8, per_image: int = INDEXED_FEATURES) -> None:
        self._nprobe = nprobe
        self._per_image = min(per_image, _MAX_PER_ROW)
        self._keys: list[int] = []
        self._chunks: list[U8] = []  # descriptors not yet in a built index
        self._ids: list[npt.NDArray[np.int64]] = []
        self._index: Any = None
        self._quantizer: Any = None  # the inverted file's coarse quantizer, kept alive
        self._count = 0
        self.dropped = 0
        """Descriptors left out of hub lists (see :meth:`_cap_lists`)."""

    def __len__(self) -> int:
        """The number of stored images."""
        return len(self._keys)

    @property
    def descriptors(self) -> int:
        """The number of stored descriptors."""
        return self._count

    @property
    def outgrown(self) -> bool:
        """Whether the inverted file's lists are 4x longer than it was built for.

        Lists are sized when the inverted file is built (about 256 descriptors
        each); an index that grew fourfold since should be rebuilt from scratch
        (:meth:`provenance.inventory.Inventory.keypoint_index` does).
        """
        index = self._index
        if index is None or not hasattr(index, "nlist"):
            return False
        return self._count > 4 * 256 * int(index.nlist)

    def add(self, key: int, features: LocalFeatures) -> None:
        """Store one image's descriptors under ``key`` (a non-negative integer < 2**52)."""
        count = min(len(features), self._per_image)
        self._keys.append(key)
        if count == 0:
            return
        self._chunks.append(features.descriptors[:count])
        self._ids.append((np.int64(key) << 10) | np.arange(count, dtype=np.int64))
        self._count += count

    def add_many(self, items: Iterable[tuple[int, LocalFeatures]]) -> None:
        """:meth:`add` for each ``(key, features)``."""
        for key, features in items:
            self.add(key, features)

    def _built(self) -> Any:
        faiss = _faiss()
        if self._index is not None and not self._chunks:
            return self._index
        data = np.concatenate(self._chunks) if self._chunks else np.zeros((0, _BYTES), np.uint8)
        ids = np.concatenate(self._ids) if self._ids else np.zeros(0, np.int64)
        self._chunks, self._ids = [], []
        total = self._count
        flat = self._index is None or isinstance(self._index, faiss.IndexBinaryIDMap)
        if flat and total > FLAT_LIMIT:
            # Rebuild as an inverted file over everything stored so far.
            old = self._index
            if old is not None:
                stored = faiss.vector_to_array(faiss.downcast_IndexBinary(old.index).xb)
                old_ids = faiss.vector_to_array(old.id_map)
                data = np.concatenate([stored.reshape(-1, _BYTES), data])
                ids = np.concatenate([old_ids, ids])
            self._index, self._quantizer = _inverted(data, self._nprobe)
        elif self._index is None:
            self._index = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(_BYTES * 8))
        if len(data):
            self._index.add_with_ids(np.ascontiguousarray(data), ids)
            if not isinstance(self._index, faiss.IndexBinaryIDMap):
                self._cap_lists()
        return self._index

    def _cap_lists(self) -> None:
        """Truncate hub lists to :data:`LIST_CAP` times the mean list length.

        ORB descriptors are far from uniform: with centres sampled from the data,
        a few lists collect most of them (a 10x imbalance over 0.5M descriptors
        here), and every query descriptor near a hub scans it. Like a text
        index's stop words, a hub's descriptors say little about which image they
        come from; the entries past the cap (the most recently added) are dropped
        from the votes (never from the stored features that locate a candidate).
        """
        faiss = _faiss()
        index = self._index
        lists = faiss.downcast_InvertedLists(index.invlists)
        cap = max(64, int(LIST_CAP * index.ntotal / index.nlist))
        total = 0
        for list_no in range(index.nlist):
            size = lists.list_size(list_no)
            if size > cap:
                lists.resize(list_no, cap)
                self.dropped += size - cap
                size = cap
            total += size
        index.ntotal = total

    def candidates(
        self, query: LocalFeatures, *, k: int = 8, min_votes: int = 3, neighbours: int = 3
    ) -> list[tuple[int, int]]:
        """Stored images with the most query descriptors near one of theirs.

        Args:
            query: :func:`query_features` of the image being checked.
            k: At most this many images.
            min_votes: Leave out images with fewer votes.
            neighbours: Stored descriptors looked up per query descriptor.

        Returns:
            ``(key, votes)`` pairs, most votes first.
        """
        if self._count == 0 or len(query) == 0:
            return []
        index = self._built()
        distances, labels = index.search(np.ascontiguousarray(query.descriptors), neighbours)
        near = (labels >= 0) & (distances <= VOTE_BITS)
        rows = labels[near] >> 10
        who = np.broadcast_to(np.arange(labels.shape[0])[:, None], labels.shape)[near]
        if rows.size == 0:
            return []
        # One vote per query descriptor and image.
        pairs = np.unique(np.stack([rows, who.astype(np.int64)], axis=1), axis=0)
        keys, votes = np.unique(pairs[:, 0], return_counts=True)
        order = np.argsort(-votes, kind="stable")[:k]
        return [(int(keys[i]), int(votes[i])) for i in order if votes[i] >= min_votes]


def _inverted(sample_from: U8, nprobe: int) -> tuple[Any, Any]:
    """An empty inverted file whose list centres are evenly sampled rows of ``sample_from``."""
    faiss = _faiss()
    # About 256 descriptors per list: the scan and the coarse search stay balanced.
    lists = int(min(2**20, max(1_024, 2 ** round(math.log2(max(1, len(sample_from)) / 256)))))
    step = max(1, len(sample_from) // lists)
    centres = np.ascontiguousarray(sample_from[::step][:lists])
    quantizer = faiss.IndexBinaryHNSW(_BYTES * 8, 16)
    quantizer.hnsw.efSearch = 16  # 16 vs 32: 25% less CPU per query, same votes here
    quantizer.add(centres)
    index = faiss.IndexBinaryIVF(quantizer, _BYTES * 8, len(centres))
    index.nprobe = nprobe
    index.is_trained = True
    return index, quantizer
