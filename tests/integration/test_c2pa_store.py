"""c2pa is handed the manifest store found in a JPEG's head: the same report, one pass less.

``containers.jpeg.c2pa_store`` joins a store's APP11 packets when they are laid out
as c2pa writes them (else None), and ``read_c2pa(..., store=...)`` hands it to c2pa.
verify takes such a report only when it has no error and no failure but the
signer's trust; these tests hold both to c2pa's own reading of the same files.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import provenance
from provenance._core import containers
from provenance._io.c2pa import C2paReport, read_c2pa, sign_c2pa
from provenance._io.keys import SigningKey, TrustPolicy
from tests.conftest import sample_record, signed_once

_APP11 = b"\xff\xeb"
# The only failure verify lets a report with a handed-over store keep.
_TRUST_ONLY = {"signingCredential.untrusted"}


def _signed(media: Callable[[str], Path], key: SigningKey, name: str) -> bytes:
    data, _ = provenance.sign_bytes(media(name).read_bytes(), record=sample_record(name), key=key)
    return data


def _store(data: bytes) -> bytes | None:
    return containers.jpeg.c2pa_store(data, containers.inspect(data, essence=False))


def _app11_segments(data: bytes) -> list[tuple[int, int]]:
    """(offset, end) of every APP11 segment of the head."""
    info = containers.inspect(data, essence=False)
    return [(b.offset, b.end) for b in info.blocks if b.name == "APP11"]


def _segment(payload: bytes) -> bytes:
    return _APP11 + struct.pack(">H", len(payload) + 2) + payload


def _resplit(data: bytes, size: int) -> bytes:
    """``data`` with its one-packet store rewritten as packets of ``size`` bytes, as c2pa would."""
    ((start, end),) = _app11_segments(data)
    payload = data[start + 4 : end]
    header, box = payload[:8], payload[8:]  # CI, En, Z; then the superbox
    packets = [box[i : i + size] for i in range(0, len(box), size)]
    segments = [
        _segment(header[:4] + struct.pack(">I", n + 1) + (box[:8] if n else b"") + packet)
        for n, packet in enumerate(packets)
    ]
    return data[:start] + b"".join(segments) + data[end:]


def _same_report(data: bytes, policy: TrustPolicy) -> C2paReport | None:
    """c2pa's report of ``data``, asserted equal whether it finds the store or is handed it."""
    own = read_c2pa(data, "image/jpeg", policy)
    store = _store(data)
    assert store is not None
    assert read_c2pa(data, "image/jpeg", policy, store=store) == own
    return own


@pytest.mark.parametrize("name", ["kite-blue-sky.jpg", "rowing-boats-sunset.jpg"])
def test_the_store_handed_to_c2pa_gives_its_own_report(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy, name: str
) -> None:
    signed = _signed(media, signing_key, name)
    report = _same_report(signed, trust)
    assert report is not None and report.state == "Trusted" and not report.failure_codes
    untrusted = _same_report(signed, TrustPolicy.no_anchors())
    assert untrusted is not None and set(untrusted.failure_codes) == _TRUST_ONLY


def test_a_rendition_store_with_its_parent_ingredient_gives_c2pa_own_report(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy
) -> None:
    name = "rowing-boats-sunset.jpg"
    original = media(name).read_bytes()
    signed, parent = provenance.sign_bytes(original, record=sample_record(name), key=signing_key)
    with Image.open(io.BytesIO(signed)) as image:
        small = image.convert("RGB").resize((320, 200))
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=85)
    rendition, _ = provenance.sign_rendition(
        buffer.getvalue(),
        parent,
        key=signing_key,
        mark=provenance.RenditionMark.C2PA,
        parent_data=signed,
    )
    report = _same_report(rendition, trust)
    assert report is not None and report.state == "Trusted" and not report.failure_codes
    assert len(report.store["manifests"]) == 2  # the rendition's and its parent's


