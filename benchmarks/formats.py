"""Sign and verify per image format, on the same 1 MP picture encoded in each.

For JPEG, PNG, WebP, TIFF, DNG, HEIC, AVIF and GIF (written by Pillow and
pillow-heif from one synthetic 1152 x 864 picture): the container parse
(``inspect``), the XMP insertion (``set_xmp``), ``sign_bytes`` (XMP + C2PA, no
inventory) and ``verify_bytes`` (C2PA + XMP, our anchors). Every task of every
format runs once per round in a shuffled order; medians over rounds.

Usage: ``.venv/bin/python benchmarks/formats.py [--repeats 20] [--quick]``.
"""

from __future__ import annotations

import sys
from typing import Any

from _common import (
    ROOT,
    console,
    dev_keys,
    fmt_bytes,
    fmt_ms,
    header,
    machine_info,
    machine_line,
    median,
    ms,
    parse_args,
    run_interleaved,
    table,
    write_json,
)

sys.path.insert(0, str(ROOT))

from provenance._core import containers
from provenance._core.record import ProvenanceRecord
from provenance.sign import sign_bytes
from provenance.verify import verify_bytes
from tests._formats import ALL_FORMATS, encode, picture


def main() -> None:
    args = parse_args("formats", __doc__ or "", default_repeats=20, quick_repeats=3)
    info = machine_info()
    header("formats", info, args)
    key, trust, _ = dev_keys()
    record = ProvenanceRecord.from_json(
        (ROOT / "sample_media" / "forest-path.jpg.json").read_text("utf-8")
    )
    size = (320, 240) if args.quick else (1152, 864)
    image = picture(5, size)
    files = {fmt: encode(image, fmt) for fmt in ALL_FORMATS}
    signed = {fmt: sign_bytes(data, record=record, key=key)[0] for fmt, data in files.items()}
    packet = containers.inspect(signed[ALL_FORMATS[0]]).xmp or b""
    tasks: dict[str, Any] = {}
    for fmt, data in files.items():
        tasks[f"{fmt.value}/inspect"] = lambda d=data: containers.inspect(d)
        tasks[f"{fmt.value}/set_xmp"] = lambda d=data: containers.set_xmp(d, packet)
        tasks[f"{fmt.value}/sign"] = lambda d=data: sign_bytes(d, record=record, key=key)
        tasks[f"{fmt.value}/verify"] = lambda d=signed[fmt]: verify_bytes(d, trust=trust)
    samples = run_interleaved(tasks, args.repeats, seed=args.seed)
    rows = []
    summary: dict[str, Any] = {}
    for fmt in ALL_FORMATS:
        cells = {
            op: median(samples[f"{fmt.value}/{op}"])
            for op in ("inspect", "set_xmp", "sign", "verify")
        }
        summary[fmt.value] = {
            "bytes": len(files[fmt]),
            "bytes_added": len(signed[fmt]) - len(files[fmt]),
            **{f"{op}_ms": ms(ns) for op, ns in cells.items()},
        }
        rows.append(
            [
                fmt.value,
                fmt_bytes(len(files[fmt])),
                fmt_bytes(len(signed[fmt]) - len(files[fmt])),
                *(fmt_ms(ms(cells[op]), 3) for op in ("inspect", "set_xmp", "sign", "verify")),
            ]
        )
    console.print(
        table(
            f"Per format, {size[0]}x{size[1]} picture, median of {args.repeats} rounds (ms)",
            ["format", "file", "added by sign", "inspect", "set_xmp", "sign", "verify"],
            rows,
            caption=machine_line(info),
        )
    )
    write_json(
        args.out,
        {"machine": info, "size": size, "repeats": args.repeats, "summary": summary,
         "samples_ns": samples},
    )  # fmt: skip
    console.print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()
