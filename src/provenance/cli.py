"""The ``provenance`` command line: the library's verbs, one to one.

The only module that prints. Every command takes ``--json`` for machine output
on stdout; messages and errors go to stderr as one line naming the file, never a
traceback. Exit status: 0 all good, 1 something is tampered or has an invalid
signature, 2 usage errors or input that could not be read.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from provenance._version import __version__
from provenance.atomic import write_atomic
from provenance.audit import Checkpoint
from provenance.batch import BatchRow, SignItem, sign_many, verify_many
from provenance.errors import (
    InsecureKeyFileWarning,
    ProvenanceError,
    SchemaVersionError,
)
from provenance.integrations import magento
from provenance.inventory import Inventory
from provenance.keys import DEV_WARNING, SigningKey, TrustPolicy, init_dev_keys
from provenance.pii import PiiAction, PiiPolicy, check_fields
from provenance.reading import load_record, read_input
from provenance.record import FREE_TEXT_PARAMETERS, ProvenanceRecord
from provenance.renditions import sign_renditions
from provenance.scan import scan, write_reports
from provenance.sign import SignOptions
from provenance.trace import trace
from provenance.types import SignResult, Status, Verdict
from provenance.verify import verify

__all__ = ["app", "main"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
DEFAULT_KEY_DIR = Path(".provenance") / "keys"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="provenance",
    help="Sign and verify the provenance of AI-generated product images (C2PA + signed XMP).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
keys_app = typer.Typer(help="Manage signing keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
inventory_app = typer.Typer(help="The inventory of signed assets.", no_args_is_help=True)
app.add_typer(inventory_app, name="inventory")
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
TrustAnchorsOption = Annotated[
    Path | None, typer.Option("--trust-anchors", help="PEM bundle of trusted root certificates.")
]
CertOption = Annotated[Path | None, typer.Option(help="PEM certificate chain, leaf first.")]
KeyFileOption = Annotated[Path | None, typer.Option(help="PEM private key.")]
KeysDirOption = Annotated[
    Path, typer.Option("--keys", help="Folder with chain.pem and signer.key.")
]
WorkersOption = Annotated[
    int,
    typer.Option(
        "--workers",
        "-w",
        min=0,
        help="Worker processes (0: one per CPU). 1 runs in this process; more pay "
        "off from a few dozen files on.",
    ),
]
ProgressOption = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="A progress bar on stderr (default: when stderr is a terminal).",
        show_default=False,
    ),
]
InventoryOption = Annotated[
    Path | None,
    typer.Option(
        "--inventory",
        help="Inventory database (default: $PROVENANCE_INVENTORY or .provenance/inventory.sqlite).",
    ),
]


def _one_line(text: str) -> str:
    r"""Escape control and line-breaking characters, so an error stays one line.

    File names come from strangers: a name holding ``\n`` must not start a
    second, forged line in a log that reads stderr line by line.
    """
    return text.translate(_ESCAPES)


_ESCAPES = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in (*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029)
} | {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    _err.print(f"provenance: error: {_one_line(message)}", markup=False)
    raise typer.Exit(code)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        _out.print(f"provenance {__version__}")
        raise typer.Exit(EXIT_OK)


@keys_app.command("init")
def keys_init(
    directory: Annotated[Path, typer.Argument(help="Folder for ca.pem, chain.pem, signer.key.")] = (
        DEFAULT_KEY_DIR
    ),
    organization: Annotated[str, typer.Option(help="O= of the certificates.")] = (
        "provenance development"
    ),
    force: Annotated[bool, typer.Option("--force", help="Replace existing keys.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a DEVELOPMENT CA and an ES256 signing certificate that c2pa accepts.

    Example: provenance keys init .provenance/keys
    """
    try:
        paths = init_dev_keys(directory, organization=organization, overwrite=force)
    except ProvenanceError as exc:
        _fail(str(exc))
    if as_json:
        _print_json(
            {
                "ca_certificate": str(paths.ca_certificate),
                "chain": str(paths.chain),
                "private_key": str(paths.private_key),
                "warning": DEV_WARNING,
            }
        )
    else:
        _out.print(f"wrote {paths.ca_certificate} (trust anchor)", markup=False)
        _out.print(f"wrote {paths.chain} (signing certificate chain)", markup=False)
        _out.print(f"wrote {paths.private_key} (private key, mode 0600)", markup=False)
    _err.print(f"WARNING: {DEV_WARNING}", markup=False)


