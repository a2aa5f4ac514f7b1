"""Deprecated module path, kept for one release: import meets from provenance.

``provenance.verdicts`` moved to the private ``provenance._core.verdicts``
(issue 18, docs/architecture.md).
Importing this module warns with a :class:`DeprecationWarning`.
"""

from __future__ import annotations

import warnings

from provenance._core.verdicts import (
    CODE_STATUS,
    ERROR_STATUS,
    HARD_BINDING_MISMATCH,
    TRUST_ONLY_CODES,
    UNTRUSTED_CODE,
    c2pa_status,
    combine,
    error_status,
    exit_code,
    meets,
    metadata_only,
    status_table,
    worst,
)

__all__ = [
    "CODE_STATUS",
    "ERROR_STATUS",
    "HARD_BINDING_MISMATCH",
    "TRUST_ONLY_CODES",
    "UNTRUSTED_CODE",
    "c2pa_status",
    "combine",
    "error_status",
    "exit_code",
    "meets",
    "metadata_only",
    "status_table",
    "worst",
]

warnings.warn(
    "provenance.verdicts is deprecated and will be removed in the next release; "
    "import meets from provenance",
    DeprecationWarning,
    stacklevel=2,
)
