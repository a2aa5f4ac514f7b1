"""A store handed over is read through c2pa-rs's C API: c2pa-python's own answer, less Python.

``read_c2pa(..., store=...)`` makes the C calls c2pa-python's ``Reader`` would make
(``provenance._io.c2pa._direct``); anything unusual is read again through
c2pa-python. These tests hold the JSON, the report and the verdict to
c2pa-python's, and check the fallback and concurrent use.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import c2pa
import pytest

import provenance
from provenance._core import containers
from provenance._io.c2pa import _direct, _read, read_c2pa
from provenance._io.keys import SigningKey, TrustPolicy
from tests.conftest import signed_once

_MIME = "image/jpeg"


def _store(data: bytes) -> bytes:
    store = containers.jpeg.c2pa_store(data, containers.inspect(data, essence=False))
    assert store is not None
    return store


def _python_json(data: bytes, store: bytes, policy: TrustPolicy) -> str:
    """What c2pa-python's Reader says of ``data`` with ``store`` handed over."""
    context = _read._reading_context(policy)
    with c2pa.Reader(_MIME, io.BytesIO(data), manifest_data=store, context=context) as reader:
        return str(reader.json())


def _without_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_direct, "store_json", lambda *args: None)


@pytest.mark.parametrize("name", ["kite-blue-sky.jpg", "rowing-boats-sunset.jpg"])
@pytest.mark.parametrize("anchored", [True, False])
def test_the_c_api_gives_c2pa_python_json(
    media: Callable[[str], Path],
    signing_key: SigningKey,
    trust: TrustPolicy,
    name: str,
    anchored: bool,
) -> None:
    policy = trust if anchored else TrustPolicy.no_anchors()
    signed = signed_once(media, signing_key, name)
    store = _store(signed)
    context = _read._reading_context(policy)
    expected = _python_json(signed, store, policy)
    assert _direct.store_json(context, signed, _MIME, store) == expected
    # A view of a reused buffer (verify's case), longer than the file: read in place.
    buffer = bytearray(signed) + bytearray(b"\xa5" * 4096)
    with memoryview(buffer) as whole, whole[: len(signed)] as view:
        assert _direct.store_json(context, view.toreadonly(), _MIME, store) == expected


def test_a_handed_over_store_makes_no_c2pa_python_reader(
    media: Callable[[str], Path],
    signing_key: SigningKey,
    trust: TrustPolicy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signed = signed_once(media, signing_key, "forest-path.jpg")
    store = _store(signed)
    expected = read_c2pa(signed, _MIME, trust)  # c2pa-python finds the store itself

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("c2pa-python's Reader was used")

    monkeypatch.setattr(c2pa, "Reader", refuse)
    report = read_c2pa(memoryview(signed), _MIME, trust, store=store)
    assert report == expected
    assert report is not None and report.state == "Trusted" and not report.failure_codes


def test_a_store_c2pa_refuses_is_read_again_through_c2pa_python(
    media: Callable[[str], Path],
    signing_key: SigningKey,
    trust: TrustPolicy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signed = signed_once(media, signing_key, "kite-blue-sky.jpg")
    store = _store(signed)
    broken = store[:40] + bytes(len(store) - 40)  # the boxes after the first header zeroed
    context = _read._reading_context(trust)
    assert _direct.store_json(context, signed, _MIME, broken) is None
    # c2pa's message was read from its error slot, not left for c2pa-python's next call.
    native_error = getattr(c2pa.c2pa, "_read_native_error", None)
    if native_error is not None:
        assert native_error() is None
    direct_first = read_c2pa(signed, _MIME, trust, store=broken)
    _without_direct(monkeypatch)
    python_only = read_c2pa(signed, _MIME, trust, store=broken)
    assert direct_first == python_only
    assert direct_first is not None and direct_first.error is not None


def test_verdicts_are_those_of_c2pa_python_reading(
    media: Callable[[str], Path],
    signing_key: SigningKey,
    trust: TrustPolicy,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    names = ["kite-blue-sky.jpg", "rowing-boats-sunset.jpg", "fallen-maple-leaf.jpg"]
    paths = []
    for name in names:
        path = tmp_path / f"signed-{name}"
        path.write_bytes(signed_once(media, signing_key, name))
        paths.append(path)
    direct = [provenance.verify(p, trust=trust) for p in paths]
    _without_direct(monkeypatch)
    python_only = [provenance.verify(p, trust=trust) for p in paths]
    assert direct == python_only
    assert {v.status for v in direct} == {provenance.Status.TRUSTED}


def test_threads_read_their_own_files(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy
) -> None:
    files = [
        signed_once(media, signing_key, name)
        for name in ("kite-blue-sky.jpg", "rowing-boats-sunset.jpg", "forest-path.jpg")
    ]
    stores = [_store(data) for data in files]
    expected = [read_c2pa(data, _MIME, trust) for data in files]
    found: list[list[Any]] = [[] for _ in range(6)]

    def work(slot: int) -> None:
        for round_ in range(8):
            i = (slot + round_) % len(files)
            found[slot].append((i, read_c2pa(files[i], _MIME, trust, store=stores[i])))

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(len(found))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(results) == 8 for results in found)
    for results in found:
        for i, report in results:
            assert report == expected[i]
