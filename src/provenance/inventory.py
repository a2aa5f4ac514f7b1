"""The inventory: an embedded SQLite store of every signed synthetic asset.

What it owns (DESIGN.md decisions 5, 8, 10): which assets we signed, with which
model and key, every file signed for them, how renditions descend from their
originals, and the hash-chained audit log (:mod:`provenance.audit`) in the same
database. ``verify`` asks it whether a file without provenance is a known asset
whose metadata was stripped (:meth:`Inventory.find_by_essence`).

It never reads or writes image files, and nothing it logs is free text: the
audit log is append-only and could not honour an erasure request.

Where it lives: ``$PROVENANCE_INVENTORY`` if set, else
``<cwd>/.provenance/inventory.sqlite`` (:meth:`Inventory.default_path`). SQLite
keeps ``-wal`` and ``-shm`` files next to it while it is open; copy the database
only when no process has it open (or with SQLite's backup API).

Data model (schema version 3)::

    signers  (signer_id PK, subject UNIQUE)          one row per certificate subject
    assets   (asset_pk PK, asset_id UNIQUE,          one row per distinct image essence
              essence_sha256 UNIQUE,                 (asset ids derive from it)
              parent_pk -> assets NULL,              the original a rendition comes from
              digital_source_type, generator, model, model_version, created_at,
              record_json,                           canonical JSON of the first record
              signer_id -> signers, first_signed_at)
    files    (file_pk PK, sha256 UNIQUE,             one row per signed output file
              asset_pk -> assets,                    (re-signs add files to an asset)
              input_sha256, parent_sha256 NULL,      the bytes signed, and the parent file
              path, source_path, bytes_added, active_manifest, signed_at,
              signer_id -> signers, record_sha256,
              record_json NULL)                      only when it differs from the asset's
    perceptual_hashes (hash_pk PK,                   version 2: perceptual hashes,
              asset_pk -> assets, scheme, variant,   several rows per asset (flips,
              words)                                 crops...), uint64 little-endian
    perceptual_descriptors (asset_pk, scheme PK,     the confirmation descriptor
              descriptor)
    audit, audit_checkpoints, audit_meta             see provenance.audit; version 3:
                                                     every row above is bound to the
                                                     audit entry that recorded it by its
                                                     canonical hash (_reconcile checks)
    keypoint_features (keypoint_pk PK,               version 4: local features (ORB
              asset_pk -> assets, scheme, features)  keypoints) for partial copies

* An **asset** is one image essence (coded image data without metadata).
  Re-signing the same image adds a *file* to its asset. A **rendition** (a
  resize, a crop, a re-encode: another essence) is an asset of its own whose
  ``parent_pk`` points at the asset it was made from, so lineage is a tree.
* The parent is found, in order, by the asset id the record names, by the
  parent's file SHA-256 (signed output, then signing input), then by its essence
  hash. A rendition recorded before its original is linked when the original
  arrives. Only the first parent is linked; the record keeps all of them.
* Hashes are stored as 32-byte BLOBs (half the size of hex in the table and
  in each of its indexes); the API speaks lowercase hex.
* Indexes: files by sha256 (unique), input_sha256, parent_sha256 and asset;
  assets by asset_id and essence (unique) and parent.
* Perceptual search (:meth:`Inventory.find_perceptual`) goes through a
  :class:`~provenance.index.HammingIndex` of every row of a scheme, kept in
  memory per :class:`Inventory` and cached beside the database as
  ``<name>.<scheme>.hidx`` once it has :data:`INDEX_CACHE_MIN_ROWS` rows, so a
  new process maps it instead of reading every row again. The cache holds only
  hashes: a stale or foreign cache is rebuilt, and every candidate's distance
  is checked again against the rows in the database.

Concurrency and durability: WAL mode (many readers, one writer at a time);
every write is one ``BEGIN IMMEDIATE`` transaction retried with back-off while
another process holds the lock, up to ``busy_timeout_s``; an interrupted write
leaves nothing behind. Open one :class:`Inventory` per thread or process.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import json
import math
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar

import numpy as np

from provenance import _sqlite
from provenance._sqlite import Database
from provenance.atomic import PRIVATE_FILE_MODE, write_atomic
from provenance.audit import (
    AUDIT_SCHEMA_V1,
    AUDIT_SCHEMA_V3,
    DEFAULT_CHECKPOINT_EVERY,
    LINKED,
    PERCEPTUAL_SCHEME,
    ROW_ASSET,
    ROW_FILE,
    ROW_PARENT,
    ROW_PERCEPTUAL,
    AuditEntry,
    AuditEvent,
    AuditLog,
    AuditProblem,
    Checkpoint,
    FactBindings,
    ProblemKind,
    Witness,
    row_hash,
    witness_from_env,
)
from provenance.cells import csv_cell
from provenance.errors import (
    InventoryError,
    OutputError,
    ProvenanceError,
    RecordError,
    SchemaVersionError,
)
from provenance.hamming import hamming_bytes
from provenance.index import HammingIndex
from provenance.keypoints import SCHEME as KEYPOINT_SCHEME
from provenance.keypoints import KeypointIndex, LocalFeatures
from provenance.keys import SigningKey
from provenance.phash import ReferenceHashes
from provenance.record import DigitalSourceType, ProvenanceRecord, format_time
from provenance.types import SignResult, Verdict

__all__ = [
    "ENV_VAR",
    "INDEX_REFRESH_ENV_VAR",
    "SCHEMA_VERSION",
    "AssetEntry",
    "FileEntry",
    "Inventory",
    "InventoryStats",
    "PerceptualMatch",
]

_T = TypeVar("_T")

ENV_VAR = "PROVENANCE_INVENTORY"
"""Environment variable naming the inventory file."""

# PRAGMA application_id marks the file as ours ("PROV"), so we never migrate
# somebody else's SQLite database.
APPLICATION_ID = 0x50524F56

# Deeper lineage than this is a loop (only a hand-edited database has one).
MAX_LINEAGE_DEPTH = 256

_EXPORT_FORMAT = "provenance.inventory.export"
_EXPORT_VERSION = 1
_PAGE = 500  # rows per page and ids per IN (...) list (SQLite's old limit is 999)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SYNTHETIC_CODES = tuple(t.value for t in DigitalSourceType if t.is_synthetic)
_SCHEME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

# Perceptual rows read from the database per step when the index is built.
_ROWS_PER_READ = 1 << 16

INDEX_CACHE_MIN_ROWS = 50_000
"""Perceptual rows of a scheme from which the Hamming index is cached on disk."""

# The clock of the index refresh interval (a module attribute so tests can move it).
_monotonic = time.monotonic

DEFAULT_INDEX_REFRESH_S = 0.0
"""Default of ``Inventory(index_refresh_s=)``: look for new perceptual rows on every lookup."""

INDEX_REFRESH_ENV_VAR = "PROVENANCE_INDEX_REFRESH_S"
"""Environment variable read when ``Inventory(index_refresh_s=None)`` (the default)."""

_INVENTORY_SCHEMA_V1: tuple[str, ...] = (
    """CREATE TABLE signers (
        signer_id INTEGER PRIMARY KEY,
        subject   TEXT NOT NULL UNIQUE
    )""",
    """CREATE TABLE assets (
        asset_pk            INTEGER PRIMARY KEY,
        asset_id            TEXT NOT NULL UNIQUE,
        essence_sha256      BLOB NOT NULL UNIQUE CHECK (length(essence_sha256) = 32),
        parent_pk           INTEGER REFERENCES assets(asset_pk),
        digital_source_type TEXT NOT NULL,
        generator           TEXT NOT NULL,
        model               TEXT NOT NULL,
        model_version       TEXT NOT NULL,
        created_at          TEXT NOT NULL,
        record_json         TEXT NOT NULL,
        signer_id           INTEGER NOT NULL REFERENCES signers(signer_id),
        first_signed_at     TEXT NOT NULL
    )""",
    "CREATE INDEX assets_by_parent ON assets(parent_pk) WHERE parent_pk IS NOT NULL",
    """CREATE TABLE files (
        file_pk         INTEGER PRIMARY KEY,
        sha256          BLOB NOT NULL UNIQUE CHECK (length(sha256) = 32),
        asset_pk        INTEGER NOT NULL REFERENCES assets(asset_pk),
        input_sha256    BLOB NOT NULL,
        parent_sha256   BLOB,
        path            TEXT,
        source_path     TEXT,
        bytes_added     INTEGER NOT NULL,
        active_manifest TEXT,
        signed_at       TEXT NOT NULL,
        signer_id       INTEGER NOT NULL REFERENCES signers(signer_id),
        record_sha256   BLOB NOT NULL,
        record_json     TEXT
    )""",
    "CREATE INDEX files_by_asset ON files(asset_pk)",
    "CREATE INDEX files_by_input ON files(input_sha256)",
    "CREATE INDEX files_by_parent ON files(parent_sha256) WHERE parent_sha256 IS NOT NULL",
)

# Version 2: perceptual hashes of each asset (several rows per asset and scheme:
# the variants an original stores) and the confirmation descriptor per asset and
# scheme. Words are little-endian uint64, concatenated. The index on
# (scheme, hash_pk) serves "rows of this scheme added after pk X" (the index
# cache's refresh) and MAX(hash_pk) in O(log n).
_INVENTORY_SCHEMA_V2: tuple[str, ...] = (
    """CREATE TABLE perceptual_hashes (
        hash_pk  INTEGER PRIMARY KEY,
        asset_pk INTEGER NOT NULL REFERENCES assets(asset_pk),
        scheme   TEXT NOT NULL,
        variant  TEXT NOT NULL,
        words    BLOB NOT NULL CHECK (length(words) > 0 AND length(words) % 8 = 0),
        UNIQUE (asset_pk, scheme, variant)
    )""",
    "CREATE INDEX perceptual_by_scheme ON perceptual_hashes(scheme, hash_pk)",
    """CREATE TABLE perceptual_descriptors (
        asset_pk   INTEGER NOT NULL REFERENCES assets(asset_pk),
        scheme     TEXT NOT NULL,
        descriptor BLOB NOT NULL,
        PRIMARY KEY (asset_pk, scheme)
    ) WITHOUT ROWID""",
)

# Version 3 (audit workstream, DESIGN.md decision 17): every fact row is bound to
# the audit chain by its canonical hash. Rows stored before this step are not
# (their entries predate binding): audit_meta keeps the first row key that is.
_INVENTORY_SCHEMA_V3: tuple[str, ...] = (
    *AUDIT_SCHEMA_V3,
    "INSERT INTO audit_meta (name, value) "
    "SELECT 'bound_from_asset_pk', COALESCE(MAX(asset_pk), 0) + 1 FROM assets",
    "INSERT INTO audit_meta (name, value) "
    "SELECT 'bound_from_file_pk', COALESCE(MAX(file_pk), 0) + 1 FROM files",
    "INSERT INTO audit_meta (name, value) "
    "SELECT 'bound_from_hash_pk', COALESCE(MAX(hash_pk), 0) + 1 FROM perceptual_hashes",
)

# Version 4 (issue 21: partial-copy search): each asset's local
# features (provenance.keypoints: ORB keypoints and descriptors, about 9 KB), one
# row per asset and scheme. keypoint_pk orders rows for the in-memory index's
# incremental refresh ("rows added after pk X").
_INVENTORY_SCHEMA_V4: tuple[str, ...] = (
    """CREATE TABLE keypoint_features (
        keypoint_pk INTEGER PRIMARY KEY,
        asset_pk    INTEGER NOT NULL REFERENCES assets(asset_pk),
        scheme      TEXT NOT NULL,
        features    BLOB NOT NULL,
        UNIQUE (asset_pk, scheme)
    )""",
    "CREATE INDEX keypoints_by_scheme ON keypoint_features(scheme, keypoint_pk)",
)

# _MIGRATIONS[n] takes the schema from version n to n + 1, in one transaction.
# A new version appends a tuple here; nothing else changes.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    _INVENTORY_SCHEMA_V1 + AUDIT_SCHEMA_V1,
    _INVENTORY_SCHEMA_V2,
    _INVENTORY_SCHEMA_V3,  # audit: facts bound to the chain, pinned checkpoints
    _INVENTORY_SCHEMA_V4,  # issue 21: keypoint_features
)

SCHEMA_VERSION = len(_MIGRATIONS)
"""The newest inventory schema this code reads and writes."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One signed file of an asset.

    Attributes:
        sha256_hex: SHA-256 of the signed file.
        asset_id: The asset it belongs to.
        path: Where it was written, as given to ``sign``.
        source_path: The input it was signed from, if recorded.
        input_sha256_hex: SHA-256 of that input.
        parent_sha256_hex: SHA-256 of the parent file, for renditions.
        bytes_added: Signed size minus input size.
        active_manifest: Label of the C2PA manifest written.
        signed_at: When it was signed, RFC 3339 UTC.
        signer: The signing certificate's subject.
        record_sha256_hex: SHA-256 of the canonical record signed into it.
        record: That record when it differs from the asset's (a re-sign with
            corrected metadata); None when it is the same.
    """

    sha256_hex: str
    asset_id: str
    path: str | None
    source_path: str | None
    input_sha256_hex: str
    parent_sha256_hex: str | None
    bytes_added: int
    active_manifest: str | None
    signed_at: str
    signer: str
    record_sha256_hex: str
    record: ProvenanceRecord | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "sha256": self.sha256_hex,
            "asset_id": self.asset_id,
            "path": self.path,
            "source_path": self.source_path,
            "input_sha256": self.input_sha256_hex,
            "parent_sha256": self.parent_sha256_hex,
            "bytes_added": self.bytes_added,
            "active_manifest": self.active_manifest,
            "signed_at": self.signed_at,
            "signer": self.signer,
            "record_sha256": self.record_sha256_hex,
            "record": None if self.record is None else self.record.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class AssetEntry:
    """One asset (an image essence) and every file signed for it.

    Attributes:
        asset_id: The asset id (derived from the essence hash by ``sign``).
        essence_sha256_hex: Essence hash: coded image data only.
        record: The provenance record it was first signed with.
        parent_asset_id: The asset this rendition was made from, when recorded.
        signer: Subject of the certificate that first signed it.
        first_signed_at: When it was first signed, RFC 3339 UTC.
        files: Its signed files, oldest first.
    """

    asset_id: str
    essence_sha256_hex: str
    record: ProvenanceRecord
    parent_asset_id: str | None
    signer: str
    first_signed_at: str
    files: tuple[FileEntry, ...] = ()

    @property
    def is_synthetic(self) -> bool:
        """Whether the record declares the image AI-made."""
        return self.record.is_synthetic

    @property
    def is_rendition(self) -> bool:
        """Whether the record names a parent (linked or not)."""
        return bool(self.record.parents) or any(f.parent_sha256_hex for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form, as in exports."""
        record = self.record
        return {
            "asset_id": self.asset_id,
            "essence_sha256": self.essence_sha256_hex,
            "is_synthetic": record.is_synthetic,
            "digital_source_type": record.digital_source_type.value,
            "digital_source_type_uri": record.digital_source_type.uri,
            "generator": record.generator,
            "model": record.model,
            "model_version": record.model_version,
            "created_at": format_time(record.created_at),
            "parent_asset_id": self.parent_asset_id,
            "signer": self.signer,
            "first_signed_at": self.first_signed_at,
            "record": record.to_dict(),
            "files": [f.to_dict() for f in self.files],
        }


