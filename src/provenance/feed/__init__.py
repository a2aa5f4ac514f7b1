"""Feed readiness: do the images a shopping feed points at keep their AI disclosure?

Google Merchant Center requires AI-generated product images to keep the IPTC
``DigitalSourceType`` metadata (``trainedAlgorithmicMedia``) in the served file.
Storefront renditions lose it when Magento or a CDN re-encodes them. This module
reads a product feed, maps each image URL to the file the shop serves, and says
per product and image whether it is AI-generated (per the inventory or the
file's own metadata), whether the served file carries IPTC DigitalSourceType and
a valid C2PA manifest, and what to run to fix it.

Feeds read:

* Google's XML feeds, RSS 2.0 (``<item>``) and Atom 1.0 (``<entry>``), with the
  ``g:`` namespace ``http://base.google.com/ns/1.0`` (``g:id``, ``g:title`` or
  ``title``, ``g:image_link``, ``g:additional_image_link``), parsed with
  :mod:`defusedxml` (no DTD, entity or external reference);
* Google's text feed (tab- or comma-separated, a header row with ``id``,
  ``title``, ``image_link``, ``additional_image_link``);
* Magento 2's product export CSV (``sku``, ``name``, ``base_image``,
  ``small_image``, ``thumbnail_image``, ``swatch_image``, ``additional_images``),
  whose image paths are relative to ``catalog/product``.

:func:`read_feed` is pure (bytes in, items out); :func:`check_feed` reads the
feed and the served files and verifies them; :class:`FeedReport` renders JSON
and one self-contained HTML page.

Layout: ``_model`` (formats, states, items, images), ``_read`` (reading feeds, pure),
``_check`` (mapping URLs to files and checking them), ``_report`` (the report, its
HTML page and terminal lines).
"""

from __future__ import annotations

from provenance.feed._check import check_feed
from provenance.feed._model import FeedFormat, FeedImage, FeedItem, ImageState
from provenance.feed._read import read_feed
from provenance.feed._report import FeedReport, summary_lines

__all__ = [
    "FeedFormat",
    "FeedImage",
    "FeedItem",
    "FeedReport",
    "ImageState",
    "check_feed",
    "read_feed",
    "summary_lines",
]
