"""Who signed, from c2pa's report (step 3): the claim signer and the CAWG identity assertions.

The claim signer's name and each identity assertion's actor and state. Reads the
report only; never decides the verdict (step 5b,
:func:`provenance.verify._combine.invalid_identities`, does).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from provenance._core.types import Identity, IdentityState
from provenance._io.c2pa import C2paReport
from provenance._io.keys import certificate_subject

# c2pa-rs remaps an X.509 identity's signingCredential.* codes to cawg.x509.*
# (identity/x509/.../remap_x509_cose_status_codes).
_IDENTITY_TRUST_ONLY = frozenset({"cawg.x509.credential.untrusted", "cawg.ica.untrusted_issuer"})
_IDENTITY_TRUSTED = frozenset({"cawg.identity.trusted", "cawg.x509.credential.trusted"})


def _identities(report: C2paReport) -> tuple[Identity, ...]:
    """The active manifest's CAWG identity assertions, each with c2pa's codes for it."""
    found: list[Identity] = []
    for label, data in report.assertions("cawg.identity"):
        suffix = f"/c2pa.assertions/{label}"
        mine = [(kind, code) for kind, code, url in report.entries if url.endswith(suffix)]
        info = data.get("signature_info") if isinstance(data, Mapping) else None
        payload = data.get("signer_payload") if isinstance(data, Mapping) else None
        actor = _subject(info) if isinstance(info, Mapping) else None
        if actor is None and isinstance(data, Mapping):
            # c2pa fills signature_info only for a signature that verified: name
            # the credential from the COSE x5chain of the one that did not.
            actor = _cose_leaf_subject(data.get("signature"))
        found.append(
            Identity(
                label=label,
                actor=actor,
                sig_type=str(payload.get("sig_type"))
                if isinstance(payload, Mapping) and payload.get("sig_type")
                else None,
                state=_identity_state(mine),
                codes=tuple(sorted({code for _, code in mine})),
            )
        )
    return tuple(found)


def _identity_state(mine: list[tuple[str, str]]) -> IdentityState:
    """An identity assertion's state from c2pa's ``(kind, code)`` entries for it."""
    failures = {code for kind, code in mine if kind == "failure"}
    successes = {code for kind, code in mine if kind == "success"}
    # Trust-only codes say the credential is not anchored, not that it is wrong.
    broken = failures - _IDENTITY_TRUST_ONLY
    well_formed = "cawg.identity.well-formed" in successes or bool(successes & _IDENTITY_TRUSTED)
    if broken or not well_formed:
        return IdentityState.INVALID
    if successes & _IDENTITY_TRUSTED:
        return IdentityState.TRUSTED
    return IdentityState.VALID


def _cose_leaf_subject(signature: Any) -> str | None:
    """The leaf certificate subject in a COSE_Sign1's x5chain header (label 33)."""
    if not isinstance(signature, str):
        return None
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return None
    header = raw.find(b"\x18\x21")  # CBOR unsigned 33: x5chain
    start = raw.find(b"\x30\x82", header) if header >= 0 else -1
    if start < 0 or start + 4 > len(raw):
        return None
    length = 4 + int.from_bytes(raw[start + 2 : start + 4], "big")
    return certificate_subject(raw[start : start + length])


def _subject(info: Mapping[str, Any]) -> str | None:
    parts = [f"CN={info['common_name']}"] if info.get("common_name") else []
    if info.get("issuer"):
        parts.append(f"O={info['issuer']}")
    return ",".join(parts) or None


def _c2pa_signer(report: C2paReport) -> str | None:
    manifest = report.manifest or {}
    info = manifest.get("signature_info")
    if not isinstance(info, Mapping):
        return None
    return _subject(info)