@dataclass(frozen=True, slots=True)
class InventoryStats:
    """Counts over the inventory.

    Attributes:
        assets: Distinct assets (essences).
        files: Signed files.
        renditions: Assets signed with a parent.
        renditions_without_parent: Renditions whose parent is not in the inventory.
        synthetic: Assets whose digital source type declares AI generation.
        by_model: Assets per model, then per model version.
        by_digital_source_type: Assets per IPTC digital source type code.
        audit_entries: The last audit seq.
        checkpoints: Stored audit checkpoints.
        db_bytes: Size of the database file (pages in use plus free pages).
        schema_version: The schema version of the database.
    """

    assets: int
    files: int
    renditions: int
    renditions_without_parent: int
    synthetic: int
    by_model: Mapping[str, Mapping[str, int]] = field(default_factory=lambda: MappingProxyType({}))
    by_digital_source_type: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    audit_entries: int = 0
    checkpoints: int = 0
    db_bytes: int = 0
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "assets": self.assets,
            "files": self.files,
            "renditions": self.renditions,
            "renditions_without_parent": self.renditions_without_parent,
            "synthetic": self.synthetic,
            "by_model": {m: dict(v) for m, v in self.by_model.items()},
            "by_digital_source_type": dict(self.by_digital_source_type),
            "audit_entries": self.audit_entries,
            "checkpoints": self.checkpoints,
            "db_bytes": self.db_bytes,
            "schema_version": self.schema_version,
        }


