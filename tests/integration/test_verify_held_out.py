"""What a red team with files this suite never saw found in verify (fifteenth session).

1. A GIF whose XMP ExifTool edited holds two XMP packets: an error, not a verdict.
2. A signed XMP chain whose leaf's subject does not parse: a ValueError traceback.
3. ``verify_bytes`` errors did not begin with the name they were given.
4. Outside the essence and changing what a viewer shows, but not reported: an
   unknown critical PNG chunk, and the Orientation in a TIFF's own IFD0.
5. A C2PA signer whose certificate expired after signing (pinned: no test made one).
6. A TIFF's decoding tags (PhotometricInterpretation ...) and a HEIF's primary item
   are outside the essence: changed after signing, the file was ``known_stripped``,
   or ``trusted`` on its signed XMP alone. With an inventory, the asset's perceptual
   hash now decides.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import struct
import subprocess
import time
import zlib
from io import BytesIO
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provenance import SigningKey, Status, TrustPolicy, sign, verify, verify_bytes
from provenance._core import containers, xmp
from provenance._core.containers import BlockKind, ImageFormat
from provenance._core.hashing import essence_hash
from provenance.errors import ProvenanceError
from provenance.inventory import Inventory
from provenance.sign import sign_bytes
from tests._formats import encode, picture, sample
from tests.conftest import SAMPLE_MEDIA, run_cli, sample_record

RECORD = sample_record("kite-blue-sky.jpg")
RENDERING = "provenance.metadata.renderingChanged"
CONFLICTING = "provenance.xmp.conflicting"
needs_exiftool = pytest.mark.skipif(shutil.which("exiftool") is None, reason="no ExifTool")


def _sign(data: bytes, key: SigningKey) -> bytes:
    return sign_bytes(data, record=RECORD, key=key)[0]


def _block(data: bytes, kind: BlockKind) -> containers.MetadataBlock:
    (found,) = [b for b in containers.inspect(data).blocks if b.kind is kind]
    return found


# --- 1. a GIF with two XMP packets ------------------------------------------------


def test_gif_with_a_second_xmp_packet_sets_both_aside(
    signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    signed = _sign(sample(ImageFormat.GIF), signing_key)
    packet = _block(signed, BlockKind.XMP)
    end = packet.offset + packet.length
    two = signed[:end] + signed[packet.offset : end] + signed[end:]
    with pytest.raises(ProvenanceError, match="several XMP packets"):
        containers.inspect(two)
    # Setting them aside removes both; the essence is untouched.
    bare = containers.strip(two, frozenset({BlockKind.XMP}))
    assert containers.inspect(bare).xmp is None
    verdict = verify_bytes(two, trust=trust)
    assert verdict.status is Status.KNOWN_STRIPPED
    assert CONFLICTING in verdict.failure_codes
    assert verdict.essence_sha256_hex == verify_bytes(signed, trust=trust).essence_sha256_hex
    path = tmp_path / "two-xmp.gif"
    path.write_bytes(two)
    result = run_cli("verify", "--json", path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["verdict"] == "known_stripped"


@needs_exiftool
@pytest.mark.interop
def test_gif_xmp_edited_by_exiftool_is_a_metadata_change(
    signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    """ExifTool 12 writes a new packet before the image and keeps ours after it."""
    path = tmp_path / "signed.gif"
    path.write_bytes(_sign(sample(ImageFormat.GIF), signing_key))
    subprocess.run(
        ["exiftool", "-q", "-XMP-dc:Title=edited", "-overwrite_original", str(path)],
        check=True,
        timeout=60,
    )
    verdict = verify(path, trust=trust)
    assert verdict.status is Status.KNOWN_STRIPPED, verdict.failure_codes
    assert "provenance.c2pa.binding.metadataOnly" in verdict.failure_codes


# --- 2. a certificate that loads but whose subject does not parse -----------------


def _with_unparsable_leaf_subject(signed: bytes) -> bytes:
    """The signed XMP's leaf with its CN's UTF8String tag (0x0C) made 0x0D.

    The certificate still loads and its key still verifies the statement's
    signature; only reading its subject fails.
    """
    found = xmp.parse_packet(containers.inspect(signed).xmp or b"")
    assert found is not None
    leaf_b64 = found.certificate_chain[0]
    der = base64.b64decode(leaf_b64)
    subject = x509.load_der_x509_certificate(der).subject.public_bytes()
    at = der.index(subject) + subject.index(b"\x55\x04\x03") + 3  # OID 2.5.4.3, then the tag
    assert der[at] == 0x0C
    bad = der[:at] + b"\x0d" + der[at + 1 :]
    with pytest.raises(ValueError, match="asn1"):
        _ = x509.load_der_x509_certificate(bad).subject
    return signed.replace(leaf_b64.encode(), base64.b64encode(bad))


@pytest.mark.parametrize("keep_c2pa", [True, False], ids=["with-c2pa", "xmp-only"])
def test_leaf_with_an_unparsable_subject_is_an_invalid_xmp_signature(
    keep_c2pa: bool, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    signed = _sign((SAMPLE_MEDIA / "kite-blue-sky.jpg").read_bytes(), signing_key)
    altered = _with_unparsable_leaf_subject(signed)
    if not keep_c2pa:
        altered = containers.strip(altered, frozenset({BlockKind.C2PA}))
    verdict = verify_bytes(altered, trust=trust)
    assert verdict.status is Status.INVALID_SIGNATURE
    assert "provenance.xmp.signature.invalid" in verdict.failure_codes
    path = tmp_path / "bad-subject.jpg"
    path.write_bytes(altered)
    result = run_cli("verify", "--json", "--trust-anchors", _anchor_file(trust, tmp_path), path)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)[0]["verdict"] == "invalid_signature"


def _anchor_file(trust: TrustPolicy, tmp_path: Path) -> Path:
    path = tmp_path / "anchors.pem"
    path.write_bytes(b"".join(a.public_bytes(serialization.Encoding.PEM) for a in trust.anchors))
    return path


# --- 3. verify_bytes names what it was given ----------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"GIF89a", b"\xff\xd8\xff\xe0\x00", b"BM\x00\x00", b"\x89PNG\r\n\x1a\n\x00"],
    ids=["gif-header", "jpeg-app0-cut", "bmp", "png-signature"],
)
def test_verify_bytes_errors_begin_with_the_name(data: bytes) -> None:
    with pytest.raises(ProvenanceError) as raised:
        verify_bytes(data, name="uploads/item-7.jpg")
    assert str(raised.value).startswith("uploads/item-7.jpg: ")


# --- 4. blocks outside the essence that change what a viewer shows ----------------


def _png_chunk(chunk_type: bytes, payload: bytes) -> bytes:
    body = chunk_type + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


@pytest.mark.parametrize(
    ("chunk_type", "status"),
    [(b"ZZZZ", Status.TAMPERED), (b"zzZz", Status.KNOWN_STRIPPED)],
    ids=["critical", "ancillary"],
)
def test_unknown_png_chunk_after_signing(
    chunk_type: bytes, status: Status, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    """libpng refuses a PNG with an unknown critical chunk; an ancillary one is skipped."""
    signed = _sign((SAMPLE_MEDIA / "packshot-fire-truck-white.png").read_bytes(), signing_key)
    ihdr_end = 8 + 25
    altered = signed[:ihdr_end] + _png_chunk(chunk_type, b"x") + signed[ihdr_end:]
    verdict = verify_bytes(altered, trust=trust)
    assert verdict.status is status, verdict.failure_codes
    assert (RENDERING in verdict.failure_codes) is (status is Status.TAMPERED)
    if status is Status.TAMPERED:
        assert any("unknown critical chunk 'ZZZZ'" in e.detail for e in verdict.evidence)


def _tiff_with_orientation() -> bytes:
    info = {274: 1}  # Orientation 1, written inline in IFD0
    out = BytesIO()
    picture().save(out, "TIFF", tiffinfo=info)
    return out.getvalue()


def _set_orientation(data: bytes, value: int) -> bytes:
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(order + "I", data, 4)
    (count,) = struct.unpack_from(order + "H", data, ifd)
    out = bytearray(data)
    for index in range(count):
        at = ifd + 2 + 12 * index
        if struct.unpack_from(order + "H", data, at)[0] == 274:
            struct.pack_into(order + "H", out, at + 8, value)
            return bytes(out)
    raise AssertionError("no Orientation in IFD0")


@pytest.mark.parametrize("keep_c2pa", [True, False], ids=["with-c2pa", "xmp-only"])
def test_tiff_orientation_changed_after_signing_is_tampered(
    keep_c2pa: bool, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    signed = _sign(_tiff_with_orientation(), signing_key)
    if not keep_c2pa:
        signed = containers.strip(signed, frozenset({BlockKind.C2PA}))
    assert verify_bytes(signed, trust=trust).status is Status.TRUSTED
    turned = _set_orientation(signed, 6)
    verdict = verify_bytes(turned, trust=trust)
    assert verdict.essence_sha256_hex == verify_bytes(signed, trust=trust).essence_sha256_hex
    assert verdict.status is Status.TAMPERED, verdict.failure_codes
    assert RENDERING in verdict.failure_codes
    assert any("Orientation 6" in e.detail for e in verdict.evidence)


# --- 5. a signer whose certificate expired after signing ---------------------------


def _short_lived_key(tmp_path: Path, seconds: float) -> tuple[SigningKey, TrustPolicy, float]:
    """A CA and a leaf that stops being valid ``seconds`` from now (whole seconds)."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    end = now + dt.timedelta(seconds=seconds)

    def name(common: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "short-lived tests"),
            ]
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("short-lived root"))
        .issuer_name(name("short-lived root"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("short-lived signer"))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    chain, key_file = tmp_path / "chain.pem", tmp_path / "signer.key"
    chain.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    key_file.write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)
    return (
        SigningKey.from_pem_files(chain, key_file),
        TrustPolicy.from_pem_bytes(ca.public_bytes(pem)),
        end.timestamp(),
    )


