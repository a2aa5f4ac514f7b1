"""``provenance magento``: sign an import CSV's images, and the storefront's resized copies."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provenance._core.pii import PiiAction
from provenance._io.atomic import write_atomic
from provenance.cli._common import closing, inventory_for_writing, load_key, pii_policy
from provenance.cli._options import (
    DEFAULT_KEY_DIR,
    CertOption,
    InventoryOption,
    JsonOption,
    KeyFileOption,
    KeysDirOption,
    NdjsonOption,
    NoExifOption,
    PiiOption,
)
from provenance.cli._output import (
    EXIT_OK,
    EXIT_USAGE,
    err,
    fail,
    out,
    print_json,
    print_rows,
    reports_errors,
    table,
)
from provenance.errors import ProvenanceError

if TYPE_CHECKING:
    from provenance._core.record import ProvenanceRecord
    from provenance.integrations import magento

# The library is imported inside the commands, when one runs (issue 20): the
# command line starts without numpy, Pillow and c2pa.

app = typer.Typer(
    help="Magento 2: sign an import CSV's images, and the storefront's resized copies.",
    no_args_is_help=True,
)


# Over 60 lines: typer reads the options from the signature; the body is short.
@app.command("import")
@reports_errors
def magento_import(
    csv_file: Annotated[Path, typer.Argument(help="A Magento 2 product import CSV.")],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for the new CSV (and images/, by default)."),
    ] = None,
    images_dir: Annotated[
        Path | None,
        typer.Option(
            "--images-dir",
            help="Magento's import images directory the CSV paths are relative to "
            "(default: ./var/import/images, else ./pub/media/import).",
        ),
    ] = None,
    out_images: Annotated[
        Path | None,
        typer.Option("--out-images", help="Folder for the images (default: OUT/images)."),
    ] = None,
    field_separator: Annotated[
        str | None,
        typer.Option("--field-separator", help="Magento's field separator (default: sniffed)."),
    ] = None,
    multiple_value_separator: Annotated[
        str, typer.Option("--multiple-value-separator", help="Magento's multiple value separator.")
    ] = ",",
    fields_enclosure: Annotated[
        bool,
        typer.Option("--fields-enclosure", help="Labels are each wrapped in double quotes."),
    ] = False,
    empty_value: Annotated[
        str, typer.Option("--empty-value-constant", help="Magento's empty attribute value.")
    ] = "__EMPTY__VALUE__",
    record_column: Annotated[
        str | None,
        typer.Option(
            "--record-column",
            help="Column holding each row's record: inline JSON or a JSON file in the images dir.",
        ),
    ] = None,
    generator: Annotated[
        str | None,
        typer.Option(help="Default record: the generator (with --model, --model-version)."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Default record: the model.")] = None,
    model_version: Annotated[
        str | None, typer.Option("--model-version", help="Default record: the model version.")
    ] = None,
    digital_source_type: Annotated[
        str, typer.Option("--digital-source-type", help="Default record: IPTC digital source type.")
    ] = "trainedAlgorithmicMedia",
    created_at: Annotated[
        str | None,
        typer.Option(
            "--created-at", help="Default record: generation time (default: each file's mtime)."
        ),
    ] = None,
    disclosure: Annotated[
        str, typer.Option("--disclosure-text", help="Written into empty labels of AI images.")
    ] = "AI-generated image",
    append_disclosure: Annotated[
        bool,
        typer.Option(
            "--append-disclosure",
            help="Also append ' (TEXT)' to labels of AI images that are already filled.",
        ),
    ] = False,
    disclosure_json: Annotated[
        Path | None,
        typer.Option(
            "--disclosure-json",
            help="Write the per-image disclosure JSON the shipped disclosure.phtml reads.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and report; write nothing.")
    ] = False,
    cert: CertOption = None,
    key: KeyFileOption = None,
    keys_dir: KeysDirOption = DEFAULT_KEY_DIR,
    pii: PiiOption = PiiAction.REFUSE,
    inventory_path: InventoryOption = None,
    no_inventory: Annotated[
        bool, typer.Option("--no-inventory", help="Do not record the signed images.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Sign the images of a Magento product import CSV; write a CSV ready to import.

    Images with a record (the --record-column cell, the sidecar FILE.json, or the
    default record from --generator/--model/--model-version) are signed into the
    output images folder at the same relative path; others are copied unchanged.
    Empty labels of AI-generated images get the disclosure text. Bad rows are
    reported and left out (and written to NAME.rejected.csv); the rest is imported.
    Exit status: 0 every row imported, 2 some rows failed or the CSV is unusable.

    \b
    Examples:
      provenance magento import products.csv --images-dir var/import/images --out signed/
      provenance magento import products.csv --out signed/ --json --generator "Studio 2"
        --model flux.1-dev --model-version 1.0
      provenance magento import products.csv --dry-run
      provenance magento import products.csv --out signed/ --disclosure-json
        app/etc/provenance-disclosures.json --append-disclosure
    """
    if out_dir is None and not dry_run:
        fail("give --out DIR for the new CSV and the signed images (or --dry-run)")
    from provenance.integrations import magento
    from provenance.sign import SignOptions

    policy = pii_policy(pii, None)
    images_dir = images_dir or _default_images_dir()
    default_record = _default_record(
        generator, model, model_version, digital_source_type, created_at
    )
    try:
        options = magento.ImportOptions(
            csv_format=magento.CsvFormat(
                field_separator=_separator(field_separator),
                multiple_value_separator=_separator(multiple_value_separator) or ",",
                fields_enclosure=fields_enclosure,
                empty_value_constant=empty_value,
            ),
            disclosure_text=disclosure,
            append_disclosure=append_disclosure,
            record_column=record_column,
            default_record=default_record,
            default_created_at_from_file=default_record is not None and created_at is None,
            dry_run=dry_run,
            sign_options=SignOptions(pii_policy=policy, disclosure_text=disclosure),
        )
    except ValueError as exc:
        fail(str(exc))
    signing_key = None if dry_run else load_key(cert, key, keys_dir)
    opened = inventory_for_writing(
        inventory_path, skip=dry_run or no_inventory, checkpoint_key=signing_key
    )
    with closing(opened) as inventory:
        report = magento.import_csv(
            csv_file,
            out_dir if out_dir is not None else Path(),
            images_dir=images_dir,
            key=signing_key,
            out_images_dir=out_images,
            options=options,
            inventory=inventory,
        )
    if disclosure_json is not None and not dry_run:
        try:
            write_atomic(disclosure_json, report.disclosures_json().encode("utf-8"))
        except OSError as exc:
            fail(f"{disclosure_json}: cannot write: {exc.strerror}")
    if as_json:
        print_json(report.to_dict())
    else:
        _print_import(report, append_disclosure=append_disclosure, disclosure_json=disclosure_json)
    raise typer.Exit(EXIT_USAGE if report.rows_failed else EXIT_OK)


