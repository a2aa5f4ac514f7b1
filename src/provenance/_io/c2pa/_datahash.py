"""Data-hashed signing through c2pa-rs's C API, which c2pa-python 0.38 does not wrap.

c2pa-python's ``Builder.sign`` hands c2pa the whole asset through Python stream
callbacks: c2pa reads it, writes a copy with a placeholder store through them,
hashes that copy and patches the signed store in (about half of c2pa's CPU time
for a 1 MP JPEG; docs/performance.md). c2pa-rs's data-hashed flow needs none of
it: the caller asks for a placeholder store of the final size, places it, hashes
the asset less the store (the ``c2pa.hash.data`` assertion: one exclusion, the
store's bytes), and c2pa signs the claim for that hash and returns the store,
composed for the format (JPEG APP11 segments, a PNG ``caBX`` chunk) and exactly as
long as the placeholder. A store inserted at offset ``slot`` of ``data`` and
excluded from the hash leaves ``data`` itself to hash: one SHA-256 of ``data``.

The placeholder's only use is its length, and c2pa-rs makes the signed store as
long whatever the exclusion says: its placeholder puts a ``c2pa.hash.data``
assertion with room for ten exclusions into the definition
(``Builder::data_hashed_placeholder``), and signing pads the real one (its ``pad``
field) to that assertion's size (``Store::prep_embeddable_store``). So the
definition carries that assertion from the start (:func:`placed_definition`), and
a caller that knows the length (a store signed before from a definition of the
same size) skips the placeholder: when the store comes back another length, it is
signed again with that length, never placed with a wrong exclusion.

The C functions, as ``c2pa_c_ffi/src/c_api.rs`` of c2pa-rs 0.91 declares them (the
library c2pa-python 0.38.1 loads)::

    int64_t c2pa_builder_data_hashed_placeholder(C2paBuilder *builder,
        uintptr_t reserved_size, const char *format, const unsigned char **out);
    int64_t c2pa_builder_sign_data_hashed_embeddable(C2paBuilder *builder,
        C2paSigner *signer, const char *data_hash, const char *format,
        C2paStream *asset, const unsigned char **out);
    int c2pa_free(const void *ptr);

Both return the length of the bytes they allocate in ``*out`` (each freed here with
``c2pa_free``), or -1 with the reason in c2pa's error slot. c2pa-python keeps the
loaded library (``c2pa.c2pa._lib``) and its objects' native pointers (``_handle``)
private: :func:`available` checks them and the symbols once, and the caller signs
through ``Builder.sign`` without them.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from provenance._io.c2pa._common import native_library
from provenance.errors import SignatureError

__all__ = ["FORMATS", "available", "placed_definition", "sign_placed"]

FORMATS = frozenset({"image/jpeg", "image/png"})
"""The media types whose store :func:`sign_placed` composes and the caller places."""

_SYMBOLS = (
    "c2pa_builder_data_hashed_placeholder",
    "c2pa_builder_sign_data_hashed_embeddable",
    "c2pa_free",
    "c2pa_error",
)

_Bytes = ctypes.POINTER(ctypes.c_ubyte)

# What c2pa-rs 0.91's Builder::data_hashed_placeholder adds to a definition without a
# hash binding: room for ten exclusions, no hash yet (signing pads the real one to it).
_PLACEHOLDER_BINDING = {
    "label": "c2pa.hash.data",
    "data": {
        "exclusions": [{"start": 0, "length": 2}] * 10,
        "name": "jumbf manifest",
        "alg": "sha256",
        "hash": [],
        "pad": [],
    },
}


@functools.cache
def _library() -> ctypes.CDLL | None:
    """c2pa-python's C library with our prototypes; None when a symbol or the library is missing."""
    lib = native_library(_SYMBOLS)
    if lib is None:
        return None
    out = ctypes.POINTER(_Bytes)
    lib.c2pa_builder_data_hashed_placeholder.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_char_p,
        out,
    ]
    lib.c2pa_builder_data_hashed_placeholder.restype = ctypes.c_int64
    lib.c2pa_builder_sign_data_hashed_embeddable.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_void_p,
        out,
    ]
    lib.c2pa_builder_sign_data_hashed_embeddable.restype = ctypes.c_int64
    lib.c2pa_free.argtypes = [ctypes.c_void_p]
    lib.c2pa_free.restype = ctypes.c_int
    lib.c2pa_error.argtypes = []
    lib.c2pa_error.restype = ctypes.c_void_p
    return lib


def available() -> bool:
    """Whether the loaded c2pa library signs data-hashed (checked once per process)."""
    return _library() is not None


