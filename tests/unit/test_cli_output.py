"""One way for a command to fail: ``reports_errors`` (provenance.cli._output)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer

from provenance.cli import app
from provenance.cli._output import reports_errors
from provenance.errors import CorruptFile, WorkerPoolError


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
