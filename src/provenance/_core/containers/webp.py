"""WebP RIFF chunks (RFC 9649): read, insert and strip metadata.

This module owns the byte layout of WebP files: it walks the RIFF chunks,
classifies metadata chunks, finds the essence ranges, and rebuilds the file
with ``EXIF``/``XMP `` chunks added or removed, keeping the VP8X flags and the
RIFF size true. A simple (``VP8 `` or ``VP8L``) file becomes an extended (VP8X)
file when metadata is added, because only VP8X files may carry metadata. It never
decodes or re-encodes the image, never does file I/O and never imports c2pa.

Essence (decision 5 of DESIGN.md): the whole chunks (FourCC, size, payload and
padding byte) of type ``VP8 ``, ``VP8L``, ``ALPH``, ``ANIM`` and ``ANMF``. The
RIFF header, ``VP8X`` (whose flags change with the metadata), ``ICCP``,
``EXIF``, ``XMP ``, ``C2PA``, unknown chunks and anything after the RIFF size
are not covered.

Tolerance: a RIFF size smaller than the file is accepted (the rest is a trailer,
kept as is on rewrite); a RIFF size larger than the file is a truncation and
raises. A final odd-sized chunk may lack its padding byte; a rewrite adds it.
"""

from __future__ import annotations

import struct
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
)
from provenance.errors import ContainerError

__all__ = [
    "FLAG_ALPHA",
    "FLAG_ANIMATION",
    "FLAG_EXIF",
    "FLAG_ICC",
    "FLAG_XMP",
    "MAX_CHUNKS",
    "essence_ranges",
    "inspect",
    "set_exif",
    "set_xmp",
    "strip",
]

FLAG_ICC = 0x20
"""VP8X flag: the file has an ``ICCP`` chunk."""
FLAG_ALPHA = 0x10
"""VP8X flag: the image has an alpha channel."""
FLAG_EXIF = 0x08
"""VP8X flag: the file has an ``EXIF`` chunk."""
FLAG_XMP = 0x04
"""VP8X flag: the file has an ``XMP `` chunk."""
FLAG_ANIMATION = 0x02
"""VP8X flag: the file is animated."""

MAX_CHUNKS = 65536
"""Most chunks a file may have; more is refused as hostile.

Real files have a few, or one per frame when animated. The parser spends about
1.5 µs per chunk, so the cap bounds the work on a file of empty chunks to 0.1 s.
"""

