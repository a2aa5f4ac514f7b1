"""The ``sign`` verb: embed signed XMP, minimal EXIF and a C2PA manifest.

Steps for one asset (DESIGN.md decisions 1-5, 10, 13):

1. Read the input once; detect the format from its bytes; locate metadata blocks.
2. Hash the input (file SHA-256) and its essence (coded image data only).
3. Screen the record's free text with the personal-data policy.
4. Build the signed statement (record + hashes + asset id) and sign it with the
   key: the detached signature goes into the XMP packet.
5. Insert XMP (merged with any XMP already there) and minimal, sanitised EXIF
   as bytes: no decode, no re-encode.
6. Sign with C2PA last, so its hard binding covers the XMP and EXIF.
7. Write the output atomically; the input is never modified.

:func:`_sign_bytes` runs steps 1-6 in this order. What goes into the file is built
in ``_embed`` (the record as embedded, the statement, XMP, EXIF, the manifest);
what an original stores to be found again, in ``_features``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

from provenance._core import containers
from provenance._core.hashing import hash_ranges, sha256_and_ranges, sha256_hex
from provenance._core.record import ParentRef, ProvenanceRecord, canonical_json
from provenance._core.sign_options import SignOptions
from provenance._core.types import SignResult
from provenance._io.atomic import write_atomic
from provenance._io.c2pa import sign_c2pa
from provenance._io.keys import SigningKey
from provenance._io.reading import read_input
from provenance.errors import OutputError, ProvenanceError
from provenance.inventory import Inventory
from provenance.sign._embed import (
    c2pa_manifest,
    embedded_record,
    exif_block,
    parent_ingredient,
    parent_ref_of,
    signed_statement,
    xmp_packet,
)
from provenance.sign._features import (
    check_copy,
    check_decodable_size,
    findable_features,
    perceptual_features,
    perceptual_hash,
    record_perceptual,
)

__all__ = [
    "SignOptions",
    "asset_id_for",
    "findable_features",
    "perceptual_features",
    "perceptual_hash",
    "record_perceptual",
    "sign",
    "sign_bytes",
]

_ASSET_NAMESPACE = uuid.UUID("6f1c2c4e-5d0a-4a57-9a39-5b1d8a4f2e10")


_DEFAULT_OPTIONS = SignOptions()


# Over 60 lines only by its docstring (the public contract); the body is 42 lines.
def sign(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    record: ProvenanceRecord,
    key: SigningKey,
    parent: str | os.PathLike[str] | None = None,
    options: SignOptions | None = None,
    inventory: Inventory | None = None,
    now: datetime | None = None,
    image: Image.Image | None = None,
) -> SignResult:
    """Sign the image at ``src`` and write the signed copy to ``dst`` atomically.

    Args:
        src: A JPEG, PNG, WebP, TIFF, DNG, HEIC, HEIF, AVIF or GIF file; never modified.
        dst: Where the signed copy goes (a file path; its folder must exist).
            May equal ``src`` to sign in place (still atomic).
        record: What the generator reported.
        key: The signing key and certificate chain.
        parent: The original this file is a rendition of, for lineage.
        options: Embedding options.
        inventory: Record the asset, the file and an audit entry here, once the
            output is on disk (a file that was not written is never recorded),
            and the perceptual hashes that let ``verify`` recognise stripped,
            resized or cropped copies (``synthetic_duplicate``).
        now: The signing time (default: now, UTC).
        image: The pixels of ``src`` when the caller has decoded them already,
            or a copy resized from them (at least 512 px on the long side, the
            aspect kept; see :func:`sign_bytes`); only used for the perceptual
            hashes (otherwise a JPEG is decoded again in draft mode, at 1/2 to
            1/8 scale).

    Returns:
        What was signed, with hashes and the asset id.

    Raises:
        UnsupportedFormat: Not a format of ``containers.SUPPORTED``.
        CorruptFile: The input or the parent cannot be parsed.
        PersonalDataError: Free text holds personal data and the policy refuses it.
        SignatureError: Signing failed.
        OutputError: ``dst`` cannot be written; nothing is left behind.
        ImageTooLarge: With an inventory, the image has more pixels than the
            decoding limit (``options.max_pixels``); nothing is written.
        InventoryError: The output was written but could not be recorded.
    """
    moment = now or datetime.now(timezone.utc)
    data = read_input(src)
    if inventory is not None and image is None:
        # The perceptual hashes will decode the pixels: refuse a bomb before writing.
        check_decodable_size(data, src, (options or SignOptions()).max_pixels)
    parent_data = read_input(parent) if parent is not None else None
    parent_name = Path(parent).name if parent is not None else None
    try:
        signed, result = _sign_bytes(
            data,
            record=record,
            key=key,
            name=Path(src).name,
            parent=parent_data,
            parent_name=parent_name,
            options=options,
            now=moment,
            image=None,
            parent_ref=None,
            path=None,
        )
    except ProvenanceError as exc:
        raise exc.with_path(src) from exc.__cause__
    if image is not None:
        check_copy(image, result.width, result.height)
    out = Path(dst)
    try:
        write_atomic(out, signed)
    except OSError as exc:
        raise OutputError(f"cannot write signed file: {exc.strerror}", path=out) from None
    result = dataclasses.replace(result, path=str(out))
    if inventory is not None:
        # The file, its asset, the audit entry and the perceptual hashes: one transaction.
        limit = (options or SignOptions()).max_pixels
        reference, local = perceptual_features(data, image, src, max_pixels=limit)
        inventory.record_many(
            [result],
            signer=key.subject,
            now=moment,
            source_paths=[str(src)],
            perceptual=[reference],
            keypoints=[local],
            entries=False,  # the result says what was signed; the entry is not read back
        )
    return result


# Over 60 lines only by its docstring (the public contract); the body is 29 lines.
def sign_bytes(
    data: bytes,
    *,
    record: ProvenanceRecord,
    key: SigningKey,
    name: str | None = None,
    parent: bytes | None = None,
    parent_name: str | None = None,
    options: SignOptions | None = None,
    now: datetime | None = None,
    image: Image.Image | None = None,
    parent_ref: ParentRef | None = None,
    path: str | os.PathLike[str] | None = None,
    inventory: Inventory | None = None,
    source_path: str | os.PathLike[str] | None = None,
    durable: bool | None = None,
) -> tuple[bytes, SignResult]:
    """Sign an image held in memory; see :func:`sign`.

    For a pipeline that already holds the decoded image (an import that makes
    renditions from it), pass it as ``image``: the perceptual hashes are computed
    from it, with no second decode. The encoded bytes are what is signed. The
    caller writes the signed bytes to ``path``; to sign an original and record
    its renditions in one call, see :func:`provenance.sign_import`.

    Args:
        data: The encoded image (any format of ``containers.SUPPORTED``).
        record: What the generator reported.
        key: The signing key.
        name: A name for messages and the manifest title (default: the name
            of ``path``, else ``"image"``).
        parent: The parent's bytes: adds a C2PA ``parentOf`` ingredient and,
            unless ``parent_ref`` is given, the parent reference.
        parent_name: The parent's name, for the ingredient.
        options: Embedding options.
        now: The signing time (default: now, UTC).
        image: ``data`` decoded (any mode), or a copy the pipeline resized
            from it (a rendition's pixels before they were encoded: at least
            512 px on the long side, or the original's size if smaller, with the
            original's aspect; cheaper: a 4-12 MP original's hashes and
            keypoints cost about 2-2.6 ms less CPU from a 700 px copy); sets
            ``perceptual_hash`` in the result and, with ``inventory``, the
            perceptual reference hashes and keypoints ``verify`` finds altered
            and partial copies by.
        parent_ref: The parent reference when it is already known (e.g. from the
            parent's :class:`SignResult`): the parent is not hashed again.
        path: Where the caller writes the signed bytes: the result's ``path``,
            and what the inventory records.
        inventory: Record the file, its asset, an audit entry and (with
            ``image``) the perceptual hashes here, in one transaction.
        source_path: The input file, if the inventory should keep it.
        durable: Fsync the inventory commit or not; None follows the
            inventory's own ``durable`` (see :class:`~provenance.Inventory`).

    Returns:
        The signed bytes and the result.

    Raises:
        ValueError: ``image`` is larger than the original, a copy smaller than
            512 px, or of another aspect (framed, cropped).
        UnsupportedFormat: Not a JPEG, PNG or WebP.
        CorruptFile: The input or the parent cannot be parsed.
        PersonalDataError: Free text holds personal data and the policy refuses it.
        SignatureError: Signing failed.
        InventoryError: The result could not be recorded.
    """
    moment = now or datetime.now(timezone.utc)
    signed, result = _sign_bytes(
        data,
        record=record,
        key=key,
        name=name if name is not None else (Path(path).name if path is not None else "image"),
        parent=parent,
        parent_name=parent_name,
        options=options,
        now=moment,
        image=image,
        parent_ref=parent_ref,
        path=None if path is None else os.fspath(path),
    )
    if inventory is not None:
        where = name or result.asset_id
        reference, local = (
            (None, None) if image is None else perceptual_features(None, image, where)
        )
        inventory.record_many(
            [result],
            signer=key.subject,
            now=moment,
            source_paths=[None if source_path is None else os.fspath(source_path)],
            perceptual=[reference],
            keypoints=[local],
            durable=durable,
            entries=False,  # the result says what was signed; the entry is not read back
        )
    return signed, result


# Long: the six signing steps read in order here, each a call; the signature is keyword-heavy.
def _sign_bytes(
    data: bytes,
    *,
    record: ProvenanceRecord,
    key: SigningKey,
    name: str,
    parent: bytes | None,
    parent_name: str | None,
    options: SignOptions | None,
    now: datetime | None,
    image: Image.Image | None,
    parent_ref: ParentRef | None,
    path: str | None,
) -> tuple[bytes, SignResult]:
    """:func:`sign_bytes` without the inventory: the signing steps of the module docstring."""
    opts = options or _DEFAULT_OPTIONS
    moment = now or datetime.now(timezone.utc)
    # 1. Format and metadata blocks, from the bytes: the only parse of the file.
    #    An existing XMP or EXIF block that cannot be read is dropped (noted).
    base, info, dropped = containers.prepare_for_signing(data)
    if image is not None:
        check_copy(image, info.width, info.height)
    # 2. Hashes of the input: one pass over the bytes when nothing was dropped.
    input_sha, essence = _input_hashes(data, base, info)
    asset_id = asset_id_for(essence)
    # 3. Lineage and the personal-data policy.
    if parent_ref is None and parent is not None:
        parent_ref = parent_ref_of(parent)
    embedded = embedded_record(record, opts.pii_policy, parent_ref)
    # 4. The signed statement, and its detached signature.
    statement = signed_statement(embedded, asset_id, essence, input_sha, now=moment)
    statement_bytes = canonical_json(statement)
    signature = key.sign(statement_bytes)
    # 5. XMP and EXIF as bytes, before C2PA: one splice from the layout found in step 1
    #    (no second parse, one copy).
    packet = xmp_packet(
        statement, statement_bytes, signature, key, embedded, parent_ref, existing=info.xmp
    )
    tiff = exif_block(info, embedded, write=opts.write_exif, description=opts.disclosure_text)
    staged = containers.stage(base, info, xmp=packet, exif=tiff)
    # 6. C2PA last: its hard binding covers everything above.
    mime = info.format.mime
    derivation = opts.derivation if parent is not None else None
    manifest = c2pa_manifest(embedded, statement, name=name, mime=mime, derivation=derivation)
    ingredient = parent_ingredient(parent, parent_name, parent_ref)
    if opts.c2pa:
        # Where the store goes (JPEG, PNG: ``staged.slot``), c2pa signs our hash of the
        # staged file instead of reading and rewriting it (data-hashed signing), and the
        # file is copied once, with the store in it (issue 20).
        signed, label = sign_c2pa(staged, mime, manifest, key, ingredient=ingredient)
    else:
        signed, label = staged.join(), None
    result = SignResult(
        path=path,
        asset_id=asset_id,
        sha256_hex=sha256_hex(signed),
        essence_sha256_hex=essence,
        input_sha256_hex=input_sha,
        bytes_added=len(signed) - len(data),
        active_manifest=label,
        record=embedded,
        parent_sha256_hex=parent_ref.sha256_hex if parent_ref else None,
        perceptual_hash=perceptual_hash(image) if image is not None else None,
        warnings=dropped,
        width=info.width,
        height=info.height,
    )
    return signed, result


def _input_hashes(data: bytes, base: bytes, info: containers.ContainerInfo) -> tuple[str, str]:
    """The input's file SHA-256 and the essence hash of ``base`` (``data`` less dropped blocks)."""
    if base is data:
        return sha256_and_ranges(data, info.essence_ranges)
    return sha256_hex(data), hash_ranges(base, info.essence_ranges)


def asset_id_for(essence_sha256_hex: str) -> str:
    """The asset id :func:`sign` gives an image with this essence hash.

    Stable: the same coded image data always gets the same id, so a copy whose
    metadata was stripped, or a file recorded without being signed, can be
    matched to its asset.
    """
    # str(uuid.uuid5(_ASSET_NAMESPACE, essence_sha256_hex)) (RFC 4122 4.3: SHA-1 of the
    # namespace and the name, version 5, variant 10), written out: 3 us instead of 11,
    # and an import names 19 assets.
    name = _ASSET_NAMESPACE.bytes + essence_sha256_hex.encode("utf-8")
    digest = bytearray(hashlib.sha1(name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
