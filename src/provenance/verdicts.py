"""Pure rules that turn what each source said into a :class:`~provenance.types.Status`.

The mapping is documented in ``docs/verdicts.md``; keep the two in step. No I/O,
no c2pa import: inputs are codes and states as strings.
"""

from __future__ import annotations

from collections.abc import Iterable

from provenance.types import Status

__all__ = ["UNTRUSTED_CODE", "c2pa_status", "combine", "worst"]

UNTRUSTED_CODE = "signingCredential.untrusted"

# c2pa-rs failure codes (C2PA 2.x section 15) that mean the bytes or the
# manifest changed after signing.
_TAMPER_PREFIXES = (
    "assertion.",
    "claim.",
    "ingredient.",
    "manifest.",
    "hashedURI.",
)
# Codes that mean the signature or the signing credential is bad. An untrusted
# but otherwise valid credential is not among them.
_SIGNATURE_PREFIXES = (
    "claimSignature.",
    "signingCredential.",
    "timeStamp.",
    "algorithm.",
)
# c2pa exceptions (by class name) raised for a manifest that is present but
# cannot be parsed or checked. A signature error is a bad signature; anything
# else that stops c2pa from reading a present manifest is tampering.
_SIGNATURE_ERRORS = frozenset({"Signature"})

_RANK = {
    Status.TAMPERED: 0,
    Status.INVALID_SIGNATURE: 1,
    Status.VALID_UNTRUSTED: 2,
    Status.TRUSTED: 3,
}


def c2pa_status(
    state: str | None,
    failure_codes: Iterable[str],
    *,
    has_anchors: bool,
    error_kind: str | None = None,
) -> Status:
    """The status one C2PA manifest store supports.

    c2pa can say ``Valid`` with failure codes present, so the codes decide
    (DESIGN.md decision 12); ``Trusted`` needs explicitly configured anchors.

    Args:
        state: c2pa's validation state, or None when reading failed.
        failure_codes: The active manifest's failure codes.
        has_anchors: Whether the verifier configured trust anchors.
        error_kind: The c2pa error class when the manifest could not be read.
    """
    if error_kind is not None:
        return Status.INVALID_SIGNATURE if error_kind in _SIGNATURE_ERRORS else Status.TAMPERED
    codes = set(failure_codes)
    if any(code.startswith(_TAMPER_PREFIXES) for code in codes):
        return Status.TAMPERED
    if any(code.startswith(_SIGNATURE_PREFIXES) for code in codes - {UNTRUSTED_CODE}):
        return Status.INVALID_SIGNATURE
    if state == "Invalid" or state is None:
        # Invalid without a code we know: refuse to call it anything but broken.
        return Status.TAMPERED
    if has_anchors and state == "Trusted" and not codes:
        return Status.TRUSTED
    # Valid with only untrusted, or with codes outside C2PA's core (cawg.*): the
    # asset is intact but nothing vouches for the signer.
    return Status.VALID_UNTRUSTED


def worst(statuses: Iterable[Status]) -> Status:
    """The most severe of signed-provenance statuses (tampered first)."""
    ranked = [s for s in statuses if s in _RANK]
    if not ranked:
        return Status.NO_PROVENANCE
    return min(ranked, key=_RANK.__getitem__)


def combine(c2pa: Status | None, xmp: Status | None) -> Status:
    """The verdict from the C2PA and the signed-XMP evidence.

    Both present: the worse wins (the C2PA hard binding covers the XMP, so a
    disagreement means something was altered). One present: that one.
    Neither: :attr:`Status.NO_PROVENANCE`.
    """
    present = [s for s in (c2pa, xmp) if s is not None and s is not Status.NO_PROVENANCE]
    return worst(present)
