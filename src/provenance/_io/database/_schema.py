"""A server inventory's schema: its marker table, and creating or upgrading it in place.

:func:`create_schema` makes every table of an empty database, then writes the
marker rows last, so a half-made schema is never taken for an inventory;
:func:`upgrade_schema` brings an older one to the current version, the version
written last; :func:`ensure_triggers` gives a writable open the append-only and
generation triggers an older inventory lacks. Creators and upgraders take one
lock in turn (:func:`schema_lock`). :mod:`._open` connects and decides which runs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from provenance._io.database._connection import ServerConnection
from provenance._io.database._transactions import ServerDatabase
from provenance._io.database._triggers import (
    append_only_ddl,
    append_only_trigger_names,
    generation_ddl,
    generation_trigger_names,
    triggers_present_sql,
)
from provenance._io.database._url import Backend
from provenance.errors import InventoryError

if TYPE_CHECKING:
    from sqlalchemy import MetaData, Table
    from sqlalchemy.engine import Dialect

APPLICATION = "provenance.inventory"
"""The ``application`` value of ``provenance_meta``: this database is an inventory."""

META_TABLE = "provenance_meta"
"""The table holding the application marker, the schema version and the writer row."""

WRITER_ROW = "writer"
"""The ``provenance_meta`` row every writer locks (``SELECT ... FOR UPDATE``) in turn."""

_log = logging.getLogger("provenance.inventory")


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


def tables_present(conn: ServerConnection) -> set[str]:
    sql = (
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        if conn.backend is Backend.POSTGRESQL
        else "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
    )
    with conn.raw.cursor() as cursor:
        cursor.execute(sql)
        return {str(row[0]).lower() for row in cursor.fetchall()}


def read_meta(conn: ServerConnection) -> dict[str, str]:
    with conn.raw.cursor() as cursor:
        cursor.execute(f"SELECT name, value FROM {META_TABLE}")  # noqa: S608 - constant name
        return {str(k): str(v) for k, v in cursor.fetchall()}


def refuse_foreign(db: ServerDatabase, tables: set[str], schema: ServerSchema) -> None:
    """Refuse a database holding any table that is not ours.

    Only our tables without the marker are a creation under way in another
    process, or one that stopped half-way (MariaDB cannot create tables in a
    transaction): :func:`create_schema` finishes it.
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
def schema_lock(db: ServerDatabase) -> Iterator[None]:
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


def create_schema(db: ServerDatabase, schema: ServerSchema, dialect: Dialect) -> None:
    """Create the schema once, under a lock, unless another process just did."""
    conn = db.connection
    with schema_lock(db):
        tables = tables_present(conn)
        # The marker rows are written last, in one statement: none means unfinished.
        if META_TABLE not in tables or not read_meta(conn):
            refuse_foreign(db, tables, schema)
            _create_tables(db, schema, dialect)


def upgrade_schema(db: ServerDatabase, schema: ServerSchema, dialect: Dialect) -> None:
    """Bring an older inventory to ``schema.version`` in place, under the schema lock.

    Only what it lacks is created (every statement can run again); the version
    is written last, so an upgrade that stopped half-way (MariaDB commits each
    DDL statement) is an older inventory still, finished by the next writable
    open. PostgreSQL runs it in one transaction. Another process may have
    upgraded it meanwhile: then nothing is done. The triggers are made after it
    as for any older inventory (:func:`ensure_triggers`: a role that may not
    create them gets a warning, not a refusal).
    """
    conn = db.connection
    with schema_lock(db):
        if int(read_meta(conn).get("schema_version", "0")) >= schema.version:
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
        f"('{WRITER_ROW}', ''){counters}"
    )
    statements = [*_table_ddl(schema, dialect), *_trigger_ddl(db, schema)]
    _run_all(db, statements, schema.after_create, marker)


def ensure_triggers(db: ServerDatabase, schema: ServerSchema) -> None:
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
