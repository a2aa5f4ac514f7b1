"""JPEG container: metadata round trips, essence invariance, hostile input."""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from PIL import Image, ImageDraw

from provenance._core import containers
from provenance._core.containers import BlockKind, ImageFormat, jpeg
from provenance._core.hashing import essence_hash
from provenance.errors import ContainerError, ProvenanceError, UnsupportedFormat, XmpError
from tests.fuzz.strategies import jpeg_mutated

SAMPLE_MEDIA = Path(__file__).resolve().parents[3] / "sample_media"
SAMPLES = sorted(SAMPLE_MEDIA.glob("*.jpg")) if SAMPLE_MEDIA.is_dir() else []

XMP = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
    b' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
    b'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Red boot</rdf:li></rdf:Alt></dc:title>'
    b'</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)


def _tiff(make: str = "Test") -> bytes:
    exif = Image.Exif()
    exif[0x010F] = make
    return exif.tobytes()[6:]


def _picture(mode: str = "RGB", size: tuple[int, int] = (96, 64)) -> Image.Image:
    image = Image.new("RGB", size, (240, 240, 230))
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 6, 60, 50), fill=(200, 30, 20))
    draw.rectangle((50, 20, 90, 60), fill=(20, 60, 180))
    draw.line((0, 63, 95, 0), fill=(0, 0, 0), width=3)
    return image.convert(mode)


def _jpeg(mode: str = "RGB", **options: object) -> bytes:
    out = io.BytesIO()
    _picture(mode).save(out, "JPEG", **options)
    return out.getvalue()


MADE = {
    "baseline": _jpeg(quality=85),
    "progressive": _jpeg(quality=80, progressive=True),
    "grey": _jpeg("L"),
    "cmyk_adobe": _jpeg("CMYK"),
    "restart_markers": _jpeg(restart_marker_blocks=1),
    "subsampling_444": _jpeg(subsampling=0, quality=95),
}
CASES = [pytest.param(data, id=name) for name, data in MADE.items()] + [
    pytest.param(path.read_bytes(), id=path.name) for path in SAMPLES
]


def _pixels(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as image:
        return image.mode, image.size, image.tobytes()


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def _insert_after_soi(data: bytes, *segments: bytes) -> bytes:
    return data[:2] + b"".join(segments) + data[2:]


def _ecs_offset(data: bytes) -> int:
    """An offset well inside the first scan's entropy-coded data whose flip stays valid."""
    info = containers.inspect(data)
    sos = data.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    assert any(s <= start < e for s, e in info.essence_ranges)
    for offset in range(start + 10, len(data)):
        if data[offset] not in (0xFF, 0xFE) and data[offset - 1] != 0xFF:
            return offset
    raise AssertionError("no flippable byte")


def _jumbf_segments(label: bytes, payload: bytes, *, instance: int = 1) -> list[bytes]:
    """APP11 segments of one JUMBF superbox, split like c2pa-rs does (ISO 19566-5)."""
    uuid = (b"c2pa" if label == b"c2pa" else b"abcd") + bytes.fromhex("00110010800000AA00389B71")
    description = b"jumd" + uuid + b"\x03" + label + b"\x00"
    description = (len(description) + 4).to_bytes(4, "big") + description
    content = description + payload
    box_header = (len(content) + 8).to_bytes(4, "big") + b"jumb"
    pieces = [content[i : i + 1000] for i in range(0, len(content), 1000)]
    return [
        _segment(
            0xEB,
            b"JP" + instance.to_bytes(2, "big") + seq.to_bytes(4, "big") + box_header + piece,
        )
        for seq, piece in enumerate(pieces, start=1)
    ]


# --- format detection and basic inspection -------------------------------------------------


def test_detect_format_and_properties() -> None:
    assert containers.detect_format(MADE["baseline"]) is ImageFormat.JPEG
    assert ImageFormat.JPEG.mime == "image/jpeg"
    assert ImageFormat.JPEG.extension == "jpg"


@pytest.mark.parametrize(
    "data", [b"", b"BM....", b"\x00" * 20, b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00"]
)
def test_detect_format_refuses_unknown_input(data: bytes) -> None:
    with pytest.raises(UnsupportedFormat):
        containers.detect_format(data)
    with pytest.raises(UnsupportedFormat):
        containers.inspect(data)


@pytest.mark.parametrize("data", CASES)
def test_inspect_reads_frame_size_and_essence(data: bytes) -> None:
    info = containers.inspect(data)
    with Image.open(io.BytesIO(data)) as image:
        assert (info.width, info.height) == image.size
    assert info.format is ImageFormat.JPEG
    ranges = info.essence_ranges
    assert ranges and all(s < e for s, e in ranges)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))
    assert ranges[-1][1] == data.rindex(b"\xff\xd9") + 2
    for block in info.blocks:
        marker = data[block.offset + 1]
        assert data[block.offset] == 0xFF and (0xE0 <= marker <= 0xEF or marker == 0xFE)
        assert all(block.end <= s or block.offset >= e for s, e in ranges)


