"""The ``provenance`` command line: the library's verbs, one to one.

The only module that prints. Every command takes ``--json`` for machine output
on stdout, in one of two shapes (docs/cli.md, "JSON output"; a schema per command
in docs/json/): commands about files or assets print an array of rows through
:func:`_json_rows` (and take ``--ndjson``), the others print one object through
:func:`_print_json`. Messages and errors go to stderr as one line naming the
file, never a traceback. Exit status: 0 all good, 1 something is tampered or
has an invalid signature, 2 usage errors or input that could not be read, 3 a
batch's worker processes could not be started (``--workers 1`` works without them).
"""

from __future__ import annotations

import base64
import contextlib
import importlib.resources
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.segment import Segment
from rich.table import Table

from provenance._core.containers import IMAGE_SUFFIXES as _IMAGE_SUFFIXES
from provenance._core.containers import SUPPORTED, detect_format
from provenance._core.pii import PiiAction, PiiPolicy, check_fields
from provenance._core.record import FREE_TEXT_PARAMETERS, ProvenanceRecord
from provenance._core.types import SignResult, Status, Verdict
from provenance._core.verdicts import exit_code, meets
from provenance._io.atomic import PRIVATE_FILE_MODE, write_atomic
from provenance._io.discovery import InventorySource, find_inventory
from provenance._io.image_files import holds_image
from provenance._io.keys import DEV_WARNING, SigningKey, TrustPolicy, init_dev_keys, key_fingerprint
from provenance._io.reading import load_record, read_input
from provenance._version import __version__
from provenance.audit import (
    WITNESS_ENV_VAR,
    Checkpoint,
    chain_fingerprint,
    witness_from,
)
from provenance.batch import BatchRow, SignItem, sign_many, verify_many
from provenance.errors import (
    InsecureKeyFileWarning,
    ProvenanceError,
    SchemaVersionError,
    WorkerPoolError,
)
from provenance.integrations import magento
from provenance.inventory import Inventory
from provenance.renditions import sign_renditions
from provenance.scan import scan, write_reports
from provenance.sign import SignOptions
from provenance.trace import trace
from provenance.verify import verify

__all__ = ["app", "main"]

