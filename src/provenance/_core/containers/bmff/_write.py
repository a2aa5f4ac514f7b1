"""Rebuild a HEIF/AVIF file: a new ``meta`` with items added, replaced or unlinked."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from provenance._core.containers._types import (
    BlockKind,
    has_tiff_header,
)
from provenance._core.containers.bmff._boxes import (
    C2PA_UUID,
    MAX_BOXES,
    XMP_CONTENT_TYPE,
    _Box,
    _boxes,
    _Cursor,
    _Item,
    _Layout,
)
from provenance._core.containers.bmff._read import _is_exif, _is_xmp, _item_kind, _parse, _ranges
from provenance.errors import ContainerError


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _new_iloc(items: list[_Item], *, index_size: int, size: int) -> bytes:
    """``iloc`` version 1 or 2, extents given as final offsets (no base offset)."""
    version = 2 if any(item.item_id > 0xFFFF for item in items) or len(items) > 0xFFFF else 1
    out = bytearray([version, 0, 0, 0])
    out += struct.pack(">H", (size << 12) | (size << 8) | index_size)
    out += len(items).to_bytes(4 if version == 2 else 2, "big")
    for item in items:
        out += item.item_id.to_bytes(4 if version == 2 else 2, "big")
        out += struct.pack(">HHH", item.method, item.reference, len(item.extents))
        for index, offset, length in item.extents:
            out += index.to_bytes(index_size, "big") if index_size else b""
            out += offset.to_bytes(size, "big") + length.to_bytes(size, "big")
    return _box(b"iloc", bytes(out))


def _new_iinf(data: bytes, layout: _Layout, items: list[_Item], extra: bytes) -> bytes:
    infes = [bytes(data[i.infe.offset : i.infe.end]) for i in items if i.infe is not None]
    count = len(infes) + (1 if extra else 0)
    version = 0 if count <= 0xFFFF and layout.iinf_version == 0 else 1
    header = bytes([version, 0, 0, 0]) + count.to_bytes(2 if version == 0 else 4, "big")
    return _box(b"iinf", header + b"".join(infes) + extra)


def _new_iref(
    data: bytes, box: _Box | None, dropped: set[int], added: list[tuple[int, int]]
) -> bytes:
    """``iref`` without references from or to ``dropped`` items, plus ``cdsc`` ``added``.

    ISO/IEC 14496-12, 8.11.12; ``cdsc`` ("content describes") links a metadata
    item to the image it describes (ISO/IEC 23008-12, 6.4.5).
    """
    wide = any(max(pair) > 0xFFFF for pair in added)
    version = data[box.payload] if box is not None else 0
    if wide and version == 0:
        if box is not None:
            raise ContainerError("'iref' version 0 cannot reference item ids above 65535")
        version = 1
    width = 4 if version else 2
    out = (
        bytearray([version, 0, 0, 0])
        if box is None
        else bytearray(data[box.payload : box.payload + 4])
    )
    if box is not None:
        for ref in _boxes(data, box.payload + 4, box.end, [MAX_BOXES]):
            cur = _Cursor(data, ref.payload, ref.end, "'iref' entry")
            source = cur.take(width)
            targets = [cur.take(width) for _ in range(cur.take(2))]
            kept = [t for t in targets if t not in dropped]
            if source in dropped or not kept:
                continue
            payload = source.to_bytes(width, "big") + len(kept).to_bytes(2, "big")
            out += _box(ref.type, payload + b"".join(t.to_bytes(width, "big") for t in kept))
    for source, target in added:
        payload = source.to_bytes(width, "big") + (1).to_bytes(2, "big")
        out += _box(b"cdsc", payload + target.to_bytes(width, "big"))
    return _box(b"iref", bytes(out))


def _infe(item_id: int, item_type: bytes, name: bytes, content_type: bytes | None) -> bytes:
    """An ``infe`` box, version 2 (or 3 for ids above 65535)."""
    version = 3 if item_id > 0xFFFF else 2
    body = bytes([version, 0, 0, 0]) + item_id.to_bytes(4 if version == 3 else 2, "big")
    body += b"\x00\x00" + item_type + name + b"\x00"
    if content_type is not None:
        body += content_type + b"\x00"
    return _box(b"infe", body)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one rebuild writes: the items kept and added, the boxes left out."""

    data: bytes
    layout: _Layout
    drop: set[int]
    removed: list[_Box]  # top-level boxes left out ('meta' never is)
    items: list[_Item]  # kept items in id order, then the new ones
    new_infes: list[bytes]  # 'infe' boxes of the new items
    links: list[tuple[int, int]]  # 'cdsc' references from new items to the primary image
    targets: list[tuple[_Item, bytes]]  # replaced or new items with their payloads, mdat order
    size: int  # offset and length field size in the new 'iloc'
    stale: list[_Item]  # items whose old data must not stay behind
    has_iref: bool