def _default_images_dir() -> Path:
    """Magento's import images folder under the working folder, as Magento looks for it."""
    from provenance.integrations import magento

    found = [Path(d) for d in magento.DEFAULT_IMAGES_DIRS if Path(d).is_dir()]
    if not found:
        fail("no ./var/import/images or ./pub/media/import here; give --images-dir")
    return found[0]


def _default_record(
    generator: str | None,
    model: str | None,
    model_version: str | None,
    digital_source_type: str,
    created_at: str | None,
) -> ProvenanceRecord | None:
    """The record of --generator, --model and --model-version (all or none of them)."""
    given = [v is not None for v in (generator, model, model_version)]
    if any(given) and not all(given):
        fail("a default record needs all of --generator, --model and --model-version")
    if not all(given):
        return None
    from provenance._core.record import ProvenanceRecord

    try:
        return ProvenanceRecord.from_dict(
            {
                "generator": generator,
                "model": model,
                "model_version": model_version,
                "digital_source_type": digital_source_type,
                "created_at": created_at or "1970-01-01T00:00:00Z",
            }
        )
    except ProvenanceError as exc:
        fail(f"default record: {exc}")


def _print_import(
    report: magento.ImportReport, *, append_disclosure: bool, disclosure_json: Path | None
) -> None:
    failed = [r for r in report.rows if not r.ok]
    if failed:
        rejected = table("line", "sku", "problem", "error", title="rows not imported")
        for row in failed:
            rejected.add_row(
                str(row.line), row.sku, row.problem.value if row.problem else "", row.error
            )
        out.print(rejected)
    verb = "would import" if report.dry_run else "imported"
    written = disclosure_json is not None and not report.dry_run
    out.line(
        f"{verb} {report.rows_imported} rows, {report.rows_failed} failed; "
        f"{report.images_signed} images signed, {report.images_copied} copied, "
        f"{report.labels_filled} labels filled"
        + (f", {report.labels_appended} appended to" if append_disclosure else "")
        + (f"; wrote {report.output_csv}" if report.output_csv else "")
        + (f" and {disclosure_json} ({len(report.disclosures)} images)" if written else "")
    )
    for warning in report.warnings:
        err.line(f"provenance: warning: {warning}")


