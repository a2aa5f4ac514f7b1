"""Inventory throughput and latency at catalogue scale (DESIGN.md decision 8).

For each size (default 10k, 100k and 1M assets) it fills a fresh inventory
per backend by the bulk fill below, then measures AT that size, through the
normal public API (``Inventory``), on every backend side by side:

* assets added per second: batched (``record_many``, 1,000 assets with their
  perceptual rows per transaction) and one asset per transaction with
  ``durable=True`` (SQLite synchronous=FULL, the default) and ``durable=False``
  (synchronous=NORMAL); medians of ``--repeats`` rounds;
* lookup latency (median, p95) by file SHA-256, by essence hash (a hit and a
  miss: most ``verify`` calls on stranger files are misses) and of the lineage
  queries ``ancestors`` / ``descendants``;
* database bytes per asset (file size after close, WAL folded in);
* audit-chain verification speed (entries per second).

Bulk fill (issue 16: 1M assets through one ``record_signing`` per asset took
most of an hour per server). The SQLite inventory of each size is filled once
with the stores' own batched write path, ``Inventory.record_many``, in
transactions of ``FILL_BATCH`` assets with ``durable=False``: the same rows as
a signing batch writes (assets, files, lineage links, 22 perceptual rows and a
descriptor per asset, one audit entry per file binding its rows). Each server
inventory is then loaded from that file with ``migrate_inventory`` (what
``provenance inventory migrate`` runs: every table copied with its keys in one
transaction, pages of ``executemany``, which psycopg pipelines and PyMySQL
turns into multi-row INSERTs), which verifies the audit chain on both sides
and compares every table's count. So every backend holds the same rows, and
``audit verify`` holds on each (checked after the measurements too). The fill
rate is reported (``fill_per_s``, ``load_rows_per_s``) but is not an
import's speed: the adds/s columns are. ``--fill-dir DIR`` keeps the fill and
reuses it in later runs (SQLite is measured on a copy, the servers are loaded
from it), so a 1M fill is paid once; ``--no-fill-perceptual`` leaves out the
perceptual rows (several times faster to fill and load; the batched adds
measured afterwards still carry them).

Each backend is measured side by side (issue 16): SQLite (a file), and
PostgreSQL and MariaDB on throw-away local servers (tests/servers.py: **fsync
off**, ``synchronous_commit=off`` on PostgreSQL, so single-row figures are the
protocol's and the server's CPU cost, not a disk's). ``durable`` changes
SQLite's and PostgreSQL's commits; MariaDB's is server-wide.

SignResults are synthetic (hashes derived from the index, a real validated
ProvenanceRecord, perceptual rows of the real shape with random bits); nothing
is signed. Self-contained on purpose: no shared benchmark helpers.

Run::

    .venv/bin/python benchmarks/inventory.py              # 10k, 100k, 1M on all 3
    .venv/bin/python benchmarks/inventory.py --sizes 1000000 --fill-dir ~/fills  # issue 16
    .venv/bin/python benchmarks/inventory.py --quick      # 1k, 10k, SQLite
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
import shutil
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

import numpy as np
from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from provenance._core import phash
from provenance._core.record import DigitalSourceType, ParentRef, ProvenanceRecord
from provenance._core.types import SignResult
from provenance.inventory import Inventory, migrate_inventory

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "inventory.json"
TEMPLATE_IMAGE = ROOT / "sample_media" / "forest-path.jpg"
DEFAULT_SIZES = "10000,100000,1000000"
DEFAULT_BACKENDS = "sqlite,postgresql,mariadb"
QUICK_SIZES = "1000,10000"
FILL_BATCH = 5000  # assets per record_many transaction of the bulk fill
BATCH = 1000  # assets per record_many transaction of the measured batched adds
SINGLE_ROWS = 200  # one-transaction adds per round and durability
REPEATS = 3
QUICK_REPEATS = 2
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

    def perceptual(
        self, first: int, stop: int, template: phash.ReferenceHashes
    ) -> list[phash.ReferenceHashes | None]:
        """Perceptual rows of the real shape (the template's variants), random bits."""
        rng = np.random.default_rng([self.seed, first])
        shape = template.words.shape
        out: list[phash.ReferenceHashes | None] = []
        for _ in range(first, stop):
            words = np.frombuffer(rng.bytes(8 * shape[0] * shape[1]), dtype=np.uint64)
            out.append(
                phash.ReferenceHashes(
                    words=words.reshape(shape),
                    variants=template.variants,
                    descriptor=rng.bytes(len(template.descriptor)),
                    scheme=template.scheme,
                )
            )
        return out


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


def template() -> phash.ReferenceHashes:
    """A real image's perceptual rows: the shape (variants, descriptor size) stored per asset."""
    with Image.open(TEMPLATE_IMAGE) as image:
        return phash.reference_hashes(image)


def fill(path: str, catalogue: Catalogue, size: int, shape: phash.ReferenceHashes | None) -> float:
    """The bulk fill of a new SQLite inventory (module docstring); returns assets per second.

    ``shape`` None: no perceptual rows (``--no-fill-perceptual``).
    """
    began = time.perf_counter()
    with (
        Inventory(path, durable=False) as inv,
        Progress(
            TextColumn(f"fill {size:,}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress,
    ):
        task = progress.add_task("fill", total=size)
        for start in range(0, size, FILL_BATCH):
            stop = min(size, start + FILL_BATCH)
            inv.record_many(
                [catalogue.result(i) for i in range(start, stop)],
                signer=SIGNER,
                now=NOW,
                perceptual=None if shape is None else catalogue.perceptual(start, stop, shape),
            )
            progress.advance(task, stop - start)
    return size / (time.perf_counter() - began)


def load_server(source: str, url: str) -> dict[str, Any]:
    """Copy the filled SQLite inventory into an empty server one (``inventory migrate``)."""
    began = time.perf_counter()
    report = migrate_inventory(source, url)
    spent = time.perf_counter() - began
    assert report.ok, report.to_dict()  # equal counts, both audit chains verified
    rows = sum(count for _, count in report.copied)
    return {
        "load_s": round(spent, 1),
        "load_rows": rows,
        "load_rows_per_s": round(rows / spent),
    }


class Adds:
    """New assets, measured at the inventory's size: each call takes the next indices."""

    def __init__(self, location: str, catalogue: Catalogue, first: int) -> None:
        self.location = location
        self.catalogue = catalogue
        self.next = first
        self.shape = template()

    def _take(self, count: int) -> range:
        taken = range(self.next, self.next + count)
        self.next += count
        return taken

    def batched(self) -> float:
        """Assets per second of one ``record_many`` of BATCH assets with perceptual rows."""
        taken = self._take(BATCH)
        results = [self.catalogue.result(i) for i in taken]
        perceptual = self.catalogue.perceptual(taken.start, taken.stop, self.shape)
        with Inventory(self.location) as inv:
            began = time.perf_counter()
            inv.record_many(results, signer=SIGNER, now=NOW, perceptual=perceptual)
            return BATCH / (time.perf_counter() - began)

    def single(self, *, durable: bool) -> float:
        """Assets per second with one transaction (and, if durable, one fsync) each."""
        results = [self.catalogue.result(i) for i in self._take(SINGLE_ROWS)]
        with Inventory(self.location, durable=durable) as inv:
            began = time.perf_counter()
            for result in results:
                inv.record_signing(result, signer=SIGNER, now=NOW)
            return SINGLE_ROWS / (time.perf_counter() - began)


def lookups(inv: Inventory, catalogue: Catalogue, size: int, seed: int) -> dict[str, Any]:
    """Lookup and lineage latencies on the inventory as filled (``size`` assets)."""
    rng = random.Random(seed)
    picks = rng.sample(range(size), min(LOOKUPS, size))
    renditions = [i for i in rng.sample(range(size), min(size, 4 * LINEAGE_LOOKUPS)) if i % 4 == 3]
    originals = [i for i in rng.sample(range(size), min(size, 2 * LINEAGE_LOOKUPS)) if i % 4 != 3]
    sample = inv.get(catalogue.asset_id(picks[0]))
    assert sample is not None and sample.files[0].sha256_hex == catalogue.digest("file", picks[0])
    out: dict[str, Any] = {
        "find_by_sha256": latency(
            [lambda i=i: inv.find_by_sha256(catalogue.digest("file", i)) for i in picks]
        ),
        "find_by_essence": latency(
            [lambda i=i: inv.find_by_essence(catalogue.digest("essence", i)) for i in picks]
        ),
        "find_by_essence_miss": latency(
            [lambda i=i: inv.find_by_essence(catalogue.digest("other", i)) for i in picks]
        ),
        "ancestors": latency(
            [lambda i=i: inv.ancestors(catalogue.asset_id(i)) for i in renditions[:LINEAGE_LOOKUPS]]
        ),
        "descendants": latency(
            [
                lambda i=i: inv.descendants(catalogue.asset_id(i))
                for i in originals[:LINEAGE_LOOKUPS]
            ]
        ),
    }
    depth = max(len(inv.ancestors(catalogue.asset_id(i))) for i in renditions[:50])
    out["max_ancestor_depth_sampled"] = depth
    return out


def measure(location: str, size: int, seed: int, repeats: int) -> dict[str, Any]:
    """Everything measured on a filled inventory of ``size`` assets at ``location``."""
    catalogue = Catalogue(seed)
    with Inventory(location, read_only=True) as inv:
        # SQLite: the file after close (WAL folded in); a server: the database's size.
        db_bytes = inv.stats().db_bytes if inv.is_server else Path(location).stat().st_size
        out: dict[str, Any] = {
            "assets": size,
            "db_bytes": db_bytes,
            "bytes_per_asset": round(db_bytes / size, 1),
            **lookups(inv, catalogue, size, seed),
        }
    adds = Adds(location, catalogue, size)
    rounds: dict[str, list[float]] = {"batched": [], "full": [], "normal": []}
    kinds: dict[str, Callable[[], float]] = {
        "batched": adds.batched,
        "full": lambda: adds.single(durable=True),
        "normal": lambda: adds.single(durable=False),
    }
    order = list(kinds)
    shuffle = random.Random(seed)
    for _ in range(repeats):
        shuffle.shuffle(order)  # drift and neighbours hit every kind alike
        for kind in order:
            rounds[kind].append(kinds[kind]())
    for kind, key in (("batched", "batched"), ("full", "single_full"), ("normal", "single_normal")):
        out[f"add_{key}_per_s"] = round(statistics.median(rounds[kind]))
        out[f"add_{key}_rounds"] = [round(x) for x in rounds[kind]]
    with Inventory(location, read_only=True) as inv:
        began = time.perf_counter()
        report = inv.audit.verify()
        spent = time.perf_counter() - began
    # One audit entry per recorded file: the fill's and every add's.
    assert report.ok and report.entries_checked == adds.next, report.problems[:3]
    out["audit_verify_entries_per_s"] = round(report.entries_checked / spent)
    out["audit_entries"] = report.entries_checked
    return out


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def table(rows: list[dict[str, Any]]) -> Table:
    out = Table(title="provenance inventory, by backend (adds: medians of rounds)")
    out.add_column("backend")
    out.add_column("assets", justify="right")
    out.add_column("add/s batched", justify="right")
    out.add_column("add/s single FULL", justify="right")
    out.add_column("add/s single NORMAL", justify="right")
    for name in ("sha256", "essence", "miss", "ancestors", "descendants"):
        out.add_column(f"{name} µs p50/p95", justify="right")
    out.add_column("bytes/asset", justify="right")
    out.add_column("verify entries/s", justify="right")
    out.add_column("fill or load s", justify="right")
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
            f"{spent:,.0f}" if (spent := row.get("load_s") or row.get("fill_s")) else "-",
        )
    return out


def _server(backend: str, servers: contextlib.ExitStack) -> Any:
    """A throw-away server (tests/servers.py: fsync off), started once per run."""
    sys.path.insert(0, str(ROOT))
    from tests.servers import STARTERS

    return servers.enter_context(STARTERS[backend]())


def run_size(
    size: int,
    backends: list[str],
    folder: Path,
    servers: dict[str, Any],
    args: argparse.Namespace,
    done: Callable[[dict[str, Any]], None],
) -> None:
    """Fill once (or reuse ``--fill-dir``'s fill), load every server from it, measure each."""
    kind = "perceptual" if args.fill_perceptual else "plain"
    kept = args.fill_dir is not None
    source = str((args.fill_dir or folder) / f"fill-{size}-seed{args.seed}-{kind}.sqlite")
    fill_rate: float | None = None
    fill_s: float | None = None
    if kept and Path(source).exists():
        with Inventory(source, create=False, read_only=True) as inv:
            assert inv.stats().assets == size, f"{source} is not a complete fill of {size:,}"
        console.print(f"reusing the fill {source}")
    else:
        began = time.perf_counter()
        shape = template() if args.fill_perceptual else None
        fill_rate = fill(source, Catalogue(args.seed), size, shape)
        fill_s = time.perf_counter() - began
        console.print(f"filled {size:,} assets in {fill_s:.0f} s ({fill_rate:,.0f}/s)")
    if args.fill_only:
        return
    for backend in backends:
        began = time.perf_counter()
        if backend == "sqlite":
            # A copy: the fill stays as it was for the servers and for later runs.
            location = str(folder / f"inventory-{size}.sqlite")
            shutil.copyfile(source, location)
            row: dict[str, Any] = {"backend": backend}
            if fill_s is not None:
                row["fill_s"] = round(fill_s, 1)
        else:
            location = servers[backend].new_database(f"bench{size}")
            row = {"backend": backend, **load_server(source, location)}
        row["fill_per_s"] = None if fill_rate is None else round(fill_rate)
        row["fill_perceptual_rows"] = args.fill_perceptual
        row.update(measure(location, size, args.seed, args.repeats))
        row["wall_s"] = round(time.perf_counter() - began, 1)
        row["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        console.print(f"{backend}: {size:,} assets done in {row['wall_s']} s")
        if backend != "sqlite":
            servers[backend].query(location, "SELECT 1")  # still up
        done(row)
    for leftover in [*folder.glob("inventory-*.sqlite*"), *folder.glob("fill-*.sqlite*")]:
        leftover.unlink()


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
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"rounds of adds (default {REPEATS}; --quick: {QUICK_REPEATS})",
    )
    parser.add_argument(
        "--fill-perceptual",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="store 22 perceptual rows and a descriptor per filled asset (default: yes; "
        "--no-fill-perceptual makes a 1M fill and load several times faster)",
    )
    parser.add_argument(
        "--fill-dir",
        type=Path,
        default=None,
        help="keep each size's SQLite fill here and reuse it when present (a 1M fill "
        "takes 20-60 min on a loaded 2-core machine: fill once, measure many times)",
    )
    parser.add_argument(
        "--fill-only", action="store_true", help="make (or check) the fills, measure nothing"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--workdir", type=Path, default=None, help="where SQLite files are built")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (QUICK_REPEATS if args.quick else REPEATS)
    sizes = [int(s) for s in (QUICK_SIZES if args.quick else args.sizes).split(",") if s.strip()]
    backends = (args.backends or ("sqlite" if args.quick else DEFAULT_BACKENDS)).split(",")
    load_before = [round(x, 2) for x in os.getloadavg()]
    rows: list[dict[str, Any]] = []

    def write(partial: list[dict[str, Any]]) -> None:
        document = {
            "benchmark": "inventory",
            "command": "python benchmarks/inventory.py "
            + " ".join(sys.argv[1:] if argv is None else argv),
            "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": {**machine(), "load_average_before": load_before},
            "settings": {
                "fill_batch": FILL_BATCH,
                "fill_perceptual_rows": args.fill_perceptual,
                "batch": BATCH,
                "single_rows": SINGLE_ROWS,
                "repeats": args.repeats,
                "lookups": LOOKUPS,
                "backends": backends,
                "servers": "throw-away local servers (tests/servers.py), fsync off; "
                "PostgreSQL synchronous_commit=off",
            },
            "results": partial,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

    def keep(row: dict[str, Any]) -> None:
        rows.append(row)
        write(rows)  # after every backend: a long run keeps what it measured

    with (
        tempfile.TemporaryDirectory(prefix="inventory-bench-", dir=args.workdir) as folder,
        contextlib.ExitStack() as stack,
    ):
        servers = {b: _server(b, stack) for b in backends if b != "sqlite"}
        for size in sizes:
            run_size(size, backends, Path(folder), servers, args, keep)
    rows.sort(key=lambda r: (r["assets"], backends.index(r["backend"])))
    write(rows)
    if rows:  # none with --fill-only
        console.print(table(rows))
    console.print(f"load average before {load_before}, after {machine()['load_average_1_5_15']}")
    console.print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
