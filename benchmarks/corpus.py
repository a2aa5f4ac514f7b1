"""The benchmark corpus of real photographs, built from Debian packages on first use.

Recipe: ``../shared/corpus/README.md``. Nothing here is committed to the project: the
packages are fetched with ``apt-get download`` into a cache folder
(``$PROVENANCE_CORPUS`` or ``~/.cache/provenance-corpus``) and the images derived from
them are written next to them, with a ``manifest.csv`` (path, kind, group, source).

Kinds:

* ``photo``: the 11 photographic Plasma wallpapers, largest file of each folder
  (2560x1600 JPEG; MilkyWay 5120x2880 PNG), unchanged;
* ``packshot``: Tux Paint photographic stamps composited on white (e-commerce look),
  long side <= 768 px, JPEG q92; ``group`` is the stamp's folder, so look-alikes share one;
* ``nebula``: 50 Stellarium deep-sky photographs (seeded pick), dark and low-texture;
* ``landscape``: 4:3 windows of Stellarium panoramas; windows of one panorama share a
  ``group`` (look-alike hard negatives).

Usage (a benchmark's set-up)::

    from corpus import ensure
    corpus = ensure()                 # builds once (about 1 minute, 500 MB download)
    paths = corpus.paths("packshot")  # list[Path]

or from the shell: ``python benchmarks/corpus.py`` (prints the counts).
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

PACKAGES = ("plasma-workspace-wallpapers", "tuxpaint-stamps-default", "stellarium-data")
PLASMA_PHOTOS = (
    "BytheWater",
    "ColdRipple",
    "DarkestHour",
    "EveningGlow",
    "FallenLeaf",
    "Grey",
    "Kite",
    "MilkyWay",
    "OneStandsOut",
    "Path",
    "summer_1am",
)
STAMP_CATEGORIES = (
    "animals",
    "plants",
    "vehicles",
    "town",
    "seasonal",
    "space",
    "military",
    "naturalforces",
    "people",
)
PANORAMAS = (
    "garching/garching-gl1.png",
    "garching/garching-gl2.png",
    "garching/garching-gl3.png",
    "garching/garching-gl4.png",
    "grossmugl/grossmugl_leeberg_crop11.25_2048.png",
)
NEBULAE = 50
VERSION = "1"  # bump when the recipe changes: the cache is rebuilt


def cache_dir() -> Path:
    return Path(os.environ.get("PROVENANCE_CORPUS", Path.home() / ".cache" / "provenance-corpus"))


@dataclass(frozen=True)
class Item:
    path: Path
    kind: str
    group: str
    source: str


@dataclass(frozen=True)
class Corpus:
    root: Path
    items: tuple[Item, ...]

    def paths(self, kind: str | None = None) -> list[Path]:
        return [i.path for i in self.items if kind is None or i.kind == kind]

    def of(self, kind: str) -> list[Item]:
        return [i for i in self.items if i.kind == kind]


def ensure(root: Path | None = None) -> Corpus:
    """The corpus, built on first use (guarded by a lock file against parallel builders)."""
    root = root or cache_dir()
    manifest = root / "manifest.csv"
    stamp = root / "VERSION"
    with _lock(root):
        if not (manifest.exists() and stamp.exists() and stamp.read_text() == VERSION):
            _build(root)
            stamp.write_text(VERSION)
    with manifest.open(newline="") as f:
        items = tuple(
            Item(root / r["path"], r["kind"], r["group"], r["source"]) for r in csv.DictReader(f)
        )
    return Corpus(root, items)


@contextmanager
def _lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    lock = root.with_name(root.name + ".lock")
    deadline = time.monotonic() + 1800
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            break
        except FileExistsError:
            if _stale(lock) or time.monotonic() > deadline:
                lock.unlink(missing_ok=True)
                continue
            time.sleep(2)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _stale(lock: Path) -> bool:
    try:
        pid = int(lock.read_text() or "0")
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, FileNotFoundError):
        return True
    except PermissionError:
        return False
    return False


def _fetch(root: Path) -> Path:
    """Download and unpack the three packages; return the unpacked tree."""
    debs = root / "debs"
    tree = root / "tree"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in PACKAGES if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        if shutil.which("apt-get") is None:
            raise SystemExit("the corpus needs Debian's apt-get (see ../shared/corpus/README.md)")
        cmd = ["apt-get", "download", *missing]
        if subprocess.run(cmd, cwd=debs, check=False, capture_output=True).returncode:
            subprocess.run(["apt-get", "update", "-qq"], check=True)
            subprocess.run(cmd, cwd=debs, check=True, capture_output=True)
    for deb in debs.glob("*.deb"):
        marker = tree / (deb.name + ".done")
        if not marker.exists():
            tree.mkdir(parents=True, exist_ok=True)
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
            marker.touch()
    return tree


def _build(root: Path) -> None:
    tree = _fetch(root)
    rows: list[dict[str, str]] = []
    for kind in ("photo", "packshot", "nebula", "landscape"):
        shutil.rmtree(root / kind, ignore_errors=True)
        (root / kind).mkdir(parents=True)
    # 1. Plasma photographs: the largest file of each folder (the others are the same image).
    walls = tree / "usr/share/wallpapers"
    for name in PLASMA_PHOTOS:
        images = [p for p in (walls / name / "contents/images").iterdir() if p.suffix != ".txt"]
        best = max(images, key=lambda p: _pixels(p.stem))
        out = root / "photo" / f"{name}{best.suffix}"
        shutil.copyfile(best, out)
        rows.append(_row(root, out, "photo", name, f"plasma-workspace-wallpapers:{name}"))
    # 2. Tux Paint stamps on white, as packshots.
    stamps = tree / "usr/share/tuxpaint/stamps"
    for category in STAMP_CATEGORIES:
        for png in sorted((stamps / category).rglob("*.png")):
            if "cartoon" in str(png.relative_to(stamps)):
                continue
            shot = _packshot(png)
            if shot is None:
                continue
            rel = png.relative_to(stamps).with_suffix("")
            out = root / "packshot" / ("-".join(rel.parts) + ".jpg")
            shot.save(out, "JPEG", quality=92)
            group = "/".join(rel.parts[:-1])
            rows.append(_row(root, out, "packshot", group, f"tuxpaint-stamps-default:{rel}"))
    # 3. Nebulae: a seeded pick of 50.
    nebulae = sorted((tree / "usr/share/stellarium/nebulae/default").glob("*.png"))
    for png in random.Random(1).sample(nebulae, NEBULAE):
        out = root / "nebula" / (png.stem + ".jpg")
        with Image.open(png) as im:
            _fit(im.convert("RGB"), 768).save(out, "JPEG", quality=92)
        rows.append(_row(root, out, "nebula", png.stem, f"stellarium-data:{png.name}"))
    # 4. Landscape windows: 4:3 crops of the panorama tiles, sky filled in.
    lands = tree / "usr/share/stellarium/landscapes"
    for rel in PANORAMAS:
        with Image.open(lands / rel) as im:
            tile = im.convert("RGBA")
        sky = Image.new("RGBA", tile.size, (152, 186, 222, 255))
        sky.alpha_composite(tile)
        w, h = tile.size
        win_h = h // 2
        win_w = win_h * 4 // 3
        group = Path(rel).stem
        for i, x in enumerate(range(0, w - win_w + 1, win_w)):
            crop = sky.crop((x, h - win_h, x + win_w, h)).convert("RGB")
            out = root / "landscape" / f"{group}-{i}.jpg"
            crop.save(out, "JPEG", quality=92)
            rows.append(_row(root, out, "landscape", group, f"stellarium-data:{rel}#{i}"))
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "kind", "group", "source"])
        writer.writeheader()
        writer.writerows(rows)


def _pixels(stem: str) -> int:
    try:
        w, h = (int(v) for v in stem.split("x"))
    except ValueError:
        return 0
    return w * h


def _packshot(png: Path) -> Image.Image | None:
    """A stamp on a white square canvas, or None when it is not a photographic cut-out."""
    with Image.open(png) as im:
        rgba = im.convert("RGBA")
    if max(rgba.size) < 120:
        return None
    pixels = np.asarray(rgba)
    opaque = pixels[..., 3] > 0
    colours = np.unique(pixels[..., :3][opaque].reshape(-1, 3), axis=0)
    if len(colours) < 2000:
        return None
    bbox = rgba.getbbox()
    if bbox is None:
        return None
    rgba = rgba.crop(bbox)
    s = min(480 / max(rgba.size), 3.0)
    size = (max(1, round(rgba.width * s)), max(1, round(rgba.height * s)))
    rgba = rgba.resize(size, Image.Resampling.LANCZOS)
    side = round(max(rgba.size) / 0.82)
    canvas = Image.new("RGBA", (side, side), "white")
    canvas.alpha_composite(rgba, ((side - rgba.width) // 2, (side - rgba.height) // 2))
    return _fit(canvas.convert("RGB"), 768)


def _fit(im: Image.Image, longest: int) -> Image.Image:
    if max(im.size) <= longest:
        return im
    s = longest / max(im.size)
    size = (max(1, round(im.width * s)), max(1, round(im.height * s)))
    return im.resize(size, Image.Resampling.LANCZOS)


def _row(root: Path, path: Path, kind: str, group: str, source: str) -> dict[str, str]:
    return {"path": str(path.relative_to(root)), "kind": kind, "group": group, "source": source}


def main() -> int:
    corpus = ensure()
    kinds: dict[str, int] = {}
    for item in corpus.items:
        kinds[item.kind] = kinds.get(item.kind, 0) + 1
    print(corpus.root, kinds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
