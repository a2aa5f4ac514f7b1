"""The SQL that reads assets, files, signers and statistics from the inventory.

Rows become values through :mod:`provenance.inventory._entries`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from types import MappingProxyType
from typing import Any

from provenance._core.record import DigitalSourceType
from provenance._io.database import Statement, execute
from provenance.inventory._entries import (
    AssetEntry,
    FileEntry,
    InventoryStats,
    _file_from_row,
    _Pending,
    _record_from_json,
)
from provenance.inventory._statements import SQL

# Deeper lineage than this is a loop (only a hand-edited database has one).
MAX_LINEAGE_DEPTH = 256

_PAGE = 500  # rows per page and ids per IN (...) list (SQLite's old limit is 999)


_SYNTHETIC_CODES = tuple(t.value for t in DigitalSourceType if t.is_synthetic)

_SIGNER_BY_SUBJECT = SQL.query(
    "signer_by_subject",
    lambda sa, t: sa.select(t.signers.c.signer_id).where(
        t.signers.c.subject == sa.bindparam("subject")
    ),
    params=("subject",),
)
_INSERT_SIGNER = SQL.insert("insert_signer", "signers", ("subject",), key="signer_id")


def _signer_id(conn: sqlite3.Connection, subject: str) -> int:
    row = execute(conn, _SIGNER_BY_SUBJECT, (subject,)).fetchone()
    if row is not None:
        return int(row[0])
    cursor = execute(conn, _INSERT_SIGNER, (subject,))
    return int(cursor.lastrowid or 0)


def _asset_ref_where(column: str) -> Any:
    """``SELECT asset_pk, asset_id FROM assets WHERE column = ?``."""

    def build(sa: Any, t: Any) -> Any:
        return sa.select(t.assets.c.asset_pk, t.assets.c.asset_id).where(
            t.assets.c[column] == sa.bindparam("value")
        )

    return build


def _asset_ref_by_file(column: str, *, first: bool) -> Any:
    """The asset (pk, id) of the file whose ``column`` is ``?`` (the first one, if ``first``)."""

    def build(sa: Any, t: Any) -> Any:
        f, a = t.files.alias("f"), t.assets.alias("a")
        query = (
            sa.select(a.c.asset_pk, a.c.asset_id)
            .select_from(f.join(a, a.c.asset_pk == f.c.asset_pk))
            .where(f.c[column] == sa.bindparam("value"))
        )
        return (
            query.limit(sa.literal_column("1")).offset(sa.literal_column("0")) if first else query
        )

    return build


_ASSET_REF_BY_ID = SQL.query("asset_ref_by_id", _asset_ref_where("asset_id"), params=("value",))
_ASSET_REF_BY_ESSENCE = SQL.query(
    "asset_ref_by_essence", _asset_ref_where("essence_sha256"), params=("value",)
)
_ASSET_REF_BY_FILE = (
    SQL.query("asset_ref_by_file", _asset_ref_by_file("sha256", first=False), params=("value",)),
    SQL.query(
        "asset_ref_by_input", _asset_ref_by_file("input_sha256", first=True), params=("value",)
    ),
)


def _find_parent(conn: sqlite3.Connection, p: _Pending) -> tuple[int, str] | None:
    """The recorded asset this one was made from, or None (see the module docstring)."""
    for ref in p.result.record.parents:
        if ref.asset_id is not None:
            row = execute(conn, _ASSET_REF_BY_ID, (ref.asset_id,)).fetchone()
            if row is not None:
                return int(row[0]), str(row[1])
    if p.parent_sha256 is not None:
        for statement in _ASSET_REF_BY_FILE:
            row = execute(conn, statement, (p.parent_sha256,)).fetchone()
            if row is not None:
                return int(row[0]), str(row[1])
    for ref in p.result.record.parents:
        if ref.essence_sha256_hex is not None:
            row = execute(
                conn, _ASSET_REF_BY_ESSENCE, (bytes.fromhex(ref.essence_sha256_hex),)
            ).fetchone()
            if row is not None:
                return int(row[0]), str(row[1])
    return None


def _assets_in(sa: Any, t: Any, count: int) -> Any:
    """Asset rows (with their parent's id and signer) of ``count`` asset keys."""
    a, p, s = t.assets.alias("a"), t.assets.alias("p"), t.signers.alias("s")
    return (
        sa.select(
            a.c.asset_pk,
            a.c.asset_id,
            a.c.essence_sha256,
            p.c.asset_id,
            a.c.record_json,
            s.c.subject,
            a.c.first_signed_at,
        )
        .select_from(
            a.join(s, s.c.signer_id == a.c.signer_id).outerjoin(p, p.c.asset_pk == a.c.parent_pk)
        )
        .where(a.c.asset_pk.in_([sa.bindparam(f"v{i}") for i in range(count)]))
    )


def _files_in(sa: Any, t: Any, count: int) -> Any:
    """File rows (with their signer) of ``count`` asset keys, by asset then file key."""
    f, s = t.files.alias("f"), t.signers.alias("s")
    return (
        sa.select(
            f.c.asset_pk,
            f.c.sha256,
            f.c.path,
            f.c.source_path,
            f.c.input_sha256,
            f.c.parent_sha256,
            f.c.bytes_added,
            f.c.active_manifest,
            f.c.signed_at,
            s.c.subject,
            f.c.record_sha256,
            f.c.record_json,
        )
        .select_from(f.join(s, s.c.signer_id == f.c.signer_id))
        .where(f.c.asset_pk.in_([sa.bindparam(f"v{i}") for i in range(count)]))
        .order_by(f.c.asset_pk, f.c.file_pk)
    )


_ASSETS_IN = SQL.query("assets_in", _assets_in, sized=True)
_FILES_IN = SQL.query("files_in", _files_in, sized=True)


def _first_asset(
    conn: sqlite3.Connection, queries: Sequence[Statement], value: str | bytes
) -> AssetEntry | None:
    """The asset the first query that finds an ``asset_pk`` for ``value`` names."""
    for query in queries:
        row = execute(conn, query, (value,)).fetchone()
        if row is not None:
            return _load(conn, [int(row[0])])[0]
    return None


def _load(conn: sqlite3.Connection, pks: Sequence[int]) -> list[AssetEntry]:
    """Asset entries for these primary keys, in the same order."""
    found: dict[int, AssetEntry] = {}
    for start in range(0, len(pks), _PAGE):
        chunk = list(pks[start : start + _PAGE])
        files: dict[int, list[FileEntry]] = {}
        heads = execute(conn, _ASSETS_IN.sized(len(chunk)), chunk).fetchall()
        ids = {int(row[0]): str(row[1]) for row in heads}
        for row in execute(conn, _FILES_IN.sized(len(chunk)), chunk):
            files.setdefault(int(row[0]), []).append(_file_from_row(row, ids[int(row[0])]))
        for row in heads:
            pk = int(row[0])
            found[pk] = AssetEntry(
                asset_id=str(row[1]),
                essence_sha256_hex=bytes(row[2]).hex(),
                record=_record_from_json(str(row[4]), str(row[1])),
                parent_asset_id=row[3],
                signer=str(row[5]),
                first_signed_at=str(row[6]),
                files=tuple(files.get(pk, ())),
            )
    return [found[pk] for pk in pks if pk in found]


def _asset_keys(*, synthetic_only: bool = False, offset: bool = False) -> Any:
    """Asset keys in key order: after a key (or from an offset), one page."""

    def build(sa: Any, t: Any) -> Any:
        pk = t.assets.c.asset_pk
        query = sa.select(pk).order_by(pk)
        if synthetic_only:
            query = query.where(t.assets.c.digital_source_type.in_(_SYNTHETIC_CODES))
        if offset:
            return query.limit(sa.bindparam("size")).offset(sa.bindparam("offset"))
        return (
            query.where(pk > sa.bindparam("after"))
            .limit(sa.bindparam("size"))
            .offset(sa.literal_column("0"))
        )

    return build


_KEYS_AT_OFFSET = SQL.query(
    "asset_keys_at_offset", _asset_keys(offset=True), params=("size", "offset")
)
_KEYS_AFTER = SQL.query("asset_keys_after", _asset_keys(), params=("after", "size"))
_SYNTHETIC_KEYS_AFTER = SQL.query(
    "synthetic_asset_keys_after", _asset_keys(synthetic_only=True), params=("after", "size")
)


def _page(
    conn: sqlite3.Connection, *, after: int | None, offset: int, size: int
) -> tuple[list[int], list[AssetEntry]]:
    if after is None:
        rows = execute(conn, _KEYS_AT_OFFSET, (size, offset)).fetchall()
    else:
        rows = execute(conn, _KEYS_AFTER, (after, size)).fetchall()
    pks = [int(r[0]) for r in rows]
    return pks, _load(conn, pks)


def _iter_all(conn: sqlite3.Connection, synthetic_only: bool) -> Iterator[AssetEntry]:
    statement = _SYNTHETIC_KEYS_AFTER if synthetic_only else _KEYS_AFTER
    after = 0
    while True:
        rows = execute(conn, statement, (after, _PAGE)).fetchall()
        if not rows:
            return
        yield from _load(conn, [int(r[0]) for r in rows])
        after = int(rows[-1][0])


def _linked_renditions(sa: Any, t: Any) -> Any:
    f, a = t.files.alias("f"), t.assets.alias("a")
    return (
        sa.select(sa.func.count(sa.distinct(f.c.asset_pk)))
        .select_from(f.join(a, a.c.asset_pk == f.c.asset_pk))
        .where(f.c.parent_sha256.is_not(None), a.c.parent_pk.is_(None))
    )


_COUNT_ASSETS = SQL.query(
    "count_assets", lambda sa, t: sa.select(sa.func.count()).select_from(t.assets)
)
_COUNT_FILES = SQL.query(
    "count_files", lambda sa, t: sa.select(sa.func.count()).select_from(t.files)
)
_COUNT_RENDITIONS = SQL.query(
    "count_renditions",
    lambda sa, t: sa.select(sa.func.count(sa.distinct(t.files.c.asset_pk))).where(
        t.files.c.parent_sha256.is_not(None)
    ),
)
_COUNT_UNLINKED = SQL.query("count_unlinked_renditions", _linked_renditions)
_BY_MODEL = SQL.query(
    "assets_by_model",
    lambda sa, t: (
        sa.select(t.assets.c.model, t.assets.c.model_version, sa.func.count())
        .group_by(t.assets.c.model, t.assets.c.model_version)
        .order_by(t.assets.c.model, t.assets.c.model_version)
    ),
)
_BY_SOURCE_TYPE = SQL.query(
    "assets_by_source_type",
    lambda sa, t: (
        sa.select(t.assets.c.digital_source_type, sa.func.count())
        .group_by(t.assets.c.digital_source_type)
        .order_by(t.assets.c.digital_source_type)
    ),
)
_AUDIT_LAST = SQL.query(
    "audit_last_seq",
    lambda sa, t: sa.select(sa.func.coalesce(sa.func.max(t.audit.c.seq), 0)),
)
_COUNT_CHECKPOINTS = SQL.query(
    "count_checkpoints",
    lambda sa, t: sa.select(sa.func.count()).select_from(t.audit_checkpoints),
)


def _stats(conn: sqlite3.Connection) -> InventoryStats:
    assets = execute(conn, _COUNT_ASSETS).fetchone()[0]
    files = execute(conn, _COUNT_FILES).fetchone()[0]
    renditions = execute(conn, _COUNT_RENDITIONS).fetchone()[0]
    unlinked = execute(conn, _COUNT_UNLINKED).fetchone()[0]
    by_model: dict[str, dict[str, int]] = {}
    for model, version, count in execute(conn, _BY_MODEL):
        by_model.setdefault(str(model), {})[str(version)] = int(count)
    by_type = {str(code): int(count) for code, count in execute(conn, _BY_SOURCE_TYPE)}
    synthetic = sum(count for code, count in by_type.items() if code in _SYNTHETIC_CODES)
    audit_last = execute(conn, _AUDIT_LAST).fetchone()[0]
    checkpoints = execute(conn, _COUNT_CHECKPOINTS).fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    page_count = conn.execute("PRAGMA page_count").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    return InventoryStats(
        assets=int(assets),
        files=int(files),
        renditions=int(renditions),
        renditions_without_parent=int(unlinked),
        synthetic=synthetic,
        by_model=MappingProxyType({m: MappingProxyType(v) for m, v in by_model.items()}),
        by_digital_source_type=MappingProxyType(by_type),
        audit_entries=int(audit_last),
        checkpoints=int(checkpoints),
        db_bytes=int(page_size) * int(page_count),
        schema_version=int(version),
    )


# --- lookups and lineage --------------------------------------------------------------


def _key_where(table: str, column: str, *, first: bool = False) -> Any:
    """``SELECT asset_pk FROM table WHERE column = ?`` (``LIMIT 1`` if ``first``)."""

    def build(sa: Any, t: Any) -> Any:
        found = getattr(t, table)
        query = sa.select(found.c.asset_pk).where(found.c[column] == sa.bindparam("value"))
        return (
            query.limit(sa.literal_column("1")).offset(sa.literal_column("0")) if first else query
        )

    return build


_BY_ASSET_ID = (SQL.query("asset_key_by_id", _key_where("assets", "asset_id"), params=("value",)),)
_BY_FILE_SHA256 = (
    SQL.query("asset_key_by_file", _key_where("files", "sha256"), params=("value",)),
    SQL.query(
        "asset_key_by_input", _key_where("files", "input_sha256", first=True), params=("value",)
    ),
)
_BY_ESSENCE = (
    SQL.query("asset_key_by_essence", _key_where("assets", "essence_sha256"), params=("value",)),
)


def _walk(sa: Any, t: Any, *, up: bool) -> Any:
    """Asset keys up (ancestors) or down (descendants) from one asset, nearest first.

    ``WITH RECURSIVE`` over ``parent_pk``, at most ``depth`` steps (a loop in
    a hand-edited database ends there), the start itself left out.
    """
    assets, a = t.assets, t.assets.alias("a")
    one = sa.literal_column("1")
    if up:
        start = sa.select(assets.c.parent_pk.label("pk"), one.label("depth")).where(
            assets.c.asset_id == sa.bindparam("asset_id"), assets.c.parent_pk.is_not(None)
        )
        walk = start.cte("up", recursive=True)
        step = (
            sa.select(a.c.parent_pk, walk.c.depth + one)
            .select_from(a.join(walk, a.c.asset_pk == walk.c.pk))
            .where(a.c.parent_pk.is_not(None), walk.c.depth < sa.bindparam("depth"))
        )
    else:
        s = t.assets.alias("s")
        start = (
            sa.select(a.c.asset_pk.label("pk"), one.label("depth"))
            .select_from(a.join(s, a.c.parent_pk == s.c.asset_pk))
            .where(s.c.asset_id == sa.bindparam("asset_id"))
        )
        walk = start.cte("down", recursive=True)
        step = (
            sa.select(a.c.asset_pk, walk.c.depth + one)
            .select_from(a.join(walk, a.c.parent_pk == walk.c.pk))
            .where(walk.c.depth < sa.bindparam("depth"))
        )
    walk = walk.union(step)
    itself = sa.select(assets.c.asset_pk).where(assets.c.asset_id == sa.bindparam("asset_id"))
    order = [sa.func.min(walk.c.depth)] if up else [sa.func.min(walk.c.depth), walk.c.pk]
    return (
        sa.select(walk.c.pk)
        .where(walk.c.pk != itself.scalar_subquery())
        .group_by(walk.c.pk)
        .order_by(*order)
    )


_ANCESTORS_SQL = SQL.query(
    "ancestors", lambda sa, t: _walk(sa, t, up=True), params=("asset_id", "depth")
)
_DESCENDANTS_SQL = SQL.query(
    "descendants", lambda sa, t: _walk(sa, t, up=False), params=("asset_id", "depth")
)


def _lineage(conn: sqlite3.Connection, walk: Statement, asset_id: str) -> list[AssetEntry]:
    """The assets up (``_ANCESTORS_SQL``) or down (``_DESCENDANTS_SQL``) from ``asset_id``."""
    pks = [int(row[0]) for row in execute(conn, walk, (asset_id, MAX_LINEAGE_DEPTH))]
    return _load(conn, pks)


def _export_counts(conn: sqlite3.Connection, synthetic_only: bool) -> dict[str, int]:
    """Assets, files and linked renditions an export holds."""
    assets, renditions = execute(conn, _EXPORT_ASSETS[synthetic_only]).fetchone()
    files = execute(conn, _EXPORT_FILES[synthetic_only]).fetchone()[0]
    return {"assets": int(assets), "files": int(files), "linked_renditions": int(renditions)}


def _exported(synthetic_only: bool, *, files: bool) -> Any:
    """The counts of an export: assets and linked renditions, or files."""

    def build(sa: Any, t: Any) -> Any:
        assets = t.assets
        synthetic = assets.c.digital_source_type.in_(_SYNTHETIC_CODES)
        if files:
            keys = sa.select(assets.c.asset_pk)
            keys = keys.where(synthetic) if synthetic_only else keys
            return sa.select(sa.func.count()).where(t.files.c.asset_pk.in_(keys))
        query = sa.select(sa.func.count(), sa.func.count(assets.c.parent_pk))
        return query.where(synthetic) if synthetic_only else query

    return build


_EXPORT_ASSETS = {
    only: SQL.query(f"export_assets{'_synthetic' if only else ''}", _exported(only, files=False))
    for only in (False, True)
}
_EXPORT_FILES = {
    only: SQL.query(f"export_files{'_synthetic' if only else ''}", _exported(only, files=True))
    for only in (False, True)
}