@dataclass(frozen=True, slots=True)
class PerceptualMatch:
    """An inventory asset whose stored perceptual hash is near a query's.

    Attributes:
        asset: The asset.
        distance: Bits between the query and the nearest of its stored rows.
        variant: The name of that row (e.g. ``"full:flip_h"``, ``"frame-tl90:identity"``).
        descriptor: The asset's confirmation descriptor for the scheme (empty
            when none was stored).
        scheme: The perceptual hash scheme.
    """

    asset: AssetEntry
    distance: int
    variant: str
    descriptor: bytes
    scheme: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (without the descriptor)."""
        return {
            "asset_id": self.asset.asset_id,
            "distance": self.distance,
            "variant": self.variant,
            "scheme": self.scheme,
        }


@dataclass(frozen=True, slots=True)
class _Pending:
    """A SignResult checked and converted for storage."""

    result: SignResult
    signer: str
    signed_at: str
    now: datetime
    source_path: str | None
    sha256: bytes
    essence: bytes
    input_sha256: bytes
    parent_sha256: bytes | None
    record_json: str
    record_sha256: bytes


class Inventory:
    """The inventory database; a context manager.

    Args:
        path: The SQLite file (see :meth:`default_path`).
        create: Create the file (and its folder, one level) when missing.
        busy_timeout_s: How long a write waits for another writer, in total.
        read_only: Open with SQLite's ``mode=ro``: every write fails with
            :class:`InventoryError`, whoever runs the process (root included).
        checkpoint_key: Sign an audit checkpoint every ``checkpoint_every``
            entries, and exports, with this key.
        checkpoint_every: Audit entries between automatic checkpoints.
        durable: ``synchronous=FULL`` (the default): each commit is fsynced
            before it returns, so a power cut cannot lose a recorded signing or
            make an exported checkpoint look truncated. Measured here: 275 us
            per single-row commit against 31 us with ``NORMAL``, about 5% of
            one ``sign`` and nothing for batches (one fsync per batch). False
            selects ``NORMAL``: still atomic and never corrupt, but the last
            commits before a power cut may be lost; for bulk loads, and for an
            import whose own files are not fsynced either. ``record_signing``,
            ``record_many`` and ``add_perceptual`` take ``durable=`` to choose
            per call site.
        witness: Where each audit checkpoint is also written, outside the
            database (:class:`provenance.audit.FileWitness`); default
            ``$PROVENANCE_AUDIT_WITNESS`` when set.
        index_refresh_s: Look for perceptual rows other processes added at most
            once per this many seconds (0: on every lookup); see
            :meth:`perceptual_index`. A long-running verifier sets a few seconds:
            that bounds how late it finds a newly signed original. ``None`` (the
            default) reads ``$PROVENANCE_INDEX_REFRESH_S``, else 0.

    Raises:
        InventoryError: The file is missing (``create=False``), is not an SQLite
            database, is another application's database, cannot be opened, or
            is locked past the timeout.
        SchemaVersionError: The database was written by a newer provenance; it
            is left untouched.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        busy_timeout_s: float = 30.0,
        read_only: bool = False,
        checkpoint_key: SigningKey | None = None,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        durable: bool = True,
        witness: Witness | None = None,
        index_refresh_s: float | None = None,
    ) -> None:
        if checkpoint_every < 1:
            raise InventoryError("checkpoint_every must be at least 1", path=path)
        index_refresh_s = _index_refresh_s(index_refresh_s, path)
        self._path = Path(path)
        self._read_only = read_only
        self._durable = durable
        self._db = _open(
            self._path,
            create=create and not read_only,
            read_only=read_only,
            busy_timeout_s=busy_timeout_s,
            durable=durable,
        )
        self._audit = AuditLog(
            self._db,
            checkpoint_key=checkpoint_key,
            checkpoint_every=checkpoint_every,
            witness=witness if witness is not None else witness_from_env(),
            reconcile=_reconcile,
        )
        # scheme -> (index over every perceptual row of it, ids = hash_pk)
        self._perceptual: dict[str, HammingIndex] = {}
        # Bounded staleness of the in-memory indexes: a scheme's perceptual index
        # (keyed by the scheme) and its keypoint index ("keypoints:<scheme>") ->
        # (monotonic time of the last look for new rows, total_changes then).
        self._index_refresh_s = float(index_refresh_s)
        self._index_checked: dict[str, tuple[float, int]] = {}
        # scheme -> (keypoint index over every row of it, keys = keypoint_pk; last pk)
        self._keypoints: dict[str, tuple[KeypointIndex, int]] = {}

    @staticmethod
    def default_path(cwd: Path | None = None) -> Path:
        """``$PROVENANCE_INVENTORY`` if set, else ``<cwd>/.provenance/inventory.sqlite``.

        Args:
            cwd: The folder to use instead of the current directory.
        """
        configured = os.environ.get(ENV_VAR, "").strip()
        if configured:
            return Path(configured).expanduser()
        return (cwd if cwd is not None else Path.cwd()) / ".provenance" / "inventory.sqlite"

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def audit(self) -> AuditLog:
        """The audit log stored in this database."""
        return self._audit

    def close(self) -> None:
        """Close the database (idempotent); pending work is rolled back."""
        self._db.close()

    def __enter__(self) -> Inventory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._db.closed else ("read-only" if self._read_only else "open")
        return f"Inventory({os.fspath(self._path)!r}, {state})"

    # --- writes ---------------------------------------------------------------

    def record_signing(
        self,
        result: SignResult,
        *,
        signer: str,
        now: datetime | None = None,
        source_path: str | None = None,
        durable: bool | None = None,
    ) -> AssetEntry:
        """Record one signed file: its asset (if new), the file and an audit entry.

        One transaction: either all three are stored or none. Recording the same
        file (same SHA-256) again changes nothing and returns the entry.

        Args:
            result: What :func:`provenance.sign` returned.
            signer: The signing certificate's subject (``key.subject``).
            now: The signing time (the ``now`` given to ``sign``; default: now, UTC).
            source_path: The input file, if it should be kept.
            durable: Fsync this commit (True) or not (False); None follows the
                ``durable`` the inventory was opened with. See :class:`Inventory`.

        Returns:
            The asset with all its files.

        Raises:
            InventoryError: A hash is malformed, the result contradicts what is
                stored (same asset id with another essence, or the reverse), or
                the database cannot be written.
        """
        pending = _pending(result, signer=signer, now=now or _utcnow(), source_path=source_path)
        return self._write(lambda conn: self._record(conn, pending), durable)

    def record_many(
        self,
        results: Iterable[SignResult],
        *,
        signer: str,
        now: datetime | None = None,
        source_paths: Iterable[str | None] | None = None,
        perceptual: Iterable[ReferenceHashes | None] | None = None,
        keypoints: Iterable[LocalFeatures | None] | None = None,
        durable: bool | None = None,
    ) -> list[AssetEntry]:
        """Record many signed files in one transaction: all of them, or none.

        Every result is checked before anything is written. One commit (and one
        fsync) for the whole batch: see ``benchmarks/inventory.py``.

        Args:
            results: What :func:`provenance.sign` returned, in order.
            signer: The signing certificate's subject.
            now: The signing time (default: now, UTC).
            source_paths: The input files, aligned with ``results``.
            perceptual: Each result's perceptual reference hashes (or None),
                aligned with ``results``: stored as :meth:`add_perceptual`
                does, in the same transaction, so a file is never recorded
                without the hashes that let ``verify`` recognise its copies.
            keypoints: Each result's local features for the partial-copy search
                (:func:`provenance.keypoints.reference_features`, or None),
                aligned with ``results``, stored as :meth:`add_keypoints` does,
                in the same transaction.
            durable: Fsync this commit or not; None follows the inventory's
                ``durable`` (see :class:`Inventory`).

        Returns:
            The asset entries, in the order of ``results``.

        Raises:
            InventoryError: As :meth:`record_signing`, for any result; nothing
                of the batch is stored.
        """
        items = list(results)
        paths: list[str | None] = (
            [None] * len(items) if source_paths is None else list(source_paths)
        )
        if len(paths) != len(items):
            raise InventoryError("source_paths must have one entry per result", path=self._path)
        hashes = [None] * len(items) if perceptual is None else list(perceptual)
        if len(hashes) != len(items):
            raise InventoryError("perceptual must have one entry per result", path=self._path)
        moment = now or _utcnow()
        # Results of one import share their record and time: serialise them once.
        texts: dict[int, tuple[str, bytes]] = {}
        signed_at = format_time(moment) if moment.tzinfo is not None else None
        pending = [
            _pending(r, signer=signer, now=moment, source_path=p, texts=texts, signed_at=signed_at)
            for r, p in zip(items, paths, strict=True)
        ]
        rows = [None if h is None else _perceptual_insert(h, None, self._path) for h in hashes]
        local = [None] * len(items) if keypoints is None else list(keypoints)
        if len(local) != len(items):
            raise InventoryError("keypoints must have one entry per result", path=self._path)
        scheme = _scheme(KEYPOINT_SCHEME, self._path)
        blobs = [None if f is None else f.to_bytes() for f in local]

        def work(conn: sqlite3.Connection) -> list[AssetEntry]:
            entries = []
            for p, insert, blob in zip(pending, rows, blobs, strict=True):
                entries.append(self._record(conn, p, perceptual=insert))
                if blob is not None:
                    self._insert_keypoints(conn, p.result.asset_id, scheme, blob)
            return entries

        return self._write(work, durable)

    def _write(self, work: Callable[[sqlite3.Connection], _T], durable: bool | None) -> _T:
        """One audited write transaction, fsynced or not as ``durable`` says (None: as opened).

        ``PRAGMA synchronous`` applies to the commits that follow it on this
        connection, so it is switched for this transaction only and set back.
        """
        if durable is None or durable == self._durable:
            return self._audit.write(work)
        conn = self._db.connection
        if conn.in_transaction:
            return self._audit.write(work)  # joins the caller's transaction and its setting
        conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        try:
            return self._audit.write(work)
        finally:
            conn.execute(f"PRAGMA synchronous = {'FULL' if self._durable else 'NORMAL'}")

    def record_verification(self, verdict: Verdict, *, now: datetime) -> AuditEntry:
        """Log a verdict in the audit log (hashes and status only; no path).

        Raises:
            InventoryError: The database cannot be written.
        """
        payload = {
            "status": verdict.status.value,
            "sha256": verdict.sha256_hex,
            "essence_sha256": verdict.essence_sha256_hex,
            "active_manifest": verdict.active_manifest,
            "failure_codes": list(verdict.failure_codes),
        }
        return self._audit.append(
            AuditEvent.VERIFIED, asset_id=verdict.asset_id, payload=payload, now=now
        )

    def _record(
        self,
        conn: sqlite3.Connection,
        p: _Pending,
        *,
        perceptual: _PerceptualInsert | None = None,
    ) -> AssetEntry:
        result = p.result
        signer_id = _signer_id(conn, p.signer)
        row = conn.execute(
            "SELECT asset_pk, essence_sha256, record_json FROM assets WHERE asset_id = ?",
            (result.asset_id,),
        ).fetchone()
        parent_id: str | None = None
        if row is not None:
            asset_pk, essence, asset_record_json = int(row[0]), bytes(row[1]), str(row[2])
            if essence != p.essence:
                raise InventoryError(
                    f"asset {result.asset_id} is recorded with essence {essence.hex()}, not "
                    f"{result.essence_sha256_hex}",
                    path=self._path,
                )
        else:
            asset_pk, parent_id = self._insert_asset(conn, p, signer_id)
            asset_record_json = p.record_json
        file_row = (
            p.sha256,
            asset_pk,
            p.input_sha256,
            p.parent_sha256,
            result.path,
            p.source_path,
            result.bytes_added,
            result.active_manifest,
            p.signed_at,
            signer_id,
            p.record_sha256,
            None if p.record_json == asset_record_json else p.record_json,
        )
        try:
            conn.execute(
                "INSERT INTO files (sha256, asset_pk, input_sha256, parent_sha256, path, "
                "source_path, bytes_added, active_manifest, signed_at, signer_id, "
                "record_sha256, record_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                file_row,
            )
        except sqlite3.IntegrityError:
            # The same file again: idempotent when it is the same asset's.
            existing = conn.execute(
                "SELECT asset_pk FROM files WHERE sha256 = ?", (p.sha256,)
            ).fetchone()
            if existing is None or int(existing[0]) != asset_pk:
                raise InventoryError(
                    f"file {result.sha256_hex} is already recorded for another asset",
                    path=self._path,
                ) from None
            if perceptual is not None:
                self._bind_perceptual(conn, perceptual, result.asset_id, p.now)
            return _load(conn, [asset_pk])[0]
        # Renditions recorded before this file (their parent) get their link now.
        before = conn.total_changes
        conn.execute(
            "UPDATE assets SET parent_pk = ? WHERE parent_pk IS NULL AND asset_pk != ? AND "
            "asset_pk IN (SELECT asset_pk FROM files WHERE parent_sha256 IN (?, ?))",
            (asset_pk, asset_pk, p.sha256, p.input_sha256),
        )
        linked = []
        if conn.total_changes != before:
            # Rare (a rendition recorded before its original). RETURNING would say which,
            # but costs a few hundred microseconds on every signing; this query only here.
            linked = conn.execute(
                "SELECT asset_id FROM assets WHERE parent_pk = ?", (asset_pk,)
            ).fetchall()
        if row is None and result.record.created_at.microsecond == 0:
            # A new asset: everything is at hand, and the record (whole seconds)
            # equals what reading it back would give.
            entry = AssetEntry(
                asset_id=result.asset_id,
                essence_sha256_hex=p.essence.hex(),
                record=result.record,
                parent_asset_id=parent_id,
                signer=p.signer,
                first_signed_at=p.signed_at,
                files=(
                    FileEntry(
                        sha256_hex=p.sha256.hex(),
                        asset_id=result.asset_id,
                        path=result.path,
                        source_path=p.source_path,
                        input_sha256_hex=p.input_sha256.hex(),
                        parent_sha256_hex=None
                        if p.parent_sha256 is None
                        else p.parent_sha256.hex(),
                        bytes_added=result.bytes_added,
                        active_manifest=result.active_manifest,
                        signed_at=p.signed_at,
                        signer=p.signer,
                        record_sha256_hex=p.record_sha256.hex(),
                    ),
                ),
            )
        else:
            entry = _load(conn, [asset_pk])[0]
        record = result.record
        payload: dict[str, Any] = {
            "sha256": result.sha256_hex,
            "essence_sha256": result.essence_sha256_hex,
            "input_sha256": result.input_sha256_hex,
            "record_sha256": p.record_sha256.hex(),
            "active_manifest": result.active_manifest,
            "signer": p.signer,
            "model": record.model,
            "model_version": record.model_version,
            "digital_source_type": record.digital_source_type.value,
        }
        if p.parent_sha256 is not None:
            payload["parent_sha256"] = p.parent_sha256.hex()
            payload["parent_asset_id"] = entry.parent_asset_id
        # Bind the rows just written to this entry (DESIGN.md decision 17).
        payload[ROW_FILE] = _file_row_hash(
            (*file_row[:1], result.asset_id, *file_row[2:9], p.signer, *file_row[10:])
        )
        if row is None:
            payload[ROW_ASSET] = _asset_row_hash(
                (
                    result.asset_id,
                    p.essence,
                    record.digital_source_type.value,
                    record.generator,
                    record.model,
                    record.model_version,
                    format_time(record.created_at),
                    p.record_json,
                    p.signer,
                    p.signed_at,
                )
            )
            payload[ROW_PARENT] = parent_id or ""
        if linked:
            payload[LINKED] = ",".join(sorted(str(r[0]) for r in linked))
        if perceptual is not None:
            _, binding = perceptual.run(conn, result.asset_id, self._path)
            if binding is not None:
                payload[PERCEPTUAL_SCHEME] = perceptual.scheme
                payload[ROW_PERCEPTUAL] = binding
        event = AuditEvent.RENDITION_ADDED if record.parents else AuditEvent.SIGNED
        self._audit.append_in(conn, event, asset_id=result.asset_id, payload=payload, now=p.now)
        return entry

    def _bind_perceptual(
        self, conn: sqlite3.Connection, insert: _PerceptualInsert, asset_id: str, now: datetime
    ) -> int:
        """Store perceptual rows for a recorded asset and bind them in their own entry."""
        added, binding = insert.run(conn, asset_id, self._path)
        if binding is not None:
            self._audit.append_in(
                conn,
                AuditEvent.PERCEPTUAL_ADDED,
                asset_id=asset_id,
                payload={PERCEPTUAL_SCHEME: insert.scheme, ROW_PERCEPTUAL: binding},
                now=now,
            )
        return added

    def _insert_asset(
        self, conn: sqlite3.Connection, p: _Pending, signer_id: int
    ) -> tuple[int, str | None]:
        record = p.result.record
        parent = _find_parent(conn, p)
        try:
            cursor = conn.execute(
                "INSERT INTO assets (asset_id, essence_sha256, parent_pk, digital_source_type, "
                "generator, model, model_version, created_at, record_json, signer_id, "
                "first_signed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    p.result.asset_id,
                    p.essence,
                    None if parent is None else parent[0],
                    record.digital_source_type.value,
                    record.generator,
                    record.model,
                    record.model_version,
                    format_time(record.created_at),
                    p.record_json,
                    signer_id,
                    p.signed_at,
                ),
            )
        except sqlite3.IntegrityError:
            # asset_id was looked up first, so the essence is the one taken.
            clash = conn.execute(
                "SELECT asset_id FROM assets WHERE essence_sha256 = ?", (p.essence,)
            ).fetchone()
            raise InventoryError(
                f"essence {p.result.essence_sha256_hex} is already recorded as asset "
                f"{clash[0] if clash else '?'}, not {p.result.asset_id}",
                path=self._path,
            ) from None
        return int(cursor.lastrowid or 0), None if parent is None else parent[1]

    # --- reads ----------------------------------------------------------------

    def get(self, asset_id: str) -> AssetEntry | None:
        """The asset with this id, or None.

        Raises:
            InventoryError: The database cannot be read.
        """
        return self._db.read(
            lambda conn: _first_asset(
                conn, ("SELECT asset_pk FROM assets WHERE asset_id = ?",), asset_id
            )
        )

    def find_by_sha256(self, sha256_hex: str) -> AssetEntry | None:
        """The asset of a signed file, by the file's SHA-256 (or its signing input's).

        Raises:
            InventoryError: Not 64 hex characters, or the database cannot be read.
        """
        digest = _hex_bytes(sha256_hex, "sha256", self._path)

        queries = (
            "SELECT asset_pk FROM files WHERE sha256 = ?",
            "SELECT asset_pk FROM files WHERE input_sha256 = ? LIMIT 1",
        )
        return self._db.read(lambda conn: _first_asset(conn, queries, digest))

    def find_by_essence(self, essence_sha256_hex: str) -> AssetEntry | None:
        """The asset with this essence hash: how a stripped copy is recognised.

        Raises:
            InventoryError: Not 64 hex characters, or the database cannot be read.
        """
        digest = _hex_bytes(essence_sha256_hex, "essence_sha256", self._path)

        return self._db.read(
            lambda conn: _first_asset(
                conn, ("SELECT asset_pk FROM assets WHERE essence_sha256 = ?",), digest
            )
        )

    def ancestors(self, asset_id: str) -> list[AssetEntry]:
        """The parent, grandparent, ... up to the original; [] for an original.

        Safe against loops (which only a hand-edited database can hold): each
        asset appears once, and the walk stops after :data:`MAX_LINEAGE_DEPTH`.

        Raises:
            InventoryError: The database cannot be read.
        """
        sql = """
            WITH RECURSIVE up(pk, depth) AS (
                SELECT parent_pk, 1 FROM assets WHERE asset_id = ? AND parent_pk IS NOT NULL
                UNION
                SELECT a.parent_pk, up.depth + 1 FROM assets AS a JOIN up ON a.asset_pk = up.pk
                WHERE a.parent_pk IS NOT NULL AND up.depth < ?
            )
            SELECT pk FROM up
            WHERE pk != (SELECT asset_pk FROM assets WHERE asset_id = ?)
            GROUP BY pk ORDER BY MIN(depth)
        """
        return self._lineage(sql, (asset_id, MAX_LINEAGE_DEPTH, asset_id))

    def descendants(self, asset_id: str) -> list[AssetEntry]:
        """Every rendition made from this asset, directly or not, nearest first.

        Raises:
            InventoryError: The database cannot be read.
        """
        sql = """
            WITH RECURSIVE down(pk, depth) AS (
                SELECT a.asset_pk, 1 FROM assets AS a JOIN assets AS s
                    ON a.parent_pk = s.asset_pk WHERE s.asset_id = ?
                UNION
                SELECT a.asset_pk, down.depth + 1 FROM assets AS a JOIN down
                    ON a.parent_pk = down.pk WHERE down.depth < ?
            )
            SELECT pk FROM down
            WHERE pk != (SELECT asset_pk FROM assets WHERE asset_id = ?)
            GROUP BY pk ORDER BY MIN(depth), pk
        """
        return self._lineage(sql, (asset_id, MAX_LINEAGE_DEPTH, asset_id))

    def _lineage(self, sql: str, params: tuple[Any, ...]) -> list[AssetEntry]:
        def work(conn: sqlite3.Connection) -> list[AssetEntry]:
            pks = [int(row[0]) for row in conn.execute(sql, params)]
            return _load(conn, pks)

        return self._db.read(work)

    def assets(self, limit: int | None = None, offset: int = 0) -> Iterator[AssetEntry]:
        """Every asset in the order recorded, read page by page.

        Args:
            limit: At most this many.
            offset: Skip this many first.

        Raises:
            InventoryError: The database cannot be read.
        """
        remaining = limit
        after: int | None = None
        while remaining is None or remaining > 0:
            size = _PAGE if remaining is None else min(_PAGE, remaining)
            pks, page = self._db.read(
                functools.partial(_page, after=after, offset=offset, size=size)
            )
            yield from page
            if len(pks) < size:
                return
            if remaining is not None:
                remaining -= len(pks)
            after = pks[-1]

    def stats(self) -> InventoryStats:
        """Counts over the inventory, on one snapshot.

        Raises:
            InventoryError: The database cannot be read.
        """
        return self._db.read(_stats)

    # --- perceptual hashes ----------------------------------------------------

    def add_perceptual(
        self,
        asset_id: str,
        reference: ReferenceHashes,
        *,
        scheme: str | None = None,
        now: datetime | None = None,
        durable: bool | None = None,
    ) -> int:
        """Store an asset's perceptual hashes (every variant row) and descriptor.

        Idempotent: rows already stored for this asset, scheme and variant are
        kept as they are. Rows added are bound to the audit chain by a
        ``perceptual_added`` entry (the hash of every row of the scheme).

        Args:
            asset_id: A recorded asset.
            reference: What :func:`provenance.phash.reference_hashes` returned.
            scheme: The scheme name; default ``reference.scheme``.
            now: The time of the audit entry; default the current time.
            durable: Fsync this commit or not; None follows the inventory's
                ``durable``.

        Returns:
            How many rows were added (0 when all were stored already).

        Raises:
            InventoryError: Unknown asset, a malformed scheme name or hash
                array, or the database cannot be written.
        """
        insert = _perceptual_insert(reference, scheme, self._path)
        moment = now if now is not None else datetime.now(timezone.utc)
        return self._write(
            lambda conn: self._bind_perceptual(conn, insert, asset_id, moment), durable
        )

    def perceptual_index(self, scheme: str) -> HammingIndex:
        """The Hamming index over every stored row of ``scheme``; ids are row keys.

        Built once per :class:`Inventory` (from the cache file when there is
        one) and then refreshed incrementally: the rows added since (``hash_pk``
        above the index's last id) are appended, one indexed query, never a
        rebuild from the database. With ``index_refresh_s`` > 0 that look for
        new rows happens at most once per ``index_refresh_s`` seconds, so rows
        another process wrote are found at most that late; rows written through
        this handle are seen at once.

        From :data:`INDEX_CACHE_MIN_ROWS` rows the index is cached beside the
        database (``<name>.<scheme>.hidx``, memory-mapped on load; not written for
        a read-only inventory). The cache is written when the index was built
        here from the rows and when new rows made it rebuild its bands, not on
        every refresh, so a new process reads at most the rows added since.

        Raises:
            InventoryError: A malformed scheme name, or the database cannot be read.
        """
        name = _scheme(scheme, self._path)
        index = self._perceptual.get(name)
        fresh, now, changes = self._checked_lately(name)
        if index is not None and fresh:
            return index
        latest = self._db.read(
            lambda conn: conn.execute(
                "SELECT MAX(hash_pk) FROM perceptual_hashes WHERE scheme = ?", (name,)
            ).fetchone()[0]
        )
        last = int(latest) if latest is not None else 0
        cache = self._path.with_name(f"{self._path.name}.{name}.hidx")
        if index is None and last and cache.exists():
            index = _load_cache(cache, last)
        if index is not None and len(index) and int(index.ids[-1]) > last:
            index = None  # rows vanished (a restored backup): start again
        have = int(index.ids[-1]) if index is not None and len(index) else 0
        if index is None or have < last:
            pks, words = self._db.read(lambda conn: _perceptual_rows(conn, name, have))
            built = index is None
            if index is None:
                width = words.shape[1] if words.size else 1
                index = HammingIndex(words, pks, words_per_hash=width)
            elif words.size:
                if words.shape[1] != index.words_per_hash:
                    raise InventoryError(
                        f"perceptual hashes of scheme {name} differ in length", path=self._path
                    )
                index.add(words, pks)
            rebuilt = built or (words.size > 0 and index.bands > 0 and index.tail == 0)
            if rebuilt and len(index) >= INDEX_CACHE_MIN_ROWS and not self._read_only:
                # A cache that cannot be written costs a rebuild next time, nothing else.
                with contextlib.suppress(OSError):
                    index.save(cache)
        self._perceptual[name] = index
        self._index_checked[name] = (now, changes)
        return index

    def _checked_lately(self, stamp: str) -> tuple[bool, float, int]:
        """Whether the index ``stamp`` was refreshed within ``index_refresh_s``.

        True only with a refresh interval, no write through this handle since,
        and less than the interval gone. Also returns the time and this
        connection's write count to record when the index is refreshed now.
        """
        now = _monotonic()
        changes = self._db.connection.total_changes if not self._db.closed else -1
        if self._index_refresh_s <= 0:
            return False, now, changes
        checked_at, changes_then = self._index_checked.get(stamp, (-math.inf, -1))
        fresh = changes == changes_then and now - checked_at < self._index_refresh_s
        return fresh, now, changes

    def find_perceptual(
        self,
        words: Any,
        *,
        scheme: str,
        max_distance: int,
        k: int = 5,
    ) -> list[PerceptualMatch]:
        """Assets with a stored row within ``max_distance`` bits of ``words``, nearest first.

        One entry per asset (its nearest row). Distances are checked again
        against the rows in the database, so a stale index cache can hide a
        match but never invent one.

        Args:
            words: ``(W,)`` ``uint64``: the query hash.
            scheme: The scheme it was computed with.
            max_distance: The match threshold, in bits.
            k: At most this many assets.

        Raises:
            InventoryError: The database cannot be read.
        """
        index = self.perceptual_index(scheme)
        query = np.asarray(words, dtype=np.uint64).reshape(-1)
        if len(index) == 0 or query.shape[0] != index.words_per_hash:
            return []
        # Several rows per asset: ask for enough rows to fill k assets.
        hits = index.query(query, k=max(k * 32, 64), max_distance=max_distance)
        if not hits:
            return []
        pks = [h.row_id for h in hits]
        query_bytes = query.astype("<u8").tobytes()

        def work(conn: sqlite3.Connection) -> list[PerceptualMatch]:
            best: dict[int, tuple[int, str, int]] = {}
            for start in range(0, len(pks), _PAGE):
                chunk = pks[start : start + _PAGE]
                marks = ",".join("?" * len(chunk))
                for hash_pk, asset_pk, variant, blob in conn.execute(
                    "SELECT hash_pk, asset_pk, variant, words FROM perceptual_hashes "  # noqa: S608 - placeholders only
                    f"WHERE hash_pk IN ({marks}) AND scheme = ?",
                    (*chunk, scheme),
                ):
                    stored = bytes(blob)
                    if len(stored) != len(query_bytes):
                        continue
                    distance = hamming_bytes(stored, query_bytes)
                    if distance > max_distance:
                        continue
                    key = (distance, int(hash_pk))
                    current = best.get(int(asset_pk))
                    if current is None or key < (current[0], current[2]):
                        best[int(asset_pk)] = (distance, str(variant), int(hash_pk))
            ranked = sorted(best.items(), key=lambda item: (item[1][0], item[1][2]))[:k]
            entries = _load(conn, [pk for pk, _ in ranked])
            out = []
            for entry, (pk, (distance, variant, _)) in zip(entries, ranked, strict=True):
                row = conn.execute(
                    "SELECT descriptor FROM perceptual_descriptors WHERE asset_pk = ? "
                    "AND scheme = ?",
                    (pk, scheme),
                ).fetchone()
                out.append(
                    PerceptualMatch(
                        asset=entry,
                        distance=distance,
                        variant=variant,
                        descriptor=b"" if row is None else bytes(row[0]),
                        scheme=scheme,
                    )
                )
            return out

        return self._db.read(work)

    # --- local features (partial copies) -------------------------------------------

    def add_keypoints(self, asset_id: str, features: LocalFeatures, *, scheme: str) -> bool:
        """Store an asset's local features (:mod:`provenance.keypoints`) for ``scheme``.

        Idempotent: features already stored for this asset and scheme are kept.

        Args:
            asset_id: A recorded asset.
            features: What :func:`provenance.keypoints.reference_features` returned.
            scheme: The scheme name (:data:`provenance.keypoints.SCHEME`).

        Returns:
            Whether a row was added.

        Raises:
            InventoryError: Unknown asset, a malformed scheme name, or the
                database cannot be written.
        """
        name = _scheme(scheme, self._path)
        blob = features.to_bytes()
        return self._db.write(lambda conn: self._insert_keypoints(conn, asset_id, name, blob))

    def _insert_keypoints(
        self, conn: sqlite3.Connection, asset_id: str, scheme: str, blob: bytes
    ) -> bool:
        found = conn.execute(
            "SELECT asset_pk FROM assets WHERE asset_id = ?", (asset_id,)
        ).fetchone()
        if found is None:
            raise InventoryError(f"no asset {asset_id} in the inventory", path=self._path)
        cursor = conn.execute(
            "INSERT OR IGNORE INTO keypoint_features (asset_pk, scheme, features) VALUES (?, ?, ?)",
            (int(found[0]), scheme, blob),
        )
        return cursor.rowcount > 0

    def keypoint_index(self, scheme: str) -> KeypointIndex:
        """The keypoint index over every stored row of ``scheme``; keys are row keys.

        Kept per :class:`Inventory` and refreshed with rows added since (one
        indexed query when nothing changed; with ``index_refresh_s``, at most that
        often, as :meth:`perceptual_index`); rebuilt from every row when it has
        outgrown its inverted lists. Not cached on disk: a new process reads
        every row once (about 10 KB per asset).

        Raises:
            InventoryError: A malformed scheme name, or the database cannot be read.
        """
        name = _scheme(scheme, self._path)
        index: KeypointIndex | None
        index, last = self._keypoints.get(name, (None, 0))
        # The same staleness bound as the perceptual index (index_refresh_s): a
        # verifier sees another process's new assets at most that late, by both.
        stamp = f"keypoints:{name}"
        fresh, now, changes = self._checked_lately(stamp)
        if index is not None and not index.outgrown and fresh:
            return index
        if index is not None and index.outgrown:
            index, last = None, 0  # its lists were sized for a quarter of the rows

        def work(conn: sqlite3.Connection) -> list[tuple[int, bytes]]:
            return [
                (int(pk), bytes(blob))
                for pk, blob in conn.execute(
                    "SELECT keypoint_pk, features FROM keypoint_features "
                    "WHERE scheme = ? AND keypoint_pk > ? ORDER BY keypoint_pk",
                    (name, last),
                )
            ]

        rows = self._db.read(work)
        if index is None:
            index = KeypointIndex()
        for pk, blob in rows:
            with contextlib.suppress(ValueError):  # another version's row: not searched
                index.add(pk, LocalFeatures.from_bytes(blob))
            last = pk
        self._keypoints[name] = (index, last)
        self._index_checked[stamp] = (now, changes)
        return index

    def keypoint_features(self, keys: Sequence[int]) -> list[tuple[AssetEntry, LocalFeatures]]:
        """The assets and stored features of these keypoint row keys, in the same order.

        Rows that vanished or do not parse are left out.

        Raises:
            InventoryError: The database cannot be read.
        """

        def work(conn: sqlite3.Connection) -> list[tuple[AssetEntry, LocalFeatures]]:
            found: list[tuple[int, LocalFeatures]] = []
            for key in keys:
                row = conn.execute(
                    "SELECT asset_pk, features FROM keypoint_features WHERE keypoint_pk = ?",
                    (int(key),),
                ).fetchone()
                if row is None:
                    continue
                with contextlib.suppress(ValueError):
                    found.append((int(row[0]), LocalFeatures.from_bytes(bytes(row[1]))))
            out = []
            for pk, features in found:  # a few candidates: one asset load each
                entry = _load(conn, [pk])
                if entry:
                    out.append((entry[0], features))
            return out

        return self._db.read(work)

    # --- exports --------------------------------------------------------------

    def export_json(
        self,
        path: str | os.PathLike[str],
        *,
        now: datetime,
        key: SigningKey | None = None,
        synthetic_only: bool = False,
    ) -> Checkpoint:
        """Write every asset, its files and lineage to a JSON file, atomically.

        In one transaction: log an ``exported`` audit entry, take a checkpoint of
        the chain at that entry (signed with ``key`` or the inventory's
        ``checkpoint_key``; unsigned without either), read the assets and write
        the file. The checkpoint is embedded in the file: keep the file (or the
        returned checkpoint) and ``audit.verify(against=...)`` later detects a
        truncated or rolled-back log. Other writers wait while it runs.

        Args:
            path: The JSON file to write.
            now: The export time.
            key: The key to sign the checkpoint with.
            synthetic_only: Leave out assets whose record is not AI-generated.

        Returns:
            The checkpoint the export was made from.

        Raises:
            OutputError: The file cannot be written; nothing is logged.
            InventoryError: The database cannot be read or written.
        """
        target = Path(path)

        def work(conn: sqlite3.Connection) -> Checkpoint:
            checkpoint, counts = self._begin_export(conn, "json", synthetic_only, key, now)
            document = {
                "format": _EXPORT_FORMAT,
                "version": _EXPORT_VERSION,
                "exported_at": format_time(now),
                "schema_version": SCHEMA_VERSION,
                "synthetic_only": synthetic_only,
                "counts": counts,
                "audit_checkpoint": checkpoint.to_dict(),
                "assets": [a.to_dict() for a in _iter_all(conn, synthetic_only)],
            }
            text = json.dumps(document, indent=1, ensure_ascii=False)
            _write(target, (text + "\n").encode("utf-8"))
            return checkpoint

        return self._audit.write(work)

    def export_csv(
        self,
        path: str | os.PathLike[str],
        *,
        now: datetime,
        key: SigningKey | None = None,
        synthetic_only: bool = False,
    ) -> Checkpoint:
        """Write one CSV row per signed file, and ``<path>.checkpoint.json`` beside it.

        As :meth:`export_json`; the checkpoint goes to the sidecar. Cells that a
        spreadsheet would run as a formula (starting with ``= + - @``) are
        prefixed with ``'``; the JSON export is the exact one.

        Returns:
            The checkpoint the export was made from.

        Raises:
            OutputError: A file cannot be written; nothing is logged.
            InventoryError: The database cannot be read or written.
        """
        target = Path(path)
        sidecar = target.with_name(target.name + ".checkpoint.json")

        def work(conn: sqlite3.Connection) -> Checkpoint:
            checkpoint, _ = self._begin_export(conn, "csv", synthetic_only, key, now)
            buffer = io.StringIO(newline="")
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(_CSV_COLUMNS)
            for asset in _iter_all(conn, synthetic_only):
                for row in _csv_rows(asset):
                    writer.writerow([csv_cell(v) for v in row])
            _write(target, buffer.getvalue().encode("utf-8"))
            _write(sidecar, (checkpoint.to_json() + "\n").encode("utf-8"))
            return checkpoint

        return self._audit.write(work)

    def _begin_export(
        self,
        conn: sqlite3.Connection,
        fmt: str,
        synthetic_only: bool,
        key: SigningKey | None,
        now: datetime,
    ) -> tuple[Checkpoint, dict[str, int]]:
        where = _synthetic_filter(synthetic_only)
        assets, renditions = conn.execute(
            f"SELECT COUNT(*), COUNT(parent_pk) FROM assets {where}"  # noqa: S608 - constant filter
        ).fetchone()
        files = conn.execute(
            f"SELECT COUNT(*) FROM files WHERE asset_pk IN (SELECT asset_pk FROM assets {where})"  # noqa: S608 - constant filter
        ).fetchone()[0]
        counts = {"assets": int(assets), "files": int(files), "linked_renditions": int(renditions)}
        payload = {"format": fmt, "synthetic_only": synthetic_only, **counts}
        self._audit.append_in(conn, AuditEvent.EXPORTED, payload=payload, now=now)
        signing_key = key if key is not None else self._audit.checkpoint_key
        return self._audit.checkpoint_in(conn, signing_key, now=now), counts