IMAGE_SUFFIXES = _IMAGE_SUFFIXES
DEFAULT_KEY_DIR = Path(".provenance") / "keys"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_NO_WORKERS = 3  # a batch's worker processes could not be started (issue 19)

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
NdjsonOption = Annotated[
    bool,
    typer.Option(
        "--ndjson",
        help="Print the JSON rows one per line as each completes (implies --json).",
    ),
]
TrustAnchorsOption = Annotated[
    Path | None, typer.Option("--trust-anchors", help="PEM bundle of trusted root certificates.")
]
CertOption = Annotated[Path | None, typer.Option(help="PEM certificate chain, leaf first.")]
KeyFileOption = Annotated[Path | None, typer.Option(help="PEM private key.")]
KeysDirOption = Annotated[
    Path, typer.Option("--keys", help="Folder with chain.pem and signer.key.")
]
PASSPHRASE_ENV = "PROVENANCE_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
PassphraseEnvOption = Annotated[
    str | None,
    typer.Option(
        "--key-passphrase-env",
        metavar="VAR",
        help="Read an encrypted key's passphrase from this environment variable "
        f"(default: ${PASSPHRASE_ENV} when set). Never on the command line itself.",
    ),
]
PassphraseFileOption = Annotated[
    Path | None,
    typer.Option(
        "--key-passphrase-file",
        help="Read an encrypted key's passphrase from the first line of this file "
        "(or a descriptor: /dev/fd/3).",
    ),
]
SignerOption = Annotated[
    str | None,
    typer.Option(
        "--signer",
        metavar="MODULE:FUNCTION",
        help="Sign through this callback (a KMS or HSM client) instead of a key file; "
        "--cert (default: --keys DIR/chain.pem) is its certificate chain.",
    ),
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
NamesOption = Annotated[
    Path | None,
    typer.Option("--names", help="A text file of names or customer ids to flag, one per line."),
]
InventoryOption = Annotated[
    Path | None,
    typer.Option(
        "--inventory",
        help="Inventory database (default: $PROVENANCE_INVENTORY, else the inventory key of a "
        "provenance.toml or a .provenance/inventory.sqlite in this folder or a parent).",
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


_PYTHON_HINTS = {
    # The library's hint names a Python argument; a command-line user needs flags.
    "(pass create=True to make one)": (
        "(check --inventory or PROVENANCE_INVENTORY; provenance sign creates an inventory)"
    ),
}


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    for hint, flags in _PYTHON_HINTS.items():
        message = message.replace(hint, flags)
    _err.print(f"provenance: error: {_one_line(message)}", markup=False)
    raise typer.Exit(code)


# Columns holding what a user copies (paths, asset ids, SKUs): never folded nor cut.
_IDENTIFIER_COLUMNS = frozenset(
    {"source", "signed copy", "asset id", "parent asset id", "asset", "parent", "file"}
    | {"rendition", "sku"}
)


_FOLD_AFTER = 20


class _Table(Table):
    """A table that never cuts or folds an identifier (docs/cli.md, "Tables").

    Identifier columns (:data:`_IDENTIFIER_COLUMNS`) get their full width; the
    others wrap between words (a word longer than ``_FOLD_AFTER`` cells may be
    folded, so a long message does not push the table out). When that does not fit the
    terminal, the rows are printed as records instead, one ``column  value`` line
    per cell (what ``psql``'s expanded display does), so every id and path stays
    whole on one line.
    """

    def __init__(self, *headers: str, title: str | None = None) -> None:
        super().__init__(title=title)
        self._headers = headers
        self._rows: list[tuple[str, ...]] = []
        for header in headers:
            self.add_column(header, overflow="fold")

    def add_row(self, *cells: Any, **kwargs: Any) -> None:
        """Add a row (and keep its text for the record layout)."""
        self._rows.append(tuple(str(cell) for cell in cells))
        super().add_row(*cells, **kwargs)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # Each column's narrowest (longest word, or the whole id) and widest width.
        least: list[int] = []
        words: list[int] = []
        most: list[int] = []
        for i, header in enumerate(self._headers):
            texts = [header, *(row[i] for row in self._rows if i < len(row))]
            most.append(max(cell_len(t) for t in texts))
            words.append(max(cell_len(w) for t in texts for w in [*t.split(), ""]))
            if header in _IDENTIFIER_COLUMNS:
                least.append(most[-1])
            else:  # wrap between words; only a word longer than _FOLD_AFTER may fold
                least.append(min(words[-1], _FOLD_AFTER))
        room = options.max_width - (3 * len(self._headers) + 1)  # padding and rules
        if sum(least) <= room:
            widths = list(least)
            spare = room - sum(widths)
            # First unfold long words, the cheapest first; then share what is left.
            for i in sorted(range(len(widths)), key=lambda i: words[i] - widths[i]):
                grant = min(max(words[i] - widths[i], 0), spare)
                widths[i], spare = widths[i] + grant, spare - grant
            while spare > 0 and any(w < m for w, m in zip(widths, most, strict=True)):
                for i, (w, m) in enumerate(zip(widths, most, strict=True)):
                    if w < m and spare > 0:
                        widths[i], spare = w + 1, spare - 1
            for column, width in zip(self.columns, widths, strict=True):
                column.width = max(width, 1)
            yield from super().__rich_console__(console, options)
            return
        label = max((len(h) for h in self._headers), default=0)
        lines = [self.title] if isinstance(self.title, str) else []
        for n, row in enumerate(self._rows):
            if n:
                lines.append("")
            lines.extend(
                f"{h:<{label}}  {_one_line(v)}".rstrip()
                for h, v in zip(self._headers, row, strict=False)
            )
        yield Segment("\n".join(lines) + "\n")


def _table(*headers: str, title: str | None = None) -> Table:
    """A table that keeps ids and paths whole (see :class:`_Table`): they get copied."""
    return _Table(*headers, title=title)


def _print_json(value: Any) -> None:
    """The one way a command whose answer is one thing prints it: one JSON object."""
    sys.stdout.write(json.dumps(_json_safe(value), indent=2, ensure_ascii=False) + "\n")


def _json_safe(value: Any) -> Any:
    """``value`` with every string valid UTF-8, reversibly (docs/cli.md, "JSON output").

    A file name that is not valid UTF-8 reaches Python with its bad bytes as
    lone surrogates (PEP 383), which cannot be written as UTF-8 JSON. Such a
    string is shown with U+FFFD in their place, and the exact bytes go in a
    sibling key ``<key>_bytes`` (base64): ``base64.b64decode(row["path_bytes"])``
    is the name as the file system has it.
    """
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(item, str) and _has_surrogates(item):
                raw = item.encode("utf-8", "surrogateescape")
                out[key] = raw.decode("utf-8", "replace")
                out[f"{key}_bytes"] = base64.b64encode(raw).decode("ascii")
            else:
                out[key] = _json_safe(item)
        return out
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, str) and _has_surrogates(value):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


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
        _fail(str(exc).replace("pass overwrite to replace them", "give --force to replace them"))
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
    key_passphrase_env: PassphraseEnvOption = None,
    key_passphrase_file: PassphraseFileOption = None,
    signer: SignerOption = None,
    parent: Annotated[
        Path | None, typer.Option(help="The original these files are renditions of.")
    ] = None,
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Replace each source (atomically).")
    ] = False,
    pii: Annotated[
        PiiAction, typer.Option(help="What to do with personal data in free text.")
    ] = PiiAction.REFUSE,
    names: NamesOption = None,
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
    if out is None and not in_place:
        _fail("give --out DIR for the signed copies, or --in-place to replace the sources")
    if out is not None and in_place:
        _fail("--out and --in-place exclude each other")
    policy = _pii_policy(pii, names)
    signing_key = _load_key(
        cert,
        key,
        keys_dir,
        passphrase_env=key_passphrase_env,
        passphrase_file=key_passphrase_file,
        signer=signer,
    )
    try:
        shared_record = load_record(record_path) if record_path is not None else None
    except ProvenanceError as exc:
        _fail(str(exc))
    options = SignOptions(pii_policy=policy, write_exif=not no_exif)
    opened = (
        None
        if no_inventory
        else _open_inventory(inventory_path, create=True, checkpoint_key=signing_key)
    )
    with _closing(opened) as inventory:
        files, _ = _expand(sources)
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
        warnings: list[str] = []
        try:
            with (
                _progress_bar(progress, "signing", len(files)) as advance,
                _json_rows(as_json, ndjson) as emit,
            ):
                for done in batch:
                    row = _batch_sign_row(done)
                    if "error" in row:
                        errors.append(row)
                    warnings.extend(f"{row['source']}: {w}" for w in row.get("warnings", ()))
                    if as_json or ndjson:
                        emit(row)  # streamed: memory stays flat over any number of files
                    else:
                        rows.append(row)
                    advance()
        except WorkerPoolError as exc:
            _fail(str(exc), EXIT_NO_WORKERS)
        except ProvenanceError as exc:
            _fail(str(exc))
    if not (as_json or ndjson):
        table = _table("source", "signed copy", "asset id", "bytes added", title="signed")
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
    for line in warnings:  # also in each --json row's "warnings"
        _err.print(f"provenance: warning: {line}", markup=False)
    raise typer.Exit(EXIT_USAGE if errors else EXIT_OK)


@app.command("verify")
def verify_command(
    paths: Annotated[list[Path], typer.Argument(help="Images or folders of images.")],
    trust_anchors: TrustAnchorsOption = None,
    inventory_path: InventoryOption = None,
    require: Annotated[
        str | None,
        typer.Option(
            "--require",
            help="Exit 1 unless every file is this: trusted, or valid_untrusted "
            "(which trusted also meets).",
        ),
    ] = None,
    accept: Annotated[
        str | None,
        typer.Option(
            "--accept",
            help="With --require: statuses that also count, comma-separated "
            "(e.g. known_stripped,synthetic_duplicate).",
        ),
    ] = None,
    workers: WorkersOption = 1,
    progress: ProgressOption = None,
    as_json: JsonOption = False,
    ndjson: NdjsonOption = False,
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

    With an inventory (--inventory, $PROVENANCE_INVENTORY, or found from this
    folder up: see docs/cli.md), a copy whose provenance was stripped is
    recognised as known_stripped, and a known asset found in or as an altered copy
    (a screenshot, a banner, a rotation, a crop) as synthetic_duplicate; without one,
    a warning says so.

    Without --trust-anchors a good signature is valid_untrusted, never trusted.
    Exit status: 0 nothing failed, 1 something is tampered, invalid_signature,
    invalid_manifest or invalid_identity (or, with --require, some file does not
    meet it), 2 unreadable input or no image at all.

    \b
    Examples:
      provenance verify signed/ --trust-anchors .provenance/keys/ca.pem
      provenance verify --json upload.webp
      provenance verify cdn/ --trust-anchors ca.pem --require trusted --accept known_stripped
    """
    requirement, accepted = _requirement(require, accept)
    policy = _trust_policy(trust_anchors)
    expanded, notes = _expand(paths)
    files = [file for file, _ in expanded]
    inventory, warning = _find_existing(inventory_path)
    _warn(warning)
    inventory_name = str(inventory.path) if inventory is not None else None
    with _closing(inventory):
        verdicts: list[Verdict] = []
        statuses: list[Status] = []
        with (
            _progress_bar(progress, "verifying", len(files)) as advance,
            _json_rows(as_json, ndjson) as emit,
            _no_workers_exit(),
        ):
            for row in verify_many(
                files, trust=policy, inventory=inventory, workers=workers, partial=not no_partial
            ):
                verdict = row.result
                if verdict is None:
                    error = row.error.message if row.error is not None else "failed"
                    verdict = Verdict(path=row.name, status=Status.ERROR, error=error)
                statuses.append(verdict.status)
                if as_json or ndjson:
                    out = _verdict_row(verdict.to_dict(), inventory_name, warning)
                    out["warnings"].extend(notes)
                    if requirement is not None:
                        out["meets_requirement"] = meets(verdict.status, requirement, accepted)
                    emit(out)  # streamed: flat memory over any number of files
                else:
                    verdicts.append(verdict)
                advance()
    if not (as_json or ndjson):
        _print_verdicts(verdicts)
    raise typer.Exit(exit_code(statuses, requirement=requirement, accept=accepted))


def _requirement(
    require: str | None, accept: str | None
) -> tuple[Status | None, frozenset[Status]]:
    """Parse --require and --accept (see provenance._core.verdicts.meets)."""
    if require is None:
        if accept is not None:
            _fail("--accept only makes sense with --require")
        return None, frozenset()
    names = [n.strip() for n in (accept or "").split(",") if n.strip()]
    try:
        required = Status(require.strip())
        accepted = frozenset(Status(n) for n in names)
        meets(Status.TRUSTED, required, accepted)  # validates the combination
    except ValueError as exc:
        known = ", ".join(s.value for s in Status)
        _fail(f"--require/--accept: {exc} (statuses: {known})")
    return required, accepted


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
    boxes: list[tuple[int, int]] = []
    for part in sizes.split(","):
        width, sep, height = part.strip().lower().partition("x")
        if not sep or not width.isdigit() or not height.isdigit() or "0" in (width, height):
            _fail(f"--sizes: {part.strip()!r} is not WIDTHxHEIGHT (e.g. 600x600)")
        boxes.append((int(width), int(height)))
    record = None
    if record_path is not None:
        try:
            record = load_record(record_path)
        except ProvenanceError as exc:
            _fail(str(exc))
    signing_key = _load_key(
        cert,
        key,
        keys_dir,
        passphrase_env=key_passphrase_env,
        passphrase_file=key_passphrase_file,
        signer=signer,
    )
    opened = (
        None
        if no_inventory
        else _open_inventory(inventory_path, create=True, checkpoint_key=signing_key)
    )
    with _closing(opened) as inventory:
        try:
            results = sign_renditions(
                original,
                out,
                sizes=boxes,
                key=signing_key,
                record=record,
                quality=quality,
                inventory=inventory,
            )
        except ProvenanceError as exc:
            message = str(exc)
            if message.endswith("pass record="):
                message = message.removesuffix("pass record=") + "give --record RECORD.json"
            _fail(message)
    if as_json or ndjson:
        rows = ({**r.to_dict(), "status": "ok", "original": str(original)} for r in results)
        _print_rows(rows, as_json=as_json, ndjson=ndjson)
        return
    table = _table("rendition", "asset id", "bytes added", title=f"renditions of {original}")
    for result in results:
        table.add_row(result.path or "", result.asset_id, str(result.bytes_added))
    _out.print(table)


@inventory_app.command("list")
def inventory_list(
    inventory_path: InventoryOption = None,
    limit: Annotated[int | None, typer.Option(help="At most this many assets.")] = None,
    as_json: JsonOption = False,
    ndjson: NdjsonOption = False,
) -> None:
    """List the assets in the inventory, oldest first.

    Example: provenance inventory list --json
    """
    with _open_inventory(inventory_path, create=False, read_only=True) as inventory:
        try:
            entries = list(inventory.assets(limit=limit))
        except ProvenanceError as exc:
            _fail(str(exc))
    if as_json or ndjson:
        _print_rows((e.to_dict() for e in entries), as_json=as_json, ndjson=ndjson)
        return
    table = _table("asset id", "model", "source type", "parent", "files", "first signed")
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


@inventory_app.command("migrate")
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

    try:
        report = migrate_inventory(source, target, busy_timeout_s=_busy_timeout_s())
    except ProvenanceError as exc:
        _fail(str(exc))
    data = report.to_dict()
    if as_json:
        _print_json(data)
    else:
        _out.print(f"{report.source} -> {report.target}", markup=False)
        for table, rows in report.copied:
            counts = (dict(report.source_counts)[table], dict(report.target_counts)[table])
            _out.print(f"  {table}: {rows} copied ({counts[0]} / {counts[1]})", markup=False)
        _out.print(
            f"audit: {report.source_audit.status} / {report.target_audit.status}, "
            f"last entry {report.target_audit.last_seq}",
            markup=False,
        )
    if not report.ok:
        raise typer.Exit(1)


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
        _fail(f"{target}: say --format json or --format csv")
    now = datetime.now(timezone.utc)
    with _open_inventory(inventory_path, create=False) as inventory:
        key = _checkpoint_key(keys_dir, inventory)
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
    keys_dir: Annotated[
        Path | None,
        typer.Option(
            "--keys",
            help="Pin the log to this key: checkpoints signed by any other are refused "
            "(default: the key of the log's first signed checkpoint).",
        ),
    ] = None,
    witness: Annotated[
        str | None,
        typer.Option(
            "--witness",
            help=f"The witness file or folder (default: ${WITNESS_ENV_VAR}).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check the audit log: hash chain, checkpoints, witness and every fact row it binds.

    Prints "intact" only when something kept outside the database (the log's
    key, trust anchors, a witness) vouches for it, "unverified" when the log is
    consistent but nothing outside does. Exit status: 0 intact or unverified,
    1 tampered, 2 unreadable.

    \b
    Examples:
      provenance audit verify
      provenance audit verify --witness /mnt/audit-witness/
      provenance audit verify --against inventory-2026-11-01.json
    """
    checkpoint = _load_checkpoint(against) if against is not None else None
    try:
        policy = TrustPolicy.from_pem(trust_anchors) if trust_anchors is not None else None
        pin = None
        if keys_dir is not None:
            pin = chain_fingerprint(read_input(keys_dir / "chain.pem", max_bytes=1024 * 1024))
        chosen = witness_from(witness)
    except ProvenanceError as exc:
        _fail(str(exc))
    # Read-only, after migrating an older schema once (as verify does).
    inventory, missing = _find_existing(inventory_path)
    if inventory is None:
        _fail(missing or "no inventory found")
    with inventory:
        if chosen is not None:
            inventory.audit.witness = chosen
        try:
            report = inventory.audit.verify(against=checkpoint, trust=policy, pin=pin)
        except ProvenanceError as exc:
            _fail(str(exc))
    if as_json:
        _print_json(report.to_dict())
    else:
        for problem in report.problems:
            _out.print(f"entry {problem.seq}: {problem.kind.value}: {problem.detail}", markup=False)
        if report.ok:
            _out.print(
                f"audit log {'intact' if report.verified else 'UNVERIFIED'}: "
                f"{report.entries_checked} entries, {report.checkpoints_checked} checkpoints, "
                f"{report.facts_checked} rows reconciled, last seq {report.last_seq}",
                markup=False,
            )
        for note in report.notes:
            _out.print(f"note: {note}", markup=False)
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
        _warn_witness(inventory)
    if out is not None:
        try:
            write_atomic(out, (checkpoint.to_json() + "\n").encode("utf-8"), mode=PRIVATE_FILE_MODE)
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
    ndjson: NdjsonOption = False,
) -> None:
    """Find a file by its hashes or manifest and print its lineage up to the original.

    Exit status: 0 found, 1 unknown (no provenance and not in the inventory), 2 unreadable.

    Example: provenance trace storefront/shoe-600x600.jpg --json
    """
    policy = _trust_policy(trust_anchors)
    found, warning = _find_existing(inventory_path)
    _warn(warning)
    inventory_name = str(found.path) if found is not None else None
    with _closing(found) as inventory:
        try:
            result = trace(path, trust=policy, inventory=inventory)
        except ProvenanceError as exc:
            _fail(str(exc))
    if as_json or ndjson:
        row = _verdict_row(result.to_dict(), inventory_name, warning)
        _print_rows([row], as_json=as_json, ndjson=ndjson)
    else:
        how = (
            f"found by {result.found_by}"
            if result.found_by
            else "not found: no provenance, and not in the inventory"
            if inventory is not None
            else "not found: no provenance, and no inventory to look in (--inventory)"
        )
        _out.print(f"{path}: {result.verdict.status.value} ({how})", markup=False)
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
    names: NamesOption = None,
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
    name_list = _read_names(names)
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
    policy = _trust_policy(trust_anchors)
    for path in paths:
        if path.is_dir() and not holds_image(path):
            _fail(f"{path}: folder holds no JPEG, PNG or WebP image")
    found, warning = _find_existing(inventory_path)
    _warn(warning)
    inventory_name = str(found.path) if found is not None else None
    with _closing(found) as inventory, _json_rows(as_json, ndjson) as emit:
        report = scan(
            paths,
            trust=policy,
            inventory=inventory,
            root=root,
            on_row=lambda row: emit(_verdict_row(row.to_dict(), inventory_name, warning)),
        )
    try:
        written = write_reports(report, json_path=json_out, csv_path=csv_out, html_path=html_out)
    except ProvenanceError as exc:
        _fail(str(exc))
    if not (as_json or ndjson):
        table = _table("file", "result", "verdict", "asset", "details", title="scan")
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


@contextlib.contextmanager
def _no_workers_exit() -> Iterator[None]:
    """A batch whose worker processes cannot start: one line, exit status 3."""
    try:
        yield
    except WorkerPoolError as exc:
        _fail(str(exc), EXIT_NO_WORKERS)


BUSY_TIMEOUT_ENV = "PROVENANCE_BUSY_TIMEOUT_S"
"""How long a command waits for another process's inventory write lock (default 30 s)."""


def _busy_timeout_s() -> float:
    text = os.environ.get(BUSY_TIMEOUT_ENV, "")
    if not text:
        return 30.0
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        _fail(f"{BUSY_TIMEOUT_ENV}={text!r}: give a number of seconds (0 or more)")
    return value


def _open_inventory(
    path: Path | None,
    *,
    create: bool,
    read_only: bool = False,
    checkpoint_key: SigningKey | None = None,
) -> Inventory:
    """The inventory by the discovery rule (provenance._io.discovery); a new one is made in cwd.

    A signing writer passes its key so checkpoints follow the schedule.
    """
    try:
        target = find_inventory(path).path
        return Inventory(
            target,
            create=create,
            read_only=read_only,
            checkpoint_key=checkpoint_key,
            busy_timeout_s=_busy_timeout_s(),
        )
    except ProvenanceError as exc:
        message = str(exc)
        if "pass create=True" in message:
            # The library's hint names a Python argument; a command-line user needs flags.
            message = (
                f"{target}: no inventory here; give --inventory PATH or set "
                "PROVENANCE_INVENTORY (commands that sign create it)"
            )
        _fail(message)


PII_HASH_KEY_ENV = "PROVENANCE_PII_HASH_KEY"


def _read_names(names: Path | None) -> tuple[str, ...]:
    if names is None:
        return ()
    try:
        text = names.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"{names}: cannot read names: {exc}")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _pii_policy(action: PiiAction, names: Path | None) -> PiiPolicy:
    """The personal-data policy of --pii and --names (the hash key from the environment)."""
    hash_key = None
    if action is PiiAction.HASH:
        secret = os.environ.get(PII_HASH_KEY_ENV, "")
        if len(secret.encode("utf-8")) < 16:
            _fail(f"--pii hash needs a secret of at least 16 bytes in ${PII_HASH_KEY_ENV}")
        hash_key = secret.encode("utf-8")
    try:
        return PiiPolicy(default=action, names=_read_names(names), hash_key=hash_key)
    except ProvenanceError as exc:
        _fail(str(exc))


