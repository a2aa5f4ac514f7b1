"""A pool worker's side: its entry points, its loop over chunks, and dying with the caller.

What this module owns (DESIGN.md decision 9): what runs inside a local worker
process. Two entry points: :func:`_worker_main`, for a worker started by the
fork server (or spawned) with the batch's spec; and :func:`_standby_main`, for a
worker forked from the calling process before the batch exists
(:mod:`._standby`, issue 20), which waits for its spec on its pipe. Both then
build the worker's state once, report every item as they finish it and exit
when the calling process dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from provenance.batch._forkserver import preload

if TYPE_CHECKING:
    from provenance.batch._jobs import WorkerSpec


def _worker_main(spec: WorkerSpec, conn: Connection, alive: Connection) -> None:
    """A pool worker: build the state once, then run chunks until told to stop."""
    # Ctrl-C reaches the whole process group: the caller handles it (and stops
    # its workers); a worker must not die mid-item with a traceback of its own.
    # First thing: the fork server restores the default handler in the child,
    # and loading libc for the parent-death guard below takes long enough for a
    # second Ctrl-C to land in between (seen in the Ctrl-C test under load).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(alive)
    _serve(spec, conn)


def _standby_main(
    conn: Connection, alive: Connection, inherited: Iterable[Connection], side: tuple[str, ...]
) -> None:
    """A worker forked from the calling process: import ``side``, wait for a batch's spec, serve it.

    ``inherited`` are the calling process's own ends of pipes (the writing end
    of ``alive``, its ends of earlier standby workers' pipes) that fork copied
    into this process: closed first, or the EOFs this process and the other
    workers wait for would never come.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in _worker_main
    # Forked with Ctrl-C held back (_standby.fork_workers): ignored from now on.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    for end in inherited:
        end.close()
    _die_with_parent(alive)
    # Forked before the calling process imported the signing side (c2pa, the
    # verbs): imported here, beside the other worker and the caller's key,
    # inventory and listing work, before the spec can arrive (issue 20). OpenCV
    # and the like load on first use, by the items that need them.
    with contextlib.suppress(Exception):  # raised again, and reported, by _serve
        preload(side)
    try:
        spec = conn.recv()
    except (EOFError, OSError):
        os._exit(0)  # the caller ended without a batch for us
    if spec is not None:
        _serve(spec, conn)


def _serve(spec: WorkerSpec, conn: Connection) -> None:
    try:
        # The signing side, imported here (issue 20): a module that cannot be
        # imported is this worker's failure to start, reported like any other.
        from provenance.batch._work import _process, _worker_state

        state = _worker_state(spec)
    except Exception as exc:  # reported to the parent, which stops the batch
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    try:
        conn.send(("ready", None))
        while True:
            chunk = conn.recv()
            if chunk is None:
                return
            _process(state, chunk, report=lambda outcome: conn.send(("item", outcome)))
            conn.send(("done", None))
    except (EOFError, OSError):
        # The caller is gone (its end of the pipe closed): stop, quietly.
        os._exit(1)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(alive: Connection) -> None:
    """Exit as soon as the calling process dies, killed or not (issue 19).

    A worker's parent is the fork server, not the calling process (unless it
    was forked from the caller as a standby), so ``getppid()`` says nothing
    about the caller. Two guards: a thread that waits for EOF on ``alive``
    (only the caller holds its writing end) and exits at once; and on Linux
    ``PR_SET_PDEATHSIG``, so the kernel kills the worker when its parent (the
    fork server, which exits when the caller does, or the caller's main
    thread) dies, even if the thread cannot run.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    threading.Thread(
        target=_exit_on_eof, args=(alive,), name="provenance-parent", daemon=True
    ).start()


def _exit_on_eof(alive: Connection) -> None:
    with contextlib.suppress(EOFError, OSError):
        alive.recv_bytes()  # nothing is ever sent: returns only at EOF
    os._exit(1)
