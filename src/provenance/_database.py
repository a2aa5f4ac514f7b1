"""The server border of the inventory: PostgreSQL and MariaDB/MySQL (issue 16).

SQLite stays the embedded default (:mod:`provenance._sqlite`); a fleet names a
server by URL instead of a path (``postgresql://user:pw@host/db``,
``mysql://...``, ``mariadb://...``). This module owns what differs between the
engines, so that :mod:`provenance.inventory` and :mod:`provenance.audit` keep one
set of queries:

* **URLs** (:func:`parse_url`, :func:`redact`): which backend, and the URL as it
  may be shown. Credentials never appear in a message, a log or the audit log:
  every error names the *redacted* URL (``postgresql://user:***@host/db``).
* **Connecting** (:func:`open_server`): SQLAlchemy turns the URL into the
  driver's arguments (psycopg 3, PyMySQL) and compiles the schema's DDL for the
  dialect; every driver error at the border becomes one
  :class:`~provenance.errors.InventoryError` naming the backend and the problem:
  unreachable, wrong credentials, unknown database, not a provenance inventory,
  a schema from the future (:class:`~provenance.errors.SchemaVersionError`).
* **The connection protocol** (:class:`ServerConnection`): the part of
  :class:`sqlite3.Connection` the stores use (``execute``, ``executemany``,
  ``total_changes``, ``in_transaction``), over the driver's connection. The
  stores write their SQL once, in the SQL every engine shares, with ``?``
  placeholders; each distinct statement is rewritten once for the dialect and
  cached (placeholders, ``INSERT OR IGNORE``, the row key of an insert). A
  constraint violation is raised as :class:`sqlite3.IntegrityError`, as SQLite
  raises it, so the stores' idempotent inserts work unchanged; on PostgreSQL
  such an insert runs under a savepoint, so the transaction survives it.
* **Transactions** (:class:`ServerDatabase`, the same interface as
  :class:`provenance._sqlite.Database`): a write takes the *writer row* of
  ``provenance_meta`` with ``SELECT ... FOR UPDATE`` first, so writers are
  serialised by the database exactly as SQLite's ``BEGIN IMMEDIATE`` serialises
  them: one gap-free audit chain across processes and hosts, and no deadlock
  between two writers. A read runs on one snapshot (``REPEATABLE READ``).

Schema versions on a server: ``provenance_meta`` holds ``application`` (the
marker that this database is an inventory) and ``schema_version``; a new
database is created at the current version in one step from the caller's
SQLAlchemy tables. A later version adds a step to the caller's server
migrations, as ``_MIGRATIONS`` does for SQLite.

It never decides what is stored: tables and queries belong to the callers.
"""

from __future__ import annotations

import contextlib
import enum
import os
import random
import re
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from provenance.errors import InventoryError, SchemaVersionError

if TYPE_CHECKING:
    from sqlalchemy import MetaData, Table
    from sqlalchemy.engine import Dialect

__all__ = [
    "APPLICATION",
    "META_TABLE",
    "Backend",
    "Connection",
    "Cursor",
    "ServerConnection",
    "ServerDatabase",
    "ServerSchema",
    "ServerURL",
    "is_server_url",
    "open_server",
    "parse_url",
    "redact",
    "shown",
]

T = TypeVar("T")

APPLICATION = "provenance.inventory"
"""The ``application`` value of ``provenance_meta``: this database is an inventory."""

META_TABLE = "provenance_meta"
"""The table holding the application marker, the schema version and the writer row."""

_WRITER_ROW = "writer"
_CONNECT_TIMEOUT_S = 10
_FIRST_DELAY_S = 0.005
_MAX_DELAY_S = 0.25


class Backend(enum.Enum):
    """The database engine behind an inventory."""

    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"
    MARIADB = "mariadb"

    @property
    def label(self) -> str:
        """How messages name it."""
        return {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mariadb": "MariaDB/MySQL"}[
            self.value
        ]


