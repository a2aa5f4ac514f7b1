"""What the command line prints, and the one way a command fails.

The only place (with the command modules that call it) that writes to stdout or
stderr. Errors are one line on stderr naming the file, never a traceback:
:func:`fail` for a usage error a command finds itself, and :func:`reports_errors`,
worn by every command, for the deliberate errors (:class:`ProvenanceError`) the
library raises. Machine output is JSON in one of two shapes (docs/cli.md, "JSON
output"): one object (:func:`print_json`) or rows (:func:`json_rows`, which also
streams ``--ndjson``). Text goes through :data:`out` and :data:`err`
(:class:`LazyConsole`): ``line`` for a plain line, ``print`` for what rich renders
(a table from :func:`table`); rich is imported only when something needs it
(issue 20), so pass ``err.console`` where a rich API wants a console.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

import typer

from provenance.errors import ProvenanceError, WorkerPoolError

if TYPE_CHECKING:
    from rich.console import Console

    from provenance.cli._tables import IdentifierTable

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_NO_WORKERS = 3  # a batch's worker processes could not be started (issue 19)


class LazyConsole:
    """A rich ``Console`` on stdout or stderr, made when something is first printed through it.

    Importing rich costs 20-30 ms of CPU, which a command that prints only JSON
    or plain lines need not pay (issue 20): :meth:`line` prints without rich what
    rich would print unchanged. rich fixes a console's width from ``$COLUMNS``
    when it is made (one made at import, as these were, read it at each print
    while it was unset): one console per ``$COLUMNS`` and ``$LINES`` keeps
    following it, as tests that narrow the terminal between commands need.
    """

    __slots__ = ("_made", "stderr")

    def __init__(self, *, stderr: bool) -> None:
        self.stderr = stderr
        self._made: dict[tuple[str | None, str | None], Console] = {}

    @property
    def console(self) -> Console:
        """The rich console for the current ``$COLUMNS`` and ``$LINES``."""
        size = (os.environ.get("COLUMNS"), os.environ.get("LINES"))
        made = self._made.get(size)
        if made is None:
            from rich.console import Console

            made = Console(stderr=self.stderr, highlight=False, soft_wrap=True)
            self._made[size] = made
        return made

    @property
    def is_terminal(self) -> bool:
        """``Console.is_terminal``; without rich when it is surely False (not a tty, not forced)."""
        forced = "FORCE_COLOR" in os.environ or "TTY_COMPATIBLE" in os.environ
        if not (self._made or forced or _isatty(self._stream())):
            return False
        return self.console.is_terminal

    def print(self, *objects: Any, **options: Any) -> None:
        """``Console.print``."""
        self.console.print(*objects, **options)

    def line(self, text: str) -> None:
        """Print ``text`` and a newline as ``print(text, markup=False)`` does.

        Without rich when rich would print it unchanged: no console made yet (no
        live progress bar to print around), and no emoji code, tab or control
        character in it (:data:`_RICH_CHANGES`), as in the messages of
        :func:`warn` and :func:`fail` once :func:`one_line` has escaped them.
        """
        if self._made or _RICH_CHANGES.search(text):
            self.print(text, markup=False)
            return
        stream = self._stream()
        if stream is None:
            return  # started with the stream closed (``>&-``): rich drops the text too
        stream.write(text + "\n")
        stream.flush()

    def _stream(self) -> Any:  # a text stream
        """Where rich would write now: the process's stdout or stderr, as it is now."""
        stream = sys.stderr if self.stderr else sys.stdout
        # Under a progress bar rich writes past its own redirection of the stream.
        return getattr(stream, "rich_proxied_file", stream)


# What rich's print changes in a line of text without markup: an emoji code such
# as ":smile:" (any ":word:"), tabs (expanded) and control characters (dropped).
_RICH_CHANGES = re.compile(r":\S*:|[\x00-\x09\x0b-\x1f\x7f]")

out = LazyConsole(stderr=False)
err = LazyConsole(stderr=True)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


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
    err.line(f"provenance: error: {one_line(message)}")
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
        err.line(f"provenance: warning: {one_line(message)}")


def table(*headers: str, title: str | None = None) -> IdentifierTable:
    """A table that keeps ids and paths whole (see :class:`IdentifierTable`): they get copied."""
    from provenance.cli._tables import IdentifierTable

    return IdentifierTable(*headers, title=title)


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
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

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
    with Progress(*columns, console=err.console, transient=True, redirect_stdout=redirect) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)
