"""What a TIFF/DNG holds: metadata blocks, essence ranges, DNG detection, ASCII tags."""

from __future__ import annotations

from provenance._core.containers._types import (
    ContainerInfo,
    ImageFormat,
    MetadataBlock,
    Range,
)
from provenance._core.containers.tiff._ifd import (
    _ASCII,
    _KINDS,
    _UNDEFINED,
    TAG_DNG_VERSION,
    TAG_XMP,
    _entries,
    _parse,
    _Reader,
)
from provenance.errors import ContainerError, UnsupportedFormat


def is_dng(data: bytes) -> bool:
    """Whether a TIFF's IFD0 holds ``DNGVersion`` (reads IFD0 only; False if unreadable)."""
    try:
        reader = _Reader(data)
        entries, _ = _entries(reader, reader.u32(4))
    except (ContainerError, UnsupportedFormat):
        return False
    return any(entry.tag == TAG_DNG_VERSION for entry in entries)


def essence_ranges(data: bytes) -> tuple[Range, ...]:
    """Return the byte ranges of the strips and tiles, in image order.

    Args:
        data: A whole TIFF or DNG file.

    Returns:
        ``(start, end)`` ranges, touching ones merged.

    Raises:
        UnsupportedFormat: BigTIFF.
        ContainerError: If the structure is malformed or truncated.
    """
    return _parse(data).essence


def inspect(data: bytes) -> ContainerInfo:
    """Read the layout, metadata and essence ranges of a TIFF or DNG without decoding it.

    Args:
        data: A whole TIFF or DNG file.

    Returns:
        The container summary (``exif`` is None: a TIFF's EXIF is its own IFDs).

    Raises:
        UnsupportedFormat: BigTIFF.
        ContainerError: If the structure is malformed or truncated.
    """
    layout = _parse(data)
    blocks = [
        MetadataBlock(
            _KINDS[entry.tag],
            entry.offset if entry.inline else entry.value_start,
            12 if entry.inline else entry.value_end - entry.value_start,
            f"tag {entry.tag}",
        )
        for entry in sorted(layout.ifd0_entries, key=lambda e: e.value_start)
        if entry.tag in _KINDS
    ]
    packet = None
    for entry in layout.ifd0_entries:
        if entry.tag == TAG_XMP and entry.type in (1, _UNDEFINED) and not entry.inline:
            packet = data[entry.value_start : entry.value_end]
    return ContainerInfo(
        format=ImageFormat.DNG if layout.dng else ImageFormat.TIFF,
        width=layout.width,
        height=layout.height,
        blocks=tuple(blocks),
        xmp=packet,
        extended_xmp=None,
        exif=None,
        essence_ranges=layout.essence,
    )


def ascii_tags(exif: bytes, tags: frozenset[int]) -> dict[int, str]:
    r"""The ASCII values of the given IFD0 tags of raw EXIF (a TIFF structure without image).

    Args:
        exif: Raw TIFF bytes starting ``II*\0`` or ``MM\0*``.
        tags: The tag numbers wanted.

    Returns:
        The values found, by tag, without the terminating NUL.

    Raises:
        ContainerError: If ``exif`` is not a readable TIFF structure.
    """
    try:
        reader = _Reader(exif)
    except UnsupportedFormat as exc:
        raise ContainerError(exc.message) from None
    entries, _ = _entries(reader, reader.u32(4))
    found: dict[int, str] = {}
    for entry in entries:
        if entry.tag in tags and entry.type == _ASCII:
            raw = bytes(exif[entry.value_start : entry.value_end]).split(b"\x00", 1)[0]
            found[entry.tag] = raw.decode("ascii", "replace")
    return found
