"""Storefront disclosure: the label and markup that tell a shopper an image is AI-generated.

The public face of the private ``provenance._core.disclosure`` (docs/architecture.md):
import these names from here; everything else there is internal and may change.
"""

from __future__ import annotations

from provenance._core.disclosure import (
    SIGNED,
    VISUALLY_HIDDEN_STYLE,
    Disclosure,
    DisclosureOptions,
    describe,
    disclosure_for,
    render_html,
)

__all__ = [
    "SIGNED",
    "VISUALLY_HIDDEN_STYLE",
    "Disclosure",
    "DisclosureOptions",
    "describe",
    "disclosure_for",
    "render_html",
]
