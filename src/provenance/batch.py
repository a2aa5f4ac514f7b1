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
* **A dead worker costs one item.** Workers report each item as they finish
  it; a worker killed mid-batch fails only the item it was on (``WorkerLost``,
  nothing recorded for it, redone by the next resumed run); the rest of its
  chunk goes to a replacement and the batch goes on.
* **Workers die with the batch.** However the calling process ends (SIGKILL
  included), its workers stop within a second and write nothing more.
* **No endless waits.** A locked inventory is waited for once per batch, then
  the batch stops with one :class:`~provenance.errors.InventoryError`; a pool
  that cannot start is one :class:`~provenance.errors.WorkerPoolError`.

Workers start with the ``forkserver`` method where the platform has it (else
``spawn``), never ``fork``: a c2pa ``Context`` does not survive ``fork()``. Each
worker unpickles the :class:`~provenance.keys.SigningKey` once, when it starts,
and builds its c2pa Context and Signer on first use (they are cached per process
by :mod:`provenance.c2pa_adapter`). While the workers start, the calling process
signs the first chunks itself. A callback key (KMS/HSM) works
with ``workers > 1`` only when its callback can be pickled (a module-level
function or a picklable object); otherwise use ``workers=1``.

``workers=1`` runs in the calling process, without a pool.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import dataclasses
import enum
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing.connection import Connection, wait
from pathlib import Path, PurePath
from typing import Any, Generic, TypeVar

from provenance import keypoints, phash
from provenance._sqlite import is_lock_error
from provenance.atomic import fsync_folder, write_atomic
from provenance.errors import (
    InventoryError,
    KeyConfigError,
    OutputError,
    ProvenanceError,
    RecordError,
    WorkerPoolError,
)
from provenance.fingerprint import Fingerprint, fingerprint
from provenance.hashing import sha256_hex
from provenance.inventory import Inventory
from provenance.keys import SigningKey, TrustPolicy
from provenance.reading import read_input, sidecar_record
from provenance.record import ProvenanceRecord
from provenance.sign import SignOptions, findable_features, sign_bytes
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

_SIGN_WHILE_STARTING = True
"""The calling process works on the first chunks while the pool starts (issue 20).

Off only to measure what it saves (``benchmarks/batch_cold.py``)."""

_START_ATTEMPTS = 3
"""Worker starts that may fail in a row (a killed fork server is restarted each
time) before the batch stops with :class:`~provenance.errors.WorkerPoolError`."""


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
    """A worker's signing result plus what the writer stores with it to find copies.

    ``reference``: the perceptual hashes; ``local``: the keypoints of the
    partial-copy search (issue 21), from the same decode.
    """

    result: SignResult
    reference: phash.ReferenceHashes | None
    local: keypoints.LocalFeatures | None = None


@dataclass(slots=True)
class _State:
    """One process's long-lived objects for a batch."""

    spec: _Spec
    inventory: Inventory | None
    parent_pid: int | None = None


