r"""Magento 2: sign the images of a product import CSV, and the storefront's resized copies.

Two jobs, both offline:

* :func:`import_csv` reads a Magento 2 product import CSV (``sku``, the image columns
  ``base_image``, ``small_image``, ``thumbnail_image``, ``swatch_image``,
  ``additional_images`` and their label columns), signs every image that has a
  provenance record, fills empty labels of AI-generated images with a disclosure
  text, and writes a new CSV plus an images folder ready for Magento's import.
* :func:`sign_cache` finds the renditions Magento's resize wrote to
  ``catalog/product/cache/<hash>/a/b/file`` (GD2 and ImageMagick drop APP segments
  and PNG text chunks, so they lose the manifest) and signs each with lineage to its
  original ``catalog/product/a/b/file``, or records it in the inventory only.

The CSV rules follow Magento's own import (``Magento\ImportExport\Model\Import``,
``Magento\CatalogImportExport\Model\Import\Product``):

1. The field separator is the ``_import_field_separator`` option (default ``,``);
   here it is given or sniffed from the header line. A UTF-8 BOM is dropped on
   reading (Magento removes it too) and written back when the input had one.
2. Image cells hold one or more paths joined by the multiple value separator
   (``_import_multiple_value_separator``, default ``,``), each trimmed. Labels of
   ``additional_images`` pair with the images by position; with ``fields_enclosure``
   each label is wrapped in double quotes so it may contain the separator.
3. An image path is relative to the import images directory
   (``import_images_file_dir``: ``var/import/images`` in 2.3+, ``pub/media/import``
   before). A leading ``/`` does not make it absolute: Magento's uploader joins
   ``<images dir>/`` and the value, so ``/m/b/shoe.jpg`` (the form Magento's export
   writes) is ``<images dir>/m/b/shoe.jpg``.
4. ``http(s)://`` values are downloaded by Magento. We never fetch: such an image is
   a per-row error ("remote image not fetched").
5. The cell value ``__EMPTY__VALUE__`` (``_import_empty_attribute_value_constant``)
   clears an attribute; it is not an image.

Bad rows never stop the import and never leave a half-written CSV: every row is
checked and its images prepared first, then the CSV of good rows is written
atomically, and the bad rows go, unchanged, to ``<name>.rejected.csv``.

This module does file I/O and composes the verbs; it never prints and never
imports c2pa.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import io
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from provenance import containers
from provenance.atomic import write_atomic
from provenance.disclosure import disclosure_for
from provenance.errors import ImportFileError, OutputError, ProvenanceError, RecordError
from provenance.hashing import hash_ranges, sha256_hex
from provenance.inventory import Inventory
from provenance.keys import SigningKey, TrustPolicy
from provenance.reading import load_record, read_input, sidecar_path
from provenance.record import ParentRef, ProvenanceRecord
from provenance.renditions import _unmarked_result
from provenance.sign import SignOptions, sign, sign_bytes
from provenance.types import Status, Verdict
from provenance.verify import verify_bytes

__all__ = [
    "DEFAULT_DISCLOSURE",
    "DEFAULT_IMAGES_DIRS",
    "EMPTY_VALUE_CONSTANT",
    "IMAGE_COLUMNS",
    "CacheAction",
    "CacheOutcome",
    "CsvFormat",
    "ImageAction",
    "ImageOutcome",
    "ImportOptions",
    "ImportReport",
    "RowProblem",
    "RowReport",
    "import_csv",
    "magento_file_path",
    "sign_cache",
]

IMAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("base_image", "base_image_label"),
    ("small_image", "small_image_label"),
    ("thumbnail_image", "thumbnail_image_label"),
    ("swatch_image", "swatch_image_label"),
    ("additional_images", "additional_image_labels"),
)
"""The image columns of a Magento 2 product import, each with its label column."""

DEFAULT_IMAGES_DIRS: tuple[str, ...] = ("var/import/images", "pub/media/import")
"""Magento's import images directories, relative to its root (2.3+ first)."""

EMPTY_VALUE_CONSTANT = "__EMPTY__VALUE__"
"""Magento's default ``_import_empty_attribute_value_constant``."""

DEFAULT_DISCLOSURE = "AI-generated image"
"""The label written where an AI-generated image has none."""

_MULTI_VALUE_COLUMN = "additional_images"
_SNIFF_SEPARATORS = (",", ";", "\t", "|")
_MAX_CSV_BYTES = 512 * 1024 * 1024
_URL = re.compile(r"\bhttps?://|^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_WINDOWS_ABSOLUTE = re.compile(r"^(?:[a-z]:[\\/]|\\\\)", re.IGNORECASE)
_MD5_DIR = re.compile(r"^[0-9a-f]{32}$")
_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})


