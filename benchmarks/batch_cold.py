"""Batch start-up, end to end (issue 20): ``provenance sign|verify DIR --workers 1|2``, cold.

``benchmarks/batch.py`` starts the fork server once before its rounds (a
service that runs many batches); a person running the CLI pays the whole
start-up every time: a new Python process, its imports, the fork server (which
imports numpy, Pillow and c2pa again) and the workers. This benchmark times
that, the whole command, in a fresh process per run:

* ``workers-1``: ``--workers 1`` (signs in the CLI's process, no pool);
* ``workers-2``: ``--workers 2`` as shipped: on Linux the CLI's process forks
  its two workers once it has imported what it shares with them (the inventory,
  keys, containers: ``provenance.batch._forkserver._SHARED``; for ``sign`` also
  numpy, Pillow and the perceptual hashes), before it imports the signing side
  (c2pa, the verbs, OpenCV: each worker imports what its verb needs itself) and
  before it loads keys or opens the inventory (``provenance.batch.warm_up``),
  and leaves them all the signing;
* ``workers-2-server``: ``--workers 2`` as before that
  (``provenance.batch._forkserver._FORK_FROM_CALLER = False``): the workers fork
  from the fork server, which imports the library again beside the CLI, and the
  CLI's process signs the first chunks itself while they start.

Each run signs the same 200 packshots (``benchmarks/corpus.py``) into a fresh
folder and a fresh inventory; with ``--verb verify`` each run verifies those 200
files, signed once beforehand, against the trust anchor and their inventory. Per round
every variant runs once, in a shuffled order; the ratio
``wall(workers-1) / wall(variant)`` is taken inside a round and the median over
rounds reported. The goal: ``workers-2`` >= 1.6x ``workers-1``.

Each round also runs every variant on twice the files (``2N``): the marginal
speed-up ``(wall1(2N) - wall1(N)) / (wall(2N) - wall(N))`` is what a second
worker does for the files past the start-up (which cancels out; goal >= 1.8x).
The CLI process's own CPU time per run is recorded (with the workers it forked
and reaped; not a fork server's), and the parts a start-up is made of, in fresh
processes: the CLI's imports (``import provenance.cli``: only what comes before
the command calls ``warm_up``), what the fork server imports before its first
worker forks (its preload list, ``provenance.batch._forkserver._PRELOAD``) and
what the CLI's process imports before it forks its workers (the CLI and the
shared list; a tree from before issue 20's early fork: the CLI and the whole
preload list).
From CPU times, which a loaded machine inflates far less than wall times, idle
2-core estimates: one worker takes its CPU time. The parts model (for the fork
server) takes two to need ``imports + (work + fork server) / 2``. The measured
model takes the CPU of every process of the command (the benchmark adopts the
orphans a fork server leaves): what runs alone (the CLI's imports before it
starts the fork server; or, when it forks its workers itself, everything it
imports before the fork, since nothing runs beside that) plus the rest shared
by two cores. Both are optimistic: they take what is shared to share two cores
perfectly. ``--src`` times another tree of the package; ``--against`` a second
tree in the same rounds (``workers-1`` and ``workers-2`` on it, shuffled in with
the others, each tree's ratios against its own ``workers-1`` of the round): a
paired A/B, which a shared machine's load swings need.

Run::

    .venv/bin/python benchmarks/batch_cold.py            # 200 packshots, 5 rounds
    .venv/bin/python benchmarks/batch_cold.py --quick    # sample_media, 1 round
    .venv/bin/python benchmarks/batch_cold.py --verb verify --repeats 3
    .venv/bin/python benchmarks/batch_cold.py --src ../provenance-main/src   # another tree
    .venv/bin/python benchmarks/batch_cold.py --against ../base/src          # paired A/B
"""

from __future__ import annotations

import ctypes
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    console,
    dev_keys,
    fmt_ratio,
    header,
    machine_info,
    machine_line,
    median,
    parse_args,
    sample_images,
    scratch_dir,
    table,
    write_json,
)

