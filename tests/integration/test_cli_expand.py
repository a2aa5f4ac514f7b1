"""What a folder argument expands to, and what it leaves out (red-team issue 19).

Nothing is skipped silently: files that are not images, symlinked folders and
links to nothing are counted on stderr (and in ``verify --json`` warnings); an
extension-less image is found by its bytes; an empty folder among several
arguments is reported while the others are still processed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from provenance._io.keys import DevKeyPaths
from tests.conftest import SAMPLE_MEDIA, run_cli


def _export(tmp_path: Path) -> Path:
    folder = tmp_path / "dam-export"
    folder.mkdir()
    shutil.copyfile(SAMPLE_MEDIA / "forest-path.jpg", folder / "forest-path.jpg")
    shutil.copyfile(SAMPLE_MEDIA / "forest-path.jpg.json", folder / "forest-path.jpg.json")
    shutil.copyfile(SAMPLE_MEDIA / "kite-blue-sky.jpg", folder / "kite-no-extension")
    shutil.copyfile(SAMPLE_MEDIA / "kite-blue-sky.jpg.json", folder / "kite-no-extension.json")
    (folder / "notes.txt").write_text("not an image", "utf-8")
    (folder / "README").write_text("not an image either", "utf-8")
    shutil.copyfile(SAMPLE_MEDIA / "forest-path.jpg", folder / "photo.JPG.bak")
    (folder / "gone.jpg").symlink_to(tmp_path / "missing.jpg")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copyfile(SAMPLE_MEDIA / "lake-at-dusk.webp", elsewhere / "lake.webp")
    (folder / "linked").symlink_to(elsewhere, target_is_directory=True)
    return folder


def test_verify_says_what_it_skipped(tmp_path: Path) -> None:
    folder = _export(tmp_path)
    done = run_cli("verify", folder, "--json")
    rows = json.loads(done.stdout)
    assert sorted(Path(r["path"]).name for r in rows) == ["forest-path.jpg", "kite-no-extension"]
    assert done.returncode == 0, done.stderr
    assert "skipped 3 file(s) that are not images by name or content" in done.stderr
    assert "notes.txt" in done.stderr and "README" in done.stderr
    assert "skipped 1 symlinked folder(s), not followed" in done.stderr
    assert "skipped 1 link(s) to nothing" in done.stderr and "gone.jpg" in done.stderr
    assert "forest-path.jpg.json" not in done.stderr, "record sidecars are expected"
    warnings = rows[0]["warnings"]
    assert any(w.startswith("skipped 3 file(s)") for w in warnings), warnings


def test_sign_says_what_it_skipped(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    folder = _export(tmp_path)
    out = tmp_path / "signed"
    done = run_cli("sign", folder, "--out", out, "--keys", dev_keys.directory, "--json")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["forest-path.jpg", "kite-no-extension"]
    assert "skipped 3 file(s) that are not images by name or content" in done.stderr


def test_an_empty_folder_among_others_does_not_stop_the_batch(tmp_path: Path) -> None:
    full = tmp_path / "q"
    full.mkdir()
    shutil.copyfile(SAMPLE_MEDIA / "forest-path.jpg", full / "forest-path.jpg")
    empty = tmp_path / "q_s"
    empty.mkdir()
    done = run_cli("verify", full, empty, "--json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["verdict"] == "no_provenance"
    assert f"{empty}: folder holds no image" in done.stderr
    assert any(w.startswith(f"{empty}: folder holds no image") for w in row["warnings"])
    # Nothing at all to do is still a usage error.
    alone = run_cli("verify", empty, "--json")
    assert alone.returncode == 2
    assert alone.stdout == ""


def test_sign_creates_the_output_folder_only_when_something_is_written(
    tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    src = tmp_path / "broken.jpg"
    src.write_bytes(b"\xff\xd8 not really a jpeg")
    src.with_name("broken.jpg.json").write_text(
        (SAMPLE_MEDIA / "forest-path.jpg.json").read_text("utf-8"), "utf-8"
    )
    out = tmp_path / "never-made"
    done = run_cli("sign", src, "--out", out, "--keys", dev_keys.directory)
    assert done.returncode == 2
    assert not out.exists()


def test_an_output_folder_inside_the_source_is_not_signed_again(
    tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    # A nightly `sign shop/ --out shop/signed/` signed the last night's copies into
    # shop/signed/signed/, one level deeper every run.
    shop = tmp_path / "shop"
    shop.mkdir()
    shutil.copyfile(SAMPLE_MEDIA / "forest-path.jpg", shop / "forest-path.jpg")
    out = shop / "signed"
    record = SAMPLE_MEDIA / "forest-path.jpg.json"
    for run in (1, 2, 3):
        done = run_cli(
            "sign", shop, "--out", out, "--keys", dev_keys.directory, "--record", record, "--json"
        )
        assert done.returncode == 0, done.stderr
        (row,) = json.loads(done.stdout)
        assert row["status"] == ("ok" if run == 1 else "skipped")
        if run > 1:
            assert f"skipped 1 file(s) in the output folder {out}" in done.stderr
    assert sorted(p.relative_to(shop).as_posix() for p in shop.rglob("*") if p.is_file()) == [
        "forest-path.jpg",
        "signed/forest-path.jpg",
    ]
