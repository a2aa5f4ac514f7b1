"""Data-hashed signing (issue 20): tampering, errors from c2pa's C side, the fallback.

JPEG and PNG are signed data-hashed (``_io/c2pa/_datahash.py``); the other formats,
and every format when the c2pa library lacks the functions, through c2pa's
``Builder.sign``. ``tests/interop/test_data_hashed.py`` checks the files with
independent readers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provenance import SigningKey, Status, TrustPolicy, sign_bytes, verify
from provenance._core import containers
from provenance._io.c2pa import _datahash, _sign, read_c2pa, sign_c2pa
from provenance._io.keys import DevKeyPaths
from provenance.errors import SignatureError
from tests.conftest import SAMPLE_MEDIA, sample_record

FILES = ["forest-path.jpg", "packshot-fire-truck-white.png"]


def _fresh_key(dev_keys: DevKeyPaths) -> SigningKey:
    """A key object of its own: its c2pa Context (and signing path) is chosen afresh."""
    return SigningKey.from_pem_files(dev_keys.chain, dev_keys.private_key)


@pytest.mark.parametrize("name", FILES)
def test_one_byte_changed_outside_the_store_is_tampered(
    name: str, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    data = (SAMPLE_MEDIA / name).read_bytes()
    signed, _ = sign_bytes(data, record=sample_record(name), key=signing_key, name=name)
    info = containers.inspect(signed)
    (store,) = info.blocks_of(containers.BlockKind.C2PA)[:1]
    start, end = info.essence_ranges[-1]
    assert start > store.end
    path = tmp_path / f"signed-{name}"
    path.write_bytes(signed)
    assert verify(path, trust=trust).status is Status.TRUSTED
    changed = bytearray(signed)
    changed[(start + end) // 2] ^= 0x01
    path.write_bytes(bytes(changed))
    verdict = verify(path, trust=trust)
    assert verdict.status is Status.TAMPERED
    assert "assertion.dataHash.mismatch" in verdict.failure_codes


def test_without_the_c_functions_jpeg_signs_through_builder_sign(
    dev_keys: DevKeyPaths, trust: TrustPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unused(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("the data-hashed path ran without the C functions")

    monkeypatch.setattr(_datahash, "available", lambda: False)
    monkeypatch.setattr(_datahash, "sign_placed", unused)
    key = _fresh_key(dev_keys)
    name = "forest-path.jpg"
    signed, result = sign_bytes(
        (SAMPLE_MEDIA / name).read_bytes(), record=sample_record(name), key=key, name=name
    )
    assert _sign._signing_context(key).signer is None
    report = read_c2pa(signed, "image/jpeg", trust)
    assert report is not None
    assert report.state == "Trusted" and report.failure_codes == ()
    assert report.active_manifest == result.active_manifest


def test_data_hashed_and_builder_sign_place_the_store_alike(
    signing_key: SigningKey, trust: TrustPolicy
) -> None:
    # sign_c2pa without a slot is the Builder.sign path: the same file around the store.
    data = (SAMPLE_MEDIA / "forest-path.jpg").read_bytes()
    info = containers.inspect(data)
    slot = containers.c2pa_slot(data, info)
    assert slot is not None
    manifest = _manifest()
    placed, _ = sign_c2pa(data, "image/jpeg", manifest, signing_key, slot=slot)
    written, _ = sign_c2pa(data, "image/jpeg", manifest, signing_key)
    for signed in (placed, written):
        (store, *rest) = containers.inspect(signed).blocks_of(containers.BlockKind.C2PA)
        end = (rest[-1] if rest else store).end
        assert store.offset == slot
        assert signed[:slot] + signed[end:] == data
        report = read_c2pa(signed, "image/jpeg", trust)
        assert report is not None and report.state == "Trusted"


def test_a_malformed_action_reads_the_same_either_way(
    signing_key: SigningKey, trust: TrustPolicy
) -> None:
    # c2pa-rs 0.91 signs c2pa.created without a digitalSourceType and its Reader
    # flags it: both paths hand c2pa the same definition, readers see the same.
    data = (SAMPLE_MEDIA / "forest-path.jpg").read_bytes()
    slot = containers.c2pa_slot(data, containers.inspect(data))
    assert slot is not None
    manifest = _manifest()
    manifest["assertions"] = [
        {"label": "c2pa.actions", "data": {"actions": [{"action": "c2pa.created"}]}}
    ]
    for where in (slot, None):
        signed, _ = sign_c2pa(data, "image/jpeg", manifest, signing_key, slot=where)
        report = read_c2pa(signed, "image/jpeg", trust)
        assert report is not None
        assert report.state == "Invalid"
        assert report.failure_codes == ("assertion.action.malformed",)


def test_a_store_larger_than_its_placeholder_is_refused(
    dev_keys: DevKeyPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Too little room kept for the signature: c2pa's C side reports it, or the store
    # comes back longer than the placeholder; either way a SignatureError, no crash.
    key = _fresh_key(dev_keys)
    held = _sign._signing_context(key)
    assert held.signer is not None and held.reserve > 64
    monkeypatch.setitem(_sign._SIGNING, key, _sign._Signing(held.pid, held.context, held.signer, 8))
    data = (SAMPLE_MEDIA / "forest-path.jpg").read_bytes()
    slot = containers.c2pa_slot(data, containers.inspect(data))
    assert slot is not None
    with pytest.raises(SignatureError, match="data-hashed"):
        sign_c2pa(data, "image/jpeg", _manifest(), key, slot=slot)


def _manifest() -> dict[str, Any]:
    return {
        "claim_generator_info": [{"name": "provenance-tests", "version": "1"}],
        "title": "forest-path.jpg",
        "format": "image/jpeg",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": "http://cv.iptc.org/newscodes/"
                            "digitalsourcetype/trainedAlgorithmicMedia",
                        }
                    ]
                },
            }
        ],
    }


def _steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The C calls of data-hashed signing, in order ("placeholder", "signing")."""
    steps: list[str] = []
    take = _datahash._take

    def counted(lib: Any, step: str, function: Any, *args: Any) -> bytes:
        steps.append(step)
        return take(lib, step, function, *args)

    monkeypatch.setattr(_datahash, "_take", counted)
    return steps