IMAGES = 200
VARIANTS = ("workers-1", "workers-2", "workers-2-server")
FORKED = frozenset({"workers-2"})
"""Variants whose workers fork from the CLI's process (where it may fork: Linux)."""
AGAINST = " (against)"
"""The suffix of a variant run on the ``--against`` tree."""
_VARIANTS = list(VARIANTS)
"""The variants of this run: with ``--against``, also workers-1 and workers-2 on that tree."""
GOAL = 1.6
GOAL_MARGINAL = 1.8

RUN = """
import atexit
import sys
import provenance.batch
from provenance.batch import _forkserver


def warm_up(workers, **options):
    # Set the switches where the command starts its pool, so that importing the
    # pool module does not come before the workers' (or their fork server's) start.
    _forkserver._FORK_FROM_CALLER = {fork}
    _forkserver.warm_up(workers, **options)


provenance.batch.warm_up = warm_up  # before the CLI's modules import it


def forked():
    # Whether the workers were forked from this process (a tree without it says no).
    standby = sys.modules.get("provenance.batch._standby")
    print("forked:", bool(getattr(standby, "_ALIVE", None)), file=sys.stderr)


atexit.register(forked)
from provenance.cli import run  # the console script's entry: the tree's own exit with it
if __name__ == "__main__":
    run()
"""

SERVER_IMPORTS = """
from provenance.batch._forkserver import _PRELOAD
for name in _PRELOAD:
    __import__(name)
"""
"""What the pool's fork server imports before it forks a worker."""

BEFORE_FORK = """
import sys
import provenance.cli
from provenance.batch import _forkserver
# What warm_up imports before it forks (issue 20: what the CLI and its workers share;
# for sign also numpy, Pillow and the perceptual hashes, since the fourteenth session);
# a tree from before that imported the fork server's whole preload list.
names = getattr(_forkserver, "_SHARED", _forkserver._PRELOAD)
if sys.argv[1:] == ["sign"]:
    names = (*names, *getattr(_forkserver, "_SHARED_SIGNING", ()))
for name in names:
    __import__(name)
"""
"""What the CLI's process imports before it forks its workers (``workers-2``)."""


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


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


_PYCACHE = scratch_dir("provenance-bench-pycache-")


_SRC = [ROOT / "src", ROOT / "src"]
"""The trees of the package the runs import: ``--src`` (default this checkout's), ``--against``."""


def _env(variant: str = "") -> dict[str, str]:
    """The runs' environment: this tree's sources, with their bytecode cached.

    An installed package has its modules compiled; a shell with
    ``PYTHONDONTWRITEBYTECODE=1`` (as this machine's has) would make every run
    compile the library's modules again (about 0.1 s of CPU per import of it).
    The cache goes to a temporary folder, not into the source tree.
    """
    tree = _SRC[1] if variant.endswith(AGAINST) else _SRC[0]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]),
        "PYTHONPYCACHEPREFIX": str(_PYCACHE),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _part(code: str, *args: str) -> tuple[float, float]:
    """Wall and CPU seconds of ``python -c code ARGS`` in a fresh process."""
    env = _env()
    cpu, start = _cpu_children(), time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], env=env, check=True)
    return time.perf_counter() - start, _cpu_children() - cpu


_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def _adopt_orphans() -> bool:
    """Become the reaper of every process our runs leave behind (Linux).

    A CLI process does not wait for its fork server (which exits once the CLI
    has) nor for the workers the server forked: without this their CPU time
    would be nobody's child time, and the whole command's CPU unknown.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def _reap(deadline_s: float = 30.0) -> None:
    """Wait for the orphans a run left (its fork server, its workers), up to a deadline."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def _run(
    variant: str,
    command: list[str],
    cpu: list[float] | None = None,
    tree_cpu: list[float] | None = None,
    forked: list[bool] | None = None,
) -> float:
    workers = "1" if variant.startswith("workers-1") else "2"
    code = RUN.format(fork=variant.removesuffix(AGAINST) in FORKED)
    env = _env(variant)
    args = [sys.executable, "-c", code, *command, "--workers", workers]
    used, start = _cpu_children(), time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if cpu is not None:  # the CLI process (its fork server is not its to wait for)
        cpu.append(_cpu_children() - used)
    _reap()
    if tree_cpu is not None:  # and every process it started (adopted, then reaped)
        tree_cpu.append(_cpu_children() - used)
    if done.returncode != 0 or ('"trusted"' not in done.stdout and command[0] == "verify"):
        raise SystemExit(f"{variant} failed ({done.returncode}): {done.stderr}")
    if forked is not None:
        forked.append("forked: True" in done.stderr)
    return wall


