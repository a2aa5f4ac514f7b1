"""Deprecated module path, kept for one release: import HammingIndex and Neighbor from provenance.

``provenance.index`` moved to the private ``provenance._io.index``
(issue 18, docs/architecture.md).
Importing this module warns with a :class:`DeprecationWarning`.
"""

from __future__ import annotations

import warnings

from provenance._io.index import (
    MEMORY_BUDGET,
    AssetMatch,
    FleetIndex,
    HammingIndex,
    Neighbor,
    RowChunk,
    hamming_distances,
)

__all__ = [
    "MEMORY_BUDGET",
    "AssetMatch",
    "FleetIndex",
    "HammingIndex",
    "Neighbor",
    "RowChunk",
    "hamming_distances",
]

warnings.warn(
    "provenance.index is deprecated and will be removed in the next release; "
    "import HammingIndex and Neighbor from provenance",
    DeprecationWarning,
    stacklevel=2,
)
