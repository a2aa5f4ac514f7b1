"""Provenance overhead on a model of Magento 2's product image import, two pipelines.

Per product image, as Magento's catalog image import and ``catalog:images:resize`` do
with the Luma theme (the 18 distinct sized image ids of ``etc/view.xml``,
:data:`LUMA_SIZES`: aspect kept, never upscaled, centred on a white frame of W x H
except the one ``frame=false`` id), two models of the pipeline:

* ``lean`` (the denominator the goals are judged by): decode once; each rendition
  resized with Pillow's LANCZOS and ``reducing_gap=3.0`` (Pillow reduces by an
  integer factor first, as an optimised import does); every rendition encoded as
  JPEG quality 80 whatever the original's format; every file written;
* ``heavy`` (the model this benchmark used before): plain LANCZOS from full
  resolution, renditions in the original's format (PNG stays PNG, WebP stays WebP),
  plus a full-size re-encode.

Variants, measured paired in the same shuffled rounds (``_common.run_interleaved``):

* ``pipeline``: the pipeline alone (the original stored as a plain copy);
* ``sign``: + :func:`provenance.sign_import` of the original without ``image`` or
  renditions (C2PA, signed XMP, minimal EXIF; the original's inventory row and audit
  entry), the signed original written in place of the plain copy;
* ``sign_durable`` (lean only): the same with ``durable=True`` (the inventory commit
  fsynced);
* ``full``: + the perceptual reference hashes and keypoints, from the pixels of the
  pipeline's largest unframed rendition (``image=``: the 700 x 700 ``frame=false``
  id, resized before it was encoded; the documented script's choice since the
  sixteenth session), in the same transaction, called once the renditions are made;
* ``full_decoded`` (lean only): the same from the pipeline's decoded original
  (``image=decoded``, the form before), called before the renditions as ``sign`` is;
* ``lineage``: ``full`` + every rendition's lineage (``renditions=``, default mark
  ``INVENTORY``): one call, one transaction per import.

Every call records a **fresh asset**: each round imports another variant of each
image (a 64 x 64 block of another colour in a corner, made before the rounds), and
each variant has an inventory of its own, so no call takes the cheaper
"already recorded" path. Inventories are opened with the defaults
(``durable=True``); the call sites pass ``durable=False`` as the import script in
docs/performance.md does, except ``sign_durable``.

Estimators, per image, medians over rounds:

* **paired**: time(variant) / time(pipeline) - 1 within a round (wall clock);
* **attributed**: the time inside the provenance call (and the write of the signed
  original), minus the plain copy it replaces, over the pipeline's time in the same
  round; as wall time and as the thread's CPU time (``time.thread_time_ns``), which
  other processes on a loaded machine disturb far less.

Per class the median and the worst image are reported. Also: the physical floor
(SHA-256 of the file + one ECDSA signature + one copy of the bytes) over the lean
pipeline and the *binding* floor of this signature design (the four SHA-256 passes a
signed file commits to, two ECDSA signatures, one copy: ``binding_floor_ns``), verify
throughput (files per second per core on signed 1-2 MB JPEGs, with trust anchors and
an inventory), the time and bytes of each rendition mark, and peak memory.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import importlib.util
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

import provenance
from _common import (
    SAMPLE_MEDIA,
    console,
    dev_keys,
    fmt_bytes,
    fmt_ms,
    header,
    load_record,
    machine_info,
    machine_line,
    median,
    ms,
    paired_ratios,
    parse_args,
    run_interleaved,
    table,
    write_json,
)
from provenance import RenditionMark
from provenance.inventory import Inventory

NAME = "overhead"
DEFAULT_REPEATS = 10
QUICK_REPEATS = 2
QUALITY = 80
LEAN_GAP = 3.0

# Magento 2.4 app/design/frontend/Magento/luma/etc/view.xml, <images module="Magento_Catalog">:
# the distinct (width, height, frame) of its 45 image ids. product_page_image_large
# and product_page_image_large_no_frame have no size: the heavy model's full-size re-encode.
LUMA_SIZES: tuple[tuple[int, int, bool], ...] = (
    (75, 75, True),
    (75, 90, True),
    (76, 76, True),
    (78, 78, True),
    (88, 110, True),
    (100, 100, True),
    (113, 113, True),
    (135, 135, True),
    (140, 140, True),
    (152, 190, True),
    (165, 165, True),
    (200, 248, True),
    (240, 300, True),
    (265, 265, True),
    (270, 340, True),
    (285, 285, True),
    (700, 560, True),
    (700, 700, False),
)
PIPELINES = ("lean", "heavy")
BUNDLES: dict[str, tuple[str, ...]] = {
    "lean": ("sign", "sign_durable", "full", "full_decoded", "lineage"),
    "heavy": ("sign", "full", "lineage"),
}
# (median %, worst %) against the lean pipeline, attributed; None: no goal.
GOALS: dict[str, tuple[float, float | None]] = {
    "sign": (1.5, None),
    "full": (3.0, 6.0),
    "lineage": (6.0, 8.0),
}
VERIFY_GOAL_PER_S = 250.0
_PIL = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
_EXT = {"jpeg": "jpg", "png": "png", "webp": "webp"}


# --- the reference pipelines --------------------------------------------------------


def rendition(
    image: Image.Image, width: int, height: int, frame: bool, *, gap: float | None
) -> Image.Image:
    """Magento's resize: keep aspect, never upscale, LANCZOS, white frame to W x H."""
    scale = min(width / image.width, height / image.height, 1.0)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resized = (
        image.resize(size, Image.Resampling.LANCZOS, reducing_gap=gap)
        if size != image.size
        else image
    )
    if not frame:
        return resized
    mode = "RGBA" if resized.mode in ("RGBA", "LA", "P") else "RGB"
    canvas = Image.new(mode, (width, height), (255, 255, 255, 0) if mode == "RGBA" else "white")
    canvas.paste(resized, ((width - size[0]) // 2, (height - size[1]) // 2))
    return canvas


def encode(image: Image.Image, fmt: str) -> bytes:
    """Encode as the pipeline stores it: ``fmt``, quality 80 (PNG keeps its alpha)."""
    out = io.BytesIO()
    if fmt == "png":
        image.save(out, "PNG")
    else:
        if fmt == "jpeg" and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(out, _PIL[fmt], quality=QUALITY)
    return out.getvalue()


Renditions = list[tuple[bytes, Path]]
After = Callable[[bytes, Image.Image, Renditions, Image.Image], None]


def pipeline(
    kind: str,
    data: bytes,
    out: Path,
    fmt: str,
    *,
    store_original: Callable[[bytes, Image.Image], None] | None,
    after: After | None = None,
) -> None:
    """Import ``data`` into ``out`` with the ``lean`` or ``heavy`` model.

    ``store_original`` replaces the plain copy of the original (None: nothing is
    stored before the renditions); ``after`` runs once the renditions are written,
    with the original's bytes, its decode, the renditions and the pixels of the
    largest unframed one (resized, not yet encoded).
    """
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        decoded = opened.copy() if opened.mode in ("RGB", "RGBA", "L") else opened.convert("RGB")
    if store_original is not None:
        store_original(data, decoded)
    lean = kind == "lean"
    target_fmt = "jpeg" if lean else fmt
    made: Renditions = []
    largest = decoded
    for width, height, frame in LUMA_SIZES:
        pixels = rendition(decoded, width, height, frame, gap=LEAN_GAP if lean else None)
        if not frame:
            largest = pixels  # one unframed id in Luma: 700 x 700, the largest
        encoded = encode(pixels, target_fmt)
        path = out / f"{width}x{height}{'' if frame else '-noframe'}.{_EXT[target_fmt]}"
        path.write_bytes(encoded)
        made.append((encoded, path))
    if not lean:
        full = encode(decoded, fmt)
        path = out / f"full.{_EXT[fmt]}"
        path.write_bytes(full)
        made.append((full, path))
    if after is not None:
        after(data, decoded, made, largest)


# --- the images ---------------------------------------------------------------------


@dataclass
class Case:
    """One input image of the benchmark."""

    name: str
    cls: str
    fmt: str
    path: Path
    megapixels: float
    record: Any


def build_cases(quick: bool, folder: Path) -> list[Case]:
    """Derive the 1/4/12 MP JPEG, 4 MP alpha PNG and 4 MP WebP inputs (see the docs)."""
    record = load_record(SAMPLE_MEDIA / "forest-path.jpg")
    cases: list[Case] = []

    def add(name: str, cls: str, fmt: str, image: Image.Image, **save: Any) -> None:
        path = folder / f"{name}.{_EXT[fmt]}"
        image.save(path, _PIL[fmt], **save)
        cases.append(Case(name, cls, fmt, path, image.width * image.height / 1e6, record))

    if quick:
        for sample in ("fallen-maple-leaf.jpg", "packshot-site-dumper-alpha.png"):
            with Image.open(SAMPLE_MEDIA / sample) as im:
                im.load()
                fmt = "jpeg" if sample.endswith(".jpg") else "png"
                add(Path(sample).stem, f"{fmt} sample", fmt, im.copy(), **_save_args(fmt))
        with Image.open(SAMPLE_MEDIA / "moss-close-up.webp") as im:
            im.load()
            add("moss-close-up", "webp sample", "webp", im.copy(), quality=85)
        return cases

    sys.path.insert(0, str(Path(__file__).parent))
    from corpus import ensure

    photos = sorted(p for p in ensure().paths("photo") if p.suffix == ".jpg")
    milky = next(p for p in ensure().paths("photo") if p.stem == "MilkyWay")
    for path in photos[:3]:
        with Image.open(path) as im:
            im.load()
            rgb = im.convert("RGB")
        add(
            f"{path.stem}-1mp",
            "jpeg 1 MP",
            "jpeg",
            rgb.resize((1280, 800), Image.LANCZOS),
            quality=90,
        )
        # The wallpaper as shipped (2560x1600, 4.1 MP), re-encoded at q90 for uniformity.
        add(f"{path.stem}-4mp", "jpeg 4 MP", "jpeg", rgb, quality=90)
    for path in photos[3:5]:
        with Image.open(path) as im:
            im.load()
            rgb = im.convert("RGB")
        add(f"{path.stem}-4mp-alpha", "png 4 MP alpha", "png", _vignette(rgb))
        add(f"{path.stem}-4mp", "webp 4 MP", "webp", rgb, quality=85)
    with Image.open(milky) as im:
        im.load()
        sky = im.convert("RGB")
    # 12 MP: a 4224x2816 window of the 5120x2880 MilkyWay photograph, and a
    # wallpaper enlarged 1.66x (LANCZOS) to 4250x2656 (the corpus has one photo > 4 MP).
    for i, left in enumerate([0]):
        add(
            f"MilkyWay-12mp-{i}",
            "jpeg 12 MP",
            "jpeg",
            sky.crop((left, 32, left + 4224, 2848)),
            quality=90,
        )
    for path in photos[5:6]:
        with Image.open(path) as im:
            im.load()
            big = im.convert("RGB").resize((4250, 2656), Image.LANCZOS)
        add(f"{path.stem}-12mp", "jpeg 12 MP", "jpeg", big, quality=90)
    return cases


def _save_args(fmt: str) -> dict[str, Any]:
    return {"quality": 90} if fmt == "jpeg" else {} if fmt == "png" else {"quality": 85}


def _vignette(rgb: Image.Image) -> Image.Image:
    """A packshot-style cut-out: an elliptical soft alpha mask (opaque centre, clear corners)."""
    w, h = rgb.size
    y, x = np.ogrid[:h, :w]
    r = np.sqrt(((x - w / 2) / (w / 2)) ** 2 + ((y - h / 2) / (h / 2)) ** 2)
    alpha = np.clip((1.05 - r) / 0.25, 0, 1) * 255
    out = rgb.copy()
    out.putalpha(Image.fromarray(alpha.astype(np.uint8), "L"))
    return out


def make_variants(
    case: Case, count: int, *, quality: int | None = None, first: int = 0
) -> list[bytes]:
    """``count`` versions of the image, each with a 64 x 64 corner block of its own colour.

    Each round imports another one, so every call records a fresh asset (other
    essence, other renditions) instead of taking the "already recorded" path.
    """
    with Image.open(case.path) as im:
        im.load()
        base = im.copy()
    out = []
    for i in range(first, first + count):
        image = base.copy()
        colour = (i * 37 % 256, i * 91 % 256, (i * 53 + 128) % 256)
        ImageDraw.Draw(image).rectangle(
            (0, 0, 63, 63), fill=colour + ((255,) if image.mode == "RGBA" else ())
        )
        buffer = io.BytesIO()
        save = _save_args(case.fmt) if quality is None else {"quality": quality}
        image.save(buffer, _PIL[case.fmt], **save)
        out.append(buffer.getvalue())
    return out


# --- the bundles --------------------------------------------------------------------


@dataclass
class Env:
    """What every task shares: the key, the trust anchors, a folder for inventories."""

    key: Any
    trust: Any
    folder: Path
    inventories: dict[str, Inventory] = field(default_factory=dict)

    def inventory(self, name: str) -> Inventory:
        """One inventory per (pipeline, variant, image, ...) name, opened with the defaults."""
        found = self.inventories.get(name)
        if found is None:
            found = Inventory(self.folder / f"{name}.sqlite")
            self.inventories[name] = found
        return found

    def close(self) -> None:
        """Close every inventory."""
        for inventory in self.inventories.values():
            inventory.close()


@dataclass
class Clock:
    """Time spent inside a task's provenance callbacks, and the task's own CPU time."""

    wall: list[int] = field(default_factory=list)
    cpu: list[int] = field(default_factory=list)
    total_cpu: list[int] = field(default_factory=list)
    _wall: int = 0
    _cpu: int = 0

    def timed(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn``, adding the wall and CPU ns each call takes to this call's tally."""

        def inner(*args: Any) -> Any:
            wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
            try:
                return fn(*args)
            finally:
                self._wall += time.perf_counter_ns() - wall
                self._cpu += time.thread_time_ns() - cpu

        return inner

    def run(self, fn: Callable[[], object]) -> object:
        """Run one import and keep its tallies."""
        self._wall = self._cpu = 0
        cpu = time.thread_time_ns()
        result = fn()
        self.total_cpu.append(time.thread_time_ns() - cpu)
        self.wall.append(self._wall)
        self.cpu.append(self._cpu)
        return result


def make_task(
    case: Case, kind: str, variant: str, env: Env, variants: list[bytes], work: Path, clock: Clock
) -> Callable[[], object]:
    """One (image, pipeline, variant) task: each call imports the next variant of the image."""
    out = work / case.name / kind / variant
    out.mkdir(parents=True, exist_ok=True)
    ext = _EXT[case.fmt]
    target = out / f"original.{ext}"
    inventory = env.inventory(f"{kind}-{variant}")
    calls = [0]

    def sign_import(
        data: bytes, decoded: Image.Image | None, made: Renditions, durable: bool
    ) -> None:
        signed = provenance.sign_import(
            data,
            target,
            record=case.record,
            key=env.key,
            inventory=inventory,
            image=decoded,
            renditions=made,
            durable=durable,
        )
        for file in signed.files:
            if file.changed:
                Path(file.path).write_bytes(file.data)

    store: Callable[[bytes, Image.Image], None] | None = None
    after: After | None = None
    if variant == "pipeline":
        store = clock.timed(lambda data, _im: target.write_bytes(data))
    elif variant in ("sign", "sign_durable"):
        durable = variant == "sign_durable"
        store = clock.timed(lambda data, _im: sign_import(data, None, [], durable))
    elif variant == "full_decoded":
        store = clock.timed(lambda data, im: sign_import(data, im, [], False))
    elif variant == "full":
        after = clock.timed(lambda data, _im, _made, pixels: sign_import(data, pixels, [], False))
    else:
        assert variant == "lineage"
        after = clock.timed(lambda data, _im, made, pixels: sign_import(data, pixels, made, False))

    def one() -> None:
        data = variants[calls[0] % len(variants)]
        calls[0] += 1
        pipeline(kind, data, out, case.fmt, store_original=store, after=after)

    return lambda: clock.run(one)


# --- the floor and verify -----------------------------------------------------------


def floor_ns(
    data: bytes, key: Any, repeats: int = 15, *, hashes: int = 1, signatures: int = 1
) -> float:
    """CPU ns of the physical floor: SHA-256 of the file, one ECDSA signature, one copy.

    ``hashes`` SHA-256 passes and ``signatures`` signatures of a statement-sized
    message instead (:func:`binding_floor_ns`).
    """
    samples = []
    for _ in range(repeats):
        started = time.thread_time_ns()
        digest = b""
        for _hash in range(hashes):
            digest = hashlib.sha256(data).digest()
        for _signature in range(signatures):
            key.sign(digest * 20)  # a statement-sized message
        bytearray(data)
        samples.append(time.thread_time_ns() - started)
    return median(samples)


def binding_floor_ns(data: bytes, key: Any, repeats: int = 15) -> float:
    """CPU ns of the least this signature design binds (the ``binding floor``).

    What a signed file commits to fixes four SHA-256 passes over about the file's
    size, none of which can start from another's state: the input's file and
    essence hashes (the signed statement), c2pa's hard binding (the staged file
    less the store) and the output's file hash (the inventory's row). Plus two
    ECDSA signatures (the statement's, c2pa's COSE claim signature) and one copy.
    ``floor_ns`` is the physical floor of signing at all; this is the floor of
    signing *this way*, so the sign bundle's distance from it is what an
    implementation of the design can still cut.
    """
    return floor_ns(data, key, repeats, hashes=4, signatures=2)


VERIFY_QUALITY = 97  # the 4 MP photographs at q97 are 1-2 MB JPEGs
VERIFY_COPIES = 8


def verify_throughput(cases: list[Case], env: Env, rounds: int) -> dict[str, Any]:
    """Files per second per core: ``verify(path, trust=..., inventory=...)`` on signed JPEGs.

    Each image is re-encoded at :data:`VERIFY_QUALITY` in :data:`VERIFY_COPIES`
    variants (``make_variants``), signed and recorded with its perceptual hashes.
    """
    folder = env.folder / "verify"
    folder.mkdir()
    inventory = env.inventory("verify")
    files: list[Path] = []
    for case in cases:
        with Image.open(case.path) as im:
            im.load()
            source = folder / f"{case.name}-q{VERIFY_QUALITY}.jpg"
            im.save(source, "JPEG", quality=VERIFY_QUALITY)
        big = Case(case.name, case.cls, "jpeg", source, case.megapixels, case.record)
        for i, data in enumerate(make_variants(big, VERIFY_COPIES, quality=VERIFY_QUALITY)):
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                decoded = im.copy()
            target = folder / f"{case.name}-{i}.jpg"
            signed = provenance.sign_import(
                data,
                target,
                record=case.record,
                key=env.key,
                inventory=inventory,
                image=decoded,
                durable=False,
            )
            target.write_bytes(signed.original.data)
            files.append(target)
    statuses: dict[str, int] = {}
    cpu: list[int] = []
    wall: list[int] = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for path in files:  # warm-up
            provenance.verify(path, trust=env.trust, inventory=inventory)
        for _ in range(rounds):
            for path in files:
                w, c = time.perf_counter_ns(), time.thread_time_ns()
                verdict = provenance.verify(path, trust=env.trust, inventory=inventory)
                cpu.append(time.thread_time_ns() - c)
                wall.append(time.perf_counter_ns() - w)
                statuses[verdict.status.value] = statuses.get(verdict.status.value, 0) + 1
    finally:
        if enabled:
            gc.enable()
    sizes = [p.stat().st_size for p in files]
    return {
        "files": len(files),
        "rounds": rounds,
        "bytes_min": min(sizes),
        "bytes_max": max(sizes),
        "cpu_ms_median": ms(median(cpu)),
        "wall_ms_median": ms(median(wall)),
        "files_per_s_per_core": 1e9 / median(cpu),
        "files_per_s_wall": 1e9 / median(wall),
        "statuses": statuses,
        "goal_files_per_s_per_core": VERIFY_GOAL_PER_S,
    }


# --- rendition marks ----------------------------------------------------------------

MARK_SIZES = ("75x75", "140x140", "285x285", "700x560", "700x700-noframe")


def rendition_marks(case: Case, env: Env, repeats: int, seed: int) -> list[dict[str, Any]]:
    """Time and bytes of each RenditionMark per rendition size (lean renditions)."""
    work = env.folder / "marks"
    work.mkdir()
    data = case.path.read_bytes()
    made: Renditions = []
    pipeline(
        "lean",
        data,
        work,
        case.fmt,
        store_original=None,
        after=lambda _data, _decoded, renditions, _pixels: made.extend(renditions),
    )
    signed, parent = provenance.sign_bytes(
        data, record=case.record, key=env.key, path=work / case.path.name
    )
    picked = [(e, p) for e, p in made if p.name.split(".")[0] in MARK_SIZES]
    tasks: dict[str, Callable[[], object]] = {}
    for encoded, path in picked:
        for mark in RenditionMark:
            tasks[f"{path.name}|{mark.value}"] = _mark_task(encoded, parent, signed, mark, env)
    samples = run_interleaved(
        tasks, repeats, seed=seed, number={k: 3 for k in tasks}, label="marks"
    )
    rows = []
    for encoded, path in picked:
        with Image.open(io.BytesIO(encoded)) as im:
            size = f"{im.width}x{im.height}"
        row: dict[str, Any] = {"rendition": path.name, "size": size, "bytes": len(encoded)}
        for mark in RenditionMark:
            marked, _ = tasks[f"{path.name}|{mark.value}"]()  # type: ignore[misc]
            row[mark.value] = {
                "ms": ms(median(samples[f"{path.name}|{mark.value}"])),
                "bytes_added": len(marked) - len(encoded),
            }
        rows.append(row)
    return rows


def _mark_task(
    encoded: bytes, parent: Any, signed: bytes, mark: RenditionMark, env: Env
) -> Callable[[], object]:
    def run() -> object:
        return provenance.sign_rendition(
            encoded, parent, key=env.key, mark=mark, parent_data=signed
        )

    return run


# --- attribution ------------------------------------------------------------------

# (label, module, attribute): the parts of one lean ``lineage`` import, wrapped to
# take their CPU time (a part's time includes the parts it calls: c2pa is in sign).
PARTS: tuple[tuple[str, str, str], ...] = (
    ("sign (all)", "provenance.sign", "_sign_bytes"),
    ("  of which c2pa", "provenance.sign", "sign_c2pa"),
    ("perceptual hashes", "provenance._core.phash", "reference_hashes"),
    ("keypoints", "provenance._core.keypoints", "reference_features"),
    ("rendition marks", "provenance.renditions", "_inventory_mark"),
    ("inventory transaction", "provenance.inventory", "Inventory.record_many"),
)


def attribute(cases: list[Case], env: Env, rounds: int) -> list[dict[str, Any]]:
    """CPU ms of each part of ``sign_import`` in the lean ``lineage`` bundle, per image.

    Run apart from the timed rounds (the wrappers cost a little): each part in
    :data:`PARTS` is wrapped to add its thread CPU time to a tally; medians over
    ``rounds`` fresh imports per image, and each part's share of the pipeline's
    CPU time in the same rounds.
    """
    tally: dict[str, int] = {}
    originals: list[tuple[Any, str, Any]] = []
    own = Env(env.key, env.trust, env.folder / "attribution")  # inventories of its own
    own.folder.mkdir()
    for label, module_name, attr in PARTS:
        owner: Any = sys.modules.get(module_name) or __import__(module_name, fromlist=["_"])
        name = attr
        if "." in attr:
            cls, name = attr.split(".")
            owner = getattr(owner, cls)
        original = getattr(owner, name, None)
        if original is None:
            continue  # renamed: leave the part out rather than fail the benchmark
        originals.append((owner, name, original))
        setattr(owner, name, _tallied(original, label, tally))
    rows = []
    try:
        for case in cases:
            # Colours the timed rounds never used: every import records a fresh asset.
            variants = make_variants(case, rounds + 1, first=1000)
            clock = Clock()
            task = make_task(case, "lean", "lineage", own, variants, own.folder / "work", clock)
            per_part: dict[str, list[int]] = {label: [] for label, _, _ in PARTS}
            pipeline_cpu: list[int] = []
            for i in range(rounds + 1):
                tally.clear()
                task()
                if i == 0:
                    continue  # warm-up
                pipeline_cpu.append(clock.total_cpu[-1] - clock.cpu[-1])
                for label in per_part:
                    per_part[label].append(tally.get(label, 0))
                per_part.setdefault("sign_import (whole call)", []).append(clock.cpu[-1])
            base = median(pipeline_cpu)
            rows.append(
                {
                    "image": case.name,
                    "class": case.cls,
                    "pipeline_cpu_ms": ms(base),
                    "parts_cpu_ms": {k: ms(median(v)) for k, v in per_part.items()},
                    "parts_pct": {k: 100 * median(v) / base for k, v in per_part.items()},
                }
            )
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
        own.close()
    return rows


def _tallied(fn: Callable[..., Any], label: str, tally: dict[str, int]) -> Callable[..., Any]:
    def inner(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            tally[label] = tally.get(label, 0) + time.thread_time_ns() - started

    return inner


# --- memory -------------------------------------------------------------------------


def probe(variant: str, path: str, fmt: str) -> None:
    """Child process: peak RSS of one lean import with ``variant`` (printed as JSON)."""
    key, trust, keys = dev_keys()
    folder = Path(tempfile.mkdtemp(prefix="provenance-probe-"))
    env = Env(key, trust, folder)
    record = load_record(SAMPLE_MEDIA / "forest-path.jpg")
    tiny = folder / f"tiny.{_EXT[fmt]}"
    Image.new("RGBA" if fmt == "png" else "RGB", (64, 48), "white").save(tiny, _PIL[fmt])
    small = Case("tiny", "probe", fmt, tiny, 0.0, record)
    case = Case(Path(path).stem, "probe", fmt, Path(path), 0.0, record)
    # Warm up on a tiny image so imports, the c2pa Context and SQLite are in the baseline.
    make_task(small, "lean", variant, env, [tiny.read_bytes()], folder / "w", Clock())()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    make_task(case, "lean", variant, env, [case.path.read_bytes()], folder / "w", Clock())()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"baseline_kb": baseline, "peak_kb": peak}))
    env.close()
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(keys, ignore_errors=True)


def memory(case: Case) -> dict[str, Any]:
    """Peak RSS per worker process: lean pipeline alone and with ``lineage``, fresh processes."""
    out: dict[str, Any] = {"image": case.name, "file_bytes": case.path.stat().st_size}
    with Image.open(case.path) as im:
        out["decoded_bytes"] = im.width * im.height * len(im.getbands())
    for variant in ("pipeline", "lineage"):
        done = subprocess.run(
            [sys.executable, __file__, "--probe", variant, str(case.path), case.fmt],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ},
        )
        out[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    out["bundle_extra_bytes"] = (out["lineage"]["peak_kb"] - out["pipeline"]["peak_kb"]) * 1024
    out["limit_bytes"] = 2 * out["file_bytes"]
    return out


# --- main ---------------------------------------------------------------------------


def main() -> int:
    """Run the benchmark; see the module docstring."""
    if len(sys.argv) == 5 and sys.argv[1] == "--probe":
        probe(*sys.argv[2:])
        return 0
    args = parse_args(
        NAME,
        __doc__.splitlines()[0],
        default_repeats=DEFAULT_REPEATS,
        quick_repeats=QUICK_REPEATS,
        extra=_extra_args,
    )
    info = machine_info()
    header(NAME, info, args)
    if (
        args.keypoints_against
        or args.keypoints_sampling
        or args.keypoints_before
        or args.keypoints_predict
        or args.keypoints_against_src
    ):
        with tempfile.TemporaryDirectory(prefix="provenance-overhead-") as folder:
            return keypoint_sizes(args, info, build_cases(args.quick, Path(folder)))
    key, trust, keys = dev_keys()
    scratch = Path(tempfile.mkdtemp(prefix="provenance-overhead-"))
    env = Env(key, trust, scratch / "inventories")
    env.folder.mkdir()
    try:
        return _run(args, info, env, scratch)
    finally:
        env.close()
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(keys, ignore_errors=True)


def _extra_args(parser: Any) -> None:
    parser.add_argument(
        "--keypoints-against",
        type=int,
        default=0,
        metavar="SIDE",
        help="only the keypoints' part: reference_features at its REFERENCE_SIDE against "
        "this side (e.g. 512, the size before), paired per image, CPU ms",
    )
    parser.add_argument(
        "--keypoints-sampling",
        action="store_true",
        help="only the keypoints' part: reference_features as it is (large originals "
        "point-sampled before the reduction) against the full reduction, paired, CPU ms",
    )
    parser.add_argument(
        "--keypoints-before",
        action="store_true",
        help="only the keypoints' part: reference_features as it is (FAST threshold 30, "
        "again at 12 under 192 keypoints) against the form stored before 2026-12-07 (FAST "
        "threshold 12) and the unshipped 2 x 2 point-sampling of 3x originals, paired, CPU ms",
    )
    parser.add_argument(
        "--keypoints-against-src",
        type=Path,
        default=None,
        metavar="SRC",
        help="only the keypoints' part: reference_features as it is against SRC's (another "
        "tree's src folder: its _core/keypoints/_extract.py, loaded beside this one), paired",
    )
    parser.add_argument(
        "--keypoints-predict",
        action="store_true",
        help="only the keypoints' part: reference_features as it is (the FAST threshold "
        "chosen before ORB runs) against detecting at 30 first and again at 12 when short "
        "(the same stored keypoints; until 2026-12-07), paired, CPU ms",
    )


def keypoint_sizes(args: Any, info: Mapping[str, Any], cases: list[Case]) -> int:
    """CPU ms of ``reference_features`` per image, today's form against another.

    The import path's keypoint part in isolation (the ``attribution`` section
    times it inside a whole import): each case decoded once as the pipeline
    decodes it, then the two forms in alternating order per round (paired, so
    the machine's load hits both alike), ``--repeats`` rounds, medians. The
    other form is another working side (``--keypoints-against``), the full
    reduction without point-sampling (``--keypoints-sampling``), or the form
    stored before 2026-12-07 and an unshipped one (``--keypoints-before``), or
    the same keypoints detected at 30 first whatever the picture
    (``--keypoints-predict``).
    """
    from provenance._core import keypoints

    now = keypoints.REFERENCE_SIDE
    other: dict[str, dict[str, Any]]
    if args.keypoints_before:
        other = {
            "before (FAST 12)": {"threshold": 12, "retry": None},
            "now": {},
            "sampled from 3x (not shipped)": {"sampled_from": 3},
        }
    elif args.keypoints_sampling:
        other = {"full reduction": {"sampled": False}, "sampled (now)": {}}
    elif args.keypoints_predict:
        other = {"30, again at 12 (before)": {"predict": False}, "threshold chosen first": {}}
    else:
        other = {f"{args.keypoints_against} px": {"side": args.keypoints_against}, f"{now} px": {}}
    # Every form is reference_features' call with some arguments changed.
    forms: dict[str, Callable[[Image.Image], object]] = {
        label: functools.partial(
            keypoints.extract,
            **{
                "side": now,
                "features": keypoints.REFERENCE_FEATURES,
                "levels": keypoints.REFERENCE_LEVELS,
                "sampled": True,
                "threshold": keypoints.REFERENCE_THRESHOLD,
                "retry": keypoints.REFERENCE_RETRY,
                **change,
            },
        )
        for label, change in other.items()
    }
    if args.keypoints_against_src:
        forms = {
            f"{args.keypoints_against_src}": _extract_of(args.keypoints_against_src),
            "now": keypoints.reference_features,
        }
    rows = []
    for case in cases:
        with Image.open(case.path) as im:
            im.load()
            image = im.copy()
        keypoints.reference_features(image)  # warm-up (OpenCV's import, caches)
        times: dict[str, list[float]] = {label: [] for label in forms}
        labels = list(forms)
        for r in range(args.repeats):
            for label in labels if r % 2 == 0 else labels[::-1]:
                started = time.process_time_ns()
                forms[label](image)  # reference_features in one form
                times[label].append((time.process_time_ns() - started) / 1e6)
        rows.append(
            {
                "image": case.name,
                "class": case.cls,
                "megapixels": round(case.megapixels, 2),
                "cpu_ms_median": {label: round(median(times[label]), 2) for label in forms},
            }
        )
    out: dict[str, Any] = {"benchmark": NAME, "machine": info, "keypoint_sizes": rows}
    if args.keypoints_against_src:
        out["identical_rows"] = _identical_rows(list(forms.values()), cases)
        console.print(
            f"stored rows identical to {args.keypoints_against_src}'s: {out['identical_rows']}"
        )
    write_json(args.out, out)
    console.print(
        table(
            f"keypoints at signing, CPU ms per image (median of {args.repeats}, paired)",
            ["image", "class", "MP", *forms],
            [
                [
                    row["image"],
                    row["class"],
                    f"{row['megapixels']:.1f}",
                    *(f"{row['cpu_ms_median'][label]:.2f}" for label in forms),
                ]
                for row in rows
            ],
        )
    )
    return 0


def _identical_rows(
    forms: list[Callable[[Image.Image], object]], cases: list[Case]
) -> dict[str, int]:
    """How many stored keypoint rows two forms agree on, byte for byte.

    Over the benchmark's cases and the corpus's originals (as decoded from their
    files), so a change meant to store the same keypoints is checked on every
    picture the robustness figures rest on.
    """
    from corpus import ensure

    paths = [case.path for case in cases] + ensure().paths()
    same = 0
    for path in paths:
        with Image.open(path) as im:
            im.load()
            image = im.copy()
        first, second = (form(image).to_bytes() for form in forms)  # type: ignore[attr-defined]
        same += first == second
    return {"images": len(paths), "identical": same}


def _extract_of(src: Path) -> Callable[[Image.Image], object]:
    """``reference_features`` of another tree's ``_core/keypoints/_extract.py``.

    Loaded as a module of its own beside the running package, so both forms run
    in one process, paired; its imports (OpenCV's loader, the stored form,
    phash's flattening of alpha) are the running tree's.
    """
    path = src / "provenance" / "_core" / "keypoints" / "_extract.py"
    spec = importlib.util.spec_from_file_location("_keypoints_extract_against", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found: Callable[[Image.Image], object] = module.reference_features
    return found


def _summary(values: list[float]) -> dict[str, float]:
    return {"median_pct": median(values), "worst_pct": max(values)}


def _run(args: Any, info: Mapping[str, Any], env: Env, scratch: Path) -> int:
    inputs = scratch / "inputs"
    inputs.mkdir()
    cases = build_cases(args.quick, inputs)
    load_before = info["load_average_1_5_15"]
    variants = {c.name: make_variants(c, args.repeats + 1) for c in cases}
    tasks: dict[str, Callable[[], object]] = {}
    clocks: dict[str, Clock] = {}
    for case in cases:
        for kind in PIPELINES:
            for variant in ("pipeline", *BUNDLES[kind]):
                name = f"{case.name}|{kind}|{variant}"
                clocks[name] = Clock()
                tasks[name] = make_task(
                    case, kind, variant, env, variants[case.name], scratch / "work", clocks[name]
                )
    samples = run_interleaved(tasks, args.repeats, seed=args.seed, label="import rounds")
    for clock in clocks.values():  # the first call of every task is the warm-up
        del clock.wall[0], clock.cpu[0], clock.total_cpu[0]
    images = []
    for case in cases:
        row: dict[str, Any] = {
            "image": case.name,
            "class": case.cls,
            "megapixels": round(case.megapixels, 2),
            "file_bytes": len(variants[case.name][0]),
        }
        for kind in PIPELINES:
            base_name = f"{case.name}|{kind}|pipeline"
            base, base_clock = samples[base_name], clocks[base_name]
            part: dict[str, Any] = {
                "pipeline_ms": ms(median(base)),
                "pipeline_cpu_ms": ms(median(base_clock.total_cpu)),
                "paired_pct": {},
                "attributed_pct": {},
                "attributed_cpu_pct": {},
                "provenance_cpu_ms": {},
            }
            for bundle in BUNDLES[kind]:
                name = f"{case.name}|{kind}|{bundle}"
                clock = clocks[name]
                part["paired_pct"][bundle] = 100 * (median(paired_ratios(samples[name], base)) - 1)
                part["attributed_pct"][bundle] = 100 * median(
                    (b - p) / t for b, p, t in zip(clock.wall, base_clock.wall, base, strict=True)
                )
                part["attributed_cpu_pct"][bundle] = 100 * median(
                    (b - p) / t
                    for b, p, t in zip(clock.cpu, base_clock.cpu, base_clock.total_cpu, strict=True)
                )
                part["provenance_cpu_ms"][bundle] = ms(
                    median(b - p for b, p in zip(clock.cpu, base_clock.cpu, strict=True))
                )
            part["samples_ns"] = {
                v: samples[f"{case.name}|{kind}|{v}"] for v in ("pipeline", *BUNDLES[kind])
            }
            row[kind] = part
        row["floor_cpu_ms"] = ms(floor_ns(variants[case.name][0], env.key))
        row["floor_pct"] = 100 * row["floor_cpu_ms"] / row["lean"]["pipeline_cpu_ms"]
        row["binding_floor_cpu_ms"] = ms(binding_floor_ns(variants[case.name][0], env.key))
        row["binding_floor_pct"] = (
            100 * row["binding_floor_cpu_ms"] / row["lean"]["pipeline_cpu_ms"]
        )
        images.append(row)
    estimators = ("attributed_cpu_pct", "attributed_pct", "paired_pct")
    classes: dict[str, Any] = {}
    for cls in dict.fromkeys(c.cls for c in cases):
        rows = [r for r in images if r["class"] == cls]
        classes[cls] = {
            "images": len(rows),
            "floor_pct": median(r["floor_pct"] for r in rows),
            "binding_floor_pct": median(r["binding_floor_pct"] for r in rows),
            **{
                kind: {
                    "pipeline_ms": median(r[kind]["pipeline_ms"] for r in rows),
                    "pipeline_cpu_ms": median(r[kind]["pipeline_cpu_ms"] for r in rows),
                    **{
                        est: {b: _summary([r[kind][est][b] for r in rows]) for b in BUNDLES[kind]}
                        for est in estimators
                    },
                }
                for kind in PIPELINES
            },
        }
    overall = {
        "floor_pct": _summary([r["floor_pct"] for r in images]),
        "binding_floor_pct": _summary([r["binding_floor_pct"] for r in images]),
        **{
            kind: {
                est: {b: _summary([r[kind][est][b] for r in images]) for b in BUNDLES[kind]}
                for est in estimators
            }
            for kind in PIPELINES
        },
    }
    goals = {
        b: {
            "goal_median_pct": m,
            "goal_worst_pct": w,
            **overall["lean"]["attributed_cpu_pct"][b],
            "met": overall["lean"]["attributed_cpu_pct"][b]["median_pct"] <= m
            and (w is None or overall["lean"]["attributed_cpu_pct"][b]["worst_pct"] <= w),
            "floor_median_pct": overall["floor_pct"]["median_pct"],
            "binding_floor_median_pct": overall["binding_floor_pct"]["median_pct"],
        }
        for b, (m, w) in GOALS.items()
    }
    jpeg_big = [c for c in cases if c.fmt == "jpeg" and "4 MP" in c.cls] or [
        c for c in cases if c.fmt == "jpeg"
    ]
    verify = verify_throughput(jpeg_big, env, rounds=max(2, min(args.repeats, 5)))
    parts = attribute(
        [next(c for c in cases if c.cls == cls) for cls in dict.fromkeys(c.cls for c in cases)],
        env,
        rounds=max(3, min(args.repeats, 8)),
    )
    mark_case = next((c for c in cases if c.fmt == "jpeg"), cases[0])
    marks = rendition_marks(mark_case, env, max(3, args.repeats), args.seed)
    largest = max(cases, key=lambda c: c.path.stat().st_size)
    mem = memory(largest)
    info = {**info, "load_average_before": load_before, "load_average_after": _load()}
    payload = {
        "benchmark": NAME,
        "machine": info,
        "repeats": args.repeats,
        "quick": args.quick,
        "seed": args.seed,
        "pipelines": {
            "lean": {
                "sizes": [list(s) for s in LUMA_SIZES],
                "resample": f"LANCZOS, reducing_gap={LEAN_GAP}",
                "renditions": f"JPEG q{QUALITY}",
                "full_size_reencode": False,
            },
            "heavy": {
                "sizes": [list(s) for s in LUMA_SIZES],
                "resample": "LANCZOS from full resolution",
                "renditions": f"the original's format (JPEG/WebP q{QUALITY}, PNG)",
                "full_size_reencode": True,
            },
        },
        "calls": "provenance.sign_import(data, path, record=, key=, inventory=, image=, "
        "renditions=, durable=False) per import; fresh asset per call",
        "goals": goals,
        "classes": classes,
        "overall": overall,
        "verify": verify,
        "attribution": parts,
        "rendition_marks": {"image": mark_case.name, "rows": marks},
        "memory": mem,
        "images": images,
    }
    write_json(args.out, payload)
    tables = _tables(payload, args)
    for t in tables:
        console.print(t)
    args.out.with_suffix(".md").write_text(_markdown(payload, args), "utf-8")
    return 0


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _pct(value: float) -> str:
    return f"{value:+.1f}%"


def _class_rows(
    payload: Mapping[str, Any], kind: str, est: str, *, floor: bool = False
) -> list[list[Any]]:
    rows = []
    bundles = BUNDLES[kind]
    for cls, c in payload["classes"].items():
        row = [cls, c["images"], fmt_ms(c[kind]["pipeline_ms"]), fmt_ms(c[kind]["pipeline_cpu_ms"])]
        if floor:
            row += [_pct(c["floor_pct"]), _pct(c["binding_floor_pct"])]
        for b in bundles:
            s = c[kind][est][b]
            row += [_pct(s["median_pct"]), _pct(s["worst_pct"])]
        rows.append(row)
    row = ["all images", len(payload["images"]), "", ""]
    if floor:
        row += [
            _pct(payload["overall"]["floor_pct"]["median_pct"]),
            _pct(payload["overall"]["binding_floor_pct"]["median_pct"]),
        ]
    for b in bundles:
        s = payload["overall"][kind][est][b]
        row += [_pct(s["median_pct"]), _pct(s["worst_pct"])]
    rows.append(row)
    return rows


def _columns(kind: str, *, floor: bool = False) -> list[str]:
    cols = ["class", "images", "pipeline ms", "pipeline CPU ms"]
    if floor:
        cols += ["floor", "binding floor"]
    for b in BUNDLES[kind]:
        cols += [f"{b} med", f"{b} worst"]
    return cols


_TITLES = {
    "attributed_cpu_pct": "attributed, CPU time (the call's CPU / the pipeline's CPU, same round)",
    "attributed_pct": "attributed, wall time",
    "paired_pct": "paired, wall time (time with / without - 1, same round)",
}


def _tables(payload: Mapping[str, Any], args: Any) -> list[Any]:
    info = payload["machine"]
    caption = (
        f"{machine_line(info)} | load before/after {info['load_average_before']} / "
        f"{info['load_average_after']} | {args.repeats} shuffled rounds, medians; fresh asset "
        "per call | goals (lean, attributed CPU): sign <= 1.5% median; full <= 3% median, "
        "<= 6% worst; lineage <= 6% median, <= 8% worst"
    )
    out = []
    for kind in PIPELINES:
        for est in ("attributed_cpu_pct", "attributed_pct", "paired_pct"):
            out.append(
                table(
                    f"{kind} pipeline: {_TITLES[est]}",
                    _columns(kind, floor=kind == "lean" and est == "attributed_cpu_pct"),
                    _class_rows(
                        payload, kind, est, floor=kind == "lean" and est == "attributed_cpu_pct"
                    ),
                    caption=caption if est == "attributed_cpu_pct" else "",
                )
            )
    grows = [
        [
            b,
            f"<= {g['goal_median_pct']}%",
            "-" if g["goal_worst_pct"] is None else f"<= {g['goal_worst_pct']}%",
            _pct(g["median_pct"]),
            _pct(g["worst_pct"]),
            _pct(g["floor_median_pct"]),
            _pct(g["binding_floor_median_pct"]),
            "yes" if g["met"] else "no",
        ]
        for b, g in payload["goals"].items()
    ]
    out.append(
        table(
            "Goals (lean pipeline, attributed CPU, all images)",
            [
                "bundle",
                "goal median",
                "goal worst",
                "median",
                "worst",
                "floor",
                "binding floor",
                "met",
            ],
            grows,
        )
    )
    v = payload["verify"]
    out.append(
        table(
            "verify(path, trust=anchors, inventory=...) on signed JPEGs",
            ["files", "sizes", "CPU ms", "wall ms", "files/s per core", "goal", "statuses"],
            [
                [
                    v["files"],
                    f"{fmt_bytes(v['bytes_min'])}-{fmt_bytes(v['bytes_max'])}",
                    fmt_ms(v["cpu_ms_median"], 3),
                    fmt_ms(v["wall_ms_median"], 3),
                    f"{v['files_per_s_per_core']:.0f}",
                    f">= {v['goal_files_per_s_per_core']:.0f}",
                    ", ".join(f"{k} {n}" for k, n in v["statuses"].items()),
                ]
            ],
        )
    )
    parts = payload["attribution"]
    if parts:
        labels = list(parts[0]["parts_cpu_ms"])
        out.append(
            table(
                "Where the time goes: lean lineage import, CPU ms per part (% of the pipeline)",
                ["image", "pipeline CPU ms", *labels],
                [
                    [
                        r["image"],
                        fmt_ms(r["pipeline_cpu_ms"]),
                        *(f"{r['parts_cpu_ms'][k]:.2f} ({r['parts_pct'][k]:.1f}%)" for k in labels),
                    ]
                    for r in parts
                ],
            )
        )
    mrows = [
        [
            r["rendition"],
            r["size"],
            fmt_bytes(r["bytes"]),
            *(
                x
                for m in RenditionMark
                for x in (fmt_ms(r[m.value]["ms"], 3), fmt_bytes(r[m.value]["bytes_added"]))
            ),
        ]
        for r in payload["rendition_marks"]["rows"]
    ]
    out.append(
        table(
            "Per rendition: time and bytes added by each mark "
            f"({payload['rendition_marks']['image']})",
            [
                "rendition",
                "pixels",
                "bytes",
                *(f"{m.value} {x}" for m in RenditionMark for x in ("ms", "+bytes")),
            ],
            mrows,
        )
    )
    mem = payload["memory"]
    out.append(
        f"memory ({mem['image']}, {fmt_bytes(mem['file_bytes'])} file, "
        f"{fmt_bytes(mem['decoded_bytes'])} decoded): peak RSS lean pipeline "
        f"{mem['pipeline']['peak_kb'] / 1024:.0f} MB, with lineage "
        f"{mem['lineage']['peak_kb'] / 1024:.0f} MB (extra {fmt_bytes(mem['bundle_extra_bytes'])}, "
        f"limit 2x file = {fmt_bytes(mem['limit_bytes'])})"
    )
    return out


def _markdown(payload: Mapping[str, Any], args: Any) -> str:
    """The headline tables as Markdown (beside the JSON), for docs/performance.md."""
    info = payload["machine"]
    lines = [
        f"Machine: {machine_line(info)}; load before/after {info['load_average_before']} / "
        f"{info['load_average_after']}; {args.repeats} shuffled rounds; {info['date_utc']}.",
        "",
    ]
    for kind in PIPELINES:
        for est in ("attributed_cpu_pct", "paired_pct"):
            floor = kind == "lean" and est == "attributed_cpu_pct"
            cols = _columns(kind, floor=floor)
            lines.append(f"**{kind} pipeline, {_TITLES[est]}**")
            lines.append("")
            lines.append("| " + " | ".join(cols) + " |")
            lines.append("|" + "---|" * len(cols))
            for row in _class_rows(payload, kind, est, floor=floor):
                lines.append("| " + " | ".join(str(c) for c in row) + " |")
            lines.append("")
    parts = payload["attribution"]
    if parts:
        labels = list(parts[0]["parts_cpu_ms"])
        lines.append("**Where the time goes** (lean lineage import, CPU ms, % of the pipeline)")
        lines.append("")
        lines.append("| image | pipeline CPU ms | " + " | ".join(x.strip() for x in labels) + " |")
        lines.append("|" + "---|" * (len(labels) + 2))
        for r in parts:
            cells = [f"{r['parts_cpu_ms'][k]:.2f} ({r['parts_pct'][k]:.1f}%)" for k in labels]
            head = f"| {r['image']} | {r['pipeline_cpu_ms']:.0f} | "
            lines.append(head + " | ".join(cells) + " |")
        lines.append("")
    v = payload["verify"]
    lines.append(
        f"verify: {v['files_per_s_per_core']:.0f} files/s per core "
        f"(CPU {v['cpu_ms_median']:.2f} ms per file, wall {v['wall_ms_median']:.2f} ms) "
        f"on {v['files']} signed JPEGs of "
        f"{fmt_bytes(v['bytes_min'])}-{fmt_bytes(v['bytes_max'])}, anchors and an inventory."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
