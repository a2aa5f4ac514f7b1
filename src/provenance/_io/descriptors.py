"""This process's open files: what a fork would share and a quick exit would leave open.

What this module owns: finding a regular file or socket the process holds open
past stdin, stdout and stderr (Linux, ``/proc/self/fd``). A worker forked while
one is open would share its offset, locks and buffers (an inventory's SQLite
file, a server connection: DESIGN.md decision 1); a process that exits without
the interpreter's teardown would leave it unclosed (an SQLite connection then
keeps its write-ahead log beside the database). It never closes anything.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Collection
from pathlib import Path

__all__ = ["first_open_file"]


def first_open_file(*, skip: Collection[int] = ()) -> str | None:
    """The first regular file or socket open past stdin/stdout/stderr, or None.

    Args:
        skip: Descriptors that do not count (a caller's own pipes to its workers).

    Returns:
        Its path and descriptor (``"/x/inventory.sqlite (descriptor 5)"``), or None
        when there is none, or when this platform has no ``/proc/self/fd`` to
        list (callers that must be sure check the platform first).
    """
    descriptors = Path("/proc/self/fd")
    with contextlib.suppress(OSError):
        for entry in sorted(descriptors.iterdir(), key=lambda path: int(path.name)):
            fd = int(entry.name)
            if fd <= 2 or fd in skip:
                continue  # the caller's own output may well be a file
            try:
                mode = os.fstat(fd).st_mode
            except OSError:
                continue  # the listing's own descriptor, closed by now
            if stat.S_ISREG(mode) or stat.S_ISSOCK(mode):
                with contextlib.suppress(OSError):
                    return f"{entry.readlink()} (descriptor {fd})"
                return f"descriptor {fd}"
    return None