# One process-wide slot, filled on a Dask worker's first task of a batch: the
# key, trust and read-only inventory of the batch this worker serves.
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
        InventoryError: While iterating: another process held the
            inventory's write lock for its whole busy timeout, before anything
            was signed (waited once per batch) or mid-batch (the batch stops;
            a resumed run redoes what was written but not recorded).
        WorkerPoolError: While iterating, ``workers > 1``: the worker
            processes could not be started.
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
        WorkerPoolError: While iterating, ``workers > 1``: the worker
            processes could not be started.
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
        _check_creatable(folder)
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
    recorder = _SignRecorder(inventory, key.subject, key)
    return _Plan(
        spec,
        (_sign_job(i, item, folder) for i, item in enumerate(items)),
        recorder,
        inventory,
        recorder.wait_for_lock,
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
    prepare: Callable[[], None] | None = None
    """Run once before the first item (the signing batch's inventory lock check)."""


def _execute(
    plan: _Plan, workers: int, chunk_size: int, now: datetime | None
) -> Iterator[BatchRow[Any]]:
    """Nothing runs (no pool starts) until the first row is asked for."""
    if workers == 1:
        return _streamed_inline(plan, chunk_size, now)
    return _streamed_pool(plan, workers, chunk_size, now)


def _streamed_inline(plan: _Plan, chunk_size: int, now: datetime | None) -> Iterator[BatchRow[Any]]:
    if plan.prepare is not None:
        plan.prepare()
    inline = _Inline(_State(plan.spec, plan.inventory))
    yield from _stream(plan, inline, chunk_size, now, window=1)


def _streamed_pool(
    plan: _Plan, workers: int, chunk_size: int, now: datetime | None
) -> Iterator[BatchRow[Any]]:
    if plan.prepare is not None:
        plan.prepare()  # before any process starts: a locked inventory stops us here
    # While the workers start (about a second: the fork server imports numpy,
    # Pillow and c2pa), this process signs the first chunks itself.
    inline = _State(plan.spec, plan.inventory) if _SIGN_WHILE_STARTING else None
    pool = _Pool(plan.spec, workers, inline)
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

    def result(self, future: Future[list[_Outcome]]) -> list[_Outcome]:
        """Wait for ``future`` (a pool may do some work in the meantime)."""
        return future.result()


class _Inline(_Submitter):
    def __init__(self, state: _State) -> None:
        self._state = state

    def submit(self, chunk: _Chunk) -> Future[list[_Outcome]]:
        future: Future[list[_Outcome]] = Future()
        future.set_result(_process(self._state, chunk))
        return future


class _Pool(_Submitter):
    """Worker processes that each hold one chunk at a time, and report item by item.

    Why not ``ProcessPoolExecutor`` (issue 19): when one of its workers dies,
    every future in flight fails (``BrokenProcessPool``), so 128 items became
    errors for one killed process; and its workers, forked from the fork
    server, outlive a calling process killed with SIGKILL. Here:

    * each worker sends every item's outcome as soon as it has it, so when a
      worker dies the parent knows the one item it was on: that item alone
      fails (``WorkerLost``), the rest of its chunk goes to a new worker;
    * each worker dies with the calling process: it watches a pipe whose only
      writing end the caller holds (EOF when the caller dies, on any platform),
      and on Linux also asks the kernel for SIGKILL when its parent dies
      (``PR_SET_PDEATHSIG``);
    * start-up is off the critical path: workers are started by a manager
      thread while the calling process signs the first chunks itself, until
      the first worker is ready;
    * a worker that cannot be started is retried (a killed fork server is
      restarted); after :data:`_START_ATTEMPTS` failures in a row the batch
      stops with one :class:`~provenance.errors.WorkerPoolError`.
    """

    def __init__(self, spec: _Spec, workers: int, inline: _State | None) -> None:
        self._spec = spec
        self._size = workers
        self._inline = inline
        self._context = _pool_context()
        self._lock = threading.Lock()
        self._queue: deque[_Task] = deque()
        self._workers: list[_Worker] = []
        self._any_ready = threading.Event()
        self._failure: WorkerPoolError | None = None
        self._start_failures = 0
        self._closing = False
        self._wake_r, self._wake_w = multiprocessing.Pipe(duplex=False)
        # Workers get the reading end; only this process holds the writing end,
        # so the kernel closes it (EOF in every worker) when this process dies.
        self._alive_r, self._alive_w = self._context.Pipe(duplex=False)
        self._thread = threading.Thread(target=self._manage, name="provenance-pool", daemon=True)
        self._thread.start()

    # --- the calling thread -------------------------------------------------------------

    def submit(self, chunk: _Chunk) -> Future[list[_Outcome]]:
        task = _Task(chunk, Future(), deque(chunk.jobs), [])
        with self._lock:
            if self._failure is not None:
                task.future.set_exception(self._failure)
                return task.future
            self._queue.append(task)
        self._wake()
        return task.future

    def result(self, future: Future[list[_Outcome]]) -> list[_Outcome]:
        while not future.done():
            if self._inline is not None and not self._any_ready.is_set():
                task = self._take()
                if task is not None:
                    # No worker is up yet: sign here rather than wait for them.
                    task.future.set_result(_process(self._inline, task.chunk))
                    continue
            with contextlib.suppress(TimeoutError):
                return future.result(timeout=0.1)
        return future.result()

    def _take(self) -> _Task | None:
        with self._lock:
            if self._any_ready.is_set() or not self._queue:
                return None
            return self._queue.popleft()

    def shutdown(self) -> None:
        with self._lock:
            self._closing = True
            abandoned = list(self._queue)
            self._queue.clear()
        for task in abandoned:
            task.future.cancel()
        self._wake()
        self._thread.join()
        for worker in self._workers:
            if worker.task is None:
                with contextlib.suppress(OSError, ValueError):
                    worker.conn.send(None)  # finish: the worker returns
            else:
                # The caller stopped reading mid-batch: stop the chunk; its
                # unreported outputs are not recorded and a resumed run redoes them.
                worker.process.terminate()
        for worker in self._workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=5)
            worker.conn.close()
        self._workers.clear()
        for conn in (self._alive_w, self._alive_r, self._wake_r, self._wake_w):
            conn.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._wake_w.send_bytes(b"")

    # --- the manager thread -------------------------------------------------------------

    def _manage(self) -> None:
        try:
            self._serve()
        except Exception as exc:  # never leave the caller waiting on a dead manager
            self._fail(WorkerPoolError(f"the worker pool failed: {type(exc).__name__}: {exc}"))

    def _serve(self) -> None:
        while True:
            with self._lock:
                if self._closing:
                    return
            self._top_up()
            self._dispatch()
            conns = {id(w.conn): w for w in self._workers}
            sentinels = {w.process.sentinel: w for w in self._workers}
            waitables: list[Any] = [self._wake_r, *(w.conn for w in self._workers)]
            for ready in wait([*waitables, *sentinels]):
                if ready is self._wake_r:
                    with contextlib.suppress(EOFError, OSError):
                        while self._wake_r.poll():
                            self._wake_r.recv_bytes()
                elif isinstance(ready, int):
                    self._bury(sentinels[ready])
                elif id(ready) in conns and conns[id(ready)] in self._workers:
                    worker = conns[id(ready)]
                    try:
                        self._receive(worker, worker.conn.recv())
                    except (EOFError, OSError):
                        self._bury(worker)

    def _top_up(self) -> None:
        """Start workers until there are enough (unless the pool has failed)."""
        while len(self._workers) < self._size and self._failure is None and not self._closing:
            conn, child = self._context.Pipe(duplex=True)
            process = self._context.Process(
                target=_worker_main,
                args=(self._spec, child, self._alive_r),
                name="provenance-worker",
                daemon=True,
            )
            try:
                process.start()
            except Exception as exc:
                # e.g. the fork server was killed while starting (EOFError,
                # ConnectionError): the next attempt starts a new one.
                conn.close()
                self._started_badly(f"{type(exc).__name__}: {exc}")
                continue
            finally:
                child.close()
            self._workers.append(_Worker(process, conn))

    def _started_badly(self, reason: str) -> None:
        self._start_failures += 1
        if self._closing:
            return  # the caller stopped (Ctrl-C during start-up): no retry
        if self._start_failures < _START_ATTEMPTS:
            # A fork server killed a moment ago has closed its socket but may
            # not be reaped yet (multiprocessing then thinks it still runs):
            # give it time to become a zombie, so the next start replaces it.
            time.sleep(0.1 * self._start_failures)
        else:
            self._fail(
                WorkerPoolError(
                    f"cannot start the batch's worker processes ({self._start_failures} "
                    f"attempts; last: {reason}); nothing more was processed. "
                    "Run with workers=1 (--workers 1) to work in this process"
                )
            )

    def _fail(self, error: WorkerPoolError) -> None:
        with self._lock:
            self._failure = error
            queued = list(self._queue)
            self._queue.clear()
        for task in queued:
            task.future.set_exception(error)
        for worker in self._workers:
            if worker.task is not None:
                worker.task.future.set_exception(error)
                worker.task = None

    def _dispatch(self) -> None:
        for worker in self._workers:
            if not worker.ready or worker.task is not None:
                continue
            with self._lock:
                if not self._queue:
                    return
                task = self._queue.popleft()
            worker.task = task
            with contextlib.suppress(OSError, ValueError):  # died: _bury requeues it
                worker.conn.send(_Chunk(tuple(task.todo), task.chunk.now))

    def _receive(self, worker: _Worker, message: tuple[str, Any]) -> None:
        kind, value = message
        if kind == "ready":
            worker.ready = True
            self._start_failures = 0
            self._any_ready.set()
        elif kind == "failed":
            # Building the worker's state failed (the inventory cannot be
            # opened, say): every other worker would fail the same way.
            self._fail(WorkerPoolError(f"a worker process could not start: {value}"))
        elif kind == "item" and worker.task is not None:
            task = worker.task
            task.outcomes.append(value)
            if task.todo and task.todo[0].index == value[0]:
                task.todo.popleft()
        elif kind == "done" and worker.task is not None:
            task, worker.task = worker.task, None
            task.future.set_result(task.outcomes)

    def _bury(self, worker: _Worker) -> None:
        """A worker died: its current item fails alone, the rest of its chunk is requeued."""
        if worker not in self._workers:
            return
        with contextlib.suppress(EOFError, OSError):
            while worker.conn.poll():  # what it said before it died still counts
                self._receive(worker, worker.conn.recv())
        self._workers.remove(worker)
        worker.process.join(timeout=1)
        worker.conn.close()
        if not worker.ready and worker.task is None:
            self._started_badly(f"a new worker exited with status {worker.process.exitcode}")
            return
        task, worker.task = worker.task, None
        if task is None or task.future.done():
            return
        # The outputs it finished were renamed without a folder fsync (it dies
        # before the end of its chunk): make them durable before they are recorded.
        if isinstance(self._spec, _SignSpec):
            done = {o[0] for o in task.outcomes if o[1] is RowStatus.OK}
            for folder in {
                Path(j.dst).parent for j in task.chunk.jobs if j.index in done and j.dst
            }:
                fsync_folder(folder)
        if task.todo:
            job = task.todo.popleft()
            task.outcomes.append(_worker_lost(job, worker.process.exitcode))
        if not task.todo:
            task.future.set_result(task.outcomes)
            return
        with self._lock:
            if self._failure is None:
                self._queue.appendleft(task)  # the rest of its chunk, next in line
                return
        task.future.set_exception(self._failure)


