"""A verifier's cold read of every perceptual row, on two server connections at once.

Reading 220M rows (10M assets) is bound by the server's work per row (an index
walk, the heap, the packing of each page: ``inventory._packed``), one CPU of
the server per connection. The pages of a cold build are packs
(``inventory._packs``) and key ranges known before any is read (up to the
largest key), so two connections read every other page, each in its own
thread (the driver waits for the server without holding the GIL), while the
caller keys the pages already read. Pages
come out in key order, so a :class:`~provenance.FleetIndex` takes them as from
one reader.

It never writes, and each page is its own short read transaction, as on one
connection.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from provenance._io.index import RowChunk

# Pages a reader may have read ahead of the caller (each about 28 MB at 512K rows).
_AHEAD = 1
_Page = list[RowChunk] | BaseException
Read = Callable[[Any], list[RowChunk]]
"""Reads one page on a connection (``perceptual_range`` or ``read_pack``, bound)."""


def read_ranges(databases: list[Any], reads: list[Read]) -> Iterator[list[RowChunk]]:
    """The pages ``reads`` return (each in its own read transaction), in order.

    Reader ``i`` (a thread on ``databases[i]``) reads pages ``i``,
    ``i + len(databases)``, ...; each hands over at most ``_AHEAD`` unread pages.

    Raises:
        InventoryError: A page could not be read (the readers are stopped first).
    """
    stop = threading.Event()
    queues: list[queue.Queue[_Page]] = [queue.Queue(maxsize=_AHEAD) for _ in databases]
    threads = [
        threading.Thread(
            target=_reader,
            args=(db, reads[i :: len(databases)], queues[i], stop),
            name=f"provenance-pages-{i}",
            daemon=True,
        )
        for i, db in enumerate(databases)
    ]
    for thread in threads:
        thread.start()
    try:
        for i in range(len(reads)):
            page = queues[i % len(databases)].get()
            if isinstance(page, BaseException):
                raise page
            yield page
    finally:
        stop.set()
        for q in queues:  # unblock a reader waiting to hand over a page
            while not q.empty():
                q.get_nowait()
        for thread in threads:
            thread.join()


def _reader(db: Any, reads: list[Read], out: queue.Queue[_Page], stop: threading.Event) -> None:
    for read in reads:
        if stop.is_set():
            return
        page: _Page
        try:
            page = db.read(read)
        except BaseException as exc:  # handed to the caller, which raises it
            page = exc
        if not _put(out, page, stop) or isinstance(page, BaseException):
            return


def _put(out: queue.Queue[_Page], page: _Page, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            out.put(page, timeout=0.1)
        except queue.Full:
            continue
        return True
    return False


def key_ranges(after: int, last: int, step: int) -> list[tuple[int, int]]:
    """``(after, last]`` cut into ranges of ``step`` keys."""
    return [(lo, min(lo + step, last)) for lo in range(after, last, step)]


Opener = Callable[[], Any]
"""Opens one more read-only connection to the same server inventory."""
