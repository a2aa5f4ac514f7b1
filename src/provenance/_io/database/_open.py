"""Opening a server inventory: connect, then check or create its schema."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provenance._io.database._connection import ServerConnection, driver_module
from provenance._io.database._errors import connect_error
from provenance._io.database._transactions import ServerDatabase
from provenance._io.database._triggers import (
    append_only_ddl,
    append_only_trigger_names,
    generation_ddl,
    generation_trigger_names,
    triggers_present_sql,
)
from provenance._io.database._url import Backend, ServerURL, parse_url
from provenance.errors import InventoryError, SchemaVersionError

if TYPE_CHECKING:
    from sqlalchemy import MetaData, Table
    from sqlalchemy.engine import Dialect

APPLICATION = "provenance.inventory"
"""The ``application`` value of ``provenance_meta``: this database is an inventory."""

META_TABLE = "provenance_meta"
"""The table holding the application marker, the schema version and the writer row."""

_log = logging.getLogger("provenance.inventory")

_WRITER_ROW = "writer"
_CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True, slots=True)
class ServerSchema:
    """What :func:`open_server` creates and checks: the caller's tables and version.

    Attributes:
        metadata: The SQLAlchemy tables (``provenance_meta`` is added here).
        version: The schema version this code reads and writes.
        keys: Table -> integer row key column (PostgreSQL sequences advanced after a copy).
        after_create: Statements run once after the tables are created.
        append_only: Tables whose rows may be inserted but never updated or
            deleted (a trigger refuses it; see :mod:`._triggers`).
        generations: ``(table, counter)``: a ``provenance_meta`` counter (from 0)
            that every UPDATE or DELETE of the table's rows bumps (a trigger).
        upgrades_from: The oldest version opened writable that is upgraded in
            place, by creating what it lacks (tables, indexes, triggers,
            counters) and then writing the version; None: none is. Opened
            read-only, such a version is read as it is (with a warning): the
            caller's reads check ``schema_version`` for what it lacks.
    """

    metadata: MetaData
    version: int
    keys: dict[str, str]
    after_create: tuple[str, ...] = ()
    append_only: tuple[str, ...] = ()
    generations: tuple[tuple[str, str], ...] = ()
    upgrades_from: int | None = None


def meta_table(metadata: MetaData) -> Table:
    """The ``provenance_meta`` table (name -> value), added to ``metadata`` once."""
    import sqlalchemy as sa

    found = metadata.tables.get(META_TABLE)
    if found is not None:
        return found
    return sa.Table(
        META_TABLE,
        metadata,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


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
        .where(meta.c.name == _WRITER_ROW)
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


def _tables_present(conn: ServerConnection) -> set[str]:
    sql = (
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        if conn.backend is Backend.POSTGRESQL
        else "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
    )
    with conn.raw.cursor() as cursor:
        cursor.execute(sql)
        return {str(row[0]).lower() for row in cursor.fetchall()}


def _read_meta(conn: ServerConnection) -> dict[str, str]:
    with conn.raw.cursor() as cursor:
        cursor.execute(f"SELECT name, value FROM {META_TABLE}")  # noqa: S608 - constant name
        return {str(k): str(v) for k, v in cursor.fetchall()}


def _prepare(
    db: ServerDatabase, schema: ServerSchema, dialect: Dialect, *, create: bool, writable: bool
) -> int:
    """Check (or create) the schema; returns the schema version found."""
    conn = db.connection
    label = db.backend.label
    tables = _tables_present(conn)
    meta = _read_meta(conn) if META_TABLE in tables else {}
    if not meta:  # empty, or another process is creating the schema right now
        _refuse_foreign(db, tables, schema)
        if not create:
            raise InventoryError(
                f"{label}: an empty database, not a provenance inventory", path=db.path
            )
        _create(db, schema, dialect)
        meta = _read_meta(conn)
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
            _upgrade(db, schema, dialect)
            version = schema.version
        else:  # a rolling upgrade: new verifiers beside older writers, who would refuse it
            _warn_older(str(db.path), version, schema.version)
    if writable:
        _ensure_append_only(db, schema)
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


def _ensure_append_only(db: ServerDatabase, schema: ServerSchema) -> None:
    """Give an inventory made before its triggers existed the ones it lacks.

    One catalogue read per writable open. A role not allowed to create triggers
    (MariaDB with binary logging and no ``SUPER``, a PostgreSQL role that does not
    own the tables) keeps the inventory usable: the hash chain still finds any
    edit, and a warning names what is missing. The counters whose triggers are
    there are noted on the connection (``tracked_generations``).
    """
    wanted = set(append_only_trigger_names(db.backend, schema.append_only))
    wanted |= set(generation_trigger_names(db.backend, schema.generations))
    if not wanted:
        return
    conn = db.connection
    present = _triggers_present(db)
    missing = sorted(wanted - present)
    if missing:
        try:
            with conn.raw.cursor() as cursor:
                for statement in _trigger_ddl(db, schema):
                    cursor.execute(statement)
            present |= wanted
        except conn.driver_error as exc:
            _log.warning(
                "%s: append-only or generation triggers are missing (%s) and could not be "
                "created (%s); the hash chain still detects any edit of the audit tables, "
                "perceptual rows are not packed",
                db.backend.label,
                ", ".join(missing),
                type(exc).__name__,
            )
    conn.tracked_generations = frozenset(
        counter
        for table, counter in schema.generations
        if set(generation_trigger_names(db.backend, ((table, counter),))) <= present
    )


def _triggers_present(db: ServerDatabase) -> set[str]:
    """The names of the triggers in the inventory's schema, lower case."""
    with db.connection.raw.cursor() as cursor:
        cursor.execute(triggers_present_sql(db.backend))
        return {str(row[0]).lower() for row in cursor.fetchall()}


