"""Types and byte helpers shared by the container parsers.

This module owns the values every container parser returns (:class:`ImageFormat`,
:class:`BlockKind`, :class:`MetadataBlock`, :class:`ContainerInfo`) and the small
helpers they share to read and splice bytes. Like the parsers it does no file I/O,
decodes no pixels and never imports c2pa.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from provenance.errors import ContainerError

__all__ = [
    "BlockKind",
    "ContainerInfo",
    "ImageFormat",
    "MetadataBlock",
    "Range",
    "Staged",
    "has_tiff_header",
    "merge_ranges",
    "splice",
    "splice_pieces",
]

Range = tuple[int, int]
"""A half-open byte range ``(start, end)`` into the input."""

_TIFF_HEADERS = (b"II*\x00", b"MM\x00*")


class ImageFormat(enum.Enum):
    """The image formats provenance reads and writes."""

    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    TIFF = "tiff"
    DNG = "dng"
    """A TIFF with ``DNGVersion`` in IFD0 (Adobe Digital Negative)."""
    HEIC = "heic"
    """HEIF with HEVC-coded images (``ftyp`` brand ``heic``, ``heix`` ...)."""
    HEIF = "heif"
    """Other HEIF (``ftyp`` brand ``mif1``/``msf1`` only)."""
    AVIF = "avif"
    """HEIF with AV1-coded images (``ftyp`` brand ``avif``/``avis``)."""
    GIF = "gif"

    @property
    def mime(self) -> str:
        """The media type c2pa expects, e.g. ``"image/jpeg"``, ``"image/x-adobe-dng"``."""
        return "image/x-adobe-dng" if self is ImageFormat.DNG else f"image/{self.value}"

    @property
    def extension(self) -> str:
        """The usual file extension without the dot, e.g. ``"jpg"``, ``"tif"``."""
        return _EXTENSIONS.get(self, self.value)

    @property
    def carries_exif_block(self) -> bool:
        """Whether EXIF is a separate block :func:`provenance._core.containers.set_exif` inserts.

        JPEG, PNG and WebP. A TIFF's or DNG's EXIF is its own IFDs; HEIF's is an
        item, written with the XMP by :func:`provenance._core.containers.embed`.
        """
        return self in (ImageFormat.JPEG, ImageFormat.PNG, ImageFormat.WEBP)

    @property
    def writes_exif(self) -> bool:
        """Whether signing writes minimal EXIF (and removes personal EXIF) in this format.

        JPEG, PNG and WebP get an EXIF block, HEIC, HEIF and AVIF an ``Exif``
        item; TIFF and DNG get the same fields as IFD0 tags
        (:func:`provenance._core.containers.tiff.embed`). GIF does not (it has no EXIF):
        its XMP carries the disclosure.
        """
        return self is not ImageFormat.GIF


_EXTENSIONS = {ImageFormat.JPEG: "jpg", ImageFormat.TIFF: "tif"}


class BlockKind(enum.Enum):
    """What a metadata segment or chunk holds."""

    XMP = "xmp"
    """The standard XMP packet (JPEG APP1, PNG iTXt ``XML:com.adobe.xmp``, WebP ``XMP ``)."""
    EXTENDED_XMP = "extended_xmp"
    """A JPEG APP1 segment carrying a chunk of extended XMP (XMP spec part 3)."""
    EXIF = "exif"
    """EXIF/TIFF metadata (JPEG APP1 ``Exif``, PNG ``eXIf``, WebP ``EXIF``)."""
    C2PA = "c2pa"
    """A C2PA manifest store (JPEG APP11 JUMBF, PNG ``caBX``, WebP ``C2PA``)."""
    ICC = "icc"
    """An ICC colour profile (JPEG APP2 ``ICC_PROFILE``, PNG ``iCCP``, WebP ``ICCP``)."""
    COMMENT = "comment"
    """Free text (JPEG COM, PNG ``tEXt``/``zTXt``/other ``iTXt``)."""
    OTHER_METADATA = "other_metadata"
    """Any other segment or chunk that is not coded image data."""


@dataclass(frozen=True, slots=True)
class MetadataBlock:
    """One metadata segment (JPEG) or chunk (PNG, WebP) of a file.

    Attributes:
        kind: What the block holds.
        offset: Offset of the whole block: the ``0xFF`` of a JPEG marker, the
            length field of a PNG chunk, the FourCC of a WebP chunk.
        length: Length of the whole block: marker and length field, header and
            CRC, or header and padding byte.
        name: The marker or chunk type as written, e.g. ``"APP1"``, ``"iTXt"``,
            ``"XMP "``; for messages and reports.
    """

    kind: BlockKind
    offset: int
    length: int
    name: str

    @property
    def end(self) -> int:
        """Offset just past the block."""
        return self.offset + self.length


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    r"""What :func:`provenance._core.containers.inspect` found in a file, without decoding it.

    Attributes:
        format: The container format.
        width: Image width in pixels, from the frame header (JPEG SOFn, PNG IHDR,
            WebP VP8X canvas or VP8/VP8L bitstream header).
        height: Image height in pixels, from the same header.
        blocks: Every metadata block, in file order.
        xmp: The standard XMP packet, or ``None``.
        extended_xmp: The reassembled JPEG extended XMP, when present and complete.
        exif: Raw TIFF bytes (starting ``II*\0`` or ``MM\0*``), without the
            JPEG ``Exif\0\0`` header, or ``None``.
        essence_ranges: Sorted, disjoint, merged ranges of coded image data; the
            essence hash covers exactly these bytes.
        image_end: Offset just past the image's last structure (JPEG EOI, PNG
            IEND, WebP RIFF data); bytes after it are trailing data. ``None``
            for the formats that do not say (TIFF, BMFF, GIF).
        defects: Defects the parser tolerated, one message each (e.g. a bad CRC
            on an ancillary PNG chunk, which decoders ignore too).
    """

    format: ImageFormat
    width: int
    height: int
    blocks: tuple[MetadataBlock, ...]
    xmp: bytes | None
    extended_xmp: bytes | None
    exif: bytes | None
    essence_ranges: tuple[Range, ...]
    image_end: int | None = None
    defects: tuple[str, ...] = ()

    @property
    def has_c2pa(self) -> bool:
        """Whether the file holds a C2PA manifest store block."""
        return any(block.kind is BlockKind.C2PA for block in self.blocks)

    def blocks_of(self, kind: BlockKind) -> tuple[MetadataBlock, ...]:
        """Return the blocks of one kind, in file order.

        Args:
            kind: The kind to select.

        Returns:
            The matching blocks.
        """
        return tuple(block for block in self.blocks if block.kind is kind)


def merge_ranges(ranges: Iterable[Range]) -> tuple[Range, ...]:
    """Merge touching ranges, given in increasing order, and drop empty ones.

    Hashing the concatenation of the merged ranges gives the same digest as
    hashing the input ranges; fewer ranges mean fewer ``update`` calls.

    Args:
        ranges: Half-open ranges in increasing, non-overlapping order.

    Returns:
        The merged ranges.
    """
    merged: list[Range] = []
    for start, end in ranges:
        if end <= start:
            continue
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


Insertion = tuple[int, bytes]
"""``(offset, payload)``: bytes to insert at an offset of the input."""


def splice(data: bytes, deletions: Sequence[Range], insertions: Sequence[Insertion]) -> bytes:
    """Delete ranges from ``data`` and insert bytes at offsets, in one copy.

    Args:
        data: The original bytes.
        deletions: Disjoint half-open ranges to remove.
        insertions: ``(offset, payload)`` pairs; an offset must not fall strictly
            inside a deleted range. Payloads at the same offset keep their order
            and go before a deletion starting there.

    Returns:
        The new bytes.

    Raises:
        ContainerError: If the edits overlap (a bug in the caller's layout).
    """
    return b"".join(splice_pieces(data, deletions, insertions))


def splice_pieces(
    data: bytes, deletions: Sequence[Range], insertions: Sequence[Insertion]
) -> list[memoryview]:
    """:func:`splice` before its copy: the new bytes as views, in order."""
    # (offset, 0 = insert / 1 = delete, sequence number, payload or end)
    ops: list[tuple[int, int, int, bytes | int]] = [
        (offset, 0, index, payload) for index, (offset, payload) in enumerate(insertions)
    ]
    ops.extend((start, 1, index, end) for index, (start, end) in enumerate(deletions))
    ops.sort(key=lambda op: (op[0], op[1], op[2]))
    view = memoryview(data)
    pieces: list[memoryview] = []
    cursor = 0
    for offset, _, _, value in ops:
        if offset < cursor:
            raise ContainerError(f"overlapping edits at offset {offset}")
        pieces.append(view[cursor:offset])
        if isinstance(value, bytes):
            pieces.append(memoryview(value))
            cursor = offset
        else:
            cursor = value
    pieces.append(view[cursor:])
    return pieces


def spliced_offset(offset: int, deletions: Sequence[Range], insertions: Sequence[Insertion]) -> int:
    """Where ``offset`` of the input is in :func:`splice`'s output.

    Payloads inserted at ``offset`` itself come after it. ``offset`` must not fall
    strictly inside a deleted range.
    """
    moved = offset + sum(len(payload) for at, payload in insertions if at < offset)
    for start, end in deletions:
        if start < offset < end:
            raise ContainerError(f"offset {offset} is inside the deleted range {start}-{end}")
        if end <= offset:
            moved -= end - start
    return moved


@dataclass(frozen=True, slots=True)
class Staged:
    """A file about to be signed: spliced, but not yet copied.

    Signing hashes the pieces, and copies them once with the C2PA manifest
    store in its place (issue 20: one copy of the file instead of two).

    Attributes:
        pieces: The file's bytes in order: views of the input and of new payloads
            (or the whole file, as one piece).
        slot: Where a new C2PA manifest store goes in the file (what
            :func:`provenance._core.containers.c2pa_slot` says of the joined
            file), or None (other formats, or a store is there already).
    """

    pieces: tuple[bytes | memoryview, ...]
    slot: int | None

    def join(self, store: bytes = b"") -> bytes:
        """The file, with ``store`` inserted at :attr:`slot` (when given)."""
        if not store:
            whole = self.pieces[0] if len(self.pieces) == 1 else None
            return whole if isinstance(whole, bytes) else b"".join(self.pieces)
        if self.slot is None:
            raise ContainerError("no place for a C2PA manifest store in this file")
        out: list[memoryview | bytes] = []
        at = 0
        for index, piece in enumerate(self.pieces):
            if at <= self.slot <= at + len(piece):
                cut, view = self.slot - at, memoryview(piece)
                out.extend((view[:cut], store, view[cut:], *self.pieces[index + 1 :]))
                return b"".join(out)
            out.append(piece)
            at += len(piece)
        raise ContainerError(f"C2PA slot {self.slot} is past the end of the file ({at} bytes)")


def has_tiff_header(payload: bytes) -> bool:
    r"""Return whether ``payload`` starts with a TIFF header (``II*\0`` or ``MM\0*``)."""
    return payload[:4] in _TIFF_HEADERS
