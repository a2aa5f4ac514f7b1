"""The default scheme's stored values stay bit-identical (issue 20: cheaper, not different).

Inventories hold reference rows and descriptors computed by earlier releases, and
``benchmarks/robustness.py``'s recall and false-match figures were measured on them:
a faster :func:`~provenance._core.phash.reference_hashes` (or query) must give the
same bits. ``tests/data/golden/phash_values.json`` pins, for real images in every
mode Pillow decodes to (sample media, and a sample of the benchmark corpus when it
is built), the digests of every reference row, descriptor and query feature as the
code before issue 20's phash work computed them (main at d12300d).

Regenerate (only on purpose, e.g. a new Pillow; say why in the commit)::

    PYTHONPATH=src:. python -m tests.unit.test_phash_golden
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import PIL
import pytest
from PIL import Image, ImageOps

from provenance._core import phash
from tests.conftest import SAMPLE_MEDIA

GOLDEN_FILE = Path(__file__).parents[1] / "data" / "golden" / "phash_values.json"
CORPUS = Path(os.environ.get("PROVENANCE_CORPUS", Path.home() / ".cache" / "provenance-corpus"))
# Every 7th corpus image (of about 300): photos, packshots, nebulae, landscapes.
CORPUS_STEP = 7


def _sixteen(image: Image.Image) -> Image.Image:
    grey = np.asarray(image.convert("L"), dtype=np.uint16)
    return Image.fromarray((grey * 257).astype("<u2"))


def _transparent_palette(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    alpha = Image.linear_gradient("L").resize(rgba.size)
    rgba.putalpha(alpha)
    return rgba.convert("P")  # Pillow keeps the alpha as the palette's transparency


def _alpha(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    rgba.putalpha(Image.radial_gradient("L").resize(rgba.size))
    return rgba


# Mode conversions of a decoded RGB image: every branch of the grid's decoding.
MODES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "L": lambda im: im.convert("L"),
    "LA": lambda im: _alpha(im).convert("LA"),
    "RGBA": _alpha,
    "RGBa": lambda im: _alpha(im).convert("RGBa"),
    "P": lambda im: im.convert("P", palette=Image.Palette.ADAPTIVE, colors=256),
    "P-transparency": _transparent_palette,
    "PA": lambda im: _alpha(im).convert("PA"),
    "I;16": _sixteen,
    "I": lambda im: im.convert("L").convert("I"),
    "F": lambda im: im.convert("L").convert("F"),
    "CMYK": lambda im: im.convert("CMYK"),
    "YCbCr": lambda im: im.convert("YCbCr"),
    "1": lambda im: im.convert("1"),
}


def _decoded(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.copy()


def _padded(image: Image.Image, fill: str, border: tuple[int, int, int, int]) -> Image.Image:
    return ImageOps.expand(image.convert("RGB"), border=border, fill=fill)


def sample_cases() -> Iterator[tuple[str, Image.Image]]:
    """Sample media as decoded, at sizes around the grid, in every mode, padded and framed."""
    names = sorted(p.name for p in SAMPLE_MEDIA.iterdir() if p.suffix in (".jpg", ".png", ".webp"))
    for name in names:
        yield name, _decoded(SAMPLE_MEDIA / name)
    forest = _decoded(SAMPLE_MEDIA / "forest-path.jpg").convert("RGB")
    kite = _decoded(SAMPLE_MEDIA / "kite-blue-sky.jpg").convert("RGB")
    sizes = {"1280x800": (1280, 800), "600x400": (600, 400), "300x517": (300, 517)}
    for label, size in sizes.items():
        yield f"forest-path {label}", forest.resize(size, Image.Resampling.LANCZOS)
    for label, size in {"90x60": (90, 60), "130x128": (130, 128), "1x1": (1, 1)}.items():
        yield f"kite {label}", kite.resize(size, Image.Resampling.LANCZOS)
    for mode, convert in MODES.items():
        for label, size in {"700x480": (700, 480), "150x200": (150, 200)}.items():
            yield f"kite {label} {mode}", convert(kite.resize(size, Image.Resampling.LANCZOS))
    small = forest.resize((500, 330), Image.Resampling.LANCZOS)
    yield "forest white padding", _padded(small, "white", (40, 0, 40, 0))
    yield "forest uneven white padding", _padded(small, "white", (10, 63, 31, 5))
    yield "forest black frame", _padded(small, "black", (25, 25, 25, 25))
    yield "forest white frame, alpha", _alpha(_padded(small, "white", (30, 30, 30, 30)))
    yield "flat white", Image.new("RGB", (640, 480), "white")
    yield "flat grey 16-bit", Image.new("I;16", (300, 200), 30000)


def corpus_cases() -> Iterator[tuple[str, Image.Image]]:
    """Every :data:`CORPUS_STEP`-th corpus image as decoded, and in one mode of :data:`MODES`."""
    manifest = CORPUS / "manifest.csv"
    lines = manifest.read_text(encoding="utf-8").splitlines()[1:]
    modes = list(MODES)
    for k, line in enumerate(lines[::CORPUS_STEP]):
        relative = line.split(",")[0]
        image = _decoded(CORPUS / relative)
        yield relative, image
        mode = modes[k % len(modes)]
        yield f"{relative} {mode}", MODES[mode](image.convert("RGB"))


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:32]


def values(image: Image.Image) -> dict[str, object]:
    """What is pinned for one image: reference rows and descriptor, query features."""
    reference = phash.reference_hashes(image)
    query = phash.query_features([image])[0]
    return {
        "rows": len(reference.variants),
        "variants": hashlib.sha256(",".join(reference.variants).encode()).hexdigest()[:16],
        "first_row": "".join(f"{int(w):016x}" for w in reference.words[0]),
        "words": _digest(reference.words.astype(">u8")),
        "descriptor": hashlib.sha256(reference.descriptor).hexdigest()[:32],
        "query_variants": ",".join(query.variants),
        "query_words": _digest(query.words.astype(">u8")),
        "query_mid": _digest(query.mid.astype(">u8")),
        "query_colour": [float(c) for c in query.colour],
        "query_layout": _digest(query.layout.astype(">f4")),
    }


def _golden() -> dict[str, object]:
    return dict(json.loads(GOLDEN_FILE.read_text(encoding="utf-8")))


def _check(cases: Iterator[tuple[str, Image.Image]], want: dict[str, dict[str, object]]) -> None:
    golden = _golden()
    # As test_golden: a failure names both Pillows (a new one may move values: regenerate
    # on purpose, saying why), it is never skipped.
    where = f"pinned with Pillow {golden['pillow']}, running Pillow {PIL.__version__}"
    checked = 0
    for name, image in cases:
        assert name in want, f"{name}: no pinned value (regenerate on purpose)"
        assert values(image) == want[name], f"{name}: {where}"
        checked += 1
    assert checked == len(want)


def test_sample_media_in_every_mode_hash_as_pinned() -> None:
    _check(sample_cases(), _golden()["sample"])  # type: ignore[arg-type]


@pytest.mark.skipif(not (CORPUS / "manifest.csv").is_file(), reason="corpus not built")
def test_corpus_sample_hashes_as_pinned() -> None:
    _check(corpus_cases(), _golden()["corpus"])  # type: ignore[arg-type]


def main() -> None:
    """Write the pinned values with the code on ``PYTHONPATH`` (on purpose only)."""
    data = {
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "sample": {name: values(image) for name, image in sample_cases()},
        "corpus": {name: values(image) for name, image in corpus_cases()},
    }
    lines = [f"{json.dumps(k)}: {json.dumps(data[k], sort_keys=True)}" for k in ("pillow", "numpy")]
    for part in ("sample", "corpus"):
        cases = data[part].items()
        rows = [f"  {json.dumps(n)}: {json.dumps(v, sort_keys=True)}" for n, v in cases]
        lines.append(f"{json.dumps(part)}: {{\n" + ",\n".join(rows) + "\n}")
    GOLDEN_FILE.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    print(f"{GOLDEN_FILE}: {len(data['sample'])} sample and {len(data['corpus'])} corpus images")


if __name__ == "__main__":
    main()
