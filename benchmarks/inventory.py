"""Inventory throughput and latency at catalogue scale (DESIGN.md decision 8).

For each size (default 10k, 100k and 1M assets) it builds a fresh inventory
with batched ``record_many`` (a quarter of the assets are renditions of an
earlier asset, so lineage has depth), then measures on the built database:

* assets added per second: batched (1,000 per transaction, the build), and
  single-row transactions with ``durable=True`` (synchronous=FULL, the default)
  and ``durable=False`` (synchronous=NORMAL);
* lookup latency (median, p95) by file SHA-256, by essence hash (a hit and a
  miss: most ``verify`` calls on stranger files are misses) and of the lineage
  queries ``ancestors`` / ``descendants``;
* database bytes per asset (file size after close, WAL folded in);
* audit-chain verification speed (entries per second).

Each backend is measured side by side (issue 16): SQLite (a file), and
PostgreSQL and MariaDB on throw-away local servers (tests/servers.py: fsync
off, so single-row figures are the protocol's cost, not a disk's). ``durable``
changes SQLite's and PostgreSQL's commits; MariaDB's is server-wide.

SignResults are synthetic (hashes derived from the index, a real validated
ProvenanceRecord); nothing is signed. Self-contained on purpose: no shared
benchmark helpers.

Run::

    .venv/bin/python benchmarks/inventory.py              # 10k, 100k, 1M (1M: minutes)
    .venv/bin/python benchmarks/inventory.py --quick      # 1k, 10k
    .venv/bin/python benchmarks/inventory.py --sizes 50000
    .venv/bin/python benchmarks/inventory.py --backends sqlite,postgresql,mariadb

Results go to ``benchmarks/results/inventory.json`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from provenance._core.record import DigitalSourceType, ParentRef, ProvenanceRecord
from provenance._core.types import SignResult
from provenance.inventory import Inventory

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "inventory.json"
DEFAULT_SIZES = "10000,100000,1000000"
DEFAULT_BACKENDS = "sqlite,postgresql,mariadb"
QUICK_SIZES = "1000,10000"
BATCH = 1000
SINGLE_ROWS = 500
LOOKUPS = 1000
LINEAGE_LOOKUPS = 300
SIGNER = "O=provenance benchmark,CN=provenance benchmark signer"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)

console = Console(width=None if sys.stdout.isatty() else 150)


class Catalogue:
    """Deterministic synthetic assets: asset ``i`` always has the same hashes."""

    MODELS = (("stable-diffusion-xl-base", "1.0"), ("flux.1-dev", "2024-08"), ("imagen", "3"))

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def digest(self, kind: str, i: int) -> str:
        return hashlib.sha256(f"{self.seed}:{kind}:{i}".encode()).hexdigest()

    def asset_id(self, i: int) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_OID, self.digest("essence", i)))

    def parent(self, i: int) -> int | None:
        # Every fourth asset is a rendition of a random earlier one (which may
        # itself be a rendition): lineage trees a few levels deep.
        if i % 4 != 3:
            return None
        return random.Random(i * 7919 + self.seed).randrange(i)

    def result(self, i: int) -> SignResult:
        parent = self.parent(i)
        parents: tuple[ParentRef, ...] = ()
        if parent is not None:
            parents = (
                ParentRef(
                    self.digest("file", parent),
                    self.digest("essence", parent),
                    self.asset_id(parent),
                ),
            )
        model, version = self.MODELS[i % len(self.MODELS)]
        record = ProvenanceRecord(
            generator="studio-batch 2.1",
            model=model,
            model_version=version,
            digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA,
            created_at=NOW,
            parameters={"seed": i, "steps": 30, "cfg_scale": 7.0, "width": 1024, "height": 1024},
            parents=parents,
        )
        return SignResult(
            path=f"/srv/media/catalog/product/{i % 97:02d}/{i:08d}.jpg",
            asset_id=self.asset_id(i),
            sha256_hex=self.digest("file", i),
            essence_sha256_hex=self.digest("essence", i),
            input_sha256_hex=self.digest("input", i),
            bytes_added=9_400,
            active_manifest=f"urn:c2pa:{uuid.uuid5(uuid.NAMESPACE_URL, self.digest('m', i))}",
            record=record,
            parent_sha256_hex=parents[0].sha256_hex if parents else None,
        )


def latency(calls: Sequence[Callable[[], object]]) -> dict[str, float]:
    """Median and p95 of each call's wall time, in microseconds."""
    samples = []
    gc.disable()
    try:
        for call in calls:
            start = time.perf_counter_ns()
            call()
            samples.append((time.perf_counter_ns() - start) / 1000)
    finally:
        gc.enable()
    samples.sort()
    return {
        "median_us": round(statistics.median(samples), 1),
        "p95_us": round(samples[min(len(samples) - 1, int(len(samples) * 0.95))], 1),
        "n": len(samples),
    }


