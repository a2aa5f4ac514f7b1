"""JPEG markers and the bounded walk over marker segments and entropy-coded data."""

from __future__ import annotations

import re
import struct
import sys
from dataclasses import dataclass
from typing import Any, NamedTuple

from provenance._core.containers._types import (
    BlockKind,
    Range,
    merge_ranges,
)
from provenance.errors import ContainerError

XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
"""Namespace that opens an APP1 segment holding the standard XMP packet."""

EXTENDED_XMP_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
"""Namespace that opens an APP1 segment holding a chunk of extended XMP."""

_EXIF_HEADER = b"Exif\x00\x00"
_ICC_HEADER = b"ICC_PROFILE\x00"
_MAX_SEGMENT_PAYLOAD = 0xFFFF - 2  # the length field counts itself

MAX_STANDARD_XMP_BYTES = _MAX_SEGMENT_PAYLOAD - len(XMP_HEADER)
"""Largest standard XMP packet one APP1 segment holds (65504 bytes)."""

# XMP spec part 3, 1.1.3.1: header, 32-byte GUID, full length and offset (4 bytes each).
_EXTENDED_PREFIX_LENGTH = len(EXTENDED_XMP_HEADER) + 32 + 4 + 4

MAX_EXTENDED_XMP_CHUNK_BYTES = _MAX_SEGMENT_PAYLOAD - _EXTENDED_PREFIX_LENGTH
"""Largest chunk of extended XMP one APP1 segment holds (65458 bytes)."""

MAX_EXIF_BYTES = _MAX_SEGMENT_PAYLOAD - len(_EXIF_HEADER)
"""Largest TIFF payload one APP1 ``Exif`` segment holds (65527 bytes)."""

MAX_MARKERS = 65536
"""Most markers outside entropy-coded data a file may have; more is refused as hostile.

Real files have tens to a few hundred (a 10 MB C2PA store spans 160 APP11
segments); the parser spends about 1 µs per marker, so the cap bounds the work
on a file made of empty COM segments to about 70 ms.
"""

_SOI = 0xD8
_EOI = 0xD9
_SOS = 0xDA
_APP0 = 0xE0
_APP1 = 0xE1
_APP2 = 0xE2
_APP11 = 0xEB
_COM = 0xFE
# SOFn for every coding process of T.81; 0xC4 (DHT), 0xC8 (JPG) and 0xCC (DAC) are not frames.
_SOF_MARKERS = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)
# T.81 B.1.1.3: TEM and RST0-7 stand alone, without a length field.
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})
# The end of entropy-coded data: 0xFF followed by anything but stuffing (0x00),
# RSTn (which belong to the scan) or another 0xFF (fill). A two-byte pattern keeps
# the scan linear even on long runs of 0xFF.
_ECS_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# The second byte of an _ECS_END match, as a table (the vector scan's test).
_ENDS_ECS = bytes(
    0 if code == 0 or 0xD0 <= code <= 0xD7 or code == 0xFF else 1 for code in range(256)
)
# Entropy-coded data is searched by the regex for its first _REGEX_BYTES (a progressive
# file's scans are short), then in _VECTOR_BYTES blocks with numpy when the process
# has imported it (a signing process has, for the perceptual hashes; verify's lean
# path has not and is not made to: issue 20, start-up) and at least _REGEX_BYTES
# more follow (numpy's calls cost about 10 us: below 64 KB the regex is as fast).
# Measured on 4 MP JPEGs (q90): the regex took 220 us for 744 KB with 1,292 0xFF
# bytes and 530 us for 945 KB with 21,000; numpy 140 and 175 us.
_REGEX_BYTES = 64 * 1024
_VECTOR_BYTES = 256 * 1024
_NOT_FILL = re.compile(rb"[^\xff]")
# The lean walk's classes of marker codes (plain_essence): anything it leaves to the
# full walk (standalone TEM and RSTn, reserved 0x02-0xBF, fill 0xFF, 0x00, SOI),
# APPn and COM, the other segments (essence), SOFn, SOS and EOI.
_REFUSE, _METADATA, _SEGMENT, _FRAME, _SCAN, _END = range(6)
_PLAIN_KINDS = bytes(
    _END if code == _EOI
    else _SCAN if code == _SOS
    else _FRAME if code in _SOF_MARKERS
    else _METADATA if 0xE0 <= code <= 0xEF or code == _COM
    else _REFUSE if code < 0xC0 or 0xD0 <= code <= 0xD8 or code == 0xFF
    else _SEGMENT
    for code in range(256)
)  # fmt: skip
_MARKER_HEAD = struct.Struct(">BBH")  # 0xFF, the code, the segment's length
_HAS_EXTENDED_XMP = re.compile(rb"HasExtendedXMP(?:\s*=\s*[\"']|\s*>\s*)([0-9A-Fa-f]{32})")
# C2PA 2.x, A.3.1: the manifest store is a JUMBF superbox whose description box
# has type UUID 63327061-0011-0010-8000-00AA00389B71 ("c2pa") and label "c2pa".
_C2PA_UUID_PREFIX = b"c2pa"


