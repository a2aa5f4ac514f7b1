"""Personal-data detection and the policy applied to free text (DESIGN.md decision 13).

A provenance record is minimal by design: free text such as a prompt is scanned
for personal data before it is embedded, and each finding is redacted, replaced
by a keyed hash, refused or (explicitly) allowed, according to a
:class:`PiiPolicy`. Nothing is ever embedded silently.

What is detected, and how:

- **E-mail addresses**: ``local@domain.tld`` with a letter-only top-level domain;
  Unicode letters are accepted (``müller@example.de``). Obfuscated forms
  (``jane at example dot com``) and bare hosts (``user@localhost``) are not.
- **Phone numbers**: see :func:`_is_phone` for the numbered rules. In short: a
  ``+`` country code makes any run of 7 to 15 digits a phone number; without
  one, the digits must be *formatted* (spaces, dashes, dots, slashes or a
  parenthesised area code) and look like a phone number rather than a date,
  a decimal list or a thousands-grouped quantity. A bare digit run such as
  ``1234567890123`` is never a phone number: seeds, SKUs, order numbers and
  timestamps look like that. (Generation parameters such as ``seed`` are
  integers and are not text-scanned at all.)
- **Payment card numbers**: 13 to 19 digits, single spaces or dashes between
  them, a major-industry digit of 2 to 6 (Mastercard/Mir, Amex/JCB/Diners, Visa,
  Mastercard/Maestro, Discover/UnionPay) and a valid Luhn check digit.
- **IBANs**: country code, two check digits and the BBAN, spaces allowed, with the
  registered length of the country (EU/EEA, GB, CH and neighbours) and a valid
  ISO 13616 mod-97 check.
- **IP addresses**: dotted IPv4 and IPv6 (including ``::`` compression and an
  embedded IPv4 tail), validated by :mod:`ipaddress`; private and loopback
  addresses count too.
- **Names and customer ids** from a configurable list, case-insensitively and
  whole-word only (not inside a longer word); white space inside a name matches
  any run of white space.

Digits are ASCII digits. Overlapping findings are merged into one finding
covering both, so redacting a finding never leaves part of another visible.

Bounded time: every pattern has bounded repetition and anchors its start with a
look-behind, so a scan is linear in the text length (no catastrophic
backtracking). Texts longer than ``max_chars`` (64 Ki characters by default) are
refused with a :class:`~provenance.errors.RecordError` rather than scanned; free
text in a provenance record is far shorter than that.

This module is pure: values in, values out. It never logs, prints or stores the
text it scans, and no repr, token or error message it produces contains the
personal data it found.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from provenance.errors import KeyConfigError, PersonalDataError, RecordError

__all__ = [
    "DEFAULT_MAX_CHARS",
    "MIN_HASH_KEY_BYTES",
    "FieldReport",
    "PiiAction",
    "PiiFinding",
    "PiiKind",
    "PiiPolicy",
    "apply_policy",
    "check_fields",
    "find_personal_data",
]

DEFAULT_MAX_CHARS = 65_536
MIN_HASH_KEY_BYTES = 16  # an HMAC key for PiiAction.HASH, in bytes
_HASH_HEX_CHARS = 16
_MAX_PASSES = 4


class PiiKind(enum.Enum):
    """A kind of personal data; the value names it in tokens and reports."""

    EMAIL = "email"
    PHONE = "phone"
    PAYMENT_CARD = "payment_card"
    IBAN = "iban"
    IP_ADDRESS = "ip_address"
    NAME = "name"


# When two overlapping findings are equally long, the earlier kind names the merged
# finding: structured, validated kinds first, the heuristic ones last.
_PRIORITY: dict[PiiKind, int] = {
    PiiKind.EMAIL: 0,
    PiiKind.IBAN: 1,
    PiiKind.PAYMENT_CARD: 2,
    PiiKind.IP_ADDRESS: 3,
    PiiKind.PHONE: 4,
    PiiKind.NAME: 5,
}
_KIND_ORDER: dict[PiiKind, int] = {kind: i for i, kind in enumerate(PiiKind)}


class PiiAction(enum.Enum):
    """What a :class:`PiiPolicy` does with a field that holds personal data."""

    REDACT = "redact"
    HASH = "hash"
    REFUSE = "refuse"
    ALLOW = "allow"


@dataclass(frozen=True, slots=True)
class PiiFinding:
    """Where one piece of personal data sits in a text.

    A finding holds offsets only, never the matched text, so its repr is safe to
    log.

    Attributes:
        kind: What was found.
        start: Offset of the first character, in ``str`` indices.
        end: Offset one past the last character.
    """

    kind: PiiKind
    start: int
    end: int


# --- Detectors -------------------------------------------------------------------
# Every pattern starts with a look-behind that forbids starting inside a run of the
# characters it consumes, and every repetition is bounded, so each start position
# costs a bounded number of steps and a scan is linear in the text.

_EMAIL = re.compile(
    r"(?<![\w.%+-])"
    r"[\w%+-][\w.%+-]{0,63}"  # local part, at most 64 characters (RFC 5321)
    r"@"
    r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.){1,8}"  # domain labels
    r"[^\W\d_]{2,63}"  # a letters-only top-level domain
    r"(?![\w-])"
)

_PHONE = re.compile(
    r"(?<![\w+])"
    r"(?P<cc>\+[0-9]{1,3}[ .\-/]?)?"
    r"(?P<area>\([0-9]{1,5}\)[ .\-/]?)?"
    r"(?P<groups>[0-9]{1,15}(?:[ .\-/][0-9]{1,15}){0,7})"
    r"(?!\w)"
)

_CARD = re.compile(r"(?<![\w])[0-9](?:[ \-]?[0-9]){12,18}(?![\w])")
_CARD_SEPARATORS = re.compile(r"[ \-]")

_IBAN_START = re.compile(r"(?<![0-9A-Za-z])[A-Za-z]{2}[0-9]{2}")

_IPV4 = re.compile(r"(?<![\w.])[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?!\w|\.[0-9])")
# The first colon of an IPv6 address comes within its first five characters.
_IPV6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:.]{2,45}(?![\w:.])")

_DIGITS = re.compile(r"[0-9]+")
_WHITESPACE = re.compile(r"\s+")

# ISO 13616 registered IBAN lengths: the EU/EEA, GB, CH and their neighbours.
_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "BA": 20, "BE": 16, "BG": 22, "CH": 21,
    "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FO": 18,
    "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MT": 31, "NL": 18, "NO": 15, "PL": 28,
    "PT": 25, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "TR": 26, "UA": 29, "VA": 22, "XK": 20,
}  # fmt: skip


def _luhn_valid(digits: str) -> bool:
    """Return whether ``digits`` ends in a valid Luhn (mod 10) check digit."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if i % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _iban_valid(iban: str) -> bool:
    """Return whether a compact, upper-case IBAN passes the ISO 13616 checks."""
    # 1. Known country and its registered length.
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    # 2. Check digits are 02..98 (00, 01 and 99 are never issued).
    if not 2 <= int(iban[2:4]) <= 98:
        return False
    # 3. Move the first four characters to the end, letters to 10..35, mod 97 == 1.
    rearranged = iban[4:] + iban[:4]
    numeric = "".join(str(int(char, 36)) for char in rearranged)
    return int(numeric) % 97 == 1


