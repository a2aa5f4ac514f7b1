"""The ``provenance`` command line: the library's verbs, one to one.

The only package that prints. Every command takes ``--json`` for machine output
on stdout, in one of two shapes (docs/cli.md, "JSON output"; a schema per command
in docs/json/): commands about files or assets print an array of rows through
``json_rows`` (and take ``--ndjson``), the others print one object through
``print_json`` (both in :mod:`provenance.cli._output`). Messages and errors go to
stderr as one line naming the file, never a traceback. Exit status: 0 all good,
1 something is tampered or has an invalid signature, 2 usage errors or input that
could not be read, 3 a batch's worker processes could not be started
(``--workers 1`` works without them).

Where things are: one private module per command group (``_sign``, ``_verify``,
``_scan``, ``_records``, ``_serve``, ``_report``, ``_keys``, ``_inventory``,
``_audit``, ``_magento``); the options they share in ``_options``; what they
resolve from those options (inventory, keys, trust anchors, PII policy) in
``_common``, the files they work on in ``_files``; printing, and the one
decorator that turns errors into a line on stderr and exit 2, in ``_output``.

Adding a command: write it in its group's module under ``@app.command("NAME")``
and ``@reports_errors`` (a top-level command: ``@reports_errors`` there, and one
line in ``_COMMANDS`` below), then its docs/cli.md section and docs/json/ schema.

Starting is cheap (issue 20): importing this package loads typer, not rich, the
command modules nor the library. ``main`` makes the click form of the one command
it runs, importing that command's module only (:class:`_Commands`; ``--help``
makes them all); rich loads when a table, a progress bar or a line rich would
change is printed (:mod:`provenance.cli._output`). A command imports what it
runs inside its body (a type only in annotations goes under ``TYPE_CHECKING``;
typer reads the command's own signature, so its option types stay light:
``Path``, enums of ``provenance._core.pii``); a batch command calls
``warm_up(workers)`` before those imports and before it loads keys or opens the
inventory: on Linux its workers are then forked from it at once, sharing its
imports (DESIGN.md decision 1); elsewhere its pool's fork server imports beside it.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterator, MutableMapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main

from provenance._version import __version__
from provenance.cli._output import EXIT_OK, EXIT_USAGE, out

if TYPE_CHECKING:
    app: typer.Typer  # made on first use (see __getattr__)

__all__ = ["app", "main"]

_COMMANDS = (
    # Top-level commands, in the order --help lists them: (name, module, function).
    ("sign", "_sign", "sign_command"),
    ("verify", "_verify", "verify_command"),
    ("renditions", "_sign", "renditions_command"),
    ("trace", "_scan", "trace_command"),
    ("pii-check", "_records", "pii_check_command"),
    ("scan", "_scan", "scan_command"),
    ("disclosure", "_records", "disclosure_command"),
    ("serve", "_serve", "serve_command"),
    ("report", "_report", "report_command"),
    ("feed-check", "_report", "feed_check_command"),
    # Command groups: their subcommands live in the group's module (a typer.Typer).
    ("keys", "_keys", "app"),
    ("inventory", "_inventory", "app"),
    ("audit", "_audit", "app"),
    ("incident", "_report", "incident_app"),
    ("magento", "_magento", "app"),
)
"""Every command and group of ``provenance``: where it is defined, not yet imported."""


def _typer() -> typer.Typer:
    """An app with the root's settings (a command made in it reads them from there)."""
    return typer.Typer(
        name="provenance",
        help="Sign and verify the provenance of AI-generated product images (C2PA + signed XMP).",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode=None,
    )


def _register(into: typer.Typer, name: str, module: str, attribute: str) -> None:
    """Import the module that defines command ``name`` and add the command to ``into``."""
    defined = getattr(importlib.import_module(f"provenance.cli.{module}"), attribute)
    if isinstance(defined, typer.Typer):
        into.add_typer(defined, name=name)
    else:
        into.command(name)(defined)


