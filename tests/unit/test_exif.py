from __future__ import annotations

import contextlib
import io
import struct
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import piexif
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from provenance._core.exif import (
    MAX_EXIF_BYTES,
    SanitizedExif,
    build_minimal_exif,
    merge_minimal_exif,
    sanitize_exif,
)
from provenance.errors import ContainerError, ProvenanceError, RecordError

IMG, EXF, GPS = piexif.ImageIFD, piexif.ExifIFD, piexif.GPSIFD
APP1 = b"Exif\x00\x00"


def camera_exif(*, thumbnail: bytes | None = None) -> dict[str, Any]:
    return {
        "0th": {
            IMG.Make: b"Canon",
            IMG.Model: b"EOS R5",
            IMG.Copyright: b"(c) Example Shop GmbH",
            IMG.Software: b"Firmware 1.8",
            IMG.ImageDescription: b"product shot",
            IMG.Orientation: 1,
            IMG.Artist: b"Jane Doe",
            IMG.HostComputer: b"janes-laptop",
            IMG.XPAuthor: tuple("Jane Doe".encode("utf-16-le")),
            IMG.XPComment: tuple("call me".encode("utf-16-le")),
            IMG.XPKeywords: tuple("shoe".encode("utf-16-le")),
        },
        "Exif": {
            EXF.ExposureTime: (1, 125),
            EXF.FNumber: (28, 10),
            EXF.ISOSpeedRatings: 100,
            EXF.DateTimeOriginal: b"2024:05:06 07:08:09",
            EXF.BodySerialNumber: b"SN-0123456789",
            EXF.LensSerialNumber: b"LSN-987654",
            EXF.CameraOwnerName: b"Jane Doe",
            EXF.UserComment: b"ASCII\x00\x00\x00jane@example.com",
            EXF.ImageUniqueID: b"0123456789abcdef0123456789abcdef",
            EXF.MakerNote: b"vendor blob SN-0123456789",
        },
        "GPS": {
            GPS.GPSLatitudeRef: b"N",
            GPS.GPSLatitude: ((52, 1), (31, 1), (1234, 100)),
            GPS.GPSLongitudeRef: b"E",
            GPS.GPSLongitude: ((13, 1), (24, 1), (5678, 100)),
        },
        "Interop": {piexif.InteropIFD.InteroperabilityIndex: b"R98"},
        "1st": {IMG.XResolution: (72, 1), IMG.YResolution: (72, 1)},
        "thumbnail": thumbnail,
    }


def tiff_of(exif_dict: dict[str, Any]) -> bytes:
    dumped: bytes = piexif.dump(exif_dict)
    assert dumped.startswith(APP1)
    return dumped[len(APP1) :]


def small_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


PERSONAL = (
    b"Jane",
    b"janes-laptop",
    b"SN-0123456789",
    b"LSN-987654",
    b"jane@example.com",
    b"0123456789abcdef",
    "Jane".encode("utf-16-le"),
    b"vendor blob",
)


# --- sanitize -------------------------------------------------------------------------


def test_sanitize_removes_personal_fields_and_keeps_the_rest() -> None:
    result = sanitize_exif(tiff_of(camera_exif(thumbnail=small_jpeg())))
    assert isinstance(result, SanitizedExif)
    assert result.tiff[:4] in (b"II*\x00", b"MM\x00*")
    for secret in PERSONAL:
        assert secret not in result.tiff
    loaded = piexif.load(result.tiff)
    assert loaded["0th"][IMG.Make] == b"Canon"
    assert loaded["0th"][IMG.Model] == b"EOS R5"
    assert loaded["0th"][IMG.Copyright] == b"(c) Example Shop GmbH"
    assert loaded["0th"][IMG.ImageDescription] == b"product shot"
    assert loaded["0th"][IMG.XPKeywords] == tuple("shoe".encode("utf-16-le"))
    assert loaded["Exif"][EXF.ExposureTime] == (1, 125)
    assert loaded["Exif"][EXF.DateTimeOriginal] == b"2024:05:06 07:08:09"
    assert loaded["Interop"] == {piexif.InteropIFD.InteroperabilityIndex: b"R98"}
    assert loaded["GPS"] == {}
    assert IMG.GPSTag not in loaded["0th"]
    assert loaded["1st"] == {}
    assert loaded["thumbnail"] is None
    for tag in (IMG.Artist, IMG.HostComputer, IMG.XPAuthor, IMG.XPComment):
        assert tag not in loaded["0th"]
    for tag in (
        EXF.BodySerialNumber,
        EXF.LensSerialNumber,
        EXF.CameraOwnerName,
        EXF.UserComment,
        EXF.ImageUniqueID,
        EXF.MakerNote,
    ):
        assert tag not in loaded["Exif"]