def _find_existing(path: Path | None) -> tuple[Inventory | None, str | None]:
    """The inventory to read, if any, and otherwise the warning that says so.

    ``--inventory`` must exist. A ``$PROVENANCE_INVENTORY`` or config entry that
    names a missing file, and finding nothing at all, are not errors: the
    command runs without an inventory, and says so (stderr and ``--json``).
    """
    try:
        found = find_inventory(path)
    except ProvenanceError as exc:
        _fail(str(exc))
    if found.source is not InventorySource.FLAG and not found.exists:
        if found.source is InventorySource.NONE:
            why = (
                "no inventory found (no --inventory, no $PROVENANCE_INVENTORY, no "
                f"provenance.toml or .provenance/inventory.sqlite from {Path.cwd()} up)"
            )
        else:
            why = f"no inventory at {found.path} (named by {found.origin}): no such file"
        return None, why + "; stripped and resized copies cannot be recognised"
    target = found.path
    try:
        return Inventory(target, create=False, read_only=True), None
    except SchemaVersionError as exc:
        if exc.found > exc.supported:
            _fail(str(exc))
    except ProvenanceError as exc:
        _fail(str(exc))
    # An older schema: migrate it once (a writable open does, in one transaction).
    _open_inventory(target, create=False).close()
    return _open_inventory(target, create=False, read_only=True), None


