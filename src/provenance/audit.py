"""The tamper-evident audit log: a SHA-256 hash chain with signed checkpoints.

What it owns (DESIGN.md decisions 8 and 17):

* **Entries.** Entry ``n`` holds ``prev_hash`` (the ``entry_hash`` of entry
  ``n - 1``; 64 zeros for entry 1) and ``entry_hash = SHA-256(canonical JSON of
  {seq, at, event, asset_id, payload, prev_hash})`` (canonical JSON as in
  :func:`provenance.record.canonical_json`). Editing an entry breaks its own hash;
  re-hashing it breaks the link from the next entry; deleting one leaves a
  sequence gap.
* **Facts** (DESIGN.md decision 17). The entry that records a row of the
  inventory (asset, file, lineage link, perceptual rows and descriptor) holds
  the row's canonical hash (:func:`row_hash`; payload keys :data:`ROW_ASSET`,
  :data:`ROW_FILE`, :data:`ROW_PARENT`, :data:`LINKED`, :data:`ROW_PERCEPTUAL`).
  :meth:`AuditLog.verify` collects them (:class:`FactBindings`) and the
  inventory's reconciler compares them with the tables both ways: a changed
  row, a row whose entry is gone, an entry whose row is gone.
* **Checkpoints.** ``(seq, entry_hash, at, log_key)`` signed with the signing
  key (:meth:`provenance.keys.SigningKey.sign` over canonical JSON), taken every
  ``checkpoint_every`` entries by every writer that holds a key, and on every
  export. ``log_key`` is the log's identity, the :func:`provenance.keys.key_fingerprint` of its
  first signed checkpoint: checkpoints of any other key are refused. A chain
  alone cannot show that its tail was cut off or that the whole database was
  restored from an older copy; a checkpoint can: a log that ends before a
  checkpoint's ``seq`` was TRUNCATED, and one whose entry at that ``seq`` has
  another hash was ROLLED_BACK (or rewritten). Stored checkpoints catch a cut
  below the newest of them; a checkpoint kept *outside* the database catches
  anything before it, because someone who can write the database can also
  delete its checkpoints.
* **Witness.** Every stored checkpoint is also written, after its transaction
  commits, to a witness outside the database (:class:`FileWitness`,
  :class:`HttpWitness`, :class:`SyslogWitness`); :meth:`AuditLog.verify` reads
  a file witness back by default. Appending is not authenticated: a
  well-formed entry added after the newest witnessed checkpoint is
  indistinguishable from a genuine one until the next checkpoint vouches for it.
* **Verification** (:func:`verify_chain`) is pure: entries and checkpoints in,
  an :class:`AuditReport` out, naming the entry that is wrong and how.
* **Storage** (:class:`AuditLog`) lives in the inventory's SQLite database. An
  append reads the tail inside the caller's ``BEGIN IMMEDIATE`` transaction, so
  concurrent writers produce one valid chain. Triggers make the tables
  append-only for honest code; they are a guard rail, not the security (anyone
  with the file can drop them), which is why verification never relies on them.

A report is ``intact`` only when something outside the database (the log's key,
trust anchors, a witness) vouched for it; a consistent log nothing vouches for
is ``unverified``.

Payloads hold hashes, identifiers, model names and counts: never file paths,
prompts or other free text, because an append-only log cannot honour a request
to erase personal data. Time is a parameter (``now``) everywhere.

Only this module, :mod:`provenance.inventory` and :mod:`provenance._sqlite` may
import :mod:`sqlite3`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import fcntl
import functools
import hashlib
import json
import os
import socket
import sqlite3
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from cryptography import x509

from provenance._sqlite import Database
from provenance.errors import AuditError, RecordError, SignatureError
from provenance.keys import (
    SigningKey,
    TrustPolicy,
    chain_base64,
    key_fingerprint,
    verify_detached,
)
from provenance.record import canonical_json, format_time, parse_time

__all__ = [
    "AUDIT_SCHEMA_V1",
    "AUDIT_SCHEMA_V3",
    "DEFAULT_CHECKPOINT_EVERY",
    "GENESIS_HASH",
    "LINKED",
    "PERCEPTUAL_SCHEME",
    "ROW_ASSET",
    "ROW_FILE",
    "ROW_PARENT",
    "ROW_PERCEPTUAL",
    "WITNESS_ENV_VAR",
    "WITNESS_FILE_NAME",
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "AuditProblem",
    "AuditReport",
    "Checkpoint",
    "FactBindings",
    "FileWitness",
    "HttpWitness",
    "MultiWitness",
    "ProblemKind",
    "Reconciler",
    "SyslogWitness",
    "Witness",
    "WitnessRecord",
    "chain_fingerprint",
    "compute_entry_hash",
    "format_audit_time",
    "next_entry",
    "row_hash",
    "verify_chain",
    "witness_from",
    "witness_from_env",
]

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of entry 1."""

DEFAULT_CHECKPOINT_EVERY = 1000

_CHECKPOINT_FORMAT = "provenance.audit.checkpoint"
_CHECKPOINT_FORMAT_VERSION = 2  # 2 adds log_key; 1 is still read


class AuditEvent(enum.Enum):
    """What an audit entry records."""

    SIGNED = "signed"
    """An original asset (no parent) was signed and recorded."""
    RENDITION_ADDED = "rendition_added"
    """A rendition (an asset with a parent) was signed and recorded."""
    VERIFIED = "verified"
    """An asset was verified and the verdict recorded."""
    EXPORTED = "exported"
    """The inventory was exported for compliance."""
    KEY_CHANGED = "key_changed"
    """The signing key or certificate changed."""
    INCIDENT_OPENED = "incident_opened"
    """Someone opened an incident (a suspected leak, a tampered asset)."""
    CHECKPOINT = "checkpoint"
    """A checkpoint of the chain was taken (the payload names it)."""
    PERCEPTUAL_ADDED = "perceptual_added"
    """An asset's perceptual hashes were stored after it was recorded (binds them)."""


