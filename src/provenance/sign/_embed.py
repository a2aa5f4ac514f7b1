"""Steps 3-6 of signing: what goes into the file, built as values.

The record as embedded (personal data screened, the parent added), the signed
statement, the XMP packet that carries it with its detached signature, the
minimal EXIF and the C2PA manifest definition and ingredient. Pure apart from
the random XMP instance id: nothing here signs, reads or writes
(:mod:`provenance.sign` does, in order).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from provenance._core import containers, exif, xmp
from provenance._core.hashing import hash_ranges, sha256_hex
from provenance._core.pii import PiiPolicy, apply_policy
from provenance._core.record import FREE_TEXT_PARAMETERS, ParentRef, ProvenanceRecord, format_time
from provenance._core.statement import RECORD_ASSERTION_LABEL, STATEMENT_VERSION, parse_statement
from provenance._io.c2pa import C2paIngredient
from provenance._io.keys import SigningKey, chain_base64
from provenance._version import __version__
from provenance.errors import ProvenanceError


def embedded_record(
    record: ProvenanceRecord, policy: PiiPolicy, parent_ref: ParentRef | None
) -> ProvenanceRecord:
    """3. The record as embedded: free text screened (decision 13), the parent added."""
    embedded = _screen(record, policy)
    if parent_ref is not None and parent_ref not in embedded.parents:
        embedded = embedded.replace(parents=(*embedded.parents, parent_ref))
    return embedded


def signed_statement(
    embedded: ProvenanceRecord, asset_id: str, essence: str, input_sha: str, *, now: datetime
) -> dict[str, Any]:
    """4. The statement the key signs: the record, the hashes and the asset id."""
    return {
        "v": STATEMENT_VERSION,
        "asset_id": asset_id,
        "essence_sha256": essence,
        "input_sha256": input_sha,
        "record": embedded.to_dict(),
        "signed_at": format_time(now),
    }


def xmp_packet(
    statement: Mapping[str, Any],
    statement_bytes: bytes,
    signature: bytes,
    key: SigningKey,
    embedded: ProvenanceRecord,
    parent_ref: ParentRef | None,
    *,
    existing: bytes | None,
) -> bytes:
    """5. The XMP packet: the statement, its detached signature and chain, and the IPTC fields.

    Merged with the XMP already in the file (``existing``).
    """
    asset_id, essence = str(statement["asset_id"]), str(statement["essence_sha256"])
    return xmp.build_packet(
        xmp.XmpProvenance(
            digital_source_type=embedded.digital_source_type.uri,
            essence_sha256=essence,
            statement=statement_bytes.decode("utf-8"),
            signature=base64.b64encode(signature).decode("ascii"),
            signature_algorithm=key.algorithm.name,
            certificate_chain=chain_base64(tuple(key.embedded_certificates)),
            ai_system=embedded.model,
            ai_system_version=embedded.model_version,
            ai_prompt=embedded.prompt,
            document_id=f"xmp.did:{asset_id}",
            instance_id=f"xmp.iid:{uuid.uuid4()}",
            derived_from_document_id=(
                f"xmp.did:{parent_ref.asset_id}"
                if parent_ref is not None and parent_ref.asset_id
                else None
            ),
            asset_id=asset_id,
            parent_sha256=parent_ref.sha256_hex if parent_ref else None,
            parent_essence_sha256=parent_ref.essence_sha256_hex if parent_ref else None,
        ),
        existing=existing,
    )


def exif_block(
    info: containers.ContainerInfo,
    embedded: ProvenanceRecord,
    *,
    write: bool,
    description: str,
) -> bytes | None:
    """5. The EXIF (TIFF bytes) to write, or None to leave the file's as it is.

    ``write`` merges our minimal EXIF (Software, ImageDescription ``description``,
    DateTime) into the file's; without it the file's EXIF is only sanitised.
    """
    if not info.format.writes_exif:
        return None  # GIF has no EXIF: the XMP discloses
    if write:
        return exif.merge_minimal_exif(
            info.exif,
            software=f"{embedded.generator} ({embedded.model} {embedded.model_version})",
            description=description,
            when=embedded.created_at,
        )
    if info.exif is not None:
        # Even without our EXIF, personal fields of incoming EXIF go (decision 13).
        return exif.sanitize_exif(info.exif).tiff
    return None


def c2pa_manifest(
    record: ProvenanceRecord,
    statement: Mapping[str, Any],
    *,
    name: str,
    mime: str,
    derivation: str | None,
) -> dict[str, Any]:
    """6. The C2PA manifest definition: the actions and our statement assertion.

    ``derivation`` is the action that made a rendition from its parent
    ingredient; None for an original.
    """
    agent = {"name": record.model, "version": record.model_version}
    if derivation is not None:
        # A rendition: opened from its parent ingredient, then transformed. The
        # parent's own manifest (carried in the ingredient) holds c2pa.created.
        actions: list[dict[str, Any]] = [
            {"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}},
            {"action": derivation, "softwareAgent": {"name": "provenance", "version": __version__}},
        ]
    else:
        # c2pa-rs refuses c2pa.created without a digitalSourceType (decision 2).
        actions = [
            {
                "action": "c2pa.created",
                "digitalSourceType": record.digital_source_type.uri,
                "softwareAgent": agent,
                "when": statement["record"]["created_at"],
            }
        ]
    return {
        "claim_generator_info": [{"name": "provenance", "version": __version__}],
        "title": name,
        "format": mime,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": actions}},
            {"label": RECORD_ASSERTION_LABEL, "data": dict(statement)},
        ],
    }


def parent_ingredient(
    parent: bytes | None, parent_name: str | None, parent_ref: ParentRef | None
) -> C2paIngredient | None:
    """6. The ``parentOf`` ingredient of a rendition, or None for an original.

    With the parent's SHA-256 (``parent_ref``), c2pa reads the parent once per
    process for all its renditions (``provenance._io.c2pa._parents``).
    """
    if parent is None:
        return None
    parent_fmt = containers.detect_format(parent)
    sha = parent_ref.sha256_hex if parent_ref is not None else None
    return C2paIngredient(parent, parent_fmt.mime, parent_name or "parent", sha256_hex=sha)


def parent_ref_of(parent: bytes) -> ParentRef:
    """3. The parent reference of a rendition, from the parent's bytes (parsed and hashed)."""
    info = containers.inspect(parent)
    asset_id = None
    if info.xmp is not None:
        try:
            prov = xmp.parse_packet(info.xmp)
        except ProvenanceError:
            prov = None
        if prov is not None:
            statement = parse_statement(prov.statement)
            asset_id = statement.asset_id if statement is not None else prov.asset_id
    return ParentRef(
        sha256_hex=sha256_hex(parent),
        essence_sha256_hex=hash_ranges(parent, info.essence_ranges),
        asset_id=asset_id,
    )


def _screen(record: ProvenanceRecord, policy: PiiPolicy) -> ProvenanceRecord:
    """Apply the personal-data policy to every free-text field (decision 13)."""
    changes: dict[str, Any] = {}
    if record.prompt is not None:
        prompt = apply_policy("prompt", record.prompt, policy)
        if prompt != record.prompt:
            changes["prompt"] = prompt
    params = dict(record.parameters)
    for name, value in params.items():
        if isinstance(value, str) and name in FREE_TEXT_PARAMETERS:
            params[name] = apply_policy(f"parameters.{name}", value, policy)
    if params != dict(record.parameters):
        changes["parameters"] = params
    return record.replace(**changes) if changes else record
