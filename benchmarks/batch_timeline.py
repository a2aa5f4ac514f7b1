"""Where a cold ``provenance sign|verify DIR --workers N`` spends its time: a timeline (issue 20).

``benchmarks/batch_cold.py`` says how long the whole command takes; this says
where: it runs the command (200 packshots, as there) with timestamps and the
CPU time of every process at each milestone, taken by wrapping the library's
private steps from the outside (nothing in the package is changed for it):

* the command's process: started (after the interpreter's own start), the CLI
  imported, ``warm_up`` called and returned (its imports and the fork), the
  files listed, the batch's stream started (keys, inventory and the lock
  waited for: the spec goes to the workers now), the first and last chunk
  recorded, the command over, and the process gone (the exit);
* each worker forked from it: forked, its own imports done, its spec received,
  its first chunk started, its last chunk done, its exit.

Each run is a fresh process; the milestones' medians over ``--repeats`` runs
are printed, and every run's events written to the JSON. Times are wall
seconds since the command was launched; CPU is each process's own (a forked
worker's starts at zero). A loaded machine stretches the walls, not the CPU.

Run::

    .venv/bin/python benchmarks/batch_timeline.py                      # sign, 2 workers
    .venv/bin/python benchmarks/batch_timeline.py --verb verify --workers 1
    .venv/bin/python benchmarks/batch_timeline.py --src ../base/src    # another tree
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
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

TRACED = """
import os, sys, time

OUT = os.environ["TIMELINE_OUT"]


def event(name):
    with open(OUT, "a") as f:  # opened and closed each time: no file open at the fork
        f.write(f"{time.time():.6f} {os.getpid()} {time.process_time():.6f} {name}\\n")


event("cli: started")
import provenance.batch
from provenance.batch import _forkserver

_warm_up = _forkserver.warm_up


def warm_up(workers, **options):
    event("cli: warm_up called")
    _wrap_worker()
    _warm_up(workers, **options)
    event("cli: warm_up returned (forked)")
    _wrap_caller()


def _wrap_worker():
    from provenance.batch import _standby, _worker

    preload, serve, standby = _worker.preload, _worker._serve, _standby._standby_main

    def traced_standby(*args):
        event("worker: forked")
        standby(*args)

    def traced_preload(names):
        preload(names)
        event("worker: imports done")

    def traced_serve(spec, conn):
        event("worker: spec received")
        _wrap_chunks("worker")
        serve(spec, conn)
        event("worker: exit")

    _standby._standby_main, _worker.preload, _worker._serve = (
        traced_standby, traced_preload, traced_serve
    )


def _wrap_chunks(who):
    from provenance.batch import _work

    process = _work._process

    def traced(state, chunk, **options):
        event(f"{who}: chunk started")
        outcomes = process(state, chunk, **options)
        event(f"{who}: chunk done")
        return outcomes

    _work._process = traced


def _wrap_caller():
    from provenance.batch import _executor, _pool, _stream
    from provenance.cli import _files

    expand, stream, merge = _files.expand, _stream._stream, _stream._merge

    def traced_expand(*args, **options):
        found = expand(*args, **options)
        event("cli: files listed")
        return found

    def traced_stream(plan, submitter, *args, **options):
        event("cli: batch stream started")
        if type(submitter).__name__ == "_Inline":
            _wrap_chunks("cli")
        yield from stream(plan, submitter, *args, **options)
        event("cli: batch stream ended")

    def traced_merge(early, chunk, outcomes):
        event("cli: chunk recorded")
        return merge(early, chunk, outcomes)

    _files.expand, _stream._merge = traced_expand, traced_merge
    _pool._stream = _executor._stream = traced_stream


provenance.batch.warm_up = warm_up  # before the CLI's modules import it
from provenance import cli

event("cli: CLI imported")
code = cli.main(sys.argv[1:])
event("cli: command over")
getattr(cli, "_exit", sys.exit)(code)  # the console script's exit, where the tree has it
"""

ORDER = (
    "cli: started",
    "cli: CLI imported",
    "cli: warm_up called",
    "cli: warm_up returned (forked)",
    "cli: files listed",
    "cli: batch stream started",
    "cli: first chunk started",
    "cli: first chunk done",
    "cli: last chunk done",
    "cli: first chunk recorded",
    "cli: last chunk recorded",
    "cli: batch stream ended",
    "cli: command over",
    "cli: process gone",
    "worker: forked",
    "worker: imports done",
    "worker: spec received",
    "worker: first chunk started",
    "worker: first chunk done",
    "worker: last chunk done",
    "worker: exit",
)


def _options(parser: Any) -> None:
    parser.add_argument("--verb", choices=("sign", "verify"), default="sign")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--src", default=None, help="the package tree to run (default: this one)")


def _env(src: Path, out: Path, pycache: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
        "PYTHONPYCACHEPREFIX": str(pycache),  # compiled once, as an installed package is
        "TIMELINE_OUT": str(out),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _milestones(lines: list[str], launched: float, gone: float) -> dict[str, tuple[float, float]]:
    """Each milestone's (seconds since launch, CPU seconds of its process); workers numbered."""
    events = []
    for line in lines:
        stamp, pid, cpu, name = line.split(" ", 3)
        events.append((float(stamp) - launched, int(pid), float(cpu), name))
    cli_pid = events[0][1]
    workers = [pid for _, pid, _, name in events if name == "worker: forked"]
    found: dict[str, tuple[float, float]] = {}
    for at, pid, cpu, name in events:
        who = "cli" if pid == cli_pid else f"worker {workers.index(pid) + 1}"
        what = name.split(": ", 1)[1]
        if what.startswith("chunk "):
            found.setdefault(f"{who}: first {what}", (at, cpu))
            if what != "chunk started":
                found[f"{who}: last {what}"] = (at, cpu)
        else:
            found[f"{who}: {what}"] = (at, cpu)
    found["cli: process gone"] = (gone - launched, found["cli: command over"][1])
    return found