def test_sanitize_reports_what_it_removed() -> None:
    result = sanitize_exif(tiff_of(camera_exif(thumbnail=small_jpeg())))
    assert set(result.removed) == {
        "Artist",
        "HostComputer",
        "XPAuthor",
        "XPComment",
        "BodySerialNumber",
        "LensSerialNumber",
        "CameraOwnerName",
        "UserComment",
        "ImageUniqueID",
        "MakerNote",
        "GPSLatitudeRef",
        "GPSLatitude",
        "GPSLongitudeRef",
        "GPSLongitude",
        "Thumbnail",
    }
    assert len(result.removed) == len(set(result.removed))


def test_sanitize_is_idempotent() -> None:
    once = sanitize_exif(tiff_of(camera_exif()))
    twice = sanitize_exif(once.tiff)
    assert twice.removed == ()
    assert twice.tiff == once.tiff


def test_sanitize_accepts_the_app1_form_and_little_endian() -> None:
    big = sanitize_exif(APP1 + tiff_of(camera_exif()))
    assert b"Jane" not in big.tiff
    little = hand_tiff(
        [(IMG.Make, 2, 6, b"Canon\x00"), (IMG.Artist, 2, 5, b"Jane\x00")], endian="<"
    )
    result = sanitize_exif(little)
    assert result.removed == ("Artist",)
    assert piexif.load(result.tiff)["0th"] == {IMG.Make: b"Canon"}


def test_sanitized_exif_goes_into_a_jpeg_that_still_opens() -> None:
    result = sanitize_exif(tiff_of(camera_exif(thumbnail=small_jpeg())))
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 200)).save(buf, "JPEG", exif=APP1 + result.tiff)
    with Image.open(io.BytesIO(buf.getvalue())) as img:
        img.load()
        exif = img.getexif()
        assert img.size == (32, 24)
    assert exif[IMG.Make] == "Canon"
    assert exif[IMG.Copyright] == "(c) Example Shop GmbH"
    assert IMG.Artist not in exif
    assert exif.get_ifd(IMG.GPSTag) == {}


def test_pillow_reads_the_original_with_personal_fields() -> None:
    # The control for the test above: the same EXIF before sanitising carries them.
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG", exif=piexif.dump(camera_exif()))
    with Image.open(io.BytesIO(buf.getvalue())) as img:
        exif = img.getexif()
    assert exif[IMG.Artist] == "Jane Doe"
    assert exif.get_ifd(IMG.GPSTag)


# --- hand-built TIFF ---------------------------------------------------------------------


def hand_tiff(
    entries: list[tuple[int, int, int, bytes]],
    *,
    endian: str = ">",
    ifd_offset: int = 8,
    next_ifd: int = 0,
    count: int | None = None,
) -> bytes:
    """IFD0 at ``ifd_offset``; values over 4 bytes are placed after it."""
    header = (b"MM\x00*" if endian == ">" else b"II*\x00") + struct.pack(endian + "L", ifd_offset)
    n = len(entries)
    data_at = ifd_offset + 2 + 12 * n + 4
    table = struct.pack(endian + "H", n if count is None else count)
    blobs = b""
    for tag, kind, num, value in entries:
        if len(value) > 4:
            field = struct.pack(endian + "L", data_at + len(blobs))
            blobs += value
        else:
            field = value.ljust(4, b"\x00")
        table += struct.pack(endian + "HHL", tag, kind, num) + field
    table += struct.pack(endian + "L", next_ifd)
    return header.ljust(ifd_offset, b"\x00") + table + blobs


