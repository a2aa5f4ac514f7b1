"""The report's words: verdict labels, disclosure statuses, sections, codes, the glossary.

Pure: enums and their docstrings in, plain words out. A status added to
:class:`~provenance._core.types.Status` gets its value spelled out and its docstring in
the glossary without touching this module.
"""

from __future__ import annotations

import ast
import enum
import functools
import inspect
import itertools
import textwrap
from collections.abc import Iterable

from provenance._core.types import Status
from provenance.audit import AuditEvent

GDPR_NOTIFICATION_HOURS = 72
"""GDPR Art. 33(1): notify the supervisory authority within 72 hours of awareness."""

MARKED = frozenset({Status.TRUSTED, Status.VALID_UNTRUSTED})
ALTERED = frozenset({Status.TAMPERED, Status.INVALID_SIGNATURE})
FINDING_STATUSES = frozenset(
    {
        Status.TAMPERED,
        Status.INVALID_SIGNATURE,
        Status.INVALID_MANIFEST,
        Status.INVALID_IDENTITY,
        Status.KNOWN_STRIPPED,
        Status.SYNTHETIC_DUPLICATE,
    }
)

# Plain-words labels for the verdicts we know; a status added later gets its
# value spelled out (see status_label) and its docstring in the glossary.
STATUS_LABELS = {
    Status.TRUSTED: "Trusted",
    Status.VALID_UNTRUSTED: "Valid, signer not trusted",
    Status.TAMPERED: "Tampered",
    Status.INVALID_SIGNATURE: "Invalid signature",
    Status.INVALID_MANIFEST: "Malformed manifest",
    Status.INVALID_IDENTITY: "Invalid identity assertion",
    Status.UNSUPPORTED: "Manifest of an unsupported version or algorithm",
    Status.REMOTE_MANIFEST: "Remote manifest (not fetched)",
    Status.NO_PROVENANCE: "No provenance",
    Status.KNOWN_STRIPPED: "Provenance stripped (known image)",
    Status.SYNTHETIC_DUPLICATE: "Copy of a known AI image",
    Status.ERROR: "Could not be checked",
}


def parse_status(value: object) -> Status | None:
    """The :class:`~provenance._core.types.Status` a row's text names, or None for another value."""
    try:
        return Status(value)
    except (ValueError, TypeError):
        return None


def status_label(value: str | Status) -> str:
    """The human label of a verdict value (``known_stripped`` -> words).

    Args:
        value: A :class:`~provenance._core.types.Status`, its value, or any string.

    Returns:
        The plain-words label; an unknown value is spelled out, never hidden.
    """
    status = value if isinstance(value, Status) else parse_status(value)
    if status is not None:
        return STATUS_LABELS.get(status) or status.value.replace("_", " ").capitalize()
    return str(value).replace("_", " ").capitalize()


class DisclosureStatus(enum.Enum):
    """How an AI-generated original's disclosure stands, over every copy seen."""

    MARKED = "marked"
    """At least one copy was seen with its machine-readable marking intact, and none
    altered or stripped."""
    MARKING_LOST = "marking_lost"
    """A copy (the original or a rendition) was seen with its marking stripped or
    re-encoded away; the image is still recognised from the inventory."""
    ALTERED = "altered"
    """A copy was changed after it was signed, or its signature is invalid."""
    NOT_SEEN = "not_seen"
    """Neither the original nor any of its renditions was among the files scanned.
    This says nothing about files outside the scanned folders."""
    NOT_CHECKED = "not_checked"
    """No folder was scanned for this report (inventory only)."""

    @property
    def label(self) -> str:
        """The human label."""
        return {
            "marked": "Marked",
            "marking_lost": "Marking lost",
            "altered": "Altered",
            "not_seen": "Not seen in this scan",
            "not_checked": "Not checked",
        }[self.value]