def _existing_inventory(path: Path | None) -> Inventory | None:
    """The inventory to read, if any; without one, say so once on stderr."""
    inventory, warning = _find_existing(path)
    _warn(warning)
    return inventory


def _verdict_row(
    row: dict[str, Any], inventory_name: str | None, warning: str | None
) -> dict[str, Any]:
    """A verify, scan or trace row: ``status`` and the inventory it was checked against.

    ``status`` is the verdict (``verdict`` is kept as it was); ``inventory`` is the
    database path or ``None``, and ``warnings`` says why there was none.
    """
    verdict = row.get("verdict")
    row.setdefault("status", verdict if isinstance(verdict, str) else Status.ERROR.value)
    row.setdefault("error", None)
    row["inventory"] = inventory_name
    row["warnings"] = [] if warning is None else [warning]
    return row


def _warn(message: str | None) -> None:
    if message is not None:
        _err.print(f"provenance: warning: {_one_line(message)}", markup=False)


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


def _checkpoint_key(keys_dir: Path | None, inventory: Inventory) -> SigningKey | None:
    """The key that signs an export's or report's audit checkpoint, if any.

    It is also set as the inventory's checkpoint key (the open ``inventory``'s log
    decides whether the working folder's keys are its own).

    ``--keys`` when given. Otherwise ``.provenance/keys`` of the working folder, but only
    when it is the log's own key (or the log has none yet): a log is pinned to one key,
    and keys that happen to lie in the folder a command runs from are not a reason to
    sign someone else's log (the checkpoint is then unsigned, and we say so).
    """
    key: SigningKey | None = None
    if keys_dir is not None:
        key = _load_key(None, None, keys_dir)
    elif (DEFAULT_KEY_DIR / "chain.pem").exists():
        key = _load_key(None, None, DEFAULT_KEY_DIR)
        log_key = inventory.audit.log_key()
        if log_key is not None and log_key != key_fingerprint(key.leaf):
            _warn(
                f"{DEFAULT_KEY_DIR}: not this log's key ({log_key[:16]}); the audit checkpoint "
                "is unsigned (pass --keys with the log's keys to sign it)"
            )
            key = None
    inventory.audit.checkpoint_key = key
    return key


