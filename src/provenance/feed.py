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
"""

from __future__ import annotations

import csv
import enum
import html
import io
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from defusedxml.common import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from provenance._core import containers
from provenance._core.html_page import page_head
from provenance._core.record import IPTC_DIGITAL_SOURCE_TYPE_BASE, DigitalSourceType
from provenance._core.types import Status
from provenance._core.xmp import read_properties
from provenance._io.keys import TrustPolicy
from provenance._io.reading import read_input
from provenance.errors import ProvenanceError
from provenance.inventory import Inventory
from provenance.verify import verify_bytes

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

GOOGLE_NS = "http://base.google.com/ns/1.0"
_ATOM_NS = "http://www.w3.org/2005/Atom"
_MAX_FEED_BYTES = 512 * 1024 * 1024
_MAGENTO_IMAGE_COLUMNS = ("base_image", "small_image", "thumbnail_image", "swatch_image")
_VALID = (Status.TRUSTED, Status.VALID_UNTRUSTED)


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


@dataclass(frozen=True, slots=True)
class FeedReport:
    """Feed readiness for every product image.

    Attributes:
        feed: The feed file.
        format: Its format.
        products: How many products it lists.
        images: One entry per (product, image).
    """

    feed: str
    format: FeedFormat
    products: int
    images: tuple[FeedImage, ...]

    @property
    def ok(self) -> bool:
        """Whether every image is ready (or needs nothing): the CI gate."""
        return all(i.state.ok for i in self.images)

    @property
    def counts(self) -> dict[str, int]:
        """Images by state."""
        return dict(sorted(Counter(i.state.value for i in self.images).items()))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "format": "provenance.feed_check",
            "version": 1,
            "feed": self.feed,
            "feed_format": self.format.value,
            "ok": self.ok,
            "products": self.products,
            "counts": self.counts,
            "images": [i.to_dict() for i in self.images],
        }

    def to_json(self) -> str:
        """Indented JSON text."""
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n"

    def to_html(self) -> str:
        """One self-contained, accessible HTML page."""
        return _html(self)


# --- reading feeds (pure) -----------------------------------------------------------


def read_feed(data: bytes, *, name: str = "<feed>") -> tuple[FeedFormat, list[FeedItem]]:
    """Read a product feed: Google RSS/Atom XML or text, or a Magento product export CSV.

    Args:
        data: The feed file's bytes.
        name: The file name, for errors.

    Returns:
        The format and one item per product, in feed order.

    Raises:
        ProvenanceError: Not a feed of a known kind, unsafe or malformed XML,
            or a text feed without the columns it needs; the message names ``name``.
    """
    text_start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if text_start == b"<":
        return _read_xml(data, name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProvenanceError("feed is neither XML nor UTF-8 text", path=name) from None
    return _read_table(text, name)


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _read_xml(data: bytes, name: str) -> tuple[FeedFormat, list[FeedItem]]:
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise ProvenanceError(f"not a well-formed, safe XML feed: {exc}", path=name) from None
    ns, local = _local(root.tag)
    if local == "rss":
        channel = next((c for c in root if _local(c.tag)[1] == "channel"), None)
        entries = [] if channel is None else [c for c in channel if _local(c.tag)[1] == "item"]
        fmt = FeedFormat.GOOGLE_RSS
    elif local == "feed" and ns in (_ATOM_NS, ""):
        entries = [c for c in root if _local(c.tag)[1] == "entry"]
        fmt = FeedFormat.GOOGLE_ATOM
    else:
        raise ProvenanceError(
            f"XML root <{local}> is neither an RSS 2.0 <rss> nor an Atom <feed>", path=name
        )
    items = []
    for number, entry in enumerate(entries, start=1):
        fields: dict[str, list[str]] = {}
        for child in entry:
            child_ns, child_local = _local(child.tag)
            key = f"g:{child_local}" if child_ns == GOOGLE_NS else child_local
            fields.setdefault(key, []).append((child.text or "").strip())
        product_id = _first(fields, "g:id", "id") or f"item {number}"
        title = _first(fields, "g:title", "title") or ""
        images = [("image_link", u) for u in fields.get("g:image_link", []) if u]
        images += [
            ("additional_image_link", u)
            for cell in fields.get("g:additional_image_link", [])
            for u in _split_urls(cell)
        ]
        items.append(FeedItem(product_id, title, tuple(images), number))
    return fmt, items


def _first(fields: dict[str, list[str]], *keys: str) -> str | None:
    for key in keys:
        for value in fields.get(key, []):
            if value:
                return value
    return None


def _split_urls(cell: str) -> list[str]:
    # Google's text feeds separate several additional_image_link URLs with commas.
    return [u.strip() for u in cell.split(",") if u.strip()]


def _read_table(text: str, name: str) -> tuple[FeedFormat, list[FeedItem]]:
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise ProvenanceError("the feed is empty", path=name) from None
    except csv.Error as exc:
        raise ProvenanceError(f"not a CSV/TSV feed: {exc}", path=name) from None
    index = {h: i for i, h in enumerate(header)}
    if "sku" in index and any(c in index for c in (*_MAGENTO_IMAGE_COLUMNS, "additional_images")):
        fmt = FeedFormat.MAGENTO_CSV
    elif "id" in index and "image_link" in index:
        fmt = FeedFormat.GOOGLE_TEXT
    else:
        raise ProvenanceError(
            "a text feed needs columns id and image_link (Google) or sku and base_image "
            "(Magento product export)",
            path=name,
        )

    def cell(row: list[str], column: str) -> str:
        i = index.get(column)
        return row[i].strip() if i is not None and i < len(row) else ""

    items = []
    try:
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            line = reader.line_num
            if fmt is FeedFormat.GOOGLE_TEXT:
                images = (
                    [("image_link", cell(row, "image_link"))] if cell(row, "image_link") else []
                )
                images += [
                    ("additional_image_link", u)
                    for u in _split_urls(cell(row, "additional_image_link"))
                ]
                items.append(FeedItem(cell(row, "id"), cell(row, "title"), tuple(images), line))
            else:
                seen: list[tuple[str, str]] = []
                for column in _MAGENTO_IMAGE_COLUMNS:
                    value = cell(row, column)
                    if value and value not in (v for _, v in seen):
                        seen.append((column, value))
                for value in _split_urls(cell(row, "additional_images")):
                    if value not in (v for _, v in seen):
                        seen.append(("additional_images", value))
                items.append(FeedItem(cell(row, "sku"), cell(row, "name"), tuple(seen), line))
    except csv.Error as exc:
        raise ProvenanceError(f"line {reader.line_num}: {exc}", path=name) from None
    return fmt, items


# --- checking the served files -------------------------------------------------------


def _map_url(
    url: str, *, fmt: FeedFormat, media_root: Path, base_url: str
) -> tuple[Path | None, ImageState | None, str | None]:
    """The local file a feed URL (or Magento path) is served from, or why there is none."""
    root = media_root.resolve()
    if fmt is FeedFormat.MAGENTO_CSV and "://" not in url:
        relative = PurePosixPath(unquote(url).lstrip("/"))
        candidates = [root / "catalog" / "product" / relative, root / relative]
    else:
        base = base_url.rstrip("/") + "/"
        if not url.startswith(base):
            return None, ImageState.NOT_LOCAL, f"not under --base-url {base}"
        parts = urlsplit(url)
        relative = PurePosixPath(unquote(parts.path[len(urlsplit(base).path) :]).lstrip("/"))
        candidates = [root / relative]
    if any(part == ".." for part in relative.parts):
        return None, ImageState.ERROR, "the path climbs out of the media root"
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved.is_relative_to(root) and resolved.is_file():
            return resolved, None, None
    return None, ImageState.MISSING_FILE, f"no file at {candidates[0]}"


def _digital_source_type(data: bytes) -> str | None:
    """The IPTC DigitalSourceType code in the file's XMP (what Merchant Center reads)."""
    info = containers.inspect(data)
    if info.xmp is None:
        return None
    for key, value in read_properties(info.xmp).items():
        if key.endswith(":DigitalSourceType") and value:
            return value.removeprefix(IPTC_DIGITAL_SOURCE_TYPE_BASE)
    return None


