"""The local worker pool: processes that start off the critical path and die with the batch.

What this module owns (DESIGN.md decision 9): the worker processes of a local
batch. The pool first takes the workers ``warm_up`` forked from the calling
process before it built a c2pa ``Context`` (:mod:`._standby`, decision 1, issue
20); it starts any others with the ``forkserver`` method where the platform has
it (else ``spawn``), never by forking a process that may hold a ``Context``
(it does not survive ``fork()``). Each builds its state once and reports every
item as it finishes it (:mod:`._worker`), so a killed worker costs one item;
each dies with the calling process (a pipe only the caller writes to, and
``PR_SET_PDEATHSIG`` on Linux). While fork-server workers start, the calling
process works on the first chunks itself (issue 20).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import selectors
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

from provenance._io.atomic import fsync_folder
from provenance.batch._forkserver import pool_context
from provenance.batch._jobs import WorkerSpec, _Chunk, _Job, _SignSpec, _State
from provenance.batch._plan import BatchPlan
from provenance.batch._rows import BatchRow, ItemError, RowStatus, _Outcome
from provenance.batch._standby import claim, waiting
from provenance.batch._stream import _stream, _Submitter
from provenance.batch._worker import _worker_main
from provenance.errors import WorkerPoolError

_WINDOW_PER_WORKER = 4
"""Chunks in flight per worker: enough to keep every worker busy while the head
chunk is slow, few enough to bound memory (bytes items travel in chunks)."""

_AHEAD_MAX_BYTES = 32 * 1024
"""A busy worker is sent its next chunk ahead when the chunk pickles to at most this.

The chunk waits in the worker's pipe, so the worker starts it as soon as it
has reported the last item of its current one, instead of waiting for the
manager thread to read that report and answer (which waits for the GIL while
the calling thread records a chunk): 20 ms per worker per 200-file batch
(issue 20). Only a chunk that fits the pipe's buffer at once: a larger one
(in-memory items) would block the manager's send until the worker finished its
current chunk, while the worker could be blocked sending it an item's outcome."""

_SIGN_WHILE_STARTING = True
"""The calling process works on the first chunks while the pool starts (issue 20).

Off only to measure what it saves (``benchmarks/batch_cold.py``)."""

_START_ATTEMPTS = 3
"""Worker starts that may fail in a row (a killed fork server is restarted each
time) before the batch stops with :class:`~provenance.errors.WorkerPoolError`."""


