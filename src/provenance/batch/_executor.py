"""The executor seam: run a :class:`~provenance.batch.BatchPlan` here, locally or elsewhere.

What this module owns: the two ways a plan runs. :func:`run_local` is what
:func:`~provenance.batch.sign_many` and friends use (this process for one
worker, else the local pool). :func:`run_on_executor` is the public seam for
anything that implements ``concurrent.futures.Executor``, Dask's
``Client.get_executor()`` for one (:mod:`provenance.integrations.dask`): the
per-file work is the same function, and the calling process keeps the input
order, the rows and every inventory write.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from datetime import datetime
from typing import Any, TypeVar

from provenance.batch import DEFAULT_CHUNK_SIZE
from provenance.batch._jobs import _Chunk, _State
from provenance.batch._plan import BatchPlan
from provenance.batch._pool import _streamed_pool
from provenance.batch._rows import BatchRow, _Outcome
from provenance.batch._stream import _Inline, _stream, _Submitter

__all__ = ["run_local", "run_on_executor"]

T = TypeVar("T")


def run_on_executor(
    plan: BatchPlan[T],
    executor: Executor,
    *,
    window: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    now: datetime | None = None,
    task_spec: object = None,
) -> Iterator[BatchRow[T]]:
    """Run ``plan`` on any ``concurrent.futures.Executor``; yield its rows in input order.

    Each task runs one chunk of ``chunk_size`` items in a worker (which builds
    its state, such as a read-only inventory, on its first task of the batch)
    and returns their outcomes; this process reads the input lazily, keeps at
    most ``window`` chunks in flight, records signed chunks in the plan's
    inventory (unless the plan has its workers record them:
    ``plan_sign(record_in_workers=True)``) and yields the rows. A task that
    fails as a whole (its worker died) makes its items error rows; the batch
    goes on. Nothing runs until the first row is asked for.

    Args:
        plan: From :func:`~provenance.batch.plan_sign`,
            :func:`~provenance.batch.plan_verify` or
            :func:`~provenance.batch.plan_fingerprint`.
        executor: Where the chunks run. Its workers must import
            ``provenance`` and reach path items (and the inventory) under the
            same paths.
        window: Chunks in flight (about 4 per worker thread).
        chunk_size: Items per task.
        now: The signing time, or the time certificates are checked at
            (default: when each chunk is dispatched).
        task_spec: What each task receives as the plan's spec: default
            ``plan.spec`` itself (pickled with every task); an executor that
            resolves references may get one made once per batch instead
            (Dask: ``client.scatter(plan.spec, broadcast=True)``).

    Returns:
        The rows, one per item, in input order (a lazy iterator).

    Raises:
        ValueError: ``chunk_size`` or ``window`` is below 1.
    """
    if chunk_size < 1 or window < 1:
        raise ValueError("chunk_size and window must be at least 1")
    spec = plan.spec if task_spec is None else task_spec
    return _stream(plan, _ExecutorSubmitter(executor, spec), chunk_size, now, window=window)


def run_local(
    plan: BatchPlan[T], *, workers: int, chunk_size: int, now: datetime | None
) -> Iterator[BatchRow[T]]:
    """Run ``plan`` in this process (``workers=1``) or on a local pool of ``workers``.

    Nothing runs (no pool starts) until the first row is asked for.
    """
    if workers == 1:
        return _streamed_inline(plan, chunk_size, now)
    return _streamed_pool(plan, workers, chunk_size, now)


def worker_count(workers: int) -> int:
    """``workers``, with 0 meaning one per CPU.

    Raises:
        ValueError: ``workers`` is negative.
    """
    if workers < 0:
        raise ValueError("workers must be 0 (one per CPU) or more")
    return workers or os.cpu_count() or 1


def _streamed_inline(
    plan: BatchPlan[Any], chunk_size: int, now: datetime | None
) -> Iterator[BatchRow[Any]]:
    if plan.prepare is not None:
        plan.prepare()
    inline = _Inline(_State(plan.spec, plan.inventory))
    yield from _stream(plan, inline, chunk_size, now, window=1)


class _ExecutorSubmitter(_Submitter):
    """Any ``concurrent.futures.Executor`` (e.g. Dask's ``Client.get_executor()``)."""

    def __init__(self, executor: Executor, spec: object) -> None:
        self._executor = executor
        self._spec = spec

    def submit(self, chunk: _Chunk) -> Future[list[_Outcome]]:
        from provenance.batch._work import _run_chunk_with  # the signing side: lazy

        return self._executor.submit(_run_chunk_with, self._spec, chunk)