def _passphrase(env_name: str | None, file: Path | None) -> bytes | None:
    """An encrypted key's passphrase: from a file (or descriptor), or an environment variable."""
    if env_name is not None and file is not None:
        _fail("--key-passphrase-env and --key-passphrase-file exclude each other")
    if file is not None:
        try:
            text = file.read_bytes()
        except OSError as exc:
            _fail(f"{file}: cannot read the key passphrase: {exc.strerror}")
        line = text.split(b"\n", 1)[0].rstrip(b"\r")
        if not line:
            _fail(f"{file}: the key passphrase file is empty")
        return line
    if env_name is not None:
        value = os.environ.get(env_name)
        if not value:
            _fail(f"--key-passphrase-env: ${env_name} is not set (or empty)")
        return value.encode("utf-8")
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode("utf-8") if value else None


def _load_key(
    cert: Path | None,
    key: Path | None,
    keys_dir: Path,
    *,
    passphrase_env: str | None = None,
    passphrase_file: Path | None = None,
    signer: str | None = None,
) -> SigningKey:
    chain = cert or keys_dir / "chain.pem"
    private = key or keys_dir / "signer.key"
    if signer is not None:
        if key is not None or passphrase_env is not None or passphrase_file is not None:
            _fail("--signer signs without a key file: drop --key and --key-passphrase-*")
        try:
            chain_pem = chain.read_bytes()
        except OSError as exc:
            _fail(f"{chain}: cannot read the signer's certificate chain: {exc.strerror}")
        try:
            return SigningKey.from_signer_spec(signer, chain_pem)
        except ProvenanceError as exc:
            _fail(str(exc) if exc.path is not None else f"{chain}: {exc}")
    passphrase = _passphrase(passphrase_env, passphrase_file)
    if not chain.exists() and cert is None:
        _fail(
            f"{chain}: no signing certificate; run 'provenance keys init {keys_dir}' for "
            "development keys, or pass --cert and --key"
        )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InsecureKeyFileWarning)
            loaded = SigningKey.from_pem_files(chain, private, passphrase=passphrase)
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
            _warn_witness(inventory)
            inventory.close()


def _warn_witness(inventory: Inventory) -> None:
    """Say so when a checkpoint could not be written to the audit witness (it is retried)."""
    if inventory.audit.witness_error is not None:
        _err.print(f"provenance: warning: {_one_line(inventory.audit.witness_error)}", markup=False)


@contextlib.contextmanager
def _json_rows(as_json: bool, ndjson: bool = False) -> Iterator[Callable[[dict[str, Any]], None]]:
    """The one way a row command prints its JSON (docs/cli.md, "JSON output").

    Yields ``emit(row)``. With ``--json`` the rows form one JSON array, written
    element by element as they come (memory stays flat over any number of
    files); with ``--ndjson`` each row is one compact line, flushed, so a
    consumer can read a large batch as it runs. Without either, ``emit`` does
    nothing (the command prints its table).
    """
    if not (as_json or ndjson):
        yield lambda row: None
        return
    count = 0

    def emit(row: dict[str, Any]) -> None:
        nonlocal count
        safe = _json_safe(row)
        if ndjson:
            sys.stdout.write(json.dumps(safe, ensure_ascii=False) + "\n")
        else:
            text = json.dumps(safe, indent=2, ensure_ascii=False).replace("\n", "\n  ")
            sys.stdout.write(("[\n  " if count == 0 else ",\n  ") + text)
        sys.stdout.flush()
        count += 1

    try:
        yield emit
    finally:
        if not ndjson:
            sys.stdout.write("\n]\n" if count else "[]\n")
        sys.stdout.flush()


