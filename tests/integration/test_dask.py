"""provenance.integrations.dask on a LocalCluster: the same rows as the local batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from provenance._core.types import Status
from provenance._io.keys import SigningKey, TrustPolicy
from provenance.batch import RowStatus, sign_many, verify_many
from provenance.errors import InventoryError
from provenance.integrations import dask as pdask
from provenance.inventory import Inventory
from tests.conftest import SIGNATURE_SLACK
from tests.integration.test_batch import RECORD, small_images


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as dask_client,
    ):
        yield dask_client


def test_dask_rows_match_the_local_batch(
    tmp_path: Path, client: Client, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    sources = small_images(tmp_path / "in", 20)
    broken = tmp_path / "in" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really")
    items = [*sources[:10], broken, *sources[10:]]
    with Inventory(tmp_path / "dask.sqlite") as inv:
        remote = list(
            pdask.sign_many(
                items,
                tmp_path / "dask",
                client=client,
                key=signing_key,
                record=RECORD,
                inventory=inv,
                chunk_size=3,
            )
        )
        assert inv.audit.verify().ok
        recorded = {f.sha256_hex for a in inv.assets() for f in a.files}
        again = list(
            pdask.sign_many(
                items,
                tmp_path / "dask",
                client=client,
                key=signing_key,
                record=RECORD,
                inventory=inv,
            )
        )
    with Inventory(tmp_path / "local.sqlite") as inv:
        local = list(
            sign_many(items, tmp_path / "local", key=signing_key, record=RECORD, inventory=inv)
        )

    def essentials(rows: list) -> list:
        return [
            (
                r.index,
                r.status,
                r.error.kind if r.error else None,
                None if r.result is None else (r.result.asset_id, r.result.input_sha256_hex),
            )
            for r in rows
        ]

    assert essentials(remote) == essentials(local)
    for a, b in zip(remote, local, strict=True):
        if a.result is not None and b.result is not None:
            assert abs(a.result.bytes_added - b.result.bytes_added) <= SIGNATURE_SLACK
    assert [r.status for r in remote].count(RowStatus.ERROR) == 1
    assert recorded == {r.result.sha256_hex for r in remote if r.result is not None}
    assert [r.status for r in again] == [
        RowStatus.ERROR if r.index == 10 else RowStatus.SKIPPED for r in again
    ]

    outputs = sorted((tmp_path / "dask").iterdir())
    remote_v = list(pdask.verify_many(outputs, client=client, trust=trust))
    local_v = list(verify_many(outputs, trust=trust))
    assert [r.result.to_dict() for r in remote_v if r.result is not None] == [
        r.result.to_dict() for r in local_v if r.result is not None
    ]
    assert {r.result.status for r in remote_v if r.result is not None} == {Status.TRUSTED}


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_two_workers_record_into_a_server_every_row_once(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    client: Client,
    signing_key: SigningKey,
) -> None:
    # Issue 16: on a server inventory the two worker processes record their own
    # chunks through the server; the client's handle is read-only, so every row
    # below was written by a worker.
    server = request.getfixturevalue(f"{backend}_server")
    url = server.new_database()
    Inventory(url).close()  # the schema, made once
    sources = small_images(tmp_path / "in", 24)
    broken = tmp_path / "in" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really")
    items = [*sources[:12], broken, *sources[12:]]
    with Inventory(url, read_only=True) as inv:
        rows = list(
            pdask.sign_many(
                items,
                tmp_path / "out",
                client=client,
                key=signing_key,
                record=RECORD,
                inventory=inv,
                chunk_size=2,
            )
        )
        again = list(
            pdask.sign_many(
                items,
                tmp_path / "out",
                client=client,
                key=signing_key,
                record=RECORD,
                inventory=inv,
            )
        )
    assert [r.index for r in rows] == list(range(25))
    assert [r.status for r in rows].count(RowStatus.OK) == 24
    assert rows[12].status is RowStatus.ERROR
    # The second run finds every recorded file (its workers read what the first wrote).
    assert [r.status for r in again] == [
        RowStatus.ERROR if r.index == 12 else RowStatus.SKIPPED for r in again
    ]
    signed = [r.result for r in rows if r.result is not None]
    assert len({s.sha256_hex for s in signed}) == 24
    with Inventory(url, read_only=True) as inv:
        stats = inv.stats()
        assert (stats.assets, stats.files) == (24, 24)
        for result in signed:
            entry = inv.find_by_sha256(result.sha256_hex)
            assert entry is not None and entry.asset_id == result.asset_id
            assert [f.sha256_hex for f in entry.files] == [result.sha256_hex]
        report = inv.audit.verify()
        assert report.ok, report.problems
        assert report.entries_checked == 24  # one entry per file, none twice, no gap


def test_workers_record_only_into_a_server(
    tmp_path: Path, client: Client, signing_key: SigningKey
) -> None:
    with Inventory(tmp_path / "inv.sqlite") as inv, pytest.raises(InventoryError) as caught:
        pdask.sign_many(
            small_images(tmp_path / "in", 1),
            tmp_path / "out",
            client=client,
            key=signing_key,
            record=RECORD,
            inventory=inv,
            record_in_workers=True,
        )
    assert str(caught.value).startswith(str(tmp_path / "inv.sqlite"))
    assert "server inventory" in str(caught.value)
    assert not (tmp_path / "out").exists()