def placed_definition(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """``manifest`` as the definition of a ``Builder`` for :func:`sign_placed`.

    With the placeholder hash binding c2pa's own placeholder call would add, and a
    fresh instance id as that call (and ``Builder.sign``) would set.
    """
    assertions = [*manifest.get("assertions", ()), _PLACEHOLDER_BINDING]
    return {**manifest, "assertions": assertions, "instance_id": f"xmp:iid:{uuid.uuid4()}"}


def sign_placed(
    builder: Any,
    signer: Any,
    *,
    reserve: int,
    mime: str,
    data: Sequence[bytes | memoryview],
    slot: int,
    length: int | None = None,
) -> bytes:
    """The signed manifest store of ``builder`` to insert at offset ``slot`` of the file ``data``.

    Args:
        builder: A c2pa ``Builder`` made from :func:`placed_definition`, with its
            ingredients.
        signer: A c2pa ``Signer`` not handed to a Context (it signs the claim).
        reserve: ``signer.reserve_size()``: the room the placeholder keeps for the signature.
        mime: One of :data:`FORMATS`.
        data: The asset, without a manifest store, in pieces (joined, the file).
        slot: Where the store goes in ``data`` (``containers.c2pa_slot``).
        length: The store's length if the caller expects one (the length of a store
            signed before for a definition of the same size): no placeholder is
            asked for; a store of another length is signed again with its length.

    Returns:
        The store composed for ``mime``; the signed file is the file with ``store``
        inserted at ``slot``.

    Raises:
        SignatureError: c2pa refused the manifest or the signing failed.
    """
    lib = _library()
    if lib is None or mime not in FORMATS or not 0 < slot <= sum(map(len, data)):
        raise SignatureError(f"c2pa cannot sign {mime} data-hashed at offset {slot}")
    form = mime.encode("ascii")
    handle = _pointer(builder, "Builder")
    guessed = length is not None and length > 0
    if length is None or length <= 0:
        # 1. A placeholder of the final size: its length is the exclusion.
        placeholder = lib.c2pa_builder_data_hashed_placeholder
        length = len(_take(lib, "placeholder", placeholder, handle, reserve, form))
    # 2. The hash of the file less the store: ``data`` itself. A JSON array of bytes, since
    #    c2pa-rs reads the field with serde_bytes (a string would be taken as its UTF-8).
    hasher = hashlib.sha256()
    for piece in data:
        hasher.update(piece)
    digest = list(hasher.digest())
    # 3. The claim signed for that hash: the store, padded to the placeholder's length.
    sign = functools.partial(_sign_claim, lib, handle, _pointer(signer, "Signer"), form, slot)
    store = sign(length, digest)
    if guessed and len(store) != length:
        length = len(store)  # the expected length was not this definition's
        store = sign(length, digest)
    if len(store) != length:
        raise SignatureError(
            f"c2pa data-hashed signing returned a {len(store)}-byte manifest store "
            f"for a {length}-byte placeholder"
        )
    return store


def _sign_claim(
    lib: ctypes.CDLL, builder: Any, signer: Any, form: bytes, slot: int, length: int, digest: Any
) -> bytes:
    """The store c2pa signs for ``digest``: the file's hash less ``length`` bytes at ``slot``."""
    binding = {
        "exclusions": [{"start": slot, "length": length}],
        "name": "jumbf manifest",
        "alg": "sha256",
        "hash": digest,
        "pad": [],
    }
    text = json.dumps(binding, separators=(",", ":")).encode("ascii")
    function = lib.c2pa_builder_sign_data_hashed_embeddable
    return _take(lib, "signing", function, builder, signer, text, form, None)


def _pointer(resource: Any, what: str) -> Any:
    """The native pointer of a c2pa-python object, passed as it is to a ``c_void_p``.

    (``ctypes.cast`` would leave a reference cycle behind on every call.)
    """
    handle = getattr(resource, "_handle", None)
    if not handle:
        raise SignatureError(f"c2pa's {what} is closed or has no native handle")
    return handle


def _take(lib: ctypes.CDLL, step: str, function: Any, *args: Any) -> bytes:
    """Call ``function(*args, &out)``; the bytes it allocated, copied and freed."""
    out = _Bytes()
    length = function(*args, ctypes.byref(out))
    try:
        if length < 0 or not out:
            raise SignatureError(f"c2pa data-hashed {step} failed: {_error(lib)}")
        return ctypes.string_at(out, length)
    finally:
        if out:
            lib.c2pa_free(out)


def _error(lib: ctypes.CDLL) -> str:
    """c2pa's last error message, read the way c2pa-python reads it when it can."""
    native = importlib.import_module("c2pa.c2pa")
    read = getattr(native, "_read_native_error", None)
    if callable(read):
        # It also marks the slot read, so c2pa-python never reports it again.
        message = read()
    else:  # pragma: no cover - c2pa-python without it
        pointer = lib.c2pa_error()
        message = None
        if pointer:
            try:
                message = ctypes.string_at(pointer).decode("utf-8", "replace")
            finally:
                lib.c2pa_free(pointer)
    return " ".join(str(message or "no reason given").split())[:300]
