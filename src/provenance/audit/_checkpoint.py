"""Signed checkpoints of the audit chain, as values (signing and checking them).

No I/O here: keys and anchors are passed in.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509

from provenance._core.record import canonical_json, parse_time
from provenance._io.keys import (
    SigningKey,
    TrustPolicy,
    chain_base64,
    key_fingerprint,
    verify_detached,
)
from provenance.audit._chain import format_audit_time
from provenance.errors import AuditError, RecordError, SignatureError

_CHECKPOINT_FORMAT = "provenance.audit.checkpoint"
_CHECKPOINT_FORMAT_VERSION = 2  # 2 adds log_key; 1 is still read


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement that the chain's entry ``seq`` had hash ``entry_hash``.

    Attributes:
        seq: The entry the checkpoint covers (and, through the chain, all before).
        entry_hash: That entry's hash.
        at: When the checkpoint was taken, RFC 3339 UTC.
        signature_b64: Base64 signature over :meth:`signed_bytes`, or None for
            an unsigned checkpoint (an export made without a key).
        algorithm: The signature algorithm (``es256``, ``es384``, ``ed25519``).
        certificate_chain_b64: Base64 DER certificates, leaf first.
        log_key: The log's identity: the fingerprint (:func:`provenance._io.keys.key_fingerprint`)
            of the key its checkpoints are signed with. Covered by the
            signature (format version 2); None in version-1 checkpoints.
    """

    seq: int
    entry_hash: str
    at: str
    signature_b64: str | None = None
    algorithm: str | None = None
    certificate_chain_b64: tuple[str, ...] = field(default=())
    log_key: str | None = None

    @property
    def is_signed(self) -> bool:
        """Whether the checkpoint carries a signature."""
        return self.signature_b64 is not None

    def signed_bytes(self) -> bytes:
        """The canonical JSON of ``{seq, entry_hash, at[, log_key]}``: what the signature covers."""
        body: dict[str, Any] = {"seq": self.seq, "entry_hash": self.entry_hash, "at": self.at}
        if self.log_key is not None:
            body["log_key"] = self.log_key
        return canonical_json(body)

    @classmethod
    def create(
        cls, seq: int, entry_hash: str, *, now: datetime, key: SigningKey | None
    ) -> Checkpoint:
        """Take a checkpoint of entry ``seq``, signed with ``key`` when given.

        A signed checkpoint carries the key's fingerprint as the log's identity.

        Raises:
            SignatureError: The key could not sign.
            AuditError: ``now`` has no timezone.
        """
        at = format_audit_time(now)
        if key is None:
            return cls(seq, entry_hash, at)
        unsigned = cls(seq, entry_hash, at, log_key=key_fingerprint(key.leaf))
        signature = key.sign(unsigned.signed_bytes())
        chain = chain_base64(tuple(key.certificates))
        return cls(
            seq,
            entry_hash,
            at,
            base64.b64encode(signature).decode("ascii"),
            key.algorithm.value,
            chain,
            unsigned.log_key,
        )

    def signature_problem(
        self, *, trust: TrustPolicy | None = None, pin: str | None = None
    ) -> str | None:
        """Why the signature is not acceptable, or None when it is.

        Without ``trust`` or ``pin`` an unsigned checkpoint is acceptable (its
        value is where it was kept) and a signed one must verify against its
        own certificate. With ``trust`` it must be signed by a certificate that
        chains to an anchor, checked at the checkpoint's time. With ``pin`` (a
        :func:`provenance._io.keys.key_fingerprint`) it must be signed by that key.
        """
        if self.signature_b64 is None:
            if pin is not None:
                return f"checkpoint is unsigned, but the log is pinned to key {pin[:16]}"
            return "checkpoint is unsigned" if trust is not None else None
        try:
            chain_der = tuple(
                base64.b64decode(c, validate=True) for c in self.certificate_chain_b64
            )
            signature = base64.b64decode(self.signature_b64, validate=True)
            chain = verify_detached(chain_der, self.algorithm or "", signature, self.signed_bytes())
        except (binascii.Error, ValueError):
            return "checkpoint signature or certificate is not valid base64"
        except SignatureError as exc:
            return f"checkpoint signature does not verify: {exc.message}"
        signer = key_fingerprint(chain[0])
        if self.log_key is not None and self.log_key != signer:
            return f"checkpoint names log key {self.log_key[:16]} but is signed by {signer[:16]}"
        if pin is not None and signer != pin:
            subject = chain[0].subject.rfc4514_string()
            return (
                f"checkpoint is signed by another key ({subject!r}, {signer[:16]}), "
                f"not the log's key {pin[:16]}"
            )
        if trust is not None:
            try:
                moment = parse_time(self.at)
            except RecordError:
                return "checkpoint time is not RFC 3339"
            if not trust.chain_is_trusted(chain, at=moment):
                subject = chain[0].subject.rfc4514_string()
                return f"checkpoint signer {subject!r} does not chain to a trust anchor"
        return None

    def signer_fingerprint(self) -> str | None:
        """The key fingerprint of the leaf certificate, or None (unsigned, undecodable).

        See :func:`provenance._io.keys.key_fingerprint`.
        """
        if not self.certificate_chain_b64:
            return None
        try:
            leaf = x509.load_der_x509_certificate(
                base64.b64decode(self.certificate_chain_b64[0], validate=True)
            )
        except (binascii.Error, ValueError):
            return None
        fingerprint: str = key_fingerprint(leaf)
        return fingerprint

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form, tagged with its format."""
        data: dict[str, Any] = {
            "format": _CHECKPOINT_FORMAT,
            "version": 1 if self.log_key is None else _CHECKPOINT_FORMAT_VERSION,
            "seq": self.seq,
            "entry_hash": self.entry_hash,
            "at": self.at,
            "algorithm": self.algorithm,
            "signature": self.signature_b64,
            "certificate_chain": list(self.certificate_chain_b64),
        }
        if self.log_key is not None:
            data["log_key"] = self.log_key
        return data

    def to_json(self) -> str:
        """Canonical JSON text, for exports and for keeping outside the database."""
        return canonical_json(self.to_dict()).decode("utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        """Read :meth:`to_dict`'s form.

        Raises:
            AuditError: Not a checkpoint, or a field is missing or malformed.
        """
        if not isinstance(data, Mapping) or data.get("format") != _CHECKPOINT_FORMAT:
            raise AuditError("not a provenance audit checkpoint")
        if data.get("version") not in (1, _CHECKPOINT_FORMAT_VERSION):
            raise AuditError(f"unsupported checkpoint version {data.get('version')!r}")
        log_key = data.get("log_key") if data.get("version") == _CHECKPOINT_FORMAT_VERSION else None
        if log_key is not None and not isinstance(log_key, str):
            raise AuditError("checkpoint log_key must be a string")
        seq, entry_hash, at = data.get("seq"), data.get("entry_hash"), data.get("at")
        signature, algorithm = data.get("signature"), data.get("algorithm")
        chain = data.get("certificate_chain", [])
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise AuditError("checkpoint seq must be a positive integer")
        if not isinstance(entry_hash, str) or not isinstance(at, str):
            raise AuditError("checkpoint needs 'entry_hash' and 'at' strings")
        if signature is not None and not isinstance(signature, str):
            raise AuditError("checkpoint signature must be a string")
        if algorithm is not None and not isinstance(algorithm, str):
            raise AuditError("checkpoint algorithm must be a string")
        if not isinstance(chain, list) or not all(isinstance(c, str) for c in chain):
            raise AuditError("checkpoint certificate_chain must be a list of strings")
        return cls(seq, entry_hash, at, signature, algorithm, tuple(chain), log_key)

    @classmethod
    def from_json(cls, text: str | bytes) -> Checkpoint:
        """Parse :meth:`to_json`'s output.

        Raises:
            AuditError: Not JSON, or not a valid checkpoint.
        """
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise AuditError("checkpoint is not valid JSON") from None
        return cls.from_dict(data)


def chain_fingerprint(chain_pem: bytes) -> str:
    """The key fingerprint of the first certificate of a PEM chain (``chain.pem``).

    See :func:`provenance._io.keys.key_fingerprint`.

    Raises:
        AuditError: No PEM certificate in it.
    """
    try:
        certificates = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise AuditError("not a PEM certificate chain") from None
    return key_fingerprint(certificates[0])


# --- Verification (pure) ----------------------------------------------------------
