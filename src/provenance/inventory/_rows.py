"""The SQL that reads assets, files, signers and statistics from the inventory.

Rows become values through :mod:`provenance.inventory._entries`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from types import MappingProxyType

from provenance._core.record import DigitalSourceType
from provenance.inventory._entries import (
    AssetEntry,
    FileEntry,
    InventoryStats,
    _file_from_row,
    _Pending,
    _record_from_json,
)

# Deeper lineage than this is a loop (only a hand-edited database has one).
MAX_LINEAGE_DEPTH = 256

_PAGE = 500  # rows per page and ids per IN (...) list (SQLite's old limit is 999)


_SYNTHETIC_CODES = tuple(t.value for t in DigitalSourceType if t.is_synthetic)


def _signer_id(conn: sqlite3.Connection, subject: str) -> int:
    row = conn.execute("SELECT signer_id FROM signers WHERE subject = ?", (subject,)).fetchone()
    if row is not None:
        return int(row[0])
    cursor = conn.execute("INSERT INTO signers (subject) VALUES (?)", (subject,))
    return int(cursor.lastrowid or 0)


def _find_parent(conn: sqlite3.Connection, p: _Pending) -> tuple[int, str] | None:
    """The recorded asset this one was made from, or None (see the module docstring)."""
    for ref in p.result.record.parents:
        if ref.asset_id is not None:
            row = conn.execute(
                "SELECT asset_pk, asset_id FROM assets WHERE asset_id = ?", (ref.asset_id,)
            ).fetchone()
            if row is not None:
                return int(row[0]), str(row[1])
    if p.parent_sha256 is not None:
        for sql in (
            "SELECT a.asset_pk, a.asset_id FROM files AS f JOIN assets AS a "
            "ON a.asset_pk = f.asset_pk WHERE f.sha256 = ?",
            "SELECT a.asset_pk, a.asset_id FROM files AS f JOIN assets AS a "
            "ON a.asset_pk = f.asset_pk WHERE f.input_sha256 = ? LIMIT 1",
        ):
            row = conn.execute(sql, (p.parent_sha256,)).fetchone()
            if row is not None:
                return int(row[0]), str(row[1])
    for ref in p.result.record.parents:
        if ref.essence_sha256_hex is not None:
            row = conn.execute(
                "SELECT asset_pk, asset_id FROM assets WHERE essence_sha256 = ?",
                (bytes.fromhex(ref.essence_sha256_hex),),
            ).fetchone()
            if row is not None:
                return int(row[0]), str(row[1])
    return None


_ASSET_SQL = """
    SELECT a.asset_pk, a.asset_id, a.essence_sha256, p.asset_id, a.record_json, s.subject,
           a.first_signed_at
    FROM assets AS a
    JOIN signers AS s ON s.signer_id = a.signer_id
    LEFT JOIN assets AS p ON p.asset_pk = a.parent_pk
    WHERE a.asset_pk IN ({marks})
"""
_FILE_SQL = """
    SELECT f.asset_pk, f.sha256, f.path, f.source_path, f.input_sha256, f.parent_sha256,
           f.bytes_added, f.active_manifest, f.signed_at, s.subject, f.record_sha256,
           f.record_json
    FROM files AS f JOIN signers AS s ON s.signer_id = f.signer_id
    WHERE f.asset_pk IN ({marks})
    ORDER BY f.asset_pk, f.file_pk
