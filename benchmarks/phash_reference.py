"""An original's perceptual reference rows and a copy's query features: CPU per image, two trees.

What signing stores (``phash.reference_hashes`` of the decoded original: 19-23 rows and
the descriptor) and what verify computes for a found copy (``phash.query_features``),
each image alone, as the in-pipeline call makes them: the sample images as decoded,
and the 1 MP JPEG of ``import_parts.py`` (``forest-path.jpg`` at 1280 x 800, q90, the
class furthest from issue 20's goals). Process CPU time (BLAS threads included) per
call, the median of ``CALLS`` calls after a warm-up, in one process per tree.

``--against SRC`` runs each round as one process with the package as imported now and
one with ``SRC`` on ``PYTHONPATH`` (e.g. ``../base/src``, a ``git archive`` of the tree
before a change), alternating their order, so that the machine's load hits both alike;
the table shows the medians of the rounds' medians and their ratio.

    PYTHONPATH=src .venv/bin/python benchmarks/phash_reference.py --against ../base/src
"""

from __future__ import annotations

import io
import json
import sys
import time
from typing import Any

from PIL import Image

from _common import (
    SAMPLE_MEDIA,
    against_option,
    alternating_trees,
    console,
    header,
    machine_info,
    median,
    parse_args,
    sample_images,
    table,
    write_json,
)

NAME = "phash_reference"
CALLS = 60  # per image and function in one process; the first 10 are warm-up


def _images(quick: bool) -> dict[str, Image.Image]:
    """The decoded inputs: the 1 MP JPEG first, then the sample images."""
    with Image.open(SAMPLE_MEDIA / "forest-path.jpg") as im:
        im.load()
        buffer = io.BytesIO()
        im.convert("RGB").resize((1280, 800), Image.Resampling.LANCZOS).save(
            buffer, "JPEG", quality=90
        )
    out = {}
    for name, data in [("1 MP JPEG (1280x800)", buffer.getvalue())] + [
        (p.name, p.read_bytes()) for p in sample_images(quick=quick)
    ]:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            out[name] = im.copy()
    return out


def measure(quick: bool) -> dict[str, dict[str, float]]:
    """One process: CPU ms per call of each function on each image."""
    from provenance._core import phash

    calls = 20 if quick else CALLS
    functions = {
        "reference_hashes": lambda im: phash.reference_hashes(im),
        "query_features": lambda im: phash.query_features([im]),
    }
    out: dict[str, dict[str, float]] = {f: {} for f in functions}
    for name, image in _images(quick).items():
        for label, fn in functions.items():
            times = []
            for _ in range(calls):
                started = time.process_time_ns()
                fn(image)
                times.append(time.process_time_ns() - started)
            out[label][name] = median(times[10:]) / 1e6
    return out


def main() -> int:
    """Run the benchmark; see the module docstring."""
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(measure(sys.argv[2] == "quick")))
        return 0
    args = parse_args(
        NAME, __doc__.splitlines()[0], default_repeats=5, quick_repeats=2, extra=_extra
    )
    info = machine_info()
    header(NAME, info, args)
    child = ["quick" if args.quick else "full"]
    trees, rounds = alternating_trees(__file__, args.against, args.repeats, child)
    first = rounds["now"][0]
    result = {
        tree: {fn: {im: median([r[fn][im] for r in found]) for im in first[fn]} for fn in first}
        for tree, found in rounds.items()
    }
    write_json(
        args.out,
        {"benchmark": NAME, "machine": info, "calls_per_image": CALLS, "trees": trees,
         "rounds": rounds, "cpu_ms_median": result},
    )  # fmt: skip
    for fn in first:
        columns = ["image (CPU ms per call)", *trees]
        if "against" in trees:
            columns.append("now / against")
        rows = []
        for im in first[fn]:
            row = [im, *(f"{result[tree][fn][im]:.3f}" for tree in trees)]
            if "against" in trees:
                row.append(f"{result['now'][fn][im] / result['against'][fn][im]:.2f}")
            rows.append(row)
        console.print(table(f"{fn}: medians of {args.repeats} rounds", columns, rows))
    return 0


def _extra(parser: Any) -> None:
    against_option(parser)


if __name__ == "__main__":
    raise SystemExit(main())
