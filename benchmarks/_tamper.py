"""The red team's tamper classes against an inventory, as someone with write access does them.

Shared by ``benchmarks/audit_tamper.py`` (the detection matrix) and the audit tests.
Every function works on a real SQLite file through a plain connection (triggers
dropped first, as an attacker would) and, where it rewrites the chain, recomputes
every hash after the change (:func:`rechain`), so only what lies outside the
database or is signed can give it away.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sqlite3
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from provenance._core.record import DigitalSourceType, ProvenanceRecord, canonical_json
from provenance._core.types import SignResult
from provenance._io.keys import SigningKey
from provenance.audit import AuditEvent, Checkpoint, compute_entry_hash

# Checkpoints are checked against the certificates' validity at their time: the
# keys are made at run time, so the records are too.
NOW = datetime.now(timezone.utc).replace(microsecond=0)
_GUARDS = (
    "audit_no_update",
    "audit_no_delete",
    "audit_checkpoints_no_update",
    "audit_checkpoints_no_delete",
)


def fake_result(i: int, *, salt: str = "") -> SignResult:
    """A SignResult with made-up hashes and a valid record (no image is signed)."""

    def digest(kind: str) -> str:
        return hashlib.sha256(f"{salt}:{kind}:{i}".encode()).hexdigest()

    essence = digest("essence")
    record = ProvenanceRecord(
        generator="studio-batch 2.1",
        model="sdxl",
        model_version="1.0",
        digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA,
        created_at=NOW,
        parameters={"seed": i},
    )
    return SignResult(
        path=f"/catalogue/{salt}{i}.jpg",
        asset_id=str(uuid.uuid5(uuid.NAMESPACE_OID, essence)),
        sha256_hex=digest("file"),
        essence_sha256_hex=essence,
        input_sha256_hex=digest("input"),
        bytes_added=9000,
        active_manifest=f"urn:c2pa:{uuid.uuid5(uuid.NAMESPACE_URL, essence)}",
        record=record,
    )


def attacker(path: Path) -> sqlite3.Connection:
    """A plain connection with the append-only triggers dropped."""
    conn = sqlite3.connect(path, isolation_level=None)
    for name in _GUARDS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    return conn


def rechain(conn: sqlite3.Connection) -> None:
    """Renumber the entries 1..n in seq order and recompute every hash and link."""
    rows = conn.execute(
        "SELECT seq, at, event, asset_id, payload FROM audit ORDER BY seq"
    ).fetchall()
    conn.execute("DELETE FROM audit")
    prev = "0" * 64
    for seq, (_, at, event, asset_id, payload) in enumerate(rows, 1):
        body = json.loads(payload)
        digest = compute_entry_hash(
            seq=seq, at=at, event=event, asset_id=asset_id, payload=body, prev_hash=prev
        )
        conn.execute(
            "INSERT INTO audit (seq, at, event, asset_id, payload, prev_hash, entry_hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, at, event, asset_id, payload, prev, digest),
        )
        prev = digest


def _drop_checkpoints(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM audit_checkpoints")
    conn.execute("DELETE FROM audit WHERE event = ?", (AuditEvent.CHECKPOINT.value,))


def _last_checkpoint_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints").fetchone()[0])


def _resign(conn: sqlite3.Connection, key: SigningKey | None, every: int) -> None:
    """Checkpoints over the (rewritten) chain, signed with ``key`` (None: unsigned)."""
    tail = int(conn.execute("SELECT MAX(seq) FROM audit").fetchone()[0])
    for seq in range(every, tail + 1, every):
        entry_hash = conn.execute("SELECT entry_hash FROM audit WHERE seq = ?", (seq,)).fetchone()
        cp = Checkpoint.create(seq, str(entry_hash[0]), now=datetime.now(timezone.utc), key=key)
        conn.execute(
            "INSERT INTO audit_checkpoints (seq, entry_hash, at, algorithm, signature_b64, "
            "certificate_chain_json, log_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                cp.seq,
                cp.entry_hash,
                cp.at,
                cp.algorithm,
                cp.signature_b64,
                json.dumps(list(cp.certificate_chain_b64)),
                cp.log_key,
            ),
        )


def edit_fact(path: Path, rng: random.Random, _: SigningKey) -> None:
    """The red team's UPDATE: an AI image becomes a camera photo."""
    conn = attacker(path)
    pks = [r[0] for r in conn.execute("SELECT asset_pk FROM assets")]
    conn.execute(
        "UPDATE assets SET digital_source_type = 'digitalCapture', model = 'a-camera' "
        "WHERE asset_pk = ?",
        (rng.choice(pks),),
    )
    conn.close()


