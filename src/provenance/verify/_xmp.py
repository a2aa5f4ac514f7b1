"""Step 4: what the signed XMP says, as evidence (docs/verdicts.md, "Signed XMP").

Checks the detached signature over the canonical statement, its chain against
the same anchors as C2PA, that the essence it signed is the essence of these
bytes, and that the plain fields a storefront reads say what the signature
covers. The first check that fails decides. Never decides the verdict.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from cryptography import x509

from provenance._core import xmp
from provenance._core.statement import Statement, parse_statement
from provenance._core.types import Evidence, EvidenceSource, Status
from provenance._io.keys import TrustPolicy, verify_detached
from provenance.errors import ProvenanceError, SignatureError
from provenance.verify._codes import (
    XMP_ESSENCE_MISMATCH,
    XMP_FIELD_MISMATCH,
    XMP_SIGNATURE_INVALID,
    XMP_SIGNER_UNTRUSTED,
    XMP_STATEMENT_INVALID,
    XMP_UNREADABLE,
)


def xmp_findings(
    packet: bytes | None, essence: str, policy: TrustPolicy, moment: datetime
) -> tuple[Evidence | None, Statement | None, str | None]:
    """The signed XMP's evidence, its statement and its signer; Nones without one."""
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
    chain = _verified_chain(prov)
    if isinstance(chain, Evidence):
        return chain, statement, None
    signer = chain[0].subject.rfc4514_string()
    return _xmp_evidence(prov, statement, chain, essence, policy, moment), statement, signer


def _verified_chain(prov: xmp.XmpProvenance) -> tuple[x509.Certificate, ...] | Evidence:
    """The packet's certificate chain once its detached signature verifies, else the evidence."""
    try:
        chain_der = tuple(base64.b64decode(c, validate=True) for c in prov.certificate_chain)
        signature = base64.b64decode(prov.signature, validate=True)
        return verify_detached(
            chain_der, prov.signature_algorithm, signature, prov.statement.encode("utf-8")
        )
    except (binascii.Error, ValueError, SignatureError) as exc:
        detail = f"XMP signature does not verify: {getattr(exc, 'message', 'bad encoding')}"
        return Evidence(
            EvidenceSource.XMP, Status.INVALID_SIGNATURE, detail, (XMP_SIGNATURE_INVALID,)
        )


def _xmp_evidence(
    prov: xmp.XmpProvenance,
    statement: Statement,
    chain: tuple[x509.Certificate, ...],
    essence: str,
    policy: TrustPolicy,
    moment: datetime,
) -> Evidence:
    """The evidence of a packet whose signature verified: essence, fields, then trust."""
    if statement.essence_sha256 != essence:
        detail = "image data changed after signing (essence hash differs from the signed one)"
        return Evidence(EvidenceSource.XMP, Status.TAMPERED, detail, (XMP_ESSENCE_MISMATCH,))
    mismatched = _mismatched_fields(prov, statement)
    if mismatched:
        detail = "XMP fields differ from the signed statement: " + ", ".join(mismatched)
        return Evidence(EvidenceSource.XMP, Status.TAMPERED, detail, (XMP_FIELD_MISMATCH,))
    if policy.chain_is_trusted(chain, at=moment):
        detail = "signed XMP valid; signer chains to a configured trust anchor"
        return Evidence(EvidenceSource.XMP, Status.TRUSTED, detail)
    detail = "signed XMP valid; signer not anchored"
    return Evidence(EvidenceSource.XMP, Status.VALID_UNTRUSTED, detail, (XMP_SIGNER_UNTRUSTED,))


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
