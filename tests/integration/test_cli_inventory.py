"""inventory, audit and trace on the command line, with the default inventory."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from provenance._core.containers import BlockKind, strip
from provenance._io.keys import DevKeyPaths
from tests.conftest import SAMPLE_MEDIA, run_cli


@pytest.fixture
def shop(tmp_path: Path, dev_keys: DevKeyPaths) -> tuple[dict[str, str], Path]:
    """An inventory with one original and two renditions, made through the CLI."""
    env = {"PROVENANCE_INVENTORY": str(tmp_path / "inv.sqlite")}
    out = tmp_path / "signed"
    keys = ("--keys", str(dev_keys.directory))
    done = run_cli("sign", SAMPLE_MEDIA / "kite-blue-sky.jpg", "--out", out, *keys, env=env)
    assert done.returncode == 0, done.stderr
    done = run_cli(
        "renditions",
        out / "kite-blue-sky.jpg",
        "--sizes",
        "600x600,150x150",
        "--out",
        out / "r",
        *keys,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return env, out


def test_inventory_list_stats_export(
    shop: tuple[dict[str, str], Path], tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    env, _ = shop
    listed = json.loads(run_cli("inventory", "list", "--json", env=env).stdout)
    assert len(listed) == 3
    assert sum(1 for a in listed if a["parent_asset_id"]) == 2
    stats = json.loads(run_cli("inventory", "stats", "--json", env=env).stdout)
    assert stats["assets"] == 3 and stats["renditions"] == 2
    export = tmp_path / "export.json"
    done = run_cli("inventory", "export", export, "--keys", dev_keys.directory, "--json", env=env)
    assert done.returncode == 0, done.stderr
    document = json.loads(export.read_text())
    assert len(document["assets"]) == 3
    assert document["audit_checkpoint"]["signature"]
    csv_done = run_cli(
        "inventory", "export", tmp_path / "export.csv", "--keys", dev_keys.directory, env=env
    )
    assert csv_done.returncode == 0, csv_done.stderr
    assert (tmp_path / "export.csv.checkpoint.json").exists()


def test_audit_verify_detects_an_edited_entry(
    shop: tuple[dict[str, str], Path], tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    env, _ = shop
    export = tmp_path / "export.json"
    exported = run_cli("inventory", "export", export, "--keys", dev_keys.directory, env=env)
    assert exported.returncode == 0
    ok = run_cli("audit", "verify", "--against", export, "--json", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    database = env["PROVENANCE_INVENTORY"]
    with sqlite3.connect(database) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        table = next(t for t in tables if "audit" in t and "checkpoint" not in t)
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        payload = next(c for c in columns if "payload" in c)
        # An attacker with the file drops the append-only triggers first.
        for (trigger,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'"):
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute(f"UPDATE {table} SET {payload} = '{{}}' WHERE seq = 2")  # noqa: S608
    conn.close()
    bad = run_cli("audit", "verify", "--json", env=env)
    assert bad.returncode == 1
    problems = json.loads(bad.stdout)["problems"]
    assert problems and problems[0]["seq"] == 2


def test_trace_stripped_rendition(shop: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    env, out = shop
    rendition = next((out / "r").glob("*-150x*.jpg"))
    (from_file,) = json.loads(run_cli("trace", rendition, "--json", env=env).stdout)
    assert from_file["found_by"] == "manifest"
    assert len(from_file["lineage"]) == 2
    stripped = tmp_path / "scraped.jpg"
    stripped.write_bytes(strip(rendition.read_bytes(), frozenset(BlockKind)))
    done = run_cli("trace", stripped, "--json", env=env)
    assert done.returncode == 0, done.stderr
    (traced,) = json.loads(done.stdout)
    assert traced["verdict"] == "known_stripped"
    assert traced["found_by"] == "essence"
    assert [s["asset_id"] for s in traced["lineage"]] == [
        s["asset_id"] for s in from_file["lineage"]
    ]
    tree = run_cli("trace", stripped, env=env)
    assert "[original]" in tree.stdout
    unknown = run_cli("trace", SAMPLE_MEDIA / "forest-path.jpg", env=env)
    assert unknown.returncode == 1


def test_verify_uses_the_default_inventory(
    shop: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, out = shop
    stripped = tmp_path / "cdn.jpg"
    stripped.write_bytes(strip((out / "kite-blue-sky.jpg").read_bytes(), frozenset(BlockKind)))
    verdict = json.loads(run_cli("verify", stripped, "--json", env=env).stdout)[0]
    assert verdict["verdict"] == "known_stripped"
    missing = run_cli("verify", stripped, "--inventory", tmp_path / "none.sqlite", env=env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
