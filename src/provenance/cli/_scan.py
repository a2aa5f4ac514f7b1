"""``provenance scan`` and ``provenance trace``: find copies, and where a file comes from."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provenance.batch import warm_up
from provenance.cli._common import closing, find_existing, trust_policy, verdict_row
from provenance.cli._options import (
    InventoryOption,
    JsonOption,
    NdjsonOption,
    ProgressOption,
    TrustAnchorsOption,
    WorkersOption,
)
from provenance.cli._output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    err,
    fail,
    json_rows,
    out,
    print_rows,
    progress_bar,
    reports_errors,
    table,
    warn,
)

if TYPE_CHECKING:
    from provenance.scan import ScanReport, ScanRow
    from provenance.trace import TraceResult


# Over 60 lines: typer reads the options from the signature; the body is short.
@reports_errors
def scan_command(
    paths: Annotated[list[Path], typer.Argument(help="Folders, images and product export CSVs.")],
    trust_anchors: TrustAnchorsOption = None,
    inventory_path: InventoryOption = None,
    root: Annotated[
        Path | None,
        typer.Option("--root", help="Folder that image names in CSVs are relative to."),
    ] = None,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Write a CSV report (one line per file).")
    ] = None,
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Write an HTML report with thumbnails.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json-out", help="Write the JSON report to a file.")
    ] = None,
    workers: WorkersOption = 1,
    progress: ProgressOption = None,
    as_json: JsonOption = False,
    ndjson: NdjsonOption = False,
) -> None:
    """Find signed images and copies that lost their provenance, per file.

    Walks folders (and the image paths or file names listed in product export
    CSVs) and reports each file as signed (with its verdict), known_stripped,
    synthetic_duplicate, unknown or error. Copies are recognised with the
    inventory (the default one is used when it exists). One bad file never
    stops the scan.

    Exit status: 0 nothing tampered or invalid, 1 something is, 2 some file
    could not be checked.

    \b
    Examples:
      provenance scan export/media --html scan.html
      provenance scan products.csv --root pub/media/catalog/product --csv scan.csv
    """
    warm_up(workers, signing=False)  # workers forked now (decision 1), or a fork server booting
    # Imported after warm_up: forked workers share them, a fork server imports beside us.
    from provenance._io.image_files import holds_image
    from provenance.scan import scan, write_reports

    policy = trust_policy(trust_anchors)
    for path in paths:
        if path.is_dir() and not holds_image(path):
            fail(f"{path}: folder holds no JPEG, PNG or WebP image")
    found, warning = find_existing(inventory_path)
    warn(warning)
    inventory_name = found.location if found is not None else None
    with (
        closing(found) as inventory,
        json_rows(as_json, ndjson) as emit,
        # No total: a CSV's rows are read as the scan goes; the bar counts files.
        progress_bar(progress, "scanning", None) as advance,
    ):

        def on_row(row: ScanRow) -> None:
            emit(verdict_row(row.to_dict(), inventory_name, warning))
            advance()

        report = scan(
            paths, trust=policy, inventory=inventory, root=root, on_row=on_row, workers=workers
        )
    written = write_reports(report, json_path=json_out, csv_path=csv_out, html_path=html_out)
    if not (as_json or ndjson):
        _print_scan(report)
        for path in written:
            err.line(f"provenance: wrote {path}")
    if any(r.verdict is not None and r.verdict.status.is_failure for r in report.rows):
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_USAGE if report.counts["error"] else EXIT_OK)


def _print_scan(report: ScanReport) -> None:
    shown = table("file", "result", "verdict", "asset", "details", title="scan")
    for row in report.rows:
        flat = row.summary()
        details = flat["error"] or (
            f"distance {flat['distance']} bits" if flat["distance"] else flat["codes"]
        )
        shown.add_row(flat["path"], flat["kind"], flat["status"], flat["asset_id"], details)
    out.print(shown)
    out.line(", ".join(f"{kind}: {n}" for kind, n in report.counts.items() if n))


@reports_errors
def trace_command(
    path: Annotated[Path, typer.Argument(help="An image: signed, stripped or a rendition.")],
    inventory_path: InventoryOption = None,
    trust_anchors: TrustAnchorsOption = None,
    as_json: JsonOption = False,
    ndjson: NdjsonOption = False,
) -> None:
    """Find a file by its hashes or manifest and print its lineage up to the original.

    Exit status: 0 found, 1 unknown (no provenance and not in the inventory), 2 unreadable.

    Example: provenance trace storefront/shoe-600x600.jpg --json
    """
    from provenance.trace import trace

    policy = trust_policy(trust_anchors)
    found, warning = find_existing(inventory_path)
    warn(warning)
    inventory_name = found.location if found is not None else None
    with closing(found) as inventory:
        result = trace(path, trust=policy, inventory=inventory)
    if as_json or ndjson:
        row = verdict_row(result.to_dict(), inventory_name, warning)
        print_rows([row], as_json=as_json, ndjson=ndjson)
    else:
        _print_lineage(path, result, searched=inventory is not None)
    raise typer.Exit(EXIT_OK if result.steps else EXIT_FAILED)


def _print_lineage(path: Path, result: TraceResult, *, searched: bool) -> None:
    how = (
        f"found by {result.found_by}"
        if result.found_by
        else "not found: no provenance, and not in the inventory"
        if searched
        else "not found: no provenance, and no inventory to look in (--inventory)"
    )
    out.line(f"{path}: {result.verdict.status.value} ({how})")
    for depth, step in enumerate(result.steps):
        record = step.record
        what = (
            f"{record.model} {record.model_version}, {record.digital_source_type.value}"
            if (record)
            else "no record"
        )
        role = "original" if depth == len(result.steps) - 1 else "derived"
        out.line(f"{'  ' * depth}└─ {step.asset_id or '?'} [{role}] {what} ({step.source})")
