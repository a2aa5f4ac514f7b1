"""Decoded images to small grey (and RGB) grids, and the box inside a uniform border.

Owns every step from a :class:`PIL.Image.Image` of any mode to numbers: alpha
composited on white, 16-bit greys scaled, big images point-sampled first, then
an area-averaged square grid; the mean colour of a box; and the trim of padding,
frames and white ground. Pure: decoded images in, numpy arrays out; never a
path, and Pillow's decompression-bomb limit is never touched here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from provenance._core.phash._bits import median
from provenance._core.phash._scheme import F32, GRID, frame_boxes

__all__ = [
    "WIDE_GREYS",
    "colour_signatures",
    "grey_grids",
    "grids_with_colour",
    "resize_flat",
    "resize_grey",
    "trim_boxes",
]

# A border is "uniform" when the four corners are within this many grey levels
# of their median; a row or column belongs to the border while fewer than
# _TRIM_FRACTION of its cells differ from that colour by more than _TRIM_TOLERANCE.
_TRIM_TOLERANCE = 24.0
_TRIM_FRACTION = 0.01
# At most this fraction of an outer line may differ from the line's colour.
_TRIM_RING = 0.02
# A trim that would keep less than this fraction of a side is ignored (a near-flat image).
_TRIM_MIN_SIDE = 0.08
# Pillow reduces by an integer factor first when the image is this many times
# larger than the target (reducing_gap); the LANCZOS/BOX pass then sees few pixels.
_REDUCING_GAP = 3.0
# Before anything else, an image larger than this many times the target side is
# point-sampled (nearest neighbour) down to it. Reading every pixel of a 4 MP image
# (Pillow's reduce, a mode conversion) costs more than all the rest of the hash; a
# sample of 4x4 points per grid cell (default scheme) or 8x8 per cell (compatible
# scheme) is then averaged by the area (or LANCZOS) resampling, and the low DCT band
# averages thousands of them. Measured on real photos (docs/concepts.md): a few bits of 256
# change, resized copies stay far below MATCH_THRESHOLD.
_SAMPLE_FACTOR = 4
# The grid is an area (BOX) average, and so is Pillow's integer reduce: reducing
# by the whole factor first is the same filter, and four times cheaper.
_GRID_REDUCING_GAP = 1.0

# 16-bit and 32-bit greys: scaled, not clipped, on the way to 8 bits.
WIDE_GREYS = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})


def resize_grey(
    image: Image.Image, size: tuple[int, int], resample: Image.Resampling
) -> Image.Image:
    """Resize and turn grey, compositing alpha on white; any mode Pillow decodes."""
    small = resize_flat(image, size, resample)
    return small.convert("L") if small.mode != "L" else small


def resize_flat(
    image: Image.Image,
    size: tuple[int, int],
    resample: Image.Resampling,
    *,
    reducing_gap: float = _REDUCING_GAP,
) -> Image.Image:
    """Resize to ``L`` or ``RGB``, compositing alpha on white; any mode Pillow decodes."""
    mode = image.mode
    if mode in WIDE_GREYS:
        # 16-bit and 32-bit greys: Pillow's convert("L") clips instead of scaling.
        array = np.asarray(image, dtype=np.float32)
        top = float(array.max()) if array.size else 0.0
        if top > 255.0:
            array = array * np.float32(255.0 / (65535.0 if top <= 65535.0 else top))
        elif mode == "F" and top <= 1.0:
            array = array * np.float32(255.0)
        grey = Image.fromarray(np.clip(array, 0.0, 255.0).astype(np.float32), "F")
        grey = grey.resize(size, resample, reducing_gap=reducing_gap)
        return Image.fromarray(np.asarray(grey).round().astype(np.uint8), "L")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA", "La", "RGBa"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX ...
    # Pillow premultiplies alpha while resizing RGBA/LA, so the reduction is correct.
    small = _resized(image, size, resample, reducing_gap)
    if small.mode in ("LA", "RGBA", "La", "RGBa"):
        if small.mode in ("La", "RGBa"):
            small = small.convert(small.mode.upper())
        ground = Image.new(small.mode, small.size, (255,) * len(small.getbands()))
        ground.alpha_composite(small)
        small = ground.convert("RGB" if small.mode == "RGBA" else "L")
    return small


def _resized(
    image: Image.Image, size: tuple[int, int], resample: Image.Resampling, reducing_gap: float
) -> Image.Image:
    """``image.resize``; an exact integer BOX reduction of ``L``/``RGB`` as the reduce alone."""
    factor = image.width // size[0]
    if (
        resample == Image.Resampling.BOX
        and reducing_gap == 1.0
        and image.mode in ("L", "RGB")
        and factor > 1
        and image.size == (factor * size[0], factor * size[1])
    ):
        # What resize does here (reduce by the whole factor, then an identity resample),
        # without the identity pass and its Python: 180 -> 155 us on a 512 x 512 sample.
        return image.reduce(factor)
    return image.resize(size, resample, reducing_gap=reducing_gap)


def _sample(image: Image.Image, size: tuple[int, int], factor: int) -> Image.Image:
    """Point-sample ``image`` to at most ``factor`` times ``size`` (any mode, no conversion)."""
    width, height = image.size
    target = (min(width, factor * size[0]), min(height, factor * size[1]))
    if target == (width, height):
        return image
    return image.resize(target, Image.Resampling.NEAREST)


def grey_grids(images: Sequence[Image.Image], *, size: int = GRID) -> F32:
    """Reduce each image to a ``size`` x ``size`` grey grid in [0, 1].

    The aspect ratio is not kept: every hash here is computed on a square grid,
    which makes the hashes insensitive to a squeezed aspect ratio, and sub-windows
    are fractions of the sides anyway.

    Args:
        images: Decoded images in any mode (alpha is composited on white,
            16-bit greys are scaled, CMYK and palettes are converted).
        size: The side of the grid.

    Returns:
        ``(N, size, size)`` ``float32``.
    """
    return grids_with_colour(images, size=size)[0]


def grids_with_colour(images: Sequence[Image.Image], *, size: int = GRID) -> tuple[F32, F32]:
    """Grey grids (:func:`grey_grids`) and their ``(N, size, size, 3)`` RGB grids."""
    out = np.empty((len(images), size, size), dtype=np.float32)
    rgb = np.empty((len(images), size, size, 3), dtype=np.float32)
    for i, image in enumerate(images):
        sampled = _sample(image, (size, size), _SAMPLE_FACTOR)
        small = resize_flat(
            sampled, (size, size), Image.Resampling.BOX, reducing_gap=_GRID_REDUCING_GAP
        )
        pixels = np.asarray(small, dtype=np.float32)
        if small.mode == "L":
            out[i] = pixels
            rgb[i] = pixels[..., None]
        else:
            rgb[i] = pixels
            out[i] = np.asarray(small.convert("L"), dtype=np.float32)
    out *= np.float32(1.0 / 255.0)
    rgb *= np.float32(1.0 / 255.0)
    return out, rgb


def colour_signatures(rgb: F32, boxes: F32) -> F32:
    """The chromaticity of the mean colour inside each trimmed box.

    Two opponent coordinates of the mean ``(R, G, B)``, divided by ``R + G + B``
    so that brightness scaling leaves them alone: ``(R - G) / S`` and
    ``(R + G - 2B) / S``. Flips, turns, resizing and re-encoding keep them; a grey
    image has ``(0, 0)``.

    Args:
        rgb: ``(N, n, n, 3)`` RGB grids in [0, 1].
        boxes: ``(N, 4)`` trimmed boxes (:func:`trim_boxes`).

    Returns:
        ``(N, 2)`` ``float32``.
    """
    out = np.zeros((len(rgb), 2), dtype=np.float32)
    for i, box in enumerate(boxes):
        top, bottom = int(box[0]), max(int(np.ceil(box[1])), int(box[0]) + 1)
        left, right = int(box[2]), max(int(np.ceil(box[3])), int(box[2]) + 1)
        cells = rgb[i, top:bottom, left:right].reshape(-1, 3)
        # The float32 sum in cell order that cells.mean(axis=0) computes (a reduction
        # over rows of 3), bit for bit, as one running sum per channel: 180 -> 110 us a box.
        r, g, b = np.add.accumulate(cells, axis=0)[-1] / np.float32(len(cells))
        total = float(r + g + b) + 1e-6
        out[i] = ((r - g) / total, (r + g - 2 * b) / total)
    rounded: F32 = np.round(out, 4)
    return rounded


def trim_boxes(grids: F32) -> F32:
    """Find the box inside a uniform border (padding, frame, white ground) of each grid.

    The two sides of an axis (top and bottom, or left and right) are trimmed
    together, and only when both outer lines are uniform (98% of their cells
    within 24 grey levels of the line's median) and of the same colour: white
    letterbox bars, a frame or a packshot's ground are; a sky at the top of a
    photo is not. Then every outer line where fewer than 1% of the cells differ
    from that colour is dropped.

    Args:
        grids: ``(N, n, n)`` grey grids in [0, 1] (:func:`grey_grids`).

    Returns:
        ``(N, 4)`` ``float32`` boxes ``(top, bottom, left, right)`` in cell units,
        half-open.
    """
    count, n, _ = grids.shape
    boxes = frame_boxes(count, n)
    tolerance = np.float32(_TRIM_TOLERANCE / 255.0)
    # Edges: top, bottom, left, right, each (N, n).
    edges = np.stack([grids[:, 0, :], grids[:, -1, :], grids[:, :, 0], grids[:, :, -1]], 1)
    colours = median(edges)  # (N, 4)
    # A share of n cells as np.mean of booleans gives it (float64), without its temporaries.
    near = np.count_nonzero(np.abs(edges - colours[..., None]) <= tolerance, axis=2)
    uniform = near / n >= 1 - _TRIM_RING
    for axis, (a, b) in enumerate(((0, 1), (2, 3))):
        same = uniform[:, a] & uniform[:, b] & (np.abs(colours[:, a] - colours[:, b]) <= tolerance)
        for i in np.flatnonzero(same):
            colour = (colours[i, a] + colours[i, b]) / 2
            distance = np.abs(grids[i] - colour)
            differs = distance > tolerance
            # Rows (axis 0) or columns with content.
            lines = np.count_nonzero(differs, axis=1 - axis) / n >= _TRIM_FRACTION
            inside = np.flatnonzero(lines)
            if inside.size == 0 or inside[-1] + 1 - inside[0] < _TRIM_MIN_SIDE * n:
                continue  # a (nearly) flat image: nothing to trim to
            # Sub-cell edges: the outermost content line is partly border; its share
            # of content is its mean deviation over that of the next line inward.
            deviation = distance.mean(axis=1 - axis)
            first, last = int(inside[0]), int(inside[-1])
            boxes[i, 2 * axis] = first + 1 - _coverage(deviation, first, first + 1)
            boxes[i, 2 * axis + 1] = last + _coverage(deviation, last, last - 1)
    return boxes


def _coverage(deviation: F32, edge: int, inner: int) -> float:
    """Fraction of cell line ``edge`` covered by content, judged against line ``inner``."""
    if not 0 <= inner < deviation.size or deviation[inner] <= 0:
        return 1.0
    return min(max(float(deviation[edge] / deviation[inner]), 0.0), 1.0)
