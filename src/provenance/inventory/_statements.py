"""The inventory's statement catalogue: every statement is SQLAlchemy Core, compiled per dialect.

The statements themselves sit beside the code that reads their rows
(``_rows``, ``_writes``, ...), each registered here on :data:`SQL` over the
tables of :mod:`provenance.inventory._server` (which include the audit tables);
:mod:`provenance._io.database` compiles each once per engine. SQLAlchemy is
imported at the first compilation, not with this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from provenance._io.database import Catalogue

__all__ = ["ASSET_KEY", "DESCRIPTOR", "PACKS_SCHEMA_VERSION", "PERCEPTUAL_GENERATION", "SQL"]

PERCEPTUAL_GENERATION = "perceptual_generation"
"""The ``provenance_meta`` counter every UPDATE or DELETE of perceptual rows bumps (a
server trigger); each packed snapshot records it (``inventory._packs``)."""

PACKS_SCHEMA_VERSION = 5
"""The server schema version that added ``perceptual_packs`` and its counter: a server
at 4, open read-only during a rolling upgrade, has neither (``inventory._server``)."""


def _tables() -> Any:
    from provenance.inventory._server import catalogue_metadata

    return catalogue_metadata()


SQL = Catalogue(_tables, snapshot=Path(__file__).with_name("sqlite_statements.json"))
"""The inventory's statements (``SQL.statements``: every one, for the compile test)."""

# Statements several modules run.
ASSET_KEY = SQL.query(
    "asset_key_of_id",
    lambda sa, t: sa.select(t.assets.c.asset_pk).where(
        t.assets.c.asset_id == sa.bindparam("asset_id")
    ),
    params=("asset_id",),
)
"""``asset_pk`` of an asset id."""

DESCRIPTOR = SQL.query(
    "perceptual_descriptor",
    lambda sa, t: sa.select(t.perceptual_descriptors.c.descriptor).where(
        t.perceptual_descriptors.c.asset_pk == sa.bindparam("asset_pk"),
        t.perceptual_descriptors.c.scheme == sa.bindparam("scheme"),
    ),
    params=("asset_pk", "scheme"),
)
"""The perceptual descriptor of one asset key and scheme."""