def build(path: str, catalogue: Catalogue, size: int) -> float:
    """Fill a new inventory with record_many batches; return assets per second."""
    spent = 0.0
    with (
        Inventory(path) as inv,
        Progress(
            TextColumn(f"build {size:,}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress,
    ):
        task = progress.add_task("build", total=size)
        for start in range(0, size, BATCH):
            batch = [catalogue.result(i) for i in range(start, min(size, start + BATCH))]
            began = time.perf_counter()
            inv.record_many(batch, signer=SIGNER, now=NOW)
            spent += time.perf_counter() - began
            progress.advance(task, len(batch))
    return size / spent


def single_rows(path: str, catalogue: Catalogue, first: int, *, durable: bool) -> float:
    """Assets per second with one transaction (and, if durable, one fsync) each."""
    results = [catalogue.result(i) for i in range(first, first + SINGLE_ROWS)]
    with Inventory(path, durable=durable) as inv:
        began = time.perf_counter()
        for result in results:
            inv.record_signing(result, signer=SIGNER, now=NOW)
        return SINGLE_ROWS / (time.perf_counter() - began)


def measure(size: int, seed: int, path: str) -> dict[str, Any]:
    catalogue = Catalogue(seed)
    batched = build(path, catalogue, size)
    with Inventory(path, read_only=True) as inv:
        # SQLite: the file after close (WAL folded in); a server: the database's size.
        db_bytes = inv.stats().db_bytes if inv.is_server else Path(path).stat().st_size
    rng = random.Random(seed)
    picks = rng.sample(range(size), min(LOOKUPS, size))
    renditions = [i for i in rng.sample(range(size), min(size, 4 * LINEAGE_LOOKUPS)) if i % 4 == 3]
    originals = [i for i in rng.sample(range(size), min(size, 2 * LINEAGE_LOOKUPS)) if i % 4 != 3]
    out: dict[str, Any] = {
        "assets": size,
        "db_bytes": db_bytes,
        "bytes_per_asset": round(db_bytes / size, 1),
        "add_batched_per_s": round(batched),
    }
    with Inventory(path, read_only=True) as inv:
        sample = inv.get(catalogue.asset_id(picks[0]))
        assert sample is not None and sample.files[0].sha256_hex == catalogue.digest(
            "file", picks[0]
        )
        out["find_by_sha256"] = latency(
            [lambda i=i: inv.find_by_sha256(catalogue.digest("file", i)) for i in picks]
        )
        out["find_by_essence"] = latency(
            [lambda i=i: inv.find_by_essence(catalogue.digest("essence", i)) for i in picks]
        )
        out["find_by_essence_miss"] = latency(
            [lambda i=i: inv.find_by_essence(catalogue.digest("other", i)) for i in picks]
        )
        out["ancestors"] = latency(
            [lambda i=i: inv.ancestors(catalogue.asset_id(i)) for i in renditions[:LINEAGE_LOOKUPS]]
        )
        out["descendants"] = latency(
            [
                lambda i=i: inv.descendants(catalogue.asset_id(i))
                for i in originals[:LINEAGE_LOOKUPS]
            ]
        )
        depth = max(len(inv.ancestors(catalogue.asset_id(i))) for i in renditions[:50])
        out["max_ancestor_depth_sampled"] = depth
        began = time.perf_counter()
        report = inv.audit.verify()
        spent = time.perf_counter() - began
        assert report.ok and report.entries_checked == size, report.problems[:3]
        out["audit_verify_entries_per_s"] = round(report.entries_checked / spent)
    out["add_single_full_per_s"] = round(single_rows(path, catalogue, size, durable=True))
    out["add_single_normal_per_s"] = round(
        single_rows(path, catalogue, size + SINGLE_ROWS, durable=False)
    )
    return out


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def table(rows: list[dict[str, Any]]) -> Table:
    out = Table(title="provenance inventory, by backend")
    out.add_column("backend")
    out.add_column("assets", justify="right")
    out.add_column("add/s batched", justify="right")
    out.add_column("add/s single FULL", justify="right")
    out.add_column("add/s single NORMAL", justify="right")
    for name in ("sha256", "essence", "miss", "ancestors", "descendants"):
        out.add_column(f"{name} µs p50/p95", justify="right")
    out.add_column("bytes/asset", justify="right")
    out.add_column("verify entries/s", justify="right")
    for row in rows:

        def lat(key: str, row: dict[str, Any] = row) -> str:
            return f"{row[key]['median_us']:.0f} / {row[key]['p95_us']:.0f}"

        out.add_row(
            row["backend"],
            f"{row['assets']:,}",
            f"{row['add_batched_per_s']:,}",
            f"{row['add_single_full_per_s']:,}",
            f"{row['add_single_normal_per_s']:,}",
            lat("find_by_sha256"),
            lat("find_by_essence"),
            lat("find_by_essence_miss"),
            lat("ancestors"),
            lat("descendants"),
            f"{row['bytes_per_asset']:,.0f}",
            f"{row['audit_verify_entries_per_s']:,}",
        )
    return out


def _locations(backend: str, folder: Path, servers: contextlib.ExitStack) -> Callable[[int], str]:
    """A function giving a new, empty inventory location on ``backend`` per size."""
    if backend == "sqlite":
        return lambda size: str(folder / f"inventory-{size}.sqlite")
    sys.path.insert(0, str(ROOT))  # tests/servers.py starts the throw-away server
    from tests.servers import STARTERS

    server = servers.enter_context(STARTERS[backend]())
    return lambda size: server.new_database(f"bench{size}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/inventory.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--sizes", default=DEFAULT_SIZES, help=f"comma list (default {DEFAULT_SIZES})"
    )
    parser.add_argument(
        "--backends",
        default=None,
        help=f"comma list (default {DEFAULT_BACKENDS}; --quick: sqlite)",
    )
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}, SQLite")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--workdir", type=Path, default=None, help="where databases are built")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in (QUICK_SIZES if args.quick else args.sizes).split(",") if s.strip()]
    backends = (args.backends or ("sqlite" if args.quick else DEFAULT_BACKENDS)).split(",")
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="inventory-bench-", dir=args.workdir) as folder,
        contextlib.ExitStack() as servers,
    ):
        for backend in backends:
            new_location = _locations(backend, Path(folder), servers)
            for size in sizes:
                began = time.perf_counter()
                row = {"backend": backend, **measure(size, args.seed, new_location(size))}
                row["wall_s"] = round(time.perf_counter() - began, 1)
                rows.append(row)
                console.print(f"{backend}: {size:,} assets done in {row['wall_s']} s")
                for leftover in Path(folder).glob("inventory-*.sqlite*"):
                    leftover.unlink()
    document = {
        "benchmark": "inventory",
        "command": "python benchmarks/inventory.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "settings": {
            "batch": BATCH,
            "single_rows": SINGLE_ROWS,
            "lookups": LOOKUPS,
            "backends": backends,
        },
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    console.print(table(rows))
    console.print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
