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
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image

from provenance._core import containers, exif, keypoints, phash, xmp
from provenance._core.hashing import hash_ranges, sha256_and_ranges, sha256_hex
from provenance._core.pii import PiiPolicy, apply_policy
from provenance._core.record import (
    FREE_TEXT_PARAMETERS,
    ParentRef,
    ProvenanceRecord,
    canonical_json,
    format_time,
)
from provenance._core.statement import RECORD_ASSERTION_LABEL, STATEMENT_VERSION, parse_statement
from provenance._core.types import SignResult
from provenance._io.atomic import write_atomic
from provenance._io.c2pa import C2paIngredient, sign_c2pa
from provenance._io.keys import SigningKey, chain_base64
from provenance._io.reading import read_input
from provenance._version import __version__
from provenance.errors import ImageTooLarge, OutputError, ProvenanceError
from provenance.fingerprint import MAX_PIXELS_ENV, decode_for_hashing, open_image
from provenance.inventory import Inventory

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

_log = logging.getLogger(__name__)

_ASSET_NAMESPACE = uuid.UUID("6f1c2c4e-5d0a-4a57-9a39-5b1d8a4f2e10")


@dataclass(frozen=True, slots=True)
class SignOptions:
    """How :func:`sign` embeds provenance; the defaults are the safe ones.

    Attributes:
        pii_policy: What to do with personal data found in free text (default:
            refuse to embed it).
        write_exif: Write minimal EXIF (Software, ImageDescription, DateTime);
            when false, EXIF already in the file is still stripped of personal
            fields (GPS, serial numbers, owner).
        disclosure_text: The ImageDescription disclosure written into EXIF.
        derivation: The C2PA action recorded for a rendition of a parent.
        c2pa: Embed a C2PA manifest. False leaves the signed XMP (statement,
            detached signature, certificate chain) as the only embedded
            provenance: the compact form for renditions (see
            :func:`provenance.renditions.sign_rendition`).
        max_pixels: The decoding limit for the perceptual hashes stored with an
            inventory (default: :func:`provenance.fingerprint.max_pixels`). An
            image above it is refused before anything is written.
    """

    pii_policy: PiiPolicy = field(default_factory=PiiPolicy)
    write_exif: bool = True
    disclosure_text: str = "AI-generated image"
    derivation: str = "c2pa.resized"
    c2pa: bool = True
    max_pixels: int | None = None


_DEFAULT_OPTIONS = SignOptions()


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
        image: The pixels of ``src`` when the caller has decoded them already;
            only used for the perceptual hashes (otherwise a JPEG is decoded
            again in draft mode, at 1/2 to 1/8 scale).

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
        _check_decodable_size(data, src, (options or SignOptions()).max_pixels)
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
        )
    return result


def _check_decodable_size(data: bytes, src: str | os.PathLike[str], limit: int | None) -> None:
    """Raise :class:`ImageTooLarge` (naming ``src``) above the pixel limit, from the header."""
    try:
        open_image(data, max_pixels=limit).close()
    except ImageTooLarge as exc:
        raise exc.with_path(src) from None
    except ProvenanceError:
        pass  # undecodable pixels: the signing stands, record_perceptual says so


def record_perceptual(
    inventory: Inventory,
    asset_id: str,
    data: bytes | None = None,
    *,
    image: Image.Image | None = None,
    name: str | os.PathLike[str] | None = None,
    max_pixels: int | None = None,
    durable: bool | None = None,
) -> bool:
    """Store the perceptual reference hashes of a recorded asset in the inventory.

    The asset's local features (:func:`provenance._core.keypoints.reference_features`,
    for the partial-copy search) are stored from the same pixels.

    Pixels the image cannot be decoded to (the signed container was fine, the
    coded data is not) leave the asset without perceptual hashes and log a
    warning: the signing itself stands.

    Args:
        inventory: Where the asset is recorded.
        asset_id: The asset.
        data: The image bytes; only needed (and only decoded) when ``image`` is None.
        image: The decoded pixels, if the caller has them.
        name: The file, for the warning.
        max_pixels: The decoding limit (default:
            :func:`provenance.fingerprint.max_pixels`); above it, no hashes.
        durable: Fsync the commit or not; None follows the inventory.

    Returns:
        Whether hashes are stored for the asset now.

    Raises:
        ValueError: Neither ``data`` nor ``image`` given.
        InventoryError: The database cannot be written.
    """
    reference, local = perceptual_features(data, image, name or asset_id, max_pixels=max_pixels)
    if reference is None:
        return False
    inventory.add_perceptual(asset_id, reference, durable=durable)
    if local is not None:
        inventory.add_keypoints(asset_id, local, scheme=keypoints.SCHEME)
    return True


