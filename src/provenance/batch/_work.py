"""The per-file work, as a worker runs it: sign, verify or fingerprint one job.

What this module owns: a worker's long-lived state for a batch (its read-only
inventory), the loop over one chunk's jobs that turns every failure into that
item's error outcome, resume's "already signed?" check, and the task function
an executor without an initializer (Dask) runs. It writes to the inventory
only for a plan made with ``record_in_workers`` (a server inventory, issue 16):
else the calling process is the only writer (:mod:`._plan`).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance._core.hashing import sha256_hex
from provenance._core.record import ProvenanceRecord
from provenance._core.types import SignResult
from provenance._io.atomic import fsync_folder, write_atomic
from provenance._io.database import is_server_url
from provenance._io.reading import read_input, sidecar_record
from provenance.batch._jobs import (
    WorkerSpec,
    _Chunk,
    _FingerprintSpec,
    _Job,
    _Signed,
    _SignSpec,
    _State,
    _VerifySpec,
)
from provenance.batch._plan import _SignRecorder
from provenance.batch._rows import ItemError, RowStatus, _Outcome
from provenance.errors import OutputError, RecordError
from provenance.verify import verify, verify_bytes

if TYPE_CHECKING:
    from provenance.inventory import Inventory

# What each kind of batch runs: imported by a worker before its first item (a
# worker that cannot import it fails to start), and by nothing else, so that
# one file verified in the calling process imports neither the signing side nor,
# without an inventory, numpy and Pillow (issue 20).
_SIDE = {
    _SignSpec: "provenance.sign",
    _VerifySpec: "provenance.verify",
    _FingerprintSpec: "provenance.fingerprint",
}

# One process-wide slot, filled on a Dask worker's first task of a batch: the
# key, trust and read-only inventory of the batch this worker serves.
_WORKER: dict[str, _State] = {}


def _worker_state(spec: WorkerSpec) -> _State:
    importlib.import_module(_SIDE[type(spec)])
    inventory = None
    location = spec.inventory_path
    if location is None:
        return _State(spec, inventory, parent_pid=os.getppid())
    from provenance.inventory import Inventory

    if isinstance(spec, _SignSpec) and spec.record_in_workers:
        # Issue 16: this worker records its own chunks (plan_sign checked it is a server).
        inventory = Inventory(location, create=False)
    elif is_server_url(location) or Path(location).exists():
        # Read-only: the parent is the only writer.
        inventory = Inventory(location, create=False, read_only=True)
    return _State(spec, inventory, parent_pid=os.getppid())


def _run_chunk_with(spec: object, chunk: _Chunk) -> list[_Outcome]:
    """A task for executors without an initializer (Dask): build state on first use.

    ``spec`` is typed ``object`` because an executor may hand over what it
    resolved from a reference (a scattered Dask future); it is checked here.
    """
    if not isinstance(spec, _SignSpec | _VerifySpec | _FingerprintSpec):
        raise TypeError(f"a batch task needs the plan's spec, got {type(spec).__name__}")
    state = _WORKER.get("state")
    if state is None or state.spec.token != spec.token:
        if state is not None and state.inventory is not None:
            state.inventory.close()
        state = _WORKER["state"] = _worker_state(spec)
    outcomes = _process(state, chunk)
    if isinstance(spec, _SignSpec) and spec.record_in_workers:
        # The chunk's files, hashes and audit entries in one transaction, as
        # the calling process would record them (it records nothing then).
        return _SignRecorder(state.inventory, spec.key.subject, spec.key)(chunk, outcomes)
    return outcomes


def _process(
    state: _State, chunk: _Chunk, *, report: Callable[[_Outcome], None] | None = None
) -> list[_Outcome]:
    """Run a chunk's items; ``report`` receives each outcome as soon as it is known."""
    outcomes: list[_Outcome] = []
    for job in chunk.jobs:
        if state.parent_pid is not None and os.getppid() != state.parent_pid:
            # Our parent died (the batch was killed): write nothing more, since
            # a resumed batch may be writing the same outputs now.
            raise SystemExit(1)
        try:
            if isinstance(state.spec, _SignSpec):
                outcomes.append(_sign_one(state, state.spec, job, chunk.now))
            elif isinstance(state.spec, _VerifySpec):
                outcomes.append(_verify_one(state, state.spec, job, chunk.now))
            else:
                from provenance.fingerprint import fingerprint

                found = fingerprint(job.data if job.data is not None else job.name)
                outcomes.append((job.index, RowStatus.OK, found, None))
        except Exception as exc:  # one bad file never stops a batch
            outcomes.append(
                (job.index, RowStatus.ERROR, None, ItemError.from_exception(exc, job.name))
            )
        if report is not None:
            report(outcomes[-1])
    if isinstance(state.spec, _SignSpec):
        # Signed files were renamed without fsyncing their folder each time
        # (one journal commit per file instead of two): the renames become
        # durable here, once per folder, before any of them is reported (and
        # so recorded by the writer).
        done = {o[0] for o in outcomes if o[1] is RowStatus.OK}
        for folder in {Path(job.dst).parent for job in chunk.jobs if job.index in done and job.dst}:
            fsync_folder(folder)
    return outcomes


