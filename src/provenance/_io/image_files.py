"""Which files under a folder are images, by name: the one folder walk.

An io module: it lists folders and stats files, and reads nothing. A file is an
image when its suffix is one of :data:`provenance._core.containers.IMAGE_SUFFIXES`
(any case); symlinked folders are not walked into (:meth:`pathlib.Path.rglob`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from provenance._core.containers import IMAGE_SUFFIXES

__all__ = ["holds_image", "image_files", "is_image_name", "iter_image_files"]


def is_image_name(name: str | os.PathLike[str]) -> bool:
    """Whether a file name ends in an image suffix we read."""
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def iter_image_files(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Every regular file with an image suffix under ``folder``, in walk order."""
    for path in Path(folder).rglob("*"):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            yield path


def image_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Every regular file with an image suffix under ``folder``, sorted."""
    return sorted(iter_image_files(folder))


def holds_image(folder: str | os.PathLike[str]) -> bool:
    """Whether any file under ``folder`` is an image by name (stops at the first)."""
    return next(iter_image_files(folder), None) is not None