def test_baseline_essence_is_everything_after_soi_and_jfif() -> None:
    data = MADE["baseline"]
    assert data[2:4] == b"\xff\xe0"
    app0_end = 4 + int.from_bytes(data[4:6], "big")
    assert containers.inspect(data).essence_ranges == ((app0_end, len(data)),)


# --- XMP -------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", CASES)
def test_set_xmp_round_trip_keeps_pixels_and_essence(data: bytes) -> None:
    written = containers.set_xmp(data, XMP)
    info = containers.inspect(written)
    assert info.xmp == XMP
    assert len(info.blocks_of(BlockKind.XMP)) == 1
    assert _pixels(written) == _pixels(data)
    assert essence_hash(written) == essence_hash(data)
    with Image.open(io.BytesIO(written)) as image:
        assert image.info["xmp"] == XMP


def test_set_xmp_replaces_the_packet() -> None:
    once = containers.set_xmp(MADE["baseline"], XMP)
    twice = containers.set_xmp(once, XMP.replace(b"Red boot", b"Blue boot"))
    info = containers.inspect(twice)
    assert info.xmp is not None and b"Blue boot" in info.xmp
    assert len(info.blocks_of(BlockKind.XMP)) == 1
    assert len(twice) == len(once) + 1


def test_set_xmp_goes_after_jfif_and_exif() -> None:
    with_exif = containers.set_exif(MADE["baseline"], _tiff())
    written = containers.set_xmp(with_exif, XMP)
    names = [(b.name, b.kind) for b in containers.inspect(written).blocks]
    assert names[:3] == [
        ("APP0", BlockKind.OTHER_METADATA),
        ("APP1", BlockKind.EXIF),
        ("APP1", BlockKind.XMP),
    ]
    assert containers.inspect(written).blocks[0].offset == 2


def test_several_xmp_packets_are_refused_and_set_xmp_repairs() -> None:
    app1 = _segment(0xE1, jpeg.XMP_HEADER + XMP)
    doubled = _insert_after_soi(MADE["baseline"], app1, app1)
    with pytest.raises(ContainerError, match="several XMP packets"):
        containers.inspect(doubled)
    repaired = containers.inspect(containers.set_xmp(doubled, XMP))
    assert repaired.xmp == XMP and len(repaired.blocks_of(BlockKind.XMP)) == 1


def test_oversized_standard_packet_is_refused() -> None:
    packet = b" " * (jpeg.MAX_STANDARD_XMP_BYTES + 1)
    with pytest.raises(ContainerError, match="does not fit"):
        containers.set_xmp(MADE["baseline"], packet)
    fits = containers.set_xmp(MADE["baseline"], packet[:-1])
    assert containers.inspect(fits).xmp == packet[:-1]


