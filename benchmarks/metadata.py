"""XMP insertion as bytes vs by re-encoding with Pillow; essence hash vs plain SHA-256.

For every image in sample_media/, in the same shuffled rounds (in memory):

* ``set_xmp``: :func:`provenance._core.containers.set_xmp` inserts the XMP packet our
  signer writes (taken from a signed copy) as bytes;
* ``Pillow decode+encode``: open the same bytes and save them again with that
  packet (JPEG ``quality=90``, lossy WebP ``quality=85``, lossless WebP
  ``lossless=True``, PNG default compression with an uncompressed iTXt
  ``XML:com.adobe.xmp`` chunk via ``PngInfo``, because Pillow ignores ``xmp=`` for
  PNG); ``Pillow encode only`` is the same save from an image decoded beforehand,
  the case of a pipeline that already holds the decoded image;
* ``essence_hash``: :func:`provenance._core.hashing.essence_hash` (walk the container,
  hash the coded image data) next to ``hashlib.sha256(data).hexdigest()`` of the
  whole file, both as MB of file per second;
* ``inspect``: :func:`provenance._core.containers.inspect`, for context.

Outside the timing it checks what the re-encoded copies keep: the XMP packet,
the pixels (lossy formats change them) and the essence hash. Run ``--help``.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

import provenance
from _common import (
    FORMAT_ORDER,
    calibrate,
    console,
    dev_keys,
    fmt_ms,
    fmt_ratio,
    header,
    image_format,
    load_record,
    machine_info,
    machine_line,
    median,
    ms,
    paired_ratios,
    parse_args,
    quartiles,
    run_interleaved,
    sample_images,
    table,
    write_json,
)
from provenance._core import containers
from provenance._core.hashing import essence_hash

NAME = "metadata"
DEFAULT_REPEATS = 30
QUICK_REPEATS = 3
# Fast calls are repeated so one sample lasts at least this long.
MIN_SAMPLE_NS = 2_000_000
QUICK_MIN_SAMPLE_NS = 300_000
VARIANTS = ("set_xmp", "pillow_reencode", "pillow_encode_only", "essence_hash", "sha256", "inspect")
FAST_VARIANTS = ("set_xmp", "essence_hash", "sha256", "inspect")
JPEG_QUALITY = 90
WEBP_QUALITY = 85


@dataclass
class Case:
    """One sample image and what its tasks need, prepared outside the timing."""

    name: str
    fmt: str
    data: bytes
    packet: bytes
    megapixels: float
    lossless_webp: bool = False
    decoded: Image.Image | None = None
    save_args: dict[str, Any] = field(default_factory=dict)


def main() -> int:
    args = parse_args(
        NAME,
        __doc__.splitlines()[0],
        default_repeats=DEFAULT_REPEATS,
        quick_repeats=QUICK_REPEATS,
    )
    info = machine_info()
    header(NAME, info, args)
    key, _trust, key_folder = dev_keys()
    try:
        cases = [_prepare(path, key) for path in sample_images(quick=args.quick)]
    finally:
        shutil.rmtree(key_folder, ignore_errors=True)

    tasks: dict[str, Callable[[], object]] = {}
    for case in cases:
        tasks[f"{case.name}|set_xmp"] = _set_xmp(case)
        tasks[f"{case.name}|pillow_reencode"] = _pillow_reencode(case)
        tasks[f"{case.name}|pillow_encode_only"] = _pillow_encode_only(case)
        tasks[f"{case.name}|essence_hash"] = _bind(essence_hash, case.data)
        tasks[f"{case.name}|sha256"] = _bind(_sha256, case.data)
        tasks[f"{case.name}|inspect"] = _bind(containers.inspect, case.data)
    min_ns = QUICK_MIN_SAMPLE_NS if args.quick else MIN_SAMPLE_NS
    number = {
        task: calibrate(fn, min_ns=min_ns)
        for task, fn in tasks.items()
        if task.rsplit("|", 1)[1] in FAST_VARIANTS
    }
    samples = run_interleaved(
        tasks, args.repeats, seed=args.seed, number=number, label="metadata rounds"
    )

    images = [_summarise(case, samples, number) for case in cases]
    by_format = {
        fmt: _aggregate([i for i in images if i["format"] == fmt])
        for fmt in FORMAT_ORDER
        if any(i["format"] == fmt for i in images)
    }
    overall = _aggregate(images)
    png_kwarg = _png_xmp_kwarg_kept(cases)
    payload = {
        "benchmark": NAME,
        "machine": info,
        "repeats": args.repeats,
        "quick": args.quick,
        "seed": args.seed,
        "method": (
            "All variants of all images run once per round in a per-round shuffled order "
            "(GC off per call; fast calls repeated to last >= "
            f"{min_ns / 1e6:g} ms per sample); per image: median over rounds; ratios are "
            "per round (paired), median reported; per format and overall: median of the "
            "per-image medians. MB = 1e6 bytes of the whole file."
        ),
        "pillow_settings": {
            "jpeg": {"quality": JPEG_QUALITY},
            "webp_lossy": {"quality": WEBP_QUALITY},
            "webp_lossless": {"lossless": True},
            "png": "default compress_level, PngInfo iTXt XML:com.adobe.xmp (zip=False)",
        },
        "pillow_png_xmp_kwarg_kept": png_kwarg,
        "images": images,
        "by_format": by_format,
        "overall": overall,
    }
    write_json(args.out, payload)
    _print(images, by_format, overall, info, args, png_kwarg)
    return 0


# --- preparation --------------------------------------------------------------------


def _prepare(path: Path, key: Any) -> Case:
    data = path.read_bytes()
    signed, _ = provenance.sign_bytes(data, record=load_record(path), key=key, name=path.name)
    packet = containers.inspect(signed).xmp
    assert packet is not None
    container = containers.inspect(data)
    fmt = image_format(path)
    case = Case(
        name=path.name,
        fmt=fmt,
        data=data,
        packet=packet,
        megapixels=container.width * container.height / 1e6,
        lossless_webp=fmt == "webp" and b"VP8L" in data[12:16],
    )
    case.save_args = _save_args(case)
    decoded = Image.open(io.BytesIO(data))
    decoded.load()
    case.decoded = decoded
    return case


def _save_args(case: Case) -> dict[str, Any]:
    if case.fmt == "jpeg":
        return {"format": "JPEG", "quality": JPEG_QUALITY, "xmp": case.packet}
    if case.fmt == "webp":
        if case.lossless_webp:
            return {"format": "WEBP", "lossless": True, "xmp": case.packet}
        return {"format": "WEBP", "quality": WEBP_QUALITY, "xmp": case.packet}
    # Pillow's xmp= is ignored for PNG (checked below): XMP goes in as an iTXt chunk.
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", case.packet.decode("utf-8"), zip=False)
    return {"format": "PNG", "pnginfo": info}


def _bind(fn: Callable[[bytes], object], data: bytes) -> Callable[[], object]:
    def run() -> object:
        return fn(data)

    return run


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _set_xmp(case: Case) -> Callable[[], bytes]:
    def run() -> bytes:
        return containers.set_xmp(case.data, case.packet)

    return run


def _pillow_reencode(case: Case) -> Callable[[], bytes]:
    def run() -> bytes:
        out = io.BytesIO()
        with Image.open(io.BytesIO(case.data)) as image:
            image.save(out, **case.save_args)
        return out.getvalue()

    return run


def _pillow_encode_only(case: Case) -> Callable[[], bytes]:
    decoded = case.decoded
    assert decoded is not None

    def run() -> bytes:
        out = io.BytesIO()
        decoded.save(out, **case.save_args)
        return out.getvalue()

    return run


# --- what a re-encode keeps ---------------------------------------------------------


def _outcome(case: Case) -> dict[str, Any]:
    inserted = containers.set_xmp(case.data, case.packet)
    reencoded = _pillow_reencode(case)()
    assert case.decoded is not None
    before = np.asarray(case.decoded, dtype=np.int16)
    with Image.open(io.BytesIO(reencoded)) as image:
        image.load()
        after = np.asarray(image, dtype=np.int16)
    same_shape = before.shape == after.shape
    diff = np.abs(before - after) if same_shape else None
    original_essence = essence_hash(case.data)
    return {
        "set_xmp": {
            "bytes_added": len(inserted) - len(case.data),
            "xmp_kept": containers.inspect(inserted).xmp == case.packet,
            "essence_unchanged": essence_hash(inserted) == original_essence,
        },
        "pillow": {
            "size_change_bytes": len(reencoded) - len(case.data),
            "xmp_kept": containers.inspect(reencoded).xmp == case.packet,
            "essence_unchanged": essence_hash(reencoded) == original_essence,
            "pixels_identical": bool(diff is not None and not diff.any()),
            "pixel_mean_abs_diff": float(diff.mean()) if diff is not None else None,
            "pixel_max_abs_diff": int(diff.max()) if diff is not None else None,
        },
    }


def _png_xmp_kwarg_kept(cases: list[Case]) -> bool | None:
    """Does ``Image.save(..., "PNG", xmp=packet)`` write the packet? (It does not.)"""
    for case in cases:
        if case.fmt == "png" and case.decoded is not None:
            out = io.BytesIO()
            case.decoded.save(out, format="PNG", xmp=case.packet)
            return containers.inspect(out.getvalue()).xmp is not None
    return None


# --- summaries ----------------------------------------------------------------------


def _summarise(
    case: Case, samples: Mapping[str, list[float]], number: Mapping[str, int]
) -> dict[str, Any]:
    series = {v: samples[f"{case.name}|{v}"] for v in VARIANTS}
    size_mb = len(case.data) / 1e6
    essence_bytes = sum(end - start for start, end in containers.essence_ranges(case.data))
    result: dict[str, Any] = {
        "image": case.name,
        "format": case.fmt,
        "coding": "lossless" if case.lossless_webp or case.fmt == "png" else "lossy",
        "megapixels": round(case.megapixels, 3),
        "input_bytes": len(case.data),
        "xmp_packet_bytes": len(case.packet),
        "essence_fraction": essence_bytes / len(case.data),
        "calls_per_sample": {v: number.get(f"{case.name}|{v}", 1) for v in VARIANTS},
        "ms": {v: ms(median(values)) for v, values in series.items()},
        "ms_p25_p75": {v: [ms(q) for q in quartiles(values)] for v, values in series.items()},
        "samples_ms": {v: [round(ms(x), 5) for x in values] for v, values in series.items()},
        "reencode_over_set_xmp": median(
            paired_ratios(series["pillow_reencode"], series["set_xmp"])
        ),
        "encode_only_over_set_xmp": median(
            paired_ratios(series["pillow_encode_only"], series["set_xmp"])
        ),
        "essence_over_sha256_time": median(paired_ratios(series["essence_hash"], series["sha256"])),
        "mb_per_s": {
            v: size_mb / (ms(median(series[v])) / 1e3)
            for v in ("essence_hash", "sha256", "inspect")
        },
        "outcome": _outcome(case),
    }
    return result


def _aggregate(images: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of the per-image medians."""
    return {
        "images": len(images),
        "ms": {v: median(i["ms"][v] for i in images) for v in VARIANTS},
        "reencode_over_set_xmp": median(i["reencode_over_set_xmp"] for i in images),
        "encode_only_over_set_xmp": median(i["encode_only_over_set_xmp"] for i in images),
        "essence_over_sha256_time": median(i["essence_over_sha256_time"] for i in images),
        "mb_per_s": {
            v: median(i["mb_per_s"][v] for i in images)
            for v in ("essence_hash", "sha256", "inspect")
        },
    }


