"""The ``verify`` verb: a typed verdict for any asset, offline.

Steps for one asset:

1. Read the file once; detect the format; locate metadata blocks.
2. Hash the bytes and the essence (coded image data only).
3. Read and validate the C2PA manifest store with the configured anchors (no
   remote manifest, no OCSP).
4. Check the signed XMP: its detached signature, its chain against the same
   anchors, and that the essence it signed is the essence of these bytes.
5. Combine both into one :class:`~provenance.types.Verdict`, keeping what each
   source said as evidence and every raw code.
6. With an inventory: a file with no provenance whose essence hash is a known
   asset is ``known_stripped``, with that asset's record.
7. Still nothing, and the inventory holds perceptual hashes: decode the pixels
   (JPEG in draft mode), look the default perceptual hash up within
   :data:`provenance.phash.MATCH_THRESHOLD` bits, and confirm the nearest
   candidates with the second check the asset's descriptor allows (mid band,
   layout and colour: :func:`provenance.phash.confirmation`). A confirmed match
   of a synthetic asset is ``synthetic_duplicate``, naming that asset, its record
   and the distance.
8. Still nothing, and the inventory holds local features (``partial=True``, the
   default): look for a stored asset *inside* the image (a screenshot, a banner,
   a collage, a rotated or off-centre crop; :mod:`provenance.keypoints`). The
   query's keypoints vote for stored assets; the best-voted
   :data:`PARTIAL_CANDIDATES` are located one by one by a RANSAC similarity,
   within ``partial_budget_s`` (the first candidate is always checked). A
   confirmed placement of a synthetic asset is ``synthetic_duplicate`` with its
   :class:`~provenance.types.CopyLocation` (box, inliers, transform).

A missing manifest is a verdict (``no_provenance``), not an exception; a file
that cannot be read at all raises.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from provenance import containers, keypoints, phash, xmp
from provenance.c2pa_adapter import C2paReport, read_c2pa
from provenance.errors import ProvenanceError, RecordError, SignatureError
from provenance.fingerprint import decode_for_hashing
from provenance.hashing import hash_ranges, sha256_hex
from provenance.inventory import AssetEntry, Inventory, PerceptualMatch
from provenance.keys import TrustPolicy, verify_detached
from provenance.lineage import LineageStep, lineage_from_store
from provenance.reading import read_input
from provenance.statement import (
    RECORD_ASSERTION_LABEL,
    Statement,
    parse_statement,
    statement_from_mapping,
)
from provenance.types import CopyLocation, Evidence, EvidenceSource, Status, Verdict
from provenance.verdicts import UNTRUSTED_CODE, c2pa_status, combine

__all__ = ["verify", "verify_bytes"]

# Our own codes, in the style of c2pa's, so one list can hold both.
XMP_SIGNATURE_INVALID = "provenance.xmp.signature.invalid"
XMP_SIGNER_UNTRUSTED = "provenance.xmp.signingCredential.untrusted"
XMP_ESSENCE_MISMATCH = "provenance.xmp.essence.mismatch"
XMP_FIELD_MISMATCH = "provenance.xmp.field.mismatch"
XMP_STATEMENT_INVALID = "provenance.xmp.statement.invalid"
XMP_UNREADABLE = "provenance.xmp.unreadable"
C2PA_MISSING = "provenance.c2pa.missing"
C2PA_REMOTE_NOT_FETCHED = "provenance.c2pa.remoteManifest.notFetched"
KNOWN_STRIPPED = "provenance.metadata.stripped"
INVENTORY_ESSENCE_MATCH = "provenance.inventory.essence.match"
PERCEPTUAL_MATCH = "provenance.inventory.perceptual.match"
PERCEPTUAL_UNCONFIRMED = "provenance.inventory.perceptual.unconfirmed"
PERCEPTUAL_NOT_SYNTHETIC = "provenance.inventory.perceptual.notSynthetic"
PERCEPTUAL_UNDECODABLE = "provenance.inventory.perceptual.undecodable"
PARTIAL_MATCH = "provenance.inventory.keypoints.match"
PARTIAL_UNCONFIRMED = "provenance.inventory.keypoints.unconfirmed"
PARTIAL_NOT_SYNTHETIC = "provenance.inventory.keypoints.notSynthetic"
# Candidates confirmed one by one, nearest first (no decoding: from the query's features).
_CANDIDATES = 5

PARTIAL_CANDIDATES = 8
"""Best-voted assets the partial-copy search locates, at most, per query."""

PARTIAL_BUDGET_S = 0.15
"""Default time for the partial-copy search's candidate checks, per query (seconds)."""


