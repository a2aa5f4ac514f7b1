"""Compliance reports an auditor can read: scope, counts, recovery, incidents, glossary.

For the compliance lead who must answer a regulator, a press enquiry or an
incident within hours. One report, built from the inventory, a verify run over
a folder (or ``verify --json`` / scan output) and the audit log, has these parts:

0. **Scope and method**: the tool and c2pa versions, the trust anchors (subject
   and SHA-256 fingerprint), every signer seen (a loud warning when development
   keys signed anything), the audit checkpoint the report is made from and
   whether the audit chain verified, the roots scanned and when.
1. **Synthetic-data inventory**: every AI-generated *original*, its model and
   version, its renditions grouped under it, where copies of either were seen,
   and its disclosure status (:class:`DisclosureStatus`).
2. **Recovery check**: copies whose provenance was stripped (``known_stripped``),
   altered copies (``tampered``, ``invalid_signature``), resized or re-encoded
   copies of known assets (``synthetic_duplicate`` matched to an inventory
   asset), originals not seen in this scan, files that could not be checked.
3. **Incidents and GDPR**: the audit events about affected assets, and the
   GDPR Art. 33 72-hour clock *only* where personal data is involved: an
   incident declared with ``provenance incident open --personal-data`` (counted
   from its declared awareness time) or personal data the PII screen finds in a
   provenance record. Otherwise the report says plainly that no personal data is
   involved.
4. **Obligations**: which evidence in the report answers EU AI Act Art. 50 and
   the NIST AI RMF functions Map, Measure and Manage.
5. **Glossary**: every verdict, disclosure status, audit event and code shown,
   in plain words; verdicts come from :class:`~provenance.types.Status` and its
   docstrings, so a new status appears without touching this module.

Formats: JSON (exact), CSV (one row per item, a ``section`` column), one
self-contained HTML page (thumbnails as ``data:`` URIs, charts as inline SVG, no
external script, style sheet or font) and PDF (that page printed by headless
Chromium, :mod:`provenance.pdf`).

:func:`build_report` and the renderers are pure (values in, text out; time is a
parameter). :func:`make_report` composes: it verifies the folder, logs findings
and a checkpoint, verifies the audit chain, reads thumbnails with Pillow, and
calls :func:`build_report`. :func:`open_incident` records a declared incident.
"""

from __future__ import annotations

import ast
import base64
import csv
import enum
import functools
import html
import inspect
import io
import itertools
import json
import os
import textwrap
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from PIL import UnidentifiedImageError

from provenance._version import __version__
from provenance.audit import AuditEntry, AuditEvent, AuditReport, Checkpoint
from provenance.c2pa_adapter import c2pa_version
from provenance.cells import csv_cell
from provenance.containers import IMAGE_SUFFIXES as _FORMAT_SUFFIXES
from provenance.errors import ProvenanceError
from provenance.fingerprint import open_image
from provenance.inventory import AssetEntry, Inventory
from provenance.keys import SigningKey, TrustPolicy, certificate_sha256
from provenance.pii import find_personal_data
from provenance.reading import read_input
from provenance.record import FREE_TEXT_PARAMETERS, format_time, parse_time
from provenance.types import Status, Verdict
from provenance.verify import verify

__all__ = [
    "GDPR_NOTIFICATION_HOURS",
    "ComplianceReport",
    "DisclosureStatus",
    "ReportScope",
    "build_report",
    "glossary",
    "load_verdict_rows",
    "make_report",
    "open_incident",
    "status_label",
    "verdict_rows_for",
]

GDPR_NOTIFICATION_HOURS = 72
"""GDPR Art. 33(1): notify the supervisory authority within 72 hours of awareness."""

_IMAGE_SUFFIXES = _FORMAT_SUFFIXES
_MARKED = frozenset({"trusted", "valid_untrusted"})
_ALTERED = frozenset({"tampered", "invalid_signature"})
_FINDING_STATUSES = frozenset(
    {
        "tampered",
        "invalid_signature",
        "invalid_manifest",
        "invalid_identity",
        "known_stripped",
        "synthetic_duplicate",
    }
)
_THUMB_PX = 96
# init_dev_keys() names its certificates after this organisation by default.
_DEV_MARKERS = ("provenance development", "development")

# Okabe-Ito colours: distinguishable with colour-vision deficiencies. Bars carry
# their numbers as text, so colour is never the only cue (WCAG 1.4.1).
_STATUS_COLOURS = {
    "trusted": "#009E73",
    "valid_untrusted": "#56B4E9",
    "known_stripped": "#E69F00",
    "tampered": "#D55E00",
    "invalid_signature": "#CC79A7",
    "invalid_manifest": "#882255",
    "invalid_identity": "#AA4499",
    "unsupported": "#BBBBBB",
    "remote_manifest": "#0072B2",
    "synthetic_duplicate": "#F0E442",
    "no_provenance": "#999999",
    "error": "#000000",
}

# Plain-words labels for the verdicts we know; a status added later gets its
# value spelled out (see status_label) and its docstring in the glossary.
_STATUS_LABELS = {
    "trusted": "Trusted",
    "valid_untrusted": "Valid, signer not trusted",
    "tampered": "Tampered",
    "invalid_signature": "Invalid signature",
    "invalid_manifest": "Malformed manifest",
    "invalid_identity": "Invalid identity assertion",
    "unsupported": "Manifest of an unsupported version or algorithm",
    "remote_manifest": "Remote manifest (not fetched)",
    "no_provenance": "No provenance",
    "known_stripped": "Provenance stripped (known image)",
    "synthetic_duplicate": "Copy of a known AI image",
    "error": "Could not be checked",
}


class DisclosureStatus(enum.Enum):
    """How an AI-generated original's disclosure stands, over every copy seen."""

    MARKED = "marked"
    """At least one copy was seen with its machine-readable marking intact, and none
    altered or stripped."""
    MARKING_LOST = "marking_lost"
    """A copy (the original or a rendition) was seen with its marking stripped or
    re-encoded away; the image is still recognised from the inventory."""
    ALTERED = "altered"
    """A copy was changed after it was signed, or its signature is invalid."""
    NOT_SEEN = "not_seen"
    """Neither the original nor any of its renditions was among the files scanned.
    This says nothing about files outside the scanned folders."""
    NOT_CHECKED = "not_checked"
    """No folder was scanned for this report (inventory only)."""

    @property
    def label(self) -> str:
        """The human label."""
        return {
            "marked": "Marked",
            "marking_lost": "Marking lost",
            "altered": "Altered",
            "not_seen": "Not seen in this scan",
            "not_checked": "Not checked",
        }[self.value]


# Recovery sections: key, human title, what it means.
_SECTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "lost_provenance",
        "Copies whose provenance was stripped",
        "Exact copies of signed images (same coded image data) from which the C2PA "
        "manifest and signed XMP were removed, typically by a CDN or an export tool.",
    ),
    (
        "altered",
        "Copies altered after signing",
        "Files that carry our provenance but were changed after signing, or whose "
        "signature does not verify.",
    ),
    (
        "copies_of_known",
        "Resized or re-encoded copies of known AI images",
        "Files without provenance that the perceptual search matched to an AI image "
        "in the inventory: a storefront rendition, a re-encode, a crop.",
    ),
    (
        "synthetic_duplicates",
        "Copies of AI images not in this inventory",
        "Files matched as synthetic duplicates whose asset this inventory does not hold.",
    ),
    (
        "not_seen",
        "Originals not seen in this scan",
        "AI-generated originals of which no copy (the original or a rendition) was "
        "among the scanned files. Files outside the scanned folders are not looked at.",
    ),
    (
        "unchecked",
        "Files that could not be checked",
        "Unreadable, corrupt or unsupported files; the error says which.",
    ),
    (
        "other",
        "Files with other verdicts",
        "Verdicts this report has no section of its own for (see the glossary): listed "
        "so that nothing is left out silently.",
    ),
)
_FINDING_SECTIONS = ("lost_provenance", "altered", "copies_of_known", "synthetic_duplicates")

