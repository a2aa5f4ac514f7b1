"""The SQLite inventory and its audit log, on files really signed from sample_media."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import multiprocessing
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image

from provenance import sign, verify
from provenance._core.containers import BlockKind, strip
from provenance._core.hashing import essence_hash
from provenance._core.record import DigitalSourceType, ParentRef, ProvenanceRecord
from provenance._core.types import SignResult
from provenance._io.keys import SigningKey, TrustPolicy
from provenance.audit import AuditEvent, Checkpoint, ProblemKind
from provenance.errors import InventoryError, OutputError, SchemaVersionError
from provenance.inventory import SCHEMA_VERSION, AssetEntry, Inventory
from tests.conftest import fresh_python, sample_record

Media = Callable[[str], Path]
NOW = datetime.now(timezone.utc).replace(microsecond=0)


@dataclasses.dataclass
class Catalogue:
    """An original, two renditions of it, and a rendition of the first rendition."""

    original: SignResult
    r1: SignResult
    r2: SignResult
    r3: SignResult
    original_src: Path

    @property
    def all(self) -> list[SignResult]:
        return [self.original, self.r1, self.r2, self.r3]


def _rendition(src: Path, dst: Path, size: tuple[int, int]) -> Path:
    with Image.open(src) as image:
        image.convert("RGB").resize(size).save(dst, "JPEG", quality=80)
    return dst


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory, signing_key: SigningKey) -> Catalogue:
    folder = tmp_path_factory.mktemp("catalogue")
    name = "forest-path.jpg"
    src = folder / name
    shutil.copyfile(Path(__file__).resolve().parents[2] / "sample_media" / name, src)
    record = sample_record(name)
    signed = folder / "signed-original.jpg"
    original = sign(src, signed, record=record, key=signing_key, now=NOW)
    results = []
    for label, size, parent in (("r1", (400, 300), signed), ("r2", (160, 120), signed)):
        raw = _rendition(signed, folder / f"{label}.jpg", size)
        out = folder / f"signed-{label}.jpg"
        results.append(sign(raw, out, record=record, key=signing_key, parent=parent, now=NOW))
    raw3 = _rendition(folder / "signed-r1.jpg", folder / "r3.jpg", (200, 150))
    r3 = sign(
        raw3,
        folder / "signed-r3.jpg",
        record=record,
        key=signing_key,
        parent=folder / "signed-r1.jpg",
        now=NOW,
    )
    return Catalogue(original, results[0], results[1], r3, src)


@pytest.fixture
def inv(tmp_path: Path) -> Iterator[Inventory]:
    with Inventory(tmp_path / "inventory.sqlite") as inventory:
        yield inventory


def _record_all(inv: Inventory, cat: Catalogue, signer: str) -> list[AssetEntry]:
    entries = [inv.record_signing(r, signer=signer, now=NOW) for r in cat.all]
    return entries


# --- synthetic SignResults (no image signing) ---------------------------------------


def fake_result(
    i: int, *, parent: SignResult | None = None, salt: str = "", model: str = "sdxl"
) -> SignResult:
    """A SignResult with made-up hashes and a real, valid ProvenanceRecord."""

    def digest(kind: str) -> str:
        return hashlib.sha256(f"{salt}:{kind}:{i}".encode()).hexdigest()

    parents: tuple[ParentRef, ...] = ()
    if parent is not None:
        parents = (ParentRef(parent.sha256_hex, parent.essence_sha256_hex, parent.asset_id),)
    record = ProvenanceRecord(
        generator="studio-batch 2.1",
        model=model,
        model_version="1.0",
        digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA,
        created_at=NOW,
        parameters={"seed": i, "steps": 30},
        parents=parents,
    )
    essence = digest("essence")
    return SignResult(
        path=f"/catalogue/{salt}{i}.jpg",
        asset_id=str(uuid.uuid5(uuid.NAMESPACE_OID, essence)),
        sha256_hex=digest("file"),
        essence_sha256_hex=essence,
        input_sha256_hex=digest("input"),
        bytes_added=9000,
        active_manifest=f"urn:c2pa:{uuid.uuid5(uuid.NAMESPACE_URL, essence)}",
        record=record,
        parent_sha256_hex=parent.sha256_hex if parent is not None else None,
    )


def filled(path: Path, n: int, **options: object) -> Inventory:
    inventory = Inventory(path, **options)  # type: ignore[arg-type]
    inventory.record_many([fake_result(i) for i in range(n)], signer="CN=test", now=NOW)
    return inventory


def raw(path: Path) -> sqlite3.Connection:
    """A plain SQLite connection, as an attacker or a careless tool would use."""
    return sqlite3.connect(path, isolation_level=None)


# --- recording and lookups -----------------------------------------------------------


def test_original_and_renditions_are_found_by_every_hash(
    inv: Inventory, catalogue: Catalogue, signing_key: SigningKey
) -> None:
    entries = _record_all(inv, catalogue, signing_key.subject)
    original = catalogue.original
    assert [e.asset_id for e in entries] == [r.asset_id for r in catalogue.all]

    found = inv.get(original.asset_id)
    assert found is not None
    assert found.essence_sha256_hex == original.essence_sha256_hex
    assert found.record == original.record
    assert found.signer == signing_key.subject
    assert found.parent_asset_id is None
    assert [f.sha256_hex for f in found.files] == [original.sha256_hex]
    assert found.files[0].path == original.path
    assert found.files[0].active_manifest == original.active_manifest
    assert found.first_signed_at == NOW.strftime("%Y-%m-%dT%H:%M:%SZ")

    assert inv.find_by_sha256(catalogue.r2.sha256_hex) == inv.get(catalogue.r2.asset_id)
    assert inv.find_by_sha256(original.sha256_hex.upper()) == found
    assert inv.find_by_sha256(original.input_sha256_hex) == found, "the unsigned input too"
    assert inv.find_by_essence(catalogue.r3.essence_sha256_hex) == inv.get(catalogue.r3.asset_id)
    assert inv.find_by_sha256("0" * 64) is None
    assert inv.find_by_essence("0" * 64) is None
    assert inv.get("no-such-asset") is None
    with pytest.raises(InventoryError, match="64 hex"):
        inv.find_by_sha256("abc")


def test_a_stripped_copy_is_found_by_its_essence(
    inv: Inventory, catalogue: Catalogue, signing_key: SigningKey
) -> None:
    """The known_stripped case: metadata removed, coded image data untouched."""
    _record_all(inv, catalogue, signing_key.subject)
    signed = Path(catalogue.original.path or "").read_bytes()
    stripped = strip(signed, frozenset(BlockKind))
    assert hashlib.sha256(stripped).hexdigest() != catalogue.original.sha256_hex
    assert inv.find_by_sha256(hashlib.sha256(stripped).hexdigest()) is None
    match = inv.find_by_essence(essence_hash(stripped))
    assert match is not None and match.asset_id == catalogue.original.asset_id


def test_lineage_goes_up_to_the_original_and_down_to_every_rendition(
    inv: Inventory, catalogue: Catalogue, signing_key: SigningKey
) -> None:
    _record_all(inv, catalogue, signing_key.subject)
    cat = catalogue
    assert inv.get(cat.r1.asset_id).parent_asset_id == cat.original.asset_id  # type: ignore[union-attr]
    assert inv.get(cat.r3.asset_id).parent_asset_id == cat.r1.asset_id  # type: ignore[union-attr]
    assert [a.asset_id for a in inv.ancestors(cat.r3.asset_id)] == [
        cat.r1.asset_id,
        cat.original.asset_id,
    ]
    assert inv.ancestors(cat.original.asset_id) == []
    assert [a.asset_id for a in inv.descendants(cat.original.asset_id)] == [
        cat.r1.asset_id,
        cat.r2.asset_id,
        cat.r3.asset_id,
    ]
    assert [a.asset_id for a in inv.descendants(cat.r1.asset_id)] == [cat.r3.asset_id]
    assert inv.descendants(cat.r3.asset_id) == []
    assert inv.ancestors("unknown") == [] and inv.descendants("unknown") == []


def test_renditions_recorded_before_their_original_are_linked_when_it_arrives(
    inv: Inventory, catalogue: Catalogue, signing_key: SigningKey
) -> None:
    cat = catalogue
    for result in (cat.r3, cat.r2, cat.r1, cat.original):
        inv.record_signing(result, signer=signing_key.subject, now=NOW)
    assert [a.asset_id for a in inv.ancestors(cat.r3.asset_id)] == [
        cat.r1.asset_id,
        cat.original.asset_id,
    ]
    assert inv.stats().renditions_without_parent == 0


def test_lineage_survives_a_loop_in_a_hand_edited_database(tmp_path: Path) -> None:
    path = tmp_path / "loop.sqlite"
    a = fake_result(1)
    b = fake_result(2, parent=a)
    with Inventory(path) as inv:
        inv.record_many([a, b], signer="CN=test", now=NOW)
    with raw(path) as conn:
        conn.execute(
            "UPDATE assets SET parent_pk = (SELECT asset_pk FROM assets WHERE asset_id = ?) "
            "WHERE asset_id = ?",
            (b.asset_id, a.asset_id),
        )
    conn.close()
    with Inventory(path) as inv:
        assert [x.asset_id for x in inv.ancestors(b.asset_id)] == [a.asset_id]
        assert [x.asset_id for x in inv.descendants(a.asset_id)] == [b.asset_id]


def test_re_signing_adds_a_file_and_recording_twice_changes_nothing(
    inv: Inventory, catalogue: Catalogue, signing_key: SigningKey, tmp_path: Path
) -> None:
    _record_all(inv, catalogue, signing_key.subject)
    again = sign(
        catalogue.original_src,
        tmp_path / "again.jpg",
        record=sample_record("forest-path.jpg"),
        key=signing_key,
        now=NOW + timedelta(hours=1),
    )
    assert again.asset_id == catalogue.original.asset_id
    entry = inv.record_signing(
        again, signer=signing_key.subject, now=NOW + timedelta(hours=1), source_path="in.jpg"
    )
    assert [f.sha256_hex for f in entry.files] == [catalogue.original.sha256_hex, again.sha256_hex]
    assert entry.files[1].source_path == "in.jpg"
    assert entry.files[1].record is None, "same record: not stored twice"
    seq = inv.stats().audit_entries
    assert inv.record_signing(again, signer=signing_key.subject, now=NOW) == entry
    assert inv.stats().audit_entries == seq
    assert inv.stats().files == 5


def test_a_re_sign_with_another_record_keeps_both(inv: Inventory) -> None:
    first = fake_result(1)
    corrected = dataclasses.replace(
        first,
        sha256_hex="e" * 64,
        record=first.record.replace(model_version="1.1"),
    )
    inv.record_signing(first, signer="CN=test", now=NOW)
    entry = inv.record_signing(corrected, signer="CN=test", now=NOW)
    assert entry.record.model_version == "1.0"
    assert entry.files[0].record is None
    assert entry.files[1].record is not None and entry.files[1].record.model_version == "1.1"
    assert entry.files[0].record_sha256_hex != entry.files[1].record_sha256_hex


def test_audit_log_records_each_signing(
    inv: Inventory, catalogue: Catalogue, signing_key: SigningKey
) -> None:
    _record_all(inv, catalogue, signing_key.subject)
    entries = list(inv.audit.entries())
    assert [e.event for e in entries] == [AuditEvent.SIGNED] + [AuditEvent.RENDITION_ADDED] * 3
    assert [e.asset_id for e in entries] == [r.asset_id for r in catalogue.all]
    assert entries[1].payload["parent_sha256"] == catalogue.original.sha256_hex
    assert entries[1].payload["parent_asset_id"] == catalogue.original.asset_id
    assert entries[0].payload["sha256"] == catalogue.original.sha256_hex
    assert all("path" not in e.payload for e in entries), "no paths in an append-only log"
    assert list(inv.audit.entries(asset_id=catalogue.r2.asset_id)) == [entries[2]]
    report = inv.audit.verify()
    assert report.ok and report.entries_checked == 4 and report.last_seq == 4


def test_a_verdict_is_logged_without_its_path(
    inv: Inventory, catalogue: Catalogue, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    _record_all(inv, catalogue, signing_key.subject)
    verdict = verify(catalogue.r2.path or "", trust=trust)
    entry = inv.record_verification(verdict, now=NOW)
    assert entry.event is AuditEvent.VERIFIED and entry.seq == 5
    assert entry.asset_id == catalogue.r2.asset_id
    assert entry.payload["status"] == "trusted"
    assert entry.payload["sha256"] == catalogue.r2.sha256_hex
    assert catalogue.r2.path not in json.dumps(dict(entry.payload))
    assert inv.audit.verify().ok


def test_stats(inv: Inventory, catalogue: Catalogue, signing_key: SigningKey) -> None:
    _record_all(inv, catalogue, signing_key.subject)
    inv.record_signing(fake_result(1, model="flux"), signer="CN=other", now=NOW)
    stats = inv.stats()
    record = catalogue.original.record
    assert (stats.assets, stats.files, stats.renditions) == (5, 5, 3)
    assert stats.renditions_without_parent == 0
    assert stats.synthetic == 5
    assert {m: dict(v) for m, v in stats.by_model.items()} == {
        record.model: {record.model_version: 4},
        "flux": {"1.0": 1},
    }
    assert dict(stats.by_digital_source_type) == {"trainedAlgorithmicMedia": 5}
    assert stats.audit_entries == 5
    assert stats.schema_version == SCHEMA_VERSION >= 3
    assert stats.db_bytes > 0
    assert stats.db_bytes == inv.path.stat().st_size or stats.db_bytes > 4096
    assert json.loads(json.dumps(stats.to_dict()))["by_model"]["flux"] == {"1.0": 1}


def test_assets_iterates_in_pages(tmp_path: Path) -> None:
    with filled(tmp_path / "inv.sqlite", 1203) as inv:
        ids = [a.asset_id for a in inv.assets()]
        assert ids == [fake_result(i).asset_id for i in range(1203)]
        assert [a.asset_id for a in inv.assets(limit=3, offset=600)] == ids[600:603]
        assert len(list(inv.assets(limit=1000, offset=500))) == 703
        assert list(inv.assets(limit=0)) == []


# --- exports ------------------------------------------------------------------------


def test_export_json_lists_every_asset_and_embeds_a_signed_checkpoint(
    inv: Inventory,
    catalogue: Catalogue,
    signing_key: SigningKey,
    trust: TrustPolicy,
    tmp_path: Path,
) -> None:
    _record_all(inv, catalogue, signing_key.subject)
    out = tmp_path / "export.json"
    checkpoint = inv.export_json(out, now=NOW, key=signing_key)
    doc = json.loads(out.read_text("utf-8"))
    assert doc["format"] == "provenance.inventory.export"
    assert doc["counts"] == {"assets": 4, "files": 4, "linked_renditions": 3}
    by_id = {a["asset_id"]: a for a in doc["assets"]}
    assert list(by_id) == [r.asset_id for r in catalogue.all]
    record = catalogue.original.record
    for result in catalogue.all:
        asset = by_id[result.asset_id]
        assert asset["model"] == record.model
        assert asset["model_version"] == record.model_version
        assert asset["digital_source_type"] == "trainedAlgorithmicMedia"
        assert asset["is_synthetic"] is True
        assert asset["essence_sha256"] == result.essence_sha256_hex
        assert [(f["path"], f["sha256"]) for f in asset["files"]] == [
            (result.path, result.sha256_hex)
        ]
        assert asset["files"][0]["signed_at"] == NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert by_id[catalogue.r3.asset_id]["parent_asset_id"] == catalogue.r1.asset_id
    assert by_id[catalogue.original.asset_id]["parent_asset_id"] is None

    embedded = Checkpoint.from_dict(doc["audit_checkpoint"])
    assert embedded == checkpoint
    assert embedded.signature_problem(trust=trust) is None
    exported = [e for e in inv.audit.entries() if e.event is AuditEvent.EXPORTED]
    assert len(exported) == 1 and exported[0].seq == checkpoint.seq
    assert exported[0].entry_hash == checkpoint.entry_hash
    assert exported[0].payload["assets"] == 4
    assert [c.seq for c in inv.audit.checkpoints()] == [checkpoint.seq]
    assert inv.audit.verify(against=embedded, trust=trust).ok


def test_export_csv_has_a_row_per_file_and_a_checkpoint_sidecar(
    inv: Inventory, catalogue: Catalogue, signing_key: SigningKey, tmp_path: Path
) -> None:
    _record_all(inv, catalogue, signing_key.subject)
    evil = fake_result(7)
    evil = dataclasses.replace(evil, path='=HYPERLINK("http://x")')
    inv.record_signing(evil, signer="CN=test", now=NOW)
    out = tmp_path / "export.csv"
    checkpoint = inv.export_csv(out, now=NOW)
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5
    first = rows[0]
    assert first["asset_id"] == catalogue.original.asset_id
    assert first["file_sha256"] == catalogue.original.sha256_hex
    assert first["path"] == catalogue.original.path
    assert first["model"] == catalogue.original.record.model
    assert first["model_version"] == catalogue.original.record.model_version
    assert first["digital_source_type"] == "trainedAlgorithmicMedia"
    assert first["parent_asset_id"] == ""
    assert rows[3]["parent_asset_id"] == catalogue.r1.asset_id
    assert rows[4]["path"].startswith("'="), "no formula injection into spreadsheets"
    sidecar = tmp_path / "export.csv.checkpoint.json"
    kept = Checkpoint.from_json(sidecar.read_text("utf-8"))
    assert kept == checkpoint and not kept.is_signed
    assert inv.audit.verify(against=kept).ok


def test_export_that_cannot_be_written_logs_nothing(inv: Inventory, tmp_path: Path) -> None:
    inv.record_signing(fake_result(1), signer="CN=test", now=NOW)
    with pytest.raises(OutputError):
        inv.export_json(tmp_path / "missing-folder" / "export.json", now=NOW)
    assert [e.event for e in inv.audit.entries()] == [AuditEvent.SIGNED]
    assert inv.audit.checkpoints() == []


# --- tampering ----------------------------------------------------------------------


def _drop_guards(conn: sqlite3.Connection) -> None:
    for name in (
        "audit_no_update",
        "audit_no_delete",
        "audit_checkpoints_no_update",
        "audit_checkpoints_no_delete",
    ):
        conn.execute(f"DROP TRIGGER {name}")


def test_the_log_refuses_casual_edits(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite"
    filled(path, 3).close()
    conn = raw(path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE audit SET payload = '{}' WHERE seq = 2")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM audit WHERE seq = 3")
    finally:
        conn.close()


def test_an_updated_audit_row_is_located(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite"
    filled(path, 10).close()
    conn = raw(path)
    _drop_guards(conn)
    conn.execute("UPDATE audit SET payload = json_set(payload, '$.model', 'other') WHERE seq = 4")
    conn.execute("UPDATE audit SET event = 'nonsense' WHERE seq = 7")
    conn.close()
    with Inventory(path) as inv:
        report = inv.audit.verify()
    assert not report.ok
    chain = [p for p in report.problems if p.kind is not ProblemKind.FACT_UNBOUND]
    assert [(p.kind, p.seq) for p in chain] == [
        (ProblemKind.EDITED, 4),
        (ProblemKind.EDITED, 7),
    ]
    assert "can no longer be decoded" in chain[1].detail
    # The rows those entries bound are no longer vouched for (asset and file each).
    unbound = [p for p in report.problems if p.kind is ProblemKind.FACT_UNBOUND]
    assert len(unbound) == 4


def test_a_deleted_audit_row_is_located(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite"
    filled(path, 10).close()
    conn = raw(path)
    _drop_guards(conn)
    conn.execute("DELETE FROM audit WHERE seq = 6")
    conn.close()
    with Inventory(path) as inv:
        report = inv.audit.verify()
    assert [(p.kind, p.seq) for p in report.problems] == [
        (ProblemKind.DELETED, 6),
        (ProblemKind.FACT_UNBOUND, 0),  # the asset and file entry 6 recorded
        (ProblemKind.FACT_UNBOUND, 0),
    ]


def test_a_cut_tail_is_found_through_the_stored_checkpoints(
    tmp_path: Path, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    path = tmp_path / "inv.sqlite"
    with filled(path, 12, checkpoint_key=signing_key, checkpoint_every=5) as inv:
        cps = inv.audit.checkpoints()
        assert [c.seq for c in cps] == [5, 10]
        assert all(c.is_signed for c in cps)
        entries = list(inv.audit.entries())
        assert entries[5].event is AuditEvent.CHECKPOINT
        assert inv.audit.verify(trust=trust).ok
        last = inv.audit.tail()
        assert last is not None and last.seq == 14
    conn = raw(path)
    _drop_guards(conn)
    conn.execute("DELETE FROM audit WHERE seq > 8")
    conn.close()
    with Inventory(path) as inv:
        report = inv.audit.verify(trust=trust)
    chain = [p for p in report.problems if p.kind is not ProblemKind.FACT_UNBOUND]
    assert [(p.kind, p.seq) for p in chain] == [(ProblemKind.TRUNCATED, 9)]
    # And the rows the cut entries recorded are stored without an entry.
    assert len(report.problems) - len(chain) == 10


def test_a_deleted_or_forged_checkpoint_is_found(tmp_path: Path, signing_key: SigningKey) -> None:
    path = tmp_path / "inv.sqlite"
    filled(path, 12, checkpoint_key=signing_key, checkpoint_every=5).close()
    conn = raw(path)
    _drop_guards(conn)
    conn.execute("DELETE FROM audit_checkpoints WHERE seq = 5")
    conn.execute("UPDATE audit_checkpoints SET entry_hash = ? WHERE seq = 10", ("a" * 64,))
    conn.close()
    with Inventory(path) as inv:
        report = inv.audit.verify()
    assert [(p.kind, p.seq) for p in report.problems] == [
        (ProblemKind.DELETED, 5),
        (ProblemKind.DELETED, 10),
        (ProblemKind.BAD_CHECKPOINT_SIGNATURE, 10),
    ]


def test_restoring_an_older_copy_is_found_against_an_exported_checkpoint(
    tmp_path: Path, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    path = tmp_path / "inv.sqlite"
    backup = tmp_path / "backup.sqlite"
    filled(path, 5).close()  # closed: the WAL is folded into the file
    shutil.copyfile(path, backup)
    with Inventory(path) as inv:
        inv.record_many([fake_result(i, salt="later") for i in range(5)], signer="CN=test", now=NOW)
        kept = inv.export_json(tmp_path / "export.json", now=NOW, key=signing_key)
    assert kept.seq == 11
    kept = Checkpoint.from_dict(
        json.loads((tmp_path / "export.json").read_text())["audit_checkpoint"]
    )

    shutil.copyfile(backup, path)  # the roll-back
    with Inventory(path) as inv:
        assert inv.audit.verify().ok, "the old copy is consistent in itself"
        report = inv.audit.verify(against=kept, trust=trust)
        assert [(p.kind, p.seq) for p in report.problems] == [(ProblemKind.TRUNCATED, 6)]
        # ... and once it is written on past the checkpoint, a different history:
        inv.record_many(
            [fake_result(i, salt="after-restore") for i in range(10)], signer="CN=test", now=NOW
        )
        report = inv.audit.verify(against=kept, trust=trust)
        assert [(p.kind, p.seq) for p in report.problems] == [(ProblemKind.ROLLED_BACK, 11)]


# --- opening: errors that say what is wrong -------------------------------------------


def test_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PROVENANCE_INVENTORY", raising=False)
    assert Inventory.default_path(tmp_path) == tmp_path / ".provenance" / "inventory.sqlite"
    monkeypatch.setenv("PROVENANCE_INVENTORY", str(tmp_path / "x.sqlite"))
    assert Inventory.default_path(tmp_path) == tmp_path / "x.sqlite"


def test_a_new_inventory_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / ".provenance" / "inventory.sqlite"
    with Inventory(path):
        pass
    assert (path.stat().st_mode & 0o777) == 0o600
    conn = raw(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()


def test_missing_file_without_create(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="no inventory here"):
        Inventory(tmp_path / "nothing.sqlite", create=False)
    assert not (tmp_path / "nothing.sqlite").exists()


@pytest.mark.parametrize("content", [b"hello, not a database" * 10, b"\xff\xd8\xff" + b"\0" * 600])
def test_a_file_that_is_not_sqlite(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "inventory.sqlite"
    path.write_bytes(content)
    with pytest.raises(InventoryError, match="is not an SQLite database") as caught:
        Inventory(path)
    assert str(caught.value).startswith(str(path))
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    assert path.read_bytes() == content


def test_another_applications_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    conn = raw(path)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(InventoryError, match="not a provenance inventory"):
        Inventory(path)
    assert path.read_bytes() == before


def test_a_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite"
    filled(path, 2).close()
    conn = raw(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = path.read_bytes()
    for options in ({}, {"read_only": True}):
        with pytest.raises(SchemaVersionError, match=rf"99.*newer.*\({SCHEMA_VERSION}\)") as caught:
            Inventory(path, **options)  # type: ignore[arg-type]
        assert (caught.value.found, caught.value.supported) == (99, SCHEMA_VERSION)
    assert path.read_bytes() == before
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "nothing was written"


def test_read_only_inventory_reads_but_refuses_every_write(tmp_path: Path) -> None:
    """mode=ro is enforced by SQLite itself, so it holds for root too (unlike chmod)."""
    path = tmp_path / "inv.sqlite"
    filled(path, 3).close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with Inventory(path, read_only=True) as inv:
        assert inv.stats().assets == 3
        assert inv.audit.verify().ok
        with pytest.raises(InventoryError, match="read-only") as caught:
            inv.record_signing(fake_result(9), signer="CN=test", now=NOW)
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        with pytest.raises(InventoryError, match="read-only"):
            inv.audit.append(AuditEvent.INCIDENT_OPENED, now=NOW)
        assert "read-only" in repr(inv)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


READ_ONLY_FOLDER = """
import json, os, sys
from provenance.errors import InventoryError
from provenance.inventory import Inventory

