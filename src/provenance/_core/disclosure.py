"""Storefront disclosure markup for a verdict or a provenance record.

A shop page tells people, and machines, that a product image is AI-generated:

* ``data-synthetic`` (``true``, ``false`` or ``unknown``),
  ``data-synthetic-source`` (the IPTC digitalSourceType URI) and
  ``data-provenance`` (the verdict status, or ``signed`` for a record that was
  not verified) on the wrapping ``<figure>``, for scripts, crawlers and audits;
* an ``aria-describedby`` link from the ``<img>`` to a visually hidden sentence
  ("AI-generated image, made with stable-diffusion-xl-base 1.0.") that a
  screen reader announces after the image's alt text (WCAG 1.1.1, and the
  EU AI Act Art. 50 transparency duty that reaches every shopper).

Every value that reaches the markup is HTML-escaped here; the Magento
(``templates/magento/*.phtml``) and Shopify (``templates/shopify/*.liquid``)
snippets shipped with the package do the same with their platform's escaper.

This module is pure: values in, text out. No I/O, no clock, no c2pa.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from provenance._core.hashing import sha256_hex
from provenance._core.record import DigitalSourceType, ProvenanceRecord
from provenance._core.types import Verdict

__all__ = [
    "SIGNED",
    "VISUALLY_HIDDEN_STYLE",
    "Disclosure",
    "DisclosureOptions",
    "describe",
    "disclosure_for",
    "render_html",
]

SIGNED = "signed"
"""``data-provenance`` for a record that has not been verified (just signed)."""

# The usual "visually hidden" recipe (as in Bootstrap's .visually-hidden and
# Magento's lib-visually-hidden mixin): out of sight, still in the
# accessibility tree. ``display:none`` would hide it from screen readers too.
VISUALLY_HIDDEN_STYLE = (
    "position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;"
    "clip:rect(0,0,0,0);white-space:nowrap;border:0"
)

# What the description opens with, per IPTC digital source type. Types that are
# not synthetic get no description: a photograph needs no disclosure.
_LEAD = {
    DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA: "AI-generated image",
    DigitalSourceType.COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA: "Image edited with AI",
    DigitalSourceType.ALGORITHMIC_MEDIA: "Computer-generated image",
    DigitalSourceType.COMPOSITE_SYNTHETIC: "Composite image with synthetic elements",
}

_ID_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class DisclosureOptions:
    """How the markup looks.

    Attributes:
        class_name: Class of the wrapping ``<figure>``.
        id_prefix: Prefix of the description's ``id`` (the asset id or the file
            hash follows it, so two different images on one page never clash).
        visible_label: Also show a short visible caption ("AI-generated").
        unverified_note: Sentence added to the description when signed
            provenance was found but does not verify (tampered, invalid).
    """

    class_name: str = "provenance-disclosure"
    id_prefix: str = "provenance-desc"
    visible_label: bool = False
    unverified_note: str = "Its provenance record could not be verified."


@dataclass(frozen=True, slots=True)
class Disclosure:
    """What a storefront should say about one image.

    Attributes:
        synthetic: Whether the image is AI-made; None when nothing is known.
        source_type: The IPTC digital source type, when known.
        provenance: The verdict status value, or :data:`SIGNED` for a record.
        model: The model that made it, when known.
        model_version: Its version, when known.
        description: The sentence a screen reader announces; None when there is
            nothing to disclose.
        key: A stable, id-safe key for the element ids (asset id or hash).
    """

    synthetic: bool | None
    source_type: DigitalSourceType | None
    provenance: str
    model: str | None = None
    model_version: str | None = None
    description: str | None = None
    key: str = "image"

    @property
    def source_uri(self) -> str | None:
        """The IPTC digitalSourceType URI, when known."""
        return None if self.source_type is None else self.source_type.uri

    @property
    def label(self) -> str | None:
        """The short visible label ("AI-generated image"), when synthetic."""
        return None if self.source_type is None else _LEAD.get(self.source_type)

    def attributes(self) -> dict[str, str]:
        """The ``data-*`` attributes, unescaped, in markup order."""
        synthetic = "unknown" if self.synthetic is None else str(self.synthetic).lower()
        attrs = {"data-synthetic": synthetic}
        if self.source_uri is not None:
            attrs["data-synthetic-source"] = self.source_uri
        attrs["data-provenance"] = self.provenance
        return attrs

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (``provenance disclosure --format json``)."""
        return {
            "synthetic": self.synthetic,
            "digital_source_type": None if self.source_type is None else self.source_type.value,
            "digital_source_type_uri": self.source_uri,
            "provenance": self.provenance,
            "model": self.model,
            "model_version": self.model_version,
            "label": self.label,
            "description": self.description,
            "key": self.key,
            "attributes": self.attributes(),
        }


