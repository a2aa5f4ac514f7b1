"""The local pool's start method and its fork server: what a batch can start first.

What this module owns (DESIGN.md decision 9, issue 20): choosing how worker
processes start (``forkserver`` where the platform has it, else ``spawn``, never
``fork``: a c2pa ``Context`` does not survive it), what the fork server imports
before it forks a worker, and starting that server early. It imports nothing
but the standard library, so that a caller (the CLI) can start the server
before it imports the library itself: the server's imports then run beside the
caller's instead of after them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from typing import Any

_PRELOAD = (
    # The workers' entry point, and with it numpy, Pillow, c2pa and the library.
    "provenance.batch._pool",
    # What a worker's first item imported on first use (issue 20), about 50 ms of
    # CPU per worker: OpenCV (keypoints; loaded lazily by the library), the
    # plugins Image.open loads, and numpy.ma (np.median imports it on its first
    # call). None builds a c2pa Context; a missing one is skipped by the server.
    "cv2",
    "numpy.ma",
    *(f"PIL.{name}ImagePlugin" for name in ("Bmp", "Gif", "Jpeg", "Png", "Ppm", "WebP")),
)
"""What the fork server imports before it forks the first worker."""


def warm_up(workers: int) -> None:
    """Start the local pool's fork server now, so that its start-up overlaps the caller's.

    The fork server imports numpy, Pillow and c2pa before it can fork a worker
    (about half a second of CPU, issue 20). A caller that knows it will run a
    batch on ``workers`` processes calls this first, then imports what it needs,
    loads its keys and lists its inputs while the server boots; the batch's
    workers then fork from a server that is (nearly) ready. The CLI's ``sign``,
    ``verify``, ``scan`` and ``report`` do this before they import the library.
    Nothing happens for ``workers=1`` (no pool), on platforms without
    ``forkserver``, or when the server already runs; the server exits with this
    process. Starting it cannot fail the caller: a server that cannot start is
    retried, then reported, by the batch itself
    (:class:`~provenance.errors.WorkerPoolError`).

    Args:
        workers: The batch's ``workers`` (0: one per CPU).
    """
    if workers == 1 or workers < 0 or (workers == 0 and (os.cpu_count() or 1) == 1):
        return
    context = pool_context()
    if context.get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver  # here: only platforms with it import it

    with contextlib.suppress(Exception):  # the batch retries, and names the problem
        forkserver.ensure_running()


def pool_context() -> Any:  # a forkserver or spawn context (typeshed has no common type)
    """The multiprocessing context the local pool starts its workers with."""
    methods = multiprocessing.get_all_start_methods()
    # Never fork: a c2pa Context does not survive it (DESIGN.md decision 1).
    method = "forkserver" if "forkserver" in methods else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        # The fork server (started once per process, on the first pool)
        # imports the workers' module, and with it numpy, Pillow and c2pa, but
        # builds no Context: workers fork from it with everything
        # imported. Measured: the first row of a second pool after
        # 0.04 s instead of 0.4-0.6 s (each worker importing it all).
        context.set_forkserver_preload([*_main_to_preload(), *_PRELOAD])
    return context


def _main_to_preload() -> list[str]:
    """``["__main__"]`` when the main module defines something a worker may unpickle.

    A script's ``__main__`` is preloaded so that what it defines (a callback
    key's signer) unpickles in the workers. A main module that defines nothing
    of its own, such as the ``provenance`` console script (it only imports the
    CLI), is skipped: preloading it made the fork server, which the first
    worker waits for, import the CLI with typer and rich too (about a third
    more CPU than the batch's own imports; issue 20).
    """
    main = sys.modules.get("__main__")
    if main is None:
        return []
    own = any(getattr(value, "__module__", None) == "__main__" for value in vars(main).values())
    return ["__main__"] if own else []
