"""The end of entropy-coded data found with numpy is the regex's, to the byte.

Past its first 64 KB, a JPEG's entropy-coded data is searched with numpy when the
process has imported it (a signing process has); the regex ``_ECS_END`` is the
definition. These tests compare the two on built data around every boundary the
vector scan has (the regex prefix, its blocks, the last byte), on random data, and
compare the essence ranges of real files with numpy hidden from the module.
"""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from provenance._core.containers import jpeg
from provenance._core.containers.jpeg import _segments

SAMPLE_MEDIA = Path(__file__).resolve().parents[3] / "sample_media"
_R = _segments._REGEX_BYTES
_V = _segments._VECTOR_BYTES

# Byte pairs that do not end entropy-coded data, and some that do.
_INSIDE = [b"\xff\x00", *(bytes([0xFF, code]) for code in range(0xD0, 0xD8))]
_ENDS = [b"\xff\xd9", b"\xff\xc4", b"\xff\xda", b"\xff\xe1", b"\xff\x01", b"\xff\xfe"]


def _regex(data: bytes, start: int) -> int:
    found = _segments._ECS_END.search(data, start)
    return -1 if found is None else found.start()


def _coded(size: int, seed: int) -> bytearray:
    """``size`` bytes that look like entropy-coded data: random, every 0xFF stuffed."""
    rng = random.Random(seed)  # noqa: S311 - test data
    out = bytearray(rng.randbytes(size).replace(b"\xff", b"\xff\x00")[:size])
    if out and out[-1] == 0xFF:
        out[-1] = 0x12
    return out


def test_the_vector_scan_is_used_when_numpy_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numpy")
    calls: list[int] = []
    vector = _segments._vector_marker

    def counted(numpy: object, data: bytes, start: int) -> int:
        calls.append(start)
        return vector(numpy, data, start)

    monkeypatch.setattr(_segments, "_vector_marker", counted)
    data = bytes(_coded(3 * _V, 1)) + b"\xff\xd9"
    assert _segments._ecs_marker(data, 10) == len(data) - 2
    assert calls == [10 + _R]
    calls.clear()
    # Short data (at most another _R after the regex's), or numpy not loaded: the regex alone.
    assert _segments._ecs_marker(data[: _R // 2] + b"\xff\xd9", 0) == _R // 2
    assert _segments._ecs_marker(data[: 2 * _R - 2] + b"\xff\xd9", 0) == 2 * _R - 2
    assert calls == []
    assert _segments._ecs_marker(data[: 2 * _R] + b"\xff\xd9", 1) == 2 * _R
    assert calls == [1 + _R]
    calls.clear()
    monkeypatch.delitem(sys.modules, "numpy")
    assert _segments._ecs_marker(data, 10) == len(data) - 2
    assert calls == []


@pytest.mark.parametrize("start", [0, 7])
@pytest.mark.parametrize(
    "where",
    [
        _R - 2,  # the match's 0xFF in the regex prefix, its second byte too
        _R - 1,  # the 0xFF the prefix's last byte, its second byte past it
        _R,
        _R + 1,
        _R + _V - 1,  # a block's last 0xFF, its second byte in the next block
        _R + _V,
        _R + 2 * _V - 1,
        _R + 2 * _V + 5,
    ],
)
@pytest.mark.parametrize("end", _ENDS)
def test_a_marker_at_each_boundary_is_found_where_the_regex_finds_it(
    start: int, where: int, end: bytes
) -> None:
    data = _coded(_R + 3 * _V, where)
    data[start + where : start + where + 2] = end
    data = bytes(data)
    assert _segments._ecs_marker(data, start) == _regex(data, start) == start + where


@pytest.mark.parametrize("tail", [b"", b"\xff", b"\xff\xff", b"\xff\x00", b"\xff\xd3"])
def test_no_marker_gives_none_as_the_regex_does(tail: bytes) -> None:
    data = bytes(_coded(_R + _V + 3, 5)) + tail
    assert _segments._ecs_marker(data, 3) == _regex(data, 3) == -1


def test_fill_and_restart_markers_are_stepped_over_as_the_regex_does() -> None:
    data = _coded(_R + 2 * _V, 9)
    # Fill runs, restart markers and stuffing across a block boundary, then the marker.
    at = _R + _V - 3
    data[at : at + 8] = b"\xff\xff\xff\xd0\xff\x00\xff\xff"
    data[at + 8 : at + 10] = b"\xff\xc4"
    data = bytes(data)
    assert _segments._ecs_marker(data, 0) == _regex(data, 0)
    # _ECS_END skips 0xFF 0xFF pairs: the match is the last 0xFF before 0xC4.
    assert _segments._ecs_marker(data, 0) == at + 8


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    size=st.integers(0, _R + 2 * _V + 10),
    start=st.integers(0, 40),
    pairs=st.lists(
        st.tuples(st.integers(0, _R + 2 * _V + 10), st.sampled_from(_INSIDE + _ENDS)),
        max_size=6,
    ),
    seed=st.integers(0, 1000),
)
def test_random_data_gives_the_regex_offset(
    size: int, start: int, pairs: list[tuple[int, bytes]], seed: int
) -> None:
    data = _coded(size, seed)
    for offset, pair in pairs:
        data[offset : offset + 2] = pair
    data = bytes(data[:size])
    assert _segments._ecs_marker(data, start) == _regex(data, start)


@pytest.mark.parametrize("name", ["rowing-boats-sunset.jpg", "forest-path.jpg"])
@pytest.mark.parametrize("progressive", [False, True])
def test_essence_ranges_of_large_files_are_the_regex_walks(
    name: str, progressive: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Image.open(SAMPLE_MEDIA / name) as opened:
        big = opened.convert("RGB").resize((2560, 1600), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    big.save(out, "JPEG", quality=90, progressive=progressive)
    data = out.getvalue() + b"trailing data after EOI \xff\xd9"
    assert len(data) > _R + _V
    vector = jpeg.inspect(data).essence_ranges
    monkeypatch.setattr(_segments, "_REGEX_BYTES", 1 << 62)  # the regex alone
    assert jpeg.inspect(data).essence_ranges == vector
