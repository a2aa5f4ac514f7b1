"""Compliance reports: synthetic-data inventory, recovery check, incident timeline.

For the compliance lead who must answer a regulator, a press enquiry or an
incident within hours. One report, built from the inventory, a verify run over
a folder (or ``verify --json`` / scan output) and the audit log, has three parts:

1. **Synthetic-data inventory**: every AI-generated asset, its model and
   version, where its copies are (in the inventory and in the checked folder),
   and its disclosure status (``marked``, ``marking_lost``, ``altered``,
   ``not_found``, ``not_checked``).
2. **Recovery check** after an incident: copies that lost their provenance
   (``known_stripped``), copies that were altered (``tampered``,
   ``invalid_signature``), unknown synthetic duplicates (``synthetic_duplicate``)
   and inventory assets missing from the folder.
3. **Incident timeline** from the audit log: when each affected asset was
   signed and by whom, when a problem was first seen, and the GDPR Art. 33
   72-hour notification deadline counted from then; plus the EU AI Act Art. 50
   figures (how much synthetic content carries a machine-readable marking).

Formats: JSON (exact), CSV (one row per item, a ``section`` column) and one
self-contained HTML page (thumbnails as ``data:`` URIs, charts as inline SVG, no
external script, style sheet or font). Every report carries the audit
checkpoint it was made from (:meth:`provenance.audit.AuditLog.checkpoint`).

:func:`build_report` and the renderers are pure (values in, text out; time is a
parameter). :func:`make_report` composes: it verifies the folder, logs findings
and a checkpoint, reads thumbnails with Pillow, and calls :func:`build_report`.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from PIL import UnidentifiedImageError

from provenance.audit import AuditEntry, AuditEvent, Checkpoint
from provenance.containers import IMAGE_SUFFIXES as _FORMAT_SUFFIXES
from provenance.errors import ProvenanceError
from provenance.fingerprint import open_image
from provenance.inventory import AssetEntry, Inventory
from provenance.keys import SigningKey, TrustPolicy
from provenance.reading import read_input
from provenance.record import format_time, parse_time
from provenance.types import Status, Verdict
from provenance.verify import verify

__all__ = [
    "GDPR_NOTIFICATION_HOURS",
    "ComplianceReport",
    "build_report",
    "load_verdict_rows",
    "make_report",
    "verdict_rows_for",
]

GDPR_NOTIFICATION_HOURS = 72
"""GDPR Art. 33(1): notify the supervisory authority within 72 hours of awareness."""

_IMAGE_SUFFIXES = _FORMAT_SUFFIXES
_MARKED = frozenset({"trusted", "valid_untrusted"})
_ALTERED = frozenset({"tampered", "invalid_signature"})
_FINDING_STATUSES = frozenset(
    {"tampered", "invalid_signature", "known_stripped", "synthetic_duplicate"}
)
_THUMB_PX = 96

# Okabe-Ito colours: distinguishable with colour-vision deficiencies. Bars carry
# their numbers as text, so colour is never the only cue (WCAG 1.4.1).
_STATUS_COLOURS = {
    "trusted": "#009E73",
    "valid_untrusted": "#56B4E9",
    "known_stripped": "#E69F00",
    "tampered": "#D55E00",
    "invalid_signature": "#CC79A7",
    "synthetic_duplicate": "#F0E442",
    "no_provenance": "#999999",
    "error": "#000000",
}


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    """A compliance report, ready to render as JSON, CSV or HTML.

    Attributes:
        made_at: When it was made, RFC 3339 UTC.
        checkpoint: The audit checkpoint it was made from.
        source: What was checked (a folder, or a verify/scan JSON file).
        assets: Part 1, one JSON-ready row per synthetic asset.
        recovery: Part 2, findings by kind (``lost_provenance``, ``altered``,
            ``synthetic_duplicates``, ``missing``, ``unchecked``).
        timeline: Part 3, audit events about the affected assets, oldest first.
        incident: First seen, notification deadline, signers and models involved.
        art50: EU AI Act Art. 50 figures: synthetic assets and their marking.
        verdict_counts: Copies checked, by verdict.
        thumbnails: ``data:`` URIs by asset id (HTML only).
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

    @property
    def has_findings(self) -> bool:
        """Whether anything lost provenance, was altered or was duplicated."""
        return any(
            self.recovery.get(k) for k in ("lost_provenance", "altered", "synthetic_duplicates")
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (thumbnails are left out)."""
        return {
            "format": "provenance.report",
            "version": 1,
            "made_at": self.made_at,
            "source": self.source,
            "audit_checkpoint": None if self.checkpoint is None else self.checkpoint.to_dict(),
            "verdict_counts": dict(self.verdict_counts),
            "synthetic_inventory": [dict(a) for a in self.assets],
            "recovery": {k: [dict(r) for r in v] for k, v in self.recovery.items()},
            "incident": dict(self.incident),
            "timeline": [dict(t) for t in self.timeline],
            "eu_ai_act_art50": dict(self.art50),
        }

    def to_json(self) -> str:
        """Indented JSON text."""
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n"

    def to_csv(self) -> str:
        """One row per asset, finding and timeline event, with a ``section`` column.

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
                    a["disclosure_status"],
                    a["model"],
                    a["model_version"],
                    a["signer"],
                    a["first_signed_at"],
                    a["digital_source_type"],
                )
            )
        for kind, rows in self.recovery.items():
            for r in rows:
                writer.writerow(
                    _cells(
                        kind,
                        r.get("asset_id"),
                        r.get("path"),
                        r.get("status"),
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
        cp = self.checkpoint
        if cp is not None:
            signed = "signed" if cp.is_signed else "unsigned"
            writer.writerow(
                _cells("audit_checkpoint", "", "", signed, "", "", "", cp.at, f"seq {cp.seq}")
            )
        return buffer.getvalue()

    def to_html(self) -> str:
        """One self-contained, accessible HTML page (no external resources)."""
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
    out = []
    for value in values:
        text = "" if value is None else str(value)
        # OWASP CSV injection: a leading = + - @ (or tab, CR) runs as a formula.
        out.append("'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text)
    return out


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
) -> ComplianceReport:
    """Build the report from values.

    Args:
        assets: Every inventory asset.
        rows: Verdicts in ``verify --json`` form (one per copy checked), or None
            when no folder was checked (disclosure status is ``not_checked``).
        entries: The audit log, in seq order.
        now: The report time (the 72-hour clock is read against it).
        checkpoint: The audit checkpoint the report is made from.
        source: What was checked, for the record.
        thumbnails: ``data:`` URIs by asset id.
    """
    all_assets = list(assets)
    by_id = {a.asset_id: a for a in all_assets}
    by_sha = {f.sha256_hex: a for a in all_assets for f in a.files}
    by_essence = {a.essence_sha256_hex: a for a in all_assets}
    copies: dict[str, list[dict[str, Any]]] = {a.asset_id: [] for a in all_assets}
    recovery: dict[str, list[dict[str, Any]]] = {
        "lost_provenance": [],
        "altered": [],
        "synthetic_duplicates": [],
        "missing": [],
        "unchecked": [],
    }
    counts: Counter[str] = Counter()
    for row in rows or ():
        status = str(row.get("verdict") or row.get("status") or "error")
        counts[status] += 1
        asset = _match(row, by_id, by_sha, by_essence)
        record = row.get("record") or {}
        finding = {
            "path": str(row.get("path", "")),
            "status": status,
            "asset_id": asset.asset_id if asset else row.get("asset_id"),
            "model": asset.record.model if asset else record.get("model"),
            "model_version": asset.record.model_version if asset else record.get("model_version"),
            "signer": asset.signer if asset else row.get("signer"),
            "at": asset.first_signed_at if asset else None,
            "detail": row.get("error") or ", ".join(row.get("failure_codes") or ()),
        }
        if asset is not None:
            copies[asset.asset_id].append({"path": finding["path"], "status": status})
        if status == "known_stripped":
            recovery["lost_provenance"].append(finding)
        elif status in _ALTERED:
            recovery["altered"].append(finding)
        elif status == "synthetic_duplicate":
            recovery["synthetic_duplicates"].append(finding)
        elif status == "error":
            recovery["unchecked"].append(finding)
    checked = rows is not None
    asset_rows: list[dict[str, Any]] = []
    for a in all_assets:
        found = copies[a.asset_id]
        status = _disclosure_status(found, checked=checked)
        if checked and not found:
            recovery["missing"].append(
                {
                    "path": None,
                    "status": "missing",
                    "asset_id": a.asset_id,
                    "model": a.record.model,
                    "model_version": a.record.model_version,
                    "signer": a.signer,
                    "at": a.first_signed_at,
                    "detail": "no copy in the checked folder"
                    + (" (a rendition)" if a.parent_asset_id else ""),
                }
            )
        if not a.is_synthetic:
            continue
        asset_rows.append(
            {
                "asset_id": a.asset_id,
                "model": a.record.model,
                "model_version": a.record.model_version,
                "generator": a.record.generator,
                "digital_source_type": a.record.digital_source_type.value,
                "digital_source_type_uri": a.record.digital_source_type.uri,
                "created_at": format_time(a.record.created_at),
                "parent_asset_id": a.parent_asset_id,
                "signer": a.signer,
                "first_signed_at": a.first_signed_at,
                "signed_files": [f.path for f in a.files if f.path],
                "copies": found,
                "disclosure_status": status,
            }
        )
    affected = {
        str(r["asset_id"])
        for kind in ("lost_provenance", "altered", "synthetic_duplicates")
        for r in recovery[kind]
        if r.get("asset_id")
    }
    timeline, incident = _timeline(list(entries), affected, now=now)
    incident["models"] = sorted(
        {f"{by_id[i].record.model} {by_id[i].record.model_version}" for i in affected if i in by_id}
    )
    synthetic = asset_rows  # only synthetic assets are listed
    art50 = {
        "synthetic_assets": len(synthetic),
        "signed_with_machine_readable_marking": len(synthetic),
        "marking": "C2PA manifest + signed XMP (IPTC digitalSourceType), verified offline",
        "disclosure_status": dict(Counter(r["disclosure_status"] for r in synthetic)),
        "copies_marked": sum(1 for r in synthetic for c in r["copies"] if c["status"] in _MARKED),
        "copies_marking_lost": sum(
            1 for r in synthetic for c in r["copies"] if c["status"] == "known_stripped"
        ),
        "copies_altered": sum(1 for r in synthetic for c in r["copies"] if c["status"] in _ALTERED),
        "models": dict(Counter(f"{r['model']} {r['model_version']}" for r in synthetic)),
    }
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


def _disclosure_status(copies: Sequence[Mapping[str, Any]], *, checked: bool) -> str:
    if not checked:
        return "not_checked"
    statuses = {c["status"] for c in copies}
    if statuses & _ALTERED:
        return "altered"
    if "known_stripped" in statuses:
        return "marking_lost"
    if statuses & _MARKED:
        return "marked"
    return "not_found"


def _timeline(
    entries: Sequence[AuditEntry], affected: set[str], *, now: datetime
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
        if not (about_affected or bad_verdict or e.event in (AuditEvent.INCIDENT_OPENED,)):
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
                "signer": signer,
                "model": payload.get("model"),
                "model_version": payload.get("model_version"),
            }
        )
    first_seen = min(problem_times) if problem_times else None
    incident: dict[str, Any] = {
        "affected_assets": sorted(affected),
        "first_seen": first_seen,
        "signers": sorted(signers),
    }
    if first_seen is not None:
        deadline = parse_time(first_seen) + timedelta(hours=GDPR_NOTIFICATION_HOURS)
        left = (deadline - now).total_seconds() / 3600
        incident["gdpr_notification_deadline"] = format_time(deadline)
        incident["gdpr_hours_left"] = round(left, 1)
    return items, incident


# --- inputs -------------------------------------------------------------------------


def load_verdict_rows(data: bytes, *, name: str = "<json>") -> list[dict[str, Any]]:
    """Read ``verify --json`` output (a list) or scan output (``{"rows"|"results": [...]}``).

    Raises:
        ProvenanceError: Not JSON, or not a list of verdict objects.
    """
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProvenanceError(f"not JSON: {exc}", path=name) from None
    if isinstance(parsed, Mapping):
        for key in ("rows", "results", "verdicts", "files"):
            if isinstance(parsed.get(key), list):
                parsed = parsed[key]
                break
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
) -> ComplianceReport:
    """Make a report: log findings and a checkpoint, then build it.

    Steps:

    1. Log each finding (lost provenance, altered, synthetic duplicate) as a
       ``verified`` audit entry, unless the same file hash and status are
       already logged: the log then knows when a problem was first seen.
    2. Log an ``exported`` entry and take a checkpoint (signed with ``key``;
       unsigned without one) that the report carries.
    3. Read the assets and the audit log, make thumbnails, build the report.

    Args:
        inventory: A writable inventory.
        rows: Verdicts in ``verify --json`` form, or None.
        now: The report time.
        key: Signs the checkpoint.
        source: What was checked.
        record_findings: Log findings in the audit log (step 1).
        thumbnails: Make thumbnails of a copy of each asset.

    Raises:
        InventoryError: The inventory cannot be read or written.
        AuditError: A stored audit entry cannot be decoded.
    """
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
    # 3. Read and build.
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
        assets, rows, entries, now=now, checkpoint=checkpoint, source=source, thumbnails=thumbs
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

