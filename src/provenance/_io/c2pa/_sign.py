"""Signing: a manifest embedded by c2pa's Builder, or placed by us and signed data-hashed.

One c2pa ``Context`` (with its ``Signer``) per process and per key, with the
settings of DESIGN.md decision 1 (no thumbnail, no verify-after-sign, no network,
small backing store). Where the caller says where the manifest store goes (a
``slot`` from :func:`provenance._core.containers.c2pa_slot`), the store is signed
data-hashed (:mod:`provenance._io.c2pa._datahash`): c2pa signs a claim over the
hash of the asset computed here and returns the store, placed here; c2pa neither
reads nor writes the asset. Otherwise c2pa's ``Builder.sign`` reads the asset
through stream callbacks and writes the signed copy.
"""

from __future__ import annotations

import io
import json
import os
import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import c2pa

from provenance._core.containers import Staged
from provenance._io.c2pa import _datahash, _parents
from provenance._io.c2pa._common import _BUILT, _OFFLINE_VERIFY, _clean, _translate
from provenance._io.keys import SigningAlgorithm, SigningKey
from provenance.errors import SignatureError

# DESIGN.md decision 1, measured: the default thumbnail is 95-98% of sign time;
# verify-after-sign doubles it; a verifier of strangers' files must not call out.
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
        sha256_hex: The SHA-256 of ``data`` if the caller knows it (a parent's
            ``SignResult``): c2pa then reads the parent once per process and
            reuses it for every rendition of it (:mod:`._parents`).
    """

    data: bytes
    mime: str
    title: str
    sha256_hex: str | None = None


@dataclass(frozen=True, slots=True)
class _Signing:
    """What signing with one key takes in one process.

    Attributes:
        pid: The process that built it (a Context inherited through fork() is unusable).
        context: The c2pa Context, with a Signer of the key inside.
        signer: A second Signer of the key, kept out of the Context for data-hashed
            signing; None when the c2pa library does not sign data-hashed.
        reserve: The signature room ``signer`` asks for (its ``reserve_size``).
        lengths: Per kind of store (media type, parent), the length of the last
            definition signed data-hashed and of its store: the store length the
            next one expects (:func:`_expected_length`).
    """

    pid: int
    context: Any
    signer: Any | None
    reserve: int
    lengths: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)


# Over 60 lines only by its docstring (the contract of both signing paths); the body is 39.
def sign_c2pa(
    data: bytes | Staged,
    mime: str,
    manifest: Mapping[str, Any],
    key: SigningKey,
    *,
    ingredient: C2paIngredient | None = None,
    slot: int | None = None,
) -> tuple[bytes, str | None]:
    """Embed a signed C2PA manifest in ``data``.

    With a ``slot`` (JPEG and PNG), the store is signed data-hashed and inserted at
    ``slot``: c2pa signs a claim over the SHA-256 of ``data`` computed here and
    never sees the asset (:mod:`provenance._io.c2pa._datahash`). Without one, for
    the other formats, or when the c2pa library lacks data-hashed signing, c2pa's
    ``Builder.sign`` reads ``data`` and writes the signed copy. Readers see the
    same manifest either way.

    Returns:
        The signed bytes and the label of the manifest written.

    Args:
        data: The asset, with its XMP already in place (the hard binding covers it);
            or staged (``containers.stage``), its slot with it: signed data-hashed,
            the file is copied once, with the store in it.
        mime: Its media type.
        manifest: The manifest definition (c2pa JSON form).
        key: The signing key; its c2pa Context is built once per process.
        ingredient: A ``parentOf`` ingredient; the manifest's actions may refer
            to it by the label ``"parent"``.
        slot: Where the manifest store goes in ``data``
            (:func:`provenance._core.containers.c2pa_slot`, the offset c2pa would
            choose); ``data`` must hold no store. Not with a staged ``data``.

    Raises:
        SignatureError: c2pa refused the manifest or signing failed.
        UnsupportedFormat: c2pa cannot embed into this format.
    """
    signing = _signing_context(key)
    if isinstance(data, Staged):
        staged, slot = data, data.slot
    else:
        staged = Staged((data,), slot)
    placed = slot is not None and signing.signer is not None and mime in _datahash.FORMATS
    try:
        # The definition dumped once, compact: c2pa-python wants a dict (a copy of the
        # mapping) and dumps it with spaces; about 20 us less per call, same manifest.
        definition = _definition(_datahash.placed_definition(manifest) if placed else manifest)
        builder = c2pa.Builder(definition, context=signing.context)
        try:
            if ingredient is not None:
                _parents.add_parent(builder, ingredient)
            if placed and slot is not None:
                kind, size = _store_kind(mime, ingredient), _utf8_length(definition)
                store = _datahash.sign_placed(
                    builder,
                    signing.signer,
                    reserve=signing.reserve,
                    mime=mime,
                    data=staged.pieces,
                    slot=slot,
                    length=_expected_length(signing, kind, size),
                )
                _remember_length(signing, kind, size, len(store))
                signed = staged.join(store)
            else:
                out = io.BytesIO()
                store = builder.sign(mime, io.BytesIO(staged.join()), out)
                signed = out.getvalue()
        finally:
            builder.close()
    except c2pa.C2paError as exc:
        raise _translate(exc, signing=True) from exc
    # The label is the JUMBF description label of the manifest box; c2pa-python
    # returns the manifest bytes but not the label.
    found = _LABEL.search(store or b"")
    return signed, found.group(0).decode("ascii") if found else None


def _store_kind(mime: str, ingredient: C2paIngredient | None) -> tuple[str, str] | None:
    """What a store's length is remembered by: its media type and its parent, if known."""
    if ingredient is None:
        return (mime, "")
    return None if ingredient.sha256_hex is None else (mime, ingredient.sha256_hex)


