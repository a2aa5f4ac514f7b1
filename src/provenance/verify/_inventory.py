"""Steps 7-8: what the inventory's similarity search finds (docs/verdicts.md).

Step 6 (the essence hash is a known asset) is :mod:`provenance.verify._essence`:
it needs neither numpy nor Pillow, which this module imports (issue 20).

7. Still nothing: the perceptual hash finds a resized, re-encoded, cropped or
   flipped copy, confirmed by the asset's descriptor (``synthetic_duplicate``).
8. Still nothing: local features find a stored asset *inside* the image
   (``synthetic_duplicate`` with its location).

And :func:`layout_rendering_check`: a TIFF, DNG or HEIF judged on its essence
alone (no intact C2PA binding) shows the pixels of the inventory asset it names,
since what says how to decode the coded data (a TIFF's IFD entries) or which
image to show (a HEIF's primary item, its item-property associations) is outside
the essence.

Each step adds its evidence to the :class:`~provenance.verify._combine.Draft`.
Asks the inventory and decodes pixels; never reads a file.
"""

from __future__ import annotations

import time

from provenance._core import keypoints, phash
from provenance._core.containers.rendering import RENDERING_CHANGED
from provenance._core.types import CopyLocation, Evidence, EvidenceSource, Status
from provenance.errors import ProvenanceError
from provenance.fingerprint import decode_for_hashing
from provenance.inventory import AssetEntry, Inventory, PerceptualMatch
from provenance.verify._codes import (
    KNOWN_STRIPPED,
    PARTIAL_CANDIDATES,
    PARTIAL_MATCH,
    PARTIAL_NOT_SYNTHETIC,
    PARTIAL_UNCONFIRMED,
    PERCEPTUAL_MATCH,
    PERCEPTUAL_NOT_SYNTHETIC,
    PERCEPTUAL_UNCONFIRMED,
    PERCEPTUAL_UNDECODABLE,
)
from provenance.verify._combine import Draft

# Candidates confirmed one by one, nearest first (no decoding: from the query's features).
_CANDIDATES = 5


def perceptual_match(draft: Draft, data: bytes, inventory: Inventory) -> bool:
    """7. A resized, re-encoded, cropped or flipped copy of a synthetic asset; whether found."""
    duplicate, found = _perceptual(data, inventory)
    for item in found:
        draft.add(item)
    if duplicate is None:
        return False
    draft.status = Status.SYNTHETIC_DUPLICATE
    draft.statement = None
    draft.asset = duplicate.asset
    draft.distance = duplicate.distance
    return True


def partial_match(draft: Draft, data: bytes, inventory: Inventory, *, budget_s: float) -> None:
    """8. A synthetic asset that is only part of the image, rotated or cropped off-centre."""
    located, found = _partial(data, inventory, budget_s=budget_s)
    for item in found:
        draft.add(item)
    if located is not None:
        draft.status = Status.SYNTHETIC_DUPLICATE
        draft.statement = None
        draft.asset, draft.location = located


