"""provenance._core.keypoints._threshold: an original's FAST threshold, chosen before ORB."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from provenance._core import keypoints
from provenance._core.keypoints import _extract, _threshold
from provenance._core.keypoints._libs import load_cv2
from tests.conftest import SAMPLE_MEDIA

PICTURES = sorted(p.name for p in SAMPLE_MEDIA.iterdir() if p.suffix in {".jpg", ".png", ".webp"})


def _variants(name: str) -> Iterator[tuple[str, Image.Image]]:
    """A sample picture decoded at 1280 px, then darker, flatter, blurred (fewer corners)."""
    with Image.open(SAMPLE_MEDIA / name) as im:
        rgb = im.convert("RGB")
    photo = rgb.resize((1280, round(1280 * rgb.height / rgb.width)), Image.Resampling.LANCZOS)
    yield name, photo
    for factor in (0.15, 0.3, 0.5):
        yield f"{name} brightness {factor}", ImageEnhance.Brightness(photo).enhance(factor)
        yield f"{name} contrast {factor}", ImageEnhance.Contrast(photo).enhance(factor)
    yield f"{name} blurred", photo.filter(ImageFilter.GaussianBlur(3))


def _grey(image: Image.Image) -> Any:
    grey, _, _ = _extract._working(image, keypoints.REFERENCE_SIDE, sampled_from=4)
    return grey


def _reference_without_prediction(image: Image.Image) -> keypoints.LocalFeatures:
    """What references stored before the threshold was chosen ahead: 30, and 12 if short."""
    return keypoints.extract(
        image,
        side=keypoints.REFERENCE_SIDE,
        features=keypoints.REFERENCE_FEATURES,
        levels=keypoints.REFERENCE_LEVELS,
        sampled=True,
        threshold=keypoints.REFERENCE_THRESHOLD,
        retry=keypoints.REFERENCE_RETRY,
        predict=False,
    )


def test_level_quotas_are_orbs() -> None:
    # OpenCV's nfeaturesPerLevel for 256 keypoints over 8 levels 1.2 apart.
    quotas = _threshold.level_quotas(256, 8, 1.2)
    assert quotas == [56, 46, 39, 32, 27, 22, 19, 15]


def test_fast_on_orbs_pyramid_counts_the_keypoints_orb_keeps() -> None:
    # The prediction rests on this: per level min(FAST corners, quota), summed, is the
    # number of keypoints ORB keeps, on real pictures from contrasty to nearly black.
    cv2 = load_cv2()
    counts = []
    for label, image in (v for name in PICTURES for v in _variants(name)):
        grey = _grey(image)
        for threshold in (keypoints.REFERENCE_THRESHOLD, 20):
            orb = cv2.ORB_create(
                nfeatures=keypoints.REFERENCE_FEATURES,
                scaleFactor=1.2,
                nlevels=keypoints.REFERENCE_LEVELS,
                edgeThreshold=_threshold.EDGE,
                patchSize=31,
                fastThreshold=threshold,
            )
            levels = _threshold.level_counts(
                grey,
                threshold=threshold,
                features=keypoints.REFERENCE_FEATURES,
                levels=keypoints.REFERENCE_LEVELS,
                step=1.2,
            )
            predicted = sum(found for found, _ in levels)
            assert predicted == len(orb.detect(grey, None)), (label, threshold)
            counts.append(predicted)
    assert min(counts) < 192 <= max(counts)  # both sides of the retry are exercised


def test_the_threshold_chosen_is_the_one_the_two_detections_end_at() -> None:
    # Three ways to decide (plenty of corners at half size, few, or counted on ORB's
    # pyramid), each exercised: the lower threshold only for a picture ORB at 30 would
    # find short, and few of those left to the detection at 30 and again at 12.
    cv2 = load_cv2()
    orb = cv2.ORB_create(
        nfeatures=keypoints.REFERENCE_FEATURES,
        scaleFactor=1.2,
        nlevels=keypoints.REFERENCE_LEVELS,
        edgeThreshold=_threshold.EDGE,
        patchSize=31,
        fastThreshold=keypoints.REFERENCE_THRESHOLD,
    )
    fast = cv2.FastFeatureDetector_create(keypoints.REFERENCE_THRESHOLD, True)
    ways = set()
    missed: list[str] = []
    for label, image in (v for name in PICTURES for v in _variants(name)):
        grey = _grey(image)
        half = cv2.resize(
            grey, (grey.shape[1] // 2, grey.shape[0] // 2), interpolation=cv2.INTER_AREA
        )
        rough = _threshold._corners(fast, half, _threshold.PLENTY)
        ways.add(
            "plenty"
            if rough >= _threshold.PLENTY
            else "few"
            if rough < _threshold.FEW
            else "counted"
        )
        short = len(orb.detect(grey, None)) < keypoints.REFERENCE_RETRY[1]
        chosen = _threshold.first_threshold(
            grey,
            threshold=keypoints.REFERENCE_THRESHOLD,
            retry=keypoints.REFERENCE_RETRY,
            features=keypoints.REFERENCE_FEATURES,
            levels=keypoints.REFERENCE_LEVELS,
            step=1.2,
        )
        if chosen == keypoints.REFERENCE_RETRY[0]:
            assert short, label  # never the lower threshold for a picture ORB finds enough in
        elif short:
            missed.append(label)  # detected at 30, then again at 12: the same rows, more work
    assert ways == {"plenty", "few", "counted"}
    assert len(missed) <= 2, missed


@pytest.mark.parametrize("name", PICTURES)
def test_references_are_those_of_the_two_detections(name: str) -> None:
    # Bit-identical to what a reference stored before (detected at 30, again at 12 when
    # short), whichever threshold was chosen ahead.
    for label, image in _variants(name):
        now = keypoints.reference_features(image).to_bytes()
        assert now == _reference_without_prediction(image).to_bytes(), label


def test_a_dark_picture_is_detected_once_at_the_lower_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    thresholds: list[int] = []
    real = _extract._orb

    def counted(grey: Any, features: int, levels: int, threshold: int, **kw: Any) -> Any:
        thresholds.append(threshold)
        return real(grey, features, levels, threshold, **kw)

    monkeypatch.setattr(_extract, "_orb", counted)
    with Image.open(SAMPLE_MEDIA / "lake-at-dusk.webp") as im:
        dark = ImageEnhance.Brightness(im.convert("RGB")).enhance(0.3)
    with Image.open(SAMPLE_MEDIA / "fallen-maple-leaf.jpg") as im:
        busy = im.convert("RGB")
    dark_reference = keypoints.reference_features(dark)
    assert thresholds == [keypoints.REFERENCE_RETRY[0]]  # one detection, at 12
    thresholds.clear()
    assert dark_reference.to_bytes() == _reference_without_prediction(dark).to_bytes()
    assert thresholds == [keypoints.REFERENCE_THRESHOLD, keypoints.REFERENCE_RETRY[0]]
    thresholds.clear()
    keypoints.reference_features(busy)
    assert thresholds == [keypoints.REFERENCE_THRESHOLD]  # contrasty: once, at 30
    # A query is never predicted nor detected again: one detection at its threshold.
    thresholds.clear()
    keypoints.query_features(dark)
    assert thresholds == [keypoints.QUERY_THRESHOLD]


def test_a_picture_too_small_for_any_corner_goes_straight_to_the_lower_threshold() -> None:
    grey = np.full((20, 24), 128, np.uint8)
    chosen = _threshold.first_threshold(
        grey, threshold=30, retry=(12, 192), features=256, levels=8, step=1.2
    )
    assert chosen == 12
    reference = keypoints.reference_features(Image.new("RGB", (24, 20), "grey"))
    assert len(reference) == 0