def _refuse_foreign(db: ServerDatabase, tables: set[str], schema: ServerSchema) -> None:
    """Refuse a database holding any table that is not ours.

    Only our tables without the marker are a creation under way in another
    process, or one that stopped half-way (MariaDB cannot create tables in a
    transaction): :func:`_create` finishes it.
    """
    if tables - {name.lower() for name in schema.metadata.tables}:
        raise InventoryError(
            f"{db.backend.label}: the database holds other tables ({len(tables)}) and is not "
            "a provenance inventory; it was not modified",
            path=db.path,
        )


# Creators of one new inventory take this lock in turn (PostgreSQL advisory
# lock key; MariaDB named lock): the second finds the first's finished schema.
_CREATE_LOCK = 0x50524F56


@contextlib.contextmanager
def _schema_lock(db: ServerDatabase) -> Iterator[None]:
    """Hold the lock creators and upgraders of an inventory take in turn."""
    conn = db.connection
    with conn.raw.cursor() as cursor:
        if db.backend is Backend.POSTGRESQL:
            cursor.execute(f"SELECT pg_advisory_lock({_CREATE_LOCK:d})")
        else:
            cursor.execute("SELECT GET_LOCK(%s, %s)", (f"provenance.create.{_CREATE_LOCK}", 60))
    try:
        yield
    finally:
        with conn.raw.cursor() as cursor:
            if db.backend is Backend.POSTGRESQL:
                cursor.execute(f"SELECT pg_advisory_unlock({_CREATE_LOCK:d})")
            else:
                cursor.execute("SELECT RELEASE_LOCK(%s)", (f"provenance.create.{_CREATE_LOCK}",))


def _create(db: ServerDatabase, schema: ServerSchema, dialect: Dialect) -> None:
    """Create the schema once, under a lock, unless another process just did."""
    conn = db.connection
    with _schema_lock(db):
        tables = _tables_present(conn)
        # The marker rows are written last, in one statement: none means unfinished.
        if META_TABLE not in tables or not _read_meta(conn):
            _refuse_foreign(db, tables, schema)
            _create_tables(db, schema, dialect)


