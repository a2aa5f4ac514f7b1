"""What the reading and the signing side of the c2pa adapter share.

The process ids that built a c2pa ``Context`` (one does not survive ``fork()``),
the offline verification settings, and the translation of c2pa's exceptions
into our error tree.
"""

from __future__ import annotations

import ctypes
import importlib
import io
import os
from collections.abc import Iterable
from typing import Any

import c2pa

from provenance.errors import ProvenanceError, SignatureError, UnsupportedFormat

# A verifier of strangers' files must not call out (DESIGN.md decision 1).
_OFFLINE_VERIFY = {
    "remote_manifest_fetch": False,
    "ocsp_fetch": False,
}

_BUILT: set[int] = set()
"""The process ids that built a c2pa Context (one does not survive ``fork()``)."""


def context_built() -> bool:
    """Whether this process has built a c2pa Context (one a parent built does not count).

    The batch pool forks workers from the calling process only while this is
    False (DESIGN.md decision 1, ``provenance.batch._standby``).
    """
    return os.getpid() in _BUILT


def c2pa_version() -> str:
    """The c2pa-rs version behind c2pa-python."""
    return str(c2pa.sdk_version())


def _kind(exc: BaseException) -> str:
    """The c2pa error kind: the typed subclass, else the native message's prefix.

    c2pa-python maps only known prefixes to subclasses; c2pa-rs 0.91 reports a
    remote-only manifest as "Remote: must fetch remote manifests from url ...",
    which arrives as a plain ``C2paError``.
    """
    name = type(exc).__name__
    if name.startswith("_C2pa"):
        return name.removeprefix("_C2pa")
    prefix = str(exc).split(":", 1)[0].strip()
    if prefix.isidentifier():
        return "RemoteManifest" if prefix == "Remote" else prefix
    return name


def _url(exc: BaseException) -> str | None:
    text = str(exc)
    for token in text.split():
        if token.startswith(("http://", "https://")):
            return token.rstrip(".,;")
    return None


def _clean(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _translate(exc: Exception, *, signing: bool) -> ProvenanceError:
    kind = _kind(exc)
    if kind == "NotSupported":
        return UnsupportedFormat(f"c2pa cannot embed into this format: {_clean(exc)}")
    what = "signing" if signing else "reading"
    return SignatureError(f"c2pa {what} failed ({kind}): {_clean(exc)}")


def native_library(symbols: Iterable[str]) -> ctypes.CDLL | None:
    """c2pa-python's C library, opened again for prototypes of our own; None if unusable.

    The same loaded library (dlopen counts references), so the callers' prototypes
    are set on their own function objects, never on c2pa-python's. None when
    c2pa-python's layout differs (before 0.38) or a symbol is missing: the callers
    then go through c2pa-python itself.
    """
    try:
        native = importlib.import_module("c2pa.c2pa")
    except ImportError:  # pragma: no cover - c2pa-python's layout before 0.38
        return None
    loaded = getattr(native, "_lib", None)
    path = getattr(loaded, "_name", None)
    if not isinstance(path, str) or not all(hasattr(loaded, name) for name in symbols):
        return None
    return ctypes.CDLL(path)


class ViewStream(io.RawIOBase):
    """A read-only, seekable stream over a memoryview, read without copying it first.

    c2pa-python's ``Reader`` reads an asset held as a view through it, and the C
    reader's callbacks (:mod:`._direct`) read through it too.
    """

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view
        self._size = len(view)
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # c2pa calls this about 50 times per JPEG (reads doubling from 32 bytes):
        # kept to one slice copy.
        start = self._position
        stop = min(start + len(buffer), self._size)
        if stop <= start:
            return 0
        buffer[: stop - start] = self._view[start:stop]
        self._position = stop
        return stop - start

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}
        position = base[whence] + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._position = position
        return position

    def tell(self) -> int:
        return self._position
