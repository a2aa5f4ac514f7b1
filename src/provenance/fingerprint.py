"""The fingerprint verb: every hash the inventory matches copies by, from one input.

A fingerprint holds the three hashes of decision 5 in DESIGN.md: the file SHA-256,
the essence hash (coded image data only) and the perceptual hashes of
:mod:`provenance._core.phash` (the imagehash-compatible 64-bit hash, the default query
hash and what an original stores as reference). It reads a path or takes bytes,
and never decodes twice: a caller that has already decoded the image passes it
as ``image=``; otherwise a JPEG is decoded in draft mode (libjpeg scales by 1/2 to
1/8 while decoding) at the smallest scale that still covers the hash's grid.

Pixel limit: every decode in provenance goes through :func:`open_image`, which
reads the header only and refuses an image of more than :data:`MAX_PIXELS` pixels
(override per call with ``max_pixels=``, or process-wide with the environment
variable ``PROVENANCE_MAX_PIXELS``) with :class:`~provenance.errors.ImageTooLarge`
before a pixel is decoded. Pillow's own decompression-bomb warning is an error
here too: a bomb is reported, never decoded.
"""

from __future__ import annotations

import functools
import io
import math
import os
import warnings
from dataclasses import dataclass
from struct import error as struct_error

import numpy as np
import numpy.typing as npt
from PIL import Image

from provenance._core import containers
from provenance._core.containers import ImageFormat
from provenance._core.hashing import essence_hash, sha256_hex
from provenance._core.phash import SCHEME, ReferenceHashes, compat_hashes, reference_hashes
from provenance._io.reading import read_input
from provenance.errors import CorruptFile, ImageTooLarge, ProvenanceError, UnsupportedFormat

__all__ = [
    "DRAFT_SIZE",
    "MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "Fingerprint",
    "check_pixel_limit",
    "decode_for_hashing",
    "fingerprint",
    "max_pixels",
    "open_image",
]

DRAFT_SIZE = 256
"""JPEG draft decoding keeps at least this many pixels per side (2x the hash grid)."""

MAX_PIXELS = 50_000_000
"""Most pixels (width x height) provenance decodes: 50 MP, e.g. 8660 x 5773.

Measured: signing a 13000 x 13000 PNG (169 MP, under Pillow's hard limit of
179 MP) into an inventory peaked at 1.4 GB RSS, all of it the perceptual hash's
decode. A 50 MP RGB image is 150 MB decoded. Product photos and camera files up
to 50 MP pass; raise the limit with ``PROVENANCE_MAX_PIXELS`` or ``max_pixels=``.
"""

MAX_PIXELS_ENV = "PROVENANCE_MAX_PIXELS"
"""The environment variable that overrides :data:`MAX_PIXELS` for a process."""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """The hashes of one image.

    Attributes:
        sha256_hex: SHA-256 of the file's bytes; None when only pixels were given.
        essence_sha256_hex: SHA-256 of the coded image data (see
            :func:`provenance._core.hashing.essence_hash`); None when only pixels were
            given or the format is not one ``containers`` reads.
        phash: The 64-bit ``imagehash.phash``-compatible hash, as an int
            (``f"{fp.phash:016x}"`` is imagehash's string).
        query: ``(WORDS,)`` ``uint64``: the default hash of the image as it is, to
            look a found copy up.
        reference: What the image stores if it is an original (several rows and
            the confirmation descriptor).
        width: Width of the image in pixels (before any draft reduction).
        height: Height of the image in pixels.
        scheme: The default scheme's name (:data:`provenance._core.phash.SCHEME`).
    """

    sha256_hex: str | None
    essence_sha256_hex: str | None
    phash: int
    query: npt.NDArray[np.uint64]
    reference: ReferenceHashes
    width: int
    height: int
    scheme: str = SCHEME


def fingerprint(
    src: str | os.PathLike[str] | bytes | Image.Image,
    *,
    image: Image.Image | None = None,
    max_pixels: int | None = None,
) -> Fingerprint:
    """Compute the fingerprint of an image file, its bytes, or its decoded pixels.

    Args:
        src: A path, the file's bytes, or an already-decoded image (then the
            SHA-256 fields are None).
        image: The already-decoded pixels of ``src``, when the caller has them:
            the bytes are hashed, the pixels are not decoded again.
        max_pixels: The decoding limit (default: :func:`max_pixels`).

    Returns:
        The :class:`Fingerprint`.

    Raises:
        ImageTooLarge: More pixels than the limit, or a decompression bomb.
        ProvenanceError: The file cannot be read.
        CorruptFile: The image is undecodable or truncated, or its container is
            malformed.
    """
    if isinstance(src, Image.Image):
        return _from_pixels(None, None, src, width=src.width, height=src.height)
    name: str | os.PathLike[str] | None
    if isinstance(src, bytes | bytearray | memoryview):
        data, name = bytes(src), None
    else:
        data, name = read_input(src), src
    try:
        file_hash = sha256_hex(data)
        try:
            essence: str | None = essence_hash(data)
        except UnsupportedFormat:
            essence = None  # Pillow may still decode it (BMP ...): hash the pixels
        if image is not None:
            return _from_pixels(file_hash, essence, image, width=image.width, height=image.height)
        decoded, size = decode_for_hashing(data, max_pixels=max_pixels)
        return _from_pixels(file_hash, essence, decoded, width=size[0], height=size[1])
    except ProvenanceError as exc:
        if name is not None:
            exc.with_path(name)
        raise