def describe(
    record: ProvenanceRecord, *, unverified: bool = False, options: DisclosureOptions | None = None
) -> str | None:
    """The screen-reader sentence for a record, or None when it is not synthetic.

    Args:
        record: The provenance record.
        unverified: Add :attr:`DisclosureOptions.unverified_note`.
        options: Wording options.
    """
    lead = _LEAD.get(record.digital_source_type)
    if lead is None:
        return None
    text = f"{lead}, made with {record.model} {record.model_version}."
    if unverified:
        text += " " + (options or DisclosureOptions()).unverified_note
    return text


def disclosure_for(
    subject: Verdict | ProvenanceRecord, *, options: DisclosureOptions | None = None
) -> Disclosure:
    """What to disclose for a verdict (a checked file) or a record (just signed).

    A verdict without a record (``no_provenance``, ``error``) gives
    ``synthetic=None``: the page says it does not know, and announces nothing.
    A tampered file still discloses what its record claims, with a note that it
    could not be verified: hiding an AI label because the file was edited would
    be the wrong way round.

    Args:
        subject: A :class:`~provenance._core.types.Verdict` or a
            :class:`~provenance._core.record.ProvenanceRecord`.
        options: Wording options.
    """
    if isinstance(subject, ProvenanceRecord):
        record: ProvenanceRecord | None = subject
        provenance = SIGNED
        key = "r" + sha256_hex(subject.to_canonical_json())[:12]
        unverified = False
    else:
        record = subject.record
        provenance = subject.status.value
        key = subject.asset_id or (subject.sha256_hex or "")[:16] or "image"
        unverified = subject.status.is_failure
    if record is None:
        return Disclosure(synthetic=None, source_type=None, provenance=provenance, key=_id(key))
    return Disclosure(
        synthetic=record.is_synthetic,
        source_type=record.digital_source_type,
        provenance=provenance,
        model=record.model,
        model_version=record.model_version,
        description=describe(record, unverified=unverified, options=options),
        key=_id(key),
    )


def render_html(
    disclosure: Disclosure,
    *,
    src: str,
    alt: str,
    width: int | None = None,
    height: int | None = None,
    element_id: str | None = None,
    options: DisclosureOptions | None = None,
) -> str:
    """The ``<figure>`` markup for one image, every value HTML-escaped.

    Args:
        disclosure: What to disclose (:func:`disclosure_for`).
        src: The image URL.
        alt: The image's alt text (what it shows; the disclosure is separate).
        width: Intrinsic width in pixels, to reserve space (no layout shift).
        height: Intrinsic height in pixels.
        element_id: The description's id; default ``<id_prefix>-<key>``. Pass
            one when the same image appears twice on a page.
        options: Markup options.

    Returns:
        One ``<figure>`` element as text.
    """
    opts = options or DisclosureOptions()
    esc = _attr
    attrs = "".join(f" {name}={esc(value)}" for name, value in disclosure.attributes().items())
    img = [f"<img src={esc(src)} alt={esc(alt)}"]
    if width is not None:
        img.append(f" width={esc(str(int(width)))}")
    if height is not None:
        img.append(f" height={esc(str(int(height)))}")
    parts = [f"<figure class={esc(opts.class_name)}{attrs}>"]
    description = disclosure.description
    if description is not None:
        desc_id = element_id or f"{_id(opts.id_prefix)}-{disclosure.key}"
        img.append(f" aria-describedby={esc(desc_id)}")
        parts.append("".join(img) + ">")
        parts.append(
            f"<span id={esc(desc_id)} class={esc(opts.class_name + '__description')}"
            f" style={esc(VISUALLY_HIDDEN_STYLE)}>{html.escape(description)}</span>"
        )
        if opts.visible_label and disclosure.label is not None:
            # Hidden from screen readers: the description already says it.
            parts.append(
                f'<figcaption class={esc(opts.class_name + "__label")} aria-hidden="true">'
                f"{html.escape(disclosure.label)}</figcaption>"
            )
    else:
        parts.append("".join(img) + ">")
    parts.append("</figure>")
    return "".join(parts)


def _attr(value: str) -> str:
    return '"' + html.escape(value, quote=True) + '"'


def _id(text: str) -> str:
    cleaned = _ID_SAFE.sub("-", text).strip("-")
    return cleaned or "image"
