"""The ``provenance`` command line: the library's verbs, one to one.

The only module that prints. Every command takes ``--json`` for machine output
on stdout; messages and errors go to stderr as one line naming the file, never a
traceback. Exit status: 0 all good, 1 something is tampered or has an invalid
signature, 2 usage errors or input that could not be read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
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
from provenance.errors import ProvenanceError, RecordError
from provenance.inventory import Inventory
from provenance.keys import DEV_WARNING, SigningKey, TrustPolicy, init_dev_keys
from provenance.pii import PiiAction, PiiPolicy, check_fields
from provenance.reading import read_input
from provenance.record import FREE_TEXT_PARAMETERS, ProvenanceRecord
from provenance.renditions import sign_renditions
from provenance.sign import SignOptions
from provenance.trace import trace
from provenance.types import SignResult, Status, Verdict

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


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    _err.print(f"provenance: error: {message}", markup=False)
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
    cert: Annotated[Path | None, typer.Option(help="PEM certificate chain, leaf first.")] = None,
    key: Annotated[Path | None, typer.Option(help="PEM private key.")] = None,
    keys_dir: Annotated[
        Path, typer.Option("--keys", help="Folder with chain.pem and signer.key.")
    ] = DEFAULT_KEY_DIR,
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
    r"""Sign images: signed XMP, minimal EXIF and a C2PA manifest.

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
        shared_record = _load_record(record_path) if record_path is not None else None
    except ProvenanceError as exc:
        _fail(str(exc))
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _fail(f"{out}: cannot create output folder: {exc.strerror}")
    options = SignOptions(pii_policy=PiiPolicy(default=pii), write_exif=not no_exif)
    inventory = None if no_inventory else _open_inventory(inventory_path, create=True)
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
    finally:
        if inventory is not None:
            inventory.close()
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
            _err.print(f"provenance: error: {row['error']}", markup=False)
    raise typer.Exit(EXIT_USAGE if errors else EXIT_OK)


@app.command("verify")
def verify_command(
    paths: Annotated[list[Path], typer.Argument(help="Images or folders of images.")],
    trust_anchors: Annotated[
        Path | None,
        typer.Option("--trust-anchors", help="PEM bundle of trusted root certificates."),
    ] = None,
    inventory_path: InventoryOption = None,
    workers: WorkersOption = 1,
    progress: ProgressOption = None,
    as_json: JsonOption = False,
) -> None:
    r"""Verify images offline and print a verdict per file.

    With an inventory (the default one is used when it exists), a copy whose
    provenance was stripped is recognised as known_stripped.

    Without --trust-anchors a good signature is valid_untrusted, never trusted.
    Exit status: 0 nothing tampered or invalid, 1 something is, 2 unreadable input.

    \b
    Examples:
      provenance verify signed/ --trust-anchors .provenance/keys/ca.pem
      provenance verify --json upload.webp
    """
    try:
        policy = (
            TrustPolicy.from_pem(trust_anchors)
            if trust_anchors is not None
            else TrustPolicy.no_anchors()
        )
    except ProvenanceError as exc:
        _fail(str(exc))
    inventory = _existing_inventory(inventory_path)
    files = [file for file, _ in _expand(paths)]
    verdicts: list[Verdict] = []
    statuses: set[Status] = set()
    try:
        with (
            _progress_bar(progress, "verifying", len(files)) as advance,
            _json_array(as_json) as emit,
        ):
            for row in verify_many(files, trust=policy, inventory=inventory, workers=workers):
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
    finally:
        if inventory is not None:
            inventory.close()
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
    cert: Annotated[Path | None, typer.Option(help="PEM certificate chain, leaf first.")] = None,
    key: Annotated[Path | None, typer.Option(help="PEM private key.")] = None,
    keys_dir: Annotated[
        Path, typer.Option("--keys", help="Folder with chain.pem and signer.key.")
    ] = DEFAULT_KEY_DIR,
    quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG/WebP quality.")] = 85,
    inventory_path: InventoryOption = None,
    no_inventory: Annotated[
        bool, typer.Option("--no-inventory", help="Do not record the renditions.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    r"""Resize a signed original to several sizes and sign each with lineage to it.

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
    inventory = None if no_inventory else _open_inventory(inventory_path, create=True)
    try:
        results = sign_renditions(
            original, out, sizes=boxes, key=signing_key, quality=quality, inventory=inventory
        )
    except ProvenanceError as exc:
        _fail(str(exc))
    finally:
        if inventory is not None:
            inventory.close()
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
    r"""Export the synthetic-data inventory for compliance, with a signed audit checkpoint.

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
    r"""Check the audit log's hash chain and checkpoints; name the first wrong entry.

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
    keys_dir: Annotated[
        Path, typer.Option("--keys", help="Folder with chain.pem and signer.key.")
    ] = DEFAULT_KEY_DIR,
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
    trust_anchors: Annotated[
        Path | None, typer.Option("--trust-anchors", help="PEM bundle of trusted roots.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Find a file by its hashes or manifest and print its lineage up to the original.

    Exit status: 0 found, 1 unknown (no provenance and not in the inventory), 2 unreadable.

    Example: provenance trace storefront/shoe-600x600.jpg --json
    """
    try:
        policy = (
            TrustPolicy.from_pem(trust_anchors)
            if trust_anchors is not None
            else TrustPolicy.no_anchors()
        )
    except ProvenanceError as exc:
        _fail(str(exc))
    inventory = _existing_inventory(inventory_path)
    try:
        result = trace(path, trust=policy, inventory=inventory)
    except ProvenanceError as exc:
        _fail(str(exc))
    finally:
        if inventory is not None:
            inventory.close()
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
        record = _load_record(record_file)
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
    return _open_inventory(path, create=False, read_only=True)


def _load_key(cert: Path | None, key: Path | None, keys_dir: Path) -> SigningKey:
    chain = cert or keys_dir / "chain.pem"
    private = key or keys_dir / "signer.key"
    if not chain.exists() and cert is None:
        _fail(
            f"{chain}: no signing certificate; run 'provenance keys init {keys_dir}' for "
            "development keys, or pass --cert and --key"
        )
    try:
        return SigningKey.from_pem_files(chain, private)
    except ProvenanceError as exc:
        _fail(str(exc))


def _load_record(path: Path) -> ProvenanceRecord:
    try:
        data = read_input(path, max_bytes=1024 * 1024)
        return ProvenanceRecord.from_json(data)
    except RecordError as exc:
        raise exc.with_path(path) from None
    except ProvenanceError as exc:
        if exc.path is None:
            exc.with_path(path)
        raise RecordError(
            exc.message if "record" in exc.message else f"record: {exc.message}", path=path
        ) from None


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