class _Segment(NamedTuple):
    # A NamedTuple, not a dataclass: one is built per block, and this is cheaper.

    marker: int
    offset: int
    end: int
    kind: BlockKind

    @property
    def payload_start(self) -> int:
        return self.offset + 4


@dataclass(frozen=True, slots=True)
class _Layout:
    segments: tuple[_Segment, ...]
    essence: tuple[Range, ...]
    width: int
    height: int


def _marker_name(marker: int) -> str:
    if 0xE0 <= marker <= 0xEF:
        return f"APP{marker - 0xE0}"
    names = {_SOS: "SOS", 0xC4: "DHT", 0xDB: "DQT", 0xDD: "DRI", _COM: "COM"}
    if marker in names:
        return names[marker]
    if marker in _SOF_MARKERS:
        return f"SOF{marker - 0xC0}"
    return f"marker 0xFF{marker:02X}"


def _truncated(what: str, offset: int) -> ContainerError:
    return ContainerError(f"truncated: {what} at offset {offset} runs past the end of data")


def _parse(data: bytes, *, until_scan: bool = False) -> _Layout:
    """Walk the marker segments from SOI to EOI; see the module docstring.

    With ``until_scan`` the walk stops at the first SOS header: the metadata
    segments before the image data and the frame size, without scanning the
    entropy-coded data (the essence ranges are then left empty).
    """
    if data[:2] != b"\xff\xd8":
        raise ContainerError("no SOI marker at offset 0")
    app_segments: list[tuple[int, int, int]] = []
    essence: list[Range] = []
    frame: tuple[int, int] | None = None
    scans = 0
    pos = 2
    for _ in range(MAX_MARKERS):
        # 1. A marker: one or more 0xFF (the extra ones are fill), then a code.
        start = _next_marker(data, pos)
        marker = data[start + 1]
        if marker == _EOI:
            essence.append((start, start + 2))
            break
        if marker in _STANDALONE_MARKERS:
            essence.append((start, start + 2))
            pos = start + 2
            continue
        if marker in (0x00, _SOI):
            raise ContainerError(f"unexpected marker 0xFF{marker:02X} at offset {start}")
        # 2. A marker segment: a big-endian length that counts itself, never trusted.
        end = _segment_end(data, start, marker)
        if 0xE0 <= marker <= 0xEF or marker == _COM:
            app_segments.append((marker, start, end))
            pos = end
            continue
        essence.append((start, end))
        if marker in _SOF_MARKERS and frame is None:
            frame = _frame_size(data, start, marker)
        if marker != _SOS:
            pos = end
            continue
        # 3. Entropy-coded data runs to the next marker that is not RSTn.
        scans += 1
        if until_scan:
            essence = []
            break
        ecs_end, pos = _scan_end(data, end)
        essence.append((end, ecs_end))
    else:
        raise ContainerError(f"more than {MAX_MARKERS} markers before offset {pos}")
    if frame is None:
        raise ContainerError("no SOF frame header before EOI")
    if scans == 0:
        raise ContainerError("no SOS scan before EOI")
    return _Layout(
        segments=_classify(data, app_segments),
        essence=merge_ranges(essence),
        width=frame[0],
        height=frame[1],
    )


