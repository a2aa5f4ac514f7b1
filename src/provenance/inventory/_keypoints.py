"""Keypoint rows of the inventory (partial copies, issue 21): their SQL."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from provenance._core.keypoints import LocalFeatures
from provenance.errors import InventoryError
from provenance.inventory._entries import AssetEntry
from provenance.inventory._rows import _load


def insert_keypoints(
    conn: sqlite3.Connection, asset_id: str, scheme: str, blob: bytes, *, path: Path
) -> bool:
    """Store one asset's keypoint descriptor; False when it was already stored."""
    found = conn.execute("SELECT asset_pk FROM assets WHERE asset_id = ?", (asset_id,)).fetchone()
    if found is None:
        raise InventoryError(f"no asset {asset_id} in the inventory", path=path)
    cursor = conn.execute(
        "INSERT OR IGNORE INTO keypoint_features (asset_pk, scheme, features) VALUES (?, ?, ?)",
        (int(found[0]), scheme, blob),
    )
    return cursor.rowcount > 0


def _keypoint_rows(
    conn: sqlite3.Connection, scheme: str, after: int, limit: int
) -> list[tuple[int, bytes]]:
    """At most ``limit`` keypoint rows of ``scheme`` with a key above ``after``, in key order."""
    return [
        (int(pk), bytes(blob))
        for pk, blob in conn.execute(
            "SELECT keypoint_pk, features FROM keypoint_features "
            "WHERE scheme = ? AND keypoint_pk > ? ORDER BY keypoint_pk LIMIT ?",
            (scheme, after, limit),
        )
    ]


def _keypoint_stamp(conn: sqlite3.Connection, scheme: str, last: int) -> dict[str, str | int]:
    """What ties a cached keypoint index to this inventory and its rows up to key ``last``.

    The inventory's identity (the hash of its first audit entry: a copy made of
    it shares it, another inventory does not), the scheme, ``last`` and the
    SHA-256 of that row's features: a restored backup that reused the key for
    another row does not match.
    """
    first = conn.execute("SELECT entry_hash FROM audit WHERE seq = 1").fetchone()
    row = conn.execute(
        "SELECT features FROM keypoint_features WHERE keypoint_pk = ? AND scheme = ?",
        (last, scheme),
    ).fetchone()
    return {
        "inventory": "" if first is None else str(first[0]),
        "scheme": scheme,
        "last_pk": last,
        "last_row_sha256": "" if row is None else hashlib.sha256(bytes(row[0])).hexdigest(),
    }


def _keypoint_features(
    conn: sqlite3.Connection, keys: Sequence[int]
) -> list[tuple[AssetEntry, LocalFeatures]]:
    """The assets and features of these keypoint row keys, in order; vanished rows left out."""
    found: list[tuple[int, LocalFeatures]] = []
    for key in keys:
        row = conn.execute(
            "SELECT asset_pk, features FROM keypoint_features WHERE keypoint_pk = ?",
            (int(key),),
        ).fetchone()
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
