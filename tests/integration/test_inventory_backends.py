"""One Inventory API on SQLite, PostgreSQL and MariaDB (issue 16).

Each test runs on every backend: a fresh SQLite file, or a fresh database on a
throw-away server (tests/servers.py; a server that is not installed fails
the test). The server tests also check that no password ever shows.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from provenance._core.phash import ReferenceHashes
from provenance._core.record import ParentRef
from provenance._io.index import FleetIndex
from provenance._io.keys import SigningKey
from provenance.audit import AuditEvent
from provenance.errors import InventoryError
from provenance.inventory import Inventory
from provenance.inventory._pages import key_ranges
from tests.integration.test_inventory import NOW, fake_result
from tests.servers import ThrowawayServer

SIGNER = "CN=backend test"


def _reference(seed: int, rows: int = 4) -> ReferenceHashes:
    words = np.random.default_rng(seed).integers(0, 2**63, size=(rows, 2), dtype=np.uint64)
    return ReferenceHashes(
        scheme="test.v1",
        words=words,
        variants=tuple(f"v{i}" for i in range(rows)),
        descriptor=f"descriptor {seed}".encode(),
    )


def test_record_read_and_lineage(inventory_url: str) -> None:
    original = fake_result(1)
    child = fake_result(2, parent=original)
    grandchild = fake_result(3, parent=child)
    with Inventory(inventory_url) as inv:
        # The grandchild arrives before its parent: linked when the parent comes.
        inv.record_signing(original, signer=SIGNER, now=NOW)
        inv.record_signing(grandchild, signer=SIGNER, now=NOW)
        inv.record_signing(child, signer=SIGNER, now=NOW)
        again = inv.record_signing(child, signer=SIGNER, now=NOW)  # idempotent
        assert len(again.files) == 1
        assert inv.get(child.asset_id).parent_asset_id == original.asset_id  # type: ignore[union-attr]
        assert inv.get("no-such-asset") is None
        found = inv.find_by_sha256(grandchild.sha256_hex)
        assert found is not None and found.parent_asset_id == child.asset_id
        assert inv.find_by_sha256(child.input_sha256_hex).asset_id == child.asset_id  # type: ignore[union-attr]
        assert inv.find_by_essence(original.essence_sha256_hex).asset_id == original.asset_id  # type: ignore[union-attr]
        assert [a.asset_id for a in inv.ancestors(grandchild.asset_id)] == [
            child.asset_id,
            original.asset_id,
        ]
        assert [a.asset_id for a in inv.descendants(original.asset_id)] == [
            child.asset_id,
            grandchild.asset_id,
        ]
        stats = inv.stats()
        assert (stats.assets, stats.files, stats.renditions, stats.synthetic) == (3, 3, 2, 3)
        assert stats.by_model == {"sdxl": {"1.0": 3}}
        # A server has the packed perceptual snapshots too (version 5).
        assert stats.schema_version == (5 if "://" in inventory_url else 4)
        assert stats.db_bytes > 0
        report = inv.audit.verify()
        assert report.ok, report.problems
        assert report.last_seq == 3
        assert report.facts_checked >= 6


def test_a_contradictory_batch_stores_nothing(inventory_url: str) -> None:
    good = [fake_result(i) for i in range(3)]
    clash = fake_result(99)
    clash = dataclasses.replace(clash, essence_sha256_hex=good[0].essence_sha256_hex)
    with Inventory(inventory_url) as inv:
        with pytest.raises(InventoryError, match="already recorded"):
            inv.record_many([*good, clash], signer=SIGNER, now=NOW)
        assert inv.stats().assets == 0
        assert inv.audit.tail() is None
        inv.record_many(good, signer=SIGNER, now=NOW)
        assert [a.asset_id for a in inv.assets()] == [g.asset_id for g in good]


def test_a_batch_s_new_assets_go_in_together_and_clashes_are_named(inventory_url: str) -> None:
    """Held asset rows (one statement, keys chosen up front) refuse what one insert refused."""
    stored, twin = fake_result(1), fake_result(2)
    same = dataclasses.replace(fake_result(3), essence_sha256_hex=twin.essence_sha256_hex)
    taken = dataclasses.replace(fake_result(4), essence_sha256_hex=stored.essence_sha256_hex)
    with Inventory(inventory_url) as inv:
        inv.record_signing(stored, signer=SIGNER, now=NOW)  # the server's own key
        with pytest.raises(InventoryError, match=f"as asset {twin.asset_id}, not {same.asset_id}"):
            inv.record_many([fake_result(5), twin, same], signer=SIGNER, now=NOW)
        with pytest.raises(
            InventoryError, match=f"as asset {stored.asset_id}, not {taken.asset_id}"
        ):
            inv.record_many([fake_result(6), taken], signer=SIGNER, now=NOW)
        assert inv.stats().assets == 1 and inv.audit.tail() is not None
        original = fake_result(10)
        batch = [original, *(fake_result(i, parent=original) for i in range(11, 14))]
        inv.record_many(batch, signer=SIGNER, now=NOW, perceptual=[_reference(1), None, None, None])
        inv.record_signing(fake_result(20), signer=SIGNER, now=NOW)  # the server's key again
        ids = [a.asset_id for a in inv.assets()]
        assert ids == [stored.asset_id, *(r.asset_id for r in batch), fake_result(20).asset_id]
        assert [len(inv.descendants(original.asset_id))] == [3]
        assert inv.audit.verify().ok


def _by_file_hash(result: Any, parent: Any) -> Any:
    """``result`` naming ``parent`` by its file's hash only: found through the files table."""
    record = result.record.replace(parents=(ParentRef(parent.sha256_hex),))
    return dataclasses.replace(result, record=record, parent_sha256_hex=parent.sha256_hex)


