"""Row hashes that bind inventory facts to the audit chain (DESIGN.md decision 17)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from provenance.audit._chain import AuditEntry, AuditEvent
from provenance.errors import AuditError

# --- Facts bound to the chain (DESIGN.md decision 17) -------------------------------

ROW_ASSET = "row_asset"
"""Payload key: the row hash (:func:`row_hash`) of the asset the entry recorded."""
ROW_FILE = "row_file"
"""Payload key: the row hash of the file (payload ``sha256``) the entry recorded."""
ROW_PARENT = "row_parent"
"""Payload key: the asset id the recorded asset descends from (``""``: none yet)."""
LINKED = "linked"
"""Payload key: comma-separated asset ids that now descend from the entry's asset."""
ROW_PERCEPTUAL = "row_perceptual"
"""Payload key: the hash of the asset's perceptual rows and descriptor of one scheme."""
PERCEPTUAL_SCHEME = "perceptual_scheme"
"""Payload key: that scheme."""
ROW_KEYPOINTS = "row_keypoints"
"""Payload key: the row hash of the asset's keypoint row of one scheme (issue 21).

Entries written before keypoint rows were bound have no such key; ``audit_meta``'s
:data:`KEYPOINTS_BOUND_FROM` says from which row key on every row must be bound."""
KEYPOINT_SCHEME = "keypoint_scheme"
"""Payload key: that scheme."""
KEYPOINTS_BOUND_FROM = "bound_from_keypoint_pk"
"""The ``audit_meta`` mark: the first keypoint row bound to the chain (written with it)."""


def row_hash(
    kind: str,
    values: Iterable[str | bytes | int | None],
    *,
    segments: dict[str, bytes] | None = None,
) -> str:
    """SHA-256 (hex) of a row's canonical serialisation: its kind, then each column in order.

    Each value is type-tagged and length-prefixed, so no two rows serialise alike:
    ``N`` (NULL), ``I<decimal>:`` (integer), ``S<byte length>:<UTF-8>`` (text),
    ``B<length>:<bytes>`` (blob). About four times cheaper than canonical JSON,
    which matters on the signing path (two or three rows per signing).

    Args:
        kind: The row's kind (``asset``, ``file``, ...).
        values: Its columns, in order.
        segments: A cache of the serialised text values, for many rows that
            repeat them (an import's 38 asset and file rows share their signer,
            times, record and asset ids): kept by the caller for one batch.

    Raises:
        AuditError: A value of another type (a float, a bool).
    """
    parts = [kind.encode("ascii")]
    add = parts.append
    for value in values:
        # Exact types first (every column the stores write), by identity: a third
        # cheaper than isinstance chains; subclasses take _segment.
        if type(value) is str:
            found = None if segments is None else segments.get(value)
            if found is None:
                found = _text(value)
                if segments is not None:
                    segments[value] = found
            add(found)
        elif type(value) is bytes:
            add(_HASH_TAG if len(value) == 32 else b"B%d:" % len(value))  # most are SHA-256
            add(value)
        elif value is None:
            add(b"N")
        elif type(value) is int:
            add(b"I%d:" % value)
        else:
            add(_segment(kind, value))
    return hashlib.sha256(b"".join(parts)).hexdigest()


_HASH_TAG = b"B32:"


def _text(value: str) -> bytes:
    # surrogateescape: text read back from bytes that were not UTF-8 hashes as
    # those bytes (so it differs from what was bound); valid text is unchanged.
    data = value.encode("utf-8", "surrogateescape")
    return b"S%d:%b" % (len(data), data)


def _segment(kind: str, value: object) -> bytes:
    """The serialisation of a value of a subclass of a column type; AuditError for others."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bytes):
        return b"B%d:%b" % (len(value), value)
    if isinstance(value, int) and not isinstance(value, bool):
        return b"I%d:" % value
    raise AuditError(f"a {kind} row holds a {type(value).__name__}, not a column value")


class FactBindings:
    """The rows the chain vouches for, as the latest intact entry about each stated them.

    Filled by :meth:`AuditLog.verify` while it walks the chain; every value is
    ``(seq of the entry, what it bound)``. Entries written before row binding
    (schema < 3) hold no row hash, but their payload still names some facts:
    ``legacy_assets`` (essence, model, model version, source type of the asset's
    first entry) and ``legacy_files`` (input, record, manifest, signer).
    """

    __slots__ = (
        "assets",
        "files",
        "keypoints",
        "legacy_assets",
        "legacy_files",
        "parents",
        "perceptual",
    )

    def __init__(self) -> None:
        self.assets: dict[str, tuple[int, str]] = {}
        self.files: dict[str, tuple[int, str]] = {}
        self.parents: dict[str, tuple[int, str]] = {}
        self.perceptual: dict[tuple[str, str], tuple[int, str]] = {}
        self.keypoints: dict[tuple[str, str], tuple[int, str]] = {}
        self.legacy_assets: dict[str, tuple[int, tuple[Any, ...]]] = {}
        self.legacy_files: dict[str, tuple[int, tuple[Any, ...]]] = {}

    def add(self, entry: AuditEntry) -> None:
        """Take what ``entry`` binds (call only for entries whose hash matched)."""
        payload = entry.payload
        seq, asset_id = entry.seq, entry.asset_id or ""
        if not payload.keys() & _BINDING_KEYS:
            if entry.event in _RECORDING_EVENTS and isinstance(payload.get("sha256"), str):
                self._add_legacy(seq, asset_id, payload)
            return
        value = payload.get(ROW_ASSET)
        if isinstance(value, str):
            self.assets[asset_id] = (seq, value)
        value = payload.get(ROW_PARENT)
        if isinstance(value, str):
            self.parents[asset_id] = (seq, value)
        value, sha = payload.get(ROW_FILE), payload.get("sha256")
        if isinstance(value, str) and isinstance(sha, str):
            self.files[sha] = (seq, value)
        value, scheme = payload.get(ROW_PERCEPTUAL), payload.get(PERCEPTUAL_SCHEME)
        if isinstance(value, str) and isinstance(scheme, str):
            self.perceptual[(asset_id, scheme)] = (seq, value)
        value, scheme = payload.get(ROW_KEYPOINTS), payload.get(KEYPOINT_SCHEME)
        if isinstance(value, str) and isinstance(scheme, str):
            self.keypoints[(asset_id, scheme)] = (seq, value)
        value = payload.get(LINKED)
        if isinstance(value, str) and value:
            for child in value.split(","):
                self.parents[child] = (seq, asset_id)

    def _add_legacy(self, seq: int, asset_id: str, payload: Mapping[str, Any]) -> None:
        facts = ("input_sha256", "record_sha256", "active_manifest", "signer")
        self.legacy_files[str(payload["sha256"])] = (seq, tuple(payload.get(k) for k in facts))
        if asset_id not in self.legacy_assets:
            facts = ("essence_sha256", "model", "model_version", "digital_source_type")
            self.legacy_assets[asset_id] = (seq, tuple(payload.get(k) for k in facts))


_RECORDING_EVENTS = frozenset({AuditEvent.SIGNED, AuditEvent.RENDITION_ADDED})
# An entry holding none of these binds no row (written before row binding).
_BINDING_KEYS = frozenset({ROW_FILE, ROW_PERCEPTUAL, LINKED, ROW_KEYPOINTS})
