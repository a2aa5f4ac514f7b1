"""sign and verify on copies of sample_media: every status the foundation promises."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from provenance import (
    CorruptFile,
    PersonalDataError,
    ProvenanceError,
    SigningKey,
    Status,
    TrustPolicy,
    UnsupportedFormat,
    VerificationError,
    sign,
    verify,
)
from provenance._core.containers import BlockKind, inspect, strip
from provenance._core.hashing import essence_hash
from provenance._core.pii import PiiAction, PiiPolicy
from provenance.sign import SignOptions
from tests.conftest import SAMPLES, sample_record

Media = Callable[[str], Path]


def _signed(media: Media, name: str, key: SigningKey, tmp_path: Path) -> Path:
    src = media(name)
    dst = tmp_path / f"signed-{name}"
    sign(src, dst, record=sample_record(name), key=key)
    return dst


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_signs_and_verifies(
    name: str, media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    src = media(name)
    before = src.read_bytes()
    dst = tmp_path / f"signed-{name}"
    result = sign(src, dst, record=sample_record(name), key=signing_key)
    assert src.read_bytes() == before, "the input must never change"
    assert result.essence_sha256_hex == essence_hash(before) == essence_hash(dst.read_bytes())
    assert 0 < result.bytes_added < 12_000
    trusted = verify(dst, trust=trust)
    assert trusted.status is Status.TRUSTED, trusted.evidence
    assert trusted.record == result.record
    assert trusted.asset_id == result.asset_id
    assert trusted.active_manifest == result.active_manifest
    assert {e.source.value: e.status for e in trusted.evidence} == {
        "c2pa": Status.TRUSTED,
        "xmp": Status.TRUSTED,
    }
    assert trusted.require_trusted() is trusted
    untrusted = verify(dst)
    assert untrusted.status is Status.VALID_UNTRUSTED
    assert "signingCredential.untrusted" in untrusted.failure_codes
    with pytest.raises(VerificationError, match="valid_untrusted"):
        untrusted.require_trusted()
    # The decoded pixels of the output equal those of the input.
    with Image.open(io.BytesIO(before)) as a, Image.open(dst) as b:
        assert a.mode == b.mode and a.size == b.size
        assert a.tobytes() == b.tobytes()


def test_foreign_key_is_valid_but_untrusted(
    media: Media, other_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    dst = _signed(media, "kite-blue-sky.jpg", other_key, tmp_path)
    verdict = verify(dst, trust=trust)
    assert verdict.status is Status.VALID_UNTRUSTED
    assert "someone else" in (verdict.signer or "")


@pytest.mark.parametrize(
    "name", ["forest-path.jpg", "packshot-site-dumper-alpha.png", "lake-at-dusk.webp"]
)
def test_one_byte_of_image_data_changed_is_tampered(
    name: str, media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    dst = _signed(media, name, signing_key, tmp_path)
    data = bytearray(dst.read_bytes())
    start, end = inspect(bytes(data)).essence_ranges[-1]
    data[(start + end) // 2] ^= 0x01
    dst.write_bytes(bytes(data))
    verdict = verify(dst, trust=trust)
    assert verdict.status is Status.TAMPERED
    assert "assertion.dataHash.mismatch" in verdict.failure_codes
    assert "provenance.xmp.essence.mismatch" in verdict.failure_codes


def test_manifest_bytes_altered(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    dst = _signed(media, "forest-path.jpg", signing_key, tmp_path)
    data = bytearray(dst.read_bytes())
    at = data.find(b"c2pa.signature")
    assert at > 0
    data[at + 200] ^= 0x01
    dst.write_bytes(bytes(data))
    verdict = verify(dst, trust=trust)
    assert verdict.status in (Status.TAMPERED, Status.INVALID_SIGNATURE)


def test_xmp_edited_after_signing_is_tampered(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    dst = _signed(media, "forest-path.jpg", signing_key, tmp_path)
    data = dst.read_bytes()
    edited = data.replace(b"stable-diffusion-xl-base", b"stable-diffusion-xl-BASE", 1)
    if edited == data:
        edited = data.replace(b"flux.1-dev", b"flux.1-DEV", 1)
    assert edited != data
    dst.write_bytes(edited)
    verdict = verify(dst, trust=trust)
    assert verdict.status is Status.TAMPERED


def test_c2pa_removed_but_signed_xmp_kept_is_recognised(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    for name in ("forest-path.jpg", "packshot-fire-truck-white.png", "lake-at-dusk.webp"):
        dst = _signed(media, name, signing_key, tmp_path)
        dst.write_bytes(strip(dst.read_bytes(), frozenset({BlockKind.C2PA})))
        verdict = verify(dst, trust=trust)
        assert verdict.status is Status.TRUSTED, (name, verdict.evidence)
        assert [e.source.value for e in verdict.evidence] == ["xmp"]
        assert "provenance.c2pa.missing" in verdict.failure_codes
        assert verdict.record == sample_record(name)


def test_all_metadata_stripped_is_no_provenance(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    dst = _signed(media, "lake-at-dusk.webp", signing_key, tmp_path)
    dst.write_bytes(strip(dst.read_bytes(), frozenset(BlockKind)))
    verdict = verify(dst, trust=trust)
    assert verdict.status is Status.NO_PROVENANCE
    assert verdict.record is None and verdict.evidence == ()


def test_unsigned_photo_is_no_provenance(media: Media, trust: TrustPolicy) -> None:
    verdict = verify(media("kite-blue-sky.jpg"), trust=trust)
    assert verdict.status is Status.NO_PROVENANCE
    assert verdict.essence_sha256_hex is not None


def test_rendition_carries_parent_lineage(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    original = _signed(media, "rowing-boats-sunset.jpg", signing_key, tmp_path)
    with Image.open(original) as im:
        im.thumbnail((300, 300))
        thumb = tmp_path / "thumb.jpg"
        im.save(thumb, "JPEG", quality=80)
    signed_thumb = tmp_path / "signed-thumb.jpg"
    result = sign(
        thumb,
        signed_thumb,
        record=sample_record("rowing-boats-sunset.jpg"),
        key=signing_key,
        parent=original,
    )
    parent_verdict = verify(original, trust=trust)
    verdict = verify(signed_thumb, trust=trust)
    assert verdict.status is Status.TRUSTED
    assert verdict.record is not None
    (ref,) = verdict.record.parents
    assert ref.sha256_hex == result.parent_sha256_hex
    assert ref.asset_id == parent_verdict.asset_id
    assert ref.essence_sha256_hex == parent_verdict.essence_sha256_hex
    # From the file alone: the rendition's store carries its parent's manifest.
    assert [step.asset_id for step in verdict.lineage] == [result.asset_id, ref.asset_id]
    assert verdict.lineage[1].manifest == parent_verdict.active_manifest
    assert verdict.lineage[1].record == parent_verdict.record
    assert parent_verdict.lineage[0].asset_id == parent_verdict.asset_id
    assert len(parent_verdict.lineage) == 1


def test_personal_data_in_prompt(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    src = media("forest-path.jpg")
    record = sample_record("forest-path.jpg").replace(
        prompt="forest path, deliver to jane.doe@example.com"
    )
    with pytest.raises(PersonalDataError, match="prompt") as info:
        sign(src, tmp_path / "out.jpg", record=record, key=signing_key)
    assert "jane.doe" not in str(info.value)
    assert not (tmp_path / "out.jpg").exists()
    redact = SignOptions(pii_policy=PiiPolicy(default=PiiAction.REDACT))
    sign(src, tmp_path / "out.jpg", record=record, key=signing_key, options=redact)
    data = (tmp_path / "out.jpg").read_bytes()
    assert b"jane.doe" not in data and b"example.com" not in data
    assert verify(tmp_path / "out.jpg", trust=trust).status is Status.TRUSTED
    hashed = SignOptions(pii_policy=PiiPolicy(default=PiiAction.HASH, hash_key=b"k" * 32))
    result = sign(src, tmp_path / "hashed.jpg", record=record, key=signing_key, options=hashed)
    data = (tmp_path / "hashed.jpg").read_bytes()
    assert b"jane.doe" not in data and b"example.com" not in data
    assert result.record.prompt is not None and "hmac-sha256" in result.record.prompt


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b"", CorruptFile, "empty"),
        (b"BM" + b"\0" * 64, UnsupportedFormat, "not a JPEG, PNG, WebP, TIFF"),
        (b"GIF89a" + b"\0" * 64, CorruptFile, "unknown block introducer"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", CorruptFile, "truncated"),
    ],
)
def test_bad_input_is_a_clear_error_and_nothing_is_written(
    content: bytes,
    error: type[ProvenanceError],
    message: str,
    signing_key: SigningKey,
    tmp_path: Path,
) -> None:
    src = tmp_path / "bad.jpg"
    src.write_bytes(content)
    with pytest.raises(error, match=message) as info:
        sign(src, tmp_path / "out.jpg", record=sample_record("forest-path.jpg"), key=signing_key)
    assert str(info.value).startswith(str(src))
    assert not (tmp_path / "out.jpg").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jpg"]
    assert src.read_bytes() == content
    with pytest.raises(error):
        verify(src)


def test_directory_and_missing_file(signing_key: SigningKey, tmp_path: Path) -> None:
    with pytest.raises(ProvenanceError, match="is a directory"):
        verify(tmp_path)
    with pytest.raises(ProvenanceError, match="no such file"):
        sign(
            tmp_path / "nope.jpg",
            tmp_path / "o.jpg",
            record=sample_record("forest-path.jpg"),
            key=signing_key,
        )


def test_sign_in_place_is_atomic_and_complete(
    media: Media, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    src = media("forest-path.jpg")
    sign(src, src, record=sample_record("forest-path.jpg"), key=signing_key)
    assert verify(src, trust=trust).status is Status.TRUSTED
    assert sorted(p.name for p in src.parent.iterdir() if p.name.startswith(".")) == []


def test_callback_signer_produces_trusted_files(
    media: Media, dev_keys: object, trust: TrustPolicy, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    paths = dev_keys
    hidden = serialization.load_pem_private_key(paths.private_key.read_bytes(), None)  # type: ignore[attr-defined]
    assert isinstance(hidden, ec.EllipticCurvePrivateKey)
    calls = []

    def kms(data: bytes) -> bytes:
        calls.append(1)
        return hidden.sign(data, ec.ECDSA(hashes.SHA256()))

    key = SigningKey.from_callback(kms, paths.chain.read_bytes())  # type: ignore[attr-defined]
    dst = tmp_path / "kms.png"
    sign(
        media("packshot-fire-truck-white.png"),
        dst,
        record=sample_record("packshot-fire-truck-white.png"),
        key=key,
    )
    assert len(calls) == 2  # one for the XMP statement, one for the C2PA claim
    assert verify(dst, trust=trust).status is Status.TRUSTED