def _extended_pair(size: int) -> tuple[bytes, bytes]:
    extended = b"<x:xmpmeta>" + bytes(range(32, 127)) * (size // 95) + b"</x:xmpmeta>"
    guid = jpeg.extended_xmp_guid(extended)
    standard = XMP.replace(
        b'rdf:about=""', b'rdf:about="" xmlns:xmpNote="http://ns.adobe.com/xmp/note/"'
    ).replace(
        b"</rdf:Description>",
        b"<xmpNote:HasExtendedXMP>"
        + guid.encode()
        + b"</xmpNote:HasExtendedXMP></rdf:Description>",
    )
    return standard, extended


def test_extended_xmp_round_trip() -> None:
    standard, extended = _extended_pair(150_000)
    guid = jpeg.extended_xmp_guid(extended)
    assert re.fullmatch(r"[0-9A-F]{32}", guid)
    assert guid == hashlib.md5(extended, usedforsecurity=False).hexdigest().upper()
    written = jpeg.set_xmp(MADE["progressive"], standard, extended=extended)
    info = containers.inspect(written)
    assert info.xmp == standard
    assert info.extended_xmp == extended
    chunks = info.blocks_of(BlockKind.EXTENDED_XMP)
    assert len(chunks) == 3
    first = chunks[0].offset + 4
    assert written[first : first + 35] == jpeg.EXTENDED_XMP_HEADER
    assert written[first + 35 : first + 67] == guid.encode()
    assert int.from_bytes(written[first + 67 : first + 71], "big") == len(extended)
    assert _pixels(written) == _pixels(MADE["progressive"])
    assert essence_hash(written) == essence_hash(MADE["progressive"])
    # set_xmp without extended removes the old extended segments as well.
    plain = containers.inspect(containers.set_xmp(written, XMP))
    assert plain.extended_xmp is None and not plain.blocks_of(BlockKind.EXTENDED_XMP)


def test_extended_xmp_out_of_order_and_incomplete() -> None:
    standard, extended = _extended_pair(150_000)
    written = jpeg.set_xmp(MADE["baseline"], standard, extended=extended)
    chunks = containers.inspect(written).blocks_of(BlockKind.EXTENDED_XMP)
    pieces = [written[c.offset : c.end] for c in chunks]
    start, end = chunks[0].offset, chunks[-1].end
    reordered = written[:start] + b"".join(reversed(pieces)) + written[end:]
    assert containers.inspect(reordered).extended_xmp == extended
    missing = written[: chunks[1].offset] + written[chunks[1].end :]
    assert containers.inspect(missing).extended_xmp is None
    assert containers.inspect(missing).xmp == standard


def test_extended_xmp_must_be_named_by_the_standard_packet() -> None:
    with pytest.raises(XmpError):
        jpeg.set_xmp(MADE["baseline"], XMP, extended=b"<x:xmpmeta/>")


# --- EXIF, C2PA, strip ---------------------------------------------------------------------------


def test_set_exif_round_trip() -> None:
    tiff = _tiff()
    written = containers.set_exif(MADE["baseline"], tiff)
    info = containers.inspect(written)
    assert info.exif == tiff
    assert [b.name for b in info.blocks[:2]] == ["APP0", "APP1"]
    with Image.open(io.BytesIO(written)) as image:
        assert image.getexif()[0x010F] == "Test"
    replaced = containers.set_exif(written, _tiff("Other"))
    assert containers.inspect(replaced).exif == _tiff("Other")
    assert len(containers.inspect(replaced).blocks_of(BlockKind.EXIF)) == 1
    assert essence_hash(replaced) == essence_hash(MADE["baseline"])


def test_set_exif_refuses_non_tiff() -> None:
    with pytest.raises(ContainerError, match="TIFF"):
        containers.set_exif(MADE["baseline"], b"Exif\x00\x00II*\x00")


def test_c2pa_app11_segments_are_recognised_and_strippable() -> None:
    c2pa = _jumbf_segments(b"c2pa", b"\x00" * 2500, instance=7)
    other = _jumbf_segments(b"other", b"\x01" * 100, instance=8)
    assert len(c2pa) == 3
    data = containers.set_xmp(MADE["baseline"], XMP)
    data = _insert_after_soi(data, *c2pa, *other)
    info = containers.inspect(data)
    assert info.has_c2pa
    assert [b.kind for b in info.blocks if b.name == "APP11"] == [BlockKind.C2PA] * 3 + [
        BlockKind.OTHER_METADATA
    ]
    dropped = containers.strip(data, frozenset({BlockKind.C2PA}))
    after = containers.inspect(dropped)
    assert not after.has_c2pa and after.xmp == XMP
    assert essence_hash(dropped) == essence_hash(data) == essence_hash(MADE["baseline"])


def test_c2pa_slot_is_where_c2pa_rs_inserts_a_store() -> None:
    # c2pa-rs jpeg_io.rs: after the last APP0, else right after SOI; never when a store
    # is there already (c2pa replaces it in place) or an APP0 follows the image data.
    baseline = MADE["baseline"]
    assert baseline[2:4] == b"\xff\xe0"
    app0_end = 4 + int.from_bytes(baseline[4:6], "big")
    info = containers.inspect(baseline)
    staged = containers.embed(baseline, info, xmp=XMP, exif=_tiff())
    assert containers.c2pa_slot(staged, info) == app0_end
    no_app0 = containers.strip(baseline, frozenset({BlockKind.OTHER_METADATA}))
    assert containers.c2pa_slot(no_app0, containers.inspect(no_app0)) == 2
    second_app0 = _insert_after_soi(baseline, _segment(0xE0, b"JFXX\x00\x10"))
    assert containers.c2pa_slot(second_app0, containers.inspect(second_app0)) == app0_end + 10
    stored = _insert_after_soi(baseline, *_jumbf_segments(b"c2pa", b"\x00" * 40))
    assert containers.c2pa_slot(stored, containers.inspect(stored)) is None
    eoi = baseline.rindex(b"\xff\xd9")
    late = baseline[:eoi] + _segment(0xE0, b"late") + baseline[eoi:]
    assert containers.c2pa_slot(late, containers.inspect(late)) is None


def _layouts() -> list[tuple[str, bytes]]:
    """JPEGs whose metadata sits where embedding moves things: before, between, after APP0s."""
    baseline = MADE["baseline"]
    exif = _segment(0xE1, b"Exif\x00\x00" + _tiff("Old"))
    xmp = _segment(0xE1, containers.jpeg.XMP_HEADER + XMP)
    icc = _segment(0xE2, b"ICC_PROFILE\x00" + b"\x01\x01" + b"\x00" * 40)
    no_app0 = containers.strip(baseline, frozenset({BlockKind.OTHER_METADATA}))
    return [
        ("baseline", baseline),
        ("no_app0", no_app0),
        ("exif_then_app0", _insert_after_soi(no_app0, exif, baseline[2:20])),
        ("icc_then_app0", _insert_after_soi(no_app0, icc, baseline[2:20])),
        ("two_app0_xmp_between", _insert_after_soi(baseline, _segment(0xE0, b"JFXX\x00"), xmp)),
        ("xmp_exif_after_app0", baseline[:20] + xmp + exif + baseline[20:]),
        ("stored", _insert_after_soi(baseline, *_jumbf_segments(b"c2pa", b"\x00" * 40))),
        ("late_app0", baseline[:-2] + _segment(0xE0, b"late") + baseline[-2:]),
    ]


@pytest.mark.parametrize(("name", "data"), _layouts(), ids=[name for name, _ in _layouts()])
@pytest.mark.parametrize("exif", [None, _tiff()], ids=["keep_exif", "new_exif"])
def test_stage_is_embed_and_its_c2pa_slot_without_the_copy(
    name: str, data: bytes, exif: bytes | None
) -> None:
    # Signing stages the embedding (issue 20): the same file, and the slot c2pa_slot
    # finds in it, so the store goes where it went when the file was embedded first.
    info = containers.inspect(data)
    embedded = containers.embed(data, info, xmp=XMP, exif=exif)
    staged = containers.stage(data, info, xmp=XMP, exif=exif)
    assert staged.join() == embedded
    assert staged.slot == containers.c2pa_slot(embedded, info)
    if staged.slot is not None:
        store = _jumbf_segments(b"c2pa", b"\x07" * 30)[0]
        joined = staged.join(store)
        assert joined == embedded[: staged.slot] + store + embedded[staged.slot :]
        assert containers.inspect(joined).has_c2pa


def test_unlabelled_jumbf_is_not_c2pa() -> None:
    data = _insert_after_soi(MADE["baseline"], *_jumbf_segments(b"other", b"x" * 10))
    assert not containers.inspect(data).has_c2pa


@pytest.mark.parametrize("data", CASES)
def test_strip_everything_keeps_the_essence(data: bytes) -> None:
    dressed = containers.set_exif(containers.set_xmp(data, XMP), _tiff())
    dressed = _insert_after_soi(dressed, _segment(0xFE, b"a comment"))
    stripped = containers.strip(dressed, frozenset(BlockKind))
    assert containers.inspect(stripped).blocks == ()
    assert essence_hash(stripped) == essence_hash(data)
    assert _pixels(stripped)[1:] == _pixels(data)[1:]


def test_strip_removes_only_the_kinds_asked() -> None:
    dressed = containers.set_exif(containers.set_xmp(MADE["baseline"], XMP), _tiff())
    dressed = _insert_after_soi(dressed, _segment(0xFE, b"hello"))
    stripped = containers.strip(dressed, frozenset({BlockKind.XMP, BlockKind.COMMENT}))
    kinds = [b.kind for b in containers.inspect(stripped).blocks]
    assert kinds == [BlockKind.OTHER_METADATA, BlockKind.EXIF]
    assert b"hello" not in stripped


# --- essence -----------------------------------------------------------------------------------


@pytest.mark.parametrize("data", CASES)
def test_flipping_one_coded_byte_changes_the_essence(data: bytes) -> None:
    offset = _ecs_offset(data)
    mutated = bytearray(data)
    mutated[offset] ^= 0x01
    assert essence_hash(bytes(mutated)) != essence_hash(data)


def test_quantisation_table_is_essence() -> None:
    data = MADE["baseline"]
    dqt = data.index(b"\xff\xdb") + 10
    mutated = data[:dqt] + bytes([data[dqt] ^ 1]) + data[dqt + 1 :]
    assert essence_hash(mutated) != essence_hash(data)


def test_comment_between_scans_and_fill_bytes_are_not_essence() -> None:
    data = MADE["progressive"]
    second_sos = data.index(b"\xff\xda", data.index(b"\xff\xda") + 2)
    edited = data[:second_sos] + _segment(0xFE, b"mid-file") + b"\xff\xff" + data[second_sos:]
    info = containers.inspect(edited)
    assert [b.kind for b in info.blocks][-1] is BlockKind.COMMENT
    assert essence_hash(edited) == essence_hash(data)
    assert _pixels(edited) == _pixels(data)
    assert essence_hash(containers.strip(edited, frozenset(BlockKind))) == essence_hash(data)


def test_progressive_essence_spans_several_scans() -> None:
    data = MADE["progressive"]
    assert data.count(b"\xff\xda") > 1
    info = containers.inspect(data)
    covered = sum(e - s for s, e in info.essence_ranges)
    app0 = 2 + int.from_bytes(data[4:6], "big") + 2
    assert covered == len(data) - app0


def test_restart_markers_stay_inside_the_scan() -> None:
    data = MADE["restart_markers"]
    assert b"\xff\xd0" in data
    assert len(containers.inspect(data).essence_ranges) == 1


def test_data_after_eoi_is_ignored_and_kept() -> None:
    data = MADE["baseline"] + b"TRAILER\xff\xd8\xff\xe1garbage"
    assert essence_hash(data) == essence_hash(MADE["baseline"])
    written = containers.set_xmp(data, XMP)
    assert written.endswith(b"TRAILER\xff\xd8\xff\xe1garbage")
    assert containers.inspect(written).xmp == XMP


# --- malformed input ------------------------------------------------------------------------------


def test_missing_eoi_is_a_container_error() -> None:
    with pytest.raises(ContainerError, match="no marker after it"):
        containers.inspect(MADE["baseline"][:-2])


def test_missing_soi_is_a_container_error() -> None:
    with pytest.raises(ContainerError, match="SOI"):
        jpeg.inspect(MADE["baseline"][2:])


def test_segment_length_past_the_end_names_the_offset() -> None:
    data = bytearray(MADE["baseline"])
    data[4:6] = b"\xff\xf0"
    with pytest.raises(ContainerError, match="APP0 segment at offset 2"):
        containers.inspect(bytes(data))


def test_every_truncation_raises_a_container_error() -> None:
    data = containers.set_xmp(_jpeg(), XMP)
    for end in range(2, len(data)):
        with pytest.raises(ContainerError):
            containers.inspect(data[:end])
        with pytest.raises(ContainerError):
            essence_hash(data[:end])


def test_a_hostile_run_of_markers_is_bounded() -> None:
    data = b"\xff\xd8" + b"\xff\xfe\x00\x02" * (jpeg.MAX_MARKERS + 1)
    with pytest.raises(ContainerError, match="more than"):
        containers.inspect(data)


SMALL = [containers.set_exif(containers.set_xmp(_jpeg(), XMP), _tiff()), MADE["progressive"]]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jpeg_mutated(SMALL))
def test_mutated_jpegs_raise_nothing_but_provenance_errors(data: bytes) -> None:
    for operation in (
        containers.inspect,
        essence_hash,
        lambda d: containers.set_xmp(d, XMP),
        lambda d: containers.strip(d, frozenset(BlockKind)),
        lambda d: jpeg.c2pa_slot(d, ()),
    ):
        with contextlib.suppress(ProvenanceError):
            operation(data)
