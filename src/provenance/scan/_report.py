"""A scan's report: :class:`ScanReport` as JSON, CSV and one self-contained HTML page.

What this module owns: rendering the rows of a scan (thumbnails as small
``data:`` URIs, every text escaped, spreadsheet formulas defused) and writing
the reports atomically (:func:`write_reports`).
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from provenance._core.cells import csv_cell
from provenance._core.html_page import page_head
from provenance._core.thumbnails import thumbnail_data_uri
from provenance._io.atomic import PRIVATE_FILE_MODE, write_atomic
from provenance._io.reading import read_input
from provenance.errors import OutputError, ProvenanceError
from provenance.fingerprint import open_image
from provenance.scan._rows import _SUMMARY_COLUMNS, ScanKind, ScanRow

__all__ = ["ScanReport", "write_reports"]

# Side of the HTML thumbnails, in pixels, and their JPEG quality: ~2-4 KB each.
_THUMB_SIDE = 96
_THUMB_QUALITY = 70


@dataclass(frozen=True, slots=True)
class ScanReport:
    """Every row of one scan, in the order the files were found.

    Attributes:
        rows: One per distinct file.
        scanned_at: When the scan ran (RFC 3339 UTC).
        roots: The paths given.
    """

    rows: tuple[ScanRow, ...]
    scanned_at: str
    roots: tuple[str, ...] = field(default=())

    @property
    def counts(self) -> dict[str, int]:
        """Rows per kind (every kind present, zeros included)."""
        seen = Counter(row.kind for row in self.rows)
        return {kind.value: seen.get(kind, 0) for kind in ScanKind}

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "format": "provenance.scan",
            "version": 1,
            "scanned_at": self.scanned_at,
            "roots": list(self.roots),
            "counts": self.counts,
            "rows": [row.to_dict() for row in self.rows],
        }

    def to_json(self) -> bytes:
        """The report as UTF-8 JSON."""
        return (json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n").encode("utf-8")

    def to_csv(self) -> bytes:
        """One line per file; cells a spreadsheet would run as formulas are defused."""
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(_SUMMARY_COLUMNS)
        for row in self.rows:
            flat = row.summary()
            writer.writerow([csv_cell(flat[c]) for c in _SUMMARY_COLUMNS])
        return buffer.getvalue().encode("utf-8")

    # Over 60 lines: one page template, read top to bottom as the page it makes.
    def to_html(self, *, thumbnails: bool = True) -> bytes:
        """A self-contained page: counts, then a table with a thumbnail per file.

        Args:
            thumbnails: Embed a small JPEG of each readable image as a
                ``data:`` URI (decoded in draft mode; about 3 KB each).
        """
        esc = html.escape
        counts = " · ".join(f"{esc(k)}: {n}" for k, n in self.counts.items())
        css = [
            "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}",
            "table{border-collapse:collapse;width:100%}",
            "th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;",
            "vertical-align:top}",
            "td.t{width:100px}img{max-width:96px;max-height:96px}",
            ".k{font-weight:600;white-space:nowrap}.sku code{white-space:nowrap}",
            # Colour follows the verdict, not the kind: only a trusted file is green;
            # a tampered one is red with a mark, whatever new statuses appear.
            ".s-trusted{color:#1a6b1a}.s-valid_untrusted{color:#0b4a8a}",
            ".s-tampered,.s-invalid_signature,.s-invalid_manifest,.s-invalid_identity,",
            ".s-error{color:#b00020}.s-unsupported,.s-remote_manifest{color:#555}",
            ".s-known_stripped,.s-synthetic_duplicate{color:#a35200}.s-no_provenance{color:#555}",
            "code{font-size:12px;overflow-wrap:anywhere}",
        ]
        lines = [
            page_head(title=f"provenance scan {self.scanned_at}", css="\n".join(css)),
            "<h1>provenance scan</h1>",
            f"<p>{esc(self.scanned_at)} · {len(self.rows)} files · {counts}</p>",
            f"<p>roots: {esc(', '.join(self.roots))}</p>",
        ]
        products = any(row.sku or row.product_name for row in self.rows)
        lines.append(
            "<table><thead><tr><th></th><th>file</th>"
            + ("<th>SKU</th><th>product</th>" if products else "")
            + "<th>result</th><th>asset</th><th>model</th><th>details</th></tr></thead><tbody>"
        )
        for row in self.rows:
            flat = row.summary()
            thumb = (
                _thumbnail_uri(Path(row.path)) if thumbnails and row.verdict is not None else None
            )
            image = f'<img alt="" src="{esc(thumb)}">' if thumb else ""
            result = flat["kind"]
            if row.kind is ScanKind.SIGNED:
                result += f" ({flat['status']})"
            if row.verdict is not None and row.verdict.status.is_failure:
                result = "\u2717 " + result  # a mark, so colour is never the only cue
            details = flat["error"] or flat["codes"]
            if flat["distance"]:
                details = f"distance {flat['distance']} bits; {details}"
            lines.append(
                f'<tr><td class="t">{image}</td><td><code>{esc(flat["path"])}</code></td>'
                + (
                    f'<td class="sku"><code>{esc(flat["sku"])}</code></td>'
                    f"<td>{esc(flat['product_name'])}</td>"
                    if products
                    else ""
                )
                + f'<td class="k s-{esc(flat["status"])}">{esc(result)}</td>'
                f"<td><code>{esc(flat['asset_id'])}</code></td><td>{esc(flat['model'])}</td>"
                f"<td><code>{esc(details)}</code></td></tr>"
            )
        lines += ["</tbody></table></body></html>", ""]
        return "\n".join(lines).encode("utf-8")


def write_reports(
    report: ScanReport,
    *,
    json_path: str | os.PathLike[str] | None = None,
    csv_path: str | os.PathLike[str] | None = None,
    html_path: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Write the requested reports, each atomically.

    Returns:
        The files written.

    Raises:
        OutputError: A report cannot be written (those before it stay written).
    """
    written = []
    for target, render in (
        (json_path, report.to_json),
        (csv_path, report.to_csv),
        (html_path, report.to_html),
    ):
        if target is None:
            continue
        path = Path(target)
        try:
            # Reports name files and may quote records: 0600, like the inventory.
            written.append(write_atomic(path, render(), mode=PRIVATE_FILE_MODE))
        except OSError as exc:
            raise OutputError(f"cannot write the report: {exc.strerror}", path=path) from None
    return written


def _thumbnail_uri(path: Path) -> str | None:
    try:
        # open_image: the pixel limit before decoding, and HEIC through pillow-heif.
        with open_image(read_input(path)) as opened:
            return thumbnail_data_uri(opened, side=_THUMB_SIDE, quality=_THUMB_QUALITY)
    except (ProvenanceError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
