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
   in plain words; verdicts come from :class:`~provenance._core.types.Status` and its
   docstrings, so a new status appears without touching this module.

Formats: JSON (exact), CSV (one row per item, a ``section`` column), one
self-contained HTML page (thumbnails as ``data:`` URIs, charts as inline SVG, no
external script, style sheet or font) and PDF (that page printed by headless
Chromium, :mod:`provenance._io.pdf`).

:func:`build_report` and the renderers are pure (values in, text out; time is a
parameter). :func:`make_report` composes: it verifies the folder, logs findings
and a checkpoint, verifies the audit chain, reads thumbnails with Pillow, and
calls :func:`build_report`. :func:`open_incident` records a declared incident.

Where things are: ``_terms`` (labels, disclosure statuses, sections, the
glossary), ``_rows`` (what the report reads about each file: batch rows, scan
rows and ``verify --json`` objects, in one form), ``_model`` (the typed rows),
``_compliance`` (:class:`ComplianceReport` holding them), ``_build``
(pure building), ``_make`` (the I/O around it), ``_json``, ``_csv``, ``_html``
and ``_html_parts`` (the renderings). This module only re-exports.
"""

from provenance.report._build import build_report
from provenance.report._compliance import ComplianceReport, Recovery, ReportScope
from provenance.report._json import load_verdict_rows
from provenance.report._make import make_report, open_incident, verdict_rows_for
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
    TrustAnchor,
)
from provenance.report._terms import (
    GDPR_NOTIFICATION_HOURS,
    DisclosureStatus,
    Section,
    glossary,
    status_label,
)

__all__ = [
    "GDPR_NOTIFICATION_HOURS",
    "Art50Figures",
    "AssetRow",
    "ComplianceReport",
    "CopySeen",
    "DisclosureStatus",
    "Finding",
    "GdprAssessment",
    "GdprIncident",
    "IncidentSummary",
    "PersonalDataFound",
    "Recovery",
    "RenditionRow",
    "ReportScope",
    "Section",
    "Signer",
    "TimelineItem",
    "TrustAnchor",
    "build_report",
    "glossary",
    "load_verdict_rows",
    "make_report",
    "open_incident",
    "status_label",
    "verdict_rows_for",
]
