"""Magento: an import CSV signed and labelled; bad rows reported; the image cache re-signed."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from PIL import Image

from provenance import (
    ImportFileError,
    Inventory,
    ProvenanceError,
    ProvenanceRecord,
    SigningKey,
    Status,
    TrustPolicy,
    sign,
    trace,
    verify,
)
from provenance._io.keys import DevKeyPaths
from provenance.cli import main
from provenance.integrations.magento import (
    CacheAction,
    CsvFormat,
    ImageAction,
    ImportOptions,
    RowProblem,
    import_csv,
    magento_file_path,
    sign_cache,
)
from tests.conftest import SAMPLE_MEDIA, sample_record

DATA = Path(__file__).resolve().parents[1] / "data" / "magento"
AI_IMAGES = {
    "kite-blue-sky.jpg": "kite-blue-sky.jpg",
    "lake-at-dusk.webp": "lake-at-dusk.webp",
    "fallen-maple-leaf.jpg": "fallen-maple-leaf.jpg",
    "packshots/packshot-daffodil-white.jpg": "packshot-daffodil-white.jpg",
    "packshots/packshot-fire-truck-white.png": "packshot-fire-truck-white.png",
    "packshots/packshot-site-dumper-alpha.png": "packshot-site-dumper-alpha.png",
}
DISCLOSURE = "AI-generated image"


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """Magento's var/import/images: AI images with sidecars, one photo without."""
    root = tmp_path / "magento" / "var" / "import" / "images"
    for relative, name in AI_IMAGES.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLE_MEDIA / name, target)
        shutil.copyfile(SAMPLE_MEDIA / f"{name}.json", target.with_name(target.name + ".json"))
    shutil.copyfile(SAMPLE_MEDIA / "forest-path.jpg", root / "forest-path.jpg")  # no record
    # A real file just outside the images directory, for the traversal cases.
    shutil.copyfile(SAMPLE_MEDIA / "kite-blue-sky.jpg", root.parent / "outside.jpg")
    return root


@pytest.fixture
def inventory(tmp_path: Path) -> Iterator[Inventory]:
    with Inventory(tmp_path / "inventory.sqlite") as inv:
        yield inv


