"""Audit tamper matrix: which tampering each verification mode detects (DESIGN.md decision 17).

Builds an inventory (signed checkpoints every 10 entries, a file witness, perceptual and keypoint
rows), then for each tamper class of ``benchmarks/_tamper.py`` and each trial: copies
it, tampers as someone with write access to the database would, and verifies in
every mode. Also runs clean inventories written by several processes at once and
counts false alarms.

    .venv/bin/python benchmarks/audit_tamper.py            # 50 trials per class
    .venv/bin/python benchmarks/audit_tamper.py --quick    # 3 trials per class
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from _tamper import NOW, TAMPERS, fake_result, roll_back
from provenance._core import keypoints, phash
from provenance._io.keys import SigningKey, TrustPolicy, init_dev_keys, key_fingerprint
from provenance.audit import FileWitness
from provenance.inventory import Inventory

console = Console()
RESULTS = Path(__file__).resolve().parent / "results"
EVERY = 10
MODES = ("default", "--keys", "--trust-anchors", "witness", "witness + --keys")


def _reference(i: int) -> phash.ReferenceHashes:
    words = np.arange(3 * phash.WORDS, dtype=np.uint64).reshape(3, phash.WORDS) + np.uint64(i)
    return phash.ReferenceHashes(words=words, variants=("a", "b", "c"), descriptor=b"d%d" % i)


def _features(i: int) -> keypoints.LocalFeatures:
    rng = np.random.default_rng(i)
    return keypoints.LocalFeatures(
        points=np.zeros((20, 2), np.float32),
        descriptors=rng.integers(0, 256, (20, 32), dtype=np.uint8),
        width=64,
        height=64,
        scale=1.0,
        colour=np.zeros((16, 16, 3), np.uint8),
        angles=np.zeros(20, np.float32),
    )


def build(folder: Path, key: SigningKey, assets: int) -> tuple[Path, Path, Path]:
    """The inventory, an early copy of it (for roll-back) and its witness file."""
    db, early, witness = folder / "base.sqlite", folder / "early.sqlite", folder / "witness.jsonl"
    half = assets // 2
    for part, (first, last) in enumerate(((0, half), (half, assets))):
        with Inventory(
            db, checkpoint_key=key, checkpoint_every=EVERY, witness=FileWitness(witness)
        ) as inv:
            for i in range(first, last, 5):
                items = range(i, min(i + 5, last))
                inv.record_many(
                    [fake_result(j) for j in items],
                    signer=key.subject,
                    now=NOW,
                    perceptual=[_reference(j) for j in items],
                    keypoints=[_features(j) for j in items],
                )
        if part == 0:
            shutil.copyfile(db, early)
    return db, early, witness


def verdicts(db: Path, witness: Path, trust: TrustPolicy, pin: str) -> dict[str, str]:
    """Mode -> the report's status: ``tampered``, ``unverified`` or ``intact``."""
    out = {}
    with Inventory(db, create=False, read_only=True, witness=FileWitness(witness)) as inv:
        audit = inv.audit
        out["default"] = audit.verify(use_witness=False).status
        out["--keys"] = audit.verify(use_witness=False, pin=pin).status
        out["--trust-anchors"] = audit.verify(use_witness=False, trust=trust).status
        out["witness"] = audit.verify().status
        out["witness + --keys"] = audit.verify(pin=pin).status
    return out


def _append(db: Path, witness: Path, key: SigningKey, worker: int, count: int) -> None:
    with Inventory(
        db, checkpoint_key=key, checkpoint_every=EVERY, witness=FileWitness(witness)
    ) as inv:
        for i in range(count):
            inv.record_signing(fake_result(i, salt=f"w{worker}-"), signer=key.subject, now=NOW)