"""


def _first_asset(
    conn: sqlite3.Connection, queries: Sequence[str], value: str | bytes
) -> AssetEntry | None:
    """The asset the first query that finds an ``asset_pk`` for ``value`` names."""
    for query in queries:
        row = conn.execute(query, (value,)).fetchone()
        if row is not None:
            return _load(conn, [int(row[0])])[0]
    return None


def _load(conn: sqlite3.Connection, pks: Sequence[int]) -> list[AssetEntry]:
    """Asset entries for these primary keys, in the same order."""
    found: dict[int, AssetEntry] = {}
    for start in range(0, len(pks), _PAGE):
        chunk = list(pks[start : start + _PAGE])
        marks = ",".join("?" * len(chunk))
        files: dict[int, list[FileEntry]] = {}
        heads = conn.execute(_ASSET_SQL.format(marks=marks), chunk).fetchall()
        ids = {int(row[0]): str(row[1]) for row in heads}
        for row in conn.execute(_FILE_SQL.format(marks=marks), chunk):
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


def _page(
    conn: sqlite3.Connection, *, after: int | None, offset: int, size: int
) -> tuple[list[int], list[AssetEntry]]:
    if after is None:
        rows = conn.execute(
            "SELECT asset_pk FROM assets ORDER BY asset_pk LIMIT ? OFFSET ?", (size, offset)
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT asset_pk FROM assets WHERE asset_pk > ? ORDER BY asset_pk LIMIT ?",
            (after, size),
        ).fetchall()
    pks = [int(r[0]) for r in rows]
    return pks, _load(conn, pks)


def _iter_all(conn: sqlite3.Connection, synthetic_only: bool) -> Iterator[AssetEntry]:
    where = _synthetic_filter(synthetic_only)
    after = 0
    while True:
        rows = conn.execute(
            f"SELECT asset_pk FROM assets {where} {'AND' if where else 'WHERE'} asset_pk > ? "  # noqa: S608 - constant filter
            "ORDER BY asset_pk LIMIT ?",
            (after, _PAGE),
        ).fetchall()
        if not rows:
            return
        yield from _load(conn, [int(r[0]) for r in rows])
        after = int(rows[-1][0])


def _synthetic_filter(synthetic_only: bool) -> str:
    if not synthetic_only:
        return ""
    codes = ", ".join(f"'{code}'" for code in _SYNTHETIC_CODES)
    return f"WHERE digital_source_type IN ({codes})"


def _stats(conn: sqlite3.Connection) -> InventoryStats:
    assets = conn.execute("SELECT COUNT(*) FROM assets").fetchone()[0]
    files = conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    renditions = conn.execute(
        "SELECT COUNT(DISTINCT asset_pk) FROM files WHERE parent_sha256 IS NOT NULL"
    ).fetchone()[0]
    unlinked = conn.execute(
        "SELECT COUNT(DISTINCT f.asset_pk) FROM files AS f JOIN assets AS a "
        "ON a.asset_pk = f.asset_pk WHERE f.parent_sha256 IS NOT NULL AND a.parent_pk IS NULL"
    ).fetchone()[0]
    by_model: dict[str, dict[str, int]] = {}
    for model, version, count in conn.execute(
        "SELECT model, model_version, COUNT(*) FROM assets GROUP BY model, model_version "
        "ORDER BY model, model_version"
    ):
        by_model.setdefault(str(model), {})[str(version)] = int(count)
    by_type = {
        str(code): int(count)
        for code, count in conn.execute(
            "SELECT digital_source_type, COUNT(*) FROM assets GROUP BY digital_source_type "
            "ORDER BY digital_source_type"
        )
    }
    synthetic = sum(count for code, count in by_type.items() if code in _SYNTHETIC_CODES)
    audit_last = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM audit").fetchone()[0]
    checkpoints = conn.execute("SELECT COUNT(*) FROM audit_checkpoints").fetchone()[0]
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

_BY_ASSET_ID = ("SELECT asset_pk FROM assets WHERE asset_id = ?",)
_BY_FILE_SHA256 = (
    "SELECT asset_pk FROM files WHERE sha256 = ?",
    "SELECT asset_pk FROM files WHERE input_sha256 = ? LIMIT 1",
)
_BY_ESSENCE = ("SELECT asset_pk FROM assets WHERE essence_sha256 = ?",)

_ANCESTORS_SQL = """
WITH RECURSIVE up(pk, depth) AS (
    SELECT parent_pk, 1 FROM assets WHERE asset_id = ? AND parent_pk IS NOT NULL
    UNION
    SELECT a.parent_pk, up.depth + 1 FROM assets AS a JOIN up ON a.asset_pk = up.pk
    WHERE a.parent_pk IS NOT NULL AND up.depth < ?
)
SELECT pk FROM up
WHERE pk != (SELECT asset_pk FROM assets WHERE asset_id = ?)
GROUP BY pk ORDER BY MIN(depth)
"""

_DESCENDANTS_SQL = """
WITH RECURSIVE down(pk, depth) AS (
    SELECT a.asset_pk, 1 FROM assets AS a JOIN assets AS s
        ON a.parent_pk = s.asset_pk WHERE s.asset_id = ?
    UNION
    SELECT a.asset_pk, down.depth + 1 FROM assets AS a JOIN down
        ON a.parent_pk = down.pk WHERE down.depth < ?
)
SELECT pk FROM down
WHERE pk != (SELECT asset_pk FROM assets WHERE asset_id = ?)
GROUP BY pk ORDER BY MIN(depth), pk
"""


def _lineage(conn: sqlite3.Connection, sql: str, asset_id: str) -> list[AssetEntry]:
    """The assets up (``_ANCESTORS_SQL``) or down (``_DESCENDANTS_SQL``) from ``asset_id``."""
    pks = [int(row[0]) for row in conn.execute(sql, (asset_id, MAX_LINEAGE_DEPTH, asset_id))]
    return _load(conn, pks)


def _export_counts(conn: sqlite3.Connection, synthetic_only: bool) -> dict[str, int]:
    """Assets, files and linked renditions an export holds."""
    where = _synthetic_filter(synthetic_only)
    assets, renditions = conn.execute(
        f"SELECT COUNT(*), COUNT(parent_pk) FROM assets {where}"  # noqa: S608 - constant filter
    ).fetchone()
    files = conn.execute(
        f"SELECT COUNT(*) FROM files WHERE asset_pk IN (SELECT asset_pk FROM assets {where})"  # noqa: S608 - constant filter
    ).fetchone()[0]
    return {"assets": int(assets), "files": int(files), "linked_renditions": int(renditions)}
