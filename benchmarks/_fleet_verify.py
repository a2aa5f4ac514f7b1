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

Per transform: copies whose verdict is ``synthetic_duplicate`` of their own
original (or of an original that is the same photograph), by which step, and
false matches (``synthetic_duplicate`` of any other asset, planted ones
included).
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


def _fill(db: Path, originals: list[Any], planted: int, model: Any, rng: Any) -> dict[str, Any]:
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
    if planted:
        _plant_rows(db, planted, len(originals), variants[:ROWS_PER_ASSET], model, rng)
    return {
        "asset_ids": [e.asset_id for e in entries],
        "fill_s": time.perf_counter() - started,
        "record_s": recorded_s,
        "db_bytes": db.stat().st_size,
    }


def _plant_rows(
    db: Path, planted: int, originals: int, variants: tuple[str, ...], model: Any, rng: Any
) -> None:
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


def _run(
    db: Path, mode: str, copies: list[tuple[str, int, bytes]], own: Any, tmp: Path
) -> dict[str, Any]:
    """Verify every copy through one handle of ``mode`` ("exact" or "fleet")."""
    threshold = 0 if mode == "fleet" else 1 << 62
    per: dict[str, dict[str, int]] = {}
    times = []
    log = Path(os.environ.get("FLEET_VERIFY_LOG", str(tmp / "outcomes.tsv")))
    with Inventory(db, read_only=True, fleet_min_assets=threshold) as inv:
        started = time.perf_counter()
        rows = inv.searched_perceptual_rows(phash.SCHEME)
        build_s = time.perf_counter() - started
        inv.keypoint_index(keypoints.SCHEME)
        for done, (name, i, data) in enumerate(copies):
            if done % 1000 == 0:
                print(f"  {mode}: {done} of {len(copies)} copies", flush=True)
            counts = per.setdefault(
                name, {"copies": 0, "perceptual": 0, "keypoints": 0, "false": 0}
            )
            counts["copies"] += 1
            started = time.perf_counter()
            verdict = verify_bytes(data, inventory=inv)
            times.append(time.perf_counter() - started)
            outcome = "none"
            if verdict.status is Status.SYNTHETIC_DUPLICATE and verdict.asset_id in own[i]:
                outcome = "keypoints" if verdict.location is not None else "perceptual"
            elif verdict.status is Status.SYNTHETIC_DUPLICATE:
                outcome = "false"
            if outcome != "none":
                counts[outcome] += 1
            with log.open("a") as handle:  # each copy as it is verified: a run cut short is read
                handle.write(f"{mode}\t{name}\t{i}\t{outcome}\n")
    return {
        "mode": mode,
        "rows": rows,
        "cold_build_s": build_s,
        "rows_per_s": rows / build_s if build_s else None,
        "verify_p50_ms": statistics.median(times) * 1e3,
        "verify_p99_ms": float(np.percentile(times, 99)) * 1e3,
        "by_transform": per,
    }


def fleet_verify(planted: int, *, quick: bool, seed: int, model: Any, tmp: Path) -> dict[str, Any]:
    """Both runs over one inventory of the corpus plus ``planted`` assets; see the module."""
    sys.path.insert(0, str(Path(__file__).parent))
    import robustness

    originals = robustness.load_originals(quick=quick)
    db = tmp / "fleet-verify.sqlite"
    filled = _fill(db, originals, planted, model, np.random.default_rng(seed))
    ids = filled.pop("asset_ids")
    twins = robustness.same_photo(originals)
    own = [
        {ids[j] for j in range(len(originals)) if j == i or twins[i, j]}
        for i in range(len(originals))
    ]
    copies = list(_copies(originals, seed))
    # In a random order, so that a run stopped early has verified a sample of every transform.
    random.Random(seed).shuffle(copies)
    runs = [_run(db, mode, copies, own, tmp) for mode in ("fleet", "exact")]
    return {
        "planted_assets": planted,
        "originals": len(originals),
        "copies": len(copies),
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
