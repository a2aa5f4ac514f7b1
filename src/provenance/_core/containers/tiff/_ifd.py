"""TIFF tags and IFDs: entries, the bounded reader, the IFD walk and the layout it finds."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from provenance._core.containers._types import (
    BlockKind,
    Range,
    merge_ranges,
)
from provenance.errors import ContainerError, UnsupportedFormat

TAG_XMP = 700
"""The tag holding the XMP packet (type BYTE or UNDEFINED)."""
TAG_C2PA = 0xCD41
"""The tag c2pa-rs writes the JUMBF manifest store in."""
TAG_DNG_VERSION = 50706
"""``DNGVersion``: present in IFD0 of every DNG (DNG spec 1.6, chapter 4)."""

MAX_IFDS = 1024
"""Most IFDs a file may have (pages, SubIFDs, previews); more is refused as hostile."""
MAX_STRIPS = 1 << 20
"""Most strips and tiles over all IFDs; more is refused as hostile.

A 1 GiB image in 8 KiB strips has 131072; the cap bounds the work on a file of
empty strips.
"""

_MAX_ENTRIES = 4096  # entries in one IFD; real files have 10-100
_TAG_SUBIFDS = 330
_TAG_WIDTH, _TAG_HEIGHT = 256, 257
_STRIPS = (273, 279)  # StripOffsets, StripByteCounts
_TILES = (324, 325)  # TileOffsets, TileByteCounts
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_KINDS = {
    TAG_XMP: BlockKind.XMP,
    TAG_C2PA: BlockKind.C2PA,
    34675: BlockKind.ICC,
    34665: BlockKind.EXIF,
    34853: BlockKind.EXIF,
    33723: BlockKind.OTHER_METADATA,
    34377: BlockKind.OTHER_METADATA,
    270: BlockKind.COMMENT,
}
_UNDEFINED = 7
_ASCII = 2
_TAG_EXIF, _TAG_GPS = 34665, 34853

PERSONAL_TAGS = frozenset(
    {
        315,  # Artist
        316,  # HostComputer
        0x9C9C,  # XPComment
        0x9C9D,  # XPAuthor
        32781,  # ImageID
        33723,  # IPTC-NAA (creator names, contacts, places)
        34377,  # Photoshop ImageResources (the same)
        50735,  # CameraSerialNumber
        50740,  # DNGPrivateData (maker notes with serial numbers)
        50781,  # RawDataUniqueID
        50827,  # OriginalRawFileName
        50828,  # OriginalRawFileData
        42016,  # ImageUniqueID (Exif IFD)
        42032,  # CameraOwnerName (Exif IFD)
        42033,  # BodySerialNumber (Exif IFD)
        42037,  # LensSerialNumber (Exif IFD)
        37500,  # MakerNote (Exif IFD)
        37510,  # UserComment (Exif IFD)
    }
)
"""Tags :func:`embed` removes from IFD0 and the Exif IFD (the list of
:mod:`provenance._core.exif`, DESIGN decision 13); the GPS IFD goes whole."""


class _Entry(NamedTuple):
    tag: int
    type: int
    number: int
    offset: int  # of the 12-byte entry
    value_start: int  # the value's bytes (inline: inside the entry)
    value_end: int

    @property
    def inline(self) -> bool:
        return self.value_start == self.offset + 8


@dataclass(frozen=True, slots=True)
class _Layout:
    big_endian: bool
    ifd0: int
    ifd0_entries: tuple[_Entry, ...]
    ifd0_next: int
    essence: tuple[Range, ...]
    width: int
    height: int
    dng: bool


class _Reader:
    """Bounded reads in the file's byte order."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        if data[:4] == b"II*\x00":
            self.order = "<"
        elif data[:4] == b"MM\x00*":
            self.order = ">"
        elif data[:4] in (b"II+\x00", b"MM\x00+"):
            raise UnsupportedFormat("BigTIFF (64-bit offsets) is not supported")
        else:
            raise ContainerError("no TIFF header (II*\\0 or MM\\0*) at offset 0")

    def u16(self, pos: int) -> int:
        if pos + 2 > len(self.data):
            raise ContainerError(f"truncated: 2 bytes at offset {pos} run past the end")
        return int(struct.unpack_from(self.order + "H", self.data, pos)[0])

    def u32(self, pos: int) -> int:
        if pos + 4 > len(self.data):
            raise ContainerError(f"truncated: 4 bytes at offset {pos} run past the end")
        return int(struct.unpack_from(self.order + "I", self.data, pos)[0])

    def values(self, entry: _Entry) -> list[int]:
        """The unsigned integer values of a SHORT, LONG or IFD entry."""
        if entry.type == 3:
            fmt = "H"
        elif entry.type in (4, 13):
            fmt = "I"
        else:
            raise ContainerError(f"tag {entry.tag} at offset {entry.offset} is not an integer")
        return list(
            struct.unpack_from(f"{self.order}{entry.number}{fmt}", self.data, entry.value_start)
        )


