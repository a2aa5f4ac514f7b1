"""Hamming search at inventory scale: brute force vs multi-index hashing (DESIGN.md decision 7).

For each size (1M and 10M rows; 100k with ``--quick``) and each hash width
(64-bit, the imagehash-compatible width, and ``phash.WORDS`` words, the default
scheme's 256 bits) it measures:

* build time of the bands, save time, load time (memory-mapped) and the first
  query after a load (pages faulted in);
* query latency, p50 and p95 over the same queries, for the brute-force scan
  (chunked ``np.bitwise_count``) and for the index, paired query by query in
  one run, at the match radius (10 bits of 64; ``phash.MATCH_THRESHOLD`` of 256);
* memory: the raw hashes, the band structures, and their ratio (goal <= 2x).

Hashes are uniform random 64-bit words, and every query is a stored row with
``radius // 2`` bits flipped (so each query has a true match). Real perceptual
hashes are not uniform (some bands are skewed), which makes buckets uneven: the
figures here are the best case for the bands. Results are exact either way:
``tests/unit/test_index.py`` checks that both paths return the same rows.

Run::

    .venv/bin/python benchmarks/index.py            # 1M and 10M (about ten minutes)
    .venv/bin/python benchmarks/index.py --quick    # 100k (seconds)
    .venv/bin/python benchmarks/index.py --sizes 1e6  # chosen sizes only
    .venv/bin/python benchmarks/index.py --quick --real  # + candidates on real hashes

Per asset (``--assets``): whole lookups (every query hash of one file, 3 today)
over 22 rows per asset, on synthetic hashes drawn from a model fitted on real
reference rows (the corpus; sample_media with ``--quick``), with the resident
memory of the built and of the memory-mapped index and the build time.
``--layouts 15:10`` measures 15 stored rows and 10 query hashes (the dihedral rows
moved to the query side); ``--inventory N`` adds a verifier's cold start on an
inventory of N assets (build from the database, map the cache, refresh). Run one
size per process for clean memory figures::

    .venv/bin/python benchmarks/index.py --assets 1e6          # about ten minutes here
    .venv/bin/python benchmarks/index.py --quick --assets 2e4 --inventory 2e4

``--fleet`` measures :class:`~provenance.FleetIndex` instead (``_fleet.py``):
cold build from 1M-row chunks, whole lookups, private and mapped memory at each asset
count, then the real copies of ``robustness.py``'s transforms it loses or changes
against the exact search. The 10M run takes about 15 minutes here and peaks near 5 GB
of private memory plus the 7 GB hash file in the page cache::

    .venv/bin/python benchmarks/index.py --fleet 1e6            # + real copies (corpus)
    .venv/bin/python benchmarks/index.py --fleet 1e7 --no-real-copies
    .venv/bin/python benchmarks/index.py --quick --fleet 2e4    # seconds

``--fleet-verify N`` runs ``verify`` itself on every copy of ``robustness.py``'s
transforms, against an SQLite inventory of the corpus plus N planted assets, once
with the exact index and once with the FleetIndex, and reports the recall per
transform side by side (``_fleet_verify.py``)::

    .venv/bin/python benchmarks/index.py --fleet-verify 1e6
    .venv/bin/python benchmarks/index.py --quick --fleet-verify 2e3   # a minute
    .venv/bin/python benchmarks/index.py --fleet-verify 1e6 --planted-keypoints

``--fleet-server N`` builds the FleetIndex cold from a throw-away PostgreSQL
inventory of N assets (``_fleet_server.py``: rows drawn from the bit model, loaded by
binary COPY; every row read alone, a cold ``fleet_index``, lookups at probe radius 2
and 3, memory); ``--fleet-mariadb N`` reads and builds from MariaDB. A large fill can
be made once and measured again (its server keeps running until Ctrl-C)::

    .venv/bin/python benchmarks/index.py --fleet-server 1e6
    .venv/bin/python benchmarks/index.py --fleet-mariadb 2e5
    .venv/bin/python benchmarks/_fleet_server.py 3e6     # prints URL, keeps the server
    .venv/bin/python benchmarks/index.py --fleet-server 3e6 --server-url URL
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import (
    IMAGE_SUFFIXES,
    SAMPLE_MEDIA,
    console,
    fmt_bytes,
    fmt_ms,
    fmt_ratio,
    header,
    machine_info,
    parse_args,
    table,
    write_json,
)
from provenance._core import phash
from provenance._io.index import HammingIndex
from provenance._io.index import _bands as index_module

FULL_SIZES = (1_000_000, 10_000_000)
QUICK_SIZES = (100_000,)
FULL_QUERIES = 100
QUICK_QUERIES = 30


def widths() -> list[tuple[int, int]]:
    """(words per hash, match radius) pairs."""
    return [(1, 10), (phash.WORDS, phash.MATCH_THRESHOLD)]


def queries_for(rng: np.random.Generator, words: np.ndarray, count: int, flips: int) -> np.ndarray:
    rows = rng.choice(words.shape[0], size=count, replace=False)
    out = words[rows].copy()
    bits = words.shape[1] * 64
    for q in out:
        for b in rng.choice(bits, size=flips, replace=False):
            q[b // 64] ^= np.uint64(1) << np.uint64(b % 64)
    return out


def percentile(values: list[float], q: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, round(q * (len(data) - 1)))]


def run_case(
    n: int, words_per_hash: int, radius: int, queries: int, rng: np.random.Generator, tmp: Path
) -> dict[str, Any]:
    words = rng.integers(0, 2**64, size=(n, words_per_hash), dtype=np.uint64)
    qs = queries_for(rng, words, queries, radius // 2)
    started = time.perf_counter()
    index = HammingIndex(words, multi_index=True)
    build_s = time.perf_counter() - started
    brute = HammingIndex(words, multi_index=False)
    del words
    gc.collect()
    path = tmp / f"bench-{n}-{words_per_hash}.hidx"
    started = time.perf_counter()
    index.save(path)
    save_s = time.perf_counter() - started
    started = time.perf_counter()
    loaded = HammingIndex.load(path)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    first = loaded.query(qs[0], k=10, max_distance=radius)
    first_query_s = time.perf_counter() - started
    # Which path the index takes at this radius (None: it falls back to the scan).
    uses_bands = (
        index_module._probe(index._bands, index._words, len(index), qs[0], radius) is not None
    )
    for q in qs[:3]:  # warm-up, not recorded
        index.query(q, k=10, max_distance=radius)
        brute.query(q, k=10, max_distance=radius)
    t_index: list[float] = []
    t_brute: list[float] = []
    ratios: list[float] = []
    for i, q in enumerate(qs):
        pair = [("index", index), ("brute", brute)]
        if i % 2:
            pair.reverse()  # alternate the order so neither always runs second
        times = {}
        for name, which in pair:
            gc.disable()
            started = time.perf_counter_ns()
            found = which.query(q, k=10, max_distance=radius)
            times[name] = (time.perf_counter_ns() - started) / 1e6
            gc.enable()
            assert found, "every query has a planted match"
        t_index.append(times["index"])
        t_brute.append(times["brute"])
        ratios.append(times["brute"] / times["index"])
        if i < 5:
            assert index.query(q, k=10, max_distance=radius) == brute.query(
                q, k=10, max_distance=radius
            )
    assert first == brute.query(qs[0], k=10, max_distance=radius)
    file_bytes = path.stat().st_size
    path.unlink()
    return {
        "rows": n,
        "bits": 64 * words_per_hash,
        "radius": radius,
        "queries": len(qs),
        "bands": index.bands,
        "uses_bands": uses_bands,
        "build_s": build_s,
        "save_s": save_s,
        "load_s": load_s,
        "first_query_after_load_ms": first_query_s * 1e3,
        "index_p50_ms": statistics.median(t_index),
        "index_p95_ms": percentile(t_index, 0.95),
        "brute_p50_ms": statistics.median(t_brute),
        "brute_p95_ms": percentile(t_brute, 0.95),
        "speedup_median": statistics.median(ratios),
        "raw_bytes": index.raw_bytes,
        "index_bytes": index.index_bytes,
        "index_over_raw": index.index_bytes / index.raw_bytes,
        "file_bytes": file_bytes,
    }


def candidate_fractions(rows: int) -> dict[str, Any]:
    """Share of stored rows the bands of a ``rows``-row index would make candidates.

    On real hashes (the corpus: each image's reference rows, queried by a 2/3-size
    JPEG q75 copy of every image, its own rows left out) and on as many uniform
    random rows, for the default scheme at ``phash.MATCH_THRESHOLD``. The layout
    and radii are those :class:`HammingIndex` would use at ``rows`` rows; the
    fraction times ``rows`` is the candidate count to expect.
    """
    import io

    from PIL import Image

    from corpus import ensure

    refs, owner, queries = [], [], []
    for i, path in enumerate(ensure().paths()):
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        stored = phash.reference_hashes(image).words
        refs.append(stored)
        owner += [i] * stored.shape[0]
        small = image.resize((max(1, image.width * 2 // 3), max(1, image.height * 2 // 3)))
        buffer = io.BytesIO()
        small.save(buffer, "JPEG", quality=75)
        buffer.seek(0)
        with Image.open(buffer) as copy:
            queries.append(phash.query_hashes([copy])[0])
    real = np.concatenate(refs)
    owners = np.array(owner)
    plan = index_module._band_plan(rows, phash.WORDS)
    r = phash.MATCH_THRESHOLD
    found = index_module._radii(tuple(bits for _, _, bits in plan), r, rows)
    assert found is not None
    radii = found[1]

    def fraction(stored: np.ndarray, qs: np.ndarray, own: np.ndarray | None) -> float:
        shares = []
        for qi, q in enumerate(qs):
            hit = np.zeros(stored.shape[0], dtype=bool)
            for (word, shift, bits), radius in zip(plan, radii, strict=True):
                mask = np.uint64((1 << bits) - 1)
                diff = ((stored[:, word] ^ q[word]) >> np.uint64(shift)) & mask
                hit |= np.bitwise_count(diff) <= radius
            if own is not None:
                hit &= own != qi
            shares.append(float(hit.mean()))
        return statistics.mean(shares)

    rng = np.random.default_rng(1)
    uniform = rng.integers(0, 2**64, size=real.shape, dtype=np.uint64)
    u_queries = rng.integers(0, 2**64, size=(len(queries), phash.WORDS), dtype=np.uint64)
    return {
        "layout_rows": rows,
        "radii": list(radii),
        "real_rows": int(real.shape[0]),
        "real_queries": len(queries),
        "real_fraction": fraction(real, np.array(queries), owners),
        "uniform_fraction": fraction(uniform, u_queries, None),
    }


# --- per asset: synthetic hashes with the real hashes' bit statistics ---------------------


def real_reference_rows(quick: bool) -> np.ndarray:
    """Reference rows of real images: sample_media with ``--quick``, else the corpus."""
    from PIL import Image

    if quick:
        paths = sorted(p for p in SAMPLE_MEDIA.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        from corpus import ensure

        paths = ensure().paths()
    rows = []
    for path in paths:
        with Image.open(path) as opened:
            rows.append(phash.reference_hashes(opened.convert("RGB")).words)
    return np.concatenate(rows)


class BitModel:
    """Per-bit bias plus each bit's strongest earlier neighbour (a first-order chain).

    Fitted on real reference rows: every bit keeps its own probability of being
    set, and follows the earlier bit it is most correlated with through the two
    conditional probabilities, so nearly constant bits and correlated bits (what
    skews the buckets) come out as in real hashes. Rows are drawn independently:
    the rows of one synthetic asset are not related to each other as a real
    asset's flips and windows are.
    """

    def __init__(self, rows: np.ndarray) -> None:
        bits = np.unpackbits(rows.astype("<u8").view(np.uint8), axis=1, bitorder="little")
        bits = bits.astype(np.float64)
        n, width = bits.shape
        self.width = width
        self.p = (bits.sum(axis=0) + 1) / (n + 2)
        centred = bits - bits.mean(axis=0)
        std = np.sqrt((centred**2).mean(axis=0)) + 1e-9
        corr = (centred.T @ centred) / n / np.outer(std, std)
        self.parent = np.full(width, -1)
        self.p_given = np.zeros((width, 2))
        for i in range(1, width):
            j = int(np.argmax(np.abs(corr[i, :i])))
            if abs(corr[i, j]) < 0.05:
                continue
            self.parent[i] = j
            for value in (0, 1):
                on = bits[:, j] == value
                self.p_given[i, value] = (bits[on, i].sum() + 1) / (on.sum() + 2)
        self.mean_abs_corr = float(np.abs(corr[np.triu_indices(width, 1)]).mean())
        self._pool: np.ndarray | None = None
        self.extreme_bits = int(((self.p < 0.1) | (self.p > 0.9)).sum())

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``(n, width / 64)`` uint64 rows.

        Past :data:`POOL_ROWS` rows, each 16-bit piece of a row is that piece of
        a random row of a pool drawn from the chain: per-bit bias and the
        correlation within 16 bits stay, at a fraction of the chain's cost.
        """
        if n <= POOL_ROWS:
            return self._chain(rng, n)
        return self.sample_pooled(rng, n)

    def sample_pooled(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """:meth:`sample`'s pieces of pool rows, the pool drawn once per model (for chunks)."""
        if self._pool is None:
            self._pool = self._chain(rng, POOL_ROWS).view(np.uint16)  # (POOL_ROWS, width / 16)
        pool = self._pool
        pieces = pool.shape[1]
        out = np.empty((n, pieces), dtype=np.uint16)
        step = 1 << 21
        for lo in range(0, n, step):
            m = min(step, n - lo)
            for c in range(pieces):
                out[lo : lo + m, c] = pool[rng.integers(0, POOL_ROWS, size=m), c]
        return out.view(np.uint64)

    def _chain(self, rng: np.random.Generator, n: int) -> np.ndarray:
        out = np.empty((n, self.width // 64), dtype=np.uint64)
        # Probabilities as 16-bit thresholds; one bit's column is contiguous.
        scale = float(1 << 16)
        free = np.round(self.p * scale).astype(np.uint32)
        given = np.round(self.p_given * scale).astype(np.uint32)
        step = 1 << 18
        for lo in range(0, n, step):
            m = min(step, n - lo)
            bits = np.empty((self.width, m), dtype=bool)
            draws = rng.integers(0, 1 << 16, size=(self.width, m), dtype=np.uint16)
            for i in range(self.width):
                j = self.parent[i]
                if j < 0:
                    np.less(draws[i], free[i], out=bits[i])
                else:
                    threshold = np.where(bits[j], given[i, 1], given[i, 0])
                    np.less(draws[i], threshold, out=bits[i])
            packed = np.ascontiguousarray(np.packbits(bits, axis=0, bitorder="little").T)
            out[lo : lo + m] = packed.view("<u8")
        return out


POOL_ROWS = 1 << 20


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc/self/statm``)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def flip(rng: np.random.Generator, row: np.ndarray, count: int) -> np.ndarray:
    """``row`` with ``count`` distinct bits flipped."""
    out = row.copy()
    for b in rng.choice(row.shape[0] * 64, size=count, replace=False):
        out[b // 64] ^= np.uint64(1) << np.uint64(b % 64)
    return out


def run_assets(
    assets: int,
    per_asset: int,
    per_lookup: int,
    model: BitModel,
    lookups: int,
    rng: np.random.Generator,
    tmp: Path,
) -> dict[str, Any]:
    """Whole lookups (``per_lookup`` query hashes) over ``assets`` x ``per_asset`` rows.

    A lookup is what ``verify`` asks the index for one file: each query hash is
    a row of one stored asset with a quarter of the threshold to half of it in
    bits flipped, asked with ``find_perceptual``'s ``k`` at
    ``phash.MATCH_THRESHOLD``. Memory is the process's resident set before and
    after (the built index, and the saved index memory-mapped after the lookups,
    as a verifier that loads the cache has it).
    """
    r = phash.MATCH_THRESHOLD
    n = assets * per_asset
    gc.collect()
    rss0 = rss_bytes()
    started = time.perf_counter()
    words = model.sample(rng, n)
    generate_s = time.perf_counter() - started
    targets = rng.choice(assets, size=lookups, replace=False)
    qsets = [
        np.stack(
            [
                flip(rng, words[a * per_asset + (v % per_asset)], int(rng.integers(r // 4, r // 2)))
                for v in range(per_lookup)
            ]
        )
        for a in targets
    ]
    started = time.perf_counter()
    index = HammingIndex(words, ids=np.arange(n, dtype=np.int64) // per_asset, multi_index=True)
    build_s = time.perf_counter() - started
    del words
    gc.collect()
    rss_built = rss_bytes() - rss0

    def lookup(which: HammingIndex, qs: np.ndarray) -> float:
        gc.disable()
        started = time.perf_counter_ns()
        for q in qs:
            which.query(q, k=160, max_distance=r)
        elapsed = (time.perf_counter_ns() - started) / 1e6
        gc.enable()
        return elapsed

    for qs in qsets[:3]:
        lookup(index, qs)
    times = [lookup(index, qs) for qs in qsets]
    found = sum(
        any(h.row_id == a for h in index.query(qs[0], k=160, max_distance=r))
        for a, qs in zip(targets[:20], qsets[:20], strict=True)
    )
    path = tmp / f"assets-{assets}-{per_asset}.hidx"
    started = time.perf_counter()
    index.save(path)
    save_s = time.perf_counter() - started
    raw, bands, nbands = index.raw_bytes, index.index_bytes, index.bands
    del index
    gc.collect()
    rss1 = rss_bytes()
    loaded = HammingIndex.load(path)
    mapped_times = [lookup(loaded, qs) for qs in qsets]
    rss_mapped = rss_bytes() - rss1
    del loaded
    path.unlink()
    return {
        "assets": assets,
        "rows_per_asset": per_asset,
        "hashes_per_lookup": per_lookup,
        "rows": n,
        "lookups": lookups,
        "bands": nbands,
        "generate_s": generate_s,
        "build_s": build_s,
        "save_s": save_s,
        "lookup_p50_ms": statistics.median(times),
        "lookup_p99_ms": percentile(times, 0.99),
        "mapped_lookup_p50_ms": statistics.median(mapped_times),
        "mapped_lookup_p99_ms": percentile(mapped_times, 0.99),
        "raw_bytes": raw,
        "band_bytes": bands,
        "rss_built_bytes": rss_built,
        "rss_mapped_after_lookups_bytes": rss_mapped,
        "planted_found_of_20": int(found),
    }


def run_inventory(
    assets: int, per_asset: int, model: BitModel, rng: np.random.Generator, tmp: Path
) -> dict[str, Any]:
    """A verifier's cold start on an inventory of ``assets`` x ``per_asset`` rows.

    The rows go in through ``Inventory.add_perceptual`` (under one recorded
    asset, as variant names: the read path does not care whose rows they are).
    Then a new handle builds the index from the database with no cache file (read
    + bands + writing the cache), another maps the cache, and one more refreshes
    after 1% more rows arrive.
    """
    from datetime import datetime, timezone

    from provenance._core.record import ProvenanceRecord
    from provenance._core.types import SignResult
    from provenance.inventory import Inventory

    db = tmp / f"inventory-{assets}.sqlite"
    n = assets * per_asset
    words = model.sample(rng, n + n // 100)
    stamp = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with Inventory(db, durable=False) as inv:
        result = SignResult(
            path=None,
            asset_id="asset-bench",
            sha256_hex="a" * 64,
            essence_sha256_hex="b" * 64,
            input_sha256_hex="c" * 64,
            bytes_added=1,
            active_manifest=None,
            record=ProvenanceRecord.from_json(
                (SAMPLE_MEDIA / "forest-path.jpg.json").read_text("utf-8")
            ),
        )
        inv.record_signing(result, signer="CN=bench", now=stamp)

        def add(lo: int, hi: int) -> None:
            for start in range(lo, hi, 100_000):
                stop = min(start + 100_000, hi)
                inv.add_perceptual(
                    "asset-bench",
                    phash.ReferenceHashes(
                        words=words[start:stop],
                        variants=tuple(f"v{i}" for i in range(start, stop)),
                        descriptor=b"",
                    ),
                )

        started = time.perf_counter()
        add(0, n)
        fill_s = time.perf_counter() - started
    cache = db.with_name(f"{db.name}.{phash.SCHEME}.hidx")
    q = flip(rng, words[n // 2], phash.MATCH_THRESHOLD // 3)
    gc.collect()
    rss0 = rss_bytes()
    with Inventory(db) as inv:
        started = time.perf_counter()
        index = inv.perceptual_index(phash.SCHEME)
        cold_s = time.perf_counter() - started
        rss_cold = rss_bytes() - rss0
        assert len(index) == n
        del index
    gc.collect()
    rss1 = rss_bytes()
    with Inventory(db, index_refresh_s=10) as inv:
        started = time.perf_counter()
        inv.perceptual_index(phash.SCHEME)
        mapped_s = time.perf_counter() - started
        started = time.perf_counter()
        hits = inv.find_perceptual(q, scheme=phash.SCHEME, max_distance=phash.MATCH_THRESHOLD)
        first_lookup_ms = (time.perf_counter() - started) * 1e3
        assert hits
        rss_mapped = rss_bytes() - rss1
        with Inventory(db, durable=False) as writer:
            inv_add = writer.add_perceptual
            for start in range(n, n + n // 100, 100_000):
                stop = min(start + 100_000, n + n // 100)
                inv_add(
                    "asset-bench",
                    phash.ReferenceHashes(
                        words=words[start:stop],
                        variants=tuple(f"v{i}" for i in range(start, stop)),
                        descriptor=b"",
                    ),
                )
        inv._indexes._index_checked.clear()  # as if index_refresh_s had passed
        started = time.perf_counter()
        refreshed = inv.perceptual_index(phash.SCHEME)
        refresh_s = time.perf_counter() - started
        assert len(refreshed) == n + n // 100
    db_bytes = db.stat().st_size
    cache_bytes = cache.stat().st_size
    for path in tmp.glob(f"{db.name}*"):
        path.unlink()
    return {
        "assets": assets,
        "rows_per_asset": per_asset,
        "rows": n,
        "fill_s": fill_s,
        "cold_build_s": cold_s,
        "rss_cold_bytes": rss_cold,
        "cache_map_s": mapped_s,
        "first_lookup_after_map_ms": first_lookup_ms,
        "rss_mapped_bytes": rss_mapped,
        "refresh_1pct_s": refresh_s,
        "db_bytes": db_bytes,
        "cache_bytes": cache_bytes,
    }


def run_asset_cases(args: argparse.Namespace, info: dict[str, Any]) -> dict[str, Any]:
    """The per-asset figures (``--assets``): one row per (assets, layout)."""
    started = time.perf_counter()
    real = real_reference_rows(args.quick)
    model = BitModel(real)
    console.print(
        f"bit model from {real.shape[0]:,} real rows ({time.perf_counter() - started:.0f} s): "
        f"{model.extreme_bits} bits set <10% or >90% of the time, "
        f"mean |correlation| {model.mean_abs_corr:.3f}"
    )
    rng = np.random.default_rng(args.seed)
    results = []
    inventories = []
    with tempfile.TemporaryDirectory(prefix="provenance-bench-index-") as folder:
        for assets in args.inventory or ():
            console.print(f"inventory of {assets:,} assets x 22 rows: cold start ...")
            inventories.append(run_inventory(assets, 22, model, rng, Path(folder)))
            gc.collect()
        for assets in args.assets:
            for per_asset, per_lookup in args.layouts:
                console.print(f"{assets:,} assets x {per_asset} rows, {per_lookup} hashes ...")
                results.append(
                    run_assets(
                        assets,
                        per_asset,
                        per_lookup,
                        model,
                        QUICK_QUERIES if args.quick else FULL_QUERIES,
                        rng,
                        Path(folder),
                    )
                )
                gc.collect()
    rows = [
        (
            f"{r['assets']:,} x {r['rows_per_asset']} rows",
            str(r["hashes_per_lookup"]),
            str(r["bands"]),
            fmt_ms(r["lookup_p50_ms"]),
            fmt_ms(r["lookup_p99_ms"]),
            fmt_ms(r["mapped_lookup_p50_ms"]),
            fmt_ms(r["mapped_lookup_p99_ms"]),
            fmt_bytes(r["raw_bytes"]),
            fmt_bytes(r["band_bytes"]),
            fmt_bytes(r["rss_built_bytes"]),
            fmt_bytes(r["rss_mapped_after_lookups_bytes"]),
            f"{r['build_s']:.1f}",
        )
        for r in results
    ]
    console.print(
        table(
            "Whole lookups per asset (ms per lookup of all query hashes)",
            (
                "assets",
                "hashes",
                "bands",
                "p50",
                "p99",
                "mapped p50",
                "mapped p99",
                "raw",
                "bands mem",
                "RSS built",
                "RSS mapped",
                "build s",
            ),
            rows,
            caption="Synthetic hashes with the real rows' per-bit bias and strongest "
            "pairwise correlation; medians on a machine shared with other jobs.",
        )
    )
    if inventories:
        console.print(
            table(
                "A verifier's cold start on an inventory (Inventory.perceptual_index)",
                (
                    "assets",
                    "rows",
                    "cold build s",
                    "RSS cold",
                    "map cache s",
                    "1st lookup ms",
                    "RSS mapped",
                    "refresh +1% s",
                    "db",
                    "cache",
                ),
                [
                    (
                        f"{r['assets']:,}",
                        f"{r['rows']:,}",
                        f"{r['cold_build_s']:.1f}",
                        fmt_bytes(r["rss_cold_bytes"]),
                        f"{r['cache_map_s']:.2f}",
                        fmt_ms(r["first_lookup_after_map_ms"]),
                        fmt_bytes(r["rss_mapped_bytes"]),
                        f"{r['refresh_1pct_s']:.2f}",
                        fmt_bytes(r["db_bytes"]),
                        fmt_bytes(r["cache_bytes"]),
                    )
                    for r in inventories
                ],
            )
        )
    return {
        "inventories": inventories,
        "bit_model": {
            "real_rows": int(real.shape[0]),
            "extreme_bits": model.extreme_bits,
            "mean_abs_corr": model.mean_abs_corr,
        },
        "results": results,
    }


def run_fleet_cases(args: argparse.Namespace) -> dict[str, Any]:
    """``--fleet``: FleetIndex at each asset count, then real copies against the exact search."""
    import _fleet

    started = time.perf_counter()
    real = real_reference_rows(args.quick)
    model = BitModel(real)
    console.print(
        f"bit model from {real.shape[0]:,} real rows ({time.perf_counter() - started:.0f} s)"
    )
    rng = np.random.default_rng(args.seed)
    results = []
    with tempfile.TemporaryDirectory(prefix="provenance-bench-fleet-") as folder:
        for assets in args.fleet:
            console.print(f"FleetIndex: {assets:,} assets x {_fleet.ROWS_PER_ASSET} rows ...")
            lookups = min(assets, _fleet.LOOKUPS)
            results.append(_fleet.run_fleet(assets, model, lookups, rng, Path(folder)))
            gc.collect()
    console.print(
        table(
            "FleetIndex: whole lookups (3 query hashes, 51 bits) over 22 rows per asset, "
            "p50 / p99 ms (medians of repeats)",
            (
                "assets",
                "rows",
                "segments",
                "build s",
                "planted r=2",
                "planted r=3",
                "stranger r=2",
                "stranger r=3",
                "found r=2 / r=3",
                "private RSS",
                "tables",
                "hash file",
                "file resident",
            ),
            [
                (
                    f"{r['assets']:,}",
                    f"{r['rows']:,}",
                    str(r["segments"]),
                    f"{r['build_s']:.0f}",
                    *(
                        f"{fmt_ms(r['lookups_by_radius'][case]['p50_ms'])} / "
                        f"{fmt_ms(r['lookups_by_radius'][case]['p99_ms'])}"
                        for case in ("r2_planted", "r3_planted", "r2_stranger", "r3_stranger")
                    ),
                    f"{r['lookups_by_radius']['r2_planted']['found']} / "
                    f"{r['lookups_by_radius']['r3_planted']['found']} of {r['lookups']}",
                    fmt_bytes(r["private_rss_after_lookups_bytes"]),
                    fmt_bytes(r["table_bytes"]),
                    fmt_bytes(r["hash_file_bytes"]),
                    fmt_bytes(r["mapped_rss_after_lookups_bytes"]),
                )
                for r in results
            ],
            caption=_fleet.rss_note(),
        )
    )
    if args.no_real_copies:
        return {"results": results}
    console.print("real copies: the exact search against the FleetIndex ...")
    recall = _fleet.real_recall(args.quick, args.seed)
    for label, row in recall["keys"].items():
        console.print(
            f"  {label} ({row['key_bits']}-bit keys): {row['lost']} of {row['found_by_exact']} "
            f"copies the exact search finds are lost {row['lost_by_transform']}; "
            f"{row['changed']} found with another row or distance"
        )
    return {"results": results, "real_copies": recall}


def run_fleet_verify(args: argparse.Namespace) -> dict[str, Any]:
    """``--fleet-verify``: verify's recall with each index over the corpus plus planted assets."""
    import _fleet_verify

    real = real_reference_rows(args.quick)
    model = BitModel(real)
    results = []
    with tempfile.TemporaryDirectory(prefix="provenance-bench-fleet-verify-") as folder:
        for planted in args.fleet_verify:
            console.print(f"verify, exact vs fleet index: corpus + {planted:,} planted assets ...")
            result = _fleet_verify.fleet_verify(
                planted,
                quick=args.quick,
                seed=args.seed,
                model=model,
                tmp=Path(folder),
                planted_keypoints=args.planted_keypoints,
            )
            results.append(result)
            builds = ", ".join(
                f"{r['mode']} {r['cold_build_s']:.1f} s ({r['rows']:,} rows, "
                f"{r['rows_per_s']:,.0f} rows/s), verify p50 {r['verify_p50_ms']:.0f} ms "
                f"p99 {r['verify_p99_ms']:.0f} ms"
                for r in result["runs"]
            )
            console.print(
                f"  filled in {result['fill_s']:.0f} s ({fmt_bytes(result['db_bytes'])}); "
                f"cold index from SQLite: {builds}"
            )
            console.print(
                table(
                    f"verify recall per transform: corpus + {planted:,} planted assets",
                    (
                        "transform",
                        "copies",
                        "exact: phash",
                        "exact: keypoints",
                        "fleet: phash",
                        "fleet: keypoints",
                        "exact: false",
                        "fleet: false",
                    ),
                    _fleet_verify.rows_for_table(result),
                    caption="found = synthetic_duplicate of its own original (or its twin); "
                    "false = synthetic_duplicate of any other asset",
                )
            )
            console.print(
                table(
                    "whole verify per outcome, ms (CPU of this process / wall)",
                    ("index", "outcome", "copies", "CPU p50/p95/p99", "wall p50/p95/p99"),
                    _fleet_verify.timing_rows(result),
                    caption="fell through = every copy the perceptual step did not find "
                    "(found by keypoints, or not at all)",
                )
            )
    return {"results": results}


def run_fleet_server(args: argparse.Namespace) -> dict[str, Any]:
    """``--fleet-server``: a verifier's cold FleetIndex build from a PostgreSQL inventory."""
    import _fleet_mariadb
    import _fleet_server

    started = time.perf_counter()
    model = BitModel(real_reference_rows(args.quick))
    console.print(f"bit model from real rows ({time.perf_counter() - started:.0f} s)")
    rng = np.random.default_rng(args.seed)
    results = []
    postgresql = {"span_check": args.span_check}  # the option only its span has
    servers = (
        ("PostgreSQL", args.fleet_server, _fleet_server.fleet_from_server, postgresql),
        ("MariaDB", args.fleet_mariadb, _fleet_mariadb.mariadb_from_server, {}),
    )
    for label, sizes, measure, extra in servers:
        for assets in sizes or ():
            prefix = f"provenance-bench-fleet-{label.lower()}-"
            with tempfile.TemporaryDirectory(prefix=prefix) as folder:
                console.print(f"FleetIndex from {label}: {assets:,} assets x 22 rows ...")
                r = measure(
                    assets,
                    Path(folder),
                    model=model,
                    rng=rng,
                    url=args.server_url,
                    read_alone=not args.skip_read,
                    pack_repeats=args.pack,
                    unpacked_repeats=args.unpacked,
                    **extra,
                )
            results.append(r)
            console.print(
                f"  read {r['rows']:,} rows in {r['read_s']:.1f} s "
                f"({r['read_rows_per_s']:,.0f} rows/s); cold fleet_index {r['cold_build_s']:.1f} s "
                f"(CPU client {r['build_client_cpu_s']:.0f} s, server "
                f"{r['build_server_cpu_s']:.0f} s; load {r['load_average']:.1f}; "
                f"peak RSS {fmt_bytes(r['peak_rss_bytes'])})"
            )
    console.print(
        table(
            "FleetIndex cold build from PostgreSQL (packed pages; hashes memory-mapped)",
            (
                "assets",
                "rows",
                "read rows/s",
                "read s",
                "cold build s",
                "CPU client / server s",
                "load",
                "tables",
                "hash file",
                "peak RSS",
                "lookup p50/p99 (r=2)",
                "lookup p50/p99 (r=3)",
                "found (r=3)",
            ),
            [
                (
                    f"{r['assets']:,}",
                    f"{r['rows']:,}",
                    f"{r['read_rows_per_s']:,.0f}",
                    f"{r['read_s']:.1f}",
                    f"{r['cold_build_s']:.1f}",
                    f"{r['build_client_cpu_s']:.0f} / {r['build_server_cpu_s']:.0f}",
                    f"{r['load_average']:.1f}",
                    fmt_bytes(r["table_bytes"]),
                    fmt_bytes(r["hash_file_bytes"]),
                    fmt_bytes(r["peak_rss_bytes"]),
                    f"{fmt_ms(r['r2_lookup_p50_ms'])} / {fmt_ms(r['r2_lookup_p99_ms'])}",
                    f"{fmt_ms(r['r3_lookup_p50_ms'])} / {fmt_ms(r['r3_lookup_p99_ms'])}",
                    f"{r['r3_planted_found']}/{r['lookups']}",
                )
                for r in results
                if r["backend"] == "postgresql"
            ],
            caption="cold build = Inventory.fleet_index from a new handle: every row read "
            "and the tables built; machine shared (see load in the header)",
        )
    )
    mariadb = [r for r in results if r["backend"] == "mariadb"]
    if mariadb:
        console.print(
            table(
                "FleetIndex cold build from MariaDB (key ranges on two connections)",
                ("assets", "rows", "cold build s", "CPU client / server s", "server us/row",
                 "load", "tables", "hash file", "peak RSS", "lookup p50/p99 (r=3)",
                 "found (r=3)"),
                [
                    (
                        f"{r['assets']:,}",
                        f"{r['rows']:,}",
                        f"{r['cold_build_s']:.1f}",
                        f"{r['build_client_cpu_s']:.1f} / {r['build_server_cpu_s']:.1f}",
                        f"{r['server_cpu_us_per_row']:.2f}",
                        f"{r['load_average']:.1f}",
                        fmt_bytes(r["table_bytes"]),
                        fmt_bytes(r["hash_file_bytes"]),
                        fmt_bytes(r["peak_rss_bytes"]),
                        f"{r['r3_lookup_p50_ms']:.2f} / {r['r3_lookup_p99_ms']:.2f}",
                        f"{r['r3_planted_found']}/{r['lookups']}",
                    )
                    for r in mariadb
                ],
                caption="server CPU = the mariadbd process (every thread) from /proc; "
                "machine shared (see load)",
            )
        )  # fmt: skip
    _print_packs(results)
    return {"results": results}


def _print_packs(results: list[dict[str, Any]]) -> None:
    """``--pack``: cold builds without and with packs, and the pack command, per server."""
    rows = []
    for r in results:
        p = r.get("packs")
        if p is None:
            continue
        for name, median, builds in (
            ("rows (spans)", p["unpacked_median"], p["unpacked_builds"]),
            ("packs", p["packed_median"], p["packed_builds"]),
        ):
            rows.append((
                r["backend"], f"{r['assets']:,}", name, f"{median['cold_build_s']:.1f}",
                f"{median['build_client_cpu_s']:.1f} / {median['build_server_cpu_s']:.1f}",
                f"{median['build_server_cpu_s'] / r['rows'] * 1e6:.3f}",
                ", ".join(f"{b['cold_build_s']:.1f}" for b in builds),
            ))  # fmt: skip
        pack = p["pack"]
        rows.append((
            r["backend"], f"{r['assets']:,}", f"inventory pack ({pack['ranges_packed']} packs)",
            f"{pack['seconds']:.1f}", f"{pack['client_cpu_s']:.1f} / {pack['server_cpu_s']:.1f}",
            f"{pack['server_cpu_s'] / max(1, pack['rows_packed']) * 1e6:.3f}", "",
        ))  # fmt: skip
    if rows:
        console.print(
            table(
                "Cold FleetIndex build from the server, without and with packs (medians)",
                ("server", "assets", "read from", "wall s", "CPU client / server s",
                 "server us/row", "each build s"),
                rows,
                caption="server CPU from /proc, client from getrusage; machine shared",
            )
        )  # fmt: skip


def _counts(text: str) -> tuple[int, ...]:
    """``"1e6,1e7"`` -> ``(1000000, 10000000)``: asset or row counts, in any float spelling."""
    return tuple(int(float(x)) for x in text.split(","))


def options(parser: argparse.ArgumentParser) -> None:
    """This benchmark's own options."""
    parser.add_argument(
        "--sizes",
        type=_counts,
        default=None,
        help="comma-separated row counts (default 1e6,1e7; 1e5 with --quick)",
    )
    parser.add_argument(
        "--real",
        action="store_true",
        help="also measure candidate fractions on corpus hashes at 10M rows (builds the corpus)",
    )
    parser.add_argument(
        "--assets",
        type=_counts,
        default=None,
        help="per-asset whole lookups at these asset counts instead of the per-row cases "
        "(e.g. 1e6,1e7; synthetic hashes fitted on the corpus, sample_media with --quick)",
    )
    parser.add_argument(
        "--inventory",
        type=_counts,
        default=None,
        help="with --assets: also a verifier's cold start on an inventory of this many assets",
    )
    parser.add_argument(
        "--fleet",
        type=_counts,
        default=None,
        help="FleetIndex at these asset counts (e.g. 1e6,1e7: cold build, whole lookups, "
        "memory), plus its lost matches on real copies against the exact search",
    )
    parser.add_argument(
        "--fleet-verify",
        type=_counts,
        default=None,
        help="verify every robustness.py copy through an inventory of the corpus plus this "
        "many planted assets, with the exact index and with the FleetIndex (recall side by side)",
    )
    parser.add_argument(
        "--planted-keypoints",
        action="store_true",
        help="with --fleet-verify: the planted assets also get keypoint rows (robustness.py's "
        "synthetic descriptor model) and the keypoint cache is built; fold-0 copies only",
    )
    parser.add_argument(
        "--fleet-server",
        type=_counts,
        default=None,
        help="a verifier's cold FleetIndex build from a throw-away PostgreSQL inventory of "
        "this many assets (rows/s of perceptual_chunks, build time)",
    )
    parser.add_argument(
        "--fleet-mariadb",
        type=_counts,
        default=None,
        help="with --fleet-server: also every row read and a cold FleetIndex from a "
        "throw-away MariaDB inventory of this many assets (rows fetched page by page)",
    )
    parser.add_argument(
        "--span-check",
        action="store_true",
        help="with --fleet-server: also the server CPU of a span page with and without "
        "its order check (8 pages x 3 rounds each way)",
    )
    parser.add_argument(
        "--pack",
        type=int,
        default=0,
        metavar="REPEATS",
        help="with --fleet-server/--fleet-mariadb: after the cold build, REPEATS cold builds "
        "from the rows (the first one included), `inventory pack`, then REPEATS cold builds "
        "from the packs (medians; e.g. --pack 3)",
    )
    parser.add_argument(
        "--unpacked",
        type=int,
        default=None,
        metavar="REPEATS",
        help="with --pack: this many cold builds from the rows instead of --pack's count "
        "(at least 1, the first build; e.g. --pack 3 --unpacked 1 at 10M assets)",
    )
    parser.add_argument(
        "--skip-read",
        action="store_true",
        help="with --fleet-server: skip reading every row alone (the cold build still does)",
    )
    parser.add_argument(
        "--server-url",
        default=None,
        help="with --fleet-server N: measure this inventory, already planted by "
        "`python benchmarks/_fleet_server.py N` (which keeps its server running)",
    )
    parser.add_argument(
        "--no-real-copies",
        action="store_true",
        help="with --fleet: skip the real copies (minutes on the corpus)",
    )
    parser.add_argument(
        "--layouts",
        type=lambda text: tuple(tuple(int(x) for x in pair.split(":")) for pair in text.split(",")),
        default=((22, 3),),
        help="rows per asset : hashes per lookup, comma-separated (default 22:3, as stored "
        "today; 15:10 is the dihedral rows moved to the query side)",
    )


def main() -> None:
    args = parse_args(
        "index",
        "Hamming index: brute force vs multi-index hashing, 1M and 10M hashes.",
        default_repeats=1,
        quick_repeats=1,
        extra=options,
    )
    info = machine_info()
    header("index", info, args)
    if args.fleet_server or args.fleet_mariadb:
        payload = {"benchmark": "index-fleet-server", "machine": info, **run_fleet_server(args)}
        write_json(args.out, payload)
        console.print(f"results -> {args.out}")
        return
    if args.fleet_verify:
        payload = {"benchmark": "index-fleet-verify", "machine": info, **run_fleet_verify(args)}
        write_json(args.out, payload)
        console.print(f"results -> {args.out}")
        return
    if args.fleet:
        payload = {"benchmark": "index-fleet", "machine": info, **run_fleet_cases(args)}
        write_json(args.out, payload)
        console.print(f"results -> {args.out}")
        return
    if args.assets:
        payload = {"benchmark": "index-assets", "machine": info, **run_asset_cases(args, info)}
        write_json(args.out, payload)
        console.print(f"results -> {args.out}")
        return
    sizes = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    queries = QUICK_QUERIES if args.quick else FULL_QUERIES
    rng = np.random.default_rng(args.seed)
    results = []
    with tempfile.TemporaryDirectory(prefix="provenance-bench-index-") as folder:
        for n in sizes:
            for words_per_hash, radius in widths():
                console.print(f"{n:,} rows x {64 * words_per_hash} bits, radius {radius} ...")
                results.append(run_case(n, words_per_hash, radius, queries, rng, Path(folder)))
                gc.collect()
    rows = [
        (
            f"{r['rows']:,} x {r['bits']} bit (r={r['radius']})",
            f"{r['bands']}{'' if r['uses_bands'] else ' (scan)'}",
            fmt_ms(r["brute_p50_ms"]),
            fmt_ms(r["brute_p95_ms"]),
            fmt_ms(r["index_p50_ms"]),
            fmt_ms(r["index_p95_ms"]),
            fmt_ratio(r["speedup_median"]),
            fmt_bytes(r["raw_bytes"]),
            fmt_bytes(r["index_bytes"]),
            f"{r['index_over_raw']:.2f}x",
            f"{r['build_s']:.1f}",
            f"{r['load_s'] * 1e3:.1f}",
            fmt_ms(r["first_query_after_load_ms"]),
        )
        for r in results
    ]
    console.print(
        table(
            "Hamming search: brute force vs multi-index hashing (ms per query)",
            (
                "hashes",
                "bands",
                "scan p50",
                "scan p95",
                "index p50",
                "index p95",
                "speed-up",
                "raw",
                "bands mem",
                "mem ratio",
                "build s",
                "load ms",
                "1st query ms",
            ),
            rows,
            caption="speed-up: median over queries of scan/index, paired. "
            "Uniform random hashes; each query is a stored row with radius/2 bits flipped.",
        )
    )
    payload: dict[str, Any] = {"benchmark": "index", "machine": info, "results": results}
    if args.real:
        real = candidate_fractions(FULL_SIZES[-1])
        payload["candidates"] = real
        console.print(
            f"candidates at {real['layout_rows']:,} rows, radii {real['radii']}: "
            f"real {real['real_fraction']:.2%} of rows ({real['real_rows']} rows, "
            f"{real['real_queries']} queries), uniform {real['uniform_fraction']:.2%}"
        )
    write_json(args.out, payload)
    console.print(f"results -> {args.out}")


if __name__ == "__main__":
    main()
