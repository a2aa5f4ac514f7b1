"""The import job: :func:`import_csv`, step by step.

Owns the order of an import (read the CSV, check each row, prepare its images,
fill its labels, then write the good rows and the rejected ones) and the rule
that a bad row never stops the import and never leaves a half-written CSV.
Writes files only through :func:`provenance._io.atomic.write_atomic`; never prints.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from provenance._core.disclosure import disclosure_for
from provenance._io.atomic import write_atomic
from provenance._io.keys import SigningKey
from provenance.errors import ImportFileError, OutputError, ProvenanceError
from provenance.integrations.magento._csv import (
    Table,
    fill_labels,
    read_table,
    render,
    split_images,
)
from provenance.integrations.magento._images import (
    ImageJob,
    Prepared,
    image_outcome,
    magento_file_path,
)
from provenance.integrations.magento._model import (
    IMAGE_COLUMNS,
    MULTI_VALUE_COLUMN,
    ImageAction,
    ImageOutcome,
    ImportOptions,
    ImportReport,
    RowProblem,
    RowReport,
)
from provenance.inventory import Inventory

__all__ = ["import_csv"]


@dataclass(frozen=True, slots=True)
class _Columns:
    """The output header and where each column is, label columns added where missing."""

    header: list[str]
    index: dict[str, int]
    added: list[str]
    present: list[tuple[str, str]]  # (image column, label column) in the CSV
    warnings: list[str]


@dataclass(slots=True)
class _Rows:
    """What the rows add up to, filled in file order."""

    reports: list[RowReport] = field(default_factory=list)
    good: list[list[str]] = field(default_factory=list)
    bad: list[list[str]] = field(default_factory=list)
    seen: dict[tuple[str, str], int] = field(default_factory=dict)
    disclosures: dict[str, Mapping[str, Any]] = field(default_factory=dict)


# Long for its docstring (the public contract: five steps, every argument); the code is 54 lines.
def import_csv(
    csv_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str],
    key: SigningKey | None,
    out_images_dir: str | os.PathLike[str] | None = None,
    options: ImportOptions | None = None,
    inventory: Inventory | None = None,
    now: datetime | None = None,
) -> ImportReport:
    """Sign the images of a Magento product import CSV and write a new CSV for import.

    Steps:

    1. Read the CSV (BOM, separator given or sniffed, quoted fields); a file that
       is not a CSV or has no ``sku`` column raises.
    2. Check each row: field count, SKU present and not repeated for the same
       store view.
    3. Resolve each image path inside ``images_dir`` (URLs, ``..``, absolute paths
       and symlinks out are refused), find its record (record column, then the
       sidecar ``<file>.json``/``<stem>.json``, then the default record) and
       sign it into ``out_images_dir`` at the same relative path; an image without
       a record is copied unchanged. Each file is handled once, however many rows
       and columns name it.
    4. Fill each empty label of an AI-generated image with the disclosure text.
    5. Write the CSV of good rows (same columns, order, separators and paths)
       atomically, and the bad rows unchanged to ``<name>.rejected.csv``.

    Args:
        csv_path: The Magento product import CSV.
        out_dir: Folder for the new CSV (same file name); created if missing.
        images_dir: Magento's import images directory the paths are relative to.
        key: The signing key; may be None only in a dry run.
        out_images_dir: Folder for the images (default: ``out_dir/images``); use
            it as the import's "Images File Directory".
        options: What to sign, how to label, dry run.
        inventory: Record every signed image here.
        now: The signing time (default: now, UTC).

    Returns:
        The report: one entry per data row, with per-image outcomes.

    Raises:
        ImportFileError: The CSV cannot be used at all (not UTF-8 text, not a
            CSV, no ``sku`` column, a duplicate header, the record column absent).
        ProvenanceError: The CSV or images directory cannot be read, or the
            output CSV cannot be written.
        ValueError: No key and not a dry run.
    """
    opts = options or ImportOptions()
    if key is None and not opts.dry_run:
        raise ValueError("a signing key is needed unless dry_run is set")
    source = Path(csv_path)
    images_root = Path(images_dir)
    if not images_root.is_dir():
        raise ProvenanceError("images directory not found", path=images_root)
    out_folder = Path(out_dir)
    job = ImageJob(
        images_root=images_root,
        images_real=images_root.resolve(),
        out_images=Path(out_images_dir) if out_images_dir is not None else out_folder / "images",
        opts=opts,
        key=key,
        inventory=inventory,
        now=now or datetime.now(timezone.utc),
    )
    # 1. Read.
    table = read_table(source, opts.csv_format.field_separator)
    columns = _columns(table, opts)
    # One entry per image file (and record cell): each file is signed once.
    prepared: dict[tuple[Path, str], Prepared] = {}
    rows = _Rows()
    for line, cells in table.rows:
        _import_row(
            line,
            cells,
            source=source,
            table=table,
            columns=columns,
            job=job,
            prepared=prepared,
            rows=rows,
        )
    # 5. Write the CSV once every row is done.
    output_csv, rejects = _write(source, out_folder, table, columns, rows, opts)
    return ImportReport(
        source_csv=str(source),
        output_csv=None if output_csv is None else str(output_csv),
        output_images_dir=str(job.out_images),
        rejects_csv=None if rejects is None else str(rejects),
        dry_run=opts.dry_run,
        field_separator=table.delimiter,
        multiple_value_separator=opts.csv_format.multiple_value_separator,
        rows=tuple(rows.reports),
        images_signed=sum(1 for p in prepared.values() if p.action is ImageAction.SIGNED),
        images_copied=sum(
            1
            for p in prepared.values()
            if p.action in (ImageAction.COPIED, ImageAction.ALREADY_SIGNED)
        ),
        warnings=tuple(columns.warnings),
        disclosures=MappingProxyType(rows.disclosures),
    )


def _columns(table: Table, opts: ImportOptions) -> _Columns:
    """Where each column is; a missing label column of an image column is added at the end.

    Raises:
        ImportFileError: The record column is not in the CSV.
    """
    header = list(table.raw_header)
    index = {name: i for i, name in enumerate(table.header)}
    if opts.record_column is not None and opts.record_column not in index:
        raise ImportFileError(f"no column {opts.record_column!r} (given as the record column)")
    warnings: list[str] = []
    added: list[str] = []
    for image_col, label_col in IMAGE_COLUMNS:
        if image_col in index and label_col not in index:
            added.append(label_col)
            warnings.append(f"added column {label_col!r} for the disclosure labels")
    for name in added:
        index[name] = len(header)
        header.append(name)
    present = [(i, lbl) for i, lbl in IMAGE_COLUMNS if i in index]
    if not present:
        warnings.append("no image columns: nothing to sign")
    return _Columns(header, index, added, present, warnings)


def _import_row(
    line: int,
    cells: list[str],
    *,
    source: Path,
    table: Table,
    columns: _Columns,
    job: ImageJob,
    prepared: dict[tuple[Path, str], Prepared],
    rows: _Rows,
) -> None:
    """Check one row, prepare its images and labels, and add it to the good or bad rows."""
    index = columns.index
    sku = cells[index["sku"]].strip() if len(cells) > index["sku"] else ""
    store = ""
    if "store_view_code" in index and len(cells) > index["store_view_code"]:
        store = cells[index["store_view_code"]].strip()
    # 2. Row shape and identity.
    refused = _refused(line, cells, sku, store, source=source, table=table, seen=rows.seen)
    if refused is not None:
        rows.reports.append(refused)
        rows.bad.append(cells)
        return
    rows.seen[(sku.lower(), store)] = line
    # 3-4. Images and labels.
    row = cells + [""] * len(columns.added)
    record_cell = _record_cell(row, columns, job.opts)
    outcomes, filled, appended = _images_and_labels(row, record_cell, columns, job, prepared)
    failed = next(((o.problem, o.error) for o in outcomes if o.problem is not None), None)
    if failed is not None:
        problem, error = failed[0], f"{source}:{line}: {failed[1]}"
        rows.reports.append(
            RowReport(line, sku, store, tuple(outcomes), problem=problem, error=error)
        )
        rows.bad.append(cells)
        return
    rows.reports.append(
        RowReport(line, sku, store, tuple(outcomes), labels_filled=filled, labels_appended=appended)
    )
    rows.good.append(row)
    rows.disclosures.update(_disclosures(outcomes, record_cell, prepared))


def _refused(
    line: int,
    cells: Sequence[str],
    sku: str,
    store: str,
    *,
    source: Path,
    table: Table,
    seen: Mapping[tuple[str, str], int],
) -> RowReport | None:
    """The report of a row refused for its shape or identity; None when it may go on."""
    width = len(table.header)
    if len(cells) != width:
        error = (
            f"{source}:{line}: row has {len(cells)} fields, the header has {width} (field "
            f"separator {table.delimiter!r}; a separator or quote problem?)"
        )
        return RowReport(line, sku, store, problem=RowProblem.RAGGED_ROW, error=error)
    if not sku:
        error = f"{source}:{line}: empty sku"
        return RowReport(line, sku, store, problem=RowProblem.MISSING_SKU, error=error)
    identity = (sku.lower(), store)
    if identity in seen:
        scope = f"store view {store!r}" if store else "the default scope"
        error = f"{source}:{line}: sku {sku!r} already on line {seen[identity]} for {scope}"
        return RowReport(line, sku, store, problem=RowProblem.DUPLICATE_SKU, error=error)
    return None


def _record_cell(row: Sequence[str], columns: _Columns, opts: ImportOptions) -> str:
    """The row's record column cell, trimmed ("" without a record column)."""
    if opts.record_column is None:
        return ""
    return row[columns.index[opts.record_column]].strip()


