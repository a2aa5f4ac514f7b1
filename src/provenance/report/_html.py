"""The report's HTML: one self-contained, accessible, print-ready page.

Pure: a report in, text out. No external script, style sheet or font;
thumbnails are ``data:`` URIs and charts inline SVG. Every value is escaped.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.html_page import page_head
from provenance.report._json import nist
from provenance.report._terms import Section, glossary, status_label
from provenance.types import Status

if TYPE_CHECKING:
    from provenance.report._model import ComplianceReport, CopySeen

# Okabe-Ito colours: distinguishable with colour-vision deficiencies. Bars carry
# their numbers as text, so colour is never the only cue (WCAG 1.4.1).
STATUS_COLOURS = {
    Status.TRUSTED: "#009E73",
    Status.VALID_UNTRUSTED: "#56B4E9",
    Status.KNOWN_STRIPPED: "#E69F00",
    Status.TAMPERED: "#D55E00",
    Status.INVALID_SIGNATURE: "#CC79A7",
    Status.INVALID_MANIFEST: "#882255",
    Status.INVALID_IDENTITY: "#AA4499",
    Status.UNSUPPORTED: "#BBBBBB",
    Status.REMOTE_MANIFEST: "#0072B2",
    Status.SYNTHETIC_DUPLICATE: "#F0E442",
    Status.NO_PROVENANCE: "#999999",
    Status.ERROR: "#000000",
}

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


def _copies(copies: Sequence[CopySeen], base: str | None) -> str:
    if not copies:
        return "none seen"
    return "<br>".join(
        f"{_id(_short(c.path, base))} ({_e(status_label(c.status or c.status_value))})"
        for c in copies
    )


def _path_base(r: ComplianceReport) -> str | None:
    """The folder every file path shown lies under, so tables show short paths."""
    paths = [str(f.path) for rows in r.recovery.values() for f in rows if f.path]
    paths += [str(c.path) for a in r.assets for c in a.copies]
    paths += [str(c.path) for a in r.assets for k in a.renditions for c in k.copies]
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


def report_html(r: ComplianceReport) -> str:
    """The report as one self-contained HTML page."""
    out = [
        page_head(title=f"Provenance compliance report {r.made_at}", css=_CSS),
        "<header><h1>Provenance compliance report</h1>",
        f'<p class="meta">Made {_e(r.made_at)} from {_e(r.source or "the inventory only")}.</p>'
        "</header><main>",
    ]
    for section in (
        _scope_html,
        _summary_html,
        _inventory_html,
        _recovery_html,
        _incidents_html,
        _obligations_html,
        _glossary_html,
    ):
        out += section(r)
    out.append("</main>")
    out.append(
        '<footer><p class="meta">Generated by provenance '
        f"{_e(r.scope.tool_version)}. The JSON, CSV and PDF forms of this report carry the "
        "same audit checkpoint; check it with "
        "<code>provenance audit verify --against REPORT.json</code>.</p></footer>"
    )
    out.append("</body></html>\n")
    return "".join(out)


def _scope_html(r: ComplianceReport) -> list[str]:
    out = ['<section aria-labelledby="s-scope"><h2 id="s-scope">Scope and method</h2>']
    out += _scope_alerts(r)
    out.append("<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in _scope_facts(r)) + "</dl>")
    s = r.scope
    if s.trust_anchors:
        out.append(
            _table(
                "Trust anchors the files were verified against",
                ("subject", "SHA-256 fingerprint", "development CA"),
                (
                    [
                        _td(a.subject),
                        _td(a.sha256, ident=True),
                        _td("YES, development only" if a.development else "no"),
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
                    _td(x.subject),
                    f'<td class="num">{x.assets_signed}</td>',
                    _td("YES, development only" if x.development else "no"),
                ]
                for x in r.signers
            ),
        )
    )
    out.append("</section>")
    return out


def _scope_alerts(r: ComplianceReport) -> list[str]:
    out = []
    if r.development_keys_used:
        dev = ", ".join(x.subject for x in r.signers if x.development)
        out.append(
            '<p class="alert"><strong>Development keys signed assets in this report.</strong> '
            f"Signer(s) {_e(dev)} are local development certificates that nobody else "
            "trusts; markings made with them prove nothing to a third party. Re-sign with "
            "a certificate from a CA on the C2PA trust list before publishing.</p>"
        )
    if r.scope.audit_verified is False:
        out.append(
            '<p class="alert"><strong>The audit chain did not verify.</strong> '
            + _e("; ".join(r.scope.audit_problems))
            + "</p>"
        )
    return out


def _scope_facts(r: ComplianceReport) -> list[tuple[str, str]]:
    """Label and HTML value of each line of the scope block."""
    s = r.scope
    cp = r.checkpoint
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
    base = _path_base(r)
    return [
        ("Tool", _e(f"provenance {s.tool_version}")),
        ("C2PA library", _e(f"c2pa-rs {s.c2pa_version}" if s.c2pa_version else "unknown")),
        ("Scanned", "<br>".join(_id(x) for x in s.roots) or "nothing (inventory only)"),
        ("Scanned at", _e(s.scanned_at or "-")),
        ("File paths", "relative to " + _id(base) if base else "as given"),
        ("Audit checkpoint", _e(cp_text) + (f"<br>entry hash {_id(cp.entry_hash)}" if cp else "")),
        ("Audit chain", _e(chain)),
    ]


def _summary_html(r: ComplianceReport) -> list[str]:
    c = r.counts
    cards = [
        ("files checked", sum(r.verdict_counts.values()), "chart-verdicts"),
        ("AI-generated originals", c.get("ai_originals", 0), "t-inventory"),
        ("their renditions", c.get("ai_renditions", 0), "t-inventory"),
        *((x.card_label, len(r.recovery.get(x, ())), f"t-{x.value}") for x in Section),
    ]
    out = ['<section aria-labelledby="s-summary"><h2 id="s-summary">Summary</h2><ul class="cards">']
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
    colours = {status_label(k): v for k, v in STATUS_COLOURS.items()}
    out.append('<div class="charts">')
    out.append(
        "<figure>"
        + _bar_chart("chart-verdicts", "Files checked, by verdict", labelled, colours)
        + "<figcaption>Files checked, by verdict</figcaption></figure>"
    )
    out.append(
        "<figure>"
        + _bar_chart("chart-models", "AI-generated originals, by model", r.art50.models, {})
        + "<figcaption>AI-generated originals, by model</figcaption></figure>"
    )
    out.append("</div></section>")
    return out


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
        thumb = r.thumbnails.get(a.asset_id)
        image = (
            f'<img class="thumb" src="{_e(thumb)}" alt="Thumbnail of asset {_e(a.asset_id)}">'
            if thumb
            else '<span class="nothumb">no copy</span>'
        )
        kids = a.renditions
        seen = sum(1 for k in kids if k.copies)
        rendition_cell = (
            f"{len(kids)} known, {seen} seen"
            + "".join(f"<br>{_id(k.asset_id)}: {_copies(k.copies, base)}" for k in kids if k.copies)
            if kids
            else "none"
        )
        rows.append(
            [
                f"<td>{image}</td>",
                _td(a.asset_id, ident=True),
                _td(f"{a.model} {a.model_version}"),
                f"<td>AI-generated<br>({_e(a.digital_source_type.value)})</td>",
                f"<td>{_copies(a.copies, base)}</td>",
                f"<td>{rendition_cell}</td>",
                _td(a.disclosure.label),
                _td(a.signer),
                _tt(a.first_signed_at),
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


def _recovery_html(r: ComplianceReport) -> list[str]:
    out = ['<section aria-labelledby="s-rec"><h2 id="s-rec">2. Recovery check</h2>']
    base = _path_base(r)
    for section in Section:
        rows = r.recovery.get(section, ())
        # A short section stays on one page: no heading or table header orphaned.
        out.append('<div class="keep">' if len(rows) <= 12 else "<div>")
        out.append(f"<h3>{_e(section.title)} ({len(rows)})</h3><p>{_e(section.meaning)}")
        if rows:
            out.append(f" <strong>What to do:</strong> {_e(section.fix)}")
        out.append("</p>")
        out.append(
            _table(
                section.title,
                ("file", "verdict", "asset", "original", "model", "signer", "detail"),
                (
                    [
                        _td(_short(f.path, base) or "-", ident=True),
                        _td(f.status_label),
                        _td(f.asset_id or "unknown", ident=True),
                        _td(
                            ""
                            if f.original_asset_id in (None, f.asset_id)
                            else f.original_asset_id,
                            ident=True,
                        ),
                        _td(" ".join(x for x in (f.model, f.model_version) if x)),
                        _td(f.signer),
                        _td(f.detail),
                    ]
                    for f in rows
                ),
                table_id=f"t-{section.value}",
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
        f'<p class="{"alert" if g.incidents else "warn" if g.applies else "ok"}">'
        f"{_e(g.statement)}</p>",
    ]
    if g.incidents:
        out.append(
            _table(
                "Declared personal-data incidents (GDPR Art. 33)",
                ("audit seq", "aware since", "notify by", "hours left", "description"),
                (
                    [
                        f'<td class="num">{i.seq}</td>',
                        _tt(i.aware_at),
                        _tt(i.deadline),
                        _hours_cell(i.hours_left),
                        _td(i.description),
                    ]
                    for i in g.incidents
                ),
                table_id="t-gdpr",
            )
        )
    if g.personal_data_in_records:
        out.append(
            _table(
                "Personal data found by the PII screen in provenance records",
                ("asset", "field", "kinds"),
                (
                    [_td(p.asset_id, ident=True), _td(p.field), _td(", ".join(p.kinds))]
                    for p in g.personal_data_in_records
                ),
            )
        )
    facts = [
        ("Problem first seen", inc.first_seen or "no problem logged"),
        ("Assets affected", len(inc.affected_assets)),
        ("Signed by", ", ".join(inc.signers) or "-"),
        ("Models involved", ", ".join(inc.models) or "-"),
    ]
    out.append("<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts) + "</dl>")
    out.append(_timeline_table(r))
    out.append("</section>")
    return out


def _timeline_table(r: ComplianceReport) -> str:
    return _table(
        "Audit events about the affected assets and declared incidents",
        ("seq", "when", "event", "asset", "verdict", "signer", "model or description"),
        (
            [
                f'<td class="num">{t.seq}</td>',
                _tt(t.at),
                _td(t.event.value.replace("_", " ")),
                _td(t.asset_id or "", ident=True),
                _td(t.status_label or ""),
                _td(t.signer or ""),
                _td(t.detail or " ".join(x for x in (t.model, t.model_version) if x)),
            ]
            for t in r.timeline
        ),
        table_id="t-timeline",
    )


def _obligations_html(r: ComplianceReport) -> list[str]:
    a = r.art50
    c = r.counts
    art50 = [
        (
            "Art. 50(2): synthetic images are marked in a machine-readable format and "
            "detectable as artificially generated.",
            f"{a.ai_originals} originals and {a.ai_renditions} renditions signed with "
            f"{a.marking}; {a.copies_marked} copies seen with the marking intact.",
            "s-inv",
        ),
        (
            "Art. 50(2): the marking is effective and robust as far as technically feasible.",
            f"{a.copies_marking_lost} copies that lost the marking were still recognised "
            f"(exact essence hash or perceptual match); {a.copies_altered} altered copies "
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
    return [
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
                for n in nist(r)
            ),
        ),
        f"<p>Figures: {c.get('files_checked', 0)} files checked; "
        f"{c.get('ai_originals', 0)} AI-generated originals, {c.get('ai_renditions', 0)} "
        "renditions.</p>",
        "</section>",
    ]


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
