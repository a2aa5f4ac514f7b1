"""The provenance record: what a generator reports about one synthetic image.

A record is typed, frozen and validated on construction, and has one canonical
JSON form (sorted keys, no insignificant white space, UTF-8, times in UTC with a
``Z``) whose bytes are what we hash and sign. Records are minimal by design
(GDPR data minimisation, DESIGN.md decision 13): generation parameters come from
an allow-list, and free text is screened by :mod:`provenance._core.pii` before it is
embedded anywhere.

This module owns no I/O and never imports c2pa.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

from provenance._core.canonical import canonical_json as canonical_json
from provenance.errors import RecordError

__all__ = [
    "DEFAULT_PARAMETER_ALLOWLIST",
    "IPTC_DIGITAL_SOURCE_TYPE_BASE",
    "DigitalSourceType",
    "ParameterValue",
    "ParentRef",
    "ProvenanceRecord",
]

IPTC_DIGITAL_SOURCE_TYPE_BASE = "http://cv.iptc.org/newscodes/digitalsourcetype/"
_C2PA_DIGITAL_SOURCE_TYPE_BASE = "http://c2pa.org/digitalsourcetype/"

RECORD_VERSION = 1

ParameterValue = str | int | float | bool

# Parameters a generator may report. Anything else is refused: an unknown key is
# where personal data or trade secrets slip in unnoticed.
DEFAULT_PARAMETER_ALLOWLIST: frozenset[str] = frozenset(
    {
        "aspect_ratio",
        "cfg_scale",
        "guidance_scale",
        "height",
        "lora",
        "negative_prompt",
        "quality",
        "sampler",
        "scheduler",
        "seed",
        "steps",
        "strength",
        "style_preset",
        "upscaler",
        "width",
    }
)

# Parameters whose value is free text and therefore goes through the
# personal-data policy before it is embedded.
FREE_TEXT_PARAMETERS: frozenset[str] = frozenset({"negative_prompt", "style_preset", "lora"})

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_PARAM_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_TEXT = 4096
# Control characters (tab and newline allowed where text may span lines), DEL,
# the non-characters U+FFFE/U+FFFF and lone surrogates.
_BAD_TEXT = re.compile("[\x00-\x1f\x7f\ufffe\uffff\ud800-\udfff]")
_BAD_TEXT_MULTILINE = re.compile("[\x00-\x08\x0b-\x1f\x7f\ufffe\uffff\ud800-\udfff]")


class DigitalSourceType(enum.Enum):
    """The IPTC NewsCodes digital source type vocabulary.

    The value is the code; :attr:`uri` is the full IPTC URI that C2PA actions and
    XMP ``Iptc4xmpExt:DigitalSourceType`` carry.
    """

    ALGORITHMIC_MEDIA = "algorithmicMedia"
    ALGORITHMICALLY_ENHANCED = "algorithmicallyEnhanced"
    COMPOSITE = "composite"
    COMPOSITE_CAPTURE = "compositeCapture"
    COMPOSITE_SYNTHETIC = "compositeSynthetic"
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = "compositeWithTrainedAlgorithmicMedia"
    COMPUTATIONAL_CAPTURE = "computationalCapture"
    DATA_DRIVEN_MEDIA = "dataDrivenMedia"
    DIGITAL_CAPTURE = "digitalCapture"
    DIGITAL_CREATION = "digitalCreation"
    HUMAN_EDITS = "humanEdits"
    MINOR_HUMAN_EDITS = "minorHumanEdits"
    NEGATIVE_FILM = "negativeFilm"
    POSITIVE_FILM = "positiveFilm"
    PRINT = "print"
    SCREEN_CAPTURE = "screenCapture"
    TRAINED_ALGORITHMIC_MEDIA = "trainedAlgorithmicMedia"
    VIRTUAL_RECORDING = "virtualRecording"

    @property
    def uri(self) -> str:
        """The full IPTC vocabulary URI."""
        return IPTC_DIGITAL_SOURCE_TYPE_BASE + self.value

    @property
    def is_synthetic(self) -> bool:
        """Whether the type says a model or algorithm made (part of) the image."""
        return self in _SYNTHETIC

    @classmethod
    def parse(cls, text: str) -> DigitalSourceType:
        """Accept a code, an IPTC URI or a C2PA-namespace URI.

        Raises:
            RecordError: The text is not in the vocabulary.
        """
        code = text.strip()
        for base in (IPTC_DIGITAL_SOURCE_TYPE_BASE, _C2PA_DIGITAL_SOURCE_TYPE_BASE):
            if code.startswith(base):
                code = code[len(base) :]
                break
        try:
            return cls(code)
        except ValueError:
            raise RecordError(
                f"unknown digital_source_type {text!r}; expected an IPTC code such as "
                "'trainedAlgorithmicMedia'"
            ) from None


_SYNTHETIC = frozenset(
    {
        DigitalSourceType.ALGORITHMIC_MEDIA,
        DigitalSourceType.COMPOSITE_SYNTHETIC,
        DigitalSourceType.COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
        DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA,
    }
)


@dataclass(frozen=True, slots=True)
class ParentRef:
    """A reference from a rendition or edit to the asset it was derived from.

    Attributes:
        sha256_hex: SHA-256 of the parent file's exact bytes.
        essence_sha256_hex: Essence hash of the parent (coded image data only).
        asset_id: The parent's asset id, when it is known.
    """

    sha256_hex: str
    essence_sha256_hex: str | None = None
    asset_id: str | None = None

    def __post_init__(self) -> None:
        _check_hex("parents[].sha256", self.sha256_hex)
        if self.essence_sha256_hex is not None:
            _check_hex("parents[].essence_sha256", self.essence_sha256_hex)
        if self.asset_id is not None:
            _check_text("parents[].asset_id", self.asset_id, max_chars=128)

    def to_dict(self) -> dict[str, str]:
        """The JSON-ready form, without absent fields."""
        out = {"sha256": self.sha256_hex}
        if self.essence_sha256_hex is not None:
            out["essence_sha256"] = self.essence_sha256_hex
        if self.asset_id is not None:
            out["asset_id"] = self.asset_id
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParentRef:
        """Build from the JSON form.

        Raises:
            RecordError: A field is missing or malformed.
        """
        if not isinstance(data, Mapping):
            raise RecordError("parents[] must be objects")
        _reject_unknown("parents[]", data, {"sha256", "essence_sha256", "asset_id"})
        sha = data.get("sha256")
        if not isinstance(sha, str):
            raise RecordError("parents[].sha256 is required (64 hex characters)")
        return cls(
            sha256_hex=sha,
            essence_sha256_hex=_opt_str(data, "essence_sha256", "parents[]"),
            asset_id=_opt_str(data, "asset_id", "parents[]"),
        )


@dataclass(frozen=True, slots=True)
class ProvenanceRecord:
    """What a generator reports about one image; validated on construction.

    Attributes:
        generator: The tool or service that produced the image, with its version.
        model: The model name.
        model_version: The model version.
        digital_source_type: IPTC digital source type (AI-made images use
            ``TRAINED_ALGORITHMIC_MEDIA``, AI edits
            ``COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA``).
        created_at: When the image was generated (timezone-aware).
        parameters: Generation parameters from the allow-list.
        prompt: The prompt, if it may be kept; screened for personal data before
            it is embedded.
        parents: Assets this one was derived from.
    """

    generator: str
    model: str
    model_version: str
    digital_source_type: DigitalSourceType
    created_at: datetime
    parameters: Mapping[str, ParameterValue] = field(default_factory=lambda: MappingProxyType({}))
    prompt: str | None = None
    parents: tuple[ParentRef, ...] = ()

    def __post_init__(self) -> None:
        _check_text("generator", self.generator, max_chars=256)
        _check_text("model", self.model, max_chars=256)
        _check_text("model_version", self.model_version, max_chars=64)
        if not isinstance(self.digital_source_type, DigitalSourceType):
            raise RecordError("digital_source_type must be a DigitalSourceType")
        if not isinstance(self.created_at, datetime) or self.created_at.tzinfo is None:
            raise RecordError("created_at must be a timezone-aware datetime")
        if self.prompt is not None:
            _check_text("prompt", self.prompt, max_chars=_MAX_TEXT, allow_newlines=True)
        params = dict(self.parameters)
        for key, value in params.items():
            _check_parameter(key, value)
        object.__setattr__(self, "parameters", MappingProxyType(dict(sorted(params.items()))))
        parents = tuple(self.parents)
        if not all(isinstance(p, ParentRef) for p in parents):
            raise RecordError("parents must be ParentRef values")
        object.__setattr__(self, "parents", parents)

    def _with_parents(self, parents: Any) -> ProvenanceRecord:
        # A rendition's record is its original's with new parents (one per rendition
        # of an import): the other fields were checked when this frozen record was
        # made, so only the parents are; the text checks were 10 us of 11.
        parents = tuple(parents)
        if not all(isinstance(p, ParentRef) for p in parents):
            raise RecordError("parents must be ParentRef values")
        copy = object.__new__(ProvenanceRecord)
        for name in _FIELDS:
            object.__setattr__(copy, name, getattr(self, name))
        object.__setattr__(copy, "parents", parents)
        return copy

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable for process pools (provenance.batch): a mappingproxy is not.
        values = {name: getattr(self, name) for name in _FIELDS}
        values["parameters"] = dict(self.parameters)
        return (_record_from_fields, (values,))

    @property
    def is_synthetic(self) -> bool:
        """Whether the digital source type says the image is AI-made."""
        return self.digital_source_type.is_synthetic

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form; ``from_dict(to_dict())`` gives an equal record."""
        out: dict[str, Any] = {
            "version": RECORD_VERSION,
            "generator": self.generator,
            "model": self.model,
            "model_version": self.model_version,
            "digital_source_type": self.digital_source_type.value,
            "created_at": format_time(self.created_at),
            "parameters": dict(self.parameters),
        }
        if self.prompt is not None:
            out["prompt"] = self.prompt
        if self.parents:
            out["parents"] = [p.to_dict() for p in self.parents]
        return out

    def to_canonical_json(self) -> bytes:
        """The canonical bytes that are hashed and signed.

        Sorted keys, ``,``/``:`` separators, UTF-8 without escapes, no NaN.
        """
        return canonical_json(self.to_dict())

    def replace(self, **changes: Any) -> ProvenanceRecord:
        """A copy with some fields changed (validated again)."""
        if changes.keys() == {"parents"}:
            return self._with_parents(changes["parents"])
        values = {name: getattr(self, name) for name in _FIELDS}
        values.update(changes)
        return ProvenanceRecord(**values)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        allowed_parameters: frozenset[str] = DEFAULT_PARAMETER_ALLOWLIST,
    ) -> ProvenanceRecord:
        """Build and validate a record from its JSON form.

        Unknown top-level keys are refused, except ``illustrative`` (fixtures
        mark themselves so) and ``version``.

        Args:
            data: The decoded JSON object.
            allowed_parameters: Parameter names that may be reported.

        Raises:
            RecordError: A field is missing, unknown or malformed; the message
                names it.
        """
        if not isinstance(data, Mapping):
            raise RecordError("a record must be a JSON object")
        _reject_unknown("record", data, _JSON_KEYS)
        version = data.get("version", RECORD_VERSION)
        if version != RECORD_VERSION:
            raise RecordError(f"unsupported record version {version!r}")
        for key in ("generator", "model", "model_version", "digital_source_type", "created_at"):
            if key not in data:
                raise RecordError(f"record field '{key}' is required")
        params = data.get("parameters", {})
        if not isinstance(params, Mapping):
            raise RecordError("record field 'parameters' must be an object")
        unknown = sorted(set(params) - allowed_parameters)
        if unknown:
            raise RecordError(
                f"parameter {unknown[0]!r} is not in the allow-list; allowed: "
                + ", ".join(sorted(allowed_parameters))
            )
        parents_raw = data.get("parents", [])
        if not isinstance(parents_raw, list):
            raise RecordError("record field 'parents' must be a list")
        dst = data["digital_source_type"]
        if not isinstance(dst, str):
            raise RecordError("record field 'digital_source_type' must be a string")
        return cls(
            generator=_req_str(data, "generator"),
            model=_req_str(data, "model"),
            model_version=_req_str(data, "model_version"),
            digital_source_type=DigitalSourceType.parse(dst),
            created_at=parse_time(data["created_at"]),
            parameters=params,
            prompt=_opt_str(data, "prompt", "record"),
            parents=tuple(ParentRef.from_dict(p) for p in parents_raw),
        )

    @classmethod
    def from_json(
        cls,
        text: str | bytes,
        *,
        allowed_parameters: frozenset[str] = DEFAULT_PARAMETER_ALLOWLIST,
    ) -> ProvenanceRecord:
        """Parse a record from JSON text.

        Raises:
            RecordError: The text is not JSON or the record is invalid.
        """
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise RecordError(f"record is not valid JSON: {exc}") from None
        return cls.from_dict(data, allowed_parameters=allowed_parameters)


