"""The inventory's write path: the SQL that records signed files, assets and links.

Each function runs inside the caller's ``BEGIN IMMEDIATE`` transaction and
appends the audit entry that binds what it wrote (DESIGN.md decision 17).
"""

from __future__ import annotations

import functools
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, overload

from provenance._core.record import format_time
from provenance._io.database import execute
from provenance.audit import (
    LINKED,
    PERCEPTUAL_SCHEME,
    ROW_ASSET,
    ROW_FILE,
    ROW_PARENT,
    ROW_PERCEPTUAL,
    AuditEvent,
    AuditLog,
)
from provenance.errors import InventoryError
from provenance.inventory._bindings import _asset_row_hash, _file_row_hash
from provenance.inventory._entries import AssetEntry, FileEntry, _Pending
from provenance.inventory._keypoints import KeypointInsert
from provenance.inventory._memo import (
    _ASSET_BY_ID,
    _FILE_ASSET,
    _INSERT_ASSET,
    _INSERT_FILE,
    Memo,
    essence_taken,
)
from provenance.inventory._perceptual import _PerceptualInsert
from provenance.inventory._rows import _find_parent, _load, _signer_id
from provenance.inventory._statements import SQL


def _waiting(sa: Any, t: Any) -> Any:
    """Assets without a parent link whose file names this file (or its input) as parent."""
    f, a = t.files.alias("f"), t.assets.alias("a")
    return (
        sa.select(a.c.asset_pk)
        .select_from(f.join(a, a.c.asset_pk == f.c.asset_pk))
        .where(
            f.c.parent_sha256.in_([sa.bindparam("sha256"), sa.bindparam("input_sha256")]),
            a.c.parent_pk.is_(None),
            a.c.asset_pk != sa.bindparam("asset_pk"),
        )
    )


_WAITING = SQL.query("renditions_waiting", _waiting, params=("sha256", "input_sha256", "asset_pk"))
_LINK = SQL.query(
    "link_renditions",
    lambda sa, t, count: (
        sa.update(t.assets)
        .values(parent_pk=sa.bindparam("parent_pk"))
        .where(t.assets.c.asset_pk.in_([sa.bindparam(f"v{i}") for i in range(count)]))
    ),
    params=("parent_pk",),
    sized=True,
)
_CHILDREN = SQL.query(
    "children_ids",
    lambda sa, t: sa.select(t.assets.c.asset_id).where(
        t.assets.c.parent_pk == sa.bindparam("parent_pk")
    ),
    params=("parent_pk",),
)
# An import's 19 results share their record's creation time: formatted once, not 38 times.
_time_text = functools.lru_cache(maxsize=8)(format_time)


@overload
def record(
    conn: sqlite3.Connection,
    p: _Pending,
    *,
    audit: AuditLog,
    path: Path,
    perceptual: _PerceptualInsert | None = None,
    keypoints: KeypointInsert | None = None,
    memo: Memo | None = None,
    want: Literal[True] = True,
) -> AssetEntry: ...


@overload
def record(
    conn: sqlite3.Connection,
    p: _Pending,
    *,
    audit: AuditLog,
    path: Path,
    perceptual: _PerceptualInsert | None = None,
    keypoints: KeypointInsert | None = None,
    memo: Memo | None = None,
    want: bool,
) -> AssetEntry | None: ...