def _is_synthetic_code(code: str) -> bool:
    try:
        return DigitalSourceType(code).is_synthetic
    except ValueError:
        return False


def _fix(path: Path, media_root: Path, *, original: str | None, altered: bool) -> str:
    if altered:
        return "replace the file with its signed original, then re-sign it"
    if "cache" in path.relative_to(media_root.resolve()).parts:
        return f"provenance magento sign-cache {media_root}"
    parent = f" --parent {original}" if original else ""
    record = f" --record {original}.json" if original else " --record RECORD.json"
    return f"provenance sign {path} --in-place{parent}{record}"


def check_feed(
    feed: str | os.PathLike[str],
    *,
    media_root: str | os.PathLike[str],
    base_url: str,
    trust: TrustPolicy | None = None,
    inventory: Inventory | None = None,
) -> FeedReport:
    """Check every image of a product feed as the shop serves it.

    Steps per image:

    1. Map the URL to a file under ``media_root`` (a URL under ``base_url``, or
       a Magento path under ``catalog/product``); none is ``missing_file`` or
       ``not_local``.
    2. Read the file's IPTC DigitalSourceType from its XMP, and verify it (with
       the inventory, so a stripped or re-encoded copy of a known AI image is
       recognised).
    3. Decide: AI-generated per the manifest, the inventory or the XMP; then
       ready, ready without manifest, missing DigitalSourceType, or altered,
       with the command that fixes it.

    Args:
        feed: The feed file.
        media_root: The folder the image URLs are served from (Magento: pub/media).
        base_url: The URL prefix that maps to ``media_root``.
        trust: Trust anchors for the manifests.
        inventory: The inventory that knows the AI images.

    Returns:
        One result per product image, in feed order.

    Raises:
        ProvenanceError: The feed cannot be read or is not a feed.
    """
    name = os.fspath(feed)
    fmt, items = read_feed(read_input(feed, max_bytes=_MAX_FEED_BYTES), name=name)
    root = Path(media_root)
    if not root.is_dir():
        raise ProvenanceError("the media root is not a folder", path=root)
    results: list[FeedImage] = []
    memo: dict[Path, FeedImage] = {}
    for item in items:
        for role, url in item.images:
            path, state, why = _map_url(url, fmt=fmt, media_root=root, base_url=base_url)
            if path is None:
                results.append(
                    FeedImage(
                        item.product_id,
                        item.title,
                        role,
                        url,
                        None,
                        state or ImageState.ERROR,
                        detail=why,
                    )
                )
                continue
            if path not in memo:
                memo[path] = _check_file(path, root, trust=trust, inventory=inventory)
            found = memo[path]
            results.append(
                FeedImage(
                    item.product_id,
                    item.title,
                    role,
                    url,
                    str(path),
                    found.state,
                    ai_generated=found.ai_generated,
                    ai_evidence=found.ai_evidence,
                    digital_source_type=found.digital_source_type,
                    verdict=found.verdict,
                    asset_id=found.asset_id,
                    fix=found.fix,
                    detail=found.detail,
                )
            )
    return FeedReport(name, fmt, len(items), tuple(results))


