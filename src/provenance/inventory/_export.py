"""JSON and CSV export of the inventory.

The CSV columns and rows of an asset, and the atomic 0600 write of an export.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from provenance.atomic import PRIVATE_FILE_MODE, write_atomic
from provenance.errors import (
    OutputError,
)
from provenance.inventory._entries import AssetEntry
from provenance.record import format_time

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
