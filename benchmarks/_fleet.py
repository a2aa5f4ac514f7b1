"""FleetIndex figures for ``benchmarks/index.py --fleet`` (issue 16): 1M and 10M assets.

Two parts:

* **At scale** (:func:`run_fleet`): ``assets`` x 22 synthetic rows drawn from the
  bit model fitted on real reference rows (``index.BitModel``), fed to a
  :class:`~provenance.FleetIndex` as a store would (chunks of 1M rows in id
  order, hashes spilled to a memory-mapped file), then whole lookups of 3 query
  hashes: rows of one planted asset with 12-25 bits flipped, and a stranger's
  (hashes drawn from the bit model, matching nothing), each at probe radius 2 and 3
  (:data:`REPEATS` passes; medians of their p50/p99, wall and CPU). Reports the
  cold build (generation excluded), lookups, and memory: the process's private
  (anonymous) resident memory added by the index, and its hash file, mapped
  from the page cache (the resident pages of it are reported too).
* **Real copies** (:func:`real_recall`): every transform of
  ``benchmarks/robustness.py`` applied to every corpus photo (sample_media with
  ``--quick``), looked up against the originals' real reference rows (19-23 each)
  by the exact search (what ``Inventory.find_perceptual`` answers today: the
  nearest row of any query hash within ``phash.MATCH_THRESHOLD``) and by the
  FleetIndex with the key width it uses at 1M and at 10M assets, at probe radius
  2 (the index's default) and 3 (verify's). A copy the
  exact search finds and the FleetIndex misses is *lost*; one it finds must
  have the same nearest row and distance.
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from provenance import FleetIndex, RowChunk
from provenance._core import phash

ROWS_PER_ASSET = 22
HASHES_PER_LOOKUP = 3
CHUNK_ROWS = 1 << 20
# Probe radii timed: the index's default and verify's (FLEET_PROBE_RADIUS).
PROBE_RADII = (2, 3)
# Whole lookups of each kind (planted, stranger) per radius.
LOOKUPS = 200
# Passes over the lookups; the reported p50/p99 are the medians of the passes'.
REPEATS = 3


def memory() -> dict[str, int]:
    """This process's resident memory: private (anonymous) and file-backed, in bytes."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("RssAnon", "RssFile", "VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) * 1024
    return out


