"""The files a command works on: its path arguments, folders expanded, nothing skipped silently."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from provenance._core.containers import IMAGE_SUFFIXES, SUPPORTED, detect_format
from provenance._io.image_files import is_image_name
from provenance.cli._output import fail, warn
from provenance.errors import ProvenanceError


def expand(
    paths: Iterable[Path], *, output: Path | None = None
) -> tuple[list[tuple[Path, Path | None]], list[str]]:
    """Files in argument order, each with its path relative to its argument.

    Folders expand to their images, sorted; the relative path keeps files of the
    same name in different subfolders apart in an output folder. A path that
    does not exist comes back with ``None`` in place of its relative path.
    ``output`` (sign's ``--out``) is left out of a folder it lies in, with a
    warning: its signed copies are not sources (``sign shop/ --out
    shop/signed/`` run again signed the last run's copies into
    ``shop/signed/signed/``, one level deeper each time).

    Nothing is skipped silently (red-team issue 19): files that are not images
    by name (a file without an extension is looked at: its bytes decide),
    symlinked folders (not followed) and links to nothing are counted, and a
    folder with no image is named; each is one warning on stderr, also returned
    for ``--json``. Only when no argument gives anything to do is it a usage
    error (exit 2).
    """
    files: list[tuple[Path, Path | None]] = []
    notes: list[str] = []
    skipped: dict[str, list[Path]] = {}
    for path in paths:
        if path.is_dir():
            found: list[Path] = []
            inner = _inside(output, path)
            for p in sorted(path.rglob("*")):
                if inner is not None and p.relative_to(path).parts[: len(inner)] == inner:
                    if not p.is_dir():
                        skipped.setdefault(_OUTPUT_REASON.format(output), []).append(p)
                    continue
                reason = _skip_reason(p)
                if reason is None:
                    found.append(p)
                elif reason:
                    skipped.setdefault(reason, []).append(p)
            if not found:
                notes.append(f"{path}: folder holds no image ({SUPPORTED}); nothing done for it")
            files.extend((p, p.relative_to(path)) for p in found)
        elif path.exists() or path.is_symlink():
            files.append((path, Path(path.name)))
        else:
            files.append((path, None))
    for reason, names in skipped.items():
        shown = ", ".join(str(p) for p in names[:3]) + (", ..." if len(names) > 3 else "")
        notes.append(f"skipped {len(names)} {reason}: {shown}")
    for note in notes:
        warn(note)
    if not files:
        # An empty batch must not look like a clean one (exit 0, "[]").
        fail("no image to process in " + ", ".join(str(p) for p in paths))
    return files, notes


_OUTPUT_REASON = "file(s) in the output folder {} (signed copies are not signed again)"


def _inside(output: Path | None, folder: Path) -> tuple[str, ...] | None:
    """The parts of ``output`` below ``folder`` when it lies inside it (not the folder itself)."""
    if output is None:
        return None
    try:
        inner = output.resolve().relative_to(folder.resolve())
    except ValueError:
        return None
    return inner.parts or None


def _skip_reason(path: Path) -> str | None:
    """Why a folder walk leaves ``path`` out: None takes it, "" leaves it out unmentioned."""
    if path.is_symlink() and path.is_dir():
        return "symlinked folder(s), not followed"
    if path.is_dir():
        return ""  # walked into
    if path.name.endswith(".json") and path.is_file():
        stem = path.name.removesuffix(".json")
        if path.with_name(stem).is_file() or any(
            path.with_name(stem + suffix).exists() for suffix in IMAGE_SUFFIXES
        ):
            return ""  # a record sidecar
    if not path.is_file():
        return "link(s) to nothing or not regular file(s)"
    if is_image_name(path):
        return None
    if path.suffix == "" and _looks_like_image(path):
        return None
    return "file(s) that are not images by name or content"


def _looks_like_image(path: Path) -> bool:
    """Whether a file without an extension starts like a supported image."""
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
        detect_format(head)
    except (OSError, ProvenanceError):
        return False
    return True
