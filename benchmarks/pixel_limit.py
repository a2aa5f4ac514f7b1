"""Peak memory of signing a bomb-sized PNG into an inventory, with and without the limit.

A 13000 x 13000 PNG (169 MP: under Pillow's hard limit of 179 MP, where Pillow only
warns) is signed with ``inventory=``, so the perceptual hashes would decode it. Each
run is a fresh child process (peak RSS is per process); the variants alternate in
one session:

* ``limit`` - the default limit (fingerprint.MAX_PIXELS, 50 MP): refused from the header;
* ``no-limit`` - ``PROVENANCE_MAX_PIXELS=200000000`` and Pillow's warning threshold
  off: decoded, as before the limit (Pillow only warned at 169 MP);
* ``1MP`` - a 1000 x 1000 PNG under the default limit: what the check costs a normal file.

Usage: ``.venv/bin/python benchmarks/pixel_limit.py [--repeats 3] [--quick]``.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from typing import Any

from _common import (
    ROOT,
    console,
    header,
    machine_info,
    machine_line,
    median,
    parse_args,
    scratch_dir,
    table,
    write_json,
)

_CHILD = r"""
import json, os, resource, sys, time, warnings
from pathlib import Path
from PIL import Image
warnings.simplefilter("ignore")
if os.environ.get("BENCH_PILLOW_WARNING_ONLY"):
    Image.MAX_IMAGE_PIXELS = None  # as before: Pillow's warning was not a refusal
from provenance import ImageTooLarge, Inventory, ProvenanceRecord, SigningKey, sign
src, chain, private, record, out = map(Path, sys.argv[1:6])
key = SigningKey.from_pem_files(chain, private)
rec = ProvenanceRecord.from_json(record.read_text())
start = time.perf_counter()
outcome = "signed"
with Inventory(out.with_suffix(".sqlite")) as inventory:
    try:
        sign(src, out, record=rec, key=key, inventory=inventory)
    except ImageTooLarge:
        outcome = "refused"
elapsed = time.perf_counter() - start
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "seconds": elapsed, "peak_rss_mb": peak_kb / 1024}))
"""


def _png(width: int, height: int) -> bytes:
    """An RGB PNG of zeros, compressed row by row (never held decoded)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    packer = zlib.compressobj(1)
    row = b"\x00" * (1 + 3 * width)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def main() -> None:
    args = parse_args("pixel_limit", __doc__ or "", default_repeats=3, quick_repeats=1)
    info = machine_info()
    header("pixel_limit", info, args)
    from provenance._io.keys import init_dev_keys

    work = scratch_dir("provenance-bench-pixels-")
    keys = init_dev_keys(work / "keys", organization="provenance benchmarks")
    record = ROOT / "sample_media" / "forest-path.jpg.json"
    side = 4000 if args.quick else 13000
    files = {"bomb": work / "bomb.png", "1MP": work / "small.png"}
    files["bomb"].write_bytes(_png(side, side))
    files["1MP"].write_bytes(_png(1000, 1000))
    variants = {
        "limit": (files["bomb"], {}),
        "no-limit": (
            files["bomb"],
            {"PROVENANCE_MAX_PIXELS": "200000000", "BENCH_PILLOW_WARNING_ONLY": "1"},
        ),
        "1MP": (files["1MP"], {}),
    }
    if args.quick:
        variants["limit"] = (files["bomb"], {"PROVENANCE_MAX_PIXELS": "1000000"})
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for repeat in range(args.repeats):
        for name, (src, extra) in variants.items():
            out = work / f"out-{name}-{repeat}.png"
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    _CHILD,
                    *map(str, (src, keys.chain, keys.private_key, record, out)),
                ],
                capture_output=True,
                text=True,
                env={**env, **extra},
                check=True,
                timeout=600,
            )
            samples[name].append(json.loads(done.stdout.splitlines()[-1]))
    rows = []
    summary: dict[str, Any] = {}
    for name, runs in samples.items():
        rss = median(r["peak_rss_mb"] for r in runs)
        seconds = median(r["seconds"] for r in runs)
        outcome = runs[0]["outcome"]
        summary[name] = {"peak_rss_mb": rss, "seconds": seconds, "outcome": outcome}
        rows.append([name, f"{side}x{side}" if name != "1MP" else "1000x1000", outcome,
                     f"{rss:,.0f}", f"{seconds:.2f}"])  # fmt: skip
    console.print(
        table(
            f"Signing into an inventory, peak RSS of a fresh process (median of {args.repeats})",
            ["variant", "PNG", "outcome", "peak RSS (MB)", "sign time (s)"],
            rows,
            caption=machine_line(info),
        )
    )
    write_json(
        args.out,
        {"machine": info, "side": side, "repeats": args.repeats, "summary": summary,
         "samples": samples},
    )  # fmt: skip
    console.print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()
