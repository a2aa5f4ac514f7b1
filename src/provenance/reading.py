"""Reading an input file with errors a person can act on.

Only regular files are read: a directory, a FIFO or a device named like an image
is refused before any byte is read (a FIFO would block forever), and so is a
file larger than the configured limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from provenance.errors import CorruptFile, ProvenanceError

__all__ = ["MAX_INPUT_BYTES", "read_input"]

# Generous for product photos (a 50 MP JPEG is ~25 MB), small enough that a
# hostile upload cannot make us hold gigabytes.
MAX_INPUT_BYTES = 512 * 1024 * 1024


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
