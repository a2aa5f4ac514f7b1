"""The :class:`Inventory` class: writes, reads, lineage, lookups and exports.

The public methods live here; the SQL they run lives beside the job it does.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import math
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import numpy as np

from provenance.audit import (
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
    Checkpoint,
    Witness,
    witness_from_env,
)
from provenance.cells import csv_cell
from provenance.errors import (
    InventoryError,
)
from provenance.index import HammingIndex
from provenance.inventory._bindings import _asset_row_hash, _file_row_hash, _reconcile
from provenance.inventory._entries import (
    AssetEntry,
    FileEntry,
    InventoryStats,
    PerceptualMatch,
    _hex_bytes,
    _Pending,
    _pending,
    _utcnow,
)
from provenance.inventory._export import (
    _CSV_COLUMNS,
    _EXPORT_FORMAT,
    _EXPORT_VERSION,
    _csv_rows,
    _write,
)
from provenance.inventory._perceptual import (
    INDEX_CACHE_MIN_ROWS,
    _index_refresh_s,
    _load_cache,
    _monotonic,
    _perceptual_insert,
    _perceptual_rows,
    _PerceptualInsert,
    _scheme,
)
from provenance.inventory._rows import (
    _PAGE,
    _find_parent,
    _first_asset,
    _iter_all,
    _load,
    _page,
    _signer_id,
    _stats,
    _synthetic_filter,
)
from provenance.inventory._schema import SCHEMA_VERSION, _open
from provenance.keypoints import SCHEME as KEYPOINT_SCHEME
from provenance.keypoints import KeypointIndex, LocalFeatures
from provenance.keys import SigningKey
from provenance.phash import ReferenceHashes
from provenance.record import format_time
from provenance.types import SignResult, Verdict

_T = TypeVar("_T")


ENV_VAR = "PROVENANCE_INVENTORY"
"""Environment variable naming the inventory file."""


# Deeper lineage than this is a loop (only a hand-edited database has one).
MAX_LINEAGE_DEPTH = 256


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
                    stored = np.frombuffer(bytes(blob), dtype="<u8")
                    if stored.shape != query.shape:
                        continue
                    distance = int(np.bitwise_count(stored ^ query).sum())
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
