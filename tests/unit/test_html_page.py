"""Every stand-alone page we write starts the same way and carries the same CSP."""

from __future__ import annotations

from provenance._core.html_page import CONTENT_SECURITY_POLICY, page_head


def test_page_head_escapes_the_title_and_sets_the_policy() -> None:
    head = page_head(title='report <script>"x"', css="body{margin:0}")
    assert head.startswith('<!doctype html><html lang="en"><head><meta charset="utf-8">')
    assert (
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">' in head
    )
    assert "<title>report &lt;script&gt;&quot;x&quot;</title>" in head
    assert head.endswith("<style>body{margin:0}</style></head><body>")
    assert (
        "default-src 'none'" in CONTENT_SECURITY_POLICY and "script" not in CONTENT_SECURITY_POLICY
    )
