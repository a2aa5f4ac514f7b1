"""Atomic file writes: a temporary file in the destination folder, fsync, rename.

A reader never sees a half-written file under its final name, and a crash or a
full disk leaves the previous file (or nothing) in place, never a torso.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["fsync_folder", "write_atomic", "write_atomic_chunks"]


def write_atomic(
    path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644, sync_folder: bool = True
) -> Path:
    """Write ``data`` to ``path`` atomically with permission bits ``mode``.

    Args:
        path: The destination.
        data: The bytes.
        mode: The file's permission bits.
        sync_folder: Fsync the folder after the rename (the default). False
            leaves the file complete under its final name but the rename
            durable only once the caller calls :func:`fsync_folder`: a batch
            does that once per folder for many files, before it reports any of
            them as written.

    Returns:
        The destination path.

    Raises:
        OSError: The folder is missing or not writable, or the disk is full; the
            temporary file is removed and ``path`` is unchanged.
    """
    return write_atomic_chunks(path, (data,), mode=mode, sync_folder=sync_folder)


def write_atomic_chunks(
    path: str | os.PathLike[str],
    chunks: Iterable[bytes | memoryview],
    *,
    mode: int = 0o644,
    sync_folder: bool = True,
) -> Path:
    """Write the concatenation of ``chunks`` to ``path`` atomically, without joining them.

    For large outputs (an index of millions of hashes) that should not be
    copied into one ``bytes`` first. Arguments as for :func:`write_atomic`.

    Returns:
        The destination path.

    Raises:
        OSError: As :func:`write_atomic`; ``path`` is unchanged.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(mode)
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if sync_folder:
        fsync_folder(target.parent)
    return target


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Make the renames done in ``folder`` durable (fsync of the directory; best effort).

    A rename is durable only once the directory entry is on disk.
    """
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