def _rebuild(
    data: bytes,
    layout: _Layout,
    *,
    drop: set[int],
    xmp: bytes | None,
    remove: set[int],
    exif: bytes | None = None,
) -> bytes:
    """Rebuild the file: ``meta`` without ``drop`` items, with ``xmp`` (and ``exif``).

    ``remove`` holds offsets of top-level boxes to leave out. Every file offset in
    ``iloc`` is mapped to where its byte lands in the new file. ``xmp`` and
    ``exif`` (the whole ``Exif`` item payload) replace the data of the first item
    of their kind, or go into new items linked to the primary image by ``cdsc``;
    either way their bytes go into one ``mdat`` appended at the end.
    """
    if any(box.type == b"moov" for box in layout.top):
        raise ContainerError("a HEIF image sequence ('moov' box) cannot be rewritten")
    if layout.meta.header != 8:
        raise ContainerError("a 'meta' box with a 64-bit size cannot be rewritten")
    plan = _plan(data, layout, drop=drop, xmp=xmp, remove=remove, exif=exif)
    meta = layout.meta
    # The size of 'meta' does not depend on the offsets (the field size is
    # fixed): a first pass measures it, the second writes the true offsets.
    delta = len(_build_meta(plan, 0, 0)) - (meta.end - meta.offset)
    new_length = len(data) + delta - sum(box.end - box.offset for box in plan.removed)
    out = _copy_top(plan, _build_meta(plan, delta, new_length + 8))
    _zero_stale(out, plan, delta)
    if plan.targets:
        out += _box(b"mdat", b"".join(payload for _, payload in plan.targets))
    return bytes(out)


def _plan(
    data: bytes,
    layout: _Layout,
    *,
    drop: set[int],
    xmp: bytes | None,
    remove: set[int],
    exif: bytes | None,
) -> _Plan:
    """Decide which items stay, which are replaced and which are added (see :func:`_rebuild`)."""
    removed = [box for box in layout.top if box.offset in remove and box is not layout.meta]
    items = [layout.items[i] for i in sorted(layout.items) if i not in drop]
    new_infes: list[bytes] = []
    links: list[tuple[int, int]] = []
    targets: list[tuple[_Item, bytes]] = []
    next_id = max(layout.items, default=0) + 1
    for payload, is_kind, item_type, name, content in (
        (xmp, _is_xmp, b"mime", b"XMP", XMP_CONTENT_TYPE),
        (exif, _is_exif, b"Exif", b"Exif", None),
    ):
        if payload is None:
            continue
        target = next((item for item in items if is_kind(item)), None)
        if target is None:
            target = _Item(next_id, item_type, content or b"")
            new_infes.append(_infe(next_id, item_type, name, content))
            links.append((next_id, layout.primary))
            items.append(target)
            next_id += 1
        targets.append((target, payload))
    appended = sum(len(payload) for _, payload in targets)
    replaced = {id(item) for item, _ in targets}
    return _Plan(
        data=data,
        layout=layout,
        drop=drop,
        removed=removed,
        items=items,
        new_infes=new_infes,
        links=links,
        targets=targets,
        size=8 if len(data) + appended + (1 << 20) > 0xFFFFFFFF else 4,
        stale=[i for i in layout.items.values() if i.item_id in drop or id(i) in replaced],
        has_iref=any(child.type == b"iref" for child in layout.children),
    )


def _moved(plan: _Plan, offset: int, delta: int) -> int:
    """Where the byte at file ``offset`` lands once boxes are removed and 'meta' resized."""
    meta = plan.layout.meta
    if meta.offset <= offset < meta.end:
        raise ContainerError(f"an item has file offset {offset} inside 'meta'")
    gone = 0
    for box in plan.removed:
        if box.offset <= offset < box.end:
            raise ContainerError(f"an item has file offset {offset} inside a removed box")
        if box.end <= offset:
            gone += box.end - box.offset
    return offset - gone + (delta if offset >= meta.end else 0)


def _located(plan: _Plan, delta: int, mdat_payload: int) -> list[_Item]:
    """Every item with its extents at their new file offsets (new payloads in the mdat)."""
    placed: dict[int, list[tuple[int, int, int]]] = {}
    cursor = mdat_payload
    for item, payload in plan.targets:
        placed[id(item)] = [(0, cursor, len(payload))]
        cursor += len(payload)
    located = []
    for item in plan.items:
        if id(item) in placed:
            method, reference, extents = 0, 0, placed[id(item)]
        else:
            method, reference = item.method, item.reference
            direct = method == 0 and reference == 0
            extents = [
                (
                    index,
                    _moved(plan, item.base + offset, delta) if direct else item.base + offset,
                    n,
                )
                for index, offset, n in item.extents
            ]
        located.append(
            _Item(item.item_id, item.type, item.content_type, None, method, reference, 0, extents)
        )
    return located


