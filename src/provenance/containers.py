"""Image containers at the byte level: blocks, XMP, essence ranges (no decoding, no c2pa).

The public face of the private ``provenance._core.containers`` (docs/architecture.md):
import these names from here; everything else there is internal and may change.
"""

from __future__ import annotations

from provenance._core.containers import (
    IMAGE_SUFFIXES,
    SUPPORTED,
    ImageFormat,
    c2pa_mime,
    detect_format,
    embed,
    essence_ranges,
    inspect,
    set_xmp,
    strip,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "SUPPORTED",
    "ImageFormat",
    "c2pa_mime",
    "detect_format",
    "embed",
    "essence_ranges",
    "inspect",
    "set_xmp",
    "strip",
]
