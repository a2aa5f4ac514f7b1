from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provenance._core.types import Status
from provenance._core.verdicts import (
    CODE_STATUS,
    c2pa_status,
    code_status,
    combine,
    error_status,
    exit_code,
    meets,
    metadata_only,
    status_table,
    worst,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "verdicts.md"


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
        # Invalid without any code: malformed as far as anyone can tell, not tampered.
        ("Invalid", [], True, Status.INVALID_MANIFEST),
        ("Invalid", ["claim.malformed"], True, Status.INVALID_MANIFEST),
        ("Invalid", ["assertion.cbor.invalid"], True, Status.INVALID_MANIFEST),
        ("Invalid", ["assertion.someNewCode"], True, Status.INVALID_MANIFEST),
        # An unknown or missing algorithm explains the signature mismatch c2pa adds.
        ("Invalid", ["algorithm.unsupported", "claimSignature.mismatch"], True, Status.UNSUPPORTED),
        ("Invalid", ["com.adobe.prerelease"], True, Status.UNSUPPORTED),
        ("Invalid", ["manifest.inaccessible"], True, Status.REMOTE_MANIFEST),
        ("Invalid", ["ingredient.manifest.mismatch"], True, Status.TAMPERED),
        ("Invalid", ["assertion.boxesHash.mismatch"], True, Status.TAMPERED),
        # A foreign code prevents trusted but decides nothing else.
        ("Trusted", ["com.example.odd"], True, Status.VALID_UNTRUSTED),
    ],
)
def test_c2pa_status(state: str, codes: list[str], anchors: bool, expected: Status) -> None:
    assert c2pa_status(state, codes, has_anchors=anchors) is expected


def test_identity_codes_do_not_cost_trust() -> None:
    """c2pa keeps the state at Valid for an unanchored identity; the claim is still trusted."""
    codes = ["cawg.x509.credential.untrusted"]
    assert (
        c2pa_status("Valid", codes, has_anchors=True, success_codes=["signingCredential.trusted"])
        is Status.TRUSTED
    )
    assert c2pa_status("Valid", codes, has_anchors=True) is Status.VALID_UNTRUSTED


def test_unreadable_manifest() -> None:
    assert c2pa_status(None, [], has_anchors=True, error_kind="Verify") is Status.INVALID_MANIFEST
    assert c2pa_status(None, [], has_anchors=True, error_kind="Other") is Status.INVALID_MANIFEST
    assert c2pa_status(None, [], has_anchors=True, error_kind="Signature") is (
        Status.INVALID_SIGNATURE
    )
    assert error_status("Verify", "Verify: claim version is too new, not supported") is (
        Status.UNSUPPORTED
    )
    assert error_status("Prerelease") is Status.UNSUPPORTED
    assert error_status("RemoteManifest") is Status.REMOTE_MANIFEST


def test_tampered_only_for_changes() -> None:
    """Only codes that say bytes changed after signing map to tampered."""
    tampered = {code for code, status in CODE_STATUS.items() if status is Status.TAMPERED}
    assert all(
        re.search(r"(mismatch|missing|undeclared|outsideManifest|notRedacted|unknownBox)$", c)
        for c in tampered
    )
    assert code_status("cawg.identity.pad.invalid") is None
    assert code_status("general.error") is Status.INVALID_MANIFEST


def test_metadata_only() -> None:
    assert metadata_only(["assertion.dataHash.mismatch"])
    assert metadata_only(["assertion.dataHash.mismatch", "signingCredential.untrusted"])
    assert metadata_only(["assertion.boxesHash.mismatch", "cawg.x509.credential.untrusted"])
    assert not metadata_only([])
    assert not metadata_only(["assertion.dataHash.mismatch", "assertion.hashedURI.mismatch"])
    assert not metadata_only(["assertion.dataHash.mismatch", "claimSignature.mismatch"])


