"""Signing images whose existing XMP or EXIF cannot be read (red-team issue 15).

Signing writes a new XMP packet and new EXIF, so an unreadable existing block is
dropped (and the result says so) rather than making the image unsignable; padding
after the XMP packet, as Photoshop writes it, is not damage at all.
"""

from __future__ import annotations

import io
import json
import struct
import warnings
import zlib
from pathlib import Path

import pytest
from PIL import Image

from provenance import SigningKey, Status, TrustPolicy, sign, verify
from provenance._core import xmp
from provenance._core.containers import BlockKind, inspect
from provenance._io.keys import DevKeyPaths
from provenance.errors import XmpError
from tests.conftest import run_cli, sample_record

_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_PACKET = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.1-c000">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"'
    ' photoshop:Headline="{headline}"/>'
    "</rdf:RDF></x:xmpmeta>\n"
    '<?xpacket end="w"?>'
)


def _packet(headline: str = "Red shoe", encoding: str = "utf-8") -> bytes:
    return _PACKET.format(headline=headline).encode(encoding, errors="replace")


def _jpeg() -> bytes:
    image = Image.linear_gradient("L").resize((96, 64)).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def _with_app1(jpeg: bytes, *payloads: bytes) -> bytes:
    segments = b"".join(b"\xff\xe1" + struct.pack(">H", len(p) + 2) + p for p in payloads)
    return jpeg[:2] + segments + jpeg[2:]


def _png() -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((96, 64)).convert("RGB").save(out, "PNG")
    return out.getvalue()


def _chunk(kind: bytes, payload: bytes, *, crc: int | None = None) -> bytes:
    value = zlib.crc32(kind + payload) if crc is None else crc
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", value)


def _with_chunk(png: bytes, chunk: bytes) -> bytes:
    ihdr_end = 8 + 25
    return png[:ihdr_end] + chunk + png[ihdr_end:]


# Each case: (name, bytes, whether a warning is expected, headline kept in the XMP).
_EXIF_BAD_OFFSET = b"Exif\x00\x00MM\x00*\x00\x00\x10\x00" + b"\x00" * 16
_EXIF_TOO_MANY = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff" + b"\x00" * 16


def _cases() -> list[tuple[str, bytes, bool, bool]]:
    jpeg, png = _jpeg(), _png()
    itxt = b"XML:com.adobe.xmp\x00\x00\x00\x00\x00"
    return [
        (
            "photoshop-nul-after-xpacket.jpg",
            _with_app1(jpeg, _XMP_HEADER + _packet() + b"\x00"),
            False,
            True,
        ),
        (
            "padding-after-xpacket.jpg",
            _with_app1(jpeg, _XMP_HEADER + _packet() + b" \n" * 50 + b"\x00\x00"),
            False,
            True,
        ),
        (
            "latin1-xmp.jpg",
            _with_app1(jpeg, _XMP_HEADER + _packet("Chaussure rouge é", "latin-1")),
            True,
            False,
        ),
        (
            "two-standard-xmp.jpg",
            _with_app1(jpeg, _XMP_HEADER + _packet(), _XMP_HEADER + _packet("Blue")),
            True,
            False,
        ),
        ("exif-offset-out-of-range.jpg", _with_app1(jpeg, _EXIF_BAD_OFFSET), True, False),
        ("exif-entry-count-too-large.jpg", _with_app1(jpeg, _EXIF_TOO_MANY), True, False),
        (
            "xmp-itxt-trailing-nul.png",
            _with_chunk(png, _chunk(b"iTXt", itxt + _packet() + b"\x00")),
            False,
            True,
        ),
        (
            "bad-crc-text.png",
            _with_chunk(png, _chunk(b"tEXt", b"Comment\x00hello", crc=1)),
            True,
            False,
        ),
    ]


_CASES = _cases()


@pytest.mark.parametrize(("name", "data", "warned", "kept"), _CASES, ids=[c[0] for c in _CASES])
def test_damaged_existing_metadata_does_not_stop_signing(
    name: str,
    data: bytes,
    warned: bool,
    kept: bool,
    signing_key: SigningKey,
    trust: TrustPolicy,
    tmp_path: Path,
) -> None:
    src = tmp_path / name
    src.write_bytes(data)
    dst = tmp_path / f"signed-{name}"
    result = sign(src, dst, record=sample_record("forest-path.jpg"), key=signing_key)
    assert src.read_bytes() == data, "the input must never change"
    assert bool(result.warnings) is warned, result.warnings
    if warned:
        assert any(w.startswith("dropped the ") for w in result.warnings)
        assert result.to_dict()["warnings"] == list(result.warnings)
    verdict = verify(dst, trust=trust)
    assert verdict.status is Status.TRUSTED, verdict.evidence
    signed = dst.read_bytes()
    info = inspect(signed)
    assert info.xmp is not None
    properties = xmp.read_properties(info.xmp)
    headline = [v for k, v in properties.items() if k.endswith("Headline")]
    # A readable packet is merged (its other properties stay); a dropped one is gone.
    assert headline == (["Red shoe"] if kept else [])
    assert len(info.blocks_of(BlockKind.XMP)) == 1
    assert info.exif is not None and b"AI-generated image" in info.exif
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about damaged EXIF
        base = _png() if name.endswith(".png") else _jpeg()  # Pillow refuses a bad CRC
        with Image.open(io.BytesIO(base)) as a, Image.open(dst) as b:
            assert a.tobytes() == b.tobytes()


def test_nul_inside_the_xmp_is_still_refused_by_the_parser() -> None:
    packet = _packet().replace(b"Red shoe", b"Red\x00shoe")
    with pytest.raises(XmpError, match="NUL"):
        xmp.check_packet(packet)


def test_cli_signs_them_and_warns(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    for name, data, _, _ in _CASES:
        (folder / name).write_bytes(data)
        (folder / f"{name}.json").write_text(
            json.dumps(sample_record("forest-path.jpg").to_dict()), "utf-8"
        )
    keys = dev_keys.directory
    done = run_cli("sign", folder, "--out", tmp_path / "out", "--keys", keys, "--json")
    assert done.returncode == 0, done.stderr
    rows = {Path(r["source"]).name: r for r in json.loads(done.stdout)}
    assert set(rows) == {c[0] for c in _CASES}
    for name, _, warned, _ in _CASES:
        assert ("warnings" in rows[name]) is warned, rows[name]
        assert (f"{name}: dropped the " in done.stderr) is warned, done.stderr
