"""GIF (87a, 89a): read, insert and strip metadata.

This module owns the byte layout of GIF files: it walks the blocks from the
logical screen descriptor to the trailer, classifies extensions, finds the
essence ranges, and splices the XMP application extension in or out. It never
decodes the LZW data, never does file I/O and never imports c2pa.

Metadata blocks: the XMP application extension (identifier ``XMP Data``,
authentication code ``XMP``; XMP spec part 3, 1.1.2: the raw packet followed by
a 258-byte "magic trailer" that makes sub-block readers skip it), the C2PA one
(``C2PA_GIF``, what c2pa-rs writes), ``ICCRGBG1`` (ICC) and comment extensions.
The ``NETSCAPE2.0``/``ANIMEXTS1.0`` loop extensions are structure, neither
metadata nor essence.

Essence (decision 5 of DESIGN.md): the logical screen descriptor and global
colour table, and for every image its graphic control extensions, image
descriptor, local colour table and LZW data blocks, in file order. Not the
``GIF87a``/``GIF89a`` header (inserting XMP upgrades 87a to 89a), not the
application, comment or plain-text extensions, not the trailer or anything after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from provenance._core.containers._types import (
    BlockKind,
    ContainerInfo,
    ImageFormat,
    MetadataBlock,
    Range,
    merge_ranges,
    splice,
)
from provenance.errors import ContainerError

__all__ = [
    "MAGIC_TRAILER",
    "MAX_BLOCKS",
    "XMP_APPLICATION",
    "essence_ranges",
    "inspect",
    "set_xmp",
    "strip",
]

XMP_APPLICATION = b"XMP DataXMP"
"""Identifier and authentication code of the XMP application extension."""
MAGIC_TRAILER = b"\x01" + bytes(range(255, -1, -1)) + b"\x00"
"""What follows the XMP packet: 0x01, 0xFF down to 0x00, and the block terminator."""
MAX_BLOCKS = 1 << 20
"""Most extensions, images and data sub-blocks a file may have; more is refused."""

_C2PA_APPLICATION = b"C2PA_GIF"
_ICC_APPLICATION = b"ICCRGBG1"
_LOOP_APPLICATIONS = (b"NETSCAPE2.0", b"ANIMEXTS1.0")


class _Block(NamedTuple):
    offset: int
    end: int
    kind: BlockKind | None  # None: not metadata
    essence: bool
    name: str


@dataclass(frozen=True, slots=True)
class _Layout:
    blocks: tuple[_Block, ...]
    essence: tuple[Range, ...]
    trailer: int  # offset of the 0x3B trailer
    width: int
    height: int
    xmp: tuple[tuple[int, bytes], ...]  # (offset, packet) of every XMP extension


def _color_table(packed: int) -> int:
    return 3 << ((packed & 7) + 1) if packed & 0x80 else 0


def _sub_blocks(data: bytes, pos: int, budget: list[int]) -> int:
    """Skip data sub-blocks from ``pos``; return the offset after the terminator."""
    size = len(data)
    while True:
        if pos >= size:
            raise ContainerError(f"truncated: data sub-block at offset {pos} runs past the end")
        length = data[pos]
        pos += 1 + length
        if length == 0:
            return pos
        budget[0] -= 1
        if budget[0] < 0:
            raise ContainerError(f"more than {MAX_BLOCKS} blocks before offset {pos}")


def _parse(data: bytes) -> _Layout:
    """Walk the blocks; see the module docstring."""
    size = len(data)
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise ContainerError("no GIF87a/GIF89a header at offset 0")
    if size < 13:
        raise ContainerError("truncated: logical screen descriptor at offset 6")
    width = int.from_bytes(data[6:8], "little")
    height = int.from_bytes(data[8:10], "little")
    pos = 13 + _color_table(data[10])
    if pos > size:
        raise ContainerError("truncated: global colour table at offset 13 runs past the end")
    essence: list[Range] = [(6, pos)]
    blocks: list[_Block] = []
    budget = [MAX_BLOCKS]
    xmp: list[tuple[int, bytes]] = []
    images = 0
    while True:
        if pos >= size:
            raise ContainerError(f"truncated: no trailer (0x3B) before offset {pos}")
        introducer = data[pos]
        if introducer == 0x3B:
            break
        budget[0] -= 1
        if budget[0] < 0:
            raise ContainerError(f"more than {MAX_BLOCKS} blocks before offset {pos}")
        if introducer == 0x2C:
            # 1. Image descriptor (9 bytes), local colour table, LZW minimum code size.
            if pos + 11 > size:
                raise ContainerError(f"truncated: image descriptor at offset {pos}")
            left, top = (
                int.from_bytes(data[pos + 1 : pos + 3], "little"),
                int.from_bytes(data[pos + 3 : pos + 5], "little"),
            )
            frame_w = int.from_bytes(data[pos + 5 : pos + 7], "little")
            frame_h = int.from_bytes(data[pos + 7 : pos + 9], "little")
            width, height = max(width, left + frame_w), max(height, top + frame_h)
            start = pos + 10 + _color_table(data[pos + 9])
            end = _sub_blocks(data, start + 1, budget)
            blocks.append(_Block(pos, end, None, True, "image"))
            images += 1
        elif introducer == 0x21:
            if pos + 2 > size:
                raise ContainerError(f"truncated: extension at offset {pos}")
            label = data[pos + 1]
            block = _extension(data, pos, label, budget)
            if block.kind is BlockKind.XMP:
                xmp.append((pos, data[pos + 14 : block.end - len(MAGIC_TRAILER)]))
            blocks.append(block)
        else:
            raise ContainerError(f"unknown block introducer 0x{introducer:02x} at offset {pos}")
        pos = blocks[-1].end
    if not images:
        raise ContainerError("no image descriptor")
    essence.extend((b.offset, b.end) for b in blocks if b.essence)
    return _Layout(tuple(blocks), merge_ranges(essence), pos, width, height, tuple(xmp))


def _extension(data: bytes, pos: int, label: int, budget: list[int]) -> _Block:
    if label == 0xF9:
        return _Block(pos, _sub_blocks(data, pos + 2, budget), None, True, "graphic control")
    if label == 0xFE:
        return _Block(pos, _sub_blocks(data, pos + 2, budget), BlockKind.COMMENT, False, "comment")
    if label != 0xFF:
        name = "plain text" if label == 0x01 else f"extension 0x{label:02x}"
        return _Block(
            pos, _sub_blocks(data, pos + 2, budget), BlockKind.OTHER_METADATA, False, name
        )
    if pos + 14 > len(data) or data[pos + 2] != 11:
        raise ContainerError(f"application extension at offset {pos} lacks its 11-byte identifier")
    ident = data[pos + 3 : pos + 14]
    name = ident.decode("latin-1")
    if ident == XMP_APPLICATION:
        # The packet is raw bytes; the magic trailer ends it (XMP spec part 3, 1.1.2).
        trailer = data.find(MAGIC_TRAILER, pos + 14)
        if trailer < 0:
            raise ContainerError(f"XMP extension at offset {pos} lacks its magic trailer")
        return _Block(pos, trailer + len(MAGIC_TRAILER), BlockKind.XMP, False, name)
    end = _sub_blocks(data, pos + 14, budget)
    if ident.startswith(_C2PA_APPLICATION):
        return _Block(pos, end, BlockKind.C2PA, False, name)
    if ident.startswith(_ICC_APPLICATION):
        return _Block(pos, end, BlockKind.ICC, False, name)
    if ident in _LOOP_APPLICATIONS:
        return _Block(pos, end, None, False, name)
    return _Block(pos, end, BlockKind.OTHER_METADATA, False, name)


def essence_ranges(data: bytes) -> tuple[Range, ...]:
    """Return the merged byte ranges of coded image data (see the module docstring).

    Args:
        data: A whole GIF file.

    Returns:
        ``(start, end)`` ranges in file order.

    Raises:
        ContainerError: If the structure is malformed or truncated.
    """
    return _parse(data).essence


def inspect(data: bytes) -> ContainerInfo:
    """Read the layout, metadata and essence ranges of a GIF without decoding it.

    Args:
        data: A whole GIF file.

    Returns:
        The container summary; width and height cover every frame.

    Raises:
        ContainerError: If the structure is malformed or truncated, or the file
            holds several XMP packets.
    """
    layout = _parse(data)
    # Only reading refuses several packets: set_xmp and strip remove them all, so
    # verify can set contradicting packets aside (as for the other formats).
    if len(layout.xmp) > 1:
        raise ContainerError(f"several XMP packets (another at offset {layout.xmp[1][0]})")
    return ContainerInfo(
        format=ImageFormat.GIF,
        width=layout.width,
        height=layout.height,
        blocks=tuple(
            MetadataBlock(b.kind, b.offset, b.end - b.offset, b.name)
            for b in layout.blocks
            if b.kind is not None
        ),
        xmp=layout.xmp[0][1] if layout.xmp else None,
        extended_xmp=None,
        exif=None,
        essence_ranges=layout.essence,
    )


def _header(data: bytes) -> list[tuple[int, bytes]]:
    # Extensions need GIF89a; the header is outside the essence.
    return [(0, b"GIF89a")] if data[:6] == b"GIF87a" else []


def set_xmp(data: bytes, packet: bytes) -> bytes:
    """Insert or replace the XMP application extension, just before the trailer.

    Args:
        data: A whole GIF file.
        packet: The XMP packet (UTF-8; it must not contain a zero byte).

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        ContainerError: If ``data`` is malformed, or the packet holds a zero byte
            (a sub-block reader would stop there).
    """
    layout = _parse(data)
    if b"\x00" in packet:
        raise ContainerError("XMP packet holds a zero byte; GIF cannot carry it")
    deletions = [(0, 6)] if data[:6] == b"GIF87a" else []
    deletions += [(b.offset, b.end) for b in layout.blocks if b.kind is BlockKind.XMP]
    extension = b"\x21\xff\x0b" + XMP_APPLICATION + packet + MAGIC_TRAILER
    return splice(data, deletions, [*_header(data), (layout.trailer, extension)])


def strip(data: bytes, kinds: frozenset[BlockKind]) -> bytes:
    """Remove every extension of the given kinds.

    Args:
        data: A whole GIF file.
        kinds: The kinds to remove.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        ContainerError: If ``data`` is malformed.
    """
    layout = _parse(data)
    return splice(data, [(b.offset, b.end) for b in layout.blocks if b.kind in kinds], [])
