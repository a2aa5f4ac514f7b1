"""Print an HTML page to PDF with headless Chromium (the compliance report's PDF form).

An adapter: it owns one subprocess and a temporary folder, nothing else. The
page must be self-contained (the report's HTML is: no external resources), and
Chromium runs offline-minded: no first-run, sync, component updates or
background networking, a fresh profile folder each time, deleted afterwards.
Pagination, page numbers and repeated table headers come from the page's own
print CSS (``@page`` margin boxes), so no browser header or footer is printed.

Chromium is found as ``$PROVENANCE_CHROMIUM``, else ``chromium`` or
``chromium-browser`` on ``PATH`` (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from provenance.errors import ProvenanceError

__all__ = ["CHROMIUM_ENV", "find_chromium", "html_to_pdf"]

CHROMIUM_ENV = "PROVENANCE_CHROMIUM"
"""Environment variable naming the Chromium executable."""

# A report of a few hundred rows prints in 2-5 s on 2 cores; a stuck browser is
# killed rather than waited for.
_TIMEOUT_S = 180


def find_chromium() -> str:
    """The Chromium executable to print with.

    Raises:
        ProvenanceError: None found.
    """
    configured = os.environ.get(CHROMIUM_ENV, "").strip()
    found = configured or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise ProvenanceError(
            f"PDF needs headless Chromium: install it (Debian: apt-get install chromium) "
            f"or set {CHROMIUM_ENV} to its path"
        )
    return found


def html_to_pdf(page: str, *, name: str = "report.pdf", timeout_s: float = _TIMEOUT_S) -> bytes:
    """Print a self-contained HTML page to PDF bytes.

    Args:
        page: The HTML text.
        name: The output's name, for error messages.
        timeout_s: Give up after this many seconds.

    Returns:
        The PDF file's bytes.

    Raises:
        ProvenanceError: Chromium is missing, failed, timed out or wrote no PDF;
            the message begins with ``name``.
    """
    browser = find_chromium()
    with tempfile.TemporaryDirectory(prefix="provenance-pdf-") as tmp:
        folder = Path(tmp)
        source = folder / "report.html"
        target = folder / "report.pdf"
        profile = folder / "profile"
        source.write_text(page, encoding="utf-8")
        command = [
            browser,
            "--headless",
            "--no-sandbox",  # root in containers/CI, where the sandbox cannot start
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={target}",
            source.as_uri(),
        ]
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv, no shell
                command, capture_output=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise ProvenanceError(
                f"Chromium did not finish printing within {timeout_s:.0f} s", path=name
            ) from None
        except OSError as exc:
            raise ProvenanceError(
                f"cannot run Chromium ({browser}): {exc.strerror}", path=name
            ) from None
        data = target.read_bytes() if target.is_file() else b""
        if done.returncode != 0 or not data.startswith(b"%PDF-"):
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise ProvenanceError(
                f"Chromium wrote no PDF (exit {done.returncode}) {tail[0][:200]}".rstrip(),
                path=name,
            )
        return data
