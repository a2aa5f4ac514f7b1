"""The inventory's statement catalogue: every statement is SQLAlchemy Core, compiled per dialect.

The statements themselves sit beside the code that reads their rows
(``_rows``, ``_writes``, ...), each registered here on :data:`SQL` over the
tables of :mod:`provenance.inventory._server` (which include the audit tables);
:mod:`provenance._io.database` compiles each once per engine. SQLAlchemy is
imported at the first compilation, not with this module.
"""

from __future__ import annotations

from typing import Any

from provenance._io.database import Catalogue

__all__ = ["SQL"]


def _tables() -> Any:
    from provenance.inventory._server import catalogue_metadata

    return catalogue_metadata()


SQL = Catalogue(_tables)
"""The inventory's statements (``SQL.statements``: every one, for the compile test)."""
