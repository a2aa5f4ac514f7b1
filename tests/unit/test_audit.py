"""The audit hash chain and its checkpoints, without SQLite: entries are built in the test."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.server
import json
import socket
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance._core.record import canonical_json
from provenance._io.keys import SigningKey, TrustPolicy, key_fingerprint
from provenance.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    AuditReport,
    Checkpoint,
    FileWitness,
    HttpWitness,
    MultiWitness,
    ProblemKind,
    SyslogWitness,
    WitnessRecord,
    compute_entry_hash,
    format_audit_time,
    next_entry,
    verify_chain,
    witness_from,
)
from provenance.errors import AuditError

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)
# Signed checkpoints are checked against the certificates' validity at their time,
# and the session's development keys are valid from the start of the test run.
NOW = datetime.now(timezone.utc)


def chain(n: int, *, start: datetime = T0, tag: str = "a") -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = None
    for i in range(n):
        event = AuditEvent.RENDITION_ADDED if i % 3 == 2 else AuditEvent.SIGNED
        prev = next_entry(
            prev,
            event,
            now=start + timedelta(seconds=i),
            asset_id=f"asset-{tag}-{i}",
            payload={"sha256": hashlib.sha256(f"{tag}{i}".encode()).hexdigest(), "n": i},
        )
        entries.append(prev)
    return entries


def rehashed(entry: AuditEntry, **changes: Any) -> AuditEntry:
    """The entry changed and re-hashed, as a forger who knows the scheme would."""
    changed = dataclasses.replace(entry, **changes)
    return dataclasses.replace(changed, entry_hash=changed.computed_hash())


def kinds(report: AuditReport) -> list[tuple[ProblemKind, int]]:
    return [(p.kind, p.seq) for p in report.problems]


# --- entries ------------------------------------------------------------------------


def test_entry_hash_is_sha256_of_the_canonical_json_and_chains_from_zeros() -> None:
    first, second = chain(2)
    body = {
        "seq": 1,
        "at": "2026-03-01T09:30:00.000Z",
        "event": "signed",
        "asset_id": "asset-a-0",
        "payload": dict(first.payload),
        "prev_hash": "0" * 64,
    }
    assert first.prev_hash == GENESIS_HASH == "0" * 64
    assert first.entry_hash == hashlib.sha256(canonical_json(body)).hexdigest()
    assert first.computed_hash() == first.entry_hash
    assert second.prev_hash == first.entry_hash
    assert second.seq == 2


def test_times_are_rfc3339_utc_with_z_and_must_be_aware() -> None:
    moment = datetime(2026, 3, 1, 11, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert format_audit_time(moment) == "2026-03-01T09:30:00.123Z"
    with pytest.raises(AuditError, match="timezone"):
        next_entry(None, AuditEvent.SIGNED, now=datetime(2026, 3, 1))


def test_payload_must_be_json() -> None:
    with pytest.raises(AuditError, match="JSON"):
        next_entry(None, AuditEvent.SIGNED, now=T0, payload={"x": float("nan")})
    with pytest.raises(AuditError, match="JSON"):
        next_entry(None, AuditEvent.SIGNED, now=T0, payload={"x": object()})


def test_entry_round_trips_through_its_dict() -> None:
    entry = chain(3)[2]
    assert AuditEntry.from_dict(entry.to_dict()) == entry
    with pytest.raises(AuditError):
        AuditEntry.from_dict({"seq": 1})


def test_compute_entry_hash_matches_entries() -> None:
    entry = chain(1)[0]
    assert entry.entry_hash == compute_entry_hash(
        seq=1,
        at=entry.at,
        event="signed",
        asset_id=entry.asset_id,
        payload=entry.payload,
        prev_hash=GENESIS_HASH,
    )


# --- the chain ----------------------------------------------------------------------


def test_twenty_entries_verify() -> None:
    entries = chain(20)
    report = verify_chain(entries)
    assert report.ok
    assert report.problems == ()
    assert report.entries_checked == 20
    assert (report.last_seq, report.last_hash) == (20, entries[-1].entry_hash)
    assert report.require_ok() is report


def test_empty_log_verifies() -> None:
    report = verify_chain([])
    assert report.ok and report.last_seq == 0 and report.last_hash == GENESIS_HASH


def test_report_is_not_a_truth_value_and_require_ok_raises() -> None:
    entries = chain(5)
    entries[2] = dataclasses.replace(entries[2], payload={"n": 99})
    report = verify_chain(entries)
    with pytest.raises(TypeError):
        bool(report)
    with pytest.raises(AuditError, match="edited at 3"):
        report.require_ok()
    assert report.to_dict()["problems"][0]["kind"] == "edited"


def test_edited_payload_is_found() -> None:
    entries = chain(20)
    entries[6] = dataclasses.replace(entries[6], payload={**entries[6].payload, "n": 1000})
    assert kinds(verify_chain(entries)) == [(ProblemKind.EDITED, 7)]


def test_edited_event_is_found() -> None:
    entries = chain(20)
    entries[11] = dataclasses.replace(entries[11], event=AuditEvent.INCIDENT_OPENED)
    assert kinds(verify_chain(entries)) == [(ProblemKind.EDITED, 12)]


def test_edited_and_rehashed_entry_is_found_by_the_next_link() -> None:
    entries = chain(20)
    entries[6] = rehashed(entries[6], asset_id="someone-else")
    report = verify_chain(entries)
    assert kinds(report) == [(ProblemKind.EDITED, 7)]
    assert "re-hashed" in report.problems[0].detail


def test_entry_linking_to_neither_neighbour_is_named() -> None:
    entries = chain(20)
    entries[9] = rehashed(entries[9], prev_hash="f" * 64)
    assert kinds(verify_chain(entries)) == [(ProblemKind.EDITED, 10)]


def test_deleted_middle_entry_is_found() -> None:
    entries = chain(20)
    del entries[9]
    report = verify_chain(entries)
    assert kinds(report) == [(ProblemKind.DELETED, 10)]
    assert "entry 10 is missing between entry 9 and entry 11" in report.problems[0].detail


def test_deleted_first_entries_are_found() -> None:
    entries = chain(20)[3:]
    assert kinds(verify_chain(entries)) == [(ProblemKind.DELETED, 1)]


def test_deleted_last_entry_needs_a_checkpoint() -> None:
    entries = chain(20)
    checkpoint = Checkpoint.create(20, entries[-1].entry_hash, now=T0, key=None)
    truncated = entries[:-1]
    assert verify_chain(truncated).ok, "a cut tail is invisible to the chain alone"
    stored = verify_chain(truncated, checkpoints=[checkpoint])
    assert kinds(stored) == [(ProblemKind.TRUNCATED, 20)]
    given_ = verify_chain(truncated, against=checkpoint)
    assert kinds(given_) == [(ProblemKind.TRUNCATED, 20)]
    assert verify_chain(entries, checkpoints=[checkpoint], against=checkpoint).ok


def test_swapped_entries_are_reordered() -> None:
    entries = chain(20)
    entries[4], entries[5] = entries[5], entries[4]
    assert kinds(verify_chain(entries)) == [(ProblemKind.REORDERED, 5)]


def test_entry_moved_to_the_end_is_reordered_not_deleted() -> None:
    entries = chain(20)
    moved = entries.pop(7)
    entries.append(moved)
    report = verify_chain(entries)
    assert kinds(report) == [(ProblemKind.REORDERED, 8)]
    assert "stored after entry 20" in report.problems[0].detail


def test_forged_entry_with_its_own_hash_but_a_wrong_link_is_inserted() -> None:
    entries = chain(20)
    forged = next_entry(None, AuditEvent.SIGNED, now=T0, asset_id="forged")
    forged = rehashed(forged, seq=8)  # a valid hash, but it links to the genesis
    assert forged.computed_hash() == forged.entry_hash
    tampered = [*entries[:7], forged, *entries[7:]]
    assert kinds(verify_chain(tampered)) == [(ProblemKind.INSERTED, 8)]
    after = [*entries[:8], forged, *entries[8:]]
    assert kinds(verify_chain(after)) == [(ProblemKind.INSERTED, 8)]


def test_forged_entry_appended_without_the_link_is_inserted() -> None:
    entries = chain(20)
    forged = rehashed(entries[-1], seq=21, prev_hash="a" * 64, asset_id="forged")
    report = verify_chain([*entries, forged])
    assert kinds(report) == [(ProblemKind.INSERTED, 21)]


def test_duplicate_seq_stored_later_is_inserted() -> None:
    entries = chain(20)
    copy = rehashed(entries[3], payload={"forged": True})
    assert kinds(verify_chain([*entries, copy])) == [(ProblemKind.INSERTED, 4)]


def test_rollback_to_an_older_fork_is_found_with_an_external_checkpoint() -> None:
    original = chain(20)
    kept = Checkpoint.create(15, original[14].entry_hash, now=T0, key=None)
    # An older copy of the log (10 entries), then written on: a different history.
    fork = original[:10]
    for i in range(10):
        fork.append(next_entry(fork[-1], AuditEvent.SIGNED, now=T0, asset_id=f"fork-{i}"))
    assert verify_chain(fork).ok
    report = verify_chain(fork, against=kept)
    assert kinds(report) == [(ProblemKind.ROLLED_BACK, 15)]
    assert "older copy" in report.problems[0].detail
    assert kinds(verify_chain(original[:10], against=kept)) == [(ProblemKind.TRUNCATED, 11)]


def test_entry_differing_from_a_stored_checkpoint_is_edited() -> None:
    entries = chain(20)
    stored = Checkpoint.create(20, entries[-1].entry_hash, now=T0, key=None)
    entries[-1] = rehashed(entries[-1], payload={"n": -1})
    assert verify_chain(entries).ok, "a re-hashed last entry is invisible to the chain alone"
    assert kinds(verify_chain(entries, checkpoints=[stored])) == [(ProblemKind.EDITED, 20)]


def test_checkpoint_entry_without_its_row_is_a_deleted_checkpoint() -> None:
    entries = chain(10)
    checkpoint = Checkpoint.create(10, entries[-1].entry_hash, now=T0, key=None)
    payload = {"checkpoint_seq": 10, "checkpoint_hash": checkpoint.entry_hash, "signed": False}
    entries.append(next_entry(entries[-1], AuditEvent.CHECKPOINT, now=T0, payload=payload))
    assert verify_chain(entries, checkpoints=[checkpoint]).ok
    assert kinds(verify_chain(entries, checkpoints=[])) == [(ProblemKind.DELETED, 10)]


# --- checkpoints --------------------------------------------------------------------


def test_signed_checkpoint_verifies_and_round_trips(
    signing_key: SigningKey, trust: TrustPolicy
) -> None:
    entries = chain(20)
    checkpoint = Checkpoint.create(20, entries[-1].entry_hash, now=NOW, key=signing_key)
    assert checkpoint.is_signed and checkpoint.algorithm == "es256"
    assert checkpoint.signature_problem() is None
    assert checkpoint.signature_problem(trust=trust) is None
    assert Checkpoint.from_json(checkpoint.to_json()) == checkpoint
    report = verify_chain(entries, checkpoints=[checkpoint], against=checkpoint, trust=trust)
    assert report.ok and report.checkpoints_checked == 2


@pytest.mark.parametrize(
    "text",
    ["not json", "[]", '{"format": "other"}', '{"format": "provenance.audit.checkpoint"}'],
)
def test_malformed_checkpoint_json_is_refused(text: str) -> None:
    with pytest.raises(AuditError):
        Checkpoint.from_json(text)


def test_forged_checkpoint_signature_is_bad(signing_key: SigningKey) -> None:
    entries = chain(20)
    good = Checkpoint.create(20, entries[-1].entry_hash, now=NOW, key=signing_key)
    raw = bytearray(base64.b64decode(good.signature_b64 or ""))
    raw[-1] ^= 0x01
    forged = dataclasses.replace(good, signature_b64=base64.b64encode(bytes(raw)).decode())
    report = verify_chain(entries, checkpoints=[forged])
    assert kinds(report) == [(ProblemKind.BAD_CHECKPOINT_SIGNATURE, 20)]


def test_checkpoint_moved_to_another_entry_is_bad(signing_key: SigningKey) -> None:
    entries = chain(20)
    good = Checkpoint.create(20, entries[-1].entry_hash, now=NOW, key=signing_key)
    moved = dataclasses.replace(good, seq=12, entry_hash=entries[11].entry_hash)
    assert kinds(verify_chain(entries, against=moved)) == [
        (ProblemKind.BAD_CHECKPOINT_SIGNATURE, 12)
    ]


def test_checkpoint_signed_by_another_key_is_bad(
    signing_key: SigningKey, other_key: SigningKey, trust: TrustPolicy
) -> None:
    entries = chain(20)
    theirs = Checkpoint.create(20, entries[-1].entry_hash, now=NOW, key=other_key)
    ours = Checkpoint.create(20, entries[-1].entry_hash, now=NOW, key=signing_key)
    # Their signature presented with our certificate chain: does not verify.
    swapped = dataclasses.replace(ours, signature_b64=theirs.signature_b64)
    assert kinds(verify_chain(entries, checkpoints=[swapped])) == [
        (ProblemKind.BAD_CHECKPOINT_SIGNATURE, 20)
    ]
    # Their signature with their own chain verifies, but is not anchored in our trust.
    assert verify_chain(entries, checkpoints=[theirs]).ok
    report = verify_chain(entries, checkpoints=[theirs], trust=trust)
    assert kinds(report) == [(ProblemKind.BAD_CHECKPOINT_SIGNATURE, 20)]
    assert "someone else" in report.problems[0].detail


def test_unsigned_checkpoint_is_bad_only_when_trust_is_required(trust: TrustPolicy) -> None:
    entries = chain(5)
    unsigned = Checkpoint.create(5, entries[-1].entry_hash, now=T0, key=None)
    assert verify_chain(entries, checkpoints=[unsigned]).ok
    assert kinds(verify_chain(entries, checkpoints=[unsigned], trust=trust)) == [
        (ProblemKind.BAD_CHECKPOINT_SIGNATURE, 5)
    ]


def test_bad_checkpoint_is_not_used_to_claim_truncation(signing_key: SigningKey) -> None:
    entries = chain(5)
    fake = Checkpoint.create(50, "b" * 64, now=NOW, key=signing_key)
    fake = dataclasses.replace(fake, signature_b64=base64.b64encode(b"x" * 70).decode())
    assert kinds(verify_chain(entries, checkpoints=[fake])) == [
        (ProblemKind.BAD_CHECKPOINT_SIGNATURE, 50)
    ]


# --- properties ---------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
payloads = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
steps = st.tuples(
    st.sampled_from(list(AuditEvent)),
    st.none() | st.text(min_size=1, max_size=20),
    payloads,
    st.integers(0, 10**6),
)


def build(spec: list[tuple[AuditEvent, str | None, dict[str, Any], int]]) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    moment = T0
    for event, asset_id, payload, millis in spec:
        moment += timedelta(milliseconds=millis)
        prev = entries[-1] if entries else None
        entries.append(next_entry(prev, event, now=moment, asset_id=asset_id, payload=payload))
    return entries


@given(st.lists(steps, min_size=0, max_size=25))
def test_random_chains_verify(spec: list[Any]) -> None:
    entries = build(spec)
    report = verify_chain(entries)
    assert report.ok, report.problems
    assert report.entries_checked == len(entries)
    assert report.last_seq == len(entries)


FIELDS = ("seq", "at", "event", "asset_id", "payload", "prev_hash", "entry_hash")


def mutate(entry: AuditEntry, name: str, salt: int) -> AuditEntry:
    if name == "seq":
        return dataclasses.replace(entry, seq=entry.seq + 1 + salt)
    if name == "at":
        return dataclasses.replace(entry, at=entry.at.replace("Z", "+00:00"))
    if name == "event":
        others = [e for e in AuditEvent if e is not entry.event]
        return dataclasses.replace(entry, event=others[salt % len(others)])
    if name == "asset_id":
        return dataclasses.replace(entry, asset_id=None if entry.asset_id else f"x{salt}")
    if name == "payload":
        return dataclasses.replace(entry, payload={**entry.payload, "\x00tamper": salt})
    digest = getattr(entry, name)
    flipped = ("1" if digest[salt % 64] == "0" else "0").join(
        (digest[: salt % 64], digest[salt % 64 + 1 :])
    )
    if name == "prev_hash":
        return dataclasses.replace(entry, prev_hash=flipped)
    return dataclasses.replace(entry, entry_hash=flipped)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(steps, min_size=1, max_size=20),
    st.data(),
    st.sampled_from(FIELDS),
    st.integers(0, 1000),
)
def test_any_single_entry_mutation_is_detected(
    spec: list[Any], data: st.DataObject, name: str, salt: int
) -> None:
    entries = build(spec)
    index = data.draw(st.integers(0, len(entries) - 1))
    mutated = mutate(entries[index], name, salt)
    entries[index] = mutated
    report = verify_chain(entries)
    assert not report.ok
    assert (ProblemKind.EDITED, mutated.seq) in kinds(report)


@given(st.lists(steps, min_size=3, max_size=20), st.data(), st.sampled_from(FIELDS[1:5]))
def test_any_rehashed_edit_before_the_last_two_is_located(
    spec: list[Any], data: st.DataObject, name: str
) -> None:
    entries = build(spec)
    index = data.draw(st.integers(0, len(entries) - 3))
    entries[index] = rehashed(mutate(entries[index], name, 7))
    assert kinds(verify_chain(entries)) == [(ProblemKind.EDITED, index + 1)]


@given(st.lists(steps, min_size=2, max_size=20), st.data())
def test_any_deletion_but_the_last_is_located(spec: list[Any], data: st.DataObject) -> None:
    entries = build(spec)
    index = data.draw(st.integers(0, len(entries) - 2))
    del entries[index]
    assert kinds(verify_chain(entries)) == [(ProblemKind.DELETED, index + 1)]


@given(st.lists(steps, min_size=2, max_size=20), st.data())
def test_any_adjacent_swap_is_reordered(spec: list[Any], data: st.DataObject) -> None:
    entries = build(spec)
    index = data.draw(st.integers(0, len(entries) - 2))
    entries[index], entries[index + 1] = entries[index + 1], entries[index]
    assert kinds(verify_chain(entries)) == [(ProblemKind.REORDERED, index + 1)]


# --- pinned checkpoints (DESIGN.md decision 17) ---------------------------------------


def test_a_checkpoint_carries_the_log_key_under_its_signature(signing_key: SigningKey) -> None:
    entries = chain(5)
    cp = Checkpoint.create(5, entries[-1].entry_hash, now=NOW, key=signing_key)
    assert cp.log_key == key_fingerprint(signing_key.leaf) == cp.signer_fingerprint()
    assert Checkpoint.from_json(cp.to_json()) == cp
    assert cp.to_dict()["version"] == 2
    claimed = dataclasses.replace(cp, log_key="0" * 64)
    assert "does not verify" in (claimed.signature_problem() or "")


def test_version_1_checkpoints_are_still_read_and_verified(signing_key: SigningKey) -> None:
    entries = chain(5)
    unsigned = Checkpoint(5, entries[-1].entry_hash, format_audit_time(NOW))
    signature = signing_key.sign(unsigned.signed_bytes())
    v1 = dataclasses.replace(
        Checkpoint.create(5, entries[-1].entry_hash, now=NOW, key=signing_key),
        at=unsigned.at,
        signature_b64=base64.b64encode(signature).decode(),
        log_key=None,
    )
    data = v1.to_dict()
    assert data["version"] == 1 and "log_key" not in data
    again = Checkpoint.from_dict(data)
    assert again.signature_problem(pin=key_fingerprint(signing_key.leaf)) is None
    assert verify_chain(entries, checkpoints=[again]).ok


def test_checkpoints_of_another_key_are_refused_once_the_log_is_pinned(
    signing_key: SigningKey, other_key: SigningKey
) -> None:
    entries = chain(20)
    ours = Checkpoint.create(10, entries[9].entry_hash, now=NOW, key=signing_key)
    theirs = Checkpoint.create(20, entries[19].entry_hash, now=NOW, key=other_key)
    # Without a pin, the first signed checkpoint is the log's identity.
    report = verify_chain(entries, checkpoints=[ours, theirs])
    assert kinds(report) == [(ProblemKind.BAD_CHECKPOINT_SIGNATURE, 20)]
    assert "another key" in report.problems[0].detail
    # Pinned to their key from outside (e.g. --keys of the wrong folder): ours is refused.
    pinned = verify_chain(entries, checkpoints=[ours, theirs], pin=key_fingerprint(other_key.leaf))
    assert kinds(pinned) == [(ProblemKind.BAD_CHECKPOINT_SIGNATURE, 10)]


def test_unsigned_stored_checkpoints_are_refused_in_a_pinned_log(signing_key: SigningKey) -> None:
    entries = chain(5)
    unsigned = Checkpoint.create(5, entries[-1].entry_hash, now=NOW, key=None)
    pin = key_fingerprint(signing_key.leaf)
    assert kinds(verify_chain(entries, checkpoints=[unsigned], pin=pin)) == [
        (ProblemKind.BAD_CHECKPOINT_SIGNATURE, 5)
    ]
    # An unsigned checkpoint an operator kept (an export made without keys) is still
    # compared: its value is where it was kept.
    assert verify_chain(entries, against=unsigned, pin=pin).ok


def test_intact_needs_something_outside_the_database(
    signing_key: SigningKey, trust: TrustPolicy
) -> None:
    entries = chain(20)
    cp = Checkpoint.create(10, entries[9].entry_hash, now=NOW, key=signing_key)
    alone = verify_chain(entries, checkpoints=[cp])
    assert alone.ok and not alone.verified and alone.status == "unverified"
    assert any("unverified" in n for n in alone.notes)
    for report in (
        verify_chain(entries, checkpoints=[cp], pin=key_fingerprint(signing_key.leaf)),
        verify_chain(entries, checkpoints=[cp], trust=trust),
        verify_chain(entries, witnessed=[cp]),
    ):
        assert report.ok and report.verified and report.status == "intact"
        assert any("11-20" in n for n in report.notes)  # the tail nothing vouches for yet
    nothing = verify_chain(entries)
    assert nothing.status == "unverified"
    assert nothing.to_dict()["status"] == "unverified"


def test_a_witnessed_checkpoint_catches_truncation_and_rollback(signing_key: SigningKey) -> None:
    entries = chain(20)
    cp = Checkpoint.create(15, entries[14].entry_hash, now=NOW, key=signing_key)
    assert kinds(verify_chain(entries[:12], witnessed=[cp])) == [(ProblemKind.TRUNCATED, 13)]
    fork = chain(20, tag="b")
    assert (ProblemKind.ROLLED_BACK, 15) in kinds(verify_chain(fork, witnessed=[cp]))


# --- the witness ----------------------------------------------------------------------


def test_file_witness_appends_and_reads_back(tmp_path: Path, signing_key: SigningKey) -> None:
    entries = chain(3)
    witness = FileWitness(tmp_path / "w")  # missing folder: the name is the file
    assert witness.read() == []
    cps = [
        Checkpoint.create(i, entries[i - 1].entry_hash, now=NOW, key=signing_key) for i in (1, 3)
    ]
    for cp in cps:
        witness.append(WitnessRecord(entries[0].entry_hash, cp))
    assert [r.checkpoint for r in witness.read()] == cps
    assert {r.log_id for r in witness.read()} == {entries[0].entry_hash}
    folder = tmp_path / "folder"
    folder.mkdir()
    assert FileWitness(folder).path == folder / "audit-witness.jsonl"
    # A crash mid-append leaves a partial last line: skipped, not an error.
    with (tmp_path / "w").open("a") as f:
        f.write('{"format": "provenance.audit.wit')
    assert len(witness.read()) == 2
    (tmp_path / "bad").write_text("not json\n")
    with pytest.raises(AuditError, match="line 1"):
        FileWitness(tmp_path / "bad").read()


def test_http_witness_posts_each_record(signing_key: SigningKey) -> None:
    received: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        witness = witness_from(f"http://127.0.0.1:{server.server_port}/witness")
        assert isinstance(witness, HttpWitness) and not witness.readable
        cp = Checkpoint.create(1, chain(1)[0].entry_hash, now=NOW, key=signing_key)
        witness.append(WitnessRecord("ab" * 32, cp))
        thread.join(timeout=10)
    finally:
        server.server_close()
    assert json.loads(received[0])["checkpoint"] == cp.to_dict()
    with pytest.raises(AuditError):
        HttpWitness("ftp://example.invalid/")
    assert witness_from("  ") is None


def test_syslog_and_several_witnesses_at_once(tmp_path: Path, signing_key: SigningKey) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(10)
        port = server.getsockname()[1]
        witness = witness_from(f"{tmp_path / 'w.jsonl'}, syslog://127.0.0.1:{port}")
        assert isinstance(witness, MultiWitness) and witness.readable
        cp = Checkpoint.create(1, chain(1)[0].entry_hash, now=NOW, key=signing_key)
        witness.append(WitnessRecord("ab" * 32, cp))
        message = server.recv(65536).decode()
    assert message.startswith("<37>provenance-audit: ")
    assert json.loads(message.split(": ", 1)[1])["checkpoint"]["seq"] == 1
    assert [r.checkpoint for r in witness.read()] == [cp]
    assert isinstance(witness_from("syslog"), SyslogWitness)
    with pytest.raises(AuditError, match="syslog"):
        witness_from("syslog://nowhere")


_FLAT_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=40)
)


@settings(max_examples=200, deadline=None)
@given(
    payload=st.dictionaries(st.text(max_size=12), _FLAT_VALUES, max_size=8),
    asset_id=st.one_of(st.none(), st.text(max_size=20)),
    prev_seq=st.integers(0, 2**40),
)
def test_a_flat_payload_serialised_once_hashes_as_the_entry_body_does(
    payload: dict[str, Any], asset_id: str | None, prev_seq: int
) -> None:
    from provenance.audit._chain import _entry_and_json

    prev = "ab" * 32
    entry, text = _entry_and_json(
        prev_seq, prev, AuditEvent.SIGNED, now=T0, asset_id=asset_id, payload=payload
    )
    assert (
        entry
        == next_entry(
            dataclasses.replace(entry, seq=prev_seq, entry_hash=prev) if prev_seq else None,
            AuditEvent.SIGNED,
            now=T0,
            asset_id=asset_id,
            payload=payload,
        )
        or prev_seq == 0
    )
    assert entry.entry_hash == compute_entry_hash(
        seq=prev_seq + 1,
        at=entry.at,
        event=AuditEvent.SIGNED.value,
        asset_id=asset_id,
        payload=payload,
        prev_hash=prev,
    )
    assert text == canonical_json(dict(entry.payload)).decode("utf-8")


def test_an_entry_of_a_flat_payload_keeps_a_read_only_copy() -> None:
    from provenance.audit._chain import _entry_and_json

    payload: dict[str, Any] = {"sha256": "ab" * 32, "n": 3, "gone": None}
    entry, _ = _entry_and_json(
        0, GENESIS_HASH, AuditEvent.SIGNED, now=T0, asset_id="a", payload=payload
    )
    payload["sha256"] = "changed"
    assert entry.payload["sha256"] == "ab" * 32
    with pytest.raises(TypeError):
        entry.payload["n"] = 4  # type: ignore[index]
    assert entry.computed_hash() == entry.entry_hash
    assert entry == AuditEntry.from_dict(entry.to_dict())


def test_a_nested_payload_is_stored_as_the_entry_normalises_it() -> None:
    from provenance.audit._chain import _entry_and_json

    payload = {"rows": ("a", "b"), "counts": {"z": 1, "a": 2}}
    entry, text = _entry_and_json(
        0, GENESIS_HASH, AuditEvent.SIGNED, now=T0, asset_id=None, payload=payload
    )
    assert entry == next_entry(None, AuditEvent.SIGNED, now=T0, payload=payload)
    assert text == '{"counts":{"a":2,"z":1},"rows":["a","b"]}'


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.none(), st.text(alphabet='09afAZ-_ "\\\u00e9\x00\x1f', max_size=30), st.text()
    )
)
def test_a_scalar_of_the_entry_hash_is_its_json_text(value: str | None) -> None:
    from provenance.audit._chain import _scalar

    assert _scalar(value) == json.dumps(value, ensure_ascii=False)


def _reference_row_hash(kind: str, values: list[Any]) -> str:
    """The row serialisation as documented (type tag, length, value), written out plainly."""
    out = kind.encode("ascii")
    for value in values:
        if value is None:
            out += b"N"
        elif isinstance(value, int):
            out += f"I{value}:".encode()
        elif isinstance(value, str):
            data = value.encode("utf-8", "surrogateescape")
            out += f"S{len(data)}:".encode() + data
        else:
            out += f"B{len(value)}:".encode() + value
    return hashlib.sha256(out).hexdigest()


class _Text(str):
    """A str subclass: hashed as its text."""


_COLUMN = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.binary(max_size=12),
    st.binary(min_size=31, max_size=33),  # a SHA-256 column, and either side of it
    st.text(max_size=8),
    st.sampled_from(["signer", "2026-12-07T12:00:00Z", "\udcff"]),
)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.lists(_COLUMN, max_size=6), max_size=6))
def test_row_hashes_with_a_batch_cache_of_text_segments_are_the_documented_ones(
    rows: list[list[Any]],
) -> None:
    from provenance.audit import row_hash

    segments: dict[str, bytes] = {}
    for row in rows:
        expected = _reference_row_hash("file", row)
        assert row_hash("file", row) == expected
        assert row_hash("file", row, segments=segments) == expected
        assert row_hash("file", [_Text(v) if isinstance(v, str) else v for v in row]) == expected


@pytest.mark.parametrize("value", [True, 1.5, bytearray(b"x")])
def test_a_row_hash_refuses_a_value_of_no_column_type(value: object) -> None:
    from provenance.audit import row_hash

    with pytest.raises(AuditError, match="holds a"):
        row_hash("file", ["a", value], segments={})
