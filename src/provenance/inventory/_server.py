"""The inventory on PostgreSQL and MariaDB/MySQL: its tables as SQLAlchemy Core, and opening it.

They mirror the SQLite schema that ``inventory._MIGRATIONS`` builds (version 4:
signers, assets, files, perceptual rows and descriptors, keypoint features, the
audit tables) column for column, so one set of queries serves every engine.
What differs, and why:

* A server has one table more (version 5): ``perceptual_packs``, packed
  snapshots of sealed key ranges of perceptual rows for a verifier's cold build
  (``inventory._packs``), and a ``provenance_meta`` counter of changes to the
  perceptual rows (a trigger bumps it) that every pack records.

* Hashes are ``bytea`` / ``VARBINARY(32)`` (MariaDB cannot index a BLOB
  without a prefix length); other binary values are ``bytea`` / ``LONGBLOB``.
* Indexed text columns have a length (MariaDB indexes at most 3072 bytes) and,
  on MariaDB, the binary collation ``utf8mb4_bin``: ids and hashes compare
  byte for byte as in SQLite, never case-insensitively.
* Row keys are ``BIGINT`` identities (``BIGSERIAL`` / ``AUTO_INCREMENT``); the
  audit ``seq`` is given by the writer, never generated.
* The partial indexes keep their ``WHERE`` on PostgreSQL and index every row
  on MariaDB. The audit entries and checkpoints are append-only on every
  engine (triggers refuse UPDATE and DELETE; verification never relies on
  them); ``audit_meta`` only on SQLite, since a migration rewrites its marks.

:func:`open_server_inventory` opens a server inventory through
:func:`provenance._io.database.open_server`, which creates these tables in an
empty database and checks the version of an existing one. Imported only for a
server URL: SQLAlchemy is not loaded for SQLite.
"""

from __future__ import annotations

import functools
import os
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from provenance._io.database import ServerSchema, meta_table, open_server
from provenance._io.sqlite import Database
from provenance.audit._tables import TABLE_OPTIONS, TEXT, audit_tables
from provenance.inventory._statements import PACKS_SCHEMA_VERSION, PERCEPTUAL_GENERATION

__all__ = [
    "SERVER_SCHEMA_VERSION",
    "catalogue_metadata",
    "open_server_inventory",
    "server_schema",
]

SERVER_SCHEMA_VERSION = PACKS_SCHEMA_VERSION
"""The server inventory's schema version: SQLite's (``inventory.SCHEMA_VERSION``, 4) plus
the packed perceptual snapshots (``perceptual_packs``, version 5). A server at 4 is
upgraded in place by its next writable open; opened read-only it is read as it is,
without packs (a rolling upgrade: new verifiers first, beside writers that would
refuse version 5)."""

_MY = ("mysql", "mariadb")
_HASH = sa.LargeBinary(32).with_variant(mysql.VARBINARY(32), *_MY)
_BLOB = sa.LargeBinary().with_variant(mysql.LONGBLOB(), *_MY)
_TEXT = TEXT
_KEY = sa.BigInteger()
_TABLE_OPTIONS = TABLE_OPTIONS


def _where(condition: str) -> dict[str, Any]:
    return {"postgresql_where": sa.text(condition)}