folder, warm = sys.argv[1:3]
with Inventory(warm, read_only=True) as inv:  # every module imported before any privilege drop
    inv.stats()
if os.geteuid() == 0:  # root writes anywhere: read as nobody, as a service account would
    os.setgid(65534)
    os.setuid(65534)
found = {"writable": os.access(folder, os.W_OK)}
with Inventory(os.path.join(folder, "inv.sqlite"), read_only=True) as inv:
    found["assets"] = inv.stats().assets
    found["audit_ok"] = inv.audit.verify().ok
for name, options in (("write", {}), ("pending", {"read_only": True})):
    path = os.path.join(folder, "inv.sqlite" if name == "write" else "pending.sqlite")
    try:
        Inventory(path, **options).close()
        found[name] = None
    except InventoryError as exc:
        found[name] = str(exc)
print(json.dumps(found))
"""


def test_an_inventory_in_a_read_only_folder_is_read_there(tmp_path: Path) -> None:
    # A verifier's container mounts the inventory read-only, or an auditor gets a
    # write-protected copy: SQLite cannot create the -shm and -wal files a WAL
    # reader needs there. Before, every read failed ("cannot open the inventory").
    warm = tmp_path / "warm.sqlite"
    filled(warm, 1).close()
    folder = Path(tempfile.mkdtemp(prefix="provenance-ro-"))
    try:
        filled(folder / "inv.sqlite", 3).close()
        # Changes still in the write-ahead log (a writer killed before its checkpoint):
        pending = filled(folder / "pending.sqlite", 2)
        pending._db.connection.execute("PRAGMA wal_autocheckpoint = 0")
        pending.record_signing(fake_result(7), signer="CN=test", now=NOW)
        shutil.copy(folder / "pending.sqlite", folder / "pending-copy.sqlite")
        shutil.copy(folder / "pending.sqlite-wal", folder / "pending-copy.sqlite-wal")
        pending.close()
        for name in ("pending.sqlite", "pending.sqlite-wal"):
            (folder / name).unlink(missing_ok=True)
        (folder / "pending-copy.sqlite").rename(folder / "pending.sqlite")
        (folder / "pending-copy.sqlite-wal").rename(folder / "pending.sqlite-wal")
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        for path in folder.iterdir():
            path.chmod(0o644)
        folder.chmod(0o555)
        done = fresh_python(READ_ONLY_FOLDER, str(folder), str(warm))
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout.strip().splitlines()[-1])
        assert found["writable"] is False
        assert (found["assets"], found["audit_ok"]) == (3, True)
        assert "its folder is read-only" in found["write"]
        assert "inv.sqlite" in found["write"] and "nothing was recorded" in found["write"]
        assert "write-ahead log (pending.sqlite-wal)" in found["pending"]
        # Nothing was written: no new file, not a byte changed.
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def test_a_locked_inventory_gives_a_clear_error_and_records_nothing(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite"
    filled(path, 1).close()
    holder = raw(path)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with Inventory(path, busy_timeout_s=0.3) as inv:
            started = time.monotonic()
            with pytest.raises(InventoryError, match="locked by another process") as caught:
                inv.record_signing(fake_result(2), signer="CN=test", now=NOW)
            assert time.monotonic() - started >= 0.3
            assert "database is locked" not in str(caught.value)
            assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with Inventory(path) as inv:
        assert inv.stats().assets == 1
        assert inv.get(fake_result(2).asset_id) is None


def test_an_interrupted_write_leaves_no_half_recorded_asset(
    inv: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    inv.record_signing(fake_result(1), signer="CN=test", now=NOW)

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(inv.audit, "append_in", interrupted)
    with pytest.raises(KeyboardInterrupt):
        inv.record_signing(fake_result(2), signer="CN=test", now=NOW)
    monkeypatch.undo()
    assert inv.get(fake_result(2).asset_id) is None
    assert inv.find_by_sha256(fake_result(2).sha256_hex) is None
    stats = inv.stats()
    assert (stats.assets, stats.files, stats.audit_entries) == (1, 1, 1)
    inv.record_signing(fake_result(2), signer="CN=test", now=NOW)
    assert inv.audit.verify().ok


def test_contradictory_results_are_refused_and_a_batch_is_all_or_nothing(
    inv: Inventory,
) -> None:
    first = fake_result(1)
    inv.record_signing(first, signer="CN=test", now=NOW)
    other_essence = dataclasses.replace(fake_result(2), asset_id=first.asset_id)
    with pytest.raises(InventoryError, match="recorded with essence"):
        inv.record_signing(other_essence, signer="CN=test", now=NOW)
    other_id = dataclasses.replace(fake_result(3), essence_sha256_hex=first.essence_sha256_hex)
    with pytest.raises(InventoryError, match="already recorded as asset"):
        inv.record_signing(other_id, signer="CN=test", now=NOW)
    batch = [fake_result(10), fake_result(11), other_essence]
    with pytest.raises(InventoryError):
        inv.record_many(batch, signer="CN=test", now=NOW)
    assert inv.get(fake_result(10).asset_id) is None
    with pytest.raises(InventoryError, match="64 hex"):
        inv.record_signing(
            dataclasses.replace(fake_result(4), sha256_hex="xyz"), signer="CN=test", now=NOW
        )
    with pytest.raises(InventoryError, match="timezone"):
        inv.record_signing(fake_result(5), signer="CN=test", now=datetime(2026, 1, 1))
    for bad in ("g" * 64, "ab" * 31 + " a", "ab" * 32 + "\n", "\u0663" * 64):
        with pytest.raises(InventoryError, match="64 hex"):
            inv.record_many(
                [dataclasses.replace(fake_result(6), input_sha256_hex=bad)],
                signer="CN=test",
                now=NOW,
            )
    assert inv.stats().assets == 1


def test_a_signer_first_seen_by_a_rolled_back_batch_is_looked_up_again(inv: Inventory) -> None:
    """The handle remembers a signer's id only once a commit stored it (issue 20)."""
    first = fake_result(1)
    inv.record_signing(first, signer="CN=test", now=NOW)
    taken = dataclasses.replace(fake_result(2), asset_id=first.asset_id)
    with pytest.raises(InventoryError, match="recorded with essence"):
        inv.record_many([fake_result(20), taken], signer="CN=new", now=NOW)

    def rolled_back(conn: sqlite3.Connection) -> None:
        inv.record_many([fake_result(21)], signer="CN=newer", now=NOW)  # joins, then undone
        raise RuntimeError("the caller's transaction fails")

    with pytest.raises(RuntimeError):
        inv.audit.write(rolled_back)
    # Another signer takes the row key the rolled-back ones had.
    inv.record_many([fake_result(22)], signer="CN=other", now=NOW)
    inv.record_many([fake_result(23)], signer="CN=new", now=NOW)
    inv.record_many([fake_result(24)], signer="CN=newer", now=NOW)
    inv.record_many([fake_result(25)], signer="CN=new", now=NOW)  # settled now
    signers = {i: inv.get(fake_result(i).asset_id) for i in (20, 21, 22, 23, 24, 25)}
    assert signers[20] is None and signers[21] is None
    assert [signers[i].signer for i in (22, 23, 24, 25)] == [  # type: ignore[union-attr]
        "CN=other",
        "CN=new",
        "CN=newer",
        "CN=new",
    ]
    assert inv.audit.verify().ok


