"""Deprecated module path, kept for one release: import find_inventory from provenance.

``provenance.discovery`` moved to the private ``provenance._io.discovery``
(issue 18, docs/architecture.md).
Importing this module warns with a :class:`DeprecationWarning`.
"""

from __future__ import annotations

import warnings

from provenance._io.discovery import (
    CONFIG_NAME,
    ENV_VAR,
    FOLDER_NAME,
    InventoryLocation,
    InventorySource,
    find_inventory,
)

__all__ = [
    "CONFIG_NAME",
    "ENV_VAR",
    "FOLDER_NAME",
    "InventoryLocation",
    "InventorySource",
    "find_inventory",
]

warnings.warn(
    "provenance.discovery is deprecated and will be removed in the next release; "
    "import find_inventory from provenance",
    DeprecationWarning,
    stacklevel=2,
)