def delete_fact(path: Path, rng: random.Random, _: SigningKey) -> None:
    """Delete one file row (or, every other trial, one asset's perceptual rows)."""
    conn = attacker(path)
    if rng.random() < 0.5:
        pks = [r[0] for r in conn.execute("SELECT file_pk FROM files")]
        conn.execute("DELETE FROM files WHERE file_pk = ?", (rng.choice(pks),))
    else:
        pks = [r[0] for r in conn.execute("SELECT DISTINCT asset_pk FROM perceptual_hashes")]
        conn.execute("DELETE FROM perceptual_hashes WHERE asset_pk = ?", (rng.choice(pks),))
    conn.close()


def swap_keypoints(path: Path, rng: random.Random, _: SigningKey) -> None:
    """Give one asset another's keypoint row: the partial search names the wrong original."""
    conn = attacker(path)
    pks = [r[0] for r in conn.execute("SELECT keypoint_pk FROM keypoint_features")]
    a, b = rng.sample(pks, 2)
    conn.execute(
        "UPDATE keypoint_features SET features = "
        "(SELECT features FROM keypoint_features WHERE keypoint_pk = ?) WHERE keypoint_pk = ?",
        (b, a),
    )
    conn.close()


def insert_forged_entry(path: Path, rng: random.Random, _: SigningKey) -> None:
    """A forged entry before the last checkpoint, the chain re-hashed, checkpoints removed."""
    conn = attacker(path)
    last = _last_checkpoint_seq(conn)
    _drop_checkpoints(conn)
    at_seq = rng.randint(2, max(2, last - 1))
    conn.execute("UPDATE audit SET seq = seq + 1000000 WHERE seq >= ?", (at_seq,))
    payload = canonical_json({"status": "trusted", "sha256": "ab" * 32}).decode()
    conn.execute(
        "INSERT INTO audit (seq, at, event, asset_id, payload, prev_hash, entry_hash) "
        "VALUES (?, '2026-11-01T12:00:00.000Z', 'verified', NULL, ?, '', '')",
        (at_seq, payload),
    )
    rechain(conn)
    conn.close()


def delete_checkpoints(path: Path, rng: random.Random, _: SigningKey) -> None:
    """Every checkpoint row and CHECKPOINT entry removed, the chain re-hashed."""
    conn = attacker(path)
    _drop_checkpoints(conn)
    rechain(conn)
    conn.close()


def _rewrite_fact_consistently(conn: sqlite3.Connection, rng: random.Random) -> None:
    """Edit an asset and the entry that bound it, so the row hash matches again."""
    from provenance._io.database import execute
    from provenance.inventory._bindings import _ASSET_FACTS_SQL, _asset_row_hash

    # An entry a checkpoint covers: what comes after the last one is vouched for by
    # nothing yet (the window docs/security.md describes).
    last = _last_checkpoint_seq(conn)
    covered = {
        str(r[0])
        for r in conn.execute(
            "SELECT asset_id FROM audit WHERE seq < ? AND payload LIKE '%row_asset%'", (last,)
        )
    }
    rows = [r for r in execute(conn, _ASSET_FACTS_SQL).fetchall() if r[2] in covered]
    _, _, *row = rng.choice(rows)
    asset_id = row[0]
    conn.execute(
        "UPDATE assets SET model = 'a-camera', digital_source_type = 'digitalCapture' "
        "WHERE asset_id = ?",
        (asset_id,),
    )
    row[4], row[2] = "a-camera", "digitalCapture"
    for seq, payload in conn.execute(
        "SELECT seq, payload FROM audit WHERE asset_id = ? AND payload LIKE '%row_asset%'",
        (asset_id,),
    ).fetchall():
        body = json.loads(payload)
        body["row_asset"] = _asset_row_hash(row)
        body["model"] = "a-camera"
        conn.execute(
            "UPDATE audit SET payload = ? WHERE seq = ?", (canonical_json(body).decode(), seq)
        )


def checkpoint_other_key(path: Path, rng: random.Random, other: SigningKey) -> None:
    """A consistent rewrite (fact and entry), checkpoints re-signed with another key."""
    conn = attacker(path)
    every = _checkpoint_every(conn)
    _rewrite_fact_consistently(conn, rng)
    _drop_checkpoints(conn)
    rechain(conn)
    _resign(conn, other, every)
    conn.close()


