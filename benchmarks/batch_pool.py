"""A two-worker batch once it runs (issue 20): where the pool loses time, paired against a tree.

``benchmarks/batch_cold.py`` times whole commands, start-up included; this
times only the batch, in a fresh process per run that has already imported
the library, opened the inventory and loaded the key or anchors, so that what
the pool itself costs shows: ``sign_many`` (into a fresh folder and inventory)
or ``verify_many`` (against the inventory and the trust anchor) of 200
packshots with ``workers=2``, workers forked by ``warm_up`` as the CLI does.
Per run it records, by wrapping the library's private steps from the outside
(nothing in the package is changed for it):

* ``wall``: the batch, first item to last row;
* ``caller``: the calling process's CPU over the batch, split into its main
  thread (the inventory's recording for ``sign``) and the pool's thread
  (reading each item's outcome, dispatching chunks);
* ``workers``: the CPU the workers spent inside their chunks;
* ``gaps``: the time each worker spent between the end of one chunk and the
  start of its next, summed over both workers (waiting for the pool to answer);
* ``spread``: how far apart the two workers finished their last chunk.

``--against TREE`` runs the same in a second tree, alternating run by run
(paired); medians over ``--repeats`` pairs.

Run::

    .venv/bin/python benchmarks/batch_pool.py                          # sign, 8 runs
    .venv/bin/python benchmarks/batch_pool.py --verb verify --repeats 10
    .venv/bin/python benchmarks/batch_pool.py --against ../base/src    # paired A/B
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
    scratch_dir,
    table,
    write_json,
)

IMAGES = 200

RUN = r"""
import json, os, resource, sys, tempfile, time
from pathlib import Path

verb, folder, keys, record_path, inventory_path, log = sys.argv[1:7]
import provenance.batch
from provenance.batch import _pool, _work, _worker

chunks = []  # in each worker: (start, end, cpu start, cpu end)


def traced_process(state, chunk, *, report=None, _process=_work._process):
    start, cpu = time.perf_counter(), time.process_time()
    try:
        return _process(state, chunk, report=report)
    finally:
        chunks.append((start, time.perf_counter(), cpu, time.process_time()))


def traced_serve(spec, conn, _serve=_worker._serve):
    try:
        _serve(spec, conn)
    finally:
        with open(f"{log}.{os.getpid()}", "w") as handle:
            json.dump(chunks, handle)


_work._process = traced_process
_worker._serve = traced_serve
provenance.batch.warm_up(2, signing=verb == "sign")
pool_cpu = []


def traced_manage(self, _manage=_pool._Pool._manage):
    cpu = time.thread_time()
    try:
        _manage(self)
    finally:
        pool_cpu.append(time.thread_time() - cpu)


_pool._Pool._manage = traced_manage
from provenance._io.keys import SigningKey, TrustPolicy
from provenance._io.reading import load_record
from provenance.inventory import Inventory

files = sorted(str(p) for p in Path(folder).iterdir())
if verb == "verify":
    inventory = Inventory(inventory_path, create=False)
    trust = TrustPolicy.from_pem(Path(keys) / "ca.pem")
    run = lambda: provenance.batch.verify_many(files, trust=trust, inventory=inventory, workers=2)
else:
    inventory = Inventory(inventory_path)
    key = SigningKey.from_pem_files(Path(keys) / "chain.pem", Path(keys) / "signer.key")
    record = load_record(record_path)
    out = tempfile.mkdtemp(dir=Path(inventory_path).parent)
    run = lambda: provenance.batch.sign_many(
        files, out, key=key, record=record, inventory=inventory, workers=2
    )


def cpu_now():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


