"""Rewrite a TIFF's IFD0: appended anew with tags added or dropped, old values zeroed."""

from __future__ import annotations

import struct
from collections.abc import Mapping

from provenance._core.containers._types import (
    BlockKind,
    Range,
)
from provenance._core.containers.tiff._ifd import (
    _ASCII,
    _KINDS,
    _TAG_EXIF,
    _TAG_GPS,
    _UNDEFINED,
    PERSONAL_TAGS,
    TAG_XMP,
    _entries,
    _Entry,
    _Layout,
    _parse,
    _Reader,
)
from provenance.errors import ContainerError


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
            _zero_gps(out, reader, entry, essence)
        if not entry.inline:
            _zero(out, entry.value_start, entry.value_end, essence)
    if private and _TAG_EXIF in new_entries:
        _private_exif(data, out, reader, layout, new_entries)
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


def _zero_gps(out: bytearray, reader: _Reader, entry: _Entry, essence: tuple[Range, ...]) -> None:
    """Zero the GPS IFD the ``entry`` points at: its entries and their values."""
    gps = reader.values(entry)[0]
    try:
        gps_entries, _ = _entries(reader, gps)
    except ContainerError:
        gps_entries = []
    for gps_entry in gps_entries:
        if not gps_entry.inline:
            _zero(out, gps_entry.value_start, gps_entry.value_end, essence)
    _zero(out, gps, gps + 2 + 12 * len(gps_entries) + 4, essence)


def _private_exif(
    data: bytes, out: bytearray, reader: _Reader, layout: _Layout, new_entries: dict[int, bytes]
) -> None:
    """Point IFD0 at an Exif IFD without :data:`PERSONAL_TAGS`, or drop it if unreadable."""
    exif = next(e for e in layout.ifd0_entries if e.tag == _TAG_EXIF)
    try:
        if exif.type not in (4, 13) or exif.number != 1:
            raise ContainerError(f"Exif IFD pointer at offset {exif.offset} is malformed")
        where = reader.values(exif)[0]
        moved = _filtered_ifd(data, out, reader, where, PERSONAL_TAGS, layout.essence)
    except ContainerError:
        # An Exif IFD that cannot be checked cannot be kept (decision 13).
        del new_entries[_TAG_EXIF]
    else:
        if moved is not None:
            new_entries[_TAG_EXIF] = struct.pack(reader.order + "HHII", _TAG_EXIF, 4, 1, moved)


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
