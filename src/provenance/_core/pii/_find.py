"""Detect personal data in free text: e-mail, phone, card, IBAN, IP, listed names (linear time)."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence

from provenance._core.pii._types import _PRIORITY, DEFAULT_MAX_CHARS, PiiFinding, PiiKind
from provenance.errors import RecordError

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


# Long by design: one numbered rule per step, in the order the docstring lists them.
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