def _entries(reader: _Reader, ifd: int) -> tuple[list[_Entry], int]:
    """The entries of the IFD at ``ifd`` and the offset of the next IFD."""
    size = len(reader.data)
    count = reader.u16(ifd)
    if count > _MAX_ENTRIES:
        raise ContainerError(f"IFD at offset {ifd} claims {count} entries")
    if ifd + 2 + 12 * count + 4 > size:
        raise ContainerError(f"truncated: IFD at offset {ifd} runs past the end of data")
    entries: list[_Entry] = []
    for index in range(count):
        pos = ifd + 2 + 12 * index
        tag, kind, number = struct.unpack_from(reader.order + "HHI", reader.data, pos)
        unit = _TYPE_SIZES.get(kind)
        if unit is None:
            # An unknown type: its size is unknown, so it can only be carried along.
            entries.append(_Entry(tag, kind, number, pos, pos + 8, pos + 12))
            continue
        length = unit * number
        if length <= 4:
            start = pos + 8
        else:
            start = reader.u32(pos + 8)
            if start + length > size:
                raise ContainerError(
                    f"truncated: value of tag {tag} at offset {start} ({length} bytes) "
                    "runs past the end of data"
                )
        entries.append(_Entry(tag, kind, number, pos, start, start + length))
    return entries, reader.u32(ifd + 2 + 12 * count)


def _image_ranges(reader: _Reader, by_tag: dict[int, _Entry], ifd: int) -> list[Range]:
    for offsets_tag, counts_tag in (_TILES, _STRIPS):
        if offsets_tag in by_tag and counts_tag in by_tag:
            offsets = reader.values(by_tag[offsets_tag])
            counts = reader.values(by_tag[counts_tag])
            if len(offsets) != len(counts):
                raise ContainerError(
                    f"IFD at offset {ifd}: {len(offsets)} offsets for {len(counts)} byte counts"
                )
            ranges = []
            for start, length in zip(offsets, counts, strict=True):
                if start + length > len(reader.data):
                    raise ContainerError(
                        f"truncated: image data at offset {start} ({length} bytes) "
                        "runs past the end of data"
                    )
                ranges.append((start, start + length))
            return ranges
    return []


def _parse(data: bytes) -> _Layout:
    """Walk every IFD; see the module docstring."""
    reader = _Reader(data)
    if len(data) < 8:
        raise ContainerError("truncated: TIFF header is 8 bytes")
    ifd0 = reader.u32(4)
    pending = [ifd0]
    seen: set[int] = set()
    essence: list[Range] = []
    ifd0_entries: list[_Entry] = []
    ifd0_next = 0
    width = height = 0
    strips = 0
    while pending:
        ifd = pending.pop(0)
        if ifd in seen:
            raise ContainerError(f"IFD at offset {ifd} is referenced twice (a loop)")
        if len(seen) >= MAX_IFDS:
            raise ContainerError(f"more than {MAX_IFDS} IFDs")
        if ifd < 8 or ifd + 2 > len(data):
            raise ContainerError(f"IFD offset {ifd} is outside the file")
        seen.add(ifd)
        entries, next_ifd = _entries(reader, ifd)
        by_tag = {entry.tag: entry for entry in entries}
        if ifd == ifd0:
            ifd0_entries, ifd0_next = entries, next_ifd
        ranges = _image_ranges(reader, by_tag, ifd)
        strips += len(ranges)
        if strips > MAX_STRIPS:
            raise ContainerError(f"more than {MAX_STRIPS} strips or tiles")
        essence.extend(ranges)
        if ranges and _TAG_WIDTH in by_tag and _TAG_HEIGHT in by_tag:
            w, h = reader.values(by_tag[_TAG_WIDTH])[:1], reader.values(by_tag[_TAG_HEIGHT])[:1]
            if w and h and w[0] * h[0] > width * height:
                width, height = w[0], h[0]
        if _TAG_SUBIFDS in by_tag:
            pending.extend(reader.values(by_tag[_TAG_SUBIFDS]))
        if next_ifd:
            pending.append(next_ifd)
    if not essence:
        raise ContainerError("no strips or tiles of image data")
    if sum(end - start for start, end in essence) > len(data):
        raise ContainerError("strips or tiles overlap (more image data than file)")
    if not width or not height:
        raise ContainerError(f"IFD at offset {ifd0} lacks ImageWidth/ImageLength")
    return _Layout(
        big_endian=reader.order == ">",
        ifd0=ifd0,
        ifd0_entries=tuple(ifd0_entries),
        ifd0_next=ifd0_next,
        essence=merge_ranges(essence),
        width=width,
        height=height,
        dng=any(entry.tag == TAG_DNG_VERSION for entry in ifd0_entries),
    )
