"""ORB keypoints of decoded pixels: an original's stored set and a query's."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from provenance._core import phash
from provenance._core.keypoints._libs import load_cv2
from provenance._core.keypoints._record import DESCRIPTOR_BYTES, GRID, U8, LocalFeatures
from provenance._core.keypoints._threshold import EDGE, first_threshold

REFERENCE_SIDE = 384
"""An original's grey pixels are reduced to at most this many pixels per side. Was 512:
ORB's cost follows the area (1 MP JPEG: 2.7-3.9 instead of 3.8-5.4 ms per image), and
recall on the corpus's partial copies did not fall (docs/search.md). Rows stored at
512 px are still matched: the query's 8-level pyramid spans both sizes. 320 px with
a FAST threshold of 20 was measured and not shipped (docs/search.md, "Keypoints at
signing": less CPU and the corpus goals met, but fewer large dark photos located and
larger inlier sets on look-alikes)."""

REFERENCE_FEATURES = 256
"""Keypoints kept per original (the strongest FAST responses over 8 pyramid levels)."""

REFERENCE_LEVELS = 8
"""ORB pyramid levels of an original (scale factor 1.2 between levels). 4 levels 1.44
apart (the same span in about half the pixels, 0.3 ms less at 1 MP) located fewer
copies of the large photographs read whole and of copies shown at 12-22% of a page
(docs/search.md, "Keypoints at signing: an adaptive threshold")."""

REFERENCE_THRESHOLD = 30
"""FAST's corner threshold for an original (corners ranked by the Harris measure); 12
until 2026-12-07. ORB keeps per level the strongest corners by FAST's score, which
does not depend on the threshold, so a picture with enough corners above 30 on every
pyramid level stores the keypoints it stored at 12, with less work (7-20% less CPU);
a dark or flat one is detected again at 12 (:data:`REFERENCE_RETRY`). Same recall,
large-photo and false-match figures (docs/search.md, "Keypoints at signing: an
adaptive threshold")."""

REFERENCE_RETRY = (12, 192)
"""``(threshold, below)``: an original with fewer than ``below`` keypoints at
:data:`REFERENCE_THRESHOLD` is detected again at ``threshold`` (at 384 px a night sky
has 2 corners at 20 and 68 at 12). Whether the first detection would fall short is
counted before ORB runs (``_threshold.first_threshold``: FAST on ORB's own pyramid),
so such a picture is detected once, at ``threshold``, and stores the same keypoints:
38 of the 42 corpus originals that were detected twice (16-44% more CPU than one
detection); the 4 others still are (see ``_threshold.PLENTY``)."""

REFERENCE_SAMPLED_FROM = 4
"""An original at least this many times :data:`REFERENCE_SIDE` (1,536 px) is
point-sampled before its box reduction, to ``min(_SAMPLES, factor - 1)`` pixels per
working pixel and side (see ``_SAMPLES``). From 3x (a 1 MP original, 2 samples per
side) was measured twice on 2026-12-07 and not shipped: through Pillow's ``reduce``
it saved nothing measurable; through ``_sampled`` about 0.3 ms at low load and nothing
measurable at load 8, with about 8% fewer inliers on large photographs
(docs/search.md)."""

QUERY_SIDE = 1024
"""A query's grey pixels are reduced to at most this many pixels per side."""

QUERY_FEATURES = 1500
"""Keypoints kept per query: enough for an asset that fills 40% of it."""

QUERY_THRESHOLD = 12
"""FAST's corner threshold for a query (corners ranked by the Harris measure)."""


_SAMPLES = 3
"""At most this many point samples (nearest neighbour) per working pixel and side
when an original is point-sampled before its reduction (from
:data:`REFERENCE_SAMPLED_FROM` times the working side, or 3x when asked: 2 samples
there; a query never is: verify's partial step reads every pixel). Reading every
pixel was most of the keypoints' cost for large originals (CPU, loaded machine: a
12 MP JPEG 8.3 ms, a 4 MP alpha PNG 17 ms of reduction against about 3 ms of ORB).
The samples average as the box filter does: on 15 originals of 2.5-5 MP, 130 of 150
partial copies were located with 3 samples per side as with the full reduction, with
the same median inliers; on the corpus's 11 large photographs decoded at 1,280 px (3x,
2 samples per side through ``_sampled``), 933 of 990 copies against 936 read whole,
with about 8% fewer inliers (docs/search.md)."""


_SAMPLED_MODES = ("RGB", "L", "RGBA", "LA")


def _working(image: Image.Image, side: int, *, sampled_from: int) -> tuple[U8, Image.Image, float]:
    """Grey pixels at most ``side`` per side, the flattened colour image, and the factor.

    One cheap reduction of the decoded image serves both (alpha composited on
    white): Pillow's integer box reduction (libImaging ``reduce``, premultiplied
    for alpha) to at least ``side`` and less than twice it, then OpenCV's
    bilinear resampling of the grey pixels to ``side`` (a step under 2x, so
    no antialiasing is needed). Measured on a 1 MP RGB image (CPU, loaded
    machine): 1.9 ms with Pillow's bilinear resample of the reduced image, 1.3
    ms this way; a 4 MP alpha PNG 45 ms through a full-resolution
    premultiplied resample, 17 ms this way. An image at least ``sampled_from``
    (3 or more) times ``side`` is point-sampled to ``min(_SAMPLES, factor - 1)``
    pixels per working pixel and side first; at 2 samples (3x) an RGB or grey
    one goes through ``_sampled`` instead (``sampled_from`` 0: every pixel is
    read, as a query's are).
    """
    cv2 = load_cv2()
    width, height = image.size
    factor = max(width, height) // side
    factor_out = min(1.0, side / max(width, height, 1))
    size = (max(1, round(width * factor_out)), max(1, round(height * factor_out)))
    if sampled_from and factor >= max(sampled_from, 3) and image.mode in _SAMPLED_MODES:
        samples = min(_SAMPLES, factor - 1)
        if samples == 2 and image.mode in ("RGB", "L"):
            # 3x: 2 x 2 samples, grey, OpenCV's box (3 samples: no cheaper than below).
            grey, image = _sampled(image, size, samples)
            return grey, image, width / size[0]
        # Point-sample first, so the box reduction reads samples x samples pixels
        # per output pixel instead of every one (as the perceptual hash's grid does).
        image = image.resize(
            (max(1, width * samples // factor), max(1, height * samples // factor)),
            Image.Resampling.NEAREST,
        )
        factor = samples
    if factor >= 2 and image.mode in _SAMPLED_MODES:
        image = _reduce(image, factor)
    if image.mode == "RGBA":
        image = on_white(image)
    elif image.mode not in ("RGB", "L"):
        # Palettes, CMYK, 16-bit greys, LA...: phash's flattening, at this size.
        image = phash.resize_flat(image, image.size, Image.Resampling.BOX)
    grey = np.asarray(image.convert("L") if image.mode == "RGB" else image, dtype=np.uint8)
    if (grey.shape[1], grey.shape[0]) != size:
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(grey), image, width / size[0]


def _reduce(image: Image.Image, factor: int) -> Image.Image:
    """Pillow's ``reduce(factor)``, the same bytes; an RGBA image premultiplied by OpenCV.

    Pillow reduces RGBA premultiplied: it converts to ``RGBa``, reduces and
    converts back. Its conversion is most of an alpha original's keypoints
    (1 MP of point samples, CPU, loaded machine: 1.55 ms, the whole ``reduce``
    2.6 ms); OpenCV's premultiplication is the same arithmetic (every colour and
    alpha pair: a test), and with the copy out of Pillow the ``reduce`` takes
    2.3 ms. The premultiplied pixels are reduced as ``RGBX`` (all four bands,
    as ``RGBa``'s are).
    """
    if image.mode != "RGBA":
        return image.reduce(factor)
    cv2 = load_cv2()
    premultiplied = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGBA2mRGBA)
    pixels = Image.frombuffer("RGBX", image.size, premultiplied, "raw", "RGBX", 0, 1)
    small = pixels.reduce(factor)
    return Image.frombytes("RGBa", small.size, small.tobytes()).convert("RGBA")


def on_white(image: Image.Image) -> Image.Image:
    """An ``RGBA`` image composited on white, as ``RGB``: Pillow's ``alpha_composite``, cheaper.

    On white, ``c * a / 255 + 255 - a`` per channel: OpenCV's premultiplication
    (rounded as Pillow rounds) plus the inverted alpha, which cannot overflow
    (``c * a / 255 <= a``). The same bytes as compositing on a white ``RGBA``
    canvas with Pillow (a test), without its canvas, its copy and its two
    conversions: an alpha copy resized by a pipeline (700 x 619 and 700 x 681,
    thread CPU, medians of 41, load 1.4) flattened in 4.3-4.7 ms instead of
    5.6-5.7. Most of either is the first touch of fresh arrays, not arithmetic.
    """
    cv2 = load_cv2()
    premultiplied = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGBA2mRGBA)
    colour = cv2.cvtColor(premultiplied, cv2.COLOR_RGBA2RGB)
    rest = cv2.cvtColor(
        cv2.bitwise_not(np.ascontiguousarray(premultiplied[..., 3])), cv2.COLOR_GRAY2RGB
    )
    return Image.fromarray(cv2.add(colour, rest), "RGB")


def _sampled(image: Image.Image, size: tuple[int, int], samples: int) -> tuple[U8, Image.Image]:
    """Grey pixels of ``size`` averaged from ``samples`` x ``samples`` point samples each.

    An RGB or grey original far larger than ``size``: a nearest-neighbour
    resize to exactly ``samples`` times ``size`` (reads only the samples),
    grey, then OpenCV's area reduction by ``samples`` (the box mean of each
    working pixel's samples; no bilinear step). Pillow's ``reduce`` of the
    colour samples cost more than the grey conversion and OpenCV's box
    together (docs/performance.md). The colour samples serve the stored grid.
    """
    cv2 = load_cv2()
    points = image.resize((size[0] * samples, size[1] * samples), Image.Resampling.NEAREST)
    grey = np.asarray(points.convert("L") if points.mode == "RGB" else points, dtype=np.uint8)
    grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(grey), points


def extract(
    image: Image.Image,
    *,
    side: int,
    features: int,
    reference: bool = True,
    levels: int = 8,
    sampled: bool = False,
    threshold: int = QUERY_THRESHOLD,
    harris: bool = True,
    sampled_from: int = REFERENCE_SAMPLED_FROM,
    retry: tuple[int, int] | None = None,
    step: float = 1.2,
    predict: bool = True,
) -> LocalFeatures:
    """ORB keypoints of ``image`` reduced to at most ``side`` pixels per side.

    Args:
        image: Decoded pixels, any mode (alpha is composited on white).
        side: Longest working side in pixels.
        features: Keep at most this many keypoints (strongest first).
        reference: Keep a 16x16 colour grid (what is stored); else the colour
            pixels at half the working size (what a query is compared with).
        levels: ORB pyramid levels (scale factor 1.2 between them).
        sampled: Point-sample an image at least ``sampled_from`` times
            ``side`` before its box reduction, as an original's reference is
            (see ``_SAMPLES``); False reads every pixel, as a query does
            (``benchmarks/overhead.py --keypoints-sampling`` compares the two).
        threshold: FAST's corner threshold (grey levels).
        harris: Rank corners by the Harris measure (ORB's default); False
            ranks them by FAST's own score, which costs less.
        sampled_from: The reduction factor from which ``sampled`` applies
            (at least 3).
        retry: ``(threshold, below)``: when fewer than ``below`` keypoints
            come back, detect again at this lower FAST threshold (None: once).
        step: Scale factor between ORB's pyramid levels.
        predict: With ``retry``, count FAST's corners on ORB's pyramid first
            and detect at the lower threshold straight away when the first
            would certainly fall short (the same keypoints, one detection;
            ``_threshold.first_threshold``); False detects at ``threshold``
            first whatever the picture (``benchmarks/overhead.py
            --keypoints-predict`` compares the two).

    Returns:
        The keypoints; none for an image too small or too flat to have any.
    """
    cv2 = load_cv2()
    grey, flat, scale = _working(image, side, sampled_from=sampled_from if sampled else 0)
    if retry is not None and predict:
        threshold = first_threshold(
            grey, threshold=threshold, retry=retry, features=features, levels=levels, step=step
        )
    keypoints, descriptors = _orb(grey, features, levels, threshold, harris=harris, step=step)
    if retry is not None and threshold != retry[0] and len(keypoints) < retry[1]:
        # Too few corners at this threshold (a dark or flat picture): detect again lower.
        keypoints, descriptors = _orb(grey, features, levels, retry[0], harris=harris, step=step)
    if descriptors is None or not keypoints:
        points = np.zeros((0, 2), np.float32)
        angles = np.zeros(0, np.float32)
        descriptors = np.zeros((0, DESCRIPTOR_BYTES), np.uint8)
    else:
        # Strongest first: the index holds only the first INDEXED_FEATURES of a reference.
        response = np.fromiter((k.response for k in keypoints), np.float32, len(keypoints))
        # ORB may return a keypoint or two more than asked (ties at the cut).
        order = np.argsort(-response, kind="stable")[:features]
        points = cv2.KeyPoint_convert(keypoints).reshape(-1, 2)[order].astype(np.float32)
        angles = np.fromiter((k.angle for k in keypoints), np.float32, len(keypoints))[order]
        descriptors = descriptors[order]
    width, height = int(grey.shape[1]), int(grey.shape[0])
    colour_size = (GRID, GRID) if reference else (max(1, width // 2), max(1, height // 2))
    # Point samples (twice the working size or more) are box-reduced by an integer step first.
    gap = 2.0 if flat.width >= 2 * width else None
    colour = flat.resize(colour_size, Image.Resampling.BOX, reducing_gap=gap)
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


def _orb(
    grey: U8, features: int, levels: int, threshold: int, *, harris: bool, step: float
) -> tuple[Any, Any]:
    """OpenCV's ORB keypoints and descriptors of ``grey`` (descriptors None when none)."""
    cv2 = load_cv2()
    orb = cv2.ORB_create(
        nfeatures=features,
        scaleFactor=step,
        nlevels=levels,
        edgeThreshold=EDGE,
        patchSize=31,
        fastThreshold=threshold,
        scoreType=cv2.ORB_HARRIS_SCORE if harris else cv2.ORB_FAST_SCORE,
    )
    found: tuple[Any, Any] = orb.detectAndCompute(grey, None)
    return found


def reference_features(image: Image.Image) -> LocalFeatures:
    """What an original stores: :data:`REFERENCE_FEATURES` at :data:`REFERENCE_SIDE`."""
    return extract(
        image,
        side=REFERENCE_SIDE,
        features=REFERENCE_FEATURES,
        levels=REFERENCE_LEVELS,
        sampled=True,
        threshold=REFERENCE_THRESHOLD,
        retry=REFERENCE_RETRY,
    )


def query_features(image: Image.Image, *, mirrored: bool = False) -> LocalFeatures:
    """What a query is searched with: :data:`QUERY_FEATURES` at :data:`QUERY_SIDE`.

    Args:
        image: The decoded query.
        mirrored: Those of its mirror image (flipped left-right): ORB's
            descriptors are not mirror-invariant, so a mirrored copy is found by
            searching the query's mirror; :func:`mirror_placement` turns what
            :func:`locate` finds in it back into the query's pixels.
    """
    if mirrored:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return extract(image, side=QUERY_SIDE, features=QUERY_FEATURES, reference=False)
