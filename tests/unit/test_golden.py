"""Golden values for what users' inventories store (issue 18).

An inventory matches copies by values computed at signing: the essence hash, the
asset id derived from it, the perceptual reference rows and the confirmation
descriptor. A change to any of them silently breaks matching against every
inventory already written, so each is pinned here for every sample. Regenerate
only on purpose (a new descriptor version, a documented migration)::

    .venv/bin/python -m tests.unit.test_golden --regenerate

The perceptual values depend on the decoder: the file records the Pillow and
numpy versions that produced them (STYLE.md: golden hashes with their versions).
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import PIL
import pytest
from hypothesis import given
from hypothesis import strategies as st

from provenance import fingerprint
from provenance._core.hashing import essence_hash
from provenance.sign import asset_id_for

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_media"
GOLDEN = ROOT / "tests" / "data" / "golden" / "inventory_values.json"
# Asset ids are uuid5 in this namespace: never change it (every inventory holds them).
_ASSET_NAMESPACE = uuid.UUID("6f1c2c4e-5d0a-4a57-9a39-5b1d8a4f2e10")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def _samples() -> list[Path]:
    return sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _values(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    essence = essence_hash(data)
    fp = fingerprint(data)
    ref = fp.reference
    return {
        "essence_sha256": essence,
        "asset_id": asset_id_for(essence),
        "phash": f"{fp.phash:016x}",
        "query": [f"{int(w):016x}" for w in fp.query],
        "scheme": ref.scheme,
        "reference_variants": list(ref.variants),
        "reference_rows": [[f"{int(w):016x}" for w in row] for row in ref.words],
        "descriptor_bytes": len(ref.descriptor),
        "descriptor_head": ref.descriptor[:16].hex(),
        "descriptor_sha256": hashlib.sha256(ref.descriptor).hexdigest(),
    }


def _load() -> dict[str, Any]:
    return dict(json.loads(GOLDEN.read_text(encoding="utf-8")))


def test_golden_file_covers_every_sample() -> None:
    golden = _load()
    assert sorted(golden["samples"]) == [p.name for p in _samples()]


@pytest.mark.parametrize("path", _samples(), ids=lambda p: p.name)
def test_essence_and_asset_id_are_stable(path: Path) -> None:
    """Pure SHA-256 over the coded data: exact whatever the decoder."""
    expected = _load()["samples"][path.name]
    got = _values(path)
    assert got["essence_sha256"] == expected["essence_sha256"]
    assert got["asset_id"] == expected["asset_id"]


@given(st.text(max_size=80) | st.text("0123456789abcdef", min_size=64, max_size=64))
def test_asset_ids_are_uuid5_of_the_essence_in_the_pinned_namespace(essence: str) -> None:
    assert asset_id_for(essence) == str(uuid.uuid5(_ASSET_NAMESPACE, essence))


@pytest.mark.parametrize("path", _samples(), ids=lambda p: p.name)
def test_perceptual_rows_and_descriptor_are_stable(path: Path) -> None:
    golden = _load()
    expected = golden["samples"][path.name]
    got = _values(path)
    where = (
        f"pinned with Pillow {golden['pillow']} / numpy {golden['numpy']}, "
        f"running Pillow {PIL.__version__} / numpy {np.__version__}"
    )
    assert got["scheme"] == expected["scheme"], where
    assert got["reference_variants"] == expected["reference_variants"], where
    assert got["phash"] == expected["phash"], where
    assert got["query"] == expected["query"], where
    assert got["reference_rows"] == expected["reference_rows"], where
    assert got["descriptor_bytes"] == expected["descriptor_bytes"], where
    assert got["descriptor_head"] == expected["descriptor_head"], where
    assert got["descriptor_sha256"] == expected["descriptor_sha256"], where


def _regenerate() -> None:
    payload = {
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "samples": {p.name: _values(p) for p in _samples()},
    }
    GOLDEN.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__" and "--regenerate" in sys.argv:
    _regenerate()
