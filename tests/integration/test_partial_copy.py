"""Partial copies (issue 21): a signed asset inside a screenshot, a banner, rotated, cropped.

Real files: samples are signed into an inventory, then pasted into page-like and
banner-like frames drawn here, rotated or cropped off-centre, saved without
metadata, and verified.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from provenance import SigningKey, Status, TrustPolicy, Verdict, verify
from provenance._core import keypoints
from provenance.inventory import Inventory
from provenance.verify import PARTIAL_MATCH
from tests._formats import flat
from tests.conftest import run_cli
from tests.integration.test_cli_json import check
from tests.integration.test_synthetic_duplicate import Media, sign_into

Box = tuple[int, int, int, int]


@pytest.fixture
def inventory(tmp_path: Path) -> Iterator[Inventory]:
    with Inventory(tmp_path / "inventory.sqlite") as inv:
        yield inv


def save_jpeg(image: Image.Image, path: Path, quality: int = 85) -> Path:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    path.write_bytes(buffer.getvalue())
    return path


def screenshot(image: Image.Image, *, share: float = 0.55) -> tuple[Image.Image, Box]:
    """A shop's product page: header bar, margins, the image at ``share`` of the width, a price."""
    width = 1280
    w = round(width * share)
    h = round(image.height * w / image.width)
    page = Image.new("RGB", (width, max(800, h + 200)), (250, 250, 250))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, width, 64), fill=(32, 40, 64))
    draw.text((24, 24), "shop.example   Home   New   Sale   Cart (2)", fill="white")
    left, top = 48, 104
    page.paste(image.resize((w, h), Image.Resampling.LANCZOS), (left, top))
    draw.text((left + w + 40, top + 16), "Handmade product, limited edition", fill="black")
    draw.text((left + w + 40, top + 56), "EUR 49.99", fill=(200, 0, 0))
    draw.rectangle((left + w + 40, top + 96, left + w + 240, top + 136), fill=(240, 120, 0))
    return page, (left, top, left + w, top + h)


