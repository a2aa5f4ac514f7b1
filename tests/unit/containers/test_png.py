"""PNG container: metadata round trips, essence invariance, CRCs, hostile input."""

from __future__ import annotations

import contextlib
import hashlib
import io
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageDraw, PngImagePlugin

from provenance._core import containers
from provenance._core.containers import BlockKind, ImageFormat, png
from provenance._core.hashing import essence_hash
from provenance.errors import ContainerError, ProvenanceError

SAMPLE_MEDIA = Path(__file__).resolve().parents[3] / "sample_media"
SAMPLES = sorted(SAMPLE_MEDIA.glob("*.png")) if SAMPLE_MEDIA.is_dir() else []

XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
    b' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
    b'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Red boot</rdf:li></rdf:Alt></dc:title>'
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)


def _tiff(make: str = "Test") -> bytes:
    exif = Image.Exif()
    exif[0x010F] = make
    return exif.tobytes()[6:]


def _picture(mode: str, size: tuple[int, int] = (80, 60)) -> Image.Image:
    image = Image.new("RGBA", size, (240, 240, 230, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 6, 50, 50), fill=(200, 30, 20, 255))
    draw.rectangle((40, 20, 75, 55), fill=(20, 60, 180, 128))
    return image.convert(mode) if mode != "P" else image.convert("RGB").quantize(16)


def _png(mode: str = "RGBA", **options: object) -> bytes:
    out = io.BytesIO()
    _picture(mode).save(out, "PNG", **options)
    return out.getvalue()


def _apng() -> bytes:
    out = io.BytesIO()
    first = _picture("RGBA")
    first.save(
        out, "PNG", save_all=True, append_images=[first.rotate(90), first.rotate(180)], duration=80
    )
    return out.getvalue()


def _with_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "hello")
    info.add_text("Author", "somebody", zip=True)
    info.add_itxt("Description", "über")
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "Camera"
    return _png("RGB", pnginfo=info, icc_profile=profile, exif=exif, dpi=(72, 72))


def _palette_with_trns() -> bytes:
    image = _picture("P")
    out = io.BytesIO()
    image.save(out, "PNG", transparency=0)
    return out.getvalue()


def _rechunked(data: bytes, size: int) -> bytes:
    """``data`` with its image data cut into IDAT chunks of ``size`` bytes (libpng: 8 KiB)."""
    walked = _walk(data)
    idat = b"".join(data[s + 8 : e - 4] for t, s, e in walked if t == b"IDAT")
    first = next(s for t, s, _ in walked if t == b"IDAT")
    last = max(e for t, _, e in walked if t == b"IDAT")
    pieces = [_chunk(b"IDAT", idat[i : i + size]) for i in range(0, len(idat), size)]
    return data[:first] + b"".join(pieces) + data[last:]


def _walk(data: bytes) -> list[tuple[bytes, int, int]]:
    found, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        found.append((data[pos + 4 : pos + 8], pos, pos + 12 + length))
        pos += 12 + length
    return found


def _chunk(chunk_type: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(chunk_type + payload).to_bytes(4, "big")
    return len(payload).to_bytes(4, "big") + chunk_type + payload + crc


MADE = {
    "rgba": _png("RGBA"),
    "many_idat_with_text": _rechunked(_with_text(), 16),
    "rgb": _png("RGB"),
    "palette": _png("P"),
    "palette_trns": _palette_with_trns(),
    "grey16": _png("I;16"),
    "with_text_icc_phys": _with_text(),
    "apng": _apng(),
}
CASES = [pytest.param(data, id=name) for name, data in MADE.items()] + [
    pytest.param(path.read_bytes(), id=path.name) for path in SAMPLES
]


def _chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """An independent chunk walker: (type, offset, end) up to and including IEND."""
    found, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunk_type = data[pos + 4 : pos + 8]
        found.append((chunk_type, pos, pos + 12 + length))
        pos += 12 + length
        if chunk_type == b"IEND":
            break
    return found


def _insert_after_ihdr(data: bytes, *chunks: bytes) -> bytes:
    return data[:33] + b"".join(chunks) + data[33:]


def _frames(data: bytes) -> list[tuple[str, tuple[int, int], bytes]]:
    with Image.open(io.BytesIO(data)) as image:
        frames = []
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            frames.append((image.mode, image.size, image.tobytes()))
        return frames


def test_detect_format_and_properties() -> None:
    assert containers.detect_format(MADE["rgba"]) is ImageFormat.PNG
    assert (ImageFormat.PNG.mime, ImageFormat.PNG.extension) == ("image/png", "png")


@pytest.mark.parametrize("data", CASES)
def test_essence_is_exactly_the_image_chunks(data: bytes) -> None:
    info = containers.inspect(data)
    with Image.open(io.BytesIO(data)) as image:
        assert (info.width, info.height) == image.size
    wanted = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"acTL", b"fcTL", b"fdAT"}
    expected = hashlib.sha256(
        b"".join(data[s:e] for t, s, e in _chunks(data) if t in wanted)
    ).hexdigest()
    assert essence_hash(data) == expected
    metadata = [(s, e) for t, s, e in _chunks(data) if t not in wanted and t != b"IEND"]
    assert [(b.offset, b.end) for b in info.blocks] == metadata


