"""The tamper-evident audit log: a SHA-256 hash chain with signed checkpoints.

What it owns (DESIGN.md decisions 8 and 17):

* **Entries.** Entry ``n`` holds ``prev_hash`` (the ``entry_hash`` of entry
  ``n - 1``; 64 zeros for entry 1) and ``entry_hash = SHA-256(canonical JSON of
  {seq, at, event, asset_id, payload, prev_hash})`` (canonical JSON as in
  :func:`provenance._core.record.canonical_json`). Editing an entry breaks its own hash;
  re-hashing it breaks the link from the next entry; deleting one leaves a
  sequence gap.
* **Facts** (DESIGN.md decision 17). The entry that records a row of the
  inventory (asset, file, lineage link, perceptual rows and descriptor, keypoint
  row) holds the row's canonical hash (:func:`row_hash`; payload keys
  :data:`ROW_ASSET`, :data:`ROW_FILE`, :data:`ROW_PARENT`, :data:`LINKED`,
  :data:`ROW_PERCEPTUAL`, :data:`ROW_KEYPOINTS`).
  :meth:`AuditLog.verify` collects them (:class:`FactBindings`) and the
  inventory's reconciler compares them with the tables both ways: a changed
  row, a row whose entry is gone, an entry whose row is gone.
* **Checkpoints.** ``(seq, entry_hash, at, log_key)`` signed with the signing
  key (:meth:`provenance._io.keys.SigningKey.sign` over canonical JSON), taken every
  ``checkpoint_every`` entries by every writer that holds a key, and on every
  export. ``log_key`` is the log's identity, the :func:`provenance._io.keys.key_fingerprint` of its
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

Only this package (its ``_store``), :mod:`provenance.inventory` and :mod:`provenance._io.sqlite` may
import :mod:`sqlite3`.
"""

from __future__ import annotations

from provenance.audit._chain import (
    DEFAULT_CHECKPOINT_EVERY,
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    AuditProblem,
    AuditReport,
    ProblemKind,
    compute_entry_hash,
    format_audit_time,
    next_entry,
)
from provenance.audit._checkpoint import Checkpoint, chain_fingerprint
from provenance.audit._facts import (
    KEYPOINT_SCHEME,
    KEYPOINTS_BOUND_FROM,
    LINKED,
    PERCEPTUAL_SCHEME,
    ROW_ASSET,
    ROW_FILE,
    ROW_KEYPOINTS,
    ROW_PARENT,
    ROW_PERCEPTUAL,
    FactBindings,
    row_hash,
)
from provenance.audit._schema import AUDIT_SCHEMA_V1, AUDIT_SCHEMA_V3
from provenance.audit._snapshot import Reconciler
from provenance.audit._store import AuditLog
from provenance.audit._verify import verify_chain
from provenance.audit._witness import (
    WITNESS_ENV_VAR,
    WITNESS_FILE_NAME,
    FileWitness,
    HttpWitness,
    MultiWitness,
    SyslogWitness,
    Witness,
    WitnessRecord,
    witness_from,
    witness_from_env,
)

__all__ = [
    "AUDIT_SCHEMA_V1",
    "AUDIT_SCHEMA_V3",
    "DEFAULT_CHECKPOINT_EVERY",
    "GENESIS_HASH",
    "KEYPOINTS_BOUND_FROM",
    "KEYPOINT_SCHEME",
    "LINKED",
    "PERCEPTUAL_SCHEME",
    "ROW_ASSET",
    "ROW_FILE",
    "ROW_KEYPOINTS",
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