def verify(
    path: str | os.PathLike[str],
    *,
    trust: TrustPolicy | None = None,
    inventory: Inventory | None = None,
    now: datetime | None = None,
    partial: bool = True,
    partial_budget_s: float = PARTIAL_BUDGET_S,
) -> Verdict:
    """Verify the provenance of one image file.

    Args:
        path: A JPEG, PNG or WebP file.
        trust: The trust anchors; without them a good signature is at best
            ``valid_untrusted``.
        inventory: Look the essence hash up here: a file without provenance
            whose essence is a known asset is ``known_stripped``.
        now: The time certificates are checked at (default: now).
        partial: When the perceptual hash finds nothing, also look for a known
            asset that is only part of the image, rotated or cropped off-centre
            (local features; step 8). False skips it (it costs a decode at up
            to 1024 pixels and tens of milliseconds).
        partial_budget_s: Stop locating further partial-copy candidates after
            this many seconds (the best-voted one is always checked).

    Returns:
        The verdict; ``no_provenance`` when the file carries none.

    Raises:
        ProvenanceError: The file cannot be read at all (missing, a directory,
            empty, not an image, structurally corrupt).
    """
    data = read_input(path)
    try:
        return verify_bytes(
            data,
            name=os.fspath(path),
            trust=trust,
            inventory=inventory,
            now=now,
            partial=partial,
            partial_budget_s=partial_budget_s,
        )
    except ProvenanceError as exc:
        raise exc.with_path(path) from exc.__cause__


def verify_bytes(
    data: bytes,
    *,
    name: str = "<bytes>",
    trust: TrustPolicy | None = None,
    inventory: Inventory | None = None,
    now: datetime | None = None,
    partial: bool = True,
    partial_budget_s: float = PARTIAL_BUDGET_S,
) -> Verdict:
    """Verify an image held in memory; see :func:`verify`."""
    policy = trust if trust is not None else TrustPolicy.no_anchors()
    moment = now or datetime.now(timezone.utc)
    # 1-2. Format, blocks, hashes.
    fmt = containers.detect_format(data)
    info = containers.inspect(data)
    sha = sha256_hex(data)
    essence = hash_ranges(data, info.essence_ranges)
    evidence: list[Evidence] = []
    codes: list[str] = []
    statement: Statement | None = None
    signer: str | None = None
    # 3. C2PA.
    report = read_c2pa(data, fmt.mime, policy)
    c2pa = _c2pa_evidence(report, policy)
    active = None
    lineage: tuple[LineageStep, ...] = ()
    if c2pa is not None:
        evidence.append(c2pa)
        codes.extend(c2pa.codes)
    if report is not None and report.error is None:
        active = report.active_manifest
        lineage = lineage_from_store(report.store)
        statement = _statement_from_c2pa(report)
        signer = _c2pa_signer(report)
    # 4. Signed XMP.
    x_evidence, x_statement, x_signer = _xmp_evidence(info.xmp, essence, policy, moment)
    if x_evidence is not None:
        evidence.append(x_evidence)
        codes.extend(x_evidence.codes)
        statement = statement or x_statement
        signer = signer or x_signer
    # 5. Combine.
    c2pa_says = c2pa.status if c2pa is not None else None
    xmp_says = x_evidence.status if x_evidence is not None else None
    status = combine(c2pa_says, xmp_says)
    if xmp_says is not None and c2pa_says in (None, Status.NO_PROVENANCE):
        codes.append(C2PA_MISSING)
    # 6. The inventory recognises copies whose provenance was stripped.
    known = inventory.find_by_essence(essence) if inventory is not None else None
    if known is not None:
        if status is Status.NO_PROVENANCE:
            status = Status.KNOWN_STRIPPED
            codes.append(KNOWN_STRIPPED)
            statement = None
        evidence.append(
            Evidence(
                EvidenceSource.INVENTORY,
                Status.KNOWN_STRIPPED,
                f"essence hash matches inventory asset {known.asset_id}",
                (INVENTORY_ESSENCE_MATCH,),
            )
        )
    # 7. ... and copies that were also resized, re-encoded, cropped or flipped.
    duplicate: PerceptualMatch | None = None
    if inventory is not None and known is None and status is Status.NO_PROVENANCE:
        duplicate, found = _perceptual(data, inventory)
        evidence.extend(found)
        for item in found:
            codes.extend(item.codes)
        if duplicate is not None:
            status = Status.SYNTHETIC_DUPLICATE
            statement = None
    # 8. ... and copies that are only part of the image, rotated or cropped off-centre.
    located: tuple[AssetEntry, CopyLocation] | None = None
    if (
        partial
        and inventory is not None
        and duplicate is None
        and known is None
        and status is Status.NO_PROVENANCE
        and PERCEPTUAL_UNDECODABLE not in codes
    ):
        located, found = _partial(data, inventory, budget_s=partial_budget_s)
        evidence.extend(found)
        for item in found:
            codes.extend(item.codes)
        if located is not None:
            status = Status.SYNTHETIC_DUPLICATE
            statement = None
    record = statement.record if statement is not None else None
    asset_id = statement.asset_id if statement is not None else None
    if status is Status.KNOWN_STRIPPED and known is not None:
        record, asset_id = known.record, known.asset_id
    if duplicate is not None:
        record, asset_id = duplicate.asset.record, duplicate.asset.asset_id
    if located is not None:
        record, asset_id = located[0].record, located[0].asset_id
    return Verdict(
        path=name,
        status=status,
        failure_codes=tuple(sorted(set(codes))),
        active_manifest=active,
        record=record,
        signer=signer,
        asset_id=asset_id,
        sha256_hex=sha,
        essence_sha256_hex=essence,
        evidence=tuple(evidence),
        lineage=lineage,
        perceptual_distance=duplicate.distance if duplicate is not None else None,
        location=located[1] if located is not None else None,
    )


