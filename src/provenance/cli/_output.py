"""What the command line prints, and the one way a command fails.

The only place (with the command modules that call it) that writes to stdout or
stderr. Errors are one line on stderr naming the file, never a traceback:
:func:`fail` for a usage error a command finds itself, and :func:`reports_errors`,
worn by every command, for the deliberate errors (:class:`ProvenanceError`) the
library raises. Machine output is JSON in one of two shapes (docs/cli.md, "JSON
output"): one object (:func:`print_json`) or rows (:func:`json_rows`, which also
streams ``--ndjson``).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn, ParamSpec, TypeVar

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

from provenance.errors import ProvenanceError, WorkerPoolError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_NO_WORKERS = 3  # a batch's worker processes could not be started (issue 19)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")


def one_line(text: str) -> str:
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
    "pass overwrite to replace them": "give --force to replace them",  # keys init
    "pass record=": "give --record RECORD.json",  # renditions of a stripped original
}


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``provenance: error: MESSAGE`` as one line on stderr and exit with ``code``."""
    for hint, flags in _PYTHON_HINTS.items():
        message = message.replace(hint, flags)
    err.print(f"provenance: error: {one_line(message)}", markup=False)
    raise typer.Exit(code)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a command's deliberate errors into one line on stderr and its exit status.

    Every command wears it, under ``@app.command(...)``: a command raises the
    library's errors and does not catch them to print them. A
    :class:`ProvenanceError` exits 2 and a :class:`WorkerPoolError` (a batch's
    worker processes could not be started) exits 3, each with its message.
    """

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except WorkerPoolError as exc:
            fail(str(exc), EXIT_NO_WORKERS)
        except ProvenanceError as exc:
            fail(str(exc))

    return run


def warn(message: str | None) -> None:
    """Print ``provenance: warning: MESSAGE`` on stderr, if there is a message."""
    if message is not None:
        err.print(f"provenance: warning: {one_line(message)}", markup=False)


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
        widths = self._widths(options.max_width)
        if widths is not None:
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
                f"{h:<{label}}  {one_line(v)}".rstrip()
                for h, v in zip(self._headers, row, strict=False)
            )
        yield Segment("\n".join(lines) + "\n")

    def _widths(self, max_width: int) -> list[int] | None:
        """Each column's width in ``max_width`` cells, or None when the table does not fit."""
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
        room = max_width - (3 * len(self._headers) + 1)  # padding and rules
        if sum(least) > room:
            return None
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
        return widths


def table(*headers: str, title: str | None = None) -> Table:
    """A table that keeps ids and paths whole (see :class:`_Table`): they get copied."""
    return _Table(*headers, title=title)


def print_json(value: Any) -> None:
    """The one way a command whose answer is one thing prints it: one JSON object."""
    sys.stdout.write(json.dumps(json_safe(value), indent=2, ensure_ascii=False) + "\n")


def json_safe(value: Any) -> Any:
    """``value`` with every string valid UTF-8, reversibly (docs/cli.md, "JSON output").

    A file name that is not valid UTF-8 reaches Python with its bad bytes as
    lone surrogates (PEP 383), which cannot be written as UTF-8 JSON. Such a
    string is shown with U+FFFD in their place, and the exact bytes go in a
    sibling key ``<key>_bytes`` (base64): ``base64.b64decode(row["path_bytes"])``
    is the name as the file system has it.
    """
    if isinstance(value, dict):
        safe: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(item, str) and _has_surrogates(item):
                raw = item.encode("utf-8", "surrogateescape")
                safe[key] = raw.decode("utf-8", "replace")
                safe[f"{key}_bytes"] = base64.b64encode(raw).decode("ascii")
            else:
                safe[key] = json_safe(item)
        return safe
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, str) and _has_surrogates(value):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@contextlib.contextmanager
def json_rows(as_json: bool, ndjson: bool = False) -> Iterator[Callable[[dict[str, Any]], None]]:
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
        safe = json_safe(row)
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


def print_rows(rows: Iterable[dict[str, Any]], *, as_json: bool, ndjson: bool) -> None:
    """Print finished rows the way :func:`json_rows` does."""
    with json_rows(as_json, ndjson) as emit:
        for row in rows:
            emit(row)


@contextlib.contextmanager
def progress_bar(show: bool | None, label: str, total: int | None) -> Iterator[Callable[[], None]]:
    """A rich progress bar on stderr; yields the function that advances it.

    ``total`` None counts what is done without a bar's end (files still being listed).
    """
    if show is None:
        show = err.is_terminal
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
    # Rows printed on a terminal go above the bar; rows piped to a file must stay on
    # stdout (rich would otherwise send them to the bar's console, stderr).
    redirect = sys.stdout.isatty()
    with Progress(*columns, console=err, transient=True, redirect_stdout=redirect) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)
