r"""Minimal EXIF for generated images, and removal of personal EXIF fields.

EXIF here is the raw TIFF structure (starting ``II*\0`` or ``MM\0*``) without
the JPEG APP1 ``Exif\0\0`` header; the container modules add and strip that
header. Input may carry the header: it is accepted and dropped. Output is always
big-endian raw TIFF, as written by piexif.

:func:`sanitize_exif` keeps what describes the image (size, orientation, colour,
exposure, Make/Model, Copyright, ImageDescription, XPTitle/XPSubject/XPKeywords)
and removes what identifies or locates a person or a device (DESIGN.md decision
13, GDPR data minimisation):

- the whole GPS IFD;
- the IFD1 thumbnail: a stale copy of the picture that can still show what was
  cropped or retouched out of it;
- from IFD0: Artist, HostComputer, XPAuthor, XPComment, CameraSerialNumber,
  ImageID, RawDataUniqueID, OriginalRawFileName, OriginalRawFileData,
  DNGPrivateData, XMLPacket and ImageResources (embedded XMP and Photoshop/IPTC
  blocks carry creator names, contacts and locations);
- from the Exif IFD: CameraOwnerName, BodySerialNumber, LensSerialNumber,
  ImageUniqueID, UserComment and MakerNote (vendor data with serial numbers);
- every tag piexif does not know (it cannot be checked, so it is not kept), and
  every tag whose stored type disagrees with the EXIF specification (it cannot
  be re-encoded faithfully).

Untrusted bytes are walked by a bounded validator before piexif sees them: each
IFD is read at most once (an offset loop is an error, not a hang), every count is
checked against the block size before anything is read (a lying count cannot make
piexif allocate gigabytes), the values of all entries together must fit in the
block (entries sharing one large value cannot multiply the work), and the block is
capped at :data:`MAX_EXIF_BYTES`.
Whatever still goes wrong inside piexif is translated to
:class:`~provenance.errors.ContainerError` at this border.

This module is pure: bytes in, bytes out. It never touches files, clocks or c2pa.
"""

from __future__ import annotations

import functools
import struct
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import piexif

from provenance.errors import ContainerError, RecordError

__all__ = [
    "MAX_EXIF_BYTES",
    "SanitizedExif",
    "build_minimal_exif",
    "merge_minimal_exif",
    "sanitize_exif",
]

MAX_EXIF_BYTES = 4 * 1024 * 1024

_APP1_HEADER = b"Exif\x00\x00"

# TIFF 6.0 field types and the size of one value, in bytes.
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
_SHORT, _LONG = 3, 4
# piexif dereferences these types even for a count of 0 or 1.
_ALWAYS_OFFSET = {5: 8, 10: 8, 12: 8}

_EXIF_POINTER = piexif.ImageIFD.ExifTag
_GPS_POINTER = piexif.ImageIFD.GPSTag
_INTEROP_POINTER = piexif.ExifIFD.InteroperabilityTag
_POINTERS = {
    "0th": {_EXIF_POINTER, _GPS_POINTER},
    "Exif": {_INTEROP_POINTER},
    "GPS": set(),
    "Interop": set(),
    "1st": set(),
}

_PERSONAL_TAGS: dict[str, frozenset[int]] = {
    "0th": frozenset(
        {
            piexif.ImageIFD.Artist,
            piexif.ImageIFD.HostComputer,
            piexif.ImageIFD.XPAuthor,
            piexif.ImageIFD.XPComment,
            piexif.ImageIFD.CameraSerialNumber,
            piexif.ImageIFD.ImageID,
            piexif.ImageIFD.RawDataUniqueID,
            piexif.ImageIFD.OriginalRawFileName,
            piexif.ImageIFD.OriginalRawFileData,
            piexif.ImageIFD.DNGPrivateData,
            piexif.ImageIFD.XMLPacket,
            piexif.ImageIFD.ImageResources,
        }
    ),
    "Exif": frozenset(
        {
            piexif.ExifIFD.CameraOwnerName,
            piexif.ExifIFD.BodySerialNumber,
            piexif.ExifIFD.LensSerialNumber,
            piexif.ExifIFD.ImageUniqueID,
            piexif.ExifIFD.UserComment,
            piexif.ExifIFD.MakerNote,
        }
    ),
    "Interop": frozenset(),
}

