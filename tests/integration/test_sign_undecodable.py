"""Images whose pixels cannot be decoded when signed (red-team issue 17).

A PNG whose IHDR claims far more pixels than its IDAT can hold is not an image:
it is refused. A real image above the pixel limit is signed, but the row says
that no perceptual hash was stored and how to raise the limit.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from provenance._io.keys import DevKeyPaths
from tests.conftest import run_cli, sample_record


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _png(width: int, height: int, idat: bytes, *, bit_depth: int = 8, color: int = 2) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def _with_record(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    record = sample_record("packshot-fire-truck-white.png").to_dict()
    path.with_name(f"{path.name}.json").write_text(json.dumps(record), "utf-8")
    return path


def test_png_whose_idat_cannot_hold_its_ihdr_is_refused(
    tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    src = _with_record(
        tmp_path / "claims-100000.png", _png(100_000, 100_000, b"\x78\x9c" + b"\0" * 98)
    )
    out = tmp_path / "out"
    done = run_cli("sign", src, "--out", out, "--keys", dev_keys.directory, "--json")
    assert done.returncode == 2, done.stdout
    (row,) = json.loads(done.stdout)
    assert row["error"].startswith(str(src)), row
    assert "truncated or corrupt" in row["error"]
    assert not out.exists() or not any(out.iterdir())


def test_image_over_the_pixel_limit_is_signed_with_a_warning(
    tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    # 20000 x 20000 one-bit grey: 400 million pixels, 50 MB of scanlines, 49 KB of IDAT.
    rows = (b"\0" + b"\0" * 2500) * 20_000
    src = _with_record(
        tmp_path / "huge.png", _png(20_000, 20_000, zlib.compress(rows, 9), bit_depth=1, color=0)
    )
    done = run_cli("sign", src, "--out", tmp_path / "out", "--keys", dev_keys.directory, "--json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    (warning,) = row["warnings"]
    assert "no perceptual hash stored" in warning
    assert "PROVENANCE_MAX_PIXELS" in warning
    assert f"{src}: no perceptual hash stored" in done.stderr


def test_raising_the_limit_stores_the_hashes(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    # 8000 x 8000: 64 million pixels, over the default limit of 50 million.
    rows = (b"\0" + b"\0" * 1000) * 8000
    src = _with_record(
        tmp_path / "big.png", _png(8000, 8000, zlib.compress(rows, 9), bit_depth=1, color=0)
    )
    keys = dev_keys.directory
    default = run_cli("sign", src, "--out", tmp_path / "a", "--keys", keys, "--json")
    assert default.returncode == 0, default.stderr
    assert "warnings" in json.loads(default.stdout)[0]
    raised = run_cli(
        *("sign", src, "--out", tmp_path / "b", "--keys", keys, "--json"),
        *("--inventory", tmp_path / "other.sqlite"),
        env={"PROVENANCE_MAX_PIXELS": "100000000"},
    )
    assert raised.returncode == 0, raised.stderr
    (row,) = json.loads(raised.stdout)
    assert "warnings" not in row, row
    assert "warning" not in raised.stderr
