"""The report's rows and blocks as typed values (:mod:`._compliance` holds them together).

Pure: frozen values and their JSON-ready forms (``to_dict``), nothing else. Each
row also answers ``row["key"]`` and ``row.get("key")`` with its JSON value, so
code written against the mapping rows of earlier releases keeps working.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from provenance._core.record import DigitalSourceType
from provenance._core.types import Status
from provenance.audit import AuditEvent
from provenance.report._terms import DisclosureStatus, status_label

# init_dev_keys() names its certificates after this organisation by default.
_DEV_MARKERS = ("provenance development", "development")


def is_development(subject: str) -> bool:
    """Whether a certificate subject names a development key (``keys init``'s default)."""
    lowered = subject.lower()
    return any(marker in lowered for marker in _DEV_MARKERS)


class Row(abc.ABC):
    """Read access by JSON key (``row["asset_id"]``) for a row with a ``to_dict``."""

    __slots__ = ()

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        """The JSON value of ``key``, or ``default``."""
        return self.to_dict().get(key, default)


@dataclass(frozen=True, slots=True)
class TrustAnchor(Row):
    """A configured trust anchor: subject, SHA-256 of the DER certificate, development flag."""

    subject: str
    sha256: str
    development: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {"subject": self.subject, "sha256": self.sha256, "development": self.development}


@dataclass(frozen=True, slots=True)
class Signer(Row):
    """A signer seen in the inventory or the verdicts, and how many assets it signed."""

    subject: str
    assets_signed: int
    development: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "subject": self.subject,
            "assets_signed": self.assets_signed,
            "development": self.development,
        }


@dataclass(frozen=True, slots=True)
class CopySeen(Row):
    """A checked file that is a copy of an inventory asset, and its verdict.

    Attributes:
        path: The file.
        status: Its verdict; None when the verdict is a value this version does
            not know (kept in ``status_value``).
        status_value: The verdict as written.
    """

    path: str
    status: Status | None
    status_value: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {"path": self.path, "status": self.status_value}


@dataclass(frozen=True, slots=True)
class Finding(Row):
    """One row of the recovery check: a file (or, for ``not_seen``, an original).

    Attributes:
        path: The file; None for an original not seen.
        status: The file's verdict, :attr:`DisclosureStatus.NOT_SEEN` for an
            original not seen, or None for a verdict this version does not know.
        status_value: The status as written.
        asset_id: The inventory asset it is a copy of (or the row's own claim).
        original_asset_id: The original that asset descends from.
        model: The model that made the image.
        model_version: Its version.
        signer: Who signed the asset.
        at: When the asset was first signed.
        detail: The error, or the failure codes joined.
        codes: The failure codes.
    """

    path: str | None
    status: Status | DisclosureStatus | None
    status_value: str
    asset_id: str | None
    original_asset_id: str | None
    model: str | None
    model_version: str | None
    signer: str | None
    at: str | None
    detail: str | None
    codes: tuple[str, ...] = ()

    @property
    def status_label(self) -> str:
        """The status in plain words."""
        if isinstance(self.status, DisclosureStatus):
            return self.status.label
        return status_label(self.status or self.status_value)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "path": self.path,
            "status": self.status_value,
            "status_label": self.status_label,
            "asset_id": self.asset_id,
            "original_asset_id": self.original_asset_id,
            "model": self.model,
            "model_version": self.model_version,
            "signer": self.signer,
            "at": self.at,
            "detail": self.detail,
            "codes": list(self.codes),
        }


@dataclass(frozen=True, slots=True)
class RenditionRow(Row):
    """A signed rendition of an AI-generated original, and where copies of it were seen."""

    asset_id: str
    parent_asset_id: str | None
    signer: str
    first_signed_at: str
    signed_files: tuple[str, ...]
    copies: tuple[CopySeen, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "asset_id": self.asset_id,
            "parent_asset_id": self.parent_asset_id,
            "signer": self.signer,
            "first_signed_at": self.first_signed_at,
            "signed_files": list(self.signed_files),
            "copies": [c.to_dict() for c in self.copies],
        }


