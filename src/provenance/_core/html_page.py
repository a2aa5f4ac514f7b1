"""The frame of every stand-alone HTML page we write: doctype, charset, CSP, title, style.

Pure: text in, text out. Every page (the compliance report, the scan report,
the feed check) is opened from disk or mail by people who did not make it, so
each carries the same Content-Security-Policy: nothing may load or run but the
page's own inline style and ``data:`` images.
"""

from __future__ import annotations

import html

__all__ = ["CONTENT_SECURITY_POLICY", "page_head"]

CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
"""No script, no remote anything: inline style and ``data:`` images only."""


def page_head(*, title: str, css: str) -> str:
    """Everything of a page up to and including ``<body>``.

    Args:
        title: The page title, as text (it is escaped here).
        css: The page's style sheet, inlined.

    Returns:
        The HTML text; the caller appends the body and ``</body></html>``.
    """
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        f"<title>{html.escape(title, quote=True)}</title><style>{css}</style></head><body>"
    )
