"""Imported by the pool's fork server alone (its preload): a start its caller abandoned is quiet.

What this module owns (issue 20): what a child of the fork server does when the
process that asked for it exits before handing it its work. A batch done in
the calling process while the fork server still boots ends at once
(``_pool._Pool.shutdown`` does not wait for the workers it was starting); a
worker forked just then finds its pipe closed before its first byte, and
``multiprocessing.spawn._main`` raises ``EOFError``. The fork server's child
hands any exception to ``sys.excepthook`` (the traceback went to the caller's
terminal, after its command had finished) and exits with status 1. There is no
one to tell and nothing lost, so that exception alone is not printed; any other
failure (work that does not unpickle, a preparation that fails) still is.

Importing this module replaces ``sys.excepthook``: it is imported by no other
process (``_forkserver._PRELOAD`` lists it for the fork server), and workers
forked from the server never reach the hook (``BaseProcess._bootstrap`` reports
their exceptions itself).
"""

from __future__ import annotations

import sys
from types import TracebackType

_previous = sys.excepthook


def _abandoned(kind: type[BaseException], traceback: TracebackType | None) -> bool:
    """Whether this is an EOF on the work's pipe, before the child had any work."""
    if not issubclass(kind, EOFError):
        return False
    while traceback is not None:
        code = traceback.tb_frame.f_code
        if code.co_name == "_main" and code.co_filename.endswith("spawn.py"):
            return True
        traceback = traceback.tb_next
    return False


def _excepthook(
    kind: type[BaseException], value: BaseException, traceback: TracebackType | None
) -> None:
    if not _abandoned(kind, traceback):
        _previous(kind, value, traceback)


sys.excepthook = _excepthook