_HEADER_SIZE = 12
_MAX_RIFF_SIZE = 0xFFFFFFFE  # RFC 9649 2.5: the RIFF size is a uint32 and even
_ESSENCE_TYPES = frozenset({b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF"})
_IMAGE_TYPES = frozenset({b"VP8 ", b"VP8L", b"ANMF"})
_CHUNK_HEADER = struct.Struct("<4sI")
_OTHER = BlockKind.OTHER_METADATA
# VP8X and image chunks are not metadata blocks (None); unknown chunks are OTHER_METADATA.
_KINDS: dict[bytes, BlockKind | None] = {
    b"VP8X": None,
    **dict.fromkeys(_ESSENCE_TYPES),
    b"ICCP": BlockKind.ICC,
    b"EXIF": BlockKind.EXIF,
    b"XMP ": BlockKind.XMP,
    b"C2PA": BlockKind.C2PA,
}
_FLAG_FOR_KIND = {BlockKind.ICC: FLAG_ICC, BlockKind.EXIF: FLAG_EXIF, BlockKind.XMP: FLAG_XMP}


class _Chunk(NamedTuple):
    # A NamedTuple, not a dataclass: one is built per block, and this is cheaper.

    fourcc: bytes
    offset: int
    payload_end: int
    end: int  # after the padding byte, when present
    kind: BlockKind | None  # None for VP8X and image chunks

    @property
    def payload_start(self) -> int:
        return self.offset + 8

    @property
    def name(self) -> str:
        return self.fourcc.decode("latin-1")


@dataclass(frozen=True, slots=True)
class _Layout:
    chunks: tuple[_Chunk, ...]
    essence: tuple[Range, ...]
    riff_end: int
    width: int
    height: int
    has_alpha: bool


def _le(data: bytes, start: int, length: int) -> int:
    return int.from_bytes(data[start : start + length], "little")


def _bitstream_size(data: bytes, chunk: _Chunk) -> tuple[int, int, bool]:
    """Width, height and alpha from a ``VP8 `` or ``VP8L`` bitstream header."""
    start, length = chunk.payload_start, chunk.payload_end - chunk.payload_start
    if chunk.fourcc == b"VP8 ":
        # RFC 6386 9.1: frame tag (3 bytes, bit 0 clear on a key frame), start code
        # 9D 01 2A, then 14-bit width and height (2 scaling bits each).
        if length < 10 or data[start] & 1 or data[start + 3 : start + 6] != b"\x9d\x01\x2a":
            raise ContainerError(f"'VP8 ' chunk at offset {chunk.offset} is not a key frame")
        return _le(data, start + 6, 2) & 0x3FFF, _le(data, start + 8, 2) & 0x3FFF, False
    # RFC 9649 3.7.1: signature 0x2F, then 14-bit width - 1, 14-bit height - 1,
    # 1-bit alpha_is_used and a 3-bit version that must be 0.
    if length < 5 or data[start] != 0x2F:
        raise ContainerError(f"'VP8L' chunk at offset {chunk.offset} lacks its signature")
    bits = _le(data, start + 1, 4)
    if bits >> 29:
        raise ContainerError(f"'VP8L' chunk at offset {chunk.offset} has unknown version")
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool(bits >> 28 & 1)


def _parse(data: bytes) -> _Layout:
    """Walk the RIFF chunks; see the module docstring."""
    size = len(data)
    if size < _HEADER_SIZE or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ContainerError("no RIFF/WEBP header at offset 0")
    riff_size = _le(data, 4, 4)
    riff_end = 8 + riff_size
    if riff_size < 4:
        raise ContainerError(f"RIFF size {riff_size} at offset 4 is too small")
    if riff_end > size:
        raise ContainerError(
            f"truncated: RIFF size {riff_size} at offset 4 runs past the end of data ({size} bytes)"
        )
    chunks: list[_Chunk] = []
    pos = _HEADER_SIZE
    while pos < riff_end:
        # 1. FourCC (4 bytes), payload size (4, little endian), payload, pad to even.
        if pos + 8 > riff_end:
            raise ContainerError(f"truncated: chunk header at offset {pos} runs past the RIFF data")
        fourcc, length = _CHUNK_HEADER.unpack_from(data, pos)
        payload_end = pos + 8 + length
        if payload_end > riff_end:
            raise ContainerError(
                f"truncated: {fourcc.decode('latin-1')!r} chunk at offset {pos} "
                "runs past the RIFF data"
            )
        # 2. The first chunk says which of the three layouts this is (RFC 9649 2.5).
        if not chunks and fourcc not in (b"VP8 ", b"VP8L", b"VP8X"):
            raise ContainerError(f"no VP8, VP8L or VP8X chunk at offset {_HEADER_SIZE}")
        if len(chunks) >= MAX_CHUNKS:
            raise ContainerError(f"more than {MAX_CHUNKS} chunks before offset {pos}")
        end = min(payload_end + (length & 1), riff_end)
        chunks.append(_Chunk(fourcc, pos, payload_end, end, _KINDS.get(fourcc, _OTHER)))
        pos = end
    if not chunks:
        raise ContainerError(f"no VP8, VP8L or VP8X chunk at offset {_HEADER_SIZE}")
    if not any(chunk.fourcc in _IMAGE_TYPES for chunk in chunks):
        raise ContainerError("no VP8, VP8L or ANMF image chunk")
    first = chunks[0]
    if first.fourcc == b"VP8X":
        if first.payload_end - first.payload_start < 10:
            raise ContainerError(f"'VP8X' chunk at offset {first.offset} is too short")
        start = first.payload_start
        width, height = _le(data, start + 4, 3) + 1, _le(data, start + 7, 3) + 1
        has_alpha = bool(data[start] & FLAG_ALPHA)
    else:
        width, height, has_alpha = _bitstream_size(data, first)
    if not width or not height:
        # RFC 6386 9.1: a key frame has a non-zero size (a VP8X canvas is at least 1x1).
        raise ContainerError(f"image of {width}x{height} pixels at offset {first.offset}")
    has_alpha = has_alpha or any(chunk.fourcc == b"ALPH" for chunk in chunks)
    essence = [(c.offset, c.end) for c in chunks if c.fourcc in _ESSENCE_TYPES]
    return _Layout(
        chunks=tuple(chunks),
        essence=merge_ranges(essence),
        riff_end=riff_end,
        width=width,
        height=height,
        has_alpha=has_alpha,
    )


def frame_size(data: bytes) -> tuple[int, int] | None:
    """The size of a still image's bitstream when a ``VP8X`` canvas precedes it.

    Decoders show the frame on the canvas, so the two must agree (RFC 9649 2.7).
    ``None`` for the simple layouts (no canvas) and animations (frames are
    placed on the canvas by ``ANMF``).

    Raises:
        ContainerError: If the RIFF structure is malformed or truncated.
    """
    layout = _parse(data)
    if layout.chunks[0].fourcc != b"VP8X":
        return None
    for chunk in layout.chunks:
        if chunk.fourcc == b"ANMF":
            return None
        if chunk.fourcc in (b"VP8 ", b"VP8L"):
            width, height, _ = _bitstream_size(data, chunk)
            return width, height
    return None


def _payload(data: bytes, chunk: _Chunk) -> bytes:
    return data[chunk.payload_start : chunk.payload_end]


def essence_ranges(data: bytes) -> tuple[Range, ...]:
    """Return the merged byte ranges of coded image data (see the module docstring).

    Args:
        data: A whole WebP file.

    Returns:
        Sorted, disjoint ``(start, end)`` ranges.

    Raises:
        ContainerError: If the RIFF structure is malformed or truncated.
    """
    # A simple file (every WebP rendition without alpha or metadata) skips the walk.
    simple = _simple_essence(data)
    return simple if simple is not None else _parse(data).essence


def _simple_essence(data: bytes) -> tuple[Range, ...] | None:
    """What ``_parse(data).essence`` is for a simple file, one ``VP8 `` or ``VP8L`` chunk.

    None for any other layout, a trailer after the RIFF data included, and for
    malformed input: the caller walks the file with :func:`_parse`, which finds
    the same ranges or raises its error.
    """
    if len(data) < _HEADER_SIZE + 8 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    riff_end = 8 + _le(data, 4, 4)
    fourcc, length = _CHUNK_HEADER.unpack_from(data, _HEADER_SIZE)
    payload_end = _HEADER_SIZE + 8 + length
    if (
        riff_end != len(data)
        or fourcc not in (b"VP8 ", b"VP8L")
        or payload_end > riff_end
        or payload_end + (length & 1) < riff_end
    ):
        return None
    chunk = _Chunk(fourcc, _HEADER_SIZE, payload_end, riff_end, None)
    try:
        width, height, _ = _bitstream_size(data, chunk)
    except ContainerError:
        return None
    if not width or not height:
        return None
    return ((_HEADER_SIZE, riff_end),)


def inspect(data: bytes) -> ContainerInfo:
    """Read the layout, metadata and essence ranges of a WebP without decoding it.

    Args:
        data: A whole WebP file.

    Returns:
        The container summary.

    Raises:
        ContainerError: If the structure is malformed or truncated, or the file
            holds several XMP chunks.
    """
    layout = _parse(data)
    xmp_chunks = [c for c in layout.chunks if c.kind is BlockKind.XMP]
    if len(xmp_chunks) > 1:
        offsets = ", ".join(str(c.offset) for c in xmp_chunks)
        raise ContainerError(f"several XMP packets ('XMP ' chunks at offsets {offsets})")
    exif = None
    for chunk in layout.chunks:
        if chunk.kind is BlockKind.EXIF:
            payload = _payload(data, chunk)
            # Early writers kept the JPEG "Exif\0\0" header in the chunk; accept it.
            if payload.startswith(b"Exif\x00\x00"):
                payload = payload[6:]
            exif = payload if has_tiff_header(payload) else None
            break
    return ContainerInfo(
        format=ImageFormat.WEBP,
        width=layout.width,
        height=layout.height,
        blocks=tuple(
            MetadataBlock(c.kind, c.offset, c.end - c.offset, c.name)
            for c in layout.chunks
            if c.kind is not None
        ),
        xmp=_payload(data, xmp_chunks[0]) if xmp_chunks else None,
        extended_xmp=None,
        exif=exif,
        essence_ranges=layout.essence,
        image_end=layout.riff_end + (layout.riff_end & 1),  # RIFF pads to even
    )


def _new_chunk(fourcc: bytes, payload: bytes) -> bytes:
    if len(payload) > _MAX_RIFF_SIZE - 8:
        raise ContainerError(f"{fourcc.decode()!r} payload of {len(payload)} bytes is too large")
    pad = b"\x00" if len(payload) & 1 else b""
    return fourcc + len(payload).to_bytes(4, "little") + payload + pad


def _rebuild(
    data: bytes,
    layout: _Layout,
    kept: list[_Chunk | bytes],
    *,
    extend: bool,
) -> bytes:
    """Write the RIFF header, a VP8X with true flags, the chunks, and the trailer.

    Args:
        data: The original file.
        layout: Its layout.
        kept: Chunks of the original (without VP8X) and new chunk bytes, in order.
        extend: Turn a simple file into a VP8X file (needed to carry metadata).
    """
    view = memoryview(data)
    first = layout.chunks[0]
    kinds = {piece.kind for piece in kept if isinstance(piece, _Chunk)}
    kinds.update(_KINDS.get(piece[:4]) for piece in kept if isinstance(piece, bytes))
    pieces: list[bytes | memoryview] = []
    if first.fourcc == b"VP8X" or extend:
        if first.fourcc == b"VP8X":
            flags = data[first.payload_start]
            rest = bytes(view[first.payload_start + 1 : first.payload_end])
        else:
            # RFC 9649 2.7: flags (1 byte), reserved (3), canvas width - 1 and
            # height - 1 (3 bytes each, little endian), from the bitstream header.
            flags = FLAG_ALPHA if layout.has_alpha else 0
            rest = (
                b"\x00\x00\x00"
                + (layout.width - 1).to_bytes(3, "little")
                + (layout.height - 1).to_bytes(3, "little")
            )
        for kind, flag in _FLAG_FOR_KIND.items():
            flags = flags | flag if kind in kinds else flags & ~flag
        pieces.append(_new_chunk(b"VP8X", bytes([flags]) + rest))
    for piece in kept:
        if isinstance(piece, bytes):
            pieces.append(piece)
            continue
        pieces.append(view[piece.offset : piece.end])
        if piece.end == piece.payload_end and (piece.payload_end - piece.payload_start) & 1:
            pieces.append(b"\x00")  # the padding byte a truncated RIFF size left out
    riff_size = 4 + sum(len(piece) for piece in pieces)
    if riff_size > _MAX_RIFF_SIZE:
        raise ContainerError(f"RIFF size {riff_size} exceeds the 4 GiB limit")
    header = b"RIFF" + riff_size.to_bytes(4, "little") + b"WEBP"
    return b"".join([header, *pieces, view[layout.riff_end :]])


def _without(layout: _Layout, kinds: frozenset[BlockKind]) -> list[_Chunk | bytes]:
    return [c for c in layout.chunks if c.fourcc != b"VP8X" and c.kind not in kinds]


def set_xmp(data: bytes, packet: bytes) -> bytes:
    """Insert or replace the ``XMP `` chunk, at the end of the file.

    Existing ``XMP `` chunks are removed, the VP8X XMP flag is set, and a simple
    file is first turned into a VP8X file (canvas size from the bitstream; the
    alpha flag when VP8L says alpha is used or an ALPH chunk exists).

    Args:
        data: A whole WebP file.
        packet: The XMP packet.

    Returns:
        The new file.

    Raises:
        ContainerError: If ``data`` is malformed, or the result exceeds 4 GiB.
    """
    layout = _parse(data)
    kept = _without(layout, frozenset({BlockKind.XMP}))
    kept.append(_new_chunk(b"XMP ", packet))
    return _rebuild(data, layout, kept, extend=True)


def set_exif(data: bytes, tiff: bytes) -> bytes:
    r"""Insert or replace the ``EXIF`` chunk, right after the image data.

    Existing ``EXIF`` chunks are removed and the VP8X EXIF flag is set; the new
    chunk goes after the last image chunk, hence before ``XMP `` (RFC 9649 2.7).

    Args:
        data: A whole WebP file.
        tiff: Raw TIFF bytes (``II*\0`` or ``MM\0*``).

    Returns:
        The new file.

    Raises:
        ContainerError: If ``data`` is malformed, or ``tiff`` is not TIFF.
    """
    layout = _parse(data)
    if not has_tiff_header(tiff):
        raise ContainerError("EXIF payload does not start with a TIFF header (II*\\0 or MM\\0*)")
    kept = _without(layout, frozenset({BlockKind.EXIF}))
    last_image = max(
        index
        for index, piece in enumerate(kept)
        if isinstance(piece, _Chunk) and piece.fourcc in _ESSENCE_TYPES
    )
    kept.insert(last_image + 1, _new_chunk(b"EXIF", tiff))
    return _rebuild(data, layout, kept, extend=True)


def strip(data: bytes, kinds: frozenset[BlockKind]) -> bytes:
    """Remove every chunk of the given kinds and clear the matching VP8X flags.

    A VP8X file stays a VP8X file; a simple file stays simple.

    Args:
        data: A whole WebP file.
        kinds: The kinds to remove.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        ContainerError: If ``data`` is malformed.
    """
    layout = _parse(data)
    return _rebuild(data, layout, _without(layout, kinds), extend=False)