# Long: one declaration per table, column for column as SQLite's; a list, not logic.
def _tables(metadata: sa.MetaData) -> None:
    sa.Table(
        "signers",
        metadata,
        sa.Column("signer_id", _KEY, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(768), nullable=False, unique=True),
        **_TABLE_OPTIONS,
    )
    sa.Table(
        "assets",
        metadata,
        sa.Column("asset_pk", _KEY, primary_key=True, autoincrement=True),
        sa.Column("asset_id", sa.String(255), nullable=False, unique=True),
        sa.Column("essence_sha256", _HASH, nullable=False, unique=True),
        sa.Column("parent_pk", _KEY, sa.ForeignKey("assets.asset_pk"), nullable=True),
        sa.Column("digital_source_type", sa.Text(), nullable=False),
        sa.Column("generator", sa.Text(), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("model_version", sa.String(255), nullable=False),
        sa.Column("created_at", sa.String(64), nullable=False),
        sa.Column("record_json", _TEXT, nullable=False),
        sa.Column("signer_id", _KEY, sa.ForeignKey("signers.signer_id"), nullable=False),
        sa.Column("first_signed_at", sa.String(64), nullable=False),
        sa.CheckConstraint("length(essence_sha256) = 32", name="assets_essence_32"),
        sa.Index("assets_by_parent", "parent_pk", **_where("parent_pk IS NOT NULL")),
        **_TABLE_OPTIONS,
    )
    sa.Table(
        "files",
        metadata,
        sa.Column("file_pk", _KEY, primary_key=True, autoincrement=True),
        sa.Column("sha256", _HASH, nullable=False, unique=True),
        sa.Column("asset_pk", _KEY, sa.ForeignKey("assets.asset_pk"), nullable=False),
        sa.Column("input_sha256", _HASH, nullable=False),
        sa.Column("parent_sha256", _HASH, nullable=True),
        sa.Column("path", _TEXT, nullable=True),
        sa.Column("source_path", _TEXT, nullable=True),
        sa.Column("bytes_added", sa.BigInteger(), nullable=False),
        sa.Column("active_manifest", sa.Text(), nullable=True),
        sa.Column("signed_at", sa.String(64), nullable=False),
        sa.Column("signer_id", _KEY, sa.ForeignKey("signers.signer_id"), nullable=False),
        sa.Column("record_sha256", _HASH, nullable=False),
        sa.Column("record_json", _TEXT, nullable=True),
        sa.CheckConstraint("length(sha256) = 32", name="files_sha256_32"),
        sa.Index("files_by_asset", "asset_pk"),
        sa.Index("files_by_input", "input_sha256"),
        sa.Index("files_by_parent", "parent_sha256", **_where("parent_sha256 IS NOT NULL")),
        **_TABLE_OPTIONS,
    )
    sa.Table(
        "perceptual_hashes",
        metadata,
        sa.Column("hash_pk", _KEY, primary_key=True, autoincrement=True),
        sa.Column("asset_pk", _KEY, sa.ForeignKey("assets.asset_pk"), nullable=False),
        sa.Column("scheme", sa.String(64), nullable=False),
        sa.Column("variant", sa.String(255), nullable=False),
        sa.Column("words", _BLOB, nullable=False),
        sa.UniqueConstraint("asset_pk", "scheme", "variant", name="perceptual_unique"),
        sa.CheckConstraint(
            "length(words) > 0 AND mod(length(words), 8) = 0", name="perceptual_words"
        ),
        sa.Index("perceptual_by_scheme", "scheme", "hash_pk"),
        **_TABLE_OPTIONS,
    )
    # Sealed key ranges of one scheme's rows as a cold build reads them
    # (inventory._packs): derived data, never copied by a migration.
    sa.Table(
        "perceptual_packs",
        metadata,
        sa.Column("scheme", sa.String(64), primary_key=True),
        sa.Column("first_pk", _KEY, primary_key=True, autoincrement=False),
        sa.Column("last_pk", _KEY, nullable=False),
        sa.Column("row_count", _KEY, nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("generation", _KEY, nullable=False),
        sa.Column("assets", _BLOB, nullable=False),
        sa.Column("words", _BLOB, nullable=False),
        sa.Column("checks", _BLOB, nullable=True),
        **_TABLE_OPTIONS,
    )
    sa.Table(
        "perceptual_descriptors",
        metadata,
        sa.Column(
            "asset_pk",
            _KEY,
            sa.ForeignKey("assets.asset_pk"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("scheme", sa.String(64), primary_key=True),
        sa.Column("descriptor", _BLOB, nullable=False),
        **_TABLE_OPTIONS,
    )
    sa.Table(
        "keypoint_features",
        metadata,
        sa.Column("keypoint_pk", _KEY, primary_key=True, autoincrement=True),
        sa.Column("asset_pk", _KEY, sa.ForeignKey("assets.asset_pk"), nullable=False),
        sa.Column("scheme", sa.String(64), nullable=False),
        sa.Column("features", _BLOB, nullable=False),
        sa.UniqueConstraint("asset_pk", "scheme", name="keypoints_unique"),
        sa.Index("keypoints_by_scheme", "scheme", "keypoint_pk"),
        **_TABLE_OPTIONS,
    )
    audit_tables(metadata)
    meta_table(metadata)


# Every fact of a new server inventory is bound to the audit chain from its first row.
_AFTER_CREATE = (
    "INSERT INTO audit_meta (name, value) VALUES ('bound_from_asset_pk', 1), "
    "('bound_from_file_pk', 1), ('bound_from_hash_pk', 1)",
)

_KEYS = {
    "signers": "signer_id",
    "assets": "asset_pk",
    "files": "file_pk",
    "perceptual_hashes": "hash_pk",
    "keypoint_features": "keypoint_pk",
}


@functools.cache
def catalogue_metadata() -> sa.MetaData:
    """Every table of the inventory (made once): what its statements are compiled over."""
    metadata = sa.MetaData()
    _tables(metadata)
    return metadata


def server_schema() -> ServerSchema:
    """The inventory's server schema (a fresh :class:`sqlalchemy.MetaData` each call)."""
    metadata = sa.MetaData()
    _tables(metadata)
    return ServerSchema(
        metadata=metadata,
        version=SERVER_SCHEMA_VERSION,
        keys=_KEYS,
        after_create=_AFTER_CREATE,
        # As SQLite's triggers (audit._schema). Not audit_meta: a migration
        # replaces a new target's binding marks with the source's.
        append_only=("audit", "audit_checkpoints"),
        # Packs record the generation of the rows they were made from.
        generations=(("perceptual_hashes", PERCEPTUAL_GENERATION),),
        upgrades_from=4,
    )


def open_server_inventory(
    location: str | os.PathLike[str],
    *,
    create: bool,
    read_only: bool,
    busy_timeout_s: float,
    durable: bool,
) -> Database:
    """A PostgreSQL or MariaDB/MySQL inventory (issue 16), for :class:`Inventory`.

    Raises:
        InventoryError: See :func:`provenance._io.database.open_server`.
        SchemaVersionError: The inventory was written by a newer provenance.
    """
    db = open_server(
        location, server_schema(), create=create, read_only=read_only, busy_timeout_s=busy_timeout_s
    )
    if not durable:
        db.connection.execute("PRAGMA synchronous = NORMAL")
    # ServerDatabase has Database's interface, over a connection with the part
    # of sqlite3.Connection's the inventory and the audit log use: one set of
    # queries for every engine (see provenance._io.database).
    return cast(Database, db)
