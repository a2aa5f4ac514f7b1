"""The ``scan`` verb: find our images, and those that lost their provenance, in a pile of files.

A shop points it at folders (a media export, a backup, a CDN mirror) and at
product export CSVs that list image paths or file names. Each image gets one
row (:class:`ScanRow`):

* ``signed``: it carries provenance; the row holds the full verdict (trusted,
  valid_untrusted, tampered, invalid_signature, invalid_manifest,
  invalid_identity, unsupported or remote_manifest);
* ``known_stripped``: its metadata was removed or changed, but its image data
  is a signed essence (the manifest's statement, or an inventory asset's);
* ``synthetic_duplicate``: no provenance, but a confirmed perceptual match of an
  inventory asset (resized, re-encoded, cropped ...);
* ``unknown``: nothing known about it;
* ``error``: it could not be checked (unreadable, corrupt, listed in a CSV but
  missing). One bad file never stops the scan.

Reports: :meth:`ScanReport.to_json`, :meth:`ScanReport.to_csv` and
:meth:`ScanReport.to_html` (one self-contained page, thumbnails as small
``data:`` URIs, every text escaped), written atomically by :func:`write_reports`.
"""

from __future__ import annotations

import csv
import enum
import html
import io
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from PIL import Image

from provenance.atomic import PRIVATE_FILE_MODE, write_atomic
from provenance.cells import csv_cell
from provenance.containers import IMAGE_SUFFIXES as _IMAGE_SUFFIXES
from provenance.errors import OutputError, ProvenanceError
from provenance.fingerprint import open_image
from provenance.html_page import page_head
from provenance.image_files import image_files
from provenance.inventory import Inventory
from provenance.keys import TrustPolicy
from provenance.reading import read_input
from provenance.record import format_time
from provenance.thumbnails import thumbnail_data_uri
from provenance.types import Status, Verdict
from provenance.verify import verify

__all__ = [
    "IMAGE_SUFFIXES",
    "ScanKind",
    "ScanReport",
    "ScanRow",
    "images_in_csv",
    "scan",
    "write_reports",
]

IMAGE_SUFFIXES = _IMAGE_SUFFIXES
"""File name endings scanned in folders and recognised in CSV cells."""

# Side of the HTML thumbnails, in pixels, and their JPEG quality: ~2-4 KB each.
_THUMB_SIDE = 96
_THUMB_QUALITY = 70
# A CSV larger than this is refused (a product export of 100k rows is ~50 MB).
_MAX_CSV_BYTES = 256 * 1024 * 1024
# Cells holding several images separate them with these (Magento additional_images: ",").
_CELL_SEPARATORS = (",", "|", ";")


class ScanKind(enum.Enum):
    """What a scan found out about one file."""

    SIGNED = "signed"
    """The file carries provenance; see the verdict's status."""
    KNOWN_STRIPPED = "known_stripped"
    """No provenance; its essence hash is an inventory asset."""
    SYNTHETIC_DUPLICATE = "synthetic_duplicate"
    """No provenance; a confirmed perceptual match of an inventory asset."""
    UNKNOWN = "unknown"
    """No provenance and no match."""
    ERROR = "error"
    """The file could not be checked."""

    @classmethod
    def of(cls, status: Status) -> ScanKind:
        """The kind a verdict status belongs to."""
        if status is Status.KNOWN_STRIPPED:
            return cls.KNOWN_STRIPPED
        if status is Status.SYNTHETIC_DUPLICATE:
            return cls.SYNTHETIC_DUPLICATE
        if status is Status.NO_PROVENANCE:
            return cls.UNKNOWN
        if status is Status.ERROR:
            return cls.ERROR
        return cls.SIGNED


