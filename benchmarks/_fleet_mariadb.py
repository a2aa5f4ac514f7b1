"""``benchmarks/index.py --fleet-mariadb N``: a verifier's cold FleetIndex build from MariaDB.

As ``_fleet_server.py`` (PostgreSQL): a throw-away MariaDB server
(``tests/servers.py``, its InnoDB buffer pool sized as a deployment would, 2 GB
by default) gets one recorded asset, then ``N`` planted assets of 22 rows each
(``LOAD DATA LOCAL INFILE``, hashes drawn from the bit model); then every row is
read with ``Inventory.perceptual_chunks`` and ``Inventory.fleet_index`` is built
cold from a new handle, with the client's and the server's CPU (the ``mariadbd``
process, every thread, from ``/proc``).
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from provenance._core import phash
from provenance.inventory import Inventory

sys.path.insert(0, str(Path(__file__).parent))
from _fleet_server import (
    _BLOCK_ROWS,
    ROWS_PER_ASSET,
    _first_asset,
    _measure,
    _planted,
    _process_cpu,
    with_packs,
)


def _plant_mariadb(
    server: Any, url: str, assets: int, model: Any, rng: np.random.Generator, tmp: Path
) -> dict[str, float]:
    """As :func:`_plant` on MariaDB: the rows by ``LOAD DATA LOCAL INFILE`` (hex hashes)."""
    import binascii

    import pymysql

    steps: dict[str, float] = {}
    database = url.rsplit("/", 1)[1]
    conn = pymysql.connect(
        host="127.0.0.1",
        port=server.port,
        user="provenance",
        password=server.password,
        database=database,
        local_infile=True,
        autocommit=True,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COALESCE(MAX(asset_pk), 0) + 1 FROM assets")
            (low,) = cur.fetchone()
            cur.execute("SELECT COALESCE(MAX(hash_pk), 0) + 1 FROM perceptual_hashes")
            (first_pk,) = cur.fetchone()
            steps["first_asset"], steps["first_pk"] = int(low), int(first_pk)
            cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
            n = assets * ROWS_PER_ASSET
            started = time.perf_counter()
            file = tmp / "rows.tsv"
            for lo in range(0, n, _BLOCK_ROWS):
                hi = min(n, lo + _BLOCK_ROWS)
                words = np.ascontiguousarray(model.sample_pooled(rng, hi - lo), dtype="<u8")
                hexed = binascii.hexlify(words.tobytes())
                size = phash.WORDS * 16
                lines = b"".join(
                    b"%d\t%d\t%s\tv%02d\t%s\n"
                    % (
                        int(first_pk) + r,
                        int(low) + r // ROWS_PER_ASSET,
                        phash.SCHEME.encode(),
                        1 + r % ROWS_PER_ASSET,
                        hexed[(r - lo) * size : (r - lo + 1) * size],
                    )
                    for r in range(lo, hi)
                )
                file.write_bytes(lines)
                cur.execute(
                    f"LOAD DATA LOCAL INFILE '{file}' INTO TABLE perceptual_hashes "
                    "(hash_pk, asset_pk, scheme, variant, @hex) SET words = UNHEX(@hex)"
                )
            file.unlink()
            steps["rows_s"] = time.perf_counter() - started
    finally:
        conn.close()
    return steps


def _mariadbd_pid(url: str) -> int:
    """The process id of the MariaDB server of ``url`` (its ``pid_file``, on this machine)."""
    with Inventory(url) as inv, inv._db.connection.raw.cursor() as cursor:
        cursor.execute("SELECT @@pid_file")
        (pid_file,) = cursor.fetchone()
    return int(Path(str(pid_file)).read_text().split()[0])


def mariadb_from_server(
    assets: int,
    tmp: Path,
    *,
    model: Any,
    rng: np.random.Generator,
    url: str | None = None,
    read_alone: bool = True,
    buffer_pool: str = "2G",
    pack_repeats: int = 0,
    unpacked_repeats: int | None = None,
) -> dict[str, Any]:
    """MariaDB: every row read (``perceptual_chunks``) and a cold ``fleet_index``.

    With ``url``: measure that inventory, already filled by
    ``python benchmarks/_fleet_server.py --mariadb N`` (which keeps its server running).
    The throw-away server's InnoDB buffer pool is ``buffer_pool`` (as a deployment
    sizes it; the tests' server has 64 MB). With ``pack_repeats``: then
    ``_fleet_server.with_packs`` (``"packs"`` in the result).
    """
    if url is not None:
        pid = _mariadbd_pid(url)
        measured = _measure_mariadb(url, assets, tmp, {}, pid, rng, read_alone=read_alone)
        return _packed(url, tmp, pid, measured, pack_repeats, unpacked_repeats)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.servers import start_mariadb

    with start_mariadb(buffer_pool=buffer_pool) as server:
        url = server.new_database("fleet")
        _first_asset(url)
        fill = _plant_mariadb(server, url, assets, model, rng, tmp)
        pid = server.process.pid
        measured = _measure_mariadb(url, assets, tmp, fill, pid, rng, read_alone=read_alone)
        return _packed(url, tmp, pid, measured, pack_repeats, unpacked_repeats)


def _packed(
    url: str,
    tmp: Path,
    pid: int,
    measured: dict[str, Any],
    repeats: int,
    unpacked: int | None,
) -> dict[str, Any]:
    if not repeats:
        return measured
    cpu = functools.partial(_process_cpu, pid)
    return {**measured, "packs": with_packs(url, tmp, cpu, measured, repeats, unpacked)}


def _measure_mariadb(
    url: str,
    assets: int,
    tmp: Path,
    fill: dict[str, float],
    pid: int,
    rng: np.random.Generator,
    *,
    read_alone: bool,
) -> dict[str, Any]:
    """As PostgreSQL's: every row read alone, a cold ``fleet_index``, lookups, memory."""
    measured = _measure(
        url,
        assets,
        tmp,
        fill or _planted(url),
        rng,
        200,
        read_alone=read_alone,
        server_cpu=functools.partial(_process_cpu, pid),
        backend="mariadb",
    )
    return {**measured, "fill": fill}
