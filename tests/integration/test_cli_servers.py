"""The CLI on a PostgreSQL or MariaDB inventory: the same commands, never a password."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenance._core.containers import BlockKind, strip
from provenance._io.keys import DevKeyPaths
from tests.conftest import SAMPLE_MEDIA, run_cli
from tests.servers import ThrowawayServer


@pytest.fixture(params=("postgresql", "mariadb"))
def server(request: pytest.FixtureRequest) -> ThrowawayServer:
    found: ThrowawayServer = request.getfixturevalue(f"{request.param}_server")
    return found


def _no_secret(server: ThrowawayServer, *texts: str) -> None:
    for text in texts:
        assert server.password not in text
        assert "Traceback" not in text


def test_sign_verify_trace_and_audit_through_a_server(
    server: ThrowawayServer, tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    url = server.new_database()
    env = {"PROVENANCE_INVENTORY": url}
    keys = ("--keys", str(dev_keys.directory))
    out = tmp_path / "signed"
    done = run_cli("sign", SAMPLE_MEDIA / "kite-blue-sky.jpg", "--out", out, *keys, env=env)
    assert done.returncode == 0, done.stderr
    signed = out / "kite-blue-sky.jpg"
    done = run_cli("renditions", signed, "--sizes", "300x300", "--out", out / "r", *keys, env=env)
    assert done.returncode == 0, done.stderr
    stats = run_cli("inventory", "stats", "--json", env=env)
    assert json.loads(stats.stdout)["assets"] == 2, stats.stderr
    # A copy whose metadata was stripped is still recognised through the server.
    stripped = tmp_path / "stripped.jpg"
    stripped.write_bytes(
        strip(signed.read_bytes(), {BlockKind.XMP, BlockKind.C2PA, BlockKind.EXIF})
    )
    verified = run_cli(
        "verify", stripped, "--trust-anchors", dev_keys.ca_certificate, "--json", env=env
    )
    row = json.loads(verified.stdout)[0]
    assert row["status"] == "known_stripped", verified.stdout
    assert row["inventory"].startswith(f"{server.kind}://provenance:***@127.0.0.1:")
    audit = run_cli("audit", "verify", "--json", *keys, env=env)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert json.loads(audit.stdout)["ok"] is True
    _no_secret(server, done.stdout, done.stderr, verified.stdout, audit.stdout, audit.stderr)


def test_a_wrong_password_is_one_line_and_exit_2(server: ThrowawayServer) -> None:
    url = server.new_database()
    wrong = url.replace(server.password, "not-the-password-42")
    done = run_cli("inventory", "stats", "--inventory", wrong)
    assert done.returncode == 2
    assert "wrong user name or password" in done.stderr
    assert "not-the-password-42" not in done.stderr + done.stdout
    _no_secret(server, done.stderr, done.stdout)


def test_migrate_from_sqlite_and_back(
    server: ThrowawayServer, tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    local = tmp_path / "inv.sqlite"
    keys = ("--keys", str(dev_keys.directory))
    done = run_cli(
        "sign", SAMPLE_MEDIA / "kite-blue-sky.jpg", "--out", tmp_path / "s", *keys,
        "--inventory", local,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    url = server.new_database()
    moved = run_cli("inventory", "migrate", local, url, "--json")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    report = json.loads(moved.stdout)
    assert report["ok"] is True
    assert report["source_counts"] == report["target_counts"]
    assert report["copied"]["assets"] == 1
    back = run_cli("inventory", "migrate", url, tmp_path / "back.sqlite")
    assert back.returncode == 0, back.stdout + back.stderr
    again = run_cli("inventory", "migrate", local, url)
    assert again.returncode == 2
    assert "not empty" in again.stderr
    _no_secret(server, moved.stdout, back.stdout, again.stderr)


def test_a_batch_with_two_workers_uses_the_server(
    server: ThrowawayServer, tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    url = server.new_database()
    env = {"PROVENANCE_INVENTORY": url}
    keys = ("--keys", str(dev_keys.directory))
    out = tmp_path / "signed"
    done = run_cli("sign", SAMPLE_MEDIA, "--out", out, "--workers", "2", *keys, env=env)
    assert done.returncode == 0, done.stderr
    signed = sorted(p for p in out.iterdir() if p.suffix in {".jpg", ".webp", ".png"})
    assert len(signed) >= 3
    copies = tmp_path / "stripped"
    copies.mkdir()
    for path in signed:
        (copies / path.name).write_bytes(
            strip(path.read_bytes(), {BlockKind.XMP, BlockKind.C2PA, BlockKind.EXIF})
        )
    # The workers open the server themselves (read-only), with its credentials.
    verified = run_cli(
        "verify", copies, "--workers", "2", "--trust-anchors", dev_keys.ca_certificate,
        "--json", env=env,
    )  # fmt: skip
    rows = json.loads(verified.stdout)
    assert {row["status"] for row in rows} == {"known_stripped"}, verified.stdout
    assert len(rows) == len(signed)
    _no_secret(server, done.stdout, done.stderr, verified.stdout, verified.stderr)


def test_a_foreign_or_newer_database_is_exit_2_and_left_alone(
    server: ThrowawayServer, tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    foreign = server.new_database()
    server.query(foreign, "CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    out = tmp_path / "out"
    done = run_cli(
        "sign", SAMPLE_MEDIA / "kite-blue-sky.jpg", "--out", out,
        "--keys", dev_keys.directory, "--inventory", foreign,
    )  # fmt: skip
    assert not out.exists() or not any(out.iterdir())
    assert done.returncode == 2
    assert "not a provenance inventory" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    schema = "current_schema()" if server.kind == "postgresql" else "DATABASE()"
    tables = server.query(
        foreign,
        f"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = {schema}",  # noqa: S608 - constant
    )
    assert tables == [(1,)]
    newer = server.new_database()
    assert run_cli("inventory", "list", "--inventory", newer).returncode == 2  # empty: refused
    server.query(newer, "CREATE TABLE provenance_meta (name VARCHAR(64) PRIMARY KEY, value TEXT)")
    server.query(
        newer,
        "INSERT INTO provenance_meta VALUES ('application', 'provenance.inventory'), "
        "('schema_version', '99'), ('writer', '')",
    )
    stats = run_cli("inventory", "stats", "--inventory", newer)
    assert stats.returncode == 2
    assert "newer than this provenance supports" in stats.stderr
    assert server.query(newer, "SELECT COUNT(*) FROM provenance_meta") == [(3,)]
    _no_secret(server, done.stderr, stats.stderr)
