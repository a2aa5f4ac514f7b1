"""Headless Chromium and axe-core for the accessibility and screenshot tests.

Chromium is Debian's (``apt-get install chromium``; ``.ci/run`` installs it),
axe-core comes from npm (``npm ci`` from package.json; ``make`` runs it), and
Playwright drives the browser. Missing pieces fail the test with the command
that installs them: the project installs them, so they are never skipped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def chromium_path() -> str:
    configured = os.environ.get("PLAYWRIGHT_CHROMIUM_EXECUTABLE", "").strip()
    found = configured or shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Chromium is missing: apt-get install -y chromium (.ci/run does this)"
    return found


@contextmanager
def browser() -> Iterator[Browser]:
    assert AXE_JS.is_file(), f"{AXE_JS} is missing: run 'npm ci' in {ROOT} (make does this)"
    with sync_playwright() as pw:
        # --no-sandbox: CI containers run as root, where Chromium's sandbox cannot start.
        instance = pw.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield instance
        finally:
            instance.close()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run every axe-core rule (WCAG 2.x A/AA and best practices) on the page."""
    page.add_script_tag(path=str(AXE_JS))
    result: dict[str, Any] = page.evaluate("async () => await axe.run(document)")
    assert result["passes"], "axe ran no passing rule at all: the page did not load"
    return list(result["violations"])


def describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} -> "
        + "; ".join(n["html"][:160] for n in v["nodes"][:3])
        for v in violations
    )


def page_for(markup_body: str, *, title: str = "Product page") -> str:
    """A minimal storefront product page around some markup."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title></head><body><main><h1>{title}</h1>"
        f"{markup_body}</main></body></html>"
    )
