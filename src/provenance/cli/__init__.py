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
``app.command`` line below), then its docs/cli.md section and docs/json/ schema.

Starting is cheap (issue 20): importing this package loads typer, rich and the
options, not the library. A command imports what it runs inside its body (a
type only in annotations goes under ``TYPE_CHECKING``; typer reads the
command's own signature, so its option types stay light: ``Path``, enums of
``provenance._core.pii``); a batch command calls ``warm_up(workers)`` before
those imports and before it loads keys or opens the inventory: on Linux its
workers are then forked from it at once, sharing its imports (DESIGN.md
decision 1); elsewhere its pool's fork server imports beside it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from provenance._version import __version__
from provenance.cli import (
    _audit,
    _inventory,
    _keys,
    _magento,
    _records,
    _report,
    _scan,
    _serve,
    _sign,
    _verify,
)
from provenance.cli._output import EXIT_OK, EXIT_USAGE, out

__all__ = ["app", "main"]

app = typer.Typer(
    name="provenance",
    help="Sign and verify the provenance of AI-generated product images (C2PA + signed XMP).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

# Top-level commands, in the order --help lists them.
app.command("sign")(_sign.sign_command)
app.command("verify")(_verify.verify_command)
app.command("renditions")(_sign.renditions_command)
app.command("trace")(_scan.trace_command)
app.command("pii-check")(_records.pii_check_command)
app.command("scan")(_scan.scan_command)
app.command("disclosure")(_records.disclosure_command)
app.command("serve")(_serve.serve_command)
app.command("report")(_report.report_command)
app.command("feed-check")(_report.feed_check_command)
# Command groups: their subcommands live in the group's module.
app.add_typer(_keys.app, name="keys")
app.add_typer(_inventory.app, name="inventory")
app.add_typer(_audit.app, name="audit")
app.add_typer(_report.incident_app, name="incident")
app.add_typer(_magento.app, name="magento")


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        out.print(f"provenance {__version__}")
        raise typer.Exit(EXIT_OK)


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
