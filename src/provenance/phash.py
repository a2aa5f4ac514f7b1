"""Perceptual hashes: how a stripped, resized or re-encoded copy is recognised.

The public face of the private ``provenance._core.phash`` (docs/architecture.md):
import these names from here; everything else there is internal and may change.
"""

from __future__ import annotations

from provenance._core.phash import (
    COLOUR_STRICT,
    COLOUR_THRESHOLD,
    CONFIRM_STRICT,
    CONFIRM_THRESHOLD,
    LAYOUT_STRICT,
    LAYOUT_THRESHOLD,
    MATCH_THRESHOLD,
    SCHEME,
    WORDS,
    Confirmation,
    QueryFeatures,
    ReferenceHashes,
    compat_hashes,
    confirm,
    confirm_distance,
    confirmation,
    hamming,
    layout_correlation,
    query_features,
    query_hashes,
    reference_hashes,
    reference_hashes_batch,
)

__all__ = [
    "COLOUR_STRICT",
    "COLOUR_THRESHOLD",
    "CONFIRM_STRICT",
    "CONFIRM_THRESHOLD",
    "LAYOUT_STRICT",
    "LAYOUT_THRESHOLD",
    "MATCH_THRESHOLD",
    "SCHEME",
    "WORDS",
    "Confirmation",
    "QueryFeatures",
    "ReferenceHashes",
    "compat_hashes",
    "confirm",
    "confirm_distance",
    "confirmation",
    "hamming",
    "layout_correlation",
    "query_features",
    "query_hashes",
    "reference_hashes",
    "reference_hashes_batch",
]
