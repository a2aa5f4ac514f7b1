"""One image a CSV cell names: where it is, its record, its provenance, and signing it.

Owns the path rules of Magento's import (relative to the images directory, never
a URL, never out of it), where an image's record comes from (the record column,
its sidecar, the default record), and preparing each distinct file once: signed
into the output images folder, or copied unchanged. Does file I/O through the
verbs; never prints, never imports c2pa.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from provenance._core import containers
from provenance._core.record import ProvenanceRecord
from provenance._core.types import SignResult, Status, Verdict
from provenance._io.atomic import write_atomic
from provenance._io.keys import SigningKey, TrustPolicy
from provenance._io.reading import load_record, read_input, sidecar_path
from provenance.batch import BatchRow, ItemError, RowStatus
from provenance.errors import ProvenanceError, RecordError
from provenance.integrations.magento._csv import CsvFormat
from provenance.integrations.magento._model import (
    ImageAction,
    ImageOutcome,
    ImportOptions,
    RowProblem,
)
from provenance.inventory import Inventory
from provenance.sign import sign
from provenance.verify import verify_bytes

__all__ = ["ImageJob", "Prepared", "existing_provenance", "image_outcome", "magento_file_path"]

_URL = re.compile(r"\bhttps?://|^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_WINDOWS_ABSOLUTE = re.compile(r"^(?:[a-z]:[\\/]|\\\\)", re.IGNORECASE)


class _RowFailure(Exception):  # noqa: N818 - internal control flow, never escapes
    def __init__(self, problem: RowProblem, message: str) -> None:
        self.problem = problem
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ImageJob:
    """What every image of one import shares: where images are read and written, and how."""

    images_root: Path
    images_real: Path  # images_root resolved, to tell symlinks out
    out_images: Path
    opts: ImportOptions
    key: SigningKey | None
    inventory: Inventory | None
    now: datetime


@dataclass(frozen=True, slots=True)
class Prepared:
    """One distinct image file, prepared once however often it is referenced."""

    action: ImageAction | None
    output: str | None = None
    asset_id: str | None = None
    synthetic: bool = False
    problem: RowProblem | None = None
    error: ItemError | None = None
    record: ProvenanceRecord | None = None
    result: SignResult | None = None  # when this import signed the file

    @classmethod
    def failed(cls, problem: RowProblem, error: str | ProvenanceError) -> Prepared:
        """A file that could not be prepared; the error names it."""
        if isinstance(error, ProvenanceError):
            # The message as the import always reported it (our errors begin with the path).
            return cls(None, problem=problem, error=ItemError(type(error).__name__, str(error)))
        return cls(None, problem=problem, error=ItemError(ProvenanceError.__name__, error))

    def row(self, index: int, name: str) -> BatchRow[SignResult]:
        """The file's outcome as the batch row model, for the reference at ``index``."""
        status = RowStatus.ERROR if self.problem is not None else RowStatus.OK
        return BatchRow(index, name, status, self.result, self.error)


def magento_file_path(value: str) -> str:
    """The path Magento gives an imported image under ``catalog/product``.

    Magento keeps the file name (lower-cased, characters outside
    ``[a-z0-9_.-]`` replaced by ``_``) under two folders named after its first
    two characters (a dot becomes ``_``): ``Kite Blue.jpg`` -> ``/k/i/kite_blue.jpg``.
    This is the key the disclosure JSON uses, what ``$image->getFile()`` returns.
    """
    name = re.sub(r"[^a-z0-9_.\-]", "_", PurePosixPath(value.replace("\\", "/")).name.lower())
    folders = "".join("/" + ("_" if c == "." else c) for c in name[:2])
    return f"{folders}/{name}"