# --- opening ------------------------------------------------------------------------


def _open(
    path: Path, *, create: bool, read_only: bool, busy_timeout_s: float, durable: bool
) -> Database:
    if read_only:
        mode = "ro"
    elif create:
        mode = "rwc"
        _create_file(path)
    else:
        mode = "rw"
    if not path.exists():
        raise InventoryError("no inventory here (pass create=True to make one)", path=path)
    if path.is_dir():
        raise InventoryError("is a folder, not an inventory file", path=path)
    uri = f"{path.resolve().as_uri()}?mode={mode}"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout_s, isolation_level=None)
    except sqlite3.Error as exc:
        raise _sqlite.translate(exc, path) from exc
    db = Database(conn, path, busy_timeout_s)
    try:
        _prepare(db, create=create, read_only=read_only, durable=durable)
    except BaseException:
        db.close()
        raise
    return db


def _create_file(path: Path) -> None:
    """Create an empty file with mode 0600 (records may be sensitive)."""
    try:
        if not path.parent.exists():
            # exist_ok: another process creating the same inventory may win (issue 19).
            path.parent.mkdir(mode=0o700, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise InventoryError(f"cannot create the inventory: {exc.strerror}", path=path) from exc
    os.close(fd)


def _prepare(db: Database, *, create: bool, read_only: bool, durable: bool) -> None:
    conn = db.connection
    path = db.path
    try:
        # 1. Read the header before writing anything: a newer or foreign database
        #    must be left exactly as it is. One statement, so one snapshot: read
        #    as three, another process creating the same inventory could commit
        #    its schema in between (tables but no application id yet, issue 19).
        version, app_id, tables = db.retry_busy(_read_header)
    except sqlite3.Error as exc:
        raise _sqlite.translate(exc, path, timeout_s=db.busy_timeout_s) from exc
    _check_header(path, version, app_id, tables)
    fresh = version == 0 and tables == 0
    if read_only:
        if fresh:
            raise InventoryError("is an empty database, not a provenance inventory", path=path)
        if version < SCHEMA_VERSION:
            raise SchemaVersionError(
                f"inventory schema version {version} must be upgraded to {SCHEMA_VERSION}; "
                "open it once without read_only",
                found=version,
                supported=SCHEMA_VERSION,
                path=path,
            )
        return
    if fresh and not create:
        raise InventoryError("is an empty database, not a provenance inventory", path=path)
    try:
        # 2. WAL: readers never block the writer nor each other. Persistent in the file.
        if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            db.retry_busy(lambda c: c.execute("PRAGMA journal_mode = WAL").fetchone())
        # 3. Per-connection settings (see Inventory: durable).
        conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys = ON")
        # Each write touches a few pages of every index at random (hashes and UUIDs
        # are random keys); 32 MiB of page cache instead of 2 MiB keeps the upper
        # index levels of a million-asset inventory in memory.
        conn.execute("PRAGMA cache_size = -32768")
    except sqlite3.Error as exc:
        raise _sqlite.translate(exc, path, timeout_s=db.busy_timeout_s) from exc
    # 4. Migrations, under the write lock; another process may have run them first.
    if version < SCHEMA_VERSION:
        db.write(lambda c: _migrate(c, path))


def _check_header(path: Path, version: int, app_id: int, tables: int) -> None:
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"inventory schema version {version} is newer than this provenance supports "
            f"({SCHEMA_VERSION}); upgrade provenance. The database was not modified",
            found=version,
            supported=SCHEMA_VERSION,
            path=path,
        )
    if app_id != APPLICATION_ID and (tables > 0 or version > 0 or app_id != 0):
        raise InventoryError(
            "is an SQLite database but not a provenance inventory; it was not modified",
            path=path,
        )


