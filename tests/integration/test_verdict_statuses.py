"""Each status on real files made here: signed with our keys, then altered.

Metadata-only changes (ExifTool), a remote manifest (c2pa's Builder), manifests
made malformed or unsupported by editing the JUMBF bytes, a hashedURI mismatch,
conflicting XMP, and CAWG identity assertions (valid and with a signature that
does not match).
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import c2pa
import pytest

from provenance import SigningKey, Status, TrustPolicy, sign, verify, verify_bytes
from provenance._core.types import IdentityState
from provenance._io.c2pa import C2paIngredient, sign_c2pa
from provenance._io.keys import DevKeyPaths
from provenance.inventory import Inventory
from tests.conftest import run_cli, sample_record

Media = Callable[[str], Path]
SIGNED = {
    "jpg": "rowing-boats-sunset.jpg",
    "png": "packshot-tractor-wheel-alpha.png",
    "webp": "lake-at-dusk.webp",
}
MIME = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
needs_exiftool = pytest.mark.skipif(shutil.which("exiftool") is None, reason="no ExifTool")


@pytest.fixture
def inventory(tmp_path: Path) -> Iterator[Inventory]:
    with Inventory(tmp_path / "inventory.sqlite") as inv:
        yield inv


def _signed(media: Media, key: SigningKey, ext: str, tmp_path: Path) -> Path:
    name = SIGNED[ext]
    dst = tmp_path / f"signed.{ext}"
    sign(media(name), dst, record=sample_record(name), key=key)
    return dst


def _replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new) and data.count(old) >= 1
    at = data.index(old)
    return data[:at] + new + data[at + len(old) :]


# --- metadata-only changes -----------------------------------------------------


@needs_exiftool
@pytest.mark.parametrize("ext", ["png", "webp"])
def test_exiftool_strip_keeping_c2pa_is_known_stripped_without_inventory(
    ext: str, media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    signed = _signed(media, signing_key, ext, tmp_path)
    original = verify(signed, trust=trust)
    assert original.status is Status.TRUSTED
    assert original.identities == ()  # our signer writes no identity assertion
    subprocess.run(["exiftool", "-q", "-all=", "-overwrite_original", str(signed)], check=True)
    verdict = verify(signed, trust=trust)
    assert verdict.status is Status.KNOWN_STRIPPED
    assert not verdict.status.is_failure
    assert {
        "assertion.dataHash.mismatch",
        "provenance.c2pa.binding.metadataOnly",
        "provenance.metadata.stripped",
    } <= set(verdict.failure_codes)
    # The original's record, read from the signed statement in the manifest.
    assert verdict.record == original.record
    assert verdict.asset_id == original.asset_id


@needs_exiftool
@pytest.mark.parametrize("ext", ["png", "webp"])
def test_exiftool_metadata_edit_is_known_stripped(
    ext: str, media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    signed = _signed(media, signing_key, ext, tmp_path)
    subprocess.run(
        ["exiftool", "-q", "-overwrite_original", "-EXIF:Artist=someone else", str(signed)],
        check=True,
    )
    verdict = verify(signed, trust=trust)
    assert verdict.status is Status.KNOWN_STRIPPED
    assert "assertion.dataHash.mismatch" in verdict.failure_codes


@needs_exiftool
def test_exiftool_strip_jpeg_is_known_stripped_with_the_inventory(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, inventory: Inventory, tmp_path: Path
) -> None:
    name = SIGNED["jpg"]
    dst = tmp_path / "signed.jpg"
    result = sign(
        media(name), dst, record=sample_record(name), key=signing_key, inventory=inventory
    )
    subprocess.run(["exiftool", "-q", "-all=", "-overwrite_original", str(dst)], check=True)
    # ExifTool drops the JPEG's APP11 manifest too: only the inventory knows it.
    assert verify(dst, trust=trust).status is Status.NO_PROVENANCE
    verdict = verify(dst, trust=trust, inventory=inventory)
    assert verdict.status is Status.KNOWN_STRIPPED
    assert verdict.asset_id == result.asset_id


def test_pixel_change_stays_tampered(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    signed = _signed(media, signing_key, "png", tmp_path)
    data = bytearray(signed.read_bytes())
    at = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[at : at + 4])[0]
    body = at + 8
    data[body + length // 2] ^= 0x01  # one bit of the compressed image data
    crc = zlib.crc32(bytes(data[at + 4 : body + length]))
    data[body + length : body + length + 4] = struct.pack(">I", crc)
    signed.write_bytes(bytes(data))
    verdict = verify(signed, trust=trust)
    assert verdict.status is Status.TAMPERED
    assert "assertion.dataHash.mismatch" in verdict.failure_codes
    assert "provenance.c2pa.binding.metadataOnly" not in verdict.failure_codes


def _xmp_segment(packet: bytes) -> bytes:
    payload = b"http://ns.adobe.com/xap/1.0/\x00" + packet
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _packet(text: str) -> bytes:
    return (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        b"<dc:format>" + text.encode() + b"</dc:format></rdf:Description></rdf:RDF></x:xmpmeta>"
    )


def test_conflicting_unsigned_xmp_gets_a_verdict(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    raw = media("forest-path.jpg").read_bytes()
    two = raw[:2] + _xmp_segment(_packet("image/jpeg")) + _xmp_segment(_packet("image/x")) + raw[2:]
    path = tmp_path / "two-xmp.jpg"
    path.write_bytes(two)
    verdict = verify(path, trust=trust)
    assert verdict.status is Status.NO_PROVENANCE
    assert "provenance.xmp.conflicting" in verdict.failure_codes
    # On a signed file, an added packet is a metadata change over intact pixels.
    signed = _signed(media, signing_key, "jpg", tmp_path)
    data = signed.read_bytes()
    signed.write_bytes(data[:2] + _xmp_segment(_packet("image/x")) + data[2:])
    verdict = verify(signed, trust=trust)
    assert verdict.status is Status.KNOWN_STRIPPED
    assert {"provenance.xmp.conflicting", "assertion.dataHash.mismatch"} <= set(
        verdict.failure_codes
    )
    result = run_cli("verify", "--json", path, signed)
    assert result.returncode == 0, result.stderr
    assert [row["verdict"] for row in json.loads(result.stdout)] == [
        "no_provenance",
        "known_stripped",
    ]


# --- manifests that are remote, malformed or unsupported -----------------------


def test_remote_manifest_is_its_own_status(
    media: Media, signing_key: SigningKey, tmp_path: Path
) -> None:
    url = "https://manifests.example.invalid/asset.c2pa"
    for ext, name in SIGNED.items():
        context = c2pa.Context(
            settings=c2pa.Settings.from_dict(
                {
                    "builder": {"thumbnail": {"enabled": False}},
                    "verify": {"verify_after_sign": False},
                }
            )
        )
        definition = {
            "claim_generator_info": [{"name": "tests", "version": "1"}],
            "assertions": [
                {
                    "label": "c2pa.actions",
                    "data": {
                        "actions": [
                            {
                                "action": "c2pa.created",
                                "digitalSourceType": "http://cv.iptc.org/newscodes/"
                                "digitalsourcetype/trainedAlgorithmicMedia",
                            }
                        ]
                    },
                }
            ],
        }
        info = c2pa.C2paSignerInfo(
            alg=b"es256",
            sign_cert=signing_key.embedded_chain_pem,
            private_key=signing_key.private_key_pem,
            ta_url=None,
        )
        out = io.BytesIO()
        with c2pa.Builder(definition, context=context) as builder:
            builder.set_remote_url(url)
            builder.set_no_embed()
            builder.sign(
                c2pa.Signer.from_info(info), MIME[ext], io.BytesIO(media(name).read_bytes()), out
            )
        path = tmp_path / f"remote.{ext}"
        path.write_bytes(out.getvalue())
        verdict = verify(path)
        assert verdict.status is Status.REMOTE_MANIFEST, ext
        assert verdict.remote_url == url
        assert verdict.failure_codes == ("provenance.c2pa.remoteManifest.notFetched",)
    result = run_cli("verify", "--json", tmp_path / "remote.png")
    assert result.returncode == 0
    assert json.loads(result.stdout)[0]["remote_url"] == url


def test_unsupported_claim_version(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    signed = _signed(media, signing_key, "jpg", tmp_path)
    signed.write_bytes(_replace_once(signed.read_bytes(), b"c2pa.claim.v2", b"c2pa.claim.v9"))
    verdict = verify(signed, trust=trust)
    assert verdict.status is Status.UNSUPPORTED
    assert "c2pa.error.Verify" in verdict.failure_codes
    assert not verdict.status.is_failure


def test_signature_naming_no_known_algorithm(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    signed = _signed(media, signing_key, "jpg", tmp_path)
    data = signed.read_bytes()
    # COSE_Sign1 protected header {1: -7, 33: x5chain}: key 1 (alg) becomes 13.
    cose = data.index(b"\xd2\x84", data.index(b"c2pa.signature", data.index(b"c2pa.claim.v2")))
    header = data.index(b"\x01\x26", cose)
    signed.write_bytes(data[:header] + b"\x0d" + data[header + 1 :])
    verdict = verify(signed, trust=trust)
    assert verdict.status is Status.UNSUPPORTED
    assert {"algorithm.unsupported", "claimSignature.mismatch"} <= set(verdict.failure_codes)


def test_truncated_claim_label_is_invalid_manifest(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    signed = _signed(media, signing_key, "jpg", tmp_path)
    signed.write_bytes(
        _replace_once(signed.read_bytes(), b"c2pa.claim.v2", b"c2pa.claim\x00\x00\x00")
    )
    verdict = verify(signed, trust=trust)
    assert verdict.status is Status.INVALID_MANIFEST
    assert verdict.status.is_failure
    assert any(code.startswith("c2pa.error.") for code in verdict.failure_codes)


def test_hashed_uri_mismatch_code_is_reported(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    signed = _signed(media, signing_key, "jpg", tmp_path)
    data = signed.read_bytes()
    jumbf = data.index(b"c2pa.actions")
    at = data.index(b"trainedAlgorithmicMedia", jumbf)
    signed.write_bytes(data[:at] + b"T" + data[at + 1 :])
    verdict = verify(signed, trust=trust)
    assert verdict.status is Status.TAMPERED
    assert "assertion.hashedURI.mismatch" in verdict.failure_codes


# --- CAWG identity assertions --------------------------------------------------


def _identity_signed(source: bytes, chain: str, key: str, identity_key: str) -> bytes:
    """Sign with c2pa-rs's settings signer wrapped in its CAWG X.509 identity signer."""
    settings = {
        "builder": {"thumbnail": {"enabled": False}},
        "verify": {"verify_after_sign": False, "remote_manifest_fetch": False},
        "signer": {"local": {"alg": "es256", "sign_cert": chain, "private_key": key}},
        "cawg_x509_signer": {
            "local": {
                "alg": "es256",
                "sign_cert": chain,
                "private_key": identity_key,
                "referenced_assertions": ["c2pa.actions"],
            }
        },
    }
    context = c2pa.Context(settings=c2pa.Settings.from_dict(settings))
    # c2pa-python 0.38 counts only a Signer object as the context's signer; the
    # native context builds one from settings (wrapped in the CAWG signer).
    context._has_signer = True
    definition = {
        "claim_generator_info": [{"name": "tests", "version": "1"}],
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": "http://cv.iptc.org/newscodes/"
                            "digitalsourcetype/trainedAlgorithmicMedia",
                        }
                    ]
                },
            }
        ],
    }
    out = io.BytesIO()
    with c2pa.Builder(definition, context=context) as builder:
        builder.sign("image/jpeg", io.BytesIO(source), out)
    return out.getvalue()


