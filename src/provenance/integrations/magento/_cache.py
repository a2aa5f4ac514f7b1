"""Magento's image cache: give the storefront's resized copies their provenance back.

Owns :func:`sign_cache`: finding the renditions Magento's resize wrote to
``catalog/product/cache/<hash>/a/b/file`` (GD2 and ImageMagick drop APP segments
and PNG text chunks, so they lose the manifest), their originals at
``catalog/product/a/b/file``, and signing each rendition in place with lineage to
its original, or recording it in the inventory only. Replaces files only through
:func:`provenance._io.atomic.write_atomic`; never prints, never imports c2pa.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from provenance._core import containers
from provenance._core.hashing import hash_ranges, sha256_hex
from provenance._core.record import ParentRef, ProvenanceRecord
from provenance._core.types import SignResult, Status, Verdict
from provenance._io.atomic import write_atomic
from provenance._io.keys import SigningKey, TrustPolicy
from provenance._io.reading import read_input
from provenance.errors import ProvenanceError
from provenance.integrations.magento._images import existing_provenance
from provenance.inventory import Inventory
from provenance.renditions import unmarked_result
from provenance.sign import SignOptions, sign_bytes
from provenance.verify import verify_bytes

__all__ = ["CacheAction", "CacheOutcome", "sign_cache"]

_MD5_DIR = re.compile(r"^[0-9a-f]{32}$")
_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})


class CacheAction(enum.Enum):
    """What :func:`sign_cache` did with one rendition."""

    SIGNED = "signed"
    """Signed in place with lineage to its original."""
    RECORDED = "recorded"
    """Recorded in the inventory only (essence hash and parent link)."""
    ALREADY_SIGNED = "already_signed"
    """It already carries valid provenance; left alone."""
    ALREADY_RECORDED = "already_recorded"
    """Its essence is already in the inventory (``inventory_only``); left alone."""
    SKIPPED = "skipped"
    """Its original carries no provenance (most product photos are not AI-made);
    left alone, counted, not an error."""
    ORPHAN = "orphan"
    """Its original is gone (a deleted product image; Magento keeps the cache until
    it is flushed); left alone, counted, not an error."""
    ERROR = "error"
    """Nothing done; see the error."""


@dataclass(frozen=True, slots=True)
class CacheOutcome:
    """One rendition in Magento's image cache.

    Attributes:
        rendition: The cached file.
        original: Its original under ``catalog/product``, when found.
        action: What was done.
        asset_id: The rendition's asset id, when known.
        parent_asset_id: The original's asset id, when known.
        error: For :attr:`CacheAction.ERROR`, the message naming the file.
    """

    rendition: str
    original: str | None
    action: CacheAction
    asset_id: str | None = None
    parent_asset_id: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form used by ``provenance magento sign-cache --json``."""
        return {
            "rendition": self.rendition,
            "original": self.original,
            "action": self.action.value,
            "asset_id": self.asset_id,
            "parent_asset_id": self.parent_asset_id,
            "error": self.error,
        }


_VALID = (Status.TRUSTED, Status.VALID_UNTRUSTED)
_ORIGINALS_MEMO = 64


