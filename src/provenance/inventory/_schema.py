"""The inventory schema, its migrations, and opening a database file.

Never edit an existing step of ``_MIGRATIONS``: users' databases ran it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from provenance._io import sqlite as _sqlite
from provenance._io.sqlite import Database
from provenance.audit import (
    AUDIT_SCHEMA_V1,
    AUDIT_SCHEMA_V3,
)
from provenance.errors import (
    InventoryError,
    SchemaVersionError,
)

# PRAGMA application_id marks the file as ours ("PROV"), so we never migrate
# somebody else's SQLite database.
APPLICATION_ID = 0x50524F56


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
# features (provenance._core.keypoints: ORB keypoints and descriptors, about 9 KB), one
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


def _open_server(
    location: str | os.PathLike[str],
    *,
    create: bool,
    read_only: bool,
    busy_timeout_s: float,
    durable: bool,
) -> Database:
    """A server inventory: SQLAlchemy and the drivers are imported only here."""
    from provenance.inventory._server import open_server_inventory

    return open_server_inventory(
        location,
        create=create,
        read_only=read_only,
        busy_timeout_s=busy_timeout_s,
        durable=durable,
    )


def _open(
    path: str | os.PathLike[str],
    *,
    create: bool,
    read_only: bool,
    busy_timeout_s: float,
    durable: bool,
) -> Database:
    path = Path(path)
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
        return _connect(
            uri,
            path,
            create=create,
            read_only=read_only,
            busy_timeout_s=busy_timeout_s,
            durable=durable,
        )
    except InventoryError as exc:
        if not _cannot_open(exc):
            raise
        if not read_only:
            if not os.access(path.resolve().parent, os.W_OK):
                raise InventoryError(
                    "cannot write the inventory: its folder is read-only (a read-only "
                    "mount, or no write permission); nothing was recorded. Reading it "
                    "(verify, inventory list, audit verify) works there",
                    path=path,
                ) from exc
            raise
        if not _in_read_only_folder(path):
            raise
    # A read-only folder: a read-only mount (a container's ":ro" volume), a
    # snapshot, a write-protected copy handed to an auditor. SQLite's reader
    # of a WAL database needs its -shm and -wal files, and cannot create them
    # there; a file nobody can change needs no locks (SQLite's immutable).
    return _connect(
        f"{uri}&immutable=1",
        path,
        create=False,
        read_only=True,
        busy_timeout_s=busy_timeout_s,
        durable=durable,
    )


def _connect(
    uri: str,
    path: Path,
    *,
    create: bool,
    read_only: bool,
    busy_timeout_s: float,
    durable: bool,
) -> Database:
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


def _cannot_open(exc: InventoryError) -> bool:
    """Whether SQLite could not open the file, or not as a WAL reader (no -shm it may write).

    A read-only mount says "unable to open"; a folder the process may not write,
    on a writable file system, "attempt to write a readonly database"
    (``SQLITE_READONLY_CANTINIT`` and kin).
    """
    cause = exc.__cause__
    return isinstance(cause, sqlite3.Error) and (
        _sqlite.cannot_open(cause) or _sqlite.is_read_only(cause)
    )


def _in_read_only_folder(path: Path) -> bool:
    """Whether ``path`` can be read but its folder not written, and no WAL is waiting.

    Raises:
        InventoryError: The folder is read-only and the inventory's write-ahead
            log holds changes not yet in the file: read without it, the
            inventory would look older than it is.
    """
    folder = path.resolve().parent
    if not os.access(path, os.R_OK) or os.access(folder, os.W_OK):
        return False
    wal = path.with_name(f"{path.name}-wal")
    try:
        pending = wal.stat().st_size > 0
    except OSError:
        pending = False
    if pending:
        raise InventoryError(
            f"is in a read-only folder and its write-ahead log ({wal.name}) holds changes "
            "not yet in the file, which SQLite cannot read there without its -shm file: "
            "open it once where it can be written (or copy both files to a writable "
            "folder), then read it here",
            path=path,
        )
    return True


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
