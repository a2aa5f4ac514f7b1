"""Batches: :func:`sign_many`, :func:`verify_many`, :func:`fingerprint_many`, any number of files.

What this module owns (DESIGN.md decision 9): running the per-file verbs
(:func:`provenance.sign`, :func:`provenance.verify`) over an iterable of paths or
``(bytes, name)`` items on a pool of worker *processes* (c2pa's stream callbacks
retake the GIL, so threads do not scale), and streaming one :class:`BatchRow` per
item back **in input order**. It never prints; the CLI draws the progress bar.

The promises, each tested:

* **One bad file never stops a batch.** Every failure (a corrupt file, an
  unreadable path, a full disk, a worker killed mid-batch) becomes that item's
  row with :attr:`RowStatus.ERROR` and an :class:`ItemError`; the batch goes on.
* **Outputs are all-or-nothing.** Workers write through
  :func:`provenance.atomic.write_atomic` (a dot-prefixed temporary file, fsync,
  rename): no partial file is ever visible under its final name.
* **One writer.** Workers never write to the inventory; the calling process
  records each chunk's signed files in one transaction
  (:meth:`Inventory.record_many`), only after their rename happened.
* **Bounded memory.** The input iterable is consumed lazily; at most
  ``workers * 4`` chunks are in flight; rows are yielded, never collected.
* **Resumable.** With ``resume=True`` (the default) an item whose output exists
  and is recorded in the inventory as signed from the same source is skipped and
  reported as :attr:`RowStatus.SKIPPED`, so a killed batch is simply run again.
* **Workers survive each other.** A worker killed mid-batch breaks the pool
  (``BrokenProcessPool``): the items in flight at that moment are reported as
  errors (their outputs, if written, are not recorded and are redone by the next
  resumed run), the pool is rebuilt and the batch goes on.

Workers start with the ``forkserver`` method where the platform has it (else
``spawn``), never ``fork``: a c2pa ``Context`` does not survive ``fork()``. Each
worker unpickles the :class:`~provenance.keys.SigningKey` once, in the pool
initializer, and builds its c2pa Context and Signer on first use (they are cached
per process by :mod:`provenance.c2pa_adapter`). A callback key (KMS/HSM) works
with ``workers > 1`` only when its callback can be pickled (a module-level
function or a picklable object); otherwise use ``workers=1``.

``workers=1`` runs in the calling process, without a pool.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import multiprocessing
import os
import pickle
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import Any, Generic, TypeVar

from provenance import phash
from provenance.atomic import fsync_folder, write_atomic
from provenance.errors import (
    InventoryError,
    KeyConfigError,
    OutputError,
    ProvenanceError,
    RecordError,
)
from provenance.fingerprint import Fingerprint, decode_for_hashing, fingerprint
from provenance.hashing import sha256_hex
from provenance.inventory import Inventory
from provenance.keys import SigningKey, TrustPolicy
from provenance.reading import read_input, sidecar_record
from provenance.record import ProvenanceRecord
from provenance.sign import SignOptions, sign_bytes
from provenance.types import SignResult, Verdict
from provenance.verify import verify, verify_bytes

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "BatchRow",
    "ItemError",
    "RowStatus",
    "SignItem",
    "fingerprint_many",
    "sidecar_record",
    "sign_many",
    "verify_many",
]

T = TypeVar("T")

DEFAULT_CHUNK_SIZE = 16
"""Items per task sent to a worker.