class Section(enum.Enum):
    """A part of the recovery check (part 2), in the order the report shows them."""

    LOST_PROVENANCE = "lost_provenance"
    """Exact copies of signed images (same coded image data) from which the C2PA
    manifest and signed XMP were removed, typically by a CDN or an export tool."""
    ALTERED = "altered"
    """Files that carry our provenance but were changed after signing, or whose
    signature does not verify."""
    COPIES_OF_KNOWN = "copies_of_known"
    """Files without provenance that the perceptual search matched to an AI image
    in the inventory: a storefront rendition, a re-encode, a crop."""
    SYNTHETIC_DUPLICATES = "synthetic_duplicates"
    """Files matched as synthetic duplicates whose asset this inventory does not hold."""
    NOT_SEEN = "not_seen"
    """AI-generated originals of which no copy (the original or a rendition) was
    among the scanned files. Files outside the scanned folders are not looked at."""
    UNCHECKED = "unchecked"
    """Unreadable, corrupt or unsupported files; the error says which."""
    OTHER = "other"
    """Verdicts this report has no section of its own for (see the glossary): listed
    so that nothing is left out silently."""

    @property
    def title(self) -> str:
        """The section's heading."""
        return _SECTION_WORDS[self][0]

    @property
    def meaning(self) -> str:
        """What the section holds, in one or two sentences."""
        return _member_docs(Section).get(self.name, "")

    @property
    def card_label(self) -> str:
        """The words under the section's number in the summary cards."""
        return _SECTION_WORDS[self][1]

    @property
    def fix(self) -> str:
        """What to run about a finding in this section."""
        return _SECTION_WORDS[self][2]

    @property
    def is_finding(self) -> bool:
        """Whether a row here means a copy lost or broke its marking."""
        return self in FINDING_SECTIONS


FINDING_SECTIONS = (
    Section.LOST_PROVENANCE,
    Section.ALTERED,
    Section.COPIES_OF_KNOWN,
    Section.SYNTHETIC_DUPLICATES,
)

# Per section: heading, summary-card label, what to do.
_SECTION_WORDS = {
    Section.LOST_PROVENANCE: (
        "Copies whose provenance was stripped",
        "copies with provenance stripped",
        "Re-sign the published copy: provenance sign ORIGINAL --out PUBLISHED "
        "(or, for Magento's cache, provenance magento sign-cache pub/media).",
    ),
    Section.ALTERED: (
        "Copies altered after signing",
        "copies altered after signing",
        "Replace the file with the signed original, then find out who changed it.",
    ),
    Section.COPIES_OF_KNOWN: (
        "Resized or re-encoded copies of known AI images",
        "resized or re-encoded copies of known AI images",
        "A storefront rendition: provenance magento sign-cache pub/media; "
        "elsewhere: provenance renditions ORIGINAL COPY --record.",
    ),
    Section.SYNTHETIC_DUPLICATES: (
        "Copies of AI images not in this inventory",
        "copies of AI images not in this inventory",
        "Import the asset's inventory, or treat as third-party content.",
    ),
    Section.NOT_SEEN: (
        "Originals not seen in this scan",
        "originals not seen in this scan",
        "Nothing to do if the asset is retired; otherwise scan where it is published.",
    ),
    Section.UNCHECKED: (
        "Files that could not be checked",
        "files that could not be checked",
        "Read the error; fix or remove the file.",
    ),
    Section.OTHER: (
        "Files with other verdicts",
        "files with other verdicts",
        "Read the verdict's meaning in the glossary; re-sign if the file is ours.",
    ),
}