def test_cawg_identity_valid_and_invalid(
    media: Media,
    dev_keys: DevKeyPaths,
    other_keys: DevKeyPaths,
    trust: TrustPolicy,
    tmp_path: Path,
) -> None:
    source = media("forest-path.jpg").read_bytes()
    chain = dev_keys.chain.read_text()
    key = dev_keys.private_key.read_text()
    good = tmp_path / "identity.jpg"
    good.write_bytes(_identity_signed(source, chain, key, key))
    verdict = verify(good, trust=trust)
    assert verdict.status is Status.TRUSTED  # an unanchored identity costs no trust
    (identity,) = verdict.identities
    assert identity.label == "cawg.identity"
    assert identity.sig_type == "cawg.x509.cose"
    assert identity.state is IdentityState.VALID
    assert identity.actor is not None and "provenance tests" in identity.actor
    valid_actor = identity.actor
    assert "cawg.identity.well-formed" in identity.codes
    # The identity certificate's key is not the one that signed: the signature fails.
    bad = tmp_path / "identity-bad.jpg"
    bad.write_bytes(_identity_signed(source, chain, key, other_keys.private_key.read_text()))
    verdict = verify(bad, trust=trust)
    assert verdict.status is Status.INVALID_IDENTITY
    assert verdict.status.is_failure
    (identity,) = verdict.identities
    assert identity.state is IdentityState.INVALID
    assert identity.actor == valid_actor  # named from the COSE x5chain, same form
    assert {"cawg.x509.signature.mismatch", "provenance.identity.invalid"} <= set(
        verdict.failure_codes
    )
    assert "identity" in [e.source.value for e in verdict.evidence]
    result = run_cli("verify", "--json", "--trust-anchors", dev_keys.ca_certificate, good, bad)
    assert result.returncode == 1
    rows = json.loads(result.stdout)
    assert [r["identities"][0]["state"] for r in rows] == ["valid", "invalid"]


def test_codes_recorded_in_an_ingredient_are_reported(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    """A rendition of a parent whose actions were altered: the child is intact, the
    ingredient's recorded hashedURI mismatch still shows in failure_codes."""
    parent = _signed(media, signing_key, "jpg", tmp_path).read_bytes()
    at = parent.index(b"trainedAlgorithmicMedia", parent.index(b"c2pa.actions"))
    broken = parent[:at] + b"T" + parent[at + 1 :]
    definition = {
        "claim_generator_info": [{"name": "tests", "version": "1"}],
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}},
                        {"action": "c2pa.resized"},
                    ]
                },
            }
        ],
    }
    child, _ = sign_c2pa(
        media("forest-path.jpg").read_bytes(),
        "image/jpeg",
        definition,
        signing_key,
        ingredient=C2paIngredient(broken, "image/jpeg", "parent.jpg"),
    )
    verdict = verify_bytes(child, trust=trust)
    assert verdict.status is Status.TRUSTED
    assert "assertion.hashedURI.mismatch" in verdict.failure_codes
    assert "ingredient was recorded with failures" in verdict.evidence[0].detail
