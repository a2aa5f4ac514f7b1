"""JPEG (ITU T.81 / JFIF / EXIF) marker segments: read, insert and strip metadata.

This module owns the byte layout of JPEG files: it walks marker segments and
entropy-coded data, classifies APPn/COM segments as metadata blocks, finds the
essence ranges, and splices XMP/EXIF APP1 segments in or out. It never decodes
or re-encodes the image, never does file I/O and never imports c2pa.

Essence (decision 5 of DESIGN.md): every marker segment after SOI that is not
APPn (``0xFFE0``-``0xFFEF``) or COM (``0xFFFE``), wherever it is, each from its
``0xFF`` through its payload; the entropy-coded data after every SOS (including
RSTn markers and ``0xFF00`` stuffing); and EOI. SOI is not covered (it is the
same in every JPEG), nor are fill bytes (``0xFF`` padding before a marker, which
rewriting tools may add or drop), nor anything after EOI (trailers, MPF images).

Every length field is checked against the data before use, every loop advances
by at least one byte, and any malformed input raises :class:`ContainerError`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from provenance._core.containers._types import (
    BlockKind,
    ContainerInfo,
    ImageFormat,
    MetadataBlock,
    Range,
    has_tiff_header,
    merge_ranges,
    splice,
)
from provenance.errors import ContainerError, XmpError

__all__ = [
    "EXTENDED_XMP_HEADER",
    "MAX_EXIF_BYTES",
    "MAX_EXTENDED_XMP_CHUNK_BYTES",
    "MAX_MARKERS",
    "MAX_STANDARD_XMP_BYTES",
    "XMP_HEADER",
    "essence_ranges",
    "extended_xmp_guid",
    "inspect",
    "set_exif",
    "set_xmp",
    "strip",
]

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
_NOT_FILL = re.compile(rb"[^\xff]")
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
    size = len(data)
    if data[:2] != b"\xff\xd8":
        raise ContainerError("no SOI marker at offset 0")
    app_segments: list[tuple[int, int, int]] = []
    essence: list[Range] = []
    frame: tuple[int, int] | None = None
    scans = 0
    pos = 2
    for _ in range(MAX_MARKERS):
        # 1. A marker: one or more 0xFF (the extra ones are fill), then a code.
        if pos >= size:
            raise ContainerError(
                f"truncated: no EOI marker before the end of data at offset {size}"
            )
        if data[pos] != 0xFF:
            raise ContainerError(f"expected a marker at offset {pos}, found byte 0x{data[pos]:02X}")
        found = _NOT_FILL.search(data, pos + 1)
        if found is None:
            raise ContainerError(
                f"truncated: no EOI marker before the end of data at offset {size}"
            )
        start = found.start() - 1
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
        if start + 4 > size:
            raise _truncated(f"{_marker_name(marker)} segment", start)
        length = (data[start + 2] << 8) | data[start + 3]
        if length < 2:
            raise ContainerError(
                f"{_marker_name(marker)} segment at offset {start} has invalid length {length}"
            )
        end = start + 2 + length
        if end > size:
            raise _truncated(f"{_marker_name(marker)} segment", start)
        if 0xE0 <= marker <= 0xEF or marker == _COM:
            app_segments.append((marker, start, end))
            pos = end
            continue
        essence.append((start, end))
        if marker in _SOF_MARKERS and frame is None:
            # T.81 B.2.2: P (1 byte), Y (2), X (2), Nf (1).
            if length < 8:
                raise ContainerError(
                    f"{_marker_name(marker)} segment at offset {start} is too short"
                )
            height = (data[start + 5] << 8) | data[start + 6]
            width = (data[start + 7] << 8) | data[start + 8]
            frame = (width, height)
        if marker != _SOS:
            pos = end
            continue
        # 3. Entropy-coded data runs to the next marker that is not RSTn.
        scans += 1
        if until_scan:
            essence = []
            break
        found = _ECS_END.search(data, end)
        if found is None:
            raise ContainerError(
                f"truncated: entropy-coded data from offset {end} has no marker after it"
            )
        ecs_end = found.start()
        if ecs_end > end and data[ecs_end - 1] == 0xFF:
            # Fill bytes before the marker are not data (coded 0xFF is always stuffed).
            ecs_end = end + len(data[end:ecs_end].rstrip(b"\xff"))
        essence.append((end, ecs_end))
        pos = found.start()
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


def _blocks(layout: _Layout) -> tuple[MetadataBlock, ...]:
    return tuple(
        MetadataBlock(s.kind, s.offset, s.end - s.offset, _marker_name(s.marker))
        for s in layout.segments
    )


def essence_ranges(data: bytes) -> tuple[Range, ...]:
    """Return the merged byte ranges of coded image data (see the module docstring).

    Args:
        data: A whole JPEG file.

    Returns:
        Sorted, disjoint ``(start, end)`` ranges.

    Raises:
        ContainerError: If the marker structure is malformed or truncated.
    """
    return _parse(data).essence


def extended_xmp_guid(extended: bytes) -> str:
    """Return the GUID that names an extended XMP packet (XMP spec part 3, 1.1.3.1).

    Args:
        extended: The serialized extended XMP packet.

    Returns:
        The MD5 digest of ``extended`` as 32 uppercase hexadecimal digits; the
        standard packet must name it in ``xmpNote:HasExtendedXMP``.
    """
    return hashlib.md5(extended, usedforsecurity=False).hexdigest().upper()


def _extended_xmp(
    data: bytes, segments: Iterable[_Segment], standard: bytes | None
) -> bytes | None:
    """Reassemble extended XMP when every chunk of the named packet is present."""
    groups: dict[bytes, list[tuple[int, int, int, int]]] = {}
    for segment in segments:
        prefix = segment.payload_start + len(EXTENDED_XMP_HEADER)
        if segment.end - prefix < 40:
            raise ContainerError(f"extended XMP segment at offset {segment.offset} is too short")
        guid = data[prefix : prefix + 32]
        full_length = int.from_bytes(data[prefix + 32 : prefix + 36], "big")
        chunk_offset = int.from_bytes(data[prefix + 36 : prefix + 40], "big")
        groups.setdefault(guid, []).append((chunk_offset, full_length, prefix + 40, segment.end))
    named = _HAS_EXTENDED_XMP.search(standard) if standard is not None else None
    if named is not None:
        chunks = groups.get(named.group(1).upper()) or groups.get(named.group(1))
    elif len(groups) == 1:
        chunks = next(iter(groups.values()))
    else:
        chunks = None
    if not chunks:
        return None
    # The chunks must tile [0, full length) exactly, in any order of segments.
    chunks.sort()
    full_length = chunks[0][1]
    expected = 0
    for chunk_offset, chunk_full, start, end in chunks:
        if chunk_full != full_length or chunk_offset != expected:
            return None
        expected += end - start
    if expected != full_length:
        return None
    return b"".join(memoryview(data)[start:end] for _, _, start, end in chunks)


def inspect(data: bytes, *, essence: bool = True) -> ContainerInfo:
    """Read the layout, metadata and essence ranges of a JPEG without decoding it.

    Args:
        data: A whole JPEG file.
        essence: False stops at the first scan: the metadata before the image
            data only, ``essence_ranges`` empty, and the entropy-coded data
            neither scanned nor checked (for a file whose bytes are known good).

    Returns:
        The container summary.

    Raises:
        ContainerError: If the structure is malformed or truncated, or the file
            holds several standard XMP packets.
    """
    layout = _parse(data, until_scan=not essence)
    xmp_segments = [s for s in layout.segments if s.kind is BlockKind.XMP]
    if len(xmp_segments) > 1:
        offsets = ", ".join(str(s.offset) for s in xmp_segments)
        raise ContainerError(f"several XMP packets (APP1 segments at offsets {offsets})")
    xmp = None
    if xmp_segments:
        segment = xmp_segments[0]
        xmp = data[segment.payload_start + len(XMP_HEADER) : segment.end]
    extended_segments = [s for s in layout.segments if s.kind is BlockKind.EXTENDED_XMP]
    extended = _extended_xmp(data, extended_segments, xmp) if extended_segments else None
    exif = None
    for segment in layout.segments:
        if segment.kind is BlockKind.EXIF:
            tiff = data[segment.payload_start + len(_EXIF_HEADER) : segment.end]
            exif = tiff if has_tiff_header(tiff) else None
            break
    return ContainerInfo(
        format=ImageFormat.JPEG,
        width=layout.width,
        height=layout.height,
        blocks=_blocks(layout),
        xmp=xmp,
        extended_xmp=extended,
        exif=exif,
        essence_ranges=layout.essence,
        # The essence ends with EOI (not read when stopping at the first scan).
        image_end=layout.essence[-1][1] if layout.essence else None,
    )


def _app1(payload: bytes) -> bytes:
    return b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload


def _insertion_point(layout: _Layout, removed: frozenset[int], *, after_exif: bool) -> int:
    """Offset after SOI and the APP0 (and, if asked, APP1 Exif) segments opening the file.

    Segments about to be removed (by offset) are stepped over.
    """
    pos = 2
    for segment in layout.segments:
        if segment.offset != pos:
            break
        leading = segment.marker == _APP0 or (after_exif and segment.kind is BlockKind.EXIF)
        if not leading and segment.offset not in removed:
            break
        pos = segment.end
    return pos


def _rewrite(
    data: bytes, layout: _Layout, drop: frozenset[BlockKind], new: bytes, *, after_exif: bool
) -> bytes:
    removed = [s for s in layout.segments if s.kind in drop]
    at = _insertion_point(layout, frozenset(s.offset for s in removed), after_exif=after_exif)
    return splice(data, [(s.offset, s.end) for s in removed], [(at, new)])


def set_xmp(data: bytes, packet: bytes, *, extended: bytes | None = None) -> bytes:
    """Insert or replace the XMP packet, and optionally extended XMP.

    Every existing standard and extended XMP segment is removed first. The new
    APP1 segment goes after SOI and any APP0/APP1 ``Exif`` segments opening the
    file; the extended segments (XMP spec part 3, 1.1.3.1) follow it.

    Args:
        data: A whole JPEG file.
        packet: The standard XMP packet, at most :data:`MAX_STANDARD_XMP_BYTES`.
        extended: An extended XMP packet; ``packet`` must name its GUID
            (:func:`extended_xmp_guid`) in ``xmpNote:HasExtendedXMP``.

    Returns:
        The new file.

    Raises:
        ContainerError: If ``data`` is malformed, or a packet does not fit.
        XmpError: If ``packet`` does not name the GUID of ``extended``.
    """
    layout = _parse(data)
    if len(packet) > MAX_STANDARD_XMP_BYTES:
        raise ContainerError(
            f"XMP packet of {len(packet)} bytes does not fit one APP1 segment "
            f"(at most {MAX_STANDARD_XMP_BYTES}); move properties to extended XMP"
        )
    segments = [_app1(XMP_HEADER + packet)]
    if extended is not None:
        if len(extended) > 0xFFFFFFFF:
            raise ContainerError(f"extended XMP of {len(extended)} bytes exceeds 4 GiB")
        guid = extended_xmp_guid(extended).encode("ascii")
        if guid not in packet:
            raise XmpError(f"the standard XMP packet does not name extended XMP GUID {guid!r}")
        head = EXTENDED_XMP_HEADER + guid + len(extended).to_bytes(4, "big")
        for offset in range(0, len(extended), MAX_EXTENDED_XMP_CHUNK_BYTES):
            chunk = extended[offset : offset + MAX_EXTENDED_XMP_CHUNK_BYTES]
            segments.append(_app1(head + offset.to_bytes(4, "big") + chunk))
    drop = frozenset({BlockKind.XMP, BlockKind.EXTENDED_XMP})
    return _rewrite(data, layout, drop, b"".join(segments), after_exif=True)


def set_exif(data: bytes, tiff: bytes) -> bytes:
    r"""Insert or replace the EXIF APP1 segment.

    Existing ``Exif`` APP1 segments are removed; the new one goes right after SOI
    and any APP0 segments opening the file.

    Args:
        data: A whole JPEG file.
        tiff: Raw TIFF bytes (``II*\0`` or ``MM\0*``), without ``Exif\0\0``.

    Returns:
        The new file.

    Raises:
        ContainerError: If ``data`` is malformed, or ``tiff`` is not TIFF or does
            not fit one segment (:data:`MAX_EXIF_BYTES`).
    """
    layout = _parse(data)
    if not has_tiff_header(tiff):
        raise ContainerError("EXIF payload does not start with a TIFF header (II*\\0 or MM\\0*)")
    if len(tiff) > MAX_EXIF_BYTES:
        raise ContainerError(
            f"EXIF payload of {len(tiff)} bytes does not fit one APP1 segment "
            f"(at most {MAX_EXIF_BYTES})"
        )
    new = _app1(_EXIF_HEADER + tiff)
    return _rewrite(data, layout, frozenset({BlockKind.EXIF}), new, after_exif=False)


def embed(data: bytes, blocks: Sequence[MetadataBlock], *, xmp: bytes, exif: bytes | None) -> bytes:
    r"""Replace XMP (and EXIF when given) in one splice, from an earlier :func:`inspect`.

    Same layout as :func:`set_xmp` followed by :func:`set_exif`: after SOI and any
    APP0 segments opening the file come the new EXIF, then the new XMP.

    Args:
        data: A whole JPEG file.
        blocks: ``inspect(data).blocks`` for these very bytes.
        xmp: The standard XMP packet, at most :data:`MAX_STANDARD_XMP_BYTES`.
        exif: Raw TIFF bytes replacing every ``Exif`` segment; None keeps them
            (the XMP then goes after the ``Exif`` segments opening the file).

    Returns:
        The new file.

    Raises:
        ContainerError: If a payload does not fit or is not TIFF.
    """
    if len(xmp) > MAX_STANDARD_XMP_BYTES:
        raise ContainerError(
            f"XMP packet of {len(xmp)} bytes does not fit one APP1 segment "
            f"(at most {MAX_STANDARD_XMP_BYTES}); move properties to extended XMP"
        )
    drop = {BlockKind.XMP, BlockKind.EXTENDED_XMP}
    new = [_app1(XMP_HEADER + xmp)]
    if exif is not None:
        if not has_tiff_header(exif):
            raise ContainerError(
                "EXIF payload does not start with a TIFF header (II*\\0 or MM\\0*)"
            )
        if len(exif) > MAX_EXIF_BYTES:
            raise ContainerError(
                f"EXIF payload of {len(exif)} bytes does not fit one APP1 segment "
                f"(at most {MAX_EXIF_BYTES})"
            )
        drop.add(BlockKind.EXIF)
        new.insert(0, _app1(_EXIF_HEADER + exif))
    removed = [b for b in blocks if b.kind in drop]
    removed_at = frozenset(b.offset for b in removed)
    at = 2
    for block in blocks:
        if block.offset != at:
            break
        leading = block.name == "APP0" or (exif is None and block.kind is BlockKind.EXIF)
        if not leading and block.offset not in removed_at:
            break
        at = block.end
    return splice(data, [(b.offset, b.end) for b in removed], [(at, b"".join(new))])


def strip(data: bytes, kinds: frozenset[BlockKind]) -> bytes:
    """Remove every metadata segment of the given kinds, wherever it is before EOI.

    Stripping :attr:`BlockKind.OTHER_METADATA` also removes APP0 (JFIF) and APP14
    (Adobe); decoders then guess the colour transform, as they do after
    ``exiftool -all=``. Bytes after EOI are kept as they are.

    Args:
        data: A whole JPEG file.
        kinds: The kinds to remove.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        ContainerError: If ``data`` is malformed.
    """
    layout = _parse(data)
    removed = [(s.offset, s.end) for s in layout.segments if s.kind in kinds]
    return splice(data, removed, [])
