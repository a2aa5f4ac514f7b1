"""PNG chunks (PNG 3rd edition, APNG): read, insert and strip metadata.

This module owns the byte layout of PNG files: it walks chunks from the
signature to IEND, classifies ancillary chunks as metadata blocks, finds the
essence ranges, and splices ``iTXt`` XMP and ``eXIf`` chunks in or out. It never
decodes or re-encodes the image, never does file I/O and never imports c2pa.

Essence (decision 5 of DESIGN.md): the whole chunks (length, type, data and
CRC) of type IHDR, PLTE, tRNS, IDAT and the APNG chunks acTL, fcTL and fdAT. The
signature, IEND (the same 12 bytes in every PNG), every other chunk (``tEXt``,
``iTXt``, ``zTXt``, ``eXIf``, ``iCCP``, ``gAMA``, ``cHRM``, ``sRGB``, ``pHYs``,
``tIME``, ``caBX``, unknown chunks ...) and anything after IEND are not covered.

CRCs: the CRC of every chunk except IDAT and fdAT is checked on every parse
(they are small). The CRCs of IDAT and fdAT are checked by :func:`inspect` only
when asked (``check_image_crc=True``): they are part of the essence, so any
change to them already changes the essence hash, and a CRC-32 over the image
data costs about 40% of a SHA-256 over it (measured on 5 MB).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from provenance._core.containers._types import (
    BlockKind,
    ContainerInfo,
    ImageFormat,
    Insertion,
    MetadataBlock,
    Range,
    has_tiff_header,
    merge_ranges,
    splice,
)
from provenance.errors import ContainerError

__all__ = [
    "MAX_CHUNKS",
    "MAX_XMP_INFLATED_BYTES",
    "SIGNATURE",
    "XMP_KEYWORD",
    "embed",
    "embed_edits",
    "essence_ranges",
    "inspect",
    "set_exif",
    "set_xmp",
    "strip",
]

SIGNATURE = b"\x89PNG\r\n\x1a\n"
"""The eight bytes that open every PNG file."""

XMP_KEYWORD = b"XML:com.adobe.xmp"
"""The ``iTXt`` keyword of the XMP packet (XMP spec part 3, 1.1.5)."""

MAX_XMP_INFLATED_BYTES = 64 * 1024 * 1024
"""Largest compressed XMP packet :func:`inspect` inflates (a bound against zip bombs)."""

MAX_CHUNKS = 131072
"""Most chunks a file may have; more is refused as hostile.

