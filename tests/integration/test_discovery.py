"""Finding the inventory like git finds its repository, and never degrading silently."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from provenance import SigningKey, sign
from provenance._core.containers import BlockKind, strip
from provenance._io.discovery import InventorySource, find_inventory
from provenance._io.keys import DevKeyPaths
from provenance.errors import ProvenanceError
from provenance.inventory import Inventory
from tests.conftest import run_cli, sample_record

Media = Callable[[str], Path]


def test_flag_then_env_then_config_then_folder(tmp_path: Path) -> None:
    project = tmp_path / "project"
    deep = project / "a" / "b"
    deep.mkdir(parents=True)
    found = find_inventory(None, env={}, cwd=deep)
    assert found.source is InventorySource.NONE
    assert found.path == deep / ".provenance" / "inventory.sqlite"
    # A .provenance/ folder in a parent.
    (project / ".provenance").mkdir()
    (project / ".provenance" / "inventory.sqlite").write_bytes(b"")
    found = find_inventory(None, env={}, cwd=deep)
    assert found.source is InventorySource.FOLDER
    assert found.path == project / ".provenance" / "inventory.sqlite"
    # A provenance.toml nearer wins, its path relative to the file.
    (project / "a" / "provenance.toml").write_text('inventory = "../shared/inv.sqlite"\n')
    found = find_inventory(None, env={}, cwd=deep)
    assert found.source is InventorySource.CONFIG
    assert found.path == project / "a" / ".." / "shared" / "inv.sqlite"
    assert str(project / "a" / "provenance.toml") in found.describe()
    # A provenance.toml without the key does not stop the walk.
    (project / "a" / "provenance.toml").write_text("[other]\nx = 1\n")
    assert find_inventory(None, env={}, cwd=deep).source is InventorySource.FOLDER
    # The variable, then the flag, come first.
    env = {"PROVENANCE_INVENTORY": str(tmp_path / "env.sqlite")}
    assert find_inventory(None, env=env, cwd=deep).source is InventorySource.ENV
    assert find_inventory(tmp_path / "flag.sqlite", env=env, cwd=deep).source is (
        InventorySource.FLAG
    )


@pytest.mark.parametrize("text", ["inventory = ", "inventory = 3\n", 'inventory = ""\n'])
def test_bad_config_names_the_file(tmp_path: Path, text: str) -> None:
    config = tmp_path / "provenance.toml"
    config.write_text(text)
    with pytest.raises(ProvenanceError) as caught:
        find_inventory(None, env={}, cwd=tmp_path)
    assert str(caught.value).startswith(str(config))


def _cli(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # Without the test's own PROVENANCE_INVENTORY: these find the inventory themselves.
    return run_cli(*args, cwd=cwd, env={"PROVENANCE_INVENTORY": None, **(env or {})})


@pytest.fixture
def project(tmp_path: Path, media: Media, signing_key: SigningKey) -> tuple[Path, Path, Path]:
    """A project whose .provenance/ inventory knows a signed image, and a stripped copy."""
    root = tmp_path / "project"
    (root / "media" / "cdn").mkdir(parents=True)
    name = "packshot-fire-truck-white.png"
    signed = root / "media" / "signed.png"
    with Inventory(root / ".provenance" / "inventory.sqlite") as inventory:
        sign(media(name), signed, record=sample_record(name), key=signing_key, inventory=inventory)
    stripped = root / "media" / "cdn" / "copy.png"
    stripped.write_bytes(strip(signed.read_bytes(), frozenset(BlockKind)))
    return root, signed, stripped


def test_verify_finds_the_inventory_from_a_subfolder(
    project: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    root, _, stripped = project
    inside = _cli("verify", "--json", stripped, cwd=root / "media" / "cdn")
    assert inside.returncode == 0, inside.stderr
    (row,) = json.loads(inside.stdout)
    assert row["verdict"] == "known_stripped"
    assert row["inventory"] == str(root / ".provenance" / "inventory.sqlite")
    assert "warning" not in inside.stderr
    # Outside the project: said on stderr once, and in every JSON row.
    outside = _cli("verify", "--json", stripped, cwd=tmp_path)
    assert outside.returncode == 0
    (row,) = json.loads(outside.stdout)
    assert row["verdict"] == "no_provenance"
    assert row["inventory"] is None
    assert "no inventory found" in row["warnings"][0]
    assert outside.stderr.count("provenance: warning: no inventory found") == 1
    # A provenance.toml elsewhere can name it.
    (tmp_path / "provenance.toml").write_text(
        f'inventory = "{(root / ".provenance" / "inventory.sqlite").as_posix()}"\n'
    )
    configured = _cli("verify", "--json", stripped, cwd=tmp_path)
    assert json.loads(configured.stdout)[0]["verdict"] == "known_stripped"


def test_trace_and_scan_say_when_there_is_no_inventory(
    project: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, _, stripped = project
    traced = _cli("trace", "--json", stripped, cwd=tmp_path)
    assert traced.returncode == 1
    assert json.loads(traced.stdout)[0]["inventory"] is None
    assert "no inventory found" in traced.stderr
    scanned = _cli("scan", "--json", stripped.parent, cwd=tmp_path)
    assert all(row["warnings"] for row in json.loads(scanned.stdout))
    assert "no inventory found" in scanned.stderr


def test_missing_env_inventory_is_said(project: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, _, stripped = project
    missing = tmp_path / "nowhere.sqlite"
    result = _cli("verify", stripped, cwd=tmp_path, env={"PROVENANCE_INVENTORY": str(missing)})
    assert result.returncode == 0
    assert f"no inventory at {missing}" in result.stderr


def test_an_input_with_no_image_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "x.jpg").mkdir()
    for target in ("empty", "x.jpg"):
        for command in ("verify", "scan"):
            result = _cli(command, "--json", target, cwd=tmp_path)
            assert result.returncode == 2, (command, target, result.stdout)
            assert f"{target}: folder holds no " in result.stderr
            assert result.stdout == ""


def test_require_trusted(project: tuple[Path, Path, Path], dev_keys: DevKeyPaths) -> None:
    root, signed, stripped = project
    anchors = dev_keys.ca_certificate
    plain = _cli("verify", signed, stripped, cwd=root)
    assert plain.returncode == 0
    untrusted = _cli("verify", signed, "--require", "trusted", cwd=root)
    assert untrusted.returncode == 1  # no anchors: valid_untrusted does not meet it
    both = (
        "verify",
        "--json",
        signed,
        stripped,
        "--trust-anchors",
        anchors,
        "--require",
        "trusted",
    )
    result = _cli(*both, cwd=root)
    assert result.returncode == 1
    assert [r["meets_requirement"] for r in json.loads(result.stdout)] == [True, False]
    accepted = _cli(*both, "--accept", "known_stripped,synthetic_duplicate", cwd=root)
    assert accepted.returncode == 0, accepted.stdout
    refused = _cli(*both, "--accept", "tampered", cwd=root)
    assert refused.returncode == 2
    assert "cannot accept tampered" in refused.stderr


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file names must be UTF-8")
def test_json_is_valid_utf8_for_any_file_name(
    project: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, signed, _ = project
    folder = tmp_path / "names"
    folder.mkdir()
    raw_name = os.fsencode(folder) + b"/bad\xff\xfe.png"
    with open(raw_name, "wb") as out:  # noqa: PTH123 - a bytes path
        out.write(signed.read_bytes())
    result = run_cli("verify", "--json", folder)  # its stdout decoded as strict UTF-8
    rows = json.loads(result.stdout)
    (row,) = rows
    assert base64.b64decode(row["path_bytes"]) == raw_name
    assert "\ufffd" in row["path"]
    assert row["verdict"] == "valid_untrusted"
