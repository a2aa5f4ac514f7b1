"""The report's input rows: one form for verify, batch and scan rows.

What this module owns: turning whatever says what a file is (a
:class:`~provenance.batch.BatchRow` of :func:`~provenance.batch.verify_many`, a
:class:`~provenance.scan.ScanRow`, a ``verify --json`` object or a row of a
scan's JSON) into the ``verify --json`` form the report is built from
(:meth:`~provenance._core.types.Verdict.to_dict`). A file that could not be
checked is the verdict :func:`~provenance.batch.verdict_of` makes for it
(status ``error``, the message attached). Values only, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

from provenance._core.types import Status, Verdict
from provenance.batch import BatchRow, verdict_of
from provenance.scan import ScanRow

__all__ = ["ReportInput", "report_row", "report_rows"]

ReportInput: TypeAlias = BatchRow[Verdict] | ScanRow | Mapping[str, Any]
"""What the report reads about one file."""


def report_row(row: ReportInput) -> dict[str, Any]:
    """The ``verify --json`` form of one row.

    A scan's JSON row (``{"kind": ..., "verdict": {...}}``) gives its nested
    verdict; an error row of a scan gives the ``error`` verdict with its message.
    Any other mapping is taken as it is (a copy).
    """
    if isinstance(row, ScanRow):
        return verdict_of(row.outcome).to_dict()
    if isinstance(row, BatchRow):
        return verdict_of(row).to_dict()
    nested = row.get("verdict")
    if isinstance(nested, Mapping):
        return dict(nested)
    if "verdict" in row and nested is None and "kind" in row:  # a scan row that failed
        error = row.get("error")
        return Verdict(
            path=str(row.get("path", "")),
            status=Status.ERROR,
            error=error if isinstance(error, str) else None,
        ).to_dict()
    return dict(row)


def report_rows(rows: Iterable[ReportInput]) -> list[dict[str, Any]]:
    """The ``verify --json`` form of every row, in order (see :func:`report_row`)."""
    return [report_row(row) for row in rows]