_HEADER_QUERY = (
    "SELECT (SELECT user_version FROM pragma_user_version),"
    " (SELECT application_id FROM pragma_application_id),"
    " (SELECT COUNT(*) FROM sqlite_master)"
)


def _read_header(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """Schema version, application id and table count, from one consistent read."""
    version, app_id, tables = conn.execute(_HEADER_QUERY).fetchone()
    return int(version), int(app_id), int(tables)


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    # Re-read under the write lock (BEGIN IMMEDIATE): another process may have
    # created or migrated the inventory since our first look.
    version, app_id, tables = _read_header(conn)
    _check_header(path, version, app_id, tables)
    for step in range(version, SCHEMA_VERSION):
        for statement in _MIGRATIONS[step]:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {step + 1:d}")
    if version == 0:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID:d}")


# --- rows <-> values -----------------------------------------------------------------


def _pending(
    result: SignResult,
    *,
    signer: str,
    now: datetime,
    source_path: str | None,
    texts: dict[int, tuple[str, bytes]] | None = None,
    signed_at: str | None = None,
) -> _Pending:
    """Check and convert one result; ``texts`` caches record JSON by record object."""
    if now.tzinfo is None:
        raise InventoryError("now must be a timezone-aware datetime")
    if not isinstance(signer, str) or not signer.strip():
        raise InventoryError("signer must be the certificate subject (key.subject)")
    record = result.record
    parent_hex = result.parent_sha256_hex or (
        record.parents[0].sha256_hex if record.parents else None
    )
    known = texts.get(id(record)) if texts is not None else None
    if known is None:
        record_json = record.to_canonical_json()
        known = (record_json.decode("utf-8"), hashlib.sha256(record_json).digest())
        if texts is not None:
            texts[id(record)] = known
    return _Pending(
        result=result,
        signer=signer,
        signed_at=signed_at or format_time(now),
        now=now,
        source_path=source_path,
        sha256=_hex_bytes(result.sha256_hex, "sha256", None),
        essence=_hex_bytes(result.essence_sha256_hex, "essence_sha256", None),
        input_sha256=_hex_bytes(result.input_sha256_hex, "input_sha256", None),
        parent_sha256=(
            _hex_bytes(parent_hex, "parent_sha256", None) if parent_hex is not None else None
        ),
        record_json=known[0],
        record_sha256=known[1],
    )


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _hex_bytes(value: str, name: str, path: Path | None) -> bytes:
    text = value.lower() if isinstance(value, str) else ""
    if not _HEX64.match(text):
        raise InventoryError(f"{name} must be 64 hex characters", path=path)
    return bytes.fromhex(text)


