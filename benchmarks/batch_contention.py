"""What two busy processes cost each other on this machine: the same batch alone and in pairs.

The marginal speed-up of a second worker (``benchmarks/batch_cold.py``, goal
1.8x) cannot exceed what the machine gives two processes that do the same CPU
work at once: caches, memory bandwidth and the hypervisor are shared. This
measures that bound without the pool: each process runs
``sign_many(workers=1)`` (sign, write, perceptual hashes and keypoints, record
in its own inventory) over the same 200 packshots in a fresh interpreter, and
reports its CPU and wall time per item past its first chunk (imports and
first-use costs excluded). Per round: one process alone, then two at once;
medians over rounds. ``two at once`` CPU over ``alone`` CPU is the price of
sharing the machine; ``2 * alone / two`` is the best marginal speed-up two
workers can reach here before any cost of the pool itself.

Run::

    .venv/bin/python benchmarks/batch_contention.py --repeats 5
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    console,
    dev_keys,
    header,
    machine_info,
    machine_line,
    median,
    parse_args,
    sample_images,
    table,
    write_json,
)

IMAGES = 200

ONE = """
import json, os, sys, time
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the command line runs
from pathlib import Path
from provenance import Inventory, SigningKey
from provenance._io.reading import load_record
from provenance.batch import sign_many

source, out, keys, record = (Path(arg) for arg in sys.argv[1:5])
key = SigningKey.from_pem_files(keys / "chain.pem", keys / "signer.key")
paths = sorted(source.iterdir())
skip = 16 if len(paths) > 32 else 1  # rows come a chunk (16) at a time
with Inventory(out / "inventory.sqlite", create=True) as inventory:
    rows = sign_many(paths, out, key=key, record=load_record(record), inventory=inventory)
    for done, row in enumerate(rows, 1):
        assert row.error is None, row.error
        if done == skip:  # the first chunk: imports and first-use costs, not timed
            cpu, wall = time.process_time(), time.perf_counter()
items = done - skip
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
print(json.dumps({"cpu_ms": 1000 * cpu / items, "wall_ms": 1000 * wall / items}))
"""


def _start(source: Path, out: Path, keys: Path, record: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    args = [sys.executable, "-c", ONE, str(source), str(out), str(keys), str(record)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)


def _finish(process: subprocess.Popen[str]) -> dict[str, float]:
    stdout, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"a run failed ({process.returncode})")
    found: dict[str, float] = json.loads(stdout.strip().splitlines()[-1])
    return found


def main() -> int:
    args = parse_args("batch_contention", __doc__ or "", default_repeats=5, quick_repeats=1)
    info = machine_info()
    header("batch_contention", info, args)
    if args.quick:
        images = sample_images(quick=False)
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        from corpus import ensure

        images = ensure().paths("packshot")[:IMAGES]
    _key, _trust, keys = dev_keys()
    work = Path(tempfile.mkdtemp(prefix="provenance-bench-contention-"))
    source = work / "in"
    source.mkdir()
    for i, path in enumerate(images):
        shutil.copyfile(path, source / f"{i:04d}{path.suffix}")
    record = ROOT / "sample_media" / "forest-path.jpg.json"
    alone: list[dict[str, float]] = []
    pairs: list[dict[str, float]] = []
    try:
        _finish(_start(source, work / "warm", keys, record))  # bytecode, page cache
        for round_no in range(args.repeats):
            alone.append(_finish(_start(source, work / f"a{round_no}", keys, record)))
            both = [_start(source, work / f"p{round_no}-{i}", keys, record) for i in (0, 1)]
            pairs.extend(_finish(process) for process in both)
            for folder in work.glob(f"[ap]{round_no}*"):
                shutil.rmtree(folder, ignore_errors=True)
            console.print(
                f"round {round_no + 1}/{args.repeats}: alone {alone[-1]['cpu_ms']:.2f} ms CPU "
                f"an item, two at once {pairs[-2]['cpu_ms']:.2f} / {pairs[-1]['cpu_ms']:.2f} "
                f"(load {os.getloadavg()[0]:.1f})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(keys, ignore_errors=True)
    results = _results(args, info, len(images), alone, pairs)
    write_json(args.out, results)
    console.print(
        table(
            f"one process alone and two at once: sign_many(workers=1), {len(images)} images, "
            f"per item past the first chunk, medians of {args.repeats} rounds",
            ("run", "CPU ms an item", "wall ms an item"),
            [
                ("alone", f"{results['alone_cpu_ms']:.2f}", f"{results['alone_wall_ms']:.2f}"),
                ("two at once", f"{results['pair_cpu_ms']:.2f}", f"{results['pair_wall_ms']:.2f}"),
            ],
            caption=(
                f"{machine_line(info)}\ntwo at once cost {results['cpu_ratio']:.2f}x the CPU an "
                f"item; best marginal speed-up of two workers here: {results['bound']:.2f}x"
            ),
        )
    )
    return 0


def _results(
    args: Any,
    info: Any,
    images: int,
    alone: list[dict[str, float]],
    pairs: list[dict[str, float]],
) -> dict[str, Any]:
    alone_cpu = median(run["cpu_ms"] for run in alone)
    pair_cpu = median(run["cpu_ms"] for run in pairs)
    return {
        "machine": info,
        "images": images,
        "rounds": args.repeats,
        "alone_cpu_ms": alone_cpu,
        "alone_wall_ms": median(run["wall_ms"] for run in alone),
        "pair_cpu_ms": pair_cpu,
        "pair_wall_ms": median(run["wall_ms"] for run in pairs),
        "cpu_ratio": pair_cpu / alone_cpu,
        "bound": 2 * alone_cpu / pair_cpu,
        "alone": alone,
        "pairs": pairs,
    }


if __name__ == "__main__":
    sys.exit(main())
