"""The audit log needs no goodwill (DESIGN.md decision 17), on real signed samples.

Each test reproduces a red-team finding on a real SQLite inventory filled by
signing sample images: facts edited outside the chain, a rewritten log accepted
by default, checkpoints never taken by the CLI, and no witness.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import shutil
import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from benchmarks import _tamper

from provenance import sign
from provenance._core.types import SignResult
from provenance._io.keys import DevKeyPaths, SigningKey, TrustPolicy, key_fingerprint
from provenance.audit import (
    WITNESS_ENV_VAR,
    AuditEvent,
    FileWitness,
    ProblemKind,
)
from provenance.batch import SignItem, sign_many
from provenance.inventory import Inventory
from tests.conftest import SAMPLE_MEDIA, run_cli, sample_record

Media = Callable[[str], Path]
SAMPLES = ("rowing-boats-sunset.jpg", "packshot-fire-truck-white.png", "forest-path.jpg")


def signed_inventory(
    tmp_path: Path, media: Media, key: SigningKey, *, every: int = 2, witness: Path | None = None
) -> Path:
    """An inventory of the signed samples (with perceptual rows), checkpointed every ``every``."""
    path = tmp_path / "inv.sqlite"
    out = tmp_path / "signed"
    out.mkdir(exist_ok=True)
    with Inventory(
        path,
        checkpoint_key=key,
        checkpoint_every=every,
        witness=FileWitness(witness) if witness is not None else None,
    ) as inv:
        for name in SAMPLES:
            sign(media(name), out / name, record=sample_record(name), key=key, inventory=inv)
    return path


def problems(path: Path, **options: object) -> list[ProblemKind]:
    with Inventory(path, create=False, read_only=True) as inv:
        report = inv.audit.verify(**options)  # type: ignore[arg-type]
    return [p.kind for p in report.problems]


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - which row to tamper with, not a secret


def attacker(path: Path) -> sqlite3.Connection:
    return _tamper.attacker(path)


# --- facts bound to the chain ---------------------------------------------------------


def test_every_fact_row_is_bound_and_a_clean_log_verifies(
    tmp_path: Path, media: Media, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    path = signed_inventory(tmp_path, media, signing_key)
    with Inventory(path, create=False, read_only=True) as inv:
        report = inv.audit.verify(trust=trust)
        everything = list(inv.audit.entries())
    entries = [e for e in everything if e.event is AuditEvent.SIGNED]
    assert report.ok and report.verified and report.status == "intact", report.problems
    # 3 assets + 3 files + perceptual rows and descriptors of each.
    assert report.facts_checked > 6
    assert len(entries) == 3
    assert all("row_asset" in e.payload and "row_file" in e.payload for e in entries)
    # sign() stores the perceptual rows after the file: their own entry binds them.
    perceptual = {e.asset_id for e in everything if "row_perceptual" in e.payload}
    assert perceptual == {e.asset_id for e in entries}


def test_the_red_team_update_is_found_in_every_mode(
    tmp_path: Path, media: Media, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    path = signed_inventory(tmp_path, media, signing_key)
    conn = attacker(path)
    conn.execute(
        "UPDATE assets SET digital_source_type='digitalCapture', model='a-camera' "
        "WHERE asset_pk = 2"
    )
    conn.close()
    assert problems(path) == [ProblemKind.FACT_CHANGED]
    assert problems(path, trust=trust) == [ProblemKind.FACT_CHANGED]


def test_the_red_team_update_fails_the_cli_with_the_export_and_anchors(
    tmp_path: Path, media: Media, signing_key: SigningKey, dev_keys: DevKeyPaths
) -> None:
    path = signed_inventory(tmp_path, media, signing_key)
    export = tmp_path / "export.json"
    done = run_cli(
        "inventory", "export", export, "--inventory", path, "--keys", dev_keys.chain.parent
    )
    assert done.returncode == 0, done.stderr
    conn = attacker(path)
    conn.execute(
        "UPDATE assets SET digital_source_type='digitalCapture', model='a-camera' "
        "WHERE asset_pk = 1"
    )
    conn.close()
    args = ("--against", export, "--trust-anchors", dev_keys.ca_certificate)
    done = run_cli("audit", "verify", "--inventory", path, *args)
    assert done.returncode == 1, done.stdout
    assert "fact_changed" in done.stdout and "intact" not in done.stdout


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("DELETE FROM files WHERE file_pk = 3", ProblemKind.FACT_MISSING),
        ("DELETE FROM perceptual_hashes WHERE hash_pk = 5", ProblemKind.FACT_CHANGED),
        ("DELETE FROM perceptual_descriptors WHERE asset_pk = 1", ProblemKind.FACT_CHANGED),
        ("UPDATE assets SET parent_pk = 1 WHERE asset_pk = 3", ProblemKind.FACT_CHANGED),
        (
            "INSERT INTO files SELECT NULL, randomblob(32), asset_pk, input_sha256, "
            "parent_sha256, path, source_path, bytes_added, active_manifest, signed_at, "
            "signer_id, record_sha256, record_json FROM files WHERE file_pk = 1",
            ProblemKind.FACT_UNBOUND,
        ),
    ],
)
def test_deleted_relinked_or_smuggled_rows_are_found(
    sql: str, kind: ProblemKind, tmp_path: Path, media: Media, signing_key: SigningKey
) -> None:
    path = signed_inventory(tmp_path, media, signing_key)
    conn = attacker(path)
    conn.execute(sql)
    conn.close()
    assert problems(path) == [kind]


def test_text_that_is_not_utf8_is_reported_not_raised(
    tmp_path: Path, media: Media, signing_key: SigningKey
) -> None:
    """Bytes that are not UTF-8, written by hand into a TEXT or a BLOB column, are a changed row."""
    path = signed_inventory(tmp_path, media, signing_key)
    conn = attacker(path)
    conn.execute("UPDATE assets SET generator = CAST(x'ff80' AS TEXT) WHERE asset_pk = 1")
    conn.execute(
        "UPDATE files SET input_sha256 = CAST(randomblob(32) || x'ff' AS TEXT) "
        "WHERE file_pk = (SELECT MAX(file_pk) FROM files)"
    )
    conn.close()
    found = problems(path)
    assert found == [ProblemKind.FACT_CHANGED, ProblemKind.FACT_CHANGED]
    result = run_cli("audit", "verify", "--inventory", str(path), "--json")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert [p["kind"] for p in json.loads(result.stdout)["problems"]] == ["fact_changed"] * 2


# --- pinned checkpoints, on a schedule ------------------------------------------------


def test_a_batch_takes_checkpoints_with_the_key_it_signs_with(
    tmp_path: Path, media: Media, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    path = tmp_path / "inv.sqlite"
    out = tmp_path / "out"
    out.mkdir()
    items = [SignItem(media(n)) for n in SAMPLES]
    # The inventory is opened without a key, as the CLI did: the batch's key signs.
    with Inventory(path, checkpoint_every=2) as inv:
        done = list(
            sign_many(items, out, key=signing_key, record=sample_record(SAMPLES[0]), inventory=inv)
        )
        assert all(d.error is None for d in done)
        checkpoints = inv.audit.checkpoints()
        assert checkpoints and all(c.is_signed for c in checkpoints)
        assert {c.log_key for c in checkpoints} == {key_fingerprint(signing_key.leaf)}
        assert inv.audit.verify(trust=trust).verified


def test_the_cli_sign_takes_the_scheduled_checkpoint_with_its_key(
    tmp_path: Path, media: Media, dev_keys: DevKeyPaths, trust: TrustPolicy
) -> None:
    path = tmp_path / "cli.sqlite"
    with Inventory(path) as inv:  # 999 entries, no key: the next one is due a checkpoint
        results = [_tamper.fake_result(i) for i in range(999)]
        inv.record_many(results, signer="CN=import", now=_tamper.NOW)
        assert inv.audit.checkpoints() == []
    done = run_cli(
        "sign",
        media(SAMPLES[0]),
        "--out",
        tmp_path / "out",
        "--keys",
        dev_keys.chain.parent,
        "--inventory",
        path,
    )
    assert done.returncode == 0, done.stderr
    with Inventory(path, create=False, read_only=True) as inv:
        checkpoints = inv.audit.checkpoints()
        assert [c.seq for c in checkpoints] == [1000]
        assert checkpoints[0].is_signed
        assert inv.audit.verify(trust=trust).status == "intact"


def test_checkpoints_signed_by_another_key_are_refused_by_default(
    tmp_path: Path, media: Media, signing_key: SigningKey, other_key: SigningKey
) -> None:
    path = signed_inventory(tmp_path, media, signing_key)
    _tamper.checkpoint_other_key(path, _rng(1), other_key)
    pin = key_fingerprint(signing_key.leaf)
    assert ProblemKind.BAD_CHECKPOINT_SIGNATURE in problems(path, pin=pin)
    # Without the log's key nothing outside the database vouches: never "intact".
    with Inventory(path, create=False, read_only=True) as inv:
        report = inv.audit.verify()
    assert report.status == "unverified"
    assert any("unverified" in n for n in report.notes)


def test_unsigned_checkpoints_in_a_pinned_log_are_refused(
    tmp_path: Path, media: Media, signing_key: SigningKey
) -> None:
    path = signed_inventory(tmp_path, media, signing_key)
    _tamper.checkpoint_unsigned(path, _rng(2), signing_key)
    pin = key_fingerprint(signing_key.leaf)
    assert ProblemKind.BAD_CHECKPOINT_SIGNATURE in problems(path, pin=pin)


def test_a_rewritten_log_is_not_intact_in_the_cli_default(
    tmp_path: Path, media: Media, signing_key: SigningKey, dev_keys: DevKeyPaths
) -> None:
    """Forged entry, re-chained, checkpoints deleted: the red team's default-mode pass."""
    path = signed_inventory(tmp_path, media, signing_key)
    _tamper.insert_forged_entry(path, _rng(3), signing_key)
    done = run_cli(
        "audit", "verify", "--inventory", path, "--keys", dev_keys.chain.parent, "--json"
    )
    report = json.loads(done.stdout)
    assert report["status"] != "intact"
    assert not report["verified"]