def long_value(value: int) -> bytes:
    return struct.pack(">L", value)


def test_hand_built_tiff_is_accepted() -> None:
    result = sanitize_exif(hand_tiff([(IMG.Make, 2, 6, b"Canon\x00")]))
    assert result.removed == ()
    assert piexif.load(result.tiff)["0th"] == {IMG.Make: b"Canon"}


MALFORMED = {
    "empty": b"",
    "short header": b"MM\x00*\x00\x00",
    "not tiff": b"\x89PNG\r\n\x1a\n\x00\x00\x00\x00",
    "jpeg": b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM\x00*",
    "ifd0 outside": b"MM\x00*\x00\x00\x10\x00",
    "ifd0 in header": b"MM\x00*\x00\x00\x00\x04\x00\x00\x00\x00",
    "truncated table": hand_tiff([(IMG.Make, 2, 6, b"Canon\x00")])[:20],
    "huge entry count": hand_tiff([], count=0xFFFF),
    "huge value count": hand_tiff([(IMG.XPComment, 1, 0xFFFFFFFF, long_value(8))]),
    "value past end": hand_tiff([(IMG.Make, 2, 64, long_value(20))]),
    "rational past end": hand_tiff([(IMG.XResolution, 5, 1, long_value(0xFFFFFFF0))]),
    "known tag, bad type": hand_tiff([(IMG.Make, 99, 1, b"\x00\x00\x00\x00")]),
    "exif pointer loops to ifd0": hand_tiff([(IMG.ExifTag, 4, 1, long_value(8))]),
    "gps pointer loops to ifd0": hand_tiff([(IMG.GPSTag, 4, 1, long_value(8))]),
    "next ifd loops to ifd0": hand_tiff([(IMG.Make, 2, 4, b"abc\x00")], next_ifd=8),
    "exif pointer outside": hand_tiff([(IMG.ExifTag, 4, 1, long_value(0x7FFFFFFF))]),
    "exif pointer is two longs": hand_tiff([(IMG.ExifTag, 4, 2, long_value(8) * 2)]),
    "exif pointer is ascii": hand_tiff([(IMG.ExifTag, 2, 4, b"abc\x00")]),
    "over the size cap": b"MM\x00*\x00\x00\x00\x08" + bytes(MAX_EXIF_BYTES),
    "entries share one value": hand_tiff([(IMG.XPComment, 1, 1000, long_value(1214))] * 100)
    + bytes(1000),
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_exif_raises_container_error_quickly(data: bytes) -> None:
    start = time.perf_counter()
    with pytest.raises(ContainerError, match=r"^malformed EXIF: "):
        sanitize_exif(data)
    assert time.perf_counter() - start < 1.0


def test_exif_and_gps_pointing_at_the_same_ifd_is_a_loop() -> None:
    exif_ifd = struct.pack(">H", 0)
    tiff = hand_tiff([(IMG.ExifTag, 4, 1, long_value(38)), (IMG.GPSTag, 4, 1, long_value(38))])
    assert len(tiff) == 38
    with pytest.raises(ContainerError, match="loops"):
        sanitize_exif(tiff + exif_ifd)
    ok = hand_tiff([(IMG.ExifTag, 4, 1, long_value(38))])
    assert len(ok) == 26
    with pytest.raises(ContainerError, match="outside"):
        sanitize_exif(ok)  # pointer beyond the end
    ok = hand_tiff([(IMG.ExifTag, 4, 1, long_value(26))]) + exif_ifd
    assert sanitize_exif(ok).removed == ()


def test_unknown_tags_and_mistyped_tags_are_removed() -> None:
    tiff = hand_tiff(
        [
            (IMG.Make, 2, 6, b"Canon\x00"),
            (IMG.Model, 3, 1, b"\x00\x07\x00\x00"),  # Model stored as a SHORT
            (IMG.Orientation, 4, 1, long_value(1)),  # SHORT stored as LONG: fine
            (0x9999, 7, 4, b"abc\x00"),  # a private tag, unknown to piexif
            (0xBEEF, 99, 1, b"\x00\x00\x00\x00"),  # unknown tag, unknown type: skipped
        ]
    )
    result = sanitize_exif(tiff)
    assert result.removed == ("Model", "UnknownTag0x9999", "UnknownTag0xBEEF")
    assert piexif.load(result.tiff)["0th"] == {IMG.Make: b"Canon", IMG.Orientation: 1}


def test_value_that_does_not_fit_its_type_is_removed() -> None:
    # Orientation is a SHORT; 70000 stored as a LONG cannot be written back.
    result = sanitize_exif(hand_tiff([(IMG.Orientation, 4, 1, long_value(70000))]))
    assert result.removed == ("Orientation",)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_provenance_errors(data: bytes) -> None:
    for candidate in (data, b"MM\x00*\x00\x00\x00\x08" + data, b"II*\x00\x08\x00\x00\x00" + data):
        try:
            result = sanitize_exif(candidate)
        except ProvenanceError:
            continue
        assert sanitize_exif(result.tiff).removed == ()


VALID = tiff_of(camera_exif(thumbnail=small_jpeg()))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=6))
def test_mutated_exif_raises_only_container_errors(mutations: list[tuple[int, int]]) -> None:
    data = bytearray(VALID)
    for index, value in mutations:
        data[index] = value
    try:
        result = sanitize_exif(bytes(data))
    except ContainerError:
        return
    assert sanitize_exif(result.tiff).removed == ()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(VALID) - 1))