def _check_file(
    path: Path, root: Path, *, trust: TrustPolicy | None, inventory: Inventory | None
) -> FeedImage:
    def result(state: ImageState, **kw: Any) -> FeedImage:
        return FeedImage("", "", "", "", str(path), state, **kw)

    try:
        data = read_input(path)
        code = _digital_source_type(data)
        verdict = verify_bytes(data, name=str(path), trust=trust, inventory=inventory)
    except ProvenanceError as exc:
        return result(ImageState.ERROR, detail=str(exc.with_path(path)))
    ai: bool | None = None
    evidence = None
    if verdict.record is not None:
        ai = verdict.record.is_synthetic
        if verdict.status not in _VALID:
            evidence = "inventory"
        else:
            evidence = "manifest" if verdict.active_manifest else "signed_xmp"
    elif code is not None:
        ai, evidence = _is_synthetic_code(code), "xmp"
    dst_ok = code is not None and _is_synthetic_code(code)
    original = None
    if inventory is not None and verdict.asset_id:
        asset = inventory.get(verdict.asset_id)
        signed = [f.path for f in asset.files if f.path] if asset is not None else []
        original = signed[0] if signed and signed[0] != str(path) else None
    common: dict[str, Any] = {
        "ai_generated": ai,
        "ai_evidence": evidence,
        "digital_source_type": code,
        "verdict": verdict.status.value,
        "asset_id": verdict.asset_id,
    }
    if verdict.status.is_failure:
        return result(
            ImageState.ALTERED,
            fix=_fix(path, root, original=original, altered=True),
            detail="provenance does not verify: " + ", ".join(verdict.failure_codes),
            **common,
        )
    if not ai:
        return result(ImageState.NOT_AI, **common)
    if dst_ok and verdict.status in _VALID and verdict.active_manifest:
        return result(ImageState.READY, **common)
    if dst_ok:
        return result(
            ImageState.READY_WITHOUT_MANIFEST,
            fix=_fix(path, root, original=original, altered=False),
            detail="IPTC DigitalSourceType present; the C2PA manifest is missing"
            + ("; the signed XMP verifies" if verdict.status in _VALID else ""),
            **common,
        )
    return result(
        ImageState.MISSING_DIGITAL_SOURCE_TYPE,
        fix=_fix(path, root, original=original, altered=False),
        detail=f"AI-generated per the {evidence}, but the served file has no IPTC "
        f"DigitalSourceType ({verdict.status.value.replace('_', ' ')})",
        **common,
    )


