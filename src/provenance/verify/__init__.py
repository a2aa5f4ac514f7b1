"""The ``verify`` verb: a typed verdict for any asset, offline.

Steps for one asset:

1. Read the file once; detect the format; locate metadata blocks.
2. Hash the bytes and the essence (coded image data only).
3. Read and validate the C2PA manifest store with the configured anchors (no
   remote manifest, no OCSP).
4. Check the signed XMP: its detached signature, its chain against the same
   anchors, and that the essence it signed is the essence of these bytes.
5. Combine both into one :class:`~provenance._core.types.Verdict`, keeping what each
   source said as evidence and every raw code.
6. With an inventory: a file with no provenance whose essence hash is a known
   asset is ``known_stripped``, with that asset's record.
7. Still nothing, and the inventory holds perceptual hashes: decode the pixels
   (JPEG in draft mode), look the default perceptual hash up within
   :data:`provenance._core.phash.MATCH_THRESHOLD` bits, and confirm the nearest
   candidates with the second check the asset's descriptor allows (mid band,
   layout and colour: :func:`provenance._core.phash.confirmation`). A confirmed match
   of a synthetic asset is ``synthetic_duplicate``, naming that asset, its record
   and the distance.
8. Still nothing, and the inventory holds local features (``partial=True``, the
   default): look for a stored asset *inside* the image (a screenshot, a banner,
   a collage, a rotated or off-centre crop; :mod:`provenance._core.keypoints`). The
   query's keypoints vote for stored assets; the best-voted
   :data:`PARTIAL_CANDIDATES` are located one by one by a RANSAC similarity,
   within ``partial_budget_s`` (the first candidate is always checked). When
   none is confirmed and the time left covers what the query's features and
   votes took, the query's mirror image is searched the same way (a mirrored
   copy; ORB is not mirror-invariant). A confirmed placement of a synthetic
   asset is ``synthetic_duplicate`` with its
   :class:`~provenance._core.types.CopyLocation` (box, inliers, transform,
   ``mirrored``).

An equal essence makes a metadata-only change (``known_stripped``) only when no
block that changes the rendering, no trailing data and no bad ancillary CRC is
present (:mod:`provenance._core.containers.rendering`); and an AI-generated inventory
asset re-signed under another source type is ``tampered``
(``provenance.inventory.synthetic.relabelled``). See docs/verdicts.md.

A missing manifest is a verdict (``no_provenance``), not an exception; a file
that cannot be read at all raises. A truncated file whose manifest or signed XMP
can still be read is ``tampered`` (``provenance.container.truncated``).

:func:`verify_bytes` runs the steps in this order; each private module owns some:
``_container`` (1-2), ``_c2pa`` and ``_identity`` (3), ``_xmp`` (4), ``_combine``
(5, and the :class:`~provenance._core.types.Verdict` it becomes), ``_essence`` (6),
``_inventory`` (7-8); ``_codes`` holds our own codes.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from provenance._core import containers
from provenance._core.types import Evidence, Status, Verdict
from provenance._io.c2pa import read_c2pa
from provenance._io.keys import TrustPolicy
from provenance._io.reading import read_input_view
from provenance.errors import ProvenanceError
from provenance.verify._c2pa import c2pa_findings
from provenance.verify._codes import (
    C2PA_ESSENCE_MISMATCH,
    C2PA_METADATA_ONLY,
    C2PA_MISSING,
    C2PA_REMOTE_NOT_FETCHED,
    IDENTITY_INVALID,
    INVENTORY_ESSENCE_MATCH,
    KNOWN_STRIPPED,
    PARTIAL_BUDGET_S,
    PARTIAL_CANDIDATES,
    PARTIAL_MATCH,
    PARTIAL_NOT_SYNTHETIC,
    PARTIAL_UNCONFIRMED,
    PERCEPTUAL_MATCH,
    PERCEPTUAL_NOT_SYNTHETIC,
    PERCEPTUAL_UNCONFIRMED,
    PERCEPTUAL_UNDECODABLE,
    SYNTHETIC_RELABELLED,
    TRUNCATED,
    XMP_CONFLICTING,
    XMP_ESSENCE_MISMATCH,
    XMP_FIELD_MISMATCH,
    XMP_NOT_CHECKED,
    XMP_SIGNATURE_INVALID,
    XMP_SIGNER_UNTRUSTED,
    XMP_STATEMENT_INVALID,
    XMP_UNREADABLE,
)
from provenance.verify._combine import Draft, combine_sources, invalid_identities
from provenance.verify._container import as_bytes, c2pa_jpeg_head, read_subject
from provenance.verify._xmp import xmp_findings

if TYPE_CHECKING:
    from provenance.inventory import Inventory

# The verbs, our own codes (docs/verdicts.md) and the partial-copy search's defaults.
__all__ = [
    "C2PA_ESSENCE_MISMATCH",
    "C2PA_METADATA_ONLY",
    "C2PA_MISSING",
    "C2PA_REMOTE_NOT_FETCHED",
    "IDENTITY_INVALID",
    "INVENTORY_ESSENCE_MATCH",
    "KNOWN_STRIPPED",
    "PARTIAL_BUDGET_S",
    "PARTIAL_CANDIDATES",
    "PARTIAL_MATCH",
    "PARTIAL_NOT_SYNTHETIC",
    "PARTIAL_UNCONFIRMED",
    "PERCEPTUAL_MATCH",
    "PERCEPTUAL_NOT_SYNTHETIC",
    "PERCEPTUAL_UNCONFIRMED",
    "PERCEPTUAL_UNDECODABLE",
    "SYNTHETIC_RELABELLED",
    "TRUNCATED",
    "XMP_CONFLICTING",
    "XMP_ESSENCE_MISMATCH",
    "XMP_FIELD_MISMATCH",
    "XMP_NOT_CHECKED",
    "XMP_SIGNATURE_INVALID",
    "XMP_SIGNER_UNTRUSTED",
    "XMP_STATEMENT_INVALID",
    "XMP_UNREADABLE",
    "verify",
    "verify_bytes",
]


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
        path: An image file (JPEG, PNG, WebP, TIFF, DNG, HEIC, HEIF, AVIF or GIF; a
            layout c2pa reads but we do not parse, such as BigTIFF, gets the
            C2PA manifest's verdict with evidence that the XMP was not checked).
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
            this many seconds of step 8 (the best-voted one is always
            checked); the query's mirror image is searched only when nothing
            was confirmed and the time left covers what its first search's
            features and votes took (a process's first query also pays
            OpenCV's import and the index's build inside it).

    Returns:
        The verdict; ``no_provenance`` when the file carries none.

    Raises:
        ProvenanceError: The file cannot be read at all (missing, a directory,
            empty, not an image, structurally corrupt).
    """
    # A JPEG with a C2PA store is read into a buffer this thread reuses (no fresh
    # 1-2 MB allocation per file: step 1 checks one c2pa trusts in place); any other
    # file into bytes, which its steps need. Nothing in the verdict refers to the buffer.
    with read_input_view(path, reuse_if=c2pa_jpeg_head) as view:
        try:
            return _verify(
                view,
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
    """Verify an image held in memory; see :func:`verify`.

    Raises:
        ProvenanceError: The bytes cannot be read as an image at all; its
            message begins with ``name``.
    """
    try:
        return _verify(
            data,
            name=name,
            trust=trust,
            inventory=inventory,
            now=now,
            partial=partial,
            partial_budget_s=partial_budget_s,
        )
    except ProvenanceError as exc:
        raise exc.with_path(name) from exc.__cause__


def _verify(
    data: bytes | memoryview,
    *,
    name: str,
    trust: TrustPolicy | None,
    inventory: Inventory | None,
    now: datetime | None,
    partial: bool,
    partial_budget_s: float,
) -> Verdict:
    """The steps of :func:`verify_bytes` on the file's bytes or a view of them."""
    policy = trust if trust is not None else TrustPolicy.no_anchors()
    moment = now or datetime.now(timezone.utc)
    # 1-2. Format, blocks, hashes; a file cut short, or one only c2pa reads, ends here.
    subject = read_subject(data, name=name, policy=policy)
    if isinstance(subject, Verdict):
        return subject
    draft = Draft()
    draft.add(subject.conflict)
    # 3. C2PA (already read in step 1 for a JPEG with a store).
    whole = subject.data if subject.data is not None else data
    report = subject.report if subject.c2pa_read else read_c2pa(whole, subject.format.mime, policy)
    known = inventory.find_by_essence(subject.essence) if inventory is not None else None
    c2pa = c2pa_findings(
        report,
        policy,
        essence=subject.essence,
        in_inventory=known is not None,
        rendering=subject.rendering,
        statement=subject.statement,
    )
    draft.add(c2pa.evidence)
    # 4. Signed XMP.
    signed_xmp, xmp_statement, xmp_signer = xmp_findings(
        subject.info.xmp, subject.essence, policy, moment
    )
    draft.add(signed_xmp)
    draft.statement = c2pa.statement or xmp_statement
    draft.signer = c2pa.signer or xmp_signer
    # 5. Combine; 5a. a container neither vouches for; 5b. invalid identity assertions.
    combine_sources(draft, c2pa.evidence, signed_xmp, subject.rendering)
    invalid_identities(draft, c2pa.identities)
    # 6. The inventory recognises copies whose provenance was stripped ...
    # (steps 7-8 import numpy and Pillow: only when a search runs, issue 20)
    if known is not None:
        from provenance.verify._essence import essence_match

        essence_match(draft, known, report, subject.rendering)
    # 7. ... and copies also resized, re-encoded, cropped or flipped; 8. ... or only part
    # of the image, rotated or cropped off-centre.
    elif inventory is not None and draft.status is Status.NO_PROVENANCE:
        from provenance.verify._inventory import partial_match, perceptual_match

        pixels = as_bytes(whole)
        found = perceptual_match(draft, pixels, inventory)
        if not found and partial and PERCEPTUAL_UNDECODABLE not in draft.codes:
            partial_match(draft, pixels, inventory, budget_s=partial_budget_s)
    # 6a. A TIFF's decoding tags and a HEIF's primary item are outside the essence:
    # without an intact C2PA binding, the inventory's perceptual hash shows whether
    # the pixels shown are the asset's.
    asset_id = _essence_only_layout(subject.format, draft, c2pa.evidence)
    if inventory is not None and asset_id is not None:
        from provenance.verify._inventory import layout_rendering_check

        layout_rendering_check(draft, as_bytes(whole), inventory, asset_id)
    return draft.verdict(name=name, sha=subject.sha256, essence=subject.essence, c2pa=c2pa)


# Formats whose essence leaves out what says how to decode it or which image to show.
_LAYOUT_OUTSIDE_ESSENCE = frozenset(
    {
        containers.ImageFormat.TIFF,
        containers.ImageFormat.DNG,
        containers.ImageFormat.HEIC,
        containers.ImageFormat.HEIF,
        containers.ImageFormat.AVIF,
    }
)


def _essence_only_layout(
    fmt: containers.ImageFormat, draft: Draft, c2pa: Evidence | None
) -> str | None:
    """The asset id a TIFF/HEIF verdict rests on when only its essence vouches for it."""
    if fmt not in _LAYOUT_OUTSIDE_ESSENCE:
        return None
    if draft.status not in (Status.TRUSTED, Status.VALID_UNTRUSTED, Status.KNOWN_STRIPPED):
        return None
    if c2pa is not None and c2pa.status in (Status.TRUSTED, Status.VALID_UNTRUSTED):
        return None  # the binding covers every byte outside the store, the IFDs too
    if draft.asset is not None:
        return draft.asset.asset_id
    return draft.statement.asset_id if draft.statement is not None else None
