"""One way for a command to fail: ``reports_errors`` (provenance.cli._output)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from provenance.cli import app
from provenance.cli._output import LazyConsole, reports_errors
from provenance.errors import CorruptFile, WorkerPoolError
from tests.conftest import ROOT, fresh_python


def _callbacks(group: typer.Typer, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for info in group.registered_commands:
        yield f"{prefix}{info.name}", info.callback
    for sub in group.registered_groups:
        assert sub.typer_instance is not None
        yield from _callbacks(sub.typer_instance, f"{prefix}{sub.name} ")


def test_every_command_wears_reports_errors() -> None:
    marker = reports_errors(lambda: None).__code__  # every wrapper shares its code
    names = []
    for name, callback in _callbacks(app):
        names.append(name)
        assert getattr(callback, "__code__", None) is marker, f"{name}: add @reports_errors"
    assert {"sign", "verify", "inventory list", "audit verify", "magento import"} <= set(names)


def test_a_library_error_is_one_line_on_stderr_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @reports_errors
    def command() -> None:
        raise CorruptFile("truncated\nforged line", path="bad\n.jpg")

    with pytest.raises(typer.Exit) as exited:
        command()
    assert exited.value.exit_code == 2
    err = capsys.readouterr().err
    assert err == "provenance: error: bad\\n.jpg: truncated\\nforged line\n"


def test_workers_that_cannot_start_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    @reports_errors
    def command() -> None:
        raise WorkerPoolError("cannot start worker processes")

    with pytest.raises(typer.Exit) as exited:
        command()
    assert exited.value.exit_code == 3
    assert "cannot start worker processes" in capsys.readouterr().err


def test_other_exceptions_are_not_swallowed() -> None:
    @reports_errors
    def command() -> None:
        raise KeyError("a bug must show as one")

    with pytest.raises(KeyError):
        command()


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(["a", "é", "漢", ":", " ", "\t", "\r", "\x1b", "\x07", "smile", "-", "/"])
    ).map("".join)
    | st.text()
)
def test_a_plain_line_is_printed_as_rich_prints_it(text: str) -> None:
    """``LazyConsole.line`` skips rich only where rich would print the text unchanged."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        LazyConsole(stderr=False).line(text)
    by_rich = io.StringIO()
    Console(file=by_rich, highlight=False, soft_wrap=True, width=80).print(text, markup=False)
    assert printed.getvalue() == by_rich.getvalue()


def test_a_message_without_anything_rich_would_change_does_not_load_rich() -> None:
    done = fresh_python(
        """
        import sys
        from provenance.cli._output import err, fail, warn
        warn("photos/a.jpg: no inventory; at 12:30 (see docs/cli.md)")
        try:
            fail("bad name.jpg: truncated\\nforged line")
        except BaseException as exc:
            print(type(exc).__name__, "rich" in sys.modules)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Exit", "False"]
    assert done.stderr == (
        "provenance: warning: photos/a.jpg: no inventory; at 12:30 (see docs/cli.md)\n"
        "provenance: error: bad name.jpg: truncated\\nforged line\n"
    )


def test_a_command_run_with_stdout_closed_ends_without_a_traceback() -> None:
    """``provenance --version >&-``: Python starts with ``sys.stdout`` None, and rich drops
    the text then; the line printed without rich raised AttributeError instead."""
    done = subprocess.run(
        [sys.executable, "-m", "provenance", "--version"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        check=False,
        timeout=120,
        preexec_fn=lambda: os.close(1),  # descriptor 1 closed, as the shell's ``>&-`` leaves it
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
