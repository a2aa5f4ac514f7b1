"""What an original stores to be found again: perceptual hashes and local features.

:func:`findable_features` computes both from one decode (or from the caller's
decoded image); :func:`record_perceptual` stores them for an asset already in the
inventory. A part that cannot be computed (pixels above the limit, damaged coded
data) is reported, never raised: the signing stands. Public through
:mod:`provenance.sign`.
"""

from __future__ import annotations

import logging
import os

from PIL import Image

from provenance._core import keypoints, phash
from provenance.errors import ImageTooLarge, ProvenanceError
from provenance.fingerprint import MAX_PIXELS_ENV, decode_for_hashing, open_image
from provenance.inventory import Inventory

_log = logging.getLogger("provenance.sign")

COPY_MIN_SIDE = 512
"""A resized copy passed as an original's pixels keeps at least this many pixels on its
long side (or the original's own size, when that is smaller): the keypoints are taken at
384 px (:data:`provenance._core.keypoints.REFERENCE_SIDE`) and the hashes' 128-cell grid
from up to 512, so nothing they store is upscaled."""


def check_copy(image: Image.Image, width: int | None, height: int | None) -> None:
    """Refuse pixels that are neither the original decoded nor a resized copy the hashes can use.

    An import pipeline holds the original decoded and the renditions it resized
    from it; any of them at least :data:`COPY_MIN_SIDE` px on its long side (the
    largest rendition costs least) gives the same perceptual rows. A copy that is
    larger than the original, smaller than that, or of another aspect (framed on
    a canvas, cropped) is refused: its rows would not be the original's. Either
    orientation is the original's: a pipeline may turn the pixels upright by the
    file's EXIF orientation (``ImageOps.exif_transpose``) before it resizes.

    Args:
        image: The pixels the caller passed.
        width: The original's width from its header (None or 0: not known,
            nothing checked).
        height: The original's height, likewise.

    Raises:
        ValueError: Which of those the pixels are, with both sizes.
    """
    if not width or not height:
        return
    w, h = image.size
    if (w, h) in ((width, height), (height, width)):
        return
    shown = f"image is {w} x {h} pixels, the original {width} x {height}"
    # Resizing rounds each side to a whole pixel: the cross products differ by at
    # most about half a pixel of each side; more is another aspect.
    upright = [(a, b) for a, b in ((width, height), (height, width)) if abs(w * b - h * a) <= a + b]
    if not upright:
        raise ValueError(
            f"{shown}: not the original's aspect ratio (a copy framed on a canvas or "
            "cropped); pass the copy as resized, before any frame"
        )
    full_w, full_h = upright[0]
    if w > full_w or h > full_h:
        raise ValueError(f"{shown}: pass the original decoded, or a copy resized from it")
    least = min(COPY_MIN_SIDE, max(width, height))
    if max(w, h) < least:
        raise ValueError(
            f"{shown}: a resized copy needs at least {least} pixels on its long side "
            "(pass a larger rendition, or the original decoded)"
        )


def check_decodable_size(data: bytes, src: str | os.PathLike[str], limit: int | None) -> None:
    """Raise :class:`ImageTooLarge` (naming ``src``) above the pixel limit, from the header."""
    try:
        open_image(data, max_pixels=limit).close()
    except ImageTooLarge as exc:
        raise exc.with_path(src) from None
    except ProvenanceError:
        pass  # undecodable pixels: the signing stands, record_perceptual says so


def record_perceptual(
    inventory: Inventory,
    asset_id: str,
    data: bytes | None = None,
    *,
    image: Image.Image | None = None,
    name: str | os.PathLike[str] | None = None,
    max_pixels: int | None = None,
    durable: bool | None = None,
) -> bool:
    """Store the perceptual reference hashes of a recorded asset in the inventory.

    The asset's local features (:func:`provenance._core.keypoints.reference_features`,
    for the partial-copy search) are stored from the same pixels.

    Pixels the image cannot be decoded to (the signed container was fine, the
    coded data is not) leave the asset without perceptual hashes and log a
    warning: the signing itself stands.

    Args:
        inventory: Where the asset is recorded.
        asset_id: The asset.
        data: The image bytes; only needed (and only decoded) when ``image`` is None.
        image: The decoded pixels, if the caller has them, or a copy resized
            from them (at least 512 px on the long side, the aspect kept: see
            :func:`provenance.sign_import`; not checked here, where the
            original's size is not known).
        name: The file, for the warning.
        max_pixels: The decoding limit (default:
            :func:`provenance.fingerprint.max_pixels`); above it, no hashes.
        durable: Fsync the commit or not; None follows the inventory.

    Returns:
        Whether hashes are stored for the asset now.

    Raises:
        ValueError: Neither ``data`` nor ``image`` given.
        InventoryError: The database cannot be written.
    """
    reference, local = perceptual_features(data, image, name or asset_id, max_pixels=max_pixels)
    if reference is None:
        return False
    inventory.add_perceptual(asset_id, reference, durable=durable)
    if local is not None:
        inventory.add_keypoints(asset_id, local, scheme=keypoints.SCHEME, durable=durable)
    return True


