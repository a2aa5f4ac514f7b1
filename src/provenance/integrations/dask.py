"""Batches on a Dask cluster: :func:`sign_many` and :func:`verify_many` with a ``Client``.

The same per-file work as :mod:`provenance.batch` (the very same chunk function,
through its public executor seam: :func:`~provenance.batch.plan_sign`,
:func:`~provenance.batch.plan_verify` and :func:`~provenance.batch.run_on_executor`),
scheduled by ``dask.distributed`` instead of a local process pool (DESIGN.md
decision 9: no home-made scheduler). What stays at the client, in the calling
process: reading the input iterable lazily and the in-order stream of
:class:`~provenance.batch.BatchRow`. Inventory writes (one transaction per
chunk, only for outputs whose rename happened):

* a **server** inventory (PostgreSQL, MariaDB; issue 16): each worker opens it
  by its URL and records the chunks it signed itself, so the writes go from
  the workers' hosts to the server directly and the client only schedules; the
  server serialises the writers (one gap-free audit chain);
* an SQLite file: the client is the one writer, and workers only read it
  (read-only, for ``resume``).

Requirements and caveats:

* ``pip install 'provenance[dask]'``;
* path items and the inventory must be reachable under the same paths on every
  worker (a shared filesystem); ``(bytes, name)`` items travel in the tasks;
* the signing key is pickled to the workers, once per batch (scattered): with a
  local key that means the private key PEM crosses the network to remote
  workers. Use TLS between client and workers (``distributed``'s security
  settings), or a callback key whose picklable callback calls your KMS;
* one thread per worker process (``threads_per_worker=1``): c2pa retakes the
  GIL, so threads add nothing, and a worker's c2pa Context is shared by its
  threads.

Example::

    from dask.distributed import Client, LocalCluster
    from provenance.integrations import dask as pdask

    with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
        for row in pdask.sign_many(paths, "signed/", client=client, key=key, inventory=inv):
            print(row.index, row.status.value)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor
from datetime import datetime
from typing import Any, TypeVar

from distributed import Client

from provenance import batch
from provenance._core.record import ProvenanceRecord
from provenance._core.types import SignResult, Verdict
from provenance._io.keys import SigningKey, TrustPolicy
from provenance.batch import DEFAULT_CHUNK_SIZE, BatchPlan, BatchRow, SignItem
from provenance.inventory import Inventory
from provenance.sign import SignOptions

__all__ = ["sign_many", "verify_many"]

T = TypeVar("T")

_WINDOW_PER_THREAD = 4


def sign_many(
    items: Iterable[str | os.PathLike[str] | tuple[bytes, str] | SignItem],
    out: str | os.PathLike[str] | None,
    *,
    client: Client,
    key: SigningKey,
    record: ProvenanceRecord | None = None,
    parent: str | os.PathLike[str] | None = None,
    options: SignOptions | None = None,
    inventory: Inventory | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    resume: bool = True,
    now: datetime | None = None,
    record_in_workers: bool | None = None,
) -> Iterator[BatchRow[SignResult]]:
    """Sign many images on a Dask cluster; see :func:`provenance.batch.sign_many`.

    Args:
        items: Paths, ``(bytes, name)`` pairs or :class:`~provenance.batch.SignItem`.
        out: The output folder (on the shared filesystem); None signs in place.
        client: A connected ``dask.distributed.Client``.
        key: The signing key (pickled to the workers once per batch).
        record: The record for items that carry none (default: sidecars).
        parent: The original every item is a rendition of.
        options: Embedding options.
        inventory: Where each chunk is recorded, one transaction per chunk:
            by the workers for a server inventory, at the client for a file.
        chunk_size: Items per Dask task.
        resume: Skip items already signed and recorded.
        now: The signing time (default: when each chunk is dispatched).
        record_in_workers: Who records: the workers (through the server,
            every worker must reach it) or the client; default: the workers
            when ``inventory`` is on a server.

    Yields:
        One row per item, in input order; identical to the local batch's rows.

    Raises:
        InventoryError: ``record_in_workers`` with an inventory that is not on
            a server.
    """
    if record_in_workers is None:
        record_in_workers = inventory is not None and inventory.is_server
    plan = batch.plan_sign(
        items,
        out,
        key=key,
        record=record,
        parent=parent,
        options=options,
        inventory=inventory,
        resume=resume,
        check_picklable=True,
        record_in_workers=record_in_workers,
    )
    return _run(client, plan, chunk_size=chunk_size, now=now)


def verify_many(
    items: Iterable[str | os.PathLike[str] | tuple[bytes, str]],
    *,
    client: Client,
    trust: TrustPolicy | None = None,
    inventory: Inventory | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    now: datetime | None = None,
) -> Iterator[BatchRow[Verdict]]:
    """Verify many images on a Dask cluster; see :func:`provenance.batch.verify_many`.

    Args:
        items: Paths or ``(bytes, name)`` pairs.
        client: A connected ``dask.distributed.Client``.
        trust: The trust anchors.
        inventory: Recognise stripped copies (workers open it read-only).
        chunk_size: Items per Dask task.
        now: The time certificates are checked at.

    Yields:
        One row per item, in input order.
    """
    plan = batch.plan_verify(items, trust=trust, inventory=inventory)
    return _run(client, plan, chunk_size=chunk_size, now=now)


def _run(
    client: Client, plan: BatchPlan[T], *, chunk_size: int, now: datetime | None
) -> Iterator[BatchRow[T]]:
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    dask: Any = client  # distributed's Client methods are not annotated
    threads = sum(dask.nthreads().values()) or 1
    # The spec (key, trust, options) goes to every worker once, not with each task.
    spec_ref: object = dask.scatter(plan.spec, broadcast=True, hash=False)
    executor: Executor = dask.get_executor(pure=False)
    return batch.run_on_executor(
        plan,
        executor,
        window=threads * _WINDOW_PER_THREAD,
        chunk_size=chunk_size,
        now=now,
        task_spec=spec_ref,
    )
