"""containers.rendering: which blocks outside the essence change the rendering."""

from __future__ import annotations

import io
import struct

from PIL import Image

from provenance._core import containers
from provenance._core.containers.rendering import (
    RENDERING_CHANGED,
    TRAILING_DATA,
    exif_orientation,
    rendering_findings,
)


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 8), (200, 40, 40)).save(out, "JPEG")
    return out.getvalue()


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _tiff(order: str, orientation: int) -> bytes:
    head = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "I", 8)
    entry = struct.pack(order + "HHIH2x", 274, 3, 1, orientation)
    return head + struct.pack(order + "H", 1) + entry + struct.pack(order + "I", 0)


def test_plain_jpeg_has_no_findings() -> None:
    data = _jpeg()
    assert rendering_findings(data, containers.inspect(data)) == ()


def test_bytes_after_eoi_are_trailing_data_with_their_count() -> None:
    data = _jpeg() + b"x" * 10
    (finding,) = rendering_findings(data, containers.inspect(data))
    assert finding.code == TRAILING_DATA and finding.detail.startswith("10 bytes after")


def test_mpf_images_after_eoi_are_a_rendering_block_not_trailing_data() -> None:
    """An Ultra HDR / MPO file: the gain map after EOI is declared by APP2 MPF."""
    primary = _jpeg()
    mpf = _segment(0xE2, b"MPF\x00" + b"MM\x00*" + b"\x00" * 8)
    data = primary[:2] + mpf + primary[2:] + _jpeg()
    (finding,) = rendering_findings(data, containers.inspect(data))
    assert finding.code == RENDERING_CHANGED and "MPF images after EOI" in finding.detail


def test_adobe_app14_is_a_rendering_block() -> None:
    primary = _jpeg()
    data = primary[:2] + _segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01") + primary[2:]
    (finding,) = rendering_findings(data, containers.inspect(data))
    assert finding.code == RENDERING_CHANGED and "APP14 Adobe" in finding.detail


def test_exif_orientation_in_both_byte_orders() -> None:
    assert exif_orientation(_tiff("<", 6)) == 6
    assert exif_orientation(_tiff(">", 8)) == 8
    assert exif_orientation(_tiff("<", 1)) == 1
    assert exif_orientation(b"II*\x00\xff\xff\xff\xff") is None  # IFD offset past the end
    assert exif_orientation(b"nope") is None
