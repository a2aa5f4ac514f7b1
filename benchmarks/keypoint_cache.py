"""The keypoint vote index's cache (issue 21): cold build, warm load, refresh at 100k assets.

An inventory of N synthetic assets is made: one recorded the ordinary way (its
audit entry gives the inventory its identity), the others inserted in bulk with
SQL (the benchmark's shortcut: recording 100k assets through the API takes
hours here and is not what is measured). Each asset's keypoint row is a real
``orb2`` record of 256 keypoints whose descriptors are real reference
descriptors of the sample images with a quarter of their bits flipped at random,
the generator ``benchmarks/robustness.py --partial-scale-only`` uses (ORB
descriptors cluster; uniform random bits would flatter the index).

Then, in wall-clock seconds on a shared machine (one run each unless said):

* ``rows``: a read-only handle reads and parses every row (pages of 2,000 rows,
  descriptors only), without building the faiss index;
* ``cold``: a writable handle without a cache file: rows, the faiss build, and
  the cache file written; ``build`` is ``cold - rows - write``;
* ``write``: writing the cache file again from the built index;
* ``warm``: a new read-only handle loads the cache and answers a query (median of
  ``--repeats``);
* ``refresh``: ``--added`` assets are added after the cache was written: a new
  handle loads the cache and reads only them; a handle that was open
  refreshes in place;
* ``parse``: per-record parse time, ``LocalFeatures.from_bytes`` (before) vs
  ``stored_descriptors`` (now), median of 3 over 10,000 records.

Usage::

    .venv/bin/python benchmarks/keypoint_cache.py               # 100k assets, ~10 minutes
    .venv/bin/python benchmarks/keypoint_cache.py --quick       # 3,000 assets, seconds
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import provenance.inventory._indexes as indexes_module
from _common import (
    console,
    header,
    load_record,
    machine_info,
    parse_args,
    sample_images,
    table,
    write_json,
)
from provenance._core import keypoints
from provenance._core.record import ProvenanceRecord
from provenance._core.types import SignResult
from provenance._io.index._keypoints import save_keypoint_cache
from provenance.inventory import Inventory

SCHEME = keypoints.SCHEME


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--assets", type=int, default=100_000, help="assets in the inventory")
    parser.add_argument("--added", type=int, default=1_000, help="assets added after the cache")
    parser.add_argument("--folder", type=Path, default=None, help="where the inventory goes")


def _pool() -> np.ndarray:
    """Real reference descriptors of the sample images."""
    refs = []
    for path in sample_images(quick=False):
        with Image.open(path) as im:
            refs.append(keypoints.reference_features(im.convert("RGB")).descriptors)
    return np.concatenate(refs)


def _records(pool: np.ndarray, count: int, rng: np.random.Generator) -> list[bytes]:
    """``count`` orb2 records of 256 keypoints near real descriptors (p = 1/4 per bit flipped)."""
    n = keypoints.REFERENCE_FEATURES
    points = rng.random((n, 2), dtype=np.float32) * 380
    angles = rng.random(n, dtype=np.float32) * 360
    colour = np.zeros((16, 16, 3), np.uint8)
    out = []
    for _ in range(count):
        base = pool[rng.integers(0, len(pool), n)]
        flips = rng.integers(0, 256, base.shape, dtype=np.uint8)
        flips &= rng.integers(0, 256, base.shape, dtype=np.uint8)
        features = keypoints.LocalFeatures(points, base ^ flips, 384, 384, 1.0, colour, angles)
        out.append(features.to_bytes())
    return out


def _first_asset(inv: Inventory, record: ProvenanceRecord) -> None:
    digest = hashlib.sha256(b"asset-0").hexdigest()
    result = SignResult(
        path=None,
        asset_id="asset-0",
        sha256_hex=digest,
        essence_sha256_hex=digest,
        input_sha256_hex=digest,
        bytes_added=1,
        active_manifest=None,
        record=record,
    )
    inv.record_signing(result, signer="CN=bench", now=datetime(2026, 1, 1, tzinfo=timezone.utc))


def _bulk_assets(db: Path, records: list[bytes], start: int) -> None:
    """Assets ``start``.. with their keypoint rows, copied from asset-0's columns (SQL)."""
    conn = sqlite3.connect(db)
    with conn:
        first = conn.execute(
            "SELECT digital_source_type, generator, model, model_version, created_at, "
            "record_json, signer_id, first_signed_at FROM assets WHERE asset_id = 'asset-0'"
        ).fetchone()
        rows = [
            (f"asset-{start + i}", hashlib.sha256(b"e%d" % (start + i)).digest(), *first)
            for i in range(len(records))
        ]
        conn.executemany(
            "INSERT INTO assets (asset_id, essence_sha256, digital_source_type, generator, "
            "model, model_version, created_at, record_json, signer_id, first_signed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "INSERT INTO keypoint_features (asset_pk, scheme, features) "
            "SELECT asset_pk, ?, ? FROM assets WHERE asset_id = ?",
            [(SCHEME, blob, row[0]) for blob, row in zip(records, rows, strict=True)],
        )
    conn.close()


def _timed(fn: Any) -> tuple[float, Any]:
    """Wall seconds and the result; the CPU seconds of this process go to ``_last_cpu``."""
    started, cpu = time.perf_counter(), time.process_time()
    out = fn()
    _last_cpu[0] = time.process_time() - cpu
    return time.perf_counter() - started, out


_last_cpu = [0.0]