def test_many_idat_chunks_read_as_one_essence_range_between_metadata() -> None:
    data = MADE["many_idat_with_text"]
    idat = [(s, e) for t, s, e in _chunks(data) if t == b"IDAT"]
    assert len(idat) > 10
    info = png.inspect(data)
    # IHDR alone (metadata follows it), then the run of IDAT chunks as one range.
    assert info.essence_ranges == ((8, 33), (idat[0][0], idat[-1][1]))
    assert _frames(data) == _frames(_with_text())


@pytest.mark.parametrize("size", [1, 64, 1 << 16])
def test_image_data_size_is_checked_from_the_same_walk(size: int) -> None:
    good = _rechunked(_png("RGB"), size)
    assert png.inspect(good, check_image_data=True) == png.inspect(good)
    png.check_image_data_size(good)
    # The IHDR of a 20000 x 20000 image over the same few hundred bytes of IDAT.
    ihdr = (20000).to_bytes(4, "big") * 2 + good[24:29]
    claims_more = good[:8] + _chunk(b"IHDR", ihdr) + good[33:]
    png.inspect(claims_more)  # the structure alone is fine
    for check in (
        lambda: png.inspect(claims_more, check_image_data=True),
        lambda: png.check_image_data_size(claims_more),
        lambda: containers.prepare_for_signing(claims_more),
    ):
        with pytest.raises(ContainerError, match=r"IDAT holds \d+ bytes, too few for the 20000"):
            check()


def test_kinds_of_text_icc_and_exif_chunks() -> None:
    info = containers.inspect(MADE["with_text_icc_phys"])
    kinds = {b.name: b.kind for b in info.blocks}
    assert kinds["iCCP"] is BlockKind.ICC
    assert kinds["tEXt"] is BlockKind.COMMENT
    assert kinds["zTXt"] is BlockKind.COMMENT
    assert kinds["iTXt"] is BlockKind.COMMENT
    assert kinds["pHYs"] is BlockKind.OTHER_METADATA
    assert kinds["eXIf"] is BlockKind.EXIF
    assert info.xmp is None


@pytest.mark.parametrize("data", CASES)
def test_set_xmp_round_trip_keeps_pixels_and_essence(data: bytes) -> None:
    written = containers.set_xmp(data, XMP)
    info = containers.inspect(written)
    assert info.xmp == XMP
    assert len(info.blocks_of(BlockKind.XMP)) == 1
    # One uncompressed iTXt right after IHDR, with a correct CRC.
    assert written[37:41] == b"iTXt"
    assert written[41:64] == png.XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + XMP[:1]
    assert _frames(written) == _frames(data)
    assert essence_hash(written) == essence_hash(data)
    with Image.open(io.BytesIO(written)) as image:
        assert image.info["XML:com.adobe.xmp"] == XMP.decode()


def test_set_xmp_replaces_the_packet_and_repairs_duplicates() -> None:
    chunk = _chunk(b"iTXt", png.XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + XMP)
    doubled = _insert_after_ihdr(MADE["rgb"], chunk, chunk)
    with pytest.raises(ContainerError, match="several XMP packets"):
        containers.inspect(doubled)
    replaced = containers.set_xmp(doubled, b"<x:xmpmeta/>")
    info = containers.inspect(replaced)
    assert info.xmp == b"<x:xmpmeta/>" and len(info.blocks_of(BlockKind.XMP)) == 1


def test_compressed_xmp_is_inflated() -> None:
    payload = png.XMP_KEYWORD + b"\x00\x01\x00en\x00\x00" + zlib.compress(XMP)
    data = _insert_after_ihdr(MADE["rgb"], _chunk(b"iTXt", payload))
    assert containers.inspect(data).xmp == XMP