def test_a_batch_recorded_without_its_entries_stores_and_logs_the_same(
    tmp_path: Path, catalogue: Catalogue
) -> None:
    """``entries=False`` (what ``sign_import`` asks) only skips building the return value."""
    original = fake_result(1)
    odd_time = original.record.replace(created_at=NOW.replace(microsecond=250_000))
    batch = [
        *catalogue.all,
        original,
        fake_result(2, parent=original),
        dataclasses.replace(fake_result(3, parent=original), record=odd_time),  # read back
    ]
    with Inventory(tmp_path / "a.sqlite") as one, Inventory(tmp_path / "b.sqlite") as two:
        returned = one.record_many(batch, signer="CN=test", now=NOW)
        assert two.record_many(batch, signer="CN=test", now=NOW, entries=False) is None
        again = one.record_many(batch, signer="CN=test", now=NOW)  # the same files: no entry
        assert two.record_many(batch, signer="CN=test", now=NOW, entries=False) is None
        assert again == returned
        assert [two.get(e.asset_id) for e in returned] == returned
        assert [e.to_dict() for e in two.audit.entries()] == [
            e.to_dict() for e in one.audit.entries()
        ]
        assert len(list(two.audit.entries())) == len(batch)
        assert two.audit.verify().ok and one.audit.verify().ok