_FIELDS = (
    "generator",
    "model",
    "model_version",
    "digital_source_type",
    "created_at",
    "parameters",
    "prompt",
    "parents",
)
_JSON_KEYS = frozenset(_FIELDS) | {"version", "illustrative"}


def format_time(moment: datetime, *, milliseconds: bool = False) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix: the one formatter of times we write.

    Args:
        moment: The time (a naive one is read as local time).
        milliseconds: Keep milliseconds (the audit log's precision); otherwise
            whole seconds, truncated.
    """
    utc = moment.astimezone(timezone.utc)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{utc.microsecond // 1000:03d}Z" if milliseconds else f"{text}Z"


def parse_time(value: Any) -> datetime:
    """Parse an RFC 3339 time with an explicit offset or ``Z``.

    Raises:
        RecordError: Not a string, not RFC 3339, or no timezone.
    """
    if not isinstance(value, str):
        raise RecordError("created_at must be an RFC 3339 string such as 2026-01-31T12:00:00Z")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RecordError(f"created_at {value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise RecordError(f"created_at {value!r} has no timezone; add 'Z' or an offset")
    return moment


def _check_hex(name: str, value: object) -> None:
    if not isinstance(value, str) or not _SHA256_HEX.match(value):
        raise RecordError(f"{name} must be 64 lowercase hex characters")


def _check_text(name: str, value: object, *, max_chars: int, allow_newlines: bool = False) -> None:
    if not isinstance(value, str):
        raise RecordError(f"record field '{name}' must be a string")
    if not value.strip():
        raise RecordError(f"record field '{name}' must not be empty")
    if len(value) > max_chars:
        raise RecordError(f"record field '{name}' is longer than {max_chars} characters")
    # One regex scan instead of a Python loop per character (a record is checked
    # on every sign and every verify); the first bad character decides the message.
    found = (_BAD_TEXT_MULTILINE if allow_newlines else _BAD_TEXT).search(value)
    if found is not None:
        if ord(found.group()) < 0x20:
            raise RecordError(f"record field '{name}' contains a control character")
        raise RecordError(f"record field '{name}' contains a non-text character")


def _check_parameter(key: object, value: object) -> None:
    if not isinstance(key, str) or not _PARAM_KEY.match(key):
        raise RecordError(f"parameter name {key!r} must match [a-z][a-z0-9_]*")
    if isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecordError(f"parameter '{key}' must be a finite number")
        return
    if isinstance(value, str):
        _check_text(f"parameters.{key}", value, max_chars=_MAX_TEXT, allow_newlines=True)
        return
    raise RecordError(f"parameter '{key}' must be a string, number or boolean")


def _reject_unknown(where: str, data: Mapping[str, Any], known: set[str] | frozenset[str]) -> None:
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise RecordError(f"unknown {where} field {unknown[0]!r}")


def _req_str(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise RecordError(f"record field '{key}' must be a string")
    return value


def _opt_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise RecordError(f"{where} field '{key}' must be a string")
    return value


def _record_from_fields(values: dict[str, Any]) -> ProvenanceRecord:
    """Unpickle a :class:`ProvenanceRecord` (validated again)."""
    return ProvenanceRecord(**values)
