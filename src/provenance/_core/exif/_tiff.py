"""Raw TIFF/EXIF bytes: the bounded IFD walk before piexif sees them, and piexif's errors."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import piexif

from provenance.errors import ContainerError

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


def _empty_dict() -> dict[str, Any]:
    return {"0th": {}, "Exif": {}, "GPS": {}, "Interop": {}, "1st": {}, "thumbnail": None}


def _dump(exif_dict: dict[str, Any]) -> bytes:
    """Encode with piexif and drop the APP1 header it prepends."""
    encoded: bytes = piexif.dump(exif_dict)
    return encoded[len(_APP1_HEADER) :]


def _encode(exif_dict: dict[str, Any]) -> bytes:
    try:
        return _dump(exif_dict)
    except _PIEXIF_ERRORS as exc:  # every value was probed; this is a piexif bug
        raise _malformed(f"piexif cannot write it back ({type(exc).__name__})") from exc
