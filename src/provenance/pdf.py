"""Deprecated module path, kept for one release: import html_to_pdf from provenance.

``provenance.pdf`` moved to the private ``provenance._io.pdf``
(issue 18, docs/architecture.md).
Importing this module warns with a :class:`DeprecationWarning`.
"""

from __future__ import annotations

import warnings

from provenance._io.pdf import (
    CHROMIUM_ENV,
    find_chromium,
    html_to_pdf,
)

__all__ = [
    "CHROMIUM_ENV",
    "find_chromium",
    "html_to_pdf",
]

warnings.warn(
    "provenance.pdf is deprecated and will be removed in the next release; "
    "import html_to_pdf from provenance",
    DeprecationWarning,
    stacklevel=2,
)
