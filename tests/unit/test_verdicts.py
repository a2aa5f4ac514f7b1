from __future__ import annotations

import pytest

from provenance.types import Status
from provenance.verdicts import c2pa_status, combine, worst


@pytest.mark.parametrize(
    ("state", "codes", "anchors", "expected"),
    [
        ("Trusted", [], True, Status.TRUSTED),
        ("Trusted", [], False, Status.VALID_UNTRUSTED),
        ("Valid", ["signingCredential.untrusted"], True, Status.VALID_UNTRUSTED),
        ("Valid", [], True, Status.VALID_UNTRUSTED),
        ("Invalid", ["assertion.dataHash.mismatch"], True, Status.TAMPERED),
        (
            "Invalid",
            ["claimSignature.mismatch", "assertion.hashedURI.mismatch"],
            True,
            Status.TAMPERED,
        ),
        ("Invalid", ["claimSignature.mismatch"], True, Status.INVALID_SIGNATURE),
        ("Invalid", ["signingCredential.expired"], True, Status.INVALID_SIGNATURE),
        # c2pa says Valid although a code is present: the code decides (decision 12).
        ("Valid", ["assertion.dataHash.mismatch"], True, Status.TAMPERED),
        ("Valid", ["cawg.identity.pad.invalid"], True, Status.VALID_UNTRUSTED),
        ("Invalid", [], True, Status.TAMPERED),
    ],
)
def test_c2pa_status(state: str, codes: list[str], anchors: bool, expected: Status) -> None:
    assert c2pa_status(state, codes, has_anchors=anchors) is expected


def test_unreadable_manifest() -> None:
    assert c2pa_status(None, [], has_anchors=True, error_kind="Verify") is Status.TAMPERED
    assert c2pa_status(None, [], has_anchors=True, error_kind="Signature") is (
        Status.INVALID_SIGNATURE
    )


def test_combine() -> None:
    assert combine(None, None) is Status.NO_PROVENANCE
    assert combine(Status.TRUSTED, None) is Status.TRUSTED
    assert combine(None, Status.VALID_UNTRUSTED) is Status.VALID_UNTRUSTED
    assert combine(Status.TRUSTED, Status.TAMPERED) is Status.TAMPERED
    assert combine(Status.NO_PROVENANCE, Status.TRUSTED) is Status.TRUSTED
    assert worst([Status.VALID_UNTRUSTED, Status.INVALID_SIGNATURE]) is Status.INVALID_SIGNATURE