def _streamed_pool(
    plan: BatchPlan[Any], workers: int, chunk_size: int, now: datetime | None
) -> Iterator[BatchRow[Any]]:
    if plan.prepare is not None:
        plan.prepare()  # before any process starts: a locked inventory stops us here
    # While the workers start (about a second: the fork server imports numpy,
    # Pillow and c2pa), this process signs the first chunks itself. Not when
    # warm_up forked them from this process: they are ready at once, and
    # working here too would only add a third process's first-use costs (its
    # own c2pa Context and Signer; benchmarks/batch_cold.py, issue 20).
    early = _SIGN_WHILE_STARTING and waiting() < workers
    inline = _State(plan.spec, plan.inventory) if early else None
    pool = _Pool(plan.spec, workers, inline)
    try:
        yield from _stream(
            plan, pool, chunk_size, now, window=workers * _WINDOW_PER_WORKER, takers=workers
        )
    finally:
        pool.shutdown()


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
      thread while the calling process works on chunks itself, until every
      worker is ready (issue 20); a batch done before then ends at once, the
      manager stopping the workers it was still starting;
    * a worker that cannot be started is retried (a killed fork server is
      restarted); after :data:`_START_ATTEMPTS` failures in a row the batch
      stops with one :class:`~provenance.errors.WorkerPoolError`.
    """

    def __init__(self, spec: WorkerSpec, workers: int, inline: _State | None) -> None:
        self._spec = spec
        self._size = workers
        self._inline = inline
        self._context = pool_context()
        self._lock = threading.Lock()
        self._queue: deque[_Task] = deque()
        self._workers: list[_Worker] = []
        self._started = threading.Event()  # every worker has been ready once
        self._ready_count = 0
        self._largest = 0  # the most jobs in a chunk submitted so far
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
            self._largest = max(self._largest, len(chunk.jobs))
            if self._failure is not None:
                task.future.set_exception(self._failure)
                return task.future
            self._queue.append(task)
        self._wake()
        return task.future

    def result(self, future: Future[list[_Outcome]]) -> list[_Outcome]:
        while not future.done():
            if self._inline is not None and not self._started.is_set():
                task = self._take()
                if task is not None:
                    # Workers are still starting: work here rather than wait for them.
                    from provenance.batch._work import _process  # the signing side: lazy

                    task.future.set_result(_process(self._inline, task.chunk))
                    continue
            with contextlib.suppress(TimeoutError):
                return future.result(timeout=0.1)
        return future.result()

    def _take(self) -> _Task | None:
        with self._lock:
            if self._started.is_set() or not self._queue:
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
        if self._started.is_set() or self._failure is not None:
            self._thread.join()
        # Else the manager may be blocked starting a worker (the fork server
        # boots for a second or more): it stops what it started itself, and a
        # batch done in this process before the pool was up ends now.

    def _stop(self) -> None:
        """Stop the workers and close the pipes (the manager thread, at its end)."""
        for worker in self._workers:
            if not worker.tasks:
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
        finally:
            self._stop()

    def _serve(self) -> None:
        # One selector for the whole batch, its workers' pipes and sentinels
        # (re)registered only when the workers change: wait() built and filled
        # a new one for every message, two per item (issue 20). poll(), as
        # wait() uses: the kernel keeps no registration a closed pipe's reused
        # number could inherit (epoll would).
        with selectors.PollSelector() as selector:
            selector.register(self._wake_r.fileno(), selectors.EVENT_READ)
            watched: dict[int, tuple[_Worker, bool]] = {}
            while True:
                with self._lock:
                    if self._closing:
                        return
                self._top_up()
                self._dispatch()
                self._watch(selector, watched)
                for key, _ in selector.select():
                    if key.data is None:
                        with contextlib.suppress(EOFError, OSError):
                            while self._wake_r.poll():
                                self._wake_r.recv_bytes()
                        continue
                    worker, is_sentinel = key.data
                    if worker not in self._workers:
                        continue  # buried a moment ago, by its other handle
                    if is_sentinel:
                        self._bury(worker)
                        continue
                    try:
                        self._receive(worker, worker.conn.recv())
                        # What else it sent meanwhile, without another select().
                        while worker.conn.poll():
                            self._receive(worker, worker.conn.recv())
                    except (EOFError, OSError):
                        self._bury(worker)

    def _watch(
        self, selector: selectors.BaseSelector, watched: dict[int, tuple[_Worker, bool]]
    ) -> None:
        """Make ``selector`` watch the pipe and sentinel of every worker, and no other's."""
        current = {id(worker) for worker in self._workers}
        for fd, (worker, _) in list(watched.items()):
            if id(worker) not in current:
                # By number: the pipe is closed already (a closed number is
                # forgotten here first, before a new worker's pipe reusing it is added).
                with contextlib.suppress(KeyError, ValueError, OSError):
                    selector.unregister(fd)
                del watched[fd]
        known = {id(worker) for worker, _ in watched.values()}
        for worker in self._workers:
            if id(worker) not in known:
                for fd, is_sentinel in (
                    (worker.conn.fileno(), False),
                    (worker.process.sentinel, True),
                ):
                    selector.register(fd, selectors.EVENT_READ, (worker, is_sentinel))
                    watched[fd] = (worker, is_sentinel)

    def _top_up(self) -> None:
        """Start workers until there are enough (unless the pool has failed)."""
        while len(self._workers) < self._size and self._failure is None and not self._closing:
            forked = claim()
            if forked is not None:
                # Forked from this process before the batch (issue 20): it
                # needs only the spec; one that died since is simply replaced.
                process, conn = forked
                try:
                    conn.send(self._spec)
                except (OSError, ValueError):
                    conn.close()
                    continue
                self._workers.append(_Worker(process, conn))
                continue
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
            while worker.tasks:
                worker.tasks.popleft().future.set_exception(error)

    def _dispatch(self) -> None:
        """Give every ready worker a chunk, then a busy one its next chunk ahead.

        Never ahead: a chunk smaller than the largest submitted so far (the
        batch's last chunks, cut smaller so that the workers finish about
        together, :func:`._stream._tail`; sent ahead, one waited behind a busy
        worker while the other had nothing left: 20 ms apart instead of 6 for
        sign, issue 20), and one too large for the pipe (:data:`_AHEAD_MAX_BYTES`).
        """
        ready = [worker for worker in self._workers if worker.ready]
        for worker in (*ready, *ready):  # first pass: the free ones; second: ahead
            if len(worker.tasks) >= 2:
                continue
            with self._lock:
                if not self._queue or (
                    worker.tasks and len(self._queue[0].chunk.jobs) < self._largest
                ):
                    continue
                task = self._queue.popleft()
            message = ForkingPickler.dumps(_Chunk(tuple(task.todo), task.chunk.now))
            if worker.tasks and len(message) > _AHEAD_MAX_BYTES:
                with self._lock:
                    self._queue.appendleft(task)  # sent when the worker is free
                continue
            worker.tasks.append(task)
            with contextlib.suppress(OSError, ValueError):  # died: _bury requeues it
                worker.conn.send_bytes(message)

    def _receive(self, worker: _Worker, message: tuple[str, Any]) -> None:
        kind, value = message
        if kind == "ready":
            worker.ready = True
            self._start_failures = 0
            self._ready_count += 1
            if self._ready_count >= self._size:
                self._started.set()
        elif kind == "failed":
            # Building the worker's state failed (the inventory cannot be
            # opened, say): every other worker would fail the same way.
            self._fail(WorkerPoolError(f"a worker process could not start: {value}"))
        elif kind == "item" and worker.tasks:
            task = worker.tasks[0]
            task.outcomes.append(value)
            if task.todo and task.todo[0].index == value[0]:
                task.todo.popleft()
        elif kind == "done" and worker.tasks:
            task = worker.tasks.popleft()
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
        if not worker.ready and not worker.tasks:
            self._started_badly(f"a new worker exited with status {worker.process.exitcode}")
            return
        if not worker.tasks:
            return
        task = worker.tasks.popleft()
        # The chunk sent ahead was not started: it goes back whole, after the rest of this one.
        ahead = [t for t in worker.tasks if not t.future.done()]
        worker.tasks.clear()
        if task.future.done():
            self._requeue(ahead)
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
            self._requeue(ahead)
            return
        self._requeue([task, *ahead])  # the rest of its chunk, next in line

    def _requeue(self, tasks: list[_Task]) -> None:
        """Put ``tasks`` back at the head of the queue, in this order (unless the pool failed)."""
        with self._lock:
            failure = self._failure
            if failure is None:
                self._queue.extendleft(reversed(tasks))
                return
        for task in tasks:
            task.future.set_exception(failure)


@dataclass(slots=True)
class _Task:
    """A chunk submitted to the pool: what is left of it, and what came back."""

    chunk: _Chunk
    future: Future[list[_Outcome]]
    todo: deque[_Job]
    outcomes: list[_Outcome]


@dataclass(slots=True, eq=False)
class _Worker:
    """A worker process; ``tasks``: the chunk it is on, then at most one sent ahead."""

    process: Any  # multiprocessing.process.BaseProcess
    conn: Connection
    ready: bool = False
    tasks: deque[_Task] = field(default_factory=deque)


def _worker_lost(job: _Job, exitcode: int | None) -> _Outcome:
    how = f"was killed by signal {-exitcode}" if exitcode and exitcode < 0 else "died"
    error = ItemError(
        "WorkerLost",
        f"{job.name}: the worker process {how} while on this item; nothing was "
        "recorded for it (run the batch again to resume)",
    )
    return (job.index, RowStatus.ERROR, None, error)
