"""Keypoint rows of the inventory (partial copies, issue 21): their SQL and their binding.

Each row is bound to the audit chain (DESIGN.md decision 17) by the entry that
stored it (``row_keypoints``: the hash of asset id, scheme and record), and
:func:`_reconcile_keypoints` is the keypoint part of ``audit verify``.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from provenance._io.database import Conflict, execute
from provenance.audit import (
    KEYPOINT_SCHEME,
    KEYPOINTS_BOUND_FROM,
    ROW_KEYPOINTS,
    AuditEvent,
    AuditLog,
    AuditProblem,
    FactBindings,
    ProblemKind,
    row_hash,
)
from provenance.errors import InventoryError
from provenance.inventory._entries import AssetEntry
from provenance.inventory._rows import _load
from provenance.inventory._statements import ASSET_KEY, SQL

if TYPE_CHECKING:
    from provenance._core.keypoints import LocalFeatures

_INSERT = SQL.insert(
    "insert_keypoints",
    "keypoint_features",
    ("asset_pk", "scheme", "features"),
    conflict=Conflict.IGNORE,
)
_PAGE_AFTER = SQL.query(
    "keypoint_rows_after",
    lambda sa, t: (
        sa.select(t.keypoint_features.c.keypoint_pk, t.keypoint_features.c.features)
        .where(
            t.keypoint_features.c.scheme == sa.bindparam("scheme"),
            t.keypoint_features.c.keypoint_pk > sa.bindparam("after"),
        )
        .order_by(t.keypoint_features.c.keypoint_pk)
        .limit(sa.bindparam("limit"))
        .offset(sa.literal_column("0"))
    ),
    params=("scheme", "after", "limit"),
)
_FEATURES = SQL.query(
    "keypoint_features_of_key",
    lambda sa, t: sa.select(t.keypoint_features.c.asset_pk, t.keypoint_features.c.features).where(
        t.keypoint_features.c.keypoint_pk == sa.bindparam("key")
    ),
    params=("key",),
)
_MARK = SQL.query(
    "keypoint_bound_mark",
    lambda sa, t: sa.select(t.audit_meta.c.value).where(
        t.audit_meta.c.name == sa.bindparam("name")
    ),
    params=("name",),
)
_LAST_KEY = SQL.query(
    "keypoint_last_key",
    lambda sa, t: sa.select(sa.func.max(t.keypoint_features.c.keypoint_pk)),
)
_ADD_MARK = SQL.insert("keypoint_add_mark", "audit_meta", ("name", "value"))
_ALL_ROWS = SQL.query(
    "keypoint_all_rows",
    lambda sa, t: sa.select(
        t.keypoint_features.c.keypoint_pk,
        t.keypoint_features.c.asset_pk,
        t.keypoint_features.c.scheme,
        t.keypoint_features.c.features,
    ),
    stream=True,
)
_SCHEMES = SQL.query(
    "keypoint_schemes",
    lambda sa, t: sa.select(t.keypoint_features.c.scheme).distinct(),
)
_FIRST_ENTRY = SQL.query(
    "keypoint_inventory_identity",
    lambda sa, t: sa.select(t.audit.c.entry_hash).where(t.audit.c.seq == 1),
)
_ROW_FEATURES = SQL.query(
    "keypoint_features_of_key_and_scheme",
    lambda sa, t: sa.select(t.keypoint_features.c.features).where(
        t.keypoint_features.c.keypoint_pk == sa.bindparam("key"),
        t.keypoint_features.c.scheme == sa.bindparam("scheme"),
    ),
    params=("key", "scheme"),
)


def insert_keypoints(
    conn: sqlite3.Connection,
    asset_id: str,
    scheme: str,
    blob: bytes,
    *,
    path: Path,
    asset_pk: int | None = None,
) -> bool:
    """Store one asset's keypoint descriptor; False when it was already stored.

    ``asset_pk``: the asset's row key, when the caller knows it (not looked up).
    """
    if asset_pk is None:
        found = execute(conn, ASSET_KEY, (asset_id,)).fetchone()
        if found is None:
            raise InventoryError(f"no asset {asset_id} in the inventory", path=path)
        asset_pk = int(found[0])
    cursor = execute(conn, _INSERT, (asset_pk, scheme, blob))
    return bool(cursor.rowcount > 0)


def _keypoint_row_hash(asset_id: str, scheme: str, blob: bytes) -> str:
    """The canonical hash of one keypoint row (DESIGN.md decision 17)."""
    return row_hash("keypoints", (asset_id, scheme, blob))


@dataclass(frozen=True, slots=True)
class KeypointInsert:
    """One asset's keypoint row to store and bind, inside the caller's write transaction."""

    scheme: str
    blob: bytes

    def run(
        self,
        conn: sqlite3.Connection,
        asset_id: str,
        path: Path,
        *,
        asset_pk: int | None = None,
        marked: bool = False,
    ) -> dict[str, str]:
        """Store the row; the payload keys that bind it (empty when it was stored already).

        ``asset_pk``: the asset's row key, when the caller knows it. ``marked``:
        the caller knows the mark below exists (it is never removed).

        The first row ever bound also writes ``audit_meta``'s
        :data:`~provenance.audit.KEYPOINTS_BOUND_FROM` mark: rows below it were
        stored before keypoint rows were bound (issue 21) and are counted as legacy.
        A non-empty result means the mark exists now.
        """
        if not insert_keypoints(
            conn, asset_id, self.scheme, self.blob, path=path, asset_pk=asset_pk
        ):
            return {}
        if not marked and execute(conn, _MARK, (KEYPOINTS_BOUND_FROM,)).fetchone() is None:
            last = execute(conn, _LAST_KEY).fetchone()
            execute(conn, _ADD_MARK, (KEYPOINTS_BOUND_FROM, int(last[0])))
        binding = _keypoint_row_hash(asset_id, self.scheme, self.blob)
        return {KEYPOINT_SCHEME: self.scheme, ROW_KEYPOINTS: binding}


def bind_keypoints(
    conn: sqlite3.Connection,
    insert: KeypointInsert,
    asset_id: str,
    now: datetime,
    *,
    audit: AuditLog,
    path: Path,
) -> bool:
    """Store a recorded asset's keypoint row and bind it in its own entry; False if stored."""
    payload = insert.run(conn, asset_id, path)
    if payload:
        audit.append_in(
            conn, AuditEvent.KEYPOINTS_ADDED, asset_id=asset_id, payload=payload, now=now
        )
    return bool(payload)