def _build_meta(plan: _Plan, delta: int, mdat_payload: int) -> bytes:
    """The new 'meta' box, for a 'meta' grown by ``delta`` and a mdat at ``mdat_payload``."""
    data, layout, meta = plan.data, plan.layout, plan.layout.meta
    pieces = [bytes(data[meta.offset + 4 : meta.payload + 4])]
    for child in layout.children:
        if child.type == b"iloc":
            located = _located(plan, delta, mdat_payload)
            pieces.append(_new_iloc(located, index_size=layout.iloc_index_size, size=plan.size))
        elif child.type == b"iinf":
            kept = [i for i in plan.items if i.infe is not None]
            pieces.append(_new_iinf(data, layout, kept, b"".join(plan.new_infes)))
            if plan.links and not plan.has_iref:
                pieces.append(_new_iref(data, None, plan.drop, plan.links))
        elif child.type == b"iref" and (plan.drop or plan.links):
            pieces.append(_new_iref(data, child, plan.drop, plan.links))
        elif child.type == b"idat":
            pieces.append(_zeroed(data, child, plan.stale))
        else:
            pieces.append(bytes(data[child.offset : child.end]))
    body = b"".join(pieces)
    return struct.pack(">I", 4 + len(body)) + body


def _copy_top(plan: _Plan, new_meta: bytes) -> bytearray:
    """The top-level boxes in order, 'meta' replaced and the removed ones left out."""
    data, meta = plan.data, plan.layout.meta
    out = bytearray()
    for box in plan.layout.top:
        if box is meta:
            out += new_meta
        elif box not in plan.removed:
            start = len(out)
            out += data[box.offset : box.end]
            if int.from_bytes(data[box.offset : box.offset + 4], "big") == 0:
                # A box "to the end of the file" gets its size before we append.
                out[start : start + 4] = struct.pack(">I", box.end - box.offset)
    return out


def _zero_stale(out: bytearray, plan: _Plan, delta: int) -> None:
    """Zero the old data of stale items: no stale metadata is left for a carver to find."""
    meta, removed = plan.layout.meta, plan.removed
    for item in plan.stale:
        if item.method != 0 or item.reference != 0:
            continue
        for start, end in _ranges(plan.data, plan.layout, item):
            inside = [b for b in (meta, *removed) if b.offset <= start < b.end]
            if inside:
                continue  # gone with its box, or in 'meta' (refused above)
            gone = sum(b.end - b.offset for b in removed if b.end <= start)
            at = start - gone + (delta if start >= meta.end else 0)
            out[at : at + end - start] = bytes(end - start)


def _zeroed(data: bytes, idat: _Box, stale: list[_Item]) -> bytes:
    """The ``idat`` box with the data of ``stale`` items stored in it zeroed."""
    out = bytearray(data[idat.offset : idat.end])
    for item in stale:
        if item.method != 1 or item.reference != 0:
            continue
        for _, offset, length in item.extents:
            start = idat.header + item.base + offset
            end = len(out) if length == 0 else min(start + length, len(out))
            if idat.header <= start < end:
                out[start:end] = bytes(end - start)
    return bytes(out)


def set_xmp(data: bytes, packet: bytes) -> bytes:
    """Insert or replace the XMP item; the packet goes into an ``mdat`` at the end.

    Args:
        data: A whole HEIF, HEIC or AVIF file.
        packet: The XMP packet.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        ContainerError: If ``data`` is malformed, or is an image sequence.
    """
    layout = _parse(data)
    return _rebuild(data, layout, drop=set(), xmp=packet, remove=set())


def embed(data: bytes, packet: bytes, exif: bytes | None) -> bytes:
    r"""Insert or replace the XMP item and (when given) the ``Exif`` item, in one rewrite.

    Args:
        data: A whole HEIF, HEIC or AVIF file.
        packet: The XMP packet.
        exif: Raw TIFF bytes (``II*\0`` or ``MM\0*``) for the ``Exif`` item; None
            keeps the EXIF already there.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        ContainerError: If ``data`` is malformed, or is an image sequence, or
            ``exif`` is not TIFF.
    """
    layout = _parse(data)
    if exif is not None and not has_tiff_header(exif):
        raise ContainerError("EXIF payload does not start with a TIFF header (II*\\0 or MM\\0*)")
    item = None if exif is None else b"\x00\x00\x00\x00" + exif
    return _rebuild(data, layout, drop=set(), xmp=packet, remove=set(), exif=item)


def strip(data: bytes, kinds: frozenset[BlockKind]) -> bytes:
    """Remove the C2PA box and unlink the metadata items of the given kinds.

    Args:
        data: A whole HEIF, HEIC or AVIF file.
        kinds: The kinds to remove.

    Returns:
        The new file; its essence ranges hash the same.

    Raises:
        ContainerError: If ``data`` is malformed, or is an image sequence.
    """
    layout = _parse(data)
    drop = {i for i, item in layout.items.items() if _item_kind(item) in kinds}
    remove = {
        box.offset
        for box in layout.top
        if BlockKind.C2PA in kinds and box.type == b"uuid" and box.usertype == C2PA_UUID
    }
    if not drop and not remove:
        return data
    return _rebuild(data, layout, drop=drop, xmp=None, remove=remove)