# scheme (before any "+driver") -> backend, and the SQLAlchemy driver name used.
_SCHEMES = {
    "postgresql": (Backend.POSTGRESQL, "postgresql+psycopg"),
    "postgres": (Backend.POSTGRESQL, "postgresql+psycopg"),
    "mysql": (Backend.MARIADB, "mysql+pymysql"),
    "mariadb": (Backend.MARIADB, "mariadb+pymysql"),
}
_DRIVERS = {"psycopg", "pymysql"}
# "scheme://" or, once the URL went through pathlib.Path (which folds "//" into
# "/"), "scheme:/": every --inventory value and $PROVENANCE_INVENTORY is a Path
# somewhere on its way, so both spellings name the same server.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):/+(?=[^/])")


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
    """The part of :class:`sqlite3.Connection` the stores use; :class:`ServerConnection` too."""

    @property
    def in_transaction(self) -> bool: ...

    @property
    def total_changes(self) -> int: ...

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any: ...


# --- URLs ----------------------------------------------------------------------------


def is_server_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than an SQLite path.

    A URL that went through :class:`pathlib.Path` (``scheme:/...``) still is one.
    """
    text = os.fspath(location).strip()
    match = _SCHEME.match(text)
    if match is None:
        return False
    # Any "scheme://" is meant as a URL (an unknown scheme is then refused by name).
    return "://" in text[: match.end()] or match.group(1).lower().partition("+")[0] in _SCHEMES


def shown(location: str | os.PathLike[str]) -> str:
    """How a location may be shown: a server URL unfolded and without its password."""
    text = os.fspath(location)
    return redact(_unfold(text)) if is_server_url(text) else text


def _unfold(text: str) -> str:
    """``text`` with the ``//`` after its scheme restored (see ``_SCHEME``)."""
    return _SCHEME.sub(lambda m: f"{m.group(1)}://", text.strip(), count=1)