def _signer_id(conn: sqlite3.Connection, subject: str) -> int:
    row = conn.execute("SELECT signer_id FROM signers WHERE subject = ?", (subject,)).fetchone()
    if row is not None:
        return int(row[0])
    cursor = conn.execute("INSERT INTO signers (subject) VALUES (?)", (subject,))
    return int(cursor.lastrowid or 0)


def _find_parent(conn: sqlite3.Connection, p: _Pending) -> tuple[int, str] | None:
    """The recorded asset this one was made from, or None (see the module docstring)."""
    for ref in p.result.record.parents:
        if ref.asset_id is not None:
            row = conn.execute(
                "SELECT asset_pk, asset_id FROM assets WHERE asset_id = ?", (ref.asset_id,)
            ).fetchone()
            if row is not None:
                return int(row[0]), str(row[1])
    if p.parent_sha256 is not None:
        for sql in (
            "SELECT a.asset_pk, a.asset_id FROM files AS f JOIN assets AS a "
            "ON a.asset_pk = f.asset_pk WHERE f.sha256 = ?",
            "SELECT a.asset_pk, a.asset_id FROM files AS f JOIN assets AS a "
            "ON a.asset_pk = f.asset_pk WHERE f.input_sha256 = ? LIMIT 1",
        ):
            row = conn.execute(sql, (p.parent_sha256,)).fetchone()
            if row is not None:
                return int(row[0]), str(row[1])
    for ref in p.result.record.parents:
        if ref.essence_sha256_hex is not None:
            row = conn.execute(
                "SELECT asset_pk, asset_id FROM assets WHERE essence_sha256 = ?",
                (bytes.fromhex(ref.essence_sha256_hex),),
            ).fetchone()
            if row is not None:
                return int(row[0]), str(row[1])
    return None


_ASSET_SQL = """
    SELECT a.asset_pk, a.asset_id, a.essence_sha256, p.asset_id, a.record_json, s.subject,
           a.first_signed_at
    FROM assets AS a
    JOIN signers AS s ON s.signer_id = a.signer_id
    LEFT JOIN assets AS p ON p.asset_pk = a.parent_pk
    WHERE a.asset_pk IN ({marks})
"""
_FILE_SQL = """
    SELECT f.asset_pk, f.sha256, f.path, f.source_path, f.input_sha256, f.parent_sha256,
           f.bytes_added, f.active_manifest, f.signed_at, s.subject, f.record_sha256,
           f.record_json
    FROM files AS f JOIN signers AS s ON s.signer_id = f.signer_id
    WHERE f.asset_pk IN ({marks})
    ORDER BY f.asset_pk, f.file_pk
"""


def _first_asset(
    conn: sqlite3.Connection, queries: Sequence[str], value: str | bytes
) -> AssetEntry | None:
    """The asset the first query that finds an ``asset_pk`` for ``value`` names."""
    for query in queries:
        row = conn.execute(query, (value,)).fetchone()
        if row is not None:
            return _load(conn, [int(row[0])])[0]
    return None