def perceptual_features(
    data: bytes | None,
    image: Image.Image | None,
    name: str | os.PathLike[str],
    *,
    max_pixels: int | None = None,
) -> tuple[phash.ReferenceHashes | None, keypoints.LocalFeatures | None]:
    """What an original stores to be found again, with a logged warning for what is missing.

    :func:`findable_features`, for library callers: the reason a part is missing
    is logged (naming ``name``) instead of returned; the signing stands.

    Raises:
        ValueError: Neither ``data`` nor ``image`` given.
    """
    reference, local, missing = findable_features(data, image, max_pixels=max_pixels)
    if missing is not None:
        _log.warning("%s: %s", name, missing)
    return reference, local


def findable_features(
    data: bytes | None,
    image: Image.Image | None,
    *,
    max_pixels: int | None = None,
) -> tuple[phash.ReferenceHashes | None, keypoints.LocalFeatures | None, str | None]:
    """Perceptual hashes and local features of an original, and why either is missing.

    Both from the same pixels (``image``, or ``data`` decoded once): the reference
    hashes (:func:`provenance._core.phash.reference_hashes`) that ``verify`` recognises
    resized or re-encoded copies by, and the keypoints of the partial-copy search
    (:func:`provenance._core.keypoints.reference_features`, issue 21). Pixels that cannot
    be decoded (above the pixel limit, or damaged coded data) leave the asset
    without them: the third value says so, for a batch row's warnings (a copy of
    such an asset can never be found, and the user must know).

    Raises:
        ValueError: Neither ``data`` nor ``image`` given.
    """
    if image is None and data is None:
        raise ValueError("record_perceptual needs the image's bytes or its decoded pixels")
    lost = "no perceptual hash stored, so copies of it cannot be found"
    try:
        # A JPEG decoded in draft mode keeps the keypoints' working side on its long
        # side: DRAFT_SIZE alone (256 per side, a verifier's query) left a 2048 px
        # square 256 px for its keypoints, and fewer copies were found
        # (docs/search.md, "What is stored").
        pixels = (
            image
            if image is not None
            else decode_for_hashing(
                data or b"", max_pixels=max_pixels, fit_side=keypoints.REFERENCE_SIDE
            )[0]
        )
        reference = phash.reference_hashes(pixels)
    except ImageTooLarge as exc:
        hint = f"raise the limit with {MAX_PIXELS_ENV}=N and sign it again"
        return None, None, f"{lost}: {exc.message} ({hint})"
    except ProvenanceError as exc:
        return None, None, f"{lost}: {exc.message}"
    try:
        return reference, keypoints.reference_features(pixels), None
    except ProvenanceError as exc:
        return reference, None, f"no local features stored (partial copies): {exc.message}"


def perceptual_hash(image: Image.Image) -> str:
    """The 64-bit ``imagehash.phash``-compatible hash of a decoded image, as 16 hex digits.

    Computed by :func:`provenance._core.phash.compat_hashes` from the image as given, so
    a pipeline's decoded image is hashed without a second decode (it differs from
    ``imagehash.phash`` by a fraction of a bit on average; compare hashes by
    Hamming distance). The inventory matches copies with the stronger default
    scheme (:func:`provenance._core.phash.reference_hashes`); this one is for callers
    that keep imagehash-style hashes of their own.

    Args:
        image: A decoded image, any mode.

    Returns:
        The hash as lowercase hexadecimal.
    """
    return f"{int(phash.compat_hashes([image])[0]):016x}"
