"""The fingerprint verb: every hash the inventory matches copies by, from one input.

A fingerprint holds the three hashes of decision 5 in DESIGN.md: the file SHA-256,
the essence hash (coded image data only) and the perceptual hashes of
:mod:`provenance.phash` (the imagehash-compatible 64-bit hash, the default query
hash and what an original stores as reference). It reads a path or takes bytes,
and never decodes twice: a caller that has already decoded the image passes it
as ``image=``; otherwise a JPEG is decoded in draft mode (libjpeg scales by 1/2 to
1/8 while decoding) at the smallest scale that still covers the hash's grid.

Pillow's decompression-bomb limit stays on: a bomb is reported, never decoded.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from provenance.errors import CorruptFile, ProvenanceError, UnsupportedFormat
from provenance.hashing import essence_hash, sha256_hex
from provenance.phash import SCHEME, ReferenceHashes, compat_hashes, reference_hashes
from provenance.reading import read_input

__all__ = ["DRAFT_SIZE", "Fingerprint", "decode_for_hashing", "fingerprint"]

DRAFT_SIZE = 256
"""JPEG draft decoding keeps at least this many pixels per side (2x the hash grid)."""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """The hashes of one image.

    Attributes:
        sha256_hex: SHA-256 of the file's bytes; None when only pixels were given.
        essence_sha256_hex: SHA-256 of the coded image data (see
            :func:`provenance.hashing.essence_hash`); None when only pixels were
            given or the format is not JPEG, PNG or WebP.
        phash: The 64-bit ``imagehash.phash``-compatible hash, as an int
            (``f"{fp.phash:016x}"`` is imagehash's string).
        query: ``(WORDS,)`` ``uint64``: the default hash of the image as it is, to
            look a found copy up.
        reference: What the image stores if it is an original (several rows and
            the confirmation descriptor).
        width: Width of the image in pixels (before any draft reduction).
        height: Height of the image in pixels.
        scheme: The default scheme's name (:data:`provenance.phash.SCHEME`).
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
    src: str | os.PathLike[str] | bytes | Image.Image, *, image: Image.Image | None = None
) -> Fingerprint:
    """Compute the fingerprint of an image file, its bytes, or its decoded pixels.

    Args:
        src: A path, the file's bytes, or an already-decoded image (then the
            SHA-256 fields are None).
        image: The already-decoded pixels of ``src``, when the caller has them:
            the bytes are hashed, the pixels are not decoded again.

    Returns:
        The :class:`Fingerprint`.

    Raises:
        ProvenanceError: The file cannot be read, or is a decompression bomb.
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
            essence = None  # Pillow may still decode it (GIF, TIFF ...): hash the pixels
        if image is not None:
            return _from_pixels(file_hash, essence, image, width=image.width, height=image.height)
        decoded, size = decode_for_hashing(data)
        return _from_pixels(file_hash, essence, decoded, width=size[0], height=size[1])
    except ProvenanceError as exc:
        if name is not None:
            exc.with_path(name)
        raise


def decode_for_hashing(
    data: bytes, *, fit_side: int | None = None
) -> tuple[Image.Image, tuple[int, int]]:
    """Decode image bytes at the smallest scale the hashes need.

    A JPEG is decoded in draft mode, in colour, at 1/2 to 1/8 scale but never below
    :data:`DRAFT_SIZE` pixels per side; other formats are decoded fully.

    Args:
        data: A whole image file.
        fit_side: Instead, keep at least this many pixels on the long side (the
            partial-copy search's :data:`provenance.keypoints.QUERY_SIDE`).

    Returns:
        The decoded image and the image's full size ``(width, height)``.

    Raises:
        ProvenanceError: The image is a decompression bomb (Pillow's limit).
        CorruptFile: The bytes are not a decodable image, or are truncated.
    """
    try:
        with Image.open(io.BytesIO(data)) as opened:
            size = opened.size
            if opened.format == "JPEG":
                # Colour kept: the confirmation compares the mean colour (phash).
                if fit_side is None:
                    opened.draft("RGB", (DRAFT_SIZE, DRAFT_SIZE))
                else:
                    fit = fit_side / max(size)
                    opened.draft("RGB", (math.ceil(size[0] * fit), math.ceil(size[1] * fit)))
            opened.load()
            decoded = opened.copy()
    except Image.DecompressionBombError as exc:
        raise ProvenanceError(f"refused: decompression bomb ({exc})") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError) as exc:
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