def _load(conn: sqlite3.Connection, pks: Sequence[int]) -> list[AssetEntry]:
    """Asset entries for these primary keys, in the same order."""
    found: dict[int, AssetEntry] = {}
    for start in range(0, len(pks), _PAGE):
        chunk = list(pks[start : start + _PAGE])
        marks = ",".join("?" * len(chunk))
        files: dict[int, list[FileEntry]] = {}
        heads = conn.execute(_ASSET_SQL.format(marks=marks), chunk).fetchall()
        ids = {int(row[0]): str(row[1]) for row in heads}
        for row in conn.execute(_FILE_SQL.format(marks=marks), chunk):
            files.setdefault(int(row[0]), []).append(_file_from_row(row, ids[int(row[0])]))
        for row in heads:
            pk = int(row[0])
            found[pk] = AssetEntry(
                asset_id=str(row[1]),
                essence_sha256_hex=bytes(row[2]).hex(),
                record=_record_from_json(str(row[4]), str(row[1])),
                parent_asset_id=row[3],
                signer=str(row[5]),
                first_signed_at=str(row[6]),
                files=tuple(files.get(pk, ())),
            )
    return [found[pk] for pk in pks if pk in found]


def _file_from_row(row: tuple[Any, ...], asset_id: str) -> FileEntry:
    return FileEntry(
        sha256_hex=bytes(row[1]).hex(),
        asset_id=asset_id,
        path=row[2],
        source_path=row[3],
        input_sha256_hex=bytes(row[4]).hex(),
        parent_sha256_hex=None if row[5] is None else bytes(row[5]).hex(),
        bytes_added=int(row[6]),
        active_manifest=row[7],
        signed_at=str(row[8]),
        signer=str(row[9]),
        record_sha256_hex=bytes(row[10]).hex(),
        record=None if row[11] is None else _record_from_json(str(row[11]), asset_id),
    )


def _record_from_json(text: str, asset_id: str) -> ProvenanceRecord:
    try:
        return _parse_record(text)
    except (ValueError, RecordError) as exc:
        raise InventoryError(f"the stored record of asset {asset_id} is unreadable") from exc


@functools.lru_cache(maxsize=256)
def _parse_record(text: str) -> ProvenanceRecord:
    """A stored record, parsed and validated once per distinct text.

    A batch stores one record for all its assets, and a read of N assets (or
    the batch writer's re-recording of a known asset) would otherwise parse
    and validate the same text N times. Records are immutable, so sharing one
    is safe.
    """
    data = json.loads(text)
    params = data.get("parameters") if isinstance(data, dict) else None
    # What was signed is reported as signed: the allow-list binds signers only.
    allowed = frozenset(params) if isinstance(params, Mapping) else frozenset()
    return ProvenanceRecord.from_dict(data, allowed_parameters=allowed)


def _page(
    conn: sqlite3.Connection, *, after: int | None, offset: int, size: int
) -> tuple[list[int], list[AssetEntry]]:
    if after is None:
        rows = conn.execute(
            "SELECT asset_pk FROM assets ORDER BY asset_pk LIMIT ? OFFSET ?", (size, offset)
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT asset_pk FROM assets WHERE asset_pk > ? ORDER BY asset_pk LIMIT ?",
            (after, size),
        ).fetchall()
    pks = [int(r[0]) for r in rows]
    return pks, _load(conn, pks)


def _iter_all(conn: sqlite3.Connection, synthetic_only: bool) -> Iterator[AssetEntry]:
    where = _synthetic_filter(synthetic_only)
    after = 0
    while True:
        rows = conn.execute(
            f"SELECT asset_pk FROM assets {where} {'AND' if where else 'WHERE'} asset_pk > ? "  # noqa: S608 - constant filter
            "ORDER BY asset_pk LIMIT ?",
            (after, _PAGE),
        ).fetchall()
        if not rows:
            return
        yield from _load(conn, [int(r[0]) for r in rows])
        after = int(rows[-1][0])


def _synthetic_filter(synthetic_only: bool) -> str:
    if not synthetic_only:
        return ""
    codes = ", ".join(f"'{code}'" for code in _SYNTHETIC_CODES)
    return f"WHERE digital_source_type IN ({codes})"


def _stats(conn: sqlite3.Connection) -> InventoryStats:
    assets = conn.execute("SELECT COUNT(*) FROM assets").fetchone()[0]
    files = conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    renditions = conn.execute(
        "SELECT COUNT(DISTINCT asset_pk) FROM files WHERE parent_sha256 IS NOT NULL"
    ).fetchone()[0]
    unlinked = conn.execute(
        "SELECT COUNT(DISTINCT f.asset_pk) FROM files AS f JOIN assets AS a "
        "ON a.asset_pk = f.asset_pk WHERE f.parent_sha256 IS NOT NULL AND a.parent_pk IS NULL"
    ).fetchone()[0]
    by_model: dict[str, dict[str, int]] = {}
    for model, version, count in conn.execute(
        "SELECT model, model_version, COUNT(*) FROM assets GROUP BY model, model_version "
        "ORDER BY model, model_version"
    ):
        by_model.setdefault(str(model), {})[str(version)] = int(count)
    by_type = {
        str(code): int(count)
        for code, count in conn.execute(
            "SELECT digital_source_type, COUNT(*) FROM assets GROUP BY digital_source_type "
            "ORDER BY digital_source_type"
        )
    }
    synthetic = sum(count for code, count in by_type.items() if code in _SYNTHETIC_CODES)
    audit_last = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM audit").fetchone()[0]
    checkpoints = conn.execute("SELECT COUNT(*) FROM audit_checkpoints").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    page_count = conn.execute("PRAGMA page_count").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    return InventoryStats(
        assets=int(assets),
        files=int(files),
        renditions=int(renditions),
        renditions_without_parent=int(unlinked),
        synthetic=synthetic,
        by_model=MappingProxyType({m: MappingProxyType(v) for m, v in by_model.items()}),
        by_digital_source_type=MappingProxyType(by_type),
        audit_entries=int(audit_last),
        checkpoints=int(checkpoints),
        db_bytes=int(page_size) * int(page_count),
        schema_version=int(version),
    )


_CSV_COLUMNS = (
    "asset_id",
    "essence_sha256",
    "is_synthetic",
    "digital_source_type",
    "generator",
    "model",
    "model_version",
    "created_at",
    "parent_asset_id",
    "file_sha256",
    "path",
    "input_sha256",
    "parent_sha256",
    "signed_at",
    "signer",
    "active_manifest",
)


def _csv_rows(asset: AssetEntry) -> Iterator[tuple[Any, ...]]:
    record = asset.record
    for f in asset.files:
        yield (
            asset.asset_id,
            asset.essence_sha256_hex,
            "true" if record.is_synthetic else "false",
            record.digital_source_type.value,
            record.generator,
            record.model,
            record.model_version,
            format_time(record.created_at),
            asset.parent_asset_id or "",
            f.sha256_hex,
            f.path or "",
            f.input_sha256_hex,
            f.parent_sha256_hex or "",
            f.signed_at,
            f.signer,
            f.active_manifest or "",
        )


def _write(target: Path, data: bytes) -> None:
    try:
        # An export holds what the inventory holds (prompts, paths): 0600 like it.
        write_atomic(target, data, mode=PRIVATE_FILE_MODE)
    except OSError as exc:
        raise OutputError(f"cannot write the export: {exc.strerror}", path=target) from exc


# --- perceptual hashes ---------------------------------------------------------------


def _scheme(name: str, path: Path) -> str:
    if not isinstance(name, str) or not _SCHEME_NAME.match(name):
        raise InventoryError(
            f"perceptual scheme name must be 1-64 letters, digits, '.', '_' or '-': {name!r}",
            path=path,
        )
    return name


@dataclass(frozen=True, slots=True)
class _PerceptualInsert:
    """One asset's perceptual rows, checked and ready to insert in a transaction."""

    scheme: str
    rows: tuple[tuple[str, bytes], ...]
    descriptor: bytes

    def run(self, conn: sqlite3.Connection, asset_id: str, path: Path) -> tuple[int, str | None]:
        """Insert (idempotently) for ``asset_id``.

        Returns:
            How many hash rows were added, and the binding hash of every row of
            the scheme now stored for the asset (None when nothing changed).
        """
        found = conn.execute(
            "SELECT asset_pk FROM assets WHERE asset_id = ?", (asset_id,)
        ).fetchone()
        if found is None:
            raise InventoryError(f"no asset {asset_id} in the inventory", path=path)
        pk = int(found[0])
        before = conn.total_changes
        conn.executemany(
            "INSERT OR IGNORE INTO perceptual_hashes (asset_pk, scheme, variant, words) "
            "VALUES (?, ?, ?, ?)",
            [(pk, self.scheme, variant, blob) for variant, blob in self.rows],
        )
        added = conn.total_changes - before
        if self.descriptor:
            conn.execute(
                "INSERT OR IGNORE INTO perceptual_descriptors (asset_pk, scheme, descriptor) "
                "VALUES (?, ?, ?)",
                (pk, self.scheme, self.descriptor),
            )
        changed = conn.total_changes - before
        if changed == 0:
            return 0, None
        if added == len(self.rows) and changed == added + (1 if self.descriptor else 0):
            # Nothing was stored before: the rows are exactly these (the usual case).
            rows: Iterable[tuple[str, bytes]] = self.rows
            descriptor = self.descriptor
        else:
            rows, descriptor = _stored_perceptual(conn, pk, self.scheme)
        return added, _perceptual_row_hash(asset_id, self.scheme, rows, descriptor)


def _perceptual_insert(
    reference: ReferenceHashes, scheme: str | None, path: Path
) -> _PerceptualInsert:
    name = _scheme(scheme if scheme is not None else reference.scheme, path)
    words = np.ascontiguousarray(np.asarray(reference.words), dtype="<u8")
    if words.ndim != 2 or words.shape[0] != len(reference.variants) or words.shape[1] < 1:
        raise InventoryError(
            f"perceptual hashes must be (K, W) uint64 with one variant name per row, "
            f"got {words.shape} for {len(reference.variants)} names",
            path=path,
        )
    rows = tuple((variant, words[i].tobytes()) for i, variant in enumerate(reference.variants))
    return _PerceptualInsert(name, rows, bytes(reference.descriptor))


