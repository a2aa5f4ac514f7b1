"""Which FAST threshold an original is detected at, decided before ORB runs.

An original is detected at FAST threshold 30 and again at 12 when fewer than 192
keypoints come back (``_extract.REFERENCE_RETRY``): a dark or flat picture pays
for a whole ORB detection (pyramid, FAST, Harris, blur, descriptors) that is
thrown away, 16-44% more than one detection. :func:`first_threshold` counts what
ORB would keep at the first threshold from FAST alone, on the same pyramid ORB
builds, and goes straight to the lower threshold when the count is certain to
fall short, so the keypoints stored are the ones the two detections stored. A
picture with :data:`PLENTY` corners at half the working size is not counted (the
count would cost more than it saves); it is detected as before. One with fewer than
:data:`FEW` is not counted either: it goes to the lower threshold (exact on every
picture measured, not by construction).

How ORB counts (OpenCV's ``orb.cpp``): level ``l`` of the pyramid is the previous
level resized (``INTER_LINEAR_EXACT``) to ``cvRound(size / step**l)``; FAST with
non-maximum suppression runs on it, corners closer than the edge threshold to
the border are dropped, and the strongest ``quota[l]`` are kept (ties at the cut
too). So a level keeps ``min(corners, quota)`` keypoints exactly when it has no
more corners than its quota, and at least its quota otherwise: the sum over the
levels of ``min(corners, quota)`` is ORB's count, short of ties on full levels
(which only add keypoints). A test checks the count against ORB's on real
pictures; an OpenCV whose ORB built its pyramid otherwise would fail it first, and
meanwhile only cost a picture a second detection or store the lower threshold's
keypoints (the form stored until 2026-12-07), never a row no form stores.

Pure: numpy arrays in, an int out. OpenCV is loaded on first use.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from provenance._core.keypoints._libs import load_cv2
from provenance._core.keypoints._record import U8

EDGE = 15
"""ORB's edge threshold (pixels): corners closer to a level's border are dropped."""

_FAST_RADIUS = 3
"""FAST's circle radius: a corner's score reads 3 pixels around it."""

PLENTY = 32
"""FAST corners (at the first threshold) at half the working size from which a picture
is detected at the first threshold without counting further: counting ORB's
pyramid costs more than it saves for a contrasty picture, this test 0.02-0.04 ms.
On the corpus's 304 originals, 38 of the 42 detected twice had fewer (and go
straight to the lower threshold), and 1 of the 262 detected once."""

FEW = 20
"""FAST corners (at the first threshold) at half the working size under which a picture
goes straight to the lower threshold without counting ORB's pyramid (0.1-0.25 ms
saved). Not exact, but far from the pictures detected once: on the corpus's 304
originals those had at least 30 (22 of the 42 detected twice had fewer than 20), on
the sample images at 1,280 px darkened, flattened or blurred at least 26 (a blurred
forest path with 202 keypoints at 30). A picture under it that ORB would have given
192 keypoints at the first threshold stores the lower threshold's keypoints (the form
stored until 2026-12-07), not the first's."""

_BAND_ROWS = 48
"""Rows of a level counted per FAST call (a 384 x 240 working image: 5 bands)."""


def level_quotas(features: int, levels: int, step: float) -> list[int]:
    """Keypoints ORB keeps per pyramid level (its ``nfeaturesPerLevel``, float32 as in C++)."""
    factor = np.float32(1.0 / step)
    whole = np.float32(float(factor) ** levels)
    per_scale = np.float32(features) * (np.float32(1) - factor) / (np.float32(1) - whole)
    quotas = []
    for _ in range(levels - 1):
        quotas.append(int(np.rint(per_scale)))
        per_scale = np.float32(per_scale * factor)
    quotas.append(max(features - sum(quotas), 0))
    return quotas


def first_threshold(
    grey: U8,
    *,
    threshold: int,
    retry: tuple[int, int],
    features: int,
    levels: int,
    step: float,
) -> int:
    """The FAST threshold to detect ``grey`` at first: ``threshold``, or ``retry``'s.

    ``retry[0]`` when ORB at ``threshold`` would certainly keep fewer than
    ``retry[1]`` keypoints (the detection at ``threshold`` would be thrown
    away), else ``threshold`` (the caller still detects again if it falls
    short: ties at a level's cut are not counted here, nor is a picture with
    :data:`PLENTY` corners at half the working size). A picture with fewer
    than :data:`FEW` there is not counted either: ``retry[0]``.
    """
    cv2 = load_cv2()
    height, width = grey.shape
    if min(height, width) // 2 > 2 * EDGE:
        half = cv2.resize(grey, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
        fast = cv2.FastFeatureDetector_create(threshold, True)
        rough = _corners(fast, half, PLENTY)
        if rough >= PLENTY:
            return threshold  # a contrasty picture: not worth counting on ORB's pyramid
        if rough < FEW:
            return retry[0]  # a dark or flat one: sure enough without counting
    allowed_short = features - retry[1]  # keypoints that may be missing without a retry
    kept = short = 0
    counts = level_counts(grey, threshold=threshold, features=features, levels=levels, step=step)
    for found, quota in counts:
        kept += found
        short += quota - found
        if kept >= retry[1]:
            return threshold
        if short > allowed_short:
            return retry[0]
    return threshold


def level_counts(
    grey: U8, *, threshold: int, features: int, levels: int, step: float
) -> Iterator[tuple[int, int]]:
    """Per pyramid level, ``(min(FAST corners, quota), quota)`` as ORB would count them.

    Lazily, level after level (each is the previous one resized, as ORB's
    pyramid is). The sum of the first values is the number of keypoints ORB
    keeps at ``threshold`` (ties at a full level's cut aside).
    """
    cv2 = load_cv2()
    fast = cv2.FastFeatureDetector_create(threshold, True)
    level = grey
    for index, quota in enumerate(level_quotas(features, levels, step)):
        if index:
            scale = np.float32(step**index)
            width, height = (int(np.rint(np.float32(n) / scale)) for n in grey.shape[::-1])
            if min(width, height) <= 2 * EDGE:
                yield 0, quota  # no pixel far enough from the border, here or below
                continue
            level = cv2.resize(level, (width, height), interpolation=cv2.INTER_LINEAR_EXACT)
        yield _corners(fast, level, quota), quota


def _corners(fast: object, level: U8, enough: int) -> int:
    """FAST corners of ``level`` at least :data:`EDGE` pixels from its border, up to ``enough``.

    Counted in bands of rows, stopping at ``enough``: a contrasty picture has
    thousands of corners, and each costs OpenCV a Python object.
    """
    height, width = level.shape
    if min(height, width) <= 2 * EDGE:
        return 0
    # Each band reads FAST's radius and one more row and column around the pixels it
    # counts (the mask), so a corner at its edge is compared with its neighbours as
    # on the whole level (non-maximum suppression), and none is counted twice.
    reach = _FAST_RADIUS + 1
    left, right = EDGE - reach, width - EDGE + reach
    mask = np.zeros((_BAND_ROWS + 2 * reach, right - left), np.uint8)
    mask[reach:, reach:-reach] = 1
    count = 0
    for top in range(EDGE, height - EDGE, _BAND_ROWS):
        bottom = min(top + _BAND_ROWS, height - EDGE)
        band = level[top - reach : bottom + reach, left:right]
        mask[bottom - top + reach :] = 0  # the last band is shorter
        found = fast.detect(band, mask[: band.shape[0]])  # type: ignore[attr-defined]
        count += len(found)
        if count >= enough:
            return enough
    return count