def test_a_batch_links_what_it_holds_back(inventory_url: str) -> None:
    """One batch's new files are inserted together: its later results still find them."""
    original = fake_result(1)
    child = _by_file_hash(fake_result(2), original)
    grandchild = _by_file_hash(fake_result(3), child)
    early = _by_file_hash(fake_result(4), fake_result(5))  # before its parent, same batch
    later = fake_result(6)  # read back (its record's time has microseconds) with its file
    later = dataclasses.replace(
        later, record=later.record.replace(created_at=NOW.replace(microsecond=5))
    )
    with Inventory(inventory_url) as inv:
        entries = inv.record_many(
            [original, child, grandchild, early, fake_result(5), child, later],
            signer=SIGNER,
            now=NOW,
        )
        assert [f.sha256_hex for f in entries[6].files] == [later.sha256_hex]
        assert [e.parent_asset_id for e in entries[:3]] == [None, original.asset_id, child.asset_id]
        assert entries[5] == inv.get(child.asset_id)  # the same file again: idempotent
        assert [a.asset_id for a in inv.ancestors(grandchild.asset_id)] == [
            child.asset_id,
            original.asset_id,
        ]
        assert inv.get(early.asset_id).parent_asset_id == fake_result(5).asset_id  # type: ignore[union-attr]
        assert (inv.stats().assets, inv.stats().files) == (6, 6)
        report = inv.audit.verify()
        assert report.ok, report.problems
        assert report.last_seq == 6


def test_a_batch_refuses_a_new_asset_with_a_file_of_another(inventory_url: str) -> None:
    first = fake_result(1)
    taken = dataclasses.replace(fake_result(11), sha256_hex=first.sha256_hex)
    twice = dataclasses.replace(fake_result(12), sha256_hex=fake_result(10).sha256_hex)
    with Inventory(inventory_url) as inv:
        inv.record_signing(first, signer=SIGNER, now=NOW)
        for batch in ([fake_result(10), taken], [fake_result(10), twice, fake_result(13)]):
            sha = batch[1].sha256_hex
            with pytest.raises(InventoryError, match=f"file {sha} is already recorded for another"):
                inv.record_many(batch, signer=SIGNER, now=NOW)
            assert (inv.stats().assets, inv.stats().files) == (1, 1)
            assert inv.audit.tail().seq == 1  # type: ignore[union-attr]
        assert inv.audit.verify().ok


def test_perceptual_rows_are_stored_once_and_found(inventory_url: str) -> None:
    results = [fake_result(i) for i in range(5)]
    references = [_reference(i) for i in range(5)]
    with Inventory(inventory_url) as inv:
        inv.record_many(results, signer=SIGNER, now=NOW, perceptual=references)
        assert inv.add_perceptual(results[0].asset_id, references[0], now=NOW) == 0
        query = references[3].words[2].copy()
        query[0] ^= np.uint64(0b101)  # two bits away
        matches = inv.find_perceptual(query, scheme="test.v1", max_distance=4)
        assert (matches[0].asset.asset_id, matches[0].distance, matches[0].variant) == (
            results[3].asset_id,
            2,
            "v2",
        )
        assert matches[0].descriptor == b"descriptor 3"
        assert len(inv.perceptual_index("test.v1")) == 20
        chunks = list(inv.perceptual_chunks("test.v1", rows_per_chunk=7))
        assert [len(c.row_ids) for c in chunks] == [7, 7, 6]
        report = inv.audit.verify()
        assert report.ok, report.problems