class _Commands(MutableMapping[str, Any]):  # Any: a click Command (typer 0.28 has its own click)
    """The root group's commands, each imported and made when it is first looked up.

    A command line runs one command: making every command's click form, and
    importing every command module for it, cost about 40 ms of CPU per command
    before any work (issue 20). A lookup by name (running it) makes that one;
    listing them (``provenance --help``) makes them all, in ``_COMMANDS`` order.
    """

    def __init__(self) -> None:
        self._where = {name: (module, attribute) for name, module, attribute in _COMMANDS}
        self._made: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._made:
            module, attribute = self._where[name]  # KeyError: no such command
            holder = _typer()
            _register(holder, name, module, attribute)
            self._made[name] = typer.main.get_group(holder).commands[name]
        return self._made[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._made[name] = command
        self._where.setdefault(name, ("", ""))

    def __delitem__(self, name: str) -> None:
        del self._where[name]
        self._made.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._where

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._where))

    def __len__(self) -> int:
        return len(self._where)


def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        out.line(f"provenance {__version__}")
        raise typer.Exit(EXIT_OK)


def _rooted() -> typer.Typer:
    """The root app with its callback (``--version``) and no command yet."""
    root = _typer()
    root.callback(invoke_without_command=True)(_root)
    return root


def _command() -> Any:  # typer's click Group
    """The ``provenance`` group, its commands made on first use (:class:`_Commands`)."""
    group = typer.main.get_group(_rooted())
    group.commands = _Commands()
    return group


def __getattr__(name: str) -> Any:
    """``app``: the whole command line as one ``typer.Typer``, every command imported.

    What a test or a tool walks (``typer.main.get_command(app)``); ``main`` does
    not need it.
    """
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    whole = _rooted()
    for entry in _COMMANDS:
        _register(whole, *entry)
    globals()["app"] = whole
    return whole


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return its exit status (for ``python -m provenance``)."""
    logging.basicConfig(level=logging.WARNING, format="provenance: %(message)s")
    os.environ.setdefault("COLUMNS", "160")
    # One BLAS thread (numpy's OpenBLAS and OpenCV's own copy read this when they
    # load): commands parallelise by process (decision 9; the perceptual hashes
    # already run their BLAS calls on one thread), and each copy's idle thread
    # spins after every call. Measured (issue 20): a 200-file `sign` used 0.1-0.2 s
    # less CPU with it, on one worker or two (on two cores a spinning thread takes
    # the other worker's core), and a first keypoint extraction 16 ms instead of 47 ms.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        _command()(args=list(argv) if argv is not None else None, standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    return EXIT_OK


def run() -> None:
    """Console-script entry point (and ``python -m provenance``'s): run, then exit quickly."""
    _exit(main())


def _exit(code: int) -> None:
    """Exit with ``code``, skipping the interpreter's teardown when nothing needs it.

    Tearing down numpy, Pillow, cryptography, c2pa and the rest module by
    module took 40-65 ms after every command (a batch's end to end, issue
    20), and does nothing a finished command needs. So, on Linux, once the
    command is over and only the main thread runs and no regular file or socket
    is open (an inventory left open is closed by the teardown: its
    write-ahead log is folded back then), this runs the ``atexit`` handlers
    (logging, multiprocessing's, a coverage tool's), flushes stdout and
    stderr and ends the process with ``os._exit``. Otherwise, or if a flush
    fails (a closed pipe: the teardown reports it), it exits as usual.
    """
    import atexit
    import threading

    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        sys.exit(code)
    from provenance._io.descriptors import first_open_file

    if first_open_file() is not None:
        sys.exit(code)
    atexit._run_exitfuncs()  # what sys.exit would run first; then only the teardown is left
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None when the process started without it
                stream.flush()
    except (OSError, ValueError):
        sys.exit(code)
    os._exit(code)