def read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    text = path.read_text("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))


# --- the import --------------------------------------------------------------------


def test_sample_import_signs_labels_and_keeps_every_row(
    images: Path,
    tmp_path: Path,
    signing_key: SigningKey,
    trust: TrustPolicy,
    inventory: Inventory,
) -> None:
    source = DATA / "products.csv"
    out = tmp_path / "out"
    report = import_csv(source, out, images_dir=images, key=signing_key, inventory=inventory)

    assert report.rows_failed == 0, [r.error for r in report.rows]
    assert report.output_csv == str(out / "products.csv")
    before, after = read_csv(source), read_csv(out / "products.csv")
    assert len(after) == len(before) == 5
    assert list(after[0]) == list(before[0])  # same columns, same order
    assert [r["sku"] for r in after] == [r["sku"] for r in before]
    for old, new in zip(before, after, strict=True):
        for column in ("name", "price", "base_image", "additional_images", "store_view_code"):
            assert new[column] == old[column]  # paths unchanged: relative to the new folder

    # Every AI image is signed once, however many rows and columns name it.
    assert report.images_signed == len(AI_IMAGES)
    assert report.images_copied == 1
    for relative, name in AI_IMAGES.items():
        verdict = verify(out / "images" / relative, trust=trust)
        assert verdict.status is Status.TRUSTED, relative
        assert verdict.record is not None and verdict.record.model == sample_record(name).model
    photo = out / "images" / "forest-path.jpg"
    assert photo.read_bytes() == (images / "forest-path.jpg").read_bytes()
    assert verify(photo).status is Status.NO_PROVENANCE
    stats = inventory.stats().to_dict()
    assert stats["assets"] == len(AI_IMAGES)

    # Empty labels of AI images are disclosed; given labels and photos are left alone.
    kite, kite_de, truck, leaf, plain = after
    assert kite["base_image_label"] == DISCLOSURE
    assert kite["small_image_label"] == DISCLOSURE
    assert kite["thumbnail_image_label"] == DISCLOSURE
    assert kite["additional_image_labels"] == f"{DISCLOSURE},{DISCLOSURE}"
    assert kite_de["base_image_label"] == "Drachen am Himmel"
    assert truck["base_image_label"] == "Fire truck, red"
    assert truck["small_image_label"] == DISCLOSURE
    assert truck["additional_image_labels"] == f"{DISCLOSURE},Forest path"
    assert leaf["swatch_image_label"] == DISCLOSURE
    assert leaf["name"] == 'Maple leaf print "Autumn"'
    assert plain["base_image_label"] == ""
    assert report.labels_filled == 12  # kite 5, truck 3, leaf 4
    kinds = {o.value: o.action for r in report.rows for o in r.images}
    assert kinds["forest-path.jpg"] is ImageAction.COPIED
    assert kinds["kite-blue-sky.jpg"] is ImageAction.SIGNED
    assert report.rejects_csv is None


def test_bom_semicolons_and_crlf_are_kept(
    images: Path, tmp_path: Path, signing_key: SigningKey
) -> None:
    source = tmp_path / "bom.csv"
    source.write_bytes(b"\xef\xbb\xbf" + (DATA / "semicolon.csv").read_bytes())
    report = import_csv(source, tmp_path / "out", images_dir=images, key=signing_key)
    assert report.field_separator == ";"
    assert report.rows_imported == 1
    written = (tmp_path / "out" / "bom.csv").read_bytes()
    assert written.startswith(b"\xef\xbb\xbfsku;name;base_image;base_image_label\r\n")
    assert written.endswith(b"KITE-01;Kite, blue;kite-blue-sky.jpg;AI-generated image\r\n")


def test_already_signed_images_are_copied_not_signed_again(
    images: Path, tmp_path: Path, signing_key: SigningKey
) -> None:
    kite = images / "kite-blue-sky.jpg"
    sign(kite, kite, record=sample_record("kite-blue-sky.jpg"), key=signing_key)
    (images / "kite-blue-sky.jpg.json").unlink()
    source = tmp_path / "one.csv"
    source.write_text("sku,base_image,base_image_label\nK,kite-blue-sky.jpg,\n", "utf-8")
    report = import_csv(source, tmp_path / "out", images_dir=images, key=signing_key)
    (outcome,) = report.rows[0].images
    assert outcome.action is ImageAction.ALREADY_SIGNED
    assert (tmp_path / "out" / "images" / "kite-blue-sky.jpg").read_bytes() == kite.read_bytes()
    assert read_csv(tmp_path / "out" / "one.csv")[0]["base_image_label"] == DISCLOSURE


def test_bad_rows_are_reported_and_the_rest_imported(
    images: Path, tmp_path: Path, signing_key: SigningKey
) -> None:
    out = tmp_path / "out"
    report = import_csv(DATA / "bad_rows.csv", out, images_dir=images, key=signing_key)
    problems = {r.line: r.problem for r in report.rows}
    assert problems == {
        2: None,
        3: RowProblem.RAGGED_ROW,
        4: RowProblem.MISSING_SKU,
        5: RowProblem.DUPLICATE_SKU,
        6: RowProblem.PATH_TRAVERSAL,
        7: RowProblem.ABSOLUTE_PATH,
        8: RowProblem.ABSOLUTE_PATH,
        9: RowProblem.REMOTE_IMAGE,
        10: RowProblem.MISSING_FILE,
        11: RowProblem.MISSING_FILE,
        12: None,
        13: None,
    }
    errors = {r.line: r.error or "" for r in report.rows}
    assert "remote image not fetched" in errors[9]
    assert "already on line 2" in errors[5]
    assert "multiple value separator '|'" in errors[11]
    assert all(e.startswith(f"{DATA / 'bad_rows.csv'}:{n}:") for n, e in errors.items() if e)
    # Nothing outside the images directory was read or written.
    assert not (out / "outside.jpg").exists() and not (out / "images" / "outside.jpg").exists()

    good = read_csv(out / "bad_rows.csv")
    assert [(r["sku"], r["store_view_code"]) for r in good] == [
        ("GOOD-01", ""),
        ("GOOD-01", "de"),
        ("GOOD-09", ""),
    ]
    assert good[2]["name"] == "Quoted, comma"
    assert good[2]["additional_image_labels"] == f"Kite,{DISCLOSURE}"
    rejected = read_csv(out / "bad_rows.rejected.csv")
    assert len(rejected) == 9
    assert report.rejects_csv == str(out / "bad_rows.rejected.csv")


def test_symlinks_and_existing_absolute_paths_are_refused(
    images: Path, tmp_path: Path, signing_key: SigningKey
) -> None:
    (images / "escape.jpg").symlink_to(images.parent / "outside.jpg")
    outside = images.parent / "outside.jpg"
    source = tmp_path / "links.csv"
    source.write_text(
        f"sku,base_image\nLINK-1,escape.jpg\nABS-2,{outside}\nOK-3,kite-blue-sky.jpg\n", "utf-8"
    )
    report = import_csv(source, tmp_path / "out", images_dir=images, key=signing_key)
    assert [r.problem for r in report.rows] == [
        RowProblem.PATH_TRAVERSAL,
        RowProblem.ABSOLUTE_PATH,
        None,
    ]
    assert "looks like an absolute path" in (report.rows[1].error or "")
    # The header had no label column: it is added, so the disclosure has a place.
    assert report.warnings == ("added column 'base_image_label' for the disclosure labels",)
    written = (tmp_path / "out" / "links.csv").read_text("utf-8")
    assert written == f"sku,base_image,base_image_label\nOK-3,kite-blue-sky.jpg,{DISCLOSURE}\n"


def test_record_column_and_default_record(
    images: Path, tmp_path: Path, signing_key: SigningKey
) -> None:
    (images / "forest-path.jpg.json").write_text(
        (SAMPLE_MEDIA / "forest-path.jpg.json").read_text("utf-8"), "utf-8"
    )
    inline = json.dumps(sample_record("lake-at-dusk.webp").to_dict())
    source = tmp_path / "records.csv"
    rows = [
        ["sku", "base_image", "base_image_label", "ai_record"],
        ["A", "forest-path.jpg", "", "forest-path.jpg.json"],
        ["B", "lake-at-dusk.webp", "", inline],
        ["C", "kite-blue-sky.jpg", "", "../outside.json"],
    ]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    source.write_text(buffer.getvalue(), "utf-8")
    options = ImportOptions(record_column="ai_record")
    report = import_csv(
        source, tmp_path / "out", images_dir=images, key=signing_key, options=options
    )
    assert [r.problem for r in report.rows] == [None, None, RowProblem.RECORD_ERROR]
    lake = verify(tmp_path / "out" / "images" / "lake-at-dusk.webp")
    assert lake.record is not None and lake.record.model == sample_record("lake-at-dusk.webp").model

    # The default record signs images that have no record of their own.
    (images / "forest-path.jpg.json").unlink()
    default = ProvenanceRecord.from_dict(
        {
            "generator": "Studio",
            "model": "m",
            "model_version": "1",
            "digital_source_type": "trainedAlgorithmicMedia",
            "created_at": "2026-01-01T00:00:00Z",
        }
    )
    plain = tmp_path / "plain.csv"
    plain.write_text("sku,base_image,base_image_label\nP,forest-path.jpg,\n", "utf-8")
    report = import_csv(
        plain,
        tmp_path / "out2",
        images_dir=images,
        key=signing_key,
        options=ImportOptions(default_record=default, default_created_at_from_file=True),
    )
    assert report.rows[0].images[0].action is ImageAction.SIGNED
    verdict = verify(tmp_path / "out2" / "images" / "forest-path.jpg")
    assert verdict.record is not None and verdict.record.model == "m"
    mtime = (images / "forest-path.jpg").stat().st_mtime
    expected = datetime.fromtimestamp(mtime, tz=timezone.utc).replace(microsecond=0)
    assert verdict.record.created_at == expected


def test_dry_run_writes_nothing(images: Path, tmp_path: Path, inventory: Inventory) -> None:
    out = tmp_path / "out"
    report = import_csv(
        DATA / "products.csv",
        out,
        images_dir=images,
        key=None,
        options=ImportOptions(dry_run=True),
        inventory=inventory,
    )
    assert report.dry_run and report.output_csv is None
    assert report.rows_imported == 5 and report.images_signed == len(AI_IMAGES)
    assert not out.exists()
    assert inventory.stats().to_dict()["assets"] == 0


def test_unusable_csv_files_raise_naming_the_file(
    images: Path, tmp_path: Path, signing_key: SigningKey
) -> None:
    with pytest.raises(ImportFileError, match=r"no_sku\.csv: no 'sku' column"):
        import_csv(DATA / "no_sku.csv", tmp_path, images_dir=images, key=signing_key)
    with pytest.raises(ImportFileError, match=r"separated by ';'"):
        import_csv(
            DATA / "semicolon.csv",
            tmp_path,
            images_dir=images,
            key=signing_key,
            options=ImportOptions(csv_format=CsvFormat(field_separator=",")),
        )
    with pytest.raises(ImportFileError, match=r"kite-blue-sky\.jpg: not a CSV file"):
        import_csv(images / "kite-blue-sky.jpg", tmp_path, images_dir=images, key=signing_key)
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("sku,name\nK,Gr\xfcn\n".encode("latin-1"))
    with pytest.raises(ImportFileError, match="not UTF-8"):
        import_csv(latin, tmp_path, images_dir=images, key=signing_key)
    with pytest.raises(ProvenanceError, match="images directory not found"):
        import_csv(DATA / "products.csv", tmp_path, images_dir=tmp_path / "no", key=signing_key)


def test_disclosure_text_must_not_break_the_label_list() -> None:
    with pytest.raises(ValueError, match="multiple value separator"):
        ImportOptions(disclosure_text="AI-generated, by a model")
    ImportOptions(disclosure_text="AI, generated", csv_format=CsvFormat(fields_enclosure=True))


def test_fields_enclosure_labels(images: Path, tmp_path: Path, signing_key: SigningKey) -> None:
    source = tmp_path / "enc.csv"
    source.write_text(
        "sku,additional_images,additional_image_labels\n"
        'K,"kite-blue-sky.jpg,forest-path.jpg,lake-at-dusk.webp","""A, b"",""c"","""""\n',
        "utf-8",
    )
    options = ImportOptions(
        disclosure_text="AI, generated", csv_format=CsvFormat(fields_enclosure=True)
    )
    report = import_csv(
        source, tmp_path / "out", images_dir=images, key=signing_key, options=options
    )
    assert report.rows_failed == 0
    labels = read_csv(tmp_path / "out" / "enc.csv")[0]["additional_image_labels"]
    assert labels == '"A, b","c","AI, generated"'


# --- the storefront cache ------------------------------------------------------------------

HASHES = ("0f3e5a7c9b1d2f4e6a8c0b2d4f6e8a0c", "a1b2c3d4e5f60718293a4b5c6d7e8f90")


def magento_resize(original: Path, target: Path, box: tuple[int, int]) -> None:
    """What Magento's GD2 adapter does: decode, resize, save without any metadata."""
    with Image.open(original) as im:
        im.load()
        copy = im.copy()
    copy.thumbnail(box, Image.Resampling.LANCZOS)
    target.parent.mkdir(parents=True, exist_ok=True)
    if original.suffix == ".png":
        copy.save(target, "PNG")
    else:
        copy.convert("RGB").save(target, "JPEG", quality=80)


@pytest.fixture
def media(tmp_path: Path, signing_key: SigningKey, inventory: Inventory) -> Path:
    """pub/media with signed originals, an unsigned one, and their cache renditions.

    The originals are recorded in the inventory, as the import would have done.
    """
    root = tmp_path / "pub" / "media"
    product = root / "catalog" / "product"
    originals = {
        "k/i/kite-blue-sky.jpg": "kite-blue-sky.jpg",
        "p/a/packshot-fire-truck-white.png": "packshot-fire-truck-white.png",
    }
    for relative, name in originals.items():
        target = product / relative
        target.parent.mkdir(parents=True)
        record = sample_record(name)
        sign(SAMPLE_MEDIA / name, target, record=record, key=signing_key, inventory=inventory)
        for digest, box in zip(HASHES, [(265, 265), (700, 700)], strict=True):
            magento_resize(target, product / "cache" / digest / relative, box)
    unsigned = product / "f/o/forest-path.jpg"
    unsigned.parent.mkdir(parents=True)
    shutil.copyfile(SAMPLE_MEDIA / "forest-path.jpg", unsigned)
    magento_resize(unsigned, product / "cache" / HASHES[0] / "f/o/forest-path.jpg", (265, 265))
    # A rendition whose original was deleted.
    magento_resize(unsigned, product / "cache" / HASHES[0] / "g/o/gone.jpg", (100, 100))
    return root


def test_sign_cache_links_every_rendition_to_its_original(
    media: Path, signing_key: SigningKey, trust: TrustPolicy, inventory: Inventory
) -> None:
    product = media / "catalog" / "product"
    renditions = sorted((product / "cache").rglob("*.*"))
    modes = {p: p.stat().st_mode for p in renditions}
    for p in renditions:
        assert verify(p).status is Status.NO_PROVENANCE  # the resize dropped everything

    outcomes = sign_cache(media, key=signing_key, inventory=inventory)
    by_name = {Path(o.rendition).relative_to(product / "cache").as_posix(): o for o in outcomes}
    assert len(outcomes) == 6
    for digest in HASHES:
        for relative in ("k/i/kite-blue-sky.jpg", "p/a/packshot-fire-truck-white.png"):
            outcome = by_name[f"{digest}/{relative}"]
            assert outcome.action is CacheAction.SIGNED, outcome.error
            original = verify(product / relative, trust=trust)
            verdict = verify(outcome.rendition, trust=trust)
            assert verdict.status is Status.TRUSTED
            assert [s.asset_id for s in verdict.lineage] == [outcome.asset_id, original.asset_id]
            assert outcome.parent_asset_id == original.asset_id
            assert inventory.ancestors(outcome.asset_id or "")[0].asset_id == original.asset_id
            with Image.open(outcome.rendition) as im:
                assert max(im.size) <= (265 if digest == HASHES[0] else 700)
    # A photo (no provenance) is skipped and counted, not an error.
    skipped = by_name[f"{HASHES[0]}/f/o/forest-path.jpg"]
    assert skipped.action is CacheAction.SKIPPED and skipped.error is None
    assert verify(skipped.rendition).status is Status.NO_PROVENANCE  # left alone
    orphan = by_name[f"{HASHES[0]}/g/o/gone.jpg"]  # a deleted product's cache file
    assert orphan.action is CacheAction.ORPHAN and orphan.error is None
    assert all(p.stat().st_mode == modes[p] for p in renditions)

    again = sign_cache(media, key=signing_key, inventory=inventory)
    assert sorted(o.action.value for o in again) == ["already_signed"] * 4 + ["orphan", "skipped"]


def test_sign_cache_inventory_only_leaves_files_and_traces_them(
    media: Path, trust: TrustPolicy, inventory: Inventory
) -> None:
    product = media / "catalog" / "product"
    rendition = product / "cache" / HASHES[1] / "k/i/kite-blue-sky.jpg"
    before = rendition.read_bytes()
    outcomes = sign_cache(media, key=None, inventory=inventory, inventory_only=True)
    recorded = [o for o in outcomes if o.action is CacheAction.RECORDED]
    assert len(recorded) == 4
    assert rendition.read_bytes() == before
    verdict = verify(rendition, trust=trust, inventory=inventory)
    assert verdict.status is Status.KNOWN_STRIPPED
    traced = trace(rendition, trust=trust, inventory=inventory)
    original_id = verify(product / "k/i/kite-blue-sky.jpg").asset_id
    assert [s.asset_id for s in traced.steps] == [verdict.asset_id, original_id]
    assert all(o.parent_asset_id for o in recorded)
    again = sign_cache(media, key=None, inventory=inventory, inventory_only=True)
    assert sum(o.action is CacheAction.ALREADY_RECORDED for o in again) == 4


def test_sign_cache_needs_a_media_tree(tmp_path: Path, signing_key: SigningKey) -> None:
    with pytest.raises(ProvenanceError, match="no catalog/product folder"):
        sign_cache(tmp_path, key=signing_key)


# --- the command line ----------------------------------------------------------------------


def test_cli_import_json(
    images: Path,
    tmp_path: Path,
    dev_keys: DevKeyPaths,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    keys = ("--keys", str(dev_keys.directory))
    common = ("--images-dir", str(images), "--out", str(out), *keys, "--json")
    code = main(["magento", "import", str(DATA / "products.csv"), *common])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["rows_imported"] == 5 and report["images_signed"] == len(AI_IMAGES)
    assert (out / "products.csv").is_file()

    code = main(["magento", "import", str(DATA / "bad_rows.csv"), *common])
    report = json.loads(capsys.readouterr().out)
    assert code == 2
    assert report["rows_failed"] == 9
    assert {r["problem"] for r in report["rows"] if not r["ok"]} >= {
        "remote_image",
        "path_traversal",
        "absolute_path",
        "duplicate_sku",
    }

    code = main(["magento", "import", str(DATA / "no_sku.csv"), *common])
    assert code == 2
    assert "no_sku.csv: no 'sku' column" in capsys.readouterr().err


def test_cli_import_dry_run_and_table(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["magento", "import", str(DATA / "bad_rows.csv"), "--images-dir", str(images), "--dry-run"]
    )
    captured = capsys.readouterr()
    assert code == 2
    assert "rows not imported" in captured.out and "would import 3 rows" in captured.out
    assert not (tmp_path / "bad_rows.csv").exists()


def test_cli_sign_cache_json(
    media: Path, dev_keys: DevKeyPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["magento", "sign-cache", str(media), "--keys", str(dev_keys.directory), "--json"]
    code = main(args)
    rows = json.loads(capsys.readouterr().out)
    assert code == 0  # photos skipped, the deleted product's cache file an orphan
    assert sorted(r["action"] for r in rows) == [
        "orphan",
        "signed",
        "signed",
        "signed",
        "signed",
        "skipped",
    ]
    code = main(args)
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["action"] for r in rows) == ["already_signed"] * 4 + ["orphan", "skipped"]


def test_cli_sign_cache_on_a_catalogue_of_mostly_photos(
    media: Path, dev_keys: DevKeyPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    """What cron runs: photos are skipped (exit 0), a second run prints one line."""
    product = media / "catalog" / "product"
    (product / "cache" / HASHES[0] / "g/o/gone.jpg").unlink()  # no orphan this time
    for name in ("rowing-boats-sunset.jpg", "fallen-maple-leaf.jpg"):
        photo = product / name[0] / name[1] / name
        photo.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLE_MEDIA / name, photo)
        for digest in HASHES:
            magento_resize(photo, product / "cache" / digest / name[0] / name[1] / name, (300, 300))
    args = ["magento", "sign-cache", str(media), "--keys", str(dev_keys.directory)]
    assert main(args) == 0
    first = capsys.readouterr()
    assert "9 renditions: 4 signed" in first.out and "5 skipped" in first.out
    assert first.err == ""
    assert main(args) == 0
    second = capsys.readouterr()
    assert second.out.strip().splitlines() == [
        "9 renditions: 0 signed, 0 recorded, 4 already signed, 0 already recorded, "
        "5 skipped (original has no provenance: not AI-generated), 0 errors"
    ]
    assert main([*args, "--strict"]) == 2
    strict = capsys.readouterr()
    assert "--strict: 5 renditions of originals without provenance" in strict.err
    # A signed rendition edited afterwards is an error: exit 2, named, left alone.
    edited = product / "cache" / HASHES[1] / "k/i/kite-blue-sky.jpg"
    data = bytearray(edited.read_bytes())
    data[-200] ^= 0x55
    edited.write_bytes(bytes(data))
    assert main(args) == 2
    broken = capsys.readouterr()
    assert f"provenance: error: {edited}: carries provenance that does not verify" in broken.err
    assert edited.read_bytes() == bytes(data)


def test_cli_import_writes_disclosure_json_the_template_reads(
    images: Path, tmp_path: Path, dev_keys: DevKeyPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    """--disclosure-json: one entry per image with a record, keyed as Magento stores it;
    --append-disclosure: filled labels of AI images get the text once, others stay."""
    from tests.integration.test_disclosure_a11y import PHP_HARNESS, TEMPLATES

    out = tmp_path / "out"
    target = tmp_path / "disclosures.json"
    args = [
        "magento",
        "import",
        str(DATA / "products.csv"),
        "--images-dir",
        str(images),
        "--out",
        str(out),
        "--keys",
        str(dev_keys.directory),
        "--no-inventory",
        "--disclosure-json",
        str(target),
        "--append-disclosure",
    ]
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "appended to" in said and str(target) in said
    document = json.loads(target.read_text("utf-8"))
    entries = document["images"]
    assert document["format"] == "provenance.magento.disclosures"
    assert set(entries) == {
        "/k/i/kite-blue-sky.jpg",
        "/l/a/lake-at-dusk.webp",
        "/f/a/fallen-maple-leaf.jpg",
        "/p/a/packshot-daffodil-white.jpg",
        "/p/a/packshot-fire-truck-white.png",
        "/p/a/packshot-site-dumper-alpha.png",
    }  # the forest photo has no record: no entry
    kite = entries["/k/i/kite-blue-sky.jpg"]
    assert kite["synthetic"] is True and kite["csv_value"] == "kite-blue-sky.jpg"
    assert kite["description"].startswith("AI-generated image")
    rows = {(r["sku"], r["store_view_code"]): r for r in read_csv(out / "products.csv")}
    truck = rows[("TRUCK-02", "")]
    assert truck["base_image_label"] == f"Fire truck, red ({DISCLOSURE})"
    # additional images: the lake (AI, empty label) filled; the forest photo's label left as is.
    assert truck["additional_image_labels"] == f"{DISCLOSURE},Forest path"
    # Idempotent: importing the output again appends nothing twice.
    again = tmp_path / "again"
    again_args = [*args[:2], str(out / "products.csv"), *args[3:]]
    again_args[again_args.index(str(out))] = str(again)
    again_args[again_args.index("--images-dir") + 1] = str(out / "images")
    assert main(again_args) == 0
    capsys.readouterr()
    twice = {(r["sku"], r["store_view_code"]): r for r in read_csv(again / "products.csv")}
    assert twice[("TRUCK-02", "")]["base_image_label"] == truck["base_image_label"]
    # The shipped template renders an entry of the file as it is.
    php = shutil.which("php")
    assert php, "PHP is missing: apt-get install -y php-cli (.ci/run does this)"
    harness = tmp_path / "harness.php"
    harness.write_text(PHP_HARNESS, encoding="utf-8")
    values = tmp_path / "values.json"
    values.write_text(
        json.dumps(
            {
                "image_url": "/media/catalog/product/k/i/kite-blue-sky.jpg",
                "image_alt": "Rainbow kite",
                "provenance": kite,
            }
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [php, str(harness), str(values), str(TEMPLATES / "magento" / "disclosure.phtml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert 'data-synthetic="true"' in done.stdout and "AI-generated image" in done.stdout


def test_magento_file_path_is_where_magento_puts_the_image() -> None:
    assert magento_file_path("kite-blue-sky.jpg") == "/k/i/kite-blue-sky.jpg"
    assert magento_file_path("/packshots/Fire Truck.PNG") == "/f/i/fire_truck.png"
    assert magento_file_path(".hidden.jpg") == "/_/h/.hidden.jpg"


def test_image_outcomes_are_batch_rows(
    images: Path, tmp_path: Path, signing_key: SigningKey
) -> None:
    from provenance.batch import RowStatus

    source = tmp_path / "two.csv"
    source.write_text(
        "sku,base_image,additional_images\n"
        'A,kite-blue-sky.jpg,"kite-blue-sky.jpg,gone.jpg"\n'
        "B,https://cdn.example/x.jpg,kite-blue-sky.jpg\n",
        "utf-8",
    )
    report = import_csv(source, tmp_path / "out", images_dir=images, key=signing_key)
    first, again, gone = report.rows[0].images
    # The signed file: its row holds what signing did; a second reference shares it.
    assert first.outcome.status is RowStatus.OK and first.result is not None
    assert first.outcome.name == first.source == str((images / "kite-blue-sky.jpg").resolve())
    assert first.result.path == first.output and first.result.asset_id == first.asset_id
    assert again.result == first.result
    assert [o.outcome.index for o in (first, again, gone)] == [0, 1, 2]
    # A failed image is an error row whose message names the file; the JSON is as before.
    assert gone.outcome.status is RowStatus.ERROR and gone.outcome.error is not None
    assert gone.error == gone.outcome.error.message and "gone.jpg" in gone.error
    assert gone.to_dict()["error"] == gone.error and gone.to_dict()["problem"] == "missing_file"
    remote = report.rows[1].images[0]
    assert remote.source is None and remote.outcome.name == "https://cdn.example/x.jpg"
    assert remote.outcome.status is RowStatus.ERROR and remote.problem is RowProblem.REMOTE_IMAGE
    # A dry run signs nothing: ok rows without a signing result.
    dry = import_csv(
        source,
        tmp_path / "dry",
        images_dir=images,
        key=None,
        options=ImportOptions(dry_run=True),
    )
    planned = dry.rows[0].images[0]
    assert planned.action is ImageAction.SIGNED and planned.outcome.status is RowStatus.OK
    assert planned.result is None