def _upgrade(db: ServerDatabase, schema: ServerSchema, dialect: Dialect) -> None:
    """Bring an older inventory to ``schema.version`` in place, under the schema lock.

    Only what it lacks is created (every statement can run again); the version
    is written last, so an upgrade that stopped half-way (MariaDB commits each
    DDL statement) is an older inventory still, finished by the next writable
    open. PostgreSQL runs it in one transaction. Another process may have
    upgraded it meanwhile: then nothing is done. The triggers are made after it
    as for any older inventory (:func:`_ensure_append_only`: a role that may not
    create them gets a warning, not a refusal).
    """
    conn = db.connection
    with _schema_lock(db):
        if int(_read_meta(conn).get("schema_version", "0")) >= schema.version:
            return
        counters = ", ".join(f"('{counter}', '0')" for _, counter in schema.generations)
        statements = _table_ddl(schema, dialect)
        # Already there when an earlier upgrade stopped after it (MariaDB).
        added = (f"INSERT INTO {META_TABLE} (name, value) VALUES {counters}",) if counters else ()  # noqa: S608 - constants
        version = (
            f"UPDATE {META_TABLE} SET value = '{schema.version:d}' "  # noqa: S608 - constants
            "WHERE name = 'schema_version'"
        )
        _run_all(db, statements, added, version)


def _table_ddl(schema: ServerSchema, dialect: Dialect) -> list[str]:
    """``CREATE TABLE`` and ``CREATE INDEX`` of every table, each ``IF NOT EXISTS``."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    statements: list[str] = []
    for table in schema.metadata.sorted_tables:
        statements.append(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)))
        statements.extend(
            str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect))
            for index in table.indexes
        )
    return statements


def _trigger_ddl(db: ServerDatabase, schema: ServerSchema) -> tuple[str, ...]:
    """Every trigger of the schema (append-only rails, generation counters)."""
    return (
        *append_only_ddl(db.backend, schema.append_only),
        *generation_ddl(db.backend, schema.generations),
    )


def _run_all(db: ServerDatabase, first: list[str], may_exist: tuple[str, ...], last: str) -> None:
    """Run ``first``, ``may_exist`` (a duplicate row ignored), then ``last``.

    PostgreSQL runs them in one transaction; MariaDB commits each DDL statement
    by itself, so ``last`` is what marks the work done.
    """
    conn = db.connection
    postgres = db.backend is Backend.POSTGRESQL
    with conn.raw.cursor() as cursor:
        try:
            if postgres:
                cursor.execute("BEGIN")
            for statement in first:
                cursor.execute(statement)
            for statement in may_exist:
                # Already there when an earlier creation stopped after it.
                with contextlib.suppress(conn.integrity_error):
                    cursor.execute(statement)
            cursor.execute(last)
            if postgres:
                cursor.execute("COMMIT")
        except BaseException:
            if postgres:
                cursor.execute("ROLLBACK")
            raise


def _create_tables(db: ServerDatabase, schema: ServerSchema, dialect: Dialect) -> None:
    """Create every table, then the marker rows last, so a half-made schema is never an inventory.

    PostgreSQL runs it all in one transaction. MariaDB commits each CREATE
    TABLE by itself, so every statement is one that can run again
    (``IF NOT EXISTS``): a creation that stopped half-way is finished by the
    next process that opens the database.
    """
    counters = "".join(f", ('{counter}', '0')" for _, counter in schema.generations)
    marker = (
        f"INSERT INTO {META_TABLE} (name, value) VALUES "  # noqa: S608 - constants
        f"('application', '{APPLICATION}'), ('schema_version', '{schema.version:d}'), "
        f"('{_WRITER_ROW}', ''){counters}"
    )
    statements = [*_table_ddl(schema, dialect), *_trigger_ddl(db, schema)]
    _run_all(db, statements, schema.after_create, marker)