cpu, main, start = cpu_now(), time.thread_time(), time.perf_counter()
rows = list(run())
wall = time.perf_counter() - start
main, cpu = time.thread_time() - main, cpu_now() - cpu
assert len(rows) == len(files) and all(r.status.value == "ok" for r in rows), rows[:3]
print(json.dumps({"wall": wall, "caller": cpu, "main": main, "pool": sum(pool_cpu)}))
"""


def _options(parser: Any) -> None:
    parser.add_argument("--verb", choices=("sign", "verify"), default="sign")
    parser.add_argument("--against", default=None, help="a second package tree, run paired")


_PYCACHE = scratch_dir("provenance-bench-pycache-")


def _env(tree: Path) -> dict[str, str]:
    """A run's environment: ``tree`` on the path, its bytecode cached outside the tree.

    Cached, as an installed package has it (this machine's shell sets
    ``PYTHONDONTWRITEBYTECODE=1``); OpenBLAS on one thread, as the CLI sets it.
    """
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "PYTHONPYCACHEPREFIX": str(_PYCACHE),
        "OPENBLAS_NUM_THREADS": "1",
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _run(tree: Path, args: list[str], log: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", RUN, *args, str(log)],
        env=_env(tree),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"run failed in {tree}: {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    ends, gaps, workers = [], 0.0, 0.0
    for path in log.parent.glob(f"{log.name}.*"):
        spans = json.loads(path.read_text())
        path.unlink()
        gaps += sum(spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1))
        workers += sum(cpu_end - cpu_start for _, _, cpu_start, cpu_end in spans)
        ends.append(spans[-1][1])
    result.update(
        gaps=gaps, workers=workers, spread=max(ends) - min(ends) if len(ends) > 1 else 0.0
    )
    return result


def main() -> int:
    args = parse_args(
        "batch_pool", __doc__ or "", default_repeats=8, quick_repeats=1, extra=_options
    )
    info = machine_info()
    header("batch_pool", info, args)
    trees = {"this tree": ROOT / "src"}
    if args.against is not None:
        trees["against"] = Path(args.against).resolve()
    sys.path.insert(0, str(Path(__file__).parent))
    from corpus import ensure

    images = ensure().paths("packshot")[: 12 if args.quick else IMAGES]
    _key, _trust, keys = dev_keys()
    record = ROOT / "sample_media" / "forest-path.jpg.json"
    work = Path(tempfile.mkdtemp(prefix="provenance-bench-pool-"))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    try:
        source = work / "in"
        source.mkdir()
        for i, path in enumerate(images):
            shutil.copyfile(path, source / f"{i:04d}{path.suffix}")
        folder, inventory = source, work / "signed.sqlite"
        if args.verb == "verify":  # the files to verify, signed once (by this tree)
            folder = work / "signed"
            subprocess.run(
                [
                    *(sys.executable, "-m", "provenance", "sign", str(source)),
                    *("--out", str(folder), "--record", str(record), "--keys", str(keys)),
                    *("--inventory", str(inventory), "--json", "--workers", "2"),
                ],
                env=_env(ROOT / "src"),
                capture_output=True,
                check=True,
            )
        for round_no in range(args.repeats):
            for name, tree in trees.items():
                target = work / f"run-{round_no}-{len(runs[name])}.sqlite"
                inventory_path = inventory if args.verb == "verify" else target
                command = [args.verb, str(folder), str(keys), str(record), str(inventory_path)]
                runs[name].append(_run(tree, command, work / "chunks"))
            console.print(
                f"round {round_no + 1}/{args.repeats}: "
                + ", ".join(f"{name} {runs[name][-1]['wall'] * 1000:.0f} ms" for name in trees)
                + f" (load {os.getloadavg()[0]:.1f})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(keys, ignore_errors=True)
        shutil.rmtree(_PYCACHE, ignore_errors=True)
    metrics = ("wall", "caller", "main", "pool", "workers", "gaps", "spread")
    medians = {
        name: {m: median(r[m] for r in rows) for m in metrics} for name, rows in runs.items()
    }
    write_json(
        args.out,
        {
            "machine": info,
            "verb": args.verb,
            "images": len(images),
            "trees": {name: str(tree) for name, tree in trees.items()},
            "medians_s": medians,
            "runs_s": runs,
        },
    )
    console.print(
        table(
            f"{args.verb} {len(images)} images, workers=2, the batch only: medians of "
            f"{args.repeats} runs (ms)",
            [
                "tree",
                "wall",
                "caller CPU",
                "main thread",
                "pool thread",
                "workers' chunks",
                "gaps",
                "spread",
            ],
            [
                [name, *(f"{values[m] * 1000:.1f}" for m in metrics)]
                for name, values in medians.items()
            ],
            caption=machine_line(info),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
