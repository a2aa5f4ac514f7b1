"""HEIF, HEIC and AVIF (ISO/IEC 14496-12 boxes, 23008-12 items): read and insert metadata.

This module owns the byte layout of still-image ISO-BMFF files: it walks the
top-level boxes, reads the ``meta`` box (``pitm``, ``iinf``/``infe``, ``iloc``,
``idat``, ``iprp``/``ipco``/``ipma``, ``iref``), classifies items and boxes as
metadata, finds the essence ranges, and rebuilds ``meta`` to add, replace or
unlink items. It never decodes HEVC or AV1, never does file I/O, never imports c2pa.

Format: ``ftyp`` brands tell AVIF (``avif``/``avis``) from HEIC (``heic``,
``heix``, ``heim``, ``heis``, ``hevc``, ``hevx``) from other HEIF (``mif1``,
``msf1``). Metadata: XMP is an item of type ``mime`` with content type
``application/rdf+xml``; EXIF an item of type ``Exif``; a C2PA manifest store is
the top-level ``uuid`` box ``D8FEC3D6-1B0E-483C-9297-5828877EC481`` (what
c2pa-rs writes).

Essence (decision 5 of DESIGN.md): the data extents of every coded image item
(every item but ``mime``, ``Exif`` and ``uri `` items), item after item in
item-ID order, then the decoder configuration and geometry properties
(``hvcC``, ``av1C``, ``ispe``, ``pixi``, ``irot``, ``imir``, ``clap``,
``lsel``, ``a1op``, ``a1lx``) in file order. Logical order, not file order: a
rewriter (c2pa-rs inserts its box after ``ftyp`` and shifts ``iloc``) moves data
without changing the hash. ``colr`` (ICC) is outside, as in the other formats,
and is not reported as a block (it is an item property, not removable alone).

Rewriting (:func:`set_xmp`, :func:`strip`): ``meta`` is rebuilt with a new
``iloc`` (version 1 or 2, base offsets folded into the extents), file offsets
after ``meta`` are shifted by its change in size, and a new XMP packet goes into
an ``mdat`` box appended at the end. Files with a ``moov`` box (image sequences,
whose sample tables hold file offsets too) are read but not rewritten.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from provenance._core.containers._types import (
    BlockKind,
    ContainerInfo,
    ImageFormat,
    MetadataBlock,
    Range,
    has_tiff_header,
)
from provenance.errors import ContainerError

__all__ = [
    "C2PA_UUID",
    "MAX_BOXES",
    "MAX_ITEMS",
    "XMP_CONTENT_TYPE",
    "brand_format",
    "embed",
    "essence_ranges",
    "inspect",
    "set_xmp",
    "strip",
]

C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
"""The ``uuid`` box type of a C2PA manifest store in ISO-BMFF (C2PA 2.x, A.5)."""
XMP_CONTENT_TYPE = b"application/rdf+xml"
"""The content type of a ``mime`` item holding an XMP packet."""
MAX_BOXES = 65536
"""Most boxes a file may have (top level and inside ``meta``); more is refused."""
MAX_ITEMS = 65536
"""Most items (and extents) ``iloc`` may list; more is refused as hostile."""

_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1", b"mif2", b"miaf"})
_METADATA_ITEMS = frozenset({b"mime", b"Exif", b"uri "})
_ESSENCE_PROPERTIES = frozenset(
    {b"hvcC", b"av1C", b"ispe", b"pixi", b"irot", b"imir", b"clap", b"lsel", b"a1op", b"a1lx"}
)


@dataclass(frozen=True, slots=True)
class _Box:
    type: bytes
    offset: int
    header: int  # bytes of header (8, 16, +16 for uuid)
    end: int
    usertype: bytes = b""

    @property
    def payload(self) -> int:
        return self.offset + self.header


@dataclass(slots=True)
class _Item:
    item_id: int
    type: bytes = b""
    content_type: bytes = b""
    infe: _Box | None = None
    method: int = 0
    reference: int = 0
    base: int = 0
    extents: list[tuple[int, int, int]] = field(default_factory=list)  # index, offset, length


@dataclass(frozen=True, slots=True)
class _Layout:
    format: ImageFormat
    top: tuple[_Box, ...]
    meta: _Box
    children: tuple[_Box, ...]
    items: dict[int, _Item]
    iloc_index_size: int
    iinf_version: int
    idat: _Box | None
    primary: int
    width: int
    height: int
    properties: tuple[_Box, ...]


def _boxes(data: bytes, start: int, end: int, budget: list[int]) -> list[_Box]:
    boxes: list[_Box] = []
    pos = start
    while pos < end:
        budget[0] -= 1
        if budget[0] < 0:
            raise ContainerError(f"more than {MAX_BOXES} boxes before offset {pos}")
        if pos + 8 > end:
            raise ContainerError(f"truncated: box header at offset {pos} runs past its parent")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise ContainerError(f"truncated: box header at offset {pos}")
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos  # to the end of the parent (ISO/IEC 14496-12, 4.2)
        usertype = b""
        if kind == b"uuid":
            usertype = bytes(data[pos + header : pos + header + 16])
            header += 16
        if size < header or pos + size > end:
            raise ContainerError(
                f"truncated: {kind.decode('latin-1')!r} box at offset {pos} "
                f"({size} bytes) runs past its parent"
            )
        boxes.append(_Box(kind, pos, header, pos + size, usertype))
        pos += size
    return boxes


class _Cursor:
    """Reads big-endian integers from ``[pos, end)``, raising past ``end``."""

    def __init__(self, data: bytes, pos: int, end: int, what: str) -> None:
        self.data, self.pos, self.end, self.what = data, pos, end, what

    def take(self, size: int) -> int:
        if size == 0:
            return 0
        if self.pos + size > self.end:
            raise ContainerError(f"truncated: {self.what} at offset {self.pos}")
        value = int.from_bytes(self.data[self.pos : self.pos + size], "big")
        self.pos += size
        return value

    def raw(self, size: int) -> bytes:
        if self.pos + size > self.end:
            raise ContainerError(f"truncated: {self.what} at offset {self.pos}")
        value = bytes(self.data[self.pos : self.pos + size])
        self.pos += size
        return value

    def string(self) -> bytes:
        stop = self.data.find(b"\x00", self.pos, self.end)
        if stop < 0:
            value, self.pos = bytes(self.data[self.pos : self.end]), self.end
            return value
        value = bytes(self.data[self.pos : stop])
        self.pos = stop + 1
        return value


def brand_format(data: bytes) -> ImageFormat | None:
    """The image format an ``ftyp`` box announces, or None if it is not a HEIF image.

    Args:
        data: The file's first bytes (the ``ftyp`` box).

    Returns:
        AVIF, HEIC or HEIF; None for other ISO-BMFF files (MP4, QuickTime ...).
    """
    if len(data) < 16 or data[4:8] != b"ftyp":
        return None
    size = min(int.from_bytes(data[:4], "big"), len(data), 4096)
    brands = {data[8:12]} | {data[pos : pos + 4] for pos in range(16, size - 3, 4)}
    if brands & _AVIF_BRANDS and data[8:12] not in _HEIC_BRANDS:
        return ImageFormat.AVIF
    if brands & _HEIC_BRANDS:
        return ImageFormat.HEIC
    if brands & _HEIF_BRANDS:
        return ImageFormat.HEIF
    return None


def _iloc(data: bytes, box: _Box, items: dict[int, _Item]) -> int:
    """Read ``iloc`` (ISO/IEC 14496-12, 8.11.3) into ``items``; return index_size."""
    cur = _Cursor(data, box.payload, box.end, "'iloc' box")
    version = cur.take(1)
    cur.take(3)
    if version > 2:
        raise ContainerError(f"'iloc' box at offset {box.offset} has unknown version {version}")
    sizes = cur.take(2)
    offset_size, length_size = sizes >> 12, (sizes >> 8) & 15
    base_size, index_size = (sizes >> 4) & 15, sizes & 15 if version else 0
    for size in (offset_size, length_size, base_size, index_size):
        if size not in (0, 4, 8):
            raise ContainerError(f"'iloc' box at offset {box.offset} has field size {size}")
    count = cur.take(4 if version == 2 else 2)
    if count > MAX_ITEMS:
        raise ContainerError(f"'iloc' box at offset {box.offset} lists {count} items")
    extents_total = 0
    for _ in range(count):
        item_id = cur.take(4 if version == 2 else 2)
        item = items.setdefault(item_id, _Item(item_id))
        item.method = cur.take(2) & 15 if version else 0
        if item.method > 2:
            raise ContainerError(f"item {item_id} has unknown construction method {item.method}")
        item.reference = cur.take(2)
        item.base = cur.take(base_size)
        extent_count = cur.take(2)
        extents_total += extent_count
        if extents_total > MAX_ITEMS:
            raise ContainerError(f"'iloc' box at offset {box.offset} lists too many extents")
        item.extents = [
            (cur.take(index_size), cur.take(offset_size), cur.take(length_size))
            for _ in range(extent_count)
        ]
    return index_size


def _iinf(data: bytes, box: _Box, items: dict[int, _Item], budget: list[int]) -> int:
    """Read ``iinf`` and its ``infe`` boxes (ISO/IEC 14496-12, 8.11.6); return its version."""
    cur = _Cursor(data, box.payload, box.end, "'iinf' box")
    version = cur.take(1)
    cur.take(3)
    cur.take(2 if version == 0 else 4)
    for infe in _boxes(data, cur.pos, box.end, budget):
        if infe.type != b"infe":
            continue
        entry = _Cursor(data, infe.payload, infe.end, "'infe' box")
        infe_version = entry.take(1)
        entry.take(3)
        item_id = entry.take(4 if infe_version == 3 else 2)
        entry.take(2)  # item_protection_index
        item = items.setdefault(item_id, _Item(item_id))
        item.infe = infe
        if infe_version >= 2:
            item.type = entry.raw(4)
            entry.string()  # item_name
            if item.type == b"mime":
                item.content_type = entry.string()
        else:
            entry.string()
            item.type, item.content_type = b"mime", entry.string()
    return version


def _dimensions(data: bytes, iprp: _Box | None, budget: list[int]) -> tuple[int, int, list[_Box]]:
    """The largest ``ispe`` and the essence properties of ``iprp``/``ipco``."""
    if iprp is None:
        return 0, 0, []
    width = height = 0
    chosen: list[_Box] = []
    for child in _boxes(data, iprp.payload, iprp.end, budget):
        if child.type != b"ipco":
            continue
        for prop in _boxes(data, child.payload, child.end, budget):
            if prop.type in _ESSENCE_PROPERTIES:
                chosen.append(prop)
            if prop.type == b"ispe":
                cur = _Cursor(data, prop.payload + 4, prop.end, "'ispe' box")
                w, h = cur.take(4), cur.take(4)
                if w * h > width * height:
                    width, height = w, h
    return width, height, chosen


def _parse(data: bytes) -> _Layout:
    """Walk the boxes; see the module docstring."""
    image_format = brand_format(data)
    if image_format is None:
        raise ContainerError("no 'ftyp' box with a HEIF, HEIC or AVIF brand at offset 0")
    budget = [MAX_BOXES]
    top = _boxes(data, 0, len(data), budget)
    metas = [box for box in top if box.type == b"meta"]
    if len(metas) != 1:
        raise ContainerError(f"{len(metas)} top-level 'meta' boxes (a HEIF image has one)")
    meta = metas[0]
    # 'meta' is a FullBox: 4 bytes of version and flags before its children.
    children = _boxes(data, meta.payload + 4, meta.end, budget)
    by_type: dict[bytes, _Box] = {}
    for child in children:
        by_type.setdefault(child.type, child)
    items: dict[int, _Item] = {}
    if b"iloc" not in by_type or b"pitm" not in by_type:
        raise ContainerError(f"'meta' box at offset {meta.offset} lacks 'iloc' or 'pitm'")
    index_size = _iloc(data, by_type[b"iloc"], items)
    iinf_version = _iinf(data, by_type[b"iinf"], items, budget) if b"iinf" in by_type else 0
    pitm = _Cursor(data, by_type[b"pitm"].payload, by_type[b"pitm"].end, "'pitm' box")
    pitm_version = pitm.take(1)
    pitm.take(3)
    primary = pitm.take(4 if pitm_version else 2)
    if primary not in items:
        raise ContainerError(f"primary item {primary} has no location in 'iloc'")
    width, height, properties = _dimensions(data, by_type.get(b"iprp"), budget)
    if not width or not height:
        raise ContainerError("no 'ispe' property: the image size is unknown")
    layout = _Layout(
        format=image_format,
        top=tuple(top),
        meta=meta,
        children=tuple(children),
        items=items,
        iloc_index_size=index_size,
        iinf_version=iinf_version,
        idat=by_type.get(b"idat"),
        primary=primary,
        width=width,
        height=height,
        properties=tuple(properties),
    )
    for item in items.values():
        _ranges(data, layout, item)  # every extent must lie in the file
    return layout


def _ranges(data: bytes, layout: _Layout, item: _Item) -> list[Range]:
    """The byte ranges of an item's data (construction methods 0 and 1)."""
    if item.reference != 0 or item.method == 2:
        return []  # in another file, or built from other items (already covered)
    if item.method == 1:
        if layout.idat is None:
            raise ContainerError(f"item {item.item_id} is in 'idat' but there is none")
        origin, limit = layout.idat.payload, layout.idat.end
    else:
        origin, limit = 0, len(data)
    ranges = []
    for _, offset, length in item.extents:
        start = origin + item.base + offset
        end = limit if length == 0 else start + length
        if start > limit or end > limit:
            raise ContainerError(
                f"truncated: item {item.item_id} extent at offset {start} runs past the end"
            )
        ranges.append((start, end))
    return ranges


