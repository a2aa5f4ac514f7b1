"""Byte-level containers: find, insert and strip metadata in JPEG, PNG and WebP.

This package owns the byte layout of the three formats provenance handles. It
reads segments and chunks without decoding pixels, inserts XMP and EXIF as bytes
without re-encoding (decision 3 of DESIGN.md), and says which bytes are coded
image data (the essence ranges of decision 5). The functions here detect the
format and dispatch to :mod:`~provenance.containers.jpeg`,
:mod:`~provenance.containers.png` or :mod:`~provenance.containers.webp`, which
also offer format-specific options (JPEG extended XMP, PNG image CRC checks).

Everything here takes bytes and returns values: no file I/O, no c2pa, no
Pillow. Parsers never trust a length field, run in time linear in the input,
and raise nothing but :class:`~provenance.errors.ProvenanceError` subclasses:
:class:`~provenance.errors.UnsupportedFormat` for unknown formats and
:class:`~provenance.errors.ContainerError` for malformed structure, with a
message naming the offset. The caller attaches the path with ``err.with_path``.
"""

from __future__ import annotations

from provenance.containers import jpeg, png, webp
from provenance.containers._types import (
    BlockKind,
    ContainerInfo,
    ImageFormat,
    MetadataBlock,
    Range,
)
from provenance.errors import UnsupportedFormat

__all__ = [
    "BlockKind",
    "ContainerInfo",
    "ImageFormat",
    "MetadataBlock",
    "Range",
    "detect_format",
    "embed",
    "essence_ranges",
    "inspect",
    "set_exif",
    "set_xmp",
    "strip",
]


def detect_format(data: bytes) -> ImageFormat:
    """Tell the format of an image from its magic bytes.

    Args:
        data: The file's bytes (the first 12 are enough).

    Returns:
        The format.

    Raises:
        UnsupportedFormat: If ``data`` is empty or is not a JPEG, PNG or WebP.
    """
    if not data:
        raise UnsupportedFormat("empty input: not a JPEG, PNG or WebP")
    if data[:2] == b"\xff\xd8":
        return ImageFormat.JPEG
    if data[:8] == png.SIGNATURE:
        return ImageFormat.PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageFormat.WEBP
    raise UnsupportedFormat(f"not a JPEG, PNG or WebP (starts with {bytes(data[:12]).hex()})")


def inspect(data: bytes, *, essence: bool = True) -> ContainerInfo:
    """Read the layout, metadata and essence ranges of an image without decoding it.

    Args:
        data: A whole JPEG, PNG or WebP file.
        essence: False lets a JPEG stop at its first scan (metadata before the
            image data only; ``essence_ranges`` empty): for ``verify`` of a file
            c2pa has just bound byte for byte. Other formats are read whole.

    Returns:
        The container summary.

    Raises:
        UnsupportedFormat: If the format is not recognised.
        ContainerError: If the structure is malformed or truncated, or the file
            holds several XMP packets.
    """
    image_format = detect_format(data)
    if image_format is ImageFormat.JPEG:
        return jpeg.inspect(data, essence=essence)
    if image_format is ImageFormat.PNG:
        return png.inspect(data)
    return webp.inspect(data)


def essence_ranges(data: bytes) -> tuple[Range, ...]:
    """Return the byte ranges of coded image data, the input of the essence hash.

    Cheaper than :func:`inspect`: it walks the structure but extracts nothing.

    Args:
        data: A whole JPEG, PNG or WebP file.

    Returns:
        Sorted, disjoint, merged ``(start, end)`` ranges.

    Raises:
        UnsupportedFormat: If the format is not recognised.
        ContainerError: If the structure is malformed or truncated.
    """
    image_format = detect_format(data)
    if image_format is ImageFormat.JPEG:
        return jpeg.essence_ranges(data)
    if image_format is ImageFormat.PNG:
        return png.essence_ranges(data)
    return webp.essence_ranges(data)