# --- HTML -------------------------------------------------------------------------------

_LABELS = {
    ImageState.READY: "Ready",
    ImageState.READY_WITHOUT_MANIFEST: "Ready, manifest missing",
    ImageState.MISSING_DIGITAL_SOURCE_TYPE: "AI label lost",
    ImageState.ALTERED: "Altered",
    ImageState.NOT_AI: "Not AI-generated",
    ImageState.MISSING_FILE: "File missing",
    ImageState.NOT_LOCAL: "Not checked (other host)",
    ImageState.ERROR: "Could not be checked",
}

_CSS = """
body{margin:0;font:15px/1.45 system-ui,sans-serif;color:#1a1a1a;background:#fff}
header,main{max-width:80rem;margin:0 auto;padding:1rem 1.5rem}
header{border-bottom:4px solid #0b5394}h1{font-size:1.5rem;margin:.2rem 0}
.ok{border-left:6px solid #1e6b3a;background:#eef7f1;padding:.5rem 1rem}
.alert{border-left:6px solid #b3261e;background:#fdf0ef;padding:.5rem 1rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{border-bottom:1px solid #c8c8c8;padding:.3rem .45rem;text-align:left;vertical-align:top;
word-break:normal;overflow-wrap:normal;hyphens:auto}
th{background:#f2f2f2}.id{overflow-wrap:anywhere}code{font-size:.85em}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _html(r: FeedReport) -> str:
    counts = ", ".join(f"{n} {_LABELS[ImageState(k)].lower()}" for k, n in r.counts.items())
    verdict = (
        '<p class="ok">Every AI-generated image in this feed keeps its IPTC DigitalSourceType.</p>'
        if r.ok
        else '<p class="alert">Some images need action before Merchant Center sees them '
        "as AI-generated; each row says what to run.</p>"
    )
    rows = "".join(
        "<tr>"
        f"<td>{_e(i.product_id)}</td><td>{_e(i.title)}</td><td>{_e(i.role)}</td>"
        f'<td><code class="id">{_e(i.url)}</code></td>'
        f"<td>{_e(_LABELS[i.state])}</td>"
        f"<td>{_e({True: 'yes', False: 'no', None: 'unknown'}[i.ai_generated])}"
        f"{_e(f' ({i.ai_evidence})' if i.ai_evidence else '')}</td>"
        f"<td>{_e(i.digital_source_type or 'none')}</td>"
        f"<td>{_e((i.verdict or '-').replace('_', ' '))}</td>"
        f'<td><code class="id">{_e(i.fix or "")}</code> {_e(i.detail or "")}</td>'
        "</tr>"
        for i in r.images
    )
    head = "".join(
        f'<th scope="col">{h}</th>'
        for h in (
            "product",
            "title",
            "field",
            "image URL",
            "state",
            "AI-generated",
            "IPTC DigitalSourceType",
            "verdict",
            "what to do",
        )
    )
    return (
        page_head(title=f"Feed check {Path(r.feed).name}", css=_CSS)
        + f"<header><h1>Feed check: {_e(Path(r.feed).name)}</h1>"
        f"<p>{_e(r.format.value.replace('_', ' '))}, {r.products} products, "
        f"{len(r.images)} images: {_e(counts)}.</p></header><main>{verdict}"
        f"<table><caption>Every product image</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{rows}</tbody></table></main></body></html>\n"
    )


def summary_lines(report: FeedReport) -> Iterable[str]:
    """One line per image needing action, for a terminal."""
    for i in report.images:
        if not i.state.ok:
            yield f"{i.product_id} {i.url}: {_LABELS[i.state]}" + (
                f"; fix: {i.fix}" if i.fix else f" ({i.detail})" if i.detail else ""
            )