def _partial(
    data: bytes, inventory: Inventory, *, budget_s: float
) -> tuple[tuple[AssetEntry, CopyLocation] | None, list[Evidence]]:
    """A synthetic asset found inside the image by local features, and what was seen."""
    started = time.perf_counter()
    index = inventory.keypoint_index(keypoints.SCHEME)
    if len(index) == 0:
        return None, []  # nothing to compare with: do not decode
    try:
        image, _ = decode_for_hashing(data, fit_side=keypoints.QUERY_SIDE)
        query = keypoints.query_features(image)
    except ProvenanceError:
        return None, []  # step 7 has said why the pixels cannot be decoded
    seen: list[Evidence] = []
    voted = index.candidates(query, k=PARTIAL_CANDIDATES)
    for position, (entry, reference) in enumerate(
        inventory.keypoint_features([key for key, _ in voted])
    ):
        if position and time.perf_counter() - started > budget_s:
            break
        placement = keypoints.locate(query, reference)
        if placement is None or placement.inliers < keypoints.MIN_INLIERS // 2:
            continue
        where = f"inventory asset {entry.asset_id} ({keypoints.SCHEME}): {placement.describe()}"
        if not placement.confirmed:
            seen.append(
                Evidence(
                    EvidenceSource.INVENTORY,
                    Status.NO_PROVENANCE,
                    f"partial-copy candidate {where}; not confirmed "
                    f"({'; '.join(placement.failures)})",
                    (PARTIAL_UNCONFIRMED,),
                )
            )
            continue
        if not entry.is_synthetic:
            seen.append(
                Evidence(
                    EvidenceSource.INVENTORY,
                    Status.NO_PROVENANCE,
                    f"partial copy of {where}, whose record does not declare AI generation",
                    (PARTIAL_NOT_SYNTHETIC,),
                )
            )
            continue
        seen.append(
            Evidence(
                EvidenceSource.INVENTORY,
                Status.SYNTHETIC_DUPLICATE,
                f"partial copy of {where}",
                (PARTIAL_MATCH,),
            )
        )
        location = CopyLocation(
            box=placement.box,
            inliers=placement.inliers,
            matches=placement.matches,
            transform=placement.transform,
            scale=placement.scale,
            rotation_degrees=placement.rotation_degrees,
            scheme=keypoints.SCHEME,
        )
        return (entry, location), seen
    return None, seen


