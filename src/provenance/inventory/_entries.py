"""The inventory's values and their row conversions.

Assets, files, stats and perceptual matches. Pure: values in, values out; no SQL
and no I/O here.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from provenance._core.record import ProvenanceRecord, format_time
from provenance._core.types import SignResult
from provenance.errors import (
    InventoryError,
    RecordError,
)
from provenance.inventory._schema import SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One signed file of an asset.

    Attributes:
        sha256_hex: SHA-256 of the signed file.
        asset_id: The asset it belongs to.
        path: Where it was written, as given to ``sign``.
        source_path: The input it was signed from, if recorded.
        input_sha256_hex: SHA-256 of that input.
        parent_sha256_hex: SHA-256 of the parent file, for renditions.
        bytes_added: Signed size minus input size.
        active_manifest: Label of the C2PA manifest written.
        signed_at: When it was signed, RFC 3339 UTC.
        signer: The signing certificate's subject.
        record_sha256_hex: SHA-256 of the canonical record signed into it.
        record: That record when it differs from the asset's (a re-sign with
            corrected metadata); None when it is the same.
    """

    sha256_hex: str
    asset_id: str
    path: str | None
    source_path: str | None
    input_sha256_hex: str
    parent_sha256_hex: str | None
    bytes_added: int
    active_manifest: str | None
    signed_at: str
    signer: str
    record_sha256_hex: str
    record: ProvenanceRecord | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "sha256": self.sha256_hex,
            "asset_id": self.asset_id,
            "path": self.path,
            "source_path": self.source_path,
            "input_sha256": self.input_sha256_hex,
            "parent_sha256": self.parent_sha256_hex,
            "bytes_added": self.bytes_added,
            "active_manifest": self.active_manifest,
            "signed_at": self.signed_at,
            "signer": self.signer,
            "record_sha256": self.record_sha256_hex,
            "record": None if self.record is None else self.record.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class AssetEntry:
    """One asset (an image essence) and every file signed for it.

    Attributes:
        asset_id: The asset id (derived from the essence hash by ``sign``).
        essence_sha256_hex: Essence hash: coded image data only.
        record: The provenance record it was first signed with.
        parent_asset_id: The asset this rendition was made from, when recorded.
        signer: Subject of the certificate that first signed it.
        first_signed_at: When it was first signed, RFC 3339 UTC.
        files: Its signed files, oldest first.
    """

    asset_id: str
    essence_sha256_hex: str
    record: ProvenanceRecord
    parent_asset_id: str | None
    signer: str
    first_signed_at: str
    files: tuple[FileEntry, ...] = ()

    @property
    def is_synthetic(self) -> bool:
        """Whether the record declares the image AI-made."""
        return self.record.is_synthetic

    @property
    def is_rendition(self) -> bool:
        """Whether the record names a parent (linked or not)."""
        return bool(self.record.parents) or any(f.parent_sha256_hex for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form, as in exports."""
        record = self.record
        return {
            "asset_id": self.asset_id,
            "essence_sha256": self.essence_sha256_hex,
            "is_synthetic": record.is_synthetic,
            "digital_source_type": record.digital_source_type.value,
            "digital_source_type_uri": record.digital_source_type.uri,
            "generator": record.generator,
            "model": record.model,
            "model_version": record.model_version,
            "created_at": format_time(record.created_at),
            "parent_asset_id": self.parent_asset_id,
            "signer": self.signer,
            "first_signed_at": self.first_signed_at,
            "record": record.to_dict(),
            "files": [f.to_dict() for f in self.files],
        }


@dataclass(frozen=True, slots=True)
class InventoryStats:
    """Counts over the inventory.

    Attributes:
        assets: Distinct assets (essences).
        files: Signed files.
        renditions: Assets signed with a parent.
        renditions_without_parent: Renditions whose parent is not in the inventory.
        synthetic: Assets whose digital source type declares AI generation.
        by_model: Assets per model, then per model version.
        by_digital_source_type: Assets per IPTC digital source type code.
        audit_entries: The last audit seq.
        checkpoints: Stored audit checkpoints.
        db_bytes: Size of the database file (pages in use plus free pages).
        schema_version: The schema version of the database.
    """

    assets: int
    files: int
    renditions: int
    renditions_without_parent: int
    synthetic: int
    by_model: Mapping[str, Mapping[str, int]] = field(default_factory=lambda: MappingProxyType({}))
    by_digital_source_type: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    audit_entries: int = 0
    checkpoints: int = 0
    db_bytes: int = 0
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "assets": self.assets,
            "files": self.files,
            "renditions": self.renditions,
            "renditions_without_parent": self.renditions_without_parent,
            "synthetic": self.synthetic,
            "by_model": {m: dict(v) for m, v in self.by_model.items()},
            "by_digital_source_type": dict(self.by_digital_source_type),
            "audit_entries": self.audit_entries,
            "checkpoints": self.checkpoints,
            "db_bytes": self.db_bytes,
            "schema_version": self.schema_version,
        }


@dataclass(frozen=True, slots=True)
class PerceptualMatch:
    """An inventory asset whose stored perceptual hash is near a query's.

    Attributes:
        asset: The asset.
        distance: Bits between the query and the nearest of its stored rows.
        variant: The name of that row (e.g. ``"full:flip_h"``, ``"frame-tl90:identity"``).
        descriptor: The asset's confirmation descriptor for the scheme (empty
            when none was stored).
        scheme: The perceptual hash scheme.
    """

    asset: AssetEntry
    distance: int
    variant: str
    descriptor: bytes
    scheme: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (without the descriptor)."""
        return {
            "asset_id": self.asset.asset_id,
            "distance": self.distance,
            "variant": self.variant,
            "scheme": self.scheme,
        }


