"""WebP container: metadata round trips, VP8X conversion, essence invariance, hostile input."""

from __future__ import annotations

import contextlib
import hashlib
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageDraw

from provenance._core import containers
from provenance._core.containers import BlockKind, ImageFormat, webp
from provenance._core.hashing import essence_hash
from provenance.errors import ContainerError, ProvenanceError

SAMPLE_MEDIA = Path(__file__).resolve().parents[3] / "sample_media"
SAMPLES = sorted(SAMPLE_MEDIA.glob("*.webp")) if SAMPLE_MEDIA.is_dir() else []

XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
    b' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
    b'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Red boot</rdf:li></rdf:Alt></dc:title>'
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)
ODD_XMP = XMP + b" " * (1 - len(XMP) % 2)
ESSENCE_TYPES = {b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF"}


def _tiff(make: str = "Test") -> bytes:
    exif = Image.Exif()
    exif[0x010F] = make
    return exif.tobytes()[6:]


def _picture(size: tuple[int, int] = (90, 70)) -> Image.Image:
    image = Image.new("RGBA", size, (240, 240, 230, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 6, 50, 50), fill=(200, 30, 20, 255))
    draw.rectangle((40, 20, 85, 65), fill=(20, 60, 180, 160))
    return image


def _webp(mode: str = "RGB", **options: object) -> bytes:
    out = io.BytesIO()
    _picture().convert(mode).save(out, "WEBP", **options)
    return out.getvalue()


def _animated() -> bytes:
    out = io.BytesIO()
    first = _picture().convert("RGB")
    first.save(out, "WEBP", save_all=True, append_images=[first.rotate(90)], duration=100)
    return out.getvalue()


def _with_icc() -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return _webp("RGB", icc_profile=profile)


MADE = {
    "lossy": _webp("RGB", quality=80),
    "lossless": _webp("RGB", lossless=True),
    "lossless_alpha": _webp("RGBA", lossless=True),
    "lossy_alpha": _webp("RGBA", quality=80),
    "animated": _animated(),
    "icc": _with_icc(),
}
CASES = [pytest.param(data, id=name) for name, data in MADE.items()] + [
    pytest.param(path.read_bytes(), id=path.name) for path in SAMPLES
]


def _chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """An independent chunk walker: (FourCC, offset, end including padding)."""
    found, pos = [], 12
    end_of_riff = 8 + int.from_bytes(data[4:8], "little")
    while pos + 8 <= end_of_riff:
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        end = pos + 8 + size + (size & 1)
        found.append((data[pos : pos + 4], pos, end))
        pos = end
    return found


def _types(data: bytes) -> list[bytes]:
    return [fourcc for fourcc, _, _ in _chunks(data)]


def _flags(data: bytes) -> int:
    assert data[12:16] == b"VP8X"
    return data[20]


def _chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + len(payload).to_bytes(4, "little") + payload + b"\x00" * (len(payload) & 1)


def _append_chunk(data: bytes, chunk: bytes) -> bytes:
    out = data + chunk
    return out[:4] + (len(out) - 8).to_bytes(4, "little") + out[8:]


def _frames(data: bytes) -> list[tuple[str, tuple[int, int], bytes]]:
    with Image.open(io.BytesIO(data)) as image:
        frames = []
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            frames.append((image.mode, image.size, image.tobytes()))
        return frames


def test_made_files_cover_the_three_layouts() -> None:
    assert _types(MADE["lossy"]) == [b"VP8 "]
    assert _types(MADE["lossless_alpha"]) == [b"VP8L"]
    assert _types(MADE["lossy_alpha"]) == [b"VP8X", b"ALPH", b"VP8 "]
    assert _types(MADE["animated"])[:3] == [b"VP8X", b"ANIM", b"ANMF"]
    assert _types(MADE["icc"])[:2] == [b"VP8X", b"ICCP"]


def test_detect_format_and_properties() -> None:
    assert containers.detect_format(MADE["lossy"]) is ImageFormat.WEBP
    assert (ImageFormat.WEBP.mime, ImageFormat.WEBP.extension) == ("image/webp", "webp")


@pytest.mark.parametrize("data", CASES)
def test_essence_is_exactly_the_image_chunks(data: bytes) -> None:
    info = containers.inspect(data)
    with Image.open(io.BytesIO(data)) as image:
        assert (info.width, info.height) == image.size
    expected = b"".join(data[s:e] for t, s, e in _chunks(data) if t in ESSENCE_TYPES)
    assert essence_hash(data) == hashlib.sha256(expected).hexdigest()


@pytest.mark.parametrize("data", CASES)
def test_set_xmp_round_trip_keeps_pixels_and_essence(data: bytes) -> None:
    assert len(ODD_XMP) % 2 == 1
    written = containers.set_xmp(data, ODD_XMP)
    info = containers.inspect(written)
    assert info.xmp == ODD_XMP
    assert _types(written)[0] == b"VP8X" and _types(written)[-1] == b"XMP "
    assert _flags(written) & webp.FLAG_XMP
    assert int.from_bytes(written[4:8], "little") == len(written) - 8
    assert len(written) % 2 == 0
    assert _frames(written) == _frames(data)
    assert essence_hash(written) == essence_hash(data)
    with Image.open(io.BytesIO(written)) as image:
        assert image.info["xmp"] == ODD_XMP


def test_set_xmp_replaces_the_packet_and_repairs_duplicates() -> None:
    doubled = _append_chunk(_append_chunk(MADE["icc"], _chunk(b"XMP ", XMP)), _chunk(b"XMP ", XMP))
    with pytest.raises(ContainerError, match="several XMP packets"):
        containers.inspect(doubled)
    written = containers.set_xmp(doubled, b"<x:xmpmeta/>")
    assert containers.inspect(written).xmp == b"<x:xmpmeta/>"
    assert _types(written).count(b"XMP ") == 1


@pytest.mark.parametrize(
    ("name", "alpha"), [("lossy", False), ("lossless", False), ("lossless_alpha", True)]
)
def test_simple_file_becomes_vp8x(name: str, alpha: bool) -> None:
    data = MADE[name]
    written = containers.set_xmp(data, XMP)
    assert _types(written) == [b"VP8X", _types(data)[0], b"XMP "]
    assert bool(_flags(written) & webp.FLAG_ALPHA) is alpha
    assert int.from_bytes(written[24:27], "little") + 1 == 90
    assert int.from_bytes(written[27:30], "little") + 1 == 70
    with Image.open(io.BytesIO(written)) as before, Image.open(io.BytesIO(data)) as after:
        assert (before.size, before.mode) == (after.size, after.mode)
        assert before.tobytes() == after.tobytes()


def test_set_exif_goes_before_xmp_and_sets_its_flag() -> None:
    written = containers.set_exif(containers.set_xmp(MADE["lossy_alpha"], XMP), _tiff())
    assert _types(written) == [b"VP8X", b"ALPH", b"VP8 ", b"EXIF", b"XMP "]
    assert _flags(written) & (webp.FLAG_EXIF | webp.FLAG_XMP | webp.FLAG_ALPHA) == 0x1C
    info = containers.inspect(written)
    assert info.exif == _tiff() and info.xmp == XMP
    with Image.open(io.BytesIO(written)) as image:
        assert image.getexif()[0x010F] == "Test"
    replaced = containers.set_exif(written, _tiff("Other"))
    assert containers.inspect(replaced).exif == _tiff("Other")
    assert _types(replaced).count(b"EXIF") == 1
    assert essence_hash(replaced) == essence_hash(MADE["lossy_alpha"])


def test_exif_with_jpeg_header_is_accepted() -> None:
    data = _append_chunk(
        containers.set_xmp(MADE["lossy"], XMP), _chunk(b"EXIF", b"Exif\x00\x00" + _tiff())
    )
    assert containers.inspect(data).exif == _tiff()


def test_strip_clears_flags() -> None:
    dressed = containers.set_exif(containers.set_xmp(MADE["icc"], XMP), _tiff())
    assert _flags(dressed) & 0x2C == 0x2C
    stripped = containers.strip(dressed, frozenset({BlockKind.ICC, BlockKind.XMP}))
    assert _types(stripped) == [b"VP8X", b"VP8 ", b"EXIF"]
    assert _flags(stripped) & 0x2C == webp.FLAG_EXIF
    assert containers.inspect(stripped).exif == _tiff()
    assert essence_hash(stripped) == essence_hash(MADE["icc"])


@pytest.mark.parametrize("data", CASES)
def test_strip_everything_keeps_the_essence(data: bytes) -> None:
    dressed = containers.set_exif(containers.set_xmp(data, XMP), _tiff())
    stripped = containers.strip(dressed, frozenset(BlockKind))
    assert containers.inspect(stripped).blocks == ()
    assert _flags(stripped) & 0x2C == 0
    assert essence_hash(stripped) == essence_hash(data)
    assert _frames(stripped) == _frames(data)


def test_c2pa_chunk_is_recognised_and_strippable() -> None:
    data = containers.set_xmp(MADE["lossless"], XMP)
    signed = _append_chunk(data, _chunk(b"C2PA", b"\x00\x00\x00\x10jumb" + b"\x00" * 9))
    info = containers.inspect(signed)
    assert info.has_c2pa and [b.name for b in info.blocks] == ["XMP ", "C2PA"]
    dropped = containers.strip(signed, frozenset({BlockKind.C2PA}))
    assert dropped == data
    assert essence_hash(signed) == essence_hash(MADE["lossless"])


def test_unknown_chunks_are_other_metadata() -> None:
    data = _append_chunk(containers.set_xmp(MADE["lossy"], XMP), _chunk(b"JUNK", b"abc"))
    assert containers.inspect(data).blocks[-1].kind is BlockKind.OTHER_METADATA
    assert essence_hash(data) == essence_hash(MADE["lossy"])


@pytest.mark.parametrize("data", CASES)
def test_flipping_one_coded_byte_changes_the_essence(data: bytes) -> None:
    _, start, end = next(c for c in _chunks(data) if c[0] in {b"VP8 ", b"VP8L", b"ANMF"})
    mutated = bytearray(data)
    mutated[(start + end) // 2] ^= 0x01
    assert essence_hash(bytes(mutated)) != essence_hash(data)


def test_riff_size_larger_than_the_file_is_a_truncation() -> None:
    data = bytearray(MADE["lossy"])
    data[4:8] = (len(data) + 100).to_bytes(4, "little")
    with pytest.raises(ContainerError, match="RIFF size"):
        containers.inspect(bytes(data))


def test_bytes_after_the_riff_are_ignored_and_kept() -> None:
    data = MADE["lossy"] + b"TRAILER"
    assert essence_hash(data) == essence_hash(MADE["lossy"])
    written = containers.set_xmp(data, XMP)
    assert written.endswith(b"TRAILER")
    assert int.from_bytes(written[4:8], "little") == len(written) - 8 - len(b"TRAILER")
    assert containers.inspect(written).xmp == XMP


def test_missing_final_padding_is_tolerated_and_added() -> None:
    data = containers.set_xmp(MADE["lossy"], ODD_XMP)
    unpadded = data[:4] + (len(data) - 9).to_bytes(4, "little") + data[8:-1]
    assert containers.inspect(unpadded).xmp == ODD_XMP
    assert containers.set_exif(unpadded, _tiff())[-1:] == b"\x00"


def test_chunk_past_the_riff_names_the_chunk() -> None:
    data = bytearray(MADE["lossy"])
    data[16:20] = (len(data)).to_bytes(4, "little")
    with pytest.raises(ContainerError, match="'VP8 ' chunk at offset 12 runs past"):
        containers.inspect(bytes(data))


def test_first_chunk_must_be_an_image_or_vp8x() -> None:
    data = MADE["lossy"]
    with pytest.raises(ContainerError, match="no VP8, VP8L or VP8X chunk at offset 12"):
        containers.inspect(data[:12] + _chunk(b"EXIF", _tiff()) + data[12:])


def test_every_truncation_raises_a_container_error() -> None:
    data = containers.set_exif(containers.set_xmp(MADE["lossy_alpha"], ODD_XMP), _tiff())
    # Cuts that leave a whole file behind: after a chunk from VP8 on, or just
    # before the padding byte of an odd-sized chunk (tolerated at the end).
    whole = set()
    for _, start, end in _chunks(data):
        if start >= data.index(b"VP8 "):
            whole.add(end)
            size = int.from_bytes(data[start + 4 : start + 8], "little")
            whole.add(start + 8 + size)
    for end in range(12, len(data)):
        with pytest.raises(ContainerError):
            containers.inspect(data[:end])
        agreeing = data[:4] + (end - 8).to_bytes(4, "little") + data[8:end]
        if end in whole:
            assert containers.inspect(agreeing).essence_ranges
        else:
            with pytest.raises(ContainerError):
                containers.inspect(agreeing)


def test_a_hostile_run_of_chunks_is_bounded() -> None:
    chunks = _chunk(b"JUNK", b"") * (webp.MAX_CHUNKS + 1)
    data = _append_chunk(containers.set_xmp(MADE["lossy"], XMP), chunks)
    with pytest.raises(ContainerError, match="more than"):
        containers.inspect(data)


SMALL = [
    containers.set_exif(containers.set_xmp(MADE["lossy_alpha"], XMP), _tiff()),
    MADE["lossless_alpha"],
    MADE["animated"],
    MADE["lossy"],
]


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SMALL)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "size", "fix"]))
        at = draw(st.integers(0, len(data)))
        if action == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif action == "size" and at + 4 <= len(data):
            data[at : at + 4] = draw(st.integers(0, 2**32 - 1)).to_bytes(4, "little")
        elif action == "fix" and len(data) >= 8:
            data[4:8] = (len(data) - 8).to_bytes(4, "little")
        else:
            del data[at:]
    return bytes(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_mutated_webps_raise_nothing_but_provenance_errors(data: bytes) -> None:
    for operation in (
        containers.inspect,
        essence_hash,
        lambda d: containers.set_xmp(d, XMP),
        lambda d: containers.set_exif(d, _tiff()),
        lambda d: containers.strip(d, frozenset(BlockKind)),
    ):
        with contextlib.suppress(ProvenanceError):
            operation(data)


def test_vp8_key_frame_of_zero_width_is_a_container_error() -> None:
    # Found by the fuzzer: a simple (VP8) file claiming width 0 could not be turned
    # into a VP8X file (canvas width - 1 = -1) and raised OverflowError.
    frame = b"\xd0\x10\x00\x9d\x01\x2a" + (0).to_bytes(2, "little") + (70).to_bytes(2, "little")
    chunk = b"VP8 " + len(frame).to_bytes(4, "little") + frame
    data = b"RIFF" + (4 + len(chunk)).to_bytes(4, "little") + b"WEBP" + chunk
    with pytest.raises(ContainerError, match="0x70 pixels"):
        containers.set_xmp(data, XMP)
