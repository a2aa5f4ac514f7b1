"""The whole report: its scope block, the recovery findings by section, :class:`ComplianceReport`.

Pure: frozen values holding :mod:`._model`'s rows, and their renderings by
delegation to ``_json``, ``_csv`` and ``_html``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from provenance._io.keys import TrustPolicy, certificate_sha256
from provenance._version import __version__
from provenance.audit import Checkpoint
from provenance.report import _csv, _html, _json
from provenance.report._model import (
    Art50Figures,
    AssetRow,
    Finding,
    GdprAssessment,
    IncidentSummary,
    Signer,
    TimelineItem,
    TrustAnchor,
    is_development,
)
from provenance.report._terms import FINDING_SECTIONS, Section


@dataclass(frozen=True, slots=True)
class ReportScope:
    """What a report covered and how it was made (the scope and method block).

    Attributes:
        tool_version: provenance's version.
        c2pa_version: The c2pa-rs version behind c2pa-python.
        trust_anchors: The configured trust anchors.
        roots: The folders or files scanned.
        scanned_at: When the scan ran, RFC 3339 UTC.
        audit_verified: Whether the audit chain verified (None: not checked).
        audit_entries_checked: Entries read when verifying it.
        audit_problems: One sentence per problem found.
    """

    tool_version: str = __version__
    c2pa_version: str | None = None
    trust_anchors: tuple[TrustAnchor, ...] = ()
    roots: tuple[str, ...] = ()
    scanned_at: str | None = None
    audit_verified: bool | None = None
    audit_entries_checked: int = 0
    audit_problems: tuple[str, ...] = ()

    @classmethod
    def anchors_of(cls, trust: TrustPolicy | None) -> tuple[TrustAnchor, ...]:
        """Subject, SHA-256 fingerprint (of the DER certificate) and dev flag of each anchor."""
        if trust is None:
            return ()
        return tuple(
            TrustAnchor(
                subject=cert.subject.rfc4514_string(),
                sha256=certificate_sha256(cert),
                development=is_development(cert.subject.rfc4514_string()),
            )
            for cert in trust.anchors
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "tool": f"provenance {self.tool_version}",
            "c2pa": self.c2pa_version,
            "trust_anchors": [a.to_dict() for a in self.trust_anchors],
            "roots": list(self.roots),
            "scanned_at": self.scanned_at,
            "audit_chain_verified": self.audit_verified,
            "audit_entries_checked": self.audit_entries_checked,
            "audit_problems": list(self.audit_problems),
        }


class Recovery(Mapping[Section, tuple[Finding, ...]]):
    """Part 2's findings by section, every section present, in the report's order.

    A section's value is accepted as a key too (``recovery["altered"]``), as the
    mapping of earlier releases was keyed.
    """

    __slots__ = ("_by",)

    def __init__(self, by: Mapping[Section, Sequence[Finding]] | None = None) -> None:
        found = by or {}
        self._by = {section: tuple(found.get(section, ())) for section in Section}

    def __getitem__(self, key: Section | str) -> tuple[Finding, ...]:
        if not isinstance(key, Section):
            try:
                key = Section(key)
            except ValueError:
                raise KeyError(key) from None
        return self._by[key]

    def __iter__(self) -> Iterator[Section]:
        return iter(self._by)

    def __len__(self) -> int:
        return len(self._by)

    def __repr__(self) -> str:
        return f"Recovery({ {k.value: len(v) for k, v in self._by.items()} })"


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    """A compliance report, ready to render as JSON, CSV, HTML or PDF.

    Attributes:
        made_at: When it was made, RFC 3339 UTC.
        checkpoint: The audit checkpoint it was made from.
        source: What was checked (a folder, or a verify/scan JSON file).
        assets: Part 1, one row per AI-generated original, its renditions
            grouped under it.
        recovery: Part 2, findings by section.
        timeline: Part 3, audit events about the affected assets, oldest first.
        incident: First seen, affected assets, signers and models involved.
        art50: EU AI Act Art. 50 figures: synthetic content and its marking.
        verdict_counts: Files checked, by verdict value.
        thumbnails: ``data:`` URIs by asset id (HTML only).
        scope: The scope and method block.
        signers: Every signer seen, with ``development`` true for development keys.
        gdpr: Whether GDPR Art. 33 applies, why, and the deadlines.
        counts: Originals, renditions and copies, each number named.
    """

    made_at: str
    checkpoint: Checkpoint | None
    source: str | None
    assets: tuple[AssetRow, ...] = ()
    recovery: Recovery = field(default_factory=Recovery)
    timeline: tuple[TimelineItem, ...] = ()
    incident: IncidentSummary = field(default_factory=IncidentSummary)
    art50: Art50Figures = field(default_factory=Art50Figures)
    verdict_counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    thumbnails: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    scope: ReportScope = field(default_factory=ReportScope)
    signers: tuple[Signer, ...] = ()
    gdpr: GdprAssessment = field(default_factory=GdprAssessment)
    counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def has_findings(self) -> bool:
        """Whether anything lost provenance, was altered or was copied without it."""
        return any(self.recovery.get(k) for k in FINDING_SECTIONS)

    @property
    def development_keys_used(self) -> bool:
        """Whether a development key signed anything in this report."""
        return any(s.development for s in self.signers)

    @property
    def codes(self) -> tuple[str, ...]:
        """Every failure code shown in the report, sorted."""
        return tuple(sorted({c for rows in self.recovery.values() for r in rows for c in r.codes}))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (thumbnails are left out)."""
        return _json.report_dict(self)

    def to_json(self) -> str:
        """Indented JSON text."""
        return _json.report_json(self)

    def to_csv(self) -> str:
        """One row per asset, rendition, finding and timeline event, with a ``section`` column.

        Cells a spreadsheet would run as a formula are prefixed with ``'``.
        """
        return _csv.report_csv(self)

    def to_html(self) -> str:
        """One self-contained, accessible HTML page (no external resources), print-ready."""
        return _html.report_html(self)