def banner(image: Image.Image, beside: Image.Image) -> tuple[Image.Image, Box]:
    """A wide banner: the image on 55% of it, another picture and a slogan beside it."""
    width, height = 1600, 560
    out = Image.new("RGB", (width, height), (255, 244, 230))
    h = height - 40
    w = round(image.width * h / image.height)
    if w > round(width * 0.55):
        w = round(width * 0.55)
        h = round(image.height * w / image.width)
    out.paste(image.resize((w, h), Image.Resampling.LANCZOS), (20, 20))
    side = beside.copy()
    side.thumbnail((width - w - 80, height // 2))
    out.paste(side, (w + 60, 20))
    ImageDraw.Draw(out).text((w + 60, height - 80), "Summer sale: -30% on everything", fill="black")
    return out, (20, 20, 20 + w, 20 + h)


def keystone(image: Image.Image, amount: float) -> tuple[Image.Image, Callable[[Box], Box]]:
    """A view at an angle: the left side ``amount`` shorter, on a white canvas of the same size.

    Returns the view and a function giving where a box of ``image`` lands in it
    (the bounding box of its corners, mapped by the same perspective map).
    """
    w, h = image.size
    dy = h * amount / 2
    source = [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]
    target = [(0.0, dy), (float(w), 0.0), (float(w), float(h)), (0.0, h - dy)]

    def solve(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> np.ndarray:
        """The 3x3 perspective map taking the points ``a`` to ``b``."""
        rows, rhs = [], []
        for (x, y), (u, v) in zip(a, b, strict=True):
            rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
            rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
            rhs.extend((u, v))
        flat_map = np.linalg.solve(np.array(rows, float), np.array(rhs, float))
        return np.append(flat_map, 1.0).reshape(3, 3)

    # PIL's PERSPECTIVE takes the map from output pixels to input pixels.
    coeffs = solve(target, source).reshape(-1)[:8].tolist()
    view = image.convert("RGB").transform(
        (w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC, fillcolor="white"
    )
    forward = solve(source, target)

    def moved(box: Box) -> Box:
        left, top, right, bottom = box
        corners = np.array([[x, y, 1.0] for x in (left, right) for y in (top, bottom)]) @ forward.T
        xs, ys = corners[:, 0] / corners[:, 2], corners[:, 1] / corners[:, 2]
        return round(xs.min()), round(ys.min()), round(xs.max()), round(ys.max())

    return view, moved


def iou(a: Box, b: Box) -> float:
    inter_w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


def assert_found_at(verdict: Verdict, asset_id: str, box: Box) -> None:
    """``verdict`` names the signed asset as found, partially, at about ``box`` of the query."""
    assert verdict.status is Status.SYNTHETIC_DUPLICATE, [e.detail for e in verdict.evidence]
    assert verdict.asset_id == asset_id
    assert verdict.location is not None, [e.detail for e in verdict.evidence]
    assert iou(verdict.location.box, box) > 0.8, (verdict.location.box, box)


SIGNED = ("kite-blue-sky.jpg", "packshot-fire-truck-white.png")


@pytest.mark.parametrize("name", SIGNED)
@pytest.mark.parametrize("kind", ["screenshot", "banner", "rotate 3deg", "crop off-centre"])
def test_partial_copy_is_synthetic_duplicate_with_its_box(
    name: str,
    kind: str,
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    results = {
        n: sign_into(inventory, media(n), tmp_path / f"signed-{n}", signing_key) for n in SIGNED
    }
    image = flat(tmp_path / f"signed-{name}")
    if kind == "screenshot":
        query, expected = screenshot(image)
    elif kind == "banner":
        query, expected = banner(image, flat(media("forest-path.jpg")))
    elif kind == "rotate 3deg":
        query = image.rotate(3, Image.Resampling.BICUBIC, fillcolor="white")
        expected = (0, 0, *query.size)
    else:
        w, h = image.size
        query = image.crop((0, round(h * 0.1), round(w * 0.9), h))  # 10% off one side each way
        expected = (0, 0, *query.size)
    path = save_jpeg(query, tmp_path / "query.jpg")
    verdict = verify(path, trust=trust, inventory=inventory)
    assert verdict.status is Status.SYNTHETIC_DUPLICATE
    assert verdict.asset_id == results[name].asset_id
    assert verdict.record == results[name].record
    if verdict.location is None:
        # Easy enough for the perceptual hash (the fast path answered).
        assert kind in ("rotate 3deg", "crop off-centre")
        assert verdict.perceptual_distance is not None
        return
    assert PARTIAL_MATCH in verdict.failure_codes
    assert verdict.location.inliers >= keypoints.MIN_INLIERS
    assert verdict.location.scheme == keypoints.SCHEME
    assert iou(verdict.location.box, expected) > 0.8, (verdict.location.box, expected)
    assert verdict.to_dict()["location"]["box"] == list(verdict.location.box)


@pytest.mark.parametrize(
    "name", ["rowing-boats-sunset.jpg", "lake-at-dusk.webp", "fallen-maple-leaf.jpg"]
)
def test_a_photo_at_half_a_screenshot_is_located_from_its_stored_reference(
    name: str,
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    """References as signing stores them, from 1-4 MP photos of the samples."""
    result = sign_into(inventory, media(name), tmp_path / f"signed-{name}", signing_key)
    [(_entry, stored)] = inventory.keypoint_features([1])
    assert max(stored.width, stored.height) == keypoints.REFERENCE_SIDE
    assert 100 <= len(stored) <= keypoints.REFERENCE_FEATURES
    page, expected = screenshot(flat(media(name)), share=0.5)
    verdict = verify(save_jpeg(page, tmp_path / "page.jpg"), trust=trust, inventory=inventory)
    assert_found_at(verdict, result.asset_id, expected)
    assert verdict.location is not None
    assert verdict.location.inliers >= 2 * keypoints.MIN_INLIERS


def test_rotated_and_cropped_copies_are_found_by_the_partial_search_alone(
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    """With the perceptual rows gone, only the local features can find these copies."""
    result = sign_into(inventory, media("kite-blue-sky.jpg"), tmp_path / "s.jpg", signing_key)
    image = flat(tmp_path / "s.jpg")
    rotated = save_jpeg(image.rotate(3, Image.Resampling.BICUBIC), tmp_path / "r.jpg")
    w, h = image.size
    cropped = save_jpeg(image.crop((round(w * 0.1), 0, w, round(h * 0.9))), tmp_path / "c.jpg")
    with Inventory(inventory.path) as other:
        other._db.write(lambda conn: conn.execute("DELETE FROM perceptual_hashes"))
        for query in (rotated, cropped):
            verdict = verify(query, trust=trust, inventory=other)
            assert verdict.status is Status.SYNTHETIC_DUPLICATE
            assert verdict.asset_id == result.asset_id
            assert verdict.location is not None
            assert abs(verdict.location.rotation_degrees - (3.0 if query is rotated else 0.0)) < 1


@pytest.mark.parametrize("name", ["forest-path.jpg", "rowing-boats-sunset.jpg"])
@pytest.mark.parametrize("kind", ["stretched in a page", "keystoned in a page"])
def test_a_stretched_or_photographed_copy_is_located_by_a_perspective_map(
    name: str,
    kind: str,
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    """Copies no similarity maps: a page's box of another aspect, a phone's photo of a screen.

    Both were refused before 2026-12-07 (the similarity's inlier ratio and the
    layout of a region warped by the wrong map).
    """
    result = sign_into(inventory, media(name), tmp_path / f"signed-{name}", signing_key)
    image = flat(tmp_path / f"signed-{name}")
    if kind == "stretched in a page":
        wide = image.resize((round(image.width * 1.3), image.height), Image.Resampling.LANCZOS)
        query, expected = screenshot(wide, share=0.5)
    else:
        # As a phone sees a screen at an angle: keystoned 20%, darker, a little blurred.
        view, _ = keystone(image, 0.2)
        page, expected = screenshot(view, share=0.5)
        query = ImageEnhance.Brightness(page).enhance(0.85).filter(ImageFilter.GaussianBlur(1))
    verdict = verify(save_jpeg(query, tmp_path / "q.jpg"), trust=trust, inventory=inventory)
    assert_found_at(verdict, result.asset_id, expected)
    location = verdict.location
    assert location is not None and location.homography is not None
    row = verdict.to_dict()["location"]
    assert len(row["homography"]) == 9 and row["homography"][8] == 1.0
    assert "perspective map" in " ".join(e.detail for e in verdict.evidence)


def test_a_copy_under_a_sale_sticker_is_found_and_says_how_much_is_covered(
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    # A shop page whose product picture carries a red "-30%" badge over its middle.
    name = "forest-path.jpg"
    result = sign_into(inventory, media(name), tmp_path / f"signed-{name}", signing_key)
    image = flat(tmp_path / f"signed-{name}")
    w, h = image.size
    r = round(min(w, h) * 0.16)
    draw = ImageDraw.Draw(image)
    draw.ellipse((w // 2 - r, h // 2 - r, w // 2 + r, h // 2 + r), fill=(230, 30, 40))
    draw.text((w // 2 - r // 2, h // 2 - 6), "-30%", fill="white")
    page, expected = screenshot(image, share=0.5)
    verdict = verify(save_jpeg(page, tmp_path / "q.jpg"), trust=trust, inventory=inventory)
    assert_found_at(verdict, result.asset_id, expected)
    assert verdict.location is not None and verdict.location.hidden > 0
    assert verdict.to_dict()["location"]["hidden"] == round(verdict.location.hidden, 3)
    assert "covered" in " ".join(e.detail for e in verdict.evidence)


def test_unrelated_photo_and_look_alike_in_a_screenshot_are_not_duplicates(
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    for n in SIGNED:
        sign_into(inventory, media(n), tmp_path / f"signed-{n}", signing_key)
    # An unrelated real photo, shown on a shop page.
    unrelated, _ = screenshot(flat(media("forest-path.jpg")))
    verdict = verify(save_jpeg(unrelated, tmp_path / "u.jpg"), trust=trust, inventory=inventory)
    assert verdict.status is Status.NO_PROVENANCE
    assert verdict.asset_id is None and verdict.location is None
    # The same product in another colour (channels swapped): same keypoints, not ours.
    red, green, blue = flat(tmp_path / "signed-packshot-fire-truck-white.png").split()
    blue_truck, _ = screenshot(Image.merge("RGB", (blue, green, red)))
    verdict = verify(save_jpeg(blue_truck, tmp_path / "b.jpg"), trust=trust, inventory=inventory)
    assert verdict.status is Status.NO_PROVENANCE
    assert verdict.asset_id is None and verdict.location is None
    unconfirmed = [e for e in verdict.evidence if "colour differs" in e.detail]
    assert unconfirmed, [e.detail for e in verdict.evidence]


def filtered(image: Image.Image) -> Image.Image:
    """A social-media filter: saturation x1.6, then contrast x1.3."""
    return ImageEnhance.Contrast(ImageEnhance.Color(image.convert("RGB")).enhance(1.6)).enhance(1.3)


def hue_turned(image: Image.Image, degrees: int) -> Image.Image:
    """Every hue turned by ``degrees``: the same product in another colour."""
    hsv = np.array(image.convert("RGB").convert("HSV"))
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + round(degrees * 256 / 360)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


@pytest.mark.parametrize("name", ["lake-at-dusk.webp", "rowing-boats-sunset.jpg"])
def test_a_filtered_copy_in_a_screenshot_is_synthetic_duplicate(
    name: str,
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    # The filter doubles the chroma (plain difference 0.12-0.20 > 0.10: refused
    # before 2026-12-07) and keeps every hue.
    result = sign_into(inventory, media(name), tmp_path / f"signed-{name}", signing_key)
    page, expected = screenshot(filtered(flat(tmp_path / f"signed-{name}")))
    verdict = verify(save_jpeg(page, tmp_path / "page.jpg"), trust=trust, inventory=inventory)
    assert_found_at(verdict, result.asset_id, expected)
    assert PARTIAL_MATCH in verdict.failure_codes


def test_a_hue_turned_copy_in_a_screenshot_is_not_a_duplicate(
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    # A muted photo: hues turned 45 degrees move each cell's chroma by less than
    # 0.10 (confirmed before 2026-12-07); the hue agreement refuses it.
    sign_into(inventory, media("forest-path.jpg"), tmp_path / "s.jpg", signing_key)
    page, _ = screenshot(hue_turned(flat(tmp_path / "s.jpg"), 45))
    verdict = verify(save_jpeg(page, tmp_path / "page.jpg"), trust=trust, inventory=inventory)
    assert verdict.status is Status.NO_PROVENANCE
    assert verdict.asset_id is None and verdict.location is None
    refused = [e.detail for e in verdict.evidence if "colour differs in hue" in e.detail]
    assert refused, [e.detail for e in verdict.evidence]


def test_partial_search_can_be_turned_off(
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    sign_into(inventory, media("kite-blue-sky.jpg"), tmp_path / "s.jpg", signing_key)
    page, _ = screenshot(flat(tmp_path / "s.jpg"))
    path = save_jpeg(page, tmp_path / "page.jpg")
    assert verify(path, trust=trust, inventory=inventory).status is Status.SYNTHETIC_DUPLICATE
    off = verify(path, trust=trust, inventory=inventory, partial=False)
    assert off.status is Status.NO_PROVENANCE and off.location is None


def test_keypoints_are_stored_at_signing(
    media: Media, signing_key: SigningKey, inventory: Inventory, tmp_path: Path
) -> None:
    result = sign_into(inventory, media("forest-path.jpg"), tmp_path / "s.jpg", signing_key)
    index = inventory.keypoint_index(keypoints.SCHEME)
    assert len(index) == 1
    [(entry, features)] = inventory.keypoint_features([1])
    assert entry.asset_id == result.asset_id
    assert 100 <= len(features) <= keypoints.REFERENCE_FEATURES
    assert max(features.width, features.height) == keypoints.REFERENCE_SIDE
    # Stored once: signing again adds nothing.
    sign_into(inventory, media("forest-path.jpg"), tmp_path / "s2.jpg", signing_key)
    indexed = min(len(features), keypoints.INDEXED_FEATURES)
    assert inventory.keypoint_index(keypoints.SCHEME).descriptors == indexed


def test_cli_verify_reports_the_box_and_no_partial_turns_it_off(
    media: Media,
    signing_key: SigningKey,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    result = sign_into(inventory, media("kite-blue-sky.jpg"), tmp_path / "s.jpg", signing_key)
    page, expected = screenshot(flat(tmp_path / "s.jpg"))
    path = save_jpeg(page, tmp_path / "page.jpg")
    base = ("verify", path, "--json", "--inventory", inventory.path)
    done = run_cli(*base)
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    assert row["verdict"] == "synthetic_duplicate" and row["asset_id"] == result.asset_id
    assert iou(tuple(row["location"]["box"]), expected) > 0.8
    assert row["location"]["mirrored"] is False
    check("verify", [row])  # docs/json/verify.schema.json describes the location
    off = run_cli(*base, "--no-partial")
    [row] = json.loads(off.stdout)
    assert row["verdict"] == "no_provenance" and "location" not in row


# The mirror is searched only when the time left covers what the first pass took; a
# process's first query pays OpenCV's import and the index build inside the default
# 0.15 s, and a loaded test machine more: these tests give the step time enough.
AMPLE_BUDGET_S = 5.0


def mirrored_crop(image: Image.Image) -> Image.Image:
    """The image mirrored left-right, then 15% of its width cut off the left."""
    flipped = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return flipped.crop((round(image.width * 0.15), 0, image.width, image.height))


@pytest.mark.parametrize("name", ["kite-blue-sky.jpg", "packshot-daffodil-white.jpg"])
@pytest.mark.parametrize("kind", ["cropped", "screenshot"])
def test_a_mirrored_cropped_copy_is_synthetic_duplicate_with_mirrored_true(
    name: str,
    kind: str,
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    # Neither step found these before 2026-12-07 (ORB is not mirror-invariant, and the
    # perceptual hash's mirror rows do not survive the crop): the query's mirror is searched.
    result = sign_into(inventory, media(name), tmp_path / f"signed-{name}", signing_key)
    image = flat(tmp_path / f"signed-{name}")
    copy = mirrored_crop(image)
    if kind == "screenshot":
        query, shown = screenshot(copy)
    else:
        query, shown = copy, (0, 0, *copy.size)
    path = save_jpeg(query, tmp_path / "query.jpg")
    verdict = verify(path, trust=trust, inventory=inventory, partial_budget_s=AMPLE_BUDGET_S)
    assert verdict.status is Status.SYNTHETIC_DUPLICATE, [e.detail for e in verdict.evidence]
    assert verdict.asset_id == result.asset_id
    assert PARTIAL_MATCH in verdict.failure_codes
    location = verdict.location
    assert location is not None and location.mirrored
    assert abs(location.rotation_degrees) < 1
    # The box covers where the picture is in the query, and the asset's 15% cut off
    # its (mirrored) left side beyond it: past the copy's left edge, not its right.
    left, top, right, bottom = location.box
    cut = (shown[2] - shown[0]) * 0.15 / 0.85
    assert abs(top - shown[1]) <= 4 and abs(bottom - shown[3]) <= 4, (location.box, shown)
    assert abs(right - shown[2]) <= 4, (location.box, shown)
    assert abs(left - max(0.0, shown[0] - cut)) <= 6, (location.box, shown)
    # The flip is in the transform: x grows leftwards in the query as in the asset mirrored.
    assert location.transform[0] < 0 < location.transform[4]
    assert verdict.to_dict()["location"]["mirrored"] is True
    assert any("mirrored" in e.detail for e in verdict.evidence if PARTIAL_MATCH in e.codes)


def test_an_unrelated_mirrored_photo_is_not_a_duplicate_and_a_plain_copy_is_not_mirrored(
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    searched: list[bool] = []  # one entry per search of step 8: mirrored or not
    features = keypoints.query_features

    def recording(image: Image.Image, *, mirrored: bool = False) -> keypoints.LocalFeatures:
        searched.append(mirrored)
        return features(image, mirrored=mirrored)

    monkeypatch.setattr(keypoints, "query_features", recording)
    for n in SIGNED:
        sign_into(inventory, media(n), tmp_path / f"signed-{n}", signing_key)
    page, _ = screenshot(mirrored_crop(flat(media("forest-path.jpg"))))
    path = save_jpeg(page, tmp_path / "u.jpg")
    verdict = verify(path, trust=trust, inventory=inventory, partial_budget_s=AMPLE_BUDGET_S)
    assert verdict.status is Status.NO_PROVENANCE
    assert verdict.asset_id is None and verdict.location is None
    assert searched == [False, True]  # nothing confirmed: the mirror was searched too
    # A copy the first pass confirms is reported unmirrored, the mirror not searched.
    searched.clear()
    page, _ = screenshot(flat(tmp_path / "signed-kite-blue-sky.jpg"))
    path = save_jpeg(page, tmp_path / "k.jpg")
    verdict = verify(path, trust=trust, inventory=inventory, partial_budget_s=AMPLE_BUDGET_S)
    assert verdict.location is not None and not verdict.location.mirrored
    assert verdict.to_dict()["location"]["mirrored"] is False
    assert searched == [False]


def test_the_mirrored_pass_counts_toward_the_partial_budget(
    media: Media,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
    tmp_path: Path,
) -> None:
    sign_into(inventory, media("kite-blue-sky.jpg"), tmp_path / "s.jpg", signing_key)
    page, _ = screenshot(mirrored_crop(flat(tmp_path / "s.jpg")))
    path = save_jpeg(page, tmp_path / "page.jpg")
    found = verify(path, trust=trust, inventory=inventory, partial_budget_s=AMPLE_BUDGET_S)
    assert found.location is not None and found.location.mirrored
    # No time left after the first pass: the mirror is not searched.
    spent = verify(path, trust=trust, inventory=inventory, partial_budget_s=0.0)
    assert spent.status is Status.NO_PROVENANCE and spent.location is None
    assert not any("mirrored" in e.detail for e in spent.evidence)
