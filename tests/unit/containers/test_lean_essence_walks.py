"""The lean essence walks (JPEG ``plain_essence``, simple WebP) against the full walks.

``essence_ranges`` takes the lean walk for plainly laid out JPEGs and simple WebPs
(the renditions an import marks) and the full walk for anything else; both must
find the same ranges, and bad input must still get the full walk's error.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from provenance._core import containers
from provenance._core.containers import jpeg, webp
from provenance._core.containers.jpeg._segments import plain_essence
from provenance._core.hashing import essence_hash, hash_ranges
from provenance.errors import ContainerError
from tests.fuzz.strategies import jpeg_mutated

SAMPLE_MEDIA = Path(__file__).resolve().parents[3] / "sample_media"
SAMPLES = sorted(p for p in SAMPLE_MEDIA.iterdir() if p.suffix in {".jpg", ".png", ".webp"})
# Luma-like boxes: thumbnails to the product page's large image.
BOXES = ((75, 75), (135, 135), (265, 265), (700, 560))


def _renditions(**options: object) -> list[bytes]:
    """Every sample resized into every box with LANCZOS and encoded by Pillow as JPEG."""
    made = []
    for rgb in _samples():
        for box in BOXES:
            copy = rgb.copy()
            copy.thumbnail(box, Image.Resampling.LANCZOS)
            out = io.BytesIO()
            copy.save(out, "JPEG", **options)
            made.append(out.getvalue())
    return made


@functools.cache
def _samples() -> tuple[Image.Image, ...]:
    """The samples decoded once, as RGB."""
    decoded = []
    for path in SAMPLES:
        with Image.open(path) as opened:
            decoded.append(opened.convert("RGB"))
    return tuple(decoded)


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def _full(data: bytes) -> tuple[tuple[int, int], ...]:
    return jpeg.inspect(data).essence_ranges


PLAIN_KINDS = {
    "q80": {"quality": 80},
    "q95_444": {"quality": 95, "subsampling": 0},
    "progressive": {"quality": 80, "progressive": True},
    "optimized": {"quality": 85, "optimize": True},
    "restart_markers": {"quality": 80, "restart_marker_blocks": 2},
    "restart_rows": {"quality": 80, "restart_marker_rows": 1},
    "comment_icc_exif": {
        "quality": 80,
        "comment": b"made by the pipeline",
        "icc_profile": b"\x00" * 300,
        "exif": b"Exif\x00\x00" + Image.Exif().tobytes()[6:],
    },
}


@pytest.mark.skipif(not SAMPLES, reason="sample_media is missing")
@pytest.mark.parametrize("options", PLAIN_KINDS.values(), ids=PLAIN_KINDS.keys())
def test_the_lean_walk_finds_the_full_walks_ranges_on_real_renditions(
    options: dict[str, object],
) -> None:
    made = _renditions(**options)
    assert len(made) == len(SAMPLES) * len(BOXES)
    for data in made:
        plain = plain_essence(data)
        assert plain is not None  # an encoder's layout: the lean walk takes it
        assert plain == _full(data)
        assert containers.essence_ranges(data) == plain
    if options.get("restart_marker_blocks") or options.get("restart_marker_rows"):
        assert all(b"\xff\xd0" in data for data in made)
    if options.get("progressive"):
        assert all(data.count(b"\xff\xda") > 1 for data in made)


def test_segments_between_scans_split_the_ranges_alike() -> None:
    (data,) = _renditions(quality=80, progressive=True)[:1]
    second = data.index(b"\xff\xda", data.index(b"\xff\xda") + 2)
    edited = data[:second] + _segment(0xFE, b"between scans") + _segment(0xE5, b"x") + data[second:]
    plain = plain_essence(edited)
    assert plain is not None and len(plain) == 2
    assert plain == _full(edited)
    assert hash_ranges(edited, plain) == essence_hash(data)


@pytest.mark.parametrize(
    ("edit", "same_essence"),
    [
        pytest.param(lambda d: d + b"TRAILER\xff\xd9", True, id="trailer-after-eoi"),
        pytest.param(lambda d: d[:-2] + b"\xff\xff\xff\xd9", True, id="fill-before-eoi"),
        pytest.param(lambda d: d[:2] + b"\xff" + d[2:], True, id="fill-after-soi"),
        # TEM and reserved-marker segments are essence (T.81), so the hash changes.
        pytest.param(lambda d: d[:2] + b"\xff\x01" + d[2:], False, id="tem-marker"),
        pytest.param(lambda d: d[:2] + _segment(0x02, b"rsv") + d[2:], False, id="reserved"),
    ],
)
def test_unusual_layouts_are_left_to_the_full_walk(edit: object, same_essence: bool) -> None:
    (data,) = _renditions(quality=80)[:1]
    edited = edit(data)  # type: ignore[operator]
    expected = _full(edited)
    assert containers.essence_ranges(edited) == expected
    assert (hash_ranges(edited, expected) == essence_hash(data)) is same_essence
    plain = plain_essence(edited)
    # A trailer is plain (the walk stops at EOI); the others go to the full walk.
    assert plain is None or plain == expected


def test_every_truncation_gets_the_full_walks_error() -> None:
    (data,) = _renditions(quality=80, comment=b"c")[:1]
    for end in range(0, len(data)):
        cut = data[:end]
        assert plain_essence(cut) is None
        with pytest.raises(ContainerError) as full:
            jpeg.inspect(cut)
        with pytest.raises(ContainerError) as lean:
            jpeg.essence_ranges(cut)
        assert str(lean.value) == str(full.value)


def test_a_missing_frame_or_scan_gets_the_full_walks_error() -> None:
    (data,) = _renditions(quality=80)[:1]
    sof = data.index(b"\xff\xc0")
    no_frame = data[:sof] + b"\xff\xc4" + data[sof + 2 :]  # the SOF0 segment relabelled DHT
    sos = data.index(b"\xff\xda")
    no_scan = data[:sos] + b"\xff\xd9"
    for broken in (no_frame, no_scan):
        assert plain_essence(broken) is None
        with pytest.raises(ContainerError) as full:
            containers.inspect(broken)
        with pytest.raises(ContainerError) as lean:
            containers.essence_ranges(broken)
        assert str(lean.value) == str(full.value)


SMALL = _renditions(quality=80, restart_marker_blocks=1)[:2] + _renditions(progressive=True)[:1]


@pytest.mark.skipif(not SAMPLES, reason="sample_media is missing")
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jpeg_mutated(SMALL))
def test_on_mutated_renditions_the_lean_walk_agrees_or_steps_aside(data: bytes) -> None:
    try:
        expected = _full(data)
    except ContainerError as exc:
        assert plain_essence(data) is None
        with pytest.raises(ContainerError) as lean:
            jpeg.essence_ranges(data)
        assert str(lean.value) == str(exc)
        return
    plain = plain_essence(data)
    assert plain is None or plain == expected
    assert jpeg.essence_ranges(data) == expected


# --- WebP: a simple file (one VP8 or VP8L chunk) skips the chunk walk ------------------------


def _webp_renditions(mode: str, **options: object) -> list[bytes]:
    made = []
    for rgb in _samples():
        for box in BOXES:
            copy = rgb.convert(mode)
            copy.thumbnail(box, Image.Resampling.LANCZOS)
            out = io.BytesIO()
            copy.save(out, "WEBP", **options)
            made.append(out.getvalue())
    return made


_EXIF = b"Exif\x00\x00II*\x00"
WEBP_KINDS = {
    "lossy_q80": ("RGB", {"quality": 80}, True),
    "lossless": ("RGB", {"lossless": True}, True),
    "alpha": ("RGBA", {"quality": 80}, None),
    "exif_icc": (
        "RGB",
        {"quality": 80, "exif": _EXIF, "icc_profile": b"x"},
        False,
    ),
}


@pytest.mark.skipif(not SAMPLES, reason="sample_media is missing")
@pytest.mark.parametrize(("mode", "options", "simple"), WEBP_KINDS.values(), ids=WEBP_KINDS.keys())
def test_a_simple_webp_skips_the_walk_with_the_same_ranges(
    mode: str, options: dict[str, object], simple: bool | None
) -> None:
    for data in _webp_renditions(mode, **options):
        found = webp._simple_essence(data)
        if simple is not None:  # an alpha rendition may be simple (opaque) or VP8X + ALPH
            assert (found is not None) is simple
        assert found is None or found == webp.inspect(data).essence_ranges
        assert webp.essence_ranges(data) == webp.inspect(data).essence_ranges


WEBP_SMALL = _webp_renditions("RGB", quality=80)[:2] + _webp_renditions("RGB", lossless=True)[:1]


@st.composite
def _mutated_webp(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(WEBP_SMALL)))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, min(len(data), 40)))  # the headers: where the walk looks
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "append"]))
        if action == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif action == "append":
            data += draw(st.binary(min_size=1, max_size=4))
        else:
            del data[draw(st.integers(0, len(data))) :]
    return bytes(data)


@pytest.mark.skipif(not SAMPLES, reason="sample_media is missing")
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_webp())
def test_on_mutated_webps_the_simple_path_agrees_or_steps_aside(data: bytes) -> None:
    try:
        expected = webp.inspect(data).essence_ranges
    except ContainerError as exc:
        assert webp._simple_essence(data) is None
        with pytest.raises(ContainerError) as lean:
            webp.essence_ranges(data)
        assert str(lean.value) == str(exc)
        return
    simple = webp._simple_essence(data)
    assert simple is None or simple == expected
    assert webp.essence_ranges(data) == expected
