"""verify reads each file once: the essence comes from the statement only when c2pa trusts it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import provenance
from provenance import Status
from provenance._core import containers
from provenance._core.hashing import essence_hash, sha256_hex
from provenance._io.keys import SigningKey, TrustPolicy
from tests.conftest import sample_record


@pytest.mark.parametrize("name", ["kite-blue-sky.jpg", "packshot-fire-truck-white.png"])
def test_trusted_file_reports_the_essence_it_hashes_to(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy, name: str
) -> None:
    signed, _ = provenance.sign_bytes(
        media(name).read_bytes(), record=sample_record(name), key=signing_key
    )
    verdict = provenance.verify_bytes(signed, trust=trust)
    assert verdict.status is Status.TRUSTED
    assert verdict.essence_sha256_hex == essence_hash(signed)
    assert verdict.sha256_hex == sha256_hex(signed)


def test_changed_pixels_under_a_trusted_signer_are_hashed_not_taken_from_the_statement(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy
) -> None:
    signed, result = provenance.sign_bytes(
        media("forest-path.jpg").read_bytes(),
        record=sample_record("forest-path.jpg"),
        key=signing_key,
    )
    ranges = containers.inspect(signed).essence_ranges
    start, end = ranges[-1]
    middle = (start + end) // 2
    changed = bytearray(signed)
    changed[middle] = 0x00 if changed[middle] != 0x00 else 0x01
    verdict = provenance.verify_bytes(bytes(changed), trust=trust)
    assert verdict.status is Status.TAMPERED
    assert verdict.essence_sha256_hex == essence_hash(bytes(changed))
    assert verdict.essence_sha256_hex != result.essence_sha256_hex


def test_untrusted_file_is_hashed(media: Callable[[str], Path], signing_key: SigningKey) -> None:
    signed, _ = provenance.sign_bytes(
        media("kite-blue-sky.jpg").read_bytes(),
        record=sample_record("kite-blue-sky.jpg"),
        key=signing_key,
    )
    verdict = provenance.verify_bytes(signed)  # no anchors: valid_untrusted, hashed
    assert verdict.status is Status.VALID_UNTRUSTED
    assert verdict.essence_sha256_hex == essence_hash(signed)


def test_inspect_without_essence_stops_at_the_scan(media: Callable[[str], Path]) -> None:
    data = media("rowing-boats-sunset.jpg").read_bytes()
    whole = containers.inspect(data)
    head = containers.inspect(data, essence=False)
    assert head.essence_ranges == ()
    assert (head.width, head.height, head.xmp, head.exif) == (
        whole.width,
        whole.height,
        whole.xmp,
        whole.exif,
    )
    image_data = whole.essence_ranges[0][0]
    assert head.blocks == tuple(b for b in whole.blocks if b.offset < image_data)
    # A truncated file is still refused by the whole parse, not by the head.
    truncated = data[: len(data) // 2]
    assert containers.inspect(truncated, essence=False).width == whole.width
    with pytest.raises(provenance.ContainerError, match="truncated"):
        containers.inspect(truncated)
