"""ExifTool and c2pa's own Reader agree with our verdict, in every format.

For JPEG, PNG, WebP, TIFF, DNG, HEIC, AVIF and GIF (made in the run), signed with
our key, signed with another organisation's key, and with pixels changed after
signing: c2pa's Reader, configured here without any of our code and with our
development CA as its only anchor, must reach the same state as our verdict
(Trusted / Valid / Invalid), and ExifTool must read the file as that format and
read our XMP fields from it, with the essence hash our verdict computed.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import c2pa
import pytest

from provenance import SigningKey, Status, TrustPolicy, sign, verify
from provenance._core.containers import ImageFormat, inspect
from provenance._core.hashing import essence_hash
from provenance._io.keys import DevKeyPaths
from tests._formats import ALL_FORMATS, sample
from tests.conftest import sample_record

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("exiftool") is None, reason="ExifTool is not installed"),
]

RECORD = sample_record("forest-path.jpg")
_IDS = [fmt.value for fmt in ALL_FORMATS]
_PNG_QUIRK = "IFD0 pointer references previous JUMBFBox directory"
# Our verdict -> c2pa's validation_state for the same file and anchors.
_C2PA_STATE = {
    Status.TRUSTED: "Trusted",
    Status.VALID_UNTRUSTED: "Valid",
    Status.TAMPERED: "Invalid",
}


def _exiftool(path: Path) -> dict[str, str]:
    done = subprocess.run(
        ["exiftool", "-j", "-G1", "-struct", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, str] = json.loads(done.stdout)[0]
    return found


def _c2pa_state(path: Path, fmt: ImageFormat, dev_keys: DevKeyPaths) -> str:
    settings = {
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
        "trust": {"trust_anchors": dev_keys.ca_certificate.read_text()},
    }
    with (
        c2pa.Context(settings=c2pa.Settings.from_dict(settings)) as context,
        c2pa.Reader(fmt.mime, io.BytesIO(path.read_bytes()), context=context) as reader,
    ):
        store = json.loads(reader.json())
    return str(store["validation_state"])


def _make(
    case: str, fmt: ImageFormat, tmp_path: Path, signing_key: SigningKey, other_key: SigningKey
) -> Path:
    src = tmp_path / f"original.{fmt.extension}"
    src.write_bytes(sample(fmt))
    dst = tmp_path / f"{case}.{fmt.extension}"
    key = other_key if case == "other-key" else signing_key
    sign(src, dst, record=RECORD, key=key)
    if case == "tampered":
        data = bytearray(dst.read_bytes())
        start, end = max(inspect(bytes(data)).essence_ranges, key=lambda r: r[1] - r[0])
        data[(start + end) // 2] ^= 0x10
        dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("case", ["ours", "other-key", "tampered"])
@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=_IDS)
def test_exiftool_and_c2pa_reader_agree_with_our_verdict(
    fmt: ImageFormat,
    case: str,
    signing_key: SigningKey,
    other_key: SigningKey,
    trust: TrustPolicy,
    dev_keys: DevKeyPaths,
    tmp_path: Path,
) -> None:
    path = _make(case, fmt, tmp_path, signing_key, other_key)
    verdict = verify(path, trust=trust)
    expected = {"ours": Status.TRUSTED, "other-key": Status.VALID_UNTRUSTED}.get(
        case, Status.TAMPERED
    )
    assert verdict.status is expected
    assert _c2pa_state(path, fmt, dev_keys) == _C2PA_STATE[verdict.status]
    tags = _exiftool(path)
    assert tags["File:MIMEType"] == fmt.mime
    assert tags["XMP-iptcExt:DigitalSourceType"] == RECORD.digital_source_type.uri
    assert tags["XMP-iptcExt:AISystemUsed"] == RECORD.model
    signed_essence = tags["XMP-provn:EssenceSHA256"]
    # What the XMP says was signed is what the untouched bytes hash to, and no
    # longer what tampered bytes hash to.
    assert (signed_essence == verdict.essence_sha256_hex) is (case != "tampered")
    warnings = {value for key, value in tags.items() if key.endswith(":Warning")}
    # ExifTool 12.57's known PNG quirk (see test_signed_outputs.py): an eXIf chunk
    # after caBX is reported, not misread. No other format may warn.
    assert warnings <= ({_PNG_QUIRK} if fmt is ImageFormat.PNG else set()), warnings


@pytest.mark.parametrize("fmt", ALL_FORMATS, ids=_IDS)
def test_we_read_the_xmp_exiftool_writes_and_the_essence_stays(
    fmt: ImageFormat, tmp_path: Path
) -> None:
    # ExifTool as an independent writer: it puts XMP where each format keeps it
    # (TIFF tag 700, a HEIF mime item, the GIF application extension ...), moving
    # whatever it likes; our parser finds that packet and the same essence.
    path = tmp_path / f"edited.{fmt.extension}"
    path.write_bytes(sample(fmt))
    subprocess.run(
        [
            "exiftool",
            "-q",
            "-q",
            "-overwrite_original",
            "-XMP-dc:Title=made by exiftool",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    edited = path.read_bytes()
    assert edited != sample(fmt)
    info = inspect(edited)
    assert info.format is fmt
    assert info.xmp is not None and b"made by exiftool" in info.xmp
    assert essence_hash(edited) == essence_hash(sample(fmt))


_EXIF_FORMATS = [ImageFormat.TIFF, ImageFormat.DNG, ImageFormat.HEIC, ImageFormat.AVIF]


@pytest.mark.parametrize("fmt", _EXIF_FORMATS, ids=[f.value for f in _EXIF_FORMATS])
def test_signing_writes_minimal_exif_and_removes_personal_fields(
    fmt: ImageFormat, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    # A TIFF's EXIF is its own IFDs, a HEIF's an Exif item: the disclosure goes
    # there, and what locates or identifies a person goes away, as for JPEG
    # (DESIGN decision 13).
    src = tmp_path / f"camera.{fmt.extension}"
    src.write_bytes(sample(fmt))
    subprocess.run(
        [
            "exiftool", "-q", "-q", "-overwrite_original", "-GPSLatitude=52.5",
            "-GPSLatitudeRef=N", "-SerialNumber=SN123456789", "-OwnerName=Jane Doe",
            "-Artist=Jane Doe", "-Make=Acme", "-ExposureTime=0.008", str(src),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    dst = tmp_path / f"signed.{fmt.extension}"
    sign(src, dst, record=RECORD, key=signing_key)
    assert verify(dst, trust=trust).status is Status.TRUSTED
    tags = _exiftool(dst)
    assert tags["IFD0:ImageDescription"] == "AI-generated image"
    assert RECORD.model in tags["IFD0:Software"]
    assert tags["IFD0:Make"] == "Acme" and tags["ExifIFD:ExposureTime"] == "1/125"
    assert "Warning" not in {key.split(":")[-1] for key in tags}, tags
    gone = ("GPS", "SerialNumber", "OwnerName", "Artist")
    assert not [key for key in tags if any(word in key for word in gone)], tags
    data = dst.read_bytes()
    assert b"Jane Doe" not in data and b"SN123456789" not in data