def _reconcile_keypoints(
    conn: sqlite3.Connection, bound: FactBindings, ids: dict[int, str]
) -> tuple[list[AuditProblem], int, int]:
    """Keypoint rows against their bindings, both ways: (problems, legacy rows, rows checked).

    A row below the ``audit_meta`` mark (or any row when no row was ever bound)
    was stored before keypoint rows were bound and is counted as legacy.
    """
    marked = execute(conn, _MARK, (KEYPOINTS_BOUND_FROM,)).fetchone()
    mark = math.inf if marked is None else int(marked[0])
    problems, legacy, checked = [], 0, 0
    for pk, asset_pk, scheme, blob in execute(conn, _ALL_ROWS):
        checked += 1
        asset_id = ids.get(int(asset_pk), f"#{asset_pk}")
        what = f"the keypoint row {pk} of asset {asset_id} ({scheme})"
        binding = bound.keypoints.pop((asset_id, str(scheme)), None)
        if binding is None:
            if int(pk) < mark:
                legacy += 1
                continue
            problems.append(
                AuditProblem(
                    0,
                    ProblemKind.FACT_UNBOUND,
                    f"{what} is stored but no audit entry recorded it: it was added outside "
                    "the chain",
                )
            )
        elif _keypoint_row_hash(asset_id, str(scheme), bytes(blob)) != binding[1]:
            problems.append(
                AuditProblem(
                    binding[0],
                    ProblemKind.FACT_CHANGED,
                    f"{what} differs from what entry {binding[0]} recorded",
                )
            )
    for (asset_id, scheme), (seq, _) in bound.keypoints.items():
        problems.append(
            AuditProblem(
                seq,
                ProblemKind.FACT_MISSING,
                f"the keypoint row of asset {asset_id} ({scheme}) recorded by entry {seq} is gone",
            )
        )
    return problems, legacy, checked


def _keypoint_rows(
    conn: sqlite3.Connection, scheme: str, after: int, limit: int
) -> list[tuple[int, bytes]]:
    """At most ``limit`` keypoint rows of ``scheme`` with a key above ``after``, in key order."""
    return [
        (int(pk), bytes(blob)) for pk, blob in execute(conn, _PAGE_AFTER, (scheme, after, limit))
    ]


def _keypoint_schemes(conn: sqlite3.Connection) -> list[str]:
    """The schemes of the stored keypoint rows."""
    return [str(r[0]) for r in execute(conn, _SCHEMES)]


def _keypoint_stamp(conn: sqlite3.Connection, scheme: str, last: int) -> dict[str, str | int]:
    """What ties a cached keypoint index to this inventory and its rows up to key ``last``.

    The inventory's identity (the hash of its first audit entry: a copy made of
    it shares it, another inventory does not), the scheme, ``last`` and the
    SHA-256 of that row's features: a restored backup that reused the key for
    another row does not match.
    """
    first = execute(conn, _FIRST_ENTRY).fetchone()
    row = execute(conn, _ROW_FEATURES, (last, scheme)).fetchone()
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
    from provenance._core.keypoints import LocalFeatures  # numpy: on a search only (issue 20)

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