def _perceptual(data: bytes, inventory: Inventory) -> tuple[PerceptualMatch | None, list[Evidence]]:
    """The confirmed perceptual match of a synthetic asset, and what was seen on the way."""
    if len(inventory.perceptual_index(phash.SCHEME)) == 0:
        return None, []  # nothing to compare with: do not decode
    try:
        image, _ = decode_for_hashing(data)
        features = phash.query_features([image])[0]
    except ProvenanceError as exc:
        detail = f"pixels could not be decoded; perceptual check skipped ({exc.message})"
        return None, [
            Evidence(
                EvidenceSource.INVENTORY, Status.NO_PROVENANCE, detail, (PERCEPTUAL_UNDECODABLE,)
            )
        ]
    seen: list[Evidence] = []
    for match, row in _candidates(features, inventory):
        asset = match.asset
        where = (
            f"inventory asset {asset.asset_id} ({phash.SCHEME}, {match.distance} of "
            f"{phash.WORDS * 64} bits, threshold {phash.MATCH_THRESHOLD}, variant {match.variant}, "
            f"query {features.variants[row]})"
        )
        try:
            second = (
                phash.confirmation(features, row, match.descriptor, variant=match.variant)
                if match.descriptor
                else None
            )
        except ValueError:
            second = None  # a descriptor of another scheme or version: cannot confirm
        if second is None or not second.confirmed:
            why = "no descriptor" if second is None else "; ".join(second.failures)
            seen.append(
                Evidence(
                    EvidenceSource.INVENTORY,
                    Status.NO_PROVENANCE,
                    f"perceptual candidate {where} not confirmed by the second check ({why})",
                    (PERCEPTUAL_UNCONFIRMED,),
                )
            )
            continue
        if not asset.is_synthetic:
            seen.append(
                Evidence(
                    EvidenceSource.INVENTORY,
                    Status.NO_PROVENANCE,
                    f"perceptual match of {where}, whose record does not declare AI generation",
                    (PERCEPTUAL_NOT_SYNTHETIC,),
                )
            )
            continue
        seen.append(
            Evidence(
                EvidenceSource.INVENTORY,
                Status.SYNTHETIC_DUPLICATE,
                f"perceptual match of {where}, confirmed by the descriptor ({second.describe()})",
                (PERCEPTUAL_MATCH,),
            )
        )
        return match, seen
    return None, seen


def _candidates(
    features: phash.QueryFeatures, inventory: Inventory
) -> list[tuple[PerceptualMatch, int]]:
    """Assets near any query hash (``phash.QUERY_VARIANTS``), nearest first, once each.

    Each comes with the query row it was nearest to, whose mid band confirms it.
    """
    best: dict[str, tuple[PerceptualMatch, int]] = {}
    for row, words in enumerate(features.words):
        for match in inventory.find_perceptual(
            words, scheme=phash.SCHEME, max_distance=phash.MATCH_THRESHOLD, k=_CANDIDATES
        ):
            current = best.get(match.asset.asset_id)
            if current is None or match.distance < current[0].distance:
                best[match.asset.asset_id] = (match, row)
    ranked = sorted(best.values(), key=lambda item: item[0].distance)
    return ranked[:_CANDIDATES]


def _c2pa_evidence(report: C2paReport | None, policy: TrustPolicy) -> Evidence | None:
    if report is None:
        return None
    if report.error_kind == "RemoteManifest":
        where = f" at {report.remote_url}" if report.remote_url else ""
        return Evidence(
            EvidenceSource.C2PA,
            Status.NO_PROVENANCE,
            f"only a remote manifest{where}; not fetched (verification is offline)",
            (C2PA_REMOTE_NOT_FETCHED,),
        )
    if report.error is not None:
        status = c2pa_status(None, (), has_anchors=policy.has_anchors, error_kind=report.error_kind)
        return Evidence(
            EvidenceSource.C2PA,
            status,
            f"manifest present but unreadable: {report.error}",
            (f"c2pa.error.{report.error_kind}",),
        )
    status = c2pa_status(report.state, report.failure_codes, has_anchors=policy.has_anchors)
    detail = {
        Status.TRUSTED: "manifest valid; signer chains to a configured trust anchor",
        Status.VALID_UNTRUSTED: "manifest valid; signer not anchored"
        + ("" if policy.has_anchors else " (no trust anchors configured)"),
        Status.TAMPERED: "asset or manifest changed after signing",
        Status.INVALID_SIGNATURE: "claim signature or signing credential invalid",
    }[status]
    codes = tuple(report.failure_codes)
    if status is Status.VALID_UNTRUSTED and UNTRUSTED_CODE not in codes and not policy.has_anchors:
        codes = (*codes, UNTRUSTED_CODE)
    return Evidence(EvidenceSource.C2PA, status, detail, codes)


