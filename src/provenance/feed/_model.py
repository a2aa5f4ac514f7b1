"""What a feed check talks about: feed formats, image states, products and their images."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class FeedFormat(enum.Enum):
    """The kind of feed read."""

    GOOGLE_RSS = "google_rss"
    """Google Merchant Center RSS 2.0 XML."""
    GOOGLE_ATOM = "google_atom"
    """Google Merchant Center Atom 1.0 XML."""
    GOOGLE_TEXT = "google_text"
    """Google Merchant Center text feed (TSV or CSV)."""
    MAGENTO_CSV = "magento_csv"
    """Magento 2 product export CSV."""


class ImageState(enum.Enum):
    """Whether one feed image is ready for Merchant Center's AI-image rule."""

    READY = "ready"
    """AI-generated, and the served file carries IPTC DigitalSourceType and a valid manifest."""
    READY_WITHOUT_MANIFEST = "ready_without_manifest"
    """AI-generated and the IPTC DigitalSourceType is there (what Google reads), but the
    C2PA manifest is gone or not valid: re-sign to restore it."""
    MISSING_DIGITAL_SOURCE_TYPE = "missing_digital_source_type"
    """AI-generated per the inventory, but the served file lost its IPTC
    DigitalSourceType (re-encoded or stripped): Google cannot see it is AI-made."""
    ALTERED = "altered"
    """The served file carries provenance that does not verify (changed after signing)."""
    NOT_AI = "not_ai"
    """Not AI-generated per the inventory and the file's metadata: nothing to do."""
    MISSING_FILE = "missing_file"
    """The URL maps to no file under the media root."""
    NOT_LOCAL = "not_local"
    """The URL is not under the base URL, so the served file cannot be checked here."""
    ERROR = "error"
    """The served file could not be read or checked."""

    @property
    def ok(self) -> bool:
        """Whether this image needs no action for the feed to pass."""
        return self in (ImageState.READY, ImageState.READY_WITHOUT_MANIFEST, ImageState.NOT_AI)


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One product of a feed and its image URLs (or Magento paths), main image first.

    Attributes:
        product_id: ``g:id`` or the Magento SKU.
        title: The product title or name.
        images: ``(role, url)`` pairs; role ``image_link``, ``additional_image_link``
            or a Magento image column.
        line: The CSV line or XML item number (1-based).
    """

    product_id: str
    title: str
    images: tuple[tuple[str, str], ...]
    line: int


@dataclass(frozen=True, slots=True)
class FeedImage:
    """What was found for one image of one product.

    Attributes:
        product_id: The product.
        title: Its title.
        role: Which feed field named the image.
        url: The URL (or Magento path) as in the feed.
        path: The local file it maps to, when it does.
        state: The outcome.
        ai_generated: AI-generated per the inventory or metadata (None: unknown).
        ai_evidence: Where that came from (``manifest``, ``inventory``, ``xmp``).
        digital_source_type: The served file's IPTC DigitalSourceType code, if any.
        verdict: The served file's verification status.
        asset_id: The inventory asset it is, or is a copy of.
        fix: What to run, for states that need action.
        detail: One sentence: the error, or why.
    """

    product_id: str
    title: str
    role: str
    url: str
    path: str | None
    state: ImageState
    ai_generated: bool | None = None
    ai_evidence: str | None = None
    digital_source_type: str | None = None
    verdict: str | None = None
    asset_id: str | None = None
    fix: str | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "product_id": self.product_id,
            "title": self.title,
            "role": self.role,
            "url": self.url,
            "path": self.path,
            "state": self.state.value,
            "ai_generated": self.ai_generated,
            "ai_evidence": self.ai_evidence,
            "iptc_digital_source_type": self.digital_source_type,
            "verdict": self.verdict,
            "asset_id": self.asset_id,
            "fix": self.fix,
            "detail": self.detail,
        }
