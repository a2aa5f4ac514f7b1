"""``provenance inventory``: list, count, export, index, pack and migrate the signed assets.

A new subcommand is one function here under ``@app.command("NAME")`` and
``@reports_errors``, plus its docs/cli.md section and docs/json/ schema.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from provenance.cli._common import busy_timeout_s, checkpoint_key, open_inventory
from provenance.cli._options import InventoryOption, JsonOption, NdjsonOption
from provenance.cli._output import fail, out, print_json, print_rows, reports_errors, table

app = typer.Typer(help="The inventory of signed assets.", no_args_is_help=True)


@app.command("list")
@reports_errors
def inventory_list(
    inventory_path: InventoryOption = None,
    limit: Annotated[int | None, typer.Option(help="At most this many assets.")] = None,
    as_json: JsonOption = False,
    ndjson: NdjsonOption = False,
) -> None:
    """List the assets in the inventory, oldest first.

    Example: provenance inventory list --json
    """
    with open_inventory(inventory_path, create=False, read_only=True) as inventory:
        entries = list(inventory.assets(limit=limit))
    if as_json or ndjson:
        print_rows((e.to_dict() for e in entries), as_json=as_json, ndjson=ndjson)
        return
    shown = table("asset id", "model", "source type", "parent", "files", "first signed")
    for e in entries:
        shown.add_row(
            e.asset_id,
            f"{e.record.model} {e.record.model_version}",
            e.record.digital_source_type.value,
            e.parent_asset_id or "",
            str(len(e.files)),
            e.first_signed_at,
        )
    out.print(shown)


@app.command("stats")
@reports_errors
def inventory_stats(inventory_path: InventoryOption = None, as_json: JsonOption = False) -> None:
    """Counts: assets, files, renditions, by model and by digital source type."""
    with open_inventory(inventory_path, create=False, read_only=True) as inventory:
        stats = inventory.stats()
    data = stats.to_dict()
    if as_json:
        print_json(data)
        return
    for name, value in data.items():
        out.line(f"{name}: {json.dumps(value, ensure_ascii=False)}")


@app.command("export")
@reports_errors
def inventory_export(
    target: Annotated[Path, typer.Argument(help="The file to write (.json or .csv).")],
    inventory_path: InventoryOption = None,
    export_format: Annotated[
        str | None, typer.Option("--format", help="json or csv (default: from the suffix).")
    ] = None,
    synthetic_only: Annotated[
        bool, typer.Option("--synthetic-only", help="Only AI-generated assets.")
    ] = False,
    keys_dir: Annotated[
        Path | None,
        typer.Option(
            "--keys",
            help="Sign the export's audit checkpoint with these keys "
            "(default: .provenance/keys when it holds the log's key).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Export the synthetic-data inventory for compliance, with a signed audit checkpoint.

    \b
    Examples:
      provenance inventory export inventory.json
      provenance inventory export inventory.csv --synthetic-only
    """
    kind = (export_format or target.suffix.lstrip(".")).lower()
    if kind not in ("json", "csv"):
        fail(f"{target}: say --format json or --format csv")
    now = datetime.now(timezone.utc)
    with open_inventory(inventory_path, create=False) as inventory:
        key = checkpoint_key(keys_dir, inventory)
        write = inventory.export_json if kind == "json" else inventory.export_csv
        checkpoint = write(target, now=now, key=key, synthetic_only=synthetic_only)
    if as_json:
        print_json({"path": str(target), "checkpoint": checkpoint.to_dict()})
    else:
        signed = "signed" if checkpoint.is_signed else "UNSIGNED (no keys)"
        out.line(f"wrote {target}; audit checkpoint seq {checkpoint.seq} ({signed})")


@app.command("index")
@reports_errors
def inventory_index(inventory_path: InventoryOption = None, as_json: JsonOption = False) -> None:
    """Build the partial-copy search's keypoint index and write its cache file now.

    Verifiers open the inventory read-only and never write the cache: run this after
    an import so that each new verifier process loads the index instead of building
    it from every row (minutes at 100k assets).

    Example: provenance inventory index --inventory .provenance/inventory.sqlite
    """
    with open_inventory(inventory_path, create=False) as inventory:
        written = inventory.write_index_caches()
    caches = [{"path": str(cache), "bytes": cache.stat().st_size} for cache in written]
    if as_json:
        print_json({"caches": caches})
        return
    for cache in caches:
        out.line(f"{cache['path']}: {cache['bytes']} bytes")
    if not written:
        out.line("no keypoint index cache: a server inventory, or too few rows")


@app.command("pack")
@reports_errors
def inventory_pack(
    inventory_path: InventoryOption = None,
    scheme: Annotated[
        # phash.SCHEME, written out: the command line starts without numpy.
        str, typer.Option(help="The perceptual scheme whose rows are packed.")
    ] = "dct256-v1",
    as_json: JsonOption = False,
) -> None:
    """Pack a server inventory's perceptual rows so verifiers start faster.

    A verifier's first search reads every perceptual row; packed key ranges are read
    as a few large values instead. Run it after an import or by cron; signing and
    other packers may run meanwhile. An SQLite inventory needs no packs.

    Example: provenance inventory pack --inventory postgresql://u@db/inv --json
    """
    with open_inventory(inventory_path, create=False) as inventory:
        location = inventory.location
        reports = [inventory.pack_perceptual(scheme)] if inventory.is_server else []
    if as_json:
        print_json({"inventory": location, "schemes": [r.to_dict() for r in reports]})
        return
    if not reports:
        out.print(f"{location}: an SQLite inventory needs no packs", markup=False)
    for r in reports:
        out.print(
            f"{location}: {r.scheme}: {r.ranges_packed} ranges packed ({r.rows_packed} rows) "
            f"in {r.seconds:.1f} s; {r.packs} packs, {r.unsealed} ranges not sealed, "
            f"{r.stale_dropped} stale dropped",
            markup=False,
        )


@app.command("migrate")
@reports_errors
def inventory_migrate(
    source: Annotated[str, typer.Argument(help="The inventory to copy: a path or a URL.")],
    target: Annotated[
        str, typer.Argument(help="A new, empty inventory: a path, postgresql://..., mysql://...")
    ],
    as_json: JsonOption = False,
) -> None:
    """Copy an inventory into a new one on any backend, then verify both sides.

    Every row keeps its key: asset ids, lineage, perceptual and keypoint rows, the
    audit chain and its checkpoints. Exit status: 0 copied and verified, 1 the audit
    chains or counts differ, 2 nothing copied (bad URL, unreachable, target not empty).

    Example: provenance inventory migrate .provenance/inventory.sqlite postgresql://u@db/inv
    """
    from provenance.inventory import migrate_inventory

    report = migrate_inventory(source, target, busy_timeout_s=busy_timeout_s())
    if as_json:
        print_json(report.to_dict())
    else:
        out.line(f"{report.source} -> {report.target}")
        source_counts, target_counts = dict(report.source_counts), dict(report.target_counts)
        for name, rows in report.copied:
            out.line(f"  {name}: {rows} copied ({source_counts[name]} / {target_counts[name]})")
        out.line(
            f"audit: {report.source_audit.status} / {report.target_audit.status}, "
            f"last entry {report.target_audit.last_seq}"
        )
    if not report.ok:
        raise typer.Exit(1)