def _statement_from_c2pa(report: C2paReport) -> Statement | None:
    data = report.assertion(RECORD_ASSERTION_LABEL)
    if data is None:
        return None
    try:
        return statement_from_mapping(data)
    except RecordError:
        return None


def _c2pa_signer(report: C2paReport) -> str | None:
    manifest = report.manifest or {}
    info = manifest.get("signature_info")
    if not isinstance(info, Mapping):
        return None
    parts = [f"CN={info['common_name']}"] if info.get("common_name") else []
    if info.get("issuer"):
        parts.append(f"O={info['issuer']}")
    return ",".join(parts) or None


def _xmp_evidence(
    packet: bytes | None, essence: str, policy: TrustPolicy, moment: datetime
) -> tuple[Evidence | None, Statement | None, str | None]:
    if packet is None:
        return None, None, None
    try:
        prov = xmp.parse_packet(packet)
    except ProvenanceError as exc:
        # Unreadable XMP is reported but proves nothing either way.
        return (
            Evidence(EvidenceSource.XMP, Status.NO_PROVENANCE, exc.message, (XMP_UNREADABLE,)),
            None,
            None,
        )
    if prov is None:
        return None, None, None
    statement = parse_statement(prov.statement)
    if statement is None:
        detail = "signed statement in XMP is malformed"
        return (
            Evidence(EvidenceSource.XMP, Status.TAMPERED, detail, (XMP_STATEMENT_INVALID,)),
            None,
            None,
        )
    try:
        chain_der = tuple(base64.b64decode(c, validate=True) for c in prov.certificate_chain)
        signature = base64.b64decode(prov.signature, validate=True)
        chain = verify_detached(
            chain_der, prov.signature_algorithm, signature, prov.statement.encode("utf-8")
        )
    except (binascii.Error, ValueError, SignatureError) as exc:
        detail = f"XMP signature does not verify: {getattr(exc, 'message', 'bad encoding')}"
        return (
            Evidence(
                EvidenceSource.XMP, Status.INVALID_SIGNATURE, detail, (XMP_SIGNATURE_INVALID,)
            ),
            statement,
            None,
        )
    signer = chain[0].subject.rfc4514_string()
    mismatched = _mismatched_fields(prov, statement)
    if statement.essence_sha256 != essence:
        detail = "image data changed after signing (essence hash differs from the signed one)"
        return (
            Evidence(EvidenceSource.XMP, Status.TAMPERED, detail, (XMP_ESSENCE_MISMATCH,)),
            statement,
            signer,
        )
    if mismatched:
        detail = "XMP fields differ from the signed statement: " + ", ".join(mismatched)
        return (
            Evidence(EvidenceSource.XMP, Status.TAMPERED, detail, (XMP_FIELD_MISMATCH,)),
            statement,
            signer,
        )
    if policy.chain_is_trusted(chain, at=moment):
        detail = "signed XMP valid; signer chains to a configured trust anchor"
        return Evidence(EvidenceSource.XMP, Status.TRUSTED, detail), statement, signer
    detail = "signed XMP valid; signer not anchored"
    return (
        Evidence(EvidenceSource.XMP, Status.VALID_UNTRUSTED, detail, (XMP_SIGNER_UNTRUSTED,)),
        statement,
        signer,
    )


def _mismatched_fields(prov: xmp.XmpProvenance, statement: Statement) -> list[str]:
    """Plain XMP fields a storefront reads must say what the signature covers."""
    record = statement.record
    expected: dict[str, Any] = {
        "Iptc4xmpExt:DigitalSourceType": (prov.digital_source_type, record.digital_source_type.uri),
        "Iptc4xmpExt:AISystemUsed": (prov.ai_system, record.model),
        "Iptc4xmpExt:AISystemVersionUsed": (prov.ai_system_version, record.model_version),
        "Iptc4xmpExt:AIPromptInformation": (prov.ai_prompt, record.prompt),
        "provn:EssenceSHA256": (prov.essence_sha256, statement.essence_sha256),
        "provn:AssetID": (prov.asset_id, statement.asset_id),
    }
    return [name for name, (seen, signed) in expected.items() if seen != signed]
