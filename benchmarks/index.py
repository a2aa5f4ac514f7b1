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
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import (
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
from provenance import index as index_module
from provenance import phash
from provenance.index import HammingIndex

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


def options(parser: argparse.ArgumentParser) -> None:
    """This benchmark's own options."""
    parser.add_argument(
        "--sizes",
        type=lambda text: tuple(int(float(x)) for x in text.split(",")),
        default=None,
        help="comma-separated row counts (default 1e6,1e7; 1e5 with --quick)",
    )
    parser.add_argument(
        "--real",
        action="store_true",
        help="also measure candidate fractions on corpus hashes at 10M rows (builds the corpus)",
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
