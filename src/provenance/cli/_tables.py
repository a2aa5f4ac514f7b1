"""The tables the command line prints: ids and paths are never cut (docs/cli.md, "Tables").

Imported by :func:`provenance.cli._output.table` when a command prints a table, so
that a command printing JSON or nothing never imports rich (issue 20).
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.table import Table

from provenance.cli._output import one_line

# Columns holding what a user copies (paths, asset ids, SKUs): never folded nor cut.
_IDENTIFIER_COLUMNS = frozenset(
    {"source", "signed copy", "asset id", "parent asset id", "asset", "parent", "file"}
    | {"rendition", "sku"}
)


_FOLD_AFTER = 20


class IdentifierTable(Table):
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