def image_outcome(
    value: str,
    column: str,
    *,
    index: int,
    record_cell: str,
    job: ImageJob,
    prepared: dict[tuple[Path, str], Prepared],
) -> ImageOutcome:
    """The outcome of one image reference; the file is prepared on its first reference.

    ``prepared`` maps (file, record cell) to what was done with it, so a file
    named by many rows and columns is signed once. ``index`` is the reference's
    position among its row's images.
    """
    try:
        real, relative = _resolve(value, job.images_root, job.images_real, job.opts.csv_format)
    except _RowFailure as failure:
        error = ItemError(ProvenanceError.__name__, failure.message)
        row: BatchRow[SignResult] = BatchRow(index, value, RowStatus.ERROR, None, error)
        return ImageOutcome(column, value, row, problem=failure.problem)
    done = prepared.get((real, record_cell))
    if done is None:
        done = _prepare(real, job.out_images / relative, record_cell=record_cell, job=job)
        prepared[(real, record_cell)] = done
    return ImageOutcome(
        column,
        value,
        done.row(index, str(real)),
        action=done.action,
        source=str(real),
        output=done.output,
        asset_id=done.asset_id,
        synthetic=done.synthetic,
        problem=done.problem,
    )


def _resolve(value: str, root: Path, root_real: Path, fmt: CsvFormat) -> tuple[Path, Path]:
    """The real file a cell value names, and its path relative to the images directory.

    Raises:
        _RowFailure: A URL, an escape, an absolute path, or a missing file.
    """
    parts = _relative_parts(value)
    candidate = root.joinpath(*parts)
    real = candidate.resolve()
    if not real.is_relative_to(root_real):
        raise _RowFailure(
            RowProblem.PATH_TRAVERSAL,
            f"{value}: resolves outside the images directory (symlink to {real})",
        )
    if not real.is_file():
        if value.startswith("/") and Path(value).is_file():
            raise _RowFailure(
                RowProblem.ABSOLUTE_PATH,
                f"{value}: looks like an absolute path; Magento reads it relative to the "
                f"images directory, where {candidate} does not exist",
            )
        hint = ""
        other = [s for s in (",", ";", "|") if s != fmt.multiple_value_separator and s in value]
        if other:
            hint = f" (is the multiple value separator {other[0]!r}?)"
        raise _RowFailure(RowProblem.MISSING_FILE, f"{candidate}: image file not found{hint}")
    return real, Path(*parts)