def _images_and_labels(
    row: list[str],
    record_cell: str,
    columns: _Columns,
    job: ImageJob,
    prepared: dict[tuple[Path, str], Prepared],
) -> tuple[list[ImageOutcome], int, int]:
    """Prepare every image of a row and fill its labels in ``row``.

    Returns:
        The outcomes in column order, and how many labels were filled and appended to.
    """
    fmt = job.opts.csv_format
    outcomes: list[ImageOutcome] = []
    filled = appended = 0
    for image_col, label_col in columns.present:
        column = [
            image_outcome(
                value,
                image_col,
                index=len(outcomes) + position,
                record_cell=record_cell,
                job=job,
                prepared=prepared,
            )
            for position, value in enumerate(split_images(row[columns.index[image_col]], fmt))
        ]
        outcomes.extend(column)
        label, count, added_to = fill_labels(
            row[columns.index[label_col]],
            [o.synthetic for o in column],
            multi=image_col == MULTI_VALUE_COLUMN,
            fmt=fmt,
            text=job.opts.disclosure_text,
            append=job.opts.append_disclosure,
        )
        if count or added_to:
            row[columns.index[label_col]] = label
            filled += count
            appended += added_to
    return outcomes, filled, appended


def _disclosures(
    outcomes: Sequence[ImageOutcome],
    record_cell: str,
    prepared: Mapping[tuple[Path, str], Prepared],
) -> dict[str, Mapping[str, Any]]:
    """The disclosure entry of each image of a good row that has a record."""
    found: dict[str, Mapping[str, Any]] = {}
    for outcome in outcomes:
        done = prepared.get((Path(outcome.source), record_cell)) if outcome.source else None
        if done is None or done.record is None:
            continue
        entry = disclosure_for(done.record).to_dict()
        found[magento_file_path(outcome.value)] = {
            **entry,
            "csv_value": outcome.value,
            "asset_id": done.asset_id,
        }
    return found


def _write(
    source: Path,
    out_folder: Path,
    table: Table,
    columns: _Columns,
    rows: _Rows,
    opts: ImportOptions,
) -> tuple[Path | None, Path | None]:
    """Write the good rows' CSV and the rejected rows' (none in a dry run).

    Raises:
        OutputError: The output would replace the input, or cannot be written.
    """
    if opts.dry_run:
        return None, None
    output_csv = out_folder / source.name
    if output_csv.resolve() == source.resolve():
        raise OutputError("the output CSV would replace the input CSV", path=output_csv)
    rejects: Path | None = None
    try:
        out_folder.mkdir(parents=True, exist_ok=True)
        write_atomic(output_csv, render(table, columns.header, rows.good))
        if rows.bad and opts.write_rejects:
            rejects = out_folder / f"{source.stem}.rejected{source.suffix or '.csv'}"
            write_atomic(rejects, render(table, table.raw_header, rows.bad))
    except OSError as exc:
        raise OutputError(f"cannot write: {exc.strerror}", path=out_folder) from None
    return output_csv, rejects
