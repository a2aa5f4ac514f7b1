"""provenance: signed, verifiable provenance for AI-generated product images.

Sign an image with a C2PA manifest and a signed XMP packet, and verify any image
against explicit trust anchors, offline::

    from provenance import ProvenanceRecord, SigningKey, TrustPolicy, sign, verify

    key = SigningKey.from_pem_files("keys/chain.pem", "keys/signer.key")
    record = ProvenanceRecord.from_json(open("shoe.jpg.json").read())
    sign("shoe.jpg", "out/shoe.jpg", record=record, key=key)
    verdict = verify("out/shoe.jpg", trust=TrustPolicy.from_pem("keys/ca.pem"))
    print(verdict.status)  # Status.TRUSTED
"""

# The root is lazy (issue 20): ``import provenance`` loads only the errors and the
# version; every other public name is imported on first use (PEP 562), so a
# command line, a fork server or a script that needs a part of the library does
# not pay for numpy, Pillow, c2pa, cryptography and SQLAlchemy up front (they
# made ``import provenance`` about 0.45 s of CPU). ``from provenance import X``,
# ``provenance.X`` and type checkers (which read the imports below) see the same
# names as before.

import sys as _sys
import types as _types
import typing as _typing

from provenance._lazy import resolver as _resolver
from provenance._version import __version__
from provenance.errors import (
    AuditError,
    ContainerError,
    CorruptFile,
    DescriptorError,
    ImageTooLarge,
    ImportFileError,
    InsecureKeyFileWarning,
    InventoryError,
    KeyConfigError,
    OutputError,
    PersonalDataError,
    ProvenanceError,
    RecordError,
    SchemaVersionError,
    SignatureError,
    TrustConfigError,
    UnsupportedFormat,
    VerificationError,
    WorkerPoolError,
    XmpError,
)

if _typing.TYPE_CHECKING:
    from provenance._core.lineage import LineageStep
    from provenance._core.pii import PiiAction, PiiPolicy
    from provenance._core.record import DigitalSourceType, ParentRef, ProvenanceRecord
    from provenance._core.types import (
        CopyLocation,
        Evidence,
        EvidenceSource,
        Identity,
        IdentityState,
        SignedFile,
        SignedImport,
        SignResult,
        Status,
        Verdict,
    )
    from provenance._core.verdicts import meets
    from provenance._io.discovery import find_inventory
    from provenance._io.index import AssetMatch, FleetIndex, HammingIndex, Neighbor, RowChunk
    from provenance._io.keys import SigningAlgorithm, SigningKey, TrustPolicy
    from provenance._io.pdf import html_to_pdf
    from provenance.audit import AuditEntry, AuditReport, Checkpoint
    from provenance.batch import sign_many, verify_many
    from provenance.fingerprint import Fingerprint, fingerprint
    from provenance.inventory import (
        AssetEntry,
        FileEntry,
        Inventory,
        InventoryStats,
        PerceptualMatch,
    )
    from provenance.renditions import RenditionMark, sign_import, sign_rendition, sign_renditions
    from provenance.sign import SignOptions, record_perceptual, sign, sign_bytes
    from provenance.trace import TraceResult, trace
    from provenance.verify import verify, verify_bytes