def test_a_store_c2pa_wrote_in_several_packets_is_joined(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy
) -> None:
    # A store over c2pa-rs's 64,000 bytes per APP11 segment: a large assertion.
    manifest = {
        "claim_generator_info": [{"name": "provenance tests"}],
        "title": "large store",
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
            },
            {"label": "org.example.filler", "data": {"text": "x" * 150_000}},
        ],
    }
    original = media("kite-blue-sky.jpg").read_bytes()
    signed, _ = sign_c2pa(original, "image/jpeg", manifest, signing_key)
    assert len(_app11_segments(signed)) >= 3
    report = _same_report(signed, trust)
    assert report is not None and report.state == "Trusted" and not report.failure_codes
    assert report.assertion("org.example.filler") == {"text": "x" * 150_000}


def test_packets_rewritten_smaller_join_to_the_same_store(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy
) -> None:
    signed = _signed(media, signing_key, "forest-path.jpg")
    resplit = _resplit(signed, 1000)
    assert len(_app11_segments(resplit)) > 2
    assert _store(resplit) == _store(signed)
    # The bytes moved, so the hard binding breaks: the same failure either way.
    report = _same_report(resplit, trust)
    assert report is not None and "assertion.dataHash.mismatch" in report.failure_codes


def test_other_layouts_are_left_to_c2pa(
    media: Callable[[str], Path], signing_key: SigningKey
) -> None:
    plain = media("kite-blue-sky.jpg").read_bytes()
    assert _store(plain) is None  # no store at all
    signed = _signed(media, signing_key, "kite-blue-sky.jpg")
    resplit = _resplit(signed, 1000)
    segments = _app11_segments(resplit)
    (s1, e1), (s2, e2) = segments[0], segments[1]
    # Packets out of order.
    swapped = resplit[:s1] + resplit[s2:e2] + resplit[s1:e1] + resplit[e2:]
    assert _store(swapped) is None
    # A continuation packet of another box instance.
    other = bytearray(resplit)
    other[s2 + 6 : s2 + 8] = b"\x7f\x7f"
    assert _store(bytes(other)) is None
    # Another APP11 segment before the scan (not a C2PA store).
    extra = _segment(b"JP\x00\x01\x00\x00\x00\x01" + b"\x00" * 24)
    with_extra = signed[: segments[0][0]] + extra + signed[segments[0][0] :]
    assert _store(with_extra) is None
    # A first packet whose description box is not "c2pa" at c2pa-rs's offset.
    large = bytearray(signed)
    large[segments[0][0] + 4 + 24] ^= 0xFF
    assert _store(bytes(large)) is None


def _clean(report: C2paReport | None) -> bool:
    """A report verify keeps when c2pa was handed the store."""
    return (
        report is not None and report.error is None and _TRUST_ONLY.issuperset(report.failure_codes)
    )


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_handed_over_report_verify_keeps_is_c2pa_own(
    media: Callable[[str], Path],
    signing_key: SigningKey,
    trust: TrustPolicy,
    data: st.DataObject,
) -> None:
    signed = signed_once(media, signing_key, "kite-blue-sky.jpg")
    ((start, end),) = _app11_segments(signed)
    damaged = bytearray(signed)
    for _ in range(data.draw(st.integers(0, 3))):
        # Mostly inside the store (the bytes its hard binding leaves out); sometimes anywhere.
        low, high = data.draw(st.sampled_from([(start, end - 1), (0, len(damaged) - 1)]))
        damaged[data.draw(st.integers(low, high))] = data.draw(st.integers(0, 255))
    try:
        store = _store(bytes(damaged))
    except provenance.ProvenanceError:
        return  # the head no longer parses: verify never hands a store over
    if store is None:
        return
    handed = read_c2pa(bytes(damaged), "image/jpeg", trust, store=store)
    own = read_c2pa(bytes(damaged), "image/jpeg", trust)
    # verify keeps a clean report (else it reads the file again): it must be c2pa's own.
    assert _clean(handed) == _clean(own)
    if _clean(handed):
        assert handed == own