@dataclass(slots=True)
class _Task:
    """A chunk submitted to the pool: what is left of it, and what came back."""

    chunk: _Chunk
    future: Future[list[_Outcome]]
    todo: deque[_Job]
    outcomes: list[_Outcome]


@dataclass(slots=True, eq=False)
class _Worker:
    process: Any  # multiprocessing.process.BaseProcess
    conn: Connection
    ready: bool = False
    task: _Task | None = None


def _pool_context() -> Any:  # a forkserver or spawn context (typeshed has no common type)
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
    return context


def _worker_lost(job: _Job, exitcode: int | None) -> _Outcome:
    how = f"was killed by signal {-exitcode}" if exitcode and exitcode < 0 else "died"
    error = ItemError(
        "WorkerLost",
        f"{job.name}: the worker process {how} while on this item; nothing was "
        "recorded for it (run the batch again to resume)",
    )
    return (job.index, RowStatus.ERROR, None, error)


def _worker_main(spec: _Spec, conn: Connection, alive: Connection) -> None:
    """A pool worker: build the state once, then run chunks until told to stop."""
    # Ctrl-C reaches the whole process group: the caller handles it (and stops
    # its workers); a worker must not die mid-item with a traceback of its own.
    # First thing: the fork server restores the default handler in the child,
    # and loading libc for the parent-death guard below takes long enough for a
    # second Ctrl-C to land in between (seen in the Ctrl-C test under load).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(alive)
    try:
        state = _worker_state(spec)
    except Exception as exc:  # reported to the parent, which stops the batch
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    try:
        conn.send(("ready", None))
        while True:
            chunk = conn.recv()
            if chunk is None:
                return
            _process(state, chunk, report=lambda outcome: conn.send(("item", outcome)))
            conn.send(("done", None))
    except (EOFError, OSError):
        # The caller is gone (its end of the pipe closed): stop, quietly.
        os._exit(1)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(alive: Connection) -> None:
    """Exit as soon as the calling process dies, killed or not (issue 19).

    A worker's parent is the fork server, not the calling process, so
    ``getppid()`` says nothing about the caller. Two guards: a thread that
    waits for EOF on ``alive`` (only the caller holds its writing end) and
    exits at once; and on Linux ``PR_SET_PDEATHSIG``, so the kernel kills the
    worker when its parent (the fork server, which exits when the caller does)
    dies, even if the thread cannot run.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    threading.Thread(
        target=_exit_on_eof, args=(alive,), name="provenance-parent", daemon=True
    ).start()


def _exit_on_eof(alive: Connection) -> None:
    with contextlib.suppress(EOFError, OSError):
        alive.recv_bytes()  # nothing is ever sent: returns only at EOF
    os._exit(1)


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
                done = submitter.result(future)
            except WorkerPoolError:
                raise  # no worker can be started: one error for the batch
            except Exception as exc:  # the chunk as a whole was lost (an executor's worker died)
                outcomes = [_lost(job, exc) for job in chunk.jobs]
            else:
                # A locked inventory raises here, once: the batch stops.
                outcomes = plan.finish(chunk, done)
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

    def __init__(
        self, inventory: Inventory | None, signer: str, key: SigningKey | None = None
    ) -> None:
        self._inventory = inventory
        self._signer = signer
        if inventory is not None and key is not None and inventory.audit.checkpoint_key is None:
            # The key the batch signs with also signs the audit checkpoints on their
            # schedule (DESIGN.md decision 17); without it none were ever taken.
            inventory.audit.checkpoint_key = key

    def wait_for_lock(self) -> None:
        """Wait (up to the busy timeout, once) for the write lock, before signing anything.

        Raises:
            InventoryError: Another process held the lock all that time; one
                error for the whole batch, nothing was signed.
        """
        if self._inventory is None:
            return
        try:
            # An empty transaction: BEGIN IMMEDIATE takes the write lock, COMMIT frees it.
            self._inventory.record_many([], signer=self._signer, now=datetime.now(timezone.utc))
        except InventoryError as exc:
            if not is_lock_error(exc):
                raise
            raise InventoryError(
                f"inventory is locked by another process (waited "
                f"{self._busy_timeout_s:g} s); nothing was signed. Find the process "
                "holding the lock, or run again when it is done",
                path=self._inventory.path,
            ) from exc

    @property
    def _busy_timeout_s(self) -> float:
        db = getattr(self._inventory, "_db", None)
        return float(getattr(db, "busy_timeout_s", 0.0))

    def __call__(self, chunk: _Chunk, outcomes: list[_Outcome]) -> list[_Outcome]:
        if self._inventory is None:
            return outcomes
        moment = chunk.now or datetime.now(timezone.utc)
        sources = {job.index: job.path or job.name for job in chunk.jobs}
        references = {
            o[0]: (o[2].reference, o[2].local) for o in outcomes if isinstance(o[2], _Signed)
        }
        outcomes = [
            (o[0], o[1], o[2].result, o[3]) if isinstance(o[2], _Signed) else o for o in outcomes
        ]
        done = [o for o in outcomes if o[1] is RowStatus.OK]
        try:
            self._record(done, sources, references, moment)
            return outcomes
        except InventoryError as exc:
            if is_lock_error(exc):
                # Another process held the lock for the whole busy timeout: do
                # not wait that long again for every chunk (or, below, every
                # file): stop the batch with one error (issue 19).
                raise InventoryError(
                    f"inventory is locked by another process (waited "
                    f"{self._busy_timeout_s:g} s); the batch stopped: {len(done)} file(s) "
                    "signed last were written but not recorded, and nothing more was "
                    "signed (run the batch again to resume)",
                    path=self._inventory.path,
                ) from exc
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
        references: dict[int, tuple[phash.ReferenceHashes | None, keypoints.LocalFeatures | None]],
        moment: datetime,
    ) -> None:
        assert self._inventory is not None  # noqa: S101 - only called when recording
        self._inventory.record_many(
            [o[2] for o in done],
            signer=self._signer,
            now=moment,
            source_paths=[sources[o[0]] for o in done],
            perceptual=[references.get(o[0], (None, None))[0] for o in done],
            keypoints=[references.get(o[0], (None, None))[1] for o in done],
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


def _worker_state(spec: _Spec) -> _State:
    inventory = None
    if spec.inventory_path is not None and Path(spec.inventory_path).exists():
        # Read-only: the parent is the only writer.
        inventory = Inventory(spec.inventory_path, create=False, read_only=True)
    return _State(spec, inventory, parent_pid=os.getppid())


def _run_chunk_with(spec: _Spec, chunk: _Chunk) -> list[_Outcome]:
    """A task for executors without an initializer (Dask): build state on first use."""
    state = _WORKER.get("state")
    if state is None or state.spec.token != spec.token:
        if state is not None and state.inventory is not None:
            state.inventory.close()
        state = _WORKER["state"] = _worker_state(spec)
    return _process(state, chunk)


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


def _check_creatable(folder: Path) -> None:
    """Fail early when the output folder cannot be made; it is made by the first write.

    Created lazily (red-team issue 19): a batch in which every file fails leaves no
    empty output folder behind.
    """
    ancestor = folder
    while not ancestor.exists() and ancestor.parent != ancestor:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError("cannot create output folder: not a directory", path=ancestor)
    if ancestor != folder and not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError("cannot create output folder: permission denied", path=ancestor)


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
