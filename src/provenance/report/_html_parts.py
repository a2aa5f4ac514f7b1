"""Building blocks of the report's HTML page: its style sheet, escaping, cells, tables, charts.

Pure: values in, HTML text out; every value is escaped here.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from provenance._core.types import Status

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
CSS = """
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


def esc(value: Any) -> str:
    """Text made safe for HTML content and attribute values (None is empty)."""
    return html.escape("" if value is None else str(value), quote=True)


def id_code(value: Any) -> str:
    """An identifier, hash or path: monospace, may wrap anywhere, never cut."""
    text = esc(value)
    return f'<code class="id">{text}</code>' if text else ""


def bar_chart(
    chart_id: str, title: str, data: Mapping[str, int], colours: Mapping[str, str]
) -> str:
    """An accessible inline SVG bar chart: a title, a text description, numbers as text."""
    items = list(data.items())
    width, bar_h, gap, label_w = 540, 22, 8, 260
    height = max(1, len(items)) * (bar_h + gap) + gap
    biggest = max((v for _, v in items), default=1) or 1
    desc = "; ".join(f"{k}: {v}" for k, v in items) or "no data"
    name = esc(chart_id)
    parts = [
        f'<svg id="{name}" role="img" aria-labelledby="{name}-t {name}-d" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{esc(chart_id)}-t">{esc(title)}</title>',
        f'<desc id="{esc(chart_id)}-d">{esc(desc)}</desc>',
    ]
    for i, (label, value) in enumerate(items):
        y = gap + i * (bar_h + gap)
        bar = max(2, int((width - label_w - 50) * value / biggest))
        colour = colours.get(label, "#0b5394")
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar_h - 6}" text-anchor="end" '
            f'font-size="13" fill="#1a1a1a">{esc(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{bar}" height="{bar_h}" fill="{colour}" '
            'stroke="#1a1a1a" stroke-width="0.5"></rect>'
            f'<text x="{label_w + bar + 6}" y="{y + bar_h - 6}" font-size="13" '
            f'fill="#1a1a1a">{value}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def table(
    caption: str, headers: Sequence[str], rows: Iterable[Sequence[str]], *, table_id: str = ""
) -> str:
    """A captioned table, or one line saying there is none."""
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    anchor = f' id="{esc(table_id)}"' if table_id else ""
    if not body:
        return f"<p{anchor}>{esc(caption)}: none.</p>"
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    return (
        f"<table{anchor}><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def td(value: Any, *, ident: bool = False) -> str:
    """A table cell; an identifier cell (``ident``) may wrap anywhere."""
    return f'<td class="idc">{id_code(value)}</td>' if ident else f"<td>{esc(value)}</td>"


def hours_cell(hours: float) -> str:
    """Hours left until a deadline, or "overdue"."""
    return f'<td class="num">{esc("overdue" if hours < 0 else hours)}</td>'


def time_cell(value: Any) -> str:
    """A timestamp cell: kept on one line (its hyphens are not break points)."""
    return f'<td class="t">{esc(value)}</td>'