def plain_essence(data: bytes) -> tuple[Range, ...] | None:
    """The essence ranges of a plainly laid out JPEG in one lean walk; None otherwise.

    Plain is how encoders write a JPEG: SOI, then marker segments (APPn, COM,
    DQT, SOFn, DHT, DRI, SOS ...) each right after the previous one, entropy-coded
    data after each SOS (RSTn inside it) ending at the next marker, and EOI,
    with no fill bytes, standalone or reserved markers. For such a file this
    gives what :func:`_parse` gives (``_parse(data).essence``) without building
    segments, a layout or a list to merge: the essence ranges are grown in
    place, one table look-up per marker. Anything else, malformed input
    included, gives None, and the caller walks the file with :func:`_parse`,
    which finds the same ranges or raises its error.
    """
    size = len(data)
    if data[:2] != b"\xff\xd8":
        return None
    ranges: list[Range] = []
    run = -1  # where the essence run in progress began; -1: none
    frame = scans = False
    pos = 2
    for _ in range(MAX_MARKERS):
        if pos + 4 <= size:
            fill, marker, length = _MARKER_HEAD.unpack_from(data, pos)
        elif pos + 2 <= size:
            fill, marker, length = data[pos], data[pos + 1], 0
        else:
            return None
        kind = _PLAIN_KINDS[marker]
        if fill != 0xFF or kind == _REFUSE:
            return None
        if kind == _END:
            if not (frame and scans):
                return None
            ranges.append((pos if run < 0 else run, pos + 2))
            return tuple(ranges)
        end = pos + 2 + length
        if length < 2 or end > size:
            return None
        if kind == _METADATA:
            if run >= 0:
                ranges.append((run, pos))
                run = -1
            pos = end
            continue
        if run < 0:
            run = pos
        if kind == _FRAME and not frame:
            if length < 8:
                return None
            frame = True
        elif kind == _SCAN:
            scans = True
            pos = _ecs_marker(data, end)
            if pos < 0:
                return None
            if pos > end and data[pos - 1] == 0xFF:
                return None  # fill bytes before the marker: not essence, the full walk trims them
            continue
        pos = end
    return None


def _next_marker(data: bytes, pos: int) -> int:
    """The offset of the marker at ``pos``: its last 0xFF before the code (fill skipped)."""
    size = len(data)
    if pos >= size:
        raise ContainerError(f"truncated: no EOI marker before the end of data at offset {size}")
    if data[pos] != 0xFF:
        raise ContainerError(f"expected a marker at offset {pos}, found byte 0x{data[pos]:02X}")
    if pos + 1 < size and data[pos + 1] != 0xFF:
        return pos  # no fill (the usual case): what the search below would find
    found = _NOT_FILL.search(data, pos + 1)
    if found is None:
        raise ContainerError(f"truncated: no EOI marker before the end of data at offset {size}")
    return found.start() - 1


def _segment_end(data: bytes, start: int, marker: int) -> int:
    """Where the marker segment at ``start`` ends, its length checked against the data."""
    if start + 4 > len(data):
        raise _truncated(f"{_marker_name(marker)} segment", start)
    length = (data[start + 2] << 8) | data[start + 3]
    if length < 2:
        raise ContainerError(
            f"{_marker_name(marker)} segment at offset {start} has invalid length {length}"
        )
    end = start + 2 + length
    if end > len(data):
        raise _truncated(f"{_marker_name(marker)} segment", start)
    return end


def _frame_size(data: bytes, start: int, marker: int) -> tuple[int, int]:
    """(width, height) from a SOF segment; T.81 B.2.2: P (1 byte), Y (2), X (2), Nf (1)."""
    length = (data[start + 2] << 8) | data[start + 3]
    if length < 8:
        raise ContainerError(f"{_marker_name(marker)} segment at offset {start} is too short")
    height = (data[start + 5] << 8) | data[start + 6]
    width = (data[start + 7] << 8) | data[start + 8]
    return width, height


def _scan_end(data: bytes, end: int) -> tuple[int, int]:
    """(end of the entropy-coded data from ``end``, offset of the marker after it)."""
    marker = _ecs_marker(data, end)
    if marker < 0:
        raise ContainerError(
            f"truncated: entropy-coded data from offset {end} has no marker after it"
        )
    ecs_end = marker
    if ecs_end > end and data[ecs_end - 1] == 0xFF:
        # Fill bytes before the marker are not data (coded 0xFF is always stuffed).
        ecs_end = end + len(data[end:ecs_end].rstrip(b"\xff"))
    return ecs_end, marker


