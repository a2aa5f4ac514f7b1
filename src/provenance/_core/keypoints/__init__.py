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
  decoded image the caller already holds, reduced once (one of at least
  :data:`REFERENCE_SAMPLED_FROM` times the working side point-sampled and
  box-averaged, a smaller one box-reduced then bilinear), FAST threshold
  :data:`REFERENCE_THRESHOLD`, or lower for a dark or flat picture
  (:data:`REFERENCE_RETRY`; which one is counted from FAST on ORB's pyramid
  before ORB runs, so such a picture is detected once).
* A query keeps up to :data:`QUERY_FEATURES` keypoints at up to
  :data:`QUERY_SIDE` pixels (:func:`query_features`), so an asset shown at 40% of
  a page still has about as many pixels as its reference.
* :class:`KeypointIndex` (faiss binary index: exact under :data:`FLAT_LIMIT`
  descriptors, an inverted file with an HNSW coarse quantizer above it) turns
  every query descriptor's nearest stored descriptors into votes per stored
  asset (weighted by how many images a query descriptor hits, and only the votes
  whose keypoints turned alike: :func:`rank_votes`); the best-voted few are
  checked one by one.
* :func:`locate` matches the query against one reference (Lowe's ratio test and a
  cross-check: each side's nearest descriptor on Hamming distance), fits a
  similarity transform (rotation, uniform scale, translation) with RANSAC
  (OpenCV ``estimateAffinePartial2D``), counts only the inliers whose keypoint
  orientations turned with the transform, and reports where
  the reference lies in the query (a :class:`Placement`: box, inliers,
  transform). :attr:`Placement.failures` says which of the acceptance rules
  failed; the thresholds are measured in ``benchmarks/robustness.py`` (false
  pairs of the real-photo corpus) and documented in docs/search.md.

ORB is not mirror-invariant: a mirror image is found by searching the query's
mirror (:func:`query_features` with ``mirrored=True``) and mapping what
:func:`locate` finds there back into the query (:func:`mirror_placement`). The
perceptual hash's dihedral rows find whole flipped copies first; verify searches
the mirror only when the query's own search confirmed nothing, within its budget.

Pure: ``PIL.Image`` or numpy arrays in, values out. No paths, no I/O, no clock.
OpenCV and faiss are imported on first use, so importing provenance stays cheap.

The package, one job per module (this ``__init__`` only re-exports)::

    _record.py    the scheme's name; LocalFeatures and its stored form (orb1, orb2)
    _extract.py   decoded pixels to ORB keypoints: reference and query sizes
    _threshold.py an original's FAST threshold, chosen before ORB runs
    _index.py     KeypointIndex: faiss binary index, votes per stored image
    _geometry.py  descriptor matches, the RANSAC similarity and perspective map
    _locate.py    locate: the placement, its box and the acceptance rules; mirrored
    _region.py    the placement's spread, hull coverage, colours and layout
    _libs.py      OpenCV and faiss, loaded on first use with one thread
"""

from __future__ import annotations

from provenance._core.keypoints._extract import (
    QUERY_FEATURES,
    QUERY_SIDE,
    QUERY_THRESHOLD,
    REFERENCE_FEATURES,
    REFERENCE_LEVELS,
    REFERENCE_RETRY,
    REFERENCE_SAMPLED_FROM,
    REFERENCE_SIDE,
    REFERENCE_THRESHOLD,
    extract,
    query_features,
    reference_features,
)
from provenance._core.keypoints._index import (
    FLAT_LIMIT,
    INDEXED_FEATURES,
    MIN_VOTES,
    NEIGHBOURS,
    VOTE_BITS,
    KeypointIndex,
    descriptor_ids,
    image_keys,
    rank_votes,
)
from provenance._core.keypoints._locate import (
    MIN_COVERAGE,
    MIN_INLIERS,
    MIN_SPREAD,
    Placement,
    locate,
    mirror_placement,
)
from provenance._core.keypoints._record import SCHEME, LocalFeatures, stored_descriptors

__all__ = [
    "FLAT_LIMIT",
    "INDEXED_FEATURES",
    "MIN_COVERAGE",
    "MIN_INLIERS",
    "MIN_SPREAD",
    "MIN_VOTES",
    "NEIGHBOURS",
    "QUERY_FEATURES",
    "QUERY_SIDE",
    "QUERY_THRESHOLD",
    "REFERENCE_FEATURES",
    "REFERENCE_LEVELS",
    "REFERENCE_RETRY",
    "REFERENCE_SAMPLED_FROM",
    "REFERENCE_SIDE",
    "REFERENCE_THRESHOLD",
    "SCHEME",
    "VOTE_BITS",
    "KeypointIndex",
    "LocalFeatures",
    "Placement",
    "descriptor_ids",
    "extract",
    "image_keys",
    "locate",
    "mirror_placement",
    "query_features",
    "rank_votes",
    "reference_features",
    "stored_descriptors",
]
