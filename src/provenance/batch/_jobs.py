"""What travels to a worker: the batch's spec, and one job per item.

What this module owns: turning a caller's items (paths, ``(bytes, name)``
pairs, :class:`SignItem`) into picklable jobs with their output paths, and the
per-batch specs a worker builds its state from. Values only: no file is read
here (a bad item becomes an error row, never an exception).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from provenance.batch._rows import BatchRow, ItemError, RowStatus
from provenance.errors import OutputError, ProvenanceError

if TYPE_CHECKING:  # values only here: a worker forked early imports these itself (issue 20)
    from provenance._core import keypoints, phash
    from provenance._core.record import ProvenanceRecord
    from provenance._core.sign_options import SignOptions
    from provenance._core.types import SignResult
    from provenance._io.keys import SigningKey, TrustPolicy
    from provenance.inventory import Inventory

__all__ = ["SignItem", "WorkerSpec"]


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
    # A server URL carries its credentials (Inventory.worker_location): never shown.
    inventory_path: str | None = field(repr=False)
    resume: bool
    # Issue 16: each worker records its own chunks (a server inventory only).
    record_in_workers: bool = False


@dataclass(frozen=True, slots=True)
class _VerifySpec:
    token: str
    trust: TrustPolicy
    inventory_path: str | None = field(repr=False)
    partial: bool = True  # issue 21: verify's partial-copy search


@dataclass(frozen=True, slots=True)
class _FingerprintSpec:
    token: str
    inventory_path: None = None


WorkerSpec = _SignSpec | _VerifySpec | _FingerprintSpec
"""What every worker of one batch needs (key or trust, options, the inventory's
path), built once per batch and sent to each worker once. Picklable; opaque to
callers, who pass it on (:attr:`provenance.batch.BatchPlan.spec`)."""


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

    spec: WorkerSpec
    inventory: Inventory | None
    parent_pid: int | None = None


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
