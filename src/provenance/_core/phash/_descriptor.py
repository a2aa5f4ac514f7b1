"""The persisted descriptor: what an original keeps for the confirmation (versions 1-4).

Owns the byte format of :attr:`ReferenceHashes.descriptor`, written by version 4
and read in every version an inventory may still hold, and the rows it covers:
the mid-band bits, coarse layout and colour of each window, turned on demand to
any flip or quarter turn. Every problem with stored bytes or a row name is a
:class:`~provenance.errors.DescriptorError`. Pure: bytes in, numpy arrays out.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from provenance._core.phash._bits import mid_mask, pack
from provenance._core.phash._scheme import (
    CONFIRM_WORDS,
    F32,
    FRAME,
    LAYOUT,
    MID,
    REFERENCE_VARIANTS,
    U64,
    WINDOWS,
    parse_variant,
)
from provenance._core.phash._transforms import dihedral
from provenance.errors import DescriptorError

__all__ = ["DESCRIPTOR_WINDOWS", "Descriptor", "descriptors_to_bytes", "parse_descriptor"]

_TAG = b"mid768cl-v4:"
DESCRIPTOR_WINDOWS: tuple[str, ...] = (
    "full",
    f"{FRAME}full",
    *(f"{FRAME}{w}" for w in WINDOWS if w != "full"),
)
"""The windows a descriptor covers, in order: the trimmed box, then the whole frame
and each of its windows. Version 4 is the colour signature (4 bytes), the mid-band
words of each window (96 bytes each), then the layout of each (64 int8 each)."""

# Older descriptors are still read (and confirmed without the checks they lack).
# Version 3 was version 4 without the layouts. Version 2 covered the windows of the
# trimmed box; version 1 was version 2 without the colour signature.
_TAG_V3 = b"mid768c-v3:"
_TAG_V2 = b"mid768c-v2:"
_TAG_V1 = b"mid768-v1:"
_WINDOWS_V2: tuple[str, ...] = (
    "full", "c90", "c80", "tl90", "tr90", "bl90", "br90", "tl80", "tr80", "bl80", "br80",
)  # fmt: skip
# The rows of the previous default (trimmed-box windows), still found in inventories.
_V2_VARIANTS: tuple[str, ...] = tuple(f"{w}:identity" for w in _WINDOWS_V2[1:])

# Version tag, windows, bytes of colour, bytes of layout per window.
_VERSIONS: tuple[tuple[bytes, tuple[str, ...], int, int], ...] = (
    (_TAG, DESCRIPTOR_WINDOWS, 4, LAYOUT * LAYOUT),
    (_TAG_V3, DESCRIPTOR_WINDOWS, 4, 0),
    (_TAG_V2, _WINDOWS_V2, 4, 0),
    (_TAG_V1, _WINDOWS_V2, 0, 0),
)


def descriptors_to_bytes(colours: F32, mid: U64, layouts: F32) -> list[bytes]:
    """Each image's version 4 descriptor.

    Args:
        colours: ``(N, 2)`` colour signatures.
        mid: ``(N, len(DESCRIPTOR_WINDOWS), CONFIRM_WORDS)`` mid-band words.
        layouts: ``(N, len(DESCRIPTOR_WINDOWS), 8, 8)`` layouts.

    Returns:
        One descriptor per image.
    """
    colour = _colour_bytes(colours)
    layout = _layout_bytes(layouts)
    return [_TAG + colour[i] + mid[i].astype(">u8").tobytes() + layout[i] for i in range(len(mid))]


def _layout_bytes(layouts: F32) -> list[bytes]:
    """Each image's ``(W, 8, 8)`` layouts as ``int8``, each window scaled to use +-127.

    A correlation does not see the scale, so it is not stored.
    """
    top = np.abs(layouts).max(axis=(-2, -1), keepdims=True)
    scaled = np.round(layouts * (127.0 / np.maximum(top, np.float32(1e-12)))).astype(np.int8)
    return [row.tobytes() for row in scaled]


def _colour_bytes(colours: F32) -> list[bytes]:
    """Each ``(2,)`` colour signature as two big-endian ``int16`` in 1e-4 units."""
    scaled = np.round(colours * 10_000).astype(">i2")
    return [row.tobytes() for row in scaled]


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A parsed descriptor: what each version holds (None where it holds nothing).

    Attributes:
        names: The windows covered, in stored order.
        words: ``(windows, CONFIRM_WORDS)`` mid-band words.
        colour: ``(2,)`` colour signature; None in version 1.
        layouts: ``(windows, 8, 8)`` layouts; None before version 4.
    """

    names: tuple[str, ...]
    words: U64
    colour: F32 | None
    layouts: F32 | None

    def window_index(self, window: str) -> int:
        """Where the descriptor keeps ``window``; DescriptorError if it does not cover it."""
        if window not in self.names:
            raise DescriptorError(f"the descriptor does not cover window {window!r}")
        return self.names.index(window)

    def variants(self) -> list[str]:
        """Every row name (current and previous defaults) whose window this covers."""
        return [
            v for v in (*REFERENCE_VARIANTS, *_V2_VARIANTS) if parse_variant(v)[0] in self.names
        ]

    def mid_row(self, variant: str) -> U64:
        """The mid-band words of row ``variant`` (its window, flipped or turned)."""
        window, turn = parse_variant(variant)
        return _turn_mid(self.words[self.window_index(window)], turn)

    def layout_row(self, variant: str) -> F32 | None:
        """The flat ``(64,)`` layout of row ``variant``; None before version 4."""
        window, turn = parse_variant(variant)
        index = self.window_index(window)
        if self.layouts is None:
            return None
        stored: F32 = dihedral(self.layouts[index], turn).ravel()
        return stored