def test_a_store_of_a_known_length_is_signed_without_a_placeholder(
    dev_keys: DevKeyPaths, trust: TrustPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The placeholder's only use is the store's length: a definition of the length
    # signed before skips it, and the file reads as the first one does.
    key = _fresh_key(dev_keys)
    steps = _steps(monkeypatch)
    data = (SAMPLE_MEDIA / "forest-path.jpg").read_bytes()
    slot = containers.c2pa_slot(data, containers.inspect(data))
    assert slot is not None
    for expected in (["placeholder", "signing"], ["signing"]):
        steps.clear()
        signed, label = sign_c2pa(data, "image/jpeg", _manifest(), key, slot=slot)
        assert steps == expected
        report = read_c2pa(signed, "image/jpeg", trust)
        assert report is not None
        assert (report.state, report.failure_codes) == ("Trusted", ())
        assert report.active_manifest == label


@pytest.mark.parametrize(
    ("title", "signings"),
    [
        ("forest-path-2.jpg", 1),
        ("forêt-chemin-été.jpg", 1),
        ("forest-path-renamed-longer.jpg", 2),
        ('forest "path".jpg', 2),
    ],
)
def test_a_store_of_another_length_than_expected_is_signed_again(
    title: str,
    signings: int,
    dev_keys: DevKeyPaths,
    trust: TrustPolicy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The expected length is the last store's, moved by the definition's length in
    # UTF-8: right for text of another length, wrong when CBOR's length header grows
    # (a title over 23 bytes) or for escaped text (two JSON characters, one in the store).
    # Wrong, the store is signed again with its real length; never placed with a wrong
    # exclusion, and a byte changed outside it is still found.
    key = _fresh_key(dev_keys)
    data = (SAMPLE_MEDIA / "forest-path.jpg").read_bytes()
    slot = containers.c2pa_slot(data, containers.inspect(data))
    assert slot is not None
    sign_c2pa(data, "image/jpeg", _manifest(), key, slot=slot)
    steps = _steps(monkeypatch)
    manifest = {**_manifest(), "title": title}
    signed, _ = sign_c2pa(data, "image/jpeg", manifest, key, slot=slot)
    assert steps == ["signing"] * signings
    report = read_c2pa(signed, "image/jpeg", trust)
    assert report is not None
    assert (report.state, report.failure_codes) == ("Trusted", ())
    (store,) = containers.inspect(signed).blocks_of(containers.BlockKind.C2PA)
    assert (store.offset, signed[: store.offset] + signed[store.end :]) == (slot, data)
    changed = bytearray(signed)
    changed[-100] ^= 0x01
    report = read_c2pa(bytes(changed), "image/jpeg", trust)
    assert report is not None
    assert "assertion.dataHash.mismatch" in report.failure_codes


def test_sign_placed_corrects_a_wrong_length(signing_key: SigningKey, trust: TrustPolicy) -> None:
    import c2pa

    from provenance._io.c2pa._sign import _definition, _signing_context

    data = (SAMPLE_MEDIA / "packshot-fire-truck-white.png").read_bytes()
    slot = containers.c2pa_slot(data, containers.inspect(data))
    assert slot is not None
    held = _signing_context(signing_key)
    definition = _definition(_datahash.placed_definition({**_manifest(), "format": "image/png"}))
    for length in (1, 70_000):
        with c2pa.Builder(definition, context=held.context) as builder:
            store = _datahash.sign_placed(
                builder,
                held.signer,
                reserve=held.reserve,
                mime="image/png",
                data=(data,),
                slot=slot,
                length=length,
            )
        assert len(store) != length
        report = read_c2pa(data[:slot] + store + data[slot:], "image/png", trust)
        assert report is not None
        assert (report.state, report.failure_codes) == ("Trusted", ())
