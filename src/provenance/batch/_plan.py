"""Plans: what a batch does per file, and what the calling process does with each chunk.

What this module owns: building a :class:`BatchPlan` for signing, verifying or
fingerprinting (the workers' spec, the lazy stream of jobs, checks that must
fail before anything runs) and the single inventory writer
(:class:`_SignRecorder`) that records each signed chunk in one transaction,
after its renames. A plan runs on the local pool (:func:`provenance.batch.sign_many`)
or on any executor (:func:`provenance.batch.run_on_executor`).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from provenance._core.record import ProvenanceRecord
from provenance._core.types import SignResult, Verdict
from provenance._io.keys import SigningKey, TrustPolicy
from provenance._io.sqlite import is_lock_error
from provenance.batch._jobs import (
    SignItem,
    WorkerSpec,
    _Chunk,
    _FingerprintSpec,
    _Job,
    _sign_job,
    _Signed,
    _SignSpec,
    _verify_job,
    _VerifySpec,
)
from provenance.batch._rows import BatchRow, ItemError, RowStatus, _Outcome
from provenance.errors import InventoryError, KeyConfigError, OutputError

if TYPE_CHECKING:  # the signing side: the workers import it, not this process (issue 20)
    from provenance._core import keypoints, phash
    from provenance._core.sign_options import SignOptions
    from provenance.fingerprint import Fingerprint
    from provenance.inventory import Inventory  # imported by whoever opened one

__all__ = ["BatchPlan", "plan_fingerprint", "plan_sign", "plan_verify"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BatchPlan(Generic[T]):
    """A batch ready to run, locally or on any executor; rows of type ``BatchRow[T]``.

    Made by :func:`plan_sign`, :func:`plan_verify` or :func:`plan_fingerprint`,
    run by :func:`provenance.batch.run_on_executor` (or the local pool). Only
    :attr:`spec` is for callers: an executor that can share one object with all
    its workers (``client.scatter`` in Dask) sends it once per batch. The other
    fields are the batch's internals, consumed by the run.

    Attributes:
        spec: What every worker needs (key or trust, options, the inventory's
            path); picklable.
        jobs: The lazy stream of jobs, with bad items already turned into rows.
        finish: What the calling process does with each chunk's outcomes
            (records a signed chunk in the inventory).
        inventory: The caller's inventory, used in this process only.
        prepare: Run once before the first item (the signing batch's lock check).
    """

    spec: WorkerSpec
    jobs: Iterator[_Job | BatchRow[Any]]
    finish: Callable[[_Chunk, list[_Outcome]], list[_Outcome]]
    inventory: Inventory | None
    prepare: Callable[[], None] | None = None


def plan_sign(
    items: Iterable[str | os.PathLike[str] | tuple[bytes, str] | SignItem],
    out: str | os.PathLike[str] | None,
    *,
    key: SigningKey,
    record: ProvenanceRecord | None = None,
    parent: str | os.PathLike[str] | None = None,
    options: SignOptions | None = None,
    inventory: Inventory | None = None,
    resume: bool = True,
    check_picklable: bool = True,
    record_in_workers: bool = False,
) -> BatchPlan[SignResult]:
    """Plan signing ``items``; nothing is read or signed until the plan runs.

    The arguments are :func:`provenance.batch.sign_many`'s.

    Args:
        items: Paths, ``(bytes, name)`` pairs or :class:`SignItem` values;
            consumed lazily, as the plan runs.
        out: The folder for the signed copies; None signs path items in place.
        key: The signing key (pickled to the workers with the spec).
        record: The record for items that carry none; default: sidecars.
        parent: The original every item is a rendition of, for lineage.
        options: Embedding options.
        inventory: Where the calling process records each signed chunk (and
            what ``resume`` consults; workers open it read-only by its path).
        resume: Skip items already signed and recorded.
        check_picklable: Fail now when ``key`` cannot travel to another
            process (a callback key whose callback does not pickle).
        record_in_workers: Each worker records the chunks it signed, one
            transaction per chunk, in the server inventory it opens by URL
            (issue 16: Dask workers on other hosts write through the server
            directly; the server serialises the writers and keeps one audit
            chain); the calling process then writes nothing. Needs a server
            inventory.

    Returns:
        The plan; its rows' results are :class:`~provenance._core.types.SignResult`.

    Raises:
        OutputError: ``out`` cannot be created.
        KeyConfigError: ``check_picklable`` and the key does not pickle.
        InventoryError: ``record_in_workers`` without a server inventory.
    """
    if record_in_workers and (inventory is None or not inventory.is_server):
        raise InventoryError(
            "workers can record their own chunks only in a server inventory "
            "(postgresql:// or mariadb://); with a file the calling process is the one writer",
            path=inventory.location if inventory is not None else "<no inventory>",
        )
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
        inventory_path=inventory.worker_location if inventory is not None else None,
        resume=resume and inventory is not None,
        record_in_workers=record_in_workers,
    )
    recorder = _SignRecorder(inventory, key.subject, key)
    return BatchPlan(
        spec,
        _sign_jobs(items, folder),
        _pass_through if record_in_workers else recorder,
        inventory,
        # Workers that record wait for the server's writer row themselves; the
        # caller's handle may then be read-only.
        None if record_in_workers else recorder.wait_for_lock,
    )


def plan_verify(
    items: Iterable[str | os.PathLike[str] | tuple[bytes, str]],
    *,
    trust: TrustPolicy | None = None,
    inventory: Inventory | None = None,
    partial: bool = True,
) -> BatchPlan[Verdict]:
    """Plan verifying ``items``; the arguments are :func:`provenance.batch.verify_many`'s.

    Args:
        items: Paths or ``(bytes, name)`` pairs; consumed lazily.
        trust: The trust anchors (default: none, so nothing is ``trusted``).
        inventory: Recognise stripped copies; workers open it read-only by its path.
        partial: Run verify's partial-copy search.

    Returns:
        The plan; its rows' results are :class:`~provenance._core.types.Verdict`.
    """
    spec = _VerifySpec(
        token=uuid.uuid4().hex,
        trust=trust if trust is not None else TrustPolicy.no_anchors(),
        inventory_path=inventory.worker_location if inventory is not None else None,
        partial=partial,
    )
    return BatchPlan(
        spec, (_verify_job(i, item) for i, item in enumerate(items)), _pass_through, inventory
    )


def plan_fingerprint(
    items: Iterable[str | os.PathLike[str] | tuple[bytes, str]],
) -> BatchPlan[Fingerprint]:
    """Plan fingerprinting ``items`` (paths or ``(bytes, name)`` pairs; consumed lazily)."""
    return BatchPlan(
        _FingerprintSpec(token=uuid.uuid4().hex),
        (_verify_job(i, item) for i, item in enumerate(items)),
        _pass_through,
        None,
    )


def _check_picklable(key: SigningKey) -> None:
    try:
        pickle.dumps(key)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise KeyConfigError(
            "a callback signing key can run on worker processes only when its callback "
            f"can be pickled (a module-level function); use workers=1 ({type(exc).__name__})"
        ) from None


def _sign_jobs(
    items: Iterable[str | os.PathLike[str] | tuple[bytes, str] | SignItem], folder: Path | None
) -> Iterator[_Job | BatchRow[Any]]:
    """The jobs of ``items``; with an output folder, each output file written once.

    Into a folder (not in place), an item fails alone, before anything is
    written, when its signed copy would be

    * its own source: the folder is the source's folder (``--out`` where the
      images are), which would replace the original as only ``--in-place``
      (``out=None``) should;
    * the output of an earlier item of the batch: two sources of the same
      name (``a/shoe.jpg b/shoe.jpg --out signed/``), where the second
      replaced the first and the inventory then pointed both at one file.

    The outputs are remembered as 8-byte digests of their absolute paths
    (about 60 bytes an item: 60 MB for a million), so the batch stays streamed.
    """
    written: set[int] = set()
    for index, item in enumerate(items):
        job = _sign_job(index, item, folder)
        if folder is not None and isinstance(job, _Job) and job.dst is not None:
            problem = _output_problem(job.path, Path(job.dst), written)
            if problem is not None:
                error = ItemError.from_exception(OutputError(problem, path=job.name), job.name)
                yield BatchRow(index, job.name, RowStatus.ERROR, None, error)
                continue
        yield job


def _output_problem(source: str | None, dst: Path, written: set[int]) -> str | None:
    """Why ``dst`` must not be written by this item of a batch, if it must not."""
    absolute = os.path.normcase(dst.absolute())
    key = int.from_bytes(hashlib.blake2b(os.fsencode(absolute), digest_size=8).digest(), "big")
    if key in written:
        return (
            f"its signed copy {dst} is also an earlier item's (two sources with the same "
            "name?): give them distinct names, or sign them into separate folders"
        )
    if source is not None and _same_file(Path(source), dst):
        return (
            f"the signed copy {dst} would replace this source: the output folder is the "
            "source's own folder; sign in place on purpose (--in-place, out=None) or "
            "choose another folder"
        )
    written.add(key)
    return None


def _same_file(source: Path, dst: Path) -> bool:
    try:
        return dst.samefile(source)
    except OSError:  # no output yet (the usual case), or no source: not the same file
        return False


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
            entries=False,  # the outcomes are the batch's rows; the entries are not read back
        )


def _pass_through(chunk: _Chunk, outcomes: list[_Outcome]) -> list[_Outcome]:
    return outcomes
