"""sign -> inventory; stripped copies are recognised by their essence hash."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provenance import SigningKey, Status, TrustPolicy, sign, verify
from provenance._core.containers import BlockKind, strip
from provenance.inventory import Inventory
from tests.conftest import sample_record

Media = Callable[[str], Path]


@pytest.fixture
def inventory(tmp_path: Path) -> Iterator[Inventory]:
    with Inventory(tmp_path / "inventory.sqlite") as inv:
        yield inv


def test_stripped_copy_is_known(
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    name = "packshot-tractor-wheel-alpha.png"
    dst = tmp_path / name
    result = sign(
        media(name), dst, record=sample_record(name), key=signing_key, inventory=inventory
    )
    entry = inventory.get(result.asset_id)
    assert entry is not None and entry.record == result.record
    stripped = tmp_path / "cdn-copy.png"
    stripped.write_bytes(strip(dst.read_bytes(), frozenset(BlockKind)))
    assert verify(stripped, trust=trust).status is Status.NO_PROVENANCE
    verdict = verify(stripped, trust=trust, inventory=inventory)
    assert verdict.status is Status.KNOWN_STRIPPED
    assert verdict.asset_id == result.asset_id
    assert verdict.record == result.record
    assert [e.source.value for e in verdict.evidence] == ["inventory"]
    # Signed files stay as they were; the inventory only adds evidence.
    signed_verdict = verify(dst, trust=trust, inventory=inventory)
    assert signed_verdict.status is Status.TRUSTED
    assert "inventory" in [e.source.value for e in signed_verdict.evidence]


def test_unrelated_photo_is_not_known(
    media: Media, signing_key: SigningKey, inventory: Inventory, tmp_path: Path
) -> None:
    sign(
        media("forest-path.jpg"),
        tmp_path / "a.jpg",
        record=sample_record("forest-path.jpg"),
        key=signing_key,
        inventory=inventory,
    )
    verdict = verify(media("kite-blue-sky.jpg"), inventory=inventory)
    assert verdict.status is Status.NO_PROVENANCE


@pytest.mark.interop
@pytest.mark.skipif(shutil.which("exiftool") is None, reason="ExifTool is not installed")
def test_exiftool_strip_all_is_known_stripped(
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    dst = tmp_path / "signed.jpg"
    result = sign(
        media("rowing-boats-sunset.jpg"),
        dst,
        record=sample_record("rowing-boats-sunset.jpg"),
        key=signing_key,
        inventory=inventory,
    )
    subprocess.run(
        ["exiftool", "-q", "-all=", "-overwrite_original", str(dst)], check=True, timeout=60
    )
    verdict = verify(dst, trust=trust, inventory=inventory)
    assert verdict.status is Status.KNOWN_STRIPPED
    assert verdict.asset_id == result.asset_id
    assert verdict.record is not None and verdict.record.model == result.record.model