class _Pending(NamedTuple):
    """A SignResult checked and converted for storage.

    A named tuple, not a frozen dataclass: as immutable, made in a third of the
    time (an import makes 19; a frozen dataclass sets each of 11 fields through
    ``object.__setattr__``).
    """

    result: SignResult
    signer: str
    signed_at: str
    now: datetime
    source_path: str | None
    sha256: bytes
    essence: bytes
    input_sha256: bytes
    parent_sha256: bytes | None
    record_json: str
    record_sha256: bytes


class _Shared:
    """What the results of one batch share, converted once (an import's 19 results).

    The canonical JSON and SHA-256 of each distinct record, and the bytes of
    each hash text seen (the renditions of an import all name one parent). A
    record is known by identity (:func:`provenance.sign_import` gives its
    renditions one record object) or, failing that, by being equal to the last
    record serialised (``sign_rendition`` makes an equal record per
    rendition) with parameters that serialise alike (:func:`_alike`). Valid
    only while the batch's results are alive.
    """

    __slots__ = ("_by_id", "_hashes", "_last")

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[str, bytes]] = {}
        self._last: tuple[ProvenanceRecord, tuple[str, bytes]] | None = None
        self._hashes: dict[str, bytes] = {}

    def record(self, record: ProvenanceRecord) -> tuple[str, bytes]:
        """``record``'s canonical JSON (text) and its SHA-256."""
        known = self._by_id.get(id(record))
        if known is not None:
            return known
        last = self._last
        if last is not None and last[0] == record and _alike(last[0].parameters, record.parameters):
            known = last[1]
        else:
            data = record.to_canonical_json()
            known = (data.decode("utf-8"), hashlib.sha256(data).digest())
            self._last = (record, known)
        self._by_id[id(record)] = known
        return known

    def hash(self, value: str, name: str) -> bytes:
        """:func:`_hex_bytes` of ``value``, once per distinct text."""
        found = self._hashes.get(value)
        if found is None:
            found = self._hashes[value] = _hex_bytes(value, name, None)
        return found


