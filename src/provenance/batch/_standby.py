"""Workers forked from the calling process, before it builds a c2pa Context (issue 20).

What this module owns (DESIGN.md decision 1): forking a batch's workers from
the calling process itself, once it has imported what they need and while
forking is still safe, and handing them to the pool when the batch starts.
Without it a pool's workers fork from the fork server, a second interpreter
that imports numpy, Pillow, c2pa and OpenCV again (about 0.45 s of CPU).

Forking is safe only while the process has nothing a child must not share
(:func:`fork_refusal` checks each): no c2pa ``Context`` built (it does not
survive ``fork()``, and no c2pa signature has been made, so no native random
state is duplicated), no thread but the main one (a lock another thread held at
the fork stays held in the child forever), and no open regular file or socket
(an inventory's SQLite file, a server connection, a file being written: the
child would share its offset, locks and buffers). A process past that point
gets its workers from the fork server as before; :func:`fork_workers` refuses.
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from provenance._io.descriptors import first_open_file
from provenance.batch._worker import _standby_main
from provenance.errors import WorkerPoolError


@dataclass(slots=True, eq=False)
class _Standby:
    """A forked worker waiting for its batch's spec on ``conn``."""

    process: Any  # multiprocessing.process.BaseProcess
    conn: Connection


_WAITING: list[_Standby] = []
"""Forked workers no batch has claimed yet."""

_ALIVE: list[Connection] = []
"""The standby workers' guard pipe, (reading end, writing end): only this process
holds the writing end, so every standby worker reads EOF when it dies."""


def fork_refusal() -> str | None:
    """Why this process must not fork a worker now, or None when it may.

    Checked: the platform (Linux, where ``fork`` is the default and the
    parent-death signal exists), the process's own choice of start method
    (``multiprocessing.set_start_method("spawn")`` says it must not fork), the
    thread (only the main one runs), c2pa (no ``Context`` built in this
    process) and open files (no regular file or socket, such as an inventory's
    database or a server connection).
    """
    linux = sys.platform.startswith("linux")
    if not linux or "fork" not in multiprocessing.get_all_start_methods():
        return f"workers are forked from the calling process only on Linux, not {sys.platform}"
    chosen = multiprocessing.get_start_method(allow_none=True)
    if chosen not in (None, "fork"):
        return f"this process chose the {chosen!r} start method for its processes"
    if threading.current_thread() is not threading.main_thread():
        return "only the main thread may fork the workers"
    if threading.active_count() > 1:
        return f"{threading.active_count() - 1} thread(s) besides the main one are running"
    c2pa_io = sys.modules.get("provenance._io.c2pa")
    if c2pa_io is not None and c2pa_io.context_built():
        return "this process has built a c2pa Context, which does not survive fork()"
    opened = _open_file()
    if opened is not None:
        return f"this process holds {opened} open"
    return None


def _open_file() -> str | None:
    """The first regular file or socket this process holds open past stdin/stdout/stderr.

    The pipes to workers forked earlier are sockets of this module's own, and skipped.
    """
    own = {end.fileno() for end in _ALIVE} | {standby.conn.fileno() for standby in _WAITING}
    return first_open_file(skip=own)


def fork_workers(count: int, *, side: tuple[str, ...] = ()) -> None:
    """Fork ``count`` workers from this process now; the next local pool takes them.

    Each imports the modules named in ``side`` (what only workers need: c2pa,
    the verbs) and waits, with nothing of a batch yet, for the spec the pool
    sends it when the batch starts; it exits when this process does.

    Raises:
        WorkerPoolError: Forking is not safe now (:func:`fork_refusal` says why).
    """
    refusal = fork_refusal()
    if refusal is not None:
        raise WorkerPoolError(f"cannot fork the batch's workers from this process: {refusal}")
    context = multiprocessing.get_context("fork")
    if not _ALIVE:
        _ALIVE.extend(context.Pipe(duplex=False))
    alive_r, alive_w = _ALIVE
    # Ctrl-C is held back while forking: a child must not take it before it
    # ignores it (a KeyboardInterrupt traceback of its own); this process gets
    # it once the workers are forked.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    # What this process has built so far (its imports: numpy, Pillow, the
    # library) goes to the garbage collector's permanent generation for the
    # fork, as the gc module's documentation advises: a worker's collections
    # then never walk it (one full collection per worker walked it all, about
    # 20 ms of CPU, writing to every page it shared with this process; issue 20).
    # This process takes it back at once.
    gc.freeze()
    try:
        for _ in range(count):
            conn, child = context.Pipe(duplex=True)
            inherited = [alive_w, conn, *(standby.conn for standby in _WAITING)]
            process = context.Process(
                target=_standby_main,
                args=(child, alive_r, inherited, side),
                name="provenance-worker",
                daemon=True,
            )
            process.start()
            child.close()
            _WAITING.append(_Standby(process, conn))
    finally:
        gc.unfreeze()
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def claim() -> tuple[Any, Connection] | None:
    """A forked worker still alive for the pool to send its spec to, or None."""
    while _WAITING:
        standby = _WAITING.pop(0)
        if standby.process.is_alive():
            return standby.process, standby.conn
        standby.conn.close()
        standby.process.join(timeout=0)
    return None


def waiting() -> int:
    """How many forked workers wait for a batch."""
    return len(_WAITING)