# Codes our own verifier adds, and the c2pa validation codes most often seen.
# Codes not listed get a generic explanation in the glossary.
_CODE_HELP = {
    "assertion.dataHash.mismatch": "The image bytes no longer match the hash the "
    "signer signed: the file changed after signing.",
    "assertion.bmffHash.mismatch": "The media bytes no longer match the signed hash.",
    "assertion.hashedURI.mismatch": "A signed part of the manifest was changed.",
    "claimSignature.mismatch": "The claim's signature does not match its content.",
    "signingCredential.untrusted": "The signer's certificate does not chain to a "
    "configured trust anchor.",
    "signingCredential.invalid": "The signer's certificate is malformed or not valid for signing.",
    "signingCredential.expired": "The signer's certificate had expired at signing time.",
    "general.error": "The C2PA validator reported an error it could not classify.",
    "provenance.metadata.stripped": "The C2PA manifest and signed XMP were removed; the "
    "image data itself is unchanged.",
    "provenance.inventory.essence.match": "The coded image data equals an asset in the "
    "inventory (exact match of the essence hash).",
    "provenance.inventory.perceptual.match": "The pixels match an AI image in the "
    "inventory (perceptual hash, confirmed by a second descriptor): a resized or "
    "re-encoded copy.",
    "provenance.inventory.perceptual.unconfirmed": "A perceptual hash was close to a "
    "known image, but the confirming check did not agree; not counted as a copy.",
    "provenance.inventory.perceptual.notSynthetic": "The closest known image is not AI-generated.",
    "provenance.inventory.perceptual.undecodable": "The file could not be decoded for "
    "the perceptual search.",
    "provenance.xmp.signature.invalid": "The signature over the XMP provenance record "
    "does not verify.",
    "provenance.xmp.signingCredential.untrusted": "The XMP record's signer does not "
    "chain to a configured trust anchor.",
    "provenance.xmp.essence.mismatch": "The image data differs from what the XMP record "
    "was signed for: the image changed after signing.",
    "provenance.xmp.field.mismatch": "A visible XMP field differs from the signed record.",
    "provenance.xmp.statement.invalid": "The signed XMP statement is malformed.",
    "provenance.xmp.unreadable": "The XMP packet could not be parsed safely.",
}


@functools.cache
def _member_docs(cls: type[enum.Enum]) -> dict[str, str]:
    """Attribute docstrings of an enum's members (the string under each member).

    Python keeps no such docstring at run time; they are read from the class
    source with :mod:`ast`, so whoever adds a member documents it once.
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for first, second in itertools.pairwise(body):
        if (
            isinstance(first, ast.Assign)
            and len(first.targets) == 1
            and isinstance(first.targets[0], ast.Name)
            and isinstance(second, ast.Expr)
            and isinstance(second.value, ast.Constant)
            and isinstance(second.value.value, str)
        ):
            docs[first.targets[0].id] = " ".join(second.value.value.split())
    return docs


def glossary(codes: Iterable[str] = ()) -> dict[str, list[dict[str, str]]]:
    """Every verdict, disclosure status, audit event and the given codes, in plain words.

    Args:
        codes: Failure codes shown in a report.

    Returns:
        ``{"verdicts"|"disclosure"|"events"|"sections"|"codes": [{"term", "label",
        "meaning"}]}``, verdicts in :class:`~provenance._core.types.Status` order.
    """
    status_docs = _member_docs(Status)
    event_docs = _member_docs(AuditEvent)
    disclosure_docs = _member_docs(DisclosureStatus)
    return {
        "verdicts": [
            {
                "term": s.value,
                "label": status_label(s),
                "meaning": status_docs.get(s.name, ""),
            }
            for s in Status
        ],
        "disclosure": [
            {"term": d.value, "label": d.label, "meaning": disclosure_docs.get(d.name, "")}
            for d in DisclosureStatus
        ],
        "sections": [{"term": x.value, "label": x.title, "meaning": x.meaning} for x in Section],
        "events": [
            {
                "term": e.value,
                "label": e.value.replace("_", " ").capitalize(),
                "meaning": event_docs.get(e.name, ""),
            }
            for e in AuditEvent
        ],
        "codes": [
            {
                "term": c,
                "label": c,
                "meaning": _CODE_HELP.get(c)
                or "A validation code from the C2PA validator or our verifier; see "
                "docs/verdicts.md and the C2PA specification's list of validation codes.",
            }
            for c in sorted(set(codes))
        ],
    }
