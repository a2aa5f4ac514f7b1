"""Build a report from values: inventory assets, verdict rows and the audit log.

Pure: values in, a :class:`~provenance.report.ComplianceReport` out; the report
time is a parameter. Reading the inventory, verifying files and logging findings
is :mod:`provenance.report._make`'s job.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from provenance._core.pii import find_personal_data
from provenance._core.record import FREE_TEXT_PARAMETERS, format_time, parse_time
from provenance._core.types import Status
from provenance.audit import AuditEntry, AuditEvent, Checkpoint
from provenance.errors import ProvenanceError
from provenance.inventory import AssetEntry
from provenance.report._compliance import ComplianceReport, Recovery, ReportScope
from provenance.report._model import (
    Art50Figures,
    AssetRow,
    CopySeen,
    Finding,
    GdprAssessment,
    GdprIncident,
    IncidentSummary,
    PersonalDataFound,
    RenditionRow,
    Signer,
    TimelineItem,
    is_development,
)
from provenance.report._terms import (
    ALTERED,
    FINDING_SECTIONS,
    FINDING_STATUSES,
    GDPR_NOTIFICATION_HOURS,
    MARKED,
    DisclosureStatus,
    Section,
    parse_status,
)


def build_report(
    assets: Iterable[AssetEntry],
    rows: Sequence[Mapping[str, Any]] | None,
    entries: Iterable[AuditEntry],
    *,
    now: datetime,
    checkpoint: Checkpoint | None = None,
    source: str | None = None,
    thumbnails: Mapping[str, str] | None = None,
    scope: ReportScope | None = None,
) -> ComplianceReport:
    """Build the report from values.

    Args:
        assets: Every inventory asset.
        rows: Verdicts in ``verify --json`` form (one per file checked), or None
            when no folder was checked (disclosure status is ``not_checked``).
        entries: The audit log, in seq order.
        now: The report time (a declared incident's 72-hour clock is read against it).
        checkpoint: The audit checkpoint the report is made from.
        source: What was checked, for the record.
        thumbnails: ``data:`` URIs by asset id.
        scope: The scope and method block (versions, anchors, audit check).
    """
    index = _Index.of(assets)
    log = list(entries)
    for row in rows or ():
        index.check(row)
    asset_rows = _asset_rows(index, checked=rows is not None)
    affected = {
        r.asset_id for section in FINDING_SECTIONS for r in index.recovery[section] if r.asset_id
    }
    timeline, incident = _timeline(log, affected)
    by_id = index.by_id
    models = {
        f"{by_id[i].record.model} {by_id[i].record.model_version}" for i in affected & set(by_id)
    }
    recovery = {k: tuple(v) for k, v in index.recovery.items()}
    return ComplianceReport(
        made_at=format_time(now),
        checkpoint=checkpoint,
        source=source,
        assets=asset_rows,
        recovery=Recovery(recovery),
        timeline=tuple(timeline),
        incident=IncidentSummary(
            affected_assets=tuple(sorted(affected)),
            first_seen=incident[0],
            signers=tuple(sorted(incident[1])),
            models=tuple(sorted(models)),
        ),
        art50=_art50(asset_rows, recovery),
        verdict_counts=MappingProxyType(dict(sorted(index.counts.items()))),
        thumbnails=MappingProxyType(dict(thumbnails or {})),
        scope=scope or ReportScope(),
        signers=_signers(index.assets, rows or ()),
        gdpr=_gdpr(log, index.assets, now=now),
        counts=MappingProxyType(_counts(asset_rows, recovery, index.counts)),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(slots=True)
class _Index:
    """The assets looked up three ways, and what checking the rows found so far."""

    assets: list[AssetEntry]
    by_id: dict[str, AssetEntry]
    by_sha: dict[str, AssetEntry]
    by_essence: dict[str, AssetEntry]
    copies: dict[str, list[CopySeen]]
    recovery: dict[Section, list[Finding]] = field(
        default_factory=lambda: {section: [] for section in Section}
    )
    counts: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, assets: Iterable[AssetEntry]) -> _Index:
        every = list(assets)
        return cls(
            assets=every,
            by_id={a.asset_id: a for a in every},
            by_sha={f.sha256_hex: a for a in every for f in a.files},
            by_essence={a.essence_sha256_hex: a for a in every},
            copies={a.asset_id: [] for a in every},
        )

    def match(self, row: Mapping[str, Any]) -> AssetEntry | None:
        """The asset a verdict row is a copy of: by asset id, file hash, then essence hash."""
        for key, table in (
            ("asset_id", self.by_id),
            ("sha256", self.by_sha),
            ("essence_sha256", self.by_essence),
        ):
            value = row.get(key)
            if isinstance(value, str) and value in table:
                return table[value]
        return None

    def check(self, row: Mapping[str, Any]) -> None:
        """Count a verdict row, note it as a copy of its asset, and file it in a section."""
        status_value = str(row.get("verdict") or row.get("status") or "error")
        status = parse_status(status_value)
        self.counts[status_value] += 1
        asset = self.match(row)
        finding = self._finding(row, asset, status, status_value)
        if asset is not None:
            self.copies[asset.asset_id].append(
                CopySeen(path=str(finding.path), status=status, status_value=status_value)
            )
        section = _section_of(status, known=asset is not None)
        if section is not None:
            self.recovery[section].append(finding)

    def _finding(
        self,
        row: Mapping[str, Any],
        asset: AssetEntry | None,
        status: Status | None,
        status_value: str,
    ) -> Finding:
        codes = tuple(str(c) for c in row.get("failure_codes") or ())
        detail = _text(row.get("error")) or ", ".join(codes)
        path = str(row.get("path", ""))
        if asset is None:
            record = row.get("record")
            record = record if isinstance(record, Mapping) else {}
            return Finding(
                path=path,
                status=status,
                status_value=status_value,
                asset_id=_text(row.get("asset_id")),
                original_asset_id=None,
                model=_text(record.get("model")),
                model_version=_text(record.get("model_version")),
                signer=_text(row.get("signer")),
                at=None,
                detail=detail,
                codes=codes,
            )
        return Finding(
            path=path,
            status=status,
            status_value=status_value,
            asset_id=asset.asset_id,
            original_asset_id=_root_of(asset, self.by_id).asset_id,
            model=asset.record.model,
            model_version=asset.record.model_version,
            signer=asset.signer,
            at=asset.first_signed_at,
            detail=detail,
            codes=codes,
        )


def _section_of(status: Status | None, *, known: bool) -> Section | None:
    """Where a file with this verdict goes in the recovery check (None: nowhere)."""
    if status is Status.KNOWN_STRIPPED:
        return Section.LOST_PROVENANCE
    if status in ALTERED:
        return Section.ALTERED
    if status is Status.SYNTHETIC_DUPLICATE:
        return Section.COPIES_OF_KNOWN if known else Section.SYNTHETIC_DUPLICATES
    if status is Status.ERROR:
        return Section.UNCHECKED
    if status in MARKED or status is Status.NO_PROVENANCE:
        return None
    return Section.OTHER


def _root_of(asset: AssetEntry, by_id: Mapping[str, AssetEntry]) -> AssetEntry:
    """The original an asset descends from (itself when it has no known parent)."""
    seen = {asset.asset_id}
    current = asset
    while current.parent_asset_id and current.parent_asset_id in by_id:
        parent = by_id[current.parent_asset_id]
        if parent.asset_id in seen:  # a cycle cannot be made by sign(); stop anyway
            break
        seen.add(parent.asset_id)
        current = parent
    return current


def _asset_rows(index: _Index, *, checked: bool) -> tuple[AssetRow, ...]:
    """Part 1, one row per AI-generated original; an original not seen is also a finding.

    Renditions are grouped under the original they were made from (followed up
    the parent chain); a rendition whose parent is not in the inventory stands alone.
    """
    renditions: dict[str, list[AssetEntry]] = {}
    originals: list[AssetEntry] = []
    for a in index.assets:
        if not a.is_synthetic:
            continue
        root = _root_of(a, index.by_id)
        if root is a:
            originals.append(a)
        else:
            renditions.setdefault(root.asset_id, []).append(a)
    rows = []
    for a in originals:
        kids = renditions.get(a.asset_id, [])
        seen = index.copies[a.asset_id] + [c for k in kids for c in index.copies[k.asset_id]]
        disclosure = _disclosure(seen, checked=checked)
        if disclosure is DisclosureStatus.NOT_SEEN:
            index.recovery[Section.NOT_SEEN].append(_not_seen(a, len(kids)))
        rows.append(_asset_row(a, kids, index.copies, disclosure))
    return tuple(rows)


def _not_seen(a: AssetEntry, renditions: int) -> Finding:
    return Finding(
        path=None,
        status=DisclosureStatus.NOT_SEEN,
        status_value=DisclosureStatus.NOT_SEEN.value,
        asset_id=a.asset_id,
        original_asset_id=a.asset_id,
        model=a.record.model,
        model_version=a.record.model_version,
        signer=a.signer,
        at=a.first_signed_at,
        detail=f"no copy of the original or its {renditions} renditions among the scanned files",
    )


def _asset_row(
    a: AssetEntry,
    kids: Sequence[AssetEntry],
    copies: Mapping[str, Sequence[CopySeen]],
    disclosure: DisclosureStatus,
) -> AssetRow:
    return AssetRow(
        asset_id=a.asset_id,
        model=a.record.model,
        model_version=a.record.model_version,
        generator=a.record.generator,
        digital_source_type=a.record.digital_source_type,
        created_at=format_time(a.record.created_at),
        signer=a.signer,
        first_signed_at=a.first_signed_at,
        signed_files=tuple(f.path for f in a.files if f.path),
        copies=tuple(copies[a.asset_id]),
        renditions=tuple(
            RenditionRow(
                asset_id=k.asset_id,
                parent_asset_id=k.parent_asset_id,
                signer=k.signer,
                first_signed_at=k.first_signed_at,
                signed_files=tuple(f.path for f in k.files if f.path),
                copies=tuple(copies[k.asset_id]),
            )
            for k in kids
        ),
        disclosure=disclosure,
    )


def _disclosure(copies: Sequence[CopySeen], *, checked: bool) -> DisclosureStatus:
    if not checked:
        return DisclosureStatus.NOT_CHECKED
    statuses = {c.status for c in copies}
    if statuses & ALTERED:
        return DisclosureStatus.ALTERED
    if statuses & {Status.KNOWN_STRIPPED, Status.SYNTHETIC_DUPLICATE}:
        return DisclosureStatus.MARKING_LOST
    if statuses & MARKED:
        return DisclosureStatus.MARKED
    return DisclosureStatus.NOT_SEEN


def _every_copy(asset_rows: Sequence[AssetRow]) -> tuple[list[CopySeen], list[CopySeen]]:
    """Copies of the originals, and copies of their renditions."""
    originals = [c for r in asset_rows for c in r.copies]
    renditions = [c for r in asset_rows for k in r.renditions for c in k.copies]
    return originals, renditions


def _counts(
    asset_rows: Sequence[AssetRow],
    recovery: Mapping[Section, Sequence[Finding]],
    verdicts: Counter[str],
) -> dict[str, int]:
    originals, renditions = _every_copy(asset_rows)
    return {
        "files_checked": sum(verdicts.values()),
        "ai_originals": len(asset_rows),
        "ai_renditions": sum(len(r.renditions) for r in asset_rows),
        "copies_of_originals_seen": len({c.path for c in originals}),
        "copies_of_renditions_seen": len({c.path for c in renditions}),
        **{section.value: len(recovery[section]) for section in Section},
    }


def _art50(
    asset_rows: Sequence[AssetRow], recovery: Mapping[Section, Sequence[Finding]]
) -> Art50Figures:
    originals, renditions = _every_copy(asset_rows)
    every = originals + renditions
    synthetic_renditions = sum(len(r.renditions) for r in asset_rows)
    return Art50Figures(
        ai_originals=len(asset_rows),
        ai_renditions=synthetic_renditions,
        signed_with_machine_readable_marking=len(asset_rows) + synthetic_renditions,
        disclosure_status=MappingProxyType(dict(Counter(r.disclosure.label for r in asset_rows))),
        copies_marked=sum(1 for c in every if c.status in MARKED),
        copies_marking_lost=sum(1 for c in every if c.status is Status.KNOWN_STRIPPED)
        + len(recovery[Section.COPIES_OF_KNOWN]),
        copies_altered=sum(1 for c in every if c.status in ALTERED),
        models=MappingProxyType(dict(Counter(f"{r.model} {r.model_version}" for r in asset_rows))),
    )


def _signers(assets: Sequence[AssetEntry], rows: Iterable[Mapping[str, Any]]) -> tuple[Signer, ...]:
    # The inventory stores RFC 4514 subjects, c2pa reports the same names in
    # another attribute order: one signer is one set of attributes.
    def key(subject: str) -> tuple[str, ...]:
        return tuple(sorted(part.strip() for part in subject.split(",")))

    counted: Counter[str] = Counter(a.signer for a in assets if a.signer)
    known = {key(s) for s in counted}
    for row in rows:
        signer = row.get("signer")
        if isinstance(signer, str) and signer and key(signer) not in known:
            known.add(key(signer))
            counted.setdefault(signer, 0)
    return tuple(
        Signer(subject=s, assets_signed=n, development=is_development(s))
        for s, n in sorted(counted.items())
    )


def _timeline(
    entries: Sequence[AuditEntry], affected: set[str]
) -> tuple[list[TimelineItem], tuple[str | None, set[str]]]:
    """Part 3's events, and when a problem was first seen and who signed what it concerns."""
    items: list[TimelineItem] = []
    problem_times: list[str] = []
    signers: set[str] = set()
    for e in entries:
        payload = e.payload
        status_value = _text(payload.get("status"))
        status = parse_status(status_value) if status_value else None
        bad_verdict = e.event is AuditEvent.VERIFIED and status in FINDING_STATUSES
        about_affected = e.asset_id is not None and e.asset_id in affected
        if e.event is AuditEvent.INCIDENT_OPENED or bad_verdict:
            problem_times.append(e.at)
        if not (about_affected or bad_verdict or e.event is AuditEvent.INCIDENT_OPENED):
            continue
        signer = _text(payload.get("signer"))
        if e.event in (AuditEvent.SIGNED, AuditEvent.RENDITION_ADDED) and signer:
            signers.add(signer)
        items.append(
            TimelineItem(
                seq=e.seq,
                at=e.at,
                event=e.event,
                asset_id=e.asset_id,
                status=status,
                status_value=status_value,
                signer=signer,
                model=_text(payload.get("model")),
                model_version=_text(payload.get("model_version")),
                detail=_text(payload.get("description")),
            )
        )
    return items, (min(problem_times) if problem_times else None, signers)


def _free_text(asset: AssetEntry) -> list[tuple[str, str]]:
    record = asset.record
    texts = [("prompt", record.prompt)] if record.prompt else []
    texts += [
        (f"parameters.{name}", value)
        for name, value in record.parameters.items()
        if name in FREE_TEXT_PARAMETERS and isinstance(value, str)
    ]
    return texts


def _declared(entries: Sequence[AuditEntry], *, now: datetime) -> list[GdprIncident]:
    """Incidents declared with personal data, each with its 72-hour deadline."""
    incidents = []
    for e in entries:
        if e.event is not AuditEvent.INCIDENT_OPENED or e.payload.get("personal_data") is not True:
            continue
        aware = str(e.payload.get("aware_at") or e.at)
        deadline = parse_time(aware) + timedelta(hours=GDPR_NOTIFICATION_HOURS)
        incidents.append(
            GdprIncident(
                seq=e.seq,
                declared_at=e.at,
                aware_at=aware,
                deadline=format_time(deadline),
                hours_left=round((deadline - now).total_seconds() / 3600, 1),
                description=str(e.payload.get("description") or ""),
                assets=tuple(str(a) for a in e.payload.get("assets") or ()),
            )
        )
    return incidents


def _screened(assets: Sequence[AssetEntry]) -> list[PersonalDataFound]:
    """Personal data the PII screen finds in the records' free text."""
    found = []
    for a in assets:
        for name, text in _free_text(a):
            try:
                kinds = sorted({f.kind.value for f in find_personal_data(text)})
            except ProvenanceError:  # too long to scan: say so rather than guess
                kinds = ["unscanned_long_text"]
            if kinds:
                found.append(PersonalDataFound(asset_id=a.asset_id, field=name, kinds=tuple(kinds)))
    return found


def _gdpr(
    entries: Sequence[AuditEntry], assets: Sequence[AssetEntry], *, now: datetime
) -> GdprAssessment:
    """GDPR Art. 33 applies to personal-data breaches only: declared, or found in a record."""
    incidents = _declared(entries, now=now)
    found = _screened(assets)
    if incidents:
        statement = (
            "A personal-data incident was declared: GDPR Art. 33 requires notifying the "
            f"supervisory authority within {GDPR_NOTIFICATION_HOURS} hours of becoming aware "
            "of it. Deadlines below count from the declared awareness time."
        )
    elif found:
        statement = (
            "The PII screen found personal data in provenance records (listed below). "
            "If this is a personal-data breach, declare it with 'provenance incident open "
            "--personal-data --aware-at TIME' to start the 72-hour clock."
        )
    else:
        statement = (
            "No personal data is involved: no personal-data incident was declared, and the "
            "PII screen found no personal data in any provenance record. Stripped, resized "
            "or altered product images are not a personal-data breach, so the GDPR "
            "Art. 33 72-hour notification does not apply to these findings."
        )
    return GdprAssessment(
        applies=bool(incidents or found),
        statement=statement,
        incidents=tuple(incidents),
        personal_data_in_records=tuple(found),
    )
