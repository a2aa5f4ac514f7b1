"""Renditions of a signed original: make and sign a set, or mark one a pipeline made.

:func:`sign_renditions` decodes the original once; each rendition is resized
(aspect kept, never upscaled), encoded in the original's format and signed with
a ``parentOf`` ingredient and a parent reference to the original, so the chain
from every rendition back to the generated original can be followed in the files.

:func:`sign_rendition` is for a pipeline that makes renditions itself (a
Magento-style import): it takes the rendition's bytes, its decoded image and the
original's :class:`~provenance._core.types.SignResult`, and gives the rendition a
lineage to the original in one of three ways (:class:`RenditionMark`), without
decoding or hashing the original again.

:func:`sign_import` is the one call an import script makes per product image:
it signs the original, marks every rendition the pipeline made, and records
the original, its perceptual hashes and the renditions' lineage in one
inventory transaction.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import os
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

from provenance._core import containers
from provenance._core.containers import ImageFormat
from provenance._core.hashing import hash_ranges, sha256_hex
from provenance._core.record import ParentRef, ProvenanceRecord
from provenance._core.types import SignedFile, SignedImport, SignResult
from provenance._io.atomic import write_atomic
from provenance._io.keys import SigningKey, TrustPolicy
from provenance._io.reading import read_input
from provenance.errors import (
    CorruptFile,
    OutputError,
    ProvenanceError,
    RecordError,
    UnsupportedFormat,
)
from provenance.fingerprint import open_image
from provenance.inventory import Inventory
from provenance.sign import (
    SignOptions,
    asset_id_for,
    perceptual_features,
    perceptual_hash,
    record_perceptual,
    sign_bytes,
)
from provenance.sign._features import check_copy
from provenance.verify import verify_bytes

__all__ = ["RenditionMark", "sign_import", "sign_rendition", "sign_renditions", "unmarked_result"]

# DNG has no Pillow writer; HEIC/HEIF are written by pillow-heif's plugin.
_PIL_FORMAT = {
    ImageFormat.JPEG: "JPEG",
    ImageFormat.PNG: "PNG",
    ImageFormat.WEBP: "WEBP",
    ImageFormat.TIFF: "TIFF",
    ImageFormat.AVIF: "AVIF",
    ImageFormat.HEIC: "HEIF",
    ImageFormat.HEIF: "HEIF",
    ImageFormat.GIF: "GIF",
}
_LOSSY = frozenset(
    {ImageFormat.JPEG, ImageFormat.WEBP, ImageFormat.AVIF, ImageFormat.HEIC, ImageFormat.HEIF}
)


class RenditionMark(enum.Enum):
    """What a rendition carries to link it to its original (see docs/performance.md).

    Measured per rendition (``benchmarks/overhead.py``) on renditions of 75-700 px:
    ``C2PA`` costs the most time and about 3 KB; ``XMP`` costs less time but about
    as many bytes (the certificate chain is most of both); ``INVENTORY`` adds no
    byte and the least time, and ``verify`` with the inventory recognises the file.
    """

    C2PA = "c2pa"
    """Signed XMP, minimal EXIF and a C2PA manifest with a ``parentOf`` ingredient:
    the lineage can be read from the file alone, by any C2PA reader."""
    XMP = "xmp"
    """Signed XMP (statement with the parent reference, detached signature, chain)
    and minimal EXIF; no C2PA. Verifiable from the file alone by provenance."""
    INVENTORY = "inventory"
    """The bytes are left as they are; the inventory records the rendition's
    essence and file hash with its parent, so ``verify`` with the inventory
    recognises it (``known_stripped``, with the original's record)."""


# Over 60 lines only by its docstring (the public contract); the body is 25 lines.
def sign_rendition(
    data: bytes,
    parent: SignResult,
    *,
    key: SigningKey,
    image: Image.Image | None = None,
    mark: RenditionMark = RenditionMark.INVENTORY,
    name: str | None = None,
    parent_data: bytes | None = None,
    options: SignOptions | None = None,
    now: datetime | None = None,
    path: str | os.PathLike[str] | None = None,
) -> tuple[bytes, SignResult]:
    """Give a rendition a pipeline made a lineage to its signed original.

    Nothing about the original is decoded, parsed or hashed again: its asset id
    and hashes come from ``parent``. The rendition's record is the original's,
    with the original as its parent.

    Args:
        data: The rendition as encoded by the pipeline (any ``containers`` format).
        parent: What signing the original returned.
        key: The signing key (used by ``C2PA`` and ``XMP``).
        image: The rendition decoded (the pipeline's own image); sets
            ``perceptual_hash`` in the result without a decode.
        mark: What the rendition carries (default: an inventory record only).
        name: A name for messages and the manifest title (default: the name
            of ``path``, else ``"rendition"``).
        parent_data: The signed original's bytes; ``C2PA`` needs them for the
            ``parentOf`` ingredient.
        options: Embedding options (``C2PA`` and ``XMP``).
        now: The signing time.
        path: Where the pipeline writes the rendition: the result's ``path``,
            which the inventory records.

    Returns:
        The bytes to write (``data`` itself for ``INVENTORY``) and the result;
        record it with :meth:`Inventory.record_signing
        <provenance.inventory.Inventory.record_signing>` (or ``record_many``).

    Raises:
        ValueError: ``C2PA`` without ``parent_data``.
        UnsupportedFormat: Not a format ``containers`` reads.
        CorruptFile: The rendition cannot be parsed.
        SignatureError: Signing failed.
    """
    record, ref = _rendition_record(parent)
    where = None if path is None else os.fspath(path)
    if mark is RenditionMark.INVENTORY:
        perceptual = perceptual_hash(image) if image is not None else None
        return data, _inventory_mark(data, record, path=where, perceptual=perceptual)
    opts = options or SignOptions()
    if mark is RenditionMark.C2PA:
        if parent_data is None:
            raise ValueError("RenditionMark.C2PA needs parent_data for the parentOf ingredient")
        opts = dataclasses.replace(opts, c2pa=True)
    else:
        opts = dataclasses.replace(opts, c2pa=False)
    return sign_bytes(
        data,
        record=record,
        key=key,
        name=name if name is not None else (Path(where).name if where else "rendition"),
        parent=parent_data if mark is RenditionMark.C2PA else None,
        parent_name=Path(parent.path).name if parent.path else None,
        options=opts,
        now=now,
        image=image,
        parent_ref=ref,
        path=where,
    )


# Over 60 lines only by its docstring (the public contract); the body is 29 lines.
def sign_import(
    data: bytes,
    path: str | os.PathLike[str],
    *,
    record: ProvenanceRecord,
    key: SigningKey,
    inventory: Inventory | None = None,
    image: Image.Image | None = None,
    renditions: Iterable[tuple[bytes, str | os.PathLike[str]]] = (),
    mark: RenditionMark = RenditionMark.INVENTORY,
    source_path: str | os.PathLike[str] | None = None,
    options: SignOptions | None = None,
    now: datetime | None = None,
    durable: bool | None = None,
) -> SignedImport:
    """Sign one imported product image and record it with its renditions: one call.

    For an import script (a Magento-style pipeline) that has the original's
    bytes, its decoded image and the renditions it made from that image. The
    original is signed (signed XMP, minimal EXIF, C2PA); each rendition gets a
    lineage to it (``mark``, default :attr:`RenditionMark.INVENTORY`: its bytes
    stay as they are); and the original, its perceptual reference hashes (from
    ``image``, with no second decode) and every rendition are recorded in
    **one** inventory transaction: all of them, or none. Nothing is written to
    disk: the caller writes :attr:`SignedImport.files` (see docs/performance.md).

    Args:
        data: The original as uploaded (JPEG, PNG or WebP).
        path: Where the signed original is written; recorded in the inventory.
        record: What the generator reported.
        key: The signing key.
        inventory: Where to record everything; None signs without recording.
        image: ``data`` decoded, as the pipeline holds it, or better the
            largest copy it resized from it before framing (a rendition's pixels
            before they were encoded: at least 512 px on the long side, or the
            original's size if smaller, with the original's aspect): the
            perceptual reference hashes and keypoints ``verify`` finds altered
            and partial copies by. From a 700 px copy they cost about 2-2.6 ms
            less CPU per import than from a 4-12 MP original, nothing measurable
            at 1 MP (docs/performance.md), and find the same copies.
        renditions: ``(bytes, path)`` of each rendition the pipeline made.
        mark: What each rendition carries (see :class:`RenditionMark`).
        source_path: The uploaded file, if the inventory should keep it.
        options: Embedding options.
        now: The signing time (default: now, UTC), for the original, the
            renditions and the audit entries alike.
        durable: Fsync the inventory commit (True) or not (False); None follows
            the ``durable`` the inventory was opened with. An import whose own
            file writes are not fsynced gains nothing from an fsynced record
            of them; say which at the call site.

    Returns:
        The signed original and the renditions, with paths and results.

    Raises:
        ValueError: ``image`` is larger than the original, a copy smaller than
            512 px, or of another aspect (framed, cropped); nothing is recorded.
        UnsupportedFormat: The original or a rendition is not a JPEG, PNG or WebP.
        CorruptFile: The original or a rendition cannot be parsed (the error
            names its path); nothing is recorded.
        PersonalDataError: Free text holds personal data and the policy refuses it.
        SignatureError: Signing failed.
        InventoryError: The inventory could not be written; nothing is recorded.
    """
    moment = now or datetime.now(timezone.utc)
    where = os.fspath(path)
    try:
        signed, original = sign_bytes(
            data, record=record, key=key, options=options, now=moment, path=where
        )
    except ProvenanceError as exc:
        raise exc.with_path(where) from exc.__cause__
    if image is not None:
        check_copy(image, original.width, original.height)
    made = _mark_renditions(
        renditions, original, signed, key=key, mark=mark, options=options, now=moment
    )
    if inventory is not None:
        # The original, its perceptual hashes and every rendition: one transaction.
        reference, local = (
            (None, None) if image is None else perceptual_features(None, image, where)
        )
        inventory.record_many(
            [original, *(f.result for f in made)],
            signer=key.subject,
            now=moment,
            source_paths=[
                None if source_path is None else os.fspath(source_path),
                *(None for _ in made),
            ],
            perceptual=[reference, *(None for _ in made)],
            keypoints=[local, *(None for _ in made)],
            durable=durable,
            entries=False,  # not read: saves building 19 asset entries
        )
    return SignedImport(SignedFile(where, signed, original, changed=True), tuple(made))


def _mark_renditions(
    renditions: Iterable[tuple[bytes, str | os.PathLike[str]]],
    original: SignResult,
    signed: bytes,
    *,
    key: SigningKey,
    mark: RenditionMark,
    options: SignOptions | None,
    now: datetime,
) -> list[SignedFile]:
    """Each rendition of :func:`sign_import` with its lineage to the signed original."""
    made: list[SignedFile] = []
    child, _ = _rendition_record(original)
    for encoded, target in renditions:
        out = os.fspath(target)
        try:
            if mark is RenditionMark.INVENTORY:
                # One record object for every rendition: built, checked and
                # serialised once (the inventory caches its JSON by identity).
                marked, result = encoded, _inventory_mark(encoded, child, path=out)
            else:
                marked, result = sign_rendition(
                    encoded,
                    original,
                    key=key,
                    mark=mark,
                    parent_data=signed,
                    options=options,
                    now=now,
                    path=out,
                )
        except ProvenanceError as exc:
            raise exc.with_path(out) from exc.__cause__
        made.append(SignedFile(out, marked, result, changed=marked is not encoded))
    return made


def _rendition_record(parent: SignResult) -> tuple[ProvenanceRecord, ParentRef]:
    """A rendition's record (the original's, with the original as its one parent)."""
    ref = ParentRef(
        sha256_hex=parent.sha256_hex,
        essence_sha256_hex=parent.essence_sha256_hex,
        asset_id=parent.asset_id,
    )
    return parent.record.replace(parents=(ref,)), ref


def _inventory_mark(
    data: bytes, record: ProvenanceRecord, *, path: str | None, perceptual: str | None = None
) -> SignResult:
    """The result of :attr:`RenditionMark.INVENTORY`: a parse and two hashes of the rendition."""
    essence = hash_ranges(data, containers.essence_ranges(data))
    return unmarked_result(data, essence, record=record, path=path, perceptual=perceptual)


def unmarked_result(
    data: bytes,
    essence: str,
    *,
    record: ProvenanceRecord,
    path: str | None = None,
    perceptual: str | None = None,
) -> SignResult:
    """What the inventory records for a rendition left as it is (:attr:`RenditionMark.INVENTORY`).

    The seam for integrations that find renditions made by someone else (Magento's
    image cache) and record them without touching their bytes.

    Args:
        data: The rendition's bytes, as they are.
        essence: Its essence hash (``hash_ranges`` over its essence ranges).
        record: The rendition's record: the original's, with the original as its
            one parent.
        path: Where the rendition is.
        perceptual: Its perceptual hash, when known.

    Returns:
        A :class:`~provenance._core.types.SignResult` with nothing added
        (``bytes_added=0``, no manifest), for :meth:`Inventory.record_signing`.

    Raises:
        RecordError: If ``record`` names no parent.
    """
    if not record.parents:
        raise RecordError("a rendition's record must name its original as a parent", path=path)
    file_sha = sha256_hex(data)
    return SignResult(
        path=path,
        asset_id=asset_id_for(essence),
        sha256_hex=file_sha,
        essence_sha256_hex=essence,
        input_sha256_hex=file_sha,
        bytes_added=0,
        active_manifest=None,
        record=record,
        parent_sha256_hex=record.parents[0].sha256_hex,
        perceptual_hash=perceptual,
    )


# Over 60 lines only by its docstring (the public contract); the body is 34 lines.
def sign_renditions(
    original: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    sizes: Sequence[tuple[int, int]],
    key: SigningKey,
    record: ProvenanceRecord | None = None,
    quality: int = 85,
    options: SignOptions | None = None,
    inventory: Inventory | None = None,
    now: datetime | None = None,
) -> list[SignResult]:
    """Resize ``original`` to each box in ``sizes`` and sign every rendition.

    Args:
        original: The (signed) original.
        out_dir: Folder for ``<stem>-<W>x<H>.<ext>`` files; created if missing.
        sizes: Bounding boxes (width, height); aspect is kept, never upscaled.
        key: The signing key.
        record: The record to carry; default: the one signed into the original.
        quality: JPEG/WebP quality of the renditions.
        options: Embedding options.
        inventory: Record each rendition (with its parent) once it is written.
        now: The signing time.

    Returns:
        One result per size, in order, each with its parent's SHA-256.

    Raises:
        RecordError: No record given and the original carries none.
        UnsupportedFormat: The original is a DNG (Pillow cannot write one).
        ImageTooLarge: The original has more pixels than ``options.max_pixels``.
        CorruptFile: The original cannot be decoded.
        OutputError: A rendition cannot be written.
    """
    source = Path(original)
    data = read_input(source)
    fmt, record, image = _original_pixels(data, source, record=record, options=options)
    moment = now or datetime.now(timezone.utc)
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder: {exc.strerror}", path=folder) from None
    results: list[SignResult] = []
    for width, height in sizes:
        encoded, copy = _resized(image, fmt, width, height, quality=quality)
        name = f"{source.stem}-{copy.width}x{copy.height}.{fmt.extension}"
        signed, result = sign_bytes(
            encoded,
            record=record,
            key=key,
            name=name,
            parent=data,
            parent_name=source.name,
            options=options,
            now=moment,
        )
        target = folder / name
        try:
            write_atomic(target, signed)
        except OSError as exc:
            raise OutputError(f"cannot write rendition: {exc.strerror}", path=target) from None
        result = dataclasses.replace(result, path=str(target))
        if inventory is not None:
            inventory.record_signing(result, signer=key.subject, now=moment)
            record_perceptual(inventory, result.asset_id, signed, image=copy, name=target)
        results.append(result)
    return results


def _original_pixels(
    data: bytes, source: Path, *, record: ProvenanceRecord | None, options: SignOptions | None
) -> tuple[ImageFormat, ProvenanceRecord, Image.Image]:
    """The original's format, the record its renditions carry, and its decoded pixels.

    Without ``record``, the one signed into the original, less its own parents.
    """
    try:
        fmt = containers.detect_format(data)
        if record is None:
            found = verify_bytes(data, name=str(source), trust=TrustPolicy.no_anchors()).record
            if found is None:
                raise RecordError("original carries no provenance record; pass record=")
            # The original's own lineage is not the rendition's: parents are added anew.
            record = found.replace(parents=())
        if fmt not in _PIL_FORMAT:
            raise UnsupportedFormat(f"renditions are not made from {fmt.name} originals")
        # The pixel limit is checked from the header before decoding (a 100 MP
        # RGBA original is 400 MB, twice over with the copy): open_image refuses it.
        with open_image(data, max_pixels=(options or SignOptions()).max_pixels) as opened:
            opened.load()
            image = opened.copy()
    except ProvenanceError as exc:
        raise exc.with_path(source) from exc.__cause__
    except (
        OSError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise CorruptFile(f"cannot decode original: {exc}", path=source) from None
    return fmt, record, image


def _resized(
    image: Image.Image, fmt: ImageFormat, width: int, height: int, *, quality: int
) -> tuple[bytes, Image.Image]:
    """``image`` fitted into ``width`` x ``height`` (aspect kept, never upscaled), encoded."""
    if width <= 0 or height <= 0:
        raise ValueError(f"rendition size must be positive, got {width}x{height}")
    copy = image.copy()
    copy.thumbnail((width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    save_args: dict[str, object] = {}
    if fmt in _LOSSY:
        save_args["quality"] = quality
    if fmt is ImageFormat.JPEG and copy.mode not in ("RGB", "L", "CMYK"):
        copy = copy.convert("RGB")
    copy.save(buffer, _PIL_FORMAT[fmt], **save_args)
    return buffer.getvalue(), copy
