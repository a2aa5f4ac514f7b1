"""Packed perceptual snapshots in a server inventory (issue 16): written, read, never stale.

Against the real PostgreSQL and MariaDB servers of tests/servers.py, with small
packs (8 keys) and cold-build key ranges (4 keys) so that a few dozen rows make
many of each.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from provenance._io.index import FleetIndex
from provenance.errors import InventoryError, SchemaVersionError
from provenance.inventory import Inventory
from tests.conftest import run_cli
from tests.integration.test_inventory import NOW, fake_result
from tests.integration.test_inventory_backends import (
    SIGNER,
    _assert_each_found,
    _cold_read,
    _fetched,
    _ranges_of,
    _reference,
)
from tests.servers import ThrowawayServer

SCHEME = "test.v1"
KEYS = 8  # keys of a pack in these tests


@pytest.fixture(params=("postgresql", "mariadb"))
def server(request: pytest.FixtureRequest) -> ThrowawayServer:
    found: ThrowawayServer = request.getfixturevalue(f"{request.param}_server")
    return found


@pytest.fixture(autouse=True)
def _small(monkeypatch: pytest.MonkeyPatch) -> None:
    from provenance.inventory import _packs

    monkeypatch.setattr(_packs, "PACK_KEYS", KEYS)
    _ranges_of(monkeypatch, 4)


def _record(inv: Inventory, first: int, count: int) -> None:
    results = [fake_result(i) for i in range(first, first + count)]
    references = [_reference(i, rows=1 + i % 5) for i in range(first, first + count)]
    inv.record_many(results, signer=SIGNER, now=NOW, perceptual=references)


def _spied(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the statements the cold build's readers run from now on (the real ones)."""
    from provenance.inventory import _packed, _packs

    asked: list[str] = []
    for module in (_packed, _packs):
        real = module.execute

        def spy(conn: Any, statement: Any, params: Any, real: Any = real) -> Any:
            asked.append(statement.name)
            return real(conn, statement, params)

        monkeypatch.setattr(module, "execute", spy)
    return asked


def _packs_in(server: ThrowawayServer, url: str) -> list[tuple[int, int, int]]:
    rows = server.query(
        url, "SELECT first_pk, last_pk, row_count FROM perceptual_packs ORDER BY first_pk"
    )
    return [(int(a), int(b), int(c)) for a, b, c in rows]  # type: ignore[call-overload]


def _same_as_rows(inv: Inventory, stored: list[tuple[int, int, bytes]]) -> None:
    """A cold build from a new handle finds what an index fed from the rows finds."""
    assert _cold_read(inv, SCHEME, stored[-1][0]) == stored
    index = inv.fleet_index(SCHEME)
    grown = FleetIndex(words_per_hash=2)
    grown.extend([c for c in inv.perceptual_chunks(SCHEME, rows_per_chunk=5)])
    assert len(index) == len(grown) == len(stored)
    _assert_each_found(index, stored)
    for _, _, words in stored[::3]:
        query = np.frombuffer(words, dtype="<u8").astype(np.uint64)
        query[1] ^= np.uint64(0b110001)  # 3 bits off
        assert index.lookup(query, max_distance=6, k=3) == grown.lookup(query, max_distance=6, k=3)