def test_a_writer_refuses_to_checkpoint_with_another_key(
    tmp_path: Path, media: Media, signing_key: SigningKey, other_key: SigningKey
) -> None:
    path = signed_inventory(tmp_path, media, signing_key)
    with Inventory(path, create=False) as inv:
        with pytest.raises(Exception, match="another one"):
            inv.audit.checkpoint(other_key, now=datetime.now(timezone.utc))
        # An export without a key embeds an unsigned checkpoint but stores none.
        before = len(inv.audit.checkpoints())
        cp = inv.export_json(tmp_path / "e.json", now=datetime.now(timezone.utc))
        assert not cp.is_signed and len(inv.audit.checkpoints()) == before
        assert inv.audit.verify(pin=key_fingerprint(signing_key.leaf)).ok


# --- the witness ----------------------------------------------------------------------


def test_the_witness_catches_truncation_and_roll_back_by_default(
    tmp_path: Path, media: Media, signing_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    witness = tmp_path / "witness"
    witness.mkdir()
    path = tmp_path / "inv.sqlite"
    early = tmp_path / "early.sqlite"
    out = tmp_path / "signed"
    out.mkdir()
    options = {"checkpoint_key": signing_key, "checkpoint_every": 2}
    with Inventory(path, witness=FileWitness(witness), **options) as inv:  # type: ignore[arg-type]
        name = SAMPLES[0]
        sign(media(name), out / name, record=sample_record(name), key=signing_key, inventory=inv)
    shutil.copyfile(path, early)
    with Inventory(path, witness=FileWitness(witness), **options) as inv:  # type: ignore[arg-type]
        for name in SAMPLES[1:]:
            record = sample_record(name)
            sign(media(name), out / name, record=record, key=signing_key, inventory=inv)
    records = FileWitness(witness).read()
    assert len(records) >= 2 and (witness / "audit-witness.jsonl").exists()
    # Configured by the environment, as the CLI's writers and verify see it.
    monkeypatch.setenv(WITNESS_ENV_VAR, str(witness))
    with Inventory(path, create=False, read_only=True) as inv:
        assert inv.audit.verify().verified
    _tamper.roll_back(path, early)
    done = run_cli("audit", "verify", "--inventory", path)
    assert done.returncode == 1, done.stdout
    assert "truncated" in done.stdout


def test_a_rewrite_from_scratch_differs_from_the_witness(
    tmp_path: Path, media: Media, signing_key: SigningKey
) -> None:
    witness = tmp_path / "w.jsonl"
    path = signed_inventory(tmp_path, media, signing_key, witness=witness)
    _tamper.delete_checkpoints(path, _rng(4), signing_key)
    with Inventory(path, create=False, read_only=True, witness=FileWitness(witness)) as inv:
        report = inv.audit.verify()
    kinds = {p.kind for p in report.problems}
    assert kinds & {ProblemKind.ROLLED_BACK, ProblemKind.TRUNCATED}


def test_an_unwritable_witness_does_not_fail_signing_and_is_caught_up(
    tmp_path: Path, media: Media, signing_key: SigningKey
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    path = tmp_path / "inv.sqlite"
    out = tmp_path / "signed"
    out.mkdir()
    # One signing is one audit entry (the file and its perceptual rows are bound in
    # one transaction): a checkpoint after every entry.
    with Inventory(
        path, checkpoint_key=signing_key, checkpoint_every=1, witness=FileWitness(blocker / "w")
    ) as inv:
        name = SAMPLES[0]
        sign(media(name), out / name, record=sample_record(name), key=signing_key, inventory=inv)
        assert inv.audit.witness_error is not None
        assert inv.stats().assets == 1
        # The witness comes back: the missed checkpoint is written with the next one.
        inv.audit.witness = FileWitness(tmp_path / "w.jsonl")
        inv.audit.checkpoint(signing_key, now=datetime.now(timezone.utc))
        assert inv.audit.witness_error is None
    assert len(FileWitness(tmp_path / "w.jsonl").read()) >= 2


def _append_concurrently(keys: tuple[str, str], inventory: str, witness: str, out: str) -> int:
    """One of several processes signing the samples into one inventory with a witness."""
    key = SigningKey.from_pem_files(keys[0], keys[1])
    folder = Path(out)
    with Inventory(
        inventory, checkpoint_key=key, checkpoint_every=2, witness=FileWitness(witness)
    ) as inv:
        for name in SAMPLES:
            src = SAMPLE_MEDIA / name
            sign(src, folder / name, record=sample_record(name), key=key, inventory=inv)
        return 0 if inv.audit.witness_error is None else 1


def test_concurrent_writers_with_a_witness_raise_no_false_alarm(
    tmp_path: Path, dev_keys: DevKeyPaths, signing_key: SigningKey
) -> None:
    inventory, witness = tmp_path / "shared.sqlite", tmp_path / "witness.jsonl"
    Inventory(inventory).close()
    outs = [tmp_path / f"w{i}" for i in range(3)]
    for out in outs:
        out.mkdir()
    keys = (str(dev_keys.chain), str(dev_keys.private_key))
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        codes = pool.starmap(
            _append_concurrently, [(keys, str(inventory), str(witness), str(o)) for o in outs]
        )
    assert codes == [0, 0, 0]
    records = FileWitness(witness).read()
    with Inventory(inventory, create=False, read_only=True, witness=FileWitness(witness)) as inv:
        stored = inv.audit.checkpoints()
        report = inv.audit.verify(pin=key_fingerprint(signing_key.leaf))
    assert report.ok and report.status == "intact", report.problems
    # Every checkpoint stored was witnessed, whichever process took it.
    assert sorted(r.checkpoint.seq for r in records) == [c.seq for c in stored]
    assert len(stored) >= 3


# --- existing inventories ------------------------------------------------------------


def legacy_inventory(tmp_path: Path, media: Media, key: SigningKey) -> Path:
    """A signed inventory made to look like a migrated schema-2 one.

    The binding marks above every row, and entries without row hashes (as the
    previous release wrote them), re-chained.
    """
    path = signed_inventory(tmp_path, media, key)
    conn = attacker(path)
    conn.execute("DROP TRIGGER audit_meta_no_update")
    conn.execute("UPDATE audit_meta SET value = 1000")
    legacy_keys = ("row_", "linked", "perceptual_scheme")
    for seq, payload in conn.execute("SELECT seq, payload FROM audit").fetchall():
        body = {k: v for k, v in json.loads(payload).items() if not k.startswith(legacy_keys)}
        conn.execute("UPDATE audit SET payload = ? WHERE seq = ?", (json.dumps(body), seq))
    conn.execute("DELETE FROM audit_checkpoints")
    conn.execute("DELETE FROM audit WHERE event = 'checkpoint'")
    _tamper.rechain(conn)
    conn.close()
    return path


def test_entries_written_before_binding_verify_with_a_not_bound_note(
    tmp_path: Path, media: Media, signing_key: SigningKey
) -> None:
    path = legacy_inventory(tmp_path, media, signing_key)
    with Inventory(path, create=False, read_only=True) as inv:
        report = inv.audit.verify()
    assert report.ok, report.problems
    assert any("not bound" in n for n in report.notes)


def test_the_red_team_update_is_found_on_an_old_inventory_too(
    tmp_path: Path, media: Media, signing_key: SigningKey
) -> None:
    """Old entries named the model and source type: an edit of those is still caught."""
    path = legacy_inventory(tmp_path, media, signing_key)
    conn = attacker(path)
    conn.execute(
        "UPDATE assets SET digital_source_type='digitalCapture', model='a-camera' "
        "WHERE asset_pk = 2"
    )
    conn.execute("DELETE FROM files WHERE file_pk = 3")
    conn.close()
    assert problems(path) == [ProblemKind.FACT_CHANGED, ProblemKind.FACT_MISSING]


def test_a_rendition_linked_after_its_original_arrives_is_bound(tmp_path: Path) -> None:
    from tests.integration.test_inventory import NOW, fake_result

    path = tmp_path / "inv.sqlite"
    original = fake_result(1)
    rendition = fake_result(2, parent=original)
    with Inventory(path) as inv:
        inv.record_signing(rendition, signer="CN=test", now=NOW)  # before its original
        inv.record_signing(original, signer="CN=test", now=NOW)
        entry = inv.get(rendition.asset_id)
        assert entry is not None and entry.parent_asset_id == original.asset_id
        linked = [e for e in inv.audit.entries() if "linked" in e.payload]
        assert [e.payload["linked"] for e in linked] == [rendition.asset_id]
        assert inv.audit.verify().ok
    conn = attacker(path)
    conn.execute("UPDATE assets SET parent_pk = NULL")
    conn.close()
    assert problems(path) == [ProblemKind.FACT_CHANGED]


def test_the_cli_warns_when_the_witness_cannot_be_written(
    tmp_path: Path, media: Media, signing_key: SigningKey, dev_keys: DevKeyPaths
) -> None:
    path = signed_inventory(tmp_path, media, signing_key)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    done = run_cli(
        "audit",
        "checkpoint",
        "--inventory",
        path,
        "--keys",
        dev_keys.chain.parent,
        env={WITNESS_ENV_VAR: str(blocker / "witness.jsonl")},
    )
    assert done.returncode == 0, done.stderr
    assert "warning" in done.stderr and "not witnessed" in done.stderr


# --- an import's entries, appended together (issue 20) ---------------------------------


def _import_results(count: int = 18) -> list[SignResult]:
    from tests.integration.test_inventory import fake_result

    original = fake_result(100)
    return [original, *(fake_result(200 + i, parent=original) for i in range(count))]


def _chain(path: Path) -> list[tuple[int, str, str | None, dict[str, object]]]:
    """Every entry's seq, event, asset and payload (CHECKPOINT payloads without times)."""
    with Inventory(path, create=False, read_only=True) as inv:
        return [(e.seq, e.event.value, e.asset_id, dict(e.payload)) for e in inv.audit.entries()]


def test_an_imports_entries_are_the_entries_of_one_file_at_a_time(
    tmp_path: Path, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    from tests.integration.test_inventory import NOW

    results = _import_results()
    one_by_one, together = tmp_path / "one.sqlite", tmp_path / "together.sqlite"
    with Inventory(one_by_one, checkpoint_key=signing_key, checkpoint_every=4) as inv:
        for result in results:
            inv.record_signing(result, signer="CN=test", now=NOW)
    with Inventory(together, checkpoint_key=signing_key, checkpoint_every=4) as inv:
        inv.record_many(results, signer="CN=test", now=NOW)
        report = inv.audit.verify(trust=trust)
    assert report.ok and report.status == "intact", report.problems
    # The same entries in the same order, checkpoints after the same entries.
    chain = _chain(together)
    assert [c[:3] for c in chain] == [c[:3] for c in _chain(one_by_one)]
    assert [c[1] for c in chain].count("checkpoint") == 6  # every 4 entries, their own counted
    facts = [c for c in chain if c[1] != "checkpoint"]
    assert facts == [c for c in _chain(one_by_one) if c[1] != "checkpoint"]
    # The same rows with the same keys (the batch inserts its new files together).
    for table in ("assets", "files", "signers"):
        assert _rows(together, table) == _rows(one_by_one, table), table


def _rows(path: Path, table: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608 - test tables
    finally:
        conn.close()


def test_a_changed_rendition_row_of_an_import_is_named(tmp_path: Path) -> None:
    from tests.integration.test_inventory import NOW

    results = _import_results()
    path = tmp_path / "inv.sqlite"
    with Inventory(path) as inv:
        inv.record_many(results, signer="CN=test", now=NOW)
        assert inv.audit.verify().ok
    changed = results[7]
    seq = next(c[0] for c in _chain(path) if c[2] == changed.asset_id)
    conn = attacker(path)
    conn.execute(
        "UPDATE files SET path = '/elsewhere.jpg' WHERE sha256 = ?",
        (bytes.fromhex(changed.sha256_hex),),
    )
    conn.close()
    with Inventory(path, create=False, read_only=True) as inv:
        found = inv.audit.verify().problems
    assert [(p.seq, p.kind) for p in found] == [(seq, ProblemKind.FACT_CHANGED)]
    assert changed.sha256_hex in found[0].detail


@pytest.mark.parametrize("earlier", [True, False])
def test_renditions_recorded_before_their_original_are_linked_in_one_batch(
    tmp_path: Path, earlier: bool
) -> None:
    from tests.integration.test_inventory import NOW

    original, *renditions = _import_results(3)
    path = tmp_path / "inv.sqlite"
    with Inventory(path) as inv:
        if earlier:  # in a transaction before the original's
            inv.record_many(renditions, signer="CN=test", now=NOW)
            inv.record_many([original], signer="CN=test", now=NOW)
        else:  # in the same transaction, before it
            inv.record_many([*renditions, original], signer="CN=test", now=NOW)
        for rendition in renditions:
            entry = inv.get(rendition.asset_id)
            assert entry is not None and entry.parent_asset_id == original.asset_id
        assert inv.audit.verify().ok
    linked = [c[3]["linked"] for c in _chain(path) if "linked" in c[3]]
    assert linked == [",".join(sorted(r.asset_id for r in renditions))]


def test_a_batch_longer_than_one_lookup_records_repeats_and_known_files_once(
    tmp_path: Path,
) -> None:
    from tests.integration.test_inventory import NOW, fake_result

    path = tmp_path / "inv.sqlite"
    known = [fake_result(i, salt="known") for i in range(3)]
    originals = [fake_result(i) for i in range(40)]  # lookups of 32, 8 and the rest
    renditions = [fake_result(100 + i, parent=originals[i]) for i in range(30)]
    # A rendition before its original, files already recorded, one file twice.
    batch = [renditions[0], *known, *originals, originals[5], *renditions[1:]]
    with Inventory(path) as inv:
        inv.record_many(known, signer="CN=test", now=NOW)
        entries = inv.record_many(batch, signer="CN=test", now=NOW)
        assert [e.asset_id for e in entries] == [r.asset_id for r in batch]
        assert inv.stats().assets == 73
        for rendition, original in zip(renditions, originals, strict=False):
            entry = inv.get(rendition.asset_id)
            assert entry is not None and entry.parent_asset_id == original.asset_id
        report = inv.audit.verify()
    assert report.ok, report.problems
    # One entry per file recorded (the known ones and the repeat add none).
    assert report.entries_checked == 3 + 40 + 30
