"""Thumbnails as data: URIs: small, JPEG, and transparent pixels laid on white."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from provenance._core.thumbnails import thumbnail_data_uri

PREFIX = "data:image/jpeg;base64,"


def _decode(uri: str) -> Image.Image:
    assert uri.startswith(PREFIX)
    image = Image.open(io.BytesIO(base64.b64decode(uri.removeprefix(PREFIX))))
    assert image.format == "JPEG"
    return image.convert("RGB")


def _transparent_with_red_square(mode: str) -> Image.Image:
    # Transparent pixels hold black: dropping alpha instead of compositing shows black.
    image = Image.new("RGBA", (400, 200), (0, 0, 0, 0))
    image.paste((220, 0, 0, 255), (300, 50, 400, 150))
    if mode == "P":
        return image.convert("P", palette=Image.Palette.ADAPTIVE).convert("RGBA").convert("PA")
    return image.convert(mode)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_transparent_pixels_are_white_not_black(mode: str) -> None:
    thumb = _decode(thumbnail_data_uri(_transparent_with_red_square(mode), side=96, quality=80))
    assert thumb.size == (96, 48)
    assert min(thumb.getpixel((10, 24))) >= 245  # was transparent: white
    if mode == "RGBA":
        red, green, blue = thumb.getpixel((88, 24))
        assert red > 180 and green < 60 and blue < 60  # the opaque square keeps its colour


def test_palette_transparency_is_honoured() -> None:
    image = Image.new("P", (120, 120), 0)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (60, 0, 120, 120))
    image.info["transparency"] = 0
    thumb = _decode(thumbnail_data_uri(image, side=60, quality=80))
    assert min(thumb.getpixel((5, 30))) >= 245
    assert thumb.getpixel((55, 30))[2] > 200


def test_jpeg_is_decoded_small_and_opaque_images_are_unchanged_in_colour() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (1600, 1200), (10, 120, 200)).save(buffer, "JPEG", quality=90)
    with Image.open(io.BytesIO(buffer.getvalue())) as opened:
        thumb = _decode(thumbnail_data_uri(opened, side=96, quality=70))
    assert thumb.size == (96, 72)
    assert all(
        abs(a - b) <= 6 for a, b in zip(thumb.getpixel((40, 30)), (10, 120, 200), strict=True)
    )