def test_combine() -> None:
    assert combine(None, None) is Status.NO_PROVENANCE
    assert combine(Status.TRUSTED, None) is Status.TRUSTED
    assert combine(None, Status.VALID_UNTRUSTED) is Status.VALID_UNTRUSTED
    assert combine(Status.TRUSTED, Status.TAMPERED) is Status.TAMPERED
    assert combine(Status.NO_PROVENANCE, Status.TRUSTED) is Status.TRUSTED
    assert combine(Status.KNOWN_STRIPPED, Status.TRUSTED) is Status.KNOWN_STRIPPED
    assert combine(Status.KNOWN_STRIPPED, Status.TAMPERED) is Status.TAMPERED
    assert combine(Status.UNSUPPORTED, Status.TRUSTED) is Status.UNSUPPORTED
    assert combine(Status.REMOTE_MANIFEST, None) is Status.REMOTE_MANIFEST
    assert worst([Status.VALID_UNTRUSTED, Status.INVALID_SIGNATURE]) is Status.INVALID_SIGNATURE
    assert worst([Status.INVALID_IDENTITY, Status.INVALID_MANIFEST]) is Status.INVALID_MANIFEST


def test_failures_and_exit_codes() -> None:
    failures = {s for s in Status if s.is_failure}
    assert failures == {
        Status.TAMPERED,
        Status.INVALID_SIGNATURE,
        Status.INVALID_MANIFEST,
        Status.INVALID_IDENTITY,
    }
    assert exit_code([Status.TRUSTED, Status.NO_PROVENANCE, Status.REMOTE_MANIFEST]) == 0
    assert exit_code([Status.ERROR, Status.INVALID_MANIFEST]) == 1
    assert exit_code([Status.ERROR, Status.TRUSTED]) == 2
    assert exit_code([Status.VALID_UNTRUSTED], requirement=Status.TRUSTED) == 1
    assert exit_code([Status.TRUSTED], requirement=Status.TRUSTED) == 0
    assert exit_code([Status.TRUSTED, Status.ERROR], requirement=Status.TRUSTED) == 2
    assert (
        exit_code(
            [Status.TRUSTED, Status.KNOWN_STRIPPED],
            requirement=Status.TRUSTED,
            accept=[Status.KNOWN_STRIPPED],
        )
        == 0
    )


def test_meets() -> None:
    assert meets(Status.TRUSTED)
    assert not meets(Status.VALID_UNTRUSTED)
    assert meets(Status.TRUSTED, Status.VALID_UNTRUSTED)
    assert meets(Status.VALID_UNTRUSTED, Status.VALID_UNTRUSTED)
    assert not meets(Status.NO_PROVENANCE, Status.VALID_UNTRUSTED)
    accept = [Status.KNOWN_STRIPPED, Status.SYNTHETIC_DUPLICATE]
    assert meets(Status.KNOWN_STRIPPED, Status.TRUSTED, accept)
    assert not meets(Status.REMOTE_MANIFEST, Status.TRUSTED, accept)
    with pytest.raises(ValueError, match="cannot accept tampered"):
        meets(Status.TRUSTED, Status.TRUSTED, [Status.TAMPERED])
    with pytest.raises(ValueError, match="cannot require"):
        meets(Status.TRUSTED, Status.KNOWN_STRIPPED)


def test_docs_table_matches_the_code() -> None:
    """docs/verdicts.md carries the generated table, byte for byte."""
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("<!-- status-table:start -->") + len("<!-- status-table:start -->\n")
    end = text.index("<!-- status-table:end -->")
    assert text[start:end] == status_table()
    for status in Status:
        assert f"| `{status.value}` |" in text[start:end]
    for code in CODE_STATUS:
        assert f"`{code}`" in text[start:end]


_KNOWN = sorted(CODE_STATUS)
_ANY_CODE = st.one_of(
    st.sampled_from(_KNOWN),
    st.sampled_from(["cawg.identity.pad.invalid", "cawg.x509.signature.mismatch"]),
    st.from_regex(r"\A(claim|assertion|manifest|ingredient|algorithm|com\.x)\.[a-z]{1,8}\Z"),
)


@given(
    state=st.sampled_from([None, "Invalid", "Valid", "Trusted"]),
    codes=st.lists(_ANY_CODE, max_size=6),
    anchors=st.booleans(),
)
def test_tampered_needs_a_code_that_says_bytes_changed(
    state: str | None, codes: list[str], anchors: bool
) -> None:
    status = c2pa_status(state, codes, has_anchors=anchors)
    tamper_codes = {c for c in codes if CODE_STATUS.get(c) is Status.TAMPERED}
    assert (status is Status.TAMPERED) == bool(tamper_codes)
    if status is Status.TRUSTED:
        assert anchors and state == "Trusted"
        assert all(c.startswith("cawg.") for c in codes)
