"""provenance._core.keypoints._extract._reduce: Pillow's reduce, the same bytes, less CPU."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from provenance._core import keypoints
from provenance._core.keypoints import _extract
from provenance._core.keypoints._libs import load_cv2
from tests.conftest import SAMPLE_MEDIA

ALPHA = ("packshot-site-dumper-alpha.png", "packshot-tractor-wheel-alpha.png")


def test_opencv_premultiplies_every_colour_and_alpha_as_pillow_does() -> None:
    colour, alpha = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    pixels = np.stack([colour, 255 - colour, colour // 2, alpha], axis=-1).astype(np.uint8)
    pillow = np.asarray(Image.fromarray(pixels, "RGBA").convert("RGBa"))
    opencv = load_cv2().cvtColor(pixels, load_cv2().COLOR_RGBA2mRGBA)
    assert np.array_equal(pillow, opencv)


@pytest.mark.parametrize("name", ALPHA)
@pytest.mark.parametrize("factor", [2, 3, 4, 5])
def test_an_alpha_image_is_reduced_to_pillows_bytes(name: str, factor: int) -> None:
    with Image.open(SAMPLE_MEDIA / name) as im:
        image = im.convert("RGBA")
    # Sizes that are not multiples of the factor: Pillow reduces the last partial boxes too.
    image = image.crop((0, 0, image.width - 1, image.height - 2))
    ours = _extract._reduce(image, factor)
    pillows = image.reduce(factor)
    assert ours.mode == pillows.mode == "RGBA"
    assert ours.size == pillows.size
    assert ours.tobytes() == pillows.tobytes()


def test_other_modes_are_pillows_reduce() -> None:
    with Image.open(SAMPLE_MEDIA / "fallen-maple-leaf.jpg") as im:
        image = im.convert("RGB")
    for mode in ("RGB", "L", "LA"):
        converted = image.convert(mode)
        assert _extract._reduce(converted, 3).tobytes() == converted.reduce(3).tobytes()


def test_an_alpha_original_keeps_its_keypoints(monkeypatch: pytest.MonkeyPatch) -> None:
    # Through reference_features: the same row as Pillow's own premultiplied reduction
    # stores.
    with Image.open(SAMPLE_MEDIA / ALPHA[0]) as im:
        image = im.convert("RGBA")
    # 1,440 px: reduced by 3 whole; 2,160 px: point-sampled 3 per side, then reduced by 3.
    originals = [image.resize((image.width * k, image.height * k)) for k in (2, 3)]
    reduced: list[int] = []
    ours = _extract._reduce

    def counted(image: Image.Image, factor: int) -> Image.Image:
        reduced.append(factor)
        return ours(image, factor)

    monkeypatch.setattr(_extract, "_reduce", counted)
    references = [keypoints.reference_features(original).to_bytes() for original in originals]
    assert len(reduced) == 2  # both went through the reduction
    monkeypatch.setattr(_extract, "_reduce", lambda image, factor: image.reduce(factor))
    pillows = [keypoints.reference_features(original).to_bytes() for original in originals]
    assert references == pillows