def layout_rendering_check(draft: Draft, data: bytes, inventory: Inventory, asset_id: str) -> None:
    """A TIFF/DNG/HEIF whose essence is asset ``asset_id``'s shows that asset's pixels.

    The essence of a TIFF is its strips, and the IFD entries that say how to
    decode them (size, bits and samples per pixel, photometric interpretation,
    compression, predictor ...) are outside it; a HEIF's essence is its coded
    items and their geometry, and which item is shown (``pitm``) and which
    properties go with it (``ipma``) are outside it. So an equal essence does not
    show an unchanged image. The asset's stored perceptual hash does: the decoded
    pixels must be a confirmed match of it, else the file is ``tampered``
    (``provenance.metadata.renderingChanged``). Nothing is decoded when the
    inventory holds no perceptual hashes; pixels that cannot be decoded (as at
    signing, which then stored no hash) leave the verdict as it is, with
    ``provenance.inventory.perceptual.undecodable``.
    """
    if inventory.searched_perceptual_rows(phash.SCHEME) == 0:
        return
    try:
        image, _ = decode_for_hashing(data)
        features = phash.query_features([image])[0]
    except ProvenanceError as exc:
        # Over the pixel limit, or coded data no decoder reads: such an asset has no
        # perceptual hash either (sign stores none), so nothing to compare; say so.
        detail = f"pixels could not be decoded; decoding layout not checked ({exc.message})"
        draft.add(
            Evidence(
                EvidenceSource.INVENTORY, Status.NO_PROVENANCE, detail, (PERCEPTUAL_UNDECODABLE,)
            )
        )
        return
    found = [
        _confirm_perceptual(features, match, row)
        for match, row in _candidates(features, inventory)
        if match.asset.asset_id == asset_id
    ]
    if any(e.codes in ((PERCEPTUAL_MATCH,), (PERCEPTUAL_NOT_SYNTHETIC,)) for e in found):
        return
    why = "they are not a confirmed perceptual match of it" if not found else found[0].detail
    detail = (
        "how the image decodes (a TIFF's tags, a HEIF's primary item) is outside the "
        f"essence, and the decoded pixels are not inventory asset {asset_id}'s: {why}"
    )
    # Not a metadata-only copy after all: the verdict's own code goes (the C2PA
    # evidence keeps its opinion, as for the blocks of containers.rendering).
    draft.codes = [code for code in draft.codes if code != KNOWN_STRIPPED]
    draft.add(Evidence(EvidenceSource.INVENTORY, Status.TAMPERED, detail, (RENDERING_CHANGED,)))
    draft.status = Status.TAMPERED


def _perceptual(data: bytes, inventory: Inventory) -> tuple[PerceptualMatch | None, list[Evidence]]:
    """The confirmed perceptual match of a synthetic asset, and what was seen on the way."""
    if inventory.searched_perceptual_rows(phash.SCHEME) == 0:
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
        judged = _confirm_perceptual(features, match, row)
        seen.append(judged)
        if judged.status is Status.SYNTHETIC_DUPLICATE:
            return match, seen
    return None, seen


def _confirm_perceptual(
    features: phash.QueryFeatures, match: PerceptualMatch, row: int
) -> Evidence:
    """One candidate after the second check: a match only when confirmed and synthetic."""
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
        return Evidence(
            EvidenceSource.INVENTORY,
            Status.NO_PROVENANCE,
            f"perceptual candidate {where} not confirmed by the second check ({why})",
            (PERCEPTUAL_UNCONFIRMED,),
        )
    if not asset.is_synthetic:
        return Evidence(
            EvidenceSource.INVENTORY,
            Status.NO_PROVENANCE,
            f"perceptual match of {where}, whose record does not declare AI generation",
            (PERCEPTUAL_NOT_SYNTHETIC,),
        )
    return Evidence(
        EvidenceSource.INVENTORY,
        Status.SYNTHETIC_DUPLICATE,
        f"perceptual match of {where}, confirmed by the descriptor ({second.describe()})",
        (PERCEPTUAL_MATCH,),
    )


def _candidates(
    features: phash.QueryFeatures, inventory: Inventory
) -> list[tuple[PerceptualMatch, int]]:
    """Assets near any query hash (``phash.QUERY_VARIANTS``), nearest first, once each.

    Each comes with the query row it was nearest to, whose mid band confirms it.
    One search of every query hash: exact on small inventories, the fleet index
    on large and server ones (``Inventory.find_perceptual_any``).
    """
    return inventory.find_perceptual_any(
        features.words,
        scheme=phash.SCHEME,
        max_distance=phash.MATCH_THRESHOLD,
        k=_CANDIDATES,
    )


