"""TIFF/DNG, HEIF/HEIC/AVIF and GIF containers: bytes made in the test, no disk, no c2pa."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from provenance._core import containers
from provenance._core.containers import BlockKind, ImageFormat, bmff, gif, tiff
from provenance._core.containers.bmff import _boxes as bmff_boxes
from provenance._core.containers.bmff import _read as bmff_read
from provenance._core.containers.bmff import _write as bmff_write
from provenance._core.hashing import essence_hash
from provenance.errors import ContainerError, UnsupportedFormat
from provenance.fingerprint import _register_heif
from tests._formats import NEW_FORMATS, encode, picture, sample

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
_IDS = [fmt.value for fmt in NEW_FORMATS]


def _pixels(data: bytes) -> np.ndarray:
    if data[4:8] == b"ftyp":
        _register_heif()
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


# --- every new format --------------------------------------------------------------


@pytest.mark.parametrize("fmt", NEW_FORMATS, ids=_IDS)
def test_detect_and_inspect_read_the_header(fmt: ImageFormat) -> None:
    data = sample(fmt)
    assert containers.detect_format(data) is fmt
    assert containers.c2pa_mime(data) == fmt.mime
    info = containers.inspect(data)
    assert (info.format, info.width, info.height) == (fmt, 96, 64)
    assert info.xmp is None and not info.has_c2pa
    assert info.essence_ranges == containers.essence_ranges(data)
    assert sum(end - start for start, end in info.essence_ranges) <= len(data)


@pytest.mark.parametrize("fmt", NEW_FORMATS, ids=_IDS)
def test_set_xmp_keeps_pixels_and_essence_and_replaces_the_packet(fmt: ImageFormat) -> None:
    data = sample(fmt)
    once = containers.set_xmp(data, XMP)
    info = containers.inspect(once)
    assert info.xmp == XMP
    assert [b.kind for b in info.blocks] == [BlockKind.XMP]
    assert essence_hash(once) == essence_hash(data)
    # A real decoder sees the same image: nothing it reads has moved wrongly.
    assert np.array_equal(_pixels(once), _pixels(data))
    twice = containers.set_xmp(once, XMP.replace(b"rdf:RDF", b"rdf:RDF "))
    assert containers.inspect(twice).xmp == XMP.replace(b"rdf:RDF", b"rdf:RDF ")
    assert len(containers.inspect(twice).blocks) == 1
    assert np.array_equal(_pixels(twice), _pixels(data))
    # The replaced packet is not left behind for a carver to find.
    assert twice.count(b"<x:xmpmeta") == 1


@pytest.mark.parametrize("fmt", NEW_FORMATS, ids=_IDS)
def test_strip_removes_the_packet_and_keeps_the_essence(fmt: ImageFormat) -> None:
    with_xmp = containers.set_xmp(sample(fmt), XMP)
    stripped = containers.strip(with_xmp, frozenset(BlockKind))
    assert containers.inspect(stripped).blocks == ()
    assert b"<x:xmpmeta" not in stripped
    assert essence_hash(stripped) == essence_hash(sample(fmt))
    assert np.array_equal(_pixels(stripped), _pixels(sample(fmt)))


@pytest.mark.parametrize("fmt", NEW_FORMATS, ids=_IDS)
def test_another_picture_has_another_essence(fmt: ImageFormat) -> None:
    assert essence_hash(sample(fmt, seed=1)) != essence_hash(sample(fmt))


@pytest.mark.parametrize("fmt", NEW_FORMATS, ids=_IDS)
@pytest.mark.parametrize("keep", [0.3, 0.7, 0.99])
def test_truncated_files_are_container_errors(fmt: ImageFormat, keep: float) -> None:
    data = sample(fmt)
    with pytest.raises(ContainerError):
        containers.inspect(data[: int(len(data) * keep)])


# --- TIFF and DNG --------------------------------------------------------------------


def _tiff(order: str, ifds: list[list[tuple[int, int, int, bytes]]], blobs: bytes) -> bytes:
    """A TIFF whose IFDs follow the header and blobs; entry values are given raw (4 bytes)."""
    magic = b"II*\x00" if order == "<" else b"MM\x00*"
    out = bytearray(magic + b"\x00" * 4 + blobs)
    if len(out) & 1:
        out.append(0)
    first = len(out)
    for index, entries in enumerate(ifds):
        start = len(out)
        nxt = start + 2 + 12 * len(entries) + 4 if index + 1 < len(ifds) else 0
        out += struct.pack(order + "H", len(entries))
        for tag, kind, count, value in sorted(entries):
            out += struct.pack(order + "HHI", tag, kind, count) + value
        out += struct.pack(order + "I", nxt)
    out[4:8] = struct.pack(order + "I", first)
    return bytes(out)


def _long(order: str, value: int) -> bytes:
    return struct.pack(order + "I", value)


def _strip_ifd(order: str, width: int, height: int, offset: int, length: int) -> list:
    return [
        (256, 4, 1, _long(order, width)),
        (257, 4, 1, _long(order, height)),
        (258, 3, 1, struct.pack(order + "HH", 8, 0)),
        (262, 3, 1, struct.pack(order + "HH", 1, 0)),
        (273, 4, 1, _long(order, offset)),
        (277, 3, 1, struct.pack(order + "HH", 1, 0)),
        (279, 4, 1, _long(order, length)),
    ]


@pytest.mark.parametrize("order", ["<", ">"])
def test_tiff_essence_is_the_strip_data_wherever_it_sits(order: str) -> None:
    pixels = bytes(range(64))
    near = _tiff(order, [_strip_ifd(order, 8, 8, 8, 64)], pixels)
    far = _tiff(order, [_strip_ifd(order, 8, 8, 8 + 100, 64)], b"\x00" * 100 + pixels)
    assert tiff.essence_ranges(near) == ((8, 72),)
    assert essence_hash(near) == essence_hash(far)
    assert np.array_equal(_pixels(near), _pixels(far))
    changed = _tiff(order, [_strip_ifd(order, 8, 8, 8, 64)], bytes(range(1, 65)))
    assert essence_hash(changed) != essence_hash(near)


def test_dng_raw_in_a_sub_ifd_is_part_of_the_essence() -> None:
    order = "<"
    preview, raw = b"\x11" * 16, b"\x22" * 256
    sub_ifd_at = 8 + len(preview) + len(raw)
    ifd0 = [
        *_strip_ifd(order, 4, 4, 8, 16),
        (330, 4, 1, _long(order, 0)),  # SubIFDs: patched below
        (50706, 1, 4, b"\x01\x04\x00\x00"),
    ]
    data = bytearray(_tiff(order, [ifd0, _strip_ifd(order, 16, 16, 8 + 16, 256)], preview + raw))
    # Chain IFD1 as a SubIFD of IFD0 instead of its next IFD.
    ifd0_at = struct.unpack_from("<I", data, 4)[0]
    entries = struct.unpack_from("<H", data, ifd0_at)[0]
    ifd1_at = ifd0_at + 2 + 12 * entries + 4
    struct.pack_into("<I", data, ifd0_at + 2 + 12 * entries, 0)
    for index in range(entries):
        pos = ifd0_at + 2 + 12 * index
        if struct.unpack_from("<H", data, pos)[0] == 330:
            struct.pack_into("<I", data, pos + 8, ifd1_at)
    assert sub_ifd_at <= ifd0_at
    info = containers.inspect(bytes(data))
    assert (
        info.format is ImageFormat.DNG and containers.detect_format(bytes(data)) is ImageFormat.DNG
    )
    assert (info.width, info.height) == (16, 16)  # the largest image, for the pixel limit
    assert info.essence_ranges == ((8, 8 + 16 + 256),)
    assert ImageFormat.DNG.mime == "image/x-adobe-dng"


def test_tiff_ifd_loop_and_lying_strips_are_container_errors() -> None:
    order = "<"
    good = _tiff(order, [_strip_ifd(order, 8, 8, 8, 64)], bytes(64))
    ifd0 = struct.unpack_from("<I", good, 4)[0]
    loop = bytearray(good)
    struct.pack_into("<I", loop, len(good) - 4, ifd0)
    with pytest.raises(ContainerError, match="loop"):
        containers.inspect(bytes(loop))
    past = _tiff(order, [_strip_ifd(order, 8, 8, 8, 6400)], bytes(64))
    with pytest.raises(ContainerError, match="truncated"):
        containers.inspect(past)
    # Two pages pointing at the same strip hash more bytes than the file holds: a
    # file of many such pages would make hashing quadratic.
    twice = _tiff(order, [_strip_ifd(order, 20, 10, 8, 200)] * 2, bytes(200))
    with pytest.raises(ContainerError, match="overlap"):
        containers.inspect(twice)


def test_bigtiff_is_refused_as_unsupported_but_c2pa_can_be_asked() -> None:
    data = b"II+\x00\x08\x00\x00\x00" + bytes(16)
    with pytest.raises(UnsupportedFormat, match="BigTIFF"):
        containers.detect_format(data)
    assert containers.c2pa_mime(data) == "image/tiff"
    assert containers.c2pa_mime(b"BM" + bytes(30)) is None


# --- HEIF, HEIC and AVIF -------------------------------------------------------------


def test_heif_brands_tell_the_format() -> None:
    def ftyp(major: bytes, *compatible: bytes) -> bytes:
        payload = major + b"\x00\x00\x00\x00" + b"".join(compatible)
        return struct.pack(">I", 8 + len(payload)) + b"ftyp" + payload

    assert bmff.brand_format(ftyp(b"avif", b"mif1")) is ImageFormat.AVIF
    assert bmff.brand_format(ftyp(b"heic", b"mif1", b"avif")) is ImageFormat.HEIC
    assert bmff.brand_format(ftyp(b"mif1", b"heic")) is ImageFormat.HEIC
    assert bmff.brand_format(ftyp(b"mif1", b"miaf")) is ImageFormat.HEIF
    assert bmff.brand_format(ftyp(b"isom", b"mp41")) is None
    with pytest.raises(UnsupportedFormat, match="isom"):
        containers.detect_format(ftyp(b"isom", b"mp41"))


def test_heif_xmp_is_a_mime_item_in_its_own_mdat() -> None:
    data = containers.set_xmp(sample(ImageFormat.AVIF), XMP)
    assert data.endswith(b"mdat" + XMP)
    assert b"mime" in data and bmff.XMP_CONTENT_TYPE in data
    (block,) = containers.inspect(data).blocks
    assert block.kind is BlockKind.XMP and block.name.endswith("(mime)")
    assert data[block.offset : block.end] == XMP


def test_heif_item_outside_the_file_is_a_container_error() -> None:
    data = bytearray(sample(ImageFormat.HEIC))
    at = data.find(b"iloc")
    start = containers.inspect(bytes(data)).essence_ranges[0][0]
    field = data.find(struct.pack(">I", start), at)
    assert at < field < at + 64
    struct.pack_into(">I", data, field, len(data) + 1000)
    with pytest.raises(ContainerError, match="runs past the end"):
        containers.inspect(bytes(data))


def test_heif_image_sequence_is_read_but_not_rewritten() -> None:
    data = sample(ImageFormat.AVIF) + struct.pack(">I", 8) + b"moov"
    assert containers.inspect(data).format is ImageFormat.AVIF
    with pytest.raises(ContainerError, match="moov"):
        containers.set_xmp(data, XMP)


# --- GIF -----------------------------------------------------------------------------


def test_gif87a_becomes_89a_to_carry_xmp_and_decodes_the_same() -> None:
    data = b"GIF87a" + sample(ImageFormat.GIF)[6:]
    with_xmp = containers.set_xmp(data, XMP)
    assert with_xmp[:6] == b"GIF89a"
    assert containers.inspect(with_xmp).xmp == XMP
    assert essence_hash(with_xmp) == essence_hash(data)
    assert gif.MAGIC_TRAILER in with_xmp


def test_gif_refuses_a_packet_with_a_zero_byte_and_a_file_without_trailer() -> None:
    with pytest.raises(ContainerError, match="zero byte"):
        containers.set_xmp(sample(ImageFormat.GIF), XMP + b"\x00")
    with pytest.raises(ContainerError, match="trailer"):
        containers.inspect(sample(ImageFormat.GIF)[:-1])


def test_animated_gif_essence_covers_every_frame() -> None:
    frames = [picture(seed).convert("P") for seed in range(3)]

    def animated(third: Image.Image) -> bytes:
        out = io.BytesIO()
        frames[0].save(out, "GIF", save_all=True, append_images=[frames[1], third], loop=0)
        return out.getvalue()

    first = animated(frames[2])
    other = animated(picture(7).convert("P"))
    assert containers.inspect(first).format is ImageFormat.GIF
    assert essence_hash(first) != essence_hash(other)
    # The NETSCAPE2.0 loop extension is structure: neither metadata nor essence.
    assert containers.inspect(first).blocks == ()
    assert essence_hash(containers.set_xmp(first, XMP)) == essence_hash(first)


def test_encode_covers_every_format() -> None:
    for fmt in NEW_FORMATS:
        assert containers.detect_format(encode(picture(), fmt)) is fmt


@pytest.mark.parametrize("fmt", [ImageFormat.HEIC, ImageFormat.AVIF], ids=["heic", "avif"])
def test_heif_with_mdat_before_meta_is_rewritten_right(fmt: ImageFormat) -> None:
    # Some writers put 'mdat' first. Build one from the sample: ftyp, mdat, meta,
    # with iloc pointing at the moved data; a decoder must still read it.
    data = sample(fmt)
    layout = bmff_read._parse(data)
    ftyp, mdat = layout.top[0], next(b for b in layout.top if b.type == b"mdat")
    moved = ftyp.end - mdat.offset  # mdat now starts right after ftyp
    items = []
    for item_id in sorted(layout.items):
        item = layout.items[item_id]
        extents = [(i, item.base + o + moved, n) for i, o, n in item.extents]
        items.append(
            bmff_boxes._Item(item_id, item.type, item.content_type, None, 0, 0, 0, extents)
        )
    iloc = bmff_write._new_iloc(items, index_size=0, size=4)
    children = [iloc if c.type == b"iloc" else data[c.offset : c.end] for c in layout.children]
    body = data[layout.meta.offset + 4 : layout.meta.payload + 4] + b"".join(children)
    meta = struct.pack(">I", 4 + len(body)) + body
    reordered = data[: ftyp.end] + data[mdat.offset : mdat.end] + meta
    assert np.array_equal(_pixels(reordered), _pixels(data))
    assert essence_hash(reordered) == essence_hash(data)
    once = containers.set_xmp(reordered, XMP)
    twice = containers.set_xmp(once, XMP + b" ")
    assert containers.inspect(twice).xmp == XMP + b" "
    assert twice.count(b"<x:xmpmeta") == 1
    assert np.array_equal(_pixels(twice), _pixels(data))
    stripped = containers.strip(twice, frozenset(BlockKind))
    assert containers.inspect(stripped).blocks == ()
    assert np.array_equal(_pixels(stripped), _pixels(data))


@pytest.mark.parametrize("fmt", [ImageFormat.HEIC, ImageFormat.AVIF], ids=["heic", "avif"])
def test_heif_embed_writes_an_exif_item_linked_to_the_image(fmt: ImageFormat) -> None:
    tiff_bytes = b"MM\x00*\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00"
    data = sample(fmt)
    once = bmff.embed(data, XMP, tiff_bytes)
    info = containers.inspect(once)
    assert (info.xmp, info.exif) == (XMP, tiff_bytes)
    assert sorted(b.kind.value for b in info.blocks) == ["exif", "xmp"]
    assert b"cdsc" in once  # both items describe the primary image
    assert np.array_equal(_pixels(once), _pixels(data))
    other = b"II*\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    twice = bmff.embed(once, XMP, other)
    assert containers.inspect(twice).exif == other
    assert len(containers.inspect(twice).blocks) == 2
    assert np.array_equal(_pixels(twice), _pixels(data))
    kept = bmff.embed(twice, XMP, None)
    assert containers.inspect(kept).exif == other
    with pytest.raises(ContainerError, match="TIFF header"):
        bmff.embed(data, XMP, b"not tiff")
