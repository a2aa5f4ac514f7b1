"""Step 6: the file's essence hash is an inventory asset (docs/verdicts.md, "Inventory evidence").

A copy whose provenance was stripped (``known_stripped``), changed around intact
image data (``tampered``), or an AI-generated asset re-signed under another
source type (``tampered``). Adds its evidence to the
:class:`~provenance.verify._combine.Draft`; reads no file and decodes no pixels,
so a verifier that the inventory recognises by hash loads neither numpy nor
Pillow (issue 20; steps 7-8 are :mod:`provenance.verify._inventory`).
"""

from __future__ import annotations

from provenance._core.containers.rendering import Finding
from provenance._core.statement import Statement
from provenance._core.types import Evidence, EvidenceSource, Status
from provenance._io.c2pa import C2paReport
from provenance.inventory import AssetEntry
from provenance.verify._c2pa import _action_source_types, _rendering_evidence
from provenance.verify._codes import INVENTORY_ESSENCE_MATCH, KNOWN_STRIPPED, SYNTHETIC_RELABELLED
from provenance.verify._combine import Draft


def essence_match(
    draft: Draft, known: AssetEntry, report: C2paReport | None, rendering: tuple[Finding, ...]
) -> None:
    """6. The file's essence is the inventory asset ``known``."""
    relabelled = None
    if draft.status is not Status.NO_PROVENANCE:
        relabelled = _relabelled(known, draft.statement, report)
    if relabelled is not None:
        # Our AI-generated asset re-signed (by anyone) with another source type:
        # the signed AI label of that asset was changed, so the file is tampered
        # whatever its new signature says, and it discloses the asset's record.
        draft.add(relabelled)
        draft.status = Status.TAMPERED
        draft.asset = known
        return
    if draft.status is Status.NO_PROVENANCE and rendering:
        # The essence is ours, but what is shown (or carried) around it is not.
        draft.add(_rendering_evidence(EvidenceSource.INVENTORY, rendering, "an inventory asset"))
        draft.status = Status.TAMPERED
        draft.statement = None
    elif draft.status is Status.NO_PROVENANCE:
        draft.status = Status.KNOWN_STRIPPED
        draft.codes.append(KNOWN_STRIPPED)
        draft.statement = None
    # Evidence of what the file is, not a failure: its code stays out of failure_codes.
    draft.evidence.append(
        Evidence(
            EvidenceSource.INVENTORY,
            Status.KNOWN_STRIPPED,
            f"essence hash matches inventory asset {known.asset_id}",
            (INVENTORY_ESSENCE_MATCH,),
        )
    )
    if draft.statement is None and draft.status in (Status.KNOWN_STRIPPED, Status.TAMPERED):
        draft.asset = known  # recognised by the inventory alone: name its record


def _relabelled(
    known: AssetEntry, statement: Statement | None, report: C2paReport | None
) -> Evidence | None:
    """Evidence that a file re-labels a synthetic inventory asset, or None.

    ``known`` is the inventory asset whose essence the file carries. The file's
    own claim is its signed statement's source type, else the source types of
    its C2PA actions; a synthetic asset claimed as anything else (or as nothing)
    is relabelled.
    """
    if not known.is_synthetic:
        return None
    expected = known.record.digital_source_type.uri
    if statement is not None:
        claimed: tuple[str, ...] = (statement.record.digital_source_type.uri,)
    else:
        claimed = _action_source_types(report)
    if expected in claimed:
        return None
    said = ", ".join(claimed) or "no digitalSourceType"
    detail = (
        f"essence matches inventory asset {known.asset_id}, whose record declares {expected}; "
        f"this file's provenance declares {said}"
    )
    return Evidence(EvidenceSource.INVENTORY, Status.TAMPERED, detail, (SYNTHETIC_RELABELLED,))
