"""What a person sees at the command line: flags not Python, nothing cut, nothing 'None'."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer.main

from provenance._core.containers import BlockKind, strip
from provenance._io.keys import DevKeyPaths
from provenance.cli import app, main
from tests.conftest import SAMPLE_MEDIA, run_cli


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        found.append(path)
        if hasattr(command, "commands"):  # a group (typer ships its own click classes)
            found += _commands(command, path)
    return found


def test_help_never_shows_a_literal_backslash_b(capsys: pytest.CaptureFixture[str]) -> None:
    root = typer.main.get_command(app)
    commands = _commands(root)
    assert ("feed-check",) in commands and ("incident", "open") in commands
    for path in commands:
        assert main([*path, "--help"]) == 0, path
        shown = capsys.readouterr().out
        assert "\\b" not in shown and "\b" not in shown, path
        assert "Examples" not in shown or "  provenance " in shown, path


def test_messages_name_flags_and_env_vars_not_python(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    env = {"PROVENANCE_INVENTORY": str(tmp_path / "nowhere.sqlite")}
    done = run_cli("report", env=env)
    assert done.returncode == 2
    assert "--inventory" in done.stderr and "PROVENANCE_INVENTORY" in done.stderr
    assert "create=True" not in done.stderr
    keys = tmp_path / "keys"
    assert run_cli("keys", "init", keys).returncode == 0
    again = run_cli("keys", "init", keys)
    assert again.returncode == 2 and "--force" in again.stderr and "pass " not in again.stderr
    hashed = run_cli(
        "sign",
        SAMPLE_MEDIA / "kite-blue-sky.jpg",
        "--out",
        tmp_path / "o",
        "--pii",
        "hash",
        "--keys",
        keys,
        env=env,
    )
    assert hashed.returncode == 2 and "$PROVENANCE_PII_HASH_KEY" in hashed.stderr
    assert "PiiPolicy" not in hashed.stderr
    # renditions of an original whose provenance was stripped: say --record.
    stripped = tmp_path / "kite.jpg"
    signed = tmp_path / "signed"
    assert (
        run_cli(
            "sign",
            SAMPLE_MEDIA / "kite-blue-sky.jpg",
            "--out",
            signed,
            "--keys",
            keys,
            "--no-inventory",
        ).returncode
        == 0
    )
    stripped.write_bytes(
        strip(
            (signed / "kite-blue-sky.jpg").read_bytes(), frozenset({BlockKind.C2PA, BlockKind.XMP})
        )
    )
    args = (
        "renditions",
        stripped,
        "--sizes",
        "200x200",
        "--out",
        tmp_path / "r",
        "--keys",
        keys,
        "--no-inventory",
    )
    missing = run_cli(*args)
    assert missing.returncode == 2 and "give --record RECORD.json" in missing.stderr
    assert "record=" not in missing.stderr
    given = run_cli(*args, "--record", SAMPLE_MEDIA / "kite-blue-sky.jpg.json", "--json")
    assert given.returncode == 0, given.stderr
    assert len(json.loads(given.stdout)) == 1


def test_trace_of_an_unknown_file_says_so(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    shutil.copyfile(SAMPLE_MEDIA / "forest-path.jpg", photo)
    done = run_cli("trace", photo, env={"PROVENANCE_INVENTORY": str(tmp_path / "none.sqlite")})
    assert done.returncode == 1
    assert "None" not in done.stdout and "not found" in done.stdout


def test_sign_takes_the_names_list(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    record = json.loads((SAMPLE_MEDIA / "kite-blue-sky.jpg.json").read_text("utf-8"))
    record["prompt"] = "A kite for Jane Roe's birthday, blue sky"
    (tmp_path / "kite.jpg").write_bytes((SAMPLE_MEDIA / "kite-blue-sky.jpg").read_bytes())
    (tmp_path / "kite.jpg.json").write_text(json.dumps(record), encoding="utf-8")
    names = tmp_path / "customers.txt"
    names.write_text("Jane Roe\n", encoding="utf-8")
    keys = ("--keys", dev_keys.directory, "--no-inventory")
    plain = run_cli("sign", tmp_path / "kite.jpg", "--out", tmp_path / "a", *keys)
    assert plain.returncode == 0, plain.stderr  # no list: a name is not detected
    refused = run_cli(
        "sign", tmp_path / "kite.jpg", "--out", tmp_path / "b", "--names", names, *keys
    )
    assert refused.returncode != 0 and "personal data (name)" in refused.stdout + refused.stderr
    assert "Jane" not in refused.stdout + refused.stderr
    redacted = run_cli(
        "sign",
        tmp_path / "kite.jpg",
        "--out",
        tmp_path / "c",
        "--names",
        names,
        "--pii",
        "redact",
        *keys,
    )
    assert redacted.returncode == 0, redacted.stderr
    data = (tmp_path / "c" / "kite.jpg").read_bytes()
    assert b"Jane Roe" not in data and b"[redacted:name]" in data


def test_tables_never_cut_or_fold_identifiers(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    inv = tmp_path / "inv.sqlite"
    env = {"PROVENANCE_INVENTORY": str(inv)}
    signed = run_cli(
        "sign",
        SAMPLE_MEDIA / "kite-blue-sky.jpg",
        "--out",
        tmp_path / "s",
        "--keys",
        dev_keys.directory,
        "--json",
        env=env,
    )
    asset_id = json.loads(signed.stdout)[0]["asset_id"]
    listing = run_cli("inventory", "list", env={**env, "COLUMNS": "60"})
    assert listing.returncode == 0, listing.stderr
    assert "…" not in listing.stdout
    # Too narrow for the table: one "column  value" line each, the id whole on its line.
    assert f"asset id      {asset_id}" in listing.stdout.splitlines()
