"""The audit log's tables as SQLAlchemy Core: what its statements are written over.

The same columns as SQLite's DDL (:mod:`provenance.audit._schema`). The
inventory adds them to its own tables (``inventory._server``), so a server
inventory creates them, and :mod:`provenance.audit._store` compiles its
statements over them. Imported only when a statement is first compiled or a
server inventory is opened: SQLAlchemy is not loaded before.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

__all__ = ["TABLE_OPTIONS", "TEXT", "audit_metadata", "audit_tables"]

TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
"""Unbounded text (MariaDB's TEXT holds 64 KB)."""

TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}
"""MariaDB: transactions, and ids compared byte for byte as in SQLite."""


def audit_tables(metadata: sa.MetaData) -> None:
    """Add ``audit``, ``audit_checkpoints`` and ``audit_meta`` to ``metadata``."""
    sa.Table(
        "audit",
        metadata,
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(64), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("asset_id", sa.String(255), nullable=True),
        sa.Column("payload", TEXT, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Index("audit_by_asset", "asset_id", postgresql_where=sa.text("asset_id IS NOT NULL")),
        **TABLE_OPTIONS,
    )
    sa.Table(
        "audit_checkpoints",
        metadata,
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("at", sa.String(64), nullable=False),
        sa.Column("algorithm", sa.String(64), nullable=True),
        sa.Column("signature_b64", sa.Text(), nullable=True),
        sa.Column("certificate_chain_json", TEXT, nullable=False),
        sa.Column("log_key", sa.String(128), nullable=True),
        **TABLE_OPTIONS,
    )
    sa.Table(
        "audit_meta",
        metadata,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
        **TABLE_OPTIONS,
    )


@functools.cache
def audit_metadata() -> sa.MetaData:
    """The audit tables alone (made once): what the audit log's statements are compiled over."""
    metadata = sa.MetaData()
    audit_tables(metadata)
    return metadata
