"""Map each feed image URL to the served file and check it: AI disclosure, manifest, fix."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from provenance._core import containers
from provenance._core.record import IPTC_DIGITAL_SOURCE_TYPE_BASE, DigitalSourceType
from provenance._core.types import Status, Verdict
from provenance._core.xmp import read_properties
from provenance._io.keys import TrustPolicy
from provenance._io.reading import read_input
from provenance.errors import ProvenanceError
from provenance.feed._model import FeedFormat, FeedImage, ImageState
from provenance.feed._read import read_feed
from provenance.feed._report import FeedReport
from provenance.inventory import Inventory
from provenance.verify import verify_bytes

_MAX_FEED_BYTES = 512 * 1024 * 1024
_VALID = (Status.TRUSTED, Status.VALID_UNTRUSTED)


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


# Long only by its docstring (the numbered steps per image); the body is one loop.
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
            # One file's outcome, named for this product and feed field.
            found = memo[path]
            results.append(
                dataclasses.replace(
                    found, product_id=item.product_id, title=item.title, role=role, url=url
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
    ai, evidence = _ai_evidence(verdict, code)
    dst_ok = code is not None and _is_synthetic_code(code)
    original = _signed_original(inventory, verdict, path)
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


def _ai_evidence(verdict: Verdict, code: str | None) -> tuple[bool | None, str | None]:
    """Whether the file is AI-generated, and per what: the record, else the XMP code."""
    if verdict.record is not None:
        if verdict.status not in _VALID:
            return verdict.record.is_synthetic, "inventory"
        evidence = "manifest" if verdict.active_manifest else "signed_xmp"
        return verdict.record.is_synthetic, evidence
    if code is not None:
        return _is_synthetic_code(code), "xmp"
    return None, None


def _signed_original(inventory: Inventory | None, verdict: Verdict, path: Path) -> str | None:
    """The signed file of the asset this is a copy of, when it is another file."""
    if inventory is None or not verdict.asset_id:
        return None
    asset = inventory.get(verdict.asset_id)
    signed = [f.path for f in asset.files if f.path] if asset is not None else []
    return signed[0] if signed and signed[0] != str(path) else None