def _fetched(inv: Inventory, scheme: str) -> list[tuple[int, int, bytes]]:
    """Every row of ``scheme`` as the plain keyset fetch reads it (the path before packing)."""
    from provenance._io.database import execute
    from provenance.inventory._perceptual import _CHUNK

    rows = inv._db.read(lambda conn: execute(conn, _CHUNK, (scheme, 0, 1_000_000)).fetchall())
    return [(int(pk), int(asset), bytes(words)) for pk, asset, words in rows]


def _cold_read(inv: Inventory, scheme: str, last: int) -> list[tuple[int, int, bytes]]:
    """Every row of ``scheme`` up to ``last`` as a verifier's cold build reads them."""
    return [
        (int(pk), int(asset), words.astype("<u8").tobytes())
        for chunk in inv._indexes._every_row(scheme, last)
        for pk, asset, words in zip(chunk.row_ids, chunk.assets, chunk.words, strict=True)
    ]


def _assert_each_found(index: FleetIndex, rows: list[tuple[int, int, bytes]]) -> None:
    """Each row's hash finds its own asset and row at distance 0."""
    for pk, asset, words in rows:
        found = index.lookup(np.frombuffer(words, dtype="<u8"), max_distance=0, k=1)
        assert (found[0].asset, found[0].row_id, found[0].distance) == (asset, pk, 0)


def _chunked(inv: Inventory, scheme: str, after: int, step: int) -> list[tuple[int, int, bytes]]:
    out = []
    for chunk in inv.perceptual_chunks(scheme, after=after, rows_per_chunk=step):
        assert 0 < chunk.row_ids.shape[0] <= step
        assert chunk.words.dtype == np.uint64
        for pk, asset, words in zip(chunk.row_ids, chunk.assets, chunk.words, strict=True):
            out.append((int(pk), int(asset), words.astype("<u8").tobytes()))
    return out