# Types a value may be stored as and still be written back under the EXIF type.
_INTEGER_TYPES = frozenset({_SHORT, _LONG})
_BYTE_TYPES = frozenset({1, 7})  # BYTE, UNDEFINED

# Everything piexif raises on bytes it cannot parse or values it cannot encode.
_PIEXIF_ERRORS = (
    struct.error,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    OverflowError,
    piexif.InvalidImageDataError,
)


@dataclass(frozen=True, slots=True)
class SanitizedExif:
    r"""EXIF with the personal fields removed.

    Attributes:
        tiff: The sanitised EXIF as raw big-endian TIFF bytes (no ``Exif\0\0``
            header).
        removed: Names of the removed tags, in the order found, without repeats:
            EXIF tag names (``"Artist"``, ``"GPSLatitude"``), ``"Thumbnail"``
            for the IFD1 thumbnail, and ``"UnknownTag0xABCD"`` for tags piexif
            does not know.
    """

    tiff: bytes
    removed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Entry:
    """One IFD entry as stored: tag, field type, count and the raw 4-byte value field."""

    tag: int
    type: int
    count: int
    value: int


def _malformed(detail: str) -> ContainerError:
    return ContainerError(f"malformed EXIF: {detail}")


class _Walker:
    """Bounded validator for the TIFF structure piexif is about to read."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 8:
            raise _malformed("shorter than a TIFF header")
        if data[:4] == b"II*\x00":
            self.endian = "<"
        elif data[:4] == b"MM\x00*":
            self.endian = ">"
        else:
            raise _malformed("no TIFF header (II*\\0 or MM\\0*)")
        self.data = data
        self.visited: set[int] = set()
        self.value_bytes = 0

    def u16(self, offset: int) -> int:
        value: int = struct.unpack_from(self.endian + "H", self.data, offset)[0]
        return value

    def u32(self, offset: int) -> int:
        value: int = struct.unpack_from(self.endian + "L", self.data, offset)[0]
        return value

    def ifd(self, offset: int, name: str, *, has_next: bool) -> tuple[list[_Entry], int]:
        """Check one IFD; return its entries and the next-IFD offset (0 for none)."""
        size = len(self.data)
        # 1. The IFD lies after the header, inside the block, and was not seen before.
        if offset < 8 or offset + 2 > size:
            raise _malformed(f"{name} IFD offset {offset} is outside the block")
        if offset in self.visited:
            raise _malformed(f"{name} IFD offset {offset} loops back to an earlier IFD")
        self.visited.add(offset)
        # 2. Its entry table, and the next-IFD pointer piexif reads after IFD0, fit.
        count = self.u16(offset)
        table_end = offset + 2 + 12 * count
        if table_end + (4 if has_next else 0) > size:
            raise _malformed(f"{name} IFD claims {count} entries, more than the block holds")
        known = piexif.TAGS["Image" if name in ("0th", "1st") else name]
        entries = []
        for i in range(count):
            at = offset + 2 + 12 * i
            entry = _Entry(self.u16(at), self.u16(at + 2), self.u32(at + 4), self.u32(at + 8))
            entries.append(entry)
            # 3. Readers skip unknown field types (TIFF 6.0, section 2), and so does
            #    piexif, except for a tag it knows, where it fails.
            if entry.type not in _TYPE_SIZES:
                if entry.tag in known:
                    raise _malformed(f"{name} IFD tag {entry.tag} has unknown type {entry.type}")
                continue
            # 4. A value longer than 4 bytes lies at an offset, inside the block. This
            #    bounds every read and allocation piexif makes for a lying count.
            length = entry.count * _TYPE_SIZES[entry.type]
            if length > 4 or entry.type in _ALWAYS_OFFSET:
                needed = max(length, _ALWAYS_OFFSET.get(entry.type, 0))
                if entry.value + needed > size:
                    raise _malformed(
                        f"{name} IFD tag {entry.tag} claims {entry.count} values beyond the block"
                    )
                # Values of distinct entries do not overlap, so together they fit in
                # the block; entries sharing one huge value would make piexif decode
                # it again and again.
                self.value_bytes += needed
                if self.value_bytes > size:
                    raise _malformed("entries claim more value bytes than the block holds")
            # 5. A sub-IFD pointer is one LONG.
            if entry.tag in _POINTERS[name] and (entry.type != _LONG or entry.count != 1):
                raise _malformed(f"{name} IFD pointer tag {entry.tag} is not one LONG")
        next_offset = self.u32(table_end) if has_next else 0
        return entries, next_offset


def _pointers(entries: list[_Entry], name: str) -> dict[int, int]:
    # piexif keeps the last of repeated tags; so do we.
    return {e.tag: e.value for e in entries if e.tag in _POINTERS[name]}


def _walk(data: bytes) -> dict[str, list[_Entry]]:
    """Validate the IFDs piexif reads (0th, Exif, GPS, Interop, 1st); return their entries."""
    walker = _Walker(data)
    ifds: dict[str, list[_Entry]] = {}
    ifds["0th"], first = walker.ifd(walker.u32(4), "0th", has_next=True)
    zeroth = _pointers(ifds["0th"], "0th")
    if _EXIF_POINTER in zeroth:
        ifds["Exif"], _ = walker.ifd(zeroth[_EXIF_POINTER], "Exif", has_next=False)
        interop = _pointers(ifds["Exif"], "Exif").get(_INTEROP_POINTER)
        if interop is not None:
            ifds["Interop"], _ = walker.ifd(interop, "Interop", has_next=False)
    if _GPS_POINTER in zeroth:
        ifds["GPS"], _ = walker.ifd(zeroth[_GPS_POINTER], "GPS", has_next=False)
    if first:
        ifds["1st"], _ = walker.ifd(first, "1st", has_next=False)
    return ifds


def _tag_name(ifd: str, tag: int) -> str:
    info = piexif.TAGS["Image" if ifd in ("0th", "1st") else ifd].get(tag)
    return str(info["name"]) if info is not None else f"UnknownTag0x{tag:04X}"


def _compatible(stored: int, expected: int) -> bool:
    """Whether a value stored as ``stored`` can be written back as ``expected``."""
    if stored == expected:
        return True
    return {stored, expected} <= _INTEGER_TYPES or {stored, expected} <= _BYTE_TYPES


def _empty_dict() -> dict[str, Any]:
    return {"0th": {}, "Exif": {}, "GPS": {}, "Interop": {}, "1st": {}, "thumbnail": None}


def _dump(exif_dict: dict[str, Any]) -> bytes:
    """Encode with piexif and drop the APP1 header it prepends."""
    encoded: bytes = piexif.dump(exif_dict)
    return encoded[len(_APP1_HEADER) :]


def _encodable(ifd: str, tag: int, value: Any) -> bool:
    probe = _empty_dict()
    probe[ifd][tag] = value
    try:
        _dump(probe)
    except _PIEXIF_ERRORS:
        return False
    return True


def _sanitized_dict(data: bytes) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Validate, load and strip ``data``; return the piexif dict and the removed names."""
    # 1. Accept the APP1 form too, and cap the size before reading anything.
    if data.startswith(_APP1_HEADER):
        data = data[len(_APP1_HEADER) :]
    if len(data) > MAX_EXIF_BYTES:
        raise _malformed(f"block of {len(data)} bytes exceeds the {MAX_EXIF_BYTES}-byte limit")
    # 2. Our bounded walk, then piexif on bytes known to be safe to read.
    ifds = _walk(data)
    try:
        loaded = piexif.load(data)
    except _PIEXIF_ERRORS as exc:
        raise _malformed(f"piexif cannot read it ({type(exc).__name__})") from exc
    # 3. Keep what is known, not personal and of a compatible type.
    clean = _empty_dict()
    removed: dict[str, None] = {}
    for ifd in ("0th", "Exif", "Interop"):
        table = piexif.TAGS[ifd if ifd != "0th" else "Image"]
        for entry in ifds.get(ifd, ()):
            if entry.tag in _POINTERS[ifd]:
                continue  # structure; piexif rewrites the pointers
            known = table.get(entry.tag)
            value = loaded[ifd].get(entry.tag)
            if (
                known is None
                or value is None
                or entry.tag in _PERSONAL_TAGS[ifd]
                or not _compatible(entry.type, known["type"])
            ):
                removed[_tag_name(ifd, entry.tag)] = None
                clean[ifd].pop(entry.tag, None)
            else:
                clean[ifd][entry.tag] = value
    # 4. Drop what piexif cannot write back (e.g. 70000 in a SHORT), probing tag by
    #    tag only when the whole does not encode.
    try:
        _dump(clean)
    except _PIEXIF_ERRORS:
        for ifd in ("0th", "Exif", "Interop"):
            for tag, value in list(clean[ifd].items()):
                if not _encodable(ifd, tag, value):
                    removed[_tag_name(ifd, tag)] = None
                    del clean[ifd][tag]
    # 5. Location and thumbnail go as a whole.
    for entry in ifds.get("GPS", ()):
        removed[_tag_name("GPS", entry.tag)] = None
    if "1st" in ifds:
        removed["Thumbnail"] = None
    return clean, tuple(removed)


