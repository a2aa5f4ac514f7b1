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

Layout: ``_types`` (kinds, actions, findings), ``_find`` (the detectors and
:func:`find_personal_data`), ``_policy`` (:class:`PiiPolicy` and applying it).
"""

from __future__ import annotations

from provenance._core.pii._find import find_personal_data
from provenance._core.pii._policy import FieldReport, PiiPolicy, apply_policy, check_fields
from provenance._core.pii._types import (
    DEFAULT_MAX_CHARS,
    MIN_HASH_KEY_BYTES,
    PiiAction,
    PiiFinding,
    PiiKind,
)

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