def _print_rows(rows: Iterable[dict[str, Any]], *, as_json: bool, ndjson: bool) -> None:
    """Print finished rows the way :func:`_json_rows` does."""
    with _json_rows(as_json, ndjson) as emit:
        for row in rows:
            emit(row)


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


def _expand(paths: Iterable[Path]) -> tuple[list[tuple[Path, Path | None]], list[str]]:
    """Files in argument order, each with its path relative to its argument.

    Folders expand to their images, sorted; the relative path keeps files of the
    same name in different subfolders apart in an output folder. A path that
    does not exist comes back with ``None`` in place of its relative path.

    Nothing is skipped silently (red-team issue 19): files that are not images
    by name (a file without an extension is looked at: its bytes decide),
    symlinked folders (not followed) and links to nothing are counted, and a
    folder with no image is named; each is one warning on stderr, also returned
    for ``--json``. Only when no argument gives anything to do is it a usage
    error (exit 2).
    """
    files: list[tuple[Path, Path | None]] = []
    notes: list[str] = []
    skipped: dict[str, list[Path]] = {}
    for path in paths:
        if path.is_dir():
            found: list[Path] = []
            for p in sorted(path.rglob("*")):
                reason = _skip_reason(p)
                if reason is None:
                    found.append(p)
                elif reason:
                    skipped.setdefault(reason, []).append(p)
            if not found:
                notes.append(f"{path}: folder holds no image ({SUPPORTED}); nothing done for it")
            files.extend((p, p.relative_to(path)) for p in found)
        elif path.exists() or path.is_symlink():
            files.append((path, Path(path.name)))
        else:
            files.append((path, None))
    for reason, names in skipped.items():
        shown = ", ".join(str(p) for p in names[:3]) + (", ..." if len(names) > 3 else "")
        notes.append(f"skipped {len(names)} {reason}: {shown}")
    for note in notes:
        _warn(note)
    if not files:
        # An empty batch must not look like a clean one (exit 0, "[]").
        _fail("no image to process in " + ", ".join(str(p) for p in paths))
    return files, notes


def _skip_reason(path: Path) -> str | None:
    """Why a folder walk leaves ``path`` out: None takes it, "" leaves it out unmentioned."""
    if path.is_symlink() and path.is_dir():
        return "symlinked folder(s), not followed"
    if path.is_dir():
        return ""  # walked into
    if path.name.endswith(".json") and path.is_file():
        stem = path.name.removesuffix(".json")
        if path.with_name(stem).is_file() or any(
            path.with_name(stem + suffix).exists() for suffix in IMAGE_SUFFIXES
        ):
            return ""  # a record sidecar
    if not path.is_file():
        return "link(s) to nothing or not regular file(s)"
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return None
    if suffix == "" and _looks_like_image(path):
        return None
    return "file(s) that are not images by name or content"


def _looks_like_image(path: Path) -> bool:
    """Whether a file without an extension starts like a supported image."""
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
        detect_format(head)
    except (OSError, ProvenanceError):
        return False
    return True


def _sign_row(src: Path, result: SignResult) -> dict[str, Any]:
    row = result.to_dict()
    row["source"] = str(src)
    return row