def _find_emails(text: str) -> list[PiiFinding]:
    return [PiiFinding(PiiKind.EMAIL, m.start(), m.end()) for m in _EMAIL.finditer(text)]


def _is_phone(match: re.Match[str]) -> bool:
    """Decide whether a run of formatted digits is a phone number.

    The rules, in order:

    1. 7 to 15 digits in all (E.164 allows at most 15).
    2. A ``+`` country code: a phone number.
    3. Otherwise the digits must be formatted: a bare run is a seed, a SKU, an
       order number or a timestamp, never a phone number here.
    4. A date at the start (``2024-01-15``, ``15.01.2024``, ``1/2/2024``) is not
       a phone number.
    5. Apart from the first group, no group is a single digit (``0.5 0.25``,
       ``1 2 3 4 5 6 7`` are lists of numbers).
    6. A leading trunk ``0`` (most of Europe: ``030 1234567``, ``06 12 34 56 78``,
       ``07700 900123``) or a parenthesised area code (``(555) 123-4567``): a
       phone number.
    7. A thousands-grouped quantity (``1 234 567``, ``123.456.789``) is not.
    8. Otherwise the groups must share one separator, and be either the
       North-American local form ``555-1234``, or 9 or more digits in 2 to 4
       groups whose first has 2 or 3 digits, after an optional trunk ``1``
       (``555-123-4567``, ``1-800-555-1234``, ``612 34 56 78``,
       ``333 123 4567``). Lists such as ``1024 768 512`` are not.
    """
    groups = _DIGITS.findall(match.group("groups"))
    cc = match.group("cc")
    area = match.group("area")
    digits = sum(len(g) for g in groups)
    digits += len(cc.strip("+ .-/")) if cc else 0
    digits += len(area.strip("() .-/")) if area else 0
    # 1.
    if not 7 <= digits <= 15:
        return False
    # 2.
    if cc:
        return True
    # 3.
    if area is None and len(groups) == 1:
        return False
    # 4.
    if len(groups) >= 3:
        a, b, c = (len(g) for g in groups[:3])
        if (a == 4 and b <= 2 and c <= 2) or (a <= 2 and b <= 2 and c == 4):
            return False
    # 5.
    if any(len(g) == 1 for g in groups[1:]):
        return False
    # 6.
    if area is not None or groups[0].startswith("0"):
        return True
    # 7.
    if len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:]):
        return False
    # 8.
    lengths = [len(g) for g in groups]
    separators = set(_DIGITS.sub("", match.group("groups")))
    if len(separators) != 1:
        return False
    if lengths == [3, 4]:
        return separators == {"-"}
    if lengths[0] == 1 and groups[0] == "1":  # North-American trunk prefix
        lengths = lengths[1:]
    return digits >= 9 and 2 <= len(lengths) <= 4 and 2 <= lengths[0] <= 3


