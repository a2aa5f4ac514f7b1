"""The signing key: a certificate chain with a local private key or a KMS/HSM callback."""

from __future__ import annotations

import importlib
import os
import stat
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from provenance._io.keys._certs import (
    SigningAlgorithm,
    _check_signing_certificate,
    _ec_algorithm,
    _hash_for,
    _issued_by,
    _load_chain,
    _public_bytes,
)
from provenance.errors import (
    InsecureKeyFileWarning,
    KeyConfigError,
    SignatureError,
)

SignCallback = Callable[[bytes], bytes]


class SigningKey:
    """A certificate chain and the means to sign with its leaf key.

    Build one with :meth:`from_pem_files`, :meth:`from_pem` or
    :meth:`from_callback`. The object is immutable; its ``repr`` never shows key
    material.
    """

    __slots__ = (
        "__weakref__",  # _io/c2pa.py keeps each key's per-process c2pa Context by weak reference
        "_algorithm",
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
