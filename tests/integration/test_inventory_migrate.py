"""``migrate_inventory``: SQLite into a server, between servers, and back, losing nothing."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from provenance._core.keypoints import SCHEME as KEYPOINTS
from provenance._core.keypoints import reference_features
from provenance._io.keys import SigningKey
from provenance.errors import InventoryError
from provenance.inventory import Inventory, migrate_inventory
from tests.conftest import SAMPLE_MEDIA
from tests.integration.test_inventory import NOW, fake_result
from tests.integration.test_inventory_backends import _reference
from tests.servers import ThrowawayServer


def _filled(path: Path, key: SigningKey) -> None:
    features = reference_features(Image.open(SAMPLE_MEDIA / "forest-path.jpg"))
    with Inventory(path, checkpoint_key=key, checkpoint_every=4) as inv:
        a, b = fake_result(1), None
        b = fake_result(2, parent=a)
        c = fake_result(3, parent=b)
        for result in (a, c, b):  # c before its parent: linked later
            inv.record_signing(result, signer="CN=one", now=NOW)
        others = [fake_result(i, salt="p") for i in range(6)]
        inv.record_many(
            others,
            signer="CN=two",
            now=NOW,
            perceptual=[_reference(i) for i in range(6)],
            keypoints=[features] * 6,
        )
        inv.export_json(path.with_suffix(".json"), now=NOW)


def _everything(location: str) -> tuple[Any, ...]:
    with Inventory(location, read_only=True, create=False) as inv:
        return (
            [a.to_dict() for a in inv.assets()],
            [e.to_dict() for e in inv.audit.entries()],
            [c.to_dict() for c in inv.audit.checkpoints()],
            len(inv.perceptual_index("test.v1")),
            len(inv.keypoint_index(KEYPOINTS)),
            # Not the schema version: a server's has its packed snapshots too (5, SQLite's 4).
            {
                k: v
                for k, v in inv.stats().to_dict().items()
                if k not in ("db_bytes", "schema_version")
            },
        )


def test_sqlite_to_postgresql_to_mariadb_and_back(
    tmp_path: Path,
    signing_key: SigningKey,
    postgresql_server: ThrowawayServer,
    mariadb_server: ThrowawayServer,
) -> None:
    source = tmp_path / "source.sqlite"
    _filled(source, signing_key)
    before = _everything(str(source))
    assert before[3] == 24 and before[4] == 6 and len(before[2]) >= 3
    hops = [
        str(source),
        postgresql_server.new_database(),
        mariadb_server.new_database(),
        str(tmp_path / "back.sqlite"),
    ]
    for src, dst in itertools.pairwise(hops):
        report = migrate_inventory(src, dst)
        assert report.ok, report.to_dict()
        assert dict(report.copied)["audit"] == before[5]["audit_entries"]
        assert report.target_audit.status == report.source_audit.status
        for side in (report.source, report.target, str(report.to_dict())):
            assert postgresql_server.password not in side
            assert mariadb_server.password not in side
        assert _everything(dst) == before
    # The copy goes on as an inventory: new rows get new keys, the chain stays whole.
    with Inventory(hops[1]) as inv:
        inv.record_signing(fake_result(50), signer="CN=three", now=NOW)
        assert inv.audit.verify().ok


def test_a_target_that_is_not_empty_is_refused_untouched(
    tmp_path: Path, signing_key: SigningKey, inventory_url: str
) -> None:
    source = tmp_path / "source.sqlite"
    _filled(source, signing_key)
    with Inventory(inventory_url) as inv:
        inv.record_signing(fake_result(77), signer="CN=there", now=NOW)
    with pytest.raises(InventoryError, match="not empty"):
        migrate_inventory(str(source), inventory_url)
    with Inventory(inventory_url) as inv:
        assert inv.stats().assets == 1
        assert inv.audit.verify().ok
