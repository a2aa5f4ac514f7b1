"""Driver errors (psycopg, PyMySQL) as one InventoryError naming the backend and the problem."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provenance._io.database._url import ServerURL, redact
from provenance.errors import InventoryError

if TYPE_CHECKING:
    from provenance._io.database._transactions import ServerDatabase

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


def error_code(exc: BaseException) -> str:
    """MySQL error number (PyMySQL) or SQLSTATE (psycopg) of a driver error, or ''."""
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], int):
        return str(args[0])
    sqlstate = getattr(exc, "sqlstate", None)
    return str(sqlstate) if sqlstate else ""


def driver_message(exc: BaseException) -> str:
    """The driver's own one-line reason, redacted and without the driver's prefix."""
    args = list(getattr(exc, "args", ()))
    text = str(args[1]) if len(args) > 1 and isinstance(args[0], int) else str(exc)
    return redact(" ".join(text.split()))[:300]


def connect_error(exc: BaseException, url: ServerURL) -> InventoryError:
    code = error_code(exc)
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
            problem = f"cannot connect: {driver_message(exc)}"
    return InventoryError(f"{url.backend.label}: {problem}", path=url.redacted)


def is_lock_error(exc: BaseException) -> bool:
    """Whether ``exc`` (an :class:`InventoryError` from a server) was a lock timeout."""
    cause = exc.__cause__
    return cause is not None and error_code(cause) in _LOCK_CODES


def translate(exc: BaseException, db: ServerDatabase) -> InventoryError:
    """A driver error during a statement, as one :class:`InventoryError` naming the backend."""
    code = error_code(exc)
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
    return InventoryError(f"{label} error: {driver_message(exc)}", path=db.path)