def test_broken_compressed_xmp_is_a_container_error() -> None:
    payload = png.XMP_KEYWORD + b"\x00\x01\x00\x00\x00" + zlib.compress(XMP)[:-6]
    data = _insert_after_ihdr(MADE["rgb"], _chunk(b"iTXt", payload))
    with pytest.raises(ContainerError, match="iTXt chunk at offset 33"):
        containers.inspect(data)


def test_set_exif_round_trip() -> None:
    written = containers.set_exif(containers.set_xmp(MADE["rgba"], XMP), _tiff())
    info = containers.inspect(written)
    assert info.exif == _tiff() and info.xmp == XMP
    types = [t for t, _, _ in _chunks(written)]
    assert types.index(b"eXIf") < types.index(b"IDAT")
    with Image.open(io.BytesIO(written)) as image:
        assert image.getexif()[0x010F] == "Test"
    replaced = containers.set_exif(written, _tiff("Other"))
    assert containers.inspect(replaced).exif == _tiff("Other")
    assert [t for t, _, _ in _chunks(replaced)].count(b"eXIf") == 1
    assert essence_hash(replaced) == essence_hash(MADE["rgba"])


def test_c2pa_chunk_is_recognised_and_strippable() -> None:
    data = containers.set_xmp(MADE["rgba"], XMP)
    iend = data.rindex(b"IEND") - 4
    signed = data[:iend] + _chunk(b"caBX", b"\x00\x00\x00\x10jumb" + b"\x00" * 8) + data[iend:]
    assert containers.inspect(signed).has_c2pa
    dropped = containers.strip(signed, frozenset({BlockKind.C2PA}))
    assert not containers.inspect(dropped).has_c2pa
    assert containers.inspect(dropped).xmp == XMP
    assert dropped == data
    assert essence_hash(signed) == essence_hash(MADE["rgba"])


@pytest.mark.parametrize("data", CASES)
def test_strip_everything_keeps_the_essence(data: bytes) -> None:
    dressed = containers.set_exif(containers.set_xmp(data, XMP), _tiff())
    stripped = containers.strip(dressed, frozenset(BlockKind))
    assert containers.inspect(stripped).blocks == ()
    assert essence_hash(stripped) == essence_hash(data)
    assert _frames(stripped) == _frames(data)


def test_strip_removes_only_the_kinds_asked() -> None:
    data = MADE["with_text_icc_phys"]
    stripped = containers.strip(data, frozenset({BlockKind.COMMENT}))
    names = [b.name for b in containers.inspect(stripped).blocks]
    assert names == ["iCCP", "pHYs", "eXIf"]


@pytest.mark.parametrize("data", CASES)
def test_flipping_one_idat_byte_changes_the_essence(data: bytes) -> None:
    idat = next(s for t, s, _ in _chunks(data) if t == b"IDAT")
    mutated = bytearray(data)
    mutated[idat + 20] ^= 0x01
    assert essence_hash(bytes(mutated)) != essence_hash(data)


def test_palette_change_changes_the_essence() -> None:
    data = MADE["palette_trns"]
    plte = next(s for t, s, _ in _chunks(data) if t == b"PLTE")
    mutated = bytearray(data)
    mutated[plte + 8] ^= 0x01
    with pytest.raises(ContainerError, match=f"bad CRC in 'PLTE' chunk at offset {plte}"):
        essence_hash(bytes(mutated))
    length = int.from_bytes(data[plte : plte + 4], "big")
    recrc = data[:plte] + _chunk(b"PLTE", bytes(mutated[plte + 8 : plte + 8 + length]))
    recrc += data[plte + 12 + length :]
    assert essence_hash(recrc) != essence_hash(data)


def test_bad_crc_names_chunk_and_offset() -> None:
    data = bytearray(MADE["rgb"])
    data[29] ^= 0xFF  # the IHDR CRC
    with pytest.raises(ContainerError, match="bad CRC in 'IHDR' chunk at offset 8"):
        containers.inspect(bytes(data))


def test_idat_crc_is_checked_only_when_asked() -> None:
    data = bytearray(MADE["rgb"])
    idat, end = next((s, e) for t, s, e in _chunks(bytes(data)) if t == b"IDAT")
    data[end - 1] ^= 0xFF
    assert containers.inspect(bytes(data)).width == 80
    with pytest.raises(ContainerError, match=f"bad CRC in 'IDAT' chunk at offset {idat}"):
        png.inspect(bytes(data), check_image_crc=True)


