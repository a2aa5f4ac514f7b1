"""Hamming distance of one stored hash against the query: the inventory's re-check.

``Inventory.perceptual_matches`` reads each candidate row back from the database
(bytes) and checks its distance again, one pair at a time (64 or more rows per
lookup). Per pair, over 1- to 9-word hashes, interleaved and paired per round:

* ``numpy`` - ``np.frombuffer`` + ``np.bitwise_count(a ^ b).sum()`` (before);
* ``hamming`` - :func:`provenance._core.hamming.hamming` on the decoded arrays;
* ``bytes`` - :func:`provenance._core.hamming.hamming_bytes`: ``int.from_bytes`` and
  ``int.bit_count`` (after).

The array form stays the one for many rows at once (the index's brute force).

Usage: ``.venv/bin/python benchmarks/hamming.py [--repeats 30] [--quick]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from _common import (
    calibrate,
    console,
    header,
    machine_info,
    machine_line,
    median,
    paired_ratios,
    parse_args,
    run_interleaved,
    table,
    write_json,
)
from provenance._core.hamming import hamming, hamming_bytes


def main() -> None:
    args = parse_args("hamming", __doc__ or "", default_repeats=30, quick_repeats=3)
    info = machine_info()
    header("hamming", info, args)
    rng = np.random.default_rng(args.seed)
    summary: dict[str, Any] = {}
    samples: dict[str, Any] = {}
    rows = []
    for words in (1, 4, 9):
        stored = rng.integers(0, 2**63, size=words, dtype=np.uint64).astype("<u8").tobytes()
        query = rng.integers(0, 2**63, size=words, dtype=np.uint64)
        query_bytes = query.astype("<u8").tobytes()
        tasks = {
            "numpy": lambda s=stored, q=query: int(
                np.bitwise_count(np.frombuffer(s, dtype="<u8") ^ q).sum()
            ),
            "hamming": lambda s=stored, q=query: int(hamming(np.frombuffer(s, dtype="<u8"), q)),
            "bytes": lambda s=stored, q=query_bytes: hamming_bytes(s, q),
        }
        number = {k: calibrate(fn, min_ns=1e6) for k, fn in tasks.items()}
        got = run_interleaved(tasks, args.repeats, seed=args.seed, number=number)
        speedup = median(paired_ratios(got["numpy"], got["bytes"]))
        summary[str(words)] = {k: median(v) for k, v in got.items()} | {"speedup": speedup}
        samples[str(words)] = got
        rows.append(
            [f"{words} words", *(f"{median(got[k]) / 1000:.2f}" for k in tasks), f"{speedup:.1f}x"]
        )
    console.print(
        table(
            f"One stored hash against the query, us per pair (median of {args.repeats} rounds)",
            ["hash", "numpy (before)", "hamming()", "hamming_bytes (after)", "numpy / bytes"],
            rows,
            caption=machine_line(info),
        )
    )
    write_json(args.out, {"machine": info, "repeats": args.repeats, "summary": summary,
                          "samples_ns": samples})  # fmt: skip
    console.print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()
