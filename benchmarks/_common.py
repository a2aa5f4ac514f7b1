"""Shared helpers for the benchmarks: machine info, timing, medians, tables and JSON.

Timing rules (the machine is small, shared and noisy):

* every variant of every image is one *task*; a *round* runs each task once, in
  an order shuffled per round, so drift and neighbours hit all variants alike;
* ratios are computed inside a round (paired), then the median over rounds is
  reported, never a ratio of two numbers measured at different times;
* each timed call runs with the garbage collector off (as :mod:`timeit` does);
* fast calls are repeated ``number`` times per sample so that one sample lasts
  about a millisecond or more, well above the timer's resolution.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib.metadata
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_MEDIA = ROOT / "sample_media"
RESULTS = ROOT / "benchmarks" / "results"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
FORMAT_ORDER = ("jpeg", "png", "webp")

# Wide enough for the tables when the output is a file or a pipe (rich would use 80).
console = Console(width=None if sys.stdout.isatty() else 150)


# --- command line -------------------------------------------------------------------


def parse_args(
    name: str,
    description: str,
    *,
    default_repeats: int,
    quick_repeats: int,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """Parse ``--repeats``, ``--quick``, ``--out`` and ``--seed``; fill in the defaults.

    ``extra`` may add the benchmark's own options to the parser.
    """
    parser = argparse.ArgumentParser(prog=f"benchmarks/{name}.py", description=description)
    if extra is not None:
        extra(parser)
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"rounds over every task (default {default_repeats}; {quick_repeats} with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: the smallest image of each format, a few rounds (seconds)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS / f"{name}.json",
        help=f"where to write the JSON results (default benchmarks/results/{name}.json)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-round shuffle")
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = quick_repeats if args.quick else default_repeats
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


# --- inputs -------------------------------------------------------------------------


def sample_images(*, quick: bool) -> list[Path]:
    """The sample images, by format then name; with ``quick`` the smallest of each format."""
    paths = [p for p in SAMPLE_MEDIA.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    paths.sort(key=lambda p: (FORMAT_ORDER.index(image_format(p)), p.name))
    if not quick:
        return paths
    smallest: dict[str, Path] = {}
    for path in paths:
        fmt = image_format(path)
        if fmt not in smallest or path.stat().st_size < smallest[fmt].stat().st_size:
            smallest[fmt] = path
    return [smallest[f] for f in FORMAT_ORDER if f in smallest]


def image_format(path: Path) -> str:
    """``"jpeg"``, ``"png"`` or ``"webp"`` from the file name."""
    suffix = path.suffix.lower().lstrip(".")
    return "jpeg" if suffix in ("jpg", "jpeg") else suffix


def scratch_dir(prefix: str) -> Path:
    """A new temporary folder, removed when the process exits (whatever the caller forgets)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def dev_keys() -> tuple[Any, Any, Path]:
    """A throw-away development CA and signer: ``(SigningKey, TrustPolicy, folder)``."""
    from provenance._io.keys import SigningKey, TrustPolicy, init_dev_keys

    folder = scratch_dir("provenance-bench-keys-")
    paths = init_dev_keys(folder, organization="provenance benchmarks")
    key = SigningKey.from_pem_files(paths.chain, paths.private_key)
    trust = TrustPolicy.from_pem(paths.ca_certificate)
    return key, trust, folder


def load_record(image: Path) -> Any:
    """The record of ``image`` from its ``.json`` sidecar."""
    from provenance._core.record import ProvenanceRecord

    sidecar = image.with_name(image.name + ".json")
    return ProvenanceRecord.from_json(sidecar.read_text("utf-8"))


# --- machine ------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """CPU, cores, load, Python and library versions, for every result file."""
    from provenance._io.c2pa import c2pa_version

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "load_average_1_5_15": load,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "pillow": _version("pillow"),
        "numpy": _version("numpy"),
        "c2pa_python": _version("c2pa-python"),
        "c2pa_rs": c2pa_version(),
        "provenance": _version("provenance"),
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_line(info: Mapping[str, Any]) -> str:
    """One line describing the machine, for the table caption."""
    return (
        f"{info['cpu']}, {info['cores']} cores ({info['cores_usable']} usable), "
        f"load {'/'.join(str(x) for x in info['load_average_1_5_15'])} | "
        f"Python {info['python']}, Pillow {info['pillow']}, "
        f"c2pa-python {info['c2pa_python']} (c2pa-rs {info['c2pa_rs']})"
    )


# --- timing -------------------------------------------------------------------------


