"""The fixed parts of one import, in isolation: before and after a change, paired.

One lean import of a 1 MP JPEG (1280 x 800, q90, made from ``sample_media``; the
class furthest from issue 20's goals) has fixed costs that do not grow with the
image: signing the original (``sign_bytes``: hashes, signed XMP, EXIF, C2PA; no
inventory), the inventory transaction (``Inventory.record_many`` of the original and
its 18 renditions, fresh assets, not fsynced, called as ``sign_import`` calls it), the
perceptual reference hashes of the decoded image (``phash.reference_hashes``), its
partial-copy keypoints (``keypoints.reference_features``) and the 18 rendition marks
(``sign_rendition`` with the default ``INVENTORY`` mark), and, apart, the same 18
renditions marked ``RenditionMark.C2PA`` (CPU per rendition, the mean of the 18,
with its c2pa part: c2pa reads the parent ingredient once per original since
issue 20; not recorded). ``overhead.py`` times
them inside whole imports (its ``attribution`` section); this times each alone,
as thread CPU time, median over the imports of a process. "of which c2pa" is the
``sign_c2pa`` call: for JPEG and PNG, signed data-hashed since issue 20, it includes
our SHA-256 of the staged file that c2pa's claim binds and (since the embedding is
staged, not copied) the one copy of the file, made with the store in it.

``--image png`` imports a 2000 x 2000 alpha PNG instead (``fallen-maple-leaf.jpg``
enlarged, with ``overhead.py``'s soft elliptical alpha; 3.3 MB): the format whose
signing costs most per call, measured the same way. Pillow writes its image data in
64 KiB IDAT chunks (50 here); ``--image png-8k`` writes the same PNG in libpng's
8 KiB chunks (400), as libpng-based tools do, since c2pa walks every chunk.
``--image jpeg-dark`` imports a 1 MP JPEG of ``lake-at-dusk.webp`` instead: a dark
picture, short of FAST corners at the keypoints' first threshold (docs/search.md).
``--image jpeg-4mp`` imports a 4 MP JPEG (2560 x 1600, q90) of ``rowing-boats-sunset.jpg``:
945 KB whose coded data holds 21,000 0xFF bytes, where the per-byte passes of signing
(four SHA-256, the scan for the end of the coded data) weigh most.

``--against SRC`` compares two trees of the package: each round runs one process
with the package as imported now and one with ``SRC`` on ``PYTHONPATH`` (e.g. a
``git archive`` of main), in alternating order, so the machine's load hits both
alike; the medians of the rounds' medians are reported.

    git worktree add ../provenance-main main   # the tree to compare against
    PYTHONPATH=src .venv/bin/python benchmarks/import_parts.py --against ../provenance-main/src
"""

from __future__ import annotations

import inspect
import io
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image, ImageFile

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

NAME = "import_parts"
IMPORTS = 40  # per process; the first two are warm-up
PARTS = (
    "sign (sign_bytes)",
    "  of which c2pa",
    "inventory transaction",
    "perceptual hashes",
    "keypoints",
    "rendition marks",
    "C2PA rendition mark (each)",
    "  of which c2pa (each)",
)


def _source(image: str, folder: Path) -> Path:
    """The input of one import: the 1 MP JPEG (q90) or the 2000 x 2000 alpha PNG."""
    import overhead

    samples = {
        "jpeg": "forest-path.jpg",
        "jpeg-dark": "lake-at-dusk.webp",
        "jpeg-4mp": "rowing-boats-sunset.jpg",
    }
    sample = samples.get(image, "fallen-maple-leaf.jpg")
    with Image.open(SAMPLE_MEDIA / sample) as im:
        im.load()
        rgb = im.convert("RGB")
    if image == "jpeg-4mp":
        source = folder / "four-mp.jpg"
        rgb.resize((2560, 1600), Image.Resampling.LANCZOS).save(source, quality=90)
    elif image.startswith("jpeg"):
        source = folder / "one-mp.jpg"
        rgb.resize((1280, 800), Image.Resampling.LANCZOS).save(source, quality=90)
    else:
        source = folder / "four-mp-alpha.png"
        overhead._vignette(rgb.resize((2000, 2000), Image.Resampling.LANCZOS)).save(source)
    return source


