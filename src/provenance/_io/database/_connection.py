"""The part of :class:`sqlite3.Connection` the stores use, over a psycopg or PyMySQL connection.

Statements arrive compiled for the dialect (:mod:`._catalogue`); this module
runs them on the driver's connection and reports as :mod:`sqlite3` does.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from provenance._io.database._catalogue import Compiled, Kind
from provenance._io.database._errors import driver_message
from provenance._io.database._url import Backend


class Cursor(Protocol):
    """The part of a DB-API cursor the stores use."""

    @property
    def rowcount(self) -> int: ...

    @property
    def lastrowid(self) -> int | None: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchmany(self, size: int = ...) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """The part of :class:`sqlite3.Connection` the stores use; :class:`ServerConnection` too.

    Statements run through :func:`provenance._io.database.execute`; ``execute``
    with text is for SQLite's PRAGMAs (a server answers the few the stores use).
    """

    @property
    def in_transaction(self) -> bool: ...

    @property
    def total_changes(self) -> int: ...

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...


@dataclass(slots=True)
class _Result:
    """What an INSERT whose row key was asked for returns (PostgreSQL has no lastrowid)."""

    rowcount: int
    lastrowid: int | None

    def fetchone(self) -> Any:
        return None

    def fetchall(self) -> list[Any]:
        return []

    def fetchmany(self, size: int = 1) -> list[Any]:
        return []

    def __iter__(self) -> Iterator[Any]:
        return iter(())


_PRAGMA = re.compile(r"^\s*PRAGMA\s+(\w+)\s*(?:=\s*(\w+))?\s*$", re.IGNORECASE)


class ServerConnection:
    """A driver connection behind the :class:`sqlite3.Connection` subset the stores use.

    Args:
        raw: The psycopg or PyMySQL connection (autocommit; transactions are
            begun and ended by :class:`ServerDatabase`).
        backend: Its engine.
        keys: Table name -> its integer row key column (sequences to advance after a copy).
        database_bytes: Returns the database's size (``PRAGMA page_count``).
        schema_version: The schema version (``PRAGMA user_version``).
    """

    __slots__ = (
        "_database_bytes",
        "_keys",
        "_open_streams",
        "_raw",
        "_streams",
        "backend",
        "driver_error",
        "in_transaction",
        "integrity_error",
        "schema_version",
        "total_changes",
        "tracked_generations",
    )

    def __init__(
        self,
        raw: Any,
        backend: Backend,
        *,
        keys: dict[str, str],
        database_bytes: Callable[[ServerConnection], int],
        schema_version: int,
    ) -> None:
        self._raw = raw
        self.backend = backend
        self._keys = keys
        self._database_bytes = database_bytes
        self.schema_version = schema_version
        # Counters (ServerSchema.generations) whose triggers a writable open found or made.
        self.tracked_generations: frozenset[str] = frozenset()
        self.in_transaction = False
        self.total_changes = 0
        self._streams = 0
        self._open_streams: list[Any] = []
        module = driver_module(backend)
        self.driver_error: type[Exception] = module.Error
        self.integrity_error: type[Exception] = module.IntegrityError

    @property
    def raw(self) -> Any:
        """The driver's connection."""
        return self._raw

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        """Answer one of the few SQLite PRAGMAs the stores read or set (see :meth:`_pragma`).

        Every other statement runs through the catalogue (:func:`execute` of
        :mod:`provenance._io.database`), compiled for this dialect.

        Raises:
            ValueError: ``sql`` is not a PRAGMA (a statement outside the catalogue).
        """
        match = _PRAGMA.match(sql)
        if match is None or parameters:
            raise ValueError(
                f"{self.backend.label}: only catalogue statements run on a server, not {sql!r}"
            )
        return self._pragma(match)

    def run(self, statement: Compiled, parameters: Sequence[Any] = (), /) -> Any:
        """Run one compiled statement; returns a cursor (or a result with ``lastrowid``).

        Raises:
            sqlite3.IntegrityError: A constraint was violated (nothing of the
                statement was stored; the transaction goes on).
        """
        params = tuple(statement.arrange(parameters))
        if statement.kind is Kind.INSERT and self.backend is Backend.POSTGRESQL:
            return self._pg_insert(statement, params)
        if statement.kind is Kind.STREAM:
            cursor = self._stream_cursor()
        elif statement.binary and self.backend is Backend.POSTGRESQL:
            cursor = self._raw.cursor(binary=True)
        else:
            cursor = self._raw.cursor()
        try:
            cursor.execute(statement.sql, params)
        except self.integrity_error as exc:
            raise sqlite3.IntegrityError(driver_message(exc)) from exc
        if statement.kind is not Kind.SELECT and statement.kind is not Kind.STREAM:
            self.total_changes += max(cursor.rowcount, 0)
        return cursor

    def _stream_cursor(self) -> Any:
        """A cursor that fetches rows from the server as they are read, not all at once.

        For the statements made with ``stream=True`` (every perceptual row, a
        whole table to copy): a client-side cursor would hold the whole result in
        memory. PostgreSQL: a named (server-side) cursor, inside the caller's
        transaction. MariaDB: an unbuffered cursor, which must be read to the
        end before the connection runs anything else.
        """
        self._streams += 1
        if self.backend is Backend.POSTGRESQL:
            cursor = self._raw.cursor(name=f"provenance_stream_{self._streams}")
        else:
            import pymysql.cursors

            cursor = self._raw.cursor(pymysql.cursors.SSCursor)
        self._open_streams.append(cursor)  # closed when the transaction ends
        return cursor

    def _close_streams(self) -> None:
        streams, self._open_streams = self._open_streams, []
        for cursor in streams:
            with contextlib.suppress(self.driver_error):
                cursor.close()

    def _pg_insert(self, statement: Compiled, params: tuple[Any, ...]) -> Any:
        # A failed statement aborts a PostgreSQL transaction. An insert whose
        # duplicate the caller expects (and catches) therefore runs with ON
        # CONFLICT DO NOTHING, and "no row" is raised as SQLite raises the
        # duplicate: the transaction goes on, as with SQLite and InnoDB, in one
        # round trip (a savepoint took three).
        cursor = self._raw.cursor()
        try:
            cursor.execute(statement.sql, params)
        except self.integrity_error as exc:
            raise sqlite3.IntegrityError(driver_message(exc)) from exc
        row = cursor.fetchone() if statement.returning else None
        stored = row is not None if statement.returning else cursor.rowcount > 0
        if statement.duplicates and not stored:
            raise sqlite3.IntegrityError("UNIQUE constraint failed (the row exists)")
        self.total_changes += int(stored)  # an ignored duplicate changed nothing
        return _Result(int(stored), None if row is None else int(row[0]))

    def run_many(self, statement: Compiled, parameters: Iterable[Sequence[Any]], /) -> Any:
        """Run one compiled statement for each parameter row (no row keys)."""
        rows = [tuple(statement.arrange(p)) for p in parameters]
        cursor = self._raw.cursor()
        if not rows:
            return cursor
        # Many rows at once (psycopg pipelines them): no row keys, no savepoint.
        sql = statement.plain or statement.sql
        try:
            cursor.executemany(sql, rows)
        except self.integrity_error as exc:
            raise sqlite3.IntegrityError(driver_message(exc)) from exc
        self.total_changes += max(cursor.rowcount, 0)
        return cursor

    def _pragma(self, match: re.Match[str]) -> Any:
        """The few PRAGMAs the stores read or set, answered for a server."""
        name, value = match.group(1).lower(), match.group(2)
        rows: list[tuple[int]] = []
        if name == "user_version":
            rows = [(self.schema_version,)]
        elif name == "page_size":
            rows = [(1,)]
        elif name == "page_count":
            rows = [(self._database_bytes(self),)]
        elif name == "synchronous" and value is not None and self.backend is Backend.POSTGRESQL:
            # Durability of one commit: PostgreSQL can relax it per session;
            # MariaDB's is server-wide (innodb_flush_log_at_trx_commit).
            setting = "on" if value.upper() in {"FULL", "EXTRA"} else "off"
            with self._raw.cursor() as cursor:
                cursor.execute(f"SET synchronous_commit = {setting}")
        return _Rows(rows)

    def advance_keys(self) -> None:
        """Move PostgreSQL's row key sequences past the keys stored (after rows copied with keys).

        MariaDB and SQLite continue after the largest key by themselves.
        """
        if self.backend is not Backend.POSTGRESQL:
            return
        with self._raw.cursor() as cursor:
            for table, key in self._keys.items():
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{key}'), "  # noqa: S608 - schema constants
                    f"COALESCE((SELECT MAX({key}) FROM {table}), 0) + 1, false)"
                )

    def begin(self, *, write: bool, lock_sql: str) -> None:
        """Begin a transaction: a write takes the writer row first; a read, a snapshot."""
        with self._raw.cursor() as cursor:
            self.in_transaction = True
            if self.backend is Backend.POSTGRESQL:
                # One round trip: PostgreSQL takes several statements without parameters.
                cursor.execute(
                    f"BEGIN; {lock_sql}"
                    if write
                    else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                )
            elif write:
                cursor.execute("START TRANSACTION")
                cursor.execute(lock_sql)
            else:
                cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")

    def commit(self) -> None:
        """Commit the open transaction."""
        self._close_streams()
        try:
            with self._raw.cursor() as cursor:
                cursor.execute("COMMIT")
        finally:
            self.in_transaction = False

    def rollback(self) -> None:
        """Roll back the open transaction (errors ignored: the connection may be gone)."""
        self._close_streams()
        self.in_transaction = False
        try:
            with self._raw.cursor() as cursor:
                cursor.execute("ROLLBACK")
        except self.driver_error:
            pass

    def close(self) -> None:
        """Close the driver connection."""
        with contextlib.suppress(self.driver_error):
            self._raw.close()


@dataclass(slots=True)
class _Rows:
    rows: list[Any]

    rowcount: int = -1
    lastrowid: int | None = None

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Any]:
        return list(self.rows)

    def fetchmany(self, size: int = 1) -> list[Any]:
        out, self.rows = self.rows[:size], self.rows[size:]
        return out

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)


def driver_module(backend: Backend) -> Any:
    if backend is Backend.POSTGRESQL:
        import psycopg

        return psycopg
    import pymysql

    return pymysql
