"""``provenance sign`` and ``provenance renditions``: the commands that sign files."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provenance._core.pii import PiiAction
from provenance.batch import warm_up
from provenance.cli._common import closing, inventory_for_writing, load_key, pii_policy
from provenance.cli._options import (
    DEFAULT_KEY_DIR,
    CertOption,
    InventoryOption,
    JsonOption,
    KeyFileOption,
    KeysDirOption,
    NamesOption,
    NdjsonOption,
    NoExifOption,
    PassphraseEnvOption,
    PassphraseFileOption,
    PiiOption,
    ProgressOption,
    SignerOption,
    WorkersOption,
)
from provenance.cli._output import (
    EXIT_OK,
    EXIT_USAGE,
    err,
    fail,
    json_rows,
    one_line,
    out,
    print_rows,
    progress_bar,
    reports_errors,
    table,
)

if TYPE_CHECKING:
    from provenance._core.types import SignResult
    from provenance.batch import BatchRow


# Over 60 lines: typer reads the options from the signature; the body is short.
@reports_errors
def sign_command(
    sources: Annotated[list[Path], typer.Argument(help="Images or folders of images to sign.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the signed copies.")
    ] = None,
    record_path: Annotated[
        Path | None,
        typer.Option(
            "--record",
            help="Provenance record JSON for every source (default: the sidecar FILE.json).",
        ),
    ] = None,
    cert: CertOption = None,
    key: KeyFileOption = None,
    keys_dir: KeysDirOption = DEFAULT_KEY_DIR,
    key_passphrase_env: PassphraseEnvOption = None,
    key_passphrase_file: PassphraseFileOption = None,
    signer: SignerOption = None,
    parent: Annotated[
        Path | None, typer.Option(help="The original these files are renditions of.")
    ] = None,
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Replace each source (atomically).")
    ] = False,
    pii: PiiOption = PiiAction.REFUSE,
    names: NamesOption = None,
    no_exif: NoExifOption = False,
    inventory_path: InventoryOption = None,
    no_inventory: Annotated[
        bool, typer.Option("--no-inventory", help="Do not record the signed files.")
    ] = False,
    workers: WorkersOption = 1,
    progress: ProgressOption = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--no-resume",
            help="Skip files whose signed copy exists and is recorded in the inventory.",
        ),
    ] = True,
    as_json: JsonOption = False,
    ndjson: NdjsonOption = False,
) -> None:
    """Sign images: signed XMP, minimal EXIF and a C2PA manifest.

    Every signed file is recorded in the inventory (default
    .provenance/inventory.sqlite, or $PROVENANCE_INVENTORY) unless --no-inventory.
    A second run over the same files skips those already signed and recorded
    (--no-resume signs them again); --workers N signs on N processes.

    \b
    Examples:
      provenance sign shoe.jpg --out signed/ --record shoe.json
      provenance sign sample_media/ --out signed/            (records from FILE.json sidecars)
      provenance sign thumb.jpg --parent shoe.jpg --out signed/ --record shoe.json
      provenance sign catalogue/ --out signed/ --workers 0   (one process per CPU)
    """
    if out_dir is None and not in_place:
        fail("give --out DIR for the signed copies, or --in-place to replace the sources")
    if out_dir is not None and in_place:
        fail("--out and --in-place exclude each other")
    warm_up(workers)  # workers forked now (decision 1), or the pool's fork server booting
    # Imported after warm_up: forked workers share them, a fork server imports beside us.
    from provenance._core.sign_options import SignOptions
    from provenance._io.reading import load_record
    from provenance.batch import SignItem, sign_many
    from provenance.cli._files import expand

    policy = pii_policy(pii, names)
    signing_key = load_key(
        cert,
        key,
        keys_dir,
        passphrase_env=key_passphrase_env,
        passphrase_file=key_passphrase_file,
        signer=signer,
    )
    shared_record = load_record(record_path) if record_path is not None else None
    options = SignOptions(pii_policy=policy, write_exif=not no_exif)
    opened = inventory_for_writing(inventory_path, skip=no_inventory, checkpoint_key=signing_key)
    with closing(opened) as inventory:
        files, _ = expand(sources, output=None if in_place else out_dir)
        items = (
            SignItem(src, name=None if relative is None else relative.as_posix())
            for src, relative in files
        )
        batch = sign_many(
            items,
            None if in_place else out_dir,
            key=signing_key,
            record=shared_record,
            parent=parent,
            options=options,
            inventory=inventory,
            workers=workers,
            resume=resume,
        )
        with progress_bar(progress, "signing", len(files)) as advance:
            rows = _sign_rows(batch, advance, as_json=as_json, ndjson=ndjson)
    errors = [row for row in rows if "error" in row]
    if not (as_json or ndjson):
        _print_signed(rows, errors)
    for row in rows:  # also in each --json row's "warnings"
        for warning in row.get("warnings", ()):
            err.line(f"provenance: warning: {row['source']}: {warning}")
    raise typer.Exit(EXIT_USAGE if errors else EXIT_OK)


def _sign_rows(
    batch: Iterable[BatchRow[SignResult]],
    advance: Callable[[], None],
    *,
    as_json: bool,
    ndjson: bool,
) -> list[dict[str, Any]]:
    """The signed rows; with --json/--ndjson each is printed as it comes and only its gist kept.

    Streamed: memory stays flat over any number of files (a row printed as JSON is
    kept only as what the summary needs: its error, source and warnings).
    """
    kept: list[dict[str, Any]] = []
    with json_rows(as_json, ndjson) as emit:
        for done in batch:
            row = _batch_sign_row(done)
            if as_json or ndjson:
                emit(row)
                row = {k: row[k] for k in ("error", "source", "warnings") if k in row}
            kept.append(row)
            advance()
    return kept


def _print_signed(rows: list[dict[str, Any]], errors: list[dict[str, Any]]) -> None:
    signed = table("source", "signed copy", "asset id", "bytes added", title="signed")
    for row in rows:
        if "error" not in row:
            added = str(row["bytes_added"])
            if row["status"] == "skipped":
                added += " (already signed)"
            signed.add_row(row["source"], row["path"], row["asset_id"], added)
    if len(rows) > len(errors):
        out.print(signed)
    for row in errors:
        err.line(f"provenance: error: {one_line(row['error'])}")


def _batch_sign_row(row: BatchRow[SignResult]) -> dict[str, Any]:
    if row.result is None:
        error = row.error.message if row.error is not None else f"{row.name}: failed"
        return {"path": row.name, "error": error, "status": row.status.value}
    done = row.result.to_dict()
    done["source"] = str(Path(row.name))
    done["status"] = row.status.value
    return done


# Over 60 lines: typer reads the options from the signature; the body is short.
@reports_errors
def renditions_command(
    original: Annotated[Path, typer.Argument(help="The signed original.")],
    sizes: Annotated[
        str, typer.Option(help="Comma-separated bounding boxes, e.g. 1200x1200,600x600,150x150.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for the renditions.")],
    cert: CertOption = None,
    key: KeyFileOption = None,
    keys_dir: KeysDirOption = DEFAULT_KEY_DIR,
    key_passphrase_env: PassphraseEnvOption = None,
    key_passphrase_file: PassphraseFileOption = None,
    signer: SignerOption = None,
    quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG/WebP quality.")] = 85,
    record_path: Annotated[
        Path | None,
        typer.Option(
            "--record",
            help="Provenance record JSON (default: the one signed into the original).",
        ),
    ] = None,
    inventory_path: InventoryOption = None,
    no_inventory: Annotated[
        bool, typer.Option("--no-inventory", help="Do not record the renditions.")
    ] = False,
    as_json: JsonOption = False,
    ndjson: NdjsonOption = False,
) -> None:
    """Resize a signed original to several sizes and sign each with lineage to it.

    An original whose provenance was stripped needs --record (its sidecar JSON).

    \b
    Examples:
      provenance renditions signed/shoe.jpg --sizes 1200x1200,600x600,150x150 --out signed/r/
      provenance renditions shoe.jpg --record shoe.jpg.json --sizes 600x600 --out r/
    """
    from provenance._io.reading import load_record
    from provenance.renditions import sign_renditions

    boxes = _boxes(sizes)
    record = load_record(record_path) if record_path is not None else None
    signing_key = load_key(
        cert,
        key,
        keys_dir,
        passphrase_env=key_passphrase_env,
        passphrase_file=key_passphrase_file,
        signer=signer,
    )
    opened = inventory_for_writing(inventory_path, skip=no_inventory, checkpoint_key=signing_key)
    with closing(opened) as inventory:
        results = sign_renditions(
            original,
            out_dir,
            sizes=boxes,
            key=signing_key,
            record=record,
            quality=quality,
            inventory=inventory,
        )
    if as_json or ndjson:
        rows = ({**r.to_dict(), "status": "ok", "original": str(original)} for r in results)
        print_rows(rows, as_json=as_json, ndjson=ndjson)
        return
    made = table("rendition", "asset id", "bytes added", title=f"renditions of {original}")
    for result in results:
        made.add_row(result.path or "", result.asset_id, str(result.bytes_added))
    out.print(made)


def _boxes(sizes: str) -> list[tuple[int, int]]:
    """The bounding boxes of --sizes (``1200x1200,600x600``)."""
    boxes: list[tuple[int, int]] = []
    for part in sizes.split(","):
        width, sep, height = part.strip().lower().partition("x")
        if not sep or not width.isdigit() or not height.isdigit() or "0" in (width, height):
            fail(f"--sizes: {part.strip()!r} is not WIDTHxHEIGHT (e.g. 600x600)")
        boxes.append((int(width), int(height)))
    return boxes