def _options(parser: Any) -> None:
    parser.add_argument("--verb", choices=("sign", "verify"), default="sign")
    parser.add_argument(
        "--src",
        default=None,
        help="the package tree to time (e.g. a main worktree's src, for an A/B); "
        "default: this checkout's src",
    )
    parser.add_argument(
        "--against",
        default=None,
        help="a second tree (e.g. ../base/src): each round also runs workers-1 and workers-2 "
        "on it, in the same shuffled order (a paired A/B in one window)",
    )


def main() -> int:
    args = parse_args(
        "batch_cold",
        __doc__ or "",
        default_repeats=5,
        quick_repeats=1,
        extra=_options,
    )
    if args.src is not None:
        _SRC[0] = Path(args.src).resolve()
    if args.against is not None:
        _SRC[1] = Path(args.against).resolve()
        _VARIANTS.extend(f"{variant}{AGAINST}" for variant in VARIANTS[:2])
    info = machine_info()
    header("batch_cold", info, args)
    images = _images(args.quick)
    _key, _trust, keys_folder = dev_keys()
    record = ROOT / "sample_media" / "forest-path.jpg.json"
    work = Path(tempfile.mkdtemp(prefix="provenance-bench-cold-"))
    sizes = {"N": len(images), "2N": 2 * len(images)}
    sources = {size: work / f"in-{size}" for size in sizes}
    for size, folder in sources.items():
        folder.mkdir()
        for i in range(sizes[size]):
            path = images[i % len(images)]
            shutil.copyfile(path, folder / f"{i:04d}{path.suffix}")
    signed = {size: work / f"signed-{size}" for size in sizes}
    runs = [(variant, size) for variant in _VARIANTS for size in sizes]
    walls: dict[tuple[str, str], list[float]] = {run: [] for run in runs}
    cpus: dict[tuple[str, str], list[float]] = {run: [] for run in runs}
    tree_cpus: dict[tuple[str, str], list[float]] = {run: [] for run in runs}
    forks: dict[tuple[str, str], list[bool]] = {run: [] for run in runs}
    adopted = _adopt_orphans()
    parts: dict[str, list[tuple[float, float]]] = {
        "cli_imports": [],
        "fork_server_imports": [],
        "imports_before_fork": [],
    }
    rng = random.Random(args.seed)
    try:
        for code in ("import provenance.cli", SERVER_IMPORTS, BEFORE_FORK):
            _part(code)  # fills the bytecode cache (untimed)
        if args.verb == "verify":
            for size in sizes:
                _run("workers-1", _sign_args(sources[size], signed[size], keys_folder, record))
        for round_no in range(args.repeats):
            order = list(runs)
            rng.shuffle(order)
            for variant, size in order:
                out = work / f"{variant}-{size}-{round_no}"
                if args.verb == "verify":
                    command = _verify_args(signed[size], keys_folder)
                else:
                    command = _sign_args(sources[size], out, keys_folder, record)
                walls[variant, size].append(
                    _run(
                        variant,
                        command,
                        cpus[variant, size],
                        tree_cpus[variant, size],
                        forks[variant, size],
                    )
                )
                shutil.rmtree(out, ignore_errors=True)
            parts["cli_imports"].append(_part("import provenance.cli"))
            parts["fork_server_imports"].append(_part(SERVER_IMPORTS))
            parts["imports_before_fork"].append(_part(BEFORE_FORK, args.verb))
            console.print(
                f"round {round_no + 1}/{args.repeats}: "
                + ", ".join(f"{v} {walls[v, 'N'][-1]:.2f} s" for v in _VARIANTS)
                + f" (load {os.getloadavg()[0]:.1f})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(_PYCACHE, ignore_errors=True)
        shutil.rmtree(keys_folder, ignore_errors=True)
    results = _results(args, info, len(images), walls, cpus, parts)
    results["src"] = str(_SRC[0])
    results["against"] = args.against and str(_SRC[1])
    results["idle_estimate_measured"] = _estimate_measured(cpus, tree_cpus, forks, parts, adopted)
    write_json(args.out, results)
    _print(args, info, results)
    return 0


def _results(
    args: Any,
    info: Any,
    images: int,
    walls: dict[tuple[str, str], list[float]],
    cpus: dict[tuple[str, str], list[float]],
    parts: dict[str, list[tuple[float, float]]],
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": info,
        "verb": args.verb,
        "images": images,
        "rounds": args.repeats,
        "note": (
            "whole CLI command in a fresh process per run; medians over rounds; "
            "marginal = (wall1(2N) - wall1(N)) / (wall(2N) - wall(N)) per round"
        ),
    }
    for variant in _VARIANTS:
        # Each tree's variants against its own workers-1, in the same round.
        one = "workers-1" + (AGAINST if variant.endswith(AGAINST) else "")
        base, base2 = walls[one, "N"], walls[one, "2N"]
        own, own2 = walls[variant, "N"], walls[variant, "2N"]
        # A round whose 2N run was not slower than its N run (load swings) says nothing.
        marginal = [
            (b2 - b) / (w2 - w)
            for b, b2, w, w2 in zip(base, base2, own, own2, strict=True)
            if w2 > w and b2 > b
        ]
        results[variant] = {
            "wall_s_median": median(own),
            "wall_s_median_2n": median(own2),
            "speedup_vs_workers_1": median(b / w for b, w in zip(base, own, strict=True)),
            "marginal_speedup_vs_workers_1": median(marginal) if marginal else None,
            "marginal_rounds": len(marginal),
            "cli_process_cpu_s_median": median(cpus[variant, "N"]),
            "wall_s": own,
            "wall_s_2n": own2,
        }
    results["parts_cpu_s"], results["idle_estimate"] = _estimate(cpus, parts)
    results["goal_speedup_workers_2"] = GOAL
    results["goal_marginal"] = GOAL_MARGINAL
    results["goal_met"] = (
        None if args.quick else results["workers-2"]["speedup_vs_workers_1"] >= GOAL
    )
    return results


def _estimate(
    cpus: dict[tuple[str, str], list[float]], parts: dict[str, list[tuple[float, float]]]
) -> tuple[dict[str, float], dict[str, Any]]:
    """The parts' CPU seconds, and the idle 2-core estimate made of them."""
    imports = median(cpu for _, cpu in parts["cli_imports"])
    server = median(cpu for _, cpu in parts["fork_server_imports"])
    one = median(cpus["workers-1", "N"])
    work = max(one - imports, 0.0)
    two = imports + (work + server) / 2
    found = {
        "cli_imports": imports,
        "fork_server_imports": server,
        "workers_1_cpu": one,
        "work": work,
        "cli_imports_wall_s": median(wall for wall, _ in parts["cli_imports"]),
    }
    estimate = {
        "workers_1_s": one,
        "workers_2_s": two,
        "speedup": one / two if two > 0 else None,
        "model": "workers-1 = its CPU; workers-2 = imports + (work + fork server) / 2",
    }
    return found, estimate


def _estimate_measured(
    cpus: dict[tuple[str, str], list[float]],
    tree_cpus: dict[tuple[str, str], list[float]],
    forks: dict[tuple[str, str], list[bool]],
    parts: dict[str, list[tuple[float, float]]],
    adopted: bool,
) -> dict[str, Any] | None:
    """The idle 2-core estimate from the CPU every process of the command used.

    workers-2 = what runs alone before a second core can help, plus the rest of
    the CPU of the CLI, its fork server (if any) and its workers shared by two
    cores. What runs alone: with a fork server, the CLI's imports before it
    starts the server (the library's imports then run beside the server's);
    with workers forked from the CLI's process, its imports up to the fork
    (the library's and the preload list: nothing runs beside them). Unlike the
    parts model it counts what the parts leave out (each worker's start, the
    pipes, the calling process's share); still optimistic in that it takes that
    rest to share two cores perfectly (also the CLI's key, inventory and
    listing work between the fork and the batch's start).
    """
    if not adopted:
        return None
    imports = median(cpu for _, cpu in parts["cli_imports"])
    before_fork = median(cpu for _, cpu in parts["imports_before_fork"])
    one = median(cpus["workers-1", "N"])
    found: dict[str, Any] = {"workers_1_s": one}
    for variant in VARIANTS[1:]:
        tree = median(tree_cpus[variant, "N"])
        forked = bool(forks[variant, "N"]) and all(forks[variant, "N"])
        alone = before_fork if forked else imports
        two = alone + max(tree - alone, 0.0) / 2
        found[variant] = {
            "cpu_all_processes_s": tree,
            "forked_from_cli": forked,
            "alone_s": alone,
            "workers_2_s": two,
            "speedup": one / two if two > 0 else None,
        }
    found["model"] = (
        "workers-1 = its CPU; workers-2 = alone + (CPU of the CLI, its fork server and its "
        "workers - alone) / 2; alone = the CLI's imports before it starts the fork server, "
        "or before it forks its workers"
    )
    return found


def _ratio_or_dash(value: float | None) -> str:
    return "-" if value is None else fmt_ratio(value)


def _print(args: Any, info: Any, results: dict[str, Any]) -> None:
    rows = [
        (
            variant,
            f"{results[variant]['wall_s_median']:.2f} s",
            fmt_ratio(results[variant]["speedup_vs_workers_1"]),
            f"{results[variant]['wall_s_median_2n']:.2f} s",
            _ratio_or_dash(results[variant]["marginal_speedup_vs_workers_1"]),
            f"{results[variant]['cli_process_cpu_s_median']:.2f} s",
        )
        for variant in _VARIANTS
    ]
    parts, estimate = results["parts_cpu_s"], results["idle_estimate"]
    console.print(
        table(
            f"batch start-up, end to end: {args.verb} {results['images']} images "
            f"(and twice as many), medians of {args.repeats} rounds",
            ("variant", "wall N", "vs workers-1", "wall 2N", "marginal", "CLI CPU"),
            rows,
            caption=(
                f"{machine_line(info)}\nCPU parts: CLI imports {parts['cli_imports']:.2f} s, "
                f"fork server imports {parts['fork_server_imports']:.2f} s, workers-1 "
                f"{parts['workers_1_cpu']:.2f} s; idle 2-core estimate: workers-2 "
                f"{estimate['workers_2_s']:.2f} s vs {estimate['workers_1_s']:.2f} s = "
                f"{estimate['speedup']:.2f}x (goals {GOAL}x end to end, "
                f"{GOAL_MARGINAL}x marginal)" + _measured_line(results)
            ),
        )
    )


def _measured_line(results: dict[str, Any]) -> str:
    measured = results.get("idle_estimate_measured")
    if not measured:
        return ""
    lines = [
        "\nfrom the CPU of every process (CLI, fork server, workers), idle 2-core estimate "
        f"vs workers-1 {measured['workers_1_s']:.2f} s:"
    ]
    for variant in VARIANTS[1:]:
        two = measured[variant]
        how = "forked from the CLI" if two["forked_from_cli"] else "fork server"
        lines.append(
            f"  {variant} ({how}): {two['cpu_all_processes_s']:.2f} s of CPU, "
            f"{two['alone_s']:.2f} s alone, {two['workers_2_s']:.2f} s = {two['speedup']:.2f}x"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
