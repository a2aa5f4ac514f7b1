"""The feed readiness report: JSON, one self-contained HTML page, lines for a terminal."""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance._core.html_page import page_head
from provenance.feed._model import FeedFormat, FeedImage, ImageState


@dataclass(frozen=True, slots=True)
class FeedReport:
    """Feed readiness for every product image.

    Attributes:
        feed: The feed file.
        format: Its format.
        products: How many products it lists.
        images: One entry per (product, image).
    """

    feed: str
    format: FeedFormat
    products: int
    images: tuple[FeedImage, ...]

    @property
    def ok(self) -> bool:
        """Whether every image is ready (or needs nothing): the CI gate."""
        return all(i.state.ok for i in self.images)

    @property
    def counts(self) -> dict[str, int]:
        """Images by state."""
        return dict(sorted(Counter(i.state.value for i in self.images).items()))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "format": "provenance.feed_check",
            "version": 1,
            "feed": self.feed,
            "feed_format": self.format.value,
            "ok": self.ok,
            "products": self.products,
            "counts": self.counts,
            "images": [i.to_dict() for i in self.images],
        }

    def to_json(self) -> str:
        """Indented JSON text."""
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n"

    def to_html(self) -> str:
        """One self-contained, accessible HTML page."""
        return _html(self)


# --- HTML -------------------------------------------------------------------------------

_LABELS = {
    ImageState.READY: "Ready",
    ImageState.READY_WITHOUT_MANIFEST: "Ready, manifest missing",
    ImageState.MISSING_DIGITAL_SOURCE_TYPE: "AI label lost",
    ImageState.ALTERED: "Altered",
    ImageState.NOT_AI: "Not AI-generated",
    ImageState.MISSING_FILE: "File missing",
    ImageState.NOT_LOCAL: "Not checked (other host)",
    ImageState.ERROR: "Could not be checked",
}

_CSS = """
body{margin:0;font:15px/1.45 system-ui,sans-serif;color:#1a1a1a;background:#fff}
header,main{max-width:80rem;margin:0 auto;padding:1rem 1.5rem}
header{border-bottom:4px solid #0b5394}h1{font-size:1.5rem;margin:.2rem 0}
.ok{border-left:6px solid #1e6b3a;background:#eef7f1;padding:.5rem 1rem}
.alert{border-left:6px solid #b3261e;background:#fdf0ef;padding:.5rem 1rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{border-bottom:1px solid #c8c8c8;padding:.3rem .45rem;text-align:left;vertical-align:top;
word-break:normal;overflow-wrap:normal;hyphens:auto}
th{background:#f2f2f2}.id{overflow-wrap:anywhere}code{font-size:.85em}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _html(r: FeedReport) -> str:
    counts = ", ".join(f"{n} {_LABELS[ImageState(k)].lower()}" for k, n in r.counts.items())
    verdict = (
        '<p class="ok">Every AI-generated image in this feed keeps its IPTC DigitalSourceType.</p>'
        if r.ok
        else '<p class="alert">Some images need action before Merchant Center sees them '
        "as AI-generated; each row says what to run.</p>"
    )
    rows = "".join(
        "<tr>"
        f"<td>{_e(i.product_id)}</td><td>{_e(i.title)}</td><td>{_e(i.role)}</td>"
        f'<td><code class="id">{_e(i.url)}</code></td>'
        f"<td>{_e(_LABELS[i.state])}</td>"
        f"<td>{_e({True: 'yes', False: 'no', None: 'unknown'}[i.ai_generated])}"
        f"{_e(f' ({i.ai_evidence})' if i.ai_evidence else '')}</td>"
        f"<td>{_e(i.digital_source_type or 'none')}</td>"
        f"<td>{_e((i.verdict or '-').replace('_', ' '))}</td>"
        f'<td><code class="id">{_e(i.fix or "")}</code> {_e(i.detail or "")}</td>'
        "</tr>"
        for i in r.images
    )
    head = "".join(
        f'<th scope="col">{h}</th>'
        for h in (
            "product",
            "title",
            "field",
            "image URL",
            "state",
            "AI-generated",
            "IPTC DigitalSourceType",
            "verdict",
            "what to do",
        )
    )
    return (
        page_head(title=f"Feed check {Path(r.feed).name}", css=_CSS)
        + f"<header><h1>Feed check: {_e(Path(r.feed).name)}</h1>"
        f"<p>{_e(r.format.value.replace('_', ' '))}, {r.products} products, "
        f"{len(r.images)} images: {_e(counts)}.</p></header><main>{verdict}"
        f"<table><caption>Every product image</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{rows}</tbody></table></main></body></html>\n"
    )


def summary_lines(report: FeedReport) -> Iterable[str]:
    """One line per image needing action, for a terminal."""
    for i in report.images:
        if not i.state.ok:
            yield f"{i.product_id} {i.url}: {_LABELS[i.state]}" + (
                f"; fix: {i.fix}" if i.fix else f" ({i.detail})" if i.detail else ""
            )
