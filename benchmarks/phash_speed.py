"""Perceptual-hash speed: ours (vectorized batches) vs ``imagehash.phash``, in one run.

Two measurements, each a paired comparison within rounds (``_common.run_interleaved``):

* **decoded images**: a batch of already-decoded images (what a pipeline that has
  decoded the image passes); images per second for ``imagehash.phash`` one by one,
  our :func:`provenance._core.phash.compat_hashes` (the same 64-bit hash) and
  :func:`provenance._core.phash.query_hashes` (the 256-bit default) on the whole batch,
  and :func:`provenance._core.phash.reference_hashes_batch` (every row of an original);
* **from files**: ``provenance.fingerprint`` style decoding of the JPEG files with
  and without draft mode, then the hashes; ``imagehash.phash(Image.open(path))``
  alongside.

* **by image size**: the same decoded comparison on the sample JPEG photographs
  resized to 0.25, 1, 4 and 12 MP (aspect kept), because the ratio depends on
  size: ``imagehash`` converts and resamples every pixel, ours point-samples a
  large image first, so its cost is nearly flat while imagehash's grows.

Inputs: the sample images (``--quick``: the smallest JPEG and PNG; the size
section then runs 0.25 and 1 MP only).

Run::

    .venv/bin/python benchmarks/phash_speed.py            # ~1 minute
    .venv/bin/python benchmarks/phash_speed.py --quick    # seconds
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import imagehash
from PIL import Image

from _common import (
    console,
    header,
    machine_info,
    median,
    paired_ratios,
    parse_args,
    run_interleaved,
    sample_images,
    table,
    write_json,
)
from provenance._core import phash
from provenance.fingerprint import DRAFT_SIZE


def decode(data: bytes, *, draft: bool) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        if draft and im.format == "JPEG":
            im.draft("L", (DRAFT_SIZE, DRAFT_SIZE))
        im.load()
        return im.copy()


def main() -> int:
    args = parse_args(
        "phash_speed",
        "perceptual hash images/s: ours (batched numpy) vs imagehash.phash",
        default_repeats=7,
        quick_repeats=2,
    )
    info = machine_info()
    info["imagehash"] = imagehash.__version__
    header("phash_speed", info, args)
    paths = sample_images(quick=args.quick)
    datas = {p: p.read_bytes() for p in paths}
    images = [decode(d, draft=False) for d in datas.values()]
    batch = images * (2 if args.quick else 4)  # a batch of a few dozen decoded images
    n = len(batch)
    tasks = {
        "imagehash.phash": lambda: [imagehash.phash(im) for im in batch],
        "ours compat (64 bit)": lambda: phash.compat_hashes(batch),
        "ours query (256 bit)": lambda: phash.query_hashes(batch),
        "ours query features (3 hashes, mid band, colour)": lambda: phash.query_features(batch),
        f"ours reference (<= {len(phash.REFERENCE_VARIANTS)} rows)": lambda: (
            phash.reference_hashes_batch(batch)
        ),
    }
    samples = run_interleaved(tasks, args.repeats, seed=args.seed, label="decoded")
    jpegs = [p for p in paths if p.suffix.lower() in (".jpg", ".jpeg")]
    jdata = [datas[p] for p in jpegs]
    file_tasks = {
        "imagehash.phash(open)": lambda: [
            imagehash.phash(Image.open(io.BytesIO(d))) for d in jdata
        ],
        "decode full + ours query": lambda: phash.query_hashes(
            [decode(d, draft=False) for d in jdata]
        ),
        "decode draft + ours query": lambda: phash.query_hashes(
            [decode(d, draft=True) for d in jdata]
        ),
        "decode draft + ours compat": lambda: phash.compat_hashes(
            [decode(d, draft=True) for d in jdata]
        ),
    }
    file_samples = run_interleaved(file_tasks, args.repeats, seed=args.seed, label="files")
    by_size = _by_size(images, args)

    base = samples["imagehash.phash"]
    rows = []
    out: dict[str, Any] = {"decoded": {}, "files": {}}
    for name, values in samples.items():
        ips = n / (median(values) / 1e9)
        ratio = median(paired_ratios(base, values))
        rows.append([name, f"{ips:,.0f}", f"{ratio:.1f}x"])
        out["decoded"][name] = {"images_per_s": ips, "speedup_vs_imagehash": ratio}
    console.print(
        table(
            f"decoded images (batch of {n})",
            ["scheme", "images/s", "vs imagehash"],
            rows,
            caption="median over rounds; ratios paired within rounds",
        )
    )
    fbase = file_samples["imagehash.phash(open)"]
    rows = []
    for name, values in file_samples.items():
        ips = len(jdata) / (median(values) / 1e9)
        ratio = median(paired_ratios(fbase, values))
        rows.append([name, f"{ips:,.0f}", f"{ratio:.1f}x"])
        out["files"][name] = {"images_per_s": ips, "speedup_vs_imagehash": ratio}
    console.print(
        table(f"from JPEG bytes ({len(jdata)} files)", ["path", "images/s", "vs imagehash"], rows)
    )
    rows = [
        [
            f"{mp:g} MP",
            *(f"{entry[name]['speedup_vs_imagehash']:.1f}x" for name in SIZE_SCHEMES[1:]),
            f"{entry[SIZE_SCHEMES[0]]['ms_per_image']:.2f}",
            f"{entry[SIZE_SCHEMES[1]]['ms_per_image']:.2f}",
        ]
        for mp, entry in by_size.items()
    ]
    console.print(
        table(
            "decoded images by size: speed-up over imagehash.phash",
            ["size", *SIZE_SCHEMES[1:], "imagehash ms/img", "compat ms/img"],
            rows,
            caption="median over rounds; ratios paired within rounds",
        )
    )
    write_json(
        args.out,
        {
            "benchmark": "phash_speed",
            "machine": info,
            "quick": args.quick,
            "inputs": [Path(p).name for p in paths],
            "batch": n,
            **out,
            "by_size": {f"{mp:g}_mp": entry for mp, entry in by_size.items()},
            "samples_ns": {**samples, **file_samples},
        },
    )
    return 0


SIZES_MP = (0.25, 1.0, 4.0, 12.0)
SIZE_SCHEMES = ("imagehash.phash", "compat", "query features", "reference")


def _by_size(images: list[Image.Image], args: Any) -> dict[float, dict[str, Any]]:
    """Speed-up over imagehash per image size, on the sample photographs resized."""
    photos = [im for im in images if im.mode == "RGB"]
    out: dict[float, dict[str, Any]] = {}
    for mp in SIZES_MP[:2] if args.quick else SIZES_MP:
        batch = []
        for im in photos:
            scale = (mp * 1e6 / (im.width * im.height)) ** 0.5
            size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
            batch.append(im.resize(size, Image.Resampling.BICUBIC))
        tasks = {
            "imagehash.phash": lambda b=batch: [imagehash.phash(im) for im in b],
            "compat": lambda b=batch: phash.compat_hashes(b),
            "query features": lambda b=batch: phash.query_features(b),
            "reference": lambda b=batch: phash.reference_hashes_batch(b),
        }
        samples = run_interleaved(tasks, args.repeats, seed=args.seed, label=f"{mp:g} MP")
        base = samples["imagehash.phash"]
        out[mp] = {
            name: {
                "ms_per_image": median(values) / 1e6 / len(batch),
                "speedup_vs_imagehash": median(paired_ratios(base, values)),
            }
            for name, values in samples.items()
        }
        out[mp]["images"] = len(batch)  # type: ignore[assignment]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