# One transaction's steps in order (asset, file, lineage links, audit entry); split, they
# would hand a dozen values to each other.
def record(
    conn: sqlite3.Connection,
    p: _Pending,
    *,
    audit: AuditLog,
    path: Path,
    perceptual: _PerceptualInsert | None = None,
    keypoints: KeypointInsert | None = None,
    memo: Memo | None = None,
    want: bool = True,
) -> AssetEntry | None:
    """Store one checked result (asset if new, file, lineage links) and its audit entry.

    With ``perceptual`` or ``keypoints``, those rows too, bound by the same entry.
    ``memo`` carries what earlier results of the same transaction looked up
    (the signer's id, the parents found), so an import's renditions do not
    look them up again; with it, the audit entry is left in ``memo.entries``
    for the caller to append (``AuditLog.append_all_in``), and a new asset's file
    row is held in the memo (``Memo.flush``), both before it commits.

    Returns:
        The asset with its files; None when ``want`` is False (an import that does
        not read them: neither built nor read back).
    """
    result = p.result
    signer_id = _signer_id(conn, p.signer) if memo is None else memo.signer_id(conn, p.signer)
    if memo is None:
        found = execute(conn, _ASSET_BY_ID, (result.asset_id,)).fetchone()
        row = None if found is None else (int(found[0]), bytes(found[1]), str(found[2]))
    else:
        row = memo.asset(conn, result.asset_id)
    parent_id: str | None = None
    if row is not None:
        asset_pk, essence, asset_record_json = row
        if essence != p.essence:
            raise InventoryError(
                f"asset {result.asset_id} is recorded with essence {essence.hex()}, not "
                f"{result.essence_sha256_hex}",
                path=path,
            )
    else:
        asset_pk, parent_id = _insert_asset(conn, p, signer_id, path, memo)
        asset_record_json = p.record_json
        if memo is not None:
            memo.added(p, asset_pk)
    file_row = (
        p.sha256,
        asset_pk,
        p.input_sha256,
        p.parent_sha256,
        result.path,
        p.source_path,
        result.bytes_added,
        result.active_manifest,
        p.signed_at,
        signer_id,
        p.record_sha256,
        None if p.record_json == asset_record_json else p.record_json,
    )
    if not _store_file(conn, p, file_row, new=row is None, memo=memo, path=path):
        # The same file again (idempotent).
        if perceptual is not None:
            bind_perceptual(conn, perceptual, result.asset_id, p.now, audit=audit, path=path)
        return _load(conn, [asset_pk])[0] if want else None
    # Renditions recorded before this file (their parent) get their link now.
    # Found first with one index probe (usually nothing), then updated by key:
    # MariaDB runs an UPDATE ... IN (SELECT ...) as a scan of every asset.
    probe = memo is None or memo.may_wait(p)
    if probe and memo is not None:
        memo.flush(conn)  # the probe reads the files
    waiting = (
        execute(conn, _WAITING, (p.sha256, p.input_sha256, asset_pk)).fetchall() if probe else []
    )
    if memo is not None:
        memo.recorded(p)
    linked = []
    if waiting:
        # Rare (a rendition recorded before its original).
        keys = sorted({int(r[0]) for r in waiting})
        execute(conn, _LINK.sized(len(keys)), (asset_pk, *keys))
        linked = execute(conn, _CHILDREN, (asset_pk,)).fetchall()
    entry: AssetEntry | None = None
    if row is None and (not want or result.record.created_at.microsecond == 0):
        # A new asset: everything is at hand, and the record (whole seconds)
        # equals what reading it back would give; its parent is the one just linked.
        entry = _new_entry(p, parent_id) if want else None
        parent_asset_id = parent_id
    else:
        if memo is not None:
            memo.flush(conn)  # the asset is read back with its files
        entry = _load(conn, [asset_pk])[0]
        parent_asset_id = entry.parent_asset_id
    record = result.record
    payload = _facts_payload(
        p,
        parent_asset_id,
        file_row,
        is_new=row is None,
        parent_id=parent_id,
        segments=None if memo is None else memo.segments,
    )
    if linked:
        payload[LINKED] = ",".join(sorted(str(r[0]) for r in linked))
    event = AuditEvent.RENDITION_ADDED if record.parents else AuditEvent.SIGNED
    if memo is None:
        _bind_rows(conn, payload, result.asset_id, asset_pk, perceptual, keypoints, path, None)
        audit.append_in(conn, event, asset_id=result.asset_id, payload=payload, now=p.now)
    else:
        # Stored by finish() after the held rows they name, bound in this same payload.
        if perceptual is not None or keypoints is not None:
            memo.bindings.append((payload, result.asset_id, asset_pk, perceptual, keypoints))
        memo.entries.append((event, result.asset_id, payload))  # the caller appends them
    return entry


def finish(
    conn: sqlite3.Connection, memo: Memo, *, audit: AuditLog, path: Path, now: datetime
) -> None:
    """End a transaction of :func:`record` calls with ``memo``: store what it held, then log.

    The held asset and file rows first, then the perceptual and keypoint rows
    (which name the assets), whose bindings complete their entries' payloads,
    then the audit entries, in the order of the results.
    """
    memo.flush(conn)
    for payload, asset_id, asset_pk, perceptual, keypoints in memo.bindings:
        _bind_rows(conn, payload, asset_id, asset_pk, perceptual, keypoints, path, memo)
    # Nothing reads the appended entries back: they are not built.
    audit.append_all_in(conn, memo.entries, now=now, entries=False)


def _bind_rows(
    conn: sqlite3.Connection,
    payload: dict[str, Any],
    asset_id: str,
    asset_pk: int,
    perceptual: _PerceptualInsert | None,
    keypoints: KeypointInsert | None,
    path: Path,
    memo: Memo | None,
) -> None:
    """Store an asset's perceptual and keypoint rows; add their bindings to ``payload``."""
    if perceptual is not None:
        _, binding = perceptual.run(conn, asset_id, path, asset_pk=asset_pk)
        if binding is not None:
            payload[PERCEPTUAL_SCHEME] = perceptual.scheme
            payload[ROW_PERCEPTUAL] = binding
    if keypoints is not None:
        marked = memo is not None and memo.keypoints_marked
        bound = keypoints.run(conn, asset_id, path, asset_pk=asset_pk, marked=marked)
        if bound and memo is not None:
            memo.mark_keypoints()
        payload.update(bound)


