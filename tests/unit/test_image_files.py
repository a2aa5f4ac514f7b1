"""The one folder walk: image files by suffix, any case, regular files only, sorted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provenance._io.image_files import holds_image, image_files, is_image_name


def test_image_files_walks_folders_and_skips_the_rest(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    for name in ("b/z.JPG", "a.png", "b/notes.txt", "c.webp.json", "d.heic"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.jpg").mkdir()  # a folder named like an image is not one
    assert image_files(tmp_path) == [
        tmp_path / "a.png",
        tmp_path / "b" / "z.JPG",
        tmp_path / "d.heic",
    ]
    assert holds_image(tmp_path) and holds_image(tmp_path / "b")
    assert is_image_name("X.JpEg") and not is_image_name("x.json")


def test_an_empty_or_imageless_folder_holds_no_image(tmp_path: Path) -> None:
    assert image_files(tmp_path) == [] and not holds_image(tmp_path)
    (tmp_path / "readme.md").write_text("hi", encoding="utf-8")
    assert not holds_image(tmp_path)


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_symlinked_folders_are_not_walked_and_dangling_links_are_not_files(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"x")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "gone.jpg").symlink_to(tmp_path / "missing.jpg")
    assert image_files(root) == []
