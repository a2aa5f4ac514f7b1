"""``benchmarks/index.py --fleet-verify N``: verify's recall with the FleetIndex vs the exact index.

End to end, through :func:`provenance.verify.verify_bytes` (the step ``verify``,
``scan``, ``trace`` and the DAM endpoint share): an SQLite inventory holds every
original of the corpus (sample_media with ``--quick``) as an AI-generated asset
with its real perceptual rows and keypoint features, recorded with
``record_many``, plus ``N`` *planted* assets of 22 synthetic rows each (the bit
model fitted on real rows, as ``--fleet``; no keypoints; assets and rows
inserted in bulk straight into the tables: planted, not audited).

Every transform of ``benchmarks/robustness.py`` is applied to every original,
each copy encoded as JPEG quality 95 and verified twice, in a shuffled order:
by a handle that searches with the :class:`~provenance.FleetIndex`
(``fleet_min_assets=0``) and by one that searches with the exact
:class:`~provenance.HammingIndex`, each cold (its index built from the database
first, timed). The keypoint step runs in both when the perceptual step finds
nothing. Each outcome is appended to ``$FLEET_VERIFY_LOG`` as it comes.

With ``planted_keypoints`` (``--planted-keypoints``) every planted asset also
gets a keypoint row of 256 synthetic descriptors (:mod:`_planted`'s model, the
one ``robustness.py --partial-rank-only`` plants: real descriptors of the corpus
groups of fold 1 with 1% of their bits flipped; random positions, orientations
and colours), inserted in bulk like the perceptual rows, and the inventory's
keypoint cache is built once (``Inventory.write_index_caches()``, timed) so the
verify handles load it as a real verifier does. Only the copies of fold-0
originals are verified then (fold-1 photos' own descriptors are the planted
ones' ancestors).

Per transform: copies whose verdict is ``synthetic_duplicate`` of their own
original (or of an original that is the same photograph), by which step, and
false matches (``synthetic_duplicate`` of any other asset, planted ones
included). Per outcome: CPU time of this process (``time.process_time``) and
wall time of the whole ``verify_bytes``, p50/p95/p99.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import sqlite3
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import _planted
from provenance import SignResult, Status
from provenance._core import keypoints, phash
from provenance._core.record import DigitalSourceType, ProvenanceRecord
from provenance.inventory import Inventory
from provenance.verify import verify_bytes

ROWS_PER_ASSET = 22
BATCH = 10_000
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _result(i: int, record: ProvenanceRecord) -> SignResult:
    def h(kind: str) -> str:
        return hashlib.sha256(f"fleet-verify:{kind}:{i}".encode()).hexdigest()

    return SignResult(
        path=None,
        asset_id=str(uuid.uuid5(uuid.NAMESPACE_OID, h("essence"))),
        sha256_hex=h("file"),
        essence_sha256_hex=h("essence"),
        input_sha256_hex=h("input"),
        bytes_added=1,
        active_manifest=None,
        record=record,
    )


def _record(i: int) -> ProvenanceRecord:
    return ProvenanceRecord(
        generator="studio-batch 2.1",
        model="flux.1-dev",
        model_version="2024-08",
        digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA,
        created_at=NOW,
        parameters={"seed": i},
    )


def _fill(
    db: Path, originals: list[Any], planted: int, model: Any, rng: Any, *, with_keypoints: bool
) -> dict[str, Any]:
    """The originals (real rows and features, audited), then ``planted`` synthetic assets."""
    import robustness

    images = [o.image for o in originals]
    refs = robustness.references(images)
    features = [keypoints.reference_features(im) for im in images]
    variants = refs[0].variants
    started = time.perf_counter()
    with Inventory(db, durable=False) as inv:
        entries = inv.record_many(
            [_result(i, _record(i)) for i in range(len(originals))],
            signer="CN=bench",
            now=NOW,
            perceptual=refs,
            keypoints=features,
        )
    recorded_s = time.perf_counter() - started
    out: dict[str, Any] = {"record_s": recorded_s}
    if planted:
        pks = _plant_rows(db, planted, len(originals), variants[:ROWS_PER_ASSET], model, rng)
        if with_keypoints:
            pool = np.concatenate(
                [
                    f.descriptors[: keypoints.INDEXED_FEATURES]
                    for f, o in zip(features, originals, strict=True)
                    if _planted.fold(o.group) == 1
                ]
            )
            t = time.perf_counter()
            _plant_keypoints(db, pks, np.ascontiguousarray(pool), rng)
            out["keypoints_planted_s"] = time.perf_counter() - t
    out["fill_s"] = time.perf_counter() - started
    if with_keypoints:
        t, cpu = time.perf_counter(), time.process_time()
        with Inventory(db, durable=False) as inv:
            caches = inv.write_index_caches()
        out["keypoint_cache_build_s"] = time.perf_counter() - t
        out["keypoint_cache_build_cpu_s"] = time.process_time() - cpu
        out["keypoint_cache_bytes"] = sum(c.stat().st_size for c in caches)
        print(f"  keypoint cache built in {out['keypoint_cache_build_s']:.0f} s", flush=True)
    return {"asset_ids": [e.asset_id for e in entries], **out, "db_bytes": db.stat().st_size}


def _plant_keypoints(db: Path, pks: list[int], pool: np.ndarray, rng: Any) -> None:
    """A keypoint row of synthetic descriptors for each planted asset, inserted in bulk.

    256 descriptors each (a reference's count; the index keeps the first 96),
    :func:`_planted.descendants` of ``pool``; positions uniform over a 512 x 512
    working image, orientations uniform, a random colour grid: what
    ``keypoints.locate`` reads when a planted asset is a candidate.
    """
    per = keypoints.REFERENCE_FEATURES
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA synchronous = OFF")
        for lo in range(0, len(pks), BATCH):
            n = min(len(pks), lo + BATCH) - lo
            desc = _planted.descendants(rng, pool, n * per).reshape(n, per, 32)
            points = rng.uniform(0, 511, (n, per, 2)).astype(np.float32)
            angles = rng.uniform(0, 360, (n, per)).astype(np.float32)
            colours = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
            blobs = (
                keypoints.LocalFeatures(
                    points[j], desc[j], 512, 512, 1.0, colours[j], angles[j]
                ).to_bytes()
                for j in range(n)
            )
            with conn:
                conn.executemany(
                    "INSERT INTO keypoint_features (asset_pk, scheme, features) VALUES (?, ?, ?)",
                    (
                        (pk, keypoints.SCHEME, blob)
                        for pk, blob in zip(pks[lo : lo + n], blobs, strict=True)
                    ),
                )
            if lo % (10 * BATCH) == 0:
                print(f"  planted keypoints: {lo + n:,} of {len(pks):,}", flush=True)


def _plant_rows(
    db: Path, planted: int, originals: int, variants: tuple[str, ...], model: Any, rng: Any
) -> list[int]:
    """The planted assets and their rows, inserted in bulk straight into the tables.

    Each planted asset is a copy of the first original's asset row with its own
    id and essence (not audited: the inventory's audit chain does not cover them).
    """
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA synchronous = OFF")
        with conn:
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                "INSERT INTO assets (asset_id, essence_sha256, digital_source_type, generator, "
                "model, model_version, created_at, record_json, signer_id, first_signed_at) "
                "SELECT 'planted-' || i, randomblob(32), a.digital_source_type, a.generator, "
                "a.model, a.model_version, a.created_at, a.record_json, a.signer_id, "
                "a.first_signed_at FROM n, (SELECT * FROM assets ORDER BY asset_pk LIMIT 1) AS a",
                (planted,),
            )
        pks = [
            int(pk)
            for (pk,) in conn.execute(
                "SELECT asset_pk FROM assets ORDER BY asset_pk LIMIT -1 OFFSET ?", (originals,)
            )
        ]
        assert len(pks) == planted
        for lo in range(0, planted, BATCH):
            hi = min(planted, lo + BATCH)
            words = model.sample_pooled(rng, (hi - lo) * ROWS_PER_ASSET).astype("<u8")
            blobs = words.reshape(hi - lo, ROWS_PER_ASSET, phash.WORDS)
            with conn:
                conn.executemany(
                    "INSERT INTO perceptual_hashes (asset_pk, scheme, variant, words) "
                    "VALUES (?, ?, ?, ?)",
                    (
                        (pks[i], phash.SCHEME, variant, blobs[i - lo, v].tobytes())
                        for i in range(lo, hi)
                        for v, variant in enumerate(variants)
                    ),
                )
    return pks


def _copies(originals: list[Any], seed: int) -> Iterator[tuple[str, int, bytes]]:
    """(transform, original, JPEG q95 bytes) for every transform of every original."""
    import robustness

    rng = random.Random(seed)
    for name, transform in robustness.TRANSFORMS.items():
        for i, original in enumerate(originals):
            copy = transform(original.image, rng).convert("RGB")
            buffer = io.BytesIO()
            copy.save(buffer, "JPEG", quality=95)
            yield name, i, buffer.getvalue()


def _percentiles(values: list[float]) -> dict[str, float | int]:
    """Count and p50/p95/p99 of ``values`` (seconds), in ms."""
    if not values:
        return {"n": 0}
    ms = np.array(values) * 1e3
    return {
        "n": len(values),
        **{f"p{q}": round(float(np.percentile(ms, q)), 1) for q in (50, 95, 99)},
    }


def _run(
    db: Path, mode: str, copies: list[tuple[str, int, bytes]], own: Any, tmp: Path
) -> dict[str, Any]:
    """Verify every copy through one handle of ``mode`` ("exact" or "fleet")."""
    threshold = 0 if mode == "fleet" else 1 << 62
    per: dict[str, dict[str, int]] = {}
    times = []
    by_outcome: dict[str, dict[str, list[float]]] = {}
    log = Path(os.environ.get("FLEET_VERIFY_LOG", str(tmp / "outcomes.tsv")))
    with Inventory(db, read_only=True, fleet_min_assets=threshold) as inv:
        started = time.perf_counter()
        rows = inv.searched_perceptual_rows(phash.SCHEME)
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        kp = inv.keypoint_index(keypoints.SCHEME)
        keypoint_load_s = time.perf_counter() - started
        for done, (name, i, data) in enumerate(copies):
            if done % 1000 == 0:
                print(f"  {mode}: {done} of {len(copies)} copies", flush=True)
            counts = per.setdefault(
                name, {"copies": 0, "perceptual": 0, "keypoints": 0, "false": 0}
            )
            counts["copies"] += 1
            started, cpu = time.perf_counter(), time.process_time()
            verdict = verify_bytes(data, inventory=inv)
            cpu = time.process_time() - cpu
            wall = time.perf_counter() - started
            times.append(wall)
            outcome = "none"
            if verdict.status is Status.SYNTHETIC_DUPLICATE and verdict.asset_id in own[i]:
                outcome = "keypoints" if verdict.location is not None else "perceptual"
            elif verdict.status is Status.SYNTHETIC_DUPLICATE:
                outcome = "false"
            if outcome != "none":
                counts[outcome] += 1
            timed = by_outcome.setdefault(outcome, {"cpu": [], "wall": []})
            timed["cpu"].append(cpu)
            timed["wall"].append(wall)
            with log.open("a") as handle:  # each copy as it is verified: a run cut short is read
                handle.write(f"{mode}\t{name}\t{i}\t{outcome}\t{cpu * 1e3:.1f}\t{wall * 1e3:.1f}\n")
    fell = {
        k: [v for o in ("keypoints", "none") for v in by_outcome.get(o, {}).get(k, [])]
        for k in ("cpu", "wall")
    }
    return {
        "mode": mode,
        "rows": rows,
        "cold_build_s": build_s,
        "rows_per_s": rows / build_s if build_s else None,
        "keypoint_index_load_s": keypoint_load_s,
        "keypoint_index_assets": len(kp),
        "keypoint_index_descriptors": kp.descriptors,
        "verify_p50_ms": statistics.median(times) * 1e3,
        "verify_p99_ms": float(np.percentile(times, 99)) * 1e3,
        "ms_by_outcome": {
            outcome: {k: _percentiles(v) for k, v in t.items()}
            for outcome, t in sorted(by_outcome.items())
        },
        "ms_fell_through": {k: _percentiles(v) for k, v in fell.items()},
        "by_transform": per,
    }


def fleet_verify(
    planted: int,
    *,
    quick: bool,
    seed: int,
    model: Any,
    tmp: Path,
    planted_keypoints: bool = False,
) -> dict[str, Any]:
    """Both runs over one inventory of the corpus plus ``planted`` assets; see the module."""
    sys.path.insert(0, str(Path(__file__).parent))
    import robustness

    originals = robustness.load_originals(quick=quick)
    db = tmp / f"fleet-verify-{planted}.sqlite"  # one inventory per size
    rng = np.random.default_rng(seed)
    filled = _fill(db, originals, planted, model, rng, with_keypoints=planted_keypoints)
    ids = filled.pop("asset_ids")
    twins = robustness.same_photo(originals)
    own = [
        {ids[j] for j in range(len(originals)) if j == i or twins[i, j]}
        for i in range(len(originals))
    ]
    copies = list(_copies(originals, seed))
    if planted_keypoints:  # fold-1 photos are the planted descriptors' ancestors
        copies = [c for c in copies if _planted.fold(originals[c[1]].group) == 0]
    # In a random order, so that a run stopped early has verified a sample of every transform.
    random.Random(seed).shuffle(copies)
    runs = [_run(db, mode, copies, own, tmp) for mode in ("fleet", "exact")]
    for made in tmp.glob(f"{db.name}*"):  # the inventory, its journal and index caches
        made.unlink()
    return {
        "planted_assets": planted,
        "originals": len(originals),
        "copies": len(copies),
        "planted_keypoints": planted_keypoints,
        **filled,
        "runs": runs,
    }


def rows_for_table(result: dict[str, Any]) -> list[tuple[str, ...]]:
    """Per transform: found by each index (perceptual + keypoints), false matches."""
    by_mode = {run["mode"]: run["by_transform"] for run in result["runs"]}
    exact, fleet = by_mode["exact"], by_mode["fleet"]
    out = []
    totals = [0] * 7
    for name, e in exact.items():
        f = fleet[name]
        values = (
            e["copies"],
            e["perceptual"],
            e["keypoints"],
            f["perceptual"],
            f["keypoints"],
            e["false"],
            f["false"],
        )
        totals = [t + v for t, v in zip(totals, values, strict=True)]
        out.append((name, *(str(v) for v in values)))
    out.append(("all", *(str(v) for v in totals)))
    return out


def timing_rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    """Per index and outcome: copies, CPU and wall ms p50/p95/p99 of a whole verify."""

    def cell(p: dict[str, Any]) -> str:
        return f"{p['p50']:.0f} / {p['p95']:.0f} / {p['p99']:.0f}" if p["n"] else "-"

    out = []
    for run in result["runs"]:
        classes = [*run["ms_by_outcome"].items(), ("fell through", run["ms_fell_through"])]
        for outcome, t in classes:
            out.append((run["mode"], outcome, str(t["cpu"]["n"]), cell(t["cpu"]), cell(t["wall"])))
    return out


def read_log(path: Path) -> dict[str, Any]:
    """The outcomes of a run's ``$FLEET_VERIFY_LOG``, finished or cut short.

    Per transform and index, the copies verified and their outcomes (the fleet
    run goes first; the copies are in a shuffled order, so a cut-short run has
    verified a sample of every transform); the copies both indexes verified
    with different outcomes; CPU ms per index and outcome. Lines without times
    (written before the times were logged) count in the outcomes only.
    """
    seen: dict[str, dict[tuple[str, str], str]] = {"fleet": {}, "exact": {}}
    timed: dict[str, dict[str, list[float]]] = {}
    for line in path.read_text().splitlines():
        mode, name, i, outcome, *times = line.split("\t")
        seen[mode][(name, i)] = outcome
        if times:
            timed.setdefault(f"{mode}\t{outcome}", []).append(float(times[0]) / 1e3)
            if outcome in ("keypoints", "none"):
                timed.setdefault(f"{mode}\tfell through", []).append(float(times[0]) / 1e3)
    per: dict[str, dict[str, int]] = {}
    for mode, outcomes in seen.items():
        for (name, _), outcome in outcomes.items():
            counts = per.setdefault(name, {})
            for key in (f"{mode}: copies", f"{mode}: {outcome}"):
                counts[key] = counts.get(key, 0) + 1
    both = seen["fleet"].keys() & seen["exact"].keys()
    differ = sorted(
        f"{name} #{i}: exact {seen['exact'][(name, i)]}, fleet {seen['fleet'][(name, i)]}"
        for name, i in both
        if seen["exact"][(name, i)] != seen["fleet"][(name, i)]
    )
    return {
        "verified": {mode: len(s) for mode, s in seen.items()},
        "by_transform": dict(sorted(per.items())),
        "verified_by_both": len(both),
        "differing": differ,
        "cpu_ms": {k: _percentiles(v) for k, v in sorted(timed.items())},
    }


if __name__ == "__main__":  # python benchmarks/_fleet_verify.py LOG: a run's outcomes so far
    import json

    print(json.dumps(read_log(Path(sys.argv[1])), indent=1))