def test_truncated_exif_raises_only_container_errors(length: int) -> None:
    with contextlib.suppress(ContainerError):
        sanitize_exif(VALID[:length])


# --- build / merge ---------------------------------------------------------------------


def test_build_minimal_exif() -> None:
    when = datetime(2026, 10, 2, 8, 30, 5, tzinfo=timezone.utc)
    tiff = build_minimal_exif(
        software="Acme Packshot 3.2 (sdxl 1.0)", description="AI-generated image", when=when
    )
    assert tiff.startswith(b"MM\x00*")
    loaded = piexif.load(tiff)
    assert loaded["0th"] == {
        IMG.Software: b"Acme Packshot 3.2 (sdxl 1.0)",
        IMG.ImageDescription: b"AI-generated image",
        IMG.DateTime: b"2026:10:02 08:30:05",
        IMG.ExifTag: loaded["0th"][IMG.ExifTag],
    }
    assert loaded["Exif"] == {
        EXF.ExifVersion: b"0232",
        EXF.DateTimeOriginal: b"2026:10:02 08:30:05",
        EXF.OffsetTime: b"+00:00",
        EXF.OffsetTimeOriginal: b"+00:00",
    }
    assert loaded["GPS"] == {}
    assert sanitize_exif(tiff).removed == ()


def test_build_with_software_only_has_no_exif_ifd() -> None:
    loaded = piexif.load(build_minimal_exif(software="Gen 1"))
    assert loaded["0th"] == {IMG.Software: b"Gen 1"}
    assert loaded["Exif"] == {}


