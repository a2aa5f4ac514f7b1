"""The audit log's tables (DDL) and the conversion of their rows into values.

No queries here: :mod:`provenance.audit._store` runs them.
"""

from __future__ import annotations

import json
from typing import Any

from provenance.audit._chain import (
    AuditEntry,
    AuditEvent,
)
from provenance.audit._checkpoint import Checkpoint
from provenance.audit._verify import _Link, _link_of
from provenance.errors import AuditError, RecordError

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


def _entry_row(entry: AuditEntry, payload_json: str) -> tuple[Any, ...]:
    """The audit row of ``entry`` (its payload as stored: ``payload_json``)."""
    return (
        entry.seq,
        entry.at,
        entry.event.value,
        entry.asset_id,
        payload_json,
        entry.prev_hash,
        entry.entry_hash,
    )
