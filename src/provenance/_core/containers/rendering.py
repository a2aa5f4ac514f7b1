"""What outside the essence changes how an image decodes or displays, and trailing data.

The essence (decision 5 of DESIGN.md) is the coded image data. Most blocks outside
it only describe the image (XMP, EXIF text, IPTC, comments), so a change to them is
a metadata change. A few change the pixels a viewer shows while the essence stays
the same; each is decided here, with the reason:

* JPEG APP14 ``Adobe``: its transform flag tells the decoder whether the
  components are YCbCr or RGB (YCCK or CMYK for four): inserting, removing or
  editing it recolours every pixel (T.872 6.5.3; libjpeg ``jdapimin.c``).
* WebP ``VP8X`` canvas size: the frame is drawn on the canvas; a canvas that
  differs from the still frame's size crops or pads it (RFC 9649 2.7).
* EXIF/TIFF ``Orientation`` (tag 274) other than 1, in the EXIF block or in a
  TIFF's or DNG's own IFD0: browsers and viewers rotate or mirror the image by
  it. Neither the signed statement nor our XMP holds the orientation, so one
  present cannot be shown to be the signed one.
* JPEG APP2 ``MPF`` with images after EOI (Ultra HDR gain maps, MPO stereo pairs):
  the extra images change the HDR rendering and are outside the essence.
* A PNG chunk of unknown type whose first letter is upper case (critical): the
  essence holds only the known critical chunks, and a decoder that meets an
  unknown critical one must refuse the image (PNG 3rd edition, 5.4; libpng
  "unhandled critical chunk").

The ICC profile stays outside this list: its removal is a documented metadata
change (docs/concepts.md, "Essence"). Data after the image's end (JPEG EOI, PNG
IEND, WebP RIFF data) is reported apart: it is never a decoder's business, but a
polyglot payload rides there. So is a bad CRC on an ancillary PNG chunk, which
decoders skip (libpng warns and goes on): every writer computes CRCs right, so one
that is wrong is a byte changed after the file was written.

Pure: bytes and :class:`~provenance._core.containers.ContainerInfo` in, findings out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from provenance._core.containers import webp
from provenance._core.containers._types import ContainerInfo, ImageFormat
from provenance.errors import ContainerError

__all__ = ["BAD_CRC", "RENDERING_CHANGED", "TRAILING_DATA", "Finding", "rendering_findings"]

RENDERING_CHANGED = "provenance.metadata.renderingChanged"
"""A block outside the essence that changes how the image decodes or displays."""
TRAILING_DATA = "provenance.container.trailingData"
"""Bytes after the image's end (JPEG EOI, PNG IEND, WebP RIFF data)."""

BAD_CRC = "provenance.container.badCrc"
"""A CRC that does not match its ancillary PNG chunk (decoders ignore it, as libpng does)."""

_ORIENTATION_TAG = 274


@dataclass(frozen=True, slots=True)
class Finding:
    """One block that changes rendering, or trailing data.

    Attributes:
        code: :data:`RENDERING_CHANGED` or :data:`TRAILING_DATA`.
        detail: The block and offset (or byte count), for people.
    """

    code: str
    detail: str


def rendering_findings(data: bytes, info: ContainerInfo) -> tuple[Finding, ...]:
    """Every block of ``data`` outside the essence that affects rendering, and trailing data.

    Args:
        data: The whole file.
        info: ``inspect(data)``.

    Returns:
        The findings, in file order by kind; empty for a file with none.
    """
    found: list[Finding] = []
    mpf = False
    if info.format is ImageFormat.JPEG:
        for block in info.blocks:
            payload = data[block.offset + 4 : block.offset + 4 + 6]
            if block.name == "APP14" and payload.startswith(b"Adobe"):
                found.append(
                    Finding(
                        RENDERING_CHANGED,
                        f"APP14 Adobe segment at offset {block.offset} (colour transform)",
                    )
                )
            if block.name == "APP2" and payload.startswith(b"MPF\x00"):
                mpf = True
    if info.format is ImageFormat.WEBP:
        try:
            frame = webp.frame_size(data)
        except ContainerError:
            frame = None
        if frame is not None and frame != (info.width, info.height):
            found.append(
                Finding(
                    RENDERING_CHANGED,
                    f"VP8X canvas {info.width}x{info.height} differs from the frame's "
                    f"{frame[0]}x{frame[1]}",
                )
            )
    if info.format is ImageFormat.PNG:
        found.extend(
            Finding(
                RENDERING_CHANGED,
                f"unknown critical chunk {block.name!r} at offset {block.offset} "
                "(a decoder must refuse the image)",
            )
            for block in info.blocks
            if block.name[:1].isupper()
        )
    # A TIFF's or DNG's EXIF is its own IFD0 (``info.exif`` is None there).
    tiff = data if info.format in (ImageFormat.TIFF, ImageFormat.DNG) else info.exif
    orientation = exif_orientation(tiff) if tiff is not None else None
    if orientation not in (None, 1):
        found.append(Finding(RENDERING_CHANGED, f"EXIF Orientation {orientation} (not 1)"))
    if info.image_end is not None and len(data) > info.image_end:
        extra = len(data) - info.image_end
        if mpf:
            found.append(
                Finding(
                    RENDERING_CHANGED,
                    f"MPF images after EOI ({extra} bytes at offset {info.image_end}, "
                    "e.g. an Ultra HDR gain map)",
                )
            )
        else:
            found.append(
                Finding(
                    TRAILING_DATA,
                    f"{extra} bytes after the image's end at offset {info.image_end}",
                )
            )
    found.extend(Finding(BAD_CRC, defect) for defect in info.defects if "bad CRC" in defect)
    return tuple(found)


def exif_orientation(tiff: bytes) -> int | None:
    r"""The ``Orientation`` of IFD0 in raw TIFF/EXIF bytes, or None when absent or unreadable.

    Args:
        tiff: Bytes starting ``II*\0`` or ``MM\0*``.
    """
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return None
    (ifd,) = struct.unpack_from(order + "I", tiff, 4)
    if ifd + 2 > len(tiff):
        return None
    (count,) = struct.unpack_from(order + "H", tiff, ifd)
    for index in range(min(count, (len(tiff) - ifd - 2) // 12)):
        tag, kind, _, value = struct.unpack_from(order + "HHI4s", tiff, ifd + 2 + 12 * index)
        if tag == _ORIENTATION_TAG and kind == 3:  # SHORT, held in the first 2 value bytes
            (orientation,) = struct.unpack_from(order + "H", value)
            return int(orientation)
    return None
