"""A placement's checks beyond its inlier count: spread, coverage, colours, layout.

The inliers' reach across the reference and the share of the matched region their
hull covers; the located region's colours (measured here: chroma difference, a
filter's chroma scale, hue agreement; judged in ``_locate``) and coarse
brightness layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from provenance._core.keypoints._libs import load_cv2
from provenance._core.keypoints._record import F32, GRID, LocalFeatures

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_WARP = 64  # the query is warped back onto the reference at this size, then averaged


def _chroma(rgb: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Two opponent chroma axes (red-green, yellow-blue), 0-1 scale."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.asarray(np.stack([r - g, (r + g) / 2 - b], axis=-1) / 255.0, dtype=np.float32)


MAX_HIDDEN = 0.30
"""At most this share of the located region's cells may be left out as hidden (a
sticker, a badge, a caption laid over the picture; :func:`compare_visible`)."""

_HIDDEN_LUMA = 40.0  # grey levels a hidden cell's mean differs by at least ...
_HIDDEN_CHROMA = 0.10  # ... or its chroma (opponent axes, 0-1)
_HIDDEN_FLAT = 10.0  # ... and it is flat in the query: luma spread (std) under this


def compare_region(
    query: LocalFeatures, reference: LocalFeatures, matrix: npt.NDArray[np.float64]
) -> tuple[Colours | None, float | None]:
    """Colours and brightness-layout correlation of the located region.

    The query's colour pixels are warped back onto the reference frame (the
    inverse of the fitted similarity, 2x3, or perspective map, 3x3) and averaged
    to the reference's 16x16 grid.
    Colours: the two sides' chroma over the cells where either has colour
    (:class:`Colours`; None when neither has: grey images), judged by
    ``_locate``'s colour rule. Layout: the correlation of the
    cells' luma (None when either is flat). Both None when too little of the
    reference lies inside the query.
    """
    cells = _region_cells(query, reference, matrix)
    if cells is None:
        return None, None
    mine, grid, valid, _ = cells
    return _measure(mine, grid, valid)


def compare_visible(
    query: LocalFeatures,
    reference: LocalFeatures,
    matrix: npt.NDArray[np.float64],
    inliers: F32,
) -> tuple[Colours | None, float | None, float]:
    """:func:`compare_region` with the cells something covers in the query left out.

    A sticker, a price badge or a caption laid over a copy changes the colours
    and the layout of the cells it covers, and hides their keypoints. A cell is
    left out as hidden when none of ``inliers`` (reference working pixels) lies
    in it, its mean differs clearly from the reference's (by 40 grey levels of
    luma, or 0.10 of chroma) and it is flat in the query (its pixels' luma
    spread under 10 grey levels: an overlay's fill, not a look-alike's other
    pose or background, which confirmed 4 look-alike pairs of the corpus
    without this); at most :data:`MAX_HIDDEN` of
    the compared cells, else none is. A cell that holds an inlier is always
    compared: the same product in another colour keeps its keypoints, so its
    colours are still seen.

    Returns:
        Colours and layout as :func:`compare_region`, over the cells left, and
        the share of the compared cells left out (0: none).
    """
    cells = _region_cells(query, reference, matrix)
    if cells is None:
        return None, None, 0.0
    mine, grid, valid, warped = cells
    column = np.clip((inliers[:, 0] * GRID / max(1, reference.width)).astype(np.intp), 0, GRID - 1)
    row = np.clip((inliers[:, 1] * GRID / max(1, reference.height)).astype(np.intp), 0, GRID - 1)
    supported = np.zeros((GRID, GRID), bool)
    supported[row, column] = True
    luma = np.abs((grid - mine) @ _LUMA)
    chroma = np.hypot(*np.moveaxis(_chroma(grid) - _chroma(mine), -1, 0))
    # The spread of each cell's warped pixels: an overlay is a flat fill (a sticker,
    # a badge's ground); a look-alike's other pose or background is picture.
    side = warped.shape[0] // GRID
    blocks = (warped.astype(np.float32) @ _LUMA).reshape(GRID, side, GRID, side)
    flat = blocks.std(axis=(1, 3)) < _HIDDEN_FLAT
    open_cells = valid & ~supported & ((luma >= _HIDDEN_LUMA) | (chroma >= _HIDDEN_CHROMA))
    seeds = open_cells & flat
    # An overlay's edge cells are part fill, part picture: not flat, still covered.
    grown = np.zeros((GRID + 2, GRID + 2), bool)
    for dy in range(3):
        for dx in range(3):
            grown[dy : dy + GRID, dx : dx + GRID] |= seeds
    hidden = seeds | (open_cells & grown[1:-1, 1:-1])
    count = int(hidden.sum())
    if count == 0 or count > MAX_HIDDEN * int(valid.sum()):
        return (*_measure(mine, grid, valid), 0.0)
    return (*_measure(mine, grid, valid & ~hidden), count / int(valid.sum()))


def _region_cells(
    query: LocalFeatures, reference: LocalFeatures, matrix: npt.NDArray[np.float64]
) -> (
    tuple[
        npt.NDArray[np.float32],
        npt.NDArray[np.float32],
        npt.NDArray[np.bool_],
        npt.NDArray[np.uint8],
    ]
    | None
):
    """The located region against the reference, cell by cell.

    Returns the reference's 16x16 RGB cells, the region's, which cells lie inside
    the query, and the region's pixels warped onto a 64x64 grid over the reference.
    """
    cv2 = load_cv2()
    if query.colour.ndim != 3 or query.colour.shape[0] < 2:
        return None
    # Destination (u, v) on a _WARP grid over the reference -> query colour pixels.
    thumb = query.colour.shape[1] / max(1, query.width)
    cell = np.diag([reference.width / _WARP, reference.height / _WARP, 1.0])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    perspective = matrix.shape == (3, 3)
    full = matrix if perspective else np.vstack([matrix, [0.0, 0.0, 1.0]])
    # The map's output in the query's colour pixels (its last row is left as it is).
    to_thumb = (full @ cell) * np.array([[thumb], [thumb], [1.0]])

    def warp(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        if perspective:
            out: npt.NDArray[np.uint8] = cv2.warpPerspective(
                pixels, to_thumb, (_WARP, _WARP), flags=flags
            )
        else:
            out = cv2.warpAffine(pixels, to_thumb[:2], (_WARP, _WARP), flags=flags)
        return out

    warped = warp(query.colour)
    grid = cv2.resize(warped.astype(np.float32), (GRID, GRID), interpolation=cv2.INTER_AREA)
    # First the cells the query shows as picture (not its border's fill), then, if
    # too few of those, every cell inside its canvas (as before the fill was seen).
    shown = _picture(query.colour)
    canvases = [shown] if shown is not None else []
    canvases.append(np.full(query.colour.shape[:2], 255, np.uint8))
    for canvas in canvases:
        inside = warp(canvas)
        cover = cv2.resize(inside.astype(np.float32), (GRID, GRID), interpolation=cv2.INTER_AREA)
        valid = cover >= 250  # the whole cell lies inside the query('s picture)
        if valid.sum() >= GRID * GRID // 8:
            return reference.colour.astype(np.float32), grid, valid, warped
    return None


def _measure(
    mine: npt.NDArray[np.float32], grid: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]
) -> tuple[Colours | None, float | None]:
    """Colours and layout of the ``valid`` cells (reference ``mine``, region ``grid``)."""
    layout = _correlation(mine[valid] @ _LUMA, grid[valid] @ _LUMA)
    ours = _chroma(mine)
    theirs = _chroma(grid)
    coloured = valid & (
        (np.hypot(ours[..., 0], ours[..., 1]) > 0.04)
        | (np.hypot(theirs[..., 0], theirs[..., 1]) > 0.04)
    )
    if not coloured.any():
        return None, layout
    return colours(ours[valid], theirs[valid], coloured[valid]), layout


@dataclass(frozen=True, slots=True)
class Colours:
    """The located region's chroma against the reference's (0-1 opponent axes).

    Attributes:
        difference: Mean chroma difference over the coloured cells.
        scaled_difference: The same after the reference's chroma is scaled by
            ``scale``: what is left once a global saturation or contrast change
            (a filter) is taken out.
        scale: The query's root-mean-square chroma over the reference's, on the
            coloured cells (a filter's saturation times contrast; 0: grey query).
        agreement: Chroma-weighted hue agreement: the cosine between the two
            sets of per-cell chroma vectors (1: the same hues in every cell).
        reference_chroma: Root-mean-square chroma of the reference's cells
            inside the query (all of them, grey ones too).
        query_chroma: The same for the located region.
    """

    difference: float
    scaled_difference: float
    scale: float
    agreement: float
    reference_chroma: float
    query_chroma: float


def colours(
    ours: npt.NDArray[np.float32], theirs: npt.NDArray[np.float32], coloured: npt.NDArray[np.bool_]
) -> Colours:
    """Compare per-cell chroma vectors (n x 2) of the reference and the located region."""
    a = ours[coloured].astype(np.float64)
    b = theirs[coloured].astype(np.float64)
    aa, bb = float((a * a).sum()), float((b * b).sum())
    scale = math.sqrt(bb / aa) if aa > 0.0 else 0.0
    agreement = float((a * b).sum()) / math.sqrt(aa * bb) if aa > 0.0 and bb > 0.0 else 0.0
    return Colours(
        difference=float(np.hypot(*(b - a).T).mean()),
        scaled_difference=float(np.hypot(*(b - scale * a).T).mean()),
        scale=scale,
        agreement=agreement,
        reference_chroma=math.sqrt(float(np.square(ours, dtype=np.float64).sum(axis=1).mean())),
        query_chroma=math.sqrt(float(np.square(theirs, dtype=np.float64).sum(axis=1).mean())),
    )


_FILL_TOLERANCE = 6
"""Grey levels (per channel) a border fill may vary by: JPEG's noise on a flat colour."""


def _picture(colour: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8] | None:
    """255 where the query shows a picture, 0 on a flat fill around it; None: no fill.

    A copy cropped and then rotated on an expanded canvas (or padded, or framed)
    has a flat fill around it, inside the canvas: the reference's cells that the
    crop took away fall partly on it, and a cell half on white fill compares as
    a brighter picture (``layout correlation 0.37-0.83`` for such copies of the
    sample images: docs/search.md). A fill is one colour in at least three of the
    four corners (within :data:`_FILL_TOLERANCE`), flood-filled from them
    (4-connected, within the tolerance of each corner's colour); a photograph's
    corners rarely agree, so its cells are compared as before. A packshot's
    white ground is such a fill too: its cells are then left out and the
    product's own compared, which two products on white do not pass more easily.
    """
    cv2 = load_cv2()
    height, width = colour.shape[:2]
    corners = ((0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1))
    seeds = np.array([colour[y, x] for x, y in corners], dtype=np.int16)
    agree = np.abs(seeds[:, None, :] - seeds[None, :, :]).max(axis=2) <= _FILL_TOLERANCE
    filled = [corner for corner, row in zip(corners, agree, strict=True) if row.sum() >= 3]
    if not filled:
        return None
    mask = np.zeros((height + 2, width + 2), np.uint8)
    tolerance = (_FILL_TOLERANCE,) * 3
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (255 << 8)
    image = colour.copy()  # floodFill takes it as an output, even with MASK_ONLY
    for x, y in filled:
        if not mask[y + 1, x + 1]:
            cv2.floodFill(image, mask, (x, y), (0, 0, 0), tolerance, tolerance, flags)
    return np.where(mask[1:-1, 1:-1] > 0, 0, 255).astype(np.uint8)


def _correlation(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float | None:
    """Pearson correlation; None when either side is flat (std below 2 grey levels)."""
    if a.size < 3 or float(a.std()) < 2.0 or float(b.std()) < 2.0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def hull_coverage(
    points: F32, query: LocalFeatures, reference: LocalFeatures, matrix: npt.NDArray[np.float64]
) -> float:
    """Convex hull area of ``points`` (reference pixels) over the matched region's area.

    The matched region is the reference's rectangle intersected with the query's
    outline mapped back onto the reference (the inverse of the fitted similarity,
    2x3, or perspective map, 3x3; a query outline that does not map back to a
    convex outline counts the whole reference):
    an off-centre crop or a copy cut by the edge of a screenshot is judged on
    what the query shows of it. 0 for fewer than 3 points or a line.
    """
    if len(points) < 3:
        return 0.0
    cv2 = load_cv2()
    hull = float(cv2.contourArea(cv2.convexHull(np.ascontiguousarray(points, np.float32))))
    outline = np.array(
        [[0, 0], [query.width, 0], [query.width, query.height], [0, query.height]], np.float64
    )
    frame = np.array(
        [[0, 0], [reference.width, 0], [reference.width, reference.height], [0, reference.height]],
        np.float32,
    )
    if matrix.shape == (3, 3):
        back = np.linalg.inv(matrix)
        w = outline @ back[2, :2] + back[2, 2]
        seen = ((outline @ back[:2, :2].T + back[:2, 2]) / w[:, None]).astype(np.float32)
        if (w <= 0).any() or not cv2.isContourConvex(seen):
            seen = frame
    else:
        back = cv2.invertAffineTransform(matrix)
        seen = (outline @ back[:, :2].T + back[:, 2]).astype(np.float32)
    matched, _ = cv2.intersectConvexConvex(frame, seen)
    if matched <= 0.0:
        return 0.0
    return min(1.0, hull / float(matched))


def inlier_spread(points: F32, reference: LocalFeatures) -> float:
    """How far ``points`` reach across the reference: the larger share of its width or height."""
    if len(points) < 2:
        return 0.0
    extent = points.max(axis=0) - points.min(axis=0)
    across = float(extent[0]) / max(1, reference.width)
    down = float(extent[1]) / max(1, reference.height)
    return max(across, down)
