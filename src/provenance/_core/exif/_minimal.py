"""The minimal EXIF of a generated image: build it, or merge it into sanitised EXIF."""

from __future__ import annotations

import functools
import unicodedata
from datetime import datetime, timedelta
from typing import Any

import piexif

from provenance._core.exif._sanitize import _sanitized_dict
from provenance._core.exif._tiff import _empty_dict, _encode
from provenance.errors import RecordError


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
