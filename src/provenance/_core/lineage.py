"""Lineage read from a file alone: rendition, its parent, and so on to the original.

A rendition is signed with a C2PA ``parentOf`` ingredient; c2pa carries the
parent's manifest inside the rendition's manifest store, so the chain can be
walked without any database. Each step holds the statement our assertion
recorded for that generation. Pure logic over c2pa's JSON store; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provenance._core.record import ProvenanceRecord
from provenance._core.statement import (
    RECORD_ASSERTION_LABEL,
    Statement,
    statement_from_mapping,
)
from provenance.errors import RecordError

__all__ = ["LineageStep", "lineage_from_store"]

# A manifest store is attacker-controlled input: bound the walk.
MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class LineageStep:
    """One generation in a file's lineage, newest first.

    Attributes:
        manifest: The C2PA manifest label of that generation.
        title: The title the manifest (or the ingredient) gave the asset.
        asset_id: Our asset id, when the manifest carries our statement.
        essence_sha256_hex: Its essence hash, from our statement.
        record: Its provenance record, from our statement.
    """

    manifest: str
    title: str | None = None
    asset_id: str | None = None
    essence_sha256_hex: str | None = None
    record: ProvenanceRecord | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "manifest": self.manifest,
            "title": self.title,
            "asset_id": self.asset_id,
            "essence_sha256": self.essence_sha256_hex,
            "record": None if self.record is None else self.record.to_dict(),
        }


def lineage_from_store(
    store: Mapping[str, Any], *, active: Statement | None = None
) -> tuple[LineageStep, ...]:
    """Walk ``parentOf`` ingredients from the active manifest back to the original.

    Args:
        store: The manifest store (c2pa's JSON).
        active: The active manifest's signed statement when the caller has parsed
            it already (its first statement assertion); None parses it here.

    Returns:
        The steps, the file's own manifest first; empty without an active manifest.
    """
    manifests = store.get("manifests")
    label = store.get("active_manifest")
    if not isinstance(manifests, Mapping) or not isinstance(label, str):
        return ()
    steps: list[LineageStep] = []
    seen: set[str] = set()
    while isinstance(label, str) and label not in seen and len(steps) < MAX_DEPTH:
        seen.add(label)
        manifest = manifests.get(label)
        if not isinstance(manifest, Mapping):
            break
        steps.append(_step(label, manifest, active if not steps else None))
        label = _parent_label(manifest)
    return tuple(steps)


def _step(label: str, manifest: Mapping[str, Any], parsed: Statement | None) -> LineageStep:
    title = manifest.get("title")
    for item in manifest.get("assertions") or []:
        if isinstance(item, Mapping) and item.get("label") == RECORD_ASSERTION_LABEL:
            try:
                statement = (
                    parsed if parsed is not None else statement_from_mapping(item.get("data"))
                )
            except RecordError:
                break
            return LineageStep(
                manifest=label,
                title=title if isinstance(title, str) else None,
                asset_id=statement.asset_id,
                essence_sha256_hex=statement.essence_sha256,
                record=statement.record,
            )
    return LineageStep(manifest=label, title=title if isinstance(title, str) else None)


def _parent_label(manifest: Mapping[str, Any]) -> str | None:
    for ingredient in manifest.get("ingredients") or []:
        if isinstance(ingredient, Mapping) and ingredient.get("relationship") == "parentOf":
            parent = ingredient.get("active_manifest")
            return parent if isinstance(parent, str) else None
    return None