# Long for its docstring (the public contract: three steps, every argument).
def sign_cache(
    media_dir: str | os.PathLike[str],
    *,
    key: SigningKey | None,
    inventory: Inventory | None = None,
    inventory_only: bool = False,
    options: SignOptions | None = None,
    now: datetime | None = None,
) -> list[CacheOutcome]:
    """Give Magento's resized product images their provenance back.

    For each file under ``catalog/product/cache/<hash>/`` (older layouts
    ``cache/<store>/<type>/<size>/<hash>/`` too), the original is the file at the
    same path after the hash folder under ``catalog/product/``. Steps per rendition:

    1. Skip it if it already carries valid provenance, or, with
       ``inventory_only``, if its essence is already in the inventory.
    2. Verify its original (with the inventory, so a known original whose
       metadata was stripped still counts); an original without provenance (a
       photo, not AI-generated) is :attr:`CacheAction.SKIPPED`, not an error.
    3. Sign the rendition with the original's record and a parent link to it,
       replacing the file atomically with the same permission bits; or, with
       ``inventory_only``, record its essence hash and parent link only.

    Args:
        media_dir: Magento's ``pub/media`` (or its ``catalog/product`` folder).
        key: The signing key; may be None with ``inventory_only``.
        inventory: Record each rendition here (required with ``inventory_only``).
        inventory_only: Do not touch the files; record them in the inventory.
        options: Embedding options for the signed renditions.
        now: The signing time (default: now, UTC).

    Returns:
        One outcome per rendition, sorted by path.

    Raises:
        ProvenanceError: No ``catalog/product`` folder under ``media_dir``.
        ValueError: No key without ``inventory_only``, or ``inventory_only``
            without an inventory.
    """
    if inventory_only and inventory is None:
        raise ValueError("inventory_only needs an inventory")
    if not inventory_only and key is None:
        raise ValueError("a signing key is needed unless inventory_only is set")
    moment = now or datetime.now(timezone.utc)
    product = _product_root(Path(media_dir))
    cache = product / "cache"
    outcomes: list[CacheOutcome] = []
    originals: dict[Path, tuple[bytes, Verdict] | ProvenanceError] = {}
    for rendition in _cache_files(cache):
        original = _original_of(rendition, cache, product)
        if original is None:
            outcomes.append(CacheOutcome(str(rendition), None, CacheAction.ORPHAN))
            continue
        if original not in originals:
            # Renditions come sorted by path, not by original; a bounded memo of
            # originals (bytes and verdict) avoids reading one 18 times.
            if len(originals) >= _ORIGINALS_MEMO:
                originals.clear()
            originals[original] = _original_verdict(original, inventory)
        outcomes.append(
            _one_rendition(
                rendition,
                original,
                originals[original],
                key=key,
                inventory=inventory,
                inventory_only=inventory_only,
                options=options,
                now=moment,
            )
        )
    return outcomes


def _product_root(media: Path) -> Path:
    if (media / "catalog" / "product").is_dir():
        return media / "catalog" / "product"
    if media.name == "product" and media.parent.name == "catalog" and media.is_dir():
        return media
    raise ProvenanceError(
        "no catalog/product folder: give Magento's pub/media directory", path=media
    )


def _cache_files(cache: Path) -> Iterator[Path]:
    if not cache.is_dir():
        return
    found: list[Path] = []
    for folder, dirs, files in os.walk(cache, followlinks=False):
        dirs.sort()
        for name in files:
            path = Path(folder) / name
            if path.suffix.lower() in _IMAGE_SUFFIXES and not name.startswith("."):
                found.append(path)
    yield from sorted(found)


def _original_of(rendition: Path, cache: Path, product: Path) -> Path | None:
    parts = rendition.relative_to(cache).parts
    # The rendition's path after the (last) 32-hex hash folder is the original's.
    hashes = [i for i, part in enumerate(parts[:-1]) if _MD5_DIR.match(part)]
    rest = parts[hashes[-1] + 1 :] if hashes else parts[1:]
    if not rest:
        return None
    original = product.joinpath(*rest)
    return original if original.is_file() and not original.is_symlink() else None


def _original_verdict(
    original: Path, inventory: Inventory | None
) -> tuple[bytes, Verdict] | ProvenanceError:
    try:
        data = read_input(original)
        verdict = verify_bytes(
            data, name=str(original), trust=TrustPolicy.no_anchors(), inventory=inventory
        )
    except ProvenanceError as exc:
        return exc.with_path(original)
    return data, verdict


# Steps 1-3 read in order here; each branch is one outcome, and steps 1 and 3 are helpers.
def _one_rendition(
    rendition: Path,
    original: Path,
    parent: tuple[bytes, Verdict] | ProvenanceError,
    *,
    key: SigningKey | None,
    inventory: Inventory | None,
    inventory_only: bool,
    options: SignOptions | None,
    now: datetime,
) -> CacheOutcome:
    """Steps 1-3 of :func:`sign_cache` for one rendition."""

    def error(message: str) -> CacheOutcome:
        return CacheOutcome(str(rendition), str(original), CacheAction.ERROR, error=message)

    if rendition.is_symlink():
        return error(f"{rendition}: a symlink; left alone")
    # 1. Already done?
    try:
        data = read_input(rendition)
        info = containers.inspect(data)
    except ProvenanceError as exc:
        return error(str(exc.with_path(rendition)))
    essence = hash_ranges(data, info.essence_ranges)
    done = _already_done(rendition, original, data, essence, inventory if inventory_only else None)
    if done is not None:
        return done
    # 2. The original's provenance.
    if isinstance(parent, ProvenanceError):
        return error(str(parent))
    parent_data, verdict = parent
    if verdict.status.is_failure:
        return error(f"{original}: original's provenance does not verify ({verdict.status.value})")
    if verdict.record is None or verdict.status not in (*_VALID, Status.KNOWN_STRIPPED):
        # A real catalogue is mostly photographs: their renditions need nothing.
        return CacheOutcome(str(rendition), str(original), CacheAction.SKIPPED)
    record = verdict.record.replace(parents=())
    # 3. Sign in place, or record only.
    if inventory_only:
        assert inventory is not None  # noqa: S101 - checked by sign_cache
        ref = ParentRef(
            sha256_hex=sha256_hex(parent_data),
            essence_sha256_hex=verdict.essence_sha256_hex,
            asset_id=verdict.asset_id,
        )
        signer = verdict.signer or (key.subject if key is not None else "unsigned rendition")
        unmarked = unmarked_result(
            data, essence, record=record.replace(parents=(ref,)), path=str(rendition)
        )
        return _record_only(rendition, original, unmarked, verdict, inventory, signer, now)
    assert key is not None  # noqa: S101 - checked by sign_cache
    return _sign_in_place(
        rendition,
        original,
        data,
        parent_data,
        record,
        verdict,
        key=key,
        inventory=inventory,
        options=options,
        now=now,
    )