def test_c2pa_signer_expired_since_signing_is_an_invalid_signature(tmp_path: Path) -> None:
    """c2pa checks a manifest with no time-stamp against the clock: expired is invalid.

    c2pa refuses to sign with a certificate outside its validity, so the leaf is
    valid for a few seconds: long enough to sign, then the test waits it out.
    """
    key, anchors, expires = _short_lived_key(tmp_path, seconds=4)
    signed = _sign(encode(picture(3), ImageFormat.PNG), key)
    assert verify_bytes(signed, trust=anchors).status is Status.TRUSTED
    time.sleep(max(0.0, expires - time.time()) + 1.5)
    verdict = verify_bytes(signed, trust=anchors)
    assert verdict.status is Status.INVALID_SIGNATURE
    assert "signingCredential.expired" in verdict.failure_codes
    # Our XMP check is told the time: at signing it held, now it is outside validity.
    xmp_says = {e.source.value: e.status for e in verdict.evidence}["xmp"]
    assert xmp_says is Status.VALID_UNTRUSTED


# --- 6. a TIFF's decoding tags changed around its intact strips ---------------------


def _set_tag(data: bytes, tag: int, value: int) -> bytes:
    """``data`` with IFD0's SHORT ``tag`` set to ``value`` in place."""
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(order + "I", data, 4)
    (count,) = struct.unpack_from(order + "H", data, ifd)
    out = bytearray(data)
    for index in range(count):
        at = ifd + 2 + 12 * index
        if struct.unpack_from(order + "H", data, at)[0] == tag:
            struct.pack_into(order + "H", out, at + 8, value)
            return bytes(out)
    raise AssertionError(f"no tag {tag} in IFD0")


