"""Verifying the audit chain as stored: one database snapshot, read row by row.

:meth:`provenance.audit.AuditLog.verify` opens the snapshot and reads the
witness; this module reads the stored checkpoints and entries from it, walks
them (:mod:`provenance.audit._verify`), reconciles the facts they bind with the
stores' rows, and compares the first entry with the witness's log.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Iterator, Sequence

from provenance._io.database import execute
from provenance._io.keys import TrustPolicy
from provenance.audit._chain import AuditProblem, AuditReport, ProblemKind
from provenance.audit._checkpoint import Checkpoint
from provenance.audit._facts import FactBindings
from provenance.audit._schema import _checkpoint_from_row, _entry_from_row, _link_from_row
from provenance.audit._statements import _ALL_CHECKPOINTS, _ALL_ENTRIES
from provenance.audit._verify import _Link, _link_of, _verify_links
from provenance.errors import AuditError

Reconciler = Callable[[sqlite3.Connection, FactBindings], tuple[list[AuditProblem], list[str], int]]
"""Compares the stored rows with the bindings: (problems, notes, rows checked)."""


def stored_text(data: bytes) -> str:
    """SQLite TEXT as stored: UTF-8, any other byte kept as a lone surrogate."""
    return data.decode("utf-8", "surrogateescape")


def stored_checkpoints(conn: sqlite3.Connection, *, lenient: bool = False) -> list[Checkpoint]:
    """The stored checkpoints, by seq; ``lenient`` keeps an undecodable row (to fail later)."""
    rows = execute(conn, _ALL_CHECKPOINTS).fetchall()
    out: list[Checkpoint] = []
    for row in rows:
        try:
            out.append(_checkpoint_from_row(row))
        except AuditError:
            if not lenient:
                raise
            # An undecodable row still claims a seq: keep it so its signature fails.
            out.append(Checkpoint(int(row[0]), str(row[1]), str(row[2]), "", "", (), row[6]))
    return out


def stored_links(
    conn: sqlite3.Connection, bindings: FactBindings, first: list[str]
) -> Iterator[_Link]:
    """Every stored entry as a link, in order; intact ones feed ``bindings`` (and ``first``)."""
    cursor = execute(conn, _ALL_ENTRIES)
    try:
        for row in cursor:
            try:
                entry = _entry_from_row(row)
            except AuditError:
                yield _link_from_row(row)
                continue
            link = _link_of(entry)
            if link.intact:
                bindings.add(entry)
                if entry.seq == 1:
                    first.append(entry.entry_hash)
            yield link
    finally:
        cursor.close()


def verify_snapshot(
    conn: sqlite3.Connection,
    *,
    reconcile: Reconciler | None,
    against: Checkpoint | None,
    trust: TrustPolicy | None,
    pin: str | None,
    witnessed: Sequence[Checkpoint],
    log_ids: set[str],
    notes: Sequence[str],
) -> AuditReport:
    """The report on the chain, checkpoints and bound facts stored in ``conn``'s snapshot.

    Args:
        conn: A connection inside one read transaction.
        reconcile: Compares the stores' rows with the facts the entries bind.
        against: A checkpoint kept outside the database.
        trust: Require checkpoints signed under these anchors.
        pin: The log's key fingerprint.
        witnessed: The witness's checkpoints.
        log_ids: The first-entry hashes of the logs the witness holds.
        notes: The witness's notes, reported first.

    Returns:
        The report, problems by seq (rows no entry recorded, seq 0, last).
    """
    stored = stored_checkpoints(conn, lenient=True)
    bindings = FactBindings()
    first: list[str] = []
    report = _verify_links(
        stored_links(conn, bindings, first),
        checkpoints=stored,
        against=against,
        trust=trust,
        pin=pin,
        witnessed=witnessed,
    )
    extra: list[AuditProblem] = []
    extra_notes: list[str] = []
    checked = 0
    if reconcile is not None:
        extra, extra_notes, checked = reconcile(conn, bindings)
    if log_ids and first and log_ids != {first[0]}:
        extra.append(
            AuditProblem(
                1,
                ProblemKind.ROLLED_BACK,
                "the witness holds checkpoints of a log whose first entry is "
                f"{sorted(log_ids - {first[0]})[0][:16]}, not {first[0][:16]}: the log "
                "was rewritten from the start (or the witness is another inventory's)",
            )
        )
    problems = tuple(sorted(report.problems + tuple(extra), key=lambda p: (p.seq == 0, p.seq)))
    return dataclasses.replace(
        report,
        ok=not problems,
        problems=problems,
        verified=report.verified and not problems,
        notes=(*notes, *report.notes, *extra_notes),
        facts_checked=checked,
    )