@pytest.mark.parametrize("every", [1, 3, 1000])
def test_audit_entries_appended_without_building_them_are_the_same_rows(
    tmp_path: Path, signing_key: SigningKey, every: int
) -> None:
    """``append_all_in(entries=False)``: the same rows and checkpoints, nothing built."""
    items: list[tuple[AuditEvent, str | None, dict[str, object]]] = [
        (AuditEvent.VERIFIED, f"asset-{i}", {"status": "ok", "n": i, "on": True, "x": None})
        for i in range(7)
    ]
    items.insert(3, (AuditEvent.VERIFIED, None, {"nested": {"b": [1, 2]}, "a": "\u00e9"}))
    logs, checkpoints = [], []
    for entries in (True, False):
        path = tmp_path / f"{entries}.sqlite"
        with Inventory(path, checkpoint_key=signing_key, checkpoint_every=every) as inv:
            inv.audit.append(AuditEvent.VERIFIED, asset_id="first", payload={}, now=NOW)
            appended = inv.audit.write(
                lambda conn, inv=inv, entries=entries: inv.audit.append_all_in(
                    conn, items, now=NOW, entries=entries
                )
            )
            assert len(appended) == (len(items) if entries else 0)
            report = inv.audit.verify()
            assert report.ok, report.problems
            logs.append([e.to_dict() for e in inv.audit.entries()])
            checkpoints.append([c.seq for c in inv.audit.checkpoints()])
    assert logs[0] == logs[1]
    assert checkpoints[0] == checkpoints[1]
    assert bool(checkpoints[0]) == (every < len(items))


