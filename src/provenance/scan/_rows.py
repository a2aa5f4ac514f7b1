"""A scan's rows: :class:`ScanRow` (a file's batch row, and where it was listed), :class:`ScanKind`.

What this module owns: what a scan says about one file. Values only, no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from provenance._core.types import Status, Verdict
from provenance.batch import BatchRow, RowStatus

__all__ = ["ScanKind", "ScanRow"]


class ScanKind(enum.Enum):
    """What a scan found out about one file."""

    SIGNED = "signed"
    """The file carries provenance; see the verdict's status."""
    KNOWN_STRIPPED = "known_stripped"
    """No provenance; its essence hash is an inventory asset."""
    SYNTHETIC_DUPLICATE = "synthetic_duplicate"
    """No provenance; a confirmed perceptual match of an inventory asset."""
    UNKNOWN = "unknown"
    """No provenance and no match."""
    ERROR = "error"
    """The file could not be checked."""

    @classmethod
    def of(cls, status: Status) -> ScanKind:
        """The kind a verdict status belongs to."""
        if status is Status.KNOWN_STRIPPED:
            return cls.KNOWN_STRIPPED
        if status is Status.SYNTHETIC_DUPLICATE:
            return cls.SYNTHETIC_DUPLICATE
        if status is Status.NO_PROVENANCE:
            return cls.UNKNOWN
        if status is Status.ERROR:
            return cls.ERROR
        return cls.SIGNED

    @classmethod
    def of_row(cls, row: BatchRow[Verdict]) -> ScanKind:
        """The kind of a batch row: :attr:`ERROR` when the file could not be checked."""
        if row.status is RowStatus.ERROR or row.result is None:
            return cls.ERROR
        return cls.of(row.result.status)


@dataclass(frozen=True, slots=True)
class ScanRow:
    """One scanned file: the batch's row for it, and where it was listed.

    The outcome is the batch row model (:class:`~provenance.batch.BatchRow`,
    the same rows :func:`~provenance.batch.verify_many` yields): its ``index``
    is the file's position in the scan, its ``name`` the file's path. A file
    that could not be checked (unreadable, corrupt, listed in a CSV but
    missing) is an error row with an :class:`~provenance.batch.ItemError`.

    Attributes:
        outcome: The file's row: status, verdict, error.
        source: Where the file was listed: a folder given, or ``<csv>:<line>``.
        sku: For a file listed in a product export CSV, the row's SKU.
        product_name: And the row's product name.
    """

    outcome: BatchRow[Verdict]
    source: str | None = None
    sku: str | None = None
    product_name: str | None = None

    @property
    def path(self) -> str:
        """The file."""
        return self.outcome.name

    @property
    def kind(self) -> ScanKind:
        """What was found."""
        return ScanKind.of_row(self.outcome)

    @property
    def verdict(self) -> Verdict | None:
        """The verdict (None for errors)."""
        return self.outcome.result

    @property
    def error(self) -> str | None:
        """For :attr:`ScanKind.ERROR`, what went wrong (begins with the path)."""
        return self.outcome.error.message if self.outcome.error is not None else None

    @property
    def status(self) -> str:
        """The verdict status, or ``error``."""
        return self.verdict.status.value if self.verdict is not None else Status.ERROR.value

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (the verdict in full)."""
        return {
            "path": self.path,
            "kind": self.kind.value,
            "status": self.status,
            "source": self.source,
            "sku": self.sku,
            "product_name": self.product_name,
            "error": self.error,
            "verdict": None if self.verdict is None else self.verdict.to_dict(),
        }

    def summary(self) -> dict[str, str]:
        """The flat form used by the CSV and HTML reports."""
        v = self.verdict
        record = v.record if v is not None else None
        return {
            "path": self.path,
            "kind": self.kind.value,
            "status": self.status,
            "asset_id": (v.asset_id if v is not None else None) or "",
            "model": f"{record.model} {record.model_version}" if record is not None else "",
            "digital_source_type": record.digital_source_type.value if record else "",
            "distance": ""
            if v is None or v.perceptual_distance is None
            else str(v.perceptual_distance),
            "signer": (v.signer if v is not None else None) or "",
            "codes": ", ".join(v.failure_codes) if v is not None else "",
            "source": self.source or "",
            "error": self.error or "",
            "sku": self.sku or "",
            "product_name": self.product_name or "",
        }


_SUMMARY_COLUMNS = (
    "path",
    "kind",
    "status",
    "asset_id",
    "model",
    "digital_source_type",
    "distance",
    "signer",
    "codes",
    "source",
    "error",
    "sku",
    "product_name",
)
