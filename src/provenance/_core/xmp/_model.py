"""What the provenance XMP packet says (:class:`XmpProvenance`) and the checks on its values."""

from __future__ import annotations

from dataclasses import dataclass

from provenance._core.xmp._names import (
    _ALGORITHM,
    _BASE64,
    _NOT_XML_CHAR,
    _REQUIRED,
    _SHA256_FIELDS,
    _SHA256_HEX,
)
from provenance.errors import XmpError


@dataclass(frozen=True, slots=True)
class XmpProvenance:
    """What the provenance XMP packet says, field by field.

    The dataclass itself does not validate; :func:`build_packet` and
    :func:`parse_packet` apply the same checks, so whatever one accepts the other
    returns unchanged. Optional fields are ``None`` or non-empty.

    Attributes:
        digital_source_type: Full IPTC URI (``Iptc4xmpExt:DigitalSourceType``).
        essence_sha256: 64 lowercase hex digits (``provn:EssenceSHA256``).
        statement: The signed canonical JSON text, opaque here (``provn:Statement``).
        signature: Base64 detached signature over the statement (``provn:Signature``).
        signature_algorithm: For example ``"ES256"`` (``provn:SignatureAlgorithm``).
        certificate_chain: Base64 DER certificates, leaf first
            (``provn:CertificateChain``, an ``rdf:Seq``).
        ai_system: ``Iptc4xmpExt:AISystemUsed`` (IPTC 2025.1).
        ai_system_version: ``Iptc4xmpExt:AISystemVersionUsed`` (IPTC 2025.1).
        ai_prompt: ``Iptc4xmpExt:AIPromptInformation`` (IPTC 2025.1).
        document_id: ``xmpMM:DocumentID``, e.g. ``"xmp.did:<uuid>"``.
        instance_id: ``xmpMM:InstanceID``, e.g. ``"xmp.iid:<uuid>"``.
        derived_from_document_id: ``xmpMM:DerivedFrom/stRef:documentID``.
        derived_from_instance_id: ``xmpMM:DerivedFrom/stRef:instanceID``.
        asset_id: ``provn:AssetID``.
        parent_sha256: ``provn:ParentSHA256``, 64 lowercase hex digits.
        parent_essence_sha256: ``provn:ParentEssenceSHA256``, 64 lowercase hex digits.
    """

    digital_source_type: str
    essence_sha256: str
    statement: str
    signature: str
    signature_algorithm: str
    certificate_chain: tuple[str, ...]
    ai_system: str | None = None
    ai_system_version: str | None = None
    ai_prompt: str | None = None
    document_id: str | None = None
    instance_id: str | None = None
    derived_from_document_id: str | None = None
    derived_from_instance_id: str | None = None
    asset_id: str | None = None
    parent_sha256: str | None = None
    parent_essence_sha256: str | None = None


# ---------------------------------------------------------------------- validation


def _check(prov: XmpProvenance) -> None:
    """Apply the rules both directions share; the message names the field.

    Raises:
        XmpError: A field has the wrong type, is empty, holds a character XML 1.0
            does not allow, or is not the hex/base64/token it must be.
    """
    for field in XmpProvenance.__slots__:
        value = getattr(prov, field)
        if field == "certificate_chain":
            if not isinstance(value, tuple) or not value:
                raise XmpError("certificate_chain must be a non-empty tuple of base64 strings")
            for index, cert in enumerate(value):
                _check_text(f"certificate_chain[{index}]", cert)
                if not _BASE64.fullmatch(cert):
                    raise XmpError(f"certificate_chain[{index}] is not base64")
            continue
        if value is None and field not in _REQUIRED:
            continue
        _check_text(field, value)
    for field in _SHA256_FIELDS:
        value = getattr(prov, field)
        if value is not None and not _SHA256_HEX.fullmatch(value):
            raise XmpError(f"{field} is not 64 lowercase hex digits")
    if not _BASE64.fullmatch(prov.signature):
        raise XmpError("signature is not base64")
    if not _ALGORITHM.fullmatch(prov.signature_algorithm):
        raise XmpError(f"signature_algorithm {prov.signature_algorithm[:40]!r} is not a name")


def _check_text(field: str, value: object) -> None:
    if not isinstance(value, str):
        raise XmpError(f"{field} must be a string, not {type(value).__name__}")
    if not value:
        raise XmpError(f"{field} is empty")
    bad = _NOT_XML_CHAR.search(value)
    if bad is not None:
        raise XmpError(f"{field} contains U+{ord(bad.group()):04X}, which XML 1.0 does not allow")
