"""Result types shared by the verbs: verdicts, evidence and signing results.

Frozen, slotted dataclasses and enums only; no I/O. A :class:`Verdict` is a
report, deliberately without ``__bool__``: callers compare :attr:`Verdict.status`
or call :meth:`Verdict.require_trusted`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from provenance._core.lineage import LineageStep
from provenance._core.record import ProvenanceRecord
from provenance.errors import VerificationError

__all__ = [
    "CopyLocation",
    "Evidence",
    "EvidenceSource",
    "Identity",
    "IdentityState",
    "SignResult",
    "SignedFile",
    "SignedImport",
    "Status",
    "Verdict",
]


class Status(enum.Enum):
    """What verification concluded about one asset (see docs/verdicts.md)."""

    TRUSTED = "trusted"
    """Valid signature, intact asset, signer chains to a configured anchor."""
    VALID_UNTRUSTED = "valid_untrusted"
    """Valid signature and intact asset, but the signer is not anchored."""
    TAMPERED = "tampered"
    """Image data or signed metadata changed after a valid signature."""
    INVALID_SIGNATURE = "invalid_signature"
    """The claim signature or the signing credential is invalid."""
    INVALID_MANIFEST = "invalid_manifest"
    """A manifest is present but malformed: it proves nothing, nothing says it was altered."""
    INVALID_IDENTITY = "invalid_identity"
    """Manifest and asset intact, but a CAWG identity assertion's signature does not hold."""
    UNSUPPORTED = "unsupported"
    """A manifest this verifier cannot check (unknown algorithm, pre-release or newer claim)."""
    REMOTE_MANIFEST = "remote_manifest"
    """Provenance is declared in a remote manifest, never fetched (offline verification)."""
    NO_PROVENANCE = "no_provenance"
    """No manifest and no signed XMP."""
    KNOWN_STRIPPED = "known_stripped"
    """Metadata removed or changed, image data intact: equal to a signed or inventoried essence."""
    SYNTHETIC_DUPLICATE = "synthetic_duplicate"
    """No provenance, but a perceptual match of a known synthetic asset."""
    ERROR = "error"
    """The file could not be checked at all (batch rows and reports only)."""

    @property
    def is_failure(self) -> bool:
        """Whether this status means something is wrong with signed provenance (exit 1).

        True for tampered, invalid_signature, invalid_manifest and
        invalid_identity. A status that could not be checked (remote_manifest,
        unsupported) or that carries no claim (no_provenance, known_stripped,
        synthetic_duplicate) is not a failure; ``verify --require`` is how a
        caller demands more (see :func:`provenance._core.verdicts.meets`).
        """
        return self in _FAILURES


_FAILURES = frozenset(
    {Status.TAMPERED, Status.INVALID_SIGNATURE, Status.INVALID_MANIFEST, Status.INVALID_IDENTITY}
)


class IdentityState(enum.Enum):
    """Whether a CAWG identity assertion's signature holds."""

    TRUSTED = "trusted"
    """The signature holds and the credential chains to a configured identity anchor."""
    VALID = "valid"
    """The signature holds; the credential is not anchored."""
    INVALID = "invalid"
    """The signature does not verify, or the assertion is malformed."""


@dataclass(frozen=True, slots=True)
class Identity:
    """A CAWG identity assertion: who vouches for the asset, and whether it holds.

    Attributes:
        label: The assertion label (``cawg.identity``, ``cawg.identity__1`` ...).
        actor: The named actor: the credential's subject (``CN=..., O=...``).
        sig_type: The credential type, e.g. ``cawg.x509.cose``.
        state: Whether the identity signature holds.
        codes: c2pa's codes for this assertion (success, informational and failure).
    """

    label: str
    actor: str | None
    sig_type: str | None
    state: IdentityState
    codes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "label": self.label,
            "actor": self.actor,
            "sig_type": self.sig_type,
            "state": self.state.value,
            "codes": list(self.codes),
        }


class EvidenceSource(enum.Enum):
    """Where a piece of evidence came from."""

    C2PA = "c2pa"
    XMP = "xmp"
    INVENTORY = "inventory"
    IDENTITY = "identity"
    CONTAINER = "container"
    """The file's structure itself: a defect the parser tolerated, or truncation."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one source said about the asset.

    Attributes:
        source: The source (the C2PA manifest, the signed XMP, the inventory).
        status: The status this source alone supports.
        detail: One human-readable sentence.
        codes: Raw codes from that source (c2pa failure codes, our own codes).
    """

    source: EvidenceSource
    status: Status
    detail: str
    codes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "source": self.source.value,
            "status": self.status.value,
            "detail": self.detail,
            "codes": list(self.codes),
        }