def test_a_packed_cold_build_equals_one_from_the_rows(
    server: ThrowawayServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.new_database()
    with Inventory(url) as inv:
        _record(inv, 0, 12)  # 33 rows: keys 1-33
        stored = _fetched(inv, SCHEME)
        with caplog.at_level("INFO", logger="provenance.inventory"):
            inv.fleet_index(SCHEME)  # before packing: the log says what to run
        hint = "32 perceptual rows of test.v1 are not packed; `provenance inventory pack`"
        assert hint in caplog.text
        assert server.password not in caplog.text
        caplog.clear()
        report = inv.pack_perceptual(SCHEME)
        assert (report.ranges_packed, report.rows_packed, report.packs) == (4, 32, 4)
        assert (report.unsealed, report.stale_dropped) == (0, 0)
        again = inv.pack_perceptual(SCHEME)  # nothing new is sealed: nothing done
        assert (again.ranges_packed, again.packs) == (0, 4)
    assert _packs_in(server, url) == [(1, 8, 8), (9, 16, 8), (17, 24, 8), (25, 32, 8)]
    asked = _spied(monkeypatch)
    with (
        caplog.at_level("INFO", logger="provenance.inventory"),
        Inventory(url, read_only=True) as inv,
    ):
        _same_as_rows(inv, stored)
    assert "not packed" not in caplog.text
    # The four packs read as packs; only the unpacked tail (key 33) from the rows.
    reads = [name for name in asked if name.startswith("perceptual_pack_read")]
    assert len(reads) == 2 * 4  # the spy's read, then the index's own cold build
    assert not [n for n in asked if n.startswith("perceptual_packed_range")]


def test_only_sealed_ranges_are_packed(server: ThrowawayServer) -> None:
    url = server.new_database()
    with Inventory(url) as inv:
        _record(inv, 0, 4)  # 10 rows: keys 1-10
        # A write that rolls back still takes its key: the range (8, 16] has a gap.
        raw = inv._db.connection.raw
        with raw.cursor() as cursor:
            cursor.execute("BEGIN" if server.kind == "postgresql" else "START TRANSACTION")
            cursor.execute(
                "INSERT INTO perceptual_hashes (asset_pk, scheme, variant, words) "
                "SELECT asset_pk, scheme, 'rolled back', words FROM perceptual_hashes "
                "WHERE hash_pk = 1"
            )
            cursor.execute("ROLLBACK")
        _record(inv, 4, 8)  # keys 12-34 (11 was rolled back)
        stored = _fetched(inv, SCHEME)
        assert 11 not in [pk for pk, _, _ in stored]
        report = inv.pack_perceptual(SCHEME)
        # (0, 8], (16, 24], (24, 32] are whole; (8, 16] lacks 11; (32, 40] is not full yet.
        assert (report.ranges_packed, report.unsealed) == (3, 1)
        assert [p[0] for p in _packs_in(server, url)] == [1, 17, 25]
        _same_as_rows(inv, stored)


def _pack_in_process(url: str) -> dict[str, Any]:
    from provenance.inventory import _packs

    _packs.PACK_KEYS = KEYS
    with Inventory(url) as inv:
        return inv.pack_perceptual(SCHEME).to_dict()


def test_packers_at_once_store_each_pack_once(server: ThrowawayServer) -> None:
    url = server.new_database()
    with Inventory(url) as inv:
        for first in range(0, 60, 12):
            _record(inv, first, 12)  # 165 rows
        stored = _fetched(inv, SCHEME)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        reports = pool.map(_pack_in_process, [url] * 4)
    ranges = len(stored) // KEYS
    assert sum(r["ranges_packed"] for r in reports) == ranges
    packs = _packs_in(server, url)
    assert [p[0] for p in packs] == [1 + KEYS * k for k in range(ranges)]
    assert all(r["packs"] == ranges for r in reports)
    with Inventory(url, read_only=True) as inv:
        _same_as_rows(inv, stored)


@pytest.mark.parametrize("change", ["delete", "update"])
def test_a_changed_row_is_never_hidden_by_its_pack(server: ThrowawayServer, change: str) -> None:
    url = server.new_database()
    with Inventory(url) as inv:
        _record(inv, 0, 12)
        assert inv.pack_perceptual(SCHEME).ranges_packed == 4
    # By hand, as a restored backup or an operator would: inside the packed (8, 16].
    if change == "delete":
        server.query(url, "DELETE FROM perceptual_hashes WHERE hash_pk = 10")
    else:
        new = "0123456789abcdeffedcba9876543210"  # 2 words, as every row of the scheme
        value = f"decode('{new}', 'hex')" if server.kind == "postgresql" else f"UNHEX('{new}')"
        server.query(url, f"UPDATE perceptual_hashes SET words = {value} WHERE hash_pk = 10")  # noqa: S608
    with Inventory(url, read_only=True) as inv:
        stored = _fetched(inv, SCHEME)
        assert len(stored) == (32 if change == "delete" else 33)
        _same_as_rows(inv, stored)  # every pack is of an older generation: rows read
    with Inventory(url) as inv:
        report = inv.pack_perceptual(SCHEME)
        assert report.stale_dropped == 4
        assert report.ranges_packed == (3 if change == "delete" else 4)
        assert report.unsealed == (1 if change == "delete" else 0)
        _same_as_rows(inv, stored)


def _as_version_4(server: ThrowawayServer, url: str) -> None:
    """Take a new inventory back to schema version 4 (before packs), as one made then."""
    if server.kind == "postgresql":
        drops = [
            "DROP TRIGGER perceptual_hashes_generation ON perceptual_hashes",
            "DROP FUNCTION provenance_bump_generation()",
        ]
    else:
        drops = [f"DROP TRIGGER perceptual_hashes_generation_{v}" for v in ("update", "delete")]
    for statement in [
        *drops,
        "DROP TABLE perceptual_packs",
        "DELETE FROM provenance_meta WHERE name = 'perceptual_generation'",
        "UPDATE provenance_meta SET value = '4' WHERE name = 'schema_version'",
    ]:
        server.query(url, statement)


def _packs_table(server: ThrowawayServer, url: str) -> bool:
    schema = "current_schema()" if server.kind == "postgresql" else "DATABASE()"
    tables = server.query(
        url,
        "SELECT COUNT(*) FROM information_schema.tables "  # noqa: S608 - constant
        f"WHERE table_name = 'perceptual_packs' AND table_schema = {schema}",
    )
    return bool(tables[0][0])  # type: ignore[index]


def test_a_version_4_server_is_read_as_it_is_and_upgraded_by_a_writable_open_only(
    server: ThrowawayServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A rolling upgrade: a new read-only verifier beside writers that would refuse 5."""
    url = server.new_database()
    with Inventory(url) as inv:
        _record(inv, 0, 12)
        stored = _fetched(inv, SCHEME)
    _as_version_4(server, url)
    asked = _spied(monkeypatch)
    with (
        caplog.at_level("INFO", logger="provenance.inventory"),
        Inventory(url, read_only=True) as inv,
    ):
        assert inv.stats().schema_version == 4
        assert inv.find_by_essence(fake_result(3).essence_sha256_hex) is not None
        _same_as_rows(inv, stored)  # a cold build from the rows, as before packs
        with pytest.raises(InventoryError, match="read-only; nothing was packed"):
            inv.pack_perceptual(SCHEME)
    packs_asked = ("perceptual_packs_", "perceptual_pack_read")  # its table is not there
    assert not [n for n in asked if n.startswith(packs_asked)]
    assert asked  # the rows were read
    [warned] = [r for r in caplog.records if "schema version 4" in r.getMessage()]
    line = warned.getMessage()
    assert warned.levelname == "WARNING" and "\n" not in line
    assert line.startswith(f"{server.kind}://provenance:***@")
    assert "`provenance inventory pack --inventory URL` upgrades it" in line
    assert server.password not in caplog.text
    # Read untouched: still version 4, no packs table.
    assert server.query(url, "SELECT value FROM provenance_meta WHERE name = 'schema_version'") == [
        ("4",)
    ]
    assert not _packs_table(server, url)
    # The command line's verify reads it as it is too (it used to upgrade it, which the
    # older writers then refused); a perceptual search runs from the rows.
    image = Path(__file__).resolve().parents[2] / "sample_media" / "forest-path.jpg"
    done = run_cli("verify", image, "--inventory", url, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["status"] == "no_provenance"
    assert server.query(url, "SELECT value FROM provenance_meta WHERE name = 'schema_version'") == [
        ("4",)
    ]
    # The command upgrades it (a writable open), then packs.
    done = run_cli("inventory", "pack", "--inventory", url, "--scheme", SCHEME, "--json")
    assert done.returncode == 0, done.stderr
    assert server.password not in done.stdout + done.stderr
    reported = json.loads(done.stdout)
    assert reported["inventory"].startswith(f"{server.kind}://provenance:***@")
    [scheme] = reported["schemes"]
    assert scheme == {
        "scheme": SCHEME,
        "ranges_packed": 4,
        "rows_packed": 32,
        "packs": 4,
        "unsealed": 0,
        "stale_dropped": 0,
        "seconds": scheme["seconds"],
    }
    assert _packs_table(server, url)
    with Inventory(url, read_only=True) as inv:
        assert inv.stats().schema_version == 5
    server.query(url, "DELETE FROM perceptual_hashes WHERE hash_pk = 3")
    with Inventory(url) as inv:
        assert inv.pack_perceptual(SCHEME).stale_dropped == 4


def test_a_version_from_the_future_is_refused_read_only_too(server: ThrowawayServer) -> None:
    url = server.new_database()
    Inventory(url).close()
    server.query(url, "UPDATE provenance_meta SET value = '6' WHERE name = 'schema_version'")
    with pytest.raises(SchemaVersionError, match="schema version 6 is newer") as refused:
        Inventory(url, read_only=True)
    assert server.password not in str(refused.value)
    assert server.query(url, "SELECT value FROM provenance_meta WHERE name = 'schema_version'") == [
        ("6",)
    ]


def test_an_sqlite_inventory_has_no_packs(tmp_path: Path) -> None:
    path = tmp_path / "inventory.sqlite"
    with Inventory(path) as inv:
        _record(inv, 0, 3)
        with pytest.raises(InventoryError, match="an SQLite inventory has no packs"):
            inv.pack_perceptual(SCHEME)
    done = run_cli("inventory", "pack", "--inventory", path, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"inventory": str(path), "schemes": []}
    done = run_cli("inventory", "pack", "--inventory", path)
    assert "needs no packs" in done.stdout


def test_a_read_only_handle_never_packs(server: ThrowawayServer) -> None:
    url = server.new_database()
    with Inventory(url) as inv:
        _record(inv, 0, 12)
    with Inventory(url, read_only=True) as inv:
        with pytest.raises(InventoryError, match="read-only; nothing was packed"):
            inv.pack_perceptual(SCHEME)
        inv.fleet_index(SCHEME)  # a cold build never packs
    assert _packs_in(server, url) == []


def test_rows_replaced_where_no_trigger_sees_it_are_not_hidden(server: ThrowawayServer) -> None:
    url = server.new_database()
    with Inventory(url) as inv:
        _record(inv, 0, 12)
        assert inv.pack_perceptual(SCHEME).ranges_packed == 4
    # MariaDB's TRUNCATE fires no trigger (on PostgreSQL: with the trigger dropped);
    # the keys start again at 1, under the packs, with other rows.
    if server.kind == "postgresql":
        server.query(url, "DROP TRIGGER perceptual_hashes_generation ON perceptual_hashes")
        server.query(url, "TRUNCATE perceptual_hashes RESTART IDENTITY")
    else:
        server.query(url, "TRUNCATE TABLE perceptual_hashes")
    with Inventory(url) as inv:
        _record(inv, 100, 12)
        stored = _fetched(inv, SCHEME)
        assert stored[0][0] == 1 and len(stored) == 33
    assert len(_packs_in(server, url)) == 4  # still there, of the same generation
    with Inventory(url, read_only=True) as inv:
        _same_as_rows(inv, stored)  # each pack's ends differ from the rows: not read


def test_a_pack_that_fails_its_checks_is_read_from_the_rows(
    server: ThrowawayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.new_database()
    with Inventory(url) as inv:
        _record(inv, 0, 12)
        assert inv.pack_perceptual(SCHEME).ranges_packed == 4
        stored = _fetched(inv, SCHEME)
    server.query(url, "UPDATE perceptual_packs SET checks = NULL WHERE first_pk = 9")
    asked = _spied(monkeypatch)
    with Inventory(url, read_only=True) as inv:
        assert _cold_read(inv, SCHEME, stored[-1][0]) == stored
    spans = [n for n in asked if n.startswith("perceptual_packed_span")]
    # Four packs asked; the refused one's range (8, 16] and the tail (32, 33] as spans.
    assert len([n for n in asked if n.startswith("perceptual_pack_read")]) == 4
    assert len(spans) == 2


def test_ranges_holding_two_schemes_stay_unpacked(server: ThrowawayServer) -> None:
    import dataclasses

    url = server.new_database()
    with Inventory(url) as inv:
        for i in range(12):  # asset by asset: the two schemes' keys interleave
            reference = dataclasses.replace(
                _reference(i, rows=2), scheme=("test.v1", "other.v1")[i % 2]
            )
            inv.record_many([fake_result(i)], signer=SIGNER, now=NOW, perceptual=[reference])
        report = inv.pack_perceptual(SCHEME)
        assert (report.ranges_packed, report.unsealed) == (0, 2)  # its last key: 22
        assert inv.pack_perceptual("other.v1").ranges_packed == 0
        _same_as_rows(inv, _fetched(inv, SCHEME))


def test_packs_are_read_however_many_there_are(
    server: ThrowawayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provenance.inventory import _indexes

    url = server.new_database()
    with Inventory(url) as inv:
        _record(inv, 0, 12)
        inv.pack_perceptual(SCHEME)
        stored = _fetched(inv, SCHEME)
    # More packs than the key ranges a build reads on two connections at most: the
    # limit is for the ranges between packs (here one: the tail), not for packs.
    monkeypatch.setattr(_indexes, "_MAX_RANGE_PAGES", 2)
    asked = _spied(monkeypatch)
    with Inventory(url, read_only=True) as inv:
        assert _cold_read(inv, SCHEME, stored[-1][0]) == stored
    assert len([n for n in asked if n.startswith("perceptual_pack_read")]) == 4
