"""Reading and validating C2PA manifest stores offline, into a :class:`C2paReport`."""

from __future__ import annotations

import functools
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import c2pa

from provenance._io.c2pa import _direct
from provenance._io.c2pa._common import _BUILT, _OFFLINE_VERIFY, ViewStream, _kind, _url
from provenance._io.keys import TrustPolicy
from provenance.errors import CorruptFile, UnsupportedFormat


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
    Such a read makes c2pa-python's C calls without its Python (:mod:`._direct`:
    0.35-0.45 ms less per 1-2 MB JPEG verified); one that fails there is made
    again through c2pa-python, which reports the failure.

    Returns:
        None when the asset carries no C2PA data at all; otherwise a report,
        also for a manifest c2pa could not parse (``error`` set) and for a
        remote-only manifest (``remote_url`` set, never fetched).

    Raises:
        UnsupportedFormat: c2pa cannot read this format.
        CorruptFile: The asset itself cannot be read.
    """
    if store is not None:
        # The C calls c2pa-python would make, without its Python around them (issue 20);
        # anything unusual is read again through c2pa-python, which reports it.
        found = _json_object(_direct.store_json(_reading_context(trust), data, mime, store))
        if found is not None:
            return _report_of(found)
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


def _json_object(text: str | None) -> dict[str, Any] | None:
    """``text`` as a JSON object, or None (no text, not JSON, not an object)."""
    try:
        found = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _open_reader(
    data: bytes | memoryview, mime: str, trust: TrustPolicy, store: bytes | None
) -> Any:
    """c2pa's Reader over ``data``; None without C2PA data; a report c2pa could not read."""
    # io.BytesIO shares a bytes object's buffer but copies any other one.
    stream = io.BytesIO(data) if isinstance(data, bytes) else ViewStream(data)
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
