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
  :func:`provenance._io.atomic.write_atomic` (a dot-prefixed temporary file, fsync,
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

Workers that :func:`warm_up` forked from the calling process (Linux, before it
built a c2pa ``Context``, started a thread or opened a file) are taken first;
others start with the ``forkserver`` method where the platform has it (else
``spawn``), never by forking a process that may hold a c2pa ``Context``: one
does not survive ``fork()``. Each worker unpickles the
:class:`~provenance._io.keys.SigningKey` once, when it starts, and builds its
c2pa Context and Signer on first use (they are cached per process by
:mod:`provenance._io.c2pa`). While fork-server workers start, the calling
process signs the first chunks itself. A callback key (KMS/HSM) works with
``workers > 1`` only when its callback can be pickled (a module-level function
or a picklable object); otherwise use ``workers=1``.

``workers=1`` runs in the calling process, without a pool.

The executor seam: :func:`plan_sign`, :func:`plan_verify` and
:func:`plan_fingerprint` make a :class:`BatchPlan`, and :func:`run_on_executor`
runs it on any ``concurrent.futures.Executor`` (Dask's, in
:mod:`provenance.integrations.dask`) with the same per-file work, rows and
inventory writes as the local pool; a plan made with
``plan_sign(..., record_in_workers=True)`` has each worker record its own
chunks in a server inventory instead (issue 16).

The package's modules, one job each: ``_rows`` (the row model), ``_jobs``
(items into picklable jobs, the workers' spec), ``_work`` (the per-file work in
a worker), ``_plan`` (plans and the single inventory writer), ``_stream``
(chunks out, rows back in order), ``_pool`` (the local worker processes),
``_worker`` (a worker process's side), ``_forkserver`` and ``_standby`` (how
workers start: :func:`warm_up`), ``_in_fork_server`` (the fork server's quiet
exit for a start its caller abandoned) and ``_executor`` (where a plan runs).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from provenance._lazy import resolver as _resolver
from provenance.batch._forkserver import warm_up

if TYPE_CHECKING:
    from provenance._core.record import ProvenanceRecord
    from provenance._core.sign_options import SignOptions
    from provenance._core.types import SignResult, Verdict
    from provenance._io.keys import SigningKey, TrustPolicy
    from provenance._io.reading import sidecar_record
    from provenance.batch._executor import run_on_executor
    from provenance.batch._jobs import SignItem, WorkerSpec
    from provenance.batch._plan import BatchPlan, plan_fingerprint, plan_sign, plan_verify
    from provenance.batch._rows import BatchRow, ItemError, RowStatus, verdict_of
    from provenance.fingerprint import Fingerprint
    from provenance.inventory import Inventory

# Lazy, as the package root is (issue 20): the CLI imports this package to call
# warm_up before it imports the library; the names below load on first use.
_WHERE: dict[str, str] = {
    "BatchPlan": "provenance.batch._plan",
    "BatchRow": "provenance.batch._rows",
    "ItemError": "provenance.batch._rows",
    "RowStatus": "provenance.batch._rows",
    "SignItem": "provenance.batch._jobs",
    "WorkerSpec": "provenance.batch._jobs",
    "plan_fingerprint": "provenance.batch._plan",
    "plan_sign": "provenance.batch._plan",
    "plan_verify": "provenance.batch._plan",
    "run_on_executor": "provenance.batch._executor",
    "sidecar_record": "provenance._io.reading",
    "verdict_of": "provenance.batch._rows",
}
"""Each lazily imported public name, and the module it comes from."""

DEFAULT_CHUNK_SIZE = 16
"""Items per task sent to a worker.

Measured (benchmarks/batch.py, py-spy): one item costs a worker 6-8 ms (sign,
write, perceptual hashes); each chunk costs the calling process about 1 ms of
CPU besides its items (the pool's round trip, one inventory transaction), CPU
the two workers of a 2-core machine then lack. 16 items make that a few
percent of a worker's item while keeping the items lost to a killed worker,
the latency of the first row and the idle tail of a batch small.
"""

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "BatchPlan",
    "BatchRow",
    "ItemError",
    "RowStatus",
    "SignItem",
    "WorkerSpec",
    "fingerprint_many",
    "plan_fingerprint",
    "plan_sign",
    "plan_verify",
    "run_on_executor",
    "sidecar_record",
    "sign_many",
    "verdict_of",
    "verify_many",
    "warm_up",
]


_MODULES = frozenset(
    {"_executor", "_jobs", "_plan", "_pool", "_rows", "_standby", "_stream", "_work", "_worker"}
)
"""This package's modules, imported when first named as an attribute (``batch._pool``
was there after ``import provenance.batch`` when this module imported them eagerly)."""


def __dir__() -> list[str]:
    """The loaded names and every public one."""
    return sorted({*globals(), *__all__})


if not TYPE_CHECKING:  # a type checker reads the imports above instead
    __getattr__ = _resolver(__name__, globals(), _WHERE, _MODULES)


# Over 60 lines: its docstring documents every argument; the body is a few lines.
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
            path items in place (atomically). Each output is written once: an
            item whose signed copy would be an earlier item's, or its own
            source (``out`` is the source's folder), is an ``OutputError`` row.
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
        :class:`~provenance._core.types.SignResult`.

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
    from provenance.batch import _executor
    from provenance.batch._plan import plan_sign

    count = _executor.worker_count(workers)
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    plan = plan_sign(
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
    return _executor.run_local(plan, workers=count, chunk_size=chunk_size, now=now)


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
        :class:`~provenance._core.types.Verdict`; a file that cannot be read at all
        is an error row (``verify`` would raise for it).

    Raises:
        ValueError: ``workers`` or ``chunk_size`` is negative or zero.
        WorkerPoolError: While iterating, ``workers > 1``: the worker
            processes could not be started.
    """
    from provenance.batch import _executor
    from provenance.batch._plan import plan_verify

    count = _executor.worker_count(workers)
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    plan = plan_verify(items, trust=trust, inventory=inventory, partial=partial)
    return _executor.run_local(plan, workers=count, chunk_size=chunk_size, now=now)


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
    from provenance.batch import _executor
    from provenance.batch._plan import plan_fingerprint

    count = _executor.worker_count(workers)
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    plan = plan_fingerprint(items)
    return _executor.run_local(plan, workers=count, chunk_size=chunk_size, now=None)
