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

from provenance._version import __version__
from provenance.errors import (
    AuditError,
    ContainerError,
    CorruptFile,
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
    XmpError,
)
from provenance.fingerprint import Fingerprint, fingerprint
from provenance.inventory import AssetEntry, Inventory
from provenance.keys import SigningAlgorithm, SigningKey, TrustPolicy
from provenance.pii import PiiAction, PiiPolicy
from provenance.record import DigitalSourceType, ParentRef, ProvenanceRecord
from provenance.renditions import RenditionMark, sign_rendition, sign_renditions
from provenance.sign import SignOptions, sign, sign_bytes
from provenance.trace import TraceResult, trace
from provenance.types import (
    CopyLocation,
    Evidence,
    EvidenceSource,
    SignResult,
    Status,
    Verdict,
)
from provenance.verify import verify, verify_bytes

__all__ = [
    "AssetEntry",
    "AuditError",
    "ContainerError",
    "CopyLocation",
    "CorruptFile",
    "DigitalSourceType",
    "Evidence",
    "EvidenceSource",
    "Fingerprint",
    "ImportFileError",
    "InsecureKeyFileWarning",
    "Inventory",
    "InventoryError",
    "KeyConfigError",
    "OutputError",
    "ParentRef",
    "PersonalDataError",
    "PiiAction",
    "PiiPolicy",
    "ProvenanceError",
    "ProvenanceRecord",
    "RecordError",
    "RenditionMark",
    "SchemaVersionError",
    "SignOptions",
    "SignResult",
    "SignatureError",
    "SigningAlgorithm",
    "SigningKey",
    "Status",
    "TraceResult",
    "TrustConfigError",
    "TrustPolicy",
    "UnsupportedFormat",
    "Verdict",
    "VerificationError",
    "XmpError",
    "__version__",
    "fingerprint",
    "sign",
    "sign_bytes",
    "sign_rendition",
    "sign_renditions",
    "trace",
    "verify",
    "verify_bytes",
]
