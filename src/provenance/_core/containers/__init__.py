"""Byte-level containers: find, insert and strip metadata in every image format c2pa reads.

This package owns the byte layout of the formats provenance handles: JPEG, PNG,
WebP, TIFF and DNG (:mod:`~provenance._core.containers.tiff`), HEIF, HEIC and AVIF
(:mod:`~provenance._core.containers.bmff`) and GIF (:mod:`~provenance._core.containers.gif`). It
reads segments and chunks without decoding pixels, inserts XMP and EXIF as bytes
without re-encoding (decision 3 of DESIGN.md), and says which bytes are coded
image data (the essence ranges of decision 5). The functions here detect the
format and dispatch to the module of that format, which may also offer
format-specific options (JPEG extended XMP, PNG image CRC checks).

Everything here takes bytes and returns values: no file I/O, no c2pa, no
Pillow. Parsers never trust a length field, run in time linear in the input,
and raise nothing but :class:`~provenance.errors.ProvenanceError` subclasses:
:class:`~provenance.errors.UnsupportedFormat` for unknown formats and
:class:`~provenance.errors.ContainerError` for malformed structure, with a
message naming the offset. The caller attaches the path with ``err.with_path``.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType

from provenance._core import exif, xmp
from provenance._core.containers import bmff, gif, jpeg, png, tiff, webp
from provenance._core.containers._types import (
    BlockKind,
    ContainerInfo,
    ImageFormat,
    MetadataBlock,
    Range,
    Staged,
    splice_pieces,
    spliced_offset,
)
from provenance.errors import ContainerError, ProvenanceError, UnsupportedFormat

__all__ = [
    "SUPPORTED",
    "BlockKind",
    "ContainerInfo",
    "ImageFormat",
    "MetadataBlock",
    "Range",
    "Staged",
    "detect_format",
    "embed",
    "essence_ranges",
    "inspect",
    "prepare_for_signing",
    "set_exif",
    "set_xmp",
    "stage",
    "strip",
]


SUPPORTED = "JPEG, PNG, WebP, TIFF, DNG, HEIC, HEIF, AVIF or GIF"
"""The formats this package reads, for messages."""

IMAGE_SUFFIXES = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".png",
        ".webp",
        ".tif",
        ".tiff",
        ".dng",
        ".heic",
        ".heif",
        ".hif",
        ".avif",
        ".gif",
    }
)
"""File name endings of those formats: what a folder walk picks up (the bytes decide the format)."""

# ImageDescription, Software, DateTime: what exif.build_minimal_exif writes to IFD0.
_MINIMAL_TAGS = frozenset({270, 305, 306})

_MODULES: dict[ImageFormat, ModuleType] = {
    ImageFormat.JPEG: jpeg,
    ImageFormat.PNG: png,
    ImageFormat.WEBP: webp,
    ImageFormat.TIFF: tiff,
    ImageFormat.DNG: tiff,
    ImageFormat.HEIC: bmff,
    ImageFormat.HEIF: bmff,
    ImageFormat.AVIF: bmff,
    ImageFormat.GIF: gif,
}


def detect_format(data: bytes) -> ImageFormat:
    """Tell the format of an image from its magic bytes.

    Args:
        data: The file's bytes (the first 12 are enough, except for DNG, told
            from TIFF by ``DNGVersion`` in IFD0, and HEIF, by its ``ftyp`` brands).

    Returns:
        The format.

    Raises:
        UnsupportedFormat: If ``data`` is empty or is none of :data:`SUPPORTED`.
    """
    if not data:
        raise UnsupportedFormat(f"empty input: not a {SUPPORTED}")
    if data[:2] == b"\xff\xd8":
        return ImageFormat.JPEG
    if data[:8] == png.SIGNATURE:
        return ImageFormat.PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageFormat.WEBP
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return ImageFormat.DNG if tiff.is_dng(data) else ImageFormat.TIFF
    if data[:4] in (b"II+\x00", b"MM\x00+"):
        raise UnsupportedFormat("BigTIFF (64-bit offsets) is not supported")
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return ImageFormat.GIF
    heif = bmff.brand_format(data)
    if heif is not None:
        return heif
    if data[4:8] == b"ftyp":
        brand = bytes(data[8:12]).decode("latin-1")
        raise UnsupportedFormat(f"ISO-BMFF brand {brand!r} is not a HEIF image ({SUPPORTED})")
    raise UnsupportedFormat(f"not a {SUPPORTED} (starts with {bytes(data[:12]).hex()})")


def c2pa_mime(data: bytes) -> str | None:
    """The media type to hand c2pa for ``data``, also for formats this package cannot parse.

    c2pa reads a few layouts the parsers here refuse (BigTIFF); for those only the
    C2PA manifest can be checked, not our XMP.

    Args:
        data: The file's bytes.

    Returns:
        The media type, or None when c2pa would not read it either.
    """
    try:
        return detect_format(data).mime
    except UnsupportedFormat:
        pass
    if data[:4] in (b"II+\x00", b"MM\x00+"):
        return ImageFormat.TIFF.mime
    return None


def _module(data: bytes) -> ModuleType:
    return _MODULES[detect_format(data)]


def inspect(data: bytes, *, essence: bool = True) -> ContainerInfo:
    """Read the layout, metadata and essence ranges of an image without decoding it.

    Args:
        data: A whole image file of a format in :data:`SUPPORTED`.
        essence: False lets a JPEG stop at its first scan (metadata before the
            image data only; ``essence_ranges`` empty): for ``verify`` of a file
            c2pa has just bound byte for byte. Other formats are read whole.

    Returns:
        The container summary.

    Raises:
        UnsupportedFormat: If the format is not recognised.
        ContainerError: If the structure is malformed or truncated, or the file
            holds several XMP packets.
    """
    module = _module(data)
    if module is jpeg:
        return jpeg.inspect(data, essence=essence)
    info: ContainerInfo = module.inspect(data)
    return info


def essence_ranges(data: bytes) -> tuple[Range, ...]:
    """Return the byte ranges of coded image data, the input of the essence hash.

    Cheaper than :func:`inspect`: it walks the structure but extracts nothing.

    Args:
        data: A whole image file of a format in :data:`SUPPORTED`.

    Returns:
        ``(start, end)`` ranges, hashed in this order: sorted and disjoint for
        JPEG, PNG, WebP and GIF; in image order for TIFF/DNG (strips) and HEIF
        (items), which a rewriter may move.

    Raises:
        UnsupportedFormat: If the format is not recognised.
        ContainerError: If the structure is malformed or truncated.
    """
    ranges: tuple[Range, ...] = _module(data).essence_ranges(data)
    return ranges


def set_xmp(data: bytes, packet: bytes) -> bytes:
    """Insert or replace the XMP packet, removing any existing one first.

    JPEG: one APP1 segment after SOI and any opening APP0/APP1 Exif segments
    (use :func:`provenance._core.containers.jpeg.set_xmp` for extended XMP). PNG: one
    uncompressed ``iTXt`` ``XML:com.adobe.xmp`` chunk right after IHDR. WebP: an
    ``XMP `` chunk at the end, with the VP8X flag set (a simple file becomes VP8X).
    TIFF/DNG: tag 700 in a new IFD0 appended to the file. HEIF/AVIF: a ``mime``
    item (``application/rdf+xml``) whose data is an ``mdat`` at the end. GIF: the
    ``XMP DataXMP`` application extension before the trailer.

    Args:
        data: A whole image file of a format in :data:`SUPPORTED`.
        packet: The serialized XMP packet.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        UnsupportedFormat: If the format is not recognised.
        ContainerError: If the structure is malformed, or the packet does not fit.
    """
    out: bytes = _module(data).set_xmp(data, packet)
    return out


def set_exif(data: bytes, tiff: bytes) -> bytes:
    r"""Insert or replace EXIF, given as raw TIFF bytes.

    JPEG: APP1 ``Exif\0\0`` right after SOI and any APP0. PNG: ``eXIf`` right
    after IHDR. WebP: ``EXIF`` after the image data, before ``XMP ``, with the
    VP8X flag set.

    Args:
        data: A whole JPEG, PNG or WebP file (the formats that carry EXIF as a block).
        tiff: Raw TIFF bytes starting ``II*\0`` or ``MM\0*``.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        UnsupportedFormat: If the format is not recognised.
        ContainerError: If the structure is malformed, or ``tiff`` is not TIFF
            or does not fit.
    """
    image_format = detect_format(data)
    if not image_format.carries_exif_block:
        raise ContainerError(f"provenance does not write EXIF into {image_format.name}")
    out: bytes = _MODULES[image_format].set_exif(data, tiff)
    return out


def strip(data: bytes, kinds: frozenset[BlockKind]) -> bytes:
    """Remove every metadata block of the given kinds (WebP flags follow).

    Simulates what CDNs and ``exiftool -all=`` do, or a tool that drops the C2PA
    box but keeps XMP (``frozenset({BlockKind.C2PA})``).

    Args:
        data: A whole image file of a format in :data:`SUPPORTED`.
        kinds: The kinds to remove.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        UnsupportedFormat: If the format is not recognised.
        ContainerError: If the structure is malformed.
    """
    out: bytes = _module(data).strip(data, kinds)
    return out


def embed(data: bytes, info: ContainerInfo, *, xmp: bytes, exif: bytes | None) -> bytes:
    r"""Replace the XMP packet and (when given) the EXIF in one copy of the file.

    The same result as :func:`set_xmp` then :func:`set_exif`, but from the layout
    :func:`inspect` already found: a JPEG is not parsed again (its entropy-coded
    data is the expensive part of parsing) and the file is copied once.

    Args:
        data: A whole JPEG, PNG or WebP file.
        info: ``inspect(data)``, for these very bytes.
        xmp: The new XMP packet (any XMP and JPEG extended XMP already there go).
        exif: New raw TIFF bytes (``II*\0`` or ``MM\0*``) replacing any EXIF;
            None keeps the EXIF already there.

    TIFF and DNG: ``exif``'s ImageDescription, Software and DateTime become IFD0
    tags, and personal tags and the GPS IFD go (:func:`tiff.embed
    <provenance._core.containers.tiff.embed>`). HEIC, HEIF and AVIF: the XMP and the
    ``Exif`` item in one rewrite (:func:`bmff.embed
    <provenance._core.containers.bmff.embed>`). GIF takes no EXIF.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        ContainerError: If the structure is malformed, or a payload does not fit.
    """
    if info.format is ImageFormat.JPEG:
        return jpeg.embed(data, info.blocks, xmp=xmp, exif=exif)
    if info.format in (ImageFormat.TIFF, ImageFormat.DNG) and exif is not None:
        # The file's EXIF is its own IFDs: the minimal fields become IFD0 tags.
        return tiff.embed(data, xmp, tags=tiff.ascii_tags(exif, _MINIMAL_TAGS))
    if info.format in (ImageFormat.HEIC, ImageFormat.HEIF, ImageFormat.AVIF):
        return bmff.embed(data, xmp, exif)
    if not info.format.carries_exif_block and exif is not None:
        raise ContainerError(f"provenance does not write EXIF into {info.format.name}")
    if info.format is ImageFormat.PNG:
        return png.embed(data, info.blocks, xmp=xmp, exif=exif)
    staged = set_xmp(data, xmp)
    return staged if exif is None else set_exif(staged, exif)


_XMP_KINDS = frozenset({BlockKind.XMP, BlockKind.EXTENDED_XMP})

# c2pa-rs 0.91 (png_io.rs, write_cai) puts the caBX chunk right after IHDR, which
# every PNG opens with: signature (8), then length, type, 13 bytes of data and CRC.
_PNG_C2PA_SLOT = len(png.SIGNATURE) + 12 + 13


def c2pa_slot(data: bytes, info: ContainerInfo) -> int | None:
    """Where a new C2PA manifest store goes in ``data``: the offset c2pa-rs would choose.

    For data-hashed signing (:func:`provenance._io.c2pa.sign_c2pa`), which places
    the store itself instead of letting c2pa rewrite the file: after the last APP0
    of a JPEG (else after SOI), after the IHDR of a PNG.

    Args:
        data: A whole file, as :func:`embed` made it from the file ``info`` describes.
        info: ``inspect`` of ``data`` or of the file ``data`` was embedded from.

    Returns:
        The offset; None for the other formats, and for a file that holds a
        C2PA store already (c2pa then replaces it in place itself).

    Raises:
        ContainerError: If a JPEG is malformed before its first scan.
    """
    if info.has_c2pa:
        return None
    if info.format is ImageFormat.JPEG:
        return jpeg.c2pa_slot(data, info.blocks)
    if info.format is ImageFormat.PNG:
        return _PNG_C2PA_SLOT
    return None


def stage(data: bytes, info: ContainerInfo, *, xmp: bytes, exif: bytes | None) -> Staged:
    """:func:`embed`, not yet copied, and where a new C2PA store goes in its result.

    Signing copies the file once, with the store in it (``Staged.join``), instead of
    embedding into one copy and inserting the store into a second. JPEG and PNG are
    staged as views of ``data``; the other formats are embedded (one piece, no slot).

    Args:
        data: A whole image file.
        info: ``inspect(data)``.
        xmp: The new XMP packet.
        exif: New raw TIFF bytes, or None; see :func:`embed`.

    Returns:
        The pieces of ``embed(data, info, xmp=xmp, exif=exif)`` and its
        :func:`c2pa_slot`, found from ``data``'s layout (the embedding moves no APP0
        segment, no IHDR and no store).

    Raises:
        ContainerError: As :func:`embed`, and :func:`c2pa_slot` for a JPEG.
    """
    if info.format is ImageFormat.JPEG:
        deletions, insertions = jpeg.embed_edits(info.blocks, xmp=xmp, exif=exif)
        slot = c2pa_slot(data, info)
    elif info.format is ImageFormat.PNG:
        deletions, insertions = png.embed_edits(info.blocks, xmp=xmp, exif=exif)
        slot = c2pa_slot(data, info)
    else:
        return Staged((embed(data, info, xmp=xmp, exif=exif),), None)
    pieces = tuple(splice_pieces(data, deletions, insertions))
    moved = None if slot is None else spliced_offset(slot, deletions, insertions)
    return Staged(pieces, moved)


def prepare_for_signing(data: bytes) -> tuple[bytes, ContainerInfo, tuple[str, ...]]:
    """Inspect ``data`` for signing, dropping metadata signing replaces but cannot read.

    Signing writes a new XMP packet and new EXIF, so an existing block it cannot
    read must not make it refuse the image (real files carry them: Latin-1 XMP,
    two standard XMP segments, EXIF whose IFD offsets point outside the block, a
    ``tEXt`` chunk with a bad CRC). Such a block is removed and a note says so;
    the coded image data is never touched, so the essence hash is unchanged.
    Readable XMP and EXIF stay for :func:`provenance._core.xmp.build_packet` and
    :func:`provenance._core.exif.merge_minimal_exif` to merge.

    Args:
        data: A whole image file.

    Returns:
        The bytes to embed into (``data`` itself when nothing was dropped), their
        :func:`inspect` summary, and one note per dropped block.

    Raises:
        UnsupportedFormat: Not a format of :data:`SUPPORTED`.
        ContainerError: The image structure itself is malformed, or (PNG) its
            image data is too short for the size its header claims.
    """
    notes: list[str] = []
    # 1. The layout, dropping what keeps it from being read. 2. Pixels that can never
    #    decode are not an image to sign (red-team issue 17): a PNG's IDAT size is
    #    checked from the walk step 1 made, walked again only after a fallback.
    checked = True
    try:
        info = _inspect_to_sign(data)
    except ContainerError as first:
        data, info = _readable(data, first, notes)
        checked = False
    if info.format is ImageFormat.PNG and info.defects:
        # Ancillary chunks with a bad CRC read as defects (verify tolerates them, as
        # libpng does); a file we sign must not carry them on.
        data, dropped = png.drop_damaged_ancillary(data)
        notes.extend(dropped)
        info = _inspect_to_sign(data)
        checked = True
    if info.format is ImageFormat.PNG and not checked:
        png.check_image_data_size(data)
    # 3. An XMP packet that cannot be merged, and EXIF that cannot be sanitised.
    data, info = _drop_unmergeable(data, info, notes)
    return data, info, tuple(notes)


def _inspect_to_sign(data: bytes) -> ContainerInfo:
    """:func:`inspect`; for a PNG with step 2 of :func:`prepare_for_signing` in the same walk."""
    if data[:8] == png.SIGNATURE:
        return png.inspect(data, check_image_data=True)
    return inspect(data)


def _readable(data: bytes, first: ContainerError, notes: list[str]) -> tuple[bytes, ContainerInfo]:
    """Step 1 of :func:`prepare_for_signing`: drop what keeps ``data`` from being read.

    Damaged ancillary PNG chunks, then every XMP block (several standard packets,
    broken extended XMP): only what signing rewrites goes. Raises ``first`` when
    that is not enough. Appends one note per dropped block.
    """
    fixed = data
    if detect_format(data) is ImageFormat.PNG:
        fixed, dropped = png.drop_damaged_ancillary(data)
        notes.extend(dropped)
    try:
        info = inspect(fixed)
    except ContainerError:
        try:
            fixed = strip(fixed, _XMP_KINDS)
            info = inspect(fixed)
        except ProvenanceError:
            raise first from None
        notes.append(f"dropped the existing XMP ({first.message})")
    return fixed, info


def _drop_unmergeable(
    data: bytes, info: ContainerInfo, notes: list[str]
) -> tuple[bytes, ContainerInfo]:
    """Step 3 of :func:`prepare_for_signing`: drop XMP and EXIF signing cannot merge."""
    if info.xmp is not None:
        try:
            xmp.check_packet(info.xmp)
        except ProvenanceError as exc:
            data = strip(data, _XMP_KINDS)
            info = inspect(data)
            notes.append(f"dropped the existing XMP ({exc.message})")
    if info.exif is not None:
        try:
            exif.sanitize_exif(info.exif)
        except ProvenanceError as exc:
            if info.format.carries_exif_block:
                data = strip(data, frozenset({BlockKind.EXIF}))
                info = inspect(data)
            else:
                # HEIF's Exif item (TIFF's IFDs) is rewritten by embed: not merged.
                info = dataclasses.replace(info, exif=None)
            notes.append(f"dropped the existing EXIF ({exc.message})")
    return data, info
