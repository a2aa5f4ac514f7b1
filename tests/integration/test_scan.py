"""scan over folders and product CSVs: one right row per file, reports written."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from provenance import SigningKey, Status, TrustPolicy, sign
from provenance._core.containers import BlockKind, strip
from provenance._io.keys import DevKeyPaths
from provenance.cli import main
from provenance.inventory import Inventory
from provenance.scan import ScanKind, images_in_csv, scan, write_reports
from tests.a11y import browser
from tests.conftest import sample_record

Media = Callable[[str], Path]


def resized_jpeg(src: Path, dst: Path) -> Path:
    with Image.open(src) as im:
        rgb = im.convert("RGB")
    rgb.resize((rgb.width // 2, rgb.height // 2), Image.Resampling.LANCZOS).save(
        dst, "JPEG", quality=60
    )
    return dst


@pytest.fixture
def pile(
    media: Media, signing_key: SigningKey, tmp_path: Path
) -> tuple[Path, Path, dict[str, ScanKind]]:
    """A folder with signed, stripped, resized, unrelated and corrupt files, and its inventory."""
    folder = tmp_path / "export"
    (folder / "sub").mkdir(parents=True)
    db = tmp_path / "inv.sqlite"
    with Inventory(db) as inv:
        for name in ("rowing-boats-sunset.jpg", "packshot-fire-truck-white.png"):
            sign(
                media(name),
                folder / f"signed-{name}",
                record=sample_record(name),
                key=signing_key,
                inventory=inv,
            )
    signed_png = folder / "signed-packshot-fire-truck-white.png"
    (folder / "sub" / "stripped.png").write_bytes(
        strip(signed_png.read_bytes(), frozenset(BlockKind))
    )
    resized_jpeg(folder / "signed-rowing-boats-sunset.jpg", folder / "sub" / "cdn-boats.jpg")
    shutil.copyfile(media("forest-path.jpg"), folder / "unrelated.jpg")
    good = (folder / "unrelated.jpg").read_bytes()
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (folder / "notes.txt").write_text("not an image")
    expected = {
        "signed-rowing-boats-sunset.jpg": ScanKind.SIGNED,
        "signed-packshot-fire-truck-white.png": ScanKind.SIGNED,
        "stripped.png": ScanKind.KNOWN_STRIPPED,
        "cdn-boats.jpg": ScanKind.SYNTHETIC_DUPLICATE,
        "unrelated.jpg": ScanKind.UNKNOWN,
        "corrupt.jpg": ScanKind.ERROR,
    }
    return folder, db, expected


def test_scan_folder_gives_the_right_row_for_each_file(
    pile: tuple[Path, Path, dict[str, ScanKind]], trust: TrustPolicy, tmp_path: Path
) -> None:
    folder, db, expected = pile
    with Inventory(db, read_only=True) as inv:
        report = scan([folder], trust=trust, inventory=inv)
    got = {Path(r.path).name: r for r in report.rows}
    assert "notes.txt" not in got
    for name, kind in expected.items():
        assert got[name].kind is kind, (name, got[name])
    # A truncated JPEG is either reported as an error or still read: never a crash,
    # never a claim of provenance.
    assert got["truncated.jpg"].kind in (ScanKind.ERROR, ScanKind.UNKNOWN)
    assert got["signed-rowing-boats-sunset.jpg"].verdict.status is Status.TRUSTED
    duplicate = got["cdn-boats.jpg"].verdict
    signed_boats = got["signed-rowing-boats-sunset.jpg"].verdict
    assert duplicate.asset_id == signed_boats.asset_id
    assert duplicate.perceptual_distance is not None
    assert got["corrupt.jpg"].error.startswith(str(folder / "corrupt.jpg"))
    assert report.counts["signed"] == 2 and report.counts["synthetic_duplicate"] == 1

    written = write_reports(
        report,
        json_path=tmp_path / "r.json",
        csv_path=tmp_path / "r.csv",
        html_path=tmp_path / "r.html",
    )
    assert len(written) == 3
    data = json.loads((tmp_path / "r.json").read_text("utf-8"))
    assert data["counts"] == report.counts
    assert {Path(r["path"]).name: r["kind"] for r in data["rows"]}["cdn-boats.jpg"] == (
        "synthetic_duplicate"
    )
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text("utf-8"))))
    by_name = {Path(r["path"]).name: r for r in rows}
    assert by_name["stripped.png"]["kind"] == "known_stripped"
    assert by_name["cdn-boats.jpg"]["asset_id"] == signed_boats.asset_id
    assert by_name["corrupt.jpg"]["kind"] == "error"
    page = (tmp_path / "r.html").read_text("utf-8")
    assert page.count("data:image/jpeg;base64,") >= 5
    assert "<script" not in page and "synthetic_duplicate" in page


def test_html_escapes_file_names(tmp_path: Path, media: Media) -> None:
    evil = tmp_path / "<img src=x onerror=alert(1)>.jpg"
    shutil.copyfile(media("forest-path.jpg"), evil)
    page = scan([tmp_path]).to_html().decode("utf-8")
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in page


def test_scan_product_csv_resolves_names_under_root_and_next_to_it(
    pile: tuple[Path, Path, dict[str, ScanKind]], tmp_path: Path
) -> None:
    folder, db, _ = pile
    export = tmp_path / "catalog_product.csv"
    export.write_text(
        "sku,base_image,additional_images,image_url\n"
        'A1,/sub/cdn-boats.jpg,"/unrelated.jpg,/missing.jpg",\n'
        "A2,,,https://cdn.example.com/media/sub/stripped.png?v=3\n"
        'A3,=HYPERLINK("x"),../../etc/passwd.jpg,\n',
        "utf-8",
    )
    listed = images_in_csv(export, root=folder)
    names = [(p.name, problem is None) for p, _, problem in listed]
    assert names == [
        ("cdn-boats.jpg", True),
        ("unrelated.jpg", True),
        ("missing.jpg", False),
        ("stripped.png", True),
        ("passwd.jpg", False),
    ]
    with Inventory(db, read_only=True) as inv:
        report = scan([export], inventory=inv, root=folder)
    kinds = {Path(r.path).name: r.kind for r in report.rows}
    assert kinds["cdn-boats.jpg"] is ScanKind.SYNTHETIC_DUPLICATE
    assert kinds["stripped.png"] is ScanKind.KNOWN_STRIPPED
    assert kinds["missing.jpg"] is ScanKind.ERROR
    missing = next(r for r in report.rows if r.path.endswith("missing.jpg"))
    assert missing.source == f"{export}:2" and "not found" in (missing.error or "")


def test_scan_on_worker_processes_gives_the_same_rows_in_the_same_order(
    pile: tuple[Path, Path, dict[str, ScanKind]], trust: TrustPolicy, tmp_path: Path
) -> None:
    """Two workers give the in-process rows, in order, with unchecked files in place."""
    folder, db, expected = pile
    export = tmp_path / "catalog_product.csv"
    export.write_text(
        "sku,base_image,additional_images\n"
        'A1,/missing-first.jpg,"/sub/cdn-boats.jpg,/missing.jpg"\n'
        "A2,/unrelated.jpg,/corrupt.jpg\n",
        "utf-8",
    )
    given = [export, folder, tmp_path / "nowhere"]
    with Inventory(db, read_only=True) as inv:
        inline = scan(given, trust=trust, inventory=inv, root=folder)
        seen: list[str] = []
        pooled = scan(
            given,
            trust=trust,
            inventory=inv,
            root=folder,
            workers=2,
            on_row=lambda r: seen.append(r.path),
        )
    assert [r.path for r in pooled.rows] == [r.path for r in inline.rows] == seen
    assert [r.outcome.index for r in pooled.rows] == list(range(len(pooled.rows)))
    assert Path(pooled.rows[0].path).name == "missing-first.jpg"
    assert Path(pooled.rows[-1].path).name == "nowhere"
    for a, b in zip(inline.rows, pooled.rows, strict=True):
        assert (a.kind, a.status, a.error, a.source, a.sku) == (
            b.kind,
            b.status,
            b.error,
            b.source,
            b.sku,
        )
    kinds = {Path(r.path).name: r.kind for r in pooled.rows}
    for name, kind in expected.items():
        assert kinds[name] is kind, name
    assert kinds["missing.jpg"] is kinds["nowhere"] is ScanKind.ERROR
    corrupt = next(r for r in pooled.rows if r.path.endswith("corrupt.jpg"))
    assert corrupt.outcome.error is not None and corrupt.outcome.error.kind == "ContainerError"


def test_cli_scan_writes_reports(
    pile: tuple[Path, Path, dict[str, ScanKind]],
    dev_keys: DevKeyPaths,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, db, expected = pile
    code = main(
        [
            "scan",
            str(folder),
            "--inventory",
            str(db),
            "--trust-anchors",
            str(dev_keys.ca_certificate),
            "--json",
            "--csv",
            str(tmp_path / "s.csv"),
            "--html",
            str(tmp_path / "s.html"),
        ]
    )
    assert code == 2  # the corrupt file could not be checked
    rows = json.loads(capsys.readouterr().out)
    kinds = {Path(r["path"]).name: r["kind"] for r in rows}
    for name, kind in expected.items():
        assert kinds[name] == kind.value
    assert (tmp_path / "s.csv").exists() and (tmp_path / "s.html").exists()
    # Only good files: exit 0, and a readable table.
    code = main(["scan", str(folder / "sub"), "--inventory", str(db)])
    out = capsys.readouterr().out
    assert code == 0
    assert "synthetic_duplicate" in out and "known_stripped" in out


def test_scan_html_colours_follow_the_verdict_and_csv_rows_name_the_product(
    pile: tuple[Path, Path, dict[str, ScanKind]], trust: TrustPolicy, tmp_path: Path
) -> None:
    """A tampered file is never shown in the trusted colour; CSV rows carry SKU and name."""
    folder, db, _ = pile
    signed = folder / "signed-rowing-boats-sunset.jpg"
    tampered = folder / "tampered.jpg"
    data = bytearray(signed.read_bytes())
    data[-200] ^= 0x55
    tampered.write_bytes(bytes(data))
    export = tmp_path / "catalog_product.csv"
    export.write_text(
        "sku,name,base_image,additional_images\n"
        'BOAT-1,"Rowing boat, red",/signed-rowing-boats-sunset.jpg,/tampered.jpg\n'
        "TRUCK-1,Fire truck,/sub/stripped.png,\n",
        "utf-8",
    )
    with Inventory(db, read_only=True) as inv:
        report = scan([export], trust=trust, inventory=inv, root=folder)
    by_name = {Path(r.path).name: r for r in report.rows}
    assert by_name["tampered.jpg"].verdict.status.is_failure
    assert (by_name["tampered.jpg"].sku, by_name["tampered.jpg"].product_name) == (
        "BOAT-1",
        "Rowing boat, red",
    )
    assert by_name["stripped.png"].sku == "TRUCK-1"
    page = report.to_html(thumbnails=False).decode("utf-8")
    assert "<th>SKU</th><th>product</th>" in page and "Rowing boat, red" in page
    with browser() as b:
        tab = b.new_page()
        tab.set_content(page)
        colour = {
            name: tab.locator(f"tr:has(code:text-is('{folder / name}')) td.k").evaluate(
                "td => getComputedStyle(td).color"
            )
            for name in ("signed-rowing-boats-sunset.jpg", "tampered.jpg")
        }
    assert colour["tampered.jpg"] != colour["signed-rowing-boats-sunset.jpg"]
    assert colour["signed-rowing-boats-sunset.jpg"] == "rgb(26, 107, 26)"  # trusted green
    assert colour["tampered.jpg"] == "rgb(176, 0, 32)"  # red
    rows = list(csv.DictReader(io.StringIO(report.to_csv().decode("utf-8"))))
    assert {r["sku"] for r in rows} == {"BOAT-1", "TRUCK-1"}
