"""ExifTool reads the XMP we insert, and its own edits leave our essence hash alone."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from provenance._core import containers
from provenance._core.containers import BlockKind, jpeg
from provenance._core.hashing import essence_hash

EXIFTOOL = shutil.which("exiftool")

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(EXIFTOOL is None, reason="ExifTool is not on PATH"),
]

NS = b' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmpNote="http://ns.adobe.com/xmp/note/"'


def _packet(body: bytes) -> bytes:
    return (
        b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
        b' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about=""' + NS + b">" + body + b"</rdf:Description>"
        b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )


XMP = _packet(
    b'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Red boot</rdf:li></rdf:Alt></dc:title>'
)


def _image(fmt: str, **options: object) -> bytes:
    image = Image.new("RGB", (120, 80), (245, 245, 240))
    ImageDraw.Draw(image).ellipse((10, 10, 70, 70), fill=(190, 30, 30))
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


FILES = {
    "jpg": _image("JPEG", quality=85),
    "progressive.jpg": _image("JPEG", progressive=True),
    "png": _image("PNG"),
    "webp": _image("WEBP"),
    "lossless.webp": _image("WEBP", lossless=True),
}


def _exiftool(*args: str | Path) -> str:
    assert EXIFTOOL is not None
    done = subprocess.run(
        [EXIFTOOL, *map(str, args)], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def _read_json(path: Path, *tags: str) -> dict[str, Any]:
    rows = json.loads(_exiftool("-j", "-Warning", "-Error", *tags, path))
    assert len(rows) == 1
    row: dict[str, Any] = rows[0]
    return row


@pytest.mark.parametrize("name", FILES)
def test_exiftool_reads_our_xmp(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"ours.{name}"
    path.write_bytes(containers.set_xmp(FILES[name], XMP))
    row = _read_json(path, "-XMP:all")
    assert row.get("Title") == "Red boot"
    assert "Warning" not in row and "Error" not in row


def test_exiftool_reads_our_extended_xmp(tmp_path: Path) -> None:
    words = " ".join(f"word{i}" for i in range(20_000))
    extended = _packet(
        b'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
        + words.encode()
        + b"</rdf:li></rdf:Alt></dc:description>"
    )
    guid = jpeg.extended_xmp_guid(extended).encode()
    standard = XMP.replace(
        b"</dc:title>", b"</dc:title><xmpNote:HasExtendedXMP>" + guid + b"</xmpNote:HasExtendedXMP>"
    )
    path = tmp_path / "extended.jpg"
    path.write_bytes(jpeg.set_xmp(FILES["jpg"], standard, extended=extended))
    row = _read_json(path, "-XMP:all")
    assert row.get("Title") == "Red boot"
    assert row.get("Description") == words
    assert "Warning" not in row


@pytest.mark.parametrize("name", FILES)
def test_exiftool_delete_all_keeps_the_essence_hash(name: str, tmp_path: Path) -> None:
    source = tmp_path / f"dressed.{name}"
    tiff = b"MM\x00*\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00"
    source.write_bytes(containers.set_exif(containers.set_xmp(FILES[name], XMP), tiff))
    stripped = tmp_path / f"stripped.{name}"
    shutil.copyfile(source, stripped)
    # In place: ExifTool 12.57 refuses "-o" for WebP ("Can't write RIFF files").
    _exiftool("-all=", "-overwrite_original", stripped)
    data = stripped.read_bytes()
    assert data != source.read_bytes()
    info = containers.inspect(data)
    assert info.xmp is None and info.exif is None
    assert essence_hash(data) == essence_hash(FILES[name])


@pytest.mark.parametrize("name", FILES)
def test_xmp_written_by_exiftool_is_found_by_us(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"theirs.{name}"
    path.write_bytes(FILES[name])
    _exiftool("-overwrite_original", "-XMP-dc:Title=Green hat", "-EXIF:Make=Acme", path)
    data = path.read_bytes()
    info = containers.inspect(data)
    assert info.xmp is not None and b"Green hat" in info.xmp
    assert info.exif is not None
    assert essence_hash(data) == essence_hash(FILES[name])
    assert essence_hash(containers.strip(data, frozenset(BlockKind))) == essence_hash(FILES[name])