# --- printing -----------------------------------------------------------------------


def _yes_no(value: object) -> str:
    return "yes" if value else "no"


def _print(
    images: list[dict[str, Any]],
    by_format: Mapping[str, Any],
    overall: Mapping[str, Any],
    info: Mapping[str, Any],
    args: Any,
    png_kwarg: bool | None,
) -> None:
    groups = [*((f"median {f}", a) for f, a in by_format.items()), ("all images", overall)]
    rows = []
    for i in images:
        p = i["outcome"]["pillow"]
        mad = p["pixel_mean_abs_diff"]
        rows.append(
            [
                i["image"],
                f"{i['megapixels']:.2f}",
                i["coding"],
                fmt_ms(i["ms"]["set_xmp"], 3),
                fmt_ms(i["ms"]["pillow_reencode"]),
                fmt_ratio(i["reencode_over_set_xmp"]),
                fmt_ms(i["ms"]["pillow_encode_only"]),
                fmt_ratio(i["encode_only_over_set_xmp"]),
                _yes_no(p["xmp_kept"]),
                "identical" if p["pixels_identical"] else f"changed {mad:.2f}",
                f"{p['size_change_bytes'] / i['input_bytes']:+.0%}",
            ]
        )
    for label, agg in groups:
        rows.append(
            [
                f"{label} ({agg['images']})",
                "",
                "",
                fmt_ms(agg["ms"]["set_xmp"], 3),
                fmt_ms(agg["ms"]["pillow_reencode"]),
                fmt_ratio(agg["reencode_over_set_xmp"]),
                fmt_ms(agg["ms"]["pillow_encode_only"]),
                fmt_ratio(agg["encode_only_over_set_xmp"]),
                "",
                "",
                "",
            ]
        )
    kwarg_note = {
        True: "Pillow wrote xmp= for PNG on this version.",
        False: "Pillow ignores xmp= for PNG: the packet must go in a PngInfo iTXt.",
        None: "",
    }[png_kwarg]
    console.print(
        table(
            "Insert the XMP packet: as bytes vs re-encoding with Pillow, ms per image",
            [
                "image",
                "MP",
                "coding",
                "set_xmp",
                "Pillow dec+enc",
                "ratio",
                "Pillow enc only",
                "ratio",
                "XMP kept",
                "pixels",
                "size",
            ],
            rows,
            caption=(
                f"{machine_line(info)}\n{args.repeats} rounds, interleaved; ratios are "
                "per-round (paired) Pillow/set_xmp. Pillow: JPEG q"
                f"{JPEG_QUALITY}, WebP q{WEBP_QUALITY} (lossless sources lossless=True), PNG "
                f"default zlib level with an iTXt chunk. {kwarg_note} Pixels: 'changed' shows "
                "the mean absolute difference per channel (0-255) after decoding. Size: "
                "file size change of the re-encode. set_xmp keeps the essence hash; every "
                "re-encode changes it."
            ),
        )
    )
    hash_rows = []
    for i in images:
        hash_rows.append(
            [
                i["image"],
                f"{i['input_bytes'] / 1e3:,.0f}",
                f"{i['essence_fraction']:.2%}",
                f"{i['mb_per_s']['essence_hash']:,.0f}",
                f"{i['mb_per_s']['sha256']:,.0f}",
                fmt_ratio(i["essence_over_sha256_time"]),
                fmt_ms(i["ms"]["essence_hash"], 3),
                fmt_ms(i["ms"]["inspect"], 3),
                f"{i['mb_per_s']['inspect']:,.0f}",
            ]
        )
    for label, agg in groups:
        hash_rows.append(
            [
                f"{label} ({agg['images']})",
                "",
                "",
                f"{agg['mb_per_s']['essence_hash']:,.0f}",
                f"{agg['mb_per_s']['sha256']:,.0f}",
                fmt_ratio(agg["essence_over_sha256_time"]),
                fmt_ms(agg["ms"]["essence_hash"], 3),
                fmt_ms(agg["ms"]["inspect"], 3),
                f"{agg['mb_per_s']['inspect']:,.0f}",
            ]
        )
    console.print(
        table(
            "Essence hash vs SHA-256 of the whole file; cost of containers.inspect",
            [
                "image",
                "KB",
                "essence share",
                "essence MB/s",
                "sha256 MB/s",
                "time essence/sha",
                "essence ms",
                "inspect ms",
                "inspect MB/s",
            ],
            hash_rows,
            caption=(
                "MB/s = MB of the whole file per second (1 MB = 1e6 B). Essence share: "
                "bytes the essence hash covers."
            ),
        )
    )


if __name__ == "__main__":
    sys.exit(main())