def _expected_length(signing: _Signing, kind: tuple[str, str] | None, text: int) -> int | None:
    """The store length a definition of ``text`` UTF-8 bytes is expected to sign to, if any.

    The last store of the same kind, grown or shrunk by the difference in the
    definitions' lengths: exact when only text changed length (a title, a prompt;
    CBOR and the definition both hold it as UTF-8) and no CBOR length header grew
    (at 24 and 256 bytes) or escape came or went; checked either way
    (:func:`._datahash.sign_placed` signs again with the length it got). None for
    a first store: c2pa's placeholder is asked.
    """
    last = None if kind is None else signing.lengths.get(kind)
    return None if last is None else last[1] + text - last[0]


def _remember_length(
    signing: _Signing, kind: tuple[str, str] | None, text: int, store: int
) -> None:
    if kind is None:
        return
    if len(signing.lengths) >= _KINDS_KEPT and kind not in signing.lengths:
        signing.lengths.clear()  # one kind per parent: a long batch meets many
    signing.lengths[kind] = (text, store)


_KINDS_KEPT = 64


def _utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _definition(manifest: Mapping[str, Any]) -> str:
    """The manifest definition as the compact JSON text c2pa's Builder parses.

    Not ASCII-escaped: a character takes as many bytes here as in the store's CBOR.
    """
    try:
        return json.dumps(manifest, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise SignatureError(f"c2pa manifest definition is not JSON: {exc}") from exc


# One c2pa Context (with its Signer) per key and process, kept here rather than on the
# key: a key is a value the io layer hands out, not a cache. Weak, so a key that is let
# go takes its Context with it; per process, because a Context inherited through fork()
# is unusable.
_SIGNING: weakref.WeakKeyDictionary[SigningKey, _Signing] = weakref.WeakKeyDictionary()


def _signing_context(key: SigningKey) -> _Signing:
    pid = os.getpid()
    held = _SIGNING.get(key)
    if held is None or held.pid != pid:
        _BUILT.add(pid)
        context = c2pa.Context(
            settings=c2pa.Settings.from_dict(_SIGN_SETTINGS), signer=_make_signer(key)
        )
        signer, reserve = None, 0
        if _datahash.available():
            signer = _make_signer(key)
            try:
                reserve = int(signer.reserve_size())
            except c2pa.C2paError as exc:
                raise SignatureError(f"c2pa refused the signing key: {_clean(exc)}") from exc
        held = _SIGNING[key] = _Signing(pid, context, signer, reserve)
    return held


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
