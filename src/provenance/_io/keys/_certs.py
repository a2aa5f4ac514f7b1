"""Signature algorithms and certificates: chains, signing-certificate checks, fingerprints."""

from __future__ import annotations

import base64
import enum
import functools
import hashlib
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provenance.errors import (
    KeyConfigError,
)

# EKUs c2pa-rs accepts for a claim signer (C2PA 2.x, section 14.5.1), besides
# emailProtection and documentSigning.
_C2PA_EKUS = frozenset(
    {
        ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string,
        "1.3.6.1.5.5.7.3.36",  # id-kp-documentSigning
        "1.3.6.1.4.1.311.76.59.1.9",  # Microsoft document signing
        "1.3.6.1.5.5.7.3.4",  # emailProtection (dotted, for clarity)
        "1.3.6.1.5.5.7.3.8",  # timeStamping
        "1.3.6.1.5.5.7.3.9",  # OCSPSigning
    }
)


class SigningAlgorithm(enum.Enum):
    """Signature algorithms provenance signs with (a subset of what c2pa allows)."""

    ES256 = "es256"
    ES384 = "es384"
    ED25519 = "ed25519"


def certificate_subject(der: bytes) -> str | None:
    """``CN=...,O=...`` of a DER certificate's subject, as c2pa names signers; None if bad."""
    try:
        subject = x509.load_der_x509_certificate(der).subject
    except ValueError:
        return None
    parts = [
        f"{short}={attr.value!s}"
        for short, oid in (("CN", NameOID.COMMON_NAME), ("O", NameOID.ORGANIZATION_NAME))
        for attr in subject.get_attributes_for_oid(oid)
    ]
    return ",".join(parts) or subject.rfc4514_string()


def _load_chain(chain_pem: bytes) -> tuple[x509.Certificate, ...]:
    try:
        certs = tuple(x509.load_pem_x509_certificates(chain_pem))
    except ValueError:
        raise KeyConfigError("certificate chain is not PEM X.509") from None
    if not certs:
        raise KeyConfigError("certificate chain holds no certificate")
    return certs


def _check_signing_certificate(leaf: x509.Certificate) -> None:
    """Refuse certificates c2pa-rs would reject, with a reason a person can act on."""
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.digital_signature:
        raise KeyConfigError("signing certificate lacks the digitalSignature key usage")
    try:
        ekus = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise KeyConfigError(
            "signing certificate has no extended key usage; C2PA needs emailProtection "
            "or documentSigning"
        ) from None
    if not any(oid.dotted_string in _C2PA_EKUS for oid in ekus):
        raise KeyConfigError(
            "signing certificate's extended key usage is not accepted by C2PA; use "
            "emailProtection or documentSigning"
        )
    try:
        basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    if basic is not None and basic.ca:
        raise KeyConfigError("signing certificate is a CA certificate; use a leaf certificate")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _ec_algorithm(curve: ec.EllipticCurve) -> SigningAlgorithm:
    if isinstance(curve, ec.SECP256R1):
        return SigningAlgorithm.ES256
    if isinstance(curve, ec.SECP384R1):
        return SigningAlgorithm.ES384
    raise KeyConfigError(f"unsupported EC curve {curve.name}; use P-256 or P-384")


def _hash_for(alg: SigningAlgorithm) -> hashes.HashAlgorithm:
    return hashes.SHA384() if alg is SigningAlgorithm.ES384 else hashes.SHA256()


def key_fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 (hex) of a certificate's SubjectPublicKeyInfo: the key, whatever the certificate.

    A renewed certificate for the same key has the same fingerprint.
    """
    return hashlib.sha256(_public_bytes(certificate.public_key())).hexdigest()


def certificate_sha256(certificate: x509.Certificate) -> str:
    """SHA-256 (hex) of a certificate's DER encoding: its usual fingerprint."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


@functools.lru_cache(maxsize=16)
def chain_base64(certificates: tuple[x509.Certificate, ...]) -> tuple[str, ...]:
    """A certificate chain as base64 DER (as signed XMP and checkpoints carry it).

    Cached per chain: a key signs many files, and its chain never changes.
    """
    return tuple(
        base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii")
        for c in certificates
    )


def _public_bytes(key: Any) -> bytes:
    data: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