def set_xmp(data: bytes, packet: bytes) -> bytes:
    """Insert or replace the XMP packet, removing any existing one first.

    JPEG: one APP1 segment after SOI and any opening APP0/APP1 Exif segments
    (use :func:`provenance.containers.jpeg.set_xmp` for extended XMP). PNG: one
    uncompressed ``iTXt`` ``XML:com.adobe.xmp`` chunk right after IHDR. WebP: an
    ``XMP `` chunk at the end, with the VP8X flag set (a simple file becomes VP8X).

    Args:
        data: A whole JPEG, PNG or WebP file.
        packet: The serialized XMP packet.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        UnsupportedFormat: If the format is not recognised.
        ContainerError: If the structure is malformed, or the packet does not fit.
    """
    image_format = detect_format(data)
    if image_format is ImageFormat.JPEG:
        return jpeg.set_xmp(data, packet)
    if image_format is ImageFormat.PNG:
        return png.set_xmp(data, packet)
    return webp.set_xmp(data, packet)


def set_exif(data: bytes, tiff: bytes) -> bytes:
    r"""Insert or replace EXIF, given as raw TIFF bytes.

    JPEG: APP1 ``Exif\0\0`` right after SOI and any APP0. PNG: ``eXIf`` right
    after IHDR. WebP: ``EXIF`` after the image data, before ``XMP ``, with the
    VP8X flag set.

    Args:
        data: A whole JPEG, PNG or WebP file.
        tiff: Raw TIFF bytes starting ``II*\0`` or ``MM\0*``.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        UnsupportedFormat: If the format is not recognised.
        ContainerError: If the structure is malformed, or ``tiff`` is not TIFF
            or does not fit.
    """
    image_format = detect_format(data)
    if image_format is ImageFormat.JPEG:
        return jpeg.set_exif(data, tiff)
    if image_format is ImageFormat.PNG:
        return png.set_exif(data, tiff)
    return webp.set_exif(data, tiff)


def strip(data: bytes, kinds: frozenset[BlockKind]) -> bytes:
    """Remove every metadata block of the given kinds (WebP flags follow).

    Simulates what CDNs and ``exiftool -all=`` do, or a tool that drops the C2PA
    box but keeps XMP (``frozenset({BlockKind.C2PA})``).

    Args:
        data: A whole JPEG, PNG or WebP file.
        kinds: The kinds to remove.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        UnsupportedFormat: If the format is not recognised.
        ContainerError: If the structure is malformed.
    """
    image_format = detect_format(data)
    if image_format is ImageFormat.JPEG:
        return jpeg.strip(data, kinds)
    if image_format is ImageFormat.PNG:
        return png.strip(data, kinds)
    return webp.strip(data, kinds)


def embed(data: bytes, info: ContainerInfo, *, xmp: bytes, exif: bytes | None) -> bytes:
    r"""Replace the XMP packet and (when given) the EXIF in one copy of the file.

    The same result as :func:`set_xmp` then :func:`set_exif`, but from the layout
    :func:`inspect` already found: a JPEG is not parsed again (its entropy-coded
    data is the expensive part of parsing) and the file is copied once.

    Args:
        data: A whole JPEG, PNG or WebP file.
        info: ``inspect(data)``, for these very bytes.
        xmp: The new XMP packet (any XMP and JPEG extended XMP already there go).
        exif: New raw TIFF bytes (``II*\0`` or ``MM\0*``) replacing any EXIF;
            None keeps the EXIF already there.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        ContainerError: If the structure is malformed, or a payload does not fit.
    """
    if info.format is ImageFormat.JPEG:
        return jpeg.embed(data, info.blocks, xmp=xmp, exif=exif)
    if info.format is ImageFormat.PNG:
        return png.embed(data, info.blocks, xmp=xmp, exif=exif)
    staged = set_xmp(data, xmp)
    return staged if exif is None else set_exif(staged, exif)