# --- options and results -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CsvFormat:
    """How the import CSV is written; mirrors Magento's import options.

    Attributes:
        field_separator: ``_import_field_separator``; None sniffs it from the
            header line (``,``, ``;``, tab or ``|``).
        multiple_value_separator: ``_import_multiple_value_separator``.
        fields_enclosure: Magento's ``fields_enclosure``: multiple labels are each
            wrapped in double quotes (so a label may contain the separator).
        empty_value_constant: ``_import_empty_attribute_value_constant``.
    """

    field_separator: str | None = None
    multiple_value_separator: str = ","
    fields_enclosure: bool = False
    empty_value_constant: str = EMPTY_VALUE_CONSTANT

    def __post_init__(self) -> None:
        if self.field_separator is not None and len(self.field_separator) != 1:
            raise ValueError("the field separator must be one character")
        if not self.multiple_value_separator:
            raise ValueError("the multiple value separator must not be empty")


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """What :func:`import_csv` does; the defaults write nothing it was not asked to.

    Attributes:
        csv_format: Separators and enclosure of the CSV.
        disclosure_text: Written into empty labels of AI-generated images.
        record_column: A CSV column whose cell holds the provenance record of the
            row's images: inline JSON, or a record file relative to the images
            directory. It wins over sidecars and the default record.
        default_record: The record of every image that has no sidecar and no
            record cell; None: such images are copied unsigned.
        default_created_at_from_file: Give the default record the image file's
            modification time as ``created_at`` (the generation time is rarely
            known to an import script; the file time is closer than "now").
        dry_run: Check everything and report; write and record nothing.
        sign_options: Embedding options passed to :func:`provenance.sign`.
        write_rejects: Write the failed rows, unchanged, to ``<name>.rejected.csv``.
        append_disclosure: Also append `` (<disclosure text>)`` to labels of
            AI-generated images that are already filled (opt-in; a label that
            already holds the text is left alone).
    """

    csv_format: CsvFormat = field(default_factory=CsvFormat)
    disclosure_text: str = DEFAULT_DISCLOSURE
    record_column: str | None = None
    default_record: ProvenanceRecord | None = None
    default_created_at_from_file: bool = False
    dry_run: bool = False
    sign_options: SignOptions = field(default_factory=SignOptions)
    write_rejects: bool = True
    append_disclosure: bool = False

    def __post_init__(self) -> None:
        text = self.disclosure_text
        if not text.strip() or "\n" in text or "\r" in text:
            raise ValueError("the disclosure text must be one non-empty line")
        fmt = self.csv_format
        if not fmt.fields_enclosure and fmt.multiple_value_separator in text:
            raise ValueError(
                f"the disclosure text contains the multiple value separator "
                f"{fmt.multiple_value_separator!r}; choose another text or use fields_enclosure"
            )


class RowProblem(enum.Enum):
    """Why a row was not imported."""

    RAGGED_ROW = "ragged_row"
    """The row has more or fewer fields than the header (a separator or quote problem)."""
    MISSING_SKU = "missing_sku"
    """The ``sku`` cell is empty."""
    DUPLICATE_SKU = "duplicate_sku"
    """The same SKU (case-insensitive) and store view appeared on an earlier row."""
    REMOTE_IMAGE = "remote_image"
    """An image is a URL; Magento would download it, we never fetch."""
    PATH_TRAVERSAL = "path_traversal"
    """An image path leaves the images directory (``..`` or a symlink)."""
    ABSOLUTE_PATH = "absolute_path"
    """An image path is absolute (``//host``, ``C:\\``, ``~``, or a file outside)."""
    INVALID_PATH = "invalid_path"
    """An image path Magento would not read as meant (backslashes, NUL, empty)."""
    MISSING_FILE = "missing_file"
    """An image file is not in the images directory."""
    RECORD_ERROR = "record_error"
    """A provenance record (sidecar, record cell) is missing or invalid."""
    UNSUPPORTED_FORMAT = "unsupported_format"
    """An AI-generated image is in a format provenance does not read (BMP, say)."""
    TAMPERED_IMAGE = "tampered_image"
    """An image already carries provenance that does not verify."""
    SIGN_ERROR = "sign_error"
    """Signing or writing an image failed (personal data refused, disk full...)."""


class ImageAction(enum.Enum):
    """What happened to one referenced image (in a dry run: what would happen)."""

    SIGNED = "signed"
    """Signed with its record; the signed copy is in the output images folder."""
    ALREADY_SIGNED = "already_signed"
    """It already carries valid provenance; copied unchanged."""
    COPIED = "copied"
    """No record: not known to be AI-generated; copied unchanged."""


