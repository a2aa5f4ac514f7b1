"""Thumbnails as ``data:`` URIs, for pages that must not load anything from outside.

Pure: a decoded :class:`PIL.Image.Image` in, text out. Transparent pixels are
laid on white before the JPEG encode (JPEG has no alpha: dropping it shows
whatever colour the transparent pixels happen to hold, often black).
"""

from __future__ import annotations

import base64
import io

from PIL import Image

__all__ = ["thumbnail_data_uri"]


def thumbnail_data_uri(image: Image.Image, *, side: int, quality: int) -> str:
    """A JPEG thumbnail of ``image``, at most ``side`` pixels a side, as a ``data:`` URI.

    Like :meth:`PIL.Image.Image.thumbnail`, it reduces ``image`` in place (open
    the file for this); a JPEG not yet loaded is decoded at 1/2 to 1/8 scale,
    since a thumbnail needs few pixels.

    Args:
        image: A decoded (or lazily opened) image.
        side: The longest side of the thumbnail, in pixels.
        quality: The JPEG quality (1-95).

    Returns:
        ``data:image/jpeg;base64,...``.
    """
    if image.format == "JPEG":
        image.draft("RGB", (2 * side, 2 * side))
    image.thumbnail((side, side), Image.Resampling.BILINEAR)
    small = image
    if small.mode != "RGB":
        small = small.convert("RGBA")
        ground = Image.new("RGBA", small.size, (255, 255, 255, 255))
        small = Image.alpha_composite(ground, small).convert("RGB")
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
