"""JSON and CSV export of the inventory.

One audited transaction per export: an ``exported`` entry, a checkpoint at it,
the rows read, and the atomic 0600 write of the file.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from provenance._core.cells import csv_cell
from provenance._core.record import format_time
from provenance._io.atomic import PRIVATE_FILE_MODE, write_atomic
from provenance._io.keys import SigningKey
from provenance.audit import AuditEvent, AuditLog, Checkpoint
from provenance.errors import OutputError
from provenance.inventory._entries import AssetEntry
from provenance.inventory._rows import _export_counts, _iter_all
from provenance.inventory._schema import SCHEMA_VERSION

_EXPORT_FORMAT = "provenance.inventory.export"
_EXPORT_VERSION = 1


_CSV_COLUMNS = (
    "asset_id",
    "essence_sha256",
    "is_synthetic",
    "digital_source_type",
    "generator",
    "model",
    "model_version",
    "created_at",
    "parent_asset_id",
    "file_sha256",
    "path",
    "input_sha256",
    "parent_sha256",
    "signed_at",
    "signer",
    "active_manifest",
)


def _csv_rows(asset: AssetEntry) -> Iterator[tuple[Any, ...]]:
    record = asset.record
    for f in asset.files:
        yield (
            asset.asset_id,
            asset.essence_sha256_hex,
            "true" if record.is_synthetic else "false",
            record.digital_source_type.value,
            record.generator,
            record.model,
            record.model_version,
            format_time(record.created_at),
            asset.parent_asset_id or "",
            f.sha256_hex,
            f.path or "",
            f.input_sha256_hex,
            f.parent_sha256_hex or "",
            f.signed_at,
            f.signer,
            f.active_manifest or "",
        )


def _write(target: Path, data: bytes) -> None:
    try:
        # An export holds what the inventory holds (prompts, paths): 0600 like it.
        write_atomic(target, data, mode=PRIVATE_FILE_MODE)
    except OSError as exc:
        raise OutputError(f"cannot write the export: {exc.strerror}", path=target) from exc


def export_json(
    audit: AuditLog,
    target: Path,
    *,
    now: datetime,
    key: SigningKey | None = None,
    synthetic_only: bool = False,
) -> Checkpoint:
    """Write every asset, its files and lineage to a JSON file (see ``Inventory.export_json``)."""

    def work(conn: sqlite3.Connection) -> Checkpoint:
        checkpoint, counts = _begin_export(conn, audit, "json", synthetic_only, key, now)
        document = {
            "format": _EXPORT_FORMAT,
            "version": _EXPORT_VERSION,
            "exported_at": format_time(now),
            "schema_version": SCHEMA_VERSION,
            "synthetic_only": synthetic_only,
            "counts": counts,
            "audit_checkpoint": checkpoint.to_dict(),
            "assets": [a.to_dict() for a in _iter_all(conn, synthetic_only)],
        }
        text = json.dumps(document, indent=1, ensure_ascii=False)
        _write(target, (text + "\n").encode("utf-8"))
        return checkpoint

    return audit.write(work)


def export_csv(
    audit: AuditLog,
    target: Path,
    *,
    now: datetime,
    key: SigningKey | None = None,
    synthetic_only: bool = False,
) -> Checkpoint:
    """Write one CSV row per signed file and the checkpoint sidecar (``Inventory.export_csv``)."""
    sidecar = target.with_name(target.name + ".checkpoint.json")

    def work(conn: sqlite3.Connection) -> Checkpoint:
        checkpoint, _ = _begin_export(conn, audit, "csv", synthetic_only, key, now)
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(_CSV_COLUMNS)
        for asset in _iter_all(conn, synthetic_only):
            for row in _csv_rows(asset):
                writer.writerow([csv_cell(v) for v in row])
        _write(target, buffer.getvalue().encode("utf-8"))
        _write(sidecar, (checkpoint.to_json() + "\n").encode("utf-8"))
        return checkpoint

    return audit.write(work)


def _begin_export(
    conn: sqlite3.Connection,
    audit: AuditLog,
    fmt: str,
    synthetic_only: bool,
    key: SigningKey | None,
    now: datetime,
) -> tuple[Checkpoint, dict[str, int]]:
    counts = _export_counts(conn, synthetic_only)
    payload = {"format": fmt, "synthetic_only": synthetic_only, **counts}
    audit.append_in(conn, AuditEvent.EXPORTED, payload=payload, now=now)
    signing_key = key if key is not None else audit.checkpoint_key
    return audit.checkpoint_in(conn, signing_key, now=now), counts