@dataclass(frozen=True, slots=True)
class ImageOutcome:
    """One image reference of a row.

    Attributes:
        column: The CSV column.
        value: The path as written in the cell.
        action: What was done; None when the image failed.
        source: The file read.
        output: The file written (None in a dry run or on failure).
        asset_id: The signed asset's id, when it carries provenance.
        synthetic: Whether its record says AI-generated (its label is disclosed).
        problem: Why it failed.
        error: The message, naming the file.
    """

    column: str
    value: str
    action: ImageAction | None = None
    source: str | None = None
    output: str | None = None
    asset_id: str | None = None
    synthetic: bool = False
    problem: RowProblem | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "column": self.column,
            "value": self.value,
            "action": None if self.action is None else self.action.value,
            "source": self.source,
            "output": self.output,
            "asset_id": self.asset_id,
            "synthetic": self.synthetic,
            "problem": None if self.problem is None else self.problem.value,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class RowReport:
    """One data row of the CSV.

    Attributes:
        line: The line of the input file the row starts on (the header is line 1).
        sku: The SKU cell.
        store_view_code: The ``store_view_code`` cell ("" for the default scope).
        images: Each image reference, in column order.
        labels_filled: How many empty labels got the disclosure text.
        problem: Why the row was not imported; None when it was.
        labels_appended: How many filled labels got the disclosure appended.
        error: The message.
    """

    line: int
    sku: str
    store_view_code: str = ""
    images: tuple[ImageOutcome, ...] = ()
    labels_filled: int = 0
    problem: RowProblem | None = None
    error: str | None = None
    labels_appended: int = 0

    @property
    def ok(self) -> bool:
        """Whether the row is in the output CSV."""
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "line": self.line,
            "sku": self.sku,
            "store_view_code": self.store_view_code,
            "ok": self.ok,
            "problem": None if self.problem is None else self.problem.value,
            "error": self.error,
            "labels_filled": self.labels_filled,
            "labels_appended": self.labels_appended,
            "images": [i.to_dict() for i in self.images],
        }


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What :func:`import_csv` did.

    Attributes:
        source_csv: The input CSV.
        output_csv: The CSV written (None in a dry run).
        output_images_dir: The folder the images went to (or would go to).
        rejects_csv: The failed rows, when any were written.
        dry_run: Whether nothing was written.
        field_separator: The field separator used (given or sniffed).
        multiple_value_separator: The multiple value separator used.
        rows: Every data row, in file order.
        images_signed: Distinct image files signed.
        images_copied: Distinct image files copied unchanged.
        warnings: Things to know that did not fail a row (e.g. added label columns).
        disclosures: Per-image disclosure (what the shipped ``disclosure.phtml``
            reads), keyed by the file path Magento gives the image after import
            (``/k/i/kite.jpg``), for every image with a provenance record.
    """

    source_csv: str
    output_csv: str | None
    output_images_dir: str
    rejects_csv: str | None
    dry_run: bool
    field_separator: str
    multiple_value_separator: str
    rows: tuple[RowReport, ...]
    images_signed: int
    images_copied: int
    warnings: tuple[str, ...] = ()
    disclosures: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    @property
    def rows_imported(self) -> int:
        """Rows in the output CSV."""
        return sum(1 for r in self.rows if r.ok)

    @property
    def rows_failed(self) -> int:
        """Rows left out, each with its problem."""
        return sum(1 for r in self.rows if not r.ok)

    @property
    def labels_filled(self) -> int:
        """Empty labels that got the disclosure text."""
        return sum(r.labels_filled for r in self.rows if r.ok)

    @property
    def labels_appended(self) -> int:
        """Filled labels the disclosure text was appended to."""
        return sum(r.labels_appended for r in self.rows if r.ok)

    def disclosures_json(self) -> str:
        """The per-image disclosure file the Magento template reads, as JSON text.

        ``{"format": "provenance.magento.disclosures", "images": {"/k/i/x.jpg":
        {...}}}``: each entry is :meth:`provenance.disclosure.Disclosure.to_dict`
        plus the CSV's value and the asset id.
        """
        document = {
            "format": "provenance.magento.disclosures",
            "version": 1,
            "images": {k: dict(v) for k, v in sorted(self.disclosures.items())},
        }
        return json.dumps(document, indent=1, ensure_ascii=False) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form used by ``provenance magento import --json``."""
        return {
            "source_csv": self.source_csv,
            "output_csv": self.output_csv,
            "output_images_dir": self.output_images_dir,
            "rejects_csv": self.rejects_csv,
            "dry_run": self.dry_run,
            "field_separator": self.field_separator,
            "multiple_value_separator": self.multiple_value_separator,
            "rows_imported": self.rows_imported,
            "rows_failed": self.rows_failed,
            "images_signed": self.images_signed,
            "images_copied": self.images_copied,
            "labels_filled": self.labels_filled,
            "labels_appended": self.labels_appended,
            "warnings": list(self.warnings),
            "rows": [r.to_dict() for r in self.rows],
        }


# --- the import ------------------------------------------------------------------


class _RowFailure(Exception):  # noqa: N818 - internal control flow, never escapes
    def __init__(self, problem: RowProblem, message: str) -> None:
        self.problem = problem
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class _Table:
    header: list[str]  # names trimmed, for lookup
    raw_header: list[str]  # as written, for output
    rows: list[tuple[int, list[str]]]
    delimiter: str
    bom: bool
    line_terminator: str