@dataclass(frozen=True, slots=True)
class ScanRow:
    """One scanned file.

    Attributes:
        path: The file.
        kind: What was found.
        verdict: The verdict (None for errors).
        error: For :attr:`ScanKind.ERROR`, what went wrong (begins with the path).
        source: Where the file was listed: a folder given, or ``<csv>:<line>``.
        sku: For a file listed in a product export CSV, the row's SKU.
        product_name: And the row's product name.
    """

    path: str
    kind: ScanKind
    verdict: Verdict | None = None
    error: str | None = None
    source: str | None = None
    sku: str | None = None
    product_name: str | None = None

    @property
    def status(self) -> str:
        """The verdict status, or ``error``."""
        return self.verdict.status.value if self.verdict is not None else Status.ERROR.value

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (the verdict in full)."""
        return {
            "path": self.path,
            "kind": self.kind.value,
            "status": self.status,
            "source": self.source,
            "sku": self.sku,
            "product_name": self.product_name,
            "error": self.error,
            "verdict": None if self.verdict is None else self.verdict.to_dict(),
        }

    def summary(self) -> dict[str, str]:
        """The flat form used by the CSV and HTML reports."""
        v = self.verdict
        record = v.record if v is not None else None
        return {
            "path": self.path,
            "kind": self.kind.value,
            "status": self.status,
            "asset_id": (v.asset_id if v is not None else None) or "",
            "model": f"{record.model} {record.model_version}" if record is not None else "",
            "digital_source_type": record.digital_source_type.value if record else "",
            "distance": ""
            if v is None or v.perceptual_distance is None
            else str(v.perceptual_distance),
            "signer": (v.signer if v is not None else None) or "",
            "codes": ", ".join(v.failure_codes) if v is not None else "",
            "source": self.source or "",
            "error": self.error or "",
            "sku": self.sku or "",
            "product_name": self.product_name or "",
        }


_SUMMARY_COLUMNS = (
    "path",
    "kind",
    "status",
    "asset_id",
    "model",
    "digital_source_type",
    "distance",
    "signer",
    "codes",
    "source",
    "error",
    "sku",
    "product_name",
)


@dataclass(frozen=True, slots=True)
class ScanReport:
    """Every row of one scan, in the order the files were found.

    Attributes:
        rows: One per distinct file.
        scanned_at: When the scan ran (RFC 3339 UTC).
        roots: The paths given.
    """

    rows: tuple[ScanRow, ...]
    scanned_at: str
    roots: tuple[str, ...] = field(default=())

    @property
    def counts(self) -> dict[str, int]:
        """Rows per kind (every kind present, zeros included)."""
        seen = Counter(row.kind for row in self.rows)
        return {kind.value: seen.get(kind, 0) for kind in ScanKind}

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "format": "provenance.scan",
            "version": 1,
            "scanned_at": self.scanned_at,
            "roots": list(self.roots),
            "counts": self.counts,
            "rows": [row.to_dict() for row in self.rows],
        }

    def to_json(self) -> bytes:
        """The report as UTF-8 JSON."""
        return (json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n").encode("utf-8")

    def to_csv(self) -> bytes:
        """One line per file; cells a spreadsheet would run as formulas are defused."""
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(_SUMMARY_COLUMNS)
        for row in self.rows:
            flat = row.summary()
            writer.writerow([csv_cell(flat[c]) for c in _SUMMARY_COLUMNS])
        return buffer.getvalue().encode("utf-8")

    def to_html(self, *, thumbnails: bool = True) -> bytes:
        """A self-contained page: counts, then a table with a thumbnail per file.

        Args:
            thumbnails: Embed a small JPEG of each readable image as a
                ``data:`` URI (decoded in draft mode; about 3 KB each).
        """
        esc = html.escape
        counts = " · ".join(f"{esc(k)}: {n}" for k, n in self.counts.items())
        css = [
            "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}",
            "table{border-collapse:collapse;width:100%}",
            "th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;",
            "vertical-align:top}",
            "td.t{width:100px}img{max-width:96px;max-height:96px}",
            ".k{font-weight:600;white-space:nowrap}.sku code{white-space:nowrap}",
            # Colour follows the verdict, not the kind: only a trusted file is green;
            # a tampered one is red with a mark, whatever new statuses appear.
            ".s-trusted{color:#1a6b1a}.s-valid_untrusted{color:#0b4a8a}",
            ".s-tampered,.s-invalid_signature,.s-invalid_manifest,.s-invalid_identity,",
            ".s-error{color:#b00020}.s-unsupported,.s-remote_manifest{color:#555}",
            ".s-known_stripped,.s-synthetic_duplicate{color:#a35200}.s-no_provenance{color:#555}",
            "code{font-size:12px;overflow-wrap:anywhere}",
        ]
        lines = [
            page_head(title=f"provenance scan {self.scanned_at}", css="\n".join(css)),
            "<h1>provenance scan</h1>",
            f"<p>{esc(self.scanned_at)} · {len(self.rows)} files · {counts}</p>",
            f"<p>roots: {esc(', '.join(self.roots))}</p>",
        ]
        products = any(row.sku or row.product_name for row in self.rows)
        lines.append(
            "<table><thead><tr><th></th><th>file</th>"
            + ("<th>SKU</th><th>product</th>" if products else "")
            + "<th>result</th><th>asset</th><th>model</th><th>details</th></tr></thead><tbody>"
        )
        for row in self.rows:
            flat = row.summary()
            thumb = (
                _thumbnail_uri(Path(row.path)) if thumbnails and row.verdict is not None else None
            )
            image = f'<img alt="" src="{esc(thumb)}">' if thumb else ""
            result = flat["kind"]
            if row.kind is ScanKind.SIGNED:
                result += f" ({flat['status']})"
            if row.verdict is not None and row.verdict.status.is_failure:
                result = "\u2717 " + result  # a mark, so colour is never the only cue
            details = flat["error"] or flat["codes"]
            if flat["distance"]:
                details = f"distance {flat['distance']} bits; {details}"
            lines.append(
                f'<tr><td class="t">{image}</td><td><code>{esc(flat["path"])}</code></td>'
                + (
                    f'<td class="sku"><code>{esc(flat["sku"])}</code></td>'
                    f"<td>{esc(flat['product_name'])}</td>"
                    if products
                    else ""
                )
                + f'<td class="k s-{esc(flat["status"])}">{esc(result)}</td>'
                f"<td><code>{esc(flat['asset_id'])}</code></td><td>{esc(flat['model'])}</td>"
                f"<td><code>{esc(details)}</code></td></tr>"
            )
        lines += ["</tbody></table></body></html>", ""]
        return "\n".join(lines).encode("utf-8")


def scan(
    paths: Sequence[str | os.PathLike[str]],
    *,
    trust: TrustPolicy | None = None,
    inventory: Inventory | None = None,
    root: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
    on_row: Callable[[ScanRow], None] | None = None,
) -> ScanReport:
    """Verify every image under ``paths`` and say what each one is.

    Args:
        paths: Image files, folders (walked recursively, images by suffix) and
            ``.csv`` product exports (every cell naming an image file).
        trust: Trust anchors for the signed files.
        inventory: Where known assets are looked up (stripped and perceptual
            copies); without it, files without provenance are ``unknown``.
        root: Where file names in CSVs are resolved first (then next to the CSV).
        now: The time certificates are checked at, and the report's time.
        on_row: Called with each row as it is made (progress).

    Returns:
        The report, one row per distinct file.
    """
    moment = now or datetime.now(timezone.utc)
    base = Path(root) if root is not None else None
    rows: list[ScanRow] = []
    seen: set[str] = set()
    for file, source, problem, sku, title in _targets(paths, base):
        key = os.path.normcase(str(file.absolute()))
        if key in seen:
            continue
        seen.add(key)
        if problem is not None:
            row = ScanRow(
                str(file), ScanKind.ERROR, error=problem, source=source, sku=sku, product_name=title
            )
        else:
            try:
                verdict = verify(file, trust=trust, inventory=inventory, now=moment)
                row = ScanRow(
                    str(file),
                    ScanKind.of(verdict.status),
                    verdict,
                    source=source,
                    sku=sku,
                    product_name=title,
                )
            except ProvenanceError as exc:
                row = ScanRow(
                    str(file),
                    ScanKind.ERROR,
                    error=str(exc),
                    source=source,
                    sku=sku,
                    product_name=title,
                )
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return ScanReport(
        rows=tuple(rows),
        scanned_at=format_time(moment),
        roots=tuple(os.fspath(p) for p in paths),
    )


def write_reports(
    report: ScanReport,
    *,
    json_path: str | os.PathLike[str] | None = None,
    csv_path: str | os.PathLike[str] | None = None,
    html_path: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Write the requested reports, each atomically.

    Returns:
        The files written.

    Raises:
        OutputError: A report cannot be written (those before it stay written).
    """
    written = []
    for target, render in (
        (json_path, report.to_json),
        (csv_path, report.to_csv),
        (html_path, report.to_html),
    ):
        if target is None:
            continue
        path = Path(target)
        try:
            # Reports name files and may quote records: 0600, like the inventory.
            written.append(write_atomic(path, render(), mode=PRIVATE_FILE_MODE))
        except OSError as exc:
            raise OutputError(f"cannot write the report: {exc.strerror}", path=path) from None
    return written


