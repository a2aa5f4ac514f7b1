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

Layout: ``_certs`` (algorithms, certificate checks and fingerprints), ``_signing``
(:class:`SigningKey`, callbacks), ``_trust`` (:class:`TrustPolicy`, detached
signatures), ``_dev`` (the development CA).
"""

from __future__ import annotations

from provenance._io.keys._certs import (
    SigningAlgorithm,
    certificate_sha256,
    certificate_subject,
    chain_base64,
    key_fingerprint,
)
from provenance._io.keys._dev import DEV_WARNING, DevKeyPaths, init_dev_keys
from provenance._io.keys._signing import SignCallback, SigningKey, load_sign_callback
from provenance._io.keys._trust import TrustPolicy, verify_detached

__all__ = [
    "DEV_WARNING",
    "DevKeyPaths",
    "SignCallback",
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