_CSS = """
:root{color-scheme:light;--ink:#1a1a1a;--muted:#4a4a4a;--line:#d0d0d0;--bg:#fff;--band:#f4f4f4}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--ink);background:var(--bg)}
header,main,footer{max-width:72rem;margin:0 auto;padding:1rem 1.5rem}
header{border-bottom:4px solid #0b5394}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.3rem;margin-top:2rem;
border-bottom:1px solid var(--line)}h3{font-size:1.05rem}
.meta{color:var(--muted);margin:0}
.cards{display:flex;flex-wrap:wrap;gap:.75rem;padding:0;list-style:none}
.cards li{flex:1 1 10rem;background:var(--band);border-radius:6px;padding:.75rem}
.cards strong{display:block;font-size:1.6rem}
.alert{border-left:6px solid #b3261e;background:#fdf0ef;padding:.5rem 1rem}
.ok{border-left:6px solid #1e6b3a;background:#eef7f1;padding:.5rem 1rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem;font-size:.93rem}
th,td{border-bottom:1px solid var(--line);padding:.35rem .5rem;text-align:left;
vertical-align:top;overflow-wrap:anywhere}
th{background:var(--band)}
td.num{text-align:right}
code{font-size:.85em;word-break:break-all}
.thumb{width:64px;height:64px;object-fit:cover;border-radius:4px;display:block}
.nothumb{width:64px;height:64px;background:var(--band);border-radius:4px;
display:flex;align-items:center;justify-content:center;font-size:.75rem;color:var(--muted)}
.charts{display:flex;flex-wrap:wrap;gap:2rem}
figure{margin:0}figcaption{font-weight:600}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}
dt{font-weight:600}dd{margin:0}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _bar_chart(
    chart_id: str, title: str, data: Mapping[str, int], colours: Mapping[str, str]
) -> str:
    items = list(data.items())
    width, bar_h, gap, label_w = 460, 22, 8, 190
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


def _table(caption: str, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    if not body:
        return f"<p>{_e(caption)}: none.</p>"
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    return (
        f"<table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _td(value: Any, *, code: bool = False) -> str:
    text = _e(value)
    return f"<td><code>{text}</code></td>" if code and text else f"<td>{text}</td>"


def _html(r: ComplianceReport) -> str:
    cp = r.checkpoint
    cp_text = (
        "none"
        if cp is None
        else f"seq {cp.seq}, {'signed' if cp.is_signed else 'unsigned'}, at {cp.at}"
    )
    rec = r.recovery
    cards = [
        ("synthetic assets", len(r.assets)),
        ("copies checked", sum(r.verdict_counts.values())),
        ("lost provenance", len(rec.get("lost_provenance", ()))),
        ("altered", len(rec.get("altered", ()))),
        ("unknown duplicates", len(rec.get("synthetic_duplicates", ()))),
        ("missing", len(rec.get("missing", ()))),
    ]
    out = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Provenance compliance report {_e(r.made_at)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header><h1>Provenance compliance report</h1>",
        f'<p class="meta">Made {_e(r.made_at)} from {_e(r.source or "the inventory only")}. '
        f"Audit checkpoint: {_e(cp_text)}"
        + (f" (entry hash <code>{_e(cp.entry_hash)}</code>)" if cp else "")
        + ".</p></header><main>",
        '<section aria-labelledby="s-summary"><h2 id="s-summary">Summary</h2><ul class="cards">',
        *(f"<li><strong>{v}</strong>{_e(k)}</li>" for k, v in cards),
        "</ul>",
    ]
    if r.has_findings:
        out.append(
            '<p class="alert">Findings need attention: see the recovery check and the '
            "incident timeline below.</p>"
        )
    else:
        out.append('<p class="ok">No copy lost its provenance or was altered.</p>')
    out.append('<div class="charts">')
    out.append(
        "<figure>"
        + _bar_chart(
            "chart-verdicts", "Copies checked, by verdict", r.verdict_counts, _STATUS_COLOURS
        )
        + "<figcaption>Copies checked, by verdict</figcaption></figure>"
    )
    out.append(
        "<figure>"
        + _bar_chart("chart-models", "Synthetic assets, by model", r.art50.get("models", {}), {})
        + "<figcaption>Synthetic assets, by model</figcaption></figure>"
    )
    out.append("</div></section>")
    # 1. Inventory.
    out.append('<section aria-labelledby="s-inv"><h2 id="s-inv">1. Synthetic-data inventory</h2>')
    rows = []
    for a in r.assets:
        thumb = r.thumbnails.get(str(a["asset_id"]))
        image = (
            f'<img class="thumb" src="{_e(thumb)}" alt="Thumbnail of asset {_e(a["asset_id"])}">'
            if thumb
            else '<span class="nothumb">no copy</span>'
        )
        copies = (
            "<br>".join(f"{_e(c['path'])} ({_e(c['status'])})" for c in a["copies"]) or "none found"
        )
        rows.append(
            [
                f"<td>{image}</td>",
                f'<td><code title="{_e(a["asset_id"])}">{_e(str(a["asset_id"])[:13])}</code></td>',
                _td(f"{a['model']} {a['model_version']}"),
                _td(a["digital_source_type"]),
                f"<td>{copies}</td>",
                _td(a["disclosure_status"]),
                _td(a["signer"]),
                _td(a["first_signed_at"]),
            ]
        )
    out.append(
        _table(
            "Every AI-generated asset in the inventory",
            (
                "image",
                "asset",
                "model",
                "source type",
                "copies (verdict)",
                "disclosure",
                "signer",
                "first signed",
            ),
            rows,
        )
    )
    out.append("</section>")
    # 2. Recovery.
    out.append('<section aria-labelledby="s-rec"><h2 id="s-rec">2. Recovery check</h2>')
    titles = {
        "lost_provenance": "Copies that lost their provenance (metadata stripped)",
        "altered": "Copies altered after signing",
        "synthetic_duplicates": "Unknown synthetic duplicates",
        "missing": "Inventory assets missing from the checked folder",
        "unchecked": "Files that could not be checked",
    }
    for kind, title in titles.items():
        out.append(f"<h3>{_e(title)}</h3>")
        out.append(
            _table(
                title,
                ("file", "asset", "model", "signer", "signed", "detail"),
                (
                    [
                        _td(f.get("path") or "-", code=True),
                        _td(f.get("asset_id") or "unknown", code=True),
                        _td(
                            " ".join(str(x) for x in (f.get("model"), f.get("model_version")) if x)
                        ),
                        _td(f.get("signer")),
                        _td(f.get("at")),
                        _td(f.get("detail")),
                    ]
                    for f in rec.get(kind, ())
                ),
            )
        )
    out.append("</section>")
    # 3. Timeline.
    inc = r.incident
    out.append('<section aria-labelledby="s-time"><h2 id="s-time">3. Incident timeline</h2>')
    facts = [
        ("Problem first seen", inc.get("first_seen") or "no problem logged"),
        ("GDPR Art. 33 notification due by", inc.get("gdpr_notification_deadline") or "-"),
        ("Hours left at report time", inc.get("gdpr_hours_left", "-")),
        ("Assets affected", len(inc.get("affected_assets", ()))),
        ("Signed by", ", ".join(inc.get("signers", ())) or "-"),
        ("Models involved", ", ".join(inc.get("models", ())) or "-"),
    ]
    out.append("<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts) + "</dl>")
    out.append(
        _table(
            "Audit events about the affected assets",
            ("seq", "when", "event", "asset", "verdict", "signer", "model"),
            (
                [
                    f'<td class="num">{t["seq"]}</td>',
                    _td(t["at"]),
                    _td(t["event"]),
                    _td(t.get("asset_id") or "", code=True),
                    _td(t.get("status") or ""),
                    _td(t.get("signer") or ""),
                    _td(" ".join(str(x) for x in (t.get("model"), t.get("model_version")) if x)),
                ]
                for t in r.timeline
            ),
        )
    )
    out.append("</section>")
    a50 = r.art50
    out.append(
        '<section aria-labelledby="s-art50"><h2 id="s-art50">EU AI Act Article 50: '
        "machine-readable marking</h2>"
    )
    out.append(
        _table(
            "Marking of synthetic content",
            ("question", "answer"),
            (
                [_td(q), _td(a)]
                for q, a in (
                    ("Synthetic assets in the inventory", a50.get("synthetic_assets")),
                    (
                        "Signed with a machine-readable marking",
                        a50.get("signed_with_machine_readable_marking"),
                    ),
                    ("How they are marked", a50.get("marking")),
                    ("Copies found with the marking intact", a50.get("copies_marked")),
                    ("Copies found with the marking stripped", a50.get("copies_marking_lost")),
                    ("Copies found altered", a50.get("copies_altered")),
                )
            ),
        )
    )
    out.append("</section></main>")
    out.append(
        '<footer><p class="meta">Generated by provenance. JSON and CSV forms of this report '
        "carry the same audit checkpoint; check it with "
        "<code>provenance audit verify --against REPORT.json</code>.</p></footer>"
    )
    out.append("</body></html>\n")
    return "".join(out)