def images_in_csv(
    path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None
) -> list[tuple[Path, int, str | None]]:
    """The image files a product export CSV lists, in order, without duplicates.

    Every cell (and each part of a cell that lists several, separated by ``,``
    ``|`` or ``;``) whose path ends in an image suffix counts, whatever the
    column is called (Magento ``base_image``/``additional_images``, Shopify
    ``Image Src``, WooCommerce ``Images``...). A URL keeps only its path. Each
    name is resolved under ``root`` first (Magento's are relative to
    ``pub/media/catalog/product``), then next to the CSV, then by its bare
    file name in those two folders.

    Returns:
        ``(file, line number, problem)``: problem is None when the file exists,
        else why it could not be found.

    Raises:
        ProvenanceError: The CSV cannot be read or decoded.
    """
    return [(file, line, problem) for file, line, problem, _, _ in _csv_images(path, root=root)]


# Product columns of common exports: Magento (sku, name), Google (id, title),
# Shopify (Handle, Title), WooCommerce (SKU, Name).
_SKU_COLUMNS = ("sku", "id", "handle")
_NAME_COLUMNS = ("name", "title", "product_name")


def _csv_images(
    path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None
) -> list[tuple[Path, int, str | None, str | None, str | None]]:
    """:func:`images_in_csv`, plus each image's row SKU and product name."""
    csv_file = Path(path)
    data = read_input(csv_file, max_bytes=_MAX_CSV_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # older spreadsheet exports
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:65536], ",;\t|")
    except csv.Error:
        dialect = csv.excel
    folders = [Path(root)] if root is not None else []
    folders.append(csv_file.parent)
    out: list[tuple[Path, int, str | None, str | None, str | None]] = []
    listed: set[str] = set()
    sku_at = name_at = None
    try:
        reader = csv.reader(io.StringIO(text, newline=""), dialect)
        for row in reader:
            if reader.line_num == 1:
                header = [c.strip().lower() for c in row]
                sku_at = next((header.index(c) for c in _SKU_COLUMNS if c in header), None)
                name_at = next((header.index(c) for c in _NAME_COLUMNS if c in header), None)
            sku = row[sku_at].strip() or None if sku_at is not None and sku_at < len(row) else None
            title = (
                row[name_at].strip() or None if name_at is not None and name_at < len(row) else None
            )
            for cell in row:
                for name in _image_names(cell):
                    if name in listed:
                        continue
                    listed.add(name)
                    file, problem = _resolve(name, folders)
                    out.append((file, reader.line_num, problem, sku, title))
    except csv.Error as exc:
        raise ProvenanceError(f"unreadable CSV: {exc}", path=csv_file) from None
    return out


