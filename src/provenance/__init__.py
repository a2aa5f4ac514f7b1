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
from provenance._version import __version__
from provenance.audit import AuditEntry, AuditReport, Checkpoint
from provenance.batch import sign_many, verify_many
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
from provenance.fingerprint import Fingerprint, fingerprint
from provenance.inventory import AssetEntry, FileEntry, Inventory, InventoryStats, PerceptualMatch
from provenance.renditions import RenditionMark, sign_import, sign_rendition, sign_renditions
from provenance.sign import SignOptions, record_perceptual, sign, sign_bytes
from provenance.trace import TraceResult, trace
from provenance.verify import verify, verify_bytes

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