def test_a_batch_serialises_each_record_as_it_is(inv: Inventory) -> None:
    """Equal records that serialise differently (1, 1.0, True) are each stored as signed."""
    base = fake_result(1)
    results = [base]
    for i, seed in enumerate((1, 1.0, True, 1, -0.0, 0.0), start=2):
        record = base.record.replace(parameters={"seed": seed, "steps": 30})
        results.append(dataclasses.replace(fake_result(i), record=record))
    entries = inv.record_many(results, signer="CN=test", now=NOW)
    for result, entry in zip(results, entries, strict=True):
        text = result.record.to_canonical_json()
        assert entry.files[0].record_sha256_hex == hashlib.sha256(text).hexdigest()
        stored = inv.get(result.asset_id)
        assert stored is not None
        assert stored.record.to_canonical_json() == text
        assert stored.files[0].record_sha256_hex == hashlib.sha256(text).hexdigest()
    assert inv.audit.verify().ok


def test_closed_inventory_refuses_work(tmp_path: Path) -> None:
    inv = Inventory(tmp_path / "inv.sqlite")
    inv.close()
    inv.close()
    with pytest.raises(InventoryError, match="closed"):
        inv.stats()


# --- several processes at once -----------------------------------------------------

WRITERS = 4
PER_WRITER = 500


def _writer(path: str, writer: int, start_at: float) -> int:
    while time.time() < start_at:  # start together, to collide
        time.sleep(0.001)
    with Inventory(path, busy_timeout_s=30.0) as inv:
        for i in range(PER_WRITER):
            inv.record_signing(fake_result(i, salt=f"w{writer}"), signer=f"CN=w{writer}", now=NOW)
    return writer


def test_four_processes_adding_500_assets_each_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    Inventory(path).close()
    context = multiprocessing.get_context("spawn")
    with context.Pool(WRITERS) as pool:
        start_at = time.time() + 1.5
        done = pool.starmap(_writer, [(str(path), w, start_at) for w in range(WRITERS)])
    assert sorted(done) == list(range(WRITERS))
    with Inventory(path) as inv:
        stats = inv.stats()
        assert stats.assets == stats.files == WRITERS * PER_WRITER
        report = inv.audit.verify()
        assert report.ok, report.problems
        assert report.entries_checked == report.last_seq == WRITERS * PER_WRITER
        writers_seen = {e.payload["signer"] for e in inv.audit.entries()}
        assert writers_seen == {f"CN=w{w}" for w in range(WRITERS)}