def test_data_after_iend_is_ignored_and_kept() -> None:
    data = MADE["rgb"] + b"appended after IEND"
    assert essence_hash(data) == essence_hash(MADE["rgb"])
    assert containers.set_xmp(data, XMP).endswith(b"appended after IEND")


def test_every_truncation_raises_a_container_error() -> None:
    data = containers.set_xmp(_png("P"), XMP)
    for end in range(8, len(data)):
        with pytest.raises(ContainerError):
            containers.inspect(data[:end])


def test_chunk_length_past_the_end_names_the_chunk() -> None:
    data = bytearray(MADE["rgb"])
    idat = next(s for t, s, _ in _chunks(bytes(data)) if t == b"IDAT")
    data[idat : idat + 4] = (0x10000000).to_bytes(4, "big")
    with pytest.raises(ContainerError, match=f"'IDAT' chunk at offset {idat} runs past"):
        containers.inspect(bytes(data))


def test_first_chunk_must_be_ihdr() -> None:
    data = MADE["rgb"]
    swapped = data[:8] + _chunk(b"gAMA", b"\x00\x00\xb1\x8f") + data[8:]
    with pytest.raises(ContainerError, match="not a 13-byte IHDR"):
        containers.inspect(swapped)


def test_a_hostile_run_of_chunks_is_bounded() -> None:
    data = MADE["rgb"][:33] + _chunk(b"tEXt", b"") * (png.MAX_CHUNKS + 1)
    with pytest.raises(ContainerError, match="more than"):
        containers.inspect(data)


SMALL = [
    containers.set_exif(containers.set_xmp(_png("P"), XMP), _tiff()),
    MADE["apng"],
    MADE["with_text_icc_phys"],
]


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SMALL)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "length"]))
        at = draw(st.integers(0, len(data)))
        if action == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif action == "length" and at + 4 <= len(data):
            data[at : at + 4] = draw(st.integers(0, 2**32 - 1)).to_bytes(4, "big")
        else:
            del data[at:]
    return bytes(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_mutated_pngs_raise_nothing_but_provenance_errors(data: bytes) -> None:
    for operation in (
        containers.inspect,
        essence_hash,
        lambda d: containers.set_xmp(d, XMP),
        lambda d: containers.strip(d, frozenset(BlockKind)),
        lambda d: png.inspect(d, check_image_crc=True),
    ):
        with contextlib.suppress(ProvenanceError):
            operation(data)


def test_c2pa_slot_is_right_after_ihdr() -> None:
    # c2pa-rs png_io.rs puts the caBX chunk after IHDR; with one there already,
    # c2pa replaces it itself (no slot).
    data = MADE["with_text_icc_phys"]
    info = containers.inspect(data)
    staged = containers.embed(data, info, xmp=b"<x/>", exif=None)
    assert containers.c2pa_slot(staged, info) == _chunks(staged)[0][2] == 33
    stored = data[:33] + _chunk(b"caBX", b"\x00" * 16) + data[33:]
    assert containers.c2pa_slot(stored, containers.inspect(stored)) is None


@pytest.mark.parametrize("exif", [None, _tiff()], ids=["keep_exif", "new_exif"])
@pytest.mark.parametrize(
    "data",
    [
        pytest.param(MADE["rgba"], id="plain"),
        pytest.param(
            containers.set_exif(containers.set_xmp(_png(), XMP), _tiff("Old")), id="xmp_exif"
        ),
        pytest.param(_rechunked(_png(), 16), id="small_idats"),
    ],
)
def test_stage_is_embed_and_its_c2pa_slot_without_the_copy(data: bytes, exif: bytes | None) -> None:
    # Signing stages the embedding (issue 20): the same file and the same slot (after
    # IHDR, before the new chunks, as c2pa-rs puts caBX), copied once with the store.
    info = containers.inspect(data)
    embedded = containers.embed(data, info, xmp=XMP, exif=exif)
    staged = containers.stage(data, info, xmp=XMP, exif=exif)
    assert staged.join() == embedded
    assert staged.slot == containers.c2pa_slot(embedded, info) == 33
    store = _chunk(b"caBX", b"\x00" * 50)
    assert staged.join(store) == embedded[:33] + store + embedded[33:]
