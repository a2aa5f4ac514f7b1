"""A development CA and ES256 signing certificate that c2pa accepts (:func:`init_dev_keys`)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from provenance._io.atomic import PRIVATE_FILE_MODE, make_private_folder, write_atomic
from provenance._io.keys._certs import _key_usage, _name
from provenance.errors import (
    KeyConfigError,
)

DEV_WARNING = (
    "DEVELOPMENT KEYS ONLY: this CA and signing certificate were generated locally and are "
    "trusted by nobody else. Do not use them to sign images you publish; obtain a signing "
    "certificate from a CA on the C2PA trust list instead."
)


@dataclass(frozen=True, slots=True)
class DevKeyPaths:
    """Where :func:`init_dev_keys` wrote its files."""

    directory: Path
    ca_certificate: Path
    chain: Path
    private_key: Path


def init_dev_keys(
    directory: str | os.PathLike[str],
    *,
    organization: str = "provenance development",
    now: dt.datetime | None = None,
    overwrite: bool = False,
) -> DevKeyPaths:
    """Write a development CA and an ES256 signing certificate that c2pa accepts.

    Files: ``ca.pem`` (the trust anchor), ``chain.pem`` (leaf then CA) and
    ``signer.key`` (mode 0600). The CA's private key is discarded. These keys are
    for development only; see :data:`DEV_WARNING`.

    Args:
        directory: Folder to create or reuse.
        organization: The O= of both certificates.
        now: Start of validity (default: the current time).
        overwrite: Replace existing files instead of refusing.

    Raises:
        KeyConfigError: Files exist and ``overwrite`` is false, or they cannot be
            written.
    """
    folder = Path(directory)
    paths = DevKeyPaths(folder, folder / "ca.pem", folder / "chain.pem", folder / "signer.key")
    existing = [p for p in (paths.ca_certificate, paths.chain, paths.private_key) if p.exists()]
    if existing and not overwrite:
        raise KeyConfigError("keys already exist; pass overwrite to replace them", path=existing[0])
    start = (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(minutes=5)
    ca_key, ca_cert = _dev_ca(organization, start)
    leaf_key, leaf_cert = _dev_leaf(organization, start, ca_key=ca_key, ca_cert=ca_cert)
    pem = serialization.Encoding.PEM
    key_bytes = leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        make_private_folder(folder)  # 0700 whatever the umask (issue 19)
        write_atomic(paths.ca_certificate, ca_cert.public_bytes(pem), mode=0o644)
        write_atomic(
            paths.chain, leaf_cert.public_bytes(pem) + ca_cert.public_bytes(pem), mode=0o644
        )
        write_atomic(paths.private_key, key_bytes, mode=PRIVATE_FILE_MODE)
        write_atomic(folder / "README.txt", (DEV_WARNING + "\n").encode(), mode=0o644)
    except OSError as exc:
        raise KeyConfigError(f"cannot write keys: {exc.strerror}", path=folder) from None
    return paths


def _dev_ca(
    organization: str, start: dt.datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed development root CA valid for ten years from ``start``."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{organization} root CA", organization)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    return ca_key, ca_cert


def _dev_leaf(
    organization: str,
    start: dt.datetime,
    *,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """An ES256 signing certificate issued by the development CA, valid 825 days."""
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{organization} signer", organization))
        .issuer_name(ca_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        # C2PA requires an EKU; emailProtection is the one c2pa-rs accepts everywhere.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return leaf_key, leaf_cert
