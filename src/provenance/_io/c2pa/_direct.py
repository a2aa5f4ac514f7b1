"""Reading a manifest store handed over with the file, through c2pa-rs's C API (issue 20).

``read_c2pa(..., store=...)`` (verify's usual path for a signed JPEG) ends up in four
C calls: a Reader from the Context, the Reader given the store and the asset as a
stream, its JSON, and the frees. c2pa-python wraps each in Python (a ``Stream`` with
four callbacks made per file, reservations, locks and error-slot bookkeeping per
call), and calls back into Python about twenty times per file for the asset's bytes:
measured in a loop of ``verify`` on 1-2 MB JPEGs, 0.35-0.45 ms of 4.3-5.0 ms per
file. Here the same C calls are made with ctypes (as :mod:`._datahash` does for
signing), with callbacks made once per process that copy straight from the
caller's view.

c2pa does the same work either way and returns the same JSON; only the Python
around it differs. Anything unusual (a symbol missing, a Context that is no longer
valid, any C call failing) gives None, and the caller reads through c2pa-python,
which reports c2pa's error its own way: a failure is never reported from here.

The C functions, as c2pa-python 0.38.1 declares them for the library it loads::

    C2paStream *c2pa_create_stream(StreamContext *context, ReadCallback,
        SeekCallback, WriteCallback, FlushCallback);
    void c2pa_release_stream(C2paStream *stream);
    C2paReader *c2pa_reader_from_context(C2paContext *context);
    C2paReader *c2pa_reader_with_manifest_data_and_stream(C2paReader *reader,
        const char *format, C2paStream *stream, const unsigned char *manifest_data,
        uintptr_t manifest_size);   // consumes ``reader``
    char *c2pa_reader_json(C2paReader *reader);
    int c2pa_free(const void *ptr);
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import itertools
from typing import Any

import c2pa

from provenance._io.c2pa._common import ViewStream, native_library

__all__ = ["available", "store_json"]

_SYMBOLS = (
    "c2pa_create_stream",
    "c2pa_release_stream",
    "c2pa_reader_from_context",
    "c2pa_reader_with_manifest_data_and_stream",
    "c2pa_reader_json",
    "c2pa_free",
)

_READ = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ssize_t)
_SEEK = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int)
_WRITE = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ssize_t)
_FLUSH = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_void_p)


# The asset of each stream in use, by the key c2pa passes back to the callbacks as
# their context pointer: one set of callbacks serves every thread (a server verifies
# uploads on several), each stream finding its own asset.
_SOURCES: dict[int, ViewStream] = {}
_KEYS = itertools.count(1)


def _read(key: int | None, buffer: int | None, length: int) -> int:
    source = _SOURCES.get(key or 0)
    if source is None or not buffer or length < 0:
        return -1
    if length == 0:
        return 0
    try:
        # One copy, from the caller's view into c2pa's buffer.
        target = (ctypes.c_char * length).from_address(buffer)
        with memoryview(target) as raw, raw.cast("B") as out:
            return source.readinto(out)
    except (TypeError, ValueError):  # a view released under c2pa: an I/O error to it
        return -1


def _seek(key: int | None, offset: int, whence: int) -> int:
    source = _SOURCES.get(key or 0)
    if source is None:
        return -1
    try:
        return source.seek(offset, whence)
    except (KeyError, ValueError):  # an unknown whence, or before the start
        return -1


def _write(key: int | None, buffer: int | None, length: int) -> int:
    return -1  # a reader never writes


def _flush(key: int | None) -> int:
    return 0


# Made once: c2pa keeps the function pointers only while a stream is in use.
_CALLBACKS = (_READ(_read), _SEEK(_seek), _WRITE(_write), _FLUSH(_flush))


@functools.cache
def _library() -> ctypes.CDLL | None:
    """c2pa-python's C library with our prototypes; None when a symbol or the library is missing."""
    lib = native_library(_SYMBOLS)
    if lib is None:
        return None
    pointer = ctypes.c_void_p
    lib.c2pa_create_stream.argtypes = [pointer, _READ, _SEEK, _WRITE, _FLUSH]
    lib.c2pa_create_stream.restype = pointer
    lib.c2pa_release_stream.argtypes = [pointer]
    lib.c2pa_release_stream.restype = None
    lib.c2pa_reader_from_context.argtypes = [pointer]
    lib.c2pa_reader_from_context.restype = pointer
    lib.c2pa_reader_with_manifest_data_and_stream.argtypes = [
        pointer,
        ctypes.c_char_p,
        pointer,
        ctypes.c_char_p,
        ctypes.c_size_t,
    ]
    lib.c2pa_reader_with_manifest_data_and_stream.restype = pointer
    lib.c2pa_reader_json.argtypes = [pointer]
    lib.c2pa_reader_json.restype = pointer
    lib.c2pa_free.argtypes = [pointer]
    lib.c2pa_free.restype = ctypes.c_int
    return lib


def available() -> bool:
    """Whether the loaded c2pa library has the reader's C functions (checked once per process)."""
    return _library() is not None


def store_json(context: Any, data: bytes | memoryview, mime: str, store: bytes) -> str | None:
    """c2pa's JSON report of ``data`` read with ``store`` as its store; None if a step fails.

    Args:
        context: The c2pa-python ``Context`` to read with (its settings and anchors).
        data: The asset; read in place, nothing of it kept.
        mime: Its media type.
        store: The manifest store embedded in ``data``, as c2pa-python's
            ``Reader(..., manifest_data=store)`` takes it.

    Returns:
        What ``Reader.json()`` returns for the same arguments, or None: the caller
        then reads through c2pa-python, which reports any error.
    """
    lib = _library()
    if lib is None:
        return None
    try:
        handle = context.execution_context  # raises for a Context no longer valid
    except (c2pa.C2paError, AttributeError):
        return None
    if not handle:
        return None
    key = next(_KEYS)
    _SOURCES[key] = ViewStream(data if isinstance(data, memoryview) else memoryview(data))
    stream = lib.c2pa_create_stream(key, *_CALLBACKS)
    text = None
    try:
        text = _json(lib, handle, stream, mime, store) if stream else None
    finally:
        if stream:
            lib.c2pa_release_stream(stream)
        del _SOURCES[key]
        if text is None:
            _clear_error()
    return text


def _json(lib: ctypes.CDLL, context: Any, stream: Any, mime: str, store: bytes) -> str | None:
    """The reader's JSON for ``stream`` and ``store``; None when a C call fails."""
    reader = lib.c2pa_reader_from_context(context)
    if not reader:
        return None
    # Consumes ``reader`` whatever the outcome: on failure c2pa has dropped it (a
    # handle it refuses before taking it, the only case it keeps one, cannot be a
    # reader it has just made in this process), so it is not freed then.
    reader = lib.c2pa_reader_with_manifest_data_and_stream(
        reader, mime.encode("ascii"), stream, store, len(store)
    )
    if not reader:
        return None
    try:
        text = lib.c2pa_reader_json(reader)
        if not text:
            return None
        try:
            return ctypes.string_at(text).decode("utf-8")
        finally:
            lib.c2pa_free(text)
    finally:
        lib.c2pa_free(reader)


def _clear_error() -> None:
    """Leave c2pa's thread-local error slot marked read, as c2pa-python does after its calls.

    A failed call here leaves c2pa's message in the slot; c2pa-python, which reads
    the file next, must not take it for an error of its own.
    """
    native = importlib.import_module("c2pa.c2pa")
    read = getattr(native, "_read_native_error", None)
    if callable(read):
        read()