def time_ns(fn: Callable[[], object], number: int = 1) -> float:
    """Nanoseconds per call of ``fn``, over ``number`` back-to-back calls, GC off."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter_ns() - start
    finally:
        if enabled:
            gc.enable()
    return elapsed / number


def calibrate(fn: Callable[[], object], *, min_ns: float, max_number: int = 10_000) -> int:
    """How many back-to-back calls make one sample last at least ``min_ns``."""
    single = min(time_ns(fn) for _ in range(3))
    if single <= 0:
        return max_number
    return max(1, min(max_number, math.ceil(min_ns / single)))


def run_interleaved(
    tasks: Mapping[str, Callable[[], object]],
    repeats: int,
    *,
    seed: int = 0,
    number: Mapping[str, int] | None = None,
    label: str = "rounds",
) -> dict[str, list[float]]:
    """Run every task once per round, shuffled per round; return ns per call per round.

    Each task is called once before the first round (warm-up, not recorded).
    """
    number = number or {}
    for fn in tasks.values():
        fn()
    rng = random.Random(seed)
    order = list(tasks)
    samples: dict[str, list[float]] = {k: [] for k in order}
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        bar = progress.add_task(label, total=repeats)
        for _ in range(repeats):
            rng.shuffle(order)
            for key in order:
                samples[key].append(time_ns(tasks[key], number.get(key, 1)))
            progress.advance(bar)
    return samples


def against_option(
    parser: argparse.ArgumentParser,
    *,
    help: str = "another tree of the package (its src folder), run in alternating processes",
) -> None:
    """``--against SRC``: the benchmarks that compare two trees of the package."""
    parser.add_argument("--against", type=Path, default=None, metavar="SRC", help=help)


def alternating_trees(
    script: str, against: Path | None, repeats: int, child_args: Sequence[str]
) -> tuple[dict[str, str], dict[str, list[Any]]]:
    """Run ``script --child *child_args`` once per tree and round, in alternating order.

    The trees are the package as imported now (``"now"``: this ``PYTHONPATH``) and,
    with ``against``, that ``src`` folder (``"against"``, first); each round starts
    with the other one, so the machine's load hits both alike. Each child prints
    its result as JSON on its last line.

    Returns:
        The trees (name -> ``PYTHONPATH``) and each tree's results, one per round.
    """
    trees = {"now": os.environ.get("PYTHONPATH", "")}
    if against:
        trees = {"against": str(against), **trees}
    rounds: dict[str, list[Any]] = {tree: [] for tree in trees}
    for r in range(repeats):
        for tree in list(trees) if r % 2 == 0 else list(trees)[::-1]:
            done = subprocess.run(
                [sys.executable, script, "--child", *child_args],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": trees[tree]},
            )
            rounds[tree].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return trees, rounds


def median(values: Iterable[float]) -> float:
    """The median; NaN for no values."""
    data = list(values)
    return statistics.median(data) if data else math.nan


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    """The 25th and 75th percentiles (the inclusive method); equal for one value."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (math.nan, math.nan)
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def paired_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """Round-by-round ratios of two series measured in the same rounds."""
    return [a / b for a, b in zip(numerator, denominator, strict=True) if b > 0]


def ms(ns: float) -> float:
    """Nanoseconds to milliseconds."""
    return ns / 1e6


# --- output -------------------------------------------------------------------------


def table(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, caption: str = ""
) -> Table:
    """A rich table; numeric columns are right-aligned, section rows are bold."""
    out = Table(title=title, caption=caption or None, caption_justify="left")
    for i, name in enumerate(columns):
        out.add_column(name, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in rows:
        style = "bold" if row and str(row[0]).startswith(("median", "all ")) else None
        out.add_row(*(str(c) for c in row), style=style)
    return out


def fmt_ms(value: float, digits: int = 2) -> str:
    """A millisecond figure with a sensible number of digits."""
    if math.isnan(value):
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def fmt_ratio(value: float) -> str:
    """A ratio such as ``19.3x``."""
    if math.isnan(value):
        return "-"
    if value >= 100:
        return f"{value:,.0f}x"
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def fmt_bytes(value: float) -> str:
    """Bytes as ``8,141 B`` or ``1.16 MB`` (decimal units)."""
    if math.isnan(value):
        return "-"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.2f} MB"
    if abs(value) >= 1e5:
        return f"{value / 1e3:.0f} KB"
    return f"{value:,.0f} B"


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", "utf-8")


def header(name: str, info: Mapping[str, Any], args: argparse.Namespace) -> None:
    """Print what is about to run, and where."""
    console.print(f"[bold]{name}[/bold]: {machine_line(info)}")
    mode = "quick (smoke test)" if args.quick else "full"
    if getattr(args, "large_only", False):  # sign_verify.py runs only its 1-2 MB verify part
        mode = "large files only"
    console.print(f"mode {mode}, {args.repeats} rounds, seed {args.seed}, results -> {args.out}")
