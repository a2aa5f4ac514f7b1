"""What a JPEG holds: metadata blocks, essence ranges, extended XMP."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from provenance._core.containers._types import (
    BlockKind,
    ContainerInfo,
    ImageFormat,
    MetadataBlock,
    Range,
    has_tiff_header,
)
from provenance._core.containers.jpeg._segments import (
    _EXIF_HEADER,
    _HAS_EXTENDED_XMP,
    EXTENDED_XMP_HEADER,
    XMP_HEADER,
    _Layout,
    _marker_name,
    _parse,
    _Segment,
    plain_essence,
)
from provenance.errors import ContainerError


def _blocks(layout: _Layout) -> tuple[MetadataBlock, ...]:
    return tuple(
        MetadataBlock(s.kind, s.offset, s.end - s.offset, _marker_name(s.marker))
        for s in layout.segments
    )


def essence_ranges(data: bytes) -> tuple[Range, ...]:
    """Return the merged byte ranges of coded image data (see the module docstring).

    Args:
        data: A whole JPEG file.

    Returns:
        Sorted, disjoint ``(start, end)`` ranges.

    Raises:
        ContainerError: If the marker structure is malformed or truncated.
    """
    # Encoder-written files (every rendition of an import) take the lean walk;
    # anything it does not call plain is walked in full (same ranges, or the error).
    plain = plain_essence(data)
    return plain if plain is not None else _parse(data).essence


def extended_xmp_guid(extended: bytes) -> str:
    """Return the GUID that names an extended XMP packet (XMP spec part 3, 1.1.3.1).

    Args:
        extended: The serialized extended XMP packet.

    Returns:
        The MD5 digest of ``extended`` as 32 uppercase hexadecimal digits; the
        standard packet must name it in ``xmpNote:HasExtendedXMP``.
    """
    return hashlib.md5(extended, usedforsecurity=False).hexdigest().upper()


def _extended_xmp(
    data: bytes, segments: Iterable[_Segment], standard: bytes | None
) -> bytes | None:
    """Reassemble extended XMP when every chunk of the named packet is present."""
    groups: dict[bytes, list[tuple[int, int, int, int]]] = {}
    for segment in segments:
        prefix = segment.payload_start + len(EXTENDED_XMP_HEADER)
        if segment.end - prefix < 40:
            raise ContainerError(f"extended XMP segment at offset {segment.offset} is too short")
        guid = data[prefix : prefix + 32]
        full_length = int.from_bytes(data[prefix + 32 : prefix + 36], "big")
        chunk_offset = int.from_bytes(data[prefix + 36 : prefix + 40], "big")
        groups.setdefault(guid, []).append((chunk_offset, full_length, prefix + 40, segment.end))
    named = _HAS_EXTENDED_XMP.search(standard) if standard is not None else None
    if named is not None:
        chunks = groups.get(named.group(1).upper()) or groups.get(named.group(1))
    elif len(groups) == 1:
        chunks = next(iter(groups.values()))
    else:
        chunks = None
    if not chunks:
        return None
    # The chunks must tile [0, full length) exactly, in any order of segments.
    chunks.sort()
    full_length = chunks[0][1]
    expected = 0
    for chunk_offset, chunk_full, start, end in chunks:
        if chunk_full != full_length or chunk_offset != expected:
            return None
        expected += end - start
    if expected != full_length:
        return None
    return b"".join(memoryview(data)[start:end] for _, _, start, end in chunks)


def inspect(data: bytes, *, essence: bool = True) -> ContainerInfo:
    """Read the layout, metadata and essence ranges of a JPEG without decoding it.

    Args:
        data: A whole JPEG file.
        essence: False stops at the first scan: the metadata before the image
            data only, ``essence_ranges`` empty, and the entropy-coded data
            neither scanned nor checked (for a file whose bytes are known good).

    Returns:
        The container summary.

    Raises:
        ContainerError: If the structure is malformed or truncated, or the file
            holds several standard XMP packets.
    """
    layout = _parse(data, until_scan=not essence)
    xmp_segments = [s for s in layout.segments if s.kind is BlockKind.XMP]
    if len(xmp_segments) > 1:
        offsets = ", ".join(str(s.offset) for s in xmp_segments)
        raise ContainerError(f"several XMP packets (APP1 segments at offsets {offsets})")
    xmp = None
    if xmp_segments:
        segment = xmp_segments[0]
        xmp = data[segment.payload_start + len(XMP_HEADER) : segment.end]
    extended_segments = [s for s in layout.segments if s.kind is BlockKind.EXTENDED_XMP]
    extended = _extended_xmp(data, extended_segments, xmp) if extended_segments else None
    exif = None
    for segment in layout.segments:
        if segment.kind is BlockKind.EXIF:
            tiff = data[segment.payload_start + len(_EXIF_HEADER) : segment.end]
            exif = tiff if has_tiff_header(tiff) else None
            break
    return ContainerInfo(
        format=ImageFormat.JPEG,
        width=layout.width,
        height=layout.height,
        blocks=_blocks(layout),
        xmp=xmp,
        extended_xmp=extended,
        exif=exif,
        essence_ranges=layout.essence,
        # The essence ends with EOI (not read when stopping at the first scan).
        image_end=layout.essence[-1][1] if layout.essence else None,
    )


# C2PA 2.x, A.3.1: the JPEG XT packet header: CI "JP" (2), En (2), Z (4), then the
# box's LBox (4) and TBox (4), repeated in every packet after the first.
_PACKET_HEADER = 8
_REPEATED_BOX_HEADER = 8


def c2pa_store(data: bytes, info: ContainerInfo) -> bytes | None:
    """The C2PA manifest store of a JPEG, joined from its APP11 packets, when laid out plainly.

    Plain is how c2pa writes a store: every APP11 segment in ``info`` belongs to
    the one store (same box instance ``En``), in packet order 1, 2, ... and each
    longer than its headers. The store is then what c2pa-rs reassembles from the
    file itself: the first packet from its superbox header on, every next one
    without its packet header and repeated LBox/TBox. Any other layout gives None
    (c2pa is to find the store itself): a caller hands c2pa only a store it would
    have joined alike.

    Args:
        data: The bytes ``info`` describes (a whole JPEG or its head up to the scan).
        info: ``inspect(data)``'s blocks.
    """
    parts: list[bytes] = []
    instance = b""
    for block in info.blocks:
        if block.name != "APP11":
            continue
        payload = data[block.offset + 4 : block.end]
        first = not parts
        # c2pa-rs skips packets of 16 bytes or less and wants the first one's
        # description box type at payload bytes 24-28.
        if block.kind is not BlockKind.C2PA or len(payload) <= (28 if first else 16):
            return None
        if int.from_bytes(payload[4:8], "big") != len(parts) + 1:
            return None
        if first:
            if payload[24:28] != b"c2pa":
                return None
            instance = payload[2:4]
            parts.append(payload[_PACKET_HEADER:])
        elif payload[2:4] != instance:
            return None
        else:
            parts.append(payload[_PACKET_HEADER + _REPEATED_BOX_HEADER :])
    return b"".join(parts) if parts else None