def _perceptual_rows(
    conn: sqlite3.Connection, scheme: str, after: int
) -> tuple[np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, np.dtype[np.uint64]]]:
    """Row keys and words of ``scheme`` with ``hash_pk > after``, in key order.

    Read page by page into arrays (fleetindex): a list of every row as Python
    objects took about five times the hashes' own size at 22M rows.
    """
    cursor = conn.execute(
        "SELECT hash_pk, words FROM perceptual_hashes WHERE scheme = ? AND hash_pk > ? "
        "ORDER BY hash_pk",
        (scheme, after),
    )
    pk_parts: list[np.ndarray[Any, np.dtype[np.int64]]] = []
    word_parts: list[np.ndarray[Any, np.dtype[np.uint64]]] = []
    width = 0
    while page := cursor.fetchmany(_ROWS_PER_READ):
        blobs = [bytes(blob) for _, blob in page]
        width = width or len(blobs[0])
        if any(len(blob) != width for blob in blobs):
            raise InventoryError(f"perceptual hashes of scheme {scheme} differ in length")
        pk_parts.append(np.fromiter((pk for pk, _ in page), dtype=np.int64, count=len(page)))
        words = np.frombuffer(b"".join(blobs), dtype="<u8").astype(np.uint64)
        word_parts.append(words.reshape(len(page), width // 8))
    if not pk_parts:
        return np.zeros(0, np.int64), np.zeros((0, 1), np.uint64)
    if len(pk_parts) == 1:
        return pk_parts[0], word_parts[0]
    return np.concatenate(pk_parts), np.concatenate(word_parts)


def _index_refresh_s(value: float | None, path: str | os.PathLike[str]) -> float:
    """The refresh interval: ``value``, else the environment variable, else the default."""
    name, shown = "index_refresh_s", repr(value)
    if value is None:
        configured = os.environ.get(INDEX_REFRESH_ENV_VAR, "").strip()
        if not configured:
            return DEFAULT_INDEX_REFRESH_S
        name, shown = f"${INDEX_REFRESH_ENV_VAR}", repr(configured)
        try:
            value = float(configured)
        except ValueError:
            value = math.nan
    if not (value >= 0 and math.isfinite(value)):
        raise InventoryError(f"{name} must be a number of seconds >= 0, got {shown}", path=path)
    return float(value)


def _load_cache(path: Path, last: int) -> HammingIndex | None:
    """The cached index, or None when it is unreadable or ahead of the database."""
    try:
        index = HammingIndex.load(path)
    except ProvenanceError:
        return None
    if len(index) and int(index.ids[-1]) > last:
        return None
    return index


# --- facts bound to the audit chain (audit workstream, DESIGN.md decision 17) --------

_ASSET_FACTS = (
    "asset_id",
    "essence_sha256",
    "digital_source_type",
    "generator",
    "model",
    "model_version",
    "created_at",
    "record_json",
    "signer",
    "first_signed_at",
)
_FILE_FACTS = (
    "sha256",
    "asset_id",
    "input_sha256",
    "parent_sha256",
    "path",
    "source_path",
    "bytes_added",
    "active_manifest",
    "signed_at",
    "signer",
    "record_sha256",
    "record_json",
)
# The same columns, in the same order, as stored (signer and asset ids joined in).
_ASSET_FACTS_SQL = (
    "SELECT a.asset_pk, p.asset_id, a.asset_id, a.essence_sha256, a.digital_source_type, "
    "a.generator, a.model, a.model_version, a.created_at, a.record_json, s.subject, "
    "a.first_signed_at FROM assets a LEFT JOIN signers s ON s.signer_id = a.signer_id "
    "LEFT JOIN assets p ON p.asset_pk = a.parent_pk"
)
_FILE_FACTS_SQL = (
    "SELECT f.file_pk, f.sha256, a.asset_id, f.input_sha256, f.parent_sha256, f.path, "
    "f.source_path, f.bytes_added, f.active_manifest, f.signed_at, s.subject, "
    "f.record_sha256, f.record_json FROM files f LEFT JOIN assets a ON a.asset_pk = f.asset_pk "
    "LEFT JOIN signers s ON s.signer_id = f.signer_id"
)


def _asset_row_hash(row: Sequence[Any]) -> str:
    """The canonical hash of an asset row (``_ASSET_FACTS`` order; the link is bound apart)."""
    return row_hash("asset", row)


def _file_row_hash(row: Sequence[Any]) -> str:
    """The canonical hash of a file row (``_FILE_FACTS`` order)."""
    return row_hash("file", row)


def _perceptual_row_hash(
    asset_id: str, scheme: str, rows: Iterable[tuple[str, bytes]], descriptor: bytes
) -> str:
    """The canonical hash of every perceptual row and the descriptor of one asset and scheme."""
    flat: list[str | bytes] = [asset_id, scheme, descriptor]
    for variant, words in sorted(rows):
        flat += (variant, bytes(words))
    return row_hash("perceptual", flat)


def _stored_perceptual(
    conn: sqlite3.Connection, asset_pk: int, scheme: str
) -> tuple[list[tuple[str, bytes]], bytes]:
    rows = [
        (str(v), bytes(w))
        for v, w in conn.execute(
            "SELECT variant, words FROM perceptual_hashes WHERE asset_pk = ? AND scheme = ?",
            (asset_pk, scheme),
        )
    ]
    found = conn.execute(
        "SELECT descriptor FROM perceptual_descriptors WHERE asset_pk = ? AND scheme = ?",
        (asset_pk, scheme),
    ).fetchone()
    return rows, b"" if found is None else bytes(found[0])


def _reconcile(
    conn: sqlite3.Connection, bound: FactBindings
) -> tuple[list[AuditProblem], list[str], int]:
    """Compare every fact row with what the chain binds, both ways (one snapshot).

    A row whose hash differs from its binding is FACT_CHANGED; a binding whose
    row is gone is FACT_MISSING; a row no entry binds is FACT_UNBOUND, unless
    it was stored before binding existed (below the ``audit_meta`` marks:
    counted in a note instead).
    """
    marks = {str(k): int(v) for k, v in conn.execute("SELECT name, value FROM audit_meta")}
    problems: list[AuditProblem] = []
    legacy = 0
    checked = 0

    def unbound(what: str) -> None:
        problems.append(
            AuditProblem(
                0,
                ProblemKind.FACT_UNBOUND,
                f"{what} is stored but no audit entry recorded it: it was added outside the chain",
            )
        )

    ids: dict[int, str] = {}
    asset_mark = marks.get("bound_from_asset_pk", 1)
    for pk, parent, *row in conn.execute(_ASSET_FACTS_SQL):
        checked += 1
        asset_id = str(row[0])
        ids[int(pk)] = asset_id
        binding = bound.assets.pop(asset_id, None)
        link = bound.parents.pop(asset_id, None)
        if binding is None:
            if int(pk) >= asset_mark:
                unbound(f"asset {asset_id}")
                continue
            legacy += 1
            old = bound.legacy_assets.pop(asset_id, None)
            facts = (bytes(row[1]).hex(), row[4], row[5], row[2])
            if old is not None and old[1] != facts:
                problems.append(_legacy_changed(f"asset {asset_id}", old[0]))
            continue
        if _asset_row_hash(row) != binding[1]:
            problems.append(
                AuditProblem(
                    binding[0],
                    ProblemKind.FACT_CHANGED,
                    f"asset {asset_id} differs from what entry {binding[0]} recorded (model, "
                    "source type, record or signer changed in the table)",
                )
            )
        if link is not None and (parent or "") != link[1]:
            problems.append(
                AuditProblem(
                    link[0],
                    ProblemKind.FACT_CHANGED,
                    f"asset {asset_id} descends from {parent or 'nothing'} in the table, but "
                    f"entry {link[0]} recorded {link[1] or 'no parent'}",
                )
            )
    for asset_id, (seq, _) in [*bound.assets.items(), *bound.legacy_assets.items()]:
        problems.append(
            AuditProblem(
                seq, ProblemKind.FACT_MISSING, f"asset {asset_id} recorded by entry {seq} is gone"
            )
        )
    file_mark = marks.get("bound_from_file_pk", 1)
    for pk, *row in conn.execute(_FILE_FACTS_SQL):
        checked += 1
        sha = bytes(row[0]).hex()
        binding = bound.files.pop(sha, None)
        if binding is None:
            if int(pk) >= file_mark:
                unbound(f"file {sha}")
                continue
            legacy += 1
            old = bound.legacy_files.pop(sha, None)
            facts = (bytes(row[2]).hex(), bytes(row[10]).hex(), row[7], row[9])
            if old is not None and old[1] != facts:
                problems.append(_legacy_changed(f"file {sha}", old[0]))
            continue
        if _file_row_hash(row) != binding[1]:
            problems.append(
                AuditProblem(
                    binding[0],
                    ProblemKind.FACT_CHANGED,
                    f"file {sha} differs from what entry {binding[0]} recorded",
                )
            )
    for sha, (seq, _) in [*bound.files.items(), *bound.legacy_files.items()]:
        problems.append(
            AuditProblem(
                seq, ProblemKind.FACT_MISSING, f"file {sha} recorded by entry {seq} is gone"
            )
        )
    # Perceptual rows and descriptors, grouped by (asset, scheme).
    groups: dict[tuple[int, str], list[Any]] = {}
    for hash_pk, asset_pk, scheme, variant, words in conn.execute(
        "SELECT hash_pk, asset_pk, scheme, variant, words FROM perceptual_hashes"
    ):
        group = groups.setdefault((int(asset_pk), str(scheme)), [int(hash_pk), [], b""])
        group[0] = min(group[0], int(hash_pk))
        group[1].append((str(variant), bytes(words)))
    for asset_pk, scheme, descriptor in conn.execute(
        "SELECT asset_pk, scheme, descriptor FROM perceptual_descriptors"
    ):
        group = groups.setdefault((int(asset_pk), str(scheme)), [0, [], b""])
        group[2] = bytes(descriptor)
    hash_mark = marks.get("bound_from_hash_pk", 1)
    for (asset_pk, scheme), (first_pk, rows, descriptor) in groups.items():
        checked += len(rows) + (1 if descriptor else 0)
        asset_id = ids.get(asset_pk, f"#{asset_pk}")
        binding = bound.perceptual.pop((asset_id, scheme), None)
        if binding is None:
            if (rows and first_pk >= hash_mark) or (not rows and asset_pk >= asset_mark):
                unbound(f"perceptual rows of asset {asset_id} ({scheme})")
            else:
                legacy += len(rows) + (1 if descriptor else 0)
            continue
        if _perceptual_row_hash(asset_id, scheme, rows, descriptor) != binding[1]:
            problems.append(
                AuditProblem(
                    binding[0],
                    ProblemKind.FACT_CHANGED,
                    f"perceptual rows of asset {asset_id} ({scheme}) differ from what entry "
                    f"{binding[0]} recorded",
                )
            )
    for (asset_id, scheme), (seq, _) in bound.perceptual.items():
        problems.append(
            AuditProblem(
                seq,
                ProblemKind.FACT_MISSING,
                f"perceptual rows of asset {asset_id} ({scheme}) recorded by entry {seq} are gone",
            )
        )
    notes = []
    if legacy:
        notes.append(
            f"{legacy} rows were recorded before row binding (schema 3) and are not bound: "
            "only the facts their entries named (hashes, model, source type, signer) are "
            "checked; an edit of any other column is not detected"
        )
    return problems, notes, checked


def _legacy_changed(what: str, seq: int) -> AuditProblem:
    return AuditProblem(
        seq,
        ProblemKind.FACT_CHANGED,
        f"{what} differs from the facts entry {seq} recorded (hashes, model, source type "
        "or signer; recorded before row binding)",
    )
