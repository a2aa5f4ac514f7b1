"""Schema version 1 -> 2: an old inventory is upgraded in place, nothing lost."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from benchmarks import _tamper

from provenance._core import phash
from provenance.audit import AUDIT_SCHEMA_V1
from provenance.errors import InventoryError, SchemaVersionError
from provenance.inventory import SCHEMA_VERSION, Inventory
from provenance.inventory._schema import _INVENTORY_SCHEMA_V1
from tests.conftest import SAMPLE_MEDIA, run_cli
from tests.integration.test_inventory import NOW, fake_result


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()  # noqa: S608
            for table in ("signers", "assets", "files", "audit", "audit_checkpoints")
        }
    finally:
        conn.close()


def make_v1(path: Path, tmp_path: Path) -> None:
    """A schema-1 inventory with 25 assets, as the previous release wrote it."""
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _INVENTORY_SCHEMA_V1 + AUDIT_SCHEMA_V1:
        conn.execute(statement)
    audit_columns = "seq, entry_hash, at, algorithm, signature_b64, certificate_chain_json"
    conn.execute("PRAGMA user_version = 1")
    conn.execute("PRAGMA application_id = 1347571542")
    conn.close()
    # Fill it through a connection that sees version 1: the migration runs on
    # open, so record with a fresh v2 inventory in a copy and move its v1 rows over.
    donor = tmp_path / "donor.sqlite"
    with Inventory(donor) as inv:
        inv.record_many([fake_result(i) for i in range(25)], signer="CN=test", now=NOW)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("ATTACH DATABASE ? AS donor", (str(donor),))
    conn.execute("BEGIN")
    for table in ("signers", "assets", "files", "audit"):
        conn.execute(f"INSERT INTO main.{table} SELECT * FROM donor.{table}")  # noqa: S608
    conn.execute(
        f"INSERT INTO main.audit_checkpoints SELECT {audit_columns} "  # noqa: S608
        "FROM donor.audit_checkpoints"
    )
    conn.execute("COMMIT")
    conn.execute("DETACH DATABASE donor")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "perceptual_hashes" not in tables
    conn.close()


def test_v1_database_is_migrated_to_v2_without_losing_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    make_v1(path, tmp_path)
    before = dump(path)

    # A read-only open refuses to work on an old schema and changes nothing.
    with pytest.raises(SchemaVersionError, match="must be upgraded") as caught:
        Inventory(path, read_only=True)
    assert (caught.value.found, caught.value.supported) == (1, SCHEMA_VERSION)

    with Inventory(path) as inv:
        assert inv.stats().schema_version == SCHEMA_VERSION >= 3
        assert inv.stats().assets == 25
        assert inv.audit.verify().ok
        entry = inv.get(fake_result(3).asset_id)
        assert entry is not None and entry.record == fake_result(3).record
        # The new table works on the migrated database.
        words = np.arange(2 * phash.WORDS, dtype=np.uint64).reshape(2, phash.WORDS)
        added = inv.add_perceptual(
            entry.asset_id,
            phash.ReferenceHashes(words=words, variants=("a", "b"), descriptor=b"d"),
        )
        assert added == 2
        found = inv.find_perceptual(words[1], scheme=phash.SCHEME, max_distance=0)
        assert [(m.asset.asset_id, m.variant, m.descriptor) for m in found] == [
            (entry.asset_id, "b", b"d")
        ]
        # Idempotent.
        assert (
            inv.add_perceptual(
                entry.asset_id,
                phash.ReferenceHashes(words=words, variants=("a", "b"), descriptor=b"d"),
            )
            == 0
        )
    after = dump(path)
    # Every old row is kept; the audit log only grew (the perceptual rows' binding
    # entry) and the checkpoints gained the log_key column (NULL for old ones).
    assert {t: after[t] for t in ("signers", "assets", "files")} == {
        t: before[t] for t in ("signers", "assets", "files")
    }
    assert after["audit"][: len(before["audit"])] == before["audit"]
    assert [r[:6] for r in after["audit_checkpoints"]] == before["audit_checkpoints"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_add_perceptual_refuses_unknown_assets_and_bad_shapes(tmp_path: Path) -> None:
    with Inventory(tmp_path / "inv.sqlite") as inv:
        inv.record_signing(fake_result(0), signer="CN=test", now=NOW)
        words = np.zeros((2, phash.WORDS), np.uint64)
        with pytest.raises(InventoryError, match="no asset"):
            inv.add_perceptual(
                "nope", phash.ReferenceHashes(words=words, variants=("a", "b"), descriptor=b"")
            )
        with pytest.raises(InventoryError, match="one variant name per row"):
            inv.add_perceptual(
                fake_result(0).asset_id,
                phash.ReferenceHashes(words=words, variants=("a",), descriptor=b""),
            )
        with pytest.raises(InventoryError, match="scheme name"):
            inv.perceptual_index("../etc")
        assert len(inv.perceptual_index(phash.SCHEME)) == 0


def test_cli_verify_upgrades_an_old_inventory_once_then_reads_it(tmp_path: Path) -> None:
    """verify opens inventories read-only; an old one is migrated first, not refused."""
    path = tmp_path / "old.sqlite"
    make_v1(path, tmp_path)
    before = dump(path)
    done = run_cli("verify", "--json", "--inventory", path, SAMPLE_MEDIA / "forest-path.jpg")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["verdict"] == "no_provenance"
    assert dump(path) == before
    with Inventory(path, read_only=True) as inv:
        assert inv.stats().schema_version == SCHEMA_VERSION


def test_record_many_stores_perceptual_hashes_in_the_same_transaction(tmp_path: Path) -> None:
    words = np.arange(2 * phash.WORDS, dtype=np.uint64).reshape(2, phash.WORDS)
    good = phash.ReferenceHashes(words=words, variants=("a", "b"), descriptor=b"d")
    bad = phash.ReferenceHashes(words=words, variants=("a",), descriptor=b"")
    with Inventory(tmp_path / "inv.sqlite") as inv:
        # A malformed hash array refuses the whole batch: no file without its hashes.
        with pytest.raises(InventoryError, match="one variant name per row"):
            inv.record_many(
                [fake_result(0), fake_result(1)], signer="CN=test", now=NOW, perceptual=[good, bad]
            )
        assert inv.stats().assets == 0
        with pytest.raises(InventoryError, match="one entry per result"):
            inv.record_many([fake_result(0)], signer="CN=test", now=NOW, perceptual=[])
        inv.record_many(
            [fake_result(0), fake_result(1)], signer="CN=test", now=NOW, perceptual=[good, None]
        )
        assert inv.stats().assets == 2
        found = inv.find_perceptual(words[1], scheme=phash.SCHEME, max_distance=0)
        assert [(m.asset.asset_id, m.variant, m.descriptor) for m in found] == [
            (fake_result(0).asset_id, "b", b"d")
        ]
        assert inv.audit.verify().ok


def test_audit_verify_upgrades_an_old_inventory_and_says_what_is_not_bound(
    tmp_path: Path,
) -> None:
    """An inventory written before row binding: migrated once, then verified with a note."""
    path = tmp_path / "old.sqlite"
    make_v1(path, tmp_path)
    # Its entries as the previous release wrote them: no row hashes.
    conn = _tamper.attacker(path)
    for seq, payload in conn.execute("SELECT seq, payload FROM audit").fetchall():
        body = {k: v for k, v in json.loads(payload).items() if not k.startswith("row_")}
        conn.execute("UPDATE audit SET payload = ? WHERE seq = ?", (json.dumps(body), seq))
    _tamper.rechain(conn)
    for statement in AUDIT_SCHEMA_V1:
        if statement.startswith("CREATE TRIGGER"):
            conn.execute(statement)
    conn.close()
    done = run_cli("audit", "verify", "--inventory", path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not bound" in done.stdout
    with Inventory(path, read_only=True) as inv:
        assert inv.stats().schema_version == SCHEMA_VERSION
    # The red team's UPDATE on such an inventory: the old entries named the model.
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE assets SET model = 'a-camera' WHERE asset_pk = 3")
    conn.close()
    with Inventory(path, read_only=True) as inv:
        report = inv.audit.verify()
    assert [p.kind.value for p in report.problems] == ["fact_changed"]