# Over 60 lines: typer reads the options from the signature; the body is short.
@app.command("sign-cache")
@reports_errors
def magento_sign_cache(
    media_dir: Annotated[Path, typer.Argument(help="Magento's pub/media directory.")],
    inventory_only: Annotated[
        bool,
        typer.Option(
            "--inventory-only",
            help="Do not touch the files: record each rendition (essence hash, parent) only.",
        ),
    ] = False,
    cert: CertOption = None,
    key: KeyFileOption = None,
    keys_dir: KeysDirOption = DEFAULT_KEY_DIR,
    no_exif: NoExifOption = False,
    inventory_path: InventoryOption = None,
    no_inventory: Annotated[
        bool, typer.Option("--no-inventory", help="Do not record the signed renditions.")
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Also fail (exit 2) on renditions whose original carries no provenance.",
        ),
    ] = False,
    as_json: JsonOption = False,
    ndjson: NdjsonOption = False,
) -> None:
    """Sign Magento's resized product images in place, with lineage to their originals.

    Magento's resize (GD2/ImageMagick) drops the manifest; this finds every file
    in catalog/product/cache/<hash>/a/b/ and signs it (atomically, keeping its
    permission bits) as a rendition of catalog/product/a/b/. Files already signed
    (or, with --inventory-only, already recorded) are left alone, and renditions
    of originals without provenance (photos, not AI-generated) are skipped and
    counted: run it from cron after each catalog:images:resize or cache flush.
    Cache files whose original was deleted are counted as orphans, not errors.
    Exit status: 0 every AI original's renditions are signed, 2 some failed (with
    --strict, also when some were skipped or orphaned).

    \b
    Examples:
      provenance magento sign-cache /var/www/magento/pub/media
      provenance magento sign-cache pub/media --inventory-only --json
    """
    if inventory_only and no_inventory:
        fail("--inventory-only and --no-inventory exclude each other")
    from provenance.integrations import magento
    from provenance.integrations.magento import CacheAction
    from provenance.sign import SignOptions

    signing_key = None if inventory_only else load_key(cert, key, keys_dir)
    opened = inventory_for_writing(inventory_path, skip=no_inventory, checkpoint_key=signing_key)
    with closing(opened) as inventory:
        outcomes = magento.sign_cache(
            media_dir,
            key=signing_key,
            inventory=inventory,
            inventory_only=inventory_only,
            options=SignOptions(write_exif=not no_exif),
        )
    errors = [o for o in outcomes if o.error is not None]
    skipped = [o for o in outcomes if o.action is CacheAction.SKIPPED]
    orphans = [o for o in outcomes if o.action is CacheAction.ORPHAN]
    failed = bool(errors) or (strict and bool(skipped or orphans))
    if as_json or ndjson:
        rows = ({"path": o.rendition, "status": o.action.value, **o.to_dict()} for o in outcomes)
        print_rows(rows, as_json=as_json, ndjson=ndjson)
    else:
        _print_cache(media_dir, outcomes, strict=strict)
    raise typer.Exit(EXIT_USAGE if failed else EXIT_OK)


def _print_cache(media_dir: Path, outcomes: list[magento.CacheOutcome], *, strict: bool) -> None:
    from provenance.integrations.magento import CacheAction

    changed = [o for o in outcomes if o.action in (CacheAction.SIGNED, CacheAction.RECORDED)]
    # Only what changed is listed, so a second run prints one line.
    if changed:
        shown = table("rendition", "action", "asset id", "parent asset id", title="cache")
        for o in changed:
            shown.add_row(o.rendition, o.action.value, o.asset_id or "", o.parent_asset_id or "")
        out.print(shown)
    skipped = [o for o in outcomes if o.action is CacheAction.SKIPPED]
    orphans = [o for o in outcomes if o.action is CacheAction.ORPHAN]
    errors = [o for o in outcomes if o.error is not None]
    if not outcomes:
        out.line(f"{media_dir}: no renditions in catalog/product/cache")
    else:
        tally = {a: sum(1 for o in outcomes if o.action is a) for a in CacheAction}
        out.line(
            f"{len(outcomes)} renditions: {tally[CacheAction.SIGNED]} signed, "
            f"{tally[CacheAction.RECORDED]} recorded, "
            f"{tally[CacheAction.ALREADY_SIGNED]} already signed, "
            f"{tally[CacheAction.ALREADY_RECORDED]} already recorded, "
            f"{len(skipped)} skipped (original has no provenance: not AI-generated), "
            + (f"{len(orphans)} orphans (original deleted), " if orphans else "")
            + f"{len(errors)} errors"
        )
    for o in errors:
        err.line(f"provenance: error: {o.error}")
    if strict and skipped:
        err.line(
            f"provenance: error: --strict: {len(skipped)} renditions of originals "
            "without provenance, e.g. " + str(skipped[0].original)
        )
    if strict and orphans:
        err.line(
            f"provenance: error: --strict: {len(orphans)} renditions whose original "
            "is gone, e.g. " + orphans[0].rendition
        )


def _separator(text: str | None) -> str | None:
    """A separator option: a backslash-t or ``tab`` means a tab character."""
    if text is None:
        return None
    return "\t" if text in ("\\t", "tab", "TAB") else text