_WHERE: dict[str, str] = {
    "AssetEntry": "provenance.inventory",
    "AssetMatch": "provenance._io.index",
    "AuditEntry": "provenance.audit",
    "AuditReport": "provenance.audit",
    "Checkpoint": "provenance.audit",
    "CopyLocation": "provenance._core.types",
    "DigitalSourceType": "provenance._core.record",
    "Evidence": "provenance._core.types",
    "EvidenceSource": "provenance._core.types",
    "FileEntry": "provenance.inventory",
    "Fingerprint": "provenance.fingerprint",
    "FleetIndex": "provenance._io.index",
    "HammingIndex": "provenance._io.index",
    "Identity": "provenance._core.types",
    "IdentityState": "provenance._core.types",
    "Inventory": "provenance.inventory",
    "InventoryStats": "provenance.inventory",
    "LineageStep": "provenance._core.lineage",
    "Neighbor": "provenance._io.index",
    "ParentRef": "provenance._core.record",
    "PerceptualMatch": "provenance.inventory",
    "PiiAction": "provenance._core.pii",
    "PiiPolicy": "provenance._core.pii",
    "ProvenanceRecord": "provenance._core.record",
    "RenditionMark": "provenance.renditions",
    "RowChunk": "provenance._io.index",
    "SignOptions": "provenance._core.sign_options",
    "SignResult": "provenance._core.types",
    "SignedFile": "provenance._core.types",
    "SignedImport": "provenance._core.types",
    "SigningAlgorithm": "provenance._io.keys",
    "SigningKey": "provenance._io.keys",
    "Status": "provenance._core.types",
    "TraceResult": "provenance.trace",
    "TrustPolicy": "provenance._io.keys",
    "Verdict": "provenance._core.types",
    "find_inventory": "provenance._io.discovery",
    "fingerprint": "provenance.fingerprint",
    "html_to_pdf": "provenance._io.pdf",
    "meets": "provenance._core.verdicts",
    "record_perceptual": "provenance.sign",
    "sign": "provenance.sign",
    "sign_bytes": "provenance.sign",
    "sign_import": "provenance.renditions",
    "sign_many": "provenance.batch",
    "sign_rendition": "provenance.renditions",
    "sign_renditions": "provenance.renditions",
    "trace": "provenance.trace",
    "verify": "provenance.verify",
    "verify_bytes": "provenance.verify",
    "verify_many": "provenance.batch",
}
"""Each lazily imported public name, and the module it comes from."""

_VERBS = frozenset({"fingerprint", "sign", "trace", "verify"})
"""Public functions named like the submodule that defines them."""


class _Root(_types.ModuleType):
    """The package's module type: a verb stays the function when its submodule loads.

    Importing a submodule sets it as an attribute of its package (the import
    system does ``setattr(provenance, "sign", module)``). The eager root rebound
    the functions after importing their submodules; a lazy root cannot, so it
    refuses that one assignment and keeps ``provenance.sign`` the function.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name in _VERBS and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


_PACKAGES = frozenset(
    {"audit", "batch", "containers", "disclosure", "feed", "integrations", "inventory"}
    | {"phash", "renditions", "report", "scan"}
)
"""Public submodules, imported when first named as an attribute (``provenance.inventory``
worked after ``import provenance`` when the root imported it eagerly)."""


def __dir__() -> list[str]:
    """The public names, loaded or not, and the loaded submodules (completion, ``dir()``)."""
    return sorted(
        {*__all__, *(n for n, v in globals().items() if isinstance(v, _types.ModuleType))}
    )


if not _typing.TYPE_CHECKING:  # a type checker reads the imports above instead
    __getattr__ = _resolver(__name__, globals(), _WHERE, _PACKAGES)

_sys.modules[__name__].__class__ = _Root

__all__ = [
    "AssetEntry",
    "AssetMatch",
    "AuditEntry",
    "AuditError",
    "AuditReport",
    "Checkpoint",
    "ContainerError",
    "CopyLocation",
    "CorruptFile",
    "DescriptorError",
    "DigitalSourceType",
    "Evidence",
    "EvidenceSource",
    "FileEntry",
    "Fingerprint",
    "FleetIndex",
    "HammingIndex",
    "Identity",
    "IdentityState",
    "ImageTooLarge",
    "ImportFileError",
    "InsecureKeyFileWarning",
    "Inventory",
    "InventoryError",
    "InventoryStats",
    "KeyConfigError",
    "LineageStep",
    "Neighbor",
    "OutputError",
    "ParentRef",
    "PerceptualMatch",
    "PersonalDataError",
    "PiiAction",
    "PiiPolicy",
    "ProvenanceError",
    "ProvenanceRecord",
    "RecordError",
    "RenditionMark",
    "RowChunk",
    "SchemaVersionError",
    "SignOptions",
    "SignResult",
    "SignatureError",
    "SignedFile",
    "SignedImport",
    "SigningAlgorithm",
    "SigningKey",
    "Status",
    "TraceResult",
    "TrustConfigError",
    "TrustPolicy",
    "UnsupportedFormat",
    "Verdict",
    "VerificationError",
    "WorkerPoolError",
    "XmpError",
    "__version__",
    "find_inventory",
    "fingerprint",
    "html_to_pdf",
    "meets",
    "record_perceptual",
    "sign",
    "sign_bytes",
    "sign_import",
    "sign_many",
    "sign_rendition",
    "sign_renditions",
    "trace",
    "verify",
    "verify_bytes",
    "verify_many",
]
