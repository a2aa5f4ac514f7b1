"""The ``scan`` verb: find our images, and those that lost their provenance, in a pile of files.

A shop points it at folders (a media export, a backup, a CDN mirror) and at
product export CSVs that list image paths or file names. Each image gets one
row (:class:`ScanRow`):

* ``signed``: it carries provenance; the row holds the full verdict (trusted,
  valid_untrusted, tampered, invalid_signature, invalid_manifest,
  invalid_identity, unsupported or remote_manifest);
* ``known_stripped``: its metadata was removed or changed, but its image data
  is a signed essence (the manifest's statement, or an inventory asset's);
* ``synthetic_duplicate``: no provenance, but a confirmed perceptual match of an
  inventory asset (resized, re-encoded, cropped ...);
* ``unknown``: nothing known about it;
* ``error``: it could not be checked (unreadable, corrupt, listed in a CSV but
  missing). One bad file never stops the scan.

The files are verified on the batch path (:func:`provenance.batch.verify_many`):
with ``workers`` > 1 on a pool of worker processes, rows still in the order the
files were found, and each row is the batch's row model (:class:`ScanRow`
wraps a :class:`~provenance.batch.BatchRow`).

Reports: :meth:`ScanReport.to_json`, :meth:`ScanReport.to_csv` and
:meth:`ScanReport.to_html` (one self-contained page, thumbnails as small
``data:`` URIs, every text escaped), written atomically by :func:`write_reports`.

The package's modules: ``_listing`` (folders and product CSVs into files),
``_rows`` (:class:`ScanRow`, :class:`ScanKind`) and ``_report`` (the reports).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

from provenance._core.record import format_time
from provenance._core.types import Verdict
from provenance._io.keys import TrustPolicy
from provenance.batch import BatchRow, ItemError, RowStatus, verify_many
from provenance.inventory import Inventory
from provenance.scan._listing import IMAGE_SUFFIXES, Target, distinct_targets, images_in_csv
from provenance.scan._report import ScanReport, write_reports
from provenance.scan._rows import ScanKind, ScanRow

__all__ = [
    "IMAGE_SUFFIXES",
    "ScanKind",
    "ScanReport",
    "ScanRow",
    "images_in_csv",
    "scan",
    "write_reports",
]


def scan(
    paths: Sequence[str | os.PathLike[str]],
    *,
    trust: TrustPolicy | None = None,
    inventory: Inventory | None = None,
    root: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
    on_row: Callable[[ScanRow], None] | None = None,
    workers: int = 1,
) -> ScanReport:
    """Verify every image under ``paths`` and say what each one is.

    Args:
        paths: Image files, folders (walked recursively, images by suffix) and
            ``.csv`` product exports (every cell naming an image file).
        trust: Trust anchors for the signed files.
        inventory: Where known assets are looked up (stripped and perceptual
            copies); without it, files without provenance are ``unknown``.
        root: Where file names in CSVs are resolved first (then next to the CSV).
        now: The time certificates are checked at, and the report's time.
        on_row: Called with each row as it is made, in order (progress).
        workers: Worker processes verifying the files (see
            :func:`provenance.batch.verify_many`); 1 verifies in this process,
            0 means one per CPU.

    Returns:
        The report, one row per distinct file, in the order the files were found.

    Raises:
        ValueError: ``workers`` is negative.
        WorkerPoolError: ``workers`` > 1 and the worker processes could not start.
    """
    moment = now or datetime.now(timezone.utc)
    base = Path(root) if root is not None else None
    rows: list[ScanRow] = []
    for row in _scan_rows(
        paths, base, trust=trust, inventory=inventory, now=moment, workers=workers
    ):
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return ScanReport(
        rows=tuple(rows),
        scanned_at=format_time(moment),
        roots=tuple(os.fspath(p) for p in paths),
    )


def _scan_rows(
    paths: Sequence[str | os.PathLike[str]],
    root: Path | None,
    *,
    trust: TrustPolicy | None,
    inventory: Inventory | None,
    now: datetime,
    workers: int,
) -> Iterator[ScanRow]:
    """The rows in the order the files were found; only checkable files go to the batch.

    A file that cannot be checked (missing, listed by an unreadable CSV) never
    reaches a worker: its error row waits in ``failed`` until the batch's rows
    have caught up with its position.
    """
    sent: dict[int, tuple[int, Target]] = {}  # batch index -> (scan position, listing)
    failed: deque[ScanRow] = deque()
    numbers = itertools.count()

    def checkable() -> Iterator[str]:
        for position, target in enumerate(distinct_targets(paths, root)):
            if target.problem is not None:
                error = ItemError("ProvenanceError", target.problem)
                failed.append(
                    _row(BatchRow(position, str(target.file), RowStatus.ERROR, None, error), target)
                )
                continue
            sent[next(numbers)] = (position, target)
            yield str(target.file)

    for outcome in verify_many(
        checkable(), trust=trust, inventory=inventory, workers=workers, now=now
    ):
        position, target = sent.pop(outcome.index)
        while failed and failed[0].outcome.index < position:
            yield failed.popleft()
        yield _row(dataclasses.replace(outcome, index=position), target)
    yield from failed


def _row(outcome: BatchRow[Verdict], target: Target) -> ScanRow:
    return ScanRow(outcome, source=target.source, sku=target.sku, product_name=target.product_name)
