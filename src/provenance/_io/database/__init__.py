"""The server border of the inventory: PostgreSQL and MariaDB/MySQL (issue 16).

SQLite stays the embedded default (:mod:`provenance._io.sqlite`); a fleet names a
server by URL instead of a path (``postgresql://user:pw@host/db``,
``mysql://...``, ``mariadb://...``). This module owns what differs between the
engines, so that :mod:`provenance.inventory` and :mod:`provenance.audit` keep one
set of statements:

* **URLs** (:func:`parse_url`, :func:`redact`): which backend, and the URL as it
  may be shown. Credentials never appear in a message, a log or the audit log:
  every error names the *redacted* URL (``postgresql://user:***@host/db``).
* **Connecting** (:func:`open_server`): SQLAlchemy turns the URL into the
  driver's arguments (psycopg 3, PyMySQL) and compiles the schema's DDL for the
  dialect; every driver error at the border becomes one
  :class:`~provenance.errors.InventoryError` naming the backend and the problem:
  unreachable, wrong credentials, unknown database, not a provenance inventory,
  a schema from the future (:class:`~provenance.errors.SchemaVersionError`).
* **The statement catalogue** (:class:`Catalogue`, :func:`execute`): the
  stores write each statement once as a SQLAlchemy Core expression over their
  tables; it is compiled once per dialect (SQLite, PostgreSQL, MariaDB/MySQL),
  with SQLAlchemy's own constructs for what the engines spell differently
  (``ON CONFLICT DO NOTHING`` / ``INSERT IGNORE``, ``RETURNING``, ``LIMIT``),
  cached, and run on the driver's connection: :mod:`sqlite3` for SQLite, the
  :class:`ServerConnection` (the part of :class:`sqlite3.Connection` the stores
  use) for a server. A constraint violation is raised as
  :class:`sqlite3.IntegrityError`, as SQLite raises it, so the stores'
  idempotent inserts work unchanged; on PostgreSQL such an insert runs with
  ``ON CONFLICT DO NOTHING``, so the transaction survives it.
* **Transactions** (:class:`ServerDatabase`, the same interface as
  :class:`provenance._io.sqlite.Database`): a write takes the *writer row* of
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

from provenance._io.database._catalogue import (
    Catalogue,
    Compiled,
    Conflict,
    Statement,
    execute,
    executemany,
)
from provenance._io.database._connection import Connection, Cursor, ServerConnection
from provenance._io.database._errors import is_lock_error
from provenance._io.database._open import open_server
from provenance._io.database._schema import (
    APPLICATION,
    META_TABLE,
    ServerSchema,
    meta_table,
)
from provenance._io.database._transactions import ServerDatabase
from provenance._io.database._url import (
    Backend,
    ServerURL,
    is_server_url,
    parse_url,
    redact,
    shown,
)

__all__ = [
    "APPLICATION",
    "META_TABLE",
    "Backend",
    "Catalogue",
    "Compiled",
    "Conflict",
    "Connection",
    "Cursor",
    "ServerConnection",
    "ServerDatabase",
    "ServerSchema",
    "ServerURL",
    "Statement",
    "execute",
    "executemany",
    "is_lock_error",
    "is_server_url",
    "meta_table",
    "open_server",
    "parse_url",
    "redact",
    "shown",
]
