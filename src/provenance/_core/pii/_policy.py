"""Apply a :class:`PiiPolicy` to free text: redact, hash, refuse or allow each finding."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from provenance._core.pii._find import _DIGITS, _normalise_names, find_personal_data
from provenance._core.pii._types import (
    _HASH_HEX_CHARS,
    _KIND_ORDER,
    _MAX_PASSES,
    MIN_HASH_KEY_BYTES,
    PiiAction,
    PiiFinding,
    PiiKind,
)
from provenance.errors import KeyConfigError, PersonalDataError, RecordError

# --- Policy ------------------------------------------------------------------------


def _empty_mapping() -> Mapping[str, PiiAction]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PiiPolicy:
    """What to do with personal data found in a free-text field.

    The default refuses to embed any field that holds personal data. A
    ``per_field`` entry overrides the default for one field (field names are
    those the caller passes to :func:`apply_policy`, e.g. ``"prompt"`` or
    ``"parameters.negative_prompt"``).

    ``names`` and ``hash_key`` are left out of the repr: the first is itself
    personal data, the second a secret.

    Attributes:
        default: The action for fields without an override.
        per_field: Overrides by field name; stored as a read-only mapping.
        names: Names and customer ids to detect, besides the built-in detectors.
        hash_key: The HMAC-SHA256 key for :attr:`PiiAction.HASH` (at least 16
            bytes); required when any action is HASH.

    Raises:
        KeyConfigError: An action is HASH and ``hash_key`` is missing or shorter
            than 16 bytes.
    """

    default: PiiAction = PiiAction.REFUSE
    per_field: Mapping[str, PiiAction] = field(default_factory=_empty_mapping)
    names: tuple[str, ...] = field(default=(), repr=False)
    hash_key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # A private copy, so the caller's dict cannot change a frozen policy.
        object.__setattr__(self, "per_field", MappingProxyType(dict(self.per_field)))
        object.__setattr__(self, "names", _normalise_names(self.names))
        actions = {self.default, *self.per_field.values()}
        if PiiAction.HASH in actions:
            if self.hash_key is None:
                raise KeyConfigError("the HASH personal-data action needs a hash_key")
            if len(self.hash_key) < MIN_HASH_KEY_BYTES:
                raise KeyConfigError(
                    f"the personal-data hash_key must be at least {MIN_HASH_KEY_BYTES} bytes"
                )

    def __reduce__(self) -> tuple[object, ...]:
        # Picklable for process pools (provenance.batch): a mappingproxy is not.
        return (PiiPolicy, (self.default, dict(self.per_field), self.names, self.hash_key))

    def __hash__(self) -> int:
        return hash((self.default, tuple(sorted(self.per_field.items())), self.names))

    def action_for(self, field: str) -> PiiAction:
        """Return the action for ``field``: its override, else the default."""
        return self.per_field.get(field, self.default)

    @classmethod
    def redact_all(cls, *, names: Sequence[str] = ()) -> PiiPolicy:
        """Return a policy that replaces every finding with ``[redacted:<kind>]``."""
        return cls(default=PiiAction.REDACT, names=tuple(names))

    @classmethod
    def hash_all(cls, hash_key: bytes, *, names: Sequence[str] = ()) -> PiiPolicy:
        """Return a policy that replaces every finding with a keyed-hash token.

        The token lets records that mention the same e-mail address or customer id
        be linked without revealing it, for as long as ``hash_key`` stays secret.
        That is pseudonymisation, not anonymisation: the output is still personal
        data under the GDPR.

        Raises:
            KeyConfigError: ``hash_key`` is shorter than 16 bytes.
        """
        return cls(default=PiiAction.HASH, names=tuple(names), hash_key=hash_key)

    @classmethod
    def refuse_all(cls, *, names: Sequence[str] = ()) -> PiiPolicy:
        """Return the default policy: refuse any field that holds personal data."""
        return cls(default=PiiAction.REFUSE, names=tuple(names))

    @classmethod
    def allow_all(cls) -> PiiPolicy:
        """Return a policy that embeds personal data unchanged. UNSAFE.

        Only for text known to carry no personal data, or whose data subjects
        consented to its publication: every copy of the image, for ever, carries
        whatever the text holds.
        """
        return cls(default=PiiAction.ALLOW)


def _normalised(kind: PiiKind, value: str) -> str:
    """Return the canonical form of a finding, so formatting does not change its hash."""
    if kind is PiiKind.EMAIL or kind is PiiKind.NAME:
        return " ".join(value.split()).casefold()
    if kind is PiiKind.PHONE:
        return ("+" if value.startswith("+") else "") + "".join(_DIGITS.findall(value))
    if kind is PiiKind.PAYMENT_CARD:
        return "".join(_DIGITS.findall(value))
    if kind is PiiKind.IBAN:
        return "".join(value.split()).upper()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:  # a merged span holding more than one address
        return value.lower()


def _hash_token(kind: PiiKind, value: str, key: bytes) -> str:
    # The kind is part of the message, so equal strings of different kinds differ.
    message = f"{kind.value}\x00{_normalised(kind, value)}".encode()
    digest = hmac.new(key, message, hashlib.sha256).hexdigest()
    return f"[{kind.value}:hmac-sha256:{digest[:_HASH_HEX_CHARS]}]"


def _kinds(findings: Sequence[PiiFinding]) -> tuple[PiiKind, ...]:
    return tuple(sorted({f.kind for f in findings}, key=_KIND_ORDER.__getitem__))


def apply_policy(field: str, text: str, policy: PiiPolicy) -> str:
    """Return the text to embed for one free-text field.

    Text without personal data is returned unchanged whatever the action.

    Args:
        field: The field name, used for per-field overrides and in the error.
        text: The free text.
        policy: What to do with personal data.

    Returns:
        ``text`` unchanged (no findings, or ALLOW), or with every finding replaced
        by ``[redacted:<kind>]`` (REDACT) or ``[<kind>:hmac-sha256:<16 hex>]``
        (HASH).

    Raises:
        PersonalDataError: The action is REFUSE and the text holds personal data.
            The message names the field and the kinds, never the data.
        RecordError: The text is too long to scan (and the action is not ALLOW),
            or personal data is still found after replacing it four times over.
    """
    action = policy.action_for(field)
    if action is PiiAction.ALLOW:
        return text
    findings = find_personal_data(text, names=policy.names)
    if not findings:
        return text
    if action is PiiAction.REFUSE:
        kinds = ", ".join(kind.value for kind in _kinds(findings))
        raise PersonalDataError(
            f"field '{field}' contains personal data ({kinds}); refusing to embed it"
        )
    # Replacing a finding changes the context of its neighbours: "x@y.de+4930123456"
    # holds one e-mail address, but once it is a token the phone number after it
    # stands on its own. Rescan until nothing is left; tokens themselves are inert
    # unless a configured name matches their text, hence the bound.
    out = text
    for _ in range(_MAX_PASSES):
        out = _replace(out, findings, action, policy)
        findings = find_personal_data(out, names=policy.names, max_chars=len(out))
        if not findings:
            return out
    raise RecordError(
        f"field '{field}': personal data is still found after {_MAX_PASSES} passes "
        "(does a configured name match a replacement token?)"
    )


def _replace(
    text: str, findings: Sequence[PiiFinding], action: PiiAction, policy: PiiPolicy
) -> str:
    parts: list[str] = []
    pos = 0
    for finding in findings:
        parts.append(text[pos : finding.start])
        if action is PiiAction.HASH:
            if policy.hash_key is None:  # PiiPolicy refuses this; kept for the type checker
                raise KeyConfigError("the HASH personal-data action needs a hash_key")
            value = text[finding.start : finding.end]
            parts.append(_hash_token(finding.kind, value, policy.hash_key))
        else:
            parts.append(f"[redacted:{finding.kind.value}]")
        pos = finding.end
    parts.append(text[pos:])
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class FieldReport:
    """What :func:`apply_policy` would do with one field; for ``pii-check``.

    Attributes:
        field: The field name.
        action: The policy's action for the field. It only matters when
            ``findings`` is non-zero: clean text is embedded unchanged.
        kinds: The kinds of personal data found, in :class:`PiiKind` order.
        findings: How many findings there are.
        too_long: The text was too long to scan; every action but ALLOW would
            refuse it.
    """

    field: str
    action: PiiAction
    kinds: tuple[PiiKind, ...] = ()
    findings: int = 0
    too_long: bool = False

    @property
    def refused(self) -> bool:
        """Whether :func:`apply_policy` would raise for this field."""
        if self.action is PiiAction.ALLOW:
            return False
        return self.too_long or (self.action is PiiAction.REFUSE and self.findings > 0)

    def to_dict(self) -> dict[str, str | int | bool | list[str]]:
        """Return a JSON-friendly dict (enums as their string values)."""
        return {
            "field": self.field,
            "action": self.action.value,
            "kinds": [kind.value for kind in self.kinds],
            "findings": self.findings,
            "too_long": self.too_long,
            "refused": self.refused,
        }


def check_fields(fields: Mapping[str, str], policy: PiiPolicy) -> tuple[FieldReport, ...]:
    """Report, per field, the personal data found and what the policy would do.

    Never raises for personal data or over-long text: both are reported.

    Args:
        fields: Field names and their free text, in the order to report them.
        policy: The policy to evaluate.

    Returns:
        One report per field, in the order of ``fields``.
    """
    reports = []
    for name, text in fields.items():
        action = policy.action_for(name)
        try:
            findings = find_personal_data(text, names=policy.names)
        except RecordError:
            reports.append(FieldReport(name, action, too_long=True))
            continue
        reports.append(FieldReport(name, action, _kinds(findings), len(findings)))
    return tuple(reports)