def _run(command: list[str], env: dict[str, str], out: Path) -> dict[str, tuple[float, float]]:
    out.unlink(missing_ok=True)
    launched = time.time()
    done = subprocess.run(
        [sys.executable, "-c", TRACED, *command],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    gone = time.time()
    if done.returncode != 0:
        raise SystemExit(f"the command failed ({done.returncode}): {done.stderr[-2000:]}")
    return _milestones(out.read_text().splitlines(), launched, gone)


def main() -> int:
    args = parse_args(
        "batch_timeline", __doc__ or "", default_repeats=5, quick_repeats=1, extra=_options
    )
    info = machine_info()
    header("batch_timeline", info, args)
    src = Path(args.src).resolve() if args.src else ROOT / "src"
    if args.quick:
        images = sample_images(quick=False)
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        from corpus import ensure

        images = ensure().paths("packshot")[:IMAGES]
    _key, _trust, keys = dev_keys()
    work = Path(tempfile.mkdtemp(prefix="provenance-bench-timeline-"))
    env = _env(src, work / "events.txt", work / "pycache")
    source = work / "in"
    source.mkdir()
    for i, path in enumerate(images):
        shutil.copyfile(path, source / f"{i:04d}{path.suffix}")
    record = ROOT / "sample_media" / "forest-path.jpg.json"
    signed = work / "signed"
    sign = ["sign", str(source), "--record", str(record), "--keys", str(keys), "--json"]
    runs: list[dict[str, tuple[float, float]]] = []
    try:
        if args.verb == "verify":  # signed once, untimed
            inventory = ["--inventory", str(work / "signed.sqlite")]
            _run([*sign, "--out", str(signed), *inventory], env, work / "events.txt")
        for round_no in range(args.repeats + 1):  # the first run fills the bytecode cache
            out = work / f"out-{round_no}"
            if args.verb == "sign":
                command = [*sign, "--out", str(out), "--inventory", str(out) + ".sqlite"]
            else:
                command = ["verify", str(signed), "--trust-anchors", str(keys / "ca.pem")]
                command += ["--inventory", str(work / "signed.sqlite"), "--json"]
            found = _run([*command, "--workers", str(args.workers)], env, work / "events.txt")
            if round_no:
                runs.append(found)
            shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(keys, ignore_errors=True)
    medians = _medians(runs)
    results = {
        "machine": info,
        "verb": args.verb,
        "workers": args.workers,
        "images": len(images),
        "rounds": args.repeats,
        "src": str(src),
        "milestones_median_s": {
            name: {"at": at, "cpu": cpu} for name, (at, cpu) in medians.items()
        },
        "runs": [{name: list(value) for name, value in run.items()} for run in runs],
    }
    write_json(args.out, results)
    rows = [(name, f"{at * 1000:.0f}", f"{cpu * 1000:.0f}") for name, (at, cpu) in medians.items()]
    console.print(
        table(
            f"timeline: {args.verb} {len(images)} images --workers {args.workers}, "
            f"medians of {args.repeats} runs",
            ("milestone", "ms since launch", "process CPU ms"),
            rows,
            caption=machine_line(info),
        )
    )
    return 0


def _medians(runs: list[dict[str, tuple[float, float]]]) -> dict[str, tuple[float, float]]:
    """Each milestone's median time and CPU, in the order of :data:`ORDER` (workers numbered)."""
    values: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for run in runs:
        for name, value in run.items():
            values[name].append(value)

    def rank(name: str) -> tuple[int, str]:
        who, what = name.split(": ", 1)
        generic = ("cli: " if who == "cli" else "worker: ") + what
        return (ORDER.index(generic) if generic in ORDER else len(ORDER), who)

    return {
        name: (median(at for at, _ in found), median(cpu for _, cpu in found))
        for name, found in sorted(values.items(), key=lambda item: rank(item[0]))
    }


if __name__ == "__main__":
    sys.exit(main())