PHOTOMETRIC = 262  # 2 RGB; 6 YCbCr: the same strips decode to other colours


@pytest.mark.parametrize(
    ("blocks", "status"),
    [
        (frozenset(), Status.KNOWN_STRIPPED),  # C2PA binding broken
        (frozenset({BlockKind.C2PA}), Status.TRUSTED),  # only the signed XMP vouches
        (frozenset(BlockKind), Status.KNOWN_STRIPPED),  # only the inventory knows it
    ],
    ids=["c2pa-broken", "xmp-only", "all-stripped"],
)
def test_tiff_photometric_changed_after_signing_is_tampered_with_the_inventory(
    blocks: frozenset[BlockKind],
    status: Status,
    signing_key: SigningKey,
    trust: TrustPolicy,
    tmp_path: Path,
) -> None:
    source = tmp_path / "source.tif"
    picture(5, (160, 120)).save(source, "TIFF")
    with Inventory(tmp_path / "inv.sqlite") as inventory:
        sign(source, tmp_path / "signed.tif", record=RECORD, key=signing_key, inventory=inventory)
        signed = (tmp_path / "signed.tif").read_bytes()
        kept = containers.strip(signed, blocks) if blocks else signed
        # What a metadata edit leaves is still the asset (no false alarm) ...
        edited = kept if blocks else containers.strip(signed, frozenset({BlockKind.XMP}))
        assert verify_bytes(edited, trust=trust, inventory=inventory).status is status
        # ... but the same strips read as YCbCr are another picture.
        recoloured = _set_tag(kept, PHOTOMETRIC, 6)
        assert essence_hash(recoloured) == essence_hash(signed)
        verdict = verify_bytes(recoloured, trust=trust, inventory=inventory)
    assert verdict.status is Status.TAMPERED, verdict.failure_codes
    assert RENDERING in verdict.failure_codes
    assert "provenance.metadata.stripped" not in verdict.failure_codes
    assert any("how the image decodes" in e.detail for e in verdict.evidence)


