"""The 18 rendition marks of one import as ``sign_import`` makes them: before and after, paired.

``provenance.sign_import(..., renditions=...)`` with the default
``RenditionMark.INVENTORY`` marks each rendition the pipeline made: the essence
ranges of its container, the essence and file SHA-256 and the asset id
(``renditions._mark_renditions``, one record shared by the 18). This times that step
alone for the 18 Luma renditions of a 1 MP original (1280 x 800 from
``forest-path.jpg``, resized with LANCZOS, ``reducing_gap=3.0``, as
``overhead.py``'s pipelines do), encoded as each format a pipeline stores: JPEG q80
(the lean pipeline), PNG and WebP q80. It is thread CPU time per import, the median
over the imports of a process; ``import_parts.py``'s "rendition marks" row times the
public ``sign_rendition`` per rendition instead (a record built per call).

``--against SRC`` compares two trees of the package: each round runs one process
with the package as imported now and one with ``SRC`` on ``PYTHONPATH``, in
alternating order; the medians of the rounds' medians are reported, with each
tree's range over the rounds. Every round checks that both trees give the same
essence hashes, file hashes and asset ids.

    mkdir -p ../base && git archive HEAD src | tar -x -C ../base   # before the change
    PYTHONPATH=src .venv/bin/python benchmarks/rendition_marks.py --against ../base/src
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image

from _common import (
    SAMPLE_MEDIA,
    against_option,
    alternating_trees,
    console,
    dev_keys,
    header,
    load_record,
    machine_info,
    median,
    parse_args,
    table,
    write_json,
)

NAME = "rendition_marks"
IMPORTS = 200  # per process and format; the first ten are warm-up
FORMATS = ("jpeg", "png", "webp")


def measure(imports: int) -> dict[str, Any]:
    """One process: CPU ms of the 18 marks per import and format, and a digest of the results."""
    sys.path.insert(0, str(Path(__file__).parent))
    import overhead
    import provenance
    from provenance import renditions

    key, _trust, keys = dev_keys()
    record = load_record(SAMPLE_MEDIA / "forest-path.jpg")
    with Image.open(SAMPLE_MEDIA / "forest-path.jpg") as opened:
        decoded = opened.convert("RGB").resize((1280, 800), Image.Resampling.LANCZOS)
    now = datetime.now(timezone.utc)
    out: dict[str, Any] = {}
    for fmt in FORMATS:
        made = [
            (overhead.encode(overhead.rendition(decoded, w, h, frame, gap=3.0), fmt), f"c/{k}")
            for k, (w, h, frame) in enumerate(overhead.LUMA_SIZES)
        ]
        original = made[-1][0]  # any signed file will do: only its hashes are the parent
        signed, parent = provenance.sign_bytes(original, record=record, key=key, now=now)
        times = []
        for _ in range(imports):
            started = time.thread_time_ns()
            marked = renditions._mark_renditions(
                made,
                parent,
                signed,
                key=key,
                mark=provenance.RenditionMark.INVENTORY,
                options=None,
                now=now,
            )
            times.append(time.thread_time_ns() - started)
        seen = "".join(
            f.result.essence_sha256_hex + f.result.sha256_hex + f.result.asset_id for f in marked
        )
        out[fmt] = {
            "ms": median(times[10:]) / 1e6,
            "bytes": sum(len(data) for data, _ in made),
            "results_sha256": hashlib.sha256(seen.encode()).hexdigest(),
        }
    for path in keys.iterdir():
        path.unlink()
    keys.rmdir()
    return out


def main() -> int:
    """Run the benchmark; see the module docstring."""
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(measure(int(sys.argv[2]))))
        return 0
    args = parse_args(
        NAME, __doc__.splitlines()[0], default_repeats=5, quick_repeats=2, extra=_extra
    )
    info = machine_info()
    header(NAME, info, args)
    imports = 30 if args.quick else IMPORTS
    trees, rounds = alternating_trees(__file__, args.against, args.repeats, [str(imports)])
    every = [r for found in rounds.values() for r in found]
    digests = {(fmt, r[fmt]["results_sha256"]) for r in every for fmt in FORMATS}
    if len(digests) != len(FORMATS):
        raise SystemExit("the trees gave different essence hashes, file hashes or asset ids")
    result = {
        tree: {fmt: median([r[fmt]["ms"] for r in found]) for fmt in FORMATS}
        for tree, found in rounds.items()
    }
    spread = {
        tree: {
            fmt: (min(r[fmt]["ms"] for r in found), max(r[fmt]["ms"] for r in found))
            for fmt in FORMATS
        }
        for tree, found in rounds.items()
    }
    write_json(
        args.out,
        {"benchmark": NAME, "machine": info, "imports_per_round": imports, "trees": trees,
         "rounds": rounds, "cpu_ms_median": result, "cpu_ms_range": spread},
    )  # fmt: skip
    sizes = rounds["now"][0]
    columns = ["18 renditions (CPU ms per import)", *trees]
    rows = [
        [
            f"{fmt} ({sizes[fmt]['bytes'] / 1e3:.0f} KB)",
            *(_cell(result[t][fmt], spread[t][fmt]) for t in trees),
        ]
        for fmt in FORMATS
    ]
    title = f"{NAME}: medians of {args.repeats} rounds (range over rounds)"
    console.print(table(title, columns, rows))
    return 0


def _cell(value: float, low_high: tuple[float, float]) -> str:
    return f"{value:.3f} ({low_high[0]:.3f}-{low_high[1]:.3f})"


def _extra(parser: Any) -> None:
    against_option(parser)


if __name__ == "__main__":
    raise SystemExit(main())