def _already_done(
    rendition: Path,
    original: Path,
    data: bytes,
    essence: str,
    inventory: Inventory | None,
) -> CacheOutcome | None:
    """Step 1: the outcome of a rendition that needs nothing, or of a broken one; else None.

    ``inventory`` is given with ``inventory_only``: a rendition whose essence it
    already holds is done.
    """
    existing = existing_provenance(data, rendition)
    if existing is not None:
        if existing.status in _VALID:
            parent_id = existing.lineage[1].asset_id if len(existing.lineage) > 1 else None
            return CacheOutcome(
                str(rendition),
                str(original),
                CacheAction.ALREADY_SIGNED,
                asset_id=existing.asset_id,
                parent_asset_id=parent_id,
            )
        return CacheOutcome(
            str(rendition),
            str(original),
            CacheAction.ERROR,
            error=f"{rendition}: carries provenance that does not verify "
            f"({existing.status.value}); left alone",
        )
    if inventory is not None:
        known = inventory.find_by_essence(essence)
        if known is not None:
            return CacheOutcome(
                str(rendition),
                str(original),
                CacheAction.ALREADY_RECORDED,
                asset_id=known.asset_id,
                parent_asset_id=known.parent_asset_id,
            )
    return None


def _record_only(
    rendition: Path,
    original: Path,
    unmarked: SignResult,
    verdict: Verdict,
    inventory: Inventory,
    signer: str,
    now: datetime,
) -> CacheOutcome:
    """Step 3 with ``inventory_only``: record the rendition as it is, with its parent link."""
    try:
        entry = inventory.record_signing(unmarked, signer=signer, now=now)
    except ProvenanceError as exc:
        return CacheOutcome(str(rendition), str(original), CacheAction.ERROR, error=str(exc))
    return CacheOutcome(
        str(rendition),
        str(original),
        CacheAction.RECORDED,
        asset_id=entry.asset_id,
        parent_asset_id=entry.parent_asset_id or verdict.asset_id,
    )


def _sign_in_place(
    rendition: Path,
    original: Path,
    data: bytes,
    parent_data: bytes,
    record: ProvenanceRecord,
    verdict: Verdict,
    *,
    key: SigningKey,
    inventory: Inventory | None,
    options: SignOptions | None,
    now: datetime,
) -> CacheOutcome:
    """Step 3: sign the rendition with a parent link, replacing it with the same mode bits."""

    def error(message: str) -> CacheOutcome:
        return CacheOutcome(str(rendition), str(original), CacheAction.ERROR, error=message)

    try:
        signed, result = sign_bytes(
            data,
            record=record,
            key=key,
            name=rendition.name,
            parent=parent_data,
            parent_name=original.name,
            options=options,
            now=now,
        )
        mode = stat.S_IMODE(rendition.stat().st_mode)
        write_atomic(rendition, signed, mode=mode)
    except ProvenanceError as exc:
        return error(str(exc.with_path(rendition)))
    except OSError as exc:
        return error(f"{rendition}: cannot write: {exc.strerror}")
    result = dataclasses.replace(result, path=str(rendition))
    if inventory is not None:
        try:
            inventory.record_signing(result, signer=key.subject, now=now)
        except ProvenanceError as exc:
            return error(f"{rendition}: signed, but not recorded: {exc}")
    return CacheOutcome(
        str(rendition),
        str(original),
        CacheAction.SIGNED,
        asset_id=result.asset_id,
        parent_asset_id=verdict.asset_id,
    )