def sanitize_exif(tiff: bytes) -> SanitizedExif:
    r"""Remove the personal fields from an EXIF block.

    See the module docstring for what is removed and what is kept.

    Args:
        tiff: Raw TIFF bytes (``II*\0`` or ``MM\0*``); an ``Exif\0\0`` prefix
            is accepted and dropped.

    Returns:
        The sanitised raw TIFF bytes and the names of the removed tags.

    Raises:
        ContainerError: The block is malformed (truncated, offsets outside the
            block, offset loops, lying counts) or larger than
            :data:`MAX_EXIF_BYTES`.
    """
    clean, removed = _sanitized_dict(tiff)
    return SanitizedExif(tiff=_encode(clean), removed=removed)


def _encode(exif_dict: dict[str, Any]) -> bytes:
    try:
        return _dump(exif_dict)
    except _PIEXIF_ERRORS as exc:  # every value was probed; this is a piexif bug
        raise _malformed(f"piexif cannot write it back ({type(exc).__name__})") from exc


def _ascii(text: str) -> bytes:
    """Return ``text`` as printable ASCII for an EXIF ASCII tag.

    Accents are dropped (``é`` becomes ``e``), other non-ASCII characters become
    ``?``, and control characters (NUL would end the string early) become spaces.
    """
    out = []
    for char in unicodedata.normalize("NFKD", text):
        if unicodedata.combining(char):
            continue
        code = ord(char)
        if code < 0x20 or code == 0x7F:
            out.append(" ")
        elif code > 0x7F:
            out.append("?")
        else:
            out.append(char)
    return "".join(out).encode("ascii")


