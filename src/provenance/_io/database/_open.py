"""Opening a server inventory: connect, then check its schema (made by :mod:`._schema`)."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from provenance._io.database._connection import ServerConnection, driver_module
from provenance._io.database._errors import connect_error
from provenance._io.database._schema import (
    APPLICATION,
    META_TABLE,
    WRITER_ROW,
    ServerSchema,
    create_schema,
    ensure_triggers,
    meta_table,
    read_meta,
    refuse_foreign,
    tables_present,
    upgrade_schema,
)
from provenance._io.database._transactions import ServerDatabase
from provenance._io.database._url import Backend, ServerURL, parse_url
from provenance.errors import InventoryError, SchemaVersionError

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

_log = logging.getLogger("provenance.inventory")

_CONNECT_TIMEOUT_S = 10


def open_server(
    location: str | os.PathLike[str],
    schema: ServerSchema,
    *,
    create: bool,
    read_only: bool,
    busy_timeout_s: float,
) -> ServerDatabase:
    """Connect to a server inventory, creating its schema in an empty database.

    Args:
        location: The URL.
        schema: The tables and version to create or expect.
        create: Create the schema when the database is empty.
        read_only: Refuse writes (and never create).
        busy_timeout_s: How long a writer waits for another writer.

    Returns:
        The open database.

    Raises:
        InventoryError: A malformed URL, a missing driver, an unreachable
            server, wrong credentials, an unknown database, a database that is
            not a provenance inventory (or an empty one, without ``create``).
        SchemaVersionError: The inventory was written by a newer provenance; it
            was not modified.
    """
    url = parse_url(location)
    engine_url, dialect = _dialect(url)
    raw = _connect(dialect, engine_url, url, busy_timeout_s)
    db: ServerDatabase | None = None
    try:
        lock_sql = _writer_lock(schema, dialect)
        conn = ServerConnection(
            raw,
            url.backend,
            keys=schema.keys,
            database_bytes=_size_query(url.backend),
            schema_version=0,
        )
        db = ServerDatabase(
            conn, url, busy_timeout_s=busy_timeout_s, lock_sql=lock_sql, read_only=read_only
        )
        version = _prepare(
            db, schema, dialect, create=create and not read_only, writable=not read_only
        )
        conn.schema_version = version
        return db
    except BaseException as exc:
        if db is not None:
            db.close()
        else:
            with_driver = driver_module(url.backend)
            with contextlib.suppress(with_driver.Error):
                raw.close()
        if isinstance(exc, driver_module(url.backend).Error):
            raise connect_error(exc, url) from exc
        raise


def _dialect(url: ServerURL) -> tuple[Any, Dialect]:
    """SQLAlchemy's URL and dialect for ``url`` (no connection yet).

    Raises:
        InventoryError: SQLAlchemy or the driver is not installed.
    """
    try:
        import sqlalchemy as sa
    except ImportError:
        raise InventoryError(
            f"{url.backend.label} inventories need the database extra: "
            "pip install 'product-provenance[database]'",
            path=url.redacted,
        ) from None
    engine_url = sa.engine.URL.create(
        url.driver,
        username=url.user,
        password=url.password,
        host=url.host,
        port=url.port,
        database=url.database,
        query=dict(url.query),
    )
    try:
        engine = sa.create_engine(engine_url, poolclass=sa.pool.NullPool)
    except ImportError:
        raise InventoryError(
            f"the {url.driver.partition('+')[2]} driver is missing: "
            "pip install 'product-provenance[database]'",
            path=url.redacted,
        ) from None
    return engine_url, engine.dialect


def _writer_lock(schema: ServerSchema, dialect: Dialect) -> str:
    """``SELECT ... FOR UPDATE`` of the writer row, compiled for the dialect."""
    import sqlalchemy as sa

    meta = meta_table(schema.metadata)
    return str(
        sa.select(meta.c.value)
        .where(meta.c.name == WRITER_ROW)
        .with_for_update()
        .compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    )


def _connect(dialect: Dialect, engine_url: Any, url: ServerURL, busy_timeout_s: float) -> Any:
    """The driver connection, in autocommit mode, with the lock wait bounded."""
    module = driver_module(url.backend)
    cargs, cparams = dialect.create_connect_args(engine_url)
    cparams.setdefault("connect_timeout", _CONNECT_TIMEOUT_S)
    lock_ms = max(1, int(busy_timeout_s * 1000))
    if url.backend is Backend.POSTGRESQL:
        cparams["autocommit"] = True
        cparams["options"] = f"-c lock_timeout={lock_ms} -c statement_timeout=0"
    else:
        cparams["autocommit"] = True
        cparams.setdefault("charset", "utf8mb4")
        cparams["init_command"] = (
            f"SET SESSION innodb_lock_wait_timeout = {max(1, round(busy_timeout_s))}, "
            "SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', "
            # A page of perceptual rows packed into one value (inventory._packed).
            "SESSION group_concat_max_len = 67108864"
        )
    try:
        raw = module.connect(*cargs, **cparams)
    except module.Error as exc:
        raise connect_error(exc, url) from exc
    if url.backend is Backend.POSTGRESQL:
        # No server-side prepared statements: a generic plan made while the
        # tables were small (a new inventory) kept scanning them whole as they
        # grew (record_many 14 assets/s at 2,000 assets); a plan per execution
        # uses the current sizes.
        raw.prepare_threshold = None
    return raw


def _size_query(backend: Backend) -> Callable[[ServerConnection], int]:
    sql = (
        "SELECT pg_database_size(current_database())"
        if backend is Backend.POSTGRESQL
        else "SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
        "WHERE table_schema = DATABASE()"
    )

    def size(conn: ServerConnection) -> int:
        with conn.raw.cursor() as cursor:
            cursor.execute(sql)
            row = cursor.fetchone()
        return int(row[0] or 0)

    return size


def _prepare(
    db: ServerDatabase, schema: ServerSchema, dialect: Dialect, *, create: bool, writable: bool
) -> int:
    """Check (or create) the schema; returns the schema version found."""
    conn = db.connection
    label = db.backend.label
    tables = tables_present(conn)
    meta = read_meta(conn) if META_TABLE in tables else {}
    if not meta:  # empty, or another process is creating the schema right now
        refuse_foreign(db, tables, schema)
        if not create:
            raise InventoryError(
                f"{label}: an empty database, not a provenance inventory", path=db.path
            )
        create_schema(db, schema, dialect)
        meta = read_meta(conn)
    if meta.get("application") != APPLICATION:
        raise InventoryError(
            f"{label}: the database is not a provenance inventory (its {META_TABLE} table "
            "names another application); it was not modified",
            path=db.path,
        )
    try:
        version = int(meta.get("schema_version", ""))
    except ValueError:
        raise InventoryError(
            f"{label}: the inventory's schema version is unreadable", path=db.path
        ) from None
    if version > schema.version:
        raise SchemaVersionError(
            f"inventory schema version {version} is newer than this provenance supports "
            f"({schema.version}); upgrade provenance. The database was not modified",
            found=version,
            supported=schema.version,
            path=db.path,
        )
    if version < schema.version:
        if schema.upgrades_from is None or version < schema.upgrades_from:
            raise SchemaVersionError(
                f"{label}: inventory schema version {version} is older than this "
                f"provenance's ({schema.version}); there is no server migration for it. "
                "The database was not modified",
                found=version,
                supported=schema.version,
                path=db.path,
            )
        if writable:
            upgrade_schema(db, schema, dialect)
            version = schema.version
        else:  # a rolling upgrade: new verifiers beside older writers, who would refuse it
            _warn_older(str(db.path), version, schema.version)
    if writable:
        ensure_triggers(db, schema)
    return version


# Once per inventory and process: a verifier's cold builds open a connection each.
@functools.cache
def _warn_older(where: str, version: int, current: int) -> None:
    """Log (WARNING, one line) that an older inventory is read as it is, and what upgrades it."""
    _log.warning(
        "%s: inventory schema version %d is older than this provenance's (%d): read as it "
        "is, without what %d added (packed snapshots: cold builds read the rows); "
        "`provenance inventory pack --inventory URL` upgrades it in place",
        where,
        version,
        current,
        current,
    )