class ProblemKind(enum.Enum):
    """How an audit log was found to differ from what was written."""

    EDITED = "edited"
    """An entry's content no longer matches its hash, or it was re-hashed."""
    DELETED = "deleted"
    """An entry (or a checkpoint row) is missing."""
    REORDERED = "reordered"
    """An entry is stored out of sequence."""
    INSERTED = "inserted"
    """An entry that does not link into the chain was added."""
    TRUNCATED = "truncated"
    """The log ends before a checkpoint that covers later entries."""
    ROLLED_BACK = "rolled_back"
    """The log differs from an external checkpoint: restored or rewritten."""
    BAD_CHECKPOINT_SIGNATURE = "bad_checkpoint_signature"
    """A checkpoint's signature does not verify, or its signer is not trusted."""
    FACT_CHANGED = "fact_changed"
    """A stored row (asset, file, link, perceptual hashes) differs from the entry that bound it."""
    FACT_MISSING = "fact_missing"
    """An entry binds a row that is no longer stored."""
    FACT_UNBOUND = "fact_unbound"
    """A stored row that no entry of the chain recorded."""


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """One thing wrong with the log.

    Attributes:
        seq: The entry concerned (for TRUNCATED, the first missing one).
        kind: What is wrong.
        detail: One sentence for a person.
    """

    seq: int
    kind: ProblemKind
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {"seq": self.seq, "kind": self.kind.value, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The outcome of verifying an audit log; a report, not a yes/no answer.

    Attributes:
        ok: No problem was found.
        entries_checked: How many entries were read.
        last_seq: The seq of the last entry of the chain (0 for an empty log).
        last_hash: Its entry hash (:data:`GENESIS_HASH` for an empty log).
        problems: What is wrong, ordered by seq.
        checkpoints_checked: How many checkpoints were checked (stored and given).
        verified: The checkpoint signatures were checked against something kept
            outside the database (trust anchors, the log's key, a witness) and at
            least one signed checkpoint vouches for the log. ``ok`` without
            ``verified`` means "consistent, but unverified": whoever can write
            the database could have rewritten it consistently.
        notes: What a person should know besides the problems (why the log is
            unverified, rows recorded before row binding, entries not yet
            covered by a checkpoint).
        facts_checked: How many stored rows were reconciled with the entries.
    """

    ok: bool
    entries_checked: int
    last_seq: int
    last_hash: str
    problems: tuple[AuditProblem, ...] = ()
    checkpoints_checked: int = 0
    verified: bool = False
    notes: tuple[str, ...] = ()
    facts_checked: int = 0

    @property
    def status(self) -> str:
        """``intact``, ``unverified`` or ``tampered``."""
        if not self.ok:
            return "tampered"
        return "intact" if self.verified else "unverified"

    __bool__ = None  # compare `ok`, or call require_ok()

    def require_ok(self) -> AuditReport:
        """Return self when the log verified, else raise.

        Raises:
            AuditError: At least one problem was found; the message lists them.
        """
        if not self.ok:
            listed = "; ".join(f"{p.kind.value} at {p.seq}: {p.detail}" for p in self.problems)
            raise AuditError(f"audit log failed verification: {listed}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form used by ``audit verify --json``."""
        return {
            "ok": self.ok,
            "status": self.status,
            "verified": self.verified,
            "entries_checked": self.entries_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "facts_checked": self.facts_checked,
            "notes": list(self.notes),
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "problems": [p.to_dict() for p in self.problems],
        }


_FLAT = (str, int, bool)


def format_audit_time(now: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and a ``Z`` suffix.

    Raises:
        AuditError: ``now`` has no timezone.
    """
    if now.tzinfo is None:
        raise AuditError("audit times must be timezone-aware datetimes")
    return format_time(now, milliseconds=True)


def compute_entry_hash(
    *,
    seq: int,
    at: str,
    event: str,
    asset_id: str | None,
    payload: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of the canonical JSON of an entry's fields.

    Raises:
        RecordError: The payload is not JSON-able.
    """
    body = {
        "seq": seq,
        "at": at,
        "event": event,
        "asset_id": asset_id,
        "payload": _plain(payload),
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the chain.

    Attributes:
        seq: Position in the chain, from 1, without gaps.
        at: When it was written, RFC 3339 UTC with a ``Z``.
        event: What happened.
        asset_id: The asset concerned, if any.
        payload: Event details (JSON values; no paths or free text).
        prev_hash: The previous entry's hash (:data:`GENESIS_HASH` for entry 1).
        entry_hash: SHA-256 of this entry's canonical JSON (see
            :func:`compute_entry_hash`).
    """

    seq: int
    at: str
    event: AuditEvent
    asset_id: str | None
    payload: Mapping[str, Any]
    prev_hash: str
    entry_hash: str

    def __post_init__(self) -> None:
        if not isinstance(self.event, AuditEvent):
            raise AuditError("an audit entry's event must be an AuditEvent")
        # Normalise to JSON values (tuples become lists) so that what is hashed is
        # exactly what is stored and read back. Flat payloads of strings, integers
        # and nulls (what the inventory writes) already are.
        payload = self.payload
        if isinstance(payload, dict) and all(
            isinstance(k, str) and (v is None or type(v) in _FLAT) for k, v in payload.items()
        ):
            object.__setattr__(self, "payload", MappingProxyType(dict(payload)))
            return
        try:
            plain = json.loads(canonical_json(_plain(self.payload)))
        except RecordError as exc:
            raise AuditError(f"audit payload is not JSON: {exc.message}") from exc
        if not isinstance(plain, dict):
            raise AuditError("an audit entry's payload must be a JSON object")
        object.__setattr__(self, "payload", MappingProxyType(plain))

    def computed_hash(self) -> str:
        """The hash this entry's content has now (equal to ``entry_hash`` if intact)."""
        return compute_entry_hash(
            seq=self.seq,
            at=self.at,
            event=self.event.value,
            asset_id=self.asset_id,
            payload=self.payload,
            prev_hash=self.prev_hash,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form; :meth:`from_dict` reads it back."""
        return {
            "seq": self.seq,
            "at": self.at,
            "event": self.event.value,
            "asset_id": self.asset_id,
            "payload": _plain(self.payload),
            "prev_hash": self.prev_hash,
            "entry_hash": self.entry_hash,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditEntry:
        """Build from :meth:`to_dict`'s form, without checking the hash.

        Raises:
            AuditError: A field is missing or has the wrong type.
        """
        try:
            seq, at, event = data["seq"], data["at"], AuditEvent(data["event"])
            asset_id, payload = data.get("asset_id"), data.get("payload", {})
            prev_hash, entry_hash = data["prev_hash"], data["entry_hash"]
        except (KeyError, ValueError, TypeError) as exc:
            raise AuditError(f"malformed audit entry: {exc!r}") from None
        if not (isinstance(seq, int) and isinstance(at, str) and isinstance(payload, Mapping)):
            raise AuditError("malformed audit entry: seq, at or payload has the wrong type")
        if not (isinstance(prev_hash, str) and isinstance(entry_hash, str)):
            raise AuditError("malformed audit entry: hashes must be strings")
        if asset_id is not None and not isinstance(asset_id, str):
            raise AuditError("malformed audit entry: asset_id must be a string")
        return cls(seq, at, event, asset_id, payload, prev_hash, entry_hash)


def next_entry(
    prev: AuditEntry | None,
    event: AuditEvent,
    *,
    now: datetime,
    asset_id: str | None = None,
    payload: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """The entry that follows ``prev`` (or the first entry when ``prev`` is None).

    Raises:
        AuditError: ``now`` has no timezone, or the payload is not a JSON object.
    """
    if prev is None:
        return _entry_after(0, GENESIS_HASH, event, now=now, asset_id=asset_id, payload=payload)
    return _entry_after(
        prev.seq, prev.entry_hash, event, now=now, asset_id=asset_id, payload=payload
    )


def _entry_after(
    prev_seq: int,
    prev_hash: str,
    event: AuditEvent,
    *,
    now: datetime,
    asset_id: str | None,
    payload: Mapping[str, Any] | None,
) -> AuditEntry:
    seq = prev_seq + 1
    at = format_audit_time(now)
    body: Mapping[str, Any] = payload if payload is not None else {}
    try:
        digest = compute_entry_hash(
            seq=seq, at=at, event=event.value, asset_id=asset_id, payload=body, prev_hash=prev_hash
        )
    except RecordError as exc:
        raise AuditError(f"audit payload is not JSON: {exc.message}") from exc
    return AuditEntry(seq, at, event, asset_id, body, prev_hash, digest)


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
        log_key: The log's identity: the fingerprint (:func:`provenance.keys.key_fingerprint`)
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
        :func:`provenance.keys.key_fingerprint`) it must be signed by that key.
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

        See :func:`provenance.keys.key_fingerprint`.
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

    See :func:`provenance.keys.key_fingerprint`.

    Raises:
        AuditError: No PEM certificate in it.
    """
    try:
        certificates = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise AuditError("not a PEM certificate chain") from None
    return key_fingerprint(certificates[0])


# --- Verification (pure) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Link:
    """What verification needs from one entry: its position and hashes."""

    seq: int
    prev_hash: str
    entry_hash: str
    intact: bool
    note: str | None = None
    checkpoint_ref: tuple[int, str] | None = None


def _link_of(entry: AuditEntry) -> _Link:
    try:
        intact = entry.computed_hash() == entry.entry_hash
    except RecordError:
        intact = False
    return _Link(entry.seq, entry.prev_hash, entry.entry_hash, intact, None, _checkpoint_ref(entry))


def _checkpoint_ref(entry: AuditEntry) -> tuple[int, str] | None:
    if entry.event is not AuditEvent.CHECKPOINT:
        return None
    seq, digest = entry.payload.get("checkpoint_seq"), entry.payload.get("checkpoint_hash")
    if isinstance(seq, int) and isinstance(digest, str):
        return seq, digest
    return None


class _Walker:
    """One pass over the links in stored order; memory bounded by the anomalies.

    The chain is followed in seq order. What does not fit is classified:

    1. An entry whose content does not match its hash: EDITED.
    2. A seq lower than one already seen: REORDERED when its place was a gap,
       otherwise INSERTED (a second entry with that seq).
    3. A seq gap: DELETED, unless the missing entries turn up later (REORDERED).
    4. A broken link between intact neighbours ``a`` and ``b``: if ``b`` is the
       last entry it was appended outside the chain (INSERTED); if the entry after
       ``b`` links to ``b``, then ``a`` was edited and re-hashed (EDITED at
       ``a``); if it does not either, ``b`` links to neither side (EDITED at ``b``).
    """

    def __init__(self, watched: Iterable[int], stored_refs: set[tuple[int, str]] | None) -> None:
        self.problems: list[AuditProblem] = []
        self.count = 0
        self.tail: _Link | None = None
        self.tail_expected_prev: str | None = GENESIS_HASH
        self.tail_linked = True
        self.gaps: list[tuple[int, int, int]] = []  # (first missing, last missing, seq after)
        self.pending_break: tuple[int, int] | None = None  # (a, b): b does not link to a
        self.watched = set(watched)
        self.hash_at: dict[int, str] = {}
        self.stored_refs = stored_refs

    def _problem(self, seq: int, kind: ProblemKind, detail: str) -> None:
        self.problems.append(AuditProblem(seq, kind, detail))

    def add(self, link: _Link) -> None:
        self.count += 1
        if not link.intact:
            self._problem(
                link.seq,
                ProblemKind.EDITED,
                link.note or f"entry {link.seq} was edited: its content no longer matches its hash",
            )
        elif link.checkpoint_ref is not None and self.stored_refs is not None:
            ref_seq, ref_hash = link.checkpoint_ref
            if (ref_seq, ref_hash) not in self.stored_refs:
                self._problem(
                    ref_seq,
                    ProblemKind.DELETED,
                    f"the checkpoint of entry {ref_seq} (recorded by entry {link.seq}) is "
                    "missing from the checkpoints table",
                )
        tail = self.tail
        if tail is not None and link.seq <= tail.seq:
            self._out_of_order(link, tail)
            return
        expected = 1 if tail is None else tail.seq + 1
        if link.seq > expected:
            # A gap: report at the end unless the missing entries turn up later.
            self.gaps.append((expected, link.seq - 1, link.seq))
            self._resolve_break(followed_by_link=False)
            self._accept(link, expected_prev=None, linked=False)
            return
        expected_prev = GENESIS_HASH if tail is None else tail.entry_hash
        linked = link.prev_hash == expected_prev
        if linked:
            self._resolve_break(followed_by_link=True)
        elif link.intact and (tail is None or tail.intact):
            # (An edited neighbour already explains a broken link.)
            if self.pending_break is not None and self.pending_break[1] == expected - 1:
                a = self.pending_break[0]
                self.pending_break = None
                self._problem(
                    expected - 1,
                    ProblemKind.EDITED,
                    f"entry {expected - 1} links to neither entry {a} nor entry {link.seq}: it "
                    "was edited and re-hashed, or forged in place of the original",
                )
            else:
                self._resolve_break(followed_by_link=False)
                self.pending_break = (expected - 1, link.seq)
        else:
            self._resolve_break(followed_by_link=False)
        self._accept(link, expected_prev=expected_prev, linked=linked)

    def _accept(self, link: _Link, *, expected_prev: str | None, linked: bool) -> None:
        self.tail = link
        self.tail_expected_prev = expected_prev
        self.tail_linked = linked
        if link.seq in self.watched:
            self.hash_at[link.seq] = link.entry_hash

    def _out_of_order(self, link: _Link, tail: _Link) -> None:
        if link.seq == tail.seq:
            if not self.tail_linked and link.prev_hash == self.tail_expected_prev:
                # The entry accepted first was the forgery; this one is the original.
                self._problem(
                    link.seq,
                    ProblemKind.INSERTED,
                    f"an entry with seq {link.seq} that does not link to entry "
                    f"{link.seq - 1} was inserted before the original",
                )
                if self.pending_break is not None and self.pending_break[1] == link.seq:
                    self.pending_break = None
                self._accept(link, expected_prev=self.tail_expected_prev, linked=True)
                return
            self._problem(
                link.seq,
                ProblemKind.INSERTED,
                f"a second entry with seq {link.seq} that does not belong to the chain",
            )
            return
        for index, (first, last, after) in enumerate(self.gaps):
            if first <= link.seq <= last:
                del self.gaps[index]
                if first < link.seq:
                    self.gaps.append((first, link.seq - 1, link.seq))
                if link.seq < last:
                    self.gaps.append((link.seq + 1, last, after))
                self._problem(
                    link.seq,
                    ProblemKind.REORDERED,
                    f"entry {link.seq} is stored after entry {tail.seq}, out of sequence",
                )
                if link.seq in self.watched:
                    self.hash_at[link.seq] = link.entry_hash
                return
        self._problem(
            link.seq,
            ProblemKind.INSERTED,
            f"a second entry with seq {link.seq}, stored after entry {tail.seq}",
        )

    def _resolve_break(self, *, followed_by_link: bool) -> None:
        if self.pending_break is None:
            return
        a, b = self.pending_break
        self.pending_break = None
        if followed_by_link:
            self._problem(
                a,
                ProblemKind.EDITED,
                f"entry {a} was edited and re-hashed: entry {b} still links to its original hash",
            )
        else:
            self._problem(
                b,
                ProblemKind.INSERTED,
                f"entry {b} does not link to entry {a}: it was added outside the chain (or "
                f"entry {a} was edited and re-hashed)",
            )

    def finish(self) -> None:
        self._resolve_break(followed_by_link=False)
        for first, last, after in sorted(self.gaps):
            what = f"entry {first} is" if first == last else f"entries {first}-{last} are"
            before = f"entry {first - 1}" if first > 1 else "the start of the log"
            self._problem(
                first, ProblemKind.DELETED, f"{what} missing between {before} and entry {after}"
            )

    def missing(self, seq: int) -> bool:
        return any(first <= seq <= last for first, last, _ in self.gaps)


def _verify_links(
    links: Iterable[_Link],
    *,
    checkpoints: Iterable[Checkpoint] | None,
    against: Checkpoint | None,
    trust: TrustPolicy | None,
    pin: str | None = None,
    witnessed: Sequence[Checkpoint] = (),
) -> AuditReport:
    stored = sorted(checkpoints, key=lambda c: c.seq) if checkpoints is not None else None
    given = [against] if against is not None else []
    witnessed = sorted(witnessed, key=lambda c: c.seq)
    # The log's identity: the key given (or the witness's first signed checkpoint,
    # kept outside the database), else the first signed checkpoint stored in it.
    external = pin is not None
    if pin is None:
        for cp in [*witnessed, *given]:
            if cp.is_signed and (fp := cp.signer_fingerprint()) is not None:
                pin, external = fp, True
                break
    if pin is None:
        for cp in stored or []:
            if cp.is_signed and (fp := cp.signer_fingerprint()) is not None:
                pin = fp
                break
    bad: list[AuditProblem] = []
    good: list[tuple[Checkpoint, bool]] = []  # (checkpoint, kept outside the database)
    sources = [(cp, False, "") for cp in stored or []]
    sources += [(cp, True, "given ") for cp in given]
    sources += [(cp, True, "witnessed ") for cp in witnessed]
    for cp, outside, label in sources:
        # A checkpoint an operator hands over (an export) may be unsigned: its value
        # is where it was kept. Stored and witnessed ones must carry the log's key.
        cp_pin = pin if (not label.startswith("given") or cp.is_signed) else None
        reason = cp.signature_problem(trust=trust, pin=cp_pin)
        if reason is None:
            good.append((cp, outside))
        else:
            bad.append(AuditProblem(cp.seq, ProblemKind.BAD_CHECKPOINT_SIGNATURE, label + reason))
    refs = {(cp.seq, cp.entry_hash) for cp in stored} if stored is not None else None
    walker = _Walker((cp.seq for cp, _ in good), refs)
    for link in links:
        walker.add(link)
    walker.finish()
    problems = walker.problems + bad
    last_seq = walker.tail.seq if walker.tail is not None else 0
    last_hash = walker.tail.entry_hash if walker.tail is not None else GENESIS_HASH
    for cp, outside in good:
        problems.extend(_compare(cp, walker, last_seq, outside=outside))
    problems = _unique(problems)
    problems.sort(key=lambda p: p.seq)
    signed_good = [cp for cp, _ in good if cp.is_signed]
    notes: list[str] = []
    verified = bool(signed_good) and (external or trust is not None)
    if not signed_good:
        notes.append(
            "unverified: no signed checkpoint vouches for this log yet (writers with a key "
            "take one every checkpoint_every entries; 'provenance audit checkpoint' takes "
            "one now); whoever can write the database could have rewritten it consistently"
        )
    elif not verified:
        notes.append(
            "unverified: checkpoint signatures were checked only against the certificates "
            "they carry; give the log's key (--keys), --trust-anchors or a witness to pin them"
        )
    covered = max((cp.seq for cp in signed_good), default=0)
    tail = walker.tail
    if tail is not None and tail.seq == covered + 1 and tail.checkpoint_ref is not None:
        covered += 1  # only the entry that logged the checkpoint comes after it
    if verified and covered < last_seq:
        notes.append(
            f"entries {covered + 1}-{last_seq} come after the latest signed checkpoint: "
            "nothing outside the database vouches for them yet"
        )
    return AuditReport(
        ok=not problems,
        entries_checked=walker.count,
        last_seq=last_seq,
        last_hash=last_hash,
        problems=tuple(problems),
        checkpoints_checked=len(stored or []) + len(given) + len(witnessed),
        verified=verified and not problems,
        notes=tuple(notes),
    )


def _unique(problems: list[AuditProblem]) -> list[AuditProblem]:
    """Problems without repeats (a checkpoint stored and witnessed is compared twice)."""
    seen: set[tuple[int, ProblemKind, str]] = set()
    out = []
    for p in problems:
        key = (p.seq, p.kind, p.detail)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _compare(
    cp: Checkpoint, walker: _Walker, last_seq: int, *, outside: bool
) -> list[AuditProblem]:
    where = "the checkpoint given" if outside else "the stored checkpoint"
    if cp.seq > last_seq:
        return [
            AuditProblem(
                last_seq + 1,
                ProblemKind.TRUNCATED,
                f"the log ends at entry {last_seq} but {where} covers entry {cp.seq} "
                f"(taken {cp.at}): entries {last_seq + 1}-{cp.seq} at least were removed",
            )
        ]
    if walker.missing(cp.seq) or cp.seq not in walker.hash_at:
        return []  # already reported as DELETED
    if walker.hash_at[cp.seq] == cp.entry_hash:
        return []
    if outside:
        return [
            AuditProblem(
                cp.seq,
                ProblemKind.ROLLED_BACK,
                f"entry {cp.seq} differs from {where} (taken {cp.at}): the log was "
                "restored from an older copy or rewritten since",
            )
        ]
    return [
        AuditProblem(
            cp.seq,
            ProblemKind.EDITED,
            f"entry {cp.seq} differs from {where} taken {cp.at}: it was edited and re-hashed",
        )
    ]


def verify_chain(
    entries: Iterable[AuditEntry],
    *,
    checkpoints: Iterable[Checkpoint] | None = None,
    against: Checkpoint | None = None,
    trust: TrustPolicy | None = None,
    pin: str | None = None,
    witnessed: Sequence[Checkpoint] = (),
) -> AuditReport:
    """Check a hash chain, in the order given, and the checkpoints that cover it.

    Steps:

    1. Each checkpoint's signature (and, with ``trust``, its signer's chain to
       an anchor); a bad one is BAD_CHECKPOINT_SIGNATURE and is not used further.
    2. Each entry's own hash (EDITED), its place in the sequence (REORDERED,
       INSERTED, DELETED) and its link to the previous entry (see ``_Walker``).
    3. Each stored checkpoint: the log must reach its seq (else TRUNCATED) with
       the same hash there (else EDITED). With ``checkpoints`` given, every
       CHECKPOINT entry must have its row (else DELETED).
    4. ``against`` and ``witnessed``, checkpoints kept outside the database:
       the log must reach each (else TRUNCATED) with the same hash (else
       ROLLED_BACK).

    Signed checkpoints must all carry the log's key: ``pin`` when given, else
    the first signed checkpoint kept outside the database (witnessed or
    given), else the first one stored. The report is ``verified`` only when
    that key came from outside the database (``pin``, a witness, a given
    checkpoint) or ``trust`` checked the signers.

    Args:
        entries: The entries as stored.
        checkpoints: The stored checkpoints, or None to skip steps 1 and 3 for them.
        against: A checkpoint kept elsewhere (for example, from an export).
        trust: Require checkpoints signed by a certificate chaining to these anchors.
        pin: The log's key (:func:`provenance.keys.key_fingerprint`), known from outside.
        witnessed: The checkpoints a witness holds (see :class:`FileWitness`).

    Returns:
        The report; ``ok`` is true when no problem was found.
    """
    return _verify_links(
        (_link_of(e) for e in entries),
        checkpoints=checkpoints,
        against=against,
        trust=trust,
        pin=pin,
        witnessed=witnessed,
    )


def _plain(value: Any) -> Any:
    """Turn mappings (``MappingProxyType`` included) into dicts, for ``json``."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# --- Facts bound to the chain (DESIGN.md decision 17) -------------------------------

ROW_ASSET = "row_asset"
"""Payload key: the row hash (:func:`row_hash`) of the asset the entry recorded."""
ROW_FILE = "row_file"
"""Payload key: the row hash of the file (payload ``sha256``) the entry recorded."""
ROW_PARENT = "row_parent"
"""Payload key: the asset id the recorded asset descends from (``""``: none yet)."""
LINKED = "linked"
"""Payload key: comma-separated asset ids that now descend from the entry's asset."""
ROW_PERCEPTUAL = "row_perceptual"
"""Payload key: the hash of the asset's perceptual rows and descriptor of one scheme."""
PERCEPTUAL_SCHEME = "perceptual_scheme"
"""Payload key: that scheme."""


def row_hash(kind: str, values: Iterable[str | bytes | int | None]) -> str:
    """SHA-256 (hex) of a row's canonical serialisation: its kind, then each column in order.

    Each value is type-tagged and length-prefixed, so no two rows serialise alike:
    ``N`` (NULL), ``I<decimal>:`` (integer), ``S<byte length>:<UTF-8>`` (text),
    ``B<length>:<bytes>`` (blob). About four times cheaper than canonical JSON,
    which matters on the signing path (two or three rows per signing).

    Raises:
        AuditError: A value of another type (a float, a bool).
    """
    parts = [kind.encode("ascii")]
    for value in values:
        if value is None:
            parts.append(b"N")
        elif isinstance(value, bytes):
            parts += (b"B%d:" % len(value), value)
        elif isinstance(value, str):
            data = value.encode("utf-8")
            parts += (b"S%d:" % len(data), data)
        elif isinstance(value, int) and not isinstance(value, bool):
            parts.append(b"I%d:" % value)
        else:
            raise AuditError(f"a {kind} row holds a {type(value).__name__}, not a column value")
    return hashlib.sha256(b"".join(parts)).hexdigest()


class FactBindings:
    """The rows the chain vouches for, as the latest intact entry about each stated them.

    Filled by :meth:`AuditLog.verify` while it walks the chain; every value is
    ``(seq of the entry, what it bound)``. Entries written before row binding
    (schema < 3) hold no row hash, but their payload still names some facts:
    ``legacy_assets`` (essence, model, model version, source type of the asset's
    first entry) and ``legacy_files`` (input, record, manifest, signer).
    """

    __slots__ = ("assets", "files", "legacy_assets", "legacy_files", "parents", "perceptual")

    def __init__(self) -> None:
        self.assets: dict[str, tuple[int, str]] = {}
        self.files: dict[str, tuple[int, str]] = {}
        self.parents: dict[str, tuple[int, str]] = {}
        self.perceptual: dict[tuple[str, str], tuple[int, str]] = {}
        self.legacy_assets: dict[str, tuple[int, tuple[Any, ...]]] = {}
        self.legacy_files: dict[str, tuple[int, tuple[Any, ...]]] = {}

    def add(self, entry: AuditEntry) -> None:
        """Take what ``entry`` binds (call only for entries whose hash matched)."""
        payload = entry.payload
        seq, asset_id = entry.seq, entry.asset_id or ""
        if ROW_FILE not in payload and ROW_PERCEPTUAL not in payload and LINKED not in payload:
            if entry.event in _RECORDING_EVENTS and isinstance(payload.get("sha256"), str):
                self._add_legacy(seq, asset_id, payload)
            return
        value = payload.get(ROW_ASSET)
        if isinstance(value, str):
            self.assets[asset_id] = (seq, value)
        value = payload.get(ROW_PARENT)
        if isinstance(value, str):
            self.parents[asset_id] = (seq, value)
        value, sha = payload.get(ROW_FILE), payload.get("sha256")
        if isinstance(value, str) and isinstance(sha, str):
            self.files[sha] = (seq, value)
        value, scheme = payload.get(ROW_PERCEPTUAL), payload.get(PERCEPTUAL_SCHEME)
        if isinstance(value, str) and isinstance(scheme, str):
            self.perceptual[(asset_id, scheme)] = (seq, value)
        value = payload.get(LINKED)
        if isinstance(value, str) and value:
            for child in value.split(","):
                self.parents[child] = (seq, asset_id)

    def _add_legacy(self, seq: int, asset_id: str, payload: Mapping[str, Any]) -> None:
        facts = ("input_sha256", "record_sha256", "active_manifest", "signer")
        self.legacy_files[str(payload["sha256"])] = (seq, tuple(payload.get(k) for k in facts))
        if asset_id not in self.legacy_assets:
            facts = ("essence_sha256", "model", "model_version", "digital_source_type")
            self.legacy_assets[asset_id] = (seq, tuple(payload.get(k) for k in facts))


_RECORDING_EVENTS = frozenset({AuditEvent.SIGNED, AuditEvent.RENDITION_ADDED})


Reconciler = Callable[[sqlite3.Connection, FactBindings], tuple[list[AuditProblem], list[str], int]]
"""Compares the stored rows with the bindings: (problems, notes, rows checked)."""


# --- Witness: checkpoints kept outside the database ----------------------------------

WITNESS_ENV_VAR = "PROVENANCE_AUDIT_WITNESS"
"""Environment variable naming the witness (a file, a folder, or an http(s) URL)."""
WITNESS_FILE_NAME = "audit-witness.jsonl"
"""The file a folder witness appends to."""
_WITNESS_FORMAT = "provenance.audit.witness"


@dataclass(frozen=True, slots=True)
class WitnessRecord:
    """One checkpoint as a witness holds it.

    Attributes:
        log_id: The hash of the log's entry 1: which log the checkpoint is of.
        checkpoint: The checkpoint.
    """

    log_id: str
    checkpoint: Checkpoint

    def to_json(self) -> str:
        """One line of canonical JSON."""
        body = {
            "format": _WITNESS_FORMAT,
            "log_id": self.log_id,
            "checkpoint": self.checkpoint.to_dict(),
        }
        return canonical_json(body).decode("utf-8")


class FileWitness:
    """An append-only JSON-lines file, kept outside the database (another disk, host or mount).

    Every checkpoint the inventory stores is appended here after its
    transaction commits (one ``write`` with ``O_APPEND`` under ``flock``, then
    ``fsync``), and ``audit verify`` reads it back: a log that no longer reaches
    a witnessed checkpoint was truncated or rolled back, one with another hash
    there was rewritten. Use one witness per inventory. Its worth is that the
    people who can write the database cannot rewrite it (append-only mount,
    another account, a ``chattr +a`` file, a synced folder with history).

    Args:
        path: The file, or a folder (then :data:`WITNESS_FILE_NAME` in it).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        if target.is_dir() or str(path).endswith(("/", os.sep)):
            target = target / WITNESS_FILE_NAME
        self.path = target

    def __repr__(self) -> str:
        return f"FileWitness({os.fspath(self.path)!r})"

    @property
    def readable(self) -> bool:
        """Whether :meth:`read` can give the checkpoints back (true for a file)."""
        return True

    def append(self, record: WitnessRecord) -> None:
        """Append one record durably.

        Raises:
            OSError: The file cannot be written.
        """
        data = (record.to_json() + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[WitnessRecord]:
        """Every record, in file order (none when the file does not exist yet).

        A last line without its newline (a crash while appending) is skipped.

        Raises:
            AuditError: The file cannot be read, or a complete line is not a record.
        """
        try:
            text = self.path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise AuditError(f"{self.path}: cannot read the audit witness: {exc}") from None
        lines = text.split("\n")
        out = []
        for number, line in enumerate(lines[:-1], 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict) or data.get("format") != _WITNESS_FORMAT:
                    raise AuditError("not a witness record")
                log_id = data.get("log_id")
                if not isinstance(log_id, str):
                    raise AuditError("no log_id")
                body = data.get("checkpoint")
                if not isinstance(body, dict):
                    raise AuditError("no checkpoint")
                out.append(WitnessRecord(log_id, Checkpoint.from_dict(body)))
            except (ValueError, RecursionError, AuditError) as exc:
                raise AuditError(
                    f"{self.path}: line {number} is not an audit witness record ({exc})"
                ) from None
        return out


class HttpWitness:
    """POST each checkpoint (the witness record's JSON) to an HTTP(S) endpoint.

    Write-only: ``audit verify`` cannot read it back, so keep a file witness
    too when verification should check the witnessed head by default.

    Args:
        url: The endpoint; it must answer 2xx.
        timeout_s: Per request.
    """

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise AuditError(f"witness URL must be http(s): {url!r}")
        self.url = url
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"HttpWitness({self.url!r})"

    @property
    def readable(self) -> bool:
        """False: an HTTP witness is not read back."""
        return False

    def append(self, record: WitnessRecord) -> None:
        """POST one record.

        Raises:
            OSError: The endpoint could not be reached or did not answer 2xx.
        """
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url,
            data=record.to_json().encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
            if not 200 <= response.status < 300:
                raise OSError(f"witness answered HTTP {response.status}")

    def read(self) -> list[WitnessRecord]:
        """Nothing: an HTTP witness is write-only here."""
        return []


class SyslogWitness:
    """Send each checkpoint to syslog (the local socket, or a remote collector over UDP).

    Write-only, like :class:`HttpWitness`: a log host that the database's writers
    cannot rewrite keeps the record; ``audit verify`` does not read it back.

    Args:
        address: A Unix socket path (default ``/dev/log``) or ``(host, port)``.
    """

    def __init__(self, address: str | tuple[str, int] = "/dev/log") -> None:
        self.address = address

    def __repr__(self) -> str:
        return f"SyslogWitness({self.address!r})"

    @property
    def readable(self) -> bool:
        """False: syslog is not read back."""
        return False

    def append(self, record: WitnessRecord) -> None:
        """Send one record (facility ``auth``, severity ``notice``, tag ``provenance-audit``).

        Raises:
            OSError: The socket cannot be reached.
        """
        priority = 4 * 8 + 5  # LOG_AUTH, LOG_NOTICE
        message = f"<{priority}>provenance-audit: {record.to_json()}".encode()
        if isinstance(self.address, tuple):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(message, self.address)
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message, self.address)

    def read(self) -> list[WitnessRecord]:
        """Nothing: syslog is write-only here."""
        return []


class MultiWitness:
    """Several witnesses at once (e.g. a file, read back by verify, and an HTTP endpoint).

    Args:
        witnesses: Each gets every record; verification reads the readable ones.
    """

    def __init__(self, witnesses: Sequence[FileWitness | HttpWitness | SyslogWitness]) -> None:
        self.witnesses = tuple(witnesses)

    def __repr__(self) -> str:
        return f"MultiWitness({list(self.witnesses)!r})"

    @property
    def readable(self) -> bool:
        """Whether at least one of them can be read back."""
        return any(w.readable for w in self.witnesses)

    def append(self, record: WitnessRecord) -> None:
        """Give the record to every witness, even when one fails.

        Raises:
            OSError: The first failure, after all were tried.
        """
        failure: OSError | None = None
        for witness in self.witnesses:
            try:
                witness.append(record)
            except OSError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def read(self) -> list[WitnessRecord]:
        """The records of every readable witness.

        Raises:
            AuditError: One of them cannot be read.
        """
        return [r for w in self.witnesses if w.readable for r in w.read()]


Witness = FileWitness | HttpWitness | SyslogWitness | MultiWitness


def witness_from(value: str | os.PathLike[str] | None) -> Witness | None:
    """A witness from a flag or setting; None if empty.

    ``http(s)://...`` is an :class:`HttpWitness`; ``syslog`` (``/dev/log``),
    ``syslog:///path/to/socket`` or ``syslog://host:port`` (UDP) a
    :class:`SyslogWitness`; anything else a file or folder (:class:`FileWitness`).
    Several, separated by commas, make a :class:`MultiWitness`.

    Raises:
        AuditError: A malformed syslog address.
    """
    if value is None:
        return None
    parts = [p.strip() for p in os.fspath(value).split(",") if p.strip()]
    witnesses = [_one_witness(p) for p in parts]
    if not witnesses:
        return None
    return witnesses[0] if len(witnesses) == 1 else MultiWitness(witnesses)


def _one_witness(text: str) -> FileWitness | HttpWitness | SyslogWitness:
    if text.startswith(("http://", "https://")):
        return HttpWitness(text)
    if text == "syslog":
        return SyslogWitness()
    if text.startswith("syslog://"):
        rest = text.removeprefix("syslog://")
        if rest.startswith("/"):
            return SyslogWitness(rest)
        host, _, port = rest.rpartition(":")
        if not host or not port.isdigit():
            raise AuditError(f"syslog witness must be syslog://HOST:PORT or syslog:///PATH: {text}")
        return SyslogWitness((host, int(port)))
    return FileWitness(Path(text).expanduser())


def witness_from_env() -> Witness | None:
    """The witness named by ``$PROVENANCE_AUDIT_WITNESS``, or None."""
    return witness_from(os.environ.get(WITNESS_ENV_VAR))


# --- Storage (SQLite) -------------------------------------------------------------

AUDIT_SCHEMA_V1: tuple[str, ...] = (
    """CREATE TABLE audit (
        seq        INTEGER PRIMARY KEY,
        at         TEXT NOT NULL,
        event      TEXT NOT NULL,
        asset_id   TEXT,
        payload    TEXT NOT NULL,
        prev_hash  TEXT NOT NULL,
        entry_hash TEXT NOT NULL
    )""",
    "CREATE INDEX audit_by_asset ON audit(asset_id) WHERE asset_id IS NOT NULL",
    """CREATE TABLE audit_checkpoints (
        seq                    INTEGER PRIMARY KEY,
        entry_hash             TEXT NOT NULL,
        at                     TEXT NOT NULL,
        algorithm              TEXT,
        signature_b64          TEXT,
        certificate_chain_json TEXT NOT NULL
    )""",
    # Guard rails for honest code and tools; verification does not rely on them.
    """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
       BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END""",
    """CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
       BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END""",
)
"""The audit tables, part of inventory schema version 1."""

# Schema version 3 (audit workstream, DESIGN.md decision 17): each checkpoint
# row keeps the log key it names (so a writer finds the log's identity in one
# indexed query); audit_meta holds the first row key of each fact table that is
# bound to the chain (rows below it were recorded before binding existed).
AUDIT_SCHEMA_V3: tuple[str, ...] = (
    "ALTER TABLE audit_checkpoints ADD COLUMN log_key TEXT",
    """CREATE TABLE audit_meta (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TRIGGER audit_meta_no_update BEFORE UPDATE ON audit_meta
       BEGIN SELECT RAISE(ABORT, 'audit_meta is append-only'); END""",
    """CREATE TRIGGER audit_meta_no_delete BEFORE DELETE ON audit_meta
       BEGIN SELECT RAISE(ABORT, 'audit_meta is append-only'); END""",
)

_ENTRY_COLUMNS = "seq, at, event, asset_id, payload, prev_hash, entry_hash"
_T = TypeVar("_T")


class AuditLog:
    """The audit chain stored in the inventory database; get it as ``Inventory.audit``.

    Args:
        db: The inventory's database.
        checkpoint_key: Sign a checkpoint automatically every ``checkpoint_every``
            entries with this key; None disables automatic checkpoints.
        checkpoint_every: Entries between automatic checkpoints.
        witness: Where every stored checkpoint is also written, after its
            transaction commits (see :class:`FileWitness`); read back by
            :meth:`verify`.
        reconcile: Compares the stored fact rows with what the chain binds
            (the inventory supplies it); None checks the chain only.

    Attributes:
        witness_error: Why the last checkpoint could not be written to the
            witness (it is retried with the next one), or None.
    """

    def __init__(
        self,
        db: Database,
        *,
        checkpoint_key: SigningKey | None = None,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        witness: Witness | None = None,
        reconcile: Reconciler | None = None,
    ) -> None:
        if checkpoint_every < 1:
            raise AuditError("checkpoint_every must be at least 1")
        self._db = db
        self.checkpoint_key = checkpoint_key
        self.checkpoint_every = checkpoint_every
        self.witness = witness
        self.witness_error: str | None = None
        self._reconcile = reconcile
        self._pending: list[Checkpoint] = []  # taken in the open transaction, not yet witnessed
        self._unwitnessed: list[Checkpoint] = []  # committed; the witness failed, retried
        self._log_key: str | None = None  # cached: the log's identity never changes

    def write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` in one write transaction, then witness the checkpoints it stored.

        The witness is written only after the commit, so it never holds a
        checkpoint the database does not (which verification would call a
        truncation). A witness that cannot be written does not fail the write:
        :attr:`witness_error` says why, and the checkpoint is retried next time.

        Raises:
            InventoryError: As :meth:`Database.write`.
        """
        if self._db.connection.in_transaction:
            return self._db.write(work)
        try:
            result = self._db.write(work)
        except BaseException:
            self._pending.clear()  # rolled back: nothing to witness
            raise
        if self.witness is None:
            self._pending.clear()
        elif self._pending or self._unwitnessed:
            self._flush_witness()
        return result

    def _flush_witness(self) -> None:
        pending = self._unwitnessed + self._pending
        self._pending, self._unwitnessed = [], []
        witness = self.witness
        assert witness is not None  # noqa: S101 - checked by the caller

        def committed(conn: sqlite3.Connection) -> tuple[str, list[Checkpoint]]:
            first = conn.execute("SELECT entry_hash FROM audit WHERE seq = 1").fetchone()
            kept = []
            for cp in pending:
                # A retried transaction may have taken a checkpoint that was rolled back.
                row = conn.execute(
                    "SELECT entry_hash, at FROM audit_checkpoints WHERE seq = ?", (cp.seq,)
                ).fetchone()
                if row is not None and (str(row[0]), str(row[1])) == (cp.entry_hash, cp.at):
                    kept.append(cp)
            return ("" if first is None else str(first[0])), kept

        log_id, kept = self._db.read(committed)
        for index, cp in enumerate(kept):
            try:
                witness.append(WitnessRecord(log_id, cp))
            except OSError as exc:
                self.witness_error = f"{witness!r}: checkpoint {cp.seq} not witnessed: {exc}"
                self._unwitnessed = kept[index:]
                return
        self.witness_error = None

    def append(
        self,
        event: AuditEvent,
        *,
        asset_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
        now: datetime,
    ) -> AuditEntry:
        """Append an entry (in its own transaction, or joining the caller's).

        Args:
            event: What happened.
            asset_id: The asset concerned.
            payload: Details: hashes, ids, counts; no paths or free text.
            now: When it happened.

        Raises:
            AuditError: ``now`` has no timezone or the payload is not JSON.
            InventoryError: The database cannot be written.
        """
        return self.write(
            lambda conn: self.append_in(conn, event, asset_id=asset_id, payload=payload, now=now)
        )

    def append_in(
        self,
        conn: sqlite3.Connection,
        event: AuditEvent,
        *,
        asset_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
        now: datetime,
    ) -> AuditEntry:
        """Append inside a write transaction the caller holds (for the inventory).

        Reading the tail under the caller's ``BEGIN IMMEDIATE`` lock is what keeps
        the chain single when several processes write at once.
        """
        row = conn.execute("SELECT seq, entry_hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        prev_seq, prev_hash = (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))
        entry = _entry_after(
            prev_seq, prev_hash, event, now=now, asset_id=asset_id, payload=payload
        )
        conn.execute(
            f"INSERT INTO audit ({_ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - constant columns
            (
                entry.seq,
                entry.at,
                entry.event.value,
                entry.asset_id,
                canonical_json(_plain(entry.payload)).decode("utf-8"),
                entry.prev_hash,
                entry.entry_hash,
            ),
        )
        key = self.checkpoint_key
        if key is not None and event is not AuditEvent.CHECKPOINT:
            # Newest first by primary key: stops at the first signed row (unsigned
            # ones, from exports made without a key, do not delay the schedule).
            row = conn.execute(
                "SELECT seq FROM audit_checkpoints WHERE signature_b64 IS NOT NULL "
                "ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            if entry.seq - (0 if row is None else int(row[0])) >= self.checkpoint_every:
                pinned = self.log_key_in(conn)
                # A key that is not the log's cannot vouch for it: no automatic
                # checkpoint rather than one that verification refuses.
                if pinned is None or pinned == key_fingerprint(key.leaf):
                    self.checkpoint_in(conn, key, now=now)
        return entry

    def checkpoint(self, key: SigningKey | None, *, now: datetime) -> Checkpoint:
        """Sign and store a checkpoint of the current tail, and log that it was taken.

        With ``key=None`` the checkpoint is stored unsigned (a report made
        without keys); its value is then where a copy of it is kept.

        Raises:
            AuditError: The log is empty.
            SignatureError: The key could not sign.
            InventoryError: The database cannot be written.
        """
        return self.write(lambda conn: self.checkpoint_in(conn, key, now=now))

    def checkpoint_in(
        self, conn: sqlite3.Connection, key: SigningKey | None, *, now: datetime
    ) -> Checkpoint:
        """Take a checkpoint inside the caller's write transaction (unsigned without a key).

        Once a log has a signed checkpoint its checkpoints are pinned to that
        key (the log's identity): an unsigned checkpoint is returned (for an
        export to embed) but not stored, and another key is refused.

        Raises:
            AuditError: The log is empty, or ``key`` is not the log's key.
        """
        tail = conn.execute(
            "SELECT seq, entry_hash FROM audit ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if tail is None:
            raise AuditError("the audit log is empty: nothing to checkpoint")
        pinned = self.log_key_in(conn)
        if key is not None and pinned is not None and key_fingerprint(key.leaf) != pinned:
            raise AuditError(
                f"this audit log's checkpoints are signed by key {pinned[:16]}; key "
                f"{key.subject!r} ({key_fingerprint(key.leaf)[:16]}) is another one"
            )
        # The tail is never already checkpointed: taking a checkpoint appends a
        # CHECKPOINT entry after the entry it covers.
        cp = Checkpoint.create(int(tail[0]), str(tail[1]), now=now, key=key)
        if key is None and pinned is not None:
            return cp
        conn.execute(
            "INSERT INTO audit_checkpoints (seq, entry_hash, at, algorithm, signature_b64, "
            "certificate_chain_json, log_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                cp.seq,
                cp.entry_hash,
                cp.at,
                cp.algorithm,
                cp.signature_b64,
                json.dumps(list(cp.certificate_chain_b64)),
                cp.log_key,
            ),
        )
        self.append_in(conn, AuditEvent.CHECKPOINT, payload=_cp_payload(cp, key), now=now)
        self._pending.append(cp)
        return cp

    def log_key_in(self, conn: sqlite3.Connection) -> str | None:
        """The log's identity: the key of its first signed checkpoint (None before one)."""
        if self._log_key is None:
            row = conn.execute(
                "SELECT log_key, certificate_chain_json, algorithm, signature_b64 "
                "FROM audit_checkpoints WHERE signature_b64 IS NOT NULL ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            if row[0] is not None:
                self._log_key = str(row[0])
            else:  # a version-1 checkpoint: the key of its certificate
                try:
                    chain = json.loads(row[1])
                    probe = Checkpoint(0, "", "", str(row[3]), row[2], tuple(chain))
                except (ValueError, TypeError):
                    return None
                self._log_key = probe.signer_fingerprint()
        return self._log_key

    def log_key(self) -> str | None:
        """The log's identity (:meth:`log_key_in`), read in its own transaction."""
        return self._db.read(self.log_key_in)

    def tail(self) -> AuditEntry | None:
        """The last entry, or None for an empty log.

        Raises:
            AuditError: The last row cannot be decoded (it was tampered with).
            InventoryError: The database cannot be read.
        """
        return self._db.read(self._tail)

    def entries(
        self, *, asset_id: str | None = None, after_seq: int = 0, page_size: int = 1000
    ) -> Iterator[AuditEntry]:
        """Entries in seq order, read page by page (no long-lived transaction).

        Args:
            asset_id: Only the entries about this asset.
            after_seq: Start after this seq.
            page_size: Rows per query.

        Raises:
            AuditError: A row cannot be decoded (it was tampered with; run verify).
            InventoryError: The database cannot be read.
        """
        last = after_seq
        while True:
            rows = self._db.read(
                functools.partial(self._page, after=last, asset_id=asset_id, limit=page_size)
            )
            for row in rows:
                yield _entry_from_row(row)
            if len(rows) < page_size:
                return
            last = int(rows[-1][0])

    def checkpoints(self) -> list[Checkpoint]:
        """The stored checkpoints, by seq.

        Raises:
            AuditError: A row cannot be decoded.
            InventoryError: The database cannot be read.
        """
        return self._db.read(_stored_checkpoints)

    def verify(
        self,
        *,
        against: Checkpoint | None = None,
        trust: TrustPolicy | None = None,
        pin: str | None = None,
        use_witness: bool = True,
    ) -> AuditReport:
        """Verify the whole stored chain, its checkpoints and the facts it binds, on one snapshot.

        Args:
            against: A checkpoint kept outside the database (from an export):
                detects truncation and roll-back that stored checkpoints cannot.
            trust: Require checkpoints signed by a certificate chaining to these
                anchors.
            pin: The log's key (:func:`provenance.keys.key_fingerprint`), e.g. of the signing
                certificate at hand: checkpoints signed by any other are refused.
            use_witness: Check every checkpoint the witness holds (the default
                when one is configured): catches truncation and roll-back
                without ``against``.

        Returns:
            The report; see :func:`verify_chain` for what each problem means,
            and the reconciler for FACT_CHANGED, FACT_MISSING, FACT_UNBOUND.

        Raises:
            AuditError: The witness cannot be read.
            InventoryError: The database cannot be read.
        """
        witnessed: list[Checkpoint] = []
        log_ids: set[str] = set()
        notes: list[str] = []
        witness = self.witness if use_witness else None
        if witness is not None:
            if witness.readable:
                for record in witness.read():
                    witnessed.append(record.checkpoint)
                    log_ids.add(record.log_id)
                if not witnessed:
                    notes.append(f"the witness {witness!r} holds no checkpoint yet")
            else:
                notes.append(f"the witness {witness!r} cannot be read back: not checked")

        def work(conn: sqlite3.Connection) -> AuditReport:
            stored = _stored_checkpoints(conn, lenient=True)
            bindings = FactBindings()
            first: list[str] = []

            def links() -> Iterator[_Link]:
                cursor = conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM audit ORDER BY seq")  # noqa: S608 - constant columns
                try:
                    for row in cursor:
                        try:
                            entry = _entry_from_row(row)
                        except AuditError:
                            yield _link_from_row(row)
                            continue
                        link = _link_of(entry)
                        if link.intact:
                            bindings.add(entry)
                            if entry.seq == 1:
                                first.append(entry.entry_hash)
                        yield link
                finally:
                    cursor.close()

            report = _verify_links(
                links(),
                checkpoints=stored,
                against=against,
                trust=trust,
                pin=pin,
                witnessed=witnessed,
            )
            extra: list[AuditProblem] = []
            extra_notes: list[str] = []
            checked = 0
            if self._reconcile is not None:
                extra, extra_notes, checked = self._reconcile(conn, bindings)
            if log_ids and first and log_ids != {first[0]}:
                extra.append(
                    AuditProblem(
                        1,
                        ProblemKind.ROLLED_BACK,
                        "the witness holds checkpoints of a log whose first entry is "
                        f"{sorted(log_ids - {first[0]})[0][:16]}, not {first[0][:16]}: the log "
                        "was rewritten from the start (or the witness is another inventory's)",
                    )
                )
            # By seq; rows no entry recorded (seq 0) after the entries.
            problems = tuple(
                sorted(report.problems + tuple(extra), key=lambda p: (p.seq == 0, p.seq))
            )
            return dataclasses.replace(
                report,
                ok=not problems,
                problems=problems,
                verified=report.verified and not problems,
                notes=(*notes, *report.notes, *extra_notes),
                facts_checked=checked,
            )

        return self._db.read(work)

    @staticmethod
    def _page(
        conn: sqlite3.Connection, *, after: int, asset_id: str | None, limit: int
    ) -> list[tuple[Any, ...]]:
        if asset_id is None:
            sql = f"SELECT {_ENTRY_COLUMNS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?"  # noqa: S608 - constant columns
            return conn.execute(sql, (after, limit)).fetchall()
        sql = (
            f"SELECT {_ENTRY_COLUMNS} FROM audit WHERE asset_id = ? AND seq > ? "  # noqa: S608 - constant columns
            "ORDER BY seq LIMIT ?"
        )
        return conn.execute(sql, (asset_id, after, limit)).fetchall()

    @staticmethod
    def _tail(conn: sqlite3.Connection) -> AuditEntry | None:
        row = conn.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM audit ORDER BY seq DESC LIMIT 1"  # noqa: S608 - constant columns
        ).fetchone()
        return None if row is None else _entry_from_row(row)


def _cp_payload(cp: Checkpoint, key: SigningKey | None) -> dict[str, Any]:
    return {
        "checkpoint_seq": cp.seq,
        "checkpoint_hash": cp.entry_hash,
        "signed": cp.is_signed,
        "signer": key.subject if key is not None else None,
    }


def _entry_from_row(row: tuple[Any, ...]) -> AuditEntry:
    seq, at, event, asset_id, payload, prev_hash, entry_hash = row
    try:
        return AuditEntry(
            int(seq),
            str(at),
            AuditEvent(event),
            asset_id,
            json.loads(payload),
            prev_hash,
            entry_hash,
        )
    except (ValueError, TypeError, AuditError, RecordError):
        raise AuditError(
            f"audit entry {seq} cannot be decoded (its event or payload was altered); "
            "run the audit verification"
        ) from None


def _link_from_row(row: tuple[Any, ...]) -> _Link:
    seq, prev_hash, entry_hash = int(row[0]), str(row[5]), str(row[6])
    try:
        entry = _entry_from_row(row)
    except AuditError:
        note = f"entry {seq} was edited: its event or payload can no longer be decoded"
        return _Link(seq, prev_hash, entry_hash, False, note)
    return _link_of(entry)


def _stored_checkpoints(conn: sqlite3.Connection, *, lenient: bool = False) -> list[Checkpoint]:
    rows = conn.execute(
        "SELECT seq, entry_hash, at, algorithm, signature_b64, certificate_chain_json, log_key "
        "FROM audit_checkpoints ORDER BY seq"
    ).fetchall()
    out: list[Checkpoint] = []
    for row in rows:
        try:
            out.append(_checkpoint_from_row(row))
        except AuditError:
            if not lenient:
                raise
            # An undecodable row still claims a seq: keep it so its signature fails.
            out.append(Checkpoint(int(row[0]), str(row[1]), str(row[2]), "", "", (), row[6]))
    return out


def _checkpoint_from_row(row: tuple[Any, ...]) -> Checkpoint:
    seq, entry_hash, at, algorithm, signature, chain_json, log_key = row
    try:
        chain = json.loads(chain_json)
    except (ValueError, TypeError):
        chain = None
    if not isinstance(chain, list) or not all(isinstance(c, str) for c in chain):
        raise AuditError(f"checkpoint {seq} cannot be decoded")
    return Checkpoint(
        int(seq), str(entry_hash), str(at), signature, algorithm, tuple(chain), log_key
    )