def _find_phones(text: str) -> list[PiiFinding]:
    return [
        PiiFinding(PiiKind.PHONE, m.start(), m.end()) for m in _PHONE.finditer(text) if _is_phone(m)
    ]


def _find_cards(text: str) -> list[PiiFinding]:
    found = []
    for m in _CARD.finditer(text):
        candidate = m.group()
        # Try the whole run, then shorter prefixes ending at a separator, so a card
        # followed by its security code ("4111 1111 1111 1111 123") is still found.
        ends = [len(candidate)] + [
            sep.start() for sep in reversed(list(_CARD_SEPARATORS.finditer(candidate)))
        ]
        for end in ends:
            digits = _CARD_SEPARATORS.sub("", candidate[:end])
            if 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn_valid(digits):
                found.append(PiiFinding(PiiKind.PAYMENT_CARD, m.start(), m.start() + end))
                break
    return found


def _find_ibans(text: str) -> list[PiiFinding]:
    found = []
    for m in _IBAN_START.finditer(text):
        country = m.group()[:2].upper()
        length = _IBAN_LENGTHS.get(country)
        if length is None:
            continue
        # Read exactly the registered length, allowing one space between characters.
        chars = [m.group().upper()]
        taken = 4
        pos = m.end()
        while taken < length and pos < len(text):
            if text[pos] == " ":
                pos += 1
                if pos == len(text):
                    break
            char = text[pos]
            if not (char.isascii() and char.isalnum()):
                break
            chars.append(char.upper())
            taken += 1
            pos += 1
        if taken != length:
            continue
        if pos < len(text) and (text[pos].isalnum() or text[pos] == "_"):
            continue
        if _iban_valid("".join(chars)):
            found.append(PiiFinding(PiiKind.IBAN, m.start(), pos))
    return found