def _relative_parts(value: str) -> list[str]:
    """The parts of a cell value read as Magento does, relative to the images directory.

    Raises:
        _RowFailure: A URL, a NUL, an absolute or backslashed path, ``..``, or no path.
    """
    if _URL.search(value):
        raise _RowFailure(
            RowProblem.REMOTE_IMAGE,
            f"{value}: remote image not fetched (signing is offline); download it into the "
            "images directory and name it by its relative path",
        )
    if "\x00" in value:
        raise _RowFailure(RowProblem.INVALID_PATH, f"{value!r}: NUL character in image path")
    if _WINDOWS_ABSOLUTE.match(value) or value.startswith(("~", "//")):
        raise _RowFailure(
            RowProblem.ABSOLUTE_PATH,
            f"{value}: absolute path refused; name images relative to the images directory",
        )
    if "\\" in value:
        raise _RowFailure(
            RowProblem.INVALID_PATH, f"{value}: backslash in image path; Magento paths use '/'"
        )
    # Magento joins "<images dir>/" and the value: one leading "/" stays inside.
    parts = [p for p in value.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _RowFailure(
            RowProblem.PATH_TRAVERSAL, f"{value}: path escapes the images directory ('..')"
        )
    if not parts:
        raise _RowFailure(RowProblem.INVALID_PATH, f"{value!r}: not a file path")
    return parts


def _prepare(real: Path, target: Path, *, record_cell: str, job: ImageJob) -> Prepared:
    """Sign or copy one distinct image file (or, in a dry run, check that it could be)."""
    try:
        data = read_input(real)
    except ProvenanceError as exc:
        return Prepared.failed(RowProblem.MISSING_FILE, exc)
    try:
        record = _find_record(real, record_cell, job)
    except ProvenanceError as exc:
        return Prepared.failed(RowProblem.RECORD_ERROR, exc)
    except _RowFailure as failure:
        return Prepared.failed(RowProblem.RECORD_ERROR, failure.message)
    # Already signed upstream? Then it is copied as it is: signing again would nest.
    existing = existing_provenance(data, real)
    if existing is not None and existing.status.is_failure:
        return Prepared.failed(
            RowProblem.TAMPERED_IMAGE,
            f"{real}: carries provenance that does not verify ({existing.status.value})",
        )
    output = None if job.opts.dry_run else str(target)
    if existing is not None:
        copied = _copy(data, target, job.opts.dry_run)
        if copied is not None:
            return copied
        return Prepared(
            ImageAction.ALREADY_SIGNED,
            output=output,
            asset_id=existing.asset_id,
            synthetic=bool(existing.is_synthetic),
            record=existing.record,
        )
    if record is None:
        copied = _copy(data, target, job.opts.dry_run)
        return copied or Prepared(ImageAction.COPIED, output=output)
    return _sign(data, real, target, record=record, job=job)


def _sign(
    data: bytes, real: Path, target: Path, *, record: ProvenanceRecord, job: ImageJob
) -> Prepared:
    """Sign an image that has a record into ``target`` (in a dry run: check its format)."""
    try:
        containers.detect_format(data)
    except ProvenanceError as exc:
        return Prepared.failed(RowProblem.UNSUPPORTED_FORMAT, exc.with_path(real))
    if job.opts.dry_run:
        return Prepared(ImageAction.SIGNED, synthetic=record.is_synthetic, record=record)
    assert job.key is not None  # noqa: S101 - import_csv refuses a missing key unless dry_run
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        result = sign(
            real,
            target,
            record=record,
            key=job.key,
            options=job.opts.sign_options,
            inventory=job.inventory,
            now=job.now,
        )
    except OSError as exc:
        return Prepared.failed(RowProblem.SIGN_ERROR, f"{target}: {exc.strerror}")
    except ProvenanceError as exc:
        return Prepared.failed(RowProblem.SIGN_ERROR, exc)
    return Prepared(
        ImageAction.SIGNED,
        output=str(target),
        asset_id=result.asset_id,
        synthetic=record.is_synthetic,
        record=record,
        result=result,
    )


def _copy(data: bytes, target: Path, dry_run: bool) -> Prepared | None:
    """Copy unchanged bytes to the output folder; a failure as a prepared error."""
    if dry_run:
        return None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data)
    except OSError as exc:
        return Prepared.failed(RowProblem.SIGN_ERROR, f"{target}: {exc.strerror}")
    return None


def existing_provenance(data: bytes, path: Path) -> Verdict | None:
    """The verdict of an image that carries provenance of its own, else None."""
    try:
        info = containers.inspect(data)
    except ProvenanceError:
        return None
    if info.xmp is None and not info.has_c2pa:
        return None
    try:
        verdict = verify_bytes(data, name=str(path), trust=TrustPolicy.no_anchors())
    except ProvenanceError:
        return None
    return None if verdict.status is Status.NO_PROVENANCE else verdict


def _find_record(image: Path, cell: str, job: ImageJob) -> ProvenanceRecord | None:
    """The record column, then the sidecar, then the default record; None without one.

    Raises:
        ProvenanceError: A record that exists but cannot be read or is invalid.
        _RowFailure: A record path in the column escapes the images directory.
    """
    text = cell.strip()
    if text:
        if text.startswith("{"):
            try:
                return ProvenanceRecord.from_json(text)
            except RecordError as exc:
                raise RecordError(f"record column: {exc.message}", path=image) from None
        record_file, _ = _resolve(text, job.images_root, job.images_real, job.opts.csv_format)
        return load_record(record_file)
    sidecar = sidecar_path(image)
    if sidecar is not None:
        return load_record(sidecar)
    record = job.opts.default_record
    if record is not None and job.opts.default_created_at_from_file:
        mtime = datetime.fromtimestamp(image.stat().st_mtime, tz=timezone.utc)
        record = record.replace(created_at=mtime.replace(microsecond=0))
    return record
