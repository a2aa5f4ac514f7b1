"""The inventory: an embedded SQLite store of every signed synthetic asset.

What it owns (DESIGN.md decisions 5, 8, 10): which assets we signed, with which
model and key, every file signed for them, how renditions descend from their
originals, and the hash-chained audit log (:mod:`provenance.audit`) in the same
database. ``verify`` asks it whether a file without provenance is a known asset
whose metadata was stripped (:meth:`Inventory.find_by_essence`).

It never reads or writes image files, and nothing it logs is free text: the
audit log is append-only and could not honour an erasure request.

Where it lives: ``$PROVENANCE_INVENTORY`` if set, else
``<cwd>/.provenance/inventory.sqlite`` (:meth:`Inventory.default_path`). SQLite
keeps ``-wal`` and ``-shm`` files next to it while it is open; copy the database
only when no process has it open (or with SQLite's backup API).

Data model (schema version 3)::

    signers  (signer_id PK, subject UNIQUE)          one row per certificate subject
    assets   (asset_pk PK, asset_id UNIQUE,          one row per distinct image essence
              essence_sha256 UNIQUE,                 (asset ids derive from it)
              parent_pk -> assets NULL,              the original a rendition comes from
              digital_source_type, generator, model, model_version, created_at,
              record_json,                           canonical JSON of the first record
              signer_id -> signers, first_signed_at)
    files    (file_pk PK, sha256 UNIQUE,             one row per signed output file
              asset_pk -> assets,                    (re-signs add files to an asset)
              input_sha256, parent_sha256 NULL,      the bytes signed, and the parent file
              path, source_path, bytes_added, active_manifest, signed_at,
              signer_id -> signers, record_sha256,
              record_json NULL)                      only when it differs from the asset's
    perceptual_hashes (hash_pk PK,                   version 2: perceptual hashes,
              asset_pk -> assets, scheme, variant,   several rows per asset (flips,
              words)                                 crops...), uint64 little-endian
    perceptual_descriptors (asset_pk, scheme PK,     the confirmation descriptor
              descriptor)
    audit, audit_checkpoints, audit_meta             see provenance.audit; version 3:
                                                     every row above is bound to the
                                                     audit entry that recorded it by its
                                                     canonical hash (_reconcile checks)
    keypoint_features (keypoint_pk PK,               version 4: local features (ORB
              asset_pk -> assets, scheme, features)  keypoints) for partial copies

* An **asset** is one image essence (coded image data without metadata).
  Re-signing the same image adds a *file* to its asset. A **rendition** (a
  resize, a crop, a re-encode: another essence) is an asset of its own whose
  ``parent_pk`` points at the asset it was made from, so lineage is a tree.
* The parent is found, in order, by the asset id the record names, by the
  parent's file SHA-256 (signed output, then signing input), then by its essence
  hash. A rendition recorded before its original is linked when the original
  arrives. Only the first parent is linked; the record keeps all of them.
* Hashes are stored as 32-byte BLOBs (half the size of hex in the table and
  in each of its indexes); the API speaks lowercase hex.
* Indexes: files by sha256 (unique), input_sha256, parent_sha256 and asset;
  assets by asset_id and essence (unique) and parent.
* Perceptual search (:meth:`Inventory.find_perceptual`) goes through a
  :class:`~provenance.HammingIndex` of every row of a scheme, kept in
  memory per :class:`Inventory` and cached beside the database as
  ``<name>.<scheme>.hidx`` once it has :data:`INDEX_CACHE_MIN_ROWS` rows, so a
  new process maps it instead of reading every row again. The cache holds only
  hashes: a stale or foreign cache is rebuilt, and every candidate's distance
  is checked again against the rows in the database. The partial-copy search's
  keypoint vote index is cached the same way as ``<name>.<scheme>.kidx`` (from
  ``KEYPOINT_CACHE_MIN_ROWS`` rows, owner-only), stamped with the inventory's
  first audit entry and its last keypoint row: anything else is rebuilt. From
  :data:`FLEET_MIN_ASSETS` assets, and on a server, ``verify`` searches with one
  :class:`~provenance.FleetIndex` lookup instead
  (:meth:`Inventory.find_perceptual_any`).

Concurrency and durability: WAL mode (many readers, one writer at a time);
every write is one ``BEGIN IMMEDIATE`` transaction retried with back-off while
another process holds the lock, up to ``busy_timeout_s``; an interrupted write
leaves nothing behind. Open one :class:`Inventory` per thread or process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from provenance._lazy import resolver as _resolver
from provenance.inventory._entries import AssetEntry, FileEntry, InventoryStats, PerceptualMatch
from provenance.inventory._migrate import MigrationReport, migrate_inventory
from provenance.inventory._perceptual import (
    FLEET_MIN_ASSETS,
    FLEET_MIN_ASSETS_ENV_VAR,
    INDEX_REFRESH_ENV_VAR,
)
from provenance.inventory._schema import SCHEMA_VERSION
from provenance.inventory._store import ENV_VAR, Inventory

if TYPE_CHECKING:
    from provenance.inventory._packs import PackReport

# Opening an inventory and looking a hash up load neither numpy nor Pillow (issue 20):
# the modules that do (the indexes, the search, packs) are imported on first use.
_WHERE: dict[str, str] = {"PackReport": "provenance.inventory._packs"}
"""Each lazily imported public name, and the module it comes from."""

__all__ = [
    "ENV_VAR",
    "FLEET_MIN_ASSETS",
    "FLEET_MIN_ASSETS_ENV_VAR",
    "INDEX_REFRESH_ENV_VAR",
    "SCHEMA_VERSION",
    "AssetEntry",
    "FileEntry",
    "Inventory",
    "InventoryStats",
    "MigrationReport",
    "PackReport",
    "PerceptualMatch",
    "migrate_inventory",
]


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if not TYPE_CHECKING:  # a type checker reads the imports above instead
    __getattr__ = _resolver(__name__, globals(), _WHERE, frozenset())