# Codes our own verifier adds, and the c2pa validation codes most often seen.
# Codes not listed get a generic explanation in the glossary.
_CODE_HELP = {
    "assertion.dataHash.mismatch": "The image bytes no longer match the hash the "
    "signer signed: the file changed after signing.",
    "assertion.bmffHash.mismatch": "The media bytes no longer match the signed hash.",
    "assertion.hashedURI.mismatch": "A signed part of the manifest was changed.",
    "claimSignature.mismatch": "The claim's signature does not match its content.",
    "signingCredential.untrusted": "The signer's certificate does not chain to a "
    "configured trust anchor.",
    "signingCredential.invalid": "The signer's certificate is malformed or not valid for signing.",
    "signingCredential.expired": "The signer's certificate had expired at signing time.",
    "general.error": "The C2PA validator reported an error it could not classify.",
    "provenance.metadata.stripped": "The C2PA manifest and signed XMP were removed; the "
    "image data itself is unchanged.",
    "provenance.inventory.essence.match": "The coded image data equals an asset in the "
    "inventory (exact match of the essence hash).",
    "provenance.inventory.perceptual.match": "The pixels match an AI image in the "
    "inventory (perceptual hash, confirmed by a second descriptor): a resized or "
    "re-encoded copy.",
    "provenance.inventory.perceptual.unconfirmed": "A perceptual hash was close to a "
    "known image, but the confirming check did not agree; not counted as a copy.",
    "provenance.inventory.perceptual.notSynthetic": "The closest known image is not AI-generated.",
    "provenance.inventory.perceptual.undecodable": "The file could not be decoded for "
    "the perceptual search.",
    "provenance.xmp.signature.invalid": "The signature over the XMP provenance record "
    "does not verify.",
    "provenance.xmp.signingCredential.untrusted": "The XMP record's signer does not "
    "chain to a configured trust anchor.",
    "provenance.xmp.essence.mismatch": "The image data differs from what the XMP record "
    "was signed for: the image changed after signing.",
    "provenance.xmp.field.mismatch": "A visible XMP field differs from the signed record.",
    "provenance.xmp.statement.invalid": "The signed XMP statement is malformed.",
    "provenance.xmp.unreadable": "The XMP packet could not be parsed safely.",
}


def status_label(value: str) -> str:
    """The human label of a verdict value (``known_stripped`` -> words).

    Args:
        value: A :class:`~provenance.types.Status` value, or any string.

    Returns:
        The plain-words label; an unknown value is spelled out, never hidden.
    """
    return _STATUS_LABELS.get(value) or value.replace("_", " ").capitalize()