def _find_ips(text: str) -> list[PiiFinding]:
    found = []
    for m in _IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        found.append(PiiFinding(PiiKind.IP_ADDRESS, m.start(), m.end()))
    for m in _IPV6.finditer(text):
        candidate = m.group()
        # A sentence may end right after an address ("... at ::1.").
        for trimmed in dict.fromkeys((candidate, candidate.rstrip("."), candidate.rstrip(".:"))):
            if trimmed.count(":") < 2 or not any(c not in ":." for c in trimmed):
                continue
            try:
                ipaddress.IPv6Address(trimmed)
            except ValueError:
                continue
            found.append(PiiFinding(PiiKind.IP_ADDRESS, m.start(), m.start() + len(trimmed)))
            break
    return found


@functools.lru_cache(maxsize=64)
def _name_pattern(names: tuple[str, ...]) -> re.Pattern[str] | None:
    """Compile one whole-word, case-insensitive pattern for a list of names."""
    alternatives = sorted(
        {r"\s+".join(re.escape(part) for part in name.split()) for name in names if name.strip()},
        key=lambda alt: (-len(alt), alt),
    )
    if not alternatives:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


def _find_names(text: str, names: tuple[str, ...]) -> list[PiiFinding]:
    pattern = _name_pattern(names)
    if pattern is None:
        return []
    return [PiiFinding(PiiKind.NAME, m.start(), m.end()) for m in pattern.finditer(text)]


def _merge(findings: list[PiiFinding]) -> tuple[PiiFinding, ...]:
    """Merge overlapping findings into one each, named after the longest member."""

    def rank(finding: PiiFinding) -> tuple[int, int]:
        return (finding.end - finding.start, -_PRIORITY[finding.kind])

    ordered = sorted(findings, key=lambda f: (f.start, -(f.end - f.start), _PRIORITY[f.kind]))
    # Each cluster: (start, end, the longest member so far).
    clusters: list[tuple[int, int, PiiFinding]] = []
    for finding in ordered:
        if clusters and finding.start < clusters[-1][1]:
            start, end, best = clusters[-1]
            best = finding if rank(finding) > rank(best) else best
            clusters[-1] = (start, max(end, finding.end), best)
        else:
            clusters.append((finding.start, finding.end, finding))
    return tuple(PiiFinding(best.kind, start, end) for start, end, best in clusters)


def _normalise_names(names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        names = (names,)
    return tuple(dict.fromkeys(" ".join(name.split()) for name in names if name.strip()))


def find_personal_data(
    text: str, *, names: Sequence[str] = (), max_chars: int = DEFAULT_MAX_CHARS
) -> tuple[PiiFinding, ...]:
    """Find the personal data in ``text``.

    Args:
        text: The free text to scan.
        names: Names and customer ids to look for, matched case-insensitively and
            as whole words.
        max_chars: The longest text scanned; longer texts are refused.

    Returns:
        The findings, sorted by offset and non-overlapping (overlapping matches
        are merged into one finding covering all of them).

    Raises:
        RecordError: ``text`` is longer than ``max_chars`` characters.
    """
    if len(text) > max_chars:
        raise RecordError(
            f"text of {len(text)} characters exceeds the {max_chars}-character limit "
            "for personal-data scanning"
        )
    findings = [
        *_find_emails(text),
        *_find_ibans(text),
        *_find_cards(text),
        *_find_ips(text),
        *_find_phones(text),
        *_find_names(text, _normalise_names(names)),
    ]
    return _merge(findings)


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