def max_pixels() -> int:
    """The pixel limit in force: ``PROVENANCE_MAX_PIXELS`` if set, else :data:`MAX_PIXELS`.

    Raises:
        ProvenanceError: The variable is set but is not a positive integer.
    """
    raw = os.environ.get(MAX_PIXELS_ENV)
    if raw is None or not raw.strip():
        return MAX_PIXELS
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise ProvenanceError(f"{MAX_PIXELS_ENV}={raw!r} is not a positive number of pixels")
    return value


def check_pixel_limit(width: int, height: int, *, limit: int | None = None) -> None:
    """Refuse an image of more than ``limit`` pixels.

    Args:
        width: Width from the header.
        height: Height from the header.
        limit: The limit (default: :func:`max_pixels`).

    Raises:
        ImageTooLarge: ``width * height`` exceeds the limit.
    """
    most = max_pixels() if limit is None else limit
    if width * height > most:
        raise ImageTooLarge(
            f"refused as a possible decompression bomb: {width}x{height} pixels "
            f"({width * height / 1e6:.1f} MP) exceeds the decoding limit of "
            f"{most / 1e6:.1f} MP (max_pixels, {MAX_PIXELS_ENV}); not decoded"
        )


@functools.cache
def _register_heif() -> None:
    # pillow-heif adds HEIC/HEIF decoding to Pillow (Pillow reads AVIF itself);
    # imported on first use, since most inputs are not HEIF.
    import pillow_heif

    pillow_heif.register_heif_opener()


def _check_container_size(data: bytes, limit: int | None) -> None:
    """The limit, from our own parse of the header, before any decoder sees the bytes.

    Covers what Pillow reports differently or not at all (every IFD of a TIFF/DNG,
    every ``ispe`` of a HEIF, every GIF frame). JPEG is left to Pillow, which reads
    SOFn without scanning the entropy-coded data our parser walks.
    """
    try:
        if containers.detect_format(data) is ImageFormat.JPEG:
            return
        info = containers.inspect(data)
    except ProvenanceError:
        return  # not ours, or malformed: Pillow decides
    check_pixel_limit(info.width, info.height, limit=limit)


def open_image(data: bytes, *, max_pixels: int | None = None) -> Image.Image:
    """Open image bytes lazily (header only), refusing too many pixels before decoding.

    The caller decodes with ``load()`` (or ``draft`` first) and closes the image.

    Args:
        data: A whole image file.
        max_pixels: The pixel limit (default: :func:`max_pixels`).

    Returns:
        The opened, not yet decoded, image.

    Raises:
        ImageTooLarge: The header announces more pixels than the limit, or Pillow
            calls it a decompression bomb.
        CorruptFile: The bytes are not an image Pillow can read.
    """
    _check_container_size(data, max_pixels)
    if data[4:8] == b"ftyp":
        _register_heif()
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that, then decodes:
            # that warning is a refusal. Its other warnings (a corrupt TIFF tag, say)
            # are about metadata we do not use here: the decode says if pixels fail.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"refused: decompression bomb ({exc}); not decoded") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct_error) as exc:
        raise CorruptFile(f"cannot decode image: {exc}") from None
    try:
        check_pixel_limit(*opened.size, limit=max_pixels)
    except ImageTooLarge:
        opened.close()
        raise
    return opened


def decode_for_hashing(
    data: bytes, *, max_pixels: int | None = None, fit_side: int | None = None
) -> tuple[Image.Image, tuple[int, int]]:
    """Decode image bytes at the smallest scale the hashes need.

    A JPEG is decoded in draft mode, in colour, at 1/2 to 1/8 scale but never below
    :data:`DRAFT_SIZE` pixels per side; other formats are decoded fully. The pixel
    limit is checked from the header first (:func:`open_image`).

    Args:
        data: A whole image file.
        max_pixels: The pixel limit (default: :func:`max_pixels`).
        fit_side: Also keep at least this many pixels on the long side (the
            partial-copy search's :data:`provenance._core.keypoints.QUERY_SIDE`
            for a query; its ``REFERENCE_SIDE`` for an original being signed).

    Returns:
        The decoded image and the image's full size ``(width, height)``.

    Raises:
        ImageTooLarge: Above the pixel limit, or a decompression bomb.
        CorruptFile: The bytes are not a decodable image, or are truncated.
    """
    opened = open_image(data, max_pixels=max_pixels)
    try:
        with opened, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # as in open_image: the decode itself decides
            size = opened.size
            if opened.format == "JPEG":
                # Colour kept: the confirmation compares the mean colour (phash).
                fit = 0.0 if fit_side is None else fit_side / max(size)
                least = [max(DRAFT_SIZE, math.ceil(side * fit)) for side in size]
                opened.draft("RGB", (least[0], least[1]))
            opened.load()
            decoded = opened.copy()
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct_error) as exc:
        # UnidentifiedImageError is an OSError; truncated data raises OSError or
        # (in some plugins) SyntaxError/EOFError/IndexError.
        raise CorruptFile(f"cannot decode image: {exc}") from None
    return decoded, size


def _from_pixels(
    file_hash: str | None,
    essence: str | None,
    image: Image.Image,
    *,
    width: int,
    height: int,
) -> Fingerprint:
    compat = compat_hashes([image])
    reference = reference_hashes(image)
    return Fingerprint(
        sha256_hex=file_hash,
        essence_sha256_hex=essence,
        phash=int(compat[0]),
        query=reference.words[0].copy(),
        reference=reference,
        width=width,
        height=height,
    )
