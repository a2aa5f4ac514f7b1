"""Transactions on a server: a write holds the writer row, a read sees one snapshot."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from provenance._io.database._connection import ServerConnection
from provenance._io.database._errors import error_code, translate
from provenance._io.database._url import ServerURL
from provenance.errors import InventoryError

T = TypeVar("T")

_FIRST_DELAY_S = 0.005
_MAX_DELAY_S = 0.25


class ServerDatabase:
    """One server connection and its transactions, with the API of the SQLite ``Database``.

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
            except conn.driver_error as exc:
                remaining = deadline - time.monotonic()
                if error_code(exc) in {"40P01", "40001", "1213"} and remaining > 0:
                    time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))  # noqa: S311 - jitter, not crypto
                    delay = min(delay * 2, _MAX_DELAY_S)
                    continue
                raise translate(exc, self) from exc

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
        except conn.driver_error as exc:
            if conn.in_transaction:
                conn.rollback()
            raise translate(exc, self) from exc

    def _guard(self, work: Callable[[Any], T], conn: ServerConnection) -> T:
        try:
            return work(conn)
        except conn.driver_error as exc:
            raise translate(exc, self) from exc