def perceptual_features(
    data: bytes | None,
    image: Image.Image | None,
    name: str | os.PathLike[str],
    *,
    max_pixels: int | None = None,
) -> tuple[phash.ReferenceHashes | None, keypoints.LocalFeatures | None]:
    """What an original stores to be found again, with a logged warning for what is missing.

    :func:`findable_features`, for library callers: the reason a part is missing
    is logged (naming ``name``) instead of returned; the signing stands.

    Raises:
        ValueError: Neither ``data`` nor ``image`` given.
    """
    reference, local, missing = findable_features(data, image, max_pixels=max_pixels)
    if missing is not None:
        _log.warning("%s: %s", name, missing)
    return reference, local


def findable_features(
    data: bytes | None,
    image: Image.Image | None,
    *,
    max_pixels: int | None = None,
) -> tuple[phash.ReferenceHashes | None, keypoints.LocalFeatures | None, str | None]:
    """Perceptual hashes and local features of an original, and why either is missing.

    Both from the same pixels (``image``, or ``data`` decoded once): the reference
    hashes (:func:`provenance._core.phash.reference_hashes`) that ``verify`` recognises
    resized or re-encoded copies by, and the keypoints of the partial-copy search
    (:func:`provenance._core.keypoints.reference_features`, issue 21). Pixels that cannot
    be decoded (above the pixel limit, or damaged coded data) leave the asset
    without them: the third value says so, for a batch row's warnings (a copy of
    such an asset can never be found, and the user must know).

    Raises:
        ValueError: Neither ``data`` nor ``image`` given.
    """
    if image is None and data is None:
        raise ValueError("record_perceptual needs the image's bytes or its decoded pixels")
    lost = "no perceptual hash stored, so copies of it cannot be found"
    try:
        pixels = (
            image
            if image is not None
            else decode_for_hashing(data or b"", max_pixels=max_pixels)[0]
        )
        reference = phash.reference_hashes(pixels)
    except ImageTooLarge as exc:
        hint = f"raise the limit with {MAX_PIXELS_ENV}=N and sign it again"
        return None, None, f"{lost}: {exc.message} ({hint})"
    except ProvenanceError as exc:
        return None, None, f"{lost}: {exc.message}"
    try:
        return reference, keypoints.reference_features(pixels), None
    except ProvenanceError as exc:
        return reference, None, f"no local features stored (partial copies): {exc.message}"


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
        image: ``data`` decoded (any mode); sets ``perceptual_hash`` in the
            result and, with ``inventory``, the perceptual reference hashes
            ``verify`` matches altered copies by.
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
        )
    return signed, result


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
    fmt = info.format
    # 2. Hashes of the input: one pass over the bytes when nothing was dropped.
    if base is data:
        input_sha, essence = sha256_and_ranges(data, info.essence_ranges)
    else:
        input_sha, essence = sha256_hex(data), hash_ranges(base, info.essence_ranges)
    asset_id = asset_id_for(essence)
    # 3. Lineage and the personal-data policy.
    if parent_ref is None and parent is not None:
        parent_ref = _parent_ref(parent)
    embedded = _screen(record, opts.pii_policy)
    if parent_ref is not None and parent_ref not in embedded.parents:
        embedded = embedded.replace(parents=(*embedded.parents, parent_ref))
    # 4. The signed statement.
    statement: dict[str, Any] = {
        "v": STATEMENT_VERSION,
        "asset_id": asset_id,
        "essence_sha256": essence,
        "input_sha256": input_sha,
        "record": embedded.to_dict(),
        "signed_at": format_time(moment),
    }
    statement_bytes = canonical_json(statement)
    signature = key.sign(statement_bytes)
    # 5. XMP and EXIF as bytes, before C2PA.
    packet = xmp.build_packet(
        xmp.XmpProvenance(
            digital_source_type=embedded.digital_source_type.uri,
            essence_sha256=essence,
            statement=statement_bytes.decode("utf-8"),
            signature=base64.b64encode(signature).decode("ascii"),
            signature_algorithm=key.algorithm.name,
            certificate_chain=chain_base64(tuple(key.embedded_certificates)),
            ai_system=embedded.model,
            ai_system_version=embedded.model_version,
            ai_prompt=embedded.prompt,
            document_id=f"xmp.did:{asset_id}",
            instance_id=f"xmp.iid:{uuid.uuid4()}",
            derived_from_document_id=(
                f"xmp.did:{parent_ref.asset_id}"
                if parent_ref is not None and parent_ref.asset_id
                else None
            ),
            asset_id=asset_id,
            parent_sha256=parent_ref.sha256_hex if parent_ref else None,
            parent_essence_sha256=parent_ref.essence_sha256_hex if parent_ref else None,
        ),
        existing=info.xmp,
    )
    tiff: bytes | None = None
    if not fmt.writes_exif:
        pass  # GIF has no EXIF: the XMP discloses
    elif opts.write_exif:
        tiff = exif.merge_minimal_exif(
            info.exif,
            software=f"{embedded.generator} ({embedded.model} {embedded.model_version})",
            description=opts.disclosure_text,
            when=embedded.created_at,
        )
    elif info.exif is not None:
        # Even without our EXIF, personal fields of incoming EXIF go (decision 13).
        tiff = exif.sanitize_exif(info.exif).tiff
    # One splice from the layout found in step 1: no second parse, one copy.
    staged = containers.embed(base, info, xmp=packet, exif=tiff)
    # 6. C2PA last: its hard binding covers everything above.
    manifest = _manifest(
        embedded,
        statement,
        name=name,
        mime=fmt.mime,
        derived=parent is not None,
        derivation=opts.derivation,
    )
    ingredient = None
    if parent is not None:
        parent_fmt = containers.detect_format(parent)
        ingredient = C2paIngredient(parent, parent_fmt.mime, parent_name or "parent")
    if opts.c2pa:
        signed, label = sign_c2pa(staged, fmt.mime, manifest, key, ingredient=ingredient)
    else:
        signed, label = staged, None
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
    )
    return signed, result


