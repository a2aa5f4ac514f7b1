"""Reading an input file with errors a person can act on.

Only regular files are read: a directory, a FIFO or a device named like an image
is refused before any byte is read (a FIFO would block forever), and so is a
file larger than the configured limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from provenance._core.record import ProvenanceRecord
from provenance.errors import CorruptFile, ProvenanceError, RecordError

__all__ = [
    "MAX_INPUT_BYTES",
    "MAX_RECORD_BYTES",
    "load_record",
    "read_input",
    "sidecar_path",
    "sidecar_record",
]

# Generous for product photos (a 50 MP JPEG is ~25 MB), small enough that a
# hostile upload cannot make us hold gigabytes.
MAX_INPUT_BYTES = 512 * 1024 * 1024

# A record is a few hundred bytes; a megabyte leaves room for long prompts.
MAX_RECORD_BYTES = 1024 * 1024


def read_input(path: str | os.PathLike[str], *, max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """Read a whole regular file.

    Raises:
        ProvenanceError: The path is missing, not a regular file, unreadable or
            larger than ``max_bytes``.
        CorruptFile: The file is empty.
    """
    file = Path(path)
    try:
        info = file.stat()
    except FileNotFoundError:
        raise ProvenanceError("no such file", path=file) from None
    except OSError as exc:
        raise ProvenanceError(f"cannot read: {exc.strerror}", path=file) from None
    if stat.S_ISDIR(info.st_mode):
        raise ProvenanceError("is a directory, not an image file", path=file)
    if not stat.S_ISREG(info.st_mode):
        raise ProvenanceError("is not a regular file (FIFO, socket or device)", path=file)
    if info.st_size > max_bytes:
        raise ProvenanceError(
            f"file is {info.st_size} bytes, larger than the {max_bytes}-byte limit", path=file
        )
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ProvenanceError(f"cannot read: {exc.strerror}", path=file) from None
    if not data:
        raise CorruptFile("file is empty (0 bytes)", path=file)
    return data


def load_record(path: str | os.PathLike[str]) -> ProvenanceRecord:
    """Read and validate a provenance record JSON file.

    Raises:
        RecordError: The file cannot be read, is too large, or is not a valid
            record; the error names the file.
    """
    try:
        return ProvenanceRecord.from_json(read_input(path, max_bytes=MAX_RECORD_BYTES))
    except RecordError as exc:
        raise exc.with_path(path) from None
    except ProvenanceError as exc:
        message = exc.message if "record" in exc.message else f"record: {exc.message}"
        raise RecordError(message, path=path) from None


def sidecar_path(image: str | os.PathLike[str]) -> Path | None:
    """The record file next to an image, ``shoe.jpg.json`` else ``shoe.json``, if one exists."""
    src = Path(image)
    for candidate in (src.with_name(src.name + ".json"), src.with_suffix(".json")):
        if candidate.is_file():
            return candidate
    return None


def sidecar_record(image: str | os.PathLike[str]) -> ProvenanceRecord:
    """The record next to an image (see :func:`sidecar_path`).

    Raises:
        RecordError: No sidecar, or it does not hold a valid record.
    """
    found = sidecar_path(image)
    if found is None:
        name = Path(image).name
        raise RecordError(
            f"no record: pass a record or put {name}.json next to the image", path=image
        )
    return load_record(found)
