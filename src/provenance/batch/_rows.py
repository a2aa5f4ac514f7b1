"""A file's outcome in a batch: :class:`BatchRow`, :class:`RowStatus` and :class:`ItemError`.

What this module owns: the one row model every batch verb streams back (and
``scan`` builds its rows on). Plain values: it does no I/O and imports nothing
of the batch's machinery, so anything that only reads rows can import it alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from provenance._core.types import Status, Verdict
from provenance.errors import ProvenanceError

__all__ = ["BatchRow", "ItemError", "RowStatus", "verdict_of"]

T = TypeVar("T")


class RowStatus(enum.Enum):
    """What happened to one item of a batch."""

    OK = "ok"
    """Done: signed (and recorded), or verified (see the verdict's own status)."""
    SKIPPED = "skipped"
    """Resumed batch: the output exists and the inventory records it."""
    ERROR = "error"
    """The item could not be processed; :attr:`BatchRow.error` says why."""


@dataclass(frozen=True, slots=True)
class ItemError:
    """Why one item failed; picklable, unlike some exceptions.

    Attributes:
        kind: The error's class name (``CorruptFile``, ``OutputError``,
            ``WorkerLost``...).
        message: ``str(err)``: begins with the file's path or name.
    """

    kind: str
    message: str

    def __str__(self) -> str:
        return self.message

    @classmethod
    def from_exception(cls, exc: BaseException, name: str) -> ItemError:
        """Describe ``exc`` for the item ``name`` (prefixed when the message lacks it)."""
        if isinstance(exc, ProvenanceError):
            if exc.path is None:
                exc.with_path(name)
            return cls(type(exc).__name__, str(exc))
        if isinstance(exc, OSError):
            detail = exc.strerror or str(exc)
            return cls(type(exc).__name__, f"{name}: {detail}")
        return cls(type(exc).__name__, f"{name}: unexpected error: {exc}")


@dataclass(frozen=True, slots=True)
class BatchRow(Generic[T]):
    """The outcome for one item, in input order.

    Attributes:
        index: The item's position in the input (0-based).
        name: The item's path, or the name given with its bytes.
        status: Done, skipped or failed.
        result: The :class:`~provenance._core.types.SignResult` or
            :class:`~provenance._core.types.Verdict` (also for skipped items: the
            recorded signing); None on error.
        error: Why it failed; None otherwise.
    """

    index: int
    name: str
    status: RowStatus
    result: T | None = None
    error: ItemError | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: the result's own form, plus index, source and status."""
        out: dict[str, Any] = {}
        to_dict = getattr(self.result, "to_dict", None)
        if callable(to_dict):
            out.update(to_dict())
        out.update({"index": self.index, "source": self.name, "status": self.status.value})
        if self.error is not None:
            out["error"] = self.error.message
            out["error_kind"] = self.error.kind
        return out


def verdict_of(row: BatchRow[Verdict]) -> Verdict:
    """The verdict a verify row stands for, also when the file could not be checked.

    A single-file :func:`provenance.verify` raises for a file it cannot read;
    ``verify --json``, reports and scans carry that file as a verdict with status
    ``error`` and the error's message instead. This is that verdict.

    Args:
        row: A row of :func:`~provenance.batch.verify_many` (or a scan's outcome).

    Returns:
        The row's verdict; for an error row, ``Verdict(path=row.name,
        status=Status.ERROR, error=<the message>)``.
    """
    if row.result is not None:
        return row.result
    message = row.error.message if row.error is not None else f"{row.name}: failed"
    return Verdict(path=row.name, status=Status.ERROR, error=message)


# What a worker sends back per item: (index, status, result, error). A tuple, not
# a dataclass: it crosses a pipe for every item.
_Outcome = tuple[int, RowStatus, Any, ItemError | None]
