"""provenance.batch on real files: order, bad input, full disk, killed workers, resume."""

from __future__ import annotations

import errno
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import time
import types
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from provenance import batch
from provenance._core import phash
from provenance._core.hashing import sha256_hex
from provenance._core.pii import PiiAction, PiiPolicy
from provenance._core.types import SignResult, Status
from provenance._io.keys import DevKeyPaths, SigningKey, TrustPolicy
from provenance.batch import BatchRow, RowStatus, SignItem, sign_many, verify_many
from provenance.errors import KeyConfigError, RecordError
from provenance.inventory import Inventory
from provenance.sign import SignOptions
from provenance.verify import verify
from tests._batch_helpers import DieOnceSigner
from tests.conftest import SAMPLE_MEDIA, SAMPLES, SIGNATURE_SLACK, sample_record

RECORD = sample_record("forest-path.jpg")


def small_images(folder: Path, count: int) -> list[Path]:
    """``count`` distinct small JPEG and PNG renditions of two sample photos."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [
        Image.open(SAMPLE_MEDIA / n).convert("RGB")
        for n in ("forest-path.jpg", "kite-blue-sky.jpg")
    ]
    paths = []
    for i in range(count):
        im = sources[i % 2]
        x, y = (i * 7) % (im.width - 64), (i * 13) % (im.height - 64)
        tile = im.crop((x, y, x + 64, y + 64))
        path = folder / f"img-{i:04d}.{'png' if i % 5 == 0 else 'jpg'}"
        tile.save(path, quality=85) if path.suffix == ".jpg" else tile.save(path)
        paths.append(path)
    return paths


def roundtrip(value: object) -> object:
    return pickle.loads(pickle.dumps(value))  # noqa: S301 - our own bytes


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def inventory_shas(inventory: Inventory) -> set[str]:
    return {f.sha256_hex for a in inventory.assets() for f in a.files}


@pytest.fixture
def inventory(tmp_path: Path) -> Iterator[Inventory]:
    with Inventory(tmp_path / "inventory.sqlite") as inv:
        yield inv


@pytest.mark.parametrize("workers", [1, 2])
def test_sign_many_in_order_recorded_and_trusted(
    tmp_path: Path, signing_key: SigningKey, trust: TrustPolicy, inventory: Inventory, workers: int
) -> None:
    sources = [SAMPLE_MEDIA / n for n in SAMPLES]
    out = tmp_path / "out"
    rows = list(
        sign_many(sources, out, key=signing_key, inventory=inventory, workers=workers, chunk_size=3)
    )
    assert [r.index for r in rows] == list(range(len(sources)))
    assert [r.name for r in rows] == [str(s) for s in sources]
    assert {r.status for r in rows} == {RowStatus.OK}
    results = [r.result for r in rows]
    assert all(isinstance(r, SignResult) for r in results)
    # Records come from each image's sidecar.
    assert [r.result.record.model for r in rows if r.result is not None] == [
        sample_record(n).model for n in SAMPLES
    ]
    assert inventory_shas(inventory) == {sha256_hex((out / n).read_bytes()) for n in SAMPLES}
    assert inventory.audit.verify().ok
    verdicts = list(verify_many(sorted(out.iterdir()), trust=trust, workers=workers))
    assert {v.result.status for v in verdicts if v.result is not None} == {Status.TRUSTED}
    assert len(verdicts) == len(SAMPLES)


@pytest.mark.parametrize("workers", [1, 2])
def test_batch_signed_assets_are_found_when_resized_and_stripped(
    tmp_path: Path, signing_key: SigningKey, trust: TrustPolicy, inventory: Inventory, workers: int
) -> None:
    """Workers hash the pixels; the writer stores them: verify finds altered copies."""
    names = ["rowing-boats-sunset.jpg", "packshot-fire-truck-white.png", "lake-at-dusk.webp"]
    rows = list(
        sign_many(
            [SAMPLE_MEDIA / n for n in names],
            tmp_path / "out",
            key=signing_key,
            inventory=inventory,
            workers=workers,
        )
    )
    assert {r.status for r in rows} == {RowStatus.OK}
    stored = 0
    for name in names:
        with Image.open(tmp_path / "out" / name) as im:
            stored += len(phash.reference_hashes(im).variants)
    assert len(inventory.perceptual_index(phash.SCHEME)) == stored
    for row, name in zip(rows, names, strict=True):
        assert row.result is not None
        with Image.open(tmp_path / "out" / name) as im:
            rgb = im.convert("RGB")
        copy = tmp_path / f"cdn-{Path(name).stem}.jpg"
        rgb.resize((rgb.width // 2, rgb.height // 2), Image.Resampling.LANCZOS).save(
            copy, "JPEG", quality=70
        )
        verdict = verify(copy, trust=trust, inventory=inventory)
        assert verdict.status is Status.SYNTHETIC_DUPLICATE, name
        assert verdict.asset_id == row.result.asset_id


def test_pool_and_inline_give_the_same_results(
    tmp_path: Path, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    sources = small_images(tmp_path / "in", 12)
    by_workers = {}
    added: dict[int, list[int]] = {}
    for workers in (1, 2):
        rows = list(
            sign_many(
                sources, tmp_path / f"out{workers}", key=signing_key, record=RECORD, workers=workers
            )
        )
        by_workers[workers] = [
            (
                r.index,
                r.result.asset_id,
                r.result.essence_sha256_hex,
                r.result.input_sha256_hex,
            )
            for r in rows
            if r.result is not None
        ]
        added[workers] = [r.result.bytes_added for r in rows if r.result is not None]
    assert by_workers[1] == by_workers[2]
    assert all(abs(a - b) <= SIGNATURE_SLACK for a, b in zip(*added.values(), strict=True))
    assert len(by_workers[1]) == 12
    checks = {}
    for workers in (1, 2):
        rows = list(verify_many(files_in(tmp_path / "out1"), trust=trust, workers=workers))
        checks[workers] = [
            (r.index, r.result.status, r.result.sha256_hex) for r in rows if r.result is not None
        ]
    assert checks[1] == checks[2] and len(checks[1]) == 12


def test_bytes_items_and_sign_items(
    tmp_path: Path, signing_key: SigningKey, trust: TrustPolicy, inventory: Inventory
) -> None:
    data = (SAMPLE_MEDIA / "lake-at-dusk.webp").read_bytes()
    items = [
        (data, "upload/lake.webp"),
        SignItem(SAMPLE_MEDIA / "forest-path.jpg", name="deep/er/forest.jpg", record=RECORD),
        SignItem(data, name="../escape.webp", record=RECORD),
        (data, "no-record.webp"),
    ]
    rows = list(
        sign_many(items, tmp_path / "out", key=signing_key, record=None, inventory=inventory)
    )
    assert [r.status for r in rows] == [
        RowStatus.ERROR,
        RowStatus.OK,
        RowStatus.ERROR,
        RowStatus.ERROR,
    ]
    assert rows[0].error is not None and "no record" in rows[0].error.message
    assert rows[2].error is not None and rows[2].error.kind == "OutputError"
    assert (tmp_path / "out" / "deep" / "er" / "forest.jpg").is_file()
    assert not (tmp_path / "escape.webp").exists()
    rows = list(
        sign_many(items[:1], tmp_path / "out", key=signing_key, record=RECORD, inventory=inventory)
    )
    assert rows[0].status is RowStatus.OK
    assert rows[0].result is not None and rows[0].result.path == str(
        tmp_path / "out" / "upload" / "lake.webp"
    )
    verdicts = list(
        verify_many([(data, "original.webp"), (b"not an image", "junk.webp")], trust=trust)
    )
    assert verdicts[0].result is not None and verdicts[0].result.status is Status.NO_PROVENANCE
    assert verdicts[1].status is RowStatus.ERROR and verdicts[1].error is not None
    assert verdicts[1].error.message.startswith("junk.webp")


def test_bad_input_is_reported_per_item_and_the_batch_goes_on(
    tmp_path: Path, signing_key: SigningKey, trust: TrustPolicy, inventory: Inventory
) -> None:
    good = small_images(tmp_path / "in", 4)
    corrupt = tmp_path / "in" / "corrupt.jpg"
    corrupt.write_bytes(good[1].read_bytes()[:200])
    folder = tmp_path / "in" / "folder.jpg"
    folder.mkdir()
    fifo = tmp_path / "in" / "pipe.png"
    os.mkfifo(fifo)
    missing = tmp_path / "in" / "missing.jpg"
    empty = tmp_path / "in" / "empty.png"
    empty.write_bytes(b"")
    items = [good[0], corrupt, folder, good[1], fifo, missing, empty, good[2]]
    before = {p: sha256_hex(p.read_bytes()) for p in (*good, corrupt)}
    out = tmp_path / "out"
    for workers in (1, 2):
        rows = list(
            sign_many(
                items,
                out / str(workers),
                key=signing_key,
                record=RECORD,
                inventory=inventory,
                workers=workers,
            )
        )
        assert [r.status is RowStatus.OK for r in rows] == [
            True,
            False,
            False,
            True,
            False,
            False,
            False,
            True,
        ]
        errors = {Path(r.name).name: r.error for r in rows if r.error is not None}
        assert errors["corrupt.jpg"] is not None and errors["corrupt.jpg"].message.startswith(
            str(corrupt)
        )
        assert "directory" in errors["folder.jpg"].message
        assert "not a regular file" in errors["pipe.png"].message
        assert "no such file" in errors["missing.jpg"].message
        assert "empty" in errors["empty.png"].message
        # Outputs only for the good ones, no temporary files, nothing recorded for the rest.
        assert sorted(p.name for p in (out / str(workers)).iterdir()) == sorted(
            p.name for p in (good[0], good[1], good[2])
        )
    assert {p: sha256_hex(p.read_bytes()) for p in (*good, corrupt)} == before
    assert len(inventory_shas(inventory)) == 6
    assert inventory.audit.verify().ok


def test_a_full_disk_leaves_no_output_and_no_row(
    tmp_path: Path, signing_key: SigningKey, inventory: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = small_images(tmp_path / "in", 5)
    victim = sources[2].name
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        # ENOSPC for the temporary file of one output: what a full disk does at fsync.
        if f".{victim}." in str(Path(f"/proc/self/fd/{fd}").readlink()):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    out = tmp_path / "out"
    rows = list(sign_many(sources, out, key=signing_key, record=RECORD, inventory=inventory))
    assert [r.status for r in rows] == [RowStatus.OK] * 2 + [RowStatus.ERROR] + [RowStatus.OK] * 2
    error = rows[2].error
    assert error is not None and error.kind == "OutputError"
    assert "No space left on device" in error.message and victim in error.message
    assert sorted(p.name for p in out.iterdir()) == sorted(
        s.name for s in sources if s.name != victim
    )
    assert len(inventory_shas(inventory)) == 4


def test_outputs_are_durable_before_they_are_reported(
    tmp_path: Path, signing_key: SigningKey, inventory: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = small_images(tmp_path / "in", 6)
    out = tmp_path / "out"
    real_fsync = os.fsync
    synced: list[tuple[str, list[str]]] = []

    def fsync(fd: int) -> None:
        target = Path(f"/proc/self/fd/{fd}").readlink()
        real_fsync(fd)
        # What is visible under a final name when each fsync returns.
        synced.append(
            (
                "dir" if target.is_dir() else "file",
                sorted(p.name for p in out.iterdir() if not p.name.startswith(".")),
            )
        )

    monkeypatch.setattr(os, "fsync", fsync)
    rows = list(
        sign_many(sources, out, key=signing_key, record=RECORD, inventory=inventory, chunk_size=3)
    )
    assert [r.status for r in rows] == [RowStatus.OK] * 6
    # Every output file is fsynced before its rename; the folder once per chunk,
    # after the chunk's renames, and before the chunk is recorded and reported.
    kinds = [kind for kind, _ in synced]
    assert kinds.count("file") == 6 and kinds.count("dir") == 2
    dirs = [visible for kind, visible in synced if kind == "dir"]
    assert dirs == [sorted(s.name for s in sources[:3]), sorted(s.name for s in sources)]
    assert len(inventory_shas(inventory)) == 6


def test_a_killed_worker_loses_only_its_own_item(
    tmp_path: Path,
    dev_keys: DevKeyPaths,
    trust: TrustPolicy,
    inventory: Inventory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every item goes to a worker (on a slow start the calling process could
    # otherwise sign them all before the first worker is ready).
    monkeypatch.setattr(batch._pool, "_SIGN_WHILE_STARTING", False)
    sentinel = tmp_path / "die-once"
    sentinel.touch()
    key = SigningKey.from_callback(
        DieOnceSigner(dev_keys.private_key.read_bytes(), sentinel), dev_keys.chain.read_bytes()
    )
    sources = small_images(tmp_path / "in", 40)
    out = tmp_path / "out"
    rows = list(
        sign_many(
            sources, out, key=key, record=RECORD, inventory=inventory, workers=2, chunk_size=2
        )
    )
    assert [r.index for r in rows] == list(range(40))
    lost = [r for r in rows if r.status is RowStatus.ERROR]
    # Only the item the dead worker was on fails (issue 19: it was every item
    # in flight, up to the whole window); the rest of its chunk and every other
    # chunk are signed by the other worker and a replacement.
    assert len(lost) == 1, [r.error for r in lost]
    assert lost[0].error is not None and lost[0].error.kind == "WorkerLost"
    assert "killed by signal 9" in lost[0].error.message
    assert lost[0].error.message.startswith(lost[0].name)
    # Every output under its final name is complete; only finished ones are recorded.
    done = [r for r in rows if r.status is RowStatus.OK]
    recorded = inventory_shas(inventory)
    assert recorded == {r.result.sha256_hex for r in done if r.result is not None}
    for path in out.iterdir():
        if not path.name.startswith("."):
            verdict = next(iter(verify_many([path], trust=trust))).result
            assert verdict is not None and verdict.status is Status.TRUSTED
    # Run again: what was lost is signed now, the rest is skipped.
    again = list(sign_many(sources, out, key=key, record=RECORD, inventory=inventory, workers=2))
    assert {r.index for r in again if r.status is RowStatus.OK} == {r.index for r in lost}
    assert {r.index for r in again if r.status is RowStatus.SKIPPED} == {r.index for r in done}
    assert inventory.audit.verify().ok


def _spy_on_chunks_sent_ahead(monkeypatch: pytest.MonkeyPatch) -> list[batch._pool._Task]:
    """The chunks the pool sends a worker while it is still on another one."""
    ahead: list[batch._pool._Task] = []
    dispatch = batch._pool._Pool._dispatch

    def spied(pool: batch._pool._Pool) -> None:
        busy = {id(w): list(w.tasks) for w in pool._workers if w.tasks}
        dispatch(pool)
        for worker in pool._workers:
            if id(worker) in busy:
                ahead.extend(t for t in worker.tasks if t not in busy[id(worker)])

    monkeypatch.setattr(batch._pool._Pool, "_dispatch", spied)
    return ahead


def test_a_killed_worker_s_chunk_sent_ahead_goes_to_another_worker(
    tmp_path: Path,
    dev_keys: DevKeyPaths,
    inventory: Inventory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batch._pool, "_SIGN_WHILE_STARTING", False)
    ahead = _spy_on_chunks_sent_ahead(monkeypatch)
    held: list[list[batch._pool._Task]] = []  # what the dead worker held when it died
    bury = batch._pool._Pool._bury

    def spied_bury(pool: batch._pool._Pool, worker: batch._pool._Worker) -> None:
        held.append(list(worker.tasks))
        bury(pool, worker)

    monkeypatch.setattr(batch._pool._Pool, "_bury", spied_bury)
    sentinel = tmp_path / "die-once"
    sentinel.touch()
    key = SigningKey.from_callback(
        DieOnceSigner(dev_keys.private_key.read_bytes(), sentinel), dev_keys.chain.read_bytes()
    )
    sources = small_images(tmp_path / "in", 24)

    # A chunk lost with its worker would leave the batch waiting for ever: fail instead.
    def hung(signum: int, frame: object) -> None:
        pytest.fail("the batch hung")  # not TimeoutError: the pool waits in steps of those

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)
    try:
        rows = list(
            sign_many(
                sources,
                tmp_path / "out",
                key=key,
                record=RECORD,
                inventory=inventory,
                workers=2,
                chunk_size=3,
            )
        )
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert [r.index for r in rows] == list(range(24))
    assert ahead, "no chunk was sent ahead to a busy worker"
    dead = [tasks for tasks in held if tasks]
    assert len(dead) == 1 and len(dead[0]) == 2, "the killed worker held no chunk ahead"
    its_ahead = {job.index for job in dead[0][1].chunk.jobs}
    lost = [r for r in rows if r.status is RowStatus.ERROR]
    assert len(lost) == 1 and lost[0].index not in its_ahead
    assert lost[0].error is not None and lost[0].error.kind == "WorkerLost"
    # The chunk it held ahead was signed whole by another worker, and recorded.
    assert all(rows[i].status is RowStatus.OK for i in its_ahead)
    done = {r.result.sha256_hex for r in rows if r.status is RowStatus.OK and r.result}
    assert len(done) == 23 and inventory_shas(inventory) == done


def test_neither_a_chunk_too_large_for_the_pipe_nor_a_last_one_is_sent_ahead(
    tmp_path: Path, signing_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch._pool, "_SIGN_WHILE_STARTING", False)
    ahead = _spy_on_chunks_sent_ahead(monkeypatch)
    paths = small_images(tmp_path / "in", 24)
    # In-memory items: each chunk of two pickles to more than the limit (about
    # 40 KB each), so none may wait in a busy worker's pipe; paths may.
    padded = [SignItem(p.read_bytes() + bytes(40_000), name=p.name) for p in paths[:8]]
    items: list[SignItem] = [*padded, *(SignItem(p) for p in paths[8:])]
    rows = list(
        sign_many(items, tmp_path / "out", key=signing_key, record=RECORD, workers=2, chunk_size=2)
    )
    assert [r.status for r in rows] == [RowStatus.OK] * 24
    assert ahead, "no chunk was sent ahead to a busy worker"
    for task in ahead:
        assert all(job.data is None for job in task.chunk.jobs), task.chunk.jobs[0].name
        # The batch's last chunks, cut to one item each, go to whichever worker is
        # free first, so that the two finish together.
        assert len(task.chunk.jobs) == 2, [job.index for job in task.chunk.jobs]


def test_resume_skips_what_is_recorded_and_redoes_what_changed(
    tmp_path: Path, signing_key: SigningKey, inventory: Inventory
) -> None:
    sources = small_images(tmp_path / "in", 6)
    out = tmp_path / "out"
    first = list(sign_many(sources, out, key=signing_key, record=RECORD, inventory=inventory))
    assert {r.status for r in first} == {RowStatus.OK}
    # An output written but never recorded (a crash between rename and commit)...
    (out / sources[1].name).write_bytes((out / sources[0].name).read_bytes())
    # ...a changed source, and a changed record for another file.
    small_images(tmp_path / "other", 9)[8].replace(sources[2])
    changed = RECORD.replace(model_version="2.0")
    items = [SignItem(s, record=changed if i == 3 else None) for i, s in enumerate(sources)]
    second = list(sign_many(items, out, key=signing_key, record=RECORD, inventory=inventory))
    assert [r.status for r in second] == [
        RowStatus.SKIPPED,
        RowStatus.OK,
        RowStatus.OK,
        RowStatus.OK,
        RowStatus.SKIPPED,
        RowStatus.SKIPPED,
    ]
    skipped = second[0].result
    assert skipped == first[0].result
    assert {f.sha256_hex for a in inventory.assets() for f in a.files} >= {
        sha256_hex(p.read_bytes()) for p in out.iterdir()
    }
    third = list(
        sign_many(sources, out, key=signing_key, record=RECORD, inventory=inventory, resume=False)
    )
    assert {r.status for r in third} == {RowStatus.OK}


def test_in_place_and_resume_in_place(
    tmp_path: Path, signing_key: SigningKey, inventory: Inventory
) -> None:
    sources = small_images(tmp_path / "in", 3)
    rows = list(sign_many(sources, None, key=signing_key, record=RECORD, inventory=inventory))
    assert all(
        r.result is not None and r.result.path == str(s) for r, s in zip(rows, sources, strict=True)
    )
    again = list(sign_many(sources, None, key=signing_key, record=RECORD, inventory=inventory))
    assert {r.status for r in again} == {RowStatus.SKIPPED}


def test_an_output_is_never_its_own_source_nor_another_items(
    tmp_path: Path, signing_key: SigningKey, inventory: Inventory
) -> None:
    sources = small_images(tmp_path / "in", 2)
    other = tmp_path / "other" / sources[0].name  # the same name, another image
    other.parent.mkdir()
    small_images(tmp_path / "more", 3)[2].rename(other)
    originals = {p: p.read_bytes() for p in (*sources, other)}
    out = tmp_path / "out"
    items = [sources[0], other, SignItem(sources[1].read_bytes(), name=sources[0].name)]
    rows = list(sign_many(items, out, key=signing_key, record=RECORD, inventory=inventory))
    # The first writes out/img-0000.png; the two others with that name fail alone.
    assert [r.status for r in rows] == [RowStatus.OK, RowStatus.ERROR, RowStatus.ERROR]
    for row in rows[1:]:
        assert row.error is not None and row.error.kind == "OutputError"
        assert "also an earlier item's" in row.error.message
    assert rows[1].error is not None and rows[1].error.message.startswith(str(other))
    assert files_in(out) == [out / sources[0].name]
    signed = rows[0].result
    assert signed is not None and (out / sources[0].name).read_bytes() != originals[sources[0]]
    assert inventory.find_by_sha256(sha256_hex((out / sources[0].name).read_bytes())) is not None
    assert inventory.stats().assets == 1

    # --out where the images are: refused per item, the originals untouched.
    rows = list(
        sign_many(sources, tmp_path / "in", key=signing_key, record=RECORD, inventory=inventory)
    )
    assert [r.status for r in rows] == [RowStatus.ERROR, RowStatus.ERROR]
    for row in rows:
        assert row.error is not None and "would replace this source" in row.error.message
    assert {p: p.read_bytes() for p in (*sources, other)} == originals
    assert inventory.stats().assets == 1


def test_memory_is_bounded_the_input_is_consumed_lazily(
    tmp_path: Path, signing_key: SigningKey
) -> None:
    source = small_images(tmp_path / "in", 1)[0]
    taken = 0

    def endless(bad: bool) -> Iterator[SignItem]:
        nonlocal taken
        while True:
            taken += 1
            # Bad: every item after the first would overwrite the first one's output.
            yield SignItem(source, name="same.jpg" if bad else f"{taken}.jpg")

    for bad in (False, True):
        taken = 0
        rows = sign_many(
            endless(bad), tmp_path / "out", key=signing_key, record=RECORD, workers=2, chunk_size=2
        )
        first = [next(rows) for _ in range(3)]
        assert [r.index for r in first] == [0, 1, 2]
        statuses = [r.status for r in first]
        assert statuses == (
            [RowStatus.OK, RowStatus.ERROR, RowStatus.ERROR] if bad else [RowStatus.OK] * 3
        )
        # The window and the two chunks held back for the tail, not the (infinite)
        # input; nor, when every item fails, the failures gathered behind a pending one.
        assert taken <= 2 * 2 * 4 + 2 * 2 + 2, (bad, taken)
        rows.close()  # type: ignore[attr-defined]


def test_unpicklable_callback_key_needs_one_worker(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    key = SigningKey.from_callback(lambda data: b"x", dev_keys.chain.read_bytes())
    with pytest.raises(KeyConfigError, match="pickled"):
        sign_many([SAMPLE_MEDIA / "forest-path.jpg"], tmp_path, key=key, record=RECORD, workers=2)
    with pytest.raises(ValueError, match="chunk_size"):
        sign_many([], tmp_path, key=key, chunk_size=0)
    with pytest.raises(ValueError, match="workers"):
        verify_many([], workers=-1)


def test_what_travels_to_workers_pickles(signing_key: SigningKey, trust: TrustPolicy) -> None:
    policy = PiiPolicy(
        default=PiiAction.REDACT, per_field={"prompt": PiiAction.REFUSE}, names=("Ann",)
    )
    options = SignOptions(pii_policy=policy)
    assert roundtrip(options) == options
    assert roundtrip(RECORD) == RECORD
    assert roundtrip(trust) == trust
    assert roundtrip(TrustPolicy.no_anchors()) == TrustPolicy.no_anchors()
    key = roundtrip(signing_key)
    assert key.subject == signing_key.subject and key.private_key_pem == signing_key.private_key_pem
    row = BatchRow(0, "x", RowStatus.ERROR, None, batch.ItemError("CorruptFile", "x: bad"))
    assert roundtrip(row) == row
    assert row.to_dict() == {
        "index": 0,
        "source": "x",
        "status": "error",
        "error": "x: bad",
        "error_kind": "CorruptFile",
    }


def test_sidecar_record(tmp_path: Path) -> None:
    image = tmp_path / "shoe.jpg"
    shutil.copyfile(SAMPLE_MEDIA / "forest-path.jpg", image)
    with pytest.raises(RecordError, match="no record"):
        batch.sidecar_record(image)
    (tmp_path / "shoe.json").write_text("{broken")
    with pytest.raises(RecordError, match="record"):
        batch.sidecar_record(image)
    shutil.copyfile(SAMPLE_MEDIA / "forest-path.jpg.json", tmp_path / "shoe.jpg.json")
    assert batch.sidecar_record(image) == RECORD


@pytest.mark.parametrize("workers", [1, 2])
def test_fingerprint_many(tmp_path: Path, workers: int) -> None:
    from provenance.fingerprint import fingerprint

    paths = [SAMPLE_MEDIA / n for n in SAMPLES[:3]]
    items: list[Path | tuple[bytes, str]] = [
        *paths,
        (b"junk", "junk.jpg"),
        (paths[0].read_bytes(), "copy"),
    ]
    rows = list(batch.fingerprint_many(items, workers=workers, chunk_size=2))
    assert [r.status for r in rows] == [RowStatus.OK] * 3 + [RowStatus.ERROR, RowStatus.OK]
    assert [r.result.phash for r in rows if r.result is not None] == [
        fingerprint(p).phash for p in (*paths, paths[0])
    ]
    assert rows[3].error is not None and rows[3].error.message.startswith("junk.jpg")


def test_a_batch_done_before_its_pool_is_up_leaves_no_worker_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch the calling process finishes while the pool starts ends without waiting
    for the pool (issue 20); the workers it was starting are stopped all the same."""
    pools: list[batch._pool._Pool] = []  # kept alive: workers must be stopped, not orphaned
    shutdown = batch._pool._Pool.shutdown

    def keep(pool: batch._pool._Pool) -> None:
        pools.append(pool)
        shutdown(pool)

    monkeypatch.setattr(batch._pool._Pool, "shutdown", keep)
    sources = small_images(tmp_path / "in", 3)
    rows = list(verify_many(sources, workers=2))
    assert [r.status for r in rows] == [RowStatus.OK] * 3
    assert [r.result.status for r in rows if r.result is not None] == [Status.NO_PROVENANCE] * 3
    assert len(pools) == 1
    pools[0]._thread.join(timeout=60)  # the manager: it started the workers, and stops them
    assert not pools[0]._thread.is_alive()

    def workers() -> list[str]:
        return [p.name for p in multiprocessing.active_children() if p.name == "provenance-worker"]

    deadline = time.monotonic() + 30
    while workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not workers()


