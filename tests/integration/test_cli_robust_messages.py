"""CLI behaviour found by the red team (issues 15, 19): messages and a tampered report."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from provenance._io.keys import DevKeyPaths
from tests.conftest import SAMPLE_MEDIA, run_cli


@pytest.mark.parametrize(
    "command",
    [
        ("verify", str(SAMPLE_MEDIA / "forest-path.jpg")),
        ("audit", "verify"),
        ("serve", "--port", "0"),
    ],
    ids=["verify", "audit-verify", "serve"],
)
def test_a_missing_inventory_names_the_flag_not_create_true(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.sqlite"
    done = run_cli(*command, "--inventory", missing, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"provenance: error: {missing}: no inventory here")
    assert "create=True" not in done.stderr
    assert "--inventory" in done.stderr and "PROVENANCE_INVENTORY" in done.stderr
    assert not missing.exists()


def test_report_on_a_tampered_inventory_fails_and_takes_no_checkpoint(
    tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    inv = tmp_path / "inv.sqlite"
    signed = tmp_path / "signed"
    keys = ("--keys", dev_keys.directory)
    done = run_cli(
        "sign", SAMPLE_MEDIA / "forest-path.jpg", "--out", signed, *keys, "--inventory", inv
    )
    assert done.returncode == 0, done.stderr
    # A clean log: the report exits 0 and takes a checkpoint.
    clean = run_cli("report", signed, "--inventory", inv, *keys, "-o", tmp_path / "ok.json")
    assert clean.returncode == 0, clean.stderr
    assert json.loads((tmp_path / "ok.json").read_text("utf-8"))["audit_checkpoint"] is not None
    with sqlite3.connect(inv) as db:
        db.execute("update assets set model='gpt-fake' where asset_pk=1")
        entries = db.execute("select count(*) from audit").fetchone()[0]
        checkpoints = db.execute("select count(*) from audit_checkpoints").fetchone()[0]
    db.close()
    out = (tmp_path / "r.json", tmp_path / "r.html")
    report = run_cli("report", signed, "--inventory", inv, *keys, "-o", out[0], "-o", out[1])
    assert report.returncode == 1, report.stderr
    assert "the audit log failed verification" in report.stderr
    assert "no checkpoint" in report.stderr
    written = json.loads(out[0].read_text("utf-8"))
    assert written["audit_checkpoint"] is None
    assert written["scope"]["audit_chain_verified"] is False
    with sqlite3.connect(inv) as db:
        assert db.execute("select count(*) from audit").fetchone()[0] == entries
        assert db.execute("select count(*) from audit_checkpoints").fetchone()[0] == checkpoints
    db.close()
