"""Our own verification codes, in the style of c2pa's, so one list can hold both.

Public through :mod:`provenance.verify`; docs/verdicts.md ("Our own codes") says what
each one means. Also the partial-copy search's defaults, which ``verify``'s
signature names without importing the inventory steps (issue 20). Values only:
nothing here reads or decides anything.
"""

from __future__ import annotations

XMP_SIGNATURE_INVALID = "provenance.xmp.signature.invalid"
XMP_SIGNER_UNTRUSTED = "provenance.xmp.signingCredential.untrusted"
XMP_ESSENCE_MISMATCH = "provenance.xmp.essence.mismatch"
XMP_FIELD_MISMATCH = "provenance.xmp.field.mismatch"
XMP_STATEMENT_INVALID = "provenance.xmp.statement.invalid"
XMP_UNREADABLE = "provenance.xmp.unreadable"
XMP_NOT_CHECKED = "provenance.xmp.notChecked"
C2PA_MISSING = "provenance.c2pa.missing"
C2PA_REMOTE_NOT_FETCHED = "provenance.c2pa.remoteManifest.notFetched"
C2PA_METADATA_ONLY = "provenance.c2pa.binding.metadataOnly"
C2PA_ESSENCE_MISMATCH = "provenance.c2pa.essence.mismatch"
XMP_CONFLICTING = "provenance.xmp.conflicting"
IDENTITY_INVALID = "provenance.identity.invalid"
KNOWN_STRIPPED = "provenance.metadata.stripped"
INVENTORY_ESSENCE_MATCH = "provenance.inventory.essence.match"
PERCEPTUAL_MATCH = "provenance.inventory.perceptual.match"
PERCEPTUAL_UNCONFIRMED = "provenance.inventory.perceptual.unconfirmed"
PERCEPTUAL_NOT_SYNTHETIC = "provenance.inventory.perceptual.notSynthetic"
PERCEPTUAL_UNDECODABLE = "provenance.inventory.perceptual.undecodable"
SYNTHETIC_RELABELLED = "provenance.inventory.synthetic.relabelled"
TRUNCATED = "provenance.container.truncated"
PARTIAL_MATCH = "provenance.inventory.keypoints.match"
PARTIAL_UNCONFIRMED = "provenance.inventory.keypoints.unconfirmed"
PARTIAL_NOT_SYNTHETIC = "provenance.inventory.keypoints.notSynthetic"

PARTIAL_CANDIDATES = 8
"""Best-voted assets the partial-copy search locates, at most, per query."""

PARTIAL_BUDGET_S = 0.15
"""Default time for the partial-copy search's candidate checks, per query (seconds)."""