def _parse_cost(records: list[bytes]) -> dict[str, float]:
    sample = records[:10_000]
    before = statistics.median(
        _timed(lambda: [keypoints.LocalFeatures.from_bytes(b) for b in sample])[0] for _ in range(3)
    )
    now = statistics.median(
        _timed(lambda: [keypoints.stored_descriptors(b) for b in sample])[0] for _ in range(3)
    )
    return {
        "records": len(sample),
        "from_bytes_us_per_record": round(before / len(sample) * 1e6, 1),
        "stored_descriptors_us_per_record": round(now / len(sample) * 1e6, 1),
    }


# The benchmark's steps in order (make, rows, cold, write, warm, refresh), read top down.
def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    assets = 3_000 if args.quick else args.assets
    added = 100 if args.quick else args.added
    pool = _pool()
    query = keypoints.query_features(Image.open(sample_images(quick=False)[0]).convert("RGB"))
    db = folder / "inv.sqlite"
    cache = folder / f"inv.sqlite.{SCHEME}.kidx"
    with Inventory(db) as inv:
        _first_asset(inv, load_record(sample_images(quick=False)[0]))
    made, records = _timed(lambda: _records(pool, assets, rng))
    _bulk_assets(db, records, 1)
    console.print(f"{assets} assets made in {made:.0f} s; database {db.stat().st_size >> 20} MB")
    out: dict[str, Any] = {"assets": assets, "parse": _parse_cost(records)}
    del records
    with Inventory(db, read_only=True) as inv:
        out["rows_s"], _ = _timed(lambda: inv.keypoint_index(SCHEME))
        out["rows_cpu_s"] = _last_cpu[0]
    with Inventory(db) as inv:
        out["cold_s"], built = _timed(lambda: inv.keypoint_index(SCHEME))
        out["cold_cpu_s"] = _last_cpu[0]
        cold_votes = built.candidates(query)
        again = folder / "again.kidx"
        out["write_s"], _ = _timed(lambda: save_keypoint_cache(built, again, stamp={}))
        out["write_cpu_s"] = _last_cpu[0]
        again.unlink()
        out["descriptors"] = built.descriptors
        out["dropped_from_hub_lists"] = built.dropped
    out["build_s"] = out["cold_s"] - out["rows_s"] - out["write_s"]
    out["build_cpu_s"] = out["cold_cpu_s"] - out["rows_cpu_s"] - out["write_cpu_s"]
    out["cache_bytes"] = cache.stat().st_size
    warm, warm_cpu, votes = [], [], []
    for _ in range(args.repeats):
        with Inventory(db, read_only=True) as inv:
            seconds, _ = _timed(lambda: inv.keypoint_index(SCHEME).candidates(query))
            assert inv._indexes.keypoint_cache_loads == 1
            warm.append(seconds)
            warm_cpu.append(_last_cpu[0])
            votes = inv.keypoint_index(SCHEME).candidates(query)
    out["warm_s"] = statistics.median(warm)
    out["warm_s_all"] = warm
    out["warm_cpu_s"] = statistics.median(warm_cpu)
    out["same_votes_as_cold"] = votes == cold_votes
    with Inventory(db, read_only=True) as open_handle:
        open_handle.keypoint_index(SCHEME)
        _bulk_assets(db, _records(pool, added, rng), assets + 1)
        out["refresh_open_handle_s"], _ = _timed(
            lambda: open_handle.keypoint_index(SCHEME).candidates(query)
        )
        out["refresh_open_handle_cpu_s"] = _last_cpu[0]
    with Inventory(db, read_only=True) as inv:
        out["refresh_new_handle_s"], _ = _timed(
            lambda: inv.keypoint_index(SCHEME).candidates(query)
        )
        out["refresh_new_handle_cpu_s"] = _last_cpu[0]
        out["refresh_rows_read"] = inv._indexes.keypoint_rows_read
    out["added"] = added
    return out


def report(out: dict[str, Any]) -> None:
    def both(name: str) -> tuple[str, str]:
        return f"{out[name + '_cpu_s']:.2f}", f"{out[name + '_s']:.2f}"

    added = out["added"]
    rows = [
        ("rows read + parsed (no faiss)", *both("rows")),
        ("faiss build (every descriptor through the quantizer)", *both("build")),
        (f"cache file written ({out['cache_bytes'] >> 20} MB)", *both("write")),
        ("cold: rows, build, write", *both("cold")),
        ("warm: a new handle loads the cache, 1 query (median)", *both("warm")),
        (f"refresh: a new handle, cache + {added} new rows, 1 query", *both("refresh_new_handle")),
        (f"refresh: an open handle, {added} new rows, 1 query", *both("refresh_open_handle")),
    ]
    console.print(
        table(
            f"keypoint index cache, {out['assets']} assets",
            ["step", "CPU s", "wall s"],
            rows,
            caption=f"same votes after loading as built: {out['same_votes_as_cold']}",
        )
    )


def main() -> int:
    args = parse_args(
        "keypoint_cache",
        "keypoint vote index: cold build, cached load, refresh",
        default_repeats=3,
        quick_repeats=2,
        extra=_extra,
    )
    info = machine_info()
    header("keypoint_cache", info, args)
    # Cached from the first row, whatever the threshold (the benchmark's inventories are
    # above it anyway except with --quick).
    indexes_module.KEYPOINT_CACHE_MIN_ROWS = 1
    if args.folder is not None:
        args.folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        out = run(args, Path(tmp))
    write_json(args.out, {"benchmark": "keypoint_cache", "machine": info, "result": out})
    report(out)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
