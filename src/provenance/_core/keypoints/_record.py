"""The stored record of one image's keypoints (:class:`LocalFeatures`, ``orb1``/``orb2``)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SCHEME = "orb256-v1"
"""Name of the stored keypoint scheme (ORB, 256-bit descriptors, this module's sizes)."""

DESCRIPTOR_BYTES = 32
"""Bytes of one ORB descriptor (256 bits)."""

GRID = 16
"""A reference's colour grid, cells per side."""

_FORMAT = struct.Struct("<4sHHHf")  # magic, count, width, height, scale
_MAGIC = b"orb2"  # with one orientation byte per keypoint
_MAGIC_V1 = b"orb1"  # without: still read
_FIXED = 16.0  # positions stored as uint16 sixteenths of a working pixel
_COLOUR_BYTES = GRID * GRID * 3

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
Ints = npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class LocalFeatures:
    """Keypoints of one image at its working size.

    Attributes:
        points: ``(N, 2)`` ``float32`` keypoint positions ``(x, y)`` in working pixels.
        descriptors: ``(N, 32)`` ``uint8`` ORB descriptors, one row per point.
        width: Width of the working image.
        height: Height of the working image.
        scale: Pixels of the image as given per working pixel (1.0 or more).
        colour: ``(16, 16, 3)`` ``uint8`` mean RGB of a 16x16 grid over the
            working image (a reference), or the query's RGB at half its working
            size: what :func:`locate` compares colours with.
        angles: ``(N,)`` ``float32`` keypoint orientations in degrees (ORB's
            intensity centroid, ``[0, 360)``), or None for a record stored
            before they were kept (``orb1``): :func:`locate` then skips the
            orientation check.
    """

    points: F32
    descriptors: U8
    width: int
    height: int
    scale: float
    colour: U8
    angles: F32 | None = None

    def __len__(self) -> int:
        """The number of keypoints."""
        return int(self.descriptors.shape[0])

    def to_bytes(self) -> bytes:
        """The stored form: a 14-byte header, positions, descriptors, orientations, colours.

        Orientations are stored as one byte each (1.4 degrees a step); a
        record without them (``angles`` None) is written in the older ``orb1`` form.
        """
        fixed = np.clip(np.round(self.points * _FIXED), 0, 65535).astype("<u2")
        colour = np.ascontiguousarray(self.colour, dtype=np.uint8)
        if colour.shape != (GRID, GRID, 3):
            raise ValueError("only a reference's 16x16 colour grid is stored")
        parts = [fixed.tobytes(), np.ascontiguousarray(self.descriptors).tobytes()]
        magic = _MAGIC_V1
        if self.angles is not None:
            magic = _MAGIC
            steps = np.round(np.asarray(self.angles, np.float32) * (256 / 360)).astype(np.int64)
            parts.append((steps % 256).astype(np.uint8).tobytes())
        head = _FORMAT.pack(magic, len(self), self.width, self.height, self.scale)
        return head + b"".join(parts) + colour.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalFeatures:
        """Parse :meth:`to_bytes` output (``orb2``, or ``orb1`` without orientations).

        Raises:
            ValueError: Not this scheme's stored form, or truncated.
        """
        if len(data) < _FORMAT.size:
            raise ValueError("keypoint record too short")
        magic, count, width, height, scale = _FORMAT.unpack_from(data)
        per_point = {_MAGIC: 5 + DESCRIPTOR_BYTES, _MAGIC_V1: 4 + DESCRIPTOR_BYTES}.get(magic)
        if per_point is None or len(data) != _FORMAT.size + count * per_point + _COLOUR_BYTES:
            raise ValueError("not an orb1 or orb2 keypoint record")
        start = _FORMAT.size
        points = np.frombuffer(data, "<u2", count * 2, start).reshape(count, 2)
        descriptors = np.frombuffer(data, np.uint8, count * DESCRIPTOR_BYTES, start + count * 4)
        angles = None
        if magic == _MAGIC:
            steps = np.frombuffer(data, np.uint8, count, start + count * (4 + DESCRIPTOR_BYTES))
            angles = steps.astype(np.float32) * np.float32(360 / 256)
        colour = np.frombuffer(data, np.uint8, _COLOUR_BYTES, start + count * per_point)
        return cls(
            points=(points.astype(np.float32) / np.float32(_FIXED)),
            descriptors=descriptors.reshape(count, DESCRIPTOR_BYTES),
            width=int(width),
            height=int(height),
            scale=float(scale),
            colour=colour.reshape(GRID, GRID, 3),
            angles=angles,
        )


def stored_descriptors(data: bytes) -> tuple[U8, F32 | None]:
    """Only the ``(N, 32)`` descriptors of a stored record and their orientations.

    What an index over many records needs, without decoding positions and
    colours (:meth:`LocalFeatures.from_bytes` costs 10x more per record). The
    descriptors are a view of ``data`` (no copy); the orientations (degrees)
    are None for an ``orb1`` record, which has none.

    Raises:
        ValueError: Not an ``orb1`` or ``orb2`` record, or truncated.
    """
    if len(data) < _FORMAT.size:
        raise ValueError("keypoint record too short")
    magic, count = _FORMAT.unpack_from(data)[:2]
    per_point = {_MAGIC: 5 + DESCRIPTOR_BYTES, _MAGIC_V1: 4 + DESCRIPTOR_BYTES}.get(magic)
    if per_point is None or len(data) != _FORMAT.size + count * per_point + _COLOUR_BYTES:
        raise ValueError("not an orb1 or orb2 keypoint record")
    start = _FORMAT.size + count * 4
    descriptors = np.frombuffer(data, np.uint8, count * DESCRIPTOR_BYTES, start).reshape(
        count, DESCRIPTOR_BYTES
    )
    angles = None
    if magic == _MAGIC:
        steps = np.frombuffer(data, np.uint8, count, start + count * DESCRIPTOR_BYTES)
        angles = steps.astype(np.float32) * np.float32(360 / 256)
    return descriptors, angles
