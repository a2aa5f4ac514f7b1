"""Step 5: one status from what each source said, and the verdict it becomes.

:class:`Draft` is the verdict being built: each step of
:func:`provenance.verify.verify_bytes` adds its evidence and codes to it and
may change the status; :meth:`Draft.verdict` freezes it into a
:class:`~provenance._core.types.Verdict`. The mapping of statuses itself is
pure and lives in :mod:`provenance._core.verdicts` (``combine``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from provenance._core.containers.rendering import BAD_CRC, Finding
from provenance._core.statement import Statement
from provenance._core.types import (
    CopyLocation,
    Evidence,
    EvidenceSource,
    Identity,
    IdentityState,
    Status,
    Verdict,
)
from provenance._core.verdicts import combine
from provenance.verify._c2pa import C2paFindings
from provenance.verify._codes import C2PA_MISSING, IDENTITY_INVALID, KNOWN_STRIPPED

if TYPE_CHECKING:
    from provenance.inventory import AssetEntry

_VOUCHED = (Status.TRUSTED, Status.VALID_UNTRUSTED)


@dataclass(slots=True)
class Draft:
    """The verdict of one file while the steps build it.

    Mutable on purpose, unlike the results: one ``verify_bytes`` call owns one,
    and nothing else ever sees it.

    Attributes:
        evidence: What each source said, in the order the steps heard it.
        codes: Every code so far: the evidence's and the verdict's own.
        status: The status so far.
        statement: The signed statement the verdict names (C2PA's, else the XMP's).
        signer: Who signed (C2PA's claim signer, else the XMP's).
        asset: The inventory asset the verdict names instead of the statement's
            (a stripped, relabelled or duplicated copy of it).
        distance: Bits to that asset's perceptual hash (step 7).
        location: Where that asset is inside the image (step 8).
    """

    evidence: list[Evidence] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    status: Status = Status.NO_PROVENANCE
    statement: Statement | None = None
    signer: str | None = None
    asset: AssetEntry | None = None
    distance: int | None = None
    location: CopyLocation | None = None

    def add(self, item: Evidence | None) -> None:
        """Keep one piece of evidence, and its codes (nothing for None)."""
        if item is not None:
            self.evidence.append(item)
            self.codes.extend(item.codes)

    def verdict(self, *, name: str, sha: str, essence: str, c2pa: C2paFindings) -> Verdict:
        """The finished verdict, naming the asset a step found, else the signed statement's."""
        named = self.asset if self.asset is not None else self.statement
        report = c2pa.report
        return Verdict(
            path=name,
            status=self.status,
            failure_codes=tuple(sorted(set(self.codes))),
            active_manifest=c2pa.active_manifest,
            record=named.record if named is not None else None,
            signer=self.signer,
            asset_id=named.asset_id if named is not None else None,
            sha256_hex=sha,
            essence_sha256_hex=essence,
            evidence=tuple(self.evidence),
            lineage=c2pa.lineage,
            perceptual_distance=self.distance,
            location=self.location,
            identities=c2pa.identities,
            remote_url=report.remote_url if report is not None else None,
        )


def combine_sources(
    draft: Draft,
    c2pa: Evidence | None,
    signed_xmp: Evidence | None,
    rendering: tuple[Finding, ...],
) -> None:
    """5. One status from C2PA and the signed XMP; 5a. a container neither vouches for."""
    c2pa_says = c2pa.status if c2pa is not None else None
    xmp_says = signed_xmp.status if signed_xmp is not None else None
    draft.status = combine(c2pa_says, xmp_says)
    if xmp_says is not None and c2pa_says in (None, Status.NO_PROVENANCE):
        draft.codes.append(C2PA_MISSING)
    if draft.status is Status.KNOWN_STRIPPED:
        draft.codes.append(KNOWN_STRIPPED)
    # 5a. A bad ancillary CRC: not an error (decoders skip it), but a byte changed
    # after the file was written, even where the hard binding does not look (the
    # manifest chunk's own CRC), so a signature alone does not vouch for the file.
    # Without C2PA, the signed XMP vouches for the essence only: a rendering block
    # or trailing data around it is not vouched for either.
    escalate = draft.status in _VOUCHED
    xmp_only = escalate and c2pa_says in (None, Status.NO_PROVENANCE)
    unvouched = [f for f in rendering if f.code == BAD_CRC or xmp_only]
    seen = {f.code for f in unvouched}
    if unvouched and not any(set(e.codes) & seen for e in draft.evidence):
        draft.add(
            Evidence(
                EvidenceSource.CONTAINER,
                Status.TAMPERED if escalate else Status.NO_PROVENANCE,
                "; ".join(f.detail for f in unvouched),
                tuple(dict.fromkeys(f.code for f in unvouched)),
            )
        )
        if escalate:
            draft.status = Status.TAMPERED


def invalid_identities(draft: Draft, identities: tuple[Identity, ...]) -> None:
    """5b. CAWG identity assertions: an invalid one is not tampering."""
    for identity in identities:
        if identity.state is not IdentityState.INVALID:
            continue
        who = identity.actor or "an unnamed actor"
        failed = ", ".join(c for c in identity.codes if c.startswith("cawg.")) or "no code"
        draft.add(
            Evidence(
                EvidenceSource.IDENTITY,
                Status.INVALID_IDENTITY,
                f"identity assertion {identity.label} of {who} does not hold ({failed})",
                (IDENTITY_INVALID,),
            )
        )
        if draft.status in _VOUCHED:
            draft.status = Status.INVALID_IDENTITY
