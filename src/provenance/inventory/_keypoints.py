"""Keypoint rows of the inventory (partial copies, issue 21): their SQL."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from provenance._core.keypoints import LocalFeatures
from provenance._io.database import Conflict, execute
from provenance.errors import InventoryError
from provenance.inventory._entries import AssetEntry
from provenance.inventory._rows import _load
from provenance.inventory._statements import ASSET_KEY, SQL

_INSERT = SQL.insert(
    "insert_keypoints",
    "keypoint_features",
    ("asset_pk", "scheme", "features"),
    conflict=Conflict.IGNORE,
)
_ROWS_AFTER = SQL.query(
    "keypoint_rows_after",
    lambda sa, t: (
        sa.select(t.keypoint_features.c.keypoint_pk, t.keypoint_features.c.features)
        .where(
            t.keypoint_features.c.scheme == sa.bindparam("scheme"),
            t.keypoint_features.c.keypoint_pk > sa.bindparam("after"),
        )
        .order_by(t.keypoint_features.c.keypoint_pk)
    ),
    params=("scheme", "after"),
)
_FEATURES = SQL.query(
    "keypoint_features_of_key",
    lambda sa, t: sa.select(t.keypoint_features.c.asset_pk, t.keypoint_features.c.features).where(
        t.keypoint_features.c.keypoint_pk == sa.bindparam("key")
    ),
    params=("key",),
)


def insert_keypoints(
    conn: sqlite3.Connection, asset_id: str, scheme: str, blob: bytes, *, path: Path
) -> bool:
    """Store one asset's keypoint descriptor; False when it was already stored."""
    found = execute(conn, ASSET_KEY, (asset_id,)).fetchone()
    if found is None:
        raise InventoryError(f"no asset {asset_id} in the inventory", path=path)
    cursor = execute(conn, _INSERT, (int(found[0]), scheme, blob))
    return bool(cursor.rowcount > 0)


def _keypoint_rows(conn: sqlite3.Connection, scheme: str, after: int) -> list[tuple[int, bytes]]:
    """Keypoint rows of ``scheme`` with a key above ``after``, in key order."""
    return [(int(pk), bytes(blob)) for pk, blob in execute(conn, _ROWS_AFTER, (scheme, after))]


def _keypoint_features(
    conn: sqlite3.Connection, keys: Sequence[int]
) -> list[tuple[AssetEntry, LocalFeatures]]:
    """The assets and features of these keypoint row keys, in order; vanished rows left out."""
    found: list[tuple[int, LocalFeatures]] = []
    for key in keys:
        row = execute(conn, _FEATURES, (int(key),)).fetchone()
        if row is None:
            continue
        with contextlib.suppress(ValueError):
            found.append((int(row[0]), LocalFeatures.from_bytes(bytes(row[1]))))
    out = []
    for pk, features in found:  # a few candidates: one asset load each
        entry = _load(conn, [pk])
        if entry:
            out.append((entry[0], features))
    return out