Real files have a few to a few thousand (APNG: two per frame; libpng's 8 KiB
IDAT chunks reach the cap at 1 GiB). The parser spends about 2 µs per chunk, so
the cap bounds the work on a file of empty chunks to about 0.25 s.
"""

_MAX_CHUNK_LENGTH = 0x7FFFFFFF  # PNG 5.3: a length must not exceed 2**31 - 1
_CHUNK_HEADER = struct.Struct(">I4s")
_IHDR_END = len(SIGNATURE) + 12 + 13
_ESSENCE_TYPES = frozenset({b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"acTL", b"fcTL", b"fdAT"})
_IMAGE_DATA_TYPES = frozenset({b"IDAT", b"fdAT"})
_KINDS = {
    b"eXIf": BlockKind.EXIF,
    b"iCCP": BlockKind.ICC,
    b"caBX": BlockKind.C2PA,
    b"tEXt": BlockKind.COMMENT,
    b"zTXt": BlockKind.COMMENT,
}


class _Chunk(NamedTuple):
    # A NamedTuple, not a dataclass: one is built per block, and this is cheaper.

    type: bytes
    offset: int
    end: int
    kind: BlockKind | None

    @property
    def data_start(self) -> int:
        return self.offset + 8

    @property
    def data_end(self) -> int:
        return self.end - 4

    @property
    def name(self) -> str:
        return self.type.decode("latin-1")


@dataclass(frozen=True, slots=True)
class _Layout:
    chunks: tuple[_Chunk, ...]  # the metadata chunks: every one but essence and IEND
    essence: tuple[Range, ...]
    width: int
    height: int
    end: int
    defects: tuple[str, ...]
    image_data: int  # bytes of IDAT data (the payloads, without length, type and CRC)


def _name(chunk_type: bytes) -> str:
    return repr(chunk_type.decode("latin-1"))


def _kind(data: bytes, chunk_type: bytes, start: int, end: int) -> BlockKind:
    if chunk_type == b"iTXt":
        keyword_end = start + len(XMP_KEYWORD)
        if (
            data.startswith(XMP_KEYWORD, start, end)
            and keyword_end < end
            and data[keyword_end] == 0
        ):
            return BlockKind.XMP
        return BlockKind.COMMENT
    return _KINDS.get(chunk_type, BlockKind.OTHER_METADATA)


def _parse(data: bytes, *, check_image_crc: bool = False) -> _Layout:
    """Walk the chunks from the signature to IEND; see the module docstring."""
    if not data.startswith(SIGNATURE):
        raise ContainerError("no PNG signature at offset 0")
    chunks: list[_Chunk] = []
    essence: list[Range] = []
    defects: list[str] = []
    image_data = 0
    has_image_data = False
    view = memoryview(data)
    pos = len(SIGNATURE)
    for _ in range(MAX_CHUNKS):
        # 1. Length (4 bytes, big endian, at most 2**31 - 1), type (4), data, CRC (4).
        length, chunk_type, end = _chunk_at(data, pos)
        # 2. CRC-32 over type and data; see the module docstring for IDAT/fdAT.
        image = chunk_type in _IMAGE_DATA_TYPES
        if (check_image_crc or not image) and zlib.crc32(view[pos + 4 : end - 4]) != int.from_bytes(
            view[end - 4 : end], "big"
        ):
            defects.append(_crc_defect(chunk_type, pos))
        # 3. IHDR comes first and has 13 bytes of data.
        if pos == len(SIGNATURE) and (chunk_type != b"IHDR" or length != 13):
            raise ContainerError(
                f"first chunk at offset {pos} is {_name(chunk_type)}, not a 13-byte IHDR"
            )
        # 4. Essence chunks extend the range before them when adjacent (a photo has
        #    hundreds of IDAT chunks in a row); the walk keeps only metadata chunks.
        if image or chunk_type in _ESSENCE_TYPES:
            if essence and essence[-1][1] == pos:
                essence[-1] = (essence[-1][0], end)
            else:
                essence.append((pos, end))
            if image:
                has_image_data = True
                if chunk_type == b"IDAT":
                    image_data += length
        elif chunk_type == b"IEND":
            pos = end
            break
        else:
            chunks.append(_Chunk(chunk_type, pos, end, _kind(data, chunk_type, pos + 8, end - 4)))
        pos = end
    else:
        raise ContainerError(f"more than {MAX_CHUNKS} chunks before offset {pos}")
    if not has_image_data:
        raise ContainerError("no IDAT chunk before IEND")
    ihdr = len(SIGNATURE) + 8
    return _Layout(
        chunks=tuple(chunks),
        essence=merge_ranges(essence),
        width=int.from_bytes(data[ihdr : ihdr + 4], "big"),
        height=int.from_bytes(data[ihdr + 4 : ihdr + 8], "big"),
        end=pos,
        defects=tuple(defects),
        image_data=image_data,
    )


def _chunk_at(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """(length, type, end) of the chunk at ``pos``, its length checked against the data."""
    size = len(data)
    if pos + 12 > size:
        raise ContainerError(f"truncated: no IEND chunk before the end of data at offset {size}")
    length, chunk_type = _CHUNK_HEADER.unpack_from(data, pos)
    end = pos + 12 + length
    if length > _MAX_CHUNK_LENGTH:
        raise ContainerError(f"{_name(chunk_type)} chunk at offset {pos} has invalid length")
    if end > size:
        raise ContainerError(
            f"truncated: {_name(chunk_type)} chunk at offset {pos} runs past the end of data"
        )
    if not chunk_type.isalpha():
        raise ContainerError(f"invalid chunk type {chunk_type!r} at offset {pos}")
    return length, chunk_type, end


def _crc_defect(chunk_type: bytes, pos: int) -> str:
    """The defect a bad CRC is in an ancillary chunk; in a critical one it is an error."""
    message = f"bad CRC in {_name(chunk_type)} chunk at offset {pos}"
    if not chunk_type[0] & 0x20:
        raise ContainerError(message)
    # An ancillary chunk (lower-case first letter): libpng warns and goes
    # on (png_crc_finish, PNG_FLAG_CRC_ANCILLARY_USE), so do we.
    return message


def _xmp_packet(data: bytes, chunk: _Chunk) -> bytes:
    """Return the text of an ``iTXt`` XMP chunk, inflating it if compressed.

    iTXt (PNG 11.3.3.4): keyword, NUL, compression flag (1), compression method
    (1), language tag, NUL, translated keyword, NUL, text.
    """
    body = data[chunk.data_start : chunk.data_end]
    pos = len(XMP_KEYWORD) + 1
    if len(body) < pos + 2:
        raise ContainerError(f"iTXt chunk at offset {chunk.offset} is too short")
    flag, method = body[pos], body[pos + 1]
    language_end = body.find(b"\x00", pos + 2)
    translated_end = body.find(b"\x00", language_end + 1) if language_end >= 0 else -1
    if translated_end < 0:
        raise ContainerError(f"iTXt chunk at offset {chunk.offset} lacks its NUL separators")
    text = body[translated_end + 1 :]
    if flag == 0:
        return text
    if flag != 1 or method != 0:
        raise ContainerError(
            f"iTXt chunk at offset {chunk.offset} has unknown compression {flag}/{method}"
        )
    inflater = zlib.decompressobj()
    try:
        packet = inflater.decompress(text, MAX_XMP_INFLATED_BYTES)
    except zlib.error as exc:
        raise ContainerError(f"iTXt chunk at offset {chunk.offset} does not inflate") from exc
    if inflater.unconsumed_tail:
        raise ContainerError(
            f"iTXt chunk at offset {chunk.offset} inflates past {MAX_XMP_INFLATED_BYTES} bytes"
        )
    if not inflater.eof:
        raise ContainerError(f"iTXt chunk at offset {chunk.offset} is truncated zlib data")
    return packet


def _blocks(layout: _Layout) -> tuple[MetadataBlock, ...]:
    return tuple(
        MetadataBlock(c.kind, c.offset, c.end - c.offset, c.name)
        for c in layout.chunks
        if c.kind is not None
    )


def essence_ranges(data: bytes) -> tuple[Range, ...]:
    """Return the merged byte ranges of coded image data (see the module docstring).

    Args:
        data: A whole PNG file.

    Returns:
        Sorted, disjoint ``(start, end)`` ranges.

    Raises:
        ContainerError: If the chunk structure is malformed or truncated, or a
            CRC outside IDAT/fdAT is wrong.
    """
    return _parse(data).essence


def inspect(
    data: bytes, *, check_image_crc: bool = False, check_image_data: bool = False
) -> ContainerInfo:
    """Read the layout, metadata and essence ranges of a PNG without decoding it.

    Args:
        data: A whole PNG file.
        check_image_crc: Also check the CRCs of IDAT and fdAT chunks.
        check_image_data: Also refuse IDAT data too short for the image IHDR
            claims, as :func:`check_image_data_size` does, from the same walk
            over the chunks (signing checks both; a second walk cost about as
            much as the first: 0.35 ms for a 3.3 MB PNG in 8 KiB IDAT chunks).

    Returns:
        The container summary.

    Raises:
        ContainerError: If the structure is malformed or truncated, a CRC is
            wrong, the file holds several XMP packets, or (``check_image_data``)
            the image data is certainly truncated or corrupt.
    """
    layout = _parse(data, check_image_crc=check_image_crc)
    if check_image_data:
        _check_image_data(data, layout)
    xmp_chunks = [c for c in layout.chunks if c.kind is BlockKind.XMP]
    if len(xmp_chunks) > 1:
        offsets = ", ".join(str(c.offset) for c in xmp_chunks)
        raise ContainerError(f"several XMP packets (iTXt chunks at offsets {offsets})")
    xmp = _xmp_packet(data, xmp_chunks[0]) if xmp_chunks else None
    exif = None
    for chunk in layout.chunks:
        if chunk.kind is BlockKind.EXIF:
            payload = data[chunk.data_start : chunk.data_end]
            # Some writers keep the JPEG "Exif\0\0" header in eXIf; accept it.
            if payload.startswith(b"Exif\x00\x00"):
                payload = payload[6:]
            exif = payload if has_tiff_header(payload) else None
            break
    return ContainerInfo(
        format=ImageFormat.PNG,
        width=layout.width,
        height=layout.height,
        blocks=_blocks(layout),
        xmp=xmp,
        extended_xmp=None,
        exif=exif,
        essence_ranges=layout.essence,
        image_end=layout.end,
        defects=layout.defects,
    )


def _chunk(chunk_type: bytes, payload: bytes) -> bytes:
    if len(payload) > _MAX_CHUNK_LENGTH:
        raise ContainerError(
            f"{chunk_type.decode()!r} payload of {len(payload)} bytes is too large"
        )
    crc = zlib.crc32(payload, zlib.crc32(chunk_type))
    return len(payload).to_bytes(4, "big") + chunk_type + payload + crc.to_bytes(4, "big")


def _replace(data: bytes, layout: _Layout, kind: BlockKind, new: bytes) -> bytes:
    removed = [(c.offset, c.end) for c in layout.chunks if c.kind is kind]
    return splice(data, removed, [(_IHDR_END, new)])


def set_xmp(data: bytes, packet: bytes) -> bytes:
    """Insert or replace the XMP packet as one uncompressed ``iTXt`` chunk.

    Every existing XMP ``iTXt`` chunk is removed; the new one (keyword
    ``XML:com.adobe.xmp``, compression flag 0, empty language tag and translated
    keyword) goes right after IHDR, before PLTE and IDAT.

    Args:
        data: A whole PNG file.
        packet: The XMP packet.

    Returns:
        The new file.

    Raises:
        ContainerError: If ``data`` is malformed, or the packet is too large.
    """
    layout = _parse(data)
    new = _chunk(b"iTXt", XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + packet)
    return _replace(data, layout, BlockKind.XMP, new)


def set_exif(data: bytes, tiff: bytes) -> bytes:
    r"""Insert or replace the ``eXIf`` chunk.

    Existing ``eXIf`` chunks are removed; the new one goes right after IHDR,
    which is before IDAT as PNG 3rd edition requires.

    Args:
        data: A whole PNG file.
        tiff: Raw TIFF bytes (``II*\0`` or ``MM\0*``).

    Returns:
        The new file.

    Raises:
        ContainerError: If ``data`` is malformed, or ``tiff`` is not TIFF.
    """
    layout = _parse(data)
    if not has_tiff_header(tiff):
        raise ContainerError("EXIF payload does not start with a TIFF header (II*\\0 or MM\\0*)")
    return _replace(data, layout, BlockKind.EXIF, _chunk(b"eXIf", tiff))


def embed(data: bytes, blocks: Sequence[MetadataBlock], *, xmp: bytes, exif: bytes | None) -> bytes:
    r"""Replace XMP (and EXIF when given) in one splice, from an earlier ``inspect``.

    The same bytes as :func:`set_xmp` followed by :func:`set_exif`, without
    parsing the chunks again or copying the file twice (a photo PNG has
    hundreds of IDAT chunks). Added by the importpath work.

    Args:
        data: A whole PNG file.
        blocks: ``inspect(data).blocks`` for these very bytes.
        xmp: The XMP packet.
        exif: Raw TIFF bytes replacing every ``eXIf`` chunk; None keeps them.

    Returns:
        The new file.

    Raises:
        ContainerError: If a payload is too large or ``exif`` is not TIFF.
    """
    return splice(data, *embed_edits(blocks, xmp=xmp, exif=exif))


def embed_edits(
    blocks: Sequence[MetadataBlock], *, xmp: bytes, exif: bytes | None
) -> tuple[list[Range], list[Insertion]]:
    """What :func:`embed` splices: the chunks it deletes and the chunks it inserts after IHDR.

    For a caller that copies the file once with more in it (signing adds the
    C2PA store); the same checks as :func:`embed`.
    """
    drop = {BlockKind.XMP}
    new = [_chunk(b"iTXt", XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + xmp)]
    if exif is not None:
        if not has_tiff_header(exif):
            raise ContainerError(
                "EXIF payload does not start with a TIFF header (II*\\0 or MM\\0*)"
            )
        drop.add(BlockKind.EXIF)
        new.insert(0, _chunk(b"eXIf", exif))
    removed = [(b.offset, b.end) for b in blocks if b.kind in drop]
    return removed, [(_IHDR_END, chunk) for chunk in new]


def strip(data: bytes, kinds: frozenset[BlockKind]) -> bytes:
    """Remove every chunk of the given kinds; other chunks keep their order.

    Args:
        data: A whole PNG file.
        kinds: The kinds to remove.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        ContainerError: If ``data`` is malformed.
    """
    layout = _parse(data)
    removed = [(c.offset, c.end) for c in layout.chunks if c.kind in kinds]
    return splice(data, removed, [])


def drop_damaged_ancillary(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """Remove ancillary chunks whose CRC is wrong (a damaged ``tEXt`` and the like).

    PNG 5.4 lets a decoder skip an ancillary chunk it cannot trust; signing does
    the same rather than refusing the image, since it rewrites metadata anyway.
    Critical chunks (IHDR, PLTE, IDAT, IEND) are never touched: a bad CRC there
    still makes :func:`inspect` refuse the file.

    Args:
        data: A whole PNG file.

    Returns:
        The file without the damaged chunks, and a note per chunk removed (the
        same bytes and no notes when none is damaged or the walk fails).
    """
    removed: list[Range] = []
    notes: list[str] = []
    pos = len(SIGNATURE)
    size = len(data)
    view = memoryview(data)
    for _ in range(MAX_CHUNKS):
        if not data.startswith(SIGNATURE) or pos + 12 > size:
            break
        length, chunk_type = _CHUNK_HEADER.unpack_from(data, pos)
        end = pos + 12 + length
        if length > _MAX_CHUNK_LENGTH or end > size or chunk_type == b"IEND":
            break
        ancillary = bool(chunk_type[0] & 0x20)
        if ancillary and zlib.crc32(view[pos + 4 : end - 4]) != int.from_bytes(
            view[end - 4 : end], "big"
        ):
            removed.append((pos, end))
            notes.append(f"dropped the {_name(chunk_type)} chunk at offset {pos} (bad CRC)")
        pos = end
    if not removed:
        return data, ()
    return splice(data, removed, []), tuple(notes)


# Deflate's best ratio is about 1032:1 (RFC 1951: a 258-byte match costs at least
# two bits); 1100 leaves a margin for the zlib header and odd encoders.
_MAX_DEFLATE_RATIO = 1100
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def check_image_data_size(data: bytes) -> None:
    """Refuse a PNG whose IDAT is too small to hold the image its IHDR claims.

    The filtered scanlines of a W x H image are at least H x (1 + ceil(W x bits / 8))
    bytes (more when interlaced), and deflate cannot shrink anything more than
    about 1032 times: a 100000 x 100000 IHDR over 100 bytes of IDAT cannot decode
    at all. Checked from the chunk lengths, without inflating anything.

    Args:
        data: A whole PNG file (:func:`inspect` accepts it).

    Raises:
        ContainerError: The image data is certainly truncated or corrupt.
    """
    _check_image_data(data, _parse(data))


def _check_image_data(data: bytes, layout: _Layout) -> None:
    """:func:`check_image_data_size` on a layout already walked."""
    ihdr = len(SIGNATURE) + 8
    bit_depth, color_type = data[ihdr + 8], data[ihdr + 9]
    bits = bit_depth * _CHANNELS.get(color_type, 1)
    row = 1 + (layout.width * bits + 7) // 8
    if layout.image_data * _MAX_DEFLATE_RATIO < layout.height * row:
        raise ContainerError(
            f"IDAT holds {layout.image_data} bytes, too few for the {layout.width} x "
            f"{layout.height} image IHDR claims: the image data is truncated or corrupt"
        )
