"""Keypoint rows bound to the audit chain (issue 21): changed, removed and added rows are found."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from benchmarks import _tamper

from provenance._core import keypoints
from provenance._io.keys import SigningKey
from provenance.audit import AuditEvent, ProblemKind
from provenance.errors import InventoryError
from provenance.inventory import Inventory
from tests.conftest import run_cli
from tests.integration.test_audit_binding import Media, attacker, signed_inventory

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


def report_of(path: Path) -> tuple[list[ProblemKind], list[str], list[str]]:
    with Inventory(path, create=False, read_only=True) as inv:
        report = inv.audit.verify()
    return (
        [p.kind for p in report.problems],
        [p.detail for p in report.problems],
        list(report.notes),
    )


def features(seed: int) -> keypoints.LocalFeatures:
    rng = np.random.default_rng(seed)
    return keypoints.LocalFeatures(
        points=rng.random((50, 2), dtype=np.float32) * 300,
        descriptors=rng.integers(0, 256, (50, 32), dtype=np.uint8),
        width=384,
        height=384,
        scale=1.0,
        colour=np.zeros((16, 16, 3), np.uint8),
        angles=np.zeros(50, np.float32),
    )


def test_signing_binds_each_keypoint_row_and_a_clean_log_verifies(
    tmp_path: Path, media: Media, signing_key: SigningKey
) -> None:
    path = signed_inventory(tmp_path, media, signing_key)
    with Inventory(path, create=False, read_only=True) as inv:
        entries = list(inv.audit.entries())
        report = inv.audit.verify()
    assert report.ok, report.problems
    bound = [e for e in entries if "row_keypoints" in e.payload]
    assert {e.event for e in bound} == {AuditEvent.SIGNED}  # in the entry of the file
    signed = {e.asset_id for e in entries if e.event is AuditEvent.SIGNED}
    assert {e.asset_id for e in bound} == signed
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT COUNT(*) FROM keypoint_features").fetchone()[0]
        mark = conn.execute(
            "SELECT value FROM audit_meta WHERE name = 'bound_from_keypoint_pk'"
        ).fetchone()
    conn.close()
    assert rows == len(signed) == 3 and mark == (1,)


def test_a_batch_binds_keypoint_rows_in_the_entry_that_records_the_file(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite"
    results = [_tamper.fake_result(i) for i in range(3)]
    with Inventory(path) as inv:
        inv.record_many(
            results, signer="CN=batch", now=NOW, keypoints=[features(0), None, features(2)]
        )
        entries = list(inv.audit.entries())
        assert inv.audit.verify().ok
    with_rows = {e.asset_id for e in entries if "row_keypoints" in e.payload}
    assert with_rows == {results[0].asset_id, results[2].asset_id}
    assert all(e.event is AuditEvent.SIGNED for e in entries)
    conn = attacker(path)
    conn.execute(
        "UPDATE keypoint_features SET features = CAST(features || x'00' AS BLOB) WHERE asset_pk = 3"
    )
    conn.close()
    kinds, details, _ = report_of(path)
    assert kinds == [ProblemKind.FACT_CHANGED]
    assert f"keypoint row 2 of asset {results[2].asset_id}" in details[0]


def test_keypoints_added_after_recording_are_bound_in_their_own_entry(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite"
    result = _tamper.fake_result(1)
    with Inventory(path) as inv:
        inv.record_many([result], signer="CN=batch", now=NOW)
        assert inv.add_keypoints(result.asset_id, features(1), scheme=keypoints.SCHEME, now=NOW)
        assert not inv.add_keypoints(result.asset_id, features(2), scheme=keypoints.SCHEME)
        entries = list(inv.audit.entries())
        assert inv.audit.verify().ok
    assert [e.event for e in entries] == [AuditEvent.SIGNED, AuditEvent.KEYPOINTS_ADDED]
    assert entries[1].asset_id == result.asset_id and "row_keypoints" in entries[1].payload
    conn = attacker(path)
    conn.execute("UPDATE keypoint_features SET scheme = 'orb256-v0'")
    conn.close()
    kinds, _, _ = report_of(path)
    assert sorted(k.value for k in kinds) == ["fact_missing", "fact_unbound"]


@pytest.mark.parametrize(
    ("sql", "kind", "named"),
    [
        (
            "UPDATE keypoint_features SET features = CAST("
            "substr(features, 1, 20) || x'ff' || substr(features, 22) AS BLOB) "
            "WHERE keypoint_pk = 2",
            ProblemKind.FACT_CHANGED,
            "keypoint row 2 of asset",
        ),
        ("DELETE FROM keypoint_features WHERE keypoint_pk = 1", ProblemKind.FACT_MISSING, "gone"),
        (
            "INSERT INTO keypoint_features (asset_pk, scheme, features) "
            "SELECT asset_pk, 'orb256-v0', features FROM keypoint_features WHERE keypoint_pk = 3",
            ProblemKind.FACT_UNBOUND,
            "keypoint row 4 of asset",
        ),
    ],
)
def test_a_changed_removed_or_added_keypoint_row_is_found(
    sql: str,
    kind: ProblemKind,
    named: str,
    tmp_path: Path,
    media: Media,
    signing_key: SigningKey,
) -> None:
    path = signed_inventory(tmp_path, media, signing_key)
    conn = attacker(path)
    conn.execute(sql)
    conn.close()
    kinds, details, _ = report_of(path)
    assert kinds == [kind]
    assert named in details[0]


def test_the_cli_audit_verify_fails_naming_a_tampered_keypoint_row(
    tmp_path: Path, media: Media, signing_key: SigningKey
) -> None:
    path = signed_inventory(tmp_path, media, signing_key)
    clean = run_cli("audit", "verify", "--inventory", path, "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    conn = attacker(path)
    conn.execute("UPDATE keypoint_features SET features = zeroblob(100) WHERE keypoint_pk = 1")
    conn.close()
    done = run_cli("audit", "verify", "--inventory", path, "--json")
    assert done.returncode == 1, done.stdout
    problems = json.loads(done.stdout)["problems"]
    assert [p["kind"] for p in problems] == ["fact_changed"]
    assert "keypoint row 1 of asset" in problems[0]["detail"]


def test_keypoint_rows_stored_before_binding_verify_as_legacy(
    tmp_path: Path, media: Media, signing_key: SigningKey
) -> None:
    """An inventory of the previous release: keypoint rows, no binding, no mark."""
    path = signed_inventory(tmp_path, media, signing_key)
    conn = attacker(path)
    conn.execute("DROP TRIGGER audit_meta_no_delete")
    conn.execute("DELETE FROM audit_meta WHERE name = 'bound_from_keypoint_pk'")
    for seq, payload in conn.execute("SELECT seq, payload FROM audit").fetchall():
        body = json.loads(payload)
        body.pop("row_keypoints", None)
        body.pop("keypoint_scheme", None)
        conn.execute("UPDATE audit SET payload = ? WHERE seq = ?", (json.dumps(body), seq))
    conn.execute("DELETE FROM audit_checkpoints")
    conn.execute("DELETE FROM audit WHERE event = 'checkpoint'")
    _tamper.rechain(conn)
    conn.close()
    kinds, _, notes = report_of(path)
    assert kinds == []
    assert any(n.startswith("3 keypoint rows were stored before") for n in notes), notes
    # A new row is bound and marks where binding began: the old rows stay legacy.
    with Inventory(path) as inv:
        inv.record_many([_tamper.fake_result(7)], signer="CN=b", now=NOW, keypoints=[features(9)])
    kinds, _, notes = report_of(path)
    assert kinds == [] and any(n.startswith("3 keypoint rows") for n in notes), notes
    conn = attacker(path)
    conn.execute("UPDATE keypoint_features SET features = zeroblob(9) WHERE keypoint_pk = 4")
    conn.execute("UPDATE keypoint_features SET features = zeroblob(9) WHERE keypoint_pk = 1")
    conn.close()
    kinds, details, _ = report_of(path)
    assert kinds == [ProblemKind.FACT_CHANGED] and "keypoint row 4" in details[0]


def test_keypoint_rows_are_bound_indexed_and_reconciled_on_every_backend(
    inventory_url: str,
) -> None:
    results = [_tamper.fake_result(i, salt="backend") for i in range(3)]
    with Inventory(inventory_url) as inv:
        inv.record_many(results[:2], signer="CN=b", now=NOW, keypoints=[features(0), features(1)])
        inv.record_many(results[2:], signer="CN=b", now=NOW)
        assert inv.add_keypoints(results[2].asset_id, features(2), scheme=keypoints.SCHEME)
        index = inv.keypoint_index(keypoints.SCHEME)
        [(key, votes)] = index.candidates(features(2), k=1)
        [(entry, _)] = inv.keypoint_features([key])
        assert entry.asset_id == results[2].asset_id and votes == 50
        report = inv.audit.verify()
        assert report.ok, report.problems
        assert report.facts_checked >= 9  # 3 assets, 3 files, 3 keypoint rows
        events = [e.event for e in inv.audit.entries()]
    assert events.count(AuditEvent.KEYPOINTS_ADDED) == 1


def test_a_keypoint_mark_written_by_a_rolled_back_batch_is_written_again(tmp_path: Path) -> None:
    """The handle remembers the mark only once a commit stored it (issue 20)."""
    path = tmp_path / "inv.sqlite"
    clash = _tamper.fake_result(1)
    with Inventory(path) as inv:
        inv.record_many([clash], signer="CN=b", now=NOW)
        taken = dataclasses.replace(_tamper.fake_result(2), asset_id=clash.asset_id)
        with pytest.raises(InventoryError, match="recorded with essence"):
            inv.record_many(
                [_tamper.fake_result(3), taken],
                signer="CN=b",
                now=NOW,
                keypoints=[features(3), None],
            )

        def rolled_back(conn: sqlite3.Connection) -> None:
            inv.record_many(  # joins the caller's transaction, which is then undone
                [_tamper.fake_result(4)], signer="CN=b", now=NOW, keypoints=[features(4)]
            )
            raise RuntimeError("the caller's transaction fails")

        with pytest.raises(RuntimeError):
            inv.audit.write(rolled_back)
        inv.record_many([_tamper.fake_result(5)], signer="CN=b", now=NOW, keypoints=[features(5)])
        inv.record_many([_tamper.fake_result(6)], signer="CN=b", now=NOW, keypoints=[features(6)])
        assert inv.audit.verify().ok
    with sqlite3.connect(path) as conn:
        mark = conn.execute(
            "SELECT value FROM audit_meta WHERE name = 'bound_from_keypoint_pk'"
        ).fetchall()
        keys = conn.execute("SELECT keypoint_pk FROM keypoint_features").fetchall()
    conn.close()
    assert mark == [(1,)] and keys == [(1,), (2,)]
