"""The ``parentOf`` ingredient of a rendition, read by c2pa once per parent.

c2pa's ``Builder.add_ingredient`` reads the parent through stream callbacks: it
hashes the whole file and validates the parent's manifest store. An import signs
many renditions of one original, so the first rendition of a parent writes the
ingredient c2pa made into a single-ingredient archive
(``Builder.write_ingredient_archive``: the ingredient with its validation results
and the parent's manifest store, a few KB) and the next renditions add it from
there (``Builder.add_ingredient_from_archive``), without the parent's bytes.
Readers see the same ingredient either way.

Loading an archive costs c2pa about as much whatever the parent (0.84-0.94 ms,
c2pa-rs 0.91); reading the parent costs about 0.5 ms plus 1.1 ms per MB. Parents
under :data:`MIN_BYTES` are read as before: for them the archive saves nothing.

The archives are plain bytes, kept per process in a small LRU (:data:`_KEEP`
parents) keyed by the parent's SHA-256 as the caller knows it (the parent's
``SignResult``), its length, a digest of its first and last 4 KiB (so other bytes
passed for the same result are not given its ingredient), media type and title; an
ingredient without a known hash is read as before. Per process: a forked child
starts with none (bytes would survive ``fork()``, but a lock held by another thread
at the fork would not be released; docs/architecture.md decision 1's Context is not
kept here).
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import c2pa

if TYPE_CHECKING:
    from provenance._io.c2pa._sign import C2paIngredient

__all__ = ["MIN_BYTES", "add_parent", "forget_parents", "kept_parents"]

_KEEP = 8
"""Parents whose ingredient archive is kept: an import signs one original's
renditions together; a few more cover pipelines that interleave originals."""

MIN_BYTES = 512 * 1024
"""The smallest parent whose ingredient is kept. Measured (thread CPU, median of 21,
loaded 2-core machine): 0.28 MB JPEG read 0.88 ms against 0.87 from the archive,
0.53 MB 1.14 against 0.88, 1.3 MB 2.03 against 0.88, 5 MB PNG 5.1 against 0.94;
the first rendition pays 0.5 ms more to write the archive."""

_LABEL = "parent"
_END = 4096

_Key = tuple[str, str, str, str]

_ARCHIVES: OrderedDict[_Key, bytes] = OrderedDict()
_LOCK = threading.Lock()


def _after_fork() -> None:
    """A forked child starts with none kept and a lock of its own (never one held at fork)."""
    global _LOCK
    _LOCK = threading.Lock()
    _ARCHIVES.clear()


os.register_at_fork(after_in_child=_after_fork)


def add_parent(builder: Any, ingredient: C2paIngredient) -> None:
    """Add ``ingredient`` to ``builder`` as its ``parentOf`` ingredient labelled ``parent``.

    Raises:
        c2pa.C2paError: c2pa refused the ingredient (the caller translates it).
    """
    if ingredient.sha256_hex is None or len(ingredient.data) < MIN_BYTES:
        _read(builder, ingredient)
        return
    key = (ingredient.sha256_hex, _ends(ingredient.data), ingredient.mime, ingredient.title)
    with _LOCK:
        archive = _ARCHIVES.get(key)
        if archive is not None:
            _ARCHIVES.move_to_end(key)
    if archive is not None:
        builder.add_ingredient_from_archive(io.BytesIO(archive))
        return
    _read(builder, ingredient)
    out = io.BytesIO()
    try:
        builder.write_ingredient_archive(_LABEL, out)
    except c2pa.C2paError:
        return  # only a saving lost: the next rendition reads the parent again
    with _LOCK:
        _ARCHIVES[key] = out.getvalue()
        while len(_ARCHIVES) > _KEEP:
            _ARCHIVES.popitem(last=False)


def _ends(data: bytes) -> str:
    """The length and a digest of the first and last 4 KiB of a parent.

    Bytes that are not the parent the caller named (another file of the same
    length, passed with the same ``SignResult``) get a key of their own.
    """
    return f"{len(data)}:{hashlib.sha256(data[:_END] + data[-_END:]).hexdigest()}"


def kept_parents() -> int:
    """How many parents' ingredient archives this process keeps (at most :data:`_KEEP`)."""
    with _LOCK:
        return len(_ARCHIVES)


def forget_parents() -> None:
    """Drop every kept ingredient archive: the next rendition of each parent reads it again."""
    with _LOCK:
        _ARCHIVES.clear()


def _read(builder: Any, ingredient: C2paIngredient) -> None:
    """c2pa reads the parent itself: its bytes hashed, its manifest store validated."""
    builder.add_ingredient(
        {"title": ingredient.title, "relationship": "parentOf", "label": _LABEL},
        ingredient.mime,
        io.BytesIO(ingredient.data),
    )
