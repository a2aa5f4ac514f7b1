"""What signing stores does not depend on how the end of the coded data was found.

The end of a JPEG's entropy-coded data is found with numpy past its first 64 KB
in a process that has imported numpy (every signing process); the regex walk is
the definition. The essence hash, the input's SHA-256 and the asset id a signing
stores, and the signed statement, are the same either way; the signed file
verifies as trusted with that essence.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from PIL import Image

import provenance
from provenance._core.containers.jpeg import _segments
from provenance._io.keys import SigningKey, TrustPolicy
from tests.conftest import sample_record

_NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)


def _four_mp(path: Path) -> bytes:
    with Image.open(path) as opened:
        big = opened.convert("RGB").resize((2560, 1600), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    big.save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.mark.parametrize("name", ["rowing-boats-sunset.jpg", "forest-path.jpg"])
@pytest.mark.parametrize("large", [False, True])
def test_signing_stores_what_the_regex_walk_gives(
    media: Callable[[str], Path],
    signing_key: SigningKey,
    trust: TrustPolicy,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    large: bool,
) -> None:
    path = media(name)
    data = _four_mp(path) if large else path.read_bytes()
    assert len(data) > _segments._REGEX_BYTES + _segments._VECTOR_BYTES or not large
    record = sample_record(name)
    results = []
    for regex_only in (False, True):
        if regex_only:
            monkeypatch.setattr(_segments, "_REGEX_BYTES", 1 << 62)
        signed, result = provenance.sign_bytes(data, record=record, key=signing_key, now=_NOW)
        verdict = provenance.verify_bytes(signed, trust=trust)
        assert verdict.status is provenance.Status.TRUSTED
        assert verdict.essence_sha256_hex == result.essence_sha256_hex
        results.append(
            (
                result.essence_sha256_hex,
                result.input_sha256_hex,
                result.asset_id,
                result.bytes_added,
                result.record,
            )
        )
    assert results[0] == results[1]