@functools.cache
def _member_docs(cls: type[enum.Enum]) -> dict[str, str]:
    """Attribute docstrings of an enum's members (the string under each member).

    Python keeps no such docstring at run time; they are read from the class
    source with :mod:`ast`, so whoever adds a member documents it once.
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for first, second in itertools.pairwise(body):
        if (
            isinstance(first, ast.Assign)
            and len(first.targets) == 1
            and isinstance(first.targets[0], ast.Name)
            and isinstance(second, ast.Expr)
            and isinstance(second.value, ast.Constant)
            and isinstance(second.value.value, str)
        ):
            docs[first.targets[0].id] = " ".join(second.value.value.split())
    return docs


def glossary(codes: Iterable[str] = ()) -> dict[str, list[dict[str, str]]]:
    """Every verdict, disclosure status, audit event and the given codes, in plain words.

    Args:
        codes: Failure codes shown in a report.

    Returns:
        ``{"verdicts"|"disclosure"|"events"|"sections"|"codes": [{"term", "label",
        "meaning"}]}``, verdicts in :class:`~provenance.types.Status` order.
    """
    status_docs = _member_docs(Status)
    event_docs = _member_docs(AuditEvent)
    disclosure_docs = _member_docs(DisclosureStatus)
    return {
        "verdicts": [
            {
                "term": s.value,
                "label": status_label(s.value),
                "meaning": status_docs.get(s.name, ""),
            }
            for s in Status
        ],
        "disclosure": [
            {"term": d.value, "label": d.label, "meaning": disclosure_docs.get(d.name, "")}
            for d in DisclosureStatus
        ],
        "sections": [{"term": k, "label": t, "meaning": m} for k, t, m in _SECTIONS],
        "events": [
            {
                "term": e.value,
                "label": e.value.replace("_", " ").capitalize(),
                "meaning": event_docs.get(e.name, ""),
            }
            for e in AuditEvent
        ],
        "codes": [
            {
                "term": c,
                "label": c,
                "meaning": _CODE_HELP.get(c)
                or "A validation code from the C2PA validator or our verifier; see "
                "docs/verdicts.md and the C2PA specification's list of validation codes.",
            }
            for c in sorted(set(codes))
        ],
    }


@dataclass(frozen=True, slots=True)
class ReportScope:
    """What a report covered and how it was made (the scope and method block).

    Attributes:
        tool_version: provenance's version.
        c2pa_version: The c2pa-rs version behind c2pa-python.
        trust_anchors: ``{"subject", "sha256", "development"}`` per configured anchor.
        roots: The folders or files scanned.
        scanned_at: When the scan ran, RFC 3339 UTC.
        audit_verified: Whether the audit chain verified (None: not checked).
        audit_entries_checked: Entries read when verifying it.
        audit_problems: One sentence per problem found.
    """

    tool_version: str = __version__
    c2pa_version: str | None = None
    trust_anchors: tuple[Mapping[str, Any], ...] = ()
    roots: tuple[str, ...] = ()
    scanned_at: str | None = None
    audit_verified: bool | None = None
    audit_entries_checked: int = 0
    audit_problems: tuple[str, ...] = ()

    @classmethod
    def anchors_of(cls, trust: TrustPolicy | None) -> tuple[Mapping[str, Any], ...]:
        """Subject, SHA-256 fingerprint (of the DER certificate) and dev flag of each anchor."""
        if trust is None:
            return ()
        return tuple(
            {
                "subject": cert.subject.rfc4514_string(),
                "sha256": certificate_sha256(cert),
                "development": _is_development(cert.subject.rfc4514_string()),
            }
            for cert in trust.anchors
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "tool": f"provenance {self.tool_version}",
            "c2pa": self.c2pa_version,
            "trust_anchors": [dict(a) for a in self.trust_anchors],
            "roots": list(self.roots),
            "scanned_at": self.scanned_at,
            "audit_chain_verified": self.audit_verified,
            "audit_entries_checked": self.audit_entries_checked,
            "audit_problems": list(self.audit_problems),
        }


def _is_development(subject: str) -> bool:
    lowered = subject.lower()
    return any(marker in lowered for marker in _DEV_MARKERS)


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    """A compliance report, ready to render as JSON, CSV, HTML or PDF.

    Attributes:
        made_at: When it was made, RFC 3339 UTC.
        checkpoint: The audit checkpoint it was made from.
        source: What was checked (a folder, or a verify/scan JSON file).
        assets: Part 1, one JSON-ready row per AI-generated original, its
            renditions grouped under it.
        recovery: Part 2, findings by section (see :func:`glossary`).
        timeline: Part 3, audit events about the affected assets, oldest first.
        incident: First seen, affected assets, signers and models involved.
        art50: EU AI Act Art. 50 figures: synthetic content and its marking.
        verdict_counts: Files checked, by verdict.
        thumbnails: ``data:`` URIs by asset id (HTML only).
        scope: The scope and method block.
        signers: Every signer seen, with ``development`` true for development keys.
        gdpr: Whether GDPR Art. 33 applies, why, and the deadlines.
        counts: Originals, renditions and copies, each number named.
    """

    made_at: str
    checkpoint: Checkpoint | None
    source: str | None
    assets: tuple[Mapping[str, Any], ...]
    recovery: Mapping[str, tuple[Mapping[str, Any], ...]]
    timeline: tuple[Mapping[str, Any], ...]
    incident: Mapping[str, Any]
    art50: Mapping[str, Any]
    verdict_counts: Mapping[str, int]
    thumbnails: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    scope: ReportScope = field(default_factory=ReportScope)
    signers: tuple[Mapping[str, Any], ...] = ()
    gdpr: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def has_findings(self) -> bool:
        """Whether anything lost provenance, was altered or was copied without it."""
        return any(self.recovery.get(k) for k in _FINDING_SECTIONS)

    @property
    def development_keys_used(self) -> bool:
        """Whether a development key signed anything in this report."""
        return any(s["development"] for s in self.signers)

    @property
    def codes(self) -> tuple[str, ...]:
        """Every failure code shown in the report, sorted."""
        found = {
            str(c) for rows in self.recovery.values() for r in rows for c in r.get("codes", ())
        }
        return tuple(sorted(found))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (thumbnails are left out)."""
        return {
            "format": "provenance.report",
            "version": 2,
            "made_at": self.made_at,
            "source": self.source,
            "scope": self.scope.to_dict(),
            "signers": [dict(s) for s in self.signers],
            "development_keys_used": self.development_keys_used,
            "audit_checkpoint": None if self.checkpoint is None else self.checkpoint.to_dict(),
            "counts": dict(self.counts),
            "verdict_counts": dict(self.verdict_counts),
            "synthetic_inventory": [dict(a) for a in self.assets],
            "recovery": {k: [dict(r) for r in v] for k, v in self.recovery.items()},
            "incident": dict(self.incident),
            "gdpr": dict(self.gdpr),
            "timeline": [dict(t) for t in self.timeline],
            "eu_ai_act_art50": dict(self.art50),
            "nist_ai_rmf": _nist(self),
            "glossary": glossary(self.codes),
        }

    def to_json(self) -> str:
        """Indented JSON text."""
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n"

    def to_csv(self) -> str:
        """One row per asset, rendition, finding and timeline event, with a ``section`` column.

        Cells a spreadsheet would run as a formula are prefixed with ``'``.
        """
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(_CSV_COLUMNS)
        for a in self.assets:
            copies = ";".join(c["path"] for c in a["copies"])
            writer.writerow(
                _cells(
                    "synthetic_inventory",
                    a["asset_id"],
                    copies,
                    a["disclosure_label"],
                    a["model"],
                    a["model_version"],
                    a["signer"],
                    a["first_signed_at"],
                    a["digital_source_type"],
                )
            )
            for rendition in a["renditions"]:
                writer.writerow(
                    _cells(
                        "rendition",
                        rendition["asset_id"],
                        ";".join(c["path"] for c in rendition["copies"]),
                        "seen" if rendition["copies"] else "not seen in this scan",
                        a["model"],
                        a["model_version"],
                        rendition["signer"],
                        rendition["first_signed_at"],
                        f"rendition of {a['asset_id']}",
                    )
                )
        for kind, rows in self.recovery.items():
            for r in rows:
                writer.writerow(
                    _cells(
                        kind,
                        r.get("asset_id"),
                        r.get("path"),
                        r.get("status_label"),
                        r.get("model"),
                        r.get("model_version"),
                        r.get("signer"),
                        r.get("at"),
                        r.get("detail"),
                    )
                )
        for t in self.timeline:
            writer.writerow(
                _cells(
                    "timeline",
                    t.get("asset_id"),
                    "",
                    t.get("status"),
                    t.get("model"),
                    t.get("model_version"),
                    t.get("signer"),
                    t.get("at"),
                    f"seq {t['seq']}: {t['event']}",
                )
            )
        for inc in self.gdpr.get("incidents", ()):
            writer.writerow(
                _cells(
                    "gdpr_incident",
                    "",
                    "",
                    "overdue" if inc["hours_left"] < 0 else "open",
                    "",
                    "",
                    "",
                    inc["aware_at"],
                    f"seq {inc['seq']}: notify by {inc['deadline']}; {inc['description']}",
                )
            )
        cp = self.checkpoint
        if cp is not None:
            signed = "signed" if cp.is_signed else "unsigned"
            writer.writerow(
                _cells("audit_checkpoint", "", "", signed, "", "", "", cp.at, f"seq {cp.seq}")
            )
        return buffer.getvalue()

    def to_html(self) -> str:
        """One self-contained, accessible HTML page (no external resources), print-ready."""
        return _html(self)