def test_perceptual_chunks_yield_exactly_the_stored_rows(
    inventory_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages and key ranges of 9 rows (a server packs each into one row): pages and
    # chunks of 4 cut the rows at different places.
    _ranges_of(monkeypatch, 9)
    with Inventory(inventory_url) as inv:
        assert list(inv.perceptual_chunks("test.v1")) == []  # an empty table
        results = [fake_result(i) for i in range(12)]
        references = [_reference(i, rows=1 + i % 5) for i in range(12)]
        inv.record_many(results, signer=SIGNER, now=NOW, perceptual=references)
        stored = _fetched(inv, "test.v1")
        assert len(stored) == sum(len(r.variants) for r in references)
        assert [w for _, _, w in stored] == [
            row.tobytes() for r in references for row in r.words.astype("<u8")
        ]
        for after in (0, stored[4][0], stored[-2][0], stored[-1][0]):
            for step in (4, 1 << 16):
                assert _chunked(inv, "test.v1", after, step) == [r for r in stored if r[0] > after]
        assert list(inv.perceptual_chunks("no.such.scheme")) == []
        # A cold build (a server: key ranges on two connections; SQLite: pages) finds
        # what an index fed chunk by chunk finds.
        index = inv.fleet_index("test.v1")
        assert len(index) == len(stored) and index.last_row_id == stored[-1][0]
        grown = FleetIndex(words_per_hash=2)
        for chunk in inv.perceptual_chunks("test.v1", rows_per_chunk=4):
            grown.extend([chunk])
        for pk, asset, words in stored:
            query = np.frombuffer(words, dtype="<u8").astype(np.uint64)
            query[0] ^= np.uint64(0b1011)  # 3 bits off
            found = index.lookup(query, max_distance=8, k=3)
            assert found == grown.lookup(query, max_distance=8, k=3)
            assert (found[0].asset, found[0].row_id, found[0].distance) == (asset, pk, 3)


# The statements a cold build's key range is read with, per server.
_SPAN = {"postgresql": "perceptual_packed_span", "mariadb": "perceptual_packed_span_mariadb"}
_KEYED = {"postgresql": "perceptual_packed_range", "mariadb": "perceptual_packed_range_mariadb"}


def _ranges_of(monkeypatch: pytest.MonkeyPatch, keys: int) -> None:
    """Cold builds read key ranges of ``keys`` keys, on every server."""
    from provenance.inventory import _indexes

    monkeypatch.setattr(_indexes, "_PACKED_PAGE_ROWS", keys)
    monkeypatch.setattr(_indexes, "_MARIADB_RANGE_KEYS", keys)


def _asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the statements ``inventory._packed`` runs from now on (the real ones)."""
    from provenance.inventory import _packed

    asked: list[str] = []
    real = _packed.execute

    def spy(conn: object, statement: object, params: object) -> object:
        asked.append(statement.name)  # type: ignore[attr-defined]
        return real(conn, statement, params)  # type: ignore[arg-type]

    monkeypatch.setattr(_packed, "execute", spy)
    return asked


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_a_cold_fleet_build_reads_the_pages_on_two_connections(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    server: ThrowawayServer = request.getfixturevalue(f"{kind}_server")
    _ranges_of(monkeypatch, 4)  # ranges of 4 keys: many pages
    with Inventory(server.new_database()) as inv:
        results = [fake_result(i) for i in range(12)]
        references = [_reference(i, rows=1 + i % 5) for i in range(12)]
        inv.record_many(results, signer=SIGNER, now=NOW, perceptual=references)
        stored = _fetched(inv, "test.v1")
        asked = _asked(monkeypatch)
        for last in (stored[-1][0], stored[7][0]):  # rows above last: read after the ranges
            assert _cold_read(inv, "test.v1", last) == stored
        # Ranges when there are more than 2 (fewer: keyset pages on one connection).
        ranges = [key_ranges(0, last, 4) for last in (stored[-1][0], stored[7][0])]
        assert asked.count(_SPAN[kind]) == sum(len(r) for r in ranges if len(r) > 2) > 2
        assert _KEYED[kind] not in asked  # no gaps, in key order: spans only
        index = inv.fleet_index("test.v1")
        assert len(index) == len(stored) and index.last_row_id == stored[-1][0]
        _assert_each_found(index, stored)


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_a_key_range_with_gaps_is_read_again_with_its_keys(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    server: ThrowawayServer = request.getfixturevalue(f"{kind}_server")
    _ranges_of(monkeypatch, 4)
    url = server.new_database()
    with Inventory(url) as inv:
        results = [fake_result(i) for i in range(12)]
        references = [_reference(i, rows=1 + i % 5) for i in range(12)]
        inv.record_many(results, signer=SIGNER, now=NOW, perceptual=references)
        stored = _fetched(inv, "test.v1")
    # Keys inside a range of 4 (not at its ends): those ranges have gaps.
    gone = [pk for pk, _, _ in stored if pk % 4 == 2][:3]
    keys = ", ".join(str(int(pk)) for pk in gone)
    server.query(url, f"DELETE FROM perceptual_hashes WHERE hash_pk IN ({keys})")  # noqa: S608
    kept = [row for row in stored if row[0] not in gone]
    ranges = key_ranges(0, kept[-1][0], 4)
    gapped = 0
    for lo, hi in ranges:
        keys = [pk for pk, _, _ in kept if lo < pk <= hi]
        gapped += bool(keys) and keys[-1] - keys[0] + 1 != len(keys)
    asked = _asked(monkeypatch)
    with Inventory(url) as inv:
        assert _cold_read(inv, "test.v1", kept[-1][0]) == kept
        # Every range asked without its keys; only those with gaps again with them.
        assert asked.count(_SPAN[kind]) == len(ranges)
        assert asked.count(_KEYED[kind]) == gapped == 3
        _assert_each_found(inv.fleet_index("test.v1"), kept)


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_a_cold_build_of_one_scheme_skips_another_s_rows_in_its_ranges(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    server: ThrowawayServer = request.getfixturevalue(f"{kind}_server")
    _ranges_of(monkeypatch, 4)
    with Inventory(server.new_database()) as inv:
        results = [fake_result(i) for i in range(12)]
        # Two schemes recorded asset by asset: their keys interleave in every range.
        references = [
            dataclasses.replace(_reference(i, rows=2), scheme=("test.v1", "other.v1")[i % 2])
            for i in range(12)
        ]
        for result, reference in zip(results, references, strict=True):
            inv.record_many([result], signer=SIGNER, now=NOW, perceptual=[reference])
        for scheme in ("test.v1", "other.v1"):
            stored = _fetched(inv, scheme)
            assert len(stored) == 12
            last = max(pk for pk, _, _ in _fetched(inv, "test.v1") + _fetched(inv, "other.v1"))
            assert _cold_read(inv, scheme, last) == stored
            _assert_each_found(inv.fleet_index(scheme), stored)


def test_a_mariadb_range_cut_short_is_read_as_rows(
    mariadb_server: ThrowawayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ranges_of(monkeypatch, 8)
    with Inventory(mariadb_server.new_database()) as inv:
        results = [fake_result(i) for i in range(12)]
        references = [_reference(i, rows=1 + i % 5) for i in range(12)]
        inv.record_many(results, signer=SIGNER, now=NOW, perceptual=references)
        stored = _fetched(inv, "test.v1")
        # The reader's own connection keeps the server's 64 MB limit: only the first
        # connection's ranges (every other one) are cut, at 20 bytes (not one record).
        with inv._db.connection.raw.cursor() as cursor:
            cursor.execute("SET SESSION group_concat_max_len = 20")
        asked = _asked(monkeypatch)
        assert _cold_read(inv, "test.v1", stored[-1][0]) == stored
        cut = len(key_ranges(0, stored[-1][0], 8)[::2])
        assert asked.count("perceptual_range_rows") == cut > 1
        assert asked.count(_KEYED["mariadb"]) == cut


def test_a_span_the_server_aggregated_out_of_key_order_is_refused(
    postgresql_server: ThrowawayServer,
) -> None:
    from provenance.inventory._packed import _PACKED_SPAN, SPAN_CHECKS, _unspanned

    with Inventory(postgresql_server.new_database()) as inv:
        results = [fake_result(i) for i in range(40)]
        references = [_reference(i, rows=1 + i % 5) for i in range(40)]
        inv.record_many(results, signer=SIGNER, now=NOW, perceptual=references)
        stored = _fetched(inv, "test.v1")
        last = stored[-1][0]
        compiled = _PACKED_SPAN.compiled("postgresql")
        in_key_order = "ORDER BY perceptual_hashes.hash_pk)"
        assert in_key_order in compiled.sql

        def span(order: str, stride: int) -> tuple[object, ...]:
            """The server's span row of every key, its subquery sorted by ``order``."""
            sql = compiled.sql.replace(in_key_order, f"ORDER BY {order})")
            with inv._db.connection.raw.cursor() as cursor:
                cursor.execute(sql, compiled.arrange(("test.v1", 0, last, stride)))
                return tuple(cursor.fetchone())

        path = Path("inventory")
        for stride in (1, 4, max(1, last // SPAN_CHECKS)):
            # As the statement asks: every row, each at its key's place.
            row = span("perceptual_hashes.hash_pk", stride)
            (chunk,) = _unspanned(row, "t", path, stride=stride)
            assert chunk.row_ids.tolist() == [pk for pk, _, _ in stored]
            assert chunk.assets.tolist() == [asset for _, asset, _ in stored]
            # The rows really aggregated in another order (the same count, keys and
            # lengths): the checked rows are not at their keys' places.
            for order in ("perceptual_hashes.hash_pk DESC", "md5(perceptual_hashes.words)"):
                row = span(order, stride)
                assert row[:3] == (len(stored), stored[0][0], last)
                assert _unspanned(row, "t", path, stride=stride) is None
        # Rows swapped with their neighbour: caught where a checked row moved.
        assert _unspanned(span("perceptual_hashes.hash_pk # 1", 1), "t", path, stride=1) is None


def test_mariadb_ranges_aggregated_out_of_key_order(mariadb_server: ThrowawayServer) -> None:
    from provenance.inventory._packed import (
        _RANGE_MARIADB,
        _SPAN_MARIADB,
        _unkeyed_mariadb,
        _unspanned_mariadb,
    )

    with Inventory(mariadb_server.new_database()) as inv:
        results = [fake_result(i) for i in range(40)]
        references = [_reference(i, rows=1 + i % 5) for i in range(40)]
        inv.record_many(results, signer=SIGNER, now=NOW, perceptual=references)
        stored = _fetched(inv, "test.v1")
        last = stored[-1][0]

        def row(statement: object, params: tuple[object, ...], order: str | None) -> Any:
            """The server's row; with ``order``, its records concatenated in that order."""
            compiled = statement.compiled("mariadb")  # type: ignore[attr-defined]
            sql = compiled.sql
            if order is not None:  # the first GROUP_CONCAT: the span's or range's records
                sql = sql.replace(" SEPARATOR '')", f" ORDER BY {order} SEPARATOR '')", 1)
            with inv._db.connection.raw.cursor() as cursor:
                cursor.execute(sql, compiled.arrange(params))
                return cursor.fetchone()

        path = Path("inventory")
        for stride in (1, 4):
            span = ("test.v1", 0, last, stride)
            (chunk,) = _unspanned_mariadb(row(_SPAN_MARIADB, span, None), "t", path, stride=stride)
            assert _rows_of(chunk) == stored
            # Records really concatenated in another order: refused.
            for order in ("perceptual_hashes.hash_pk DESC", "md5(perceptual_hashes.words)"):
                misordered = row(_SPAN_MARIADB, span, order)
                assert misordered[:3] == (len(stored), stored[0][0], last)
                assert _unspanned_mariadb(misordered, "t", path, stride=stride) is None
        # Keyed records out of key order are sorted: the same rows.
        keyed = row(_RANGE_MARIADB, ("test.v1", 0, last), "perceptual_hashes.hash_pk DESC")
        (chunk,) = _unkeyed_mariadb(keyed, "t", path)
        assert _rows_of(chunk) == stored


def _rows_of(chunk: Any) -> list[tuple[int, int, bytes]]:
    return [
        (int(pk), int(asset), words.astype("<u8").tobytes())
        for pk, asset, words in zip(chunk.row_ids, chunk.assets, chunk.words, strict=True)
    ]


def test_a_page_that_cannot_be_read_stops_both_readers_with_the_error(
    postgresql_server: ThrowawayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from provenance.inventory import _indexes

    monkeypatch.setattr(_indexes, "_PACKED_PAGE_ROWS", 2)
    read = _indexes.perceptual_range
    seen: list[int] = []

    def failing(conn: object, scheme: str, after: int, upto: int, path: Path) -> object:
        seen.append(after)
        if after >= 6:
            raise InventoryError("the server went away", path=path)
        return read(conn, scheme, after, upto, path)  # type: ignore[arg-type]

    monkeypatch.setattr(_indexes, "perceptual_range", failing)
    with Inventory(postgresql_server.new_database()) as inv:
        results = [fake_result(i) for i in range(5)]
        inv.record_many(
            results, signer=SIGNER, now=NOW, perceptual=[_reference(i) for i in range(5)]
        )
        with pytest.raises(InventoryError, match="the server went away"):
            inv.fleet_index("test.v1")
        assert not [t for t in threading.enumerate() if t.name.startswith("provenance-pages")]
        assert max(seen) < 12  # the readers stopped, not every page was asked for
        # The handle still works: the failed build left nothing behind.
        monkeypatch.setattr(_indexes, "perceptual_range", read)
        assert len(inv.fleet_index("test.v1")) == 20


def test_a_mariadb_page_cut_by_group_concat_is_read_as_rows(
    mariadb_server: ThrowawayServer,
) -> None:
    with Inventory(mariadb_server.new_database()) as inv:
        results = [fake_result(i) for i in range(6)]
        references = [_reference(i, rows=4) for i in range(6)]
        inv.record_many(results, signer=SIGNER, now=NOW, perceptual=references)
        stored = _fetched(inv, "test.v1")
        packed = _chunked(inv, "test.v1", 0, 1 << 16)
        # GROUP_CONCAT cut at 100 bytes: the packed page is refused, the rows are fetched.
        with inv._db.connection.raw.cursor() as cursor:
            cursor.execute("SET SESSION group_concat_max_len = 100")
        assert _chunked(inv, "test.v1", 0, 1 << 16) == packed == stored


def test_perceptual_hashes_of_two_widths_are_refused_by_name(inventory_url: str) -> None:
    with Inventory(inventory_url) as inv:
        results = [fake_result(i) for i in range(2)]
        inv.record_many(results, signer=SIGNER, now=NOW)
        inv.add_perceptual(results[0].asset_id, _reference(0), now=NOW)
        wide = _reference(1)
        wide = dataclasses.replace(wide, words=np.concatenate([wide.words, wide.words], axis=1))
        inv.add_perceptual(results[1].asset_id, wide, now=NOW)
        with pytest.raises(InventoryError, match=r"test\.v1 differ in length"):
            list(inv.perceptual_chunks("test.v1"))


def test_exports_and_checkpoints_verify(
    inventory_url: str, tmp_path: Path, signing_key: SigningKey
) -> None:
    with Inventory(inventory_url, checkpoint_key=signing_key, checkpoint_every=3) as inv:
        inv.record_many([fake_result(i) for i in range(4)], signer=SIGNER, now=NOW)
        for i in range(4, 8):
            inv.record_signing(fake_result(i), signer=SIGNER, now=NOW)
        checkpoint = inv.export_json(tmp_path / "export.json", now=NOW)
        inv.export_csv(tmp_path / "export.csv", now=NOW)
        document = json.loads((tmp_path / "export.json").read_text())
        assert document["counts"]["assets"] == 8
        assert len(document["assets"]) == 8
        assert len((tmp_path / "export.csv").read_text().splitlines()) == 9
        assert len(inv.audit.checkpoints()) >= 3
        events = [e.event for e in inv.audit.entries()]
        assert events.count(AuditEvent.EXPORTED) == 2
        assert AuditEvent.CHECKPOINT in events
        report = inv.audit.verify(against=checkpoint)
        assert report.ok, report.problems
        assert inv.audit.log_key() is not None


def test_read_only_refuses_writes(inventory_url: str) -> None:
    Inventory(inventory_url).close()
    with Inventory(inventory_url, read_only=True, create=False) as inv:
        with pytest.raises(InventoryError, match="read-only"):
            inv.record_signing(fake_result(1), signer=SIGNER, now=NOW)
        assert inv.stats().assets == 0


# --- several processes at once -----------------------------------------------------------

WRITERS = 8
PER_WRITER = 25


def _writer(location: str, writer: int, start_at: float) -> int:
    while time.time() < start_at:  # start together, to collide
        time.sleep(0.001)
    with Inventory(location, busy_timeout_s=60.0) as inv:
        previous = None
        for i in range(PER_WRITER):
            # A chain per writer: each asset a rendition of the one before.
            result = fake_result(i, salt=f"w{writer}", parent=previous)
            if i % 5 == 0:
                inv.record_many(
                    [result], signer=f"CN=w{writer}", now=NOW, perceptual=[_reference(i)]
                )
            else:
                inv.record_signing(result, signer=f"CN=w{writer}", now=NOW)
                inv.audit.append(AuditEvent.VERIFIED, asset_id=result.asset_id, now=NOW)
            previous = result
    return writer


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_eight_processes_writing_at_once_lose_nothing(
    kind: str, request: pytest.FixtureRequest
) -> None:
    # SQLite's writers are tested by test_inventory.py (four processes, 500 assets each).
    server: ThrowawayServer = request.getfixturevalue(f"{kind}_server")
    inventory_url = server.new_database()
    Inventory(inventory_url).close()
    context = multiprocessing.get_context("spawn")
    with context.Pool(WRITERS) as pool:
        start_at = time.time() + 2.0
        done = pool.starmap(_writer, [(inventory_url, w, start_at) for w in range(WRITERS)])
    assert sorted(done) == list(range(WRITERS))
    with Inventory(inventory_url) as inv:
        stats = inv.stats()
        assert stats.assets == stats.files == WRITERS * PER_WRITER
        assert stats.renditions == WRITERS * (PER_WRITER - 1)
        report = inv.audit.verify()
        assert report.ok, report.problems
        verified = WRITERS * (PER_WRITER - PER_WRITER // 5)
        assert report.entries_checked == report.last_seq == WRITERS * PER_WRITER + verified
        entries = list(inv.audit.entries())
        assert [e.seq for e in entries] == list(range(1, report.last_seq + 1))
        for writer in range(WRITERS):
            mine = [e for e in entries if e.payload.get("signer") == f"CN=w{writer}"]
            assert len(mine) == PER_WRITER
            last = fake_result(PER_WRITER - 1, salt=f"w{writer}")
            assert len(inv.ancestors(last.asset_id)) == PER_WRITER - 1
        assert len(inv.perceptual_index("test.v1")) == WRITERS * (PER_WRITER // 5) * 4
