"""The only module that imports c2pa: signing and reading C2PA manifests.

It turns c2pa's objects, strings and exceptions into our types at the border:

* :func:`sign_c2pa` embeds a manifest with the settings of DESIGN.md decision 1
  (no thumbnail, no verify-after-sign, no network, small backing store), reusing
  one c2pa ``Context`` (with its ``Signer``) per process and per key;
* :func:`read_c2pa` returns a :class:`C2paReport` (validation state, failure
  codes, the manifest store) or None when there is no manifest at all.

A c2pa ``Context`` does not survive ``fork()``: caches are keyed by process id so
a forked worker builds its own.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import c2pa

from provenance._io.keys import SigningAlgorithm, SigningKey, TrustPolicy
from provenance.errors import (
    CorruptFile,
    ProvenanceError,
    SignatureError,
    UnsupportedFormat,
)

__all__ = [
    "C2paIngredient",
    "C2paReport",
    "c2pa_version",
    "context_built",
    "read_c2pa",
    "sign_c2pa",
]

# DESIGN.md decision 1, measured: the default thumbnail is 95-98% of sign time;
# verify-after-sign doubles it; a verifier of strangers' files must not call out.
_OFFLINE_VERIFY = {
    "remote_manifest_fetch": False,
    "ocsp_fetch": False,
}
_SIGN_SETTINGS: dict[str, Any] = {
    "builder": {"thumbnail": {"enabled": False}},
    "verify": {"verify_after_sign": False, **_OFFLINE_VERIFY},
    # Assets up to 16 MB are signed in memory (peak about 3x the asset), larger ones
    # through a temporary file (about 1x). Measured (importpath, c2pa-rs 0.91, CPU
    # time, median of 30): 1.1-1.4 MB JPEGs sign in 3.7-3.8 ms in memory against
    # 4.9-5.0 ms through the file; below 1 MB both are the same. 4 MP alpha PNGs
    # (sign_bytes, median of 7, loaded 2-core machine): 6.5 MB 43.9 -> 34.6 ms CPU
    # and 245 -> 172 ms wall, 4.2 MB 29.1 -> 23.5 ms, for a peak 19.6 MB above the
    # baseline instead of 11.0 MB (5.9 MB PNG).
    "core": {"backing_store_memory_threshold_in_mb": 16},
}

_LABEL = re.compile(rb"urn:c2pa:[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}")

_ALG = {
    SigningAlgorithm.ES256: c2pa.C2paSigningAlg.ES256,
    SigningAlgorithm.ES384: c2pa.C2paSigningAlg.ES384,
    SigningAlgorithm.ED25519: c2pa.C2paSigningAlg.ED25519,
}


@dataclass(frozen=True, slots=True)
class C2paIngredient:
    """A parent asset to attach as a ``parentOf`` ingredient.

    Attributes:
        data: The parent's bytes (its manifest, if any, is carried along).
        mime: The parent's media type.
        title: A title for the ingredient (usually the file name).
    """

    data: bytes
    mime: str
    title: str


@dataclass(frozen=True, slots=True)
class C2paReport:
    """What c2pa said about an asset's manifest store.

    Attributes:
        state: c2pa's validation state ("Trusted", "Valid", "Invalid") or None
            when reading failed.
        failure_codes: Every failure code c2pa reported: the active manifest's,
            the ingredient deltas' and the flat ``validation_status`` list's.
        informational_codes: Informational codes of the active manifest.
        success_codes: Success codes of the active manifest.
        ingredient_codes: Failure codes recorded in the active manifest's
            ingredients (what was seen when each was ingested); reported, but
            they do not describe this asset.
        entries: Every active-manifest status as ``(kind, code, url)``, kind
            one of ``success``, ``informational``, ``failure``; identity
            assertions are told apart by the url.
        active_manifest: Label of the active manifest.
        store: The whole manifest store as c2pa's JSON (manifests by label).
        error: For a manifest c2pa could not read: the error kind and message.
        error_kind: The c2pa error class name without prefix, e.g. "Verify".
        remote_url: The URL of a remote manifest that was not fetched.
    """

    state: str | None
    failure_codes: tuple[str, ...] = ()
    informational_codes: tuple[str, ...] = ()
    success_codes: tuple[str, ...] = ()
    ingredient_codes: tuple[str, ...] = ()
    entries: tuple[tuple[str, str, str], ...] = ()
    active_manifest: str | None = None
    store: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None
    remote_url: str | None = None

    @property
    def manifest(self) -> Mapping[str, Any] | None:
        """The active manifest, if any."""
        manifests = self.store.get("manifests") or {}
        if self.active_manifest is None:
            return None
        found = manifests.get(self.active_manifest)
        return found if isinstance(found, Mapping) else None

    def assertion(self, label: str) -> Any:
        """The data of the active manifest's first assertion labelled ``label``."""
        manifest = self.manifest or {}
        for item in manifest.get("assertions") or []:
            if isinstance(item, Mapping) and item.get("label") == label:
                return item.get("data")
        return None

    def assertions(self, prefix: str) -> list[tuple[str, Any]]:
        """``(label, data)`` of the active manifest's assertions labelled ``prefix...``."""
        manifest = self.manifest or {}
        items = manifest.get("assertions")
        return [
            (str(item["label"]), item.get("data"))
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, Mapping) and str(item.get("label", "")).startswith(prefix)
        ]


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


