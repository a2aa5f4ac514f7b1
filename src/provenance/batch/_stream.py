"""The stream: chunks out to a submitter, rows back in input order.

What this module owns: grouping a plan's jobs into chunks, keeping a bounded
window of chunks in flight on a :class:`_Submitter` (the local pool, this
process, or any ``concurrent.futures.Executor``), handing each finished chunk
to the plan's finisher (the inventory writer) and yielding its rows in input
order. Nothing here knows what a job does.
"""

from __future__ import annotations

import abc
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import datetime, timezone
from typing import Any

from provenance.batch._jobs import _Chunk, _Job, _State
from provenance.batch._plan import BatchPlan
from provenance.batch._rows import BatchRow, ItemError, RowStatus, _Outcome
from provenance.errors import WorkerPoolError

_CHUNK_MAX_BYTES = 16 * 1024 * 1024
"""A chunk of in-memory items closes early past this many bytes."""


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
        from provenance.batch._work import _process  # the signing side: lazy (issue 20)

        future.set_result(_process(self._state, chunk))
        return future


def _chunks(
    jobs: Iterator[_Job | BatchRow[Any]], size: int, *, takers: int = 1
) -> Iterator[tuple[list[_Job], list[BatchRow[Any]]]]:
    """Group jobs; rows already decided (bad items) ride along in order.

    With several ``takers`` (workers taking chunks as they come free), the last
    ``takers`` chunks are held back until the jobs end and then cut smaller
    (:func:`_tail`), so that the workers finish about together instead of one
    working through a whole chunk while the others wait (issue 20).
    """
    groups = _groups(jobs, lambda: size)
    if takers < 2:
        yield from groups
        return
    held: deque[tuple[list[_Job], list[BatchRow[Any]]]] = deque()
    for group in groups:
        held.append(group)
        if len(held) > takers:
            yield held.popleft()
    yield from _tail(held, size, takers)


def _tail(
    held: deque[tuple[list[_Job], list[BatchRow[Any]]]], size: int, takers: int
) -> Iterator[tuple[list[_Job], list[BatchRow[Any]]]]:
    """The batch's last chunks, cut smaller.

    Each is a ``1 / (2 * takers)`` share of the jobs left, never under a quarter
    of ``size`` (each chunk is one round trip and one inventory transaction).
    """
    items: list[_Job | BatchRow[Any]] = [job for jobs, _ in held for job in jobs]
    items += [row for _, early in held for row in early]
    items.sort(key=lambda item: item.index)
    left = sum(len(jobs) for jobs, _ in held)
    floor = max(1, size // 4)

    def piece() -> int:
        return min(size, max(floor, -(-left // (2 * takers))))

    for jobs, early in _groups(iter(items), piece):
        left -= len(jobs)
        yield jobs, early


def _groups(
    jobs: Iterator[_Job | BatchRow[Any]], size: Callable[[], int]
) -> Iterator[tuple[list[_Job], list[BatchRow[Any]]]]:
    """Jobs in groups of ``size()`` (asked as each group starts) or 16 MB of items.

    Rows already decided count too, apart: a group is cut when ``size()`` of
    them wait behind it, so a long run of bad items (an endless input whose
    every item fails) is yielded as it comes instead of gathered for ever.
    """
    group: list[_Job] = []
    early: list[BatchRow[Any]] = []
    held = 0
    target = size()
    for job in jobs:
        if isinstance(job, BatchRow):
            early.append(job)
            if len(early) >= target:
                yield group, early
                group, early, held = [], [], 0
                target = size()
            continue
        group.append(job)
        held += len(job.data) if job.data is not None else 0
        if len(group) >= target or held >= _CHUNK_MAX_BYTES:
            yield group, early
            group, early, held = [], [], 0
            target = size()
    if group or early:
        yield group, early


def _stream(
    plan: BatchPlan[Any],
    submitter: _Submitter,
    chunk_size: int,
    now: datetime | None,
    *,
    window: int,
    takers: int = 1,
) -> Iterator[BatchRow[Any]]:
    pending: deque[tuple[_Chunk, list[BatchRow[Any]], Future[list[_Outcome]] | None]] = deque()
    groups = _chunks(plan.jobs, chunk_size, takers=takers)
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