# --- helpers ----------------------------------------------------------------------------


def _targets(
    paths: Iterable[str | os.PathLike[str]], root: Path | None
) -> Iterator[tuple[Path, str, str | None, str | None, str | None]]:
    """``(file, source, problem, sku, product name)`` for every file to scan."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for p in image_files(path):
                yield p, str(path), None, None, None
        elif path.suffix.lower() == ".csv" and path.is_file():
            try:
                listed = _csv_images(path, root=root)
            except ProvenanceError as exc:
                yield path, str(path), str(exc), None, None
                continue
            for file, line, problem, sku, title in listed:
                where = f"{path}:{line}"
                why = None if problem is None else f"{file}: {problem} ({where})"
                yield file, where, why, sku, title
        elif path.exists() or path.is_symlink():
            yield path, str(path), None, None, None
        else:
            yield path, str(path), f"{path}: no such file or folder", None, None


def _image_names(cell: str) -> Iterator[str]:
    text = cell.strip()
    if not text or len(text) > 4096:
        return
    parts = [text]
    for sep in _CELL_SEPARATORS:
        parts = [piece for part in parts for piece in part.split(sep)]
    for part in parts:
        name = part.strip()
        if "://" in name:
            name = unquote(urlsplit(name).path)
        if PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES:
            yield name


def _resolve(name: str, folders: Sequence[Path]) -> tuple[Path, str | None]:
    candidate = Path(name)
    if candidate.is_absolute() and candidate.is_file():
        return candidate, None
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("/", "")]
    first = folders[0].joinpath(*parts) if parts else folders[0]
    if not parts or ".." in parts:
        # Never leave the folders given: "../../etc/x.jpg" in a CSV stays a name.
        return first, "listed in the CSV with a path outside the export folders"
    # The whole path under each folder, then shorter and shorter tails of it (a
    # URL's path carries a CDN prefix the local copy does not have).
    for start in range(len(parts)):
        for folder in folders:
            attempt = folder.joinpath(*parts[start:])
            if attempt.is_file():
                return attempt, None
    return first, "listed in the CSV but not found"


def _thumbnail_uri(path: Path) -> str | None:
    try:
        # open_image: the pixel limit before decoding, and HEIC through pillow-heif.
        with open_image(read_input(path)) as opened:
            return thumbnail_data_uri(opened, side=_THUMB_SIDE, quality=_THUMB_QUALITY)
    except (ProvenanceError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