def _essence(data: bytes, layout: _Layout) -> tuple[Range, ...]:
    ranges: list[Range] = []
    for item_id in sorted(layout.items):
        item = layout.items[item_id]
        if item.type not in _METADATA_ITEMS:
            ranges.extend(_ranges(data, layout, item))
    if sum(end - start for start, end in ranges) > len(data):
        raise ContainerError("item extents overlap (more image data than file)")
    ranges.extend((prop.offset, prop.end) for prop in layout.properties)
    return tuple(ranges)


def _is_xmp(item: _Item) -> bool:
    return item.type == b"mime" and item.content_type.split(b";")[0].strip() == XMP_CONTENT_TYPE


def _is_exif(item: _Item) -> bool:
    return item.type == b"Exif"


def _item_kind(item: _Item) -> BlockKind | None:
    if _is_xmp(item):
        return BlockKind.XMP
    if item.type == b"Exif":
        return BlockKind.EXIF
    if item.type in _METADATA_ITEMS:
        return BlockKind.OTHER_METADATA
    return None


def essence_ranges(data: bytes) -> tuple[Range, ...]:
    """Return the byte ranges of the coded image items (see the module docstring).

    Args:
        data: A whole HEIF, HEIC or AVIF file.

    Returns:
        ``(start, end)`` ranges in logical order.

    Raises:
        ContainerError: If the structure is malformed or truncated.
    """
    return _essence(data, _parse(data))


