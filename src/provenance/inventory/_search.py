"""The inventory's similarity search: perceptual hashes and local features (partial copies).

:class:`Inventory` inherits these methods; the rows and indexes they use are in
``_perceptual``, ``_keypoints`` and ``_indexes``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.errors import InventoryError
from provenance.inventory._entries import AssetEntry, PerceptualMatch
from provenance.inventory._handle import _Handle
from provenance.inventory._keypoints import (
    KeypointInsert,
    _keypoint_features,
    _keypoint_schemes,
    bind_keypoints,
)
from provenance.inventory._perceptual import _nearest_assets, _perceptual_insert, _scheme
from provenance.inventory._writes import bind_perceptual

# numpy, Pillow and the index modules load on the first search, not when an inventory
# opens: a verifier that only looks a file's hashes up never needs them (issue 20).
if TYPE_CHECKING:
    import numpy as np

    from provenance._core.keypoints import KeypointIndex, LocalFeatures
    from provenance._core.phash import ReferenceHashes
    from provenance._io.index import FleetIndex, HammingIndex, RowChunk
    from provenance.inventory._packs import PackReport


class _Search(_Handle):
    """:class:`Inventory`'s perceptual and keypoint methods: storing, indexing, finding."""

    # --- perceptual hashes ----------------------------------------------------

    def add_perceptual(
        self,
        asset_id: str,
        reference: ReferenceHashes,
        *,
        scheme: str | None = None,
        now: datetime | None = None,
        durable: bool | None = None,
    ) -> int:
        """Store an asset's perceptual hashes (every variant row) and descriptor.

        Idempotent: rows already stored for this asset, scheme and variant are
        kept as they are. Rows added are bound to the audit chain by a
        ``perceptual_added`` entry (the hash of every row of the scheme).

        Args:
            asset_id: A recorded asset.
            reference: What :func:`provenance._core.phash.reference_hashes` returned.
            scheme: The scheme name; default ``reference.scheme``.
            now: The time of the audit entry; default the current time.
            durable: Fsync this commit or not; None follows the inventory's
                ``durable``.

        Returns:
            How many rows were added (0 when all were stored already).

        Raises:
            InventoryError: Unknown asset, a malformed scheme name or hash
                array, or the database cannot be written.
        """
        insert = _perceptual_insert(reference, scheme, self._path)
        moment = now if now is not None else datetime.now(timezone.utc)
        return self._write(
            lambda conn: bind_perceptual(
                conn, insert, asset_id, moment, audit=self._audit, path=self._path
            ),
            durable,
        )

    def perceptual_index(self, scheme: str) -> HammingIndex:
        """The Hamming index over every stored row of ``scheme``; ids are row keys.

        Built once per :class:`Inventory` (from the cache file when there is
        one) and then refreshed incrementally: the rows added since (``hash_pk``
        above the index's last id) are appended, one indexed query, never a
        rebuild from the database. With ``index_refresh_s`` > 0 that look for
        new rows happens at most once per ``index_refresh_s`` seconds, so rows
        another process wrote are found at most that late; rows written through
        this handle are seen at once.

        From :data:`INDEX_CACHE_MIN_ROWS` rows the index is cached beside the
        database (``<name>.<scheme>.hidx``, memory-mapped on load; not written for
        a read-only inventory). The cache is written when the index was built
        here from the rows and when new rows made it rebuild its bands, not on
        every refresh, so a new process reads at most the rows added since.

        Raises:
            InventoryError: A malformed scheme name, or the database cannot be read.
        """
        return self._indexes.perceptual(_scheme(scheme, self._path))

    def perceptual_chunks(
        self, scheme: str, *, after: int = 0, rows_per_chunk: int = 1 << 16
    ) -> Iterator[RowChunk]:
        """Every stored row of ``scheme`` with a key above ``after``, in key order, in batches.

        What a :class:`~provenance.FleetIndex` is built from
        (``index.extend(inventory.perceptual_chunks(scheme))``) and refreshed from
        (``after=index.last_row_id``): row keys, asset keys and hashes, one short
        read per batch.

        Raises:
            InventoryError: A malformed scheme name, hashes of differing lengths,
                or the database cannot be read.
        """
        return self._indexes.chunks(_scheme(scheme, self._path), after, rows_per_chunk)

    def fleet_index(
        self, scheme: str, *, hash_dir: str | os.PathLike[str] | None = None
    ) -> FleetIndex:
        """A :class:`~provenance.FleetIndex` over every stored row of ``scheme``.

        For inventories of millions of assets, where :meth:`perceptual_index` (exact)
        is too slow and too large: built once per handle from
        :meth:`perceptual_chunks`, then refreshed with the rows above its last key,
        at most every ``index_refresh_s`` seconds (the same staleness bound). It may
        miss a copy the exact search finds (docs/search.md). ``lookup`` returns
        asset keys (``asset_pk``) and row keys (``hash_pk``). ``verify`` searches
        with this same index from ``fleet_min_assets`` assets and on a server
        (:meth:`find_perceptual_any`); call this first with ``hash_dir`` to have its
        hashes memory-mapped rather than in memory.

        Args:
            scheme: The perceptual scheme.
            hash_dir: Keep the hashes in memory-mapped files there (used when the
                index is first built; deleted by :meth:`close`); default in memory.

        Raises:
            InventoryError: A malformed scheme name, or the database cannot be read.
        """
        folder = None if hash_dir is None else Path(hash_dir)
        return self._indexes.fleet(_scheme(scheme, self._path), folder)

    def pack_perceptual(self, scheme: str) -> PackReport:
        """Pack the sealed key ranges of ``scheme`` in the server, for verifiers' cold builds.

        A cold :meth:`fleet_index` from a server reads each pack as one value
        instead of aggregating its 131,072 rows again (``inventory._packs``;
        docs/inventory.md). Run it after an import or by cron; safe while others
        sign or pack (each range is one short transaction, a duplicate is skipped).

        Raises:
            InventoryError: An SQLite inventory, a read-only handle, a role that
                could not create the trigger packs depend on, or a server error.
        """
        from provenance.inventory._packs import pack_perceptual

        return pack_perceptual(self._db, _scheme(scheme, self._path), self._path)

    def find_perceptual(
        self,
        words: Any,
        *,
        scheme: str,
        max_distance: int,
        k: int = 5,
    ) -> list[PerceptualMatch]:
        """Assets with a stored row within ``max_distance`` bits of ``words``, nearest first.

        One entry per asset (its nearest row). Distances are checked again
        against the rows in the database, so a stale index cache can hide a
        match but never invent one.

        Args:
            words: ``(W,)`` ``uint64``: the query hash.
            scheme: The scheme it was computed with.
            max_distance: The match threshold, in bits.
            k: At most this many assets.

        Raises:
            InventoryError: The database cannot be read.
        """
        import numpy as np

        index = self.perceptual_index(scheme)
        query = np.asarray(words, dtype=np.uint64).reshape(-1)
        if len(index) == 0 or query.shape[0] != index.words_per_hash:
            return []
        # Several rows per asset: ask for enough rows to fill k assets.
        hits = index.query(query, k=max(k * 32, 64), max_distance=max_distance)
        if not hits:
            return []
        pks = [h.row_id for h in hits]

        return self._db.read(
            lambda conn: _nearest_assets(
                conn, pks, query, scheme=scheme, max_distance=max_distance, k=k
            )
        )

    def searched_perceptual_rows(self, scheme: str) -> int:
        """Rows of ``scheme`` that :meth:`find_perceptual_any` searches now (0: none).

        Refreshes the index it uses, as a search would (``index_refresh_s``).

        Raises:
            InventoryError: A malformed scheme name, or the database cannot be read.
        """
        name = _scheme(scheme, self._path)
        if self._indexes.uses_fleet(name):
            return len(self._indexes.fleet(name, None))
        return len(self._indexes.perceptual(name))

    def find_perceptual_any(
        self, queries: Any, *, scheme: str, max_distance: int, k: int = 5
    ) -> list[tuple[PerceptualMatch, int]]:
        """Assets with a row within ``max_distance`` bits of any query hash, nearest first.

        What ``verify`` asks with every hash of one file. Each asset comes once,
        with the query row nearest to it (the first on ties), so a second check
        can use that row. Small SQLite inventories ask the exact
        :meth:`perceptual_index` once per query hash (:meth:`find_perceptual`);
        from ``fleet_min_assets`` assets, and on a server, one
        :meth:`fleet_index` lookup of all of them finds the assets and their
        nearest rows, which may miss a copy the exact search finds
        (docs/search.md). Either way distances are checked again against the
        rows in the database, and the index is refreshed within ``index_refresh_s``.

        Args:
            queries: ``(Q, W)`` ``uint64`` (``(W,)``: one hash).
            scheme: The scheme they were computed with.
            max_distance: The match threshold, in bits.
            k: At most this many assets.

        Raises:
            InventoryError: A malformed scheme name, or the database cannot be read.
        """
        import numpy as np

        name = _scheme(scheme, self._path)
        qs = np.asarray(queries, dtype=np.uint64)
        qs = qs.reshape(1, -1) if qs.ndim == 1 else qs
        if self._indexes.uses_fleet(name):
            per_query = self._fleet_candidates(name, qs, max_distance=max_distance, k=k)
        else:
            per_query = [
                self.find_perceptual(q, scheme=name, max_distance=max_distance, k=k) for q in qs
            ]
        best: dict[str, tuple[PerceptualMatch, int]] = {}
        for row, matches in enumerate(per_query):
            for match in matches:
                current = best.get(match.asset.asset_id)
                if current is None or match.distance < current[0].distance:
                    best[match.asset.asset_id] = (match, row)
        return sorted(best.values(), key=lambda item: item[0].distance)[:k]

    def _fleet_candidates(
        self, name: str, qs: np.ndarray[Any, np.dtype[np.uint64]], *, max_distance: int, k: int
    ) -> list[list[PerceptualMatch]]:
        """Per query hash, the assets one fleet lookup found, each by its nearest row."""
        from provenance.inventory._indexes import FLEET_PROBE_RADIUS

        index = self._indexes.fleet(name, None)
        if len(index) == 0 or qs.shape[1] != index.words_per_hash:
            return []
        found = index.lookup(qs, max_distance=max_distance, k=k, probe_radius=FLEET_PROBE_RADIUS)
        pks = [hit.row_id for hit in found]
        if not pks:
            return []
        return self._db.read(
            lambda conn: [
                _nearest_assets(conn, pks, q, scheme=name, max_distance=max_distance, k=k)
                for q in qs
            ]
        )

    # --- local features (partial copies) -------------------------------------------

    def add_keypoints(
        self,
        asset_id: str,
        features: LocalFeatures,
        *,
        scheme: str,
        now: datetime | None = None,
        durable: bool | None = None,
    ) -> bool:
        """Store an asset's local features (:mod:`provenance._core.keypoints`) for ``scheme``.

        Idempotent: features already stored for this asset and scheme are kept.
        A row added is bound to the audit chain by a ``keypoints_added`` entry
        (the hash of the row).

        Args:
            asset_id: A recorded asset.
            features: What :func:`provenance._core.keypoints.reference_features` returned.
            scheme: The scheme name (:data:`provenance._core.keypoints.SCHEME`).
            now: The time of the audit entry; default the current time.
            durable: Fsync this commit or not; None follows the inventory's
                ``durable``.

        Returns:
            Whether a row was added.

        Raises:
            InventoryError: Unknown asset, a malformed scheme name, or the
                database cannot be written.
        """
        insert = KeypointInsert(_scheme(scheme, self._path), features.to_bytes())
        moment = now if now is not None else datetime.now(timezone.utc)
        return self._write(
            lambda conn: bind_keypoints(
                conn, insert, asset_id, moment, audit=self._audit, path=self._path
            ),
            durable,
        )

    def keypoint_index(self, scheme: str) -> KeypointIndex:
        """The keypoint index over every stored row of ``scheme``; keys are row keys.

        Kept per :class:`Inventory` and refreshed with rows added since (one
        indexed query when nothing changed; with ``index_refresh_s``, at most that
        often, as :meth:`perceptual_index`); rebuilt from every row when it has
        outgrown its inverted lists. From :data:`KEYPOINT_CACHE_MIN_ROWS` rows
        it is cached beside the database (``<name>.<scheme>.kidx``, owner-only;
        not written for a read-only inventory): a new handle reads the cache
        (its lists copied from the mapped file, nothing assigned again) and
        then only the rows added since. The cache is written when the index was
        built here from the rows and when the rows added since the file was
        written pass a tenth of the assets. A cache of another inventory, of
        rows since replaced (a restored backup), of another format, or cut short
        is rebuilt from the rows, with a warning on the ``provenance.inventory``
        logger. Candidates are only candidates: their features are read again
        from the database, so a stale cache can miss a copy but never invent one.

        Raises:
            InventoryError: A malformed scheme name, or the database cannot be read.
        """
        return self._indexes.keypoints(_scheme(scheme, self._path))

    def write_index_caches(self) -> list[Path]:
        """Build the keypoint index of every stored scheme and write its cache file now.

        For verifiers that open the inventory read-only (``provenance verify``,
        batch workers, the DAM service): they load the cache but never write it, so
        without this each new process builds the index from every row (minutes
        at 100k assets). Run it after an import (``provenance inventory index``); a
        cache is rewritten only when it is missing, spoilt or a tenth behind.

        Returns:
            The cache files that exist now (none for a server inventory, or below
            ``KEYPOINT_CACHE_MIN_ROWS`` rows).

        Raises:
            InventoryError: The inventory is read-only, or cannot be read.
        """
        if self._read_only:
            raise InventoryError("is open read-only: index caches are not written", path=self._path)
        written = []
        for name in self._db.read(_keypoint_schemes):
            cache = self._indexes.write_keypoint_cache(name)
            if cache is not None:
                written.append(cache)
        return written

    def keypoint_features(self, keys: Sequence[int]) -> list[tuple[AssetEntry, LocalFeatures]]:
        """The assets and stored features of these keypoint row keys, in the same order.

        Rows that vanished or do not parse are left out.

        Raises:
            InventoryError: The database cannot be read.
        """
        return self._db.read(lambda conn: _keypoint_features(conn, keys))