def _ecs_marker(data: bytes, start: int) -> int:
    """Where ``_ECS_END.search(data, start)`` matches: the marker after entropy-coded data.

    -1 when there is none. The same offset either way; past :data:`_REGEX_BYTES`
    of a long run numpy finds it faster, when loaded (see the constants).
    """
    size = len(data)
    numpy = sys.modules.get("numpy") if size - start > 2 * _REGEX_BYTES else None
    if numpy is None:
        found = _ECS_END.search(data, start)
        return -1 if found is None else found.start()
    # A match ends one byte after its 0xFF: this one may end at ``start + _REGEX_BYTES``.
    found = _ECS_END.search(data, start, start + _REGEX_BYTES + 1)
    if found is not None:
        return found.start()
    return _vector_marker(numpy, data, start + _REGEX_BYTES)


def _vector_marker(numpy: Any, data: bytes, start: int) -> int:
    """:func:`_ecs_marker` from ``start`` with numpy, block by block; -1 when none."""
    ends = numpy.frombuffer(_ENDS_ECS, dtype=numpy.bool_)
    size = len(data)
    for block in range(start, size - 1, _VECTOR_BYTES):
        # The block's bytes and the one after, which the last 0xFF needs.
        stop = min(block + _VECTOR_BYTES + 1, size)
        view = numpy.frombuffer(data, dtype=numpy.uint8, count=stop - block, offset=block)
        # 0xFF followed by anything but 0x00 first (stuffing is most of them), then the table.
        candidates = view[:-1] == 0xFF
        candidates &= view[1:] != 0
        found = numpy.flatnonzero(candidates)
        if found.size:
            hits = found[ends[view[found + 1]]]
            if hits.size:
                return block + int(hits[0])
    return -1


def _jumbf_instance(data: bytes, start: int, end: int) -> tuple[int, bool] | None:
    """Return (box instance, is a C2PA store) for an APP11 JUMBF segment, else None.

    ISO 19566-5 / C2PA A.3.1: CI "JP" (2 bytes), En (2), Z (4), then the superbox
    header LBox (4), TBox "jumb" (4), XLBox (8) if LBox is 1; the first packet
    (Z = 1) continues with the description box: LBox, "jumd", type UUID (16).
    """
    payload = start + 4
    if end - payload < 16 or not data.startswith(b"JP", payload):
        return None
    instance = (data[payload + 2] << 8) | data[payload + 3]
    sequence = int.from_bytes(data[payload + 4 : payload + 8], "big")
    box = payload + 8
    if not data.startswith(b"jumb", box + 4, end):
        return instance, False
    large = int.from_bytes(data[box : box + 4], "big") == 1
    description = box + (16 if large else 8)
    is_c2pa = (
        sequence == 1
        and data.startswith(b"jumd", description + 4, end)
        and data.startswith(_C2PA_UUID_PREFIX, description + 8, end)
    )
    return instance, is_c2pa


def _classify(data: bytes, app_segments: list[tuple[int, int, int]]) -> tuple[_Segment, ...]:
    jumbf: dict[int, int] = {}
    c2pa_instances: set[int] = set()
    for marker, start, end in app_segments:
        if marker == _APP11:
            found = _jumbf_instance(data, start, end)
            if found is not None:
                jumbf[start] = found[0]
                if found[1]:
                    c2pa_instances.add(found[0])
    segments: list[_Segment] = []
    for marker, start, end in app_segments:
        payload = start + 4
        kind = BlockKind.OTHER_METADATA
        if marker == _COM:
            kind = BlockKind.COMMENT
        elif marker == _APP1:
            if data.startswith(XMP_HEADER, payload, end):
                kind = BlockKind.XMP
            elif data.startswith(EXTENDED_XMP_HEADER, payload, end):
                kind = BlockKind.EXTENDED_XMP
            elif data.startswith(b"Exif\x00", payload, end):
                kind = BlockKind.EXIF
        elif marker == _APP2 and data.startswith(_ICC_HEADER, payload, end):
            kind = BlockKind.ICC
        elif marker == _APP11 and jumbf.get(start, -1) in c2pa_instances:
            kind = BlockKind.C2PA
        segments.append(_Segment(marker, start, end, kind))
    return tuple(segments)
