"""The command line, run as a user would: exit codes, JSON shapes, one-line errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from provenance._io.keys import DevKeyPaths
from tests.conftest import SAMPLE_MEDIA, run_cli


def run(
    *args: str | Path, cwd: Path | None = None, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """In this process, or (``process=True``) as ``python -m provenance`` in a new one."""
    return run_cli(*args, cwd=cwd, subprocess=process)


def test_keys_init_sign_verify_round_trip(tmp_path: Path) -> None:
    # Through real processes (the entry point, as a user runs it): keys init and verify;
    # a pool started by a real process is in test_batch_robustness and test_concurrency.
    keys = tmp_path / "keys"
    done = run("keys", "init", keys, process=True)
    assert done.returncode == 0, done.stderr
    assert "DEVELOPMENT" in done.stderr
    assert oct((keys / "signer.key").stat().st_mode & 0o777) == "0o600"
    again = run("keys", "init", keys)
    assert again.returncode == 2 and "already exist" in again.stderr

    out = tmp_path / "signed"
    signed = run("sign", SAMPLE_MEDIA, "--out", out, "--keys", keys, "--json")
    assert signed.returncode == 0, signed.stderr
    rows = json.loads(signed.stdout)
    assert len(rows) == len(list(out.iterdir())) >= 8
    assert all(r["asset_id"] and r["bytes_added"] > 0 for r in rows)

    verified = run("verify", out, "--trust-anchors", keys / "ca.pem", "--json", process=True)
    assert verified.returncode == 0, verified.stderr
    verdicts = json.loads(verified.stdout)
    assert [v["verdict"] for v in verdicts] == ["trusted"] * len(rows)
    for key in ("path", "verdict", "failure_codes", "active_manifest", "record"):
        assert all(key in v for v in verdicts)
    assert [Path(v["path"]).name for v in verdicts] == sorted(p.name for p in out.iterdir())

    untrusted = run("verify", out, "--json")
    assert {v["verdict"] for v in json.loads(untrusted.stdout)} == {"valid_untrusted"}

    table = run("verify", out, "--trust-anchors", keys / "ca.pem")
    assert table.returncode == 0 and "trusted" in table.stdout


def test_verify_exit_codes(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    out = tmp_path / "signed"
    assert (
        run(
            "sign", SAMPLE_MEDIA / "forest-path.jpg", "--out", out, "--keys", dev_keys.directory
        ).returncode
        == 0
    )
    target = out / "forest-path.jpg"
    data = bytearray(target.read_bytes())
    data[-300] ^= 0xFF
    target.write_bytes(bytes(data))
    tampered = run("verify", "--json", target, "--trust-anchors", dev_keys.ca_certificate)
    assert tampered.returncode == 1
    assert json.loads(tampered.stdout)[0]["verdict"] == "tampered"

    (tmp_path / "empty.jpg").write_bytes(b"")
    broken = run("verify", "--json", tmp_path / "empty.jpg", tmp_path / "missing.png")
    assert broken.returncode == 2
    rows = json.loads(broken.stdout)
    assert [r["verdict"] for r in rows] == ["error", "error"]
    assert "empty" in rows[0]["error"]
    assert "Traceback" not in broken.stderr

    plain = run("verify", SAMPLE_MEDIA / "kite-blue-sky.jpg", "--json")
    assert plain.returncode == 0
    assert json.loads(plain.stdout)[0]["verdict"] == "no_provenance"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sign", "x.jpg"], "give --out DIR"),
        (["verify", "x.jpg", "--trust-anchors", "nope.pem"], "cannot read trust anchors"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_sign_reports_bad_files_and_goes_on(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "good.jpg").write_bytes((SAMPLE_MEDIA / "forest-path.jpg").read_bytes())
    (src / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    record = SAMPLE_MEDIA / "forest-path.jpg.json"
    done = run(
        "sign",
        src,
        "--out",
        tmp_path / "out",
        "--keys",
        dev_keys.directory,
        "--record",
        record,
        "--json",
    )
    assert done.returncode == 2
    rows = json.loads(done.stdout)
    errors = [r for r in rows if "error" in r]
    assert len(errors) == 1 and "bad.png" in errors[0]["error"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.jpg"]


def test_sign_without_keys_explains(tmp_path: Path) -> None:
    done = run("sign", SAMPLE_MEDIA / "forest-path.jpg", "--out", tmp_path, cwd=tmp_path)
    assert done.returncode == 2
    assert "provenance keys init" in done.stderr


def test_pii_check(tmp_path: Path) -> None:
    record = json.loads((SAMPLE_MEDIA / "forest-path.jpg.json").read_text())
    clean = tmp_path / "clean.json"
    clean.write_text(json.dumps(record))
    assert run("pii-check", clean).returncode == 0
    record["prompt"] = "a path in the woods, call +44 20 7946 0958 or mail a.b@example.org"
    dirty = tmp_path / "dirty.json"
    dirty.write_text(json.dumps(record))
    done = run("pii-check", dirty, "--json")
    assert done.returncode == 1
    assert "example.org" not in done.stdout and "7946" not in done.stdout
    kinds = {k for f in json.loads(done.stdout)["fields"] for k in f["kinds"]}
    assert {"email", "phone"} <= kinds


def test_renditions_command(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    out = tmp_path / "signed"
    assert (
        run(
            "sign", SAMPLE_MEDIA / "forest-path.jpg", "--out", out, "--keys", dev_keys.directory
        ).returncode
        == 0
    )
    done = run(
        "renditions",
        out / "forest-path.jpg",
        "--sizes",
        "400x400,100x100",
        "--out",
        tmp_path / "r",
        "--keys",
        dev_keys.directory,
        "--json",
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [Path(r["path"]).name for r in rows] == [
        "forest-path-400x250.jpg",
        "forest-path-100x63.jpg",
    ]
    assert all(r["parent_sha256"] for r in rows)
    bad = run(
        "renditions",
        out / "forest-path.jpg",
        "--sizes",
        "big",
        "--out",
        tmp_path / "r",
        "--keys",
        dev_keys.directory,
    )
    assert bad.returncode == 2 and "WIDTHxHEIGHT" in bad.stderr
