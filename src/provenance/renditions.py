"""Make and sign a set of renditions of a signed original in one call.

The original is decoded once; each rendition is resized (aspect kept, never
upscaled), encoded in the original's format and signed with a ``parentOf``
ingredient and a parent reference to the original, so the chain from every
rendition back to the generated original can be followed in the files.
"""

from __future__ import annotations

import dataclasses
import io
import os
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

from provenance import containers
from provenance.atomic import write_atomic
from provenance.containers import ImageFormat
from provenance.errors import CorruptFile, OutputError, ProvenanceError, RecordError
from provenance.inventory import Inventory
from provenance.keys import SigningKey, TrustPolicy
from provenance.reading import read_input
from provenance.record import ProvenanceRecord
from provenance.sign import SignOptions, record_perceptual, sign_bytes
from provenance.types import SignResult
from provenance.verify import verify_bytes

__all__ = ["sign_renditions"]

_PIL_FORMAT = {ImageFormat.JPEG: "JPEG", ImageFormat.PNG: "PNG", ImageFormat.WEBP: "WEBP"}


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
        CorruptFile: The original cannot be decoded.
        OutputError: A rendition cannot be written.
    """
    source = Path(original)
    data = read_input(source)
    try:
        fmt = containers.detect_format(data)
        if record is None:
            found = verify_bytes(data, name=str(source), trust=TrustPolicy.no_anchors()).record
            if found is None:
                raise RecordError("original carries no provenance record; pass record=")
            # The original's own lineage is not the rendition's: parents are added anew.
            record = found.replace(parents=())
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that, then decodes
        # (a 100 MP RGBA original is 400 MB, twice over with the copy): refuse it.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
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
    moment = now or datetime.now(timezone.utc)
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder: {exc.strerror}", path=folder) from None
    results: list[SignResult] = []
    for width, height in sizes:
        if width <= 0 or height <= 0:
            raise ValueError(f"rendition size must be positive, got {width}x{height}")
        copy = image.copy()
        copy.thumbnail((width, height), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        save_args: dict[str, object] = {}
        if fmt is not ImageFormat.PNG:
            save_args["quality"] = quality
        if fmt is ImageFormat.JPEG and copy.mode not in ("RGB", "L", "CMYK"):
            copy = copy.convert("RGB")
        copy.save(buffer, _PIL_FORMAT[fmt], **save_args)
        name = f"{source.stem}-{copy.width}x{copy.height}.{fmt.extension}"
        signed, result = sign_bytes(
            buffer.getvalue(),
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
