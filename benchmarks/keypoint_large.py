"""Partial copies of large photographs located by their stored keypoints (issue 21).

``robustness.py`` signs the corpus at 768 px, so it never sees how a large
original is reduced before its keypoints are stored. This check does: each of
the corpus photographs (the 11 of at least 1,280 px) is reduced to its stored
reference from a large decode, and partial copies of its 768 px picture
(``robustness.PARTIAL_TRANSFORMS``: rotation, off-centre crop, screenshot,
banner, half size; ``--draws`` of each) are located against that reference alone
(``keypoints.locate``, confirmed placements counted). No index, no inventory:
only whether the stored form still finds its own copies.

``--sources`` picks the references' decodes: ``1280`` (JPEG draft + LANCZOS to
1,280 px, as an import pipeline's decode of a large upload might be) and
``full`` (the whole file). ``--form LABEL=JSON`` adds a candidate stored form
beside the shipped one: ``keypoints.extract`` keywords over the shipped
reference's (``{"threshold": 20, "retry": null}``), so a change of the stored
form can be judged on large photos before it ships.

Usage::

    .venv/bin/python benchmarks/keypoint_large.py                     # ~1 minute
    .venv/bin/python benchmarks/keypoint_large.py --seed 1 --sources full
    .venv/bin/python benchmarks/keypoint_large.py --form 'fast20={"threshold": 20, "retry": null}'
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from PIL import Image

from _common import console, header, machine_info, parse_args, table, write_json
from corpus import ensure
from provenance._core import keypoints
from robustness import PARTIAL_TRANSFORMS, flatten

NAME = "keypoint_large"
SHOWN = 768  # the picture the copies are made of, as robustness.py's originals
SHIPPED = "shipped"


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sources",
        default="1280,full",
        help="decodes the references are made from: 1280 and/or full (default both)",
    )
    parser.add_argument(
        "--draws", type=int, default=3, help="copies of each transform per photo (default 3)"
    )
    parser.add_argument(
        "--form",
        action="append",
        default=[],
        metavar="LABEL=JSON",
        help="a candidate stored form: extract() keywords over the shipped reference's",
    )


def _shipped() -> dict[str, Any]:
    """The keywords ``keypoints.reference_features`` passes to ``extract``."""
    return {
        "side": keypoints.REFERENCE_SIDE,
        "features": keypoints.REFERENCE_FEATURES,
        "levels": keypoints.REFERENCE_LEVELS,
        "sampled": True,
        "threshold": keypoints.REFERENCE_THRESHOLD,
        "retry": keypoints.REFERENCE_RETRY,
    }


def _forms(specs: list[str]) -> dict[str, dict[str, Any]]:
    forms: dict[str, dict[str, Any]] = {SHIPPED: {}}
    for spec in specs:
        label, _, text = spec.partition("=")
        try:
            change = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"--form {spec!r}: not LABEL=JSON ({exc})") from None
        if not label or not isinstance(change, dict):
            raise SystemExit(f"--form {spec!r}: not LABEL=JSON object")
        if "retry" in change and change["retry"] is not None:
            change["retry"] = tuple(change["retry"])
        forms[label] = change
    return forms


def _decode(path: Any, source: str) -> Image.Image:
    with Image.open(path) as im:
        if source == "full":
            return flatten(im)
        longest = int(source)
        im.draft("RGB", (longest, longest))
        out = flatten(im)
    out.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    return out


def _queries(items: list[Any], draws: int, seed: int) -> list[tuple[int, str, Any]]:
    """(photo index, transform, query features) for every copy."""
    rng = random.Random(seed)
    shown = []
    for item in items:
        picture = _decode(item.path, str(SHOWN))
        shown.append(picture)
    out = []
    for _ in range(draws):
        for name, make in PARTIAL_TRANSFORMS.items():
            for i, picture in enumerate(shown):
                out.append((i, name, keypoints.query_features(make(picture, rng, shown))))
    return out


def _located(
    refs: list[Any], queries: list[tuple[int, str, Any]], groups: list[str]
) -> dict[str, Any]:
    found, inliers, lost, by_transform = 0, [], Counter[str](), Counter[str]()
    for i, name, query in queries:
        placement = keypoints.locate(query, refs[i])
        if placement is not None:
            inliers.append(placement.inliers)
        if placement is not None and placement.confirmed:
            found += 1
            by_transform[name] += 1
        else:
            lost[groups[i]] += 1
    return {
        "located": found,
        "copies": len(queries),
        "median_inliers": statistics.median(inliers) if inliers else 0,
        "by_transform": dict(by_transform),
        "lost_by_photo": dict(lost),
        "keypoints": [len(r.points) for r in refs],
    }


def main() -> int:
    args = parse_args(
        NAME, __doc__.splitlines()[0], default_repeats=1, quick_repeats=1, extra=_options
    )
    info = machine_info()
    header(NAME, info, args)
    forms = _forms(args.form)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    for source in sources:
        if source != "full" and not source.isdigit():
            raise SystemExit(f"--sources: {source!r} is neither 'full' nor a pixel size")
    items = ensure().of("photo")
    if args.quick:
        items = items[:3]
    groups = [item.group for item in items]
    queries = _queries(items, args.draws, args.seed)
    results: dict[str, dict[str, Any]] = {}
    for source in sources:
        pictures = [_decode(item.path, source) for item in items]
        for label, change in forms.items():
            refs = [keypoints.extract(p, **{**_shipped(), **change}) for p in pictures]
            results[f"{source}|{label}"] = _located(refs, queries, groups)
    write_json(
        args.out,
        {
            "benchmark": NAME,
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": info,
            "seed": args.seed,
            "draws": args.draws,
            "photos": len(items),
            "forms": {label: {**_shipped(), **change} for label, change in forms.items()},
            "results": results,
        },
    )
    rows = [
        (
            key.replace("|", " / "),
            f"{r['located']} of {r['copies']}",
            f"{r['median_inliers']:g}",
            ", ".join(f"{g} {n}" for g, n in sorted(r["lost_by_photo"].items())) or "-",
        )
        for key, r in results.items()
    ]
    console.print(
        table(
            f"Copies located against large photos' stored keypoints (seed {args.seed})",
            ["decode / form", "located", "median inliers", "lost, by photo"],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
