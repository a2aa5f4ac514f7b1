"""Atomic file writes: a temporary file in the destination folder, fsync, rename.

A reader never sees a half-written file under its final name, and a crash or a
full disk leaves the previous file (or nothing) in place, never a torso.

The temporary file is the one place a hostile folder could interfere, so it is
opened with ``O_CREAT | O_EXCL | O_NOFOLLOW`` under an unpredictable name: a
symlink or file planted under that name is never followed nor reused (the open
fails and another name is drawn). It is created 0600, whatever the umask, and
only gets its final ``mode`` (set with ``fchmod``, so the umask does not apply
either) once its content is complete. Files that may hold personal data or
audit facts (exports, reports, checkpoints) are written with
:data:`PRIVATE_FILE_MODE`, as the inventory itself is.

This module must never decide what is written, only how.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "PRIVATE_FILE_MODE",
    "PRIVATE_FOLDER_MODE",
    "fsync_folder",
    "make_private_folder",
    "write_atomic",
    "write_atomic_chunks",
]

PRIVATE_FILE_MODE = 0o600
"""Owner read/write only: inventories, keys, exports, reports, checkpoints."""

PRIVATE_FOLDER_MODE = 0o700
"""Owner only: the keys folder, the inventory's folder when we create it."""

_TEMP_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
# The longest file name most file systems take is 255 bytes; the temporary name
# adds a dot, 16 hex digits and ".tmp".
_NAME_KEEP = 200


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
    fd, tmp = _open_temporary(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
            # fchmod, not chmod: the mode is set on the file we wrote, never on
            # whatever the name points at by now; and the umask does not apply.
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode)
            else:  # pragma: no cover - Windows has no fchmod
                tmp.chmod(mode)
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if sync_folder:
        fsync_folder(target.parent)
    return target


def _open_temporary(target: Path) -> tuple[int, Path]:
    """Create a fresh temporary file beside ``target``: exclusive, no symlink, mode 0600."""
    stem = target.name[:_NAME_KEEP]
    for _ in range(16):
        tmp = target.with_name(f".{stem}.{secrets.token_hex(8)}.tmp")
        try:
            return os.open(tmp, _TEMP_FLAGS, PRIVATE_FILE_MODE), tmp
        except FileExistsError:
            continue  # someone planted this name (or a one-in-2**64 collision): draw again
    raise FileExistsError(f"{target.parent}: cannot create a temporary file (names all taken)")


def make_private_folder(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` (and missing parents) so that it ends owner-only (0700).

    A folder that already exists is left as it is (it may be shared on
    purpose); a folder created here gets 0700 whatever the umask (``mkdir``
    alone would give 0777 under umask 000).

    Returns:
        The folder.

    Raises:
        OSError: The folder cannot be created.
    """
    target = Path(folder)
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.mkdir(mode=PRIVATE_FOLDER_MODE)
    except FileExistsError:
        return target  # made by someone else meanwhile: theirs to set
    target.chmod(PRIVATE_FOLDER_MODE)
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
