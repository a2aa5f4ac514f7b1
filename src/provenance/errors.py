"""The one error hierarchy of provenance.

Every error the library raises on purpose is a :class:`ProvenanceError`. Adapters
(c2pa, cryptography, SQLite, Pillow) translate foreign exceptions at their border
and chain them with ``raise ... from exc``. ``str(err)`` begins with the path of
the file concerned, when there is one, so a batch report or a CLI line names it.

This module must never import anything but the standard library, and an error
message must never contain key material or the personal data it refuses.

The tree::

    ProvenanceError
    ├── UnsupportedFormat          not an image format provenance reads
    ├── CorruptFile                unreadable, truncated or malformed file
    │   ├── ContainerError         a metadata block, segment or chunk that lies
    │   └── ImageTooLarge          more pixels than the decoding limit (a bomb), refused undecoded
    ├── XmpError                   an XMP packet we cannot build or parse safely
    ├── RecordError                a provenance record that does not validate
    │   └── PersonalDataError      free text refused by the personal-data policy
    ├── KeyConfigError             a missing, unreadable or mismatched key/certificate
    ├── SignatureError             signing failed, or a signature cannot be checked
    ├── TrustConfigError           trust anchors that cannot be loaded
    ├── VerificationError          a strict check (``require_trusted``) failed
    ├── OutputError                the output cannot be written (disk, permissions)
    ├── InventoryError             the inventory database cannot be opened, read or written
    │   ├── SchemaVersionError     the database was written by a newer provenance
    │   └── DescriptorError        a stored perceptual descriptor of another scheme, version or size
    ├── AuditError                 the audit log failed verification, or a checkpoint is malformed
    ├── WorkerPoolError            a batch's worker processes could not be started
    └── ImportFileError            an import file (a Magento CSV) that cannot be read as one at all

One warning category, not an error: :class:`InsecureKeyFileWarning`, issued when a
private key file can be read by other users (it still loads).
"""

from __future__ import annotations

import os

__all__ = [
    "AuditError",
    "ContainerError",
    "CorruptFile",
    "DescriptorError",
    "ImageTooLarge",
    "ImportFileError",
    "InsecureKeyFileWarning",
    "InventoryError",
    "KeyConfigError",
    "OutputError",
    "PersonalDataError",
    "ProvenanceError",
    "RecordError",
    "SchemaVersionError",
    "SignatureError",
    "TrustConfigError",
    "UnsupportedFormat",
    "VerificationError",
    "WorkerPoolError",
    "XmpError",
]


class ProvenanceError(Exception):
    """Root of every error raised by provenance.

    Args:
        message: What went wrong, in one line, without secrets or personal data.
        path: The file concerned, if any; it prefixes ``str(err)``.
    """

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None) -> None:
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        super().__init__(message)

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        return f"{self.path}: {self.message}"

    def with_path(self, path: str | os.PathLike[str]) -> ProvenanceError:
        """Return this error with ``path`` set, keeping its class and cause.

        Pure modules raise without a path (they see bytes only); the verb that
        read the file attaches it.
        """
        if self.path is None:
            self.path = os.fspath(path)
        return self


class UnsupportedFormat(ProvenanceError):  # noqa: N818 - name fixed by STYLE.md
    """The input is not a format provenance handles (see ``containers.SUPPORTED``)."""


class CorruptFile(ProvenanceError):  # noqa: N818 - name fixed by STYLE.md
    """The input cannot be read as the image it claims to be."""


class ContainerError(CorruptFile):
    """A segment, chunk or box of the container is malformed or lies about its length."""


class ImageTooLarge(CorruptFile):
    """The image has more pixels than the decoding limit; it was refused before decoding.

    A :class:`CorruptFile` (a decompression bomb is a file that lies about being a
    reasonable image), so callers catching that keep working. See
    :data:`provenance.fingerprint.MAX_PIXELS`. Only the steps that decode pixels
    (perceptual hashes, renditions) refuse; hashing and signing the bytes do not.
    """


class XmpError(ProvenanceError):
    """An XMP packet is malformed, unsafe (DTD, entities) or cannot be built."""


class RecordError(ProvenanceError):
    """A provenance record is malformed or fails validation."""


class PersonalDataError(RecordError):
    """Free text holds personal data and the policy says to refuse it.

    The message names the field and the kind of data, never the data itself.
    """


class KeyConfigError(ProvenanceError):
    """A signing key or certificate chain is missing, unreadable or mismatched."""


class SignatureError(ProvenanceError):
    """Signing failed, or a signature could not be produced or checked."""


class TrustConfigError(ProvenanceError):
    """Trust anchors cannot be loaded or are not certificates."""


class VerificationError(ProvenanceError):
    """A strict caller asked for trusted provenance and the asset does not have it."""


class OutputError(ProvenanceError):
    """The output file cannot be written; the input is left untouched."""


class WorkerPoolError(ProvenanceError):
    """A batch's worker processes could not be started (or restarted) at all.

    Raised by the batch functions, never for one bad file: a file that kills
    its worker fails alone and the batch goes on. Retrying with ``workers=1``
    (``--workers 1``) signs in the calling process, without a pool.
    """


class InventoryError(ProvenanceError):
    """The inventory database cannot be opened, read or written.

    SQLite errors never escape the inventory: they arrive as this error (or a
    subclass), with the SQLite error chained as ``__cause__``.
    """


class SchemaVersionError(InventoryError):
    """The inventory's schema cannot be opened as asked; it is left untouched.

    Either it was written by a newer provenance (``found > supported``), or it is
    older and was opened read-only (``found < supported``): a writable open
    migrates it first.

    Attributes:
        found: The schema version in the database.
        supported: The newest schema version this code knows.
    """

    def __init__(
        self,
        message: str,
        *,
        found: int,
        supported: int,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.found = found
        self.supported = supported
        super().__init__(message, path=path)


class DescriptorError(InventoryError, ValueError):
    """A stored perceptual descriptor (or variant name) of another scheme, version or size.

    Also a :class:`ValueError`, which is what descriptor parsing raised before it joined
    the tree.
    """


class AuditError(ProvenanceError):
    """The audit log failed verification, or a checkpoint cannot be read."""


class ImportFileError(ProvenanceError):
    """An import file cannot be used at all: not a CSV, not UTF-8, no ``sku`` column.

    Problems of single rows are not errors: they are reported per row and the
    other rows are imported.
    """


class InsecureKeyFileWarning(UserWarning):
    """A private key file is readable (or writable) by group or others; ``chmod 600`` it.

    A warning, not an error: the key still loads. Strict deployments turn it into
    an error with ``warnings.filterwarnings("error", category=InsecureKeyFileWarning)``.
    """
