"""Trust anchors (:class:`TrustPolicy`) and checking a detached signature without c2pa."""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from provenance._io.keys._certs import SigningAlgorithm, _ec_algorithm, _hash_for, _issued_by
from provenance.errors import (
    KeyConfigError,
    SignatureError,
    TrustConfigError,
)


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
    # chain -> the certificates its link to an anchor runs through (None: it does
    # not link). A batch's files share a signer: the links' signatures are
    # checked once per chain, the validity periods at every call.
    _paths: dict[tuple[x509.Certificate, ...], tuple[x509.Certificate, ...] | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

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
        key = tuple(chain)
        # One lookup, kept locally: another thread (a server verifying uploads)
        # may clear the cache between two lookups.
        path = self._paths.get(key, ())  # () is never a path: it has the leaf at least
        if path == ():
            path = self._anchored_path(key)
            if len(self._paths) >= _MAX_CACHED_CHAINS:
                self._paths.clear()
            self._paths[key] = path
        return path is not None and all(
            cert.not_valid_before_utc <= at <= cert.not_valid_after_utc for cert in path
        )

    def _anchored_path(
        self, chain: tuple[x509.Certificate, ...]
    ) -> tuple[x509.Certificate, ...] | None:
        """The certificates from the leaf to an anchor, each issued by the next; else None."""
        anchor_der = {a.public_bytes(serialization.Encoding.DER) for a in self.anchors}
        for index, cert in enumerate(chain):
            if cert.public_bytes(serialization.Encoding.DER) in anchor_der:
                return chain[: index + 1]
            # Compare names before checking a signature: one ECDSA verify per link.
            for anchor in self.anchors:
                if cert.issuer == anchor.subject and _issued_by(cert, anchor):
                    return (*chain[: index + 1], anchor)
            parent = chain[index + 1] if index + 1 < len(chain) else None
            if parent is None or cert.issuer != parent.subject or not _issued_by(cert, parent):
                return None
        return None


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
        chain, public = _parsed_chain(tuple(chain_der))
    except ValueError:
        raise SignatureError("certificate chain is not DER X.509") from None
    try:
        alg = SigningAlgorithm(algorithm.lower())
    except ValueError:
        raise SignatureError(f"unknown signature algorithm {algorithm!r}") from None
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


_MAX_CACHED_CHAINS = 64
"""Chains remembered per process (:func:`_parsed_chain`) and per policy (their links)."""


# The same signer's chain comes with every file of a batch: parsed once per
# process, so the certificate objects (and the policy's links, keyed by them) are
# reused. Certificates are immutable; a chain that does not parse is not cached.
@functools.lru_cache(maxsize=_MAX_CACHED_CHAINS)
def _parsed_chain(
    chain_der: tuple[bytes, ...],
) -> tuple[tuple[x509.Certificate, ...], PublicKeyTypes]:
    chain = tuple(x509.load_der_x509_certificate(der) for der in chain_der)
    for cert in chain:
        # cryptography parses names and validity on first use: a certificate whose
        # subject is malformed loads, and its signature may even verify, but reading
        # the signer's name would raise ValueError outside this border.
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        _ = cert.not_valid_before_utc, cert.not_valid_after_utc
    return chain, chain[0].public_key()