def checkpoint_unsigned(path: Path, rng: random.Random, _: SigningKey) -> None:
    """A consistent rewrite, checkpoints replaced by unsigned ones."""
    conn = attacker(path)
    every = _checkpoint_every(conn)
    _rewrite_fact_consistently(conn, rng)
    _drop_checkpoints(conn)
    rechain(conn)
    _resign(conn, None, every)
    conn.close()


def checkpoint_forged(path: Path, rng: random.Random, _: SigningKey) -> None:
    """A consistent rewrite; the genuine checkpoints moved onto the new hashes (signatures kept)."""
    conn = attacker(path)
    _rewrite_fact_consistently(conn, rng)
    kept = conn.execute("SELECT seq FROM audit WHERE event = 'checkpoint'").fetchall()
    rechain(conn)
    for (seq,) in conn.execute("SELECT seq FROM audit_checkpoints").fetchall():
        new = conn.execute("SELECT entry_hash FROM audit WHERE seq = ?", (seq,)).fetchone()
        if new is not None:
            conn.execute("DROP TRIGGER IF EXISTS audit_checkpoints_no_update")
            conn.execute("UPDATE audit_checkpoints SET entry_hash = ? WHERE seq = ?", (new[0], seq))
    del kept
    conn.close()


def truncate_tail(path: Path, rng: random.Random, _: SigningKey) -> None:
    """The last entries cut (with the rows they recorded and the checkpoints past the cut)."""
    conn = attacker(path)
    last = _last_checkpoint_seq(conn)
    cut = rng.randint(max(1, last // 2), max(1, last - 1))
    rows = conn.execute("SELECT asset_id, payload FROM audit WHERE seq > ?", (cut,)).fetchall()
    for asset_id, payload in rows:
        body = json.loads(payload)
        if "row_file" in body:
            conn.execute("DELETE FROM files WHERE lower(hex(sha256)) = ?", (body["sha256"],))
        if "row_asset" in body:  # the asset and its perceptual rows go too: consistent
            pk = "(SELECT asset_pk FROM assets WHERE asset_id = ?)"
            tables = ("perceptual_hashes", "perceptual_descriptors", "keypoint_features", "assets")
            for table in tables:
                conn.execute(f"DELETE FROM {table} WHERE asset_pk = {pk}", (asset_id,))  # noqa: S608
    conn.execute("DELETE FROM audit WHERE seq > ?", (cut,))
    conn.execute("DELETE FROM audit_checkpoints WHERE seq > ?", (cut,))
    conn.close()


def edit_entry(path: Path, rng: random.Random, _: SigningKey) -> None:
    """Swap two adjacent entries (odd trials) or edit one entry's payload without re-hashing."""
    conn = attacker(path)
    tail = int(conn.execute("SELECT MAX(seq) FROM audit").fetchone()[0])
    seq = rng.randint(2, tail - 1)
    if rng.random() < 0.5:
        conn.execute("UPDATE audit SET seq = -1 WHERE seq = ?", (seq,))
        conn.execute("UPDATE audit SET seq = ? WHERE seq = ?", (seq, seq + 1))
        conn.execute("UPDATE audit SET seq = ? WHERE seq = -1", (seq + 1,))
    else:
        conn.execute(
            "UPDATE audit SET payload = json_set(payload, '$.model', 'a-camera') WHERE seq = ?",
            (seq,),
        )
    conn.close()


def _checkpoint_every(conn: sqlite3.Connection) -> int:
    seqs = [int(r[0]) for r in conn.execute("SELECT seq FROM audit_checkpoints ORDER BY seq")]
    return seqs[0] if seqs else 10


def roll_back(path: Path, early: Path) -> None:
    """Replace the database by an earlier copy of it."""
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(early, path)


TAMPERS: dict[str, Callable[[Path, random.Random, SigningKey], None]] = {
    "edit fact row": edit_fact,
    "delete fact row": delete_fact,
    "swap keypoint rows": swap_keypoints,
    "insert forged entry + rechain": insert_forged_entry,
    "delete checkpoints + rechain": delete_checkpoints,
    "rewrite + checkpoints by another key": checkpoint_other_key,
    "rewrite + unsigned checkpoints": checkpoint_unsigned,
    "rewrite + forged checkpoints": checkpoint_forged,
    "truncate tail": truncate_tail,
    "reorder/edit entry": edit_entry,
}
"""Tamper class -> function(db path, rng, another key). Roll-back is separate (needs a copy)."""
