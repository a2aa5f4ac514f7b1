"""What a scan looks at: image files in folders, and the images product export CSVs list.

What this module owns: walking the paths a scan is given into one
:class:`Target` per file (with where it was listed, and its product's SKU and
name for a CSV row), and reading product export CSVs. It reads folders and CSV
files but never an image.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from provenance._core.containers import IMAGE_SUFFIXES as _IMAGE_SUFFIXES
from provenance._io.image_files import image_files
from provenance._io.reading import read_input
from provenance.errors import ProvenanceError

__all__ = ["IMAGE_SUFFIXES", "images_in_csv"]

IMAGE_SUFFIXES = _IMAGE_SUFFIXES
"""File name endings scanned in folders and recognised in CSV cells."""

# A CSV larger than this is refused (a product export of 100k rows is ~50 MB).
_MAX_CSV_BYTES = 256 * 1024 * 1024
# Cells holding several images separate them with these (Magento additional_images: ",").
_CELL_SEPARATORS = (",", "|", ";")


@dataclass(frozen=True, slots=True)
class Target:
    """One file to scan, and where it was listed.

    ``problem``: why it cannot be checked (missing, unreadable CSV), else None.
    """

    file: Path
    source: str
    problem: str | None = None
    sku: str | None = None
    product_name: str | None = None


def distinct_targets(
    paths: Iterable[str | os.PathLike[str]], root: Path | None
) -> Iterator[Target]:
    """:func:`_targets`, each file once (the first listing wins)."""
    seen: set[str] = set()
    for target in _targets(paths, root):
        key = os.path.normcase(str(target.file.absolute()))
        if key not in seen:
            seen.add(key)
            yield target


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


def _targets(paths: Iterable[str | os.PathLike[str]], root: Path | None) -> Iterator[Target]:
    """Every file to scan, in the order given (folders sorted, CSVs by line)."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for p in image_files(path):
                yield Target(p, str(path))
        elif path.suffix.lower() == ".csv" and path.is_file():
            try:
                listed = _csv_images(path, root=root)
            except ProvenanceError as exc:
                yield Target(path, str(path), str(exc))
                continue
            for file, line, problem, sku, title in listed:
                where = f"{path}:{line}"
                why = None if problem is None else f"{file}: {problem} ({where})"
                yield Target(file, where, why, sku, title)
        elif path.exists() or path.is_symlink():
            yield Target(path, str(path))
        else:
            yield Target(path, str(path), f"{path}: no such file or folder")


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