def test_build_formats_naive_and_offset_times() -> None:
    naive = piexif.load(build_minimal_exif(software="g", when=datetime(987, 6, 5, 4, 3, 2)))
    assert naive["0th"][IMG.DateTime] == b"0987:06:05 04:03:02"
    assert EXF.OffsetTime not in naive["Exif"]
    tz = timezone(-timedelta(hours=5, minutes=30))
    aware = piexif.load(build_minimal_exif(software="g", when=datetime(2026, 1, 2, tzinfo=tz)))
    assert aware["Exif"][EXF.OffsetTimeOriginal] == b"-05:30"
    assert aware["Exif"][EXF.DateTimeOriginal] == b"2026:01:02 00:00:00"


def test_build_makes_text_ascii() -> None:
    tiff = build_minimal_exif(software="Générateur™ 2\x00x", description="Bild \u2013 KI\nerstellt")
    loaded = piexif.load(tiff)
    assert loaded["0th"][IMG.Software] == b"GenerateurTM 2 x"
    assert loaded["0th"][IMG.ImageDescription] == b"Bild ? KI erstellt"
    assert all(b < 0x80 for b in tiff)


def test_build_refuses_empty_software() -> None:
    with pytest.raises(RecordError):
        build_minimal_exif(software=" \u00a0 ")


def test_merge_sanitises_and_sets_the_minimal_fields() -> None:
    when = datetime(2026, 10, 2, 8, 30, tzinfo=timezone(timedelta(hours=2)))
    original = camera_exif(thumbnail=small_jpeg())
    original["Exif"][EXF.SubSecTimeOriginal] = b"42"
    original["Exif"][EXF.OffsetTimeOriginal] = b"+09:00"
    merged = merge_minimal_exif(
        tiff_of(original), software="Gen 2.0", description="AI-generated image", when=when
    )
    for secret in PERSONAL:
        assert secret not in merged
    loaded = piexif.load(merged)
    assert loaded["0th"][IMG.Software] == b"Gen 2.0"
    assert loaded["0th"][IMG.ImageDescription] == b"AI-generated image"
    assert loaded["0th"][IMG.DateTime] == b"2026:10:02 08:30:00"
    assert loaded["0th"][IMG.Make] == b"Canon"
    assert loaded["0th"][IMG.Copyright] == b"(c) Example Shop GmbH"
    assert loaded["Exif"][EXF.DateTimeOriginal] == b"2026:10:02 08:30:00"
    assert loaded["Exif"][EXF.OffsetTimeOriginal] == b"+02:00"
    assert EXF.SubSecTimeOriginal not in loaded["Exif"]
    assert loaded["Exif"][EXF.ExposureTime] == (1, 125)
    assert loaded["GPS"] == {}


def test_merge_keeps_existing_description_and_dates_when_not_given() -> None:
    loaded = piexif.load(merge_minimal_exif(tiff_of(camera_exif()), software="Gen"))
    assert loaded["0th"][IMG.Software] == b"Gen"
    assert loaded["0th"][IMG.ImageDescription] == b"product shot"
    assert loaded["Exif"][EXF.DateTimeOriginal] == b"2024:05:06 07:08:09"


@pytest.mark.parametrize("existing", [None, b""])
def test_merge_without_existing_exif_builds_fresh(existing: bytes | None) -> None:
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert merge_minimal_exif(existing, software="Gen", when=when) == build_minimal_exif(
        software="Gen", when=when
    )


def test_merge_rejects_malformed_existing_exif() -> None:
    with pytest.raises(ContainerError):
        merge_minimal_exif(MALFORMED["exif pointer loops to ifd0"], software="Gen")


def test_minimal_exif_is_built_once_per_value_and_keeps_each_offset() -> None:
    utc = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
    plus_two = utc.astimezone(timezone(timedelta(hours=2)))  # the same instant
    first = build_minimal_exif(software="gen 1", when=utc)
    assert build_minimal_exif(software="gen 1", when=utc) == first
    other = build_minimal_exif(software="gen 1", when=plus_two)
    assert other != first
    assert b"14:00:00" in other and b"+02:00" in other
    assert b"12:00:00" in first