def _partial(
    data: bytes, inventory: Inventory, *, budget_s: float
) -> tuple[tuple[AssetEntry, CopyLocation] | None, list[Evidence]]:
    """A synthetic asset found inside the image by local features, and what was seen.

    Two passes: the query's features, then (when they confirm nothing, and the
    time left covers what the first pass's features and votes took) its mirror
    image's, since ORB's descriptors are not mirror-invariant. ``budget_s``
    counts from the step's start, both passes included.
    """
    started = time.perf_counter()
    index = inventory.keypoint_index(keypoints.SCHEME)
    if len(index) == 0:
        return None, []  # nothing to compare with: do not decode
    try:
        image, _ = decode_for_hashing(data, fit_side=keypoints.QUERY_SIDE)
        searching = time.perf_counter()
        query = keypoints.query_features(image)
    except ProvenanceError:
        return None, []  # step 7 has said why the pixels cannot be decoded
    seen: list[Evidence] = []
    deadline = started + budget_s
    voted = index.candidates(query, k=PARTIAL_CANDIDATES)
    one_pass = time.perf_counter() - searching  # features and votes: what the mirror's cost
    located = _locate_voted(query, voted, inventory, seen, deadline=deadline)
    if located is None and time.perf_counter() + one_pass <= deadline:
        mirror = keypoints.query_features(image, mirrored=True)
        voted = index.candidates(mirror, k=PARTIAL_CANDIDATES)
        located = _locate_voted(mirror, voted, inventory, seen, deadline=deadline, mirrored=True)
    return located, seen


def _locate_voted(
    query: keypoints.LocalFeatures,
    voted: list[tuple[int, int]],
    inventory: Inventory,
    seen: list[Evidence],
    *,
    deadline: float,
    mirrored: bool = False,
) -> tuple[AssetEntry, CopyLocation] | None:
    """One pass of step 8: the first confirmed synthetic asset among the best-voted.

    They are located in order (the first always, the others until
    ``deadline``), each judged one added to ``seen``. ``mirrored``: ``query``
    is the mirror image's, and placements are mapped back into the query.
    """
    width = query.width * query.scale
    for position, (entry, reference) in enumerate(
        inventory.keypoint_features([key for key, _ in voted])
    ):
        if position and time.perf_counter() > deadline:
            break
        placement = keypoints.locate(query, reference)
        if placement is None or placement.inliers < keypoints.MIN_INLIERS // 2:
            continue
        if mirrored:
            placement = keypoints.mirror_placement(placement, width)
        judged = _confirm_placement(entry, placement)
        seen.append(judged)
        if judged.status is Status.SYNTHETIC_DUPLICATE:
            return entry, _location(placement)
    return None


def _confirm_placement(entry: AssetEntry, placement: keypoints.Placement) -> Evidence:
    """One located candidate: a match only when its placement is confirmed and it is synthetic."""
    where = f"inventory asset {entry.asset_id} ({keypoints.SCHEME}): {placement.describe()}"
    if not placement.confirmed:
        return Evidence(
            EvidenceSource.INVENTORY,
            Status.NO_PROVENANCE,
            f"partial-copy candidate {where}; not confirmed ({'; '.join(placement.failures)})",
            (PARTIAL_UNCONFIRMED,),
        )
    if not entry.is_synthetic:
        return Evidence(
            EvidenceSource.INVENTORY,
            Status.NO_PROVENANCE,
            f"partial copy of {where}, whose record does not declare AI generation",
            (PARTIAL_NOT_SYNTHETIC,),
        )
    return Evidence(
        EvidenceSource.INVENTORY,
        Status.SYNTHETIC_DUPLICATE,
        f"partial copy of {where}",
        (PARTIAL_MATCH,),
    )


def _location(placement: keypoints.Placement) -> CopyLocation:
    """Where a confirmed placement puts the asset inside the image."""
    return CopyLocation(
        box=placement.box,
        inliers=placement.inliers,
        matches=placement.matches,
        transform=placement.transform,
        scale=placement.scale,
        rotation_degrees=placement.rotation_degrees,
        scheme=keypoints.SCHEME,
        homography=placement.homography,
        hidden=placement.hidden,
        mirrored=placement.mirrored,
    )
