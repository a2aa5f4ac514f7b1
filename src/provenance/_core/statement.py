"""The signed statement: what both the XMP signature and the C2PA assertion carry.

A statement is canonical JSON (see :func:`provenance._core.record.canonical_json`)::

    {"v": 1, "asset_id": ..., "essence_sha256": ..., "input_sha256": ...,
     "record": {...}, "signed_at": "...Z"}

The XMP packet holds its exact bytes and a detached signature over them; the
C2PA manifest holds the same object as the assertion :data:`RECORD_ASSERTION_LABEL`.
Pure logic, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provenance._core.record import ProvenanceRecord
from provenance.errors import RecordError

__all__ = ["RECORD_ASSERTION_LABEL", "STATEMENT_VERSION", "Statement", "parse_statement"]

RECORD_ASSERTION_LABEL = "dev.provenance.statement"
STATEMENT_VERSION = 1

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class Statement:
    """A parsed statement.

    Attributes:
        asset_id: The asset id.
        essence_sha256: Essence hash of the signed image.
        input_sha256: SHA-256 of the file as it was before signing.
        record: The embedded provenance record.
        signed_at: RFC 3339 signing time.
    """

    asset_id: str
    essence_sha256: str
    input_sha256: str
    record: ProvenanceRecord
    signed_at: str


def statement_from_mapping(data: Any) -> Statement:
    """Validate a decoded statement object.

    Raises:
        RecordError: A field is missing or malformed.
    """
    if not isinstance(data, Mapping):
        raise RecordError("statement is not a JSON object")
    if data.get("v") != STATEMENT_VERSION:
        raise RecordError(f"unsupported statement version {data.get('v')!r}")
    for key in ("essence_sha256", "input_sha256"):
        if not isinstance(data.get(key), str) or not _HEX64.match(data[key]):
            raise RecordError(f"statement field '{key}' must be 64 lowercase hex characters")
    asset_id, signed_at = data.get("asset_id"), data.get("signed_at")
    if not isinstance(asset_id, str) or not isinstance(signed_at, str):
        raise RecordError("statement needs 'asset_id' and 'signed_at' strings")
    record = data.get("record")
    if not isinstance(record, Mapping):
        raise RecordError("statement field 'record' must be an object")
    params = record.get("parameters")
    # A verifier reports what was signed; the allow-list binds signers only.
    allowed = frozenset(params) if isinstance(params, Mapping) else frozenset()
    return Statement(
        asset_id=asset_id,
        essence_sha256=data["essence_sha256"],
        input_sha256=data["input_sha256"],
        record=ProvenanceRecord.from_dict(record, allowed_parameters=allowed),
        signed_at=signed_at,
    )


def parse_statement(text: str) -> Statement | None:
    """Parse statement JSON text; None when it is not JSON or not a valid statement."""
    try:
        return statement_from_mapping(json.loads(text))
    except (ValueError, RecursionError, RecordError):
        return None
