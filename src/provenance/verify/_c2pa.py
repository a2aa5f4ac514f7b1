"""Step 3: what the C2PA manifest store says, as evidence (docs/verdicts.md, "C2PA evidence").

Maps c2pa's report (read by :mod:`provenance._io.c2pa` against the configured
anchors, offline) to :class:`~provenance._core.types.Evidence`, and tells a
metadata change from a pixel change when only the hard binding failed. Never
reads c2pa itself, and never decides the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from provenance._core.containers.rendering import Finding
from provenance._core.lineage import LineageStep, lineage_from_store
from provenance._core.statement import (
    RECORD_ASSERTION_LABEL,
    Statement,
    statement_from_mapping,
)
from provenance._core.types import Evidence, EvidenceSource, Identity, Status
from provenance._core.verdicts import (
    TRUST_ONLY_CODES,
    UNTRUSTED_CODE,
    c2pa_status,
    metadata_only,
)
from provenance._io.c2pa import C2paReport
from provenance._io.keys import TrustPolicy
from provenance.errors import RecordError
from provenance.verify._codes import (
    C2PA_ESSENCE_MISMATCH,
    C2PA_METADATA_ONLY,
    C2PA_REMOTE_NOT_FETCHED,
)
from provenance.verify._identity import _c2pa_signer, _identities


@dataclass(frozen=True, slots=True)
class C2paFindings:
    """What step 3 read from the C2PA manifest store.

    Attributes:
        report: c2pa's report, or None when the file has no store.
        evidence: The C2PA evidence, or None when the file has no store.
        active_manifest: The active manifest's label (a readable store only).
        lineage: The ingredients' lineage (a readable store only).
        statement: Our signed statement assertion, when present and well formed.
        signer: The claim signer's name.
        identities: The CAWG identity assertions (step 5b judges them).
    """

    report: C2paReport | None
    evidence: Evidence | None
    active_manifest: str | None = None
    lineage: tuple[LineageStep, ...] = ()
    statement: Statement | None = None
    signer: str | None = None
    identities: tuple[Identity, ...] = ()


def c2pa_findings(
    report: C2paReport | None,
    policy: TrustPolicy,
    *,
    essence: str,
    in_inventory: bool,
    rendering: tuple[Finding, ...],
    statement: Statement | None = None,
) -> C2paFindings:
    """The C2PA evidence of a file, with what a readable store names.

    A broken hard binding over intact image data (the signed statement's essence,
    or with no statement an inventory asset's: ``in_inventory``) is a metadata
    change (3b). ``statement``: the store's signed statement when the caller has
    parsed it from this ``report`` already (else it is parsed here).
    """
    c2pa = _c2pa_evidence(report, policy)
    if report is None or report.error is not None:
        return C2paFindings(report, c2pa)
    if statement is None:
        statement = _statement_from_c2pa(report)
    # 3b. A broken hard binding over intact image data is a metadata change.
    if c2pa is not None and c2pa.status is Status.TAMPERED:
        c2pa = _binding_evidence(
            c2pa, report, statement, essence, in_inventory, rendering=rendering
        )
    return C2paFindings(
        report,
        c2pa,
        active_manifest=report.active_manifest,
        lineage=lineage_from_store(report.store, active=statement),
        statement=statement,
        signer=_c2pa_signer(report),
        identities=_identities(report),
    )


def _c2pa_trusted(report: C2paReport) -> bool:
    """c2pa validated the store against the anchors and reported no failure at all."""
    return report.error is None and report.state == "Trusted" and not report.failure_codes


def _c2pa_evidence(report: C2paReport | None, policy: TrustPolicy) -> Evidence | None:
    """The C2PA evidence for c2pa's report: its status mapped from the failure codes."""
    if report is None:
        return None
    if report.error_kind == "RemoteManifest":
        where = f" at {report.remote_url}" if report.remote_url else ""
        return Evidence(
            EvidenceSource.C2PA,
            Status.REMOTE_MANIFEST,
            f"provenance declared in a remote manifest{where}; not fetched "
            "(verification is offline)",
            (C2PA_REMOTE_NOT_FETCHED,),
        )
    if report.error is not None:
        return _c2pa_error_evidence(report, report.error, policy)
    status = c2pa_status(
        report.state,
        report.failure_codes,
        has_anchors=policy.has_anchors,
        success_codes=report.success_codes,
    )
    detail = {
        Status.TRUSTED: "manifest valid; signer chains to a configured trust anchor",
        Status.VALID_UNTRUSTED: "manifest valid; signer not anchored"
        + ("" if policy.has_anchors else " (no trust anchors configured)"),
        Status.TAMPERED: "asset or signed assertions changed after signing",
        Status.INVALID_SIGNATURE: "claim signature or signing credential invalid",
        Status.INVALID_MANIFEST: "manifest malformed",
        Status.UNSUPPORTED: "manifest uses an algorithm or version this verifier cannot check",
        Status.REMOTE_MANIFEST: "part of the manifest is remote; not fetched",
    }[status]
    codes = tuple(report.failure_codes)
    if status is Status.VALID_UNTRUSTED and UNTRUSTED_CODE not in codes and not policy.has_anchors:
        codes = (*codes, UNTRUSTED_CODE)
    # What an ingredient's validator recorded is reported, but is not this asset's
    # status. Trust codes are left out: they say how the signer's own c2pa was
    # configured (no anchors when signing), not what happened to the data.
    recorded = tuple(
        c for c in report.ingredient_codes if c not in codes and c not in TRUST_ONLY_CODES
    )
    if recorded:
        detail += "; an ingredient was recorded with failures: " + ", ".join(recorded)
    return Evidence(EvidenceSource.C2PA, status, detail, (*codes, *recorded))


def _c2pa_error_evidence(report: C2paReport, error: str, policy: TrustPolicy) -> Evidence:
    """The evidence of a manifest present that c2pa raised on while reading it."""
    kind = report.error_kind or "Other"
    status = c2pa_status(
        None,
        (),
        has_anchors=policy.has_anchors,
        error_kind=kind,
        error_message=error,
    )
    what = {
        Status.UNSUPPORTED: "manifest present but not supported by this verifier",
        Status.INVALID_SIGNATURE: "manifest present but its signature is invalid",
    }.get(status, "manifest present but malformed")
    return Evidence(EvidenceSource.C2PA, status, f"{what}: {error}", (f"c2pa.error.{kind}",))


def _binding_evidence(
    c2pa: Evidence,
    report: C2paReport,
    statement: Statement | None,
    essence: str,
    in_inventory: bool,
    *,
    rendering: tuple[Finding, ...] = (),
) -> Evidence:
    """Tell a metadata change from a pixel change when the hard binding failed.

    Only when the binding is all that failed (the claim signature held, so the
    statement assertion is the one signed): image data equal to the signed
    essence, or with no statement to an inventory asset's, is ``known_stripped``,
    unless a block that changes the rendering, or trailing data, is present
    (``rendering``): then it is ``tampered``.
    """
    if not metadata_only(report.failure_codes):
        return c2pa
    if statement is not None:
        if statement.essence_sha256 != essence:
            detail = "image data changed after signing (essence differs from the signed statement)"
            return Evidence(
                EvidenceSource.C2PA, Status.TAMPERED, detail, (*c2pa.codes, C2PA_ESSENCE_MISMATCH)
            )
        where = "the signed statement's"
    elif in_inventory:
        where = "an inventory asset's"
    else:
        return c2pa
    if rendering:
        changed = _rendering_evidence(EvidenceSource.C2PA, rendering, where)
        return Evidence(
            EvidenceSource.C2PA, Status.TAMPERED, changed.detail, (*c2pa.codes, *changed.codes)
        )
    detail = (
        f"metadata removed or changed after signing; image data intact (essence equals {where})"
    )
    return Evidence(
        EvidenceSource.C2PA, Status.KNOWN_STRIPPED, detail, (*c2pa.codes, C2PA_METADATA_ONLY)
    )


def _rendering_evidence(
    source: EvidenceSource, rendering: tuple[Finding, ...], where: str
) -> Evidence:
    """``tampered``: the essence equals ``where``, but the rendering or the file's end changed."""
    detail = f"essence equals {where}, but the file changed beyond metadata: " + "; ".join(
        f.detail for f in rendering
    )
    codes = tuple(dict.fromkeys(f.code for f in rendering))
    return Evidence(source, Status.TAMPERED, detail, codes)


def _statement_from_c2pa(report: C2paReport) -> Statement | None:
    """Our signed statement assertion in the active manifest, or None (absent or malformed)."""
    data = report.assertion(RECORD_ASSERTION_LABEL)
    if data is None:
        return None
    try:
        return statement_from_mapping(data)
    except RecordError:
        return None


def _action_source_types(report: C2paReport | None) -> tuple[str, ...]:
    """The ``digitalSourceType`` URIs of the active manifest's ``c2pa.actions*``."""
    if report is None or report.error is not None:
        return ()
    found: list[str] = []
    for _, data in report.assertions("c2pa.actions"):
        actions = data.get("actions") if isinstance(data, Mapping) else None
        for action in actions if isinstance(actions, list) else []:
            uri = action.get("digitalSourceType") if isinstance(action, Mapping) else None
            if isinstance(uri, str):
                found.append(uri)
    return tuple(found)
