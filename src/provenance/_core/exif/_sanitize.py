"""Remove personal EXIF fields (:func:`sanitize_exif`), keeping what describes the image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import piexif

from provenance._core.exif._tiff import (
    _APP1_HEADER,
    _BYTE_TYPES,
    _INTEGER_TYPES,
    _PIEXIF_ERRORS,
    _POINTERS,
    MAX_EXIF_BYTES,
    _dump,
    _empty_dict,
    _encode,
    _malformed,
    _walk,
)

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


def _tag_name(ifd: str, tag: int) -> str:
    info = piexif.TAGS["Image" if ifd in ("0th", "1st") else ifd].get(tag)
    return str(info["name"]) if info is not None else f"UnknownTag0x{tag:04X}"


def _compatible(stored: int, expected: int) -> bool:
    """Whether a value stored as ``stored`` can be written back as ``expected``."""
    if stored == expected:
        return True
    return {stored, expected} <= _INTEGER_TYPES or {stored, expected} <= _BYTE_TYPES


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
