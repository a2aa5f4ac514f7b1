"""Dask on a server inventory (issue 16): 2 worker processes against 1.

Signs N images with ``provenance.integrations.dask.sign_many`` on a
``LocalCluster(n_workers=1|2, threads_per_worker=1)`` into a fresh inventory
on a throw-away PostgreSQL (and MariaDB) server (tests/servers.py: **fsync
off**, PostgreSQL ``synchronous_commit=off``). Variants:

* ``dask-1`` / ``dask-2``: one or two worker processes; each worker records
  the chunks it signed through the server (the integration's default on a
  server, ``record_in_workers``), the client's handle is read-only;
* ``dask-2-client``: two workers, the client the one writer (what the
  integration did before issue 16, and still does for an SQLite file).

Each run gets a new database and output folder; the cluster is started, and
its workers warmed up (imports, c2pa Context) by a two-image batch without an
inventory, before the clock starts, and stopped after. Per round every
variant runs once in a shuffled order; the speed-up is the ratio inside a
round (dask-2 / dask-1 images per second), the median over rounds is
reported. After every run it checks that every image landed once: all rows
ok, as many assets and files as images, each output's SHA-256 found once,
and ``audit verify`` intact with one entry per file.

Inputs: 200 packshots of the real-photo corpus (``benchmarks/corpus.py``;
JPEG, long side <= 768 px), chunks of 16 (the batch default); ``--quick``
(a smoke test): three sample_media images in chunks of 1, PostgreSQL, one
round, ``dask-1`` and ``dask-2`` only.

Run::

    .venv/bin/python benchmarks/dask_server.py                  # 200 packshots, 3 rounds
    .venv/bin/python benchmarks/dask_server.py --backends postgresql,mariadb
    .venv/bin/python benchmarks/dask_server.py --quick
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    console,
    dev_keys,
    fmt_ratio,
    header,
    load_record,
    machine_info,
    machine_line,
    median,
    paired_ratios,
    parse_args,
    sample_images,
    table,
    write_json,
)
from provenance.batch import DEFAULT_CHUNK_SIZE, RowStatus, SignItem
from provenance.inventory import Inventory

IMAGES = 200
VARIANTS = ("dask-1", "dask-2", "dask-2-client")
WORKERS = {"dask-1": 1, "dask-2": 2, "dask-2-client": 2}


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backends",
        default=None,
        help="comma list (default postgresql,mariadb; --quick: postgresql)",
    )
    parser.add_argument("--images", type=int, default=IMAGES, help=f"default {IMAGES}")
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="items per Dask task (default 16; --quick: 1)"
    )


def _images(quick: bool, count: int) -> list[Path]:
    if quick:
        return sample_images(quick=True)
    sys.path.insert(0, str(Path(__file__).parent))
    from corpus import ensure

    return ensure().paths("packshot")[:count]


def _check(url: str, rows: list[Any], count: int) -> dict[str, Any]:
    """Every image landed once, the chain is intact; raises AssertionError otherwise."""
    assert [r.status for r in rows] == [RowStatus.OK] * count, [r.error for r in rows if r.error][
        :3
    ]
    with Inventory(url, read_only=True) as inv:
        stats = inv.stats()
        assert (stats.assets, stats.files) == (count, count), (stats.assets, stats.files)
        for row in rows:
            entry = inv.find_by_sha256(row.result.sha256_hex)
            assert entry is not None and len(entry.files) == 1, row.name
        report = inv.audit.verify()
    assert report.ok and report.entries_checked == count, report.problems[:3]
    return {"assets": stats.assets, "files": stats.files, "audit_entries": report.entries_checked}


def run_variant(
    variant: str,
    server: Any,
    images: list[Path],
    work: Path,
    sign: Callable[..., Any],
    chunk_size: int,
) -> dict[str, Any]:
    """One timed batch of ``variant`` into a new database; the cluster lives only meanwhile."""
    from distributed import Client, LocalCluster

    # A LocalCluster's nannies leave Dask's worker environment in os.environ
    # (benchmarks/batch.py): restored after, so every variant starts alike.
    environ = dict(os.environ)
    url = server.new_database("dask")
    Inventory(url).close()  # the schema, made before the clock starts
    out = work / f"{variant}-{time.monotonic_ns()}"
    items = [SignItem(p, name=f"{i:04d}-{p.name}") for i, p in enumerate(images)]
    try:
        with (
            LocalCluster(
                n_workers=WORKERS[variant],
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):
            for _ in sign(images[:2], work / "warm-up", client=client, inventory=None):
                pass
            in_workers = variant != "dask-2-client"
            with Inventory(url, read_only=in_workers) as inv:
                began = time.perf_counter()
                rows = list(
                    sign(
                        items,
                        out,
                        client=client,
                        inventory=inv,
                        record_in_workers=in_workers,
                        chunk_size=chunk_size,
                    )
                )
                wall = time.perf_counter() - began
    finally:
        os.environ.clear()
        os.environ.update(environ)
    checked = _check(url, rows, len(images))
    shutil.rmtree(out, ignore_errors=True)
    return {"wall_s": wall, "images_per_s": len(images) / wall, **checked}


def main() -> int:
    args = parse_args(
        "dask_server", __doc__ or "", default_repeats=3, quick_repeats=1, extra=_options
    )
    info = machine_info()
    header("dask_server", info, args)
    backends = (args.backends or ("postgresql" if args.quick else "postgresql,mariadb")).split(",")
    images = _images(args.quick, args.images)
    chunk_size = args.chunk_size or (1 if args.quick else DEFAULT_CHUNK_SIZE)
    variants = VARIANTS[:2] if args.quick else VARIANTS
    key, _trust, keys_folder = dev_keys()
    record = load_record(ROOT / "sample_media" / "forest-path.jpg")
    work = Path(tempfile.mkdtemp(prefix="provenance-bench-dask-server-"))
    sys.path.insert(0, str(ROOT))  # tests/servers.py starts the throw-away servers
    from provenance.integrations import dask as pdask
    from tests.servers import STARTERS

    def sign(items: Any, out: Path, **kwargs: Any) -> Any:
        return pdask.sign_many(items, out, key=key, record=record, resume=False, **kwargs)

    results: dict[str, Any] = {
        "machine": info,
        "images": len(images),
        "rounds": args.repeats,
        "chunk_size": chunk_size,
        "servers": "throw-away local servers (tests/servers.py), fsync off; "
        "PostgreSQL synchronous_commit=off",
        "backends": {},
    }
    rows = []
    rng = random.Random(args.seed)
    try:
        for backend in backends:
            samples: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
            with STARTERS[backend]() as server:
                for round_no in range(args.repeats):
                    order = list(variants)
                    rng.shuffle(order)
                    for variant in order:
                        samples[variant].append(
                            run_variant(variant, server, images, work, sign, chunk_size)
                        )
                    console.print(f"{backend}: round {round_no + 1}/{args.repeats} done")
            rates = {v: [s["images_per_s"] for s in samples[v]] for v in variants}
            entry: dict[str, Any] = {
                v: {"images_per_s_median": median(rates[v]), "runs": samples[v]} for v in variants
            }
            entry["speedup_2_vs_1"] = median(paired_ratios(rates["dask-2"], rates["dask-1"]))
            if "dask-2-client" in rates:
                entry["speedup_workers_vs_client_writer"] = median(
                    paired_ratios(rates["dask-2"], rates["dask-2-client"])
                )
            results["backends"][backend] = entry
            for variant in variants:
                rows.append(
                    (
                        f"{backend} {variant}",
                        f"{entry[variant]['images_per_s_median']:.1f}",
                        " ".join(f"{r:.1f}" for r in rates[variant]),
                        fmt_ratio(entry["speedup_2_vs_1"]) if variant == "dask-2" else "",
                    )
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(keys_folder, ignore_errors=True)
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    write_json(args.out, results)
    console.print(
        table(
            f"Dask into a server inventory: {len(images)} images, medians of {args.repeats} rounds",
            ("backend variant", "images/s", "per round", "2 vs 1 workers"),
            rows,
            caption=machine_line(info) + f"; load after {results['load_average_after']}",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