def measure(imports: int, image: str) -> dict[str, float]:
    """One process: CPU ms of each part per import, medians over ``imports`` fresh imports."""
    sys.path.insert(0, str(Path(__file__).parent))
    import overhead
    import provenance
    from provenance._core import keypoints, phash

    key, _trust, keys = dev_keys()
    folder = Path(tempfile.mkdtemp(prefix="provenance-import-parts-"))
    record = load_record(SAMPLE_MEDIA / "forest-path.jpg")
    source = _source(image, folder)
    fmt = "jpeg" if image.startswith("jpeg") else "png"
    megapixels = 4.0 if image == "jpeg-4mp" else 1.0
    case = overhead.Case(source.stem, image, fmt, source, megapixels, record)
    now = datetime.now(timezone.utc)
    times: dict[str, list[int]] = {part: [] for part in PARTS}
    in_c2pa = _tally_c2pa()
    # As sign_import calls it: without building the asset entries it does not read
    # (entries=False, since 2026-12-07's fourteenth session; an older tree builds them).
    takes = inspect.signature(provenance.Inventory.record_many).parameters
    as_sign_import = {"entries": False} if "entries" in takes else {}
    with provenance.Inventory(folder / "inventory.sqlite") as inventory:
        for i, data in enumerate(_variants(case, imports, image)):
            in_c2pa.clear()
            started = time.thread_time_ns()
            signed, original = provenance.sign_bytes(
                data, record=record, key=key, now=now, path=f"catalog/{i}{source.suffix}"
            )
            times["sign (sign_bytes)"].append(time.thread_time_ns() - started)
            times["  of which c2pa"].append(sum(in_c2pa))
            with Image.open(io.BytesIO(data)) as opened:
                opened.load()
                decoded = opened.copy()
            made = [
                overhead.encode(overhead.rendition(decoded, w, h, frame, gap=3.0), "jpeg")
                for w, h, frame in overhead.LUMA_SIZES
            ]
            started = time.thread_time_ns()
            marked = [
                provenance.sign_rendition(m, original, key=key, now=now, path=f"cache/{i}/{k}.jpg")
                for k, m in enumerate(made)
            ]
            times["rendition marks"].append(time.thread_time_ns() - started)
            _c2pa_marks(made, signed, original, key, now, i, times, in_c2pa)
            started = time.thread_time_ns()
            reference = phash.reference_hashes(decoded)
            times["perceptual hashes"].append(time.thread_time_ns() - started)
            started = time.thread_time_ns()
            local = keypoints.reference_features(decoded)
            times["keypoints"].append(time.thread_time_ns() - started)
            results = [original, *(result for _, result in marked)]
            others = [None] * len(marked)
            started = time.thread_time_ns()
            inventory.record_many(
                results,
                signer=key.subject,
                now=now,
                perceptual=[reference, *others],
                keypoints=[local, *others],
                durable=False,
                **as_sign_import,
            )
            times["inventory transaction"].append(time.thread_time_ns() - started)
        if not inventory.audit.verify().ok:
            raise SystemExit("the audit log of the measured imports does not verify")
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(keys, ignore_errors=True)
    return {part: median(values[2:]) / 1e6 for part, values in times.items()}


def _c2pa_marks(
    made: list[bytes],
    signed: bytes,
    original: Any,
    key: Any,
    now: datetime,
    i: int,
    times: dict[str, list[int]],
    in_c2pa: list[int],
) -> None:
    """The 18 renditions marked ``RenditionMark.C2PA``: CPU ns per rendition (their mean,
    so the first rendition of the original, which has c2pa read it, counts in)."""
    import provenance

    each: list[int] = []
    in_each: list[int] = []
    for k, m in enumerate(made):
        in_c2pa.clear()
        started = time.thread_time_ns()
        provenance.sign_rendition(
            m,
            original,
            key=key,
            now=now,
            mark=provenance.RenditionMark.C2PA,
            parent_data=signed,
            path=f"cache/{i}/{k}.jpg",
        )
        each.append(time.thread_time_ns() - started)
        in_each.append(sum(in_c2pa))
    times["C2PA rendition mark (each)"].append(sum(each) // len(each))
    times["  of which c2pa (each)"].append(sum(in_each) // len(in_each))


def _variants(case: Any, imports: int, image: str) -> list[bytes]:
    """The imported originals, each fresh; ``png-8k``: Pillow writing 8 KiB IDAT chunks."""
    import overhead

    block = ImageFile.MAXBLOCK
    # Pillow's PNG encoder writes one IDAT chunk per buffer of max(MAXBLOCK, 4 x width).
    ImageFile.MAXBLOCK = 8192 if image == "png-8k" else block
    try:
        made: list[bytes] = overhead.make_variants(case, imports, first=300)
    finally:
        ImageFile.MAXBLOCK = block
    return made


def _tally_c2pa() -> list[int]:
    """Wrap the c2pa step of signing (``provenance.sign.sign_c2pa``) to tally its CPU ns."""
    module = sys.modules["provenance.sign"]
    original = module.sign_c2pa  # type: ignore[attr-defined]
    tally: list[int] = []

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time_ns()
        try:
            return original(*args, **kwargs)
        finally:
            tally.append(time.thread_time_ns() - started)

    module.sign_c2pa = timed  # type: ignore[attr-defined]
    return tally


def main() -> int:
    """Run the benchmark; see the module docstring."""
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(measure(int(sys.argv[2]), sys.argv[3])))
        return 0
    args = parse_args(
        NAME, __doc__.splitlines()[0], default_repeats=5, quick_repeats=2, extra=_extra
    )
    info = machine_info()
    header(NAME, info, args)
    imports = 12 if args.quick else IMPORTS
    trees, rounds = alternating_trees(
        __file__, args.against, args.repeats, [str(imports), args.image]
    )
    result = {
        tree: {part: median([r[part] for r in found]) for part in PARTS}
        for tree, found in rounds.items()
    }
    write_json(
        args.out,
        {"benchmark": NAME, "machine": info, "image": args.image,
         "imports_per_round": imports, "trees": trees,
         "rounds": rounds, "cpu_ms_median": result},
    )  # fmt: skip
    columns = ["part (CPU ms per import)", *trees]
    rows = [[part, *(f"{result[tree][part]:.2f}" for tree in trees)] for part in PARTS]
    title = f"{NAME} ({args.image}): medians of {args.repeats} rounds"
    console.print(table(title, columns, rows))
    return 0


def _extra(parser: Any) -> None:
    against_option(parser)
    parser.add_argument(
        "--image",
        choices=("jpeg", "jpeg-dark", "jpeg-4mp", "png", "png-8k"),
        default="jpeg",
        help="the original: 1 MP JPEG (default), a dark 1 MP JPEG, a 4 MP JPEG, "
        "2000 x 2000 alpha PNG, the same in 8 KiB IDATs",
    )


if __name__ == "__main__":
    raise SystemExit(main())