def _two_image_heic() -> bytes:
    """A HEIC collection of two pictures (items 1 and 2); item 1 is the primary."""
    import pillow_heif  # registers Pillow's HEIF writer, only when needed

    pillow_heif.register_heif_opener()
    out = BytesIO()
    picture(5, (160, 120)).save(
        out, "HEIF", quality=85, save_all=True, append_images=[picture(9, (120, 160))]
    )
    return out.getvalue()


def _primary(data: bytes, item_id: int) -> bytes:
    at = data.index(b"pitm")  # FullBox: version 0, flags, then a 16-bit item id
    assert int.from_bytes(data[at + 8 : at + 10], "big") == 1
    return data[: at + 8] + item_id.to_bytes(2, "big") + data[at + 10 :]


@pytest.mark.parametrize(
    ("blocks", "status"),
    [(frozenset(), Status.KNOWN_STRIPPED), (frozenset({BlockKind.C2PA}), Status.TRUSTED)],
    ids=["c2pa-broken", "xmp-only"],
)
def test_heic_primary_item_switched_after_signing_is_tampered_with_the_inventory(
    blocks: frozenset[BlockKind],
    status: Status,
    signing_key: SigningKey,
    trust: TrustPolicy,
    tmp_path: Path,
) -> None:
    source = tmp_path / "source.heic"
    source.write_bytes(_two_image_heic())
    with Inventory(tmp_path / "inv.sqlite") as inventory:
        sign(source, tmp_path / "signed.heic", record=RECORD, key=signing_key, inventory=inventory)
        signed = (tmp_path / "signed.heic").read_bytes()
        kept = containers.strip(signed, blocks) if blocks else signed
        edited = kept if blocks else containers.strip(signed, frozenset({BlockKind.XMP}))
        assert verify_bytes(edited, trust=trust, inventory=inventory).status is status
        # The second picture shown instead of the first: the same coded items.
        switched = _primary(kept, 2)
        assert essence_hash(switched) == essence_hash(signed)
        verdict = verify_bytes(switched, trust=trust, inventory=inventory)
    assert verdict.status is Status.TAMPERED, verdict.failure_codes
    assert RENDERING in verdict.failure_codes
    assert any("how the image decodes" in e.detail for e in verdict.evidence)


def test_a_tiff_too_large_to_decode_keeps_its_verdict_and_says_why(
    signing_key: SigningKey,
    trust: TrustPolicy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No false alarm where the pixels cannot be compared (an asset over the limit)."""
    source = tmp_path / "source.tif"
    picture(5, (160, 120)).save(source, "TIFF")
    with Inventory(tmp_path / "inv.sqlite") as inventory:
        sign(source, tmp_path / "signed.tif", record=RECORD, key=signing_key, inventory=inventory)
        edited = containers.strip(
            (tmp_path / "signed.tif").read_bytes(), frozenset({BlockKind.XMP})
        )
        monkeypatch.setenv("PROVENANCE_MAX_PIXELS", "1000")  # 160x120 is over it now
        verdict = verify_bytes(edited, trust=trust, inventory=inventory)
    assert verdict.status is Status.KNOWN_STRIPPED
    assert "provenance.inventory.perceptual.undecodable" in verdict.failure_codes
