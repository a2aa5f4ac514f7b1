"""Copying an inventory between backends: ``provenance inventory migrate SRC DST`` (issue 16).

Every row of every table is copied with its row keys, in key order, from one
read snapshot of the source into one write transaction of the target: asset
ids, lineage, perceptual and keypoint rows, the audit chain, its checkpoints
and the binding marks, exactly as they are. The target must be a new (empty)
inventory, and nothing is stored in it unless all of it is. Nothing is added
to either audit chain, so both verify to the same last entry and the same
counts (:class:`MigrationReport`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from provenance._io.database import ServerConnection, execute, executemany
from provenance.audit import AuditReport
from provenance.errors import InventoryError
from provenance.inventory._statements import SQL
from provenance.inventory._store import Inventory

__all__ = ["COPIED_TABLES", "MigrationReport", "migrate_inventory"]

# Parents before children (foreign keys), the audit tables last; the first
# column is the row key the rows are read in order of.
COPIED_TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("signers", ("signer_id", "subject")),
    (
        "assets",
        (
            "asset_pk", "asset_id", "essence_sha256", "parent_pk", "digital_source_type",
            "generator", "model", "model_version", "created_at", "record_json", "signer_id",
            "first_signed_at",
        ),
    ),
    (
        "files",
        (
            "file_pk", "sha256", "asset_pk", "input_sha256", "parent_sha256", "path",
            "source_path", "bytes_added", "active_manifest", "signed_at", "signer_id",
            "record_sha256", "record_json",
        ),
    ),
    ("perceptual_hashes", ("hash_pk", "asset_pk", "scheme", "variant", "words")),
    ("perceptual_descriptors", ("asset_pk", "scheme", "descriptor")),
    ("keypoint_features", ("keypoint_pk", "asset_pk", "scheme", "features")),
    ("audit", ("seq", "at", "event", "asset_id", "payload", "prev_hash", "entry_hash")),
    (
        "audit_checkpoints",
        (
            "seq", "entry_hash", "at", "algorithm", "signature_b64", "certificate_chain_json",
            "log_key",
        ),
    ),
)  # fmt: skip
_PAGE = 2000


def _count_of(table: str) -> Any:
    return lambda sa, t: sa.select(sa.func.count()).select_from(getattr(t, table))


def _read_of(table: str, columns: tuple[str, ...]) -> Any:
    order = columns[:2] if table == "perceptual_descriptors" else columns[:1]

    def build(sa: Any, t: Any) -> Any:
        found = getattr(t, table)
        return sa.select(*(found.c[c] for c in columns)).order_by(*(found.c[c] for c in order))

    return build


_COUNT = {table: SQL.query(f"copy_count_{table}", _count_of(table)) for table, _ in COPIED_TABLES}
# A whole table: a server streams it.
_READ = {
    table: SQL.query(f"copy_read_{table}", _read_of(table, columns), stream=True)
    for table, columns in COPIED_TABLES
}
_WRITE = {
    table: SQL.insert(f"copy_write_{table}", table, columns) for table, columns in COPIED_TABLES
}
_LINK = SQL.query(
    "copy_link",
    lambda sa, t: (
        sa.update(t.assets)
        .values(parent_pk=sa.bindparam("parent_pk"))
        .where(t.assets.c.asset_pk == sa.bindparam("asset_pk"))
    ),
    params=("parent_pk", "asset_pk"),
)
_MARKS = SQL.query("copy_marks", lambda sa, t: sa.select(t.audit_meta.c.name, t.audit_meta.c.value))
_ADD_MARK = SQL.insert("copy_add_mark", "audit_meta", ("name", "value"))
# SQLite: REPLACE deletes without firing the append-only trigger (recursive
# triggers are off), where an UPDATE (or ON CONFLICT DO UPDATE) would fire it.
_REPLACE_MARK = SQL.query(
    "copy_replace_mark",
    lambda sa, t: (
        sa.insert(t.audit_meta)
        .values(name=sa.bindparam("name"), value=sa.bindparam("value"))
        .prefix_with("OR REPLACE", dialect="sqlite")
        .inline()
    ),
    params=("name", "value"),
)
_UPDATE_MARK = SQL.query(
    "copy_update_mark",
    lambda sa, t: (
        sa.update(t.audit_meta)
        .values(value=sa.bindparam("value"))
        .where(t.audit_meta.c.name == sa.bindparam("name"))
    ),
    params=("value", "name"),
)


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What :func:`migrate_inventory` copied, and both sides verified afterwards.

    Attributes:
        source: The source, as it may be shown (no password).
        target: The target, as it may be shown.
        copied: Rows copied per table, in copy order.
        source_counts: Rows per table in the source after the copy.
        target_counts: Rows per table in the target after the copy.
        source_audit: The source's audit verification.
        target_audit: The target's audit verification.
    """

    source: str
    target: str
    copied: tuple[tuple[str, int], ...]
    source_counts: tuple[tuple[str, int], ...]
    target_counts: tuple[tuple[str, int], ...]
    source_audit: AuditReport
    target_audit: AuditReport

    @property
    def ok(self) -> bool:
        """Equal counts on both sides, and both audit chains verify."""
        return (
            self.source_counts == self.target_counts
            and self.source_audit.ok
            and self.target_audit.ok
            and self.source_audit.last_seq == self.target_audit.last_seq
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "ok": self.ok,
            "source": self.source,
            "target": self.target,
            "copied": dict(self.copied),
            "source_counts": dict(self.source_counts),
            "target_counts": dict(self.target_counts),
            "source_audit": self.source_audit.status,
            "target_audit": self.target_audit.status,
            "last_seq": self.target_audit.last_seq,
        }