def flip(rng: np.random.Generator, row: np.ndarray, count: int) -> np.ndarray:
    out = row.copy()
    for b in rng.choice(row.shape[0] * 64, size=count, replace=False):
        out[b // 64] ^= np.uint64(1) << np.uint64(b % 64)
    return out


def run_fleet(
    assets: int, model: Any, lookups: int, rng: np.random.Generator, tmp: Path
) -> dict[str, Any]:
    """Cold build, lookups and memory of a FleetIndex over ``assets`` x 22 rows."""
    r = phash.MATCH_THRESHOLD
    n = assets * ROWS_PER_ASSET
    targets = np.sort(rng.choice(assets, size=lookups, replace=False))
    planted: dict[int, np.ndarray] = {}
    generate_s = 0.0

    def chunks() -> Iterator[RowChunk]:
        nonlocal generate_s
        for lo in range(0, n, CHUNK_ROWS):
            started = time.perf_counter()
            hi = min(n, lo + CHUNK_ROWS)
            words = model.sample_pooled(rng, hi - lo)
            rows = np.arange(lo, hi, dtype=np.int64)
            owners = rows // ROWS_PER_ASSET
            first, last = owners[0], owners[-1]
            for a in targets[(targets >= first) & (targets <= last)]:
                start = int(a) * ROWS_PER_ASSET - lo
                planted[int(a)] = words[max(0, start) : start + ROWS_PER_ASSET].copy()
            generate_s += time.perf_counter() - started
            yield RowChunk(rows + 1, owners, words)

    gc.collect()
    before = memory()
    index = FleetIndex(
        words_per_hash=phash.WORDS,
        bit_order=FleetIndex.dct_bit_order(16),
        hash_dir=tmp,
        segment_rows=1 << 16,
    )
    started = time.perf_counter()
    index.extend(chunks())
    build_s = time.perf_counter() - started - generate_s
    gc.collect()
    built = memory()
    qsets = [
        np.stack(
            [
                flip(rng, planted[int(a)][v], int(rng.integers(r // 4, r // 2)))
                for v in range(HASHES_PER_LOOKUP)
            ]
        )
        for a in targets
    ]
    # A stranger's upload: hashes drawn from the bit model, matching nothing planted.
    strangers = list(
        model.sample(rng, lookups * HASHES_PER_LOOKUP).reshape(lookups, -1, phash.WORDS)
    )
    lookup_figures = {
        f"r{radius}_{kind}": timed_lookups(
            index, sets, targets if kind == "planted" else None, radius
        )
        for radius in PROBE_RADII
        for kind, sets in (("planted", qsets), ("stranger", strangers))
    }
    after = memory()
    result = {
        "assets": assets,
        "rows": n,
        "rows_per_asset": ROWS_PER_ASSET,
        "hashes_per_lookup": HASHES_PER_LOOKUP,
        "lookups": lookups,
        "segments": index.segments,
        "build_s": build_s,
        "generate_s": generate_s,
        # The index's default probe radius (2), planted copies: as before.
        "lookup_p50_ms": lookup_figures["r2_planted"]["p50_ms"],
        "lookup_p99_ms": lookup_figures["r2_planted"]["p99_ms"],
        "planted_found": lookup_figures["r2_planted"]["found"],
        "lookups_by_radius": lookup_figures,
        "repeats": REPEATS,
        "table_bytes": index.table_bytes,
        "hash_file_bytes": index.hash_bytes,
        "private_rss_delta_bytes": built["RssAnon"] - before["RssAnon"],
        "private_rss_after_lookups_bytes": after["RssAnon"] - before["RssAnon"],
        "mapped_rss_after_lookups_bytes": after["RssFile"] - before["RssFile"],
    }
    gc.collect()
    for file in tmp.glob("fleet-*.u64"):
        file.unlink()
    return result


def timed_lookups(
    index: FleetIndex, qsets: list[np.ndarray], targets: np.ndarray | None, radius: int
) -> dict[str, Any]:
    """Whole lookups at ``radius``: p50/p99 of each of :data:`REPEATS` passes, their medians.

    Wall and CPU (``time.process_time``) per lookup; ``found``: lookups whose nearest
    asset is the planted one (``targets``), or that found anything (strangers: 0 is right).
    """
    r = phash.MATCH_THRESHOLD
    for qs in qsets[:5]:  # warm-up, not recorded
        index.lookup(qs, max_distance=r, k=5, probe_radius=radius)
    passes = []
    found = 0
    for _ in range(REPEATS):
        wall, cpu, found = [], [], 0
        gc.disable()
        for i, qs in enumerate(qsets):
            started, cpu_started = time.perf_counter_ns(), time.process_time_ns()
            matches = index.lookup(qs, max_distance=r, k=5, probe_radius=radius)
            cpu.append((time.process_time_ns() - cpu_started) / 1e6)
            wall.append((time.perf_counter_ns() - started) / 1e6)
            if targets is None:
                found += bool(matches)
            else:
                found += bool(matches) and matches[0].asset == int(targets[i])
        gc.enable()
        passes.append(
            (
                statistics.median(wall),
                float(np.percentile(wall, 99)),
                statistics.median(cpu),
                float(np.percentile(cpu, 99)),
            )
        )
    p50, p99, cpu50, cpu99 = (statistics.median(column) for column in zip(*passes, strict=True))
    return {
        "radius": radius,
        "lookups": len(qsets),
        "p50_ms": p50,
        "p99_ms": p99,
        "cpu_p50_ms": cpu50,
        "cpu_p99_ms": cpu99,
        "found": found,
        "per_repeat_p50_p99_ms": [[round(a, 2), round(b, 2)] for a, b, _, _ in passes],
    }


def real_recall(quick: bool, seed: int) -> dict[str, Any]:
    """Copies of real photos: matches the FleetIndex loses or changes against the exact search."""
    sys.path.insert(0, str(Path(__file__).parent))
    import robustness

    originals = robustness.load_originals(quick=quick)
    rng = random.Random(seed)
    names = list(robustness.TRANSFORMS)
    queries, owner, transform = [], [], []
    for t, name in enumerate(names):
        for i, original in enumerate(originals):
            queries.append(robustness.TRANSFORMS[name](original.image, rng))
            owner.append(i)
            transform.append(t)
    refs = robustness.references([o.image for o in originals])
    features = robustness.features(queries)
    words = np.concatenate([ref.words for ref in refs])
    assets = np.concatenate([np.full(len(ref.variants), i) for i, ref in enumerate(refs)])
    ids = np.arange(1, words.shape[0] + 1, dtype=np.int64)
    r = phash.MATCH_THRESHOLD
    exact = []
    for f in features:
        dist = np.bitwise_count(f.words[:, None, :] ^ words[None, :, :]).sum(-1).min(axis=0)
        best: dict[int, tuple[int, int]] = {}
        for row in np.flatnonzero(dist <= r):
            key = (int(dist[row]), int(ids[row]))
            a = int(assets[row])
            if a not in best or key < best[a]:
                best[a] = key
        exact.append(best)
    out: dict[str, Any] = {"copies": len(queries), "originals": len(originals), "keys": {}}
    for label, key_bits in (("1M assets", 21), ("10M assets", 24)):
        index = FleetIndex(
            words_per_hash=phash.WORDS,
            bit_order=FleetIndex.dct_bit_order(16),
            key_bits=key_bits,
            segment_rows=1,
        )
        index.extend([RowChunk(ids, assets.astype(np.int64), words)])
        for radius in PROBE_RADII:
            lost: dict[str, int] = {}
            changed = found_exact = 0
            for qi, f in enumerate(features):
                own = owner[qi]
                if own not in exact[qi]:
                    continue
                found_exact += 1
                matches = {
                    m.asset: (m.distance, m.row_id)
                    for m in index.lookup(f.words, max_distance=r, k=len(refs), probe_radius=radius)
                }
                if own not in matches:
                    name = names[transform[qi]]
                    lost[name] = lost.get(name, 0) + 1
                elif matches[own] != exact[qi][own]:
                    changed += 1
            out["keys"][f"{label}, probe radius {radius}"] = {
                "key_bits": key_bits,
                "probe_radius": radius,
                "found_by_exact": found_exact,
                "lost": sum(lost.values()),
                "lost_by_transform": dict(sorted(lost.items(), key=lambda kv: -kv[1])),
                "changed": changed,
            }
    return out


def rss_note() -> str:
    """What the memory columns mean."""
    return (
        "private: anonymous resident memory the index added (tables, runs); hash file: "
        "the rows' hashes, memory-mapped (file-backed pages the kernel may drop) "
        f"(resident pages after the lookups shown); pid {os.getpid()}"
    )