def _exif_datetime(when: datetime) -> bytes:
    # EXIF 2.32, section 4.6.5: "YYYY:MM:DD HH:MM:SS", local time of the moment.
    return (
        f"{when.year:04d}:{when.month:02d}:{when.day:02d} "
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d}"
    ).encode("ascii")


def _exif_offset(offset: timedelta) -> bytes:
    # EXIF 2.32 OffsetTime: "+HH:MM" or "-HH:MM".
    minutes = round(offset.total_seconds() / 60)
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}".encode("ascii")


def _set_minimal(
    exif_dict: dict[str, Any],
    *,
    software: str,
    description: str | None,
    when: datetime | None,
) -> None:
    name = _ascii(software).strip()
    if not name:
        raise RecordError("the EXIF Software name must not be empty")
    zeroth, exif = exif_dict["0th"], exif_dict["Exif"]
    zeroth[piexif.ImageIFD.Software] = name
    if description is not None:
        zeroth[piexif.ImageIFD.ImageDescription] = _ascii(description)
    if when is not None:
        stamp = _exif_datetime(when)
        zeroth[piexif.ImageIFD.DateTime] = stamp
        exif[piexif.ExifIFD.DateTimeOriginal] = stamp
        # Sub-second and offset tags belong to the old times; replace or drop them.
        for tag in (piexif.ExifIFD.SubSecTime, piexif.ExifIFD.SubSecTimeOriginal):
            exif.pop(tag, None)
        offset = when.utcoffset()
        for tag in (piexif.ExifIFD.OffsetTime, piexif.ExifIFD.OffsetTimeOriginal):
            if offset is None:
                exif.pop(tag, None)
            else:
                exif[tag] = _exif_offset(offset)
    if exif and piexif.ExifIFD.ExifVersion not in exif:
        exif[piexif.ExifIFD.ExifVersion] = b"0232"