Measured (benchmarks/batch.py, py-spy): one item costs a worker 6-8 ms (sign,
write, perceptual hashes); each chunk costs the calling process about 1 ms of
CPU besides its items (the pool's round trip, one inventory transaction), CPU
the two workers of a 2-core machine then lack. 16 items make that a few
percent of a worker's item while keeping the items lost to a killed worker,
the latency of the first row and the idle tail of a batch small.
"""

_WINDOW_PER_WORKER = 4
"""Chunks in flight per worker: enough to keep every worker busy while the head
chunk is slow, few enough to bound memory (bytes items travel in chunks)."""

_CHUNK_MAX_BYTES = 16 * 1024 * 1024
"""A chunk of in-memory items closes early past this many bytes."""


class RowStatus(enum.Enum):
    """What happened to one item of a batch."""

    OK = "ok"
    """Done: signed (and recorded), or verified (see the verdict's own status)."""
    SKIPPED = "skipped"
    """Resumed batch: the output exists and the inventory records it."""
    ERROR = "error"
    """The item could not be processed; :attr:`BatchRow.error` says why."""


@dataclass(frozen=True, slots=True)
class ItemError:
    """Why one item failed; picklable, unlike some exceptions.

    Attributes:
        kind: The error's class name (``CorruptFile``, ``OutputError``,
            ``WorkerLost``...).
        message: ``str(err)``: begins with the file's path or name.
    """

    kind: str
    message: str

    def __str__(self) -> str:
        return self.message

    @classmethod
    def from_exception(cls, exc: BaseException, name: str) -> ItemError:
        """Describe ``exc`` for the item ``name`` (prefixed when the message lacks it)."""
        if isinstance(exc, ProvenanceError):
            if exc.path is None:
                exc.with_path(name)
            return cls(type(exc).__name__, str(exc))
        if isinstance(exc, OSError):
            detail = exc.strerror or str(exc)
            return cls(type(exc).__name__, f"{name}: {detail}")
        return cls(type(exc).__name__, f"{name}: unexpected error: {exc}")


@dataclass(frozen=True, slots=True)
class BatchRow(Generic[T]):
    """The outcome for one item, in input order.

    Attributes:
        index: The item's position in the input (0-based).
        name: The item's path, or the name given with its bytes.
        status: Done, skipped or failed.
        result: The :class:`~provenance.types.SignResult` or
            :class:`~provenance.types.Verdict` (also for skipped items: the
            recorded signing); None on error.
        error: Why it failed; None otherwise.
    """

    index: int
    name: str
    status: RowStatus
    result: T | None = None
    error: ItemError | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: the result's own form, plus index, source and status."""
        out: dict[str, Any] = {}
        to_dict = getattr(self.result, "to_dict", None)
        if callable(to_dict):
            out.update(to_dict())
        out.update({"index": self.index, "source": self.name, "status": self.status.value})
        if self.error is not None:
            out["error"] = self.error.message
            out["error_kind"] = self.error.kind
        return out


@dataclass(frozen=True, slots=True)
class SignItem:
    """One image to sign, when a path alone does not say enough.

    Attributes:
        source: The image's path, or its bytes.
        name: Where the signed copy goes, relative to the output folder
            (``"shoes/red.jpg"``); default: the source's file name. Required for
            bytes.
        record: Its provenance record; default: the batch's ``record``, else
            the sidecar ``FILE.json`` (or ``FILE-stem.json``) next to the source.
    """

    source: str | os.PathLike[str] | bytes
    name: str | None = None
    record: ProvenanceRecord | None = None


# --- what travels to a worker ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Job:
    index: int
    name: str
    path: str | None
    data: bytes | None
    dst: str | None = None
    record: ProvenanceRecord | None = None


@dataclass(frozen=True, slots=True)
class _Chunk:
    jobs: tuple[_Job, ...]
    now: datetime | None


@dataclass(frozen=True, slots=True)
class _SignSpec:
    """Everything a signing worker needs, built once per batch."""

    token: str
    key: SigningKey
    record: ProvenanceRecord | None
    options: SignOptions | None
    parent: str | None
    inventory_path: str | None
    resume: bool


@dataclass(frozen=True, slots=True)
class _VerifySpec:
    token: str
    trust: TrustPolicy
    inventory_path: str | None
    partial: bool = True  # issue 21: verify's partial-copy search


@dataclass(frozen=True, slots=True)
class _FingerprintSpec:
    token: str
    inventory_path: None = None


_Spec = _SignSpec | _VerifySpec | _FingerprintSpec
_Outcome = tuple[int, RowStatus, Any, ItemError | None]


@dataclass(frozen=True, slots=True)
class _Signed:
    """A worker's signing result plus the perceptual hashes the writer stores with it."""

    result: SignResult
    reference: phash.ReferenceHashes | None


@dataclass(slots=True)
class _State:
    """One process's long-lived objects for a batch."""

    spec: _Spec
    inventory: Inventory | None
    parent_pid: int | None = None


# One process-wide slot, filled by the pool initializer (or, on Dask, on a
# worker's first task of a batch): the key, trust and read-only inventory of the
# batch this worker serves.
_WORKER: dict[str, _State] = {}


# --- public verbs -----------------------------------------------------------------------


def sign_many(
    items: Iterable[str | os.PathLike[str] | tuple[bytes, str] | SignItem],
    out: str | os.PathLike[str] | None,
    *,
    key: SigningKey,
    record: ProvenanceRecord | None = None,
    parent: str | os.PathLike[str] | None = None,
    options: SignOptions | None = None,
    inventory: Inventory | None = None,
    workers: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    resume: bool = True,
    now: datetime | None = None,
) -> Iterator[BatchRow[SignResult]]:
    """Sign many images; yield one row per item, in input order.

    Args:
        items: Paths, ``(bytes, name)`` pairs or :class:`SignItem` values;
            consumed lazily (a generator over millions of files is fine).
        out: The folder for the signed copies (created if missing); None signs
            path items in place (atomically).
        key: The signing key; it is pickled to the workers (its c2pa Context is
            rebuilt there).
        record: The record for items that carry none; default: each image's
            sidecar ``FILE.json``.
        parent: The original every item is a rendition of, for lineage.
        options: Embedding options.
        inventory: Record each signed file here, one transaction per chunk, in
            this process only. Also what ``resume`` consults.
        workers: Worker processes; 1 runs in this process. 0 means one per CPU.
        chunk_size: Items per task sent to a worker.
        resume: Skip items whose output exists and is recorded in ``inventory``
            as signed from the same source.
        now: The signing time of every item (default: the time each chunk is
            dispatched).

    Yields:
        A :class:`BatchRow` per item whose result is the
        :class:`~provenance.types.SignResult`.

    Raises:
        KeyConfigError: ``workers > 1`` with a callback key whose callback
            cannot be pickled (before anything is signed).
        ValueError: ``workers`` or ``chunk_size`` is negative or zero.
    """
    count = _workers(workers)
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    plan = _sign_plan(
        items,
        out,
        key=key,
        record=record,
        parent=parent,
        options=options,
        inventory=inventory,
        resume=resume,
        check_picklable=count > 1,
    )
    return _execute(plan, count, chunk_size, now)


def verify_many(
    items: Iterable[str | os.PathLike[str] | tuple[bytes, str]],
    *,
    trust: TrustPolicy | None = None,
    inventory: Inventory | None = None,
    workers: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    now: datetime | None = None,
    partial: bool = True,
) -> Iterator[BatchRow[Verdict]]:
    """Verify many images; yield one row per item, in input order.

    Args:
        items: Paths or ``(bytes, name)`` pairs; consumed lazily.
        trust: The trust anchors (default: none, so nothing is ``trusted``).
        inventory: Recognise stripped copies (``known_stripped``); workers open
            it read-only by its path.
        workers: Worker processes; 1 runs in this process. 0 means one per CPU.
        chunk_size: Items per task sent to a worker.
        now: The time certificates are checked at (default: now).
        partial: Run verify's partial-copy search (see :func:`provenance.verify`).

    Yields:
        A :class:`BatchRow` per item whose result is the
        :class:`~provenance.types.Verdict`; a file that cannot be read at all
        is an error row (``verify`` would raise for it).

    Raises:
        ValueError: ``workers`` or ``chunk_size`` is negative or zero.
    """
    count = _workers(workers)
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    plan = _verify_plan(items, trust=trust, inventory=inventory, partial=partial)
    return _execute(plan, count, chunk_size, now)


def fingerprint_many(
    items: Iterable[str | os.PathLike[str] | tuple[bytes, str]],
    *,
    workers: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[BatchRow[Fingerprint]]:
    """Fingerprint many images (file, essence and perceptual hashes), in input order.

    Args:
        items: Paths or ``(bytes, name)`` pairs; consumed lazily.
        workers: Worker processes; 1 runs in this process. 0 means one per CPU.
        chunk_size: Items per task sent to a worker.

    Yields:
        A :class:`BatchRow` per item whose result is the
        :class:`~provenance.fingerprint.Fingerprint`.

    Raises:
        ValueError: ``workers`` or ``chunk_size`` is negative or zero.
    """
    count = _workers(workers)
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    plan = _Plan(
        _FingerprintSpec(token=uuid.uuid4().hex),
        (_verify_job(i, item) for i, item in enumerate(items)),
        _pass_through,
        None,
    )
    return _execute(plan, count, chunk_size, None)


# --- plans (also used by provenance.integrations.dask) ---------------------------------


def _sign_plan(
    items: Iterable[str | os.PathLike[str] | tuple[bytes, str] | SignItem],
    out: str | os.PathLike[str] | None,
    *,
    key: SigningKey,
    record: ProvenanceRecord | None,
    parent: str | os.PathLike[str] | None,
    options: SignOptions | None,
    inventory: Inventory | None,
    resume: bool,
    check_picklable: bool,
) -> _Plan:
    folder = Path(out) if out is not None else None
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create output folder: {exc.strerror}", path=folder) from None
    if check_picklable:
        _check_picklable(key)
    spec = _SignSpec(
        token=uuid.uuid4().hex,
        key=key,
        record=record,
        options=options,
        parent=os.fspath(parent) if parent is not None else None,
        inventory_path=os.fspath(inventory.path) if inventory is not None else None,
        resume=resume and inventory is not None,
    )
    return _Plan(
        spec,
        (_sign_job(i, item, folder) for i, item in enumerate(items)),
        _SignRecorder(inventory, key.subject),
        inventory,
    )


def _verify_plan(
    items: Iterable[str | os.PathLike[str] | tuple[bytes, str]],
    *,
    trust: TrustPolicy | None,
    inventory: Inventory | None,
    partial: bool = True,
) -> _Plan:
    spec = _VerifySpec(
        token=uuid.uuid4().hex,
        trust=trust if trust is not None else TrustPolicy.no_anchors(),
        inventory_path=os.fspath(inventory.path) if inventory is not None else None,
        partial=partial,
    )
    return _Plan(
        spec, (_verify_job(i, item) for i, item in enumerate(items)), _pass_through, inventory
    )


# --- the engine ---------------------------------------------------------------------------


def _workers(workers: int) -> int:
    if workers < 0:
        raise ValueError("workers must be 0 (one per CPU) or more")
    return workers or os.cpu_count() or 1


def _check_picklable(key: SigningKey) -> None:
    try:
        pickle.dumps(key)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise KeyConfigError(
            "a callback signing key can run on worker processes only when its callback "
            f"can be pickled (a module-level function); use workers=1 ({type(exc).__name__})"
        ) from None


@dataclass(frozen=True, slots=True)
class _Plan:
    """A batch ready to run: what workers need, the jobs, the parent's finisher."""

    spec: _Spec
    jobs: Iterator[_Job | BatchRow[Any]]
    finish: Callable[[_Chunk, list[_Outcome]], list[_Outcome]]
    inventory: Inventory | None


def _execute(
    plan: _Plan, workers: int, chunk_size: int, now: datetime | None
) -> Iterator[BatchRow[Any]]:
    """Nothing runs (no pool starts) until the first row is asked for."""
    if workers == 1:
        inline = _Inline(_State(plan.spec, plan.inventory))
        return _stream(plan, inline, chunk_size, now, window=1)
    return _streamed_pool(plan, workers, chunk_size, now)


def _streamed_pool(
    plan: _Plan, workers: int, chunk_size: int, now: datetime | None
) -> Iterator[BatchRow[Any]]:
    pool = _Pool(plan.spec, workers)
    try:
        yield from _stream(plan, pool, chunk_size, now, window=workers * _WINDOW_PER_WORKER)
    finally:
        pool.shutdown()


def _execute_on(
    plan: _Plan,
    executor: Executor,
    spec_ref: Any,
    *,
    chunk_size: int,
    now: datetime | None,
    window: int,
) -> Iterator[BatchRow[Any]]:
    """Run a plan on any ``concurrent.futures.Executor`` (Dask's, for one).

    ``spec_ref`` is what each task receives as its spec: the spec itself, or a
    reference the executor resolves (a Dask future scattered once).
    """
    return _stream(plan, _ExecutorSubmitter(executor, spec_ref), chunk_size, now, window=window)


class _Submitter(abc.ABC):
    """Something that runs a chunk and returns a future of its outcomes."""

    @abc.abstractmethod
    def submit(self, chunk: _Chunk) -> Future[list[_Outcome]]:
        """Start running ``chunk``."""

    def lost(self, exc: BaseException) -> None:  # noqa: B027 - optional hook, no-op by default
        """A chunk's future failed with ``exc`` (the pool may need rebuilding)."""


class _Inline(_Submitter):
    def __init__(self, state: _State) -> None:
        self._state = state

    def submit(self, chunk: _Chunk) -> Future[list[_Outcome]]:
        future: Future[list[_Outcome]] = Future()
        future.set_result(_process(self._state, chunk))
        return future


class _Pool(_Submitter):
    """A process pool that is rebuilt when a worker dies."""

    def __init__(self, spec: _Spec, workers: int) -> None:
        self._spec = spec
        self._workers = workers
        self._executor: ProcessPoolExecutor | None = None

    def _start(self) -> ProcessPoolExecutor:
        if self._executor is None:
            methods = multiprocessing.get_all_start_methods()
            # Never fork: a c2pa Context does not survive it (DESIGN.md decision 1).
            method = "forkserver" if "forkserver" in methods else "spawn"
            context = multiprocessing.get_context(method)
            if method == "forkserver":
                # The fork server (started once per process, on the first pool)
                # imports this module, and with it numpy, Pillow and c2pa, but
                # builds no Context: workers fork from it with everything
                # imported. Measured: the first row of a second pool after
                # 0.04 s instead of 0.4-0.6 s (each worker importing it all).
                context.set_forkserver_preload(["__main__", __name__])
            self._executor = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=context,
                initializer=_init_worker,
                initargs=(self._spec,),
            )
        return self._executor

    def submit(self, chunk: _Chunk) -> Future[list[_Outcome]]:
        try:
            return self._start().submit(_run_chunk, chunk)
        except BrokenProcessPool:
            self.shutdown()
            return self._start().submit(_run_chunk, chunk)

    def lost(self, exc: BaseException) -> None:
        if isinstance(exc, BrokenProcessPool):
            # Every future of the broken pool fails; new chunks go to a new pool.
            self.shutdown()

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


class _ExecutorSubmitter(_Submitter):
    """Any ``concurrent.futures.Executor`` (e.g. Dask's ``Client.get_executor()``)."""

    def __init__(self, executor: Executor, spec: Any) -> None:
        self._executor = executor
        self._spec = spec

    def submit(self, chunk: _Chunk) -> Future[list[_Outcome]]:
        return self._executor.submit(_run_chunk_with, self._spec, chunk)


def _chunks(
    jobs: Iterator[_Job | BatchRow[Any]], size: int
) -> Iterator[tuple[list[_Job], list[BatchRow[Any]]]]:
    """Group jobs; rows already decided (bad items) ride along in order."""
    group: list[_Job] = []
    early: list[BatchRow[Any]] = []
    held = 0
    for job in jobs:
        if isinstance(job, BatchRow):
            early.append(job)
            continue
        group.append(job)
        held += len(job.data) if job.data is not None else 0
        if len(group) >= size or held >= _CHUNK_MAX_BYTES:
            yield group, early
            group, early, held = [], [], 0
    if group or early:
        yield group, early


def _stream(
    plan: _Plan,
    submitter: _Submitter,
    chunk_size: int,
    now: datetime | None,
    *,
    window: int,
) -> Iterator[BatchRow[Any]]:
    pending: deque[tuple[_Chunk, list[BatchRow[Any]], Future[list[_Outcome]] | None]] = deque()
    groups = _chunks(plan.jobs, chunk_size)
    exhausted = False
    while True:
        while not exhausted and len(pending) < window:
            group = next(groups, None)
            if group is None:
                exhausted = True
                break
            chunk = _Chunk(tuple(group[0]), now or datetime.now(timezone.utc))
            pending.append((chunk, group[1], submitter.submit(chunk) if chunk.jobs else None))
        if not pending:
            return
        chunk, early, future = pending.popleft()
        outcomes: list[_Outcome] = []
        if future is not None:
            try:
                outcomes = plan.finish(chunk, future.result())
            except Exception as exc:  # the chunk as a whole was lost (a worker died)
                submitter.lost(exc)
                outcomes = [_lost(job, exc) for job in chunk.jobs]
        yield from _merge(early, chunk, outcomes)


def _merge(
    early: list[BatchRow[Any]], chunk: _Chunk, outcomes: list[_Outcome]
) -> Iterator[BatchRow[Any]]:
    names = {job.index: job.name for job in chunk.jobs}
    rows = [
        BatchRow(index, names[index], status, result, error)
        for index, status, result, error in outcomes
    ]
    yield from sorted([*early, *rows], key=lambda row: row.index)


def _lost(job: _Job, exc: BaseException) -> _Outcome:
    if isinstance(exc, BrokenProcessPool):
        error = ItemError(
            "WorkerLost",
            f"{job.name}: a worker process died while this item was in flight; "
            "nothing was recorded for it (run the batch again to resume)",
        )
    else:
        error = ItemError(type(exc).__name__, f"{job.name}: the task failed: {exc}")
    return (job.index, RowStatus.ERROR, None, error)


def _pass_through(chunk: _Chunk, outcomes: list[_Outcome]) -> list[_Outcome]:
    return outcomes


class _SignRecorder:
    """The single inventory writer: one transaction per chunk, after the renames.

    A chunk's files, their audit entries and their perceptual hashes go in one
    transaction (one commit, one fsync): a file is never recorded without its
    hashes, and the writer's fsyncs do not queue behind the workers' on the
    file system journal once per item.
    """

    def __init__(self, inventory: Inventory | None, signer: str) -> None:
        self._inventory = inventory
        self._signer = signer

    def __call__(self, chunk: _Chunk, outcomes: list[_Outcome]) -> list[_Outcome]:
        if self._inventory is None:
            return outcomes
        moment = chunk.now or datetime.now(timezone.utc)
        sources = {job.index: job.path or job.name for job in chunk.jobs}
        references = {o[0]: o[2].reference for o in outcomes if isinstance(o[2], _Signed)}
        outcomes = [
            (o[0], o[1], o[2].result, o[3]) if isinstance(o[2], _Signed) else o for o in outcomes
        ]
        done = [o for o in outcomes if o[1] is RowStatus.OK]
        try:
            self._record(done, sources, references, moment)
            return outcomes
        except InventoryError:
            pass
        # One result spoiled the transaction: record them one by one to name it.
        fixed: list[_Outcome] = []
        for outcome in outcomes:
            index, status, result, _ = outcome
            if status is RowStatus.OK:
                try:
                    self._record([outcome], sources, references, moment)
                except InventoryError as exc:
                    message = f"{result.path}: written but not recorded in the inventory: {exc}"
                    outcome = (index, RowStatus.ERROR, None, ItemError(type(exc).__name__, message))
            fixed.append(outcome)
        return fixed

    def _record(
        self,
        done: list[_Outcome],
        sources: dict[int, str],
        references: dict[int, phash.ReferenceHashes | None],
        moment: datetime,
    ) -> None:
        assert self._inventory is not None  # noqa: S101 - only called when recording
        self._inventory.record_many(
            [o[2] for o in done],
            signer=self._signer,
            now=moment,
            source_paths=[sources[o[0]] for o in done],
            perceptual=[references.get(o[0]) for o in done],
        )


# --- items --------------------------------------------------------------------------------


def _sign_job(
    index: int, item: str | os.PathLike[str] | tuple[bytes, str] | SignItem, folder: Path | None
) -> _Job | BatchRow[Any]:
    try:
        source, name, record = _unpack(item)
        if isinstance(source, bytes):
            if folder is None:
                raise OutputError("in-memory items need an output folder", path=name)
            return _Job(index, name, None, source, os.fspath(folder / _relative(name)), record)
        path = os.fspath(source)
        dst = path if folder is None else os.fspath(folder / _relative(name))
        return _Job(index, path, path, None, dst, record)
    except ProvenanceError as exc:
        label = _label(item)
        return BatchRow(index, label, RowStatus.ERROR, None, ItemError.from_exception(exc, label))


def _verify_job(index: int, item: str | os.PathLike[str] | tuple[bytes, str]) -> _Job:
    if isinstance(item, tuple):
        data, name = item
        return _Job(index, str(name), None, bytes(data))
    path = os.fspath(item)
    return _Job(index, path, path, None)


def _unpack(
    item: str | os.PathLike[str] | tuple[bytes, str] | SignItem,
) -> tuple[str | os.PathLike[str] | bytes, str, ProvenanceRecord | None]:
    if isinstance(item, SignItem):
        if isinstance(item.source, bytes | bytearray | memoryview):
            if not item.name:
                raise ProvenanceError("an in-memory item needs a name")
            return bytes(item.source), item.name, item.record
        return item.source, item.name or Path(item.source).name, item.record
    if isinstance(item, tuple):
        data, name = item
        return bytes(data), str(name), None
    return item, Path(item).name, None


def _relative(name: str) -> PurePath:
    """An output name must stay inside the output folder."""
    rel = PurePath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise OutputError("output name must be a relative path inside the output folder", path=name)
    return rel


def _label(item: object) -> str:
    if isinstance(item, SignItem):
        return item.name or (
            "<bytes>" if isinstance(item.source, bytes) else os.fspath(item.source)
        )
    if isinstance(item, tuple) and len(item) == 2:
        return str(item[1])
    if isinstance(item, str | os.PathLike):
        return os.fspath(item)
    return repr(item)


# --- worker side ----------------------------------------------------------------------------


def _init_worker(spec: _Spec) -> None:
    """Pool initializer: build this worker's key, trust and inventory once."""
    _WORKER["state"] = _worker_state(spec)


def _worker_state(spec: _Spec) -> _State:
    inventory = None
    if spec.inventory_path is not None and Path(spec.inventory_path).exists():
        # Read-only: the parent is the only writer.
        inventory = Inventory(spec.inventory_path, create=False, read_only=True)
    return _State(spec, inventory, parent_pid=os.getppid())


def _run_chunk(chunk: _Chunk) -> list[_Outcome]:
    """A pool task: one chunk with this worker's state."""
    return _process(_WORKER["state"], chunk)


def _run_chunk_with(spec: _Spec, chunk: _Chunk) -> list[_Outcome]:
    """A task for executors without an initializer (Dask): build state on first use."""
    state = _WORKER.get("state")
    if state is None or state.spec.token != spec.token:
        if state is not None and state.inventory is not None:
            state.inventory.close()
        state = _WORKER["state"] = _worker_state(spec)
    return _process(state, chunk)


def _process(state: _State, chunk: _Chunk) -> list[_Outcome]:
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
                found = fingerprint(job.data if job.data is not None else job.name)
                outcomes.append((job.index, RowStatus.OK, found, None))
        except Exception as exc:  # one bad file never stops a batch
            outcomes.append(
                (job.index, RowStatus.ERROR, None, ItemError.from_exception(exc, job.name))
            )
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
    dst = Path(job.dst)
    if not dst.parent.is_dir():
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create folder: {exc.strerror}", path=dst.parent) from None
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
    try:
        write_atomic(dst, signed, sync_folder=False)  # fsync_folder: end of the chunk
    except OSError as exc:
        raise OutputError(f"cannot write signed file: {exc.strerror}", path=dst) from None
    del signed
    result = dataclasses.replace(result, path=str(dst))
    if spec.inventory_path is None:
        return (job.index, RowStatus.OK, result, None)
    return (job.index, RowStatus.OK, _Signed(result, _reference(data)), None)


def _path_of(job: _Job) -> str:
    assert job.path is not None  # noqa: S101 - a job has a path or bytes
    return job.path


def _reference(data: bytes) -> phash.ReferenceHashes | None:
    """The perceptual hashes the writer stores with the asset, computed here in the worker.

    They are what ``verify`` and ``scan`` recognise resized or re-encoded
    copies by (``synthetic_duplicate``); computing them in the worker keeps the
    decode parallel. Pixels that cannot be decoded leave the asset without them
    (the signing stands), as :func:`provenance.sign.record_perceptual` does.
    """
    try:
        return phash.reference_hashes(decode_for_hashing(data)[0])
    except ProvenanceError:
        return None


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
