"""The SQLite border shared by :mod:`provenance.inventory` and :mod:`provenance.audit`.

It owns one connection and the two things every caller needs from it:

* :meth:`Database.write`: run a function inside ``BEGIN IMMEDIATE`` ... ``COMMIT``,
  rolled back on any exception (``KeyboardInterrupt`` included) and retried with
  jittered exponential back-off while another writer holds the lock, up to the
  busy timeout. ``BEGIN IMMEDIATE`` takes the write lock before the first read,
  so a transaction never has to upgrade a stale read snapshot (which WAL refuses
  with ``SQLITE_BUSY_SNAPSHOT`` without calling the busy handler).
* :func:`translate`: every ``sqlite3.Error`` becomes an
  :class:`~provenance.errors.InventoryError` naming the database, chained with
  ``raise ... from exc``; "database is locked" never escapes as such.

Only this module, ``inventory.py`` and ``audit.py`` may import :mod:`sqlite3`.
It must never decide what is stored: schema and queries live in the callers.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from provenance._io import database as _database
from provenance.errors import InventoryError

__all__ = ["Database", "is_busy", "is_lock_error", "translate"]

T = TypeVar("T")

# Back-off between attempts: 5 ms doubling to 250 ms, with +-50% jitter so
# writers that collided once do not collide again in lock step.
_FIRST_DELAY_S = 0.005
_MAX_DELAY_S = 0.25

_BUSY_NAMES = ("SQLITE_BUSY", "SQLITE_LOCKED")
_BUSY_TEXT = ("database is locked", "database table is locked", "database is busy")


def _error_name(exc: sqlite3.Error) -> str:
    # sqlite_errorname exists from Python 3.11; fall back to the message before.
    return str(getattr(exc, "sqlite_errorname", "") or "")


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` means another connection holds a lock we need."""
    name = _error_name(exc)
    if name:
        return name.startswith(_BUSY_NAMES)
    return any(text in str(exc).lower() for text in _BUSY_TEXT)


def is_lock_error(exc: BaseException) -> bool:
    """Whether ``exc`` (an :class:`InventoryError` from :func:`translate`) was a lock timeout.

    For callers that must not import :mod:`sqlite3` (a batch stops at the first
    lock timeout instead of waiting again for every file).
    """
    cause = exc.__cause__
    if isinstance(cause, sqlite3.Error):
        return is_busy(cause)
    return _database.is_lock_error(exc)  # a server's writer row taken past the timeout


def cannot_open(exc: sqlite3.Error) -> bool:
    """Whether SQLite could not open the file (or a file beside it: -wal, -shm)."""
    return (
        _error_name(exc).startswith("SQLITE_CANTOPEN")
        or "unable to open database" in str(exc).lower()
    )


def is_read_only(exc: sqlite3.Error) -> bool:
    """Whether SQLite refused a write (the connection, the file or a file beside it)."""
    return _error_name(exc).startswith("SQLITE_READONLY") or "readonly database" in str(exc).lower()


def translate(exc: sqlite3.Error, path: Path, *, timeout_s: float | None = None) -> InventoryError:
    """Turn an SQLite error into an :class:`InventoryError` a person can act on.

    Args:
        exc: The SQLite error.
        path: The database file, which prefixes the message.
        timeout_s: The busy timeout that expired, for lock errors.

    Returns:
        The error to raise (``raise translate(exc, path) from exc``).
    """
    name = _error_name(exc)
    text = str(exc).lower()
    if name == "SQLITE_NOTADB" or "file is not a database" in text:
        return InventoryError("is not an SQLite database", path=path)
    if is_read_only(exc):
        return InventoryError(
            "inventory is read-only (opened read-only, or the file or its folder is not "
            "writable); nothing was recorded",
            path=path,
        )
    if is_busy(exc):
        waited = f" for {timeout_s:g} s" if timeout_s is not None else ""
        return InventoryError(
            f"inventory is locked by another process{waited}; nothing was recorded "
            "(raise busy_timeout_s, or find the process holding the lock)",
            path=path,
        )
    if cannot_open(exc):
        return InventoryError(
            "cannot open the inventory (missing folder or no permission)", path=path
        )
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return InventoryError("inventory database is corrupt (SQLite: malformed)", path=path)
    if name == "SQLITE_FULL" or "disk is full" in text:
        return InventoryError(
            "disk full: the inventory cannot grow; nothing was recorded", path=path
        )
    if name.startswith("SQLITE_IOERR") or "disk i/o error" in text:
        return InventoryError("I/O error reading or writing the inventory", path=path)
    if isinstance(exc, sqlite3.IntegrityError):
        return InventoryError(f"inventory constraint violated: {exc}", path=path)
    return InventoryError(f"SQLite error: {exc}", path=path)


class Database:
    """One SQLite connection in autocommit mode plus transaction helpers.

    Not thread-safe and not fork-safe: open one per thread or process.

    Args:
        connection: A connection opened with ``isolation_level=None``.
        path: The database file (for messages).
        busy_timeout_s: How long a writer waits for the lock in total.
    """

    __slots__ = ("_conn", "busy_timeout_s", "path")

    def __init__(self, connection: sqlite3.Connection, path: Path, busy_timeout_s: float) -> None:
        self._conn: sqlite3.Connection | None = connection
        self.path = path
        self.busy_timeout_s = busy_timeout_s

    @property
    def connection(self) -> sqlite3.Connection:
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
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        finally:
            conn.close()

    def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one write transaction; all of it is stored, or none.

        Inside a transaction already (a nested call), ``work`` simply joins it.

        Raises:
            InventoryError: SQLite failed, or the lock stayed taken past the
                busy timeout; the transaction was rolled back.
        """
        conn = self.connection
        if conn.in_transaction:
            return self._guard(work, conn)
        deadline = time.monotonic() + self.busy_timeout_s
        delay = _FIRST_DELAY_S
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    # An interrupted write (exception, Ctrl-C) leaves nothing behind.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                return result
            except sqlite3.Error as exc:
                remaining = deadline - time.monotonic()
                if is_busy(exc) and remaining > 0:
                    time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))  # noqa: S311 - jitter, not crypto
                    delay = min(delay * 2, _MAX_DELAY_S)
                    continue
                raise translate(exc, self.path, timeout_s=self.busy_timeout_s) from exc

    def retry_busy(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` outside a transaction, retrying while the database is busy.

        For statements that take a lock of their own, such as switching the
        journal mode while another process opens the same new file.

        Raises:
            sqlite3.Error: Not busy, or still busy at the timeout (the caller
                translates it).
        """
        conn = self.connection
        deadline = time.monotonic() + self.busy_timeout_s
        delay = _FIRST_DELAY_S
        while True:
            try:
                return work(conn)
            except sqlite3.Error as exc:
                remaining = deadline - time.monotonic()
                if not (is_busy(exc) and remaining > 0):
                    raise
                time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))  # noqa: S311 - jitter, not crypto
                delay = min(delay * 2, _MAX_DELAY_S)

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on one consistent snapshot (a read transaction).

        Raises:
            InventoryError: SQLite failed.
        """
        conn = self.connection
        if conn.in_transaction:
            return self._guard(work, conn)
        try:
            conn.execute("BEGIN")
            try:
                return work(conn)
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise translate(exc, self.path, timeout_s=self.busy_timeout_s) from exc

    def _guard(self, work: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
        try:
            return work(conn)
        except sqlite3.Error as exc:
            raise translate(exc, self.path, timeout_s=self.busy_timeout_s) from exc