def _store_file(
    conn: sqlite3.Connection,
    p: _Pending,
    file_row: tuple[Any, ...],
    *,
    new: bool,
    memo: Memo | None,
    path: Path,
) -> bool:
    """Insert ``file_row``, or hold it in ``memo`` when its asset is ``new`` (:meth:`Memo.flush`).

    Returns:
        False when the same file is recorded for the same asset already.

    Raises:
        InventoryError: The file is recorded for another asset.
    """
    if memo is not None:
        if new and memo.hold_file(file_row, p.result.sha256_hex):
            return True
        memo.flush(conn)
        memo.inserted(p.sha256)
    try:
        execute(conn, _INSERT_FILE, file_row)
    except sqlite3.IntegrityError:
        existing = execute(conn, _FILE_ASSET, (p.sha256,)).fetchone()
        if existing is None or int(existing[0]) != file_row[1]:
            raise InventoryError(
                f"file {p.result.sha256_hex} is already recorded for another asset",
                path=path,
            ) from None
        return False
    return True


def _facts_payload(
    p: _Pending,
    parent_asset_id: str | None,
    file_row: tuple[Any, ...],
    *,
    is_new: bool,
    parent_id: str | None,
    segments: dict[str, bytes] | None = None,
) -> dict[str, Any]:
    """The audit payload of a recorded file, with the row hashes it binds (decision 17).

    ``segments``: the batch's cache of serialised text values (:func:`row_hash`).
    """
    result = p.result
    record = result.record
    payload: dict[str, Any] = {
        "sha256": result.sha256_hex,
        "essence_sha256": result.essence_sha256_hex,
        "input_sha256": result.input_sha256_hex,
        "record_sha256": p.record_sha256.hex(),
        "active_manifest": result.active_manifest,
        "signer": p.signer,
        "model": record.model,
        "model_version": record.model_version,
        "digital_source_type": record.digital_source_type.value,
    }
    if p.parent_sha256 is not None:
        payload["parent_sha256"] = p.parent_sha256.hex()
        payload["parent_asset_id"] = parent_asset_id
    # Bind the rows just written to this entry (DESIGN.md decision 17).
    payload[ROW_FILE] = _file_row_hash(
        (*file_row[:1], result.asset_id, *file_row[2:9], p.signer, *file_row[10:]), segments
    )
    if is_new:
        payload[ROW_ASSET] = _asset_row_hash(
            (
                result.asset_id,
                p.essence,
                record.digital_source_type.value,
                record.generator,
                record.model,
                record.model_version,
                _time_text(record.created_at),
                p.record_json,
                p.signer,
                p.signed_at,
            ),
            segments,
        )
        payload[ROW_PARENT] = parent_id or ""
    return payload


def _new_entry(p: _Pending, parent_id: str | None) -> AssetEntry:
    """A newly recorded asset as reading it back would give, without reading it."""
    result = p.result
    return AssetEntry(
        asset_id=result.asset_id,
        essence_sha256_hex=p.essence.hex(),
        record=result.record,
        parent_asset_id=parent_id,
        signer=p.signer,
        first_signed_at=p.signed_at,
        files=(
            FileEntry(
                sha256_hex=p.sha256.hex(),
                asset_id=result.asset_id,
                path=result.path,
                source_path=p.source_path,
                input_sha256_hex=p.input_sha256.hex(),
                parent_sha256_hex=None if p.parent_sha256 is None else p.parent_sha256.hex(),
                bytes_added=result.bytes_added,
                active_manifest=result.active_manifest,
                signed_at=p.signed_at,
                signer=p.signer,
                record_sha256_hex=p.record_sha256.hex(),
            ),
        ),
    )


def bind_perceptual(
    conn: sqlite3.Connection,
    insert: _PerceptualInsert,
    asset_id: str,
    now: datetime,
    *,
    audit: AuditLog,
    path: Path,
) -> int:
    """Store perceptual rows for a recorded asset and bind them in their own entry."""
    added, binding = insert.run(conn, asset_id, path)
    if binding is not None:
        audit.append_in(
            conn,
            AuditEvent.PERCEPTUAL_ADDED,
            asset_id=asset_id,
            payload={PERCEPTUAL_SCHEME: insert.scheme, ROW_PERCEPTUAL: binding},
            now=now,
        )
    return added


def _insert_asset(
    conn: sqlite3.Connection, p: _Pending, signer_id: int, path: Path, memo: Memo | None
) -> tuple[int, str | None]:
    record = p.result.record
    parent = _find_parent(conn, p) if memo is None else memo.parent(conn, p)
    row = (
        p.result.asset_id,
        p.essence,
        None if parent is None else parent[0],
        record.digital_source_type.value,
        record.generator,
        record.model,
        record.model_version,
        _time_text(record.created_at),
        p.record_json,
        signer_id,
        p.signed_at,
    )
    parent_id = None if parent is None else parent[1]
    if memo is not None:
        # Inserted by Memo.flush with the transaction's other new assets: one statement.
        return memo.hold_asset(conn, row, p), parent_id
    try:
        cursor = execute(conn, _INSERT_ASSET, row)
    except sqlite3.IntegrityError:
        # asset_id was looked up first, so the essence is the one taken.
        raise essence_taken(conn, p, path) from None
    return int(cursor.lastrowid or 0), parent_id
