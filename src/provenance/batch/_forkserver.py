"""The local pool's start method and its fork server: what a batch can start first.

What this module owns (DESIGN.md decisions 1 and 9, issue 20): how worker
processes start and starting them early (:func:`warm_up`). Where the calling
process may still fork, its workers are forked from it before the batch, once
it has imported what they need (:mod:`._standby`); else, and for workers
started later (a replacement for a killed one), with ``forkserver`` where the
platform has it, else ``spawn``, never ``fork`` from a process that may hold a
c2pa ``Context`` (it does not survive it). This module also says what the fork
server imports before it forks a worker. It imports nothing but the standard
library, so that a caller (the CLI) can call :func:`warm_up` before it imports
the library itself.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import sys
from typing import Any

_SHARED = (
    # What the calling process uses as much as its workers do: numpy and Pillow
    # (the inventory's perceptual hashes and keypoints), cryptography (keys and
    # anchors), the containers (listing a folder), the inventory and the plan.
    "provenance.inventory",
    "provenance._io.keys",
    "provenance._io.reading",
    "provenance._core.containers",
    "provenance.batch._plan",
    "provenance.batch._standby",
)
"""What the calling process imports before it forks its workers (issue 20).

Not the signing and verifying side (c2pa, XMP, EXIF, OpenCV): only the workers
need it, and each imports it itself once forked (:func:`_worker_side`), in
parallel, while the calling process loads keys, opens the inventory and lists
the files. ``tests/integration/test_batch_forked_workers.py`` checks that c2pa
is not imported in the calling process when it forks."""

_SHARED_SIGNING = (
    # numpy and Pillow (about 0.1 s of CPU), and the perceptual hashes and
    # keypoints they serve: a signing batch's workers compute them, and its
    # calling process imports them too, to record them (the inventory imports
    # them lazily since issue 20, so _SHARED no longer brings them). Imported
    # once before the fork instead of three times after it (the caller and two
    # workers): each worker's own imports 130 -> 31 ms of CPU, the batch's
    # spec sent 0.1 s sooner (benchmarks/batch_timeline.py, issue 20).
    "numpy",
    "PIL.Image",
    "provenance._core.phash",
    "provenance._core.keypoints",
)
"""What the calling process of a signing batch also imports before it forks its workers."""

_WORKER_SIDE = ("provenance.batch._work",)
"""What a forked worker imports once forked, before its spec comes: the per-file
work with c2pa and the verify verb (none builds a c2pa Context). A signing
batch's workers also import the sign verb (:func:`_worker_side`); a verifying
batch's never do (it brought numpy and Pillow, which verifying signed files
never needs: about 0.1 s of CPU per worker, issue 20).

Not what only some items need (:data:`_FIRST_USE`): each worker would import it
for itself, and verifying signed files never needs it (issue 20)."""


def _worker_side(*, signing: bool) -> tuple[str, ...]:
    """What a worker forked for a signing (or any other) batch imports before its spec."""
    return (*_WORKER_SIDE, "provenance.sign") if signing else _WORKER_SIDE


_FIRST_USE = (
    # What a worker's first item imported on first use (issue 20), about 40 ms of
    # CPU per process: OpenCV (keypoints; loaded lazily by the library), the
    # plugins Image.open loads, and numpy.ma (np.median imports it on its first
    # call). Signing with an inventory and checking unsigned files need them;
    # verifying signed files does not. A missing one is skipped.
    "cv2",
    "numpy.ma",
    *(f"PIL.{name}ImagePlugin" for name in ("Bmp", "Gif", "Jpeg", "Png", "Ppm", "WebP")),
)

_PRELOAD = (
    "provenance.batch._in_fork_server",
    "provenance.batch._pool",
    *_worker_side(signing=True),
    *_FIRST_USE,
)
"""What the fork server imports before it forks the first worker: once, for every
worker it forks (so what only some items need is worth it there). First, the
fork server's own quiet exit for a start its caller abandoned
(:mod:`._in_fork_server`)."""


_FORK_FROM_CALLER = True
"""``warm_up`` forks the workers from the calling process when that is safe (issue 20).

Off only to measure what it saves (``benchmarks/batch_cold.py``): the fork server then."""


def warm_up(workers: int, *, signing: bool = True) -> None:
    """Make the workers of a coming batch of ``workers`` processes now, off its critical path.

    Where the calling process may still fork (Linux, only its main thread
    running, no c2pa ``Context`` built in it and no file or socket open: see
    DESIGN.md decision 1), this imports what this process and its workers
    share (the inventory, keys, containers; for a signing batch also numpy,
    Pillow and the perceptual hashes) and forks the workers from it at once:
    each imports the rest of its side (c2pa and the verbs) itself while this
    process loads keys, opens the inventory and lists the files, then waits for
    the batch; no second interpreter imports it all again (about 0.45 s of
    CPU, issue 20). Elsewhere it starts the pool's fork server, whose imports
    then run beside the caller's. The CLI's ``sign``, ``verify``, ``scan`` and
    ``report`` call this before they import the library, load keys or anchors
    and open the inventory; a script that knows a batch is coming does the
    same, first thing in its ``main``. Nothing happens for ``workers=1`` (no
    pool). Forked workers wait for the next local batch (one that needs fewer
    leaves the rest waiting); they and the server exit with this process. It
    cannot fail the caller: a worker that cannot start is retried, then
    reported, by the batch itself (:class:`~provenance.errors.WorkerPoolError`).

    Args:
        workers: The batch's ``workers`` (0: one per CPU).
        signing: The batch signs (``sign_many``). False for one that only
            verifies (``verify_many``, a scan, a report): forked workers then
            import neither the sign verb nor, before an item needs them, numpy
            and Pillow (about 0.1 s of CPU per worker). Either way every batch
            runs on the workers; only what they import early differs.
    """
    count = workers or os.cpu_count() or 1
    if count <= 1 or workers < 0:
        return
    if _FORK_FROM_CALLER and _fork_from_caller(count, signing=signing):
        return
    context = pool_context()
    if context.get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver  # here: only platforms with it import it

    with contextlib.suppress(Exception):  # the batch retries, and names the problem
        forkserver.ensure_running()


def _fork_from_caller(count: int, *, signing: bool) -> bool:
    """Import what this process and its workers share, fork ``count`` workers; False if unsafe."""
    if not sys.platform.startswith("linux"):
        return False
    preload(_SHARED)
    from provenance.batch import _standby  # imported with the library, just above

    missing = count - _standby.waiting()
    if missing <= 0:
        return True  # called twice: the workers forked the first time still wait
    if _standby.fork_refusal() is not None:
        return False
    if signing:
        preload(_SHARED_SIGNING)
    try:
        _standby.fork_workers(missing, side=_worker_side(signing=signing))
    except Exception:  # e.g. out of processes: the fork server starts the rest
        return False
    return True


def preload(names: tuple[str, ...]) -> None:
    """Import ``names``; a missing one is skipped (as the fork server skips it)."""
    for name in names:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


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
