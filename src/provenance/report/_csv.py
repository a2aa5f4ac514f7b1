"""The report's CSV: one row per asset, rendition, finding and event, with a ``section`` column.

Pure. Cells a spreadsheet would run as a formula are prefixed with ``'``
(:func:`provenance._core.cells.csv_cell`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from provenance._core.cells import csv_cell

if TYPE_CHECKING:
    from provenance.report._compliance import ComplianceReport
    from provenance.report._model import AssetRow

_COLUMNS = (
    "section",
    "asset_id",
    "path",
    "status",
    "model",
    "model_version",
    "signer",
    "at",
    "detail",
)


def report_csv(report: ComplianceReport) -> str:
    """The report as CSV text, a header line first."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_COLUMNS)
    writer.writerows(_rows(report))
    return buffer.getvalue()


def _rows(report: ComplianceReport) -> Iterator[list[str]]:
    for a in report.assets:
        yield from _asset_rows(a)
    for section, findings in report.recovery.items():
        for f in findings:
            yield _cells(
                section.value,
                f.asset_id,
                f.path,
                f.status_label,
                f.model,
                f.model_version,
                f.signer,
                f.at,
                f.detail,
            )
    for t in report.timeline:
        yield _cells(
            "timeline",
            t.asset_id,
            "",
            t.status_value,
            t.model,
            t.model_version,
            t.signer,
            t.at,
            f"seq {t.seq}: {t.event.value}",
        )
    for inc in report.gdpr.incidents:
        yield _cells(
            "gdpr_incident",
            "",
            "",
            "overdue" if inc.hours_left < 0 else "open",
            "",
            "",
            "",
            inc.aware_at,
            f"seq {inc.seq}: notify by {inc.deadline}; {inc.description}",
        )
    cp = report.checkpoint
    if cp is not None:
        signed = "signed" if cp.is_signed else "unsigned"
        yield _cells("audit_checkpoint", "", "", signed, "", "", "", cp.at, f"seq {cp.seq}")


def _asset_rows(a: AssetRow) -> Iterator[list[str]]:
    yield _cells(
        "synthetic_inventory",
        a.asset_id,
        ";".join(c.path for c in a.copies),
        a.disclosure.label,
        a.model,
        a.model_version,
        a.signer,
        a.first_signed_at,
        a.digital_source_type.value,
    )
    for rendition in a.renditions:
        yield _cells(
            "rendition",
            rendition.asset_id,
            ";".join(c.path for c in rendition.copies),
            "seen" if rendition.copies else "not seen in this scan",
            a.model,
            a.model_version,
            rendition.signer,
            rendition.first_signed_at,
            f"rendition of {a.asset_id}",
        )


def _cells(*values: Any) -> list[str]:
    return [csv_cell(value) for value in values]
