"""Small real image files of every format provenance reads, made in the test run.

Pillow writes JPEG, PNG, WebP, TIFF, AVIF and GIF; pillow-heif writes HEIC; a DNG
is a TIFF with the DNG tags in IFD0 (``DNGVersion``, ``DNGBackwardVersion``,
``UniqueCameraModel``), which is all c2pa and ExifTool need to take it as one.
"""

from __future__ import annotations

import io
import os
import struct
from functools import cache

import numpy as np
from PIL import Image, TiffImagePlugin, TiffTags

from provenance._core.containers import ImageFormat

ALL_FORMATS = (
    ImageFormat.JPEG,
    ImageFormat.PNG,
    ImageFormat.WEBP,
    ImageFormat.TIFF,
    ImageFormat.DNG,
    ImageFormat.HEIC,
    ImageFormat.HEIF,
    ImageFormat.AVIF,
    ImageFormat.GIF,
)
NEW_FORMATS = (
    ImageFormat.TIFF,
    ImageFormat.DNG,
    ImageFormat.HEIC,
    ImageFormat.HEIF,
    ImageFormat.AVIF,
    ImageFormat.GIF,
)


def flat(path: str | os.PathLike[str]) -> Image.Image:
    """The image's pixels, alpha composited on white (as a shop's page shows them)."""
    with Image.open(path) as im:
        rgba = im.convert("RGBA")
    ground = Image.new("RGBA", rgba.size, "white")
    ground.alpha_composite(rgba)
    return ground.convert("RGB")


def picture(seed: int = 0, size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A smooth picture with a few blocks: something the perceptual hash can see."""
    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    red, green = x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1)
    base = np.stack([red, green, (x + y) * 127 // (width + height)], axis=-1).astype(np.uint8)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, width - 8)), int(rng.integers(0, height - 8))
        base[y0 : y0 + height // 4, x0 : x0 + width // 4] = rng.integers(0, 256, 3, dtype=np.uint8)
    return Image.fromarray(base, "RGB")


def _dng_tags() -> TiffImagePlugin.ImageFileDirectory_v2:
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    for tag, value in ((50706, b"\x01\x04\x00\x00"), (50707, b"\x01\x01\x00\x00")):
        tags[tag] = value
        tags.tagtype[tag] = TiffTags.BYTE
    tags[50708] = "provenance test camera"
    tags.tagtype[50708] = TiffTags.ASCII
    return tags


def encode(image: Image.Image, fmt: ImageFormat) -> bytes:
    """``image`` written as ``fmt``."""
    out = io.BytesIO()
    if fmt in (ImageFormat.HEIC, ImageFormat.HEIF):
        import pillow_heif  # registers Pillow's HEIF writer, only when needed

        pillow_heif.register_heif_opener()
        image.save(out, "HEIF", quality=85)
        if fmt is ImageFormat.HEIF:
            # A generic HEIF: the same HEVC file announcing only the structural
            # brands (ftyp: major 'mif1', compatible 'mif1' 'miaf'), as some
            # cameras and converters write.
            data = bytearray(out.getvalue())
            size = int.from_bytes(data[:4], "big")
            brands = [data[at : at + 4] for at in range(16, size, 4)]
            data[8:12] = b"mif1"
            for at, brand in zip(range(16, size, 4), brands, strict=True):
                if brand in (b"heic", b"heix", b"hevc", b"hevx"):
                    data[at : at + 4] = b"miaf"
            return bytes(data)
    elif fmt is ImageFormat.DNG:
        image.save(out, "TIFF", tiffinfo=_dng_tags())
    elif fmt is ImageFormat.GIF:
        image.convert("P", palette=Image.Palette.ADAPTIVE).save(out, "GIF")
    elif fmt is ImageFormat.TIFF:
        image.save(out, "TIFF", compression="tiff_adobe_deflate")
    elif fmt in (ImageFormat.JPEG, ImageFormat.WEBP, ImageFormat.AVIF):
        image.save(out, fmt.name, quality=85)
    else:
        image.save(out, fmt.name)
    return out.getvalue()


@cache
def sample(fmt: ImageFormat, seed: int = 0) -> bytes:
    """A small picture in ``fmt`` (cached per run: treat as read-only)."""
    return encode(picture(seed), fmt)


def with_size(data: bytes, fmt: ImageFormat, width: int, height: int) -> bytes:
    """``data`` whose header claims ``width`` x ``height`` pixels (the pixel data is not grown).

    The shape of a decompression bomb: a small file whose header announces a huge
    image. Patches TIFF/DNG ImageWidth/ImageLength, every HEIF ``ispe``, or the
    GIF logical screen and first image descriptor.
    """
    out = bytearray(data)
    if fmt in (ImageFormat.TIFF, ImageFormat.DNG):
        order = "<" if out[:2] == b"II" else ">"
        ifd = struct.unpack_from(order + "I", out, 4)[0]
        for index in range(struct.unpack_from(order + "H", out, ifd)[0]):
            pos = ifd + 2 + 12 * index
            tag, kind = struct.unpack_from(order + "HH", out, pos)
            if tag in (256, 257):
                value = width if tag == 256 else height
                fmt_char = "H" if kind == 3 else "I"
                struct.pack_into(order + fmt_char, out, pos + 8, value)
    elif fmt in (ImageFormat.HEIC, ImageFormat.HEIF, ImageFormat.AVIF):
        at = out.find(b"ispe")
        while at >= 0:
            struct.pack_into(">II", out, at + 8, width, height)
            at = out.find(b"ispe", at + 4)
    elif fmt is ImageFormat.GIF:
        struct.pack_into("<HH", out, 6, width, height)
        image = out.find(b"\x2c", 13 + (3 << ((out[10] & 7) + 1) if out[10] & 0x80 else 0))
        struct.pack_into("<HH", out, image + 5, width, height)
    else:
        raise ValueError(f"no header patch for {fmt}")
    return bytes(out)
