from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provenance._io.keys import (
    DevKeyPaths,
    SigningAlgorithm,
    SigningKey,
    TrustPolicy,
    init_dev_keys,
    verify_detached,
)
from provenance.errors import (
    InsecureKeyFileWarning,
    KeyConfigError,
    SignatureError,
    TrustConfigError,
)

NOW = dt.datetime.now(dt.timezone.utc)


def _der_chain(key: SigningKey) -> list[bytes]:
    return [c.public_bytes(serialization.Encoding.DER) for c in key.certificates]


def test_dev_keys_have_c2pa_profile(dev_keys: DevKeyPaths) -> None:
    chain = x509.load_pem_x509_certificates(dev_keys.chain.read_bytes())
    leaf, ca = chain
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    leaf.verify_directly_issued_by(ca)
    assert stat.S_IMODE(dev_keys.private_key.stat().st_mode) == 0o600
    assert "DEVELOPMENT KEYS ONLY" in (dev_keys.directory / "README.txt").read_text()


def test_init_refuses_to_overwrite(dev_keys: DevKeyPaths) -> None:
    before = dev_keys.private_key.read_bytes()
    with pytest.raises(KeyConfigError, match="already exist"):
        init_dev_keys(dev_keys.directory)
    assert dev_keys.private_key.read_bytes() == before


def test_sign_and_verify_detached(signing_key: SigningKey, trust: TrustPolicy) -> None:
    assert signing_key.algorithm is SigningAlgorithm.ES256
    signature = signing_key.sign(b"statement")
    chain = verify_detached(_der_chain(signing_key), "ES256", signature, b"statement")
    assert trust.chain_is_trusted(chain, at=NOW)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_detached(_der_chain(signing_key), "ES256", signature, b"statement!")
    with pytest.raises(SignatureError, match="unknown signature algorithm"):
        verify_detached(_der_chain(signing_key), "RS1", signature, b"statement")
    with pytest.raises(SignatureError, match="no certificate chain"):
        verify_detached([], "ES256", signature, b"statement")


def test_foreign_chain_is_not_trusted(other_key: SigningKey, trust: TrustPolicy) -> None:
    chain = verify_detached(_der_chain(other_key), "ES256", other_key.sign(b"x"), b"x")
    assert not trust.chain_is_trusted(chain, at=NOW)
    assert not TrustPolicy.no_anchors().chain_is_trusted(chain, at=NOW)


def test_expired_chain_is_not_trusted(signing_key: SigningKey, trust: TrustPolicy) -> None:
    later = NOW + dt.timedelta(days=3000)
    assert not trust.chain_is_trusted(signing_key.certificates, at=later)


def test_a_remembered_chain_is_still_checked_at_each_time(
    signing_key: SigningKey, other_key: SigningKey, trust: TrustPolicy
) -> None:
    # The links of a chain are checked once per policy (a batch's files share a
    # signer); its validity periods at every call, and a foreign chain stays out.
    der = _der_chain(signing_key)
    first = verify_detached(der, "ES256", signing_key.sign(b"a"), b"a")
    again = verify_detached(der, "ES256", signing_key.sign(b"b"), b"b")
    assert trust.chain_is_trusted(first, at=NOW)
    assert trust.chain_is_trusted(again, at=NOW)
    assert not trust.chain_is_trusted(again, at=NOW + dt.timedelta(days=3000))
    assert not trust.chain_is_trusted(again, at=NOW - dt.timedelta(days=3000))
    assert trust.chain_is_trusted(again, at=NOW)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_detached(der, "ES256", signing_key.sign(b"a"), b"b")
    foreign = verify_detached(_der_chain(other_key), "ES256", other_key.sign(b"x"), b"x")
    assert not trust.chain_is_trusted(foreign, at=NOW)
    assert not trust.chain_is_trusted(foreign, at=NOW)
    # The leaf alone, without the CA certificate that links it: issued by the anchor.
    assert trust.chain_is_trusted(first[:1], at=NOW)
    with pytest.raises(SignatureError, match="not DER"):
        verify_detached([b"not a certificate"], "ES256", b"sig", b"x")


