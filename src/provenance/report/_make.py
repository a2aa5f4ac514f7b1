"""Make a report from the outside world: verify a folder, log findings, take a checkpoint.

The composing half of the report (the building half, :mod:`._build`, is pure):
it verifies files on the batch path (:func:`provenance.batch.verify_many`: workers,
progress, one row per file), writes findings, an export entry and a checkpoint to the
audit log, verifies the chain, reads thumbnails, then builds. :func:`open_incident`
records a declared incident.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from PIL import UnidentifiedImageError

from provenance._core.pii import find_personal_data
from provenance._core.record import format_time
from provenance._core.thumbnails import thumbnail_data_uri
from provenance._core.types import Status, Verdict
from provenance._io.c2pa import c2pa_version
from provenance._io.image_files import image_files
from provenance._io.keys import SigningKey, TrustPolicy
from provenance._io.reading import read_input
from provenance.audit import AuditEntry, AuditEvent, AuditReport
from provenance.batch import BatchRow, verify_many
from provenance.errors import ProvenanceError
from provenance.fingerprint import open_image
from provenance.inventory import AssetEntry, Inventory
from provenance.report._build import build_report
from provenance.report._compliance import ComplianceReport, ReportScope
from provenance.report._rows import ReportInput, report_row, report_rows
from provenance.report._terms import FINDING_STATUSES, parse_status

_THUMB_PX = 96


def open_incident(
    inventory: Inventory,
    *,
    aware_at: datetime,
    description: str,
    personal_data: bool,
    asset_ids: Sequence[str] = (),
    now: datetime,
) -> AuditEntry:
    """Record a declared incident in the audit log (``incident_opened``).

    With ``personal_data`` the report counts the GDPR Art. 33 72-hour deadline
    from ``aware_at``; without it, the incident is listed but no clock runs.

    Args:
        inventory: A writable inventory.
        aware_at: When the organisation became aware of the incident.
        description: One sentence; it must not itself hold personal data.
        personal_data: Whether personal data is involved (a GDPR breach).
        asset_ids: The assets concerned, if known.
        now: When it is recorded (after ``aware_at``).

    Raises:
        ProvenanceError: ``aware_at`` is after ``now``, or the description is
            empty or holds personal data.
        InventoryError: The inventory cannot be written.
    """
    text = " ".join(description.split())
    if not text:
        raise ProvenanceError("an incident needs a description (--description)")
    if aware_at > now:
        raise ProvenanceError(
            f"the awareness time {format_time(aware_at)} is in the future (now {format_time(now)})"
        )
    if find_personal_data(text):
        raise ProvenanceError(
            "the description holds personal data; the audit log must not: describe the "
            "incident without names, addresses or numbers"
        )
    payload = {
        "personal_data": personal_data,
        "aware_at": format_time(aware_at),
        "description": text,
        "assets": sorted(set(asset_ids)),
    }
    return inventory.audit.append(
        AuditEvent.INCIDENT_OPENED,
        asset_id=asset_ids[0] if len(asset_ids) == 1 else None,
        payload=payload,
        now=now,
    )


def verdict_rows_for(
    folder: str | os.PathLike[str],
    *,
    trust: TrustPolicy | None = None,
    inventory: Inventory | None = None,
    workers: int = 1,
    on_row: Callable[[BatchRow[Verdict]], None] | None = None,
) -> list[dict[str, Any]]:
    """Verify every image under ``folder`` on the batch path, in the folder's order.

    Args:
        folder: The folder, walked recursively (images by suffix).
        trust: The trust anchors.
        inventory: Recognise stripped and perceptual copies of known assets.
        workers: Worker processes (see :func:`provenance.batch.verify_many`); 1
            verifies in this process, 0 means one per CPU.
        on_row: Called with each batch row as it arrives (progress).

    Returns:
        One row per file in ``verify --json`` form; a file that could not be
        checked is an ``error`` row with its message.

    Raises:
        ValueError: ``workers`` is negative.
        WorkerPoolError: ``workers`` > 1 and the worker processes could not start.
    """
    rows = []
    for row in verify_many(image_files(folder), trust=trust, inventory=inventory, workers=workers):
        rows.append(report_row(row))
        if on_row is not None:
            on_row(row)
    return rows


def _thumbnail(path: str) -> str | None:
    try:
        data = read_input(path, max_bytes=128 * 1024 * 1024)
        # open_image: the pixel limit before decoding, and HEIC through pillow-heif.
        with open_image(data) as img:
            return thumbnail_data_uri(img, side=_THUMB_PX, quality=70)
    except (ProvenanceError, OSError, UnidentifiedImageError, ValueError):
        return None


# Long only by its keyword arguments and their documentation; the body is a few calls.
def make_report(
    inventory: Inventory,
    *,
    rows: Sequence[ReportInput] | None,
    now: datetime,
    key: SigningKey | None = None,
    source: str | None = None,
    record_findings: bool = True,
    thumbnails: bool = True,
    trust: TrustPolicy | None = None,
    roots: Sequence[str] = (),
) -> ComplianceReport:
    """Make a report: log findings and a checkpoint, verify the chain, then build it.

    Steps:

    1. Log each finding (lost provenance, altered, synthetic duplicate) as a
       ``verified`` audit entry, unless the same file hash and status are
       already logged: the log then knows when a problem was first seen.
    2. Log an ``exported`` entry and take a checkpoint (signed with ``key``;
       unsigned without one) that the report carries.
    3. Verify the whole audit chain against that checkpoint (the scope block
       says whether it verified).
    4. Read the assets and the audit log, make thumbnails, build the report.

    Args:
        inventory: A writable inventory.
        rows: What each file checked is: batch rows of
            :func:`~provenance.batch.verify_many`, scan rows, or verdicts in
            ``verify --json`` form; None when no file was checked.
        now: The report time.
        key: Signs the checkpoint.
        source: What was checked.
        record_findings: Log findings in the audit log (step 1).
        thumbnails: Make thumbnails of a copy of each asset.
        trust: The trust anchors the files were verified with (named in the scope).
        roots: The folders or files scanned (default: ``source``).

    Raises:
        InventoryError: The inventory cannot be read or written.
        AuditError: A stored audit entry cannot be decoded.
    """
    # 0. A log that fails verification gets nothing more: no findings, no export
    #    entry and above all no checkpoint, which would vouch for the tampering
    #    (red-team issue 15). The report then says the chain did not verify.
    checked = None if rows is None else report_rows(rows)
    before = inventory.audit.verify()
    if not before.ok:
        return build_report(
            list(inventory.assets()),
            checked,
            list(inventory.audit.entries()),
            now=now,
            source=source,
            scope=_scope(before, checked, now=now, source=source, trust=trust, roots=roots),
        )
    # 1. Findings into the audit log, once each.
    if record_findings and checked:
        _log_findings(inventory, checked, now=now)
    # 2. The checkpoint the report is made from.
    counts = Counter(str(r.get("verdict", "error")) for r in checked or ())
    inventory.audit.append(
        AuditEvent.EXPORTED, payload={"format": "report", **dict(sorted(counts.items()))}, now=now
    )
    checkpoint = inventory.audit.checkpoint(key, now=now)
    # 3. The chain, against the checkpoint just taken.
    audit = inventory.audit.verify(against=checkpoint)
    # 4. Read and build.
    assets = list(inventory.assets())
    return build_report(
        assets,
        checked,
        list(inventory.audit.entries()),
        now=now,
        checkpoint=checkpoint,
        source=source,
        thumbnails=_thumbnails(assets, checked) if thumbnails and checked else {},
        scope=_scope(audit, checked, now=now, source=source, trust=trust, roots=roots),
    )


def _scope(
    audit: AuditReport,
    rows: Sequence[Mapping[str, Any]] | None,
    *,
    now: datetime,
    source: str | None,
    trust: TrustPolicy | None,
    roots: Sequence[str],
) -> ReportScope:
    return ReportScope(
        c2pa_version=c2pa_version(),
        trust_anchors=ReportScope.anchors_of(trust),
        roots=tuple(roots) or ((source,) if source else ()),
        scanned_at=format_time(now) if rows is not None else None,
        audit_verified=audit.ok,
        audit_entries_checked=audit.entries_checked,
        audit_problems=tuple(f"{p.kind.value} at seq {p.seq}: {p.detail}" for p in audit.problems),
    )


def _log_findings(
    inventory: Inventory, rows: Sequence[Mapping[str, Any]], *, now: datetime
) -> None:
    """Log each finding as a ``verified`` entry unless its file hash and status are logged."""
    seen = {
        (e.payload.get("sha256"), e.payload.get("status"))
        for e in inventory.audit.entries()
        if e.event is AuditEvent.VERIFIED
    }
    for row in rows:
        value = str(row.get("verdict", ""))
        status = parse_status(value)
        if status is None or status not in FINDING_STATUSES or (row.get("sha256"), value) in seen:
            continue
        inventory.record_verification(_verdict_of(row, status), now=now)
        seen.add((row.get("sha256"), value))


def _thumbnails(assets: Sequence[AssetEntry], rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """A thumbnail of the first readable copy of each asset among the rows."""
    ids = {a.asset_id for a in assets}
    by_sha = {f.sha256_hex: a.asset_id for a in assets for f in a.files}
    thumbs: dict[str, str] = {}
    for row in rows:
        asset_id = row.get("asset_id") if row.get("asset_id") in ids else None
        asset_id = asset_id or by_sha.get(str(row.get("sha256")))
        if asset_id and asset_id not in thumbs:
            thumb = _thumbnail(str(row.get("path", "")))
            if thumb is not None:
                thumbs[str(asset_id)] = thumb
    return thumbs


def _verdict_of(row: Mapping[str, Any], status: Status) -> Verdict:
    def text(key: str) -> str | None:
        value = row.get(key)
        return value if isinstance(value, str) else None

    return Verdict(
        path=str(row.get("path", "")),
        status=status,
        failure_codes=tuple(str(c) for c in row.get("failure_codes") or ()),
        active_manifest=text("active_manifest"),
        asset_id=text("asset_id"),
        sha256_hex=text("sha256"),
        essence_sha256_hex=text("essence_sha256"),
    )