def sign_c2pa(
    data: bytes,
    mime: str,
    manifest: Mapping[str, Any],
    key: SigningKey,
    *,
    ingredient: C2paIngredient | None = None,
) -> tuple[bytes, str | None]:
    """Embed a signed C2PA manifest in ``data``.

    Returns:
        The signed bytes and the label of the manifest written.

    Args:
        data: The asset, with its XMP already in place (the hard binding covers it).
        mime: Its media type.
        manifest: The manifest definition (c2pa JSON form).
        key: The signing key; its c2pa Context is built once per process.
        ingredient: A ``parentOf`` ingredient; the manifest's actions may refer
            to it by the label ``"parent"``.

    Raises:
        SignatureError: c2pa refused the manifest or signing failed.
        UnsupportedFormat: c2pa cannot embed into this format.
    """
    context = _signing_context(key)
    out = io.BytesIO()
    try:
        # The definition dumped once, compact: c2pa-python wants a dict (a copy of the
        # mapping) and dumps it with spaces; about 20 us less per call, same manifest.
        builder = c2pa.Builder(_definition(manifest), context=context)
        try:
            if ingredient is not None:
                builder.add_ingredient(
                    {"title": ingredient.title, "relationship": "parentOf", "label": "parent"},
                    ingredient.mime,
                    io.BytesIO(ingredient.data),
                )
            manifest_bytes = builder.sign(mime, io.BytesIO(data), out)
        finally:
            builder.close()
    except c2pa.C2paError as exc:
        raise _translate(exc, signing=True) from exc
    # The label is the JUMBF description label of the manifest box; c2pa-python
    # returns the manifest bytes but not the label.
    found = _LABEL.search(manifest_bytes or b"")
    return out.getvalue(), found.group(0).decode("ascii") if found else None