def _print_verdicts(verdicts: Sequence[Verdict]) -> None:
    table = _table("file", "verdict", "asset id", "model", "signer", "codes", title="verification")
    for v in verdicts:
        model = f"{v.record.model} {v.record.model_version}" if v.record else ""
        codes = v.error or ", ".join(v.failure_codes)
        table.add_row(v.path, v.status.value, v.asset_id or "", model, v.signer or "", codes)
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
    from provenance._core.disclosure import disclosure_for, render_html

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
        float | None,
        typer.Option(
            "--timeout",
            min=0.1,
            help="Sets both --header-timeout and --body-timeout (unless given).",
        ),
    ] = None,
    header_timeout: Annotated[
        float | None,
        typer.Option(
            "--header-timeout", min=0.1, help="Seconds to send the request head [default: 10]."
        ),
    ] = None,
    body_timeout: Annotated[
        float | None,
        typer.Option("--body-timeout", min=0.1, help="Seconds to send the body [default: 60]."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes (uvicorn workers).")
    ] = 1,
    verify_threads: Annotated[
        int | None,
        typer.Option(
            "--verify-threads", min=1, help="Verification threads per worker [default: CPUs]."
        ),
    ] = None,
    max_connections: Annotated[
        int,
        typer.Option("--max-connections", min=1, help="Open connections per worker (503 above)."),
    ] = 512,
    backlog: Annotated[
        int, typer.Option("--backlog", min=1, help="Connections queued by the kernel.")
    ] = 2048,
    as_json: JsonOption = False,
) -> None:
    """Run the DAM verification endpoint: POST /verify, GET /healthz (no outbound calls).

    \b
    Examples:
      provenance serve --trust-anchors .provenance/keys/ca.pem --workers 2
      curl --data-binary @upload.jpg 'http://127.0.0.1:8765/verify?filename=upload.jpg'
      curl -F file=@upload.jpg 'http://127.0.0.1:8765/verify?require=trusted'
    """
    from provenance.integrations.dam import ServerConfig, make_server

    policy = _trust_policy(trust_anchors)
    inventory = _existing_inventory(inventory_path)
    inv_file = inventory.path if inventory is not None else None
    if inventory is not None:
        inventory.close()
    extra: dict[str, Any] = {}
    if verify_threads is not None:
        extra["verify_threads"] = verify_threads
    config = ServerConfig(
        trust=policy,
        inventory_path=inv_file,
        max_bytes=max_bytes,
        header_timeout_s=header_timeout or timeout or 10.0,
        body_timeout_s=body_timeout or timeout or 60.0,
        workers=workers,
        max_connections=max_connections,
        backlog=backlog,
        **extra,
    )
    try:
        server = make_server(host, port, config=config, log=True)
    except ImportError as exc:
        _fail(f"serve needs the server extra: pip install 'product-provenance[server]' ({exc})")
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
        typer.Option(
            "--out", "-o", help="Report file(s): .json, .csv, .html or .pdf (repeatable)."
        ),
    ] = None,
    trust_anchors: TrustAnchorsOption = None,
    inventory_path: InventoryOption = None,
    keys_dir: Annotated[
        Path | None,
        typer.Option(
            "--keys",
            help="Sign the report's audit checkpoint with these keys "
            "(default: .provenance/keys when it holds the log's key).",
        ),
    ] = None,
    no_record: Annotated[
        bool, typer.Option("--no-record", help="Do not log findings in the audit log.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Compliance report: scope, inventory, recovery check, incidents, obligations, glossary.

    The PDF is the HTML page printed by headless Chromium (set
    $PROVENANCE_CHROMIUM if it is not on PATH). The GDPR 72-hour clock shows
    only for incidents declared with 'provenance incident open --personal-data'.
    Exit status: 0 no finding, 1 copies lost provenance, were altered or
    copied without it, or the audit log failed verification, 2 unreadable input.

    \b
    Examples:
      provenance report storefront-media/ --out report.pdf --out report.json
      provenance verify --json cdn-copies/ > verdicts.json
      provenance report verdicts.json -o report.csv
    """
    from provenance.report import load_verdict_rows, make_report, verdict_rows_for

    targets = list(out or [])
    for target in targets:
        if target.suffix.lower() not in (".json", ".csv", ".html", ".htm", ".pdf"):
            _fail(f"{target}: a report file ends in .json, .csv, .html or .pdf")
    policy = _trust_policy(trust_anchors)
    now = datetime.now(timezone.utc)
    with _open_inventory(inventory_path, create=False) as inventory:
        key = _checkpoint_key(keys_dir, inventory)
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
                trust=policy,
            )
        except ProvenanceError as exc:
            _fail(str(exc))
    for target in targets:
        kind = target.suffix.lower().lstrip(".")
        try:
            if kind == "pdf":
                from provenance._io.pdf import html_to_pdf

                data = html_to_pdf(report.to_html(), name=str(target))
            else:
                text = (
                    report.to_json()
                    if kind == "json"
                    else report.to_csv()
                    if kind == "csv"
                    else report.to_html()
                )
                data = text.encode("utf-8")
        except ProvenanceError as exc:
            _fail(str(exc))
        try:
            write_atomic(target, data, mode=PRIVATE_FILE_MODE)
            if kind == "csv" and report.checkpoint is not None:
                sidecar = target.with_name(target.name + ".checkpoint.json")
                write_atomic(
                    sidecar,
                    (report.checkpoint.to_json() + "\n").encode("utf-8"),
                    mode=PRIVATE_FILE_MODE,
                )
        except OSError as exc:
            _fail(f"{target}: cannot write the report: {exc.strerror}")
    if as_json or not targets:
        _print_json(report.to_dict())
    else:
        c = report.counts
        _out.print(
            f"wrote {', '.join(map(str, targets))}: {c['ai_originals']} AI-generated originals "
            f"({c['ai_renditions']} renditions); {c['lost_provenance']} lost provenance, "
            f"{c['altered']} altered, {c['copies_of_known']} copies of known assets, "
            f"{c['synthetic_duplicates']} of unknown assets, "
            f"{c['not_seen']} originals not seen in this scan",
            markup=False,
        )
        if report.development_keys_used:
            _err.print(
                "provenance: warning: development keys signed assets in this report",
                markup=False,
            )
        for inc in report.gdpr.get("incidents", ()):
            _out.print(
                f"GDPR Art. 33: incident {inc['seq']} must be notified by "
                f"{inc['deadline']} ({inc['hours_left']} hours left)",
                markup=False,
            )
    if report.scope.audit_verified is False:
        # The log was altered: the report says so, carries no new checkpoint, and
        # the command fails like 'audit verify' does (exit 1).
        problems = "; ".join(report.scope.audit_problems[:3]) or "no detail"
        _err.print(
            f"provenance: error: the audit log failed verification, so the report has no "
            f"checkpoint and nothing was logged: {_one_line(problems)} "
            "(run 'provenance audit verify' for every problem)",
            markup=False,
        )
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_FAILED if report.has_findings else EXIT_OK)


# --- feed-check --------------------------------------------------------------------


@app.command("feed-check")
def feed_check_command(
    feed: Annotated[
        Path,
        typer.Argument(help="Google feed (RSS/Atom XML, TSV/CSV) or Magento product export CSV."),
    ],
    media_root: Annotated[
        Path,
        typer.Option("--media-root", help="Folder the image URLs are served from (pub/media)."),
    ],
    base_url: Annotated[
        str,
        typer.Option(
            "--base-url", help="URL prefix that maps to --media-root, e.g. https://shop/media/."
        ),
    ],
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Also write an HTML page here.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json-out", help="Also write the JSON report here.")
    ] = None,
    trust_anchors: TrustAnchorsOption = None,
    inventory_path: InventoryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check that a shopping feed's AI-generated images keep IPTC DigitalSourceType.

    Google Merchant Center requires AI-generated product images to carry IPTC
    DigitalSourceType (trainedAlgorithmicMedia); a re-encoded storefront copy
    loses it. Each image URL is mapped to the file under --media-root and
    checked; each image that needs action says what to run.
    Exit status: 0 ready, 1 some AI images lost their label or could not be
    checked, 2 unreadable feed or bad options (for CI).

    \b
    Examples:
      provenance feed-check feed.xml --media-root pub/media \\
        --base-url https://shop.example/media/ --html feed-check.html
      provenance feed-check export.csv --media-root pub/media --base-url https://shop.example/media/
    """
    from provenance.feed import check_feed, summary_lines

    policy = _trust_policy(trust_anchors)
    with _closing(_existing_inventory(inventory_path)) as inventory:
        if inventory is None:
            _err.print(
                "provenance: warning: no inventory: an image that lost all its metadata "
                "cannot be recognised as AI-generated (give --inventory or set "
                "PROVENANCE_INVENTORY)",
                markup=False,
            )
        try:
            report = check_feed(
                feed, media_root=media_root, base_url=base_url, trust=policy, inventory=inventory
            )
        except ProvenanceError as exc:
            _fail(str(exc))
    for target, text in ((html_out, report.to_html()), (json_out, report.to_json())):
        if target is not None:
            try:
                write_atomic(target, text.encode("utf-8"))
            except OSError as exc:
                _fail(f"{target}: cannot write: {exc.strerror}")
    if as_json:
        _print_json(report.to_dict())
    else:
        for line in summary_lines(report):
            _out.print(line, markup=False)
        counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in report.counts.items())
        _out.print(
            f"{feed}: {report.products} products, {len(report.images)} images: {counts}; "
            + ("ready" if report.ok else "NOT ready"),
            markup=False,
        )
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


# --- incident --------------------------------------------------------------------

incident_app = typer.Typer(
    help="Declare incidents in the audit log (the report's GDPR clock reads them).",
    no_args_is_help=True,
)
app.add_typer(incident_app, name="incident")


@incident_app.command("open")
def incident_open(
    description: Annotated[
        str, typer.Option("--description", "-d", help="One sentence, without personal data.")
    ],
    aware_at: Annotated[
        str | None,
        typer.Option(
            "--aware-at",
            help="When you became aware of it, RFC 3339 (e.g. 2026-03-02T09:30:00Z); default: now.",
        ),
    ] = None,
    personal_data: Annotated[
        bool,
        typer.Option(
            "--personal-data/--no-personal-data",
            help="Personal data is involved: GDPR Art. 33's 72-hour clock runs from --aware-at.",
        ),
    ] = False,
    asset: Annotated[
        list[str] | None, typer.Option("--asset", help="An asset id concerned (repeatable).")
    ] = None,
    inventory_path: InventoryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record an incident (with its awareness time) in the hash-chained audit log.

    \b
    Examples:
      provenance incident open --personal-data --aware-at 2026-03-02T09:30:00Z \\
        -d "customer photos exposed through the CDN"
      provenance incident open -d "tampered hero image reported by a customer"
    """
    from provenance._core.record import format_time, parse_time
    from provenance.report import GDPR_NOTIFICATION_HOURS, open_incident

    now = datetime.now(timezone.utc)
    try:
        aware = parse_time(aware_at) if aware_at else now
    except ProvenanceError:
        _fail(f"--aware-at {aware_at}: not an RFC 3339 time with a zone, e.g. 2026-03-02T09:30:00Z")
    with _open_inventory(inventory_path, create=False) as inventory:
        try:
            entry = open_incident(
                inventory,
                aware_at=aware,
                description=description,
                personal_data=personal_data,
                asset_ids=tuple(asset or ()),
                now=now,
            )
        except ProvenanceError as exc:
            _fail(str(exc))
    if as_json:
        _print_json(entry.to_dict())
        return
    _out.print(f"incident recorded as audit entry {entry.seq}", markup=False)
    if personal_data:
        deadline = format_time(aware + timedelta(hours=GDPR_NOTIFICATION_HOURS))
        _out.print(f"GDPR Art. 33: notify the supervisory authority by {deadline}", markup=False)


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
      provenance magento import products.csv --out signed/ --disclosure-json
        app/etc/provenance-disclosures.json --append-disclosure
    """
    if out is None and not dry_run:
        _fail("give --out DIR for the new CSV and the signed images (or --dry-run)")
    pii_policy = _pii_policy(pii, None)
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
            append_disclosure=append_disclosure,
            record_column=record_column,
            default_record=default_record,
            default_created_at_from_file=default_record is not None and created_at is None,
            dry_run=dry_run,
            sign_options=SignOptions(pii_policy=pii_policy, disclosure_text=disclosure),
        )
    except ValueError as exc:
        _fail(str(exc))
    signing_key = None if dry_run else _load_key(cert, key, keys_dir)
    opened = None
    if not dry_run and not no_inventory:
        opened = _open_inventory(inventory_path, create=True, checkpoint_key=signing_key)
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
    if disclosure_json is not None and not dry_run:
        try:
            write_atomic(disclosure_json, report.disclosures_json().encode("utf-8"))
        except OSError as exc:
            _fail(f"{disclosure_json}: cannot write: {exc.strerror}")
    if as_json:
        _print_json(report.to_dict())
    else:
        failed = [r for r in report.rows if not r.ok]
        if failed:
            table = _table("line", "sku", "problem", "error", title="rows not imported")
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
            + (f", {report.labels_appended} appended to" if append_disclosure else "")
            + (f"; wrote {report.output_csv}" if report.output_csv else "")
            + (
                f" and {disclosure_json} ({len(report.disclosures)} images)"
                if disclosure_json is not None and not dry_run
                else ""
            ),
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
        _fail("--inventory-only and --no-inventory exclude each other")
    signing_key = None
    if not inventory_only or (cert is not None or (keys_dir / "chain.pem").exists()):
        signing_key = _load_key(cert, key, keys_dir) if not inventory_only else None
    opened = (
        None
        if no_inventory
        else _open_inventory(inventory_path, create=True, checkpoint_key=signing_key)
    )
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
    skipped = [o for o in outcomes if o.action is magento.CacheAction.SKIPPED]
    orphans = [o for o in outcomes if o.action is magento.CacheAction.ORPHAN]
    failed = bool(errors) or (strict and bool(skipped or orphans))
    if as_json or ndjson:
        rows = ({"path": o.rendition, "status": o.action.value, **o.to_dict()} for o in outcomes)
        _print_rows(rows, as_json=as_json, ndjson=ndjson)
    else:
        changed = [
            o
            for o in outcomes
            if o.action in (magento.CacheAction.SIGNED, magento.CacheAction.RECORDED)
        ]
        # Only what changed is listed, so a second run prints one line.
        if changed:
            table = _table("rendition", "action", "asset id", "parent asset id", title="cache")
            for o in changed:
                table.add_row(
                    o.rendition, o.action.value, o.asset_id or "", o.parent_asset_id or ""
                )
            _out.print(table)
        if not outcomes:
            _out.print(f"{media_dir}: no renditions in catalog/product/cache", markup=False)
        else:
            tally = {a: sum(1 for o in outcomes if o.action is a) for a in magento.CacheAction}
            _out.print(
                f"{len(outcomes)} renditions: {tally[magento.CacheAction.SIGNED]} signed, "
                f"{tally[magento.CacheAction.RECORDED]} recorded, "
                f"{tally[magento.CacheAction.ALREADY_SIGNED]} already signed, "
                f"{tally[magento.CacheAction.ALREADY_RECORDED]} already recorded, "
                f"{len(skipped)} skipped (original has no provenance: not AI-generated), "
                + (f"{len(orphans)} orphans (original deleted), " if orphans else "")
                + f"{len(errors)} errors",
                markup=False,
            )
        for o in errors:
            _err.print(f"provenance: error: {o.error}", markup=False)
        if strict and skipped:
            _err.print(
                f"provenance: error: --strict: {len(skipped)} renditions of originals "
                "without provenance, e.g. " + str(skipped[0].original),
                markup=False,
            )
        if strict and orphans:
            _err.print(
                f"provenance: error: --strict: {len(orphans)} renditions whose original "
                "is gone, e.g. " + orphans[0].rendition,
                markup=False,
            )
    raise typer.Exit(EXIT_USAGE if failed else EXIT_OK)


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
