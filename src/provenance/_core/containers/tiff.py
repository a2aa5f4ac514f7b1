"""TIFF and DNG (TIFF 6.0, Adobe DNG 1.x): read IFDs, insert and strip metadata.

This module owns the byte layout of classic (32-bit offset) TIFF files, and of
DNG, which is TIFF with a ``DNGVersion`` tag in IFD0. It walks the IFD chain and
every ``SubIFDs`` tree (DNG keeps its raw image there), classifies metadata tags,
finds the essence ranges, and rewrites IFD0 to add, replace or remove tags. It
never decodes or re-encodes the image, never does file I/O, never imports c2pa.

Metadata blocks are tag values: XMP is tag 700 (XMP spec part 3, 1.1.4) in IFD0,
a C2PA manifest store is tag 0xCD41 (C2PA 2.x, A.4.3, what c2pa-rs writes), ICC
is tag 34675, the EXIF and GPS IFD pointers are tags 34665 and 34853, IPTC and
Photoshop resources are tags 33723 and 34377. A block's range is the tag's value
bytes, or the 12-byte entry itself when the value fits inline.

Essence (decision 5 of DESIGN.md): the image data that the strips or tiles of
every image IFD point at (``StripOffsets``/``StripByteCounts`` or
``TileOffsets``/``TileByteCounts``), IFD after IFD, strip after strip, in *that*
order rather than file order: a rewriter (ExifTool, c2pa-rs) may move the strips
and the essence hash must not change. The IFD entries themselves (which hold
offsets) are not covered; the perceptual hash is the tool for a re-encoding.

Rewriting: the new IFD0 is appended to the file and the header points at it; the
old IFD0 stays as dead bytes and every other offset in the file stays valid, so
nothing else moves. The value bytes of a replaced or removed tag are zeroed (no
stale XMP or manifest is left for a carver to find). BigTIFF (version 43) is
refused with :class:`~provenance.errors.UnsupportedFormat`.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from provenance._core.containers._types import (
    BlockKind,
    ContainerInfo,
    ImageFormat,
    MetadataBlock,
    Range,
    merge_ranges,
)
from provenance.errors import ContainerError, UnsupportedFormat

__all__ = [
    "MAX_IFDS",
    "MAX_STRIPS",
    "PERSONAL_TAGS",
    "TAG_C2PA",
    "TAG_DNG_VERSION",
    "TAG_XMP",
    "ascii_tags",
    "embed",
    "essence_ranges",
    "inspect",
    "is_dng",
    "set_xmp",
    "strip",
]

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


def _overlaps(start: int, end: int, ranges: tuple[Range, ...]) -> bool:
    return any(start < r_end and r_start < end for r_start, r_end in ranges)


def _zero(out: bytearray, start: int, end: int, essence: tuple[Range, ...]) -> None:
    """Zero ``[start, end)`` unless it touches image data (a crafted file may share bytes)."""
    if end > start and not _overlaps(start, end, essence):
        out[start:end] = bytes(end - start)


def _append(out: bytearray, payload: bytes) -> int:
    """Append ``payload`` at an even offset (TIFF 6.0, section 2); return that offset."""
    if len(out) & 1:
        out.append(0)
    at = len(out)
    out += payload
    return at


def _append_ifd(out: bytearray, order: str, entries: dict[int, bytes], next_ifd: int) -> int:
    """Append an IFD of raw 12-byte entries, sorted by tag (TIFF 6.0, section 2)."""
    body = struct.pack(order + "H", len(entries)) + b"".join(v for _, v in sorted(entries.items()))
    return _append(out, body + struct.pack(order + "I", next_ifd))


def _filtered_ifd(
    data: bytes,
    out: bytearray,
    reader: _Reader,
    ifd: int,
    drop: frozenset[int],
    essence: tuple[Range, ...],
) -> int | None:
    """A copy of the IFD at ``ifd`` without the ``drop`` tags (values zeroed); None if unchanged."""
    entries, next_ifd = _entries(reader, ifd)
    if not any(entry.tag in drop for entry in entries):
        return None
    kept: dict[int, bytes] = {}
    for entry in entries:
        if entry.tag in drop:
            if not entry.inline:
                _zero(out, entry.value_start, entry.value_end, essence)
        else:
            kept[entry.tag] = bytes(data[entry.offset : entry.offset + 12])
    _zero(out, ifd, ifd + 2 + 12 * len(entries) + 4, essence)
    return _append_ifd(out, reader.order, kept, next_ifd)


def _rewrite_ifd0(
    data: bytes,
    layout: _Layout,
    *,
    drop: frozenset[int],
    add: Mapping[int, tuple[int, int, bytes]],
    private: bool = False,
) -> bytes:
    """Append a new IFD0 without the ``drop`` tags and with ``add`` (tag: type, count, value).

    With ``private``, also remove what identifies or locates a person (the tags of
    :data:`PERSONAL_TAGS`, in IFD0 and in the Exif IFD, and the whole GPS IFD).
    """
    reader = _Reader(data)
    order = reader.order
    essence = layout.essence
    out = bytearray(data)
    drop = drop | frozenset(add)
    if private:
        drop |= PERSONAL_TAGS | {_TAG_GPS}
    new_entries: dict[int, bytes] = {}
    for entry in layout.ifd0_entries:
        if entry.tag not in drop:
            new_entries[entry.tag] = bytes(data[entry.offset : entry.offset + 12])
            continue
        if entry.tag == _TAG_GPS and entry.type in (4, 13) and entry.number == 1:
            # 3. The GPS IFD goes with its pointer: its entries and their values.
            gps = reader.values(entry)[0]
            try:
                gps_entries, _ = _entries(reader, gps)
            except ContainerError:
                gps_entries = []
            for gps_entry in gps_entries:
                if not gps_entry.inline:
                    _zero(out, gps_entry.value_start, gps_entry.value_end, essence)
            _zero(out, gps, gps + 2 + 12 * len(gps_entries) + 4, essence)
        if not entry.inline:
            _zero(out, entry.value_start, entry.value_end, essence)
    if private and _TAG_EXIF in new_entries:
        exif = next(e for e in layout.ifd0_entries if e.tag == _TAG_EXIF)
        try:
            if exif.type not in (4, 13) or exif.number != 1:
                raise ContainerError(f"Exif IFD pointer at offset {exif.offset} is malformed")
            where = reader.values(exif)[0]
            moved = _filtered_ifd(data, out, reader, where, PERSONAL_TAGS, essence)
        except ContainerError:
            # An Exif IFD that cannot be checked cannot be kept (decision 13).
            del new_entries[_TAG_EXIF]
        else:
            if moved is not None:
                new_entries[_TAG_EXIF] = struct.pack(order + "HHII", _TAG_EXIF, 4, 1, moved)
    for tag, (kind, count, value) in add.items():
        if len(value) <= 4:
            field = value.ljust(4, b"\x00")
        else:
            field = struct.pack(order + "I", _append(out, value))
        new_entries[tag] = struct.pack(order + "HHI", tag, kind, count) + field
    _zero(out, layout.ifd0, layout.ifd0 + 2 + 12 * len(layout.ifd0_entries) + 4, essence)
    new_ifd0 = _append_ifd(out, order, new_entries, layout.ifd0_next)
    if len(out) > 0xFFFFFFFF:
        raise ContainerError("the rewritten TIFF exceeds the 4 GiB offset limit")
    out[4:8] = struct.pack(order + "I", new_ifd0)
    return bytes(out)


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


def embed(data: bytes, packet: bytes, *, tags: Mapping[int, str]) -> bytes:
    """Set the XMP packet and ASCII tags of IFD0, and remove personal metadata, in one rewrite.

    What :func:`provenance.sign.sign` does to a TIFF or DNG: the file's EXIF is its
    own IFDs, so the minimal fields (e.g. ImageDescription 270, Software 305,
    DateTime 306) become IFD0 tags, and the tags of :data:`PERSONAL_TAGS` and the
    GPS IFD are removed, as :func:`provenance._core.exif.sanitize_exif` does for JPEG.

    Args:
        data: A whole TIFF or DNG file.
        packet: The XMP packet.
        tags: ASCII values to set in IFD0, by tag number.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        UnsupportedFormat: BigTIFF.
        ContainerError: If ``data`` is malformed, or the result exceeds 4 GiB.
    """
    layout = _parse(data)
    add: dict[int, tuple[int, int, bytes]] = {TAG_XMP: (_UNDEFINED, len(packet), packet)}
    for tag, text in tags.items():
        value = text.encode("ascii", "replace") + b"\x00"
        add[tag] = (_ASCII, len(value), value)
    return _rewrite_ifd0(data, layout, drop=frozenset(), add=add, private=True)


def set_xmp(data: bytes, packet: bytes) -> bytes:
    """Insert or replace the XMP packet (tag 700 of IFD0, type UNDEFINED).

    Args:
        data: A whole TIFF or DNG file.
        packet: The XMP packet.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        UnsupportedFormat: BigTIFF.
        ContainerError: If ``data`` is malformed, or the result exceeds 4 GiB.
    """
    layout = _parse(data)
    add = {TAG_XMP: (_UNDEFINED, len(packet), packet)}
    return _rewrite_ifd0(data, layout, drop=frozenset(), add=add)


def strip(data: bytes, kinds: frozenset[BlockKind]) -> bytes:
    """Remove the IFD0 tags of the given kinds (their values are zeroed).

    Args:
        data: A whole TIFF or DNG file.
        kinds: The kinds to remove.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        UnsupportedFormat: BigTIFF.
        ContainerError: If ``data`` is malformed.
    """
    layout = _parse(data)
    drop = frozenset(tag for tag, kind in _KINDS.items() if kind in kinds)
    return _rewrite_ifd0(data, layout, drop=drop, add={})
