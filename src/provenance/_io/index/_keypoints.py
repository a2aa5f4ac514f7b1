"""The keypoint vote index's cache file (issue 21): write it atomically, read it back mapped.

The same container as a Hamming index file (:mod:`provenance._io.index._file`: a
JSON header, 64-byte aligned arrays), with ``"kind": "keypoint-votes"`` and a
format number of its own in the header. What the arrays mean is
:meth:`provenance._core.keypoints.KeypointIndex.to_arrays`'s business; whether a
file may be used (whose inventory, which rows) is the caller's: the header
carries the ``stamp`` it was written with, and :func:`load_keypoint_cache`
returns it untouched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from provenance._core.keypoints import KeypointIndex
from provenance._io.atomic import PRIVATE_FILE_MODE, write_atomic_chunks
from provenance._io.index._file import _deserialize, _serialize
from provenance.errors import CorruptFile

KEYPOINT_CACHE_FORMAT = 2  # 2: ids carry the keypoint's orientation (vote ranking)
"""The version of the stored keypoint index; a file of another one is rebuilt."""

_KIND = "keypoint-votes"


def save_keypoint_cache(
    index: KeypointIndex, path: str | os.PathLike[str], *, stamp: dict[str, Any]
) -> Path:
    """Write ``index`` and ``stamp`` (JSON values) to ``path`` atomically, owner-only (0600).

    Owner-only like the inventory itself: the descriptors describe its images.

    Raises:
        OSError: The file cannot be written; nothing is left behind.
    """
    arrays, meta = index.to_arrays()
    header = {"kind": _KIND, "format": KEYPOINT_CACHE_FORMAT, "index": meta, "stamp": stamp}
    return write_atomic_chunks(path, _serialize(arrays, header), mode=PRIVATE_FILE_MODE)


def load_keypoint_cache(path: str | os.PathLike[str]) -> tuple[KeypointIndex, dict[str, Any]]:
    """The index in ``path`` (its descriptors read from the mapped file) and its stamp.

    Raises:
        ProvenanceError: The file cannot be read.
        CorruptFile: Not a keypoint index file of this format, or cut short or
            inconsistent.
    """
    file = Path(path)
    header, arrays = _deserialize(file, mmap=True)
    if header.get("kind") != _KIND or header.get("format") != KEYPOINT_CACHE_FORMAT:
        raise CorruptFile("not a keypoint index file of this format", path=file)
    stamp, meta = header.get("stamp"), header.get("index")
    if not isinstance(stamp, dict) or not isinstance(meta, dict):
        raise CorruptFile("keypoint index header is malformed", path=file)
    try:
        index = KeypointIndex.from_arrays(arrays, meta)
    except ValueError as exc:
        raise CorruptFile(f"keypoint index is inconsistent: {exc}", path=file) from None
    return index, stamp