_CSV_COLUMNS = (
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


def _cells(*values: Any) -> list[str]:
    return [csv_cell(value) for value in values]


# --- building (pure) ----------------------------------------------------------------


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
    all_assets = list(assets)
    log = list(entries)
    by_id = {a.asset_id: a for a in all_assets}
    by_sha = {f.sha256_hex: a for a in all_assets for f in a.files}
    by_essence = {a.essence_sha256_hex: a for a in all_assets}
    copies: dict[str, list[dict[str, Any]]] = {a.asset_id: [] for a in all_assets}
    recovery: dict[str, list[dict[str, Any]]] = {key: [] for key, _, _ in _SECTIONS}
    counts: Counter[str] = Counter()
    for row in rows or ():
        status = str(row.get("verdict") or row.get("status") or "error")
        counts[status] += 1
        asset = _match(row, by_id, by_sha, by_essence)
        record = row.get("record") or {}
        codes = tuple(str(c) for c in row.get("failure_codes") or ())
        finding = {
            "path": str(row.get("path", "")),
            "status": status,
            "status_label": status_label(status),
            "asset_id": asset.asset_id if asset else row.get("asset_id"),
            "original_asset_id": _root_of(asset, by_id).asset_id if asset else None,
            "model": asset.record.model if asset else record.get("model"),
            "model_version": asset.record.model_version if asset else record.get("model_version"),
            "signer": asset.signer if asset else row.get("signer"),
            "at": asset.first_signed_at if asset else None,
            "detail": row.get("error") or ", ".join(codes),
            "codes": list(codes),
        }
        if asset is not None:
            copies[asset.asset_id].append({"path": finding["path"], "status": status})
        if status == "known_stripped":
            recovery["lost_provenance"].append(finding)
        elif status in _ALTERED:
            recovery["altered"].append(finding)
        elif status == "synthetic_duplicate":
            recovery["copies_of_known" if asset else "synthetic_duplicates"].append(finding)
        elif status == "error":
            recovery["unchecked"].append(finding)
        elif status not in (*_MARKED, "no_provenance"):
            recovery["other"].append(finding)
    checked = rows is not None
    # Renditions are grouped under the original they were made from (followed up
    # the parent chain); a rendition whose parent is not in the inventory stands alone.
    renditions: dict[str, list[AssetEntry]] = {}
    originals: list[AssetEntry] = []
    for a in all_assets:
        if not a.is_synthetic:
            continue
        root = _root_of(a, by_id)
        if root is a:
            originals.append(a)
        else:
            renditions.setdefault(root.asset_id, []).append(a)
    asset_rows: list[dict[str, Any]] = []
    for a in originals:
        kids = renditions.get(a.asset_id, [])
        seen = copies[a.asset_id] + [c for k in kids for c in copies[k.asset_id]]
        disclosure = _disclosure(seen, checked=checked)
        if disclosure is DisclosureStatus.NOT_SEEN:
            recovery["not_seen"].append(
                {
                    "path": None,
                    "status": "not_seen",
                    "status_label": DisclosureStatus.NOT_SEEN.label,
                    "asset_id": a.asset_id,
                    "original_asset_id": a.asset_id,
                    "model": a.record.model,
                    "model_version": a.record.model_version,
                    "signer": a.signer,
                    "at": a.first_signed_at,
                    "detail": f"no copy of the original or its {len(kids)} renditions "
                    "among the scanned files",
                    "codes": [],
                }
            )
        asset_rows.append(
            {
                "asset_id": a.asset_id,
                "model": a.record.model,
                "model_version": a.record.model_version,
                "generator": a.record.generator,
                "digital_source_type": a.record.digital_source_type.value,
                "digital_source_type_uri": a.record.digital_source_type.uri,
                "created_at": format_time(a.record.created_at),
                "signer": a.signer,
                "first_signed_at": a.first_signed_at,
                "signed_files": [f.path for f in a.files if f.path],
                "copies": copies[a.asset_id],
                "renditions": [
                    {
                        "asset_id": k.asset_id,
                        "parent_asset_id": k.parent_asset_id,
                        "signer": k.signer,
                        "first_signed_at": k.first_signed_at,
                        "signed_files": [f.path for f in k.files if f.path],
                        "copies": copies[k.asset_id],
                    }
                    for k in kids
                ],
                "disclosure_status": disclosure.value,
                "disclosure_label": disclosure.label,
            }
        )
    affected = {
        str(r["asset_id"])
        for kind in _FINDING_SECTIONS
        for r in recovery[kind]
        if r.get("asset_id")
    }
    timeline, incident = _timeline(log, affected)
    incident["models"] = sorted(
        {f"{by_id[i].record.model} {by_id[i].record.model_version}" for i in affected if i in by_id}
    )
    synthetic_renditions = sum(len(v) for v in renditions.values())
    seen_paths = {c["path"] for r in asset_rows for c in r["copies"]}
    seen_rendition_paths = {
        c["path"] for r in asset_rows for k in r["renditions"] for c in k["copies"]
    }
    every = [c for r in asset_rows for c in r["copies"]] + [
        c for r in asset_rows for k in r["renditions"] for c in k["copies"]
    ]
    number = {
        "files_checked": sum(counts.values()),
        "ai_originals": len(asset_rows),
        "ai_renditions": synthetic_renditions,
        "copies_of_originals_seen": len(seen_paths),
        "copies_of_renditions_seen": len(seen_rendition_paths),
        **{key: len(recovery[key]) for key, _, _ in _SECTIONS},
    }
    art50 = {
        "ai_originals": len(asset_rows),
        "ai_renditions": synthetic_renditions,
        "signed_with_machine_readable_marking": len(asset_rows) + synthetic_renditions,
        "marking": "C2PA manifest + signed XMP (IPTC digitalSourceType), verified offline",
        "disclosure_status": dict(Counter(r["disclosure_label"] for r in asset_rows)),
        "copies_marked": sum(1 for c in every if c["status"] in _MARKED),
        "copies_marking_lost": sum(1 for c in every if c["status"] == "known_stripped")
        + len(recovery["copies_of_known"]),
        "copies_altered": sum(1 for c in every if c["status"] in _ALTERED),
        "models": dict(Counter(f"{r['model']} {r['model_version']}" for r in asset_rows)),
    }
    signers = _signers(all_assets, rows or ())
    return ComplianceReport(
        made_at=format_time(now),
        checkpoint=checkpoint,
        source=source,
        assets=tuple(asset_rows),
        recovery={k: tuple(v) for k, v in recovery.items()},
        timeline=tuple(timeline),
        incident=incident,
        art50=art50,
        verdict_counts=dict(sorted(counts.items())),
        thumbnails=MappingProxyType(dict(thumbnails or {})),
        scope=scope or ReportScope(),
        signers=signers,
        gdpr=_gdpr(log, all_assets, now=now),
        counts=number,
    )


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


def _signers(
    assets: Sequence[AssetEntry], rows: Iterable[Mapping[str, Any]]
) -> tuple[Mapping[str, Any], ...]:
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
        {"subject": s, "assets_signed": n, "development": _is_development(s)}
        for s, n in sorted(counted.items())
    )


def _match(
    row: Mapping[str, Any],
    by_id: Mapping[str, AssetEntry],
    by_sha: Mapping[str, AssetEntry],
    by_essence: Mapping[str, AssetEntry],
) -> AssetEntry | None:
    asset_id = row.get("asset_id")
    if isinstance(asset_id, str) and asset_id in by_id:
        return by_id[asset_id]
    sha = row.get("sha256")
    if isinstance(sha, str) and sha in by_sha:
        return by_sha[sha]
    essence = row.get("essence_sha256")
    if isinstance(essence, str) and essence in by_essence:
        return by_essence[essence]
    return None


def _disclosure(copies: Sequence[Mapping[str, Any]], *, checked: bool) -> DisclosureStatus:
    if not checked:
        return DisclosureStatus.NOT_CHECKED
    statuses = {c["status"] for c in copies}
    if statuses & _ALTERED:
        return DisclosureStatus.ALTERED
    if statuses & {"known_stripped", "synthetic_duplicate"}:
        return DisclosureStatus.MARKING_LOST
    if statuses & _MARKED:
        return DisclosureStatus.MARKED
    return DisclosureStatus.NOT_SEEN