@dataclass(frozen=True, slots=True)
class CopyLocation:
    """Where a known asset was found inside a query image (partial-copy search).

    Set on a ``synthetic_duplicate`` verdict found by local features
    (:mod:`provenance._core.keypoints`): the asset is a part of the query (a
    screenshot, a banner, a collage), rotated, or cropped off-centre.

    Attributes:
        box: ``(left, top, right, bottom)`` in the query's pixels: the asset's
            outline mapped into the query, clipped to it.
        inliers: Keypoint matches consistent with the transform (RANSAC inliers).
        matches: Tentative keypoint matches.
        transform: Row-major 2x3 similarity from the asset's stored keypoint
            frame to the query's pixels (a reflection when ``mirrored``:
            ``(-a, b, tx, b, a, ty)``, the asset flipped left-right, then
            rotated, scaled and shifted); for a copy located by a perspective
            map (``homography`` set), that map's first-order (affine) form at
            the asset's centre.
        scale: Size of the copy relative to the stored keypoint frame (at the
            asset's centre, for a perspective map).
        rotation_degrees: Counter-clockwise rotation of the copy (after the
            flip, when ``mirrored``; at the asset's centre, for a perspective map).
        scheme: The local-feature scheme (e.g. ``orb256-v1``).
        homography: Row-major 3x3 perspective map from the asset's stored
            keypoint frame to the query's pixels (last cell 1), when the copy
            is stretched to another aspect, keystoned or photographed at an
            angle and no similarity fits it; None otherwise.
        hidden: The share of the copy's coarse cells left out of the colour
            and layout checks as covered by something laid over it (a
            sticker, a badge), 0-0.3; 0 when every cell was compared.
        mirrored: The copy is the asset's mirror image (found by searching the
            query's mirror; a vertical flip is a mirror turned by 180 degrees).
    """

    box: tuple[int, int, int, int]
    inliers: int
    matches: int
    transform: tuple[float, float, float, float, float, float]
    scale: float
    rotation_degrees: float
    scheme: str
    homography: tuple[float, ...] | None = None
    hidden: float = 0.0
    mirrored: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (``homography`` null for a similarity)."""
        return {
            "box": list(self.box),
            "inliers": self.inliers,
            "matches": self.matches,
            "transform": list(self.transform),
            "scale": round(self.scale, 4),
            "rotation_degrees": round(self.rotation_degrees, 2),
            "scheme": self.scheme,
            "homography": None if self.homography is None else list(self.homography),
            "hidden": round(self.hidden, 3),
            "mirrored": self.mirrored,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The typed outcome of verifying one asset.

    Attributes:
        path: The file (or the name given with bytes).
        status: The conclusion.
        failure_codes: Every failure code seen (c2pa's and ours), sorted.
        active_manifest: The label of the active C2PA manifest, if any.
        record: The provenance record the asset carries, if readable.
        signer: The signing certificate's subject, if known.
        asset_id: Our asset id, if the asset carries one.
        sha256_hex: SHA-256 of the file bytes.
        essence_sha256_hex: Essence hash (coded image data only).
        evidence: What each source said.
        error: For :attr:`Status.ERROR` rows, the error message.
        lineage: This file's generations read from its own manifest store,
            newest first (a rendition, its parent, ... the original).
        perceptual_distance: For :attr:`Status.SYNTHETIC_DUPLICATE`, the
            Hamming distance in bits to the matched asset's nearest stored hash.
        identities: The CAWG identity assertions of the active manifest.
        remote_url: For :attr:`Status.REMOTE_MANIFEST`, where the manifest is
            declared to be (never fetched by default).
        location: For a :attr:`Status.SYNTHETIC_DUPLICATE` found by the
            partial-copy search, where in this image the asset was found.
    """

    path: str
    status: Status
    failure_codes: tuple[str, ...] = ()
    active_manifest: str | None = None
    record: ProvenanceRecord | None = None
    signer: str | None = None
    asset_id: str | None = None
    sha256_hex: str | None = None
    essence_sha256_hex: str | None = None
    evidence: tuple[Evidence, ...] = ()
    error: str | None = None
    lineage: tuple[LineageStep, ...] = ()
    perceptual_distance: int | None = None
    identities: tuple[Identity, ...] = ()
    remote_url: str | None = None
    location: CopyLocation | None = None

    __bool__ = None  # a report is not a yes/no answer: compare `status`

    @property
    def is_synthetic(self) -> bool | None:
        """Whether the record declares AI generation; None without a record."""
        return None if self.record is None else self.record.is_synthetic

    def require_trusted(self) -> Verdict:
        """Return self if trusted, else raise.

        Raises:
            VerificationError: The status is anything but :attr:`Status.TRUSTED`.
        """
        if self.status is not Status.TRUSTED:
            codes = f" ({', '.join(self.failure_codes)})" if self.failure_codes else ""
            raise VerificationError(f"not trusted: {self.status.value}{codes}", path=self.path)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form used by ``verify --json`` and reports."""
        out: dict[str, Any] = {
            "path": self.path,
            "verdict": self.status.value,
            "failure_codes": list(self.failure_codes),
            "active_manifest": self.active_manifest,
            "record": None if self.record is None else self.record.to_dict(),
            "signer": self.signer,
            "asset_id": self.asset_id,
            "sha256": self.sha256_hex,
            "essence_sha256": self.essence_sha256_hex,
            "evidence": [e.to_dict() for e in self.evidence],
            "error": self.error,
            "lineage": [step.to_dict() for step in self.lineage],
            "perceptual_distance": self.perceptual_distance,
            "identities": [i.to_dict() for i in self.identities],
            "remote_url": self.remote_url,
        }
        if self.location is not None:
            out["location"] = self.location.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class SignResult:
    """What :func:`provenance.sign` did for one asset.

    Attributes:
        path: The signed output file (None when signing bytes in memory).
        asset_id: Stable id of the asset (derived from its essence hash).
        sha256_hex: SHA-256 of the signed output.
        essence_sha256_hex: Essence hash; equal for input and output.
        input_sha256_hex: SHA-256 of the input as given.
        bytes_added: Output size minus input size.
        active_manifest: Label of the C2PA manifest written.
        record: The record as embedded (after the personal-data policy).
        parent_sha256_hex: SHA-256 of the parent, for renditions.
        perceptual_hash: 64-bit DCT perceptual hash (16 hex digits) of the
            decoded image, when the caller passed it (shared decode).
        warnings: What signing had to leave out, one line each: an existing
            XMP or EXIF block it could not read and dropped, perceptual hashes
            it could not compute. Empty when everything went in.
        width: The image's width in pixels, from its header (None when the file
            was recorded without reading it: a rendition left unmarked).
        height: The image's height in pixels, likewise.
    """

    path: str | None
    asset_id: str
    sha256_hex: str
    essence_sha256_hex: str
    input_sha256_hex: str
    bytes_added: int
    active_manifest: str | None
    record: ProvenanceRecord
    parent_sha256_hex: str | None = None
    perceptual_hash: str | None = None
    warnings: tuple[str, ...] = ()
    # Derived from the bytes sha256_hex names, so not part of equality: a batch row
    # found already signed (not read again) reports the same result without them.
    width: int | None = field(default=None, compare=False)
    height: int | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form used by ``sign --json``."""
        out: dict[str, Any] = {
            "path": self.path,
            "asset_id": self.asset_id,
            "sha256": self.sha256_hex,
            "essence_sha256": self.essence_sha256_hex,
            "input_sha256": self.input_sha256_hex,
            "bytes_added": self.bytes_added,
            "active_manifest": self.active_manifest,
            "record": self.record.to_dict(),
            "parent_sha256": self.parent_sha256_hex,
        }
        if self.width is not None and self.height is not None:
            out["width"], out["height"] = self.width, self.height
        if self.perceptual_hash is not None:
            out["perceptual_hash"] = self.perceptual_hash
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


@dataclass(frozen=True, slots=True)
class SignedFile:
    """One file of an import: where it goes, its bytes, and what was recorded.

    Attributes:
        path: Where the import writes it (as given to :func:`provenance.sign_import`).
        data: The bytes to write there.
        result: What was signed and recorded for it.
        changed: Whether ``data`` differs from the bytes the pipeline made (the
            signed original always; a rendition only when its mark embeds
            something). An unchanged rendition the pipeline has already written
            needs no second write.
    """

    path: str
    data: bytes = field(repr=False)
    result: SignResult
    changed: bool


@dataclass(frozen=True, slots=True)
class SignedImport:
    """What :func:`provenance.sign_import` signed and recorded for one product image.

    Attributes:
        original: The signed original.
        renditions: The renditions, in the order given, each with its lineage
            to the original.
    """

    original: SignedFile
    renditions: tuple[SignedFile, ...] = ()

    @property
    def files(self) -> tuple[SignedFile, ...]:
        """The original, then every rendition: what the import writes."""
        return (self.original, *self.renditions)