def migrate_inventory(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    busy_timeout_s: float = 30.0,
) -> MigrationReport:
    """Copy the inventory at ``source`` into a new inventory at ``target``, then verify both.

    Either may be an SQLite path or a server URL.

    Raises:
        InventoryError: Either cannot be opened, the target is not empty (nothing
            is written), or a row cannot be copied (the target is rolled back).
        SchemaVersionError: Either was written by a newer provenance.
    """
    with (
        Inventory(source, create=False, read_only=True, busy_timeout_s=busy_timeout_s) as src,
        Inventory(target, create=True, busy_timeout_s=busy_timeout_s) as dst,
    ):
        copied = src._db.read(
            lambda reader: dst._db.write(
                lambda writer: _copy(reader, writer, sqlite=not dst.is_server, where=dst.location)
            )
        )
        return MigrationReport(
            source=src.location,
            target=dst.location,
            copied=copied,
            source_counts=src._db.read(_counts),
            target_counts=dst._db.read(_counts),
            source_audit=src.audit.verify(),
            target_audit=dst.audit.verify(),
        )


def _counts(conn: Any) -> tuple[tuple[str, int], ...]:
    return tuple(
        (table, int(execute(conn, _COUNT[table]).fetchone()[0])) for table, _ in COPIED_TABLES
    )


def _pages(conn: Any, table: str) -> Iterator[list[tuple[Any, ...]]]:
    cursor = execute(conn, _READ[table])
    while page := cursor.fetchmany(_PAGE):
        yield [tuple(row) for row in page]


def _copy(source: Any, target: Any, *, sqlite: bool, where: str) -> tuple[tuple[str, int], ...]:
    """Copy every row of ``source`` into the empty ``target`` (both inside transactions)."""
    for table in ("signers", "assets", "audit", "audit_checkpoints"):
        if execute(target, _COUNT[table]).fetchone()[0]:
            raise InventoryError(
                "the target inventory is not empty; migrate copies into a new inventory only "
                "(nothing was written)",
                path=where,
            )
    copied: list[tuple[str, int]] = []
    links: list[tuple[int, int]] = []
    for table, _ in COPIED_TABLES:
        count = 0
        for page in _pages(source, table):
            rows = page
            if table == "assets":
                # A parent may have the larger key (a rendition recorded first): link after.
                links += [(row[3], row[0]) for row in page if row[3] is not None]
                rows = [(*row[:3], None, *row[4:]) for row in page]
            executemany(target, _WRITE[table], rows)
            count += len(rows)
        if table == "assets" and links:
            executemany(target, _LINK, links)
        copied.append((table, count))
    _copy_marks(source, target, sqlite=sqlite)
    if isinstance(target, ServerConnection):
        target.advance_keys()
    return tuple(copied)


def _copy_marks(source: Any, target: Any, *, sqlite: bool) -> None:
    """The source's ``audit_meta`` (where row binding began) replaces the new target's."""
    stored = {str(k): int(v) for k, v in execute(target, _MARKS)}
    for name, value in execute(source, _MARKS).fetchall():
        if stored.get(str(name)) == int(value):
            continue
        if str(name) not in stored:
            execute(target, _ADD_MARK, (name, value))
        elif sqlite:
            execute(target, _REPLACE_MARK, (name, value))
        else:
            execute(target, _UPDATE_MARK, (value, name))  # a server has no trigger on it