@dataclass(frozen=True, slots=True)
class _Prepared:
    """One distinct image file, prepared once however often it is referenced."""

    action: ImageAction | None
    output: str | None = None
    asset_id: str | None = None
    synthetic: bool = False
    problem: RowProblem | None = None
    error: str | None = None
    record: ProvenanceRecord | None = None


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
    fmt = opts.csv_format
    if key is None and not opts.dry_run:
        raise ValueError("a signing key is needed unless dry_run is set")
    moment = now or datetime.now(timezone.utc)
    source = Path(csv_path)
    images_root = Path(images_dir)
    if not images_root.is_dir():
        raise ProvenanceError("images directory not found", path=images_root)
    images_real = images_root.resolve()
    out_folder = Path(out_dir)
    out_images = Path(out_images_dir) if out_images_dir is not None else out_folder / "images"
    # 1. Read.
    table = _read_table(source, fmt.field_separator)
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
    # One entry per image file (and record cell): each file is signed once.
    prepared: dict[tuple[Path, str], _Prepared] = {}
    seen: dict[tuple[str, str], int] = {}
    reports: list[RowReport] = []
    disclosures: dict[str, Mapping[str, Any]] = {}
    good: list[list[str]] = []
    bad: list[list[str]] = []
    width = len(table.header)
    for line, cells in table.rows:
        sku = cells[index["sku"]].strip() if len(cells) > index["sku"] else ""
        store = ""
        if "store_view_code" in index and len(cells) > index["store_view_code"]:
            store = cells[index["store_view_code"]].strip()
        # 2. Row shape and identity.
        if len(cells) != width:
            reports.append(
                RowReport(
                    line,
                    sku,
                    store,
                    problem=RowProblem.RAGGED_ROW,
                    error=f"{source}:{line}: row has {len(cells)} fields, the header has "
                    f"{width} (field separator {table.delimiter!r}; a separator or quote "
                    "problem?)",
                )
            )
            bad.append(cells)
            continue
        if not sku:
            reports.append(
                RowReport(
                    line,
                    sku,
                    store,
                    problem=RowProblem.MISSING_SKU,
                    error=f"{source}:{line}: empty sku",
                )
            )
            bad.append(cells)
            continue
        identity = (sku.lower(), store)
        if identity in seen:
            scope = f"store view {store!r}" if store else "the default scope"
            reports.append(
                RowReport(
                    line,
                    sku,
                    store,
                    problem=RowProblem.DUPLICATE_SKU,
                    error=f"{source}:{line}: sku {sku!r} already on line {seen[identity]} "
                    f"for {scope}",
                )
            )
            bad.append(cells)
            continue
        seen[identity] = line
        # 3-4. Images and labels.
        row = cells + [""] * len(added)
        outcomes: list[ImageOutcome] = []
        filled = appended = 0
        failure: tuple[RowProblem, str] | None = None
        for image_col, label_col in present:
            values = _split_images(row[index[image_col]], fmt)
            col_outcomes: list[ImageOutcome] = []
            for value in values:
                outcome = _image(
                    value,
                    image_col,
                    row=row,
                    index=index,
                    images_root=images_root,
                    images_real=images_real,
                    out_images=out_images,
                    opts=opts,
                    key=key,
                    inventory=inventory,
                    now=moment,
                    prepared=prepared,
                )
                if outcome.problem is not None and failure is None:
                    failure = (outcome.problem, f"{source}:{line}: {outcome.error}")
                col_outcomes.append(outcome)
            outcomes.extend(col_outcomes)
            new_label, count, added_to = _fill_labels(
                row[index[label_col]],
                [o.synthetic for o in col_outcomes],
                multi=image_col == _MULTI_VALUE_COLUMN,
                fmt=fmt,
                text=opts.disclosure_text,
                append=opts.append_disclosure,
            )
            if count or added_to:
                row[index[label_col]] = new_label
                filled += count
                appended += added_to
        if failure is not None:
            reports.append(
                RowReport(
                    line,
                    sku,
                    store,
                    tuple(outcomes),
                    problem=failure[0],
                    error=failure[1],
                )
            )
            bad.append(cells)
            continue
        reports.append(
            RowReport(
                line,
                sku,
                store,
                tuple(outcomes),
                labels_filled=filled,
                labels_appended=appended,
            )
        )
        good.append(row)
        cell = row[index[opts.record_column]].strip() if opts.record_column is not None else ""
        for outcome in outcomes:
            done = prepared.get((Path(outcome.source), cell)) if outcome.source else None
            if done is None or done.record is None:
                continue
            entry = disclosure_for(done.record).to_dict()
            disclosures[magento_file_path(outcome.value)] = {
                **entry,
                "csv_value": outcome.value,
                "asset_id": done.asset_id,
            }
    # 5. Write the CSV once every row is done.
    output_csv: Path | None = None
    rejects: Path | None = None
    if not opts.dry_run:
        output_csv = out_folder / source.name
        if output_csv.resolve() == source.resolve():
            raise OutputError("the output CSV would replace the input CSV", path=output_csv)
        try:
            out_folder.mkdir(parents=True, exist_ok=True)
            write_atomic(output_csv, _render(table, header, good))
            if bad and opts.write_rejects:
                rejects = out_folder / f"{source.stem}.rejected{source.suffix or '.csv'}"
                write_atomic(rejects, _render(table, table.raw_header, bad))
        except OSError as exc:
            raise OutputError(f"cannot write: {exc.strerror}", path=out_folder) from None
    signed = sum(1 for p in prepared.values() if p.action is ImageAction.SIGNED)
    copied = sum(
        1 for p in prepared.values() if p.action in (ImageAction.COPIED, ImageAction.ALREADY_SIGNED)
    )
    return ImportReport(
        source_csv=str(source),
        output_csv=None if output_csv is None else str(output_csv),
        output_images_dir=str(out_images),
        rejects_csv=None if rejects is None else str(rejects),
        dry_run=opts.dry_run,
        field_separator=table.delimiter,
        multiple_value_separator=fmt.multiple_value_separator,
        rows=tuple(reports),
        images_signed=signed,
        images_copied=copied,
        warnings=tuple(warnings),
        disclosures=MappingProxyType(disclosures),
    )


