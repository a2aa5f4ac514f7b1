"""The CSV dialect of Magento's product import: read, split and write it as Magento does.

Owns the file-level rules (a UTF-8 BOM dropped and written back, the field
separator given or sniffed from the header line, quoted fields, the header's
``sku`` column) and the cell-level ones (image cells split by the multiple value
separator and trimmed, ``__EMPTY__VALUE__``, label cells with and without
``fields_enclosure``, and the disclosure written into the labels). Reads the CSV
through :func:`provenance._io.reading.read_input`; never writes a file.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from provenance._io.reading import read_input
from provenance.errors import ImportFileError

__all__ = [
    "EMPTY_VALUE_CONSTANT",
    "CsvFormat",
    "Table",
    "fill_labels",
    "read_table",
    "render",
    "split_images",
]

EMPTY_VALUE_CONSTANT = "__EMPTY__VALUE__"
"""Magento's default ``_import_empty_attribute_value_constant``."""

_SNIFF_SEPARATORS = (",", ";", "\t", "|")
_MAX_CSV_BYTES = 512 * 1024 * 1024


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
class Table:
    """A read CSV: its header, its data rows with their first line, and how it was written."""

    header: list[str]  # names trimmed, for lookup
    raw_header: list[str]  # as written, for output
    rows: list[tuple[int, list[str]]]
    delimiter: str
    bom: bool
    line_terminator: str


def read_table(path: Path, separator: str | None) -> Table:
    """Read an import CSV; blank rows are dropped, every other row kept as written.

    Raises:
        ImportFileError: Not UTF-8 text, not a CSV, no ``sku`` column, a duplicate
            column in the header.
        ProvenanceError: The file cannot be read.
    """
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
    _check_header(header, delimiter, first_line, path)
    return Table(header, raw, rows, delimiter, bom, terminator)


def _check_header(header: list[str], delimiter: str, first_line: str, path: Path) -> None:
    """ImportFileError unless the header has a ``sku`` column and no column twice."""
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


def render(table: Table, header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    """The CSV bytes of ``rows`` under ``header``, written as ``table`` was read."""
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


def split_images(cell: str, fmt: CsvFormat) -> list[str]:
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


def fill_labels(
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