def parse_descriptor(descriptor: bytes) -> Descriptor:
    """Split a descriptor of any version.

    Raises:
        DescriptorError: If it is of no known version or has the wrong size.
    """
    version = next((v for v in _VERSIONS if descriptor.startswith(v[0])), None)
    if version is None:
        raise DescriptorError("not a mid768cl-v4, mid768c-v3, mid768c-v2 or mid768-v1 descriptor")
    tag, names, colour_size, layout_size = version
    body = descriptor[len(tag) :]
    mid_size = len(names) * CONFIRM_WORDS * 8
    expected = colour_size + mid_size + len(names) * layout_size
    if len(body) != expected:
        raise DescriptorError(
            f"descriptor has {len(body)} bytes after its tag, expected {expected}"
        )
    colour: F32 | None = None
    if colour_size:
        colour = np.frombuffer(body[:4], dtype=">i2").astype(np.float32) / np.float32(10_000)
    words: U64 = (
        np.frombuffer(body[colour_size : colour_size + mid_size], dtype=">u8")
        .astype(np.uint64)
        .reshape(len(names), CONFIRM_WORDS)
    )
    layouts: F32 | None = None
    if layout_size:
        raw = np.frombuffer(body[colour_size + mid_size :], dtype=np.int8)
        layouts = raw.astype(np.float32).reshape(len(names), LAYOUT, LAYOUT)
    return Descriptor(names=names, words=words, colour=colour, layouts=layouts)


@functools.cache
def _mid_permutation(turn: str) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Where each mid-band bit of a window goes, and whether it flips, under ``turn``."""
    index = np.arange(MID * MID, dtype=np.float32).reshape(MID, MID) + 1.0
    moved = dihedral(index, turn)[mid_mask()]
    return (np.abs(moved).astype(np.intp) - 1), moved < 0


def _turn_mid(words: U64, turn: str) -> U64:
    """The mid-band bits of a window's flip or turn, from the window's own bits."""
    if turn == "identity":
        return words
    bits = np.unpackbits(words.astype(">u8").view(np.uint8)).astype(bool)
    grid = np.zeros(MID * MID, dtype=bool)
    grid[mid_mask().ravel()] = bits
    # Mid-band cell j of the turned window is source cell perm[j], negated where flip[j].
    perm, flip = _mid_permutation(turn)
    return pack(grid[perm] ^ flip)