@dataclass(frozen=True, slots=True)
class AssetRow(Row):
    """Part 1: an AI-generated original, its renditions, the copies seen, its disclosure."""

    asset_id: str
    model: str
    model_version: str
    generator: str
    digital_source_type: DigitalSourceType
    created_at: str
    signer: str
    first_signed_at: str
    signed_files: tuple[str, ...]
    copies: tuple[CopySeen, ...]
    renditions: tuple[RenditionRow, ...]
    disclosure: DisclosureStatus

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "asset_id": self.asset_id,
            "model": self.model,
            "model_version": self.model_version,
            "generator": self.generator,
            "digital_source_type": self.digital_source_type.value,
            "digital_source_type_uri": self.digital_source_type.uri,
            "created_at": self.created_at,
            "signer": self.signer,
            "first_signed_at": self.first_signed_at,
            "signed_files": list(self.signed_files),
            "copies": [c.to_dict() for c in self.copies],
            "renditions": [k.to_dict() for k in self.renditions],
            "disclosure_status": self.disclosure.value,
            "disclosure_label": self.disclosure.label,
        }


@dataclass(frozen=True, slots=True)
class TimelineItem(Row):
    """Part 3: an audit event about an affected asset, a bad verdict or a declared incident."""

    seq: int
    at: str
    event: AuditEvent
    asset_id: str | None
    status: Status | None
    status_value: str | None
    signer: str | None
    model: str | None
    model_version: str | None
    detail: str | None

    @property
    def status_label(self) -> str | None:
        """The verdict in plain words, when the event carries one."""
        return status_label(self.status or self.status_value) if self.status_value else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "seq": self.seq,
            "at": self.at,
            "event": self.event.value,
            "asset_id": self.asset_id,
            "status": self.status_value,
            "status_label": self.status_label,
            "signer": self.signer,
            "model": self.model,
            "model_version": self.model_version,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class IncidentSummary(Row):
    """When a problem was first seen, which assets, signers and models it involves."""

    affected_assets: tuple[str, ...] = ()
    first_seen: str | None = None
    signers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "affected_assets": list(self.affected_assets),
            "first_seen": self.first_seen,
            "signers": list(self.signers),
            "models": list(self.models),
        }


@dataclass(frozen=True, slots=True)
class GdprIncident(Row):
    """A declared personal-data incident and its GDPR Art. 33 deadline."""

    seq: int
    declared_at: str
    aware_at: str
    deadline: str
    hours_left: float
    description: str
    assets: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "seq": self.seq,
            "declared_at": self.declared_at,
            "aware_at": self.aware_at,
            "deadline": self.deadline,
            "hours_left": self.hours_left,
            "description": self.description,
            "assets": list(self.assets),
        }


@dataclass(frozen=True, slots=True)
class PersonalDataFound(Row):
    """Personal data the PII screen found in a provenance record's free text."""

    asset_id: str
    field: str
    kinds: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {"asset_id": self.asset_id, "field": self.field, "kinds": list(self.kinds)}


@dataclass(frozen=True, slots=True)
class GdprAssessment(Row):
    """Whether GDPR Art. 33 applies, why, and the deadlines."""

    applies: bool = False
    statement: str = ""
    incidents: tuple[GdprIncident, ...] = ()
    personal_data_in_records: tuple[PersonalDataFound, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "applies": self.applies,
            "statement": self.statement,
            "incidents": [i.to_dict() for i in self.incidents],
            "personal_data_in_records": [p.to_dict() for p in self.personal_data_in_records],
        }


@dataclass(frozen=True, slots=True)
class Art50Figures(Row):
    """EU AI Act Art. 50 figures: synthetic content and its marking."""

    ai_originals: int = 0
    ai_renditions: int = 0
    signed_with_machine_readable_marking: int = 0
    marking: str = "C2PA manifest + signed XMP (IPTC digitalSourceType), verified offline"
    disclosure_status: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    copies_marked: int = 0
    copies_marking_lost: int = 0
    copies_altered: int = 0
    models: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "ai_originals": self.ai_originals,
            "ai_renditions": self.ai_renditions,
            "signed_with_machine_readable_marking": self.signed_with_machine_readable_marking,
            "marking": self.marking,
            "disclosure_status": dict(self.disclosure_status),
            "copies_marked": self.copies_marked,
            "copies_marking_lost": self.copies_marking_lost,
            "copies_altered": self.copies_altered,
            "models": dict(self.models),
        }