def _read_table(path: Path, separator: str | None) -> _Table:
    data = read_input(path, max_bytes=_MAX_CSV_BYTES)
    if b"\x00" in data[:65536]:
        raise ImportFileError("not a CSV file (binary data)", path=path)
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        text = data[3:].decode("utf-8") if bom else data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"not UTF-8 text (byte {exc.start}); Magento imports UTF-8 CSV files", path=path
        ) from None
    first_line = text.split("\n", 1)[0]
    terminator = "\r\n" if first_line.endswith("\r") else "\n"
    first_line = first_line.rstrip("\r")
    delimiter = separator or _sniff(first_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"')
    rows: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    raw: list[str] = []
    start = 1
    try:
        for cells in reader:
            if header is None:
                raw = cells
                header = [c.strip() for c in cells]
            elif any(c.strip() for c in cells):
                rows.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ImportFileError(
            f"line {reader.line_num}: not a valid CSV: {exc}", path=path
        ) from None
    if header is None or not any(header):
        raise ImportFileError("empty file: no header line", path=path)
    if "sku" not in header:
        hint = ""
        others = [s for s in _SNIFF_SEPARATORS if s != delimiter and s in first_line]
        if len(header) == 1 and others:
            hint = f"; the header looks separated by {others[0]!r}: pass that field separator"
        raise ImportFileError(
            f"no 'sku' column in the header (field separator {delimiter!r}){hint}", path=path
        )
    duplicates = sorted({name for name in header if name and header.count(name) > 1})
    if duplicates:
        raise ImportFileError(f"duplicate column {duplicates[0]!r} in the header", path=path)
    return _Table(header, raw, rows, delimiter, bom, terminator)


def _sniff(header_line: str) -> str:
    """The separator that splits the header into the most columns (``,`` on a tie)."""
    counts = {s: _count_outside_quotes(header_line, s) for s in _SNIFF_SEPARATORS}
    best = max(_SNIFF_SEPARATORS, key=lambda s: (counts[s], s == ","))
    return best if counts[best] else ","


def _count_outside_quotes(line: str, char: str) -> int:
    count, quoted = 0, False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == char and not quoted:
            count += 1
    return count


def _render(table: _Table, header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(
        buffer,
        delimiter=table.delimiter,
        quotechar='"',
        lineterminator=table.line_terminator,
        quoting=csv.QUOTE_MINIMAL,
    )
    writer.writerow(header)
    writer.writerows(rows)
    body = buffer.getvalue().encode("utf-8")
    return b"\xef\xbb\xbf" + body if table.bom else body


def _split_images(cell: str, fmt: CsvFormat) -> list[str]:
    """Image paths of a cell, as Magento reads them: split, trimmed, de-duplicated."""
    text = cell.strip()
    if not text or text == fmt.empty_value_constant:
        return []
    values: list[str] = []
    for part in text.split(fmt.multiple_value_separator):
        value = part.strip()
        if value and value not in values:
            values.append(value)
    return values


def _split_labels(cell: str, fmt: CsvFormat) -> list[str]:
    if not cell.strip():
        return []
    if fmt.fields_enclosure:
        found = re.findall(r'"((?:[^"]|"")*)"', cell)
        if found:
            return [item.replace('""', '"') for item in found]
    return cell.split(fmt.multiple_value_separator)


def _join_labels(labels: Sequence[str], fmt: CsvFormat) -> str:
    if fmt.fields_enclosure:
        quoted = ['"' + label.replace('"', '""') + '"' for label in labels]
        return fmt.multiple_value_separator.join(quoted)
    return fmt.multiple_value_separator.join(labels)


def _fill_labels(
    cell: str,
    synthetic: Sequence[bool],
    *,
    multi: bool,
    fmt: CsvFormat,
    text: str,
    append: bool = False,
) -> tuple[str, int, int]:
    """The label cell with the disclosure in each empty slot of an AI image.

    With ``append``, a filled label of an AI image gets `` (text)`` appended,
    unless it already holds the text. Returns the cell, how many labels were
    filled and how many appended to.
    """
    if not any(synthetic):
        return cell, 0, 0

    def empty(label: str) -> bool:
        return label.strip() in ("", fmt.empty_value_constant)

    def with_text(label: str) -> str | None:
        if not append or text.casefold() in label.casefold():
            return None
        return f"{label.rstrip()} ({text})"

    if not multi:
        # One image, one label: the whole cell (a comma in it is not a separator here).
        if empty(cell):
            return text, 1, 0
        longer = with_text(cell)
        return (longer, 0, 1) if longer is not None else (cell, 0, 0)
    labels = _split_labels(cell, fmt)
    labels += [""] * (len(synthetic) - len(labels))
    filled = appended = 0
    for i, is_ai in enumerate(synthetic):
        if not is_ai:
            continue
        if empty(labels[i]):
            labels[i] = text
            filled += 1
        elif (longer := with_text(labels[i])) is not None:
            labels[i] = longer
            appended += 1
    if filled or appended:
        return _join_labels(labels, fmt), filled, appended
    return cell, 0, 0


def magento_file_path(value: str) -> str:
    """The path Magento gives an imported image under ``catalog/product``.

    Magento keeps the file name (lower-cased, characters outside
    ``[a-z0-9_.-]`` replaced by ``_``) under two folders named after its first
    two characters (a dot becomes ``_``): ``Kite Blue.jpg`` -> ``/k/i/kite_blue.jpg``.
    This is the key the disclosure JSON uses, what ``$image->getFile()`` returns.
    """
    name = re.sub(r"[^a-z0-9_.\-]", "_", PurePosixPath(value.replace("\\", "/")).name.lower())
    folders = "".join("/" + ("_" if c == "." else c) for c in name[:2])
    return f"{folders}/{name}"


def _image(
    value: str,
    column: str,
    *,
    row: Sequence[str],
    index: dict[str, int],
    images_root: Path,
    images_real: Path,
    out_images: Path,
    opts: ImportOptions,
    key: SigningKey | None,
    inventory: Inventory | None,
    now: datetime,
    prepared: dict[tuple[Path, str], _Prepared],
) -> ImageOutcome:
    try:
        real, relative = _resolve(value, images_root, images_real, opts.csv_format)
    except _RowFailure as failure:
        return ImageOutcome(column, value, problem=failure.problem, error=failure.message)
    cell = row[index[opts.record_column]].strip() if opts.record_column is not None else ""
    done = prepared.get((real, cell))
    if done is None:
        done = _prepare(
            real,
            out_images / relative,
            record_cell=cell,
            images_root=images_root,
            images_real=images_real,
            opts=opts,
            key=key,
            inventory=inventory,
            now=now,
        )
        prepared[(real, cell)] = done
    return ImageOutcome(
        column,
        value,
        action=done.action,
        source=str(real),
        output=done.output,
        asset_id=done.asset_id,
        synthetic=done.synthetic,
        problem=done.problem,
        error=done.error,
    )


def _resolve(value: str, root: Path, root_real: Path, fmt: CsvFormat) -> tuple[Path, Path]:
    """The real file a cell value names, and its path relative to the images directory.

    Raises:
        _RowFailure: A URL, an escape, an absolute path, or a missing file.
    """
    if _URL.search(value):
        raise _RowFailure(
            RowProblem.REMOTE_IMAGE,
            f"{value}: remote image not fetched (signing is offline); download it into the "
            "images directory and name it by its relative path",
        )
    if "\x00" in value:
        raise _RowFailure(RowProblem.INVALID_PATH, f"{value!r}: NUL character in image path")
    if _WINDOWS_ABSOLUTE.match(value) or value.startswith(("~", "//")):
        raise _RowFailure(
            RowProblem.ABSOLUTE_PATH,
            f"{value}: absolute path refused; name images relative to the images directory",
        )
    if "\\" in value:
        raise _RowFailure(
            RowProblem.INVALID_PATH, f"{value}: backslash in image path; Magento paths use '/'"
        )
    # Magento joins "<images dir>/" and the value: one leading "/" stays inside.
    parts = [p for p in value.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _RowFailure(
            RowProblem.PATH_TRAVERSAL, f"{value}: path escapes the images directory ('..')"
        )
    if not parts:
        raise _RowFailure(RowProblem.INVALID_PATH, f"{value!r}: not a file path")
    candidate = root.joinpath(*parts)
    real = candidate.resolve()
    if not real.is_relative_to(root_real):
        raise _RowFailure(
            RowProblem.PATH_TRAVERSAL,
            f"{value}: resolves outside the images directory (symlink to {real})",
        )
    if not real.is_file():
        if value.startswith("/") and Path(value).is_file():
            raise _RowFailure(
                RowProblem.ABSOLUTE_PATH,
                f"{value}: looks like an absolute path; Magento reads it relative to the "
                f"images directory, where {candidate} does not exist",
            )
        hint = ""
        other = [s for s in (",", ";", "|") if s != fmt.multiple_value_separator and s in value]
        if other:
            hint = f" (is the multiple value separator {other[0]!r}?)"
        raise _RowFailure(RowProblem.MISSING_FILE, f"{candidate}: image file not found{hint}")
    return real, Path(*parts)


def _prepare(
    real: Path,
    target: Path,
    *,
    record_cell: str,
    images_root: Path,
    images_real: Path,
    opts: ImportOptions,
    key: SigningKey | None,
    inventory: Inventory | None,
    now: datetime,
) -> _Prepared:
    """Sign or copy one distinct image file (or, in a dry run, check that it could be)."""
    try:
        data = read_input(real)
    except ProvenanceError as exc:
        return _Prepared(None, problem=RowProblem.MISSING_FILE, error=str(exc))
    try:
        record = _find_record(real, record_cell, images_root, images_real, opts)
    except ProvenanceError as exc:
        return _Prepared(None, problem=RowProblem.RECORD_ERROR, error=str(exc))
    except _RowFailure as failure:
        return _Prepared(None, problem=RowProblem.RECORD_ERROR, error=failure.message)
    # Already signed upstream? Then it is copied as it is: signing again would nest.
    existing = _existing_provenance(data, real)
    if existing is not None and existing.status.is_failure:
        return _Prepared(
            None,
            problem=RowProblem.TAMPERED_IMAGE,
            error=f"{real}: carries provenance that does not verify ({existing.status.value})",
        )
    output = None if opts.dry_run else str(target)
    if existing is not None:
        copied = _copy(data, target, opts.dry_run)
        if copied is not None:
            return copied
        return _Prepared(
            ImageAction.ALREADY_SIGNED,
            output=output,
            asset_id=existing.asset_id,
            synthetic=bool(existing.is_synthetic),
            record=existing.record,
        )
    if record is None:
        copied = _copy(data, target, opts.dry_run)
        return copied or _Prepared(ImageAction.COPIED, output=output)
    try:
        containers.detect_format(data)
    except ProvenanceError as exc:
        return _Prepared(
            None, problem=RowProblem.UNSUPPORTED_FORMAT, error=str(exc.with_path(real))
        )
    if opts.dry_run:
        return _Prepared(ImageAction.SIGNED, synthetic=record.is_synthetic, record=record)
    assert key is not None  # noqa: S101 - import_csv refuses a missing key unless dry_run
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        result = sign(
            real,
            target,
            record=record,
            key=key,
            options=opts.sign_options,
            inventory=inventory,
            now=now,
        )
    except OSError as exc:
        return _Prepared(None, problem=RowProblem.SIGN_ERROR, error=f"{target}: {exc.strerror}")
    except ProvenanceError as exc:
        return _Prepared(None, problem=RowProblem.SIGN_ERROR, error=str(exc))
    return _Prepared(
        ImageAction.SIGNED,
        output=output,
        asset_id=result.asset_id,
        synthetic=record.is_synthetic,
        record=record,
    )


def _copy(data: bytes, target: Path, dry_run: bool) -> _Prepared | None:
    """Copy unchanged bytes to the output folder; a failure as a prepared error."""
    if dry_run:
        return None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data)
    except OSError as exc:
        return _Prepared(None, problem=RowProblem.SIGN_ERROR, error=f"{target}: {exc.strerror}")
    return None


def _existing_provenance(data: bytes, path: Path) -> Verdict | None:
    """The verdict of an image that carries provenance of its own, else None."""
    try:
        info = containers.inspect(data)
    except ProvenanceError:
        return None
    if info.xmp is None and not info.has_c2pa:
        return None
    try:
        verdict = verify_bytes(data, name=str(path), trust=TrustPolicy.no_anchors())
    except ProvenanceError:
        return None
    return None if verdict.status is Status.NO_PROVENANCE else verdict


def _find_record(
    image: Path, cell: str, images_root: Path, images_real: Path, opts: ImportOptions
) -> ProvenanceRecord | None:
    """The record column, then the sidecar, then the default record; None without one.

    Raises:
        ProvenanceError: A record that exists but cannot be read or is invalid.
        _RowFailure: A record path in the column escapes the images directory.
    """
    text = cell.strip()
    if text:
        if text.startswith("{"):
            try:
                return ProvenanceRecord.from_json(text)
            except RecordError as exc:
                raise RecordError(f"record column: {exc.message}", path=image) from None
        record_file, _ = _resolve(text, images_root, images_real, opts.csv_format)
        return load_record(record_file)
    sidecar = sidecar_path(image)
    if sidecar is not None:
        return load_record(sidecar)
    record = opts.default_record
    if record is not None and opts.default_created_at_from_file:
        mtime = datetime.fromtimestamp(image.stat().st_mtime, tz=timezone.utc)
        record = record.replace(created_at=mtime.replace(microsecond=0))
    return record


# --- the storefront cache ------------------------------------------------------------


class CacheAction(enum.Enum):
    """What :func:`sign_cache` did with one rendition."""

    SIGNED = "signed"
    """Signed in place with lineage to its original."""
    RECORDED = "recorded"
    """Recorded in the inventory only (essence hash and parent link)."""
    ALREADY_SIGNED = "already_signed"
    """It already carries valid provenance; left alone."""
    ALREADY_RECORDED = "already_recorded"
    """Its essence is already in the inventory (``inventory_only``); left alone."""
    SKIPPED = "skipped"
    """Its original carries no provenance (most product photos are not AI-made);
    left alone, counted, not an error."""
    ORPHAN = "orphan"
    """Its original is gone (a deleted product image; Magento keeps the cache until
    it is flushed); left alone, counted, not an error."""
    ERROR = "error"
    """Nothing done; see the error."""


@dataclass(frozen=True, slots=True)
class CacheOutcome:
    """One rendition in Magento's image cache.

    Attributes:
        rendition: The cached file.
        original: Its original under ``catalog/product``, when found.
        action: What was done.
        asset_id: The rendition's asset id, when known.
        parent_asset_id: The original's asset id, when known.
        error: For :attr:`CacheAction.ERROR`, the message naming the file.
    """

    rendition: str
    original: str | None
    action: CacheAction
    asset_id: str | None = None
    parent_asset_id: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form used by ``provenance magento sign-cache --json``."""
        return {
            "rendition": self.rendition,
            "original": self.original,
            "action": self.action.value,
            "asset_id": self.asset_id,
            "parent_asset_id": self.parent_asset_id,
            "error": self.error,
        }


_VALID = (Status.TRUSTED, Status.VALID_UNTRUSTED)
_ORIGINALS_MEMO = 64


def sign_cache(
    media_dir: str | os.PathLike[str],
    *,
    key: SigningKey | None,
    inventory: Inventory | None = None,
    inventory_only: bool = False,
    options: SignOptions | None = None,
    now: datetime | None = None,
) -> list[CacheOutcome]:
    """Give Magento's resized product images their provenance back.

    For each file under ``catalog/product/cache/<hash>/`` (older layouts
    ``cache/<store>/<type>/<size>/<hash>/`` too), the original is the file at the
    same path after the hash folder under ``catalog/product/``. Steps per rendition:

    1. Skip it if it already carries valid provenance, or, with
       ``inventory_only``, if its essence is already in the inventory.
    2. Verify its original (with the inventory, so a known original whose
       metadata was stripped still counts); an original without provenance (a
       photo, not AI-generated) is :attr:`CacheAction.SKIPPED`, not an error.
    3. Sign the rendition with the original's record and a parent link to it,
       replacing the file atomically with the same permission bits; or, with
       ``inventory_only``, record its essence hash and parent link only.

    Args:
        media_dir: Magento's ``pub/media`` (or its ``catalog/product`` folder).
        key: The signing key; may be None with ``inventory_only``.
        inventory: Record each rendition here (required with ``inventory_only``).
        inventory_only: Do not touch the files; record them in the inventory.
        options: Embedding options for the signed renditions.
        now: The signing time (default: now, UTC).

    Returns:
        One outcome per rendition, sorted by path.

    Raises:
        ProvenanceError: No ``catalog/product`` folder under ``media_dir``.
        ValueError: No key without ``inventory_only``, or ``inventory_only``
            without an inventory.
    """
    if inventory_only and inventory is None:
        raise ValueError("inventory_only needs an inventory")
    if not inventory_only and key is None:
        raise ValueError("a signing key is needed unless inventory_only is set")
    moment = now or datetime.now(timezone.utc)
    product = _product_root(Path(media_dir))
    cache = product / "cache"
    outcomes: list[CacheOutcome] = []
    originals: dict[Path, tuple[bytes, Verdict] | ProvenanceError] = {}
    for rendition in _cache_files(cache):
        original = _original_of(rendition, cache, product)
        if original is None:
            outcomes.append(CacheOutcome(str(rendition), None, CacheAction.ORPHAN))
            continue
        if original not in originals:
            # Renditions come sorted by path, not by original; a bounded memo of
            # originals (bytes and verdict) avoids reading one 18 times.
            if len(originals) >= _ORIGINALS_MEMO:
                originals.clear()
            originals[original] = _original_verdict(original, inventory)
        outcomes.append(
            _one_rendition(
                rendition,
                original,
                originals[original],
                key=key,
                inventory=inventory,
                inventory_only=inventory_only,
                options=options,
                now=moment,
            )
        )
    return outcomes


def _product_root(media: Path) -> Path:
    if (media / "catalog" / "product").is_dir():
        return media / "catalog" / "product"
    if media.name == "product" and media.parent.name == "catalog" and media.is_dir():
        return media
    raise ProvenanceError(
        "no catalog/product folder: give Magento's pub/media directory", path=media
    )


def _cache_files(cache: Path) -> Iterator[Path]:
    if not cache.is_dir():
        return
    found: list[Path] = []
    for folder, dirs, files in os.walk(cache, followlinks=False):
        dirs.sort()
        for name in files:
            path = Path(folder) / name
            if path.suffix.lower() in _IMAGE_SUFFIXES and not name.startswith("."):
                found.append(path)
    yield from sorted(found)


def _original_of(rendition: Path, cache: Path, product: Path) -> Path | None:
    parts = rendition.relative_to(cache).parts
    # The rendition's path after the (last) 32-hex hash folder is the original's.
    hashes = [i for i, part in enumerate(parts[:-1]) if _MD5_DIR.match(part)]
    rest = parts[hashes[-1] + 1 :] if hashes else parts[1:]
    if not rest:
        return None
    original = product.joinpath(*rest)
    return original if original.is_file() and not original.is_symlink() else None


def _original_verdict(
    original: Path, inventory: Inventory | None
) -> tuple[bytes, Verdict] | ProvenanceError:
    try:
        data = read_input(original)
        verdict = verify_bytes(
            data, name=str(original), trust=TrustPolicy.no_anchors(), inventory=inventory
        )
    except ProvenanceError as exc:
        return exc.with_path(original)
    return data, verdict


def _one_rendition(
    rendition: Path,
    original: Path,
    parent: tuple[bytes, Verdict] | ProvenanceError,
    *,
    key: SigningKey | None,
    inventory: Inventory | None,
    inventory_only: bool,
    options: SignOptions | None,
    now: datetime,
) -> CacheOutcome:
    def error(message: str) -> CacheOutcome:
        return CacheOutcome(str(rendition), str(original), CacheAction.ERROR, error=message)

    if rendition.is_symlink():
        return error(f"{rendition}: a symlink; left alone")
    # 1. Already done?
    try:
        data = read_input(rendition)
        info = containers.inspect(data)
    except ProvenanceError as exc:
        return error(str(exc.with_path(rendition)))
    essence = hash_ranges(data, info.essence_ranges)
    existing = _existing_provenance(data, rendition)
    if existing is not None:
        if existing.status in _VALID:
            parent_id = existing.lineage[1].asset_id if len(existing.lineage) > 1 else None
            return CacheOutcome(
                str(rendition),
                str(original),
                CacheAction.ALREADY_SIGNED,
                asset_id=existing.asset_id,
                parent_asset_id=parent_id,
            )
        return error(
            f"{rendition}: carries provenance that does not verify "
            f"({existing.status.value}); left alone"
        )
    if inventory_only and inventory is not None:
        known = inventory.find_by_essence(essence)
        if known is not None:
            return CacheOutcome(
                str(rendition),
                str(original),
                CacheAction.ALREADY_RECORDED,
                asset_id=known.asset_id,
                parent_asset_id=known.parent_asset_id,
            )
    # 2. The original's provenance.
    if isinstance(parent, ProvenanceError):
        return error(str(parent))
    parent_data, verdict = parent
    if verdict.status.is_failure:
        return error(f"{original}: original's provenance does not verify ({verdict.status.value})")
    if verdict.record is None or verdict.status not in (*_VALID, Status.KNOWN_STRIPPED):
        # A real catalogue is mostly photographs: their renditions need nothing.
        return CacheOutcome(str(rendition), str(original), CacheAction.SKIPPED)
    record = verdict.record.replace(parents=())
    # 3. Sign in place, or record only.
    if inventory_only:
        assert inventory is not None  # noqa: S101 - checked by sign_cache
        parent_ref = ParentRef(
            sha256_hex=sha256_hex(parent_data),
            essence_sha256_hex=verdict.essence_sha256_hex,
            asset_id=verdict.asset_id,
        )
        result = _unmarked_result(
            data, essence, record.replace(parents=(parent_ref,)), path=str(rendition)
        )
        signer = verdict.signer or (key.subject if key is not None else "unsigned rendition")
        try:
            entry = inventory.record_signing(result, signer=signer, now=now)
        except ProvenanceError as exc:
            return error(str(exc))
        return CacheOutcome(
            str(rendition),
            str(original),
            CacheAction.RECORDED,
            asset_id=entry.asset_id,
            parent_asset_id=entry.parent_asset_id or verdict.asset_id,
        )
    assert key is not None  # noqa: S101 - checked by sign_cache
    try:
        signed, result = sign_bytes(
            data,
            record=record,
            key=key,
            name=rendition.name,
            parent=parent_data,
            parent_name=original.name,
            options=options,
            now=now,
        )
        mode = stat.S_IMODE(rendition.stat().st_mode)
        write_atomic(rendition, signed, mode=mode)
    except ProvenanceError as exc:
        return error(str(exc.with_path(rendition)))
    except OSError as exc:
        return error(f"{rendition}: cannot write: {exc.strerror}")
    result = dataclasses.replace(result, path=str(rendition))
    if inventory is not None:
        try:
            inventory.record_signing(result, signer=key.subject, now=now)
        except ProvenanceError as exc:
            return error(f"{rendition}: signed, but not recorded: {exc}")
    return CacheOutcome(
        str(rendition),
        str(original),
        CacheAction.SIGNED,
        asset_id=result.asset_id,
        parent_asset_id=verdict.asset_id,
    )
