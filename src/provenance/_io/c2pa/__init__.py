"""The only package that imports c2pa: signing and reading C2PA manifests.

It turns c2pa's objects, strings and exceptions into our types at the border:

* :func:`sign_c2pa` embeds a manifest with the settings of DESIGN.md decision 1
  (no thumbnail, no verify-after-sign, no network, small backing store), reusing
  one c2pa ``Context`` (with its ``Signer``) per process and per key; where the
  caller gives the store's place (JPEG, PNG) it signs data-hashed and places the
  store itself (``_sign``, ``_datahash``: c2pa-rs's C API through ctypes);
* :func:`read_c2pa` returns a :class:`C2paReport` (validation state, failure
  codes, the manifest store) or None when there is no manifest at all (``_read``).

A c2pa ``Context`` does not survive ``fork()``: caches are keyed by process id so
a forked worker builds its own (``_common``).
"""

from __future__ import annotations

from provenance._io.c2pa._common import c2pa_version, context_built
from provenance._io.c2pa._read import C2paReport, read_c2pa
from provenance._io.c2pa._sign import C2paIngredient, sign_c2pa

__all__ = [
    "C2paIngredient",
    "C2paReport",
    "c2pa_version",
    "context_built",
    "read_c2pa",
    "sign_c2pa",
]
