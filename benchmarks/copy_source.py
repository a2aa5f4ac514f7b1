"""An original's perceptual rows from the pipeline's resized copy, against its full decode.

An import pipeline holds the original decoded and the renditions it resized from it;
``sign_import(image=...)`` takes either (issue 20: the largest rendition costs about
2-5 ms less CPU per import than a 1-12 MP original). ``robustness.py`` signs its corpus
at 768 px (LANCZOS from a draft decode), so its figures already describe references
made from a resized copy; this checks the large originals, where the two sources
differ. Each original of at least 1,000 px (the corpus's 11 photographs, 2560 x 1600
and one 5120 x 2880) is decoded whole; its references (``phash.reference_hashes``) are made
from that decode and from copies resized as the lean pipeline resizes (LANCZOS,
``reducing_gap=3.0``, aspect kept) to ``--sides`` (default 700, the largest Luma
rendition, and 512, the smallest ``sign_import`` accepts). Every copy transform of
``robustness.TRANSFORMS`` is applied to the **full** decode (the hardest case for a
reference made from a rendition), ``--draws`` times, and each query is matched against
its own original's references of each source: recall within the match threshold and
confirmed (``phash.confirmation``), and the largest own-distance. Against every other
original's references, the confirmed false pairs are counted too.

The partial-copy keypoints are checked the same way by ``keypoint_large.py --sources
512,700,full``.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/copy_source.py            # ~3 minutes
    PYTHONPATH=src .venv/bin/python benchmarks/copy_source.py --quick    # sample images, ~10 s
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from _common import SAMPLE_MEDIA, console, header, machine_info, parse_args, table, write_json
from corpus import ensure
from provenance._core import phash
from robustness import TRANSFORMS, features, flatten

NAME = "copy_source"
LARGE = 1000  # originals at least this long on one side
GAP = 3.0  # the lean pipeline's reducing_gap


def _options(parser: Any) -> None:
    parser.add_argument(
        "--sides",
        default="700,512",
        help="long sides of the resized copies references are made from (default 700,512)",
    )
    parser.add_argument(
        "--draws", type=int, default=2, help="queries per transform and original (default 2)"
    )


def _originals(quick: bool) -> list[tuple[str, Image.Image]]:
    """The corpus's photographs; ``--quick``: the large sample images (no corpus needed).

    Not both: sample_media's large images are the same wallpapers as some corpus
    photographs (Kite.jpg and kite-blue-sky.jpg), so their pairs would be true copies,
    not false ones.
    """
    if quick:
        paths = sorted(p for p in SAMPLE_MEDIA.iterdir() if p.suffix in (".jpg", ".webp"))
    else:
        paths = [i.path for i in ensure().of("photo")]
    out = []
    for path in paths:
        with Image.open(path) as im:
            if max(im.size) < LARGE:
                continue
            out.append((Path(path).name, flatten(im)))
    return out


def resized(image: Image.Image, side: int) -> Image.Image:
    """The lean pipeline's resize to ``side`` on the long side (aspect kept, never upscaled)."""
    copy = image.copy()
    copy.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=GAP)
    return copy


def _judge(
    query: phash.QueryFeatures, ref: phash.ReferenceHashes, threshold: int
) -> tuple[int, bool]:
    """(least distance over rows, within the threshold and confirmed)."""
    d = phash.hamming(query.words[:, None, :], ref.words[None])
    j, row = np.unravel_index(int(d.argmin()), d.shape)
    least = int(d[j, row])
    if least > threshold:
        return least, False
    check = phash.confirmation(query, int(j), ref.descriptor, variant=ref.variants[row])
    return least, check.confirmed


def _run(
    originals: Sequence[tuple[str, Image.Image]], sources: Sequence[str], draws: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    refs: dict[str, list[phash.ReferenceHashes]] = {
        source: [
            phash.reference_hashes(im if source == "full" else resized(im, int(source)))
            for _, im in originals
        ]
        for source in sources
    }
    threshold = phash.MATCH_THRESHOLD
    found = {s: {name: 0 for name in TRANSFORMS} for s in sources}
    worst = {s: {name: 0 for name in TRANSFORMS} for s in sources}
    false = dict.fromkeys(sources, 0)
    queries = 0
    for _ in range(draws):
        for i, (_, image) in enumerate(originals):
            made = [make(image, rng) for make in TRANSFORMS.values()]
            for name, query in zip(TRANSFORMS, features(made), strict=True):
                queries += 1
                for source in sources:
                    least, ok = _judge(query, refs[source][i], threshold)
                    found[source][name] += ok
                    worst[source][name] = max(worst[source][name], least)
                    false[source] += sum(
                        _judge(query, other, threshold)[1]
                        for k, other in enumerate(refs[source])
                        if k != i
                    )
    per = draws * len(originals)
    return {
        "threshold": threshold,
        "queries_per_transform": per,
        "recall_confirmed": {s: {n: c / per for n, c in found[s].items()} for s in sources},
        "largest_own_distance": worst,
        "false_pairs_confirmed": false,
        "false_pairs": queries * (len(originals) - 1),
    }


def main() -> int:
    args = parse_args(
        NAME, __doc__.splitlines()[0], default_repeats=1, quick_repeats=1, extra=_options
    )
    info = machine_info()
    header(NAME, info, args)
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if not all(s.isdigit() for s in sides):
        raise SystemExit(f"--sides: {args.sides!r} is not a list of pixel sizes")
    originals = _originals(args.quick)
    sources = ["full", *sides]
    result = _run(originals, sources, args.draws, args.seed)
    write_json(
        args.out,
        {
            "benchmark": NAME,
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": info,
            "seed": args.seed,
            "originals": [name for name, _ in originals],
            "sizes": [im.size for _, im in originals],
            **result,
        },
    )
    recall = result["recall_confirmed"]
    worst = result["largest_own_distance"]
    rows = [
        (name, *(f"{recall[s][name]:.2f} ({worst[s][name]})" for s in sources))
        for name in TRANSFORMS
    ]
    rows.append(
        (
            "all transforms",
            *(f"{np.mean(list(recall[s].values())):.3f}" for s in sources),
        )
    )
    rows.append(
        (
            f"false pairs confirmed (of {result['false_pairs']:,})",
            *(str(result["false_pairs_confirmed"][s]) for s in sources),
        )
    )
    console.print(
        table(
            f"{len(originals)} originals of {LARGE}+ px, {result['queries_per_transform']} "
            f"queries per transform: confirmed recall (largest own distance)",
            ["copy of the full decode", *(f"refs from {s}" for s in sources)],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
