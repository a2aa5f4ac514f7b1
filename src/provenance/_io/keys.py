"""Signing keys, certificate chains and trust anchors.

This is the only module that loads private keys. It owns:

* :class:`SigningKey`: a PEM certificate chain plus either a local private key
  (plain or passphrase-encrypted PEM) or a callback (for keys held in a KMS or
  HSM that never leave it; :func:`load_sign_callback` finds one by its
  ``module:function`` name);
* :class:`TrustPolicy`: the explicit trust anchors a verifier accepts;
* :func:`init_dev_keys`: a development CA and an ES256 leaf that c2pa accepts;
* :func:`verify_detached`: checking a detached signature (the signed XMP) and
  its chain without c2pa.

Private key bytes never appear in a ``repr``, a log line or an error message.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import functools
import hashlib
import importlib
import os
import stat
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provenance._io.atomic import PRIVATE_FILE_MODE, make_private_folder, write_atomic
from provenance.errors import (
    InsecureKeyFileWarning,
    KeyConfigError,
    SignatureError,
    TrustConfigError,
)

__all__ = [
    "DevKeyPaths",
    "SigningAlgorithm",
    "SigningKey",
    "TrustPolicy",
    "certificate_sha256",
    "certificate_subject",
    "chain_base64",
    "init_dev_keys",
    "key_fingerprint",
    "load_sign_callback",
    "verify_detached",
]


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

DEV_WARNING = (
    "DEVELOPMENT KEYS ONLY: this CA and signing certificate were generated locally and are "
    "trusted by nobody else. Do not use them to sign images you publish; obtain a signing "
    "certificate from a CA on the C2PA trust list instead."
)


class SigningAlgorithm(enum.Enum):
    """Signature algorithms provenance signs with (a subset of what c2pa allows)."""

    ES256 = "es256"
    ES384 = "es384"
    ED25519 = "ed25519"


SignCallback = Callable[[bytes], bytes]


class SigningKey:
    """A certificate chain and the means to sign with its leaf key.

    Build one with :meth:`from_pem_files`, :meth:`from_pem` or
    :meth:`from_callback`. The object is immutable; its ``repr`` never shows key
    material.
    """

    __slots__ = (
        "_algorithm",
        "_c2pa_cache",
        "_callback",
        "_certificates",
        "_chain_pem",
        "_embedded",
        "_key",
        "_key_pem",
    )

    def __init__(
        self,
        *,
        chain_pem: bytes,
        algorithm: SigningAlgorithm,
        key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | None = None,
        key_pem: bytes | None = None,
        callback: SignCallback | None = None,
    ) -> None:
        """Prefer the named constructors; this one trusts its arguments."""
        self._chain_pem = chain_pem
        self._certificates = _load_chain(chain_pem)
        certs = self._certificates
        self._embedded = (
            certs[:-1] if len(certs) > 1 and _issued_by(certs[-1], certs[-1]) else certs
        )
        self._algorithm = algorithm
        self._key = key
        self._key_pem = key_pem
        self._callback = callback
        # Per-process c2pa Context (with its Signer), owned by _io/c2pa.py.
        self._c2pa_cache: dict[int, Any] = {}

    def __repr__(self) -> str:
        return f"SigningKey(subject={self.subject!r}, algorithm={self._algorithm.name})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable for process pools (provenance.batch): the chain, the key PEM or
        # the callback (which must itself be picklable) travel; the c2pa Context
        # does not (it cannot cross fork/spawn) and is rebuilt in the new process.
        return (
            _rebuild_key,
            (self._chain_pem, self._algorithm, self._key_pem, self._callback),
        )

    @classmethod
    def from_pem_files(
        cls,
        chain_path: str | os.PathLike[str],
        key_path: str | os.PathLike[str],
        *,
        passphrase: bytes | None = None,
    ) -> SigningKey:
        """Load a PEM certificate chain (leaf first) and its PEM private key.

        Warns (:class:`~provenance.errors.InsecureKeyFileWarning`) when the key
        file is readable by group or others.

        Args:
            chain_path: The PEM certificate chain, leaf first.
            key_path: The PEM private key (PKCS#8 or traditional), plain or
                encrypted.
            passphrase: The passphrase of an encrypted key.

        Raises:
            KeyConfigError: A file is missing or unreadable, the key does not match
                the leaf certificate, or the certificate cannot sign C2PA claims.
        """
        chain_file, key_file = Path(chain_path), Path(key_path)
        try:
            chain_pem = chain_file.read_bytes()
        except OSError as exc:
            raise KeyConfigError(
                f"cannot read certificate chain: {exc.strerror}", path=chain_file
            ) from None
        try:
            key_pem = key_file.read_bytes()
            mode = key_file.stat().st_mode
        except OSError as exc:
            raise KeyConfigError(
                f"cannot read private key: {exc.strerror}", path=key_file
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.warn(
                f"{key_file}: private key file is readable by other users "
                f"(mode {stat.S_IMODE(mode):o}); chmod 600 it",
                InsecureKeyFileWarning,
                stacklevel=2,
            )
        try:
            return cls.from_pem(chain_pem, key_pem, passphrase=passphrase)
        except KeyConfigError as exc:
            raise exc.with_path(key_file) from exc.__cause__

    @classmethod
    def from_pem(
        cls, chain_pem: bytes, key_pem: bytes, *, passphrase: bytes | None = None
    ) -> SigningKey:
        """Build from PEM bytes of the chain (leaf first) and of the private key.

        An encrypted key (``-----BEGIN ENCRYPTED PRIVATE KEY-----``, or a
        traditional PEM with ``Proc-Type: 4,ENCRYPTED``) needs ``passphrase``.
        It is decrypted once, here; the decrypted key lives in this process's
        memory only (and travels to batch workers through their pipes), never
        on disk.

        Args:
            chain_pem: The PEM certificate chain, leaf first.
            key_pem: The PEM private key.
            passphrase: The passphrase of an encrypted key.

        Raises:
            KeyConfigError: Unreadable key, a missing or wrong passphrase,
                unsupported key type, or a key that does not belong to the
                leaf certificate.
        """
        encrypted = _is_encrypted_pem(key_pem)
        if encrypted and not passphrase:
            raise KeyConfigError(
                "private key is encrypted; give its passphrase (the CLI reads it from "
                "--key-passphrase-env VAR, --key-passphrase-file FILE or "
                "$PROVENANCE_KEY_PASSPHRASE)"
            )
        try:
            key = serialization.load_pem_private_key(
                key_pem, password=passphrase if encrypted else None
            )
        except (ValueError, TypeError) as exc:
            # The message of these exceptions never contains key bytes, but it can
            # be long and technical; keep ours short.
            if encrypted:
                raise KeyConfigError("cannot decrypt private key (wrong passphrase?)") from exc
            raise KeyConfigError("cannot load private key (expected a PEM private key)") from exc
        if encrypted:
            # c2pa's native signer and the batch workers take the plain PEM.
            key_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        if isinstance(key, ec.EllipticCurvePrivateKey):
            algorithm = _ec_algorithm(key.curve)
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            algorithm = SigningAlgorithm.ED25519
        else:
            raise KeyConfigError("unsupported key type; use an EC P-256/P-384 or Ed25519 key")
        signer = cls(chain_pem=chain_pem, algorithm=algorithm, key=key, key_pem=key_pem)
        leaf_public = signer.leaf.public_key()
        if _public_bytes(leaf_public) != _public_bytes(key.public_key()):
            raise KeyConfigError("private key does not match the leaf certificate of the chain")
        _check_signing_certificate(signer.leaf)
        return signer

    @classmethod
    def from_callback(
        cls,
        callback: SignCallback,
        chain_pem: bytes,
        *,
        algorithm: SigningAlgorithm = SigningAlgorithm.ES256,
    ) -> SigningKey:
        """Sign through ``callback`` (a KMS or HSM); the key never enters this process.

        Args:
            callback: Takes the bytes to sign and returns the signature (DER
                ECDSA for ES256/ES384, raw 64 bytes for Ed25519), as
                ``cryptography``'s ``sign`` returns it.
            chain_pem: The PEM certificate chain, leaf first.
            algorithm: The algorithm the callback signs with.

        Raises:
            KeyConfigError: The chain cannot be loaded or the certificate cannot
                sign C2PA claims.
        """
        signer = cls(chain_pem=chain_pem, algorithm=algorithm, callback=callback)
        _check_signing_certificate(signer.leaf)
        return signer

    @classmethod
    def from_signer_spec(cls, spec: str, chain_pem: bytes) -> SigningKey:
        """Sign through the callback named ``module:function`` (see :func:`load_sign_callback`).

        The algorithm follows the leaf certificate's public key (EC P-256:
        ES256, P-384: ES384, Ed25519).

        Raises:
            KeyConfigError: The callback cannot be found, the chain cannot be
                loaded, or its key type is not one provenance signs with.
        """
        callback = load_sign_callback(spec)
        leaf = _load_chain(chain_pem)[0]
        public = leaf.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            algorithm = _ec_algorithm(public.curve)
        elif isinstance(public, ed25519.Ed25519PublicKey):
            algorithm = SigningAlgorithm.ED25519
        else:
            raise KeyConfigError("unsupported certificate key type; use EC P-256/P-384 or Ed25519")
        return cls.from_callback(callback, chain_pem, algorithm=algorithm)

    @property
    def algorithm(self) -> SigningAlgorithm:
        """The signature algorithm."""
        return self._algorithm

    @property
    def chain_pem(self) -> bytes:
        """The PEM certificate chain, leaf first."""
        return self._chain_pem

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """The parsed chain, leaf first."""
        return self._certificates

    @property
    def embedded_certificates(self) -> tuple[x509.Certificate, ...]:
        """The chain to embed in signed files: without a trailing self-signed root.

        A verifier must hold the root as a trust anchor anyway, so shipping it in
        every image only adds bytes (about 480 per copy, twice per file).
        """
        return self._embedded

    @property
    def embedded_chain_pem(self) -> bytes:
        """PEM of :attr:`embedded_certificates`, for the c2pa signer."""
        return b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in self.embedded_certificates
        )

    @property
    def leaf(self) -> x509.Certificate:
        """The signing (leaf) certificate."""
        return self._certificates[0]

    @property
    def subject(self) -> str:
        """The leaf certificate's subject, RFC 4514."""
        return self.leaf.subject.rfc4514_string()

    @property
    def is_callback(self) -> bool:
        """Whether signing goes through a callback rather than a local key."""
        return self._callback is not None

    @property
    def private_key_pem(self) -> bytes | None:
        """PEM of the local key for the native c2pa signer; None for callbacks.

        Only :mod:`provenance._io.c2pa` should read this.
        """
        return self._key_pem

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` (DER ECDSA, or raw Ed25519).

        Raises:
            SignatureError: The callback failed or returned nothing.
        """
        if self._callback is not None:
            try:
                signature = self._callback(data)
            except Exception as exc:
                raise SignatureError(f"signing callback failed: {type(exc).__name__}") from exc
            if not isinstance(signature, bytes) or not signature:
                raise SignatureError("signing callback returned no signature")
            return signature
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(_hash_for(self._algorithm)))
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(data)
        raise SignatureError("signing key has neither a private key nor a callback")


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """The trust anchors a verifier accepts; without anchors nothing is trusted.

    Build with :meth:`from_pem` / :meth:`from_pem_bytes`, or :meth:`no_anchors`.

    Attributes:
        anchors_pem: PEM bundle of root (or intermediate) certificates, or None.
        anchors: The parsed anchor certificates.
    """

    anchors_pem: bytes | None = None
    anchors: tuple[x509.Certificate, ...] = field(default=(), repr=False, compare=False)
    _cache: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def no_anchors(cls) -> TrustPolicy:
        """A policy with no anchors: good signatures are valid but untrusted."""
        return cls()

    @classmethod
    def from_pem_bytes(cls, pem: bytes) -> TrustPolicy:
        """Trust the certificates in a PEM bundle.

        Raises:
            TrustConfigError: The bundle holds no certificate or cannot be parsed.
        """
        try:
            certs = tuple(x509.load_pem_x509_certificates(pem))
        except ValueError as exc:
            raise TrustConfigError(f"trust anchors are not PEM certificates: {exc}") from None
        if not certs:
            raise TrustConfigError("trust anchor bundle holds no certificate")
        return cls(anchors_pem=pem, anchors=certs)

    @classmethod
    def from_pem(cls, path: str | os.PathLike[str]) -> TrustPolicy:
        """Trust the certificates in a PEM file.

        Raises:
            TrustConfigError: The file cannot be read or holds no certificate.
        """
        try:
            pem = Path(path).read_bytes()
        except OSError as exc:
            raise TrustConfigError(
                f"cannot read trust anchors: {exc.strerror}", path=path
            ) from None
        try:
            return cls.from_pem_bytes(pem)
        except TrustConfigError as exc:
            raise exc.with_path(path) from None

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable for process pools: the anchors travel, the c2pa Context does not.
        if self.anchors_pem is None:
            return (TrustPolicy, ())
        return (TrustPolicy.from_pem_bytes, (self.anchors_pem,))

    @property
    def has_anchors(self) -> bool:
        """Whether any anchor is configured."""
        return bool(self.anchors)

    def chain_is_trusted(self, chain: Sequence[x509.Certificate], *, at: dt.datetime) -> bool:
        """Whether ``chain`` (leaf first) links, certificate by certificate, to an anchor.

        Each certificate must be issued by the next one, be within its validity
        period at ``at``, and the last must be an anchor or be issued by one.
        """
        if not chain or not self.anchors:
            return False
        anchor_der = {a.public_bytes(serialization.Encoding.DER) for a in self.anchors}
        for index, cert in enumerate(chain):
            if not (cert.not_valid_before_utc <= at <= cert.not_valid_after_utc):
                return False
            if cert.public_bytes(serialization.Encoding.DER) in anchor_der:
                return True
            # Compare names before checking a signature: one ECDSA verify per link.
            for anchor in self.anchors:
                if cert.issuer == anchor.subject and _issued_by(cert, anchor):
                    return anchor.not_valid_before_utc <= at <= anchor.not_valid_after_utc
            parent = chain[index + 1] if index + 1 < len(chain) else None
            if parent is None or cert.issuer != parent.subject or not _issued_by(cert, parent):
                return False
        return False


def _is_encrypted_pem(key_pem: bytes) -> bool:
    return b"BEGIN ENCRYPTED PRIVATE KEY" in key_pem or b"Proc-Type: 4,ENCRYPTED" in key_pem


def load_sign_callback(spec: str) -> SignCallback:
    """The signing callback named ``module:function`` (a KMS or HSM client's sign call).

    The module is imported (it must be installed or on ``PYTHONPATH``) and the
    attribute path after the colon resolved in it (``pkg.kms:signer.sign``
    works too). A module-level function can also be pickled, so it runs on
    batch worker processes.

    Args:
        spec: ``module:attribute``.

    Returns:
        The callable: it takes the bytes to sign and returns the signature (DER
        ECDSA for ES256/ES384, raw for Ed25519).

    Raises:
        KeyConfigError: The spec is malformed, the module cannot be imported,
            or the attribute is missing or not callable.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise KeyConfigError(f"signer {spec!r}: expected module:function")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise KeyConfigError(
            f"signer {spec!r}: cannot import {module_name}: {type(exc).__name__}: {exc}"
        ) from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise KeyConfigError(f"signer {spec!r}: {module_name} has no {attribute}") from None
    if not callable(target):
        raise KeyConfigError(f"signer {spec!r}: {attribute} is not callable")
    callback: SignCallback = target
    return callback


def _rebuild_key(
    chain_pem: bytes,
    algorithm: SigningAlgorithm,
    key_pem: bytes | None,
    callback: SignCallback | None,
) -> SigningKey:
    """Unpickle a :class:`SigningKey` (the inverse of ``SigningKey.__reduce__``)."""
    if key_pem is not None:
        return SigningKey.from_pem(chain_pem, key_pem)
    return SigningKey(chain_pem=chain_pem, algorithm=algorithm, callback=callback)


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
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{organization} signer", organization))
        .issuer_name(ca_name)
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


def verify_detached(
    chain_der: Sequence[bytes],
    algorithm: str,
    signature: bytes,
    data: bytes,
) -> tuple[x509.Certificate, ...]:
    """Check a detached signature made by the leaf of ``chain_der``.

    Returns:
        The parsed chain, leaf first, for a trust decision by :class:`TrustPolicy`.

    Raises:
        SignatureError: The chain cannot be parsed, the algorithm is unknown or
            does not fit the key, or the signature does not verify.
    """
    if not chain_der:
        raise SignatureError("signature has no certificate chain")
    try:
        chain = tuple(x509.load_der_x509_certificate(der) for der in chain_der)
    except ValueError:
        raise SignatureError("certificate chain is not DER X.509") from None
    try:
        alg = SigningAlgorithm(algorithm.lower())
    except ValueError:
        raise SignatureError(f"unknown signature algorithm {algorithm!r}") from None
    public = chain[0].public_key()
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            key_alg = _ec_algorithm(public.curve)
    except KeyConfigError:
        raise SignatureError("certificate key uses an unsupported curve") from None
    try:
        if alg is SigningAlgorithm.ED25519 and isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, data)
        elif alg is not SigningAlgorithm.ED25519 and isinstance(public, ec.EllipticCurvePublicKey):
            if key_alg is not alg:
                raise SignatureError("signature algorithm does not match the certificate key")
            public.verify(signature, data, ec.ECDSA(_hash_for(alg)))
        else:
            raise SignatureError("signature algorithm does not match the certificate key")
    except InvalidSignature:
        raise SignatureError("signature does not verify") from None
    return chain


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
