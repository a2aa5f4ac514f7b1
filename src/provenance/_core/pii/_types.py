"""What personal-data screening talks about: kinds, actions, findings, limits."""

from __future__ import annotations

import enum
from dataclasses import dataclass

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