def test_the_fork_server_preloads_a_main_module_only_when_it_defines_something(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The console script only imports the CLI: the fork server need not import it again."""
    script = types.ModuleType("__main__")
    exec("import sys\nfrom provenance.cli import run\n", script.__dict__)  # noqa: S102
    monkeypatch.setitem(sys.modules, "__main__", script)
    assert batch._forkserver._main_to_preload() == []
    exec("class Signer:\n    pass\n", script.__dict__)  # noqa: S102 - a callback key's signer
    assert batch._forkserver._main_to_preload() == ["__main__"]


def test_the_executor_seam_runs_a_plan_on_any_executor(tmp_path: Path, trust: TrustPolicy) -> None:
    """plan_verify + run_on_executor on a ProcessPoolExecutor: verify_many's rows."""
    sources: list[str | os.PathLike[str] | tuple[bytes, str]] = [
        *small_images(tmp_path / "in", 5),
        tmp_path / "missing.jpg",
        (b"\xff\xd8\xff\xe0 not a jpeg", "bytes.jpg"),
    ]
    local = list(verify_many(sources, trust=trust))
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(2, mp_context=context) as executor:
        plan = batch.plan_verify(sources, trust=trust)
        rows = list(batch.run_on_executor(plan, executor, window=4, chunk_size=2))
        # A task that cannot run (here: no spec) fails its chunk's items, not the batch.
        broken = batch.plan_fingerprint(sources[:3])
        lost = list(batch.run_on_executor(broken, executor, window=2, task_spec="not a spec"))
    assert [(r.index, r.name, r.status) for r in rows] == [
        (r.index, r.name, r.status) for r in local
    ]
    assert [r.result.status for r in rows if r.result is not None] == [
        r.result.status for r in local if r.result is not None
    ]
    assert [r.error for r in rows] == [r.error for r in local]
    assert rows[5].status is RowStatus.ERROR and rows[6].status is RowStatus.ERROR
    assert [r.status for r in lost] == [RowStatus.ERROR] * 3
    assert all(r.error is not None and "needs the plan's spec" in r.error.message for r in lost)