def _alike(known: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Whether two equal parameter maps serialise alike.

    Equal values of different types (``1``, ``1.0``, ``True``) or signs
    (``0.0``, ``-0.0``) do not. The same objects (a record's ``replace``
    keeps them) do, and so do equal values of one type: floats only with the
    same ``repr``. Both maps are sorted by name (``ProvenanceRecord``), so they pair.
    """
    for a, b in zip(known.values(), other.values(), strict=True):
        if a is not b and (type(a) is not type(b) or (type(a) is float and repr(a) != repr(b))):
            return False
    return True


def _pending(
    result: SignResult,
    *,
    signer: str,
    now: datetime,
    source_path: str | None,
    shared: _Shared | None = None,
    signed_at: str | None = None,
) -> _Pending:
    """Check and convert one result; ``shared`` converts what a batch shares once."""
    if now.tzinfo is None:
        raise InventoryError("now must be a timezone-aware datetime")
    if not isinstance(signer, str) or not signer.strip():
        raise InventoryError("signer must be the certificate subject (key.subject)")
    record = result.record
    parent_hex = result.parent_sha256_hex or (
        record.parents[0].sha256_hex if record.parents else None
    )
    if shared is None:
        shared = _Shared()
    record_json, record_sha256 = shared.record(record)
    sha256 = _hex_bytes(result.sha256_hex, "sha256", None)
    return _Pending(
        result=result,
        signer=signer,
        signed_at=signed_at or format_time(now),
        now=now,
        source_path=source_path,
        sha256=sha256,
        essence=_hex_bytes(result.essence_sha256_hex, "essence_sha256", None),
        # A rendition left as it is was its own input.
        input_sha256=(
            sha256
            if result.input_sha256_hex == result.sha256_hex
            else _hex_bytes(result.input_sha256_hex, "input_sha256", None)
        ),
        parent_sha256=(
            shared.hash(parent_hex, "parent_sha256") if parent_hex is not None else None
        ),
        record_json=record_json,
        record_sha256=record_sha256,
    )


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _hex_bytes(value: str, name: str, path: Path | None) -> bytes:
    # 64 characters that give 32 bytes are 64 hex digits: fromhex skips only
    # whitespace, which would leave fewer bytes (a quarter of a regex match's cost).
    if isinstance(value, str) and len(value) == 64:
        try:
            data = bytes.fromhex(value)
        except ValueError:
            data = b""
        if len(data) == 32:
            return data
    raise InventoryError(f"{name} must be 64 hex characters", path=path)


def _file_from_row(row: tuple[Any, ...], asset_id: str) -> FileEntry:
    return FileEntry(
        sha256_hex=bytes(row[1]).hex(),
        asset_id=asset_id,
        path=row[2],
        source_path=row[3],
        input_sha256_hex=bytes(row[4]).hex(),
        parent_sha256_hex=None if row[5] is None else bytes(row[5]).hex(),
        bytes_added=int(row[6]),
        active_manifest=row[7],
        signed_at=str(row[8]),
        signer=str(row[9]),
        record_sha256_hex=bytes(row[10]).hex(),
        record=None if row[11] is None else _record_from_json(str(row[11]), asset_id),
    )


def _record_from_json(text: str, asset_id: str) -> ProvenanceRecord:
    try:
        return _parse_record(text)
    except (ValueError, RecordError) as exc:
        raise InventoryError(f"the stored record of asset {asset_id} is unreadable") from exc


@functools.lru_cache(maxsize=256)
def _parse_record(text: str) -> ProvenanceRecord:
    """A stored record, parsed and validated once per distinct text.

    A batch stores one record for all its assets, and a read of N assets (or
    the batch writer's re-recording of a known asset) would otherwise parse
    and validate the same text N times. Records are immutable, so sharing one
    is safe.
    """
    data = json.loads(text)
    params = data.get("parameters") if isinstance(data, dict) else None
    # What was signed is reported as signed: the allow-list binds signers only.
    allowed = frozenset(params) if isinstance(params, Mapping) else frozenset()
    return ProvenanceRecord.from_dict(data, allowed_parameters=allowed)
