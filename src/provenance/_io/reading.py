"""Reading an input file with errors a person can act on.

Only regular files are read: a directory, a FIFO or a device named like an image
is refused before any byte is read (a FIFO would block forever), and so is a
file larger than the configured limit.

:func:`read_input_view` reads into a buffer each thread keeps and reuses: a fresh
1-2 MB ``bytes`` per file, freed while c2pa allocates and frees its own buffers,
made glibc give the heap top back and fault it in again on the next file (about
420 page faults and 0.6-1.0 ms of system CPU per 1.4 MB JPEG verified, a sixth of
``verify``; measured on a loaded 2-core machine).
"""

from __future__ import annotations

import io
import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from provenance._core.record import ProvenanceRecord
from provenance.errors import CorruptFile, ProvenanceError, RecordError

__all__ = [
    "HEAD_BYTES",
    "MAX_INPUT_BYTES",
    "MAX_RECORD_BYTES",
    "MAX_REUSED_BYTES",
    "load_record",
    "read_input",
    "read_input_view",
    "sidecar_path",
    "sidecar_record",
]

# Generous for product photos (a 50 MP JPEG is ~25 MB), small enough that a
# hostile upload cannot make us hold gigabytes.
MAX_INPUT_BYTES = 512 * 1024 * 1024

# A record is a few hundred bytes; a megabyte leaves room for long prompts.
MAX_RECORD_BYTES = 1024 * 1024

MAX_REUSED_BYTES = 64 * 1024 * 1024
"""Largest file :func:`read_input_view` reads into the buffer a thread keeps."""

HEAD_BYTES = 64 * 1024
"""How much of a file :func:`read_input_view`'s ``reuse_if`` is shown."""

# One buffer per thread, taken out while a view of it is in use (so a nested read
# gets its own) and put back afterwards.
_THREAD_BUFFER = threading.local()


def read_input(path: str | os.PathLike[str], *, max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """Read a whole regular file.

    Raises:
        ProvenanceError: The path is missing, not a regular file, unreadable or
            larger than ``max_bytes``.
        CorruptFile: The file is empty.
    """
    file = Path(path)
    _regular_size(file, max_bytes)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ProvenanceError(f"cannot read: {exc.strerror}", path=file) from None
    if not data:
        raise CorruptFile("file is empty (0 bytes)", path=file)
    return data


@contextmanager
def read_input_view(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = MAX_INPUT_BYTES,
    reuse_if: Callable[[memoryview], bool] | None = None,
) -> Iterator[memoryview]:
    """Read a whole regular file into this thread's reused buffer; a read-only view of it.

    The view is valid inside the ``with`` block only (it is released on leaving
    it, and the next file read on this thread overwrites the buffer): copy what
    must outlive it. A file whose first :data:`HEAD_BYTES` (or fewer) ``reuse_if``
    turns down, files above :data:`MAX_REUSED_BYTES`, a file read while this
    thread's buffer is in use and a file whose size changes while it is read are
    read as :func:`read_input` does: the view is then over that ``bytes`` object
    (its ``obj``), for a caller that needs ``bytes`` anyway. Same checks and
    errors as :func:`read_input`.

    Raises:
        ProvenanceError: The path is missing, not a regular file, unreadable or
            larger than ``max_bytes``.
        CorruptFile: The file is empty.
    """
    file = Path(path)
    size = _regular_size(file, max_bytes)
    held = _THREAD_BUFFER.__dict__
    kept: bytearray | None = held.pop("buffer", None)  # taken: a nested read makes its own
    buffer: bytearray | None = None  # a larger file's buffer would stay for the thread's life
    if 0 < size <= MAX_REUSED_BYTES:
        buffer = kept if kept is not None and len(kept) >= size else bytearray(size)
    try:
        with _whole_file(file, buffer, size, max_bytes, reuse_if) as view:
            yield view
    finally:
        held["buffer"] = buffer if buffer is not None else kept  # the next read may reuse it


@contextmanager
def _whole_file(
    file: Path,
    buffer: bytearray | None,
    size: int,
    max_bytes: int,
    reuse_if: Callable[[memoryview], bool] | None,
) -> Iterator[memoryview]:
    """The file read into ``buffer`` (or into fresh bytes), as a read-only view."""
    data: bytes | bytearray | None = None
    if buffer is not None:
        head = min(size, HEAD_BYTES)
        try:
            with file.open("rb", buffering=0) as stream:
                complete = (
                    _read_exactly(stream, buffer, 0, head)
                    and _accepts(reuse_if, buffer, head)
                    and _read_exactly(stream, buffer, head, size)
                    and not stream.read(1)
                )
        except OSError as exc:
            raise ProvenanceError(f"cannot read: {exc.strerror}", path=file) from None
        data = buffer if complete else None
    if data is None:  # not reused, or the file changed size while it was read
        data = read_input(file, max_bytes=max_bytes)
        size = len(data)
    with memoryview(data) as full, full[:size] as part, part.toreadonly() as view:
        yield view


def _accepts(reuse_if: Callable[[memoryview], bool] | None, buffer: bytearray, head: int) -> bool:
    if reuse_if is None:
        return True
    with memoryview(buffer) as full, full[:head] as part, part.toreadonly() as view:
        return reuse_if(view)


def _read_exactly(stream: io.FileIO, buffer: bytearray, start: int, stop: int) -> bool:
    """Fill ``buffer[start:stop]`` from ``stream``; False at an early end."""
    with memoryview(buffer) as full:
        while start < stop:
            with full[start:stop] as rest:
                got = stream.readinto(rest)
            if not got:
                return False
            start += got
        return True


def _regular_size(file: Path, max_bytes: int) -> int:
    """The size of ``file`` once it is known to be a regular file within ``max_bytes``."""
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
    return info.st_size


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
