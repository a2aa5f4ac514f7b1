"""The report's JSON: the document written by ``report --json``, and verdict rows read in.

Pure. The document's shape is pinned by ``docs/json/report.schema.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from provenance.errors import ProvenanceError
from provenance.report._rows import report_rows
from provenance.report._terms import glossary

if TYPE_CHECKING:
    from provenance.report._compliance import ComplianceReport


def report_dict(report: ComplianceReport) -> dict[str, Any]:
    """The JSON-ready form of a report (thumbnails are left out)."""
    return {
        "format": "provenance.report",
        "version": 2,
        "made_at": report.made_at,
        "source": report.source,
        "scope": report.scope.to_dict(),
        "signers": [s.to_dict() for s in report.signers],
        "development_keys_used": report.development_keys_used,
        "audit_checkpoint": None if report.checkpoint is None else report.checkpoint.to_dict(),
        "counts": dict(report.counts),
        "verdict_counts": dict(report.verdict_counts),
        "synthetic_inventory": [a.to_dict() for a in report.assets],
        "recovery": {k.value: [r.to_dict() for r in v] for k, v in report.recovery.items()},
        "incident": report.incident.to_dict(),
        "gdpr": report.gdpr.to_dict(),
        "timeline": [t.to_dict() for t in report.timeline],
        "eu_ai_act_art50": report.art50.to_dict(),
        "nist_ai_rmf": nist(report),
        "glossary": glossary(report.codes),
    }


def report_json(report: ComplianceReport) -> str:
    """The report as indented JSON text."""
    return json.dumps(report_dict(report), indent=1, ensure_ascii=False) + "\n"


def nist(report: ComplianceReport) -> list[dict[str, str]]:
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


def load_verdict_rows(data: bytes, *, name: str = "<json>") -> list[dict[str, Any]]:
    """Read ``verify``/``scan`` rows: ``--json``, ``--ndjson`` or a scan report file.

    ``--json`` is a list, ``--ndjson`` one row a line, and a scan report file
    (``--json-out``) is ``{"rows"|"results": [...]}``. A scan's row gives its
    nested verdict (an error row: the ``error`` verdict with its message).

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
    return report_rows(parsed)