@app.command("sign")
def sign_command(
    sources: Annotated[list[Path], typer.Argument(help="Images or folders of images to sign.")],
    out: Annotated[
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
    parent: Annotated[
        Path | None, typer.Option(help="The original these files are renditions of.")
    ] = None,
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Replace each source (atomically).")
    ] = False,
    pii: Annotated[
        PiiAction, typer.Option(help="What to do with personal data in free text.")
    ] = PiiAction.REFUSE,
    no_exif: Annotated[bool, typer.Option("--no-exif", help="Do not write EXIF.")] = False,
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
    if out is None and not in_place:
        _fail("give --out DIR for the signed copies, or --in-place to replace the sources")
    if out is not None and in_place:
        _fail("--out and --in-place exclude each other")
    if pii is PiiAction.HASH:
        _fail("--pii hash needs a secret key; use the library's PiiPolicy(hash_key=...)")
    signing_key = _load_key(cert, key, keys_dir)
    try:
        shared_record = load_record(record_path) if record_path is not None else None
    except ProvenanceError as exc:
        _fail(str(exc))
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _fail(f"{out}: cannot create output folder: {exc.strerror}")
    options = SignOptions(pii_policy=PiiPolicy(default=pii), write_exif=not no_exif)
    opened = None if no_inventory else _open_inventory(inventory_path, create=True)
    with _closing(opened) as inventory:
        files = _expand(sources)
        items = (
            SignItem(src, name=None if relative is None else relative.as_posix())
            for src, relative in files
        )
        batch = sign_many(
            items,
            None if in_place else out,
            key=signing_key,
            record=shared_record,
            parent=parent,
            options=options,
            inventory=inventory,
            workers=workers,
            resume=resume,
        )
        rows: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        try:
            with (
                _progress_bar(progress, "signing", len(files)) as advance,
                _json_array(as_json) as emit,
            ):
                for done in batch:
                    row = _batch_sign_row(done)
                    if "error" in row:
                        errors.append(row)
                    if as_json:
                        emit(row)  # streamed: memory stays flat over any number of files
                    else:
                        rows.append(row)
                    advance()
        except ProvenanceError as exc:
            _fail(str(exc))
    if not as_json:
        table = Table("source", "signed copy", "asset id", "bytes added", title="signed")
        for row in rows:
            if "error" not in row:
                added = str(row["bytes_added"])
                if row["status"] == "skipped":
                    added += " (already signed)"
                table.add_row(row["source"], row["path"], row["asset_id"], added)
        if len(rows) > len(errors):
            _out.print(table)
        for row in errors:
            _err.print(f"provenance: error: {_one_line(row['error'])}", markup=False)
    raise typer.Exit(EXIT_USAGE if errors else EXIT_OK)


@app.command("verify")
def verify_command(
    paths: Annotated[list[Path], typer.Argument(help="Images or folders of images.")],
    trust_anchors: TrustAnchorsOption = None,
    inventory_path: InventoryOption = None,
    workers: WorkersOption = 1,
    progress: ProgressOption = None,
    as_json: JsonOption = False,
    no_partial: Annotated[
        bool,
        typer.Option(
            "--no-partial",
            help="Skip the partial-copy search (an asset inside a screenshot or banner, "
            "rotated or cropped off-centre); the perceptual hash still runs.",
        ),
    ] = False,
) -> None:
    """Verify images offline and print a verdict per file.

    With an inventory (the default one is used when it exists), a copy whose
    provenance was stripped is recognised as known_stripped, and a known asset
    found in or as an altered copy as synthetic_duplicate.

    Without --trust-anchors a good signature is valid_untrusted, never trusted.
    Exit status: 0 nothing tampered or invalid, 1 something is, 2 unreadable input.

    \b
    Examples:
      provenance verify signed/ --trust-anchors .provenance/keys/ca.pem
      provenance verify --json upload.webp
    """
    policy = _trust_policy(trust_anchors)
    with _closing(_existing_inventory(inventory_path)) as inventory:
        files = [file for file, _ in _expand(paths)]
        verdicts: list[Verdict] = []
        statuses: set[Status] = set()
        with (
            _progress_bar(progress, "verifying", len(files)) as advance,
            _json_array(as_json) as emit,
        ):
            for row in verify_many(
                files, trust=policy, inventory=inventory, workers=workers, partial=not no_partial
            ):
                verdict = row.result
                if verdict is None:
                    error = row.error.message if row.error is not None else "failed"
                    verdict = Verdict(path=row.name, status=Status.ERROR, error=error)
                statuses.add(verdict.status)
                if as_json:
                    emit(verdict.to_dict())  # streamed: flat memory over any number of files
                else:
                    verdicts.append(verdict)
                advance()
    if not as_json:
        _print_verdicts(verdicts)
    if any(status.is_failure for status in statuses):
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_USAGE if Status.ERROR in statuses else EXIT_OK)


