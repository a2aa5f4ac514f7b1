"""Splice XMP and EXIF APP1 segments into a JPEG, or strip metadata segments out."""

from __future__ import annotations

from collections.abc import Sequence

from provenance._core.containers._types import (
    BlockKind,
    Insertion,
    MetadataBlock,
    Range,
    has_tiff_header,
    splice,
)
from provenance._core.containers.jpeg._read import extended_xmp_guid
from provenance._core.containers.jpeg._segments import (
    _APP0,
    _EXIF_HEADER,
    EXTENDED_XMP_HEADER,
    MAX_EXIF_BYTES,
    MAX_EXTENDED_XMP_CHUNK_BYTES,
    MAX_STANDARD_XMP_BYTES,
    XMP_HEADER,
    _Layout,
    _parse,
)
from provenance.errors import ContainerError, XmpError


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
    drop, new = _new_segments(xmp, exif)
    return splice(data, *_edits(blocks, drop, new, keep_exif=exif is None))


def embed_edits(
    blocks: Sequence[MetadataBlock], *, xmp: bytes, exif: bytes | None
) -> tuple[list[Range], list[Insertion]]:
    """What :func:`embed` splices: the segments it deletes and the bytes it inserts.

    For a caller that copies the file once with more in it (signing adds the
    C2PA store); the same checks as :func:`embed`.
    """
    drop, new = _new_segments(xmp, exif)
    return _edits(blocks, drop, new, keep_exif=exif is None)


def _new_segments(xmp: bytes, exif: bytes | None) -> tuple[set[BlockKind], list[bytes]]:
    """The kinds :func:`embed` replaces and its new APP1 segments (EXIF first), checked."""
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
    return drop, new


def _edits(
    blocks: Sequence[MetadataBlock], drop: set[BlockKind], new: list[bytes], *, keep_exif: bool
) -> tuple[list[Range], list[Insertion]]:
    """Delete the blocks of kinds ``drop``; insert ``new`` after SOI and the opening APP0s."""
    removed = [b for b in blocks if b.kind in drop]
    removed_at = frozenset(b.offset for b in removed)
    at = 2
    for block in blocks:
        if block.offset != at:
            break
        leading = block.name == "APP0" or (keep_exif and block.kind is BlockKind.EXIF)
        if not leading and block.offset not in removed_at:
            break
        at = block.end
    return [(b.offset, b.end) for b in removed], [(at, b"".join(new))]


def c2pa_slot(data: bytes, blocks: Sequence[MetadataBlock]) -> int | None:
    """Where c2pa-rs puts a new manifest store into ``data``: after the last APP0, else after SOI.

    c2pa-rs 0.91 (``jpeg_io.rs``, ``write_cai``) inserts its APP11 segments after
    the last APP0 segment, or right after SOI when there is none, and replaces a
    store already there where it is. Data-hashed signing places the store itself
    (:func:`provenance._io.c2pa.sign_c2pa`), at the same offset. Only the segments
    before the first scan are walked.

    Args:
        data: A whole JPEG file.
        blocks: ``inspect(...).blocks`` of ``data``, or of the file :func:`embed` made
            ``data`` from (it moves no APP0 and no APP11 segment).

    Returns:
        The offset; None when the file holds a C2PA store already or an APP0
        segment after its first scan (c2pa then places the store itself).

    Raises:
        ContainerError: If ``data`` is malformed before its first scan.
    """
    if any(block.kind is BlockKind.C2PA for block in blocks):
        return None
    head = [s for s in _parse(data, until_scan=True).segments if s.marker == _APP0]
    if len(head) != sum(1 for block in blocks if block.name == "APP0"):
        return None
    return head[-1].end if head else 2


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
