"""Batch start-up, end to end (issue 20): ``provenance sign|verify DIR --workers 1|2``, cold.

``benchmarks/batch.py`` starts the fork server once before its rounds (a
service that runs many batches); a person running the CLI pays the whole
start-up every time: a new Python process, its imports, the fork server (which
imports numpy, Pillow and c2pa again) and the workers. This benchmark times
that, the whole command, in a fresh process per run:

* ``workers-1``: ``--workers 1`` (signs in the CLI's process, no pool);
* ``workers-2``: ``--workers 2`` as shipped: the CLI's process signs the first
  chunks itself while the pool starts;
* ``workers-2-wait``: ``--workers 2`` with that switched off
  (``provenance.batch._pool._SIGN_WHILE_STARTING = False``): nothing is signed until
  a worker is ready, as before issue 20.

Each run signs the same 200 packshots (``benchmarks/corpus.py``) into a fresh
folder and a fresh inventory; with ``--verb verify`` each run verifies those 200
files, signed once beforehand, against the trust anchor and their inventory
(``workers-2-wait``: nothing is verified until a worker is ready). Per round
every variant runs once, in a shuffled order; the ratio
``wall(workers-1) / wall(variant)`` is taken inside a round and the median over
rounds reported. The goal: ``workers-2`` >= 1.6x ``workers-1``.

Run::

    .venv/bin/python benchmarks/batch_cold.py            # 200 packshots, 5 rounds
    .venv/bin/python benchmarks/batch_cold.py --quick    # sample_media, 1 round
    .venv/bin/python benchmarks/batch_cold.py --verb verify --repeats 3
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    console,
    dev_keys,
    fmt_ratio,
    header,
    machine_info,
    machine_line,
    median,
    parse_args,
    sample_images,
    table,
    write_json,
)

ROOT = Path(__file__).resolve().parents[1]
IMAGES = 200
VARIANTS = ("workers-1", "workers-2", "workers-2-wait")
GOAL = 1.6

RUN = """
import sys
import provenance.batch._pool
provenance.batch._pool._SIGN_WHILE_STARTING = {early}
from provenance.cli import main
if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
"""


def _images(quick: bool) -> list[Path]:
    if quick:
        return sample_images(quick=False)
    sys.path.insert(0, str(Path(__file__).parent))
    from corpus import ensure

    return ensure().paths("packshot")[:IMAGES]


def _sign_args(source: Path, out: Path, keys: Path, record: Path) -> list[str]:
    return [
        *("sign", str(source), "--out", str(out)),
        *("--record", str(record), "--keys", str(keys)),
        *("--inventory", str(out.with_suffix(".sqlite")), "--json"),
    ]


def _verify_args(signed: Path, keys: Path) -> list[str]:
    return [
        *("verify", str(signed), "--trust-anchors", str(keys / "ca.pem")),
        *("--inventory", str(signed.with_suffix(".sqlite")), "--json"),
    ]


def _run(variant: str, command: list[str]) -> float:
    workers = "1" if variant == "workers-1" else "2"
    code = RUN.format(early=variant != "workers-2-wait")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    args = [sys.executable, "-c", code, *command, "--workers", workers]
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0 or ('"trusted"' not in done.stdout and command[0] == "verify"):
        raise SystemExit(f"{variant} failed ({done.returncode}): {done.stderr}")
    return wall


def main() -> int:
    args = parse_args(
        "batch_cold",
        __doc__ or "",
        default_repeats=5,
        quick_repeats=1,
        extra=lambda p: p.add_argument("--verb", choices=("sign", "verify"), default="sign"),
    )
    info = machine_info()
    header("batch_cold", info, args)
    images = _images(args.quick)
    _key, _trust, keys_folder = dev_keys()
    record = ROOT / "sample_media" / "forest-path.jpg.json"
    work = Path(tempfile.mkdtemp(prefix="provenance-bench-cold-"))
    source = work / "in"
    source.mkdir()
    for i, path in enumerate(images):
        shutil.copyfile(path, source / f"{i:04d}{path.suffix}")
    signed = work / "signed"
    if args.verb == "verify":
        _run("workers-1", _sign_args(source, signed, keys_folder, record))
    walls: dict[str, list[float]] = {v: [] for v in VARIANTS}
    rng = random.Random(args.seed)
    try:
        for round_no in range(args.repeats):
            order = list(VARIANTS)
            rng.shuffle(order)
            for variant in order:
                if args.verb == "verify":
                    walls[variant].append(_run(variant, _verify_args(signed, keys_folder)))
                    continue
                out = work / f"{variant}-{round_no}"
                walls[variant].append(_run(variant, _sign_args(source, out, keys_folder, record)))
                shutil.rmtree(out)
            console.print(
                f"round {round_no + 1}/{args.repeats}: "
                + ", ".join(f"{v} {walls[v][-1]:.2f} s" for v in VARIANTS)
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(keys_folder, ignore_errors=True)
    base = walls["workers-1"]
    results: dict[str, Any] = {
        "machine": info,
        "verb": args.verb,
        "images": len(images),
        "rounds": args.repeats,
        "note": "whole CLI command in a fresh process per run; medians over rounds",
    }
    rows = []
    for variant in VARIANTS:
        ratio = median(b / w for b, w in zip(base, walls[variant], strict=True))
        results[variant] = {
            "wall_s_median": median(walls[variant]),
            "speedup_vs_workers_1": ratio,
            "wall_s": walls[variant],
        }
        rows.append((variant, f"{median(walls[variant]):.2f} s", fmt_ratio(ratio)))
    results["goal_speedup_workers_2"] = GOAL
    results["goal_met"] = (
        None if args.quick else results["workers-2"]["speedup_vs_workers_1"] >= GOAL
    )
    write_json(args.out, results)
    console.print(
        table(
            f"batch start-up, end to end: {args.verb} {len(images)} images, "
            f"medians of {args.repeats} rounds",
            ("variant", "wall", "vs workers-1"),
            rows,
            caption=machine_line(info),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
