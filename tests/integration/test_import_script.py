"""The import path: the script in docs/performance.md, run as written, and the one-call API."""

from __future__ import annotations

import io
import re
import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageOps

import provenance
from provenance import CorruptFile, RenditionMark, Status
from provenance._core import keypoints, phash
from provenance._core.hashing import sha256_hex
from provenance._io.keys import SigningKey, TrustPolicy
from provenance.inventory import Inventory
from tests.conftest import ROOT, sample_record
from tests.integration.test_partial_copy import iou, save_jpeg, screenshot

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=timezone.utc)
DOC = ROOT / "docs" / "performance.md"


def _script() -> dict[str, Any]:
    """Execute the code block that follows ``<!-- import-script -->`` in the docs."""
    text = DOC.read_text("utf-8")
    found = re.search(r"<!-- import-script -->\n```python\n(.*?)```", text, re.DOTALL)
    assert found is not None, "docs/performance.md lost its import script"
    namespace: dict[str, Any] = {"__name__": "import_script"}
    exec(compile(found.group(1), str(DOC), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


def _audit_count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0])


@pytest.mark.parametrize("name", ["kite-blue-sky.jpg", "packshot-site-dumper-alpha.png"])
def test_the_documented_script_signs_records_and_writes_everything(
    media: Callable[[str], Path],
    signing_key: SigningKey,
    trust: TrustPolicy,
    tmp_path: Path,
    name: str,
) -> None:
    script = _script()
    data = media(name).read_bytes()
    out = tmp_path / "media"
    db = tmp_path / "inventory.sqlite"
    with Inventory(db) as inventory:
        signed = script["import_product_image"](
            data,
            "sku-123",
            record=sample_record(name),
            key=signing_key,
            inventory=inventory,
            media=out,
        )
        original = signed.original
        assert isinstance(signed, provenance.SignedImport)
        assert original.path == str(out / "sku-123.jpg") and original.changed
        assert len(signed.renditions) == len(script["LUMA"])
        # Every file is on disk, byte for byte what was recorded, at the recorded path.
        for file in signed.files:
            on_disk = Path(file.path).read_bytes()
            assert sha256_hex(on_disk) == file.result.sha256_hex
            assert file.result.path == file.path
            entry = inventory.find_by_sha256(file.result.sha256_hex)
            assert entry is not None and [f.path for f in entry.files] == [file.path]
        # The original verifies from the file alone; each rendition through the inventory.
        assert provenance.verify(original.path, trust=trust).status is Status.TRUSTED
        for file in signed.renditions:
            assert not file.changed
            verdict = provenance.verify(file.path, trust=trust, inventory=inventory)
            assert verdict.status is Status.KNOWN_STRIPPED
            assert verdict.record is not None
            assert verdict.record.parents[0].asset_id == original.result.asset_id
        children = {a.asset_id for a in inventory.descendants(original.result.asset_id)}
        assert children == {f.result.asset_id for f in signed.renditions}
        # The perceptual hashes came from the pipeline's decoded image: a resized,
        # re-encoded copy nobody recorded is recognised.
        assert len(inventory.perceptual_index(phash.SCHEME)) > 0
        with Image.open(io.BytesIO(data)) as im:
            rgba = im.convert("RGBA")  # a cut-out lands on white, as a storefront shows it
        copy = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
        copy = copy.resize((copy.width // 3, copy.height // 3))
        stray = tmp_path / "stray.jpg"
        copy.save(stray, "JPEG", quality=70)
        verdict = provenance.verify(stray, trust=trust, inventory=inventory)
        assert verdict.status is Status.SYNTHETIC_DUPLICATE
        assert verdict.asset_id == original.result.asset_id
        # durable=False was for that call only: the inventory still fsyncs (FULL = 2).
        assert inventory._db.connection.execute("PRAGMA synchronous").fetchone()[0] == 2
    # One audit entry per recorded file; nothing else.
    assert _audit_count(db) == 1 + len(script["LUMA"])


def test_one_bad_rendition_records_nothing_and_names_the_file(
    media: Callable[[str], Path], signing_key: SigningKey, tmp_path: Path
) -> None:
    data = media("forest-path.jpg").read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        decoded = im.copy()
    small = io.BytesIO()
    decoded.resize((100, 62)).save(small, "JPEG", quality=80)
    bad = tmp_path / "cache" / "broken.jpg"
    db = tmp_path / "inventory.sqlite"
    with Inventory(db) as inventory:
        with pytest.raises(CorruptFile) as caught:
            provenance.sign_import(
                data,
                tmp_path / "original.jpg",
                record=sample_record("forest-path.jpg"),
                key=signing_key,
                inventory=inventory,
                image=decoded,
                renditions=[(small.getvalue(), tmp_path / "ok.jpg"), (b"\xff\xd8 junk", bad)],
            )
        assert str(caught.value).startswith(str(bad))
        assert inventory.stats().assets == 0
    assert _audit_count(db) == 0


def test_xmp_marked_renditions_are_returned_changed_and_verify_alone(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    data = media("fallen-maple-leaf.jpg").read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        small = io.BytesIO()
        im.resize((300, 188)).save(small, "JPEG", quality=80)
    with Inventory(tmp_path / "inventory.sqlite", durable=False) as inventory:
        signed = provenance.sign_import(
            data,
            tmp_path / "o.jpg",
            record=sample_record("fallen-maple-leaf.jpg"),
            key=signing_key,
            inventory=inventory,
            renditions=[(small.getvalue(), tmp_path / "r.jpg")],
            mark=RenditionMark.XMP,
            now=NOW,
            durable=True,
        )
        (rendition,) = signed.renditions
        assert rendition.changed and rendition.data != small.getvalue()
        assert rendition.result.path == str(tmp_path / "r.jpg")
        verdict = provenance.verify_bytes(rendition.data, trust=trust)
        assert verdict.status is Status.TRUSTED
        assert verdict.record is not None
        assert verdict.record.parents[0].asset_id == signed.original.result.asset_id
        # durable=True for this call on a durable=False inventory, then back (NORMAL = 1).
        assert inventory._db.connection.execute("PRAGMA synchronous").fetchone()[0] == 1
        entry = inventory.get(signed.original.result.asset_id)
        assert entry is not None and entry.first_signed_at == "2025-05-01T12:00:00Z"


def test_the_finer_grained_calls_record_paths_time_and_pixels(
    media: Callable[[str], Path], signing_key: SigningKey, tmp_path: Path
) -> None:
    data = media("kite-blue-sky.jpg").read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        decoded = im.copy()
    with Inventory(tmp_path / "inventory.sqlite") as inventory:
        # sign_bytes with an inventory stores the file at its path and the pixels' hashes.
        _, original = provenance.sign_bytes(
            data,
            record=sample_record("kite-blue-sky.jpg"),
            key=signing_key,
            image=decoded,
            inventory=inventory,
            path=tmp_path / "catalog" / "kite.jpg",
        )
        assert original.path == str(tmp_path / "catalog" / "kite.jpg")
        entry = inventory.get(original.asset_id)
        assert entry is not None and entry.files[0].path == original.path
        assert len(inventory.perceptual_index(phash.SCHEME)) > 0
        # sign_rendition takes the path; record_many and record_signing default the time.
        small = io.BytesIO()
        decoded.resize((200, 125)).save(small, "JPEG", quality=80)
        _, result = provenance.sign_rendition(
            small.getvalue(), original, key=signing_key, path=tmp_path / "cache" / "200.jpg"
        )
        assert result.path == str(tmp_path / "cache" / "200.jpg")
        (child,) = inventory.record_many([result], signer=signing_key.subject)
        assert child.parent_asset_id == original.asset_id
        assert child.files[0].path == result.path
        again = inventory.record_signing(result, signer=signing_key.subject)
        assert again.asset_id == child.asset_id
        # record_perceptual needs no bytes when it has the pixels, and says when it has neither.
        assert provenance.record_perceptual(inventory, child.asset_id, image=decoded)
        with pytest.raises(ValueError, match="bytes or its decoded pixels"):
            provenance.record_perceptual(inventory, child.asset_id)


def test_a_batch_with_a_file_seen_before_is_recorded_row_by_row(
    media: Callable[[str], Path], signing_key: SigningKey, tmp_path: Path
) -> None:
    data = media("forest-path.jpg").read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        decoded = im.copy()
    made = []
    for width in (90, 120, 160):
        out = io.BytesIO()
        decoded.resize((width, width * 5 // 8)).save(out, "JPEG", quality=80)
        made.append((out.getvalue(), tmp_path / f"{width}.jpg"))
    record = sample_record("forest-path.jpg")
    with Inventory(tmp_path / "inventory.sqlite") as inventory:
        first = provenance.sign_import(
            data, tmp_path / "o.jpg", record=record, key=signing_key, inventory=inventory,
            renditions=made[:2], now=NOW,
        )  # fmt: skip
        # The same renditions again, plus a new one, under a second signing of the
        # original: the batch holds files already stored, so each row is checked.
        second = provenance.sign_import(
            data, tmp_path / "o2.jpg", record=record, key=signing_key, inventory=inventory,
            renditions=made, now=NOW,
        )  # fmt: skip
        assert second.original.result.asset_id == first.original.result.asset_id
        entry = inventory.get(first.original.result.asset_id)
        assert entry is not None and len(entry.files) == 2
        children = inventory.descendants(first.original.result.asset_id)
        assert {c.asset_id for c in children} == {f.result.asset_id for f in second.renditions}
        assert inventory.stats().assets == 4
    # Audit: 1 + 2 files, then 1 new original file + 1 new rendition (the two seen
    # before are idempotent and log nothing).
    assert _audit_count(tmp_path / "inventory.sqlite") == 5


def _resized(image: Image.Image, width: int, height: int) -> Image.Image:
    """The documented script's resize: aspect kept, never upscaled, LANCZOS, reducing gap 3."""
    copy = image.copy()
    copy.thumbnail((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return copy


def _imported(
    data: bytes,
    name: str,
    pixels: Image.Image,
    key: SigningKey,
    inventory: Inventory,
    tmp_path: Path,
) -> provenance.SignResult:
    """``sign_import`` of ``data`` with ``pixels`` as its image, no renditions: the original."""
    signed = provenance.sign_import(
        data, tmp_path / "o.jpg", record=sample_record(name), key=key,
        inventory=inventory, image=pixels, now=NOW, durable=False,
    )  # fmt: skip
    return signed.original.result


def test_the_largest_rendition_s_pixels_find_copies_of_the_original(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    name = "rowing-boats-sunset.jpg"  # 2560 x 1600: its keypoints' reduction is what is saved
    data = media(name).read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        decoded = im.copy()
    largest = _resized(decoded, 700, 560)
    assert largest.size == (700, 438)
    with Inventory(tmp_path / "inventory.sqlite") as inventory:
        result = _imported(data, name, largest, signing_key, inventory, tmp_path)
        assert (result.width, result.height) == (2560, 1600)
        assert result.to_dict()["width"] == 2560
        # Copies made from the full-size original, not from the rendition the rows came from.
        third = save_jpeg(decoded.resize((853, 533)), tmp_path / "third.jpg", quality=70)
        page, box = screenshot(decoded)
        shot = save_jpeg(page, tmp_path / "page.jpg")
        turned = decoded.rotate(3, Image.Resampling.BICUBIC, fillcolor="white").crop(
            (256, 160, 2560, 1600)
        )
        rotated = save_jpeg(turned.resize((1152, 720)), tmp_path / "turned.jpg")
        for query in (third, shot, rotated):
            verdict = provenance.verify(query, trust=trust, inventory=inventory)
            assert verdict.status is Status.SYNTHETIC_DUPLICATE, (query.name, verdict.summary)
            assert verdict.asset_id == result.asset_id
        verdict = provenance.verify(shot, trust=trust, inventory=inventory)
        assert verdict.location is not None and iou(verdict.location.box, box) > 0.8


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda im: _resized(im, 285, 285), "at least 512 pixels on its long side"),
        (lambda im: im.resize((im.width * 2, im.height * 2)), "pass the original decoded"),
        (lambda im: ImageOps.pad(_resized(im, 700, 560), (700, 560), color="white"), "aspect"),
        (lambda im: _resized(im.crop((0, 0, im.width * 3 // 4, im.height)), 700, 560), "aspect"),
    ],
    ids=["too small", "larger", "framed", "cropped"],
)
def test_pixels_that_are_not_the_original_or_a_resized_copy_record_nothing(
    media: Callable[[str], Path],
    signing_key: SigningKey,
    tmp_path: Path,
    make: Callable[[Image.Image], Image.Image],
    says: str,
) -> None:
    name = "kite-blue-sky.jpg"  # 2000 x 1250
    data = media(name).read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        pixels = make(im)
    shown = f"image is {pixels.width} x {pixels.height} pixels, the original 2000 x 1250"
    db = tmp_path / "inventory.sqlite"
    with Inventory(db) as inventory:
        with pytest.raises(ValueError, match=says) as caught:
            provenance.sign_import(
                data, tmp_path / "o.jpg", record=sample_record(name), key=signing_key,
                inventory=inventory, image=pixels,
            )  # fmt: skip
        assert str(caught.value).startswith(shown)
        with pytest.raises(ValueError, match=says):
            provenance.sign_bytes(
                data, record=sample_record(name), key=signing_key, image=pixels,
                inventory=inventory,
            )  # fmt: skip
        out = tmp_path / "signed.jpg"
        with pytest.raises(ValueError, match=says):
            provenance.sign(
                media(name), out, record=sample_record(name), key=signing_key, image=pixels,
                inventory=inventory,
            )  # fmt: skip
        assert not out.exists()  # refused before the signed copy was written
        assert inventory.stats().assets == 0
    assert _audit_count(db) == 0


def test_a_copy_turned_upright_by_exif_orientation_is_the_original_s(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    name = "kite-blue-sky.jpg"  # 2000 x 1250, stored turned: EXIF Orientation 6
    with Image.open(media(name)) as im:
        exif = im.getexif()
        exif[0x0112] = 6
        turned = io.BytesIO()
        im.save(turned, "JPEG", quality=90, exif=exif)
    data = turned.getvalue()
    with Image.open(io.BytesIO(data)) as im:
        upright = ImageOps.exif_transpose(im)  # what many pipelines do before resizing
    assert upright.size == (1250, 2000)
    largest = _resized(upright, 700, 560)
    assert largest.size == (350, 560)
    with Inventory(tmp_path / "inventory.sqlite") as inventory:
        result = _imported(data, name, largest, signing_key, inventory, tmp_path)
        assert (result.width, result.height) == (2000, 1250)
        copy = save_jpeg(upright.resize((417, 667)), tmp_path / "copy.jpg", quality=75)
        verdict = provenance.verify(copy, trust=trust, inventory=inventory)
        assert verdict.status is Status.SYNTHETIC_DUPLICATE
        assert verdict.asset_id == result.asset_id


def test_signing_a_large_square_jpeg_stores_its_keypoints_at_the_full_working_size(
    media: Callable[[str], Path], signing_key: SigningKey, tmp_path: Path
) -> None:
    # A 2048 px square: JPEG draft mode at 256 px per side (a verifier's query decode)
    # would give 1/8 scale, and the keypoints would be stored at 256 px, not 384.
    name = "packshot-daffodil-white.jpg"
    with Image.open(media(name)) as im:
        im.resize((2048, 2048), Image.Resampling.LANCZOS).save(tmp_path / "big.jpg", quality=90)
    with Inventory(tmp_path / "inventory.sqlite") as inventory:
        provenance.sign(
            tmp_path / "big.jpg", tmp_path / "signed.jpg", record=sample_record(name),
            key=signing_key, inventory=inventory,
        )  # fmt: skip
        [(_, features)] = inventory.keypoint_features([1])
    assert (features.width, features.height) == (keypoints.REFERENCE_SIDE,) * 2