@app.command("renditions")
def renditions_command(
    original: Annotated[Path, typer.Argument(help="The signed original.")],
    sizes: Annotated[
        str, typer.Option(help="Comma-separated bounding boxes, e.g. 1200x1200,600x600,150x150.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the renditions.")],
    cert: CertOption = None,
    key: KeyFileOption = None,
    keys_dir: KeysDirOption = DEFAULT_KEY_DIR,
    quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG/WebP quality.")] = 85,
    inventory_path: InventoryOption = None,
    no_inventory: Annotated[
        bool, typer.Option("--no-inventory", help="Do not record the renditions.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Resize a signed original to several sizes and sign each with lineage to it.

    \b
    Example:
      provenance renditions signed/shoe.jpg --sizes 1200x1200,600x600,150x150 --out signed/r/
    """
    boxes: list[tuple[int, int]] = []
    for part in sizes.split(","):
        width, sep, height = part.strip().lower().partition("x")
        if not sep or not width.isdigit() or not height.isdigit() or "0" in (width, height):
            _fail(f"--sizes: {part.strip()!r} is not WIDTHxHEIGHT (e.g. 600x600)")
        boxes.append((int(width), int(height)))
    signing_key = _load_key(cert, key, keys_dir)
    opened = None if no_inventory else _open_inventory(inventory_path, create=True)
    with _closing(opened) as inventory:
        try:
            results = sign_renditions(
                original, out, sizes=boxes, key=signing_key, quality=quality, inventory=inventory
            )
        except ProvenanceError as exc:
            _fail(str(exc))
    if as_json:
        _print_json([r.to_dict() for r in results])
        return
    table = Table("rendition", "asset id", "bytes added", title=f"renditions of {original}")
    for result in results:
        table.add_row(result.path or "", result.asset_id, str(result.bytes_added))
    _out.print(table)


@inventory_app.command("list")
def inventory_list(
    inventory_path: InventoryOption = None,
    limit: Annotated[int | None, typer.Option(help="At most this many assets.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List the assets in the inventory, oldest first.

    Example: provenance inventory list --json
    """
    with _open_inventory(inventory_path, create=False, read_only=True) as inventory:
        try:
            entries = list(inventory.assets(limit=limit))
        except ProvenanceError as exc:
            _fail(str(exc))
    if as_json:
        _print_json([e.to_dict() for e in entries])
        return
    table = Table("asset id", "model", "source type", "parent", "files", "first signed")
    for e in entries:
        table.add_row(
            e.asset_id,
            f"{e.record.model} {e.record.model_version}",
            e.record.digital_source_type.value,
            e.parent_asset_id or "",
            str(len(e.files)),
            e.first_signed_at,
        )
    _out.print(table)


@inventory_app.command("stats")
def inventory_stats(inventory_path: InventoryOption = None, as_json: JsonOption = False) -> None:
    """Counts: assets, files, renditions, by model and by digital source type."""
    with _open_inventory(inventory_path, create=False, read_only=True) as inventory:
        try:
            stats = inventory.stats()
        except ProvenanceError as exc:
            _fail(str(exc))
    data = stats.to_dict()
    if as_json:
        _print_json(data)
        return
    for name, value in data.items():
        _out.print(f"{name}: {json.dumps(value, ensure_ascii=False)}", markup=False)


@inventory_app.command("export")
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
        Path, typer.Option("--keys", help="Sign the export's audit checkpoint with these keys.")
    ] = DEFAULT_KEY_DIR,
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
        _fail(f"{target}: say --format json or --format csv")
    key = _load_key(None, None, keys_dir) if (keys_dir / "chain.pem").exists() else None
    now = datetime.now(timezone.utc)
    with _open_inventory(inventory_path, create=False) as inventory:
        try:
            write = inventory.export_json if kind == "json" else inventory.export_csv
            checkpoint = write(target, now=now, key=key, synthetic_only=synthetic_only)
        except ProvenanceError as exc:
            _fail(str(exc))
    if as_json:
        _print_json({"path": str(target), "checkpoint": checkpoint.to_dict()})
    else:
        signed = "signed" if checkpoint.is_signed else "UNSIGNED (no keys)"
        _out.print(
            f"wrote {target}; audit checkpoint seq {checkpoint.seq} ({signed})", markup=False
        )


@audit_app.command("verify")
def audit_verify(
    inventory_path: InventoryOption = None,
    against: Annotated[
        Path | None,
        typer.Option(help="A checkpoint kept elsewhere: an export's JSON or a checkpoint file."),
    ] = None,
    trust_anchors: Annotated[
        Path | None, typer.Option("--trust-anchors", help="Require checkpoints signed by these.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check the audit log's hash chain and checkpoints; name the first wrong entry.

    Exit status: 0 intact, 1 tampered, 2 unreadable.

    \b
    Examples:
      provenance audit verify
      provenance audit verify --against inventory-2026-11-01.json
    """
    checkpoint = _load_checkpoint(against) if against is not None else None
    try:
        policy = TrustPolicy.from_pem(trust_anchors) if trust_anchors is not None else None
    except ProvenanceError as exc:
        _fail(str(exc))
    with _open_inventory(inventory_path, create=False, read_only=True) as inventory:
        try:
            report = inventory.audit.verify(against=checkpoint, trust=policy)
        except ProvenanceError as exc:
            _fail(str(exc))
    if as_json:
        _print_json(report.to_dict())
    elif report.ok:
        _out.print(
            f"audit log intact: {report.entries_checked} entries, "
            f"{report.checkpoints_checked} checkpoints, last seq {report.last_seq}",
            markup=False,
        )
    else:
        for problem in report.problems:
            _out.print(f"entry {problem.seq}: {problem.kind.value}: {problem.detail}", markup=False)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


@audit_app.command("checkpoint")
def audit_checkpoint(
    inventory_path: InventoryOption = None,
    keys_dir: KeysDirOption = DEFAULT_KEY_DIR,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also write the checkpoint here.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Sign a checkpoint of the audit log's current tail; keep a copy elsewhere."""
    key = _load_key(None, None, keys_dir)
    with _open_inventory(inventory_path, create=False) as inventory:
        try:
            checkpoint = inventory.audit.checkpoint(key, now=datetime.now(timezone.utc))
        except ProvenanceError as exc:
            _fail(str(exc))
    if out is not None:
        try:
            write_atomic(out, (checkpoint.to_json() + "\n").encode("utf-8"))
        except OSError as exc:
            _fail(f"{out}: cannot write checkpoint: {exc.strerror}")
    if as_json:
        _print_json(checkpoint.to_dict())
    else:
        _out.print(f"checkpoint at seq {checkpoint.seq}: {checkpoint.entry_hash}", markup=False)


@app.command("trace")
def trace_command(
    path: Annotated[Path, typer.Argument(help="An image: signed, stripped or a rendition.")],
    inventory_path: InventoryOption = None,
    trust_anchors: TrustAnchorsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find a file by its hashes or manifest and print its lineage up to the original.

    Exit status: 0 found, 1 unknown (no provenance and not in the inventory), 2 unreadable.

    Example: provenance trace storefront/shoe-600x600.jpg --json
    """
    policy = _trust_policy(trust_anchors)
    with _closing(_existing_inventory(inventory_path)) as inventory:
        try:
            result = trace(path, trust=policy, inventory=inventory)
        except ProvenanceError as exc:
            _fail(str(exc))
    if as_json:
        _print_json(result.to_dict())
    else:
        _out.print(
            f"{path}: {result.verdict.status.value} (found by {result.found_by})", markup=False
        )
        for depth, step in enumerate(result.steps):
            record = step.record
            what = (
                f"{record.model} {record.model_version}, {record.digital_source_type.value}"
                if (record)
                else "no record"
            )
            role = "original" if depth == len(result.steps) - 1 else "derived"
            _out.print(
                f"{'  ' * depth}└─ {step.asset_id or '?'} [{role}] {what} ({step.source})",
                markup=False,
            )
    raise typer.Exit(EXIT_OK if result.steps else EXIT_FAILED)


def _load_checkpoint(path: Path) -> Checkpoint:
    try:
        data = json.loads(read_input(path, max_bytes=64 * 1024 * 1024))
        if isinstance(data, dict) and "audit_checkpoint" in data:
            data = data["audit_checkpoint"]
        return Checkpoint.from_dict(data)
    except ValueError as exc:
        _fail(f"{path}: not a checkpoint or export JSON: {exc}")
    except ProvenanceError as exc:
        _fail(str(exc.with_path(path)))


@app.command("pii-check")
def pii_check_command(
    record_file: Annotated[Path, typer.Argument(help="A provenance record JSON file.")],
    names: Annotated[
        Path | None,
        typer.Option(help="A text file of names or customer ids to flag, one per line."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Report personal data in a record's free text (never printing the data).

    Exit status: 0 nothing found, 1 personal data found, 2 unreadable record.

    Example: provenance pii-check shoe.jpg.json --names customers.txt
    """
    try:
        record = load_record(record_file)
    except ProvenanceError as exc:
        _fail(str(exc))
    name_list: tuple[str, ...] = ()
    if names is not None:
        try:
            text = names.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"{names}: cannot read names: {exc}")
        name_list = tuple(line.strip() for line in text.splitlines() if line.strip())
    fields: dict[str, str] = {}
    if record.prompt is not None:
        fields["prompt"] = record.prompt
    for param, value in record.parameters.items():
        if isinstance(value, str) and param in FREE_TEXT_PARAMETERS:
            fields[f"parameters.{param}"] = value
    reports = check_fields(fields, PiiPolicy(names=name_list))
    found = [r for r in reports if r.kinds]
    if as_json:
        _print_json({"path": str(record_file), "fields": [r.to_dict() for r in reports]})
    elif not found:
        _out.print(f"{record_file}: no personal data found", markup=False)
    else:
        for rep in found:
            kinds = ", ".join(k.value for k in rep.kinds)
            _out.print(f"{record_file}: {rep.field}: {kinds} -> {rep.action.value}", markup=False)
    raise typer.Exit(EXIT_FAILED if found else EXIT_OK)


@app.command("scan")
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
    as_json: JsonOption = False,
) -> None:
    r"""Find signed images and copies that lost their provenance, per file.

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
    policy = _trust_policy(trust_anchors)
    with _closing(_existing_inventory(inventory_path)) as inventory:
        report = scan(paths, trust=policy, inventory=inventory, root=root)
    try:
        written = write_reports(report, json_path=json_out, csv_path=csv_out, html_path=html_out)
    except ProvenanceError as exc:
        _fail(str(exc))
    if as_json:
        _print_json(report.to_dict())
    else:
        table = Table("file", "result", "verdict", "asset", "details", title="scan")
        for row in report.rows:
            flat = row.summary()
            details = flat["error"] or (
                f"distance {flat['distance']} bits" if flat["distance"] else flat["codes"]
            )
            table.add_row(flat["path"], flat["kind"], flat["status"], flat["asset_id"], details)
        _out.print(table)
        _out.print(
            ", ".join(f"{kind}: {n}" for kind, n in report.counts.items() if n), markup=False
        )
        for path in written:
            _err.print(f"provenance: wrote {path}", markup=False)
    if any(r.verdict is not None and r.verdict.status.is_failure for r in report.rows):
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_USAGE if report.counts["error"] else EXIT_OK)


def _open_inventory(path: Path | None, *, create: bool, read_only: bool = False) -> Inventory:
    target = path if path is not None else Inventory.default_path()
    try:
        return Inventory(target, create=create, read_only=read_only)
    except ProvenanceError as exc:
        _fail(str(exc))


def _existing_inventory(path: Path | None) -> Inventory | None:
    """The given inventory (must exist), else the default one if it exists."""
    if path is None and not Inventory.default_path().exists():
        return None
    target = path if path is not None else Inventory.default_path()
    try:
        return Inventory(target, create=False, read_only=True)
    except SchemaVersionError as exc:
        if exc.found > exc.supported:
            _fail(str(exc))
    except ProvenanceError as exc:
        _fail(str(exc))
    # An older schema: migrate it once (a writable open does, in one transaction).
    _open_inventory(target, create=False).close()
    return _open_inventory(target, create=False, read_only=True)


def _trust_policy(trust_anchors: Path | None) -> TrustPolicy:
    """The anchors given with --trust-anchors, or none (valid_untrusted at best)."""
    try:
        return (
            TrustPolicy.from_pem(trust_anchors)
            if trust_anchors is not None
            else TrustPolicy.no_anchors()
        )
    except ProvenanceError as exc:
        _fail(str(exc))


def _load_key(cert: Path | None, key: Path | None, keys_dir: Path) -> SigningKey:
    chain = cert or keys_dir / "chain.pem"
    private = key or keys_dir / "signer.key"
    if not chain.exists() and cert is None:
        _fail(
            f"{chain}: no signing certificate; run 'provenance keys init {keys_dir}' for "
            "development keys, or pass --cert and --key"
        )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InsecureKeyFileWarning)
            loaded = SigningKey.from_pem_files(chain, private)
    except ProvenanceError as exc:
        _fail(str(exc))
    for warning in caught:
        _err.print(f"provenance: warning: {_one_line(str(warning.message))}", markup=False)
    return loaded


@contextlib.contextmanager
def _closing(inventory: Inventory | None) -> Iterator[Inventory | None]:
    """Yield ``inventory`` (or None) and close it when the block ends, however it ends."""
    try:
        yield inventory
    finally:
        if inventory is not None:
            inventory.close()


@contextlib.contextmanager
def _json_array(enabled: bool) -> Iterator[Callable[[Any], None]]:
    """Print a JSON array on stdout one element at a time (what _print_json prints)."""
    if not enabled:
        yield lambda value: None
        return
    count = 0

    def emit(value: Any) -> None:
        nonlocal count
        text = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        sys.stdout.write(("[\n  " if count == 0 else ",\n  ") + text)
        sys.stdout.flush()
        count += 1

    try:
        yield emit
    finally:
        sys.stdout.write("\n]\n" if count else "[]\n")


@contextlib.contextmanager
def _progress_bar(show: bool | None, label: str, total: int) -> Iterator[Callable[[], None]]:
    """A rich progress bar on stderr; yields the function that advances it."""
    if show is None:
        show = _err.is_terminal
    if not show:
        yield lambda: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=_err, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


def _batch_sign_row(row: BatchRow[SignResult]) -> dict[str, Any]:
    if row.result is None:
        error = row.error.message if row.error is not None else f"{row.name}: failed"
        return {"path": row.name, "error": error, "status": row.status.value}
    out = _sign_row(Path(row.name), row.result)
    out["status"] = row.status.value
    return out


def _expand(paths: Iterable[Path]) -> list[tuple[Path, Path | None]]:
    """Files in argument order, each with its path relative to its argument.

    Folders expand to their images, sorted; the relative path keeps files of the
    same name in different subfolders apart in an output folder. A path that
    does not exist comes back with ``None`` in place of its relative path.
    """
    files: list[tuple[Path, Path | None]] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
            files.extend((p, p.relative_to(path)) for p in found)
        elif path.exists() or path.is_symlink():
            files.append((path, Path(path.name)))
        else:
            files.append((path, None))
    return files


def _sign_row(src: Path, result: SignResult) -> dict[str, Any]:
    row = result.to_dict()
    row["source"] = str(src)
    return row


def _print_verdicts(verdicts: Sequence[Verdict]) -> None:
    table = Table("file", "verdict", "model", "signer", "codes", title="verification")
    for v in verdicts:
        model = f"{v.record.model} {v.record.model_version}" if v.record else ""
        codes = v.error or ", ".join(v.failure_codes)
        table.add_row(v.path, v.status.value, model, v.signer or "", codes)
    _out.print(table)


@app.command("disclosure")
def disclosure_command(
    file: Annotated[
        Path | None, typer.Argument(help="An image (verified) or a record JSON (as signed).")
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="html (the <figure> markup) or json.")
    ] = "html",
    src: Annotated[
        str | None, typer.Option(help="The image URL in the markup (default: the file name).")
    ] = None,
    alt: Annotated[
        str, typer.Option(help="The image's alt text (what it shows).")
    ] = "Product image",
    template: Annotated[
        str | None,
        typer.Option(help="Print the shipped snippet instead: magento (.phtml) or shopify."),
    ] = None,
    trust_anchors: TrustAnchorsOption = None,
    inventory_path: InventoryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Storefront disclosure markup (data-synthetic, aria-describedby) for an image.

    \b
    Examples:
      provenance disclosure signed/shoe.jpg --src /media/shoe.jpg --alt "Red trail shoe"
      provenance disclosure signed/shoe.jpg --format json --trust-anchors ca.pem
      provenance disclosure --template magento > view/frontend/templates/disclosure.phtml
    """
    from provenance.disclosure import disclosure_for, render_html

    if template is not None:
        names = {
            "magento": ("magento", "disclosure.phtml"),
            "shopify": ("shopify", "provenance-disclosure.liquid"),
        }
        if template not in names:
            _fail("--template: say magento or shopify")
        folder, name = names[template]
        resource = importlib.resources.files("provenance") / "templates" / folder / name
        sys.stdout.write(resource.read_text(encoding="utf-8"))
        return
    if file is None:
        _fail("give an image or a record JSON file, or --template magento|shopify")
    kind = "json" if as_json else output_format.lower()
    if kind not in ("html", "json"):
        _fail("--format: say html or json")
    subject: Verdict | ProvenanceRecord
    if file.suffix.lower() == ".json":
        try:
            subject = load_record(file)
        except ProvenanceError as exc:
            _fail(str(exc))
    else:
        policy = _trust_policy(trust_anchors)
        with _closing(_existing_inventory(inventory_path)) as inventory:
            try:
                subject = verify(file, trust=policy, inventory=inventory)
            except ProvenanceError as exc:
                _fail(str(exc))
    disclosure = disclosure_for(subject)
    default_src = file.name.removesuffix(".json") if file.suffix.lower() == ".json" else file.name
    markup = render_html(disclosure, src=src if src is not None else default_src, alt=alt)
    if kind == "json":
        _print_json({"path": str(file), **disclosure.to_dict(), "html": markup})
    else:
        sys.stdout.write(markup + "\n")


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8765,
    trust_anchors: TrustAnchorsOption = None,
    inventory_path: InventoryOption = None,
    max_bytes: Annotated[
        int, typer.Option("--max-bytes", min=1, help="Largest upload accepted (413 above).")
    ] = 64 * 1024 * 1024,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds a stalled client may wait.")
    ] = 30.0,
    as_json: JsonOption = False,
) -> None:
    """Run the DAM verification endpoint: POST /verify, GET /healthz (no outbound calls).

    \b
    Examples:
      provenance serve --trust-anchors .provenance/keys/ca.pem
      curl --data-binary @upload.jpg 'http://127.0.0.1:8765/verify?filename=upload.jpg'
      curl -F file=@upload.jpg http://127.0.0.1:8765/verify
    """
    from provenance.integrations.dam import ServerConfig, make_server

    policy = _trust_policy(trust_anchors)
    inventory = _existing_inventory(inventory_path)
    inv_file = inventory.path if inventory is not None else None
    if inventory is not None:
        inventory.close()
    config = ServerConfig(
        trust=policy, inventory_path=inv_file, max_bytes=max_bytes, timeout_s=timeout
    )
    try:
        server = make_server(host, port, config=config)
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc.strerror}")
    bound_host, bound_port = server.server_address[:2]
    url = f"http://{bound_host!s}:{bound_port}"
    if as_json:
        _print_json({"url": url, "verify": url + "/verify", "healthz": url + "/healthz"})
        sys.stdout.flush()
    else:
        _out.print(f"listening on {url} (POST /verify, GET /healthz); Ctrl-C stops", markup=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@app.command("report")
def report_command(
    source: Annotated[
        Path | None,
        typer.Argument(help="A folder to verify, or verify --json / scan JSON output."),
    ] = None,
    out: Annotated[
        list[Path] | None,
        typer.Option("--out", "-o", help="Report file(s): .json, .csv or .html (repeatable)."),
    ] = None,
    trust_anchors: TrustAnchorsOption = None,
    inventory_path: InventoryOption = None,
    keys_dir: Annotated[
        Path, typer.Option("--keys", help="Sign the report's audit checkpoint with these keys.")
    ] = DEFAULT_KEY_DIR,
    no_record: Annotated[
        bool, typer.Option("--no-record", help="Do not log findings in the audit log.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Compliance report: synthetic-data inventory, recovery check, incident timeline.

    Exit status: 0 no finding, 1 copies lost provenance, were altered or
    duplicated, 2 unreadable input.

    \b
    Examples:
      provenance report storefront-media/ --out report.html --out report.json
      provenance verify --json cdn-copies/ > verdicts.json; provenance report verdicts.json -o r.csv
    """
    from provenance.report import load_verdict_rows, make_report, verdict_rows_for

    targets = list(out or [])
    for target in targets:
        if target.suffix.lower() not in (".json", ".csv", ".html", ".htm"):
            _fail(f"{target}: a report file ends in .json, .csv or .html")
    policy = _trust_policy(trust_anchors)
    key = _load_key(None, None, keys_dir) if (keys_dir / "chain.pem").exists() else None
    now = datetime.now(timezone.utc)
    with _open_inventory(inventory_path, create=False) as inventory:
        try:
            if source is None:
                rows = None
            elif source.is_dir():
                rows = verdict_rows_for(source, trust=policy, inventory=inventory)
            else:
                rows = load_verdict_rows(read_input(source), name=str(source))
            report = make_report(
                inventory,
                rows=rows,
                now=now,
                key=key,
                source=None if source is None else str(source),
                record_findings=not no_record,
            )
        except ProvenanceError as exc:
            _fail(str(exc))
    for target in targets:
        kind = target.suffix.lower().lstrip(".")
        text = (
            report.to_json()
            if kind == "json"
            else report.to_csv()
            if kind == "csv"
            else report.to_html()
        )
        try:
            write_atomic(target, text.encode("utf-8"))
            if kind == "csv" and report.checkpoint is not None:
                sidecar = target.with_name(target.name + ".checkpoint.json")
                write_atomic(sidecar, (report.checkpoint.to_json() + "\n").encode("utf-8"))
        except OSError as exc:
            _fail(f"{target}: cannot write the report: {exc.strerror}")
    if as_json or not targets:
        _print_json(report.to_dict())
    else:
        rec = report.recovery
        _out.print(
            f"wrote {', '.join(map(str, targets))}: {len(report.assets)} synthetic assets, "
            f"{len(rec['lost_provenance'])} lost provenance, {len(rec['altered'])} altered, "
            f"{len(rec['synthetic_duplicates'])} unknown duplicates, "
            f"{len(rec['missing'])} missing",
            markup=False,
        )
    raise typer.Exit(EXIT_FAILED if report.has_findings else EXIT_OK)


# --- magento ---------------------------------------------------------------------

magento_app = typer.Typer(
    help="Magento 2: sign an import CSV's images, and the storefront's resized copies.",
    no_args_is_help=True,
)
app.add_typer(magento_app, name="magento")


@magento_app.command("import")
def magento_import(
    csv_file: Annotated[Path, typer.Argument(help="A Magento 2 product import CSV.")],
    out: Annotated[
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
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and report; write nothing.")
    ] = False,
    cert: CertOption = None,
    key: KeyFileOption = None,
    keys_dir: KeysDirOption = DEFAULT_KEY_DIR,
    pii: Annotated[
        PiiAction, typer.Option(help="What to do with personal data in free text.")
    ] = PiiAction.REFUSE,
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
    """
    if out is None and not dry_run:
        _fail("give --out DIR for the new CSV and the signed images (or --dry-run)")
    if pii is PiiAction.HASH:
        _fail("--pii hash needs a secret key; use the library's PiiPolicy(hash_key=...)")
    if images_dir is None:
        found = [Path(d) for d in magento.DEFAULT_IMAGES_DIRS if Path(d).is_dir()]
        if not found:
            _fail("no ./var/import/images or ./pub/media/import here; give --images-dir")
        images_dir = found[0]
    default_record = None
    given = [v is not None for v in (generator, model, model_version)]
    if any(given) and not all(given):
        _fail("a default record needs all of --generator, --model and --model-version")
    if all(given):
        try:
            default_record = ProvenanceRecord.from_dict(
                {
                    "generator": generator,
                    "model": model,
                    "model_version": model_version,
                    "digital_source_type": digital_source_type,
                    "created_at": created_at or "1970-01-01T00:00:00Z",
                }
            )
        except ProvenanceError as exc:
            _fail(f"default record: {exc}")
    try:
        options = magento.ImportOptions(
            csv_format=magento.CsvFormat(
                field_separator=_separator(field_separator),
                multiple_value_separator=_separator(multiple_value_separator) or ",",
                fields_enclosure=fields_enclosure,
                empty_value_constant=empty_value,
            ),
            disclosure_text=disclosure,
            record_column=record_column,
            default_record=default_record,
            default_created_at_from_file=default_record is not None and created_at is None,
            dry_run=dry_run,
            sign_options=SignOptions(pii_policy=PiiPolicy(default=pii), disclosure_text=disclosure),
        )
    except ValueError as exc:
        _fail(str(exc))
    signing_key = None if dry_run else _load_key(cert, key, keys_dir)
    opened = None
    if not dry_run and not no_inventory:
        opened = _open_inventory(inventory_path, create=True)
    with _closing(opened) as inventory:
        try:
            report = magento.import_csv(
                csv_file,
                out if out is not None else Path(),
                images_dir=images_dir,
                key=signing_key,
                out_images_dir=out_images,
                options=options,
                inventory=inventory,
            )
        except ProvenanceError as exc:
            _fail(str(exc))
    if as_json:
        _print_json(report.to_dict())
    else:
        failed = [r for r in report.rows if not r.ok]
        if failed:
            table = Table("line", "sku", "problem", "error", title="rows not imported")
            for row in failed:
                table.add_row(
                    str(row.line), row.sku, row.problem.value if row.problem else "", row.error
                )
            _out.print(table)
        verb = "would import" if report.dry_run else "imported"
        _out.print(
            f"{verb} {report.rows_imported} rows, {report.rows_failed} failed; "
            f"{report.images_signed} images signed, {report.images_copied} copied, "
            f"{report.labels_filled} labels filled"
            + (f"; wrote {report.output_csv}" if report.output_csv else ""),
            markup=False,
        )
        for warning in report.warnings:
            _err.print(f"provenance: warning: {warning}", markup=False)
    raise typer.Exit(EXIT_USAGE if report.rows_failed else EXIT_OK)


@magento_app.command("sign-cache")
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
    no_exif: Annotated[bool, typer.Option("--no-exif", help="Do not write EXIF.")] = False,
    inventory_path: InventoryOption = None,
    no_inventory: Annotated[
        bool, typer.Option("--no-inventory", help="Do not record the signed renditions.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Sign Magento's resized product images in place, with lineage to their originals.

    Magento's resize (GD2/ImageMagick) drops the manifest; this finds every file
    in catalog/product/cache/<hash>/a/b/ and signs it (atomically, keeping its
    permission bits) as a rendition of catalog/product/a/b/. Files already signed
    (or, with --inventory-only, already recorded) are skipped: run it after each
    catalog:images:resize or cache flush. Exit status: 0 all done, 2 some failed.

    \b
    Examples:
      provenance magento sign-cache /var/www/magento/pub/media
      provenance magento sign-cache pub/media --inventory-only --json
    """
    if inventory_only and no_inventory:
        _fail("--inventory-only and --no-inventory exclude each other")
    signing_key = None
    if not inventory_only or (cert is not None or (keys_dir / "chain.pem").exists()):
        signing_key = _load_key(cert, key, keys_dir) if not inventory_only else None
    opened = None if no_inventory else _open_inventory(inventory_path, create=True)
    with _closing(opened) as inventory:
        try:
            outcomes = magento.sign_cache(
                media_dir,
                key=signing_key,
                inventory=inventory,
                inventory_only=inventory_only,
                options=SignOptions(write_exif=not no_exif),
            )
        except ProvenanceError as exc:
            _fail(str(exc))
    errors = [o for o in outcomes if o.error is not None]
    if as_json:
        _print_json([o.to_dict() for o in outcomes])
    else:
        table = Table("rendition", "action", "asset id", "parent asset id", title="cache")
        for o in outcomes:
            if o.error is None:
                table.add_row(
                    o.rendition, o.action.value, o.asset_id or "", o.parent_asset_id or ""
                )
        if len(outcomes) > len(errors):
            _out.print(table)
        elif not outcomes:
            _out.print(f"{media_dir}: no renditions in catalog/product/cache", markup=False)
        for o in errors:
            _err.print(f"provenance: error: {o.error}", markup=False)
    raise typer.Exit(EXIT_USAGE if errors else EXIT_OK)


def _separator(text: str | None) -> str | None:
    """A separator option: a backslash-t or ``tab`` means a tab character."""
    if text is None:
        return None
    return "\t" if text in ("\\t", "tab", "TAB") else text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return its exit status (for ``python -m provenance``)."""
    logging.basicConfig(level=logging.WARNING, format="provenance: %(message)s")
    os.environ.setdefault("COLUMNS", "160")
    try:
        app(args=list(argv) if argv is not None else None, standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    return EXIT_OK


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