def _definition(manifest: Mapping[str, Any]) -> str:
    """The manifest definition as the compact JSON text c2pa's Builder parses."""
    try:
        return json.dumps(manifest, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise SignatureError(f"c2pa manifest definition is not JSON: {exc}") from exc


def read_c2pa(
    data: bytes | memoryview, mime: str, trust: TrustPolicy, *, store: bytes | None = None
) -> C2paReport | None:
    """Read and validate the manifest store of ``data`` offline.

    ``data`` may be a view of a buffer the caller reuses: c2pa reads it in place
    (as it reads ``bytes``, without a copy) and keeps nothing of it.

    ``store`` is the manifest store embedded in ``data`` as the caller found it
    (``containers.jpeg.c2pa_store``): c2pa then validates it against ``data``
    without extracting it again, one pass over the asset less (c2pa-rs reads a
    JPEG whole once to find the store, once to locate it for the hash, once to
    hash it). It must be the store c2pa would extract itself: c2pa still checks
    the hard binding over ``data``, but not that the store came from ``data``.

    Returns:
        None when the asset carries no C2PA data at all; otherwise a report,
        also for a manifest c2pa could not parse (``error`` set) and for a
        remote-only manifest (``remote_url`` set, never fetched).

    Raises:
        UnsupportedFormat: c2pa cannot read this format.
        CorruptFile: The asset itself cannot be read.
    """
    opened = _open_reader(data, mime, trust, store)
    if opened is None or isinstance(opened, C2paReport):
        return opened
    try:
        with opened:
            # A store handed over is embedded (c2pa calls it external: it did not find it).
            embedded = store is not None or opened.is_embedded()
            remote = None if embedded else opened.get_remote_url()
            found = json.loads(opened.json())
    except (c2pa.C2paError, ValueError) as exc:
        return C2paReport(state=None, error=str(exc), error_kind=_kind(exc))
    if remote is not None:
        return C2paReport(
            state=None, error="remote manifest", error_kind="RemoteManifest", remote_url=remote
        )
    return _report_of(found)


def _open_reader(
    data: bytes | memoryview, mime: str, trust: TrustPolicy, store: bytes | None
) -> Any:
    """c2pa's Reader over ``data``; None without C2PA data; a report c2pa could not read."""
    # io.BytesIO shares a bytes object's buffer but copies any other one.
    stream = io.BytesIO(data) if isinstance(data, bytes) else _ViewStream(data)
    try:
        return c2pa.Reader(mime, stream, manifest_data=store, context=_reading_context(trust))
    except c2pa.C2paError.ManifestNotFound:
        return None
    except c2pa.C2paError as exc:
        kind = _kind(exc)
        if kind == "RemoteManifest":
            return C2paReport(state=None, error=str(exc), error_kind=kind, remote_url=_url(exc))
        if kind == "NotSupported":
            raise UnsupportedFormat(f"c2pa cannot read {mime}: {exc}") from exc
        if kind in ("Io",):
            raise CorruptFile(f"c2pa cannot read the file: {exc}") from exc
        return C2paReport(state=None, error=str(exc), error_kind=kind)


class _ViewStream(io.RawIOBase):
    """A read-only, seekable stream over a memoryview, read without copying it first."""

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


def _report_of(store: dict[str, Any]) -> C2paReport:
    """The codes of a manifest store c2pa read and validated."""
    results = store.get("validation_results") or {}
    active = results.get("activeManifest") or {}
    # Every failure c2pa reports counts: the active manifest's, each ingredient
    # delta's, and the flat list (older stores have only that one).
    failure = list(_codes(active.get("failure")))
    deltas = results.get("ingredientDeltas")
    for delta in deltas if isinstance(deltas, list) else []:
        found = delta.get("validationDeltas") if isinstance(delta, Mapping) else None
        if isinstance(found, Mapping):
            failure.extend(_codes(found.get("failure")))
    informational = set(_codes(active.get("informational")))
    success = set(_codes(active.get("success")))
    for code in _codes(store.get("validation_status")):
        if code not in informational and code not in success:
            failure.append(code)
    entries = tuple(
        (kind, str(item.get("code")), str(item.get("url") or ""))
        for kind in ("success", "informational", "failure")
        for item in _items(active.get(kind))
        if isinstance(item, Mapping) and item.get("code")
    )
    return C2paReport(
        state=store.get("validation_state"),
        ingredient_codes=_ingredient_codes(store),
        failure_codes=tuple(dict.fromkeys(failure)),
        informational_codes=tuple(sorted(informational)),
        success_codes=tuple(sorted(success)),
        entries=entries,
        active_manifest=store.get("active_manifest"),
        store=store,
    )


def _ingredient_codes(store: Mapping[str, Any]) -> tuple[str, ...]:
    """The failures the active manifest recorded for its ingredients (at signing time)."""
    recorded: list[str] = []
    manifest = (store.get("manifests") or {}).get(store.get("active_manifest"))
    for ingredient in _items(manifest.get("ingredients")) if isinstance(manifest, Mapping) else []:
        if not isinstance(ingredient, Mapping):
            continue
        found = ingredient.get("validation_results")
        if isinstance(found, Mapping):
            own = found.get("activeManifest")
            if isinstance(own, Mapping):
                recorded.extend(_codes(own.get("failure")))
            for delta in _items(found.get("ingredientDeltas")):
                if isinstance(delta, Mapping) and isinstance(
                    delta.get("validationDeltas"), Mapping
                ):
                    recorded.extend(_codes(delta["validationDeltas"].get("failure")))
        else:  # 1.x ingredients: a flat list, failures by code
            recorded.extend(
                c for c in _codes(ingredient.get("validation_status")) if not _is_success(c)
            )
    return tuple(dict.fromkeys(recorded))


# One c2pa Context (with its Signer) per key and process, kept here rather than on the
# key: a key is a value the io layer hands out, not a cache. Weak, so a key that is let
# go takes its Context with it; per process, because a Context inherited through fork()
# is unusable.
_SIGNING: weakref.WeakKeyDictionary[SigningKey, tuple[int, Any]] = weakref.WeakKeyDictionary()


def _signing_context(key: SigningKey) -> Any:
    pid = os.getpid()
    held = _SIGNING.get(key)
    if held is None or held[0] != pid:
        _BUILT.add(pid)
        context = c2pa.Context(
            settings=c2pa.Settings.from_dict(_SIGN_SETTINGS), signer=_make_signer(key)
        )
        held = _SIGNING[key] = (pid, context)
    return held[1]


def _make_signer(key: SigningKey) -> Any:
    chain = key.embedded_chain_pem
    try:
        pem = key.private_key_pem
        if pem is not None:
            info = c2pa.C2paSignerInfo(
                alg=key.algorithm.value.encode(), sign_cert=chain, private_key=pem, ta_url=None
            )
            return c2pa.Signer.from_info(info)
        return c2pa.Signer.from_callback(_weak_sign(key), _ALG[key.algorithm], chain.decode(), None)
    except c2pa.C2paError as exc:
        raise SignatureError(f"c2pa refused the signing key: {_clean(exc)}") from exc


def _weak_sign(key: SigningKey) -> Callable[[bytes], bytes]:
    """``key.sign`` without a strong reference to ``key``, so ``_SIGNING`` can let it go."""
    ref = weakref.ref(key)

    def sign(data: bytes) -> bytes:
        held = ref()
        if held is None:  # pragma: no cover - c2pa calls back only while signing with it
            raise SignatureError("the signing key was released while signing")
        return held.sign(data)

    return sign


def _reading_context(trust: TrustPolicy) -> Any:
    return _reading_context_for(os.getpid(), trust.anchors_pem)


# Keyed by process (a Context inherited through fork() is unusable) and by the anchors,
# the only part of a TrustPolicy the Context depends on; a verifier uses one or two.
@functools.lru_cache(maxsize=8)
def _reading_context_for(pid: int, anchors_pem: bytes | None) -> Any:
    _BUILT.add(pid)  # part of the cache key, and counted
    settings: dict[str, Any] = {"verify": dict(_OFFLINE_VERIFY)}
    if anchors_pem is not None:
        settings["trust"] = {"trust_anchors": anchors_pem.decode("utf-8", "replace")}
    return c2pa.Context(settings=c2pa.Settings.from_dict(settings))


def _is_success(code: str) -> bool:
    # c2pa-rs log_kind(): success codes end so; a flat 1.x list mixes them in.
    return code.endswith((".validated", ".match", ".trusted", ".insideValidity", ".accessible"))


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _codes(items: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(i.get("code")) for i in items if isinstance(i, Mapping) and i.get("code")]


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
