"""Read a product feed (Google RSS/Atom XML or text, Magento export CSV): bytes in, items out."""

from __future__ import annotations

import csv
import io

from defusedxml.common import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from provenance.errors import ProvenanceError
from provenance.feed._model import FeedFormat, FeedItem

GOOGLE_NS = "http://base.google.com/ns/1.0"
_ATOM_NS = "http://www.w3.org/2005/Atom"
_MAGENTO_IMAGE_COLUMNS = ("base_image", "small_image", "thumbnail_image", "swatch_image")


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