def build_minimal_exif(
    *, software: str, description: str | None = None, when: datetime | None = None
) -> bytes:
    r"""Build the minimal EXIF of a generated image, with nothing personal in it.

    Args:
        software: The AI system name and version (EXIF Software).
        description: The disclosure for ImageDescription, e.g. ``"AI-generated
            image"``; omitted when None.
        when: The creation time, written as DateTime and DateTimeOriginal
            (``YYYY:MM:DD HH:MM:SS``, in the datetime's own wall-clock time),
            with OffsetTime/OffsetTimeOriginal when it is timezone-aware.

    Text is made ASCII: accents are dropped, other non-ASCII characters become
    ``?`` and control characters become spaces.

    Returns:
        Raw big-endian TIFF bytes, without the ``Exif\0\0`` header.

    Raises:
        RecordError: ``software`` is empty.
    """
    # The ISO text is in the key: aware datetimes of one instant in two offsets
    # compare (and hash) equal, but their EXIF differs.
    return _minimal_exif(software, description, when, None if when is None else when.isoformat())


@functools.lru_cache(maxsize=64)
def _minimal_exif(
    software: str, description: str | None, when: datetime | None, stamp: str | None
) -> bytes:
    """:func:`build_minimal_exif`, built once per distinct value (``stamp``: ``when`` as text).

    An import signs many images with one record: the same Software, disclosure
    and time.
    """
    exif_dict = _empty_dict()
    _set_minimal(exif_dict, software=software, description=description, when=when)
    return _encode(exif_dict)


def merge_minimal_exif(
    existing: bytes | None,
    *,
    software: str,
    description: str | None = None,
    when: datetime | None = None,
) -> bytes:
    r"""Sanitise existing EXIF and set the minimal fields in it.

    With no existing EXIF (None or empty), this is :func:`build_minimal_exif`.
    Software is always replaced; ImageDescription and the dates only when
    ``description`` / ``when`` are given, else the existing ones are kept.

    Args:
        existing: The image's raw TIFF EXIF, or None.
        software: The AI system name and version (EXIF Software).
        description: The ImageDescription disclosure, or None to keep the existing.
        when: The creation time, or None to keep the existing dates.

    Returns:
        Raw big-endian TIFF bytes, without the ``Exif\0\0`` header.

    Raises:
        ContainerError: ``existing`` is malformed.
        RecordError: ``software`` is empty.
    """
    if not existing:
        return build_minimal_exif(software=software, description=description, when=when)
    exif_dict, _ = _sanitized_dict(existing)
    _set_minimal(exif_dict, software=software, description=description, when=when)
    return _encode(exif_dict)