def asset_id_for(essence_sha256_hex: str) -> str:
    """The asset id :func:`sign` gives an image with this essence hash.

    Stable: the same coded image data always gets the same id, so a copy whose
    metadata was stripped, or a file recorded without being signed, can be
    matched to its asset.
    """
    return str(uuid.uuid5(_ASSET_NAMESPACE, essence_sha256_hex))


def _manifest(
    record: ProvenanceRecord,
    statement: Mapping[str, Any],
    *,
    name: str,
    mime: str,
    derived: bool,
    derivation: str,
) -> dict[str, Any]:
    agent = {"name": record.model, "version": record.model_version}
    if derived:
        # A rendition: opened from its parent ingredient, then transformed. The
        # parent's own manifest (carried in the ingredient) holds c2pa.created.
        actions: list[dict[str, Any]] = [
            {"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}},
            {"action": derivation, "softwareAgent": {"name": "provenance", "version": __version__}},
        ]
    else:
        # c2pa-rs refuses c2pa.created without a digitalSourceType (decision 2).
        actions = [
            {
                "action": "c2pa.created",
                "digitalSourceType": record.digital_source_type.uri,
                "softwareAgent": agent,
                "when": statement["record"]["created_at"],
            }
        ]
    return {
        "claim_generator_info": [{"name": "provenance", "version": __version__}],
        "title": name,
        "format": mime,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": actions}},
            {"label": RECORD_ASSERTION_LABEL, "data": dict(statement)},
        ],
    }


def perceptual_hash(image: Image.Image) -> str:
    """The 64-bit ``imagehash.phash``-compatible hash of a decoded image, as 16 hex digits.

    Computed by :func:`provenance._core.phash.compat_hashes` from the image as given, so
    a pipeline's decoded image is hashed without a second decode (it differs from
    ``imagehash.phash`` by a fraction of a bit on average; compare hashes by
    Hamming distance). The inventory matches copies with the stronger default
    scheme (:func:`provenance._core.phash.reference_hashes`); this one is for callers
    that keep imagehash-style hashes of their own.

    Args:
        image: A decoded image, any mode.

    Returns:
        The hash as lowercase hexadecimal.
    """
    return f"{int(phash.compat_hashes([image])[0]):016x}"


def _screen(record: ProvenanceRecord, policy: PiiPolicy) -> ProvenanceRecord:
    """Apply the personal-data policy to every free-text field (decision 13)."""
    changes: dict[str, Any] = {}
    if record.prompt is not None:
        prompt = apply_policy("prompt", record.prompt, policy)
        if prompt != record.prompt:
            changes["prompt"] = prompt
    params = dict(record.parameters)
    for name, value in params.items():
        if isinstance(value, str) and name in FREE_TEXT_PARAMETERS:
            params[name] = apply_policy(f"parameters.{name}", value, policy)
    if params != dict(record.parameters):
        changes["parameters"] = params
    return record.replace(**changes) if changes else record


def _parent_ref(parent: bytes) -> ParentRef:
    info = containers.inspect(parent)
    asset_id = None
    if info.xmp is not None:
        try:
            prov = xmp.parse_packet(info.xmp)
        except ProvenanceError:
            prov = None
        if prov is not None:
            statement = parse_statement(prov.statement)
            asset_id = statement.asset_id if statement is not None else prov.asset_id
    return ParentRef(
        sha256_hex=sha256_hex(parent),
        essence_sha256_hex=hash_ranges(parent, info.essence_ranges),
        asset_id=asset_id,
    )
