"""What a Magento import is asked to do (:class:`ImportOptions`) and what it reports.

Owns the options of :func:`import_csv` and its results, row by row and image by
image, with their JSON-ready forms (``provenance magento import --json``) and the
per-image disclosure file the storefront template reads. Values only: no I/O.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from provenance._core.record import ProvenanceRecord
from provenance._core.types import SignResult
from provenance.batch import BatchRow
from provenance.integrations.magento._csv import CsvFormat
from provenance.sign import SignOptions

__all__ = [
    "DEFAULT_DISCLOSURE",
    "DEFAULT_IMAGES_DIRS",
    "IMAGE_COLUMNS",
    "MULTI_VALUE_COLUMN",
    "ImageAction",
    "ImageOutcome",
    "ImportOptions",
    "ImportReport",
    "RowProblem",
    "RowReport",
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

DEFAULT_DISCLOSURE = "AI-generated image"
"""The label written where an AI-generated image has none."""

MULTI_VALUE_COLUMN = "additional_images"
"""The one image column that holds several images (its labels pair by position)."""


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
    """One image reference of a row: the file's batch row, and where the CSV names it.

    Like :class:`~provenance.scan.ScanRow`, the outcome is the batch row model
    (:class:`~provenance.batch.BatchRow`, what :func:`~provenance.batch.sign_many`
    yields): its ``index`` is the reference's position among the row's images,
    its ``name`` the file read (the cell's value when it names no readable
    path), its ``result`` the :class:`~provenance._core.types.SignResult` when
    this import signed the file, and a failed image is an error row whose
    :class:`~provenance.batch.ItemError` names the file. A file named by many
    rows and columns is signed once; each reference carries that one outcome.

    Attributes:
        column: The CSV column (the image's role: ``base_image``, ...).
        value: The path as written in the cell.
        outcome: The file's row: status, signing result, error.
        action: What was done; None when the image failed.
        source: The file read (None when the value names no file in the
            images directory).
        output: The file written (None in a dry run or on failure).
        asset_id: The signed asset's id, when it carries provenance.
        synthetic: Whether its record says AI-generated (its label is disclosed).
        problem: Why it failed.
    """

    column: str
    value: str
    outcome: BatchRow[SignResult]
    action: ImageAction | None = None
    source: str | None = None
    output: str | None = None
    asset_id: str | None = None
    synthetic: bool = False
    problem: RowProblem | None = None

    @property
    def error(self) -> str | None:
        """Why it failed: the message, naming the file."""
        return None if self.outcome.error is None else self.outcome.error.message

    @property
    def result(self) -> SignResult | None:
        """What signing did, when this import signed the file (None in a dry run)."""
        return self.outcome.result

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
        {...}}}``: each entry is :meth:`provenance._core.disclosure.Disclosure.to_dict`
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
