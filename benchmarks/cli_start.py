"""The command line's start-up (issue 20): whole ``provenance`` commands, fresh processes, paired.

Every command pays its start before any work: the interpreter, typer, the
command's module, what the command imports to run. This times whole commands,
each in a fresh ``python -m provenance`` process, as a person or a script runs
them:

* ``--version`` and ``--help``;
* ``verify FILE --json`` of one signed 1-2 MB JPEG against its trust anchor,
  without an inventory (none found: the warning says so) and with one (the
  inventory the file was signed into: its essence is looked up);
* ``sign FILE --json`` of one JPEG into a fresh folder, recorded in an inventory
  made beforehand (what a second ``sign`` of the day does).

Per command: the wall time of the process, and its CPU time (user + system, from
``getrusage`` of the children), which a loaded machine inflates far less. The
bytecode of both trees is cached (in a temporary folder) by a warm-up run of
every command: an installed package runs compiled. The shell's
``PYTHONDONTWRITEBYTECODE`` is dropped for the runs, else every run compiles the
package again.

``--against SRC`` times another tree of the package too (e.g. a ``git archive``
of main): in every round each command runs once per tree, in alternating order,
so the load of a shared machine hits both alike; the median of the paired
differences is reported with the medians.

Run::

    .venv/bin/python benchmarks/cli_start.py                       # 15 rounds
    .venv/bin/python benchmarks/cli_start.py --quick               # 2 rounds
    .venv/bin/python benchmarks/cli_start.py --against ../main/src # paired A/B
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    SAMPLE_MEDIA,
    against_option,
    console,
    dev_keys,
    header,
    machine_info,
    machine_line,
    median,
    parse_args,
    table,
    write_json,
)

NAME = "cli_start"
ROOT = Path(__file__).resolve().parents[1]
IMAGE = "forest-path.jpg"
COMMANDS = ("--version", "--help", "verify", "verify, inventory", "sign")


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _env(src: Path, pycache: Path) -> dict[str, str]:
    """A fresh process's environment: ``src`` first on the path, its bytecode cached."""
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONPYCACHEPREFIX": str(pycache)}
    for name in ("PYTHONDONTWRITEBYTECODE", "PROVENANCE_INVENTORY", "PROVENANCE_AUDIT_WITNESS"):
        env.pop(name, None)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``python -m provenance ARGS``; fails on an unexpected exit."""
    before, start = _cpu_children(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "provenance", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    wall, cpu = time.perf_counter() - start, _cpu_children() - before
    if done.returncode != 0:
        raise SystemExit(f"provenance {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return wall, cpu


class _Setup:
    """The files the commands work on, made once in a temporary folder."""

    def __init__(self, env: dict[str, str]) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="provenance-bench-cli-"))
        self.cwd = self.work / "cwd"  # no provenance.toml nor .provenance here or above
        self.cwd.mkdir()
        _key, _trust, self.keys = dev_keys()
        self.source = self.work / IMAGE
        shutil.copyfile(SAMPLE_MEDIA / IMAGE, self.source)
        shutil.copyfile(SAMPLE_MEDIA / f"{IMAGE}.json", self.work / f"{IMAGE}.json")
        self.inventory = self.work / "verify.sqlite"
        self.signed = self.work / "signed"
        self.sign_inventory = self.work / "sign.sqlite"
        made = [*self._sign(self.signed), "--inventory", str(self.inventory)]
        _run(made, env, self.cwd)
        self.runs = 0

    def _sign(self, out: Path) -> list[str]:
        return ["sign", str(self.source), "--out", str(out), "--keys", str(self.keys), "--json"]

    def args(self, command: str) -> list[str]:
        """The arguments of ``command``; each ``sign`` run writes into a fresh folder."""
        anchors = ["--trust-anchors", str(self.keys / "ca.pem"), "--json"]
        if command == "verify":
            return ["verify", str(self.signed / IMAGE), *anchors]
        if command == "verify, inventory":
            return [
                "verify",
                str(self.signed / IMAGE),
                *anchors,
                "--inventory",
                str(self.inventory),
            ]
        if command == "sign":
            self.runs += 1
            out = self.work / f"out-{self.runs}"
            return [*self._sign(out), "--inventory", str(self.sign_inventory)]
        return [command]

    def clean(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.rmtree(self.keys, ignore_errors=True)


def main() -> int:
    """Run the benchmark; see the module docstring."""
    args = parse_args(
        NAME, __doc__.splitlines()[0], default_repeats=15, quick_repeats=2, extra=_extra
    )
    info = machine_info()
    header(NAME, info, args)
    pycache = Path(tempfile.mkdtemp(prefix="provenance-bench-pycache-"))
    trees = {"now": ROOT / "src"}
    if args.against is not None:
        trees = {"against": args.against.resolve(), **trees}
    envs = {tree: _env(src, pycache / tree) for tree, src in trees.items()}
    setup = _Setup(envs["now"])
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {
        tree: {command: [] for command in COMMANDS} for tree in trees
    }
    try:
        for tree in trees:  # the bytecode cache, and a first inventory write (untimed)
            for command in COMMANDS:
                _run(setup.args(command), envs[tree], setup.cwd)
        for r in range(args.repeats):
            for command in COMMANDS:
                for tree in list(trees) if r % 2 == 0 else list(trees)[::-1]:
                    found = _run(setup.args(command), envs[tree], setup.cwd)
                    samples[tree][command].append(found)
            console.print(f"round {r + 1}/{args.repeats} (load {os.getloadavg()[0]:.1f})")
    finally:
        setup.clean()
        shutil.rmtree(pycache, ignore_errors=True)
    results = _results(samples)
    write_json(
        args.out,
        {"benchmark": NAME, "machine": info, "rounds": args.repeats,
         "trees": {tree: str(src) for tree, src in trees.items()},
         "note": "fresh `python -m provenance` per run, bytecode cached; seconds; "
                 "diff = median over rounds of (now - against), paired within a round",
         "results": results, "samples": samples},
    )  # fmt: skip
    _print(args, info, trees, results)
    return 0


def _results(samples: dict[str, dict[str, list[tuple[float, float]]]]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for command in COMMANDS:
        row: dict[str, Any] = {}
        for tree, found in samples.items():
            row[tree] = {
                "wall_s_median": median(w for w, _ in found[command]),
                "cpu_s_median": median(c for _, c in found[command]),
            }
        if "against" in samples:
            pairs = list(zip(samples["now"][command], samples["against"][command], strict=True))
            row["diff_wall_s_median"] = median(n[0] - a[0] for n, a in pairs)
            row["diff_cpu_s_median"] = median(n[1] - a[1] for n, a in pairs)
        results[command] = row
    return results


def _print(args: Any, info: Any, trees: dict[str, Path], results: dict[str, Any]) -> None:
    columns = ["command"]
    for tree in trees:
        columns += [f"{tree} wall ms", f"{tree} CPU ms"]
    if "against" in trees:
        columns += ["diff wall ms", "diff CPU ms"]
    rows = []
    for command, row in results.items():
        cells = [command]
        for tree in trees:
            cells += [f"{1000 * row[tree]['wall_s_median']:.0f}"]
            cells += [f"{1000 * row[tree]['cpu_s_median']:.0f}"]
        if "against" in trees:
            cells += [f"{1000 * row['diff_wall_s_median']:+.0f}"]
            cells += [f"{1000 * row['diff_cpu_s_median']:+.0f}"]
        rows.append(cells)
    title = f"{NAME}: fresh processes, medians of {args.repeats} rounds"
    console.print(table(title, columns, rows, caption=machine_line(info)))


def _extra(parser: Any) -> None:
    against_option(
        parser,
        help="another tree of the package (its src folder), run alternately with this one",
    )


if __name__ == "__main__":
    raise SystemExit(main())
