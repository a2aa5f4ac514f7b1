"""The :class:`Inventory` class: opening and closing, writes and exports.

Its reads are inherited from ``_reads`` (lookups, lineage, counts) and its
similarity search from ``_search`` (perceptual hashes, local features); the SQL
each runs lives beside the job it does.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, overload

from provenance._core.record import format_time
from provenance._core.types import SignResult, Verdict
from provenance._io.database import is_server_url, shown
from provenance._io.keys import SigningKey
from provenance.audit import (
    DEFAULT_CHECKPOINT_EVERY,
    AuditEntry,
    AuditEvent,
    AuditLog,
    Checkpoint,
    Witness,
    witness_from_env,
)
from provenance.errors import (
    InventoryError,
)
from provenance.inventory._bindings import _reconcile
from provenance.inventory._entries import (
    AssetEntry,
    _pending,
    _Shared,
    _utcnow,
)
from provenance.inventory._export import (
    export_csv,
    export_json,
)
from provenance.inventory._keypoints import KeypointInsert
from provenance.inventory._memo import Memo, Settled
from provenance.inventory._perceptual import (
    _fleet_min_assets,
    _index_refresh_s,
    _perceptual_insert,
    _scheme,
)
from provenance.inventory._reads import _Reads
from provenance.inventory._schema import _open, _open_server
from provenance.inventory._search import _Search
from provenance.inventory._writes import finish, record

if TYPE_CHECKING:
    from provenance._core.keypoints import LocalFeatures
    from provenance._core.phash import ReferenceHashes
    from provenance.inventory._indexes import _Indexes

ENV_VAR = "PROVENANCE_INVENTORY"
"""Environment variable naming the inventory file."""


class Inventory(_Search, _Reads):
    """The inventory database; a context manager.

    Args:
        path: The SQLite file (see :meth:`default_path`), or a server URL:
            ``postgresql://user:password@host/db``, ``mysql://...``,
            ``mariadb://...`` (issue 16; needs the ``database`` extra). Every
            method works the same on each; the password is never shown
            (:attr:`location`).
        create: Create the file (and its folder, one level) when missing.
        busy_timeout_s: How long a write waits for another writer, in total.
        read_only: Open with SQLite's ``mode=ro``: every write fails with
            :class:`InventoryError`, whoever runs the process (root included).
            In a folder this process cannot write (a read-only mount, a
            write-protected copy), where SQLite cannot make the ``-shm`` and
            ``-wal`` files a reader needs, the file is read as it is
            (``immutable``): a handle kept open there does not see later
            writes made through another path.
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
        fleet_min_assets: From this many assets (counted on the first search of
            the handle) ``verify``'s perceptual step searches with one
            :meth:`fleet_index` lookup instead of the exact
            :meth:`perceptual_index` (:meth:`find_perceptual_any`). A server
            inventory always does. ``None`` (the default) reads
            ``$PROVENANCE_FLEET_MIN_ASSETS``, else :data:`FLEET_MIN_ASSETS`.

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
        fleet_min_assets: int | None = None,
    ) -> None:
        if checkpoint_every < 1:
            raise InventoryError("checkpoint_every must be at least 1", path=path)
        self._server = is_server_url(path)
        self._given = os.fspath(path)  # with a server's credentials: never shown
        # Where it is, as it may be shown: for a server, the URL without its password.
        self._location = shown(path)
        index_refresh_s = _index_refresh_s(index_refresh_s, self._location)
        fleet_min_assets = _fleet_min_assets(fleet_min_assets, self._location)
        self._path = Path(self._location)
        self._read_only = read_only
        self._durable = durable
        self._settled = Settled()  # what committed writes found that never changes
        opener = _open_server if self._server else _open
        self._db = opener(
            path if self._server else self._path,
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
        reader = (
            functools.partial(
                _open_server,
                path,
                create=False,
                read_only=True,
                busy_timeout_s=busy_timeout_s,
                durable=durable,
            )
            if self._server
            else None
        )

        def indexes() -> _Indexes:
            # Imported here: numpy and Pillow load on the first search (issue 20).
            from provenance.inventory._indexes import _Indexes

            return _Indexes(
                self._db,
                self._path,
                refresh_s=float(index_refresh_s),
                read_only=read_only,
                cache_files=not self._server,
                fleet_min_assets=0 if self._server else fleet_min_assets,
                reader=reader,
            )

        self._make_indexes = indexes

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
        """The database file (for a server: its URL without the password, as a path)."""
        return self._path

    @property
    def location(self) -> str:
        """Where the inventory is, as it may be shown: the file, or the URL without its password."""
        return self._location

    @property
    def worker_location(self) -> str:
        """What another process gives :class:`Inventory` to open this same inventory.

        The path, or the server URL *with its credentials*: for handing to a
        batch's worker processes, never for showing (use :attr:`location`).
        """
        return self._given

    @property
    def is_server(self) -> bool:
        """Whether the inventory is on a PostgreSQL or MariaDB/MySQL server (issue 16)."""
        return self._server

    @property
    def audit(self) -> AuditLog:
        """The audit log stored in this database."""
        return self._audit

    def close(self) -> None:
        """Close the database (idempotent); pending work is rolled back.

        Fleet indexes (:meth:`fleet_index`) are dropped and their hash files deleted.
        """
        if "_indexes" in vars(self):  # made by a search (_Handle._indexes)
            self._indexes.close()
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
        return f"Inventory({self._location!r}, {state})"

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
        return self._write(
            lambda conn: record(conn, pending, audit=self._audit, path=self._path), durable
        )

    @overload
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
        entries: Literal[True] = True,
    ) -> list[AssetEntry]: ...

    @overload
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
        entries: Literal[False],
    ) -> None: ...

    # Long only by its documentation; the body hands the work to _writes.
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
        entries: bool = True,
    ) -> list[AssetEntry] | None:
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
                (:func:`provenance._core.keypoints.reference_features`, or None),
                aligned with ``results``, stored as :meth:`add_keypoints` does,
                in the same transaction.
            durable: Fsync this commit or not; None follows the inventory's
                ``durable`` (see :class:`Inventory`).
            entries: Return the asset entries (the default). False returns
                None and saves building them (callers that do not read them:
                :func:`provenance.sign_import`, ``sign``, ``sign_bytes`` and a
                batch's recording); what is stored is the same.

        Returns:
            The asset entries, in the order of ``results``; None with
            ``entries=False``.

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
        # Results of one import share their record, parent and time: converted once.
        shared = _Shared()
        at = format_time(moment) if moment.tzinfo is not None else None
        pending = [
            _pending(r, signer=signer, now=moment, source_path=s, shared=shared, signed_at=at)
            for r, s in zip(items, paths, strict=True)
        ]
        rows = [None if h is None else _perceptual_insert(h, None, self._path) for h in hashes]
        local = [None] * len(items) if keypoints is None else list(keypoints)
        if len(local) != len(items):
            raise InventoryError("keypoints must have one entry per result", path=self._path)
        from provenance._core.keypoints import SCHEME as KEYPOINT_SCHEME  # numpy: signing has it

        scheme = _scheme(KEYPOINT_SCHEME, self._path)
        inserts = [None if f is None else KeypointInsert(scheme, f.to_bytes()) for f in local]

        memos: list[Memo] = []

        def work(conn: sqlite3.Connection) -> list[AssetEntry] | None:
            # What the transaction looked up, and its new files (a retry starts afresh).
            memo = Memo(self._path, self._settled)
            memos.append(memo)
            memo.prefetch(conn, pending)
            recorded = [
                record(
                    conn,
                    p,
                    audit=self._audit,
                    path=self._path,
                    perceptual=insert,
                    keypoints=kp,
                    memo=memo,
                    want=entries,
                )
                for p, insert, kp in zip(pending, rows, inserts, strict=True)
            ]
            finish(conn, memo, audit=self._audit, path=self._path, now=moment)
            return [e for e in recorded if e is not None] if entries else None

        nested = self._db.connection.in_transaction  # the caller's: it may yet roll back
        recorded = self._write(work, durable)
        if not nested:
            memos[-1].settle()
        return recorded

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
        return export_json(self._audit, Path(path), now=now, key=key, synthetic_only=synthetic_only)

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
        return export_csv(self._audit, Path(path), now=now, key=key, synthetic_only=synthetic_only)
