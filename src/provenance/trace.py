"""The ``trace`` verb: where a copy came from, up to the generated original.

Steps for one file:

1. Verify it (with the inventory, so stripped copies are recognised).
2. Lineage from the file alone: the manifest store's ``parentOf`` chain, or the
   signed XMP statement when the C2PA box was dropped.
3. Lineage from the inventory: the file by SHA-256, its asset id, or its
   essence hash, then the recorded ancestors; generations the file did not
   carry are appended.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provenance._core.record import ProvenanceRecord
from provenance._core.types import Verdict
from provenance._io.keys import TrustPolicy
from provenance.inventory import AssetEntry, Inventory
from provenance.verify import verify

__all__ = ["TraceResult", "TraceStep", "trace"]


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One generation, newest first.

    Attributes:
        asset_id: The asset id, when known.
        record: Its provenance record, when known.
        source: Where this step was read: ``manifest``, ``xmp`` or ``inventory``.
        manifest: The C2PA manifest label, for steps read from a manifest.
    """

    asset_id: str | None
    record: ProvenanceRecord | None
    source: str
    manifest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "asset_id": self.asset_id,
            "record": None if self.record is None else self.record.to_dict(),
            "source": self.source,
            "manifest": self.manifest,
        }


@dataclass(frozen=True, slots=True)
class TraceResult:
    """A file's verdict and lineage.

    Attributes:
        path: The file.
        verdict: Its verdict.
        found_by: How it was identified: ``manifest``, ``xmp``, ``sha256``,
            ``asset_id``, ``essence``, or None when it is unknown.
        steps: The lineage, the file's own generation first, the original last.
    """

    path: str
    verdict: Verdict
    found_by: str | None
    steps: tuple[TraceStep, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form used by ``trace --json``."""
        return {
            "path": self.path,
            "verdict": self.verdict.status.value,
            "found_by": self.found_by,
            "lineage": [s.to_dict() for s in self.steps],
        }


def trace(
    path: str | os.PathLike[str],
    *,
    trust: TrustPolicy | None = None,
    inventory: Inventory | None = None,
    now: datetime | None = None,
) -> TraceResult:
    """Identify ``path`` and follow its lineage back to the original.

    Raises:
        ProvenanceError: The file cannot be read at all.
    """
    # 1. Verify.
    verdict = verify(path, trust=trust, inventory=inventory, now=now)
    steps: list[TraceStep] = []
    found_by: str | None = None
    # 2. From the file alone.
    if verdict.lineage:
        found_by = "manifest"
        steps = [TraceStep(s.asset_id, s.record, "manifest", s.manifest) for s in verdict.lineage]
    elif (
        verdict.asset_id is not None
        and verdict.evidence
        and any(e.source.value == "xmp" for e in verdict.evidence)
    ):
        found_by = "xmp"
        steps = [TraceStep(verdict.asset_id, verdict.record, "xmp")]
    # 3. From the inventory.
    if inventory is not None:
        entry, how = _find(inventory, verdict)
        if entry is not None:
            found_by = found_by or how
            known = {s.asset_id for s in steps}
            chain = [entry, *inventory.ancestors(entry.asset_id)]
            if steps and steps[-1].asset_id in known:
                # Append only the generations beyond what the file carried.
                tail_ids = [e.asset_id for e in chain]
                last = steps[-1].asset_id
                chain = chain[tail_ids.index(last) + 1 :] if last in tail_ids else []
            steps.extend(
                TraceStep(e.asset_id, e.record, "inventory")
                for e in chain
                if e.asset_id not in known
            )
    return TraceResult(os.fspath(path), verdict, found_by, tuple(steps))


def _find(inventory: Inventory, verdict: Verdict) -> tuple[AssetEntry | None, str | None]:
    if verdict.sha256_hex is not None:
        entry = inventory.find_by_sha256(verdict.sha256_hex)
        if entry is not None:
            return entry, "sha256"
    if verdict.essence_sha256_hex is not None:
        entry = inventory.find_by_essence(verdict.essence_sha256_hex)
        if entry is not None:
            return entry, "essence"
    if verdict.asset_id is not None:
        entry = inventory.get(verdict.asset_id)
        if entry is not None:
            return entry, "asset_id"
    return None, None