def test_mismatched_key_and_chain(dev_keys: DevKeyPaths, other_keys: DevKeyPaths) -> None:
    with pytest.raises(KeyConfigError, match="does not match") as info:
        SigningKey.from_pem_files(dev_keys.chain, other_keys.private_key)
    assert str(info.value).startswith(str(other_keys.private_key))


def test_missing_and_garbage_key_files(dev_keys: DevKeyPaths, tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError, match="cannot read private key"):
        SigningKey.from_pem_files(dev_keys.chain, tmp_path / "nope.key")
    junk = tmp_path / "junk.key"
    junk.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot base64\n")
    junk.chmod(0o600)
    with pytest.raises(KeyConfigError, match="cannot load private key"):
        SigningKey.from_pem_files(dev_keys.chain, junk)
    with pytest.raises(KeyConfigError, match="not PEM"):
        SigningKey.from_pem(b"garbage", dev_keys.private_key.read_bytes())


def test_repr_and_errors_never_show_key_material(
    signing_key: SigningKey, dev_keys: DevKeyPaths
) -> None:
    pem = dev_keys.private_key.read_bytes().decode()
    body = "".join(pem.splitlines()[1:-1])
    assert body[:20] not in repr(signing_key)
    assert "signer" in repr(signing_key)


def test_world_readable_key_warns(dev_keys: DevKeyPaths, tmp_path: Path) -> None:
    loose = tmp_path / "loose.key"
    loose.write_bytes(dev_keys.private_key.read_bytes())
    loose.chmod(0o644)
    with pytest.warns(InsecureKeyFileWarning, match="readable by other users") as caught:
        SigningKey.from_pem_files(dev_keys.chain, loose)
    assert str(loose) in str(caught[0].message)
    assert "PRIVATE KEY" not in str(caught[0].message)


def test_callback_key_signs_without_local_key(dev_keys: DevKeyPaths) -> None:
    hidden = serialization.load_pem_private_key(dev_keys.private_key.read_bytes(), None)
    assert isinstance(hidden, ec.EllipticCurvePrivateKey)
    calls: list[int] = []

    def kms(data: bytes) -> bytes:
        calls.append(len(data))
        return hidden.sign(data, ec.ECDSA(hashes.SHA256()))

    key = SigningKey.from_callback(kms, dev_keys.chain.read_bytes())
    assert key.is_callback and key.private_key_pem is None
    sig = key.sign(b"abc")
    verify_detached(_der_chain(key), "ES256", sig, b"abc")
    assert calls == [3]

    def broken(data: bytes) -> bytes:
        raise RuntimeError("HSM offline")

    with pytest.raises(SignatureError, match="callback failed"):
        SigningKey.from_callback(broken, dev_keys.chain.read_bytes()).sign(b"abc")


def _leaf_without_eku(tmp_path: Path) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "no eku")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_certificate_without_c2pa_eku_refused(tmp_path: Path) -> None:
    chain, key = _leaf_without_eku(tmp_path)
    with pytest.raises(KeyConfigError, match="extended key usage"):
        SigningKey.from_pem(chain, key)


def test_trust_policy_errors(tmp_path: Path) -> None:
    with pytest.raises(TrustConfigError, match="cannot read"):
        TrustPolicy.from_pem(tmp_path / "missing.pem")
    bad = tmp_path / "bad.pem"
    bad.write_text("hello")
    with pytest.raises(TrustConfigError) as info:
        TrustPolicy.from_pem(bad)
    assert str(info.value).startswith(str(bad))
    assert not TrustPolicy.no_anchors().has_anchors


def test_a_released_key_takes_its_c2pa_context_with_it(tmp_path: Path) -> None:
    """The io layer's per-key c2pa cache holds keys weakly (issue 18: no cache on the key)."""
    import gc
    import weakref

    from provenance._io.c2pa import _sign as adapter

    init_dev_keys(tmp_path / "k")
    key = SigningKey.from_pem_files(tmp_path / "k" / "chain.pem", tmp_path / "k" / "signer.key")
    callback_key = SigningKey.from_callback(key.sign, key.chain_pem, algorithm=key.algorithm)
    first = adapter._signing_context(callback_key)
    assert adapter._signing_context(callback_key) is first  # one Context per key and process
    gone = weakref.ref(callback_key)
    del callback_key, first
    gc.collect()
    assert gone() is None
    assert not hasattr(key, "_c2pa_cache")
