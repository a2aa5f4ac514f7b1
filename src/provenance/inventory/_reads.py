"""The inventory's lookups: one asset by id or hash, lineage, every asset, counts.

:class:`Inventory` inherits these methods; the SQL they run is in ``_rows``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from provenance.inventory._entries import AssetEntry, InventoryStats, _hex_bytes
from provenance.inventory._handle import _Handle
from provenance.inventory._rows import (
    _ANCESTORS_SQL,
    _BY_ASSET_ID,
    _BY_ESSENCE,
    _BY_FILE_SHA256,
    _DESCENDANTS_SQL,
    _PAGE,
    _first_asset,
    _lineage,
    _page,
    _stats,
)


class _Reads(_Handle):
    """:class:`Inventory`'s read methods (lookups, lineage, listing, counts)."""

    def get(self, asset_id: str) -> AssetEntry | None:
        """The asset with this id, or None.

        Raises:
            InventoryError: The database cannot be read.
        """
        return self._db.read(lambda conn: _first_asset(conn, _BY_ASSET_ID, asset_id))

    def find_by_sha256(self, sha256_hex: str) -> AssetEntry | None:
        """The asset of a signed file, by the file's SHA-256 (or its signing input's).

        Raises:
            InventoryError: Not 64 hex characters, or the database cannot be read.
        """
        digest = _hex_bytes(sha256_hex, "sha256", self._path)
        return self._db.read(lambda conn: _first_asset(conn, _BY_FILE_SHA256, digest))

    def find_by_essence(self, essence_sha256_hex: str) -> AssetEntry | None:
        """The asset with this essence hash: how a stripped copy is recognised.

        Raises:
            InventoryError: Not 64 hex characters, or the database cannot be read.
        """
        digest = _hex_bytes(essence_sha256_hex, "essence_sha256", self._path)
        return self._db.read(lambda conn: _first_asset(conn, _BY_ESSENCE, digest))

    def ancestors(self, asset_id: str) -> list[AssetEntry]:
        """The parent, grandparent, ... up to the original; [] for an original.

        Safe against loops (which only a hand-edited database can hold): each
        asset appears once, and the walk stops after :data:`MAX_LINEAGE_DEPTH`.

        Raises:
            InventoryError: The database cannot be read.
        """
        return self._db.read(lambda conn: _lineage(conn, _ANCESTORS_SQL, asset_id))

    def descendants(self, asset_id: str) -> list[AssetEntry]:
        """Every rendition made from this asset, directly or not, nearest first.

        Raises:
            InventoryError: The database cannot be read.
        """
        return self._db.read(lambda conn: _lineage(conn, _DESCENDANTS_SQL, asset_id))

    def assets(self, limit: int | None = None, offset: int = 0) -> Iterator[AssetEntry]:
        """Every asset in the order recorded, read page by page.

        Args:
            limit: At most this many.
            offset: Skip this many first.

        Raises:
            InventoryError: The database cannot be read.
        """
        remaining = limit
        after: int | None = None
        while remaining is None or remaining > 0:
            size = _PAGE if remaining is None else min(_PAGE, remaining)
            pks, page = self._db.read(
                functools.partial(_page, after=after, offset=offset, size=size)
            )
            yield from page
            if len(pks) < size:
                return
            if remaining is not None:
                remaining -= len(pks)
            after = pks[-1]

    def stats(self) -> InventoryStats:
        """Counts over the inventory, on one snapshot.

        Raises:
            InventoryError: The database cannot be read.
        """
        return self._db.read(_stats)
