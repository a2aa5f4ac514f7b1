"""Server inventory URLs: which backend, and how a URL may be shown (never its password)."""

from __future__ import annotations

import enum
import os
import re
import urllib.parse
from dataclasses import dataclass, field

from provenance.errors import InventoryError


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