def clean_runs(
    folder: Path, key: SigningKey, trust: TrustPolicy, pin: str, runs: int, workers: int, each: int
) -> dict[str, int]:
    """False alarms per mode over clean inventories written by ``workers`` processes at once."""
    alarms = dict.fromkeys(MODES, 0)
    context = multiprocessing.get_context("fork")
    for run in range(runs):
        db, witness = folder / f"clean-{run}.sqlite", folder / f"clean-{run}.jsonl"
        Inventory(db).close()
        procs = [
            context.Process(target=_append, args=(db, witness, key, w, each))
            for w in range(workers)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=300)
            if proc.exitcode != 0:
                raise RuntimeError(f"appender exited with {proc.exitcode}")
        for mode, status in verdicts(db, witness, trust, pin).items():
            alarms[mode] += int(status == "tampered")
    return alarms


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/audit_tamper.py", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 trials per class, 2 clean runs")
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "audit_tamper.json")
    args = parser.parse_args(argv)
    trials = args.trials or (3 if args.quick else 50)
    runs, workers, each = (2, 3, 15) if args.quick else (10, 4, 40)
    rng = random.Random(args.seed)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="audit-tamper-") as name:
        folder = Path(name)
        ours, theirs = init_dev_keys(folder / "keys"), init_dev_keys(folder / "other")
        key = SigningKey.from_pem_files(ours.chain, ours.private_key)
        other = SigningKey.from_pem_files(theirs.chain, theirs.private_key)
        trust = TrustPolicy.from_pem(ours.ca_certificate)
        pin = key_fingerprint(key.leaf)
        db, early, witness = build(folder, key, 40)
        classes = [*TAMPERS, "roll back to an earlier copy"]
        detected = {c: dict.fromkeys(MODES, 0) for c in classes}
        intact = {c: dict.fromkeys(MODES, 0) for c in classes}
        for cls in classes:
            for trial in range(trials):
                copy = folder / f"trial-{trial}.sqlite"
                wcopy = folder / f"trial-{trial}.jsonl"
                shutil.copyfile(db, copy)
                shutil.copyfile(witness, wcopy)
                if cls in TAMPERS:
                    TAMPERS[cls](copy, rng, other)
                else:
                    roll_back(copy, early)
                for mode, status in verdicts(copy, wcopy, trust, pin).items():
                    detected[cls][mode] += int(status == "tampered")
                    intact[cls][mode] += int(status == "intact")
                copy.unlink()
                wcopy.unlink()
        alarms = clean_runs(folder, key, trust, pin, runs, workers, each)
    document: dict[str, Any] = {
        "benchmark": "audit_tamper",
        "command": "python benchmarks/audit_tamper.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "settings": {
            "trials_per_class": trials,
            "checkpoint_every": EVERY,
            "assets": 40,
            "clean_runs": runs,
            "concurrent_appenders": workers,
            "records_per_appender": each,
        },
        "detected": detected,
        "reported_intact_after_tampering": intact,
        "false_alarms": alarms,
        "wall_s": round(time.perf_counter() - began, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    table = Table(title=f"audit tamper detection ({trials} trials per class)")
    table.add_column("tamper class")
    for mode in MODES:
        table.add_column(mode, justify="right")
    lines = ["| tamper class | " + " | ".join(MODES) + " |", "|---" * (len(MODES) + 1) + "|"]
    for cls, by_mode in detected.items():
        cells = [f"{by_mode[m]}/{trials}" for m in MODES]
        table.add_row(cls, *cells)
        lines.append(f"| {cls} | " + " | ".join(cells) + " |")
    cells = [f"{alarms[m]}/{runs}" for m in MODES]
    table.add_row("false alarms (clean, concurrent)", *cells)
    lines.append("| false alarms (clean, concurrent appenders) | " + " | ".join(cells) + " |")
    console.print(table)
    lines += ["", "Tampered yet reported intact (the rest: tampered or UNVERIFIED):", ""]
    lines += ["| tamper class | " + " | ".join(MODES) + " |", "|---" * (len(MODES) + 1) + "|"]
    for cls, by_mode in intact.items():
        lines.append(f"| {cls} | " + " | ".join(f"{by_mode[m]}/{trials}" for m in MODES) + " |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    console.print(f"written {args.out} in {document['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