def _sign_one(state: _State, spec: _SignSpec, job: _Job, now: datetime | None) -> _Outcome:
    assert job.dst is not None  # noqa: S101 - set for every signing job
    record = job.record or spec.record
    if record is None:
        if job.path is None:
            raise RecordError("no record for an in-memory item", path=job.name)
        if not Path(job.path).is_file():
            read_input(job.path)  # raises the error that names the real problem
        record = sidecar_record(job.path)
    if spec.resume and state.inventory is not None:
        done = _already_signed(state.inventory, job, record)
        if done is not None:
            return (job.index, RowStatus.SKIPPED, done, None)
    from provenance.sign import findable_features, sign_bytes

    dst = Path(job.dst)
    # The input is read once: signed, then hashed from the same bytes.
    data = job.data if job.data is not None else read_input(_path_of(job))
    parent_data = read_input(spec.parent) if spec.parent is not None else None
    signed, result = sign_bytes(
        data,
        record=record,
        key=spec.key,
        name=Path(job.name).name,
        parent=parent_data,
        parent_name=Path(spec.parent).name if spec.parent is not None else None,
        options=spec.options,
        now=now,
    )
    if not dst.parent.is_dir():  # made by the first file written into it
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create folder: {exc.strerror}", path=dst.parent) from None
    try:
        write_atomic(dst, signed, sync_folder=False)  # fsync_folder: end of the chunk
    except OSError as exc:
        raise OutputError(f"cannot write signed file: {exc.strerror}", path=dst) from None
    del signed
    result = dataclasses.replace(result, path=str(dst))
    if spec.inventory_path is None:
        return (job.index, RowStatus.OK, result, None)
    limit = spec.options.max_pixels if spec.options is not None else None
    # Computed here in the worker, so the decode runs in parallel.
    reference, local, skipped = findable_features(data, None, max_pixels=limit)
    if skipped is not None:
        result = dataclasses.replace(result, warnings=(*result.warnings, skipped))
    return (job.index, RowStatus.OK, _Signed(result, reference, local), None)


def _path_of(job: _Job) -> str:
    assert job.path is not None  # noqa: S101 - a job has a path or bytes
    return job.path


def _already_signed(inventory: Inventory, job: _Job, record: ProvenanceRecord) -> SignResult | None:
    """The recorded signing of this item, if its output is on disk and recorded.

    Recorded means: a file row with the output's SHA-256, the same source path,
    the same input SHA-256 (unless signed in place) and a record that says the
    same (the prompt is not compared: the personal-data policy may have changed
    it before embedding).
    """
    assert job.dst is not None  # noqa: S101 - set for every signing job
    dst = Path(job.dst)
    if not dst.is_file():
        return None
    try:
        output_sha = sha256_hex(dst.read_bytes())
    except OSError:
        return None
    entry = inventory.find_by_sha256(output_sha)
    if entry is None:
        return None
    source = job.path or job.name
    in_place = job.path is not None and job.path == job.dst
    input_sha = None if in_place else _source_sha(job)
    for file in entry.files:
        if file.sha256_hex != output_sha or file.source_path != source:
            continue
        recorded = file.record or entry.record
        if _essentials(recorded) != _essentials(record):
            continue
        if in_place or file.input_sha256_hex == input_sha:
            return SignResult(
                path=str(dst),
                asset_id=entry.asset_id,
                sha256_hex=file.sha256_hex,
                essence_sha256_hex=entry.essence_sha256_hex,
                input_sha256_hex=file.input_sha256_hex,
                bytes_added=file.bytes_added,
                active_manifest=file.active_manifest,
                record=file.record or entry.record,
                parent_sha256_hex=file.parent_sha256_hex,
            )
    return None


def _essentials(record: ProvenanceRecord) -> tuple[Any, ...]:
    return (
        record.generator,
        record.model,
        record.model_version,
        record.digital_source_type,
        record.created_at,
        dict(record.parameters),
    )


def _source_sha(job: _Job) -> str:
    if job.data is not None:
        return sha256_hex(job.data)
    assert job.path is not None  # noqa: S101 - a job has a path or bytes
    return sha256_hex(read_input(job.path))


def _verify_one(state: _State, spec: _VerifySpec, job: _Job, now: datetime | None) -> _Outcome:
    if job.path is not None:
        verdict = verify(
            job.path, trust=spec.trust, inventory=state.inventory, now=now, partial=spec.partial
        )
    else:
        assert job.data is not None  # noqa: S101 - a job has a path or bytes
        verdict = verify_bytes(
            job.data,
            name=job.name,
            trust=spec.trust,
            inventory=state.inventory,
            now=now,
            partial=spec.partial,
        )
    return (job.index, RowStatus.OK, verdict, None)
