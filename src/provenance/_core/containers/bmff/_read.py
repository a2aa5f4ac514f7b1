"""Parse a HEIF/AVIF ``meta`` box: items, locations, properties, metadata blocks and essence."""

from __future__ import annotations

from provenance._core.containers._types import (
    BlockKind,
    ContainerInfo,
    ImageFormat,
    MetadataBlock,
    Range,
    has_tiff_header,
)
from provenance._core.containers.bmff._boxes import (
    _AVIF_BRANDS,
    _ESSENCE_PROPERTIES,
    _HEIC_BRANDS,
    _HEIF_BRANDS,
    _METADATA_ITEMS,
    C2PA_UUID,
    MAX_BOXES,
    MAX_ITEMS,
    XMP_CONTENT_TYPE,
    _Box,
    _boxes,
    _Cursor,
    _Item,
    _Layout,
)
from provenance.errors import ContainerError


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