def _timeline(
    entries: Sequence[AuditEntry], affected: set[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    items: list[dict[str, Any]] = []
    problem_times: list[str] = []
    signers: set[str] = set()
    for e in entries:
        payload = e.payload
        status = payload.get("status")
        bad_verdict = e.event is AuditEvent.VERIFIED and status in _FINDING_STATUSES
        about_affected = e.asset_id is not None and e.asset_id in affected
        if e.event is AuditEvent.INCIDENT_OPENED or bad_verdict:
            problem_times.append(e.at)
        if not (about_affected or bad_verdict or e.event is AuditEvent.INCIDENT_OPENED):
            continue
        signer = payload.get("signer")
        if e.event in (AuditEvent.SIGNED, AuditEvent.RENDITION_ADDED) and signer:
            signers.add(str(signer))
        items.append(
            {
                "seq": e.seq,
                "at": e.at,
                "event": e.event.value,
                "asset_id": e.asset_id,
                "status": status,
                "status_label": status_label(str(status)) if status else None,
                "signer": signer,
                "model": payload.get("model"),
                "model_version": payload.get("model_version"),
                "detail": payload.get("description"),
            }
        )
    incident: dict[str, Any] = {
        "affected_assets": sorted(affected),
        "first_seen": min(problem_times) if problem_times else None,
        "signers": sorted(signers),
    }
    return items, incident


def _free_text(asset: AssetEntry) -> list[tuple[str, str]]:
    record = asset.record
    texts = [("prompt", record.prompt)] if record.prompt else []
    texts += [
        (f"parameters.{name}", value)
        for name, value in record.parameters.items()
        if name in FREE_TEXT_PARAMETERS and isinstance(value, str)
    ]
    return texts


def _gdpr(
    entries: Sequence[AuditEntry], assets: Sequence[AssetEntry], *, now: datetime
) -> dict[str, Any]:
    """GDPR Art. 33 applies to personal-data breaches only: declared, or found in a record."""
    incidents = []
    for e in entries:
        if e.event is not AuditEvent.INCIDENT_OPENED or e.payload.get("personal_data") is not True:
            continue
        aware = str(e.payload.get("aware_at") or e.at)
        deadline = parse_time(aware) + timedelta(hours=GDPR_NOTIFICATION_HOURS)
        incidents.append(
            {
                "seq": e.seq,
                "declared_at": e.at,
                "aware_at": aware,
                "deadline": format_time(deadline),
                "hours_left": round((deadline - now).total_seconds() / 3600, 1),
                "description": e.payload.get("description") or "",
                "assets": list(e.payload.get("assets") or ()),
            }
        )
    found = []
    for a in assets:
        for name, text in _free_text(a):
            try:
                kinds = sorted({f.kind.value for f in find_personal_data(text)})
            except ProvenanceError:  # too long to scan: say so rather than guess
                kinds = ["unscanned_long_text"]
            if kinds:
                found.append({"asset_id": a.asset_id, "field": name, "kinds": kinds})
    applies = bool(incidents or found)
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
    return {
        "applies": applies,
        "statement": statement,
        "incidents": incidents,
        "personal_data_in_records": found,
    }


def _nist(report: ComplianceReport) -> list[dict[str, str]]:
    """Which evidence in the report answers which NIST AI RMF function (Map/Measure/Manage)."""
    c = report.counts
    return [
        {
            "function": "Map",
            "outcome": "MAP 2/4: the AI systems in use, and the content they produced, are known.",
            "evidence": f"Section 1 lists {c.get('ai_originals', 0)} AI-generated originals "
            f"with model, version and generator, and {c.get('ai_renditions', 0)} renditions "
            "grouped under them; the scope block names the signers.",
            "anchor": "s-inv",
        },
        {
            "function": "Measure",
            "outcome": "MEASURE 2: content provenance is tested, with results recorded.",
            "evidence": f"{c.get('files_checked', 0)} files verified offline into verdicts "
            "(chart and section 2); the audit chain was "
            + (
                "verified"
                if report.scope.audit_verified
                else "NOT verified"
                if report.scope.audit_verified is False
                else "not checked"
            )
            + "; the report's checkpoint can be re-checked with 'provenance audit verify'.",
            "anchor": "s-scope",
        },
        {
            "function": "Manage",
            "outcome": "MANAGE 2/4: risks are responded to, incidents tracked and documented.",
            "evidence": "Section 2 names every copy that lost or broke its marking and what "
            "to run about it; section 3 lists declared incidents, their audit entries and "
            "the GDPR deadline where personal data is involved.",
            "anchor": "s-rec",
        },
    ]


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


# --- inputs -------------------------------------------------------------------------


def load_verdict_rows(data: bytes, *, name: str = "<json>") -> list[dict[str, Any]]:
    """Read ``verify``/``scan`` rows: ``--json``, ``--ndjson`` or a scan report file.

    ``--json`` is a list, ``--ndjson`` one row a line, and a scan report file
    (``--json-out``) is ``{"rows"|"results": [...]}``.

    Raises:
        ProvenanceError: Not JSON, or not a list of verdict objects.
    """
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError) as exc:
        try:  # NDJSON: every non-empty line one JSON object
            parsed = [json.loads(line) for line in data.splitlines() if line.strip()]
        except (ValueError, RecursionError):
            raise ProvenanceError(f"not JSON: {exc}", path=name) from None
    if isinstance(parsed, Mapping):
        for key in ("rows", "results", "verdicts", "files"):
            if isinstance(parsed.get(key), list):
                parsed = parsed[key]
                break
        else:
            if "verdict" in parsed or "status" in parsed:  # --ndjson of one file
                parsed = [parsed]
    if not isinstance(parsed, list) or not all(
        isinstance(r, Mapping) and ("verdict" in r or "status" in r) for r in parsed
    ):
        raise ProvenanceError(
            "expected verify --json output: a list of objects with a 'verdict'", path=name
        )
    return [dict(r) for r in parsed]


def verdict_rows_for(
    folder: str | os.PathLike[str],
    *,
    trust: TrustPolicy | None = None,
    inventory: Inventory | None = None,
) -> list[dict[str, Any]]:
    """Verify every image under ``folder``; unreadable files are ``error`` rows."""
    rows = []
    root = Path(folder)
    for file in sorted(p for p in root.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES):
        if not file.is_file():
            continue
        try:
            verdict = verify(file, trust=trust, inventory=inventory)
        except ProvenanceError as exc:
            verdict = Verdict(path=str(file), status=Status.ERROR, error=str(exc))
        rows.append(verdict.to_dict())
    return rows


def _thumbnail(path: str) -> str | None:
    try:
        data = read_input(path, max_bytes=128 * 1024 * 1024)
        # open_image: the pixel limit before decoding, and HEIC through pillow-heif.
        with open_image(data) as img:
            img.draft("RGB", (_THUMB_PX * 2, _THUMB_PX * 2))
            rgb = img.convert("RGB")
            rgb.thumbnail((_THUMB_PX, _THUMB_PX))
            out = io.BytesIO()
            rgb.save(out, "JPEG", quality=70)
    except (ProvenanceError, OSError, UnidentifiedImageError, ValueError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def make_report(
    inventory: Inventory,
    *,
    rows: Sequence[Mapping[str, Any]] | None,
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
        rows: Verdicts in ``verify --json`` form, or None.
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
    before = inventory.audit.verify()
    if not before.ok:
        return _report_over_failed_log(
            inventory, rows, before, now=now, source=source, trust=trust, roots=roots
        )
    # 1. Findings into the audit log, once each.
    if record_findings and rows:
        seen = {
            (e.payload.get("sha256"), e.payload.get("status"))
            for e in inventory.audit.entries()
            if e.event is AuditEvent.VERIFIED
        }
        for row in rows:
            status = str(row.get("verdict", ""))
            if status not in _FINDING_STATUSES or (row.get("sha256"), status) in seen:
                continue
            inventory.record_verification(_verdict_of(row, status), now=now)
            seen.add((row.get("sha256"), status))
    # 2. The checkpoint the report is made from.
    counts = Counter(str(r.get("verdict", "error")) for r in rows or ())
    inventory.audit.append(
        AuditEvent.EXPORTED, payload={"format": "report", **dict(sorted(counts.items()))}, now=now
    )
    checkpoint = inventory.audit.checkpoint(key, now=now)
    # 3. The chain, against the checkpoint just taken.
    audit = inventory.audit.verify(against=checkpoint)
    scope = ReportScope(
        c2pa_version=c2pa_version(),
        trust_anchors=ReportScope.anchors_of(trust),
        roots=tuple(roots) or ((source,) if source else ()),
        scanned_at=format_time(now) if rows is not None else None,
        audit_verified=audit.ok,
        audit_entries_checked=audit.entries_checked,
        audit_problems=tuple(f"{p.kind.value} at seq {p.seq}: {p.detail}" for p in audit.problems),
    )
    # 4. Read and build.
    assets = list(inventory.assets())
    entries = list(inventory.audit.entries())
    thumbs: dict[str, str] = {}
    if thumbnails and rows:
        ids = {a.asset_id for a in assets}
        by_sha = {f.sha256_hex: a.asset_id for a in assets for f in a.files}
        for row in rows:
            asset_id = row.get("asset_id") if row.get("asset_id") in ids else None
            asset_id = asset_id or by_sha.get(str(row.get("sha256")))
            if asset_id and asset_id not in thumbs:
                thumb = _thumbnail(str(row.get("path", "")))
                if thumb is not None:
                    thumbs[str(asset_id)] = thumb
    return build_report(
        assets,
        rows,
        entries,
        now=now,
        checkpoint=checkpoint,
        source=source,
        thumbnails=thumbs,
        scope=scope,
    )


def _report_over_failed_log(
    inventory: Inventory,
    rows: Sequence[Mapping[str, Any]] | None,
    audit: AuditReport,
    *,
    now: datetime,
    source: str | None,
    trust: TrustPolicy | None,
    roots: Sequence[str],
) -> ComplianceReport:
    """The report of an inventory whose audit log failed verification: read only, no checkpoint."""
    scope = ReportScope(
        c2pa_version=c2pa_version(),
        trust_anchors=ReportScope.anchors_of(trust),
        roots=tuple(roots) or ((source,) if source else ()),
        scanned_at=format_time(now) if rows is not None else None,
        audit_verified=False,
        audit_entries_checked=audit.entries_checked,
        audit_problems=tuple(f"{p.kind.value} at seq {p.seq}: {p.detail}" for p in audit.problems),
    )
    return build_report(
        list(inventory.assets()),
        rows,
        list(inventory.audit.entries()),
        now=now,
        checkpoint=None,
        source=source,
        thumbnails={},
        scope=scope,
    )


def _verdict_of(row: Mapping[str, Any], status: str) -> Verdict:
    def text(key: str) -> str | None:
        value = row.get(key)
        return value if isinstance(value, str) else None

    return Verdict(
        path=str(row.get("path", "")),
        status=Status(status),
        failure_codes=tuple(str(c) for c in row.get("failure_codes") or ()),
        active_manifest=text("active_manifest"),
        asset_id=text("asset_id"),
        sha256_hex=text("sha256"),
        essence_sha256_hex=text("essence_sha256"),
    )


# --- HTML ---------------------------------------------------------------------------

# Words never break inside (no overflow-wrap:anywhere on cells); only identifiers,
# hashes and paths (class "id") may wrap at any character, since they have no
# words to keep. Print: A4 landscape, page numbers, table headers repeated on
# every page, rows kept whole.
_CSS = """
:root{color-scheme:light;--ink:#1a1a1a;--muted:#4a4a4a;--line:#c8c8c8;--bg:#fff;--band:#f2f2f2}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 "DejaVu Sans",system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--ink);background:var(--bg)}
header,main,footer{max-width:80rem;margin:0 auto;padding:1rem 1.5rem}
header{border-bottom:4px solid #0b5394}
h1{font-size:1.6rem;margin:.2rem 0}
h2{font-size:1.3rem;margin-top:2rem;border-bottom:1px solid var(--line);break-after:avoid}
h3{font-size:1.05rem;break-after:avoid}
a{color:#0b4a8a}
.meta{color:var(--muted);margin:0}
.cards{break-inside:avoid;display:flex;flex-wrap:wrap;gap:.75rem;padding:0;list-style:none}
.cards li{break-inside:avoid;flex:1 1 9rem;background:var(--band);border-radius:6px;
padding:.6rem .75rem}
.cards a{text-decoration:none;color:inherit;display:block}
.cards strong{display:block;font-size:1.5rem}
.cards span{text-decoration:underline}
.alert{border-left:6px solid #b3261e;background:#fdf0ef;padding:.5rem 1rem}
.warn{border-left:6px solid #8a5a00;background:#fff6e0;padding:.5rem 1rem}
.ok{border-left:6px solid #1e6b3a;background:#eef7f1;padding:.5rem 1rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem;font-size:.9rem}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{border-bottom:1px solid var(--line);padding:.3rem .45rem;text-align:left;
vertical-align:top;word-break:normal;overflow-wrap:normal;hyphens:auto}
th{background:var(--band)}
thead{display:table-header-group}
tr{break-inside:avoid}
td.idc{min-width:8em}.keep{break-inside:avoid}td.num{text-align:right}td.t{white-space:nowrap}
code{font-size:.85em}
.id{overflow-wrap:anywhere;word-break:normal;hyphens:none}
.thumb{width:64px;height:64px;object-fit:cover;border-radius:4px;display:block}
.nothumb{width:64px;height:64px;background:var(--band);border-radius:4px;
display:flex;align-items:center;justify-content:center;font-size:.75rem;color:var(--muted)}
.charts{display:flex;flex-wrap:wrap;gap:2rem}
figure{margin:0;break-inside:avoid}figcaption{font-weight:600}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}
dt{font-weight:600}dd{margin:0}
ul.plain{margin:.25rem 0;padding-left:1.1rem}
@page{size:A4 landscape;margin:14mm 12mm 16mm;
@bottom-right{content:"page " counter(page) " of " counter(pages);font:9pt "DejaVu Sans",sans-serif;
color:#4a4a4a}
@bottom-left{content:"Provenance compliance report";font:9pt "DejaVu Sans",sans-serif;
color:#4a4a4a}}
@media print{body{font-size:10.5pt}header,main,footer{max-width:none;padding:0 .2rem}
h2{break-before:auto}section{break-inside:auto}.charts svg{max-width:100%}}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _id(value: Any) -> str:
    """An identifier, hash or path: monospace, may wrap anywhere, never cut."""
    text = _e(value)
    return f'<code class="id">{text}</code>' if text else ""


def _bar_chart(
    chart_id: str, title: str, data: Mapping[str, int], colours: Mapping[str, str]
) -> str:
    items = list(data.items())
    width, bar_h, gap, label_w = 540, 22, 8, 260
    height = max(1, len(items)) * (bar_h + gap) + gap
    biggest = max((v for _, v in items), default=1) or 1
    desc = "; ".join(f"{k}: {v}" for k, v in items) or "no data"
    parts = [
        f'<svg id="{_e(chart_id)}" role="img" aria-labelledby="{_e(chart_id)}-t {_e(chart_id)}-d" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{_e(chart_id)}-t">{_e(title)}</title>',
        f'<desc id="{_e(chart_id)}-d">{_e(desc)}</desc>',
    ]
    for i, (label, value) in enumerate(items):
        y = gap + i * (bar_h + gap)
        bar = max(2, int((width - label_w - 50) * value / biggest))
        colour = colours.get(label, "#0b5394")
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar_h - 6}" text-anchor="end" '
            f'font-size="13" fill="#1a1a1a">{_e(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{bar}" height="{bar_h}" fill="{colour}" '
            'stroke="#1a1a1a" stroke-width="0.5"></rect>'
            f'<text x="{label_w + bar + 6}" y="{y + bar_h - 6}" font-size="13" '
            f'fill="#1a1a1a">{value}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(
    caption: str, headers: Sequence[str], rows: Iterable[Sequence[str]], *, table_id: str = ""
) -> str:
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    anchor = f' id="{_e(table_id)}"' if table_id else ""
    if not body:
        return f"<p{anchor}>{_e(caption)}: none.</p>"
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    return (
        f"<table{anchor}><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _td(value: Any, *, ident: bool = False) -> str:
    return f'<td class="idc">{_id(value)}</td>' if ident else f"<td>{_e(value)}</td>"


def _hours_cell(hours: float) -> str:
    return f'<td class="num">{_e("overdue" if hours < 0 else hours)}</td>'


def _tt(value: Any) -> str:
    """A timestamp cell: kept on one line (its hyphens are not break points)."""
    return f'<td class="t">{_e(value)}</td>'


def _copies(copies: Sequence[Mapping[str, Any]], base: str | None) -> str:
    if not copies:
        return "none seen"
    return "<br>".join(
        f"{_id(_short(c['path'], base))} ({_e(status_label(c['status']))})" for c in copies
    )


_CARD_LABELS = {
    "lost_provenance": "copies with provenance stripped",
    "altered": "copies altered after signing",
    "copies_of_known": "resized or re-encoded copies of known AI images",
    "synthetic_duplicates": "copies of AI images not in this inventory",
    "not_seen": "originals not seen in this scan",
    "unchecked": "files that could not be checked",
    "other": "files with other verdicts",
}


def _path_base(r: ComplianceReport) -> str | None:
    """The folder every file path shown lies under, so tables show short paths."""
    paths = [str(f["path"]) for rows in r.recovery.values() for f in rows if f.get("path")]
    paths += [str(c["path"]) for a in r.assets for c in a["copies"]]
    paths += [str(c["path"]) for a in r.assets for k in a["renditions"] for c in k["copies"]]
    absolute = [p for p in paths if Path(p).is_absolute()]
    if not absolute or len(absolute) != len(paths):
        return None
    try:
        base = os.path.commonpath([str(Path(p).parent) for p in absolute])
    except ValueError:
        return None
    return base if base not in ("", os.sep) else None


def _short(path: Any, base: str | None) -> str:
    text = "" if path is None else str(path)
    if base and text.startswith(base + os.sep):
        return text[len(base) + 1 :]
    return text


def _scope_html(r: ComplianceReport) -> list[str]:
    s = r.scope
    cp = r.checkpoint
    out = ['<section aria-labelledby="s-scope"><h2 id="s-scope">Scope and method</h2>']
    if r.development_keys_used:
        dev = ", ".join(str(x["subject"]) for x in r.signers if x["development"])
        out.append(
            '<p class="alert"><strong>Development keys signed assets in this report.</strong> '
            f"Signer(s) {_e(dev)} are local development certificates that nobody else "
            "trusts; markings made with them prove nothing to a third party. Re-sign with "
            "a certificate from a CA on the C2PA trust list before publishing.</p>"
        )
    if s.audit_verified is False:
        out.append(
            '<p class="alert"><strong>The audit chain did not verify.</strong> '
            + _e("; ".join(s.audit_problems))
            + "</p>"
        )
    cp_text = (
        "none"
        if cp is None
        else f"seq {cp.seq}, {'signed' if cp.is_signed else 'unsigned'}, taken {cp.at}"
    )
    chain = (
        f"verified ({s.audit_entries_checked} entries)"
        if s.audit_verified
        else "did not verify"
        if s.audit_verified is False
        else "not checked"
    )
    facts = [
        ("Tool", _e(f"provenance {s.tool_version}")),
        ("C2PA library", _e(f"c2pa-rs {s.c2pa_version}" if s.c2pa_version else "unknown")),
        ("Scanned", "<br>".join(_id(x) for x in s.roots) or "nothing (inventory only)"),
        ("Scanned at", _e(s.scanned_at or "-")),
        ("File paths", "relative to " + _id(_path_base(r)) if _path_base(r) else "as given"),
        ("Audit checkpoint", _e(cp_text) + (f"<br>entry hash {_id(cp.entry_hash)}" if cp else "")),
        ("Audit chain", _e(chain)),
    ]
    out.append("<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>")
    if s.trust_anchors:
        out.append(
            _table(
                "Trust anchors the files were verified against",
                ("subject", "SHA-256 fingerprint", "development CA"),
                (
                    [
                        _td(a["subject"]),
                        _td(a["sha256"], ident=True),
                        _td("YES, development only" if a.get("development") else "no"),
                    ]
                    for a in s.trust_anchors
                ),
            )
        )
    else:
        out.append(
            '<p class="warn">No trust anchors were configured: a good signature shows as '
            "“Valid, signer not trusted”, never “Trusted”.</p>"
        )
    out.append(
        _table(
            "Signers seen",
            ("signer (certificate subject)", "assets signed", "development key"),
            (
                [
                    _td(x["subject"]),
                    f'<td class="num">{x["assets_signed"]}</td>',
                    _td("YES, development only" if x["development"] else "no"),
                ]
                for x in r.signers
            ),
        )
    )
    out.append("</section>")
    return out


def _html(r: ComplianceReport) -> str:
    rec = r.recovery
    c = r.counts
    cards = [
        ("files checked", sum(r.verdict_counts.values()), "chart-verdicts"),
        ("AI-generated originals", c.get("ai_originals", 0), "t-inventory"),
        ("their renditions", c.get("ai_renditions", 0), "t-inventory"),
        *((_CARD_LABELS[key], len(rec.get(key, ())), f"t-{key}") for key, _, _ in _SECTIONS),
    ]
    out = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Provenance compliance report {_e(r.made_at)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header><h1>Provenance compliance report</h1>",
        f'<p class="meta">Made {_e(r.made_at)} from {_e(r.source or "the inventory only")}.</p>'
        "</header><main>",
    ]
    out += _scope_html(r)
    out.append(
        '<section aria-labelledby="s-summary"><h2 id="s-summary">Summary</h2><ul class="cards">'
    )
    out += [
        f'<li><a href="#{_e(target)}"><strong>{n}</strong><span>{_e(label)}</span></a></li>'
        for label, n, target in cards
    ]
    out.append("</ul>")
    if r.has_findings:
        out.append(
            '<p class="alert">Findings need attention: see the recovery check below; each '
            "finding says what to run.</p>"
        )
    else:
        out.append('<p class="ok">No copy lost its provenance or was altered.</p>')
    labelled = {status_label(k): v for k, v in r.verdict_counts.items()}
    colours = {status_label(k): v for k, v in _STATUS_COLOURS.items()}
    out.append('<div class="charts">')
    out.append(
        "<figure>"
        + _bar_chart("chart-verdicts", "Files checked, by verdict", labelled, colours)
        + "<figcaption>Files checked, by verdict</figcaption></figure>"
    )
    out.append(
        "<figure>"
        + _bar_chart("chart-models", "AI-generated originals, by model", r.art50["models"], {})
        + "<figcaption>AI-generated originals, by model</figcaption></figure>"
    )
    out.append("</div></section>")
    out += _inventory_html(r)
    out += _recovery_html(r)
    out += _incidents_html(r)
    out += _obligations_html(r)
    out += _glossary_html(r)
    out.append("</main>")
    out.append(
        '<footer><p class="meta">Generated by provenance '
        f"{_e(r.scope.tool_version)}. The JSON, CSV and PDF forms of this report carry the "
        "same audit checkpoint; check it with "
        "<code>provenance audit verify --against REPORT.json</code>.</p></footer>"
    )
    out.append("</body></html>\n")
    return "".join(out)


def _inventory_html(r: ComplianceReport) -> list[str]:
    out = [
        '<section aria-labelledby="s-inv"><h2 id="s-inv">1. Synthetic-data inventory</h2>',
        "<p>One row per AI-generated original; the renditions made from it (storefront "
        "sizes, re-encodes signed with a link to it) are listed in the same row, not "
        "counted as separate assets.</p>",
    ]
    rows = []
    base = _path_base(r)
    for a in r.assets:
        thumb = r.thumbnails.get(str(a["asset_id"]))
        image = (
            f'<img class="thumb" src="{_e(thumb)}" alt="Thumbnail of asset {_e(a["asset_id"])}">'
            if thumb
            else '<span class="nothumb">no copy</span>'
        )
        kids = a["renditions"]
        seen = sum(1 for k in kids if k["copies"])
        rendition_cell = (
            f"{len(kids)} known, {seen} seen"
            + "".join(
                f"<br>{_id(k['asset_id'])}: {_copies(k['copies'], base)}"
                for k in kids
                if k["copies"]
            )
            if kids
            else "none"
        )
        rows.append(
            [
                f"<td>{image}</td>",
                _td(a["asset_id"], ident=True),
                _td(f"{a['model']} {a['model_version']}"),
                f"<td>AI-generated<br>({_e(a['digital_source_type'])})</td>",
                f"<td>{_copies(a['copies'], base)}</td>",
                f"<td>{rendition_cell}</td>",
                _td(a["disclosure_label"]),
                _td(a["signer"]),
                _tt(a["first_signed_at"]),
            ]
        )
    out.append(
        _table(
            "Every AI-generated original in the inventory",
            (
                "image",
                "asset",
                "model",
                "source type",
                "copies of the original (verdict)",
                "renditions",
                "disclosure",
                "signer",
                "first signed",
            ),
            rows,
            table_id="t-inventory",
        )
    )
    out.append("</section>")
    return out


_FIX = {
    "lost_provenance": "Re-sign the published copy: provenance sign ORIGINAL --out PUBLISHED "
    "(or, for Magento's cache, provenance magento sign-cache pub/media).",
    "altered": "Replace the file with the signed original, then find out who changed it.",
    "copies_of_known": "A storefront rendition: provenance magento sign-cache pub/media; "
    "elsewhere: provenance renditions ORIGINAL COPY --record.",
    "synthetic_duplicates": "Import the asset's inventory, or treat as third-party content.",
    "not_seen": "Nothing to do if the asset is retired; otherwise scan where it is published.",
    "unchecked": "Read the error; fix or remove the file.",
    "other": "Read the verdict's meaning in the glossary; re-sign if the file is ours.",
}


def _recovery_html(r: ComplianceReport) -> list[str]:
    out = ['<section aria-labelledby="s-rec"><h2 id="s-rec">2. Recovery check</h2>']
    base = _path_base(r)
    for key, title, meaning in _SECTIONS:
        rows = r.recovery.get(key, ())
        # A short section stays on one page: no heading or table header orphaned.
        out.append('<div class="keep">' if len(rows) <= 12 else "<div>")
        out.append(f"<h3>{_e(title)} ({len(rows)})</h3><p>{_e(meaning)}")
        if rows:
            out.append(f" <strong>What to do:</strong> {_e(_FIX[key])}")
        out.append("</p>")
        out.append(
            _table(
                title,
                ("file", "verdict", "asset", "original", "model", "signer", "detail"),
                (
                    [
                        _td(_short(f.get("path"), base) or "-", ident=True),
                        _td(f.get("status_label")),
                        _td(f.get("asset_id") or "unknown", ident=True),
                        _td(
                            ""
                            if f.get("original_asset_id") in (None, f.get("asset_id"))
                            else f.get("original_asset_id"),
                            ident=True,
                        ),
                        _td(
                            " ".join(str(x) for x in (f.get("model"), f.get("model_version")) if x)
                        ),
                        _td(f.get("signer")),
                        _td(f.get("detail")),
                    ]
                    for f in rows
                ),
                table_id=f"t-{key}",
            )
        )
        out.append("</div>")
    out.append("</section>")
    return out


def _incidents_html(r: ComplianceReport) -> list[str]:
    g = r.gdpr
    inc = r.incident
    out = [
        '<section aria-labelledby="s-time"><h2 id="s-time">3. Incidents and GDPR</h2>',
        f'<p class="{"alert" if g.get("incidents") else "warn" if g.get("applies") else "ok"}">'
        f"{_e(g.get('statement'))}</p>",
    ]
    if g.get("incidents"):
        out.append(
            _table(
                "Declared personal-data incidents (GDPR Art. 33)",
                ("audit seq", "aware since", "notify by", "hours left", "description"),
                (
                    [
                        f'<td class="num">{i["seq"]}</td>',
                        _tt(i["aware_at"]),
                        _tt(i["deadline"]),
                        _hours_cell(i["hours_left"]),
                        _td(i["description"]),
                    ]
                    for i in g["incidents"]
                ),
                table_id="t-gdpr",
            )
        )
    if g.get("personal_data_in_records"):
        out.append(
            _table(
                "Personal data found by the PII screen in provenance records",
                ("asset", "field", "kinds"),
                (
                    [_td(p["asset_id"], ident=True), _td(p["field"]), _td(", ".join(p["kinds"]))]
                    for p in g["personal_data_in_records"]
                ),
            )
        )
    facts = [
        ("Problem first seen", inc.get("first_seen") or "no problem logged"),
        ("Assets affected", len(inc.get("affected_assets", ()))),
        ("Signed by", ", ".join(inc.get("signers", ())) or "-"),
        ("Models involved", ", ".join(inc.get("models", ())) or "-"),
    ]
    out.append("<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts) + "</dl>")
    out.append(
        _table(
            "Audit events about the affected assets and declared incidents",
            ("seq", "when", "event", "asset", "verdict", "signer", "model or description"),
            (
                [
                    f'<td class="num">{t["seq"]}</td>',
                    _tt(t["at"]),
                    _td(str(t["event"]).replace("_", " ")),
                    _td(t.get("asset_id") or "", ident=True),
                    _td(t.get("status_label") or ""),
                    _td(t.get("signer") or ""),
                    _td(
                        t.get("detail")
                        or " ".join(str(x) for x in (t.get("model"), t.get("model_version")) if x)
                    ),
                ]
                for t in r.timeline
            ),
            table_id="t-timeline",
        )
    )
    out.append("</section>")
    return out


def _obligations_html(r: ComplianceReport) -> list[str]:
    a = r.art50
    c = r.counts
    art50 = [
        (
            "Art. 50(2): synthetic images are marked in a machine-readable format and "
            "detectable as artificially generated.",
            f"{a['ai_originals']} originals and {a['ai_renditions']} renditions signed with "
            f"{a['marking']}; {a['copies_marked']} copies seen with the marking intact.",
            "s-inv",
        ),
        (
            "Art. 50(2): the marking is effective and robust as far as technically feasible.",
            f"{a['copies_marking_lost']} copies that lost the marking were still recognised "
            f"(exact essence hash or perceptual match); {a['copies_altered']} altered copies "
            "were detected.",
            "s-rec",
        ),
        (
            "Art. 50(4) and consumer law: a visible disclosure next to the image.",
            "Not measured here: see 'provenance magento import --disclosure-text' and "
            "'provenance feed-check' for the storefront and shopping feeds.",
            "s-glossary",
        ),
    ]
    out = [
        '<section aria-labelledby="s-obl"><h2 id="s-obl">4. Obligations and the evidence '
        "that answers them</h2>",
        _table(
            "EU AI Act Article 50 (transparency of AI-generated content)",
            ("obligation", "evidence in this report", "where"),
            ([_td(o), _td(e), f'<td><a href="#{w}">section</a></td>'] for o, e, w in art50),
        ),
        _table(
            "NIST AI Risk Management Framework",
            ("function", "outcome", "evidence in this report", "where"),
            (
                [
                    _td(n["function"]),
                    _td(n["outcome"]),
                    _td(n["evidence"]),
                    f'<td><a href="#{_e(n["anchor"])}">section</a></td>',
                ]
                for n in _nist(r)
            ),
        ),
        f"<p>Figures: {c.get('files_checked', 0)} files checked; "
        f"{c.get('ai_originals', 0)} AI-generated originals, {c.get('ai_renditions', 0)} "
        "renditions.</p>",
        "</section>",
    ]
    return out


def _glossary_html(r: ComplianceReport) -> list[str]:
    g = glossary(r.codes)
    titles = {
        "verdicts": "Verdicts (what checking one file concluded)",
        "disclosure": "Disclosure status (one AI-generated original, over all its copies)",
        "sections": "Recovery-check sections",
        "events": "Audit-log events",
        "codes": "Codes shown in details",
    }
    out = ['<section aria-labelledby="s-glossary"><h2 id="s-glossary">5. Glossary</h2>']
    for key, title in titles.items():
        items = g[key]
        if not items:
            continue
        out.append(
            _table(
                title,
                ("term", "code", "meaning"),
                ([_td(i["label"]), _td(i["term"], ident=True), _td(i["meaning"])] for i in items),
            )
        )
    out.append("</section>")
    return out
