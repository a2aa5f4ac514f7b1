"""The audit chain's values: events, entries, their hashes, problems and reports.

Pure: values in, values out; time is a parameter. No I/O here.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from provenance._core.canonical import canonical_json, canonical_text
from provenance._core.record import format_time
from provenance.errors import AuditError, RecordError

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of entry 1."""

DEFAULT_CHECKPOINT_EVERY = 1000


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
    KEYPOINTS_ADDED = "keypoints_added"
    """An asset's keypoint row was stored after it was recorded (binds it; issue 21)."""


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
    """A stored row (asset, file, link, perceptual hashes, keypoints) differs from its entry."""
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


_FLAT = frozenset({str, int, bool, type(None)})


def _is_flat(payload: Any) -> bool:
    """Whether ``payload`` is a dict of strings to strings, integers, booleans and nulls.

    What the inventory writes, one per recorded file: already JSON values, hashed
    and stored as they are. (Set comprehensions: about 3x cheaper than ``all()``
    over a generator, and this runs twice per entry.)
    """
    return (
        isinstance(payload, dict)
        and {type(k) for k in payload} <= _KEY
        and {type(v) for v in payload.values()} <= _FLAT
    )


_KEY = frozenset({str})


def format_audit_time(now: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and a ``Z`` suffix.

    Raises:
        AuditError: ``now`` has no timezone.
    """
    if now.tzinfo is None:
        raise AuditError("audit times must be timezone-aware datetimes")
    return format_time(now, milliseconds=True)


@functools.lru_cache(maxsize=8)
def _audit_time(now: datetime) -> str:
    """:func:`format_audit_time`, once per moment: an import's entries share their ``now``."""
    return format_audit_time(now)


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
        if _is_flat(payload):
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


def _entry_and_json(
    prev_seq: int,
    prev_hash: str,
    event: AuditEvent,
    *,
    now: datetime,
    asset_id: str | None,
    payload: Mapping[str, Any] | None,
) -> tuple[AuditEntry, str]:
    """:func:`_entry_after` and the entry's stored payload (canonical JSON).

    A flat payload (what the inventory writes, one per recorded file) is
    serialised once, for the entry hash and the stored column alike: the hash
    body is the canonical JSON of the entry's fields, and canonical JSON nests
    (sorted keys, no spaces), so it is composed around the payload's text.
    """
    body: Mapping[str, Any] = payload if payload is not None else {}
    if not _is_flat(body):
        entry = _entry_after(
            prev_seq, prev_hash, event, now=now, asset_id=asset_id, payload=payload
        )
        return entry, canonical_text(_plain(entry.payload))
    seq, at, digest, text = _flat_link(
        prev_seq, prev_hash, event, now=now, asset_id=asset_id, body=body
    )
    return _checked_entry(seq, at, event, asset_id, body, prev_hash, digest), text


def _flat_link(
    prev_seq: int,
    prev_hash: str,
    event: AuditEvent,
    *,
    now: datetime,
    asset_id: str | None,
    body: Mapping[str, Any],
) -> tuple[int, str, str, str]:
    """The seq, time, entry hash and stored payload of the entry of a flat ``body``.

    The caller checked :func:`_is_flat`. What :func:`_entry_and_json` gives,
    without the :class:`AuditEntry` (a caller that stores the row and reads
    nothing back: ``AuditLog.append_all_in(entries=False)``).
    """
    seq = prev_seq + 1
    at, at_json = _audit_time_json(now)
    try:
        text = canonical_text(body)
    except RecordError as exc:
        raise AuditError(f"audit payload is not JSON: {exc.message}") from exc
    # The keys of compute_entry_hash's body, in sorted order.
    hashed = (
        f'{{"asset_id":{_scalar(asset_id)},"at":{at_json},"event":{_EVENT_JSON[event]},'
        f'"payload":{text},"prev_hash":{_scalar(prev_hash)},"seq":{seq:d}}}'
    )
    return seq, at, hashlib.sha256(hashed.encode("utf-8")).hexdigest(), text


_set = object.__setattr__


def _checked_entry(
    seq: int,
    at: str,
    event: AuditEvent,
    asset_id: str | None,
    payload: Mapping[str, Any],
    prev_hash: str,
    entry_hash: str,
) -> AuditEntry:
    """The :class:`AuditEntry` of a flat payload the caller has checked (:func:`_is_flat`).

    What ``AuditEntry(...)`` gives, without its second look at the payload: a
    third of the cost, and an import builds 19 (one per recorded file).
    """
    entry: AuditEntry = object.__new__(AuditEntry)
    _set(entry, "seq", seq)
    _set(entry, "at", at)
    _set(entry, "event", event)
    _set(entry, "asset_id", asset_id)
    _set(entry, "payload", MappingProxyType(dict(payload)))
    _set(entry, "prev_hash", prev_hash)
    _set(entry, "entry_hash", entry_hash)
    return entry


# json.dumps(value, ensure_ascii=False) builds an encoder per call; this one is built once.
_SCALAR = json.JSONEncoder(ensure_ascii=False)


def _scalar(value: str | None) -> str:
    # Hashes and asset ids (hex digits, letters, "-") are their own JSON text, quoted:
    # json escapes only '"', "\\" and control characters, and keeps the rest.
    if value is not None and value.isascii() and value.replace("-", "").isalnum():
        return f'"{value}"'
    return _SCALAR.encode(value)


# An entry's event and time as JSON text: an import's 19 entries share both.
_EVENT_JSON = {event: _SCALAR.encode(event.value) for event in AuditEvent}


@functools.lru_cache(maxsize=8)
def _audit_time_json(now: datetime) -> tuple[str, str]:
    """:func:`_audit_time` and its JSON text."""
    at = _audit_time(now)
    return at, _SCALAR.encode(at)


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


def _plain(value: Any) -> Any:
    """Turn mappings (``MappingProxyType`` included) into dicts, for ``json``."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