def inspect(data: bytes) -> ContainerInfo:
    """Read the layout, metadata and essence ranges of a HEIF file without decoding it.

    Args:
        data: A whole HEIF, HEIC or AVIF file.

    Returns:
        The container summary; width and height are the largest ``ispe``.

    Raises:
        ContainerError: If the structure is malformed or truncated, or the file
            holds several XMP items.
    """
    layout = _parse(data)
    blocks: list[MetadataBlock] = []
    for box in layout.top:
        if box.type == b"uuid" and box.usertype == C2PA_UUID:
            blocks.append(MetadataBlock(BlockKind.C2PA, box.offset, box.end - box.offset, "uuid"))
    packets: list[bytes] = []
    exif: bytes | None = None
    for item_id in sorted(layout.items):
        item = layout.items[item_id]
        kind = _item_kind(item)
        ranges = _ranges(data, layout, item)
        if kind is None or not ranges:
            continue
        blocks.append(
            MetadataBlock(
                kind,
                ranges[0][0],
                ranges[-1][1] - ranges[0][0],
                f"item {item_id} ({item.type.decode('latin-1')})",
            )
        )
        if kind is BlockKind.XMP:
            packets.append(b"".join(data[start:end] for start, end in ranges))
        if kind is BlockKind.EXIF and exif is None:
            # ISO/IEC 23008-12, A.2.1: a 4-byte offset to the TIFF header, then the data.
            payload = b"".join(data[start:end] for start, end in ranges)
            skip = 4 + int.from_bytes(payload[:4], "big")
            exif = payload[skip:] if has_tiff_header(payload[skip:]) else None
    if len(packets) > 1:
        raise ContainerError(f"several XMP packets ({len(packets)} XMP items)")
    return ContainerInfo(
        format=layout.format,
        width=layout.width,
        height=layout.height,
        blocks=tuple(sorted(blocks, key=lambda b: b.offset)),
        xmp=packets[0] if packets else None,
        extended_xmp=None,
        exif=exif,
        essence_ranges=_essence(data, layout),
    )


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
    meta = layout.meta
    removed = [box for box in layout.top if box.offset in remove and box is not meta]
    items = [layout.items[i] for i in sorted(layout.items) if i not in drop]
    new_infes: list[bytes] = []
    links: list[tuple[int, int]] = []
    # The replaced or new items, with their payloads, in mdat order.
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
    size = 8 if len(data) + appended + (1 << 20) > 0xFFFFFFFF else 4
    # Items whose old data must not stay behind: dropped ones, and those replaced.
    replaced = {id(item) for item, _ in targets}
    stale = [item for item in layout.items.values() if item.item_id in drop or id(item) in replaced]
    has_iref = any(child.type == b"iref" for child in layout.children)

    def build_meta(delta: int, mdat_payload: int) -> bytes:
        def moved(offset: int) -> int:
            if meta.offset <= offset < meta.end:
                raise ContainerError(f"an item has file offset {offset} inside 'meta'")
            gone = 0
            for box in removed:
                if box.offset <= offset < box.end:
                    raise ContainerError(f"an item has file offset {offset} inside a removed box")
                if box.end <= offset:
                    gone += box.end - box.offset
            return offset - gone + (delta if offset >= meta.end else 0)

        placed: dict[int, list[tuple[int, int, int]]] = {}
        cursor = mdat_payload
        for item, payload in targets:
            placed[id(item)] = [(0, cursor, len(payload))]
            cursor += len(payload)
        located = []
        for item in items:
            if id(item) in placed:
                method, reference, extents = 0, 0, placed[id(item)]
            else:
                method, reference = item.method, item.reference
                direct = method == 0 and reference == 0
                extents = [
                    (index, moved(item.base + offset) if direct else item.base + offset, length)
                    for index, offset, length in item.extents
                ]
            located.append(
                _Item(
                    item.item_id, item.type, item.content_type, None, method, reference, 0, extents
                )
            )
        pieces = [bytes(data[meta.offset + 4 : meta.payload + 4])]
        for child in layout.children:
            if child.type == b"iloc":
                pieces.append(_new_iloc(located, index_size=layout.iloc_index_size, size=size))
            elif child.type == b"iinf":
                kept = [i for i in items if i.infe is not None]
                pieces.append(_new_iinf(data, layout, kept, b"".join(new_infes)))
                if links and not has_iref:
                    pieces.append(_new_iref(data, None, drop, links))
            elif child.type == b"iref" and (drop or links):
                pieces.append(_new_iref(data, child, drop, links))
            elif child.type == b"idat":
                pieces.append(_zeroed(data, child, stale))
            else:
                pieces.append(bytes(data[child.offset : child.end]))
        body = b"".join(pieces)
        return struct.pack(">I", 4 + len(body)) + body

    # The size of 'meta' does not depend on the offsets (the field size is
    # fixed): a first pass measures it, the second writes the true offsets.
    delta = len(build_meta(0, 0)) - (meta.end - meta.offset)
    new_length = len(data) + delta - sum(box.end - box.offset for box in removed)
    new_meta = build_meta(delta, new_length + 8)
    out = bytearray()
    for box in layout.top:
        if box is meta:
            out += new_meta
        elif box not in removed:
            start = len(out)
            out += data[box.offset : box.end]
            if int.from_bytes(data[box.offset : box.offset + 4], "big") == 0:
                # A box "to the end of the file" gets its size before we append.
                out[start : start + 4] = struct.pack(">I", box.end - box.offset)
    for item in stale:
        if item.method == 0 and item.reference == 0:
            # Zero the old data: no stale metadata is left for a carver to find.
            for start, end in _ranges(data, layout, item):
                inside = [b for b in (meta, *removed) if b.offset <= start < b.end]
                if inside:
                    continue  # gone with its box, or in 'meta' (refused above)
                gone = sum(b.end - b.offset for b in removed if b.end <= start)
                at = start - gone + (delta if start >= meta.end else 0)
                out[at : at + end - start] = bytes(end - start)
    if targets:
        out += _box(b"mdat", b"".join(payload for _, payload in targets))
    return bytes(out)


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