def redact(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@`` in it replaced by ``***``."""
    return re.sub(r"(:/+[^:/@\s]*):[^@\s]*@", r"\1:***@", text)


@dataclass(frozen=True, slots=True)
class ServerURL:
    """A parsed server URL; its ``str()`` and ``repr()`` never show the password.

    Attributes:
        backend: The engine.
        driver: The SQLAlchemy ``dialect+driver`` name.
        host: Host name or address.
        port: TCP port, or None for the driver's default.
        database: Database name.
        user: User name, if given.
        password: Password, if given (kept out of ``repr``).
        query: Extra ``?name=value`` options, passed to the driver.
    """

    backend: Backend
    driver: str
    host: str
    port: int | None
    database: str
    user: str | None
    password: str | None = field(repr=False)
    query: tuple[tuple[str, str], ...] = ()

    @property
    def redacted(self) -> str:
        """The URL as it may be shown: the password replaced by ``***``."""
        auth = ""
        if self.user is not None:
            auth = urllib.parse.quote(self.user, safe="")
            auth += ":***@" if self.password is not None else "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.backend.value}://{auth}{host}{port}/{self.database}"

    def __str__(self) -> str:
        return self.redacted


def parse_url(text: str | os.PathLike[str]) -> ServerURL:
    """Parse a PostgreSQL or MariaDB/MySQL URL.

    Accepted: ``postgresql://``, ``postgres://``, ``mysql://``, ``mariadb://``,
    optionally with ``+psycopg`` / ``+pymysql``; user, password and database
    percent-encoded as in any URL.

    Raises:
        InventoryError: Another scheme or driver, no host, no database name,
            or a malformed port (the message shows the URL redacted).
    """
    text = _unfold(os.fspath(text))
    shown = redact(text)
    parts = urllib.parse.urlsplit(text)
    scheme, _, driver = parts.scheme.lower().partition("+")
    if scheme not in _SCHEMES:
        raise InventoryError(
            f"unsupported inventory URL scheme {parts.scheme!r}: use a file path (SQLite), "
            "postgresql://, mysql:// or mariadb://",
            path=shown,
        )
    backend, sa_driver = _SCHEMES[scheme]
    if driver and driver not in _DRIVERS:
        raise InventoryError(
            f"unsupported driver {driver!r} for {backend.label}: provenance uses "
            f"{sa_driver.partition('+')[2]}",
            path=shown,
        )
    try:
        port = parts.port
    except ValueError:
        raise InventoryError("the port is not a number from 1 to 65535", path=shown) from None
    database = urllib.parse.unquote(parts.path.lstrip("/"))
    if not parts.hostname:
        raise InventoryError(f"{backend.label} URL without a host", path=shown)
    if not database or "/" in database:
        raise InventoryError(
            f"{backend.label} URL without a database name (…/DATABASE)", path=shown
        )
    return ServerURL(
        backend=backend,
        driver=sa_driver,
        host=parts.hostname,
        port=port,
        database=database,
        user=None if parts.username is None else urllib.parse.unquote(parts.username),
        password=None if parts.password is None else urllib.parse.unquote(parts.password),
        query=tuple(urllib.parse.parse_qsl(parts.query)),
    )


# --- errors --------------------------------------------------------------------------

# (backend, SQLSTATE or MySQL error number) -> what went wrong, for the user.
_CONNECT_PROBLEMS: dict[str, str] = {
    "28P01": "wrong user name or password",
    "28000": "the server refused this user (pg_hba.conf, or no such role)",
    "3D000": "the database does not exist (create it first: CREATE DATABASE ...)",
    "1045": "wrong user name or password",
    "1044": "this user may not use the database",
    "1049": "the database does not exist (create it first: CREATE DATABASE ...)",
    "2003": "cannot reach the server (is it running, and is the host and port right?)",
    "2005": "unknown server host name",
    "2013": "lost the connection to the server while connecting",
}
_LOCK_CODES = {"55P03", "40P01", "40001", "1205", "1213"}


def _error_code(exc: BaseException) -> str:
    """MySQL error number (PyMySQL) or SQLSTATE (psycopg) of a driver error, or ''."""
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], int):
        return str(args[0])
    sqlstate = getattr(exc, "sqlstate", None)
    return str(sqlstate) if sqlstate else ""


def _driver_message(exc: BaseException) -> str:
    """The driver's own one-line reason, redacted and without the driver's prefix."""
    args = list(getattr(exc, "args", ()))
    text = str(args[1]) if len(args) > 1 and isinstance(args[0], int) else str(exc)
    return redact(" ".join(text.split()))[:300]


def _connect_error(exc: BaseException, url: ServerURL) -> InventoryError:
    code = _error_code(exc)
    problem = _CONNECT_PROBLEMS.get(code)
    text = str(exc).lower()
    if problem is None:
        if "password authentication failed" in text or "access denied" in text:
            problem = "wrong user name or password"
        elif "does not exist" in text and "database" in text:
            problem = _CONNECT_PROBLEMS["3D000"]
        elif any(
            s in text
            for s in ("connection refused", "could not connect", "timeout", "timed out", "no route")
        ):
            problem = _CONNECT_PROBLEMS["2003"]
        elif "name or service not known" in text or "could not translate host" in text:
            problem = "unknown server host name"
        else:
            problem = f"cannot connect: {_driver_message(exc)}"
    return InventoryError(f"{url.backend.label}: {problem}", path=url.redacted)


def is_lock_error(exc: BaseException) -> bool:
    """Whether ``exc`` (an :class:`InventoryError` from a server) was a lock timeout."""
    cause = exc.__cause__
    return cause is not None and _error_code(cause) in _LOCK_CODES


def _translate(exc: BaseException, db: ServerDatabase) -> InventoryError:
    """A driver error during a statement, as one :class:`InventoryError` naming the backend."""
    code = _error_code(exc)
    label = db.backend.label
    if code in _LOCK_CODES:
        return InventoryError(
            f"{label}: inventory is locked by another writer for {db.busy_timeout_s:g} s; "
            "nothing was recorded (raise busy_timeout_s, or find the session holding the lock)",
            path=db.path,
        )
    if code in {"25006", "1792"}:
        return InventoryError(
            f"{label}: inventory is read-only (opened read-only); nothing was recorded",
            path=db.path,
        )
    if code.startswith("08") or code in {"2006", "2013", "2055"} or "closed" in str(exc):
        return InventoryError(
            f"{label}: lost the connection to the server; nothing was recorded", path=db.path
        )
    return InventoryError(f"{label} error: {_driver_message(exc)}", path=db.path)


# --- the connection protocol ------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class _Statement:
    sql: str
    kind: str  # "select", "insert", "insert_ignore", "write", "pragma"
    returning: str | None = None  # PostgreSQL: the row key column an INSERT returns


_INSERT = re.compile(r"^\s*INSERT\s+(OR\s+IGNORE\s+)?INTO\s+(\w+)", re.IGNORECASE)
_WRITE = re.compile(r"^\s*(UPDATE|DELETE)\b", re.IGNORECASE)
_PRAGMA = re.compile(r"^\s*PRAGMA\s+(\w+)\s*(?:=\s*(\w+))?\s*$", re.IGNORECASE)


class ServerConnection:
    """A driver connection behind the :class:`sqlite3.Connection` subset the stores use.

    Args:
        raw: The psycopg or PyMySQL connection (autocommit; transactions are
            begun and ended by :class:`ServerDatabase`).
        backend: Its engine.
        keys: Table name -> its integer row key column (what ``lastrowid`` reports).
        database_bytes: Returns the database's size (``PRAGMA page_count``).
        schema_version: The schema version (``PRAGMA user_version``).
    """

    __slots__ = (
        "_cache",
        "_database_bytes",
        "_driver_error",
        "_integrity_error",
        "_keys",
        "_raw",
        "backend",
        "in_transaction",
        "schema_version",
        "total_changes",
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
        self._cache: dict[str, _Statement] = {}
        self.in_transaction = False
        self.total_changes = 0
        module = _driver_module(backend)
        self._driver_error: type[Exception] = module.Error
        self._integrity_error: type[Exception] = module.IntegrityError

    @property
    def raw(self) -> Any:
        """The driver's connection."""
        return self._raw

    def _statement(self, sql: str) -> _Statement:
        found = self._cache.get(sql)
        if found is None:
            found = self._cache[sql] = self._rewrite(sql)
        return found

    def _rewrite(self, sql: str) -> _Statement:
        """The statement for this dialect: computed once per distinct SQL text."""
        pragma = _PRAGMA.match(sql)
        if pragma:
            return _Statement(sql, "pragma")
        # Both drivers use the "format" paramstyle: a literal % must be doubled.
        text = sql.replace("%", "%%").replace("?", "%s")
        insert = _INSERT.match(text)
        if insert is None:
            kind = "write" if _WRITE.match(text) else "select"
            return _Statement(text, kind)
        ignore, table = insert.group(1), insert.group(2)
        if ignore:
            text = _INSERT.sub(lambda m: f"INSERT INTO {m.group(2)}", text, count=1)
            if self.backend is Backend.POSTGRESQL:
                return _Statement(text + " ON CONFLICT DO NOTHING", "insert_ignore")
            return _Statement(text.replace("INSERT INTO", "INSERT IGNORE INTO", 1), "insert_ignore")
        key = self._keys.get(table.lower())
        if self.backend is Backend.POSTGRESQL and key is not None:
            return _Statement(f"{text} RETURNING {key}", "insert", returning=key)
        return _Statement(text, "insert")

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        """Run one statement; returns a cursor (or a result with ``lastrowid`` for inserts).

        Raises:
            sqlite3.IntegrityError: A constraint was violated (nothing of the
                statement was stored; the transaction goes on).
        """
        statement = self._statement(sql)
        if statement.kind == "pragma":
            return self._pragma(sql)
        params = tuple(parameters)
        if statement.kind == "insert" and self.backend is Backend.POSTGRESQL:
            return self._pg_insert(statement, params)
        cursor = self._raw.cursor()
        try:
            cursor.execute(statement.sql, params)
        except self._integrity_error as exc:
            raise sqlite3.IntegrityError(_driver_message(exc)) from exc
        if statement.kind != "select":
            self.total_changes += max(cursor.rowcount, 0)
        return cursor

    def _pg_insert(self, statement: _Statement, params: tuple[Any, ...]) -> Any:
        # A failed statement aborts a PostgreSQL transaction: a savepoint keeps
        # it usable after a duplicate, as SQLite and InnoDB do.
        cursor = self._raw.cursor()
        cursor.execute("SAVEPOINT provenance_insert")
        try:
            cursor.execute(statement.sql, params)
        except self._integrity_error as exc:
            cursor.execute("ROLLBACK TO SAVEPOINT provenance_insert")
            raise sqlite3.IntegrityError(_driver_message(exc)) from exc
        row = cursor.fetchone() if statement.returning else None
        cursor.execute("RELEASE SAVEPOINT provenance_insert")
        self.total_changes += 1
        return _Result(1, None if row is None else int(row[0]))

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any:
        """Run one statement for each parameter row (``INSERT OR IGNORE`` rows, in practice)."""
        statement = self._statement(sql)
        rows = [tuple(p) for p in parameters]
        cursor = self._raw.cursor()
        if not rows:
            return cursor
        if statement.kind == "insert" and self.backend is Backend.POSTGRESQL:
            for row in rows:
                self._pg_insert(statement, row)
            return cursor
        try:
            cursor.executemany(statement.sql, rows)
        except self._integrity_error as exc:
            raise sqlite3.IntegrityError(_driver_message(exc)) from exc
        self.total_changes += max(cursor.rowcount, 0)
        return cursor

    def _pragma(self, sql: str) -> Any:
        """The few PRAGMAs the stores read or set, answered for a server."""
        match = _PRAGMA.match(sql)
        assert match is not None  # noqa: S101 - classified as a pragma by the same pattern
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

    def begin(self, *, write: bool, lock_sql: str) -> None:
        """Begin a transaction: a write takes the writer row first; a read, a snapshot."""
        with self._raw.cursor() as cursor:
            if self.backend is Backend.POSTGRESQL:
                if write:
                    cursor.execute("BEGIN")
                else:
                    cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            elif write:
                cursor.execute("START TRANSACTION")
            else:
                cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            self.in_transaction = True
            if write:
                cursor.execute(lock_sql)

    def commit(self) -> None:
        """Commit the open transaction."""
        try:
            with self._raw.cursor() as cursor:
                cursor.execute("COMMIT")
        finally:
            self.in_transaction = False

    def rollback(self) -> None:
        """Roll back the open transaction (errors ignored: the connection may be gone)."""
        self.in_transaction = False
        try:
            with self._raw.cursor() as cursor:
                cursor.execute("ROLLBACK")
        except self._driver_error:
            pass

    def close(self) -> None:
        """Close the driver connection."""
        with contextlib.suppress(self._driver_error):
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


def _driver_module(backend: Backend) -> Any:
    if backend is Backend.POSTGRESQL:
        import psycopg

        return psycopg
    import pymysql

    return pymysql


# --- the database ------------------------------------------------------------------------


class ServerDatabase:
    """One server connection plus transaction helpers: :class:`provenance._sqlite.Database`'s API.

    Not thread-safe and not fork-safe: open one per thread or process.

    Attributes:
        path: The redacted URL (what messages name).
        backend: The engine.
        busy_timeout_s: How long a writer waits for the writer row.
        read_only: Whether writes are refused.
    """

    __slots__ = ("_conn", "_lock_sql", "backend", "busy_timeout_s", "path", "read_only")

    def __init__(
        self,
        connection: ServerConnection,
        url: ServerURL,
        *,
        busy_timeout_s: float,
        lock_sql: str,
        read_only: bool,
    ) -> None:
        self._conn: ServerConnection | None = connection
        self.path = url.redacted
        self.backend = url.backend
        self.busy_timeout_s = busy_timeout_s
        self.read_only = read_only
        self._lock_sql = lock_sql

    @property
    def connection(self) -> ServerConnection:
        """The open connection.

        Raises:
            InventoryError: The database was closed.
        """
        if self._conn is None:
            raise InventoryError("inventory is closed", path=self.path)
        return self._conn

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._conn is None

    def close(self) -> None:
        """Roll back anything pending and close the connection; idempotent."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.in_transaction:
            conn.rollback()
        conn.close()

    def write(self, work: Callable[[Any], T]) -> T:
        """Run ``work`` in one write transaction, holding the writer row; all or nothing.

        Inside a transaction already (a nested call), ``work`` joins it. A
        deadlock or serialisation failure (which the writer row should
        prevent) is retried with back-off up to the busy timeout.

        Raises:
            InventoryError: The server failed, or the writer row stayed taken
                past the busy timeout; the transaction was rolled back.
        """
        conn = self.connection
        if conn.in_transaction:
            return self._guard(work, conn)
        if self.read_only:
            raise InventoryError(
                f"{self.backend.label}: inventory is read-only (opened read-only); "
                "nothing was recorded",
                path=self.path,
            )
        deadline = time.monotonic() + self.busy_timeout_s
        delay = _FIRST_DELAY_S
        while True:
            try:
                conn.begin(write=True, lock_sql=self._lock_sql)
                try:
                    result = work(conn)
                    conn.commit()
                except BaseException:
                    if conn.in_transaction:
                        conn.rollback()
                    raise
                return result
            except conn._driver_error as exc:
                remaining = deadline - time.monotonic()
                if _error_code(exc) in {"40P01", "40001", "1213"} and remaining > 0:
                    time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))  # noqa: S311 - jitter, not crypto
                    delay = min(delay * 2, _MAX_DELAY_S)
                    continue
                raise _translate(exc, self) from exc

    def retry_busy(self, work: Callable[[Any], T]) -> T:
        """Run ``work`` outside a transaction (a server needs no retry for it)."""
        return self._guard(work, self.connection)

    def read(self, work: Callable[[Any], T]) -> T:
        """Run ``work`` on one consistent snapshot.

        Raises:
            InventoryError: The server failed.
        """
        conn = self.connection
        if conn.in_transaction:
            return self._guard(work, conn)
        try:
            conn.begin(write=False, lock_sql=self._lock_sql)
            try:
                return work(conn)
            finally:
                if conn.in_transaction:
                    conn.commit()
        except conn._driver_error as exc:
            if conn.in_transaction:
                conn.rollback()
            raise _translate(exc, self) from exc

    def _guard(self, work: Callable[[Any], T], conn: ServerConnection) -> T:
        try:
            return work(conn)
        except conn._driver_error as exc:
            raise _translate(exc, self) from exc


# --- opening ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerSchema:
    """What :func:`open_server` creates and checks: the caller's tables and version.

    Attributes:
        metadata: The SQLAlchemy tables (``provenance_meta`` is added here).
        version: The schema version this code reads and writes.
        keys: Table -> integer row key column, for ``lastrowid``.
        after_create: Statements run once after the tables are created.
    """

    metadata: MetaData
    version: int
    keys: dict[str, str]
    after_create: tuple[str, ...] = ()


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
    dialect = engine.dialect
    raw = _connect(dialect, engine_url, url, busy_timeout_s)
    db: ServerDatabase | None = None
    try:
        meta = meta_table(schema.metadata)
        lock_sql = str(
            sa.select(meta.c.value)
            .where(meta.c.name == _WRITER_ROW)
            .with_for_update()
            .compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        )
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
        version = _prepare(db, schema, dialect, create=create and not read_only)
        conn.schema_version = version
        return db
    except BaseException as exc:
        if db is not None:
            db.close()
        else:
            with_driver = _driver_module(url.backend)
            with contextlib.suppress(with_driver.Error):
                raw.close()
        if isinstance(exc, _driver_module(url.backend).Error):
            raise _connect_error(exc, url) from exc
        raise


def _connect(dialect: Dialect, engine_url: Any, url: ServerURL, busy_timeout_s: float) -> Any:
    """The driver connection, in autocommit mode, with the lock wait bounded."""
    module = _driver_module(url.backend)
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
            "SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"
        )
    try:
        return module.connect(*cargs, **cparams)
    except module.Error as exc:
        raise _connect_error(exc, url) from exc


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


def _prepare(db: ServerDatabase, schema: ServerSchema, dialect: Dialect, *, create: bool) -> int:
    """Check (or create) the schema; returns the schema version found."""
    conn = db.connection
    label = db.backend.label
    tables = _tables_present(conn)
    if META_TABLE not in tables:
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
        raise SchemaVersionError(
            f"inventory schema version {version} is older than this provenance's "
            f"({schema.version}) and there is no server migration for it yet",
            found=version,
            supported=schema.version,
            path=db.path,
        )
    return version


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


def _create(db: ServerDatabase, schema: ServerSchema, dialect: Dialect) -> None:
    """Create the schema once, under a lock, unless another process just did."""
    conn = db.connection
    with conn.raw.cursor() as cursor:
        if db.backend is Backend.POSTGRESQL:
            cursor.execute(f"SELECT pg_advisory_lock({_CREATE_LOCK:d})")
        else:
            cursor.execute("SELECT GET_LOCK(%s, %s)", (f"provenance.create.{_CREATE_LOCK}", 60))
    try:
        tables = _tables_present(conn)
        if META_TABLE not in tables:
            _refuse_foreign(db, tables, schema)
            _create_tables(db, schema, dialect)
    finally:
        with conn.raw.cursor() as cursor:
            if db.backend is Backend.POSTGRESQL:
                cursor.execute(f"SELECT pg_advisory_unlock({_CREATE_LOCK:d})")
            else:
                cursor.execute("SELECT RELEASE_LOCK(%s)", (f"provenance.create.{_CREATE_LOCK}",))


def _create_tables(db: ServerDatabase, schema: ServerSchema, dialect: Dialect) -> None:
    """Create every table, then the marker rows last, so a half-made schema is never an inventory.

    PostgreSQL runs it all in one transaction. MariaDB commits each CREATE
    TABLE by itself, so every statement is one that can run again
    (``IF NOT EXISTS``): a creation that stopped half-way is finished by the
    next process that opens the database.
    """
    from sqlalchemy.schema import CreateIndex, CreateTable

    conn = db.connection
    statements: list[str] = []
    for table in schema.metadata.sorted_tables:
        statements.append(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)))
        statements.extend(
            str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect))
            for index in table.indexes
        )
    marker = (
        f"INSERT INTO {META_TABLE} (name, value) VALUES "  # noqa: S608 - constants
        f"('application', '{APPLICATION}'), ('schema_version', '{schema.version:d}'), "
        f"('{_WRITER_ROW}', '')"
    )
    postgres = db.backend is Backend.POSTGRESQL
    with conn.raw.cursor() as cursor:
        try:
            if postgres:
                cursor.execute("BEGIN")
            for statement in statements:
                cursor.execute(statement)
            for statement in schema.after_create:
                # Already there when an earlier creation stopped after it.
                with contextlib.suppress(conn._integrity_error):
                    cursor.execute(statement)
            cursor.execute(marker)
            if postgres:
                cursor.execute("COMMIT")
        except BaseException:
            if postgres:
                cursor.execute("ROLLBACK")
            raise
