"""The in-memory perceptual and keypoint indexes of one inventory handle.

Built from the rows once, then refreshed incrementally, at most every
``index_refresh_s`` seconds (DESIGN.md decision 7); the perceptual index is
cached on disk beside the database from :data:`INDEX_CACHE_MIN_ROWS` rows, the
keypoint vote index from :data:`KEYPOINT_CACHE_MIN_ROWS` (``.kidx``, tied to the
inventory and its last keypoint row; anything else is rebuilt, with a warning).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from provenance._core import phash
from provenance._core.keypoints import KeypointIndex, stored_descriptors
from provenance._io.database import Backend, execute
from provenance._io.index import FleetIndex, HammingIndex, RowChunk
from provenance._io.index._keypoints import load_keypoint_cache, save_keypoint_cache
from provenance._io.sqlite import Database
from provenance.errors import InventoryError, ProvenanceError
from provenance.inventory._keypoints import _keypoint_rows, _keypoint_stamp
from provenance.inventory._packed import MARIADB_RANGE_KEYS, perceptual_range
from provenance.inventory._packs import note_unpacked, packed_ranges, read_pack
from provenance.inventory._pages import Opener, Read, key_ranges, read_ranges
from provenance.inventory._perceptual import (
    FLEET_MIN_ASSETS,
    _last_perceptual_pk,
    _load_cache,
    _perceptual_rows,
    perceptual_page,
)
from provenance.inventory._statements import SQL

_ASSET_COUNT = SQL.query(
    "asset_count", lambda sa, t: sa.select(sa.func.count()).select_from(t.assets)
)

INDEX_CACHE_MIN_ROWS = 50_000
"""Perceptual rows of a scheme from which the Hamming index is cached on disk."""

KEYPOINT_CACHE_MIN_ROWS = 500
"""Keypoint rows (assets) of a scheme from which the vote index is cached on disk: about
where it stops being exact (:data:`provenance._core.keypoints.FLAT_LIMIT`) and its
build starts to cost (37 s at 10k assets here, against 0.1 s for a mapped load)."""

# Rows of one PostgreSQL page (one read transaction, one packed row) for an index build.
# 512K rows (24 MB of hashes): half the client CPU of 2M-row pages for the same
# server CPU, measured at 10M assets (buffers under glibc's 32 MB mmap threshold
# are reused instead of mapped and faulted in again for every page).
_PACKED_PAGE_ROWS = 1 << 19
# Keys of one MariaDB key range of a cold build (inventory._packed: under a default
# server's 16 MB max_allowed_packet).
_MARIADB_RANGE_KEYS = MARIADB_RANGE_KEYS
# Key ranges of a cold build read on two connections, at most: keys so sparse that
# more ranges than this hold the rows are read page by page on one (no empty ranges).
_MAX_RANGE_PAGES = 1 << 12

_KEYPOINT_ROWS_PER_READ = 2_000  # about 20 MB of records per read

_log = logging.getLogger("provenance.inventory")
FLEET_PROBE_RADIUS = 3
"""Key bits a verifier's FleetIndex probe may differ in (the index's own default is 2).

On the real copies of ``benchmarks/robustness.py`` with the 21-bit keys of 1M
assets, 3 loses 3 of the 8,632 copies the exact search finds, against 11 at 2,
for about 2.6 times the lookup time (docs/search.md).
"""

# The clock of the index refresh interval (a module attribute so tests can move it).
_monotonic = time.monotonic


class _Indexes:
    """The indexes of one :class:`~provenance.inventory.Inventory`, keyed by scheme."""

    def __init__(
        self,
        db: Database,
        path: Path,
        *,
        refresh_s: float,
        read_only: bool,
        cache_files: bool = True,
        fleet_min_assets: int = FLEET_MIN_ASSETS,
        reader: Opener | None = None,
    ) -> None:
        self._db = db
        # A server: opens a second connection for a cold fleet build (inventory._pages).
        self._reader = reader
        # PostgreSQL: pages of _PACKED_PAGE_ROWS rows, packed by the server (see chunks;
        # MariaDB packs pages of rows_per_chunk rows, inventory._packed).
        self._backend = getattr(db.connection, "backend", None)
        self._path = path
        self._read_only = read_only
        # A server's index is built from the server (no .hidx file beside it).
        self._cache_files = cache_files
        # scheme -> (index over every perceptual row of it, ids = hash_pk)
        self._perceptual: dict[str, HammingIndex] = {}
        # Bounded staleness of the in-memory indexes: a scheme's perceptual index
        # (keyed by the scheme) and its keypoint index ("keypoints:<scheme>") ->
        # (monotonic time of the last look for new rows, total_changes then).
        self._index_refresh_s = refresh_s
        self._index_checked: dict[str, tuple[float, int]] = {}
        # scheme -> (keypoint index over every row of it, keys = keypoint_pk; last pk)
        self._keypoints: dict[str, tuple[KeypointIndex, int]] = {}
        # scheme -> fleet index over every perceptual row (ids = hash_pk, assets = asset_pk)
        self._fleet: dict[str, FleetIndex] = {}
        # scheme -> images in the keypoint cache file as last read or written
        self._keypoints_cached: dict[str, int] = {}
        self.keypoint_cache_loads = 0
        """Keypoint indexes taken from their cache file instead of being rebuilt."""
        self.keypoint_cache_writes = 0
        """Keypoint cache files written by this handle."""
        self.keypoint_rows_read = 0
        """Keypoint rows read from the database into an index by this handle."""
        # From how many assets the verifier's search is the fleet index (0: always,
        # as on a server). scheme -> the choice, made on the first search.
        self._fleet_min_assets = fleet_min_assets
        self._uses_fleet: dict[str, bool] = {}

    def uses_fleet(self, name: str) -> bool:
        """Whether the search over scheme ``name`` goes through the fleet index.

        Decided once per handle, on its first search: a server, or at least
        ``fleet_min_assets`` assets (one ``COUNT(*)``, no index built to know).
        """
        chosen = self._uses_fleet.get(name)
        if chosen is None:
            chosen = self._fleet_min_assets == 0 or (
                self._db.read(_asset_count) >= self._fleet_min_assets
            )
            self._uses_fleet[name] = chosen
        return chosen

    def chunks(self, name: str, after: int, rows_per_chunk: int = 1 << 16) -> Iterator[RowChunk]:
        """The perceptual rows of scheme ``name`` above key ``after``, one short read a page.

        On PostgreSQL a page is ``_PACKED_PAGE_ROWS`` rows (packed into one row
        by the server: about a quarter of a second each), cut into chunks of at most
        ``rows_per_chunk``; elsewhere one chunk of ``rows_per_chunk`` rows is one page.
        """
        packs = self._backend is Backend.POSTGRESQL
        limit = max(rows_per_chunk, _PACKED_PAGE_ROWS) if packs else rows_per_chunk
        while True:
            page = self._db.read(
                functools.partial(
                    perceptual_page, scheme=name, after=after, limit=limit, path=self._path
                )
            )
            if not page:
                return
            for chunk in page:
                for lo in range(0, chunk.row_ids.shape[0], rows_per_chunk):
                    part = slice(lo, lo + rows_per_chunk)
                    yield RowChunk(chunk.row_ids[part], chunk.assets[part], chunk.words[part])
            after = int(page[-1].row_ids[-1])
            if sum(chunk.row_ids.shape[0] for chunk in page) < limit:
                return

    def _every_row(self, name: str, last: int) -> Iterator[RowChunk]:
        """Every row of scheme ``name`` for a cold build: those up to key ``last``, then newer.

        On a server with many pages, the packs (``inventory._packs``) and the key
        ranges between them up to ``last`` are read on two connections at once
        (``inventory._pages``); otherwise as :meth:`chunks`.
        """
        if self._backend is Backend.POSTGRESQL:
            step = _PACKED_PAGE_ROWS
        else:
            step = _MARIADB_RANGE_KEYS if self._backend is Backend.MARIADB else 0
        opener = self._reader
        reads = self._cold_reads(name, last, step) if step and opener is not None else []
        if opener is None or len(reads) <= 2:
            yield from self.chunks(name, 0)
            return
        second = opener()
        try:
            for page in read_ranges([self._db, second], reads):
                yield from page
        finally:
            second.close()
        yield from self.chunks(name, last)

    def _cold_reads(self, name: str, last: int, step: int) -> list[Read]:
        """The pages of a cold build up to key ``last``: each pack, key ranges between them."""
        packs = [p for p in self._db.read(lambda c: packed_ranges(c, name)) if p[1] <= last]
        note_unpacked(packs, last, name, self._path)
        # Key ranges outside the packs (however many packs there are).
        if -(-last // step) - sum(hi - lo + 1 for lo, hi in packs) // step > _MAX_RANGE_PAGES:
            return []  # keys too sparse for key ranges: keyset pages on one connection
        reads: list[Read] = []
        after = 0
        for first, upto in [*packs, (last + 1, last)]:
            reads += [
                functools.partial(perceptual_range, scheme=name, after=lo, upto=hi, path=self._path)
                for lo, hi in key_ranges(after, first - 1, step)
            ]
            if upto >= first:
                reads.append(
                    functools.partial(
                        read_pack, scheme=name, first=first, last=upto, path=self._path
                    )
                )
            after = max(after, upto)
        return reads

    def fleet(self, name: str, hash_dir: Path | None) -> FleetIndex:
        """The FleetIndex of scheme ``name`` (see ``Inventory.fleet_index``)."""
        stamp = f"fleet:{name}"
        index = self._fleet.get(name)
        fresh, now, changes = self._checked_lately(stamp)
        if index is not None and fresh:
            return index
        last = self._db.read(lambda conn: _last_perceptual_pk(conn, name))
        if index is not None and index.last_row_id > last:
            index = None  # rows vanished (a restored backup): start again
        if index is None:
            chunks = self._every_row(name, last)
            first = next(chunks, None)
            default = phash.WORDS if name == phash.SCHEME else 1
            width = first.words.shape[1] if first is not None else default
            default_scheme = name == phash.SCHEME and width == phash.WORDS
            index = FleetIndex(
                words_per_hash=width,
                bit_order=FleetIndex.dct_bit_order(16) if default_scheme else None,
                hash_dir=hash_dir,
            )
            if first is None:
                return index  # no rows yet: built again (with its width) when there are
            # The keys go where the tables are sorted: sized by the last key.
            index.extend(itertools.chain([first], chunks), expected_rows=last)
        else:
            index.extend(self.chunks(name, index.last_row_id))
        self._fleet[name] = index
        self._index_checked[stamp] = (now, changes)
        return index

    def perceptual(self, name: str) -> HammingIndex:
        """The Hamming index of scheme ``name`` (see ``Inventory.perceptual_index``)."""
        index = self._perceptual.get(name)
        fresh, now, changes = self._checked_lately(name)
        if index is not None and fresh:
            return index
        last = self._db.read(lambda conn: _last_perceptual_pk(conn, name))
        cache = (
            self._path.with_name(f"{self._path.name}.{name}.hidx") if self._cache_files else None
        )
        if index is None and last and cache is not None and cache.exists():
            index = _load_cache(cache, last)
        if index is not None and len(index) and int(index.ids[-1]) > last:
            index = None  # rows vanished (a restored backup): start again
        have = int(index.ids[-1]) if index is not None and len(index) else 0
        if index is None or have < last:
            pks, words = self._db.read(lambda conn: _perceptual_rows(conn, name, have))
            built = index is None
            if index is None:
                width = words.shape[1] if words.size else 1
                index = HammingIndex(words, pks, words_per_hash=width)
            elif words.size:
                if words.shape[1] != index.words_per_hash:
                    raise InventoryError(
                        f"perceptual hashes of scheme {name} differ in length", path=self._path
                    )
                index.add(words, pks)
            rebuilt = built or (words.size > 0 and index.bands > 0 and index.tail == 0)
            if (
                rebuilt
                and cache is not None
                and len(index) >= INDEX_CACHE_MIN_ROWS
                and not self._read_only
            ):
                # A cache that cannot be written costs a rebuild next time, nothing else.
                with contextlib.suppress(OSError):
                    index.save(cache)
        self._perceptual[name] = index
        self._index_checked[name] = (now, changes)
        return index

    def _checked_lately(self, stamp: str) -> tuple[bool, float, int]:
        """Whether the index ``stamp`` was refreshed within ``index_refresh_s``.

        True only with a refresh interval, no write through this handle since,
        and less than the interval gone. Also returns the time and this
        connection's write count to record when the index is refreshed now.
        """
        now = _monotonic()
        changes = self._db.connection.total_changes if not self._db.closed else -1
        if self._index_refresh_s <= 0:
            return False, now, changes
        checked_at, changes_then = self._index_checked.get(stamp, (-math.inf, -1))
        fresh = changes == changes_then and now - checked_at < self._index_refresh_s
        return fresh, now, changes

    def close(self) -> None:
        """Drop the fleet indexes and the hash files they wrote."""
        for index in self._fleet.values():
            index.close()
        self._fleet.clear()

    def keypoints(self, name: str) -> KeypointIndex:
        """The keypoint index of scheme ``name`` (see ``Inventory.keypoint_index``)."""
        index: KeypointIndex | None
        index, last = self._keypoints.get(name, (None, 0))
        # The same staleness bound as the perceptual index (index_refresh_s): a
        # verifier sees another process's new assets at most that late, by both.
        stamp = f"keypoints:{name}"
        fresh, now, changes = self._checked_lately(stamp)
        if index is not None and not index.outgrown and fresh:
            return index
        if index is not None and index.outgrown:
            index, last = None, 0  # its lists were sized for a quarter of the rows
        cache = self.keypoint_cache(name)
        if index is None and cache is not None and cache.exists():
            index, last = self._load_keypoints(cache, name)
        built = index is None
        if index is None:
            index = KeypointIndex()
        added = 0
        while True:  # pages of rows: a new process reads 10 KB per asset, not all at once
            rows = self._db.read(
                functools.partial(
                    _keypoint_rows, scheme=name, after=last, limit=_KEYPOINT_ROWS_PER_READ
                )
            )
            for pk, blob in rows:
                with contextlib.suppress(ValueError):  # another version's row: not searched
                    index.add_descriptors(pk, *stored_descriptors(blob))
                last = pk
            added += len(rows)
            if len(rows) < _KEYPOINT_ROWS_PER_READ:
                break
        self.keypoint_rows_read += added
        self._keypoints[name] = (index, last)
        self._index_checked[stamp] = (now, changes)
        since_cache = len(index) - self._keypoints_cached.get(name, 0)
        stale = built or since_cache > len(index) // 10
        if cache is not None and added and stale and not index.outgrown:
            self._save_keypoints(index, cache, name, last)
        return index

    def write_keypoint_cache(self, name: str) -> Path | None:
        """The keypoint index of ``name``, refreshed, with its cache file written if missing."""
        index = self.keypoints(name)
        cache = self.keypoint_cache(name)
        if cache is not None and not cache.exists() and not index.outgrown:
            self._save_keypoints(index, cache, name, self._keypoints[name][1])
        return cache if cache is not None and cache.exists() else None

    def keypoint_cache(self, name: str) -> Path | None:
        """Where the keypoint index of ``name`` is cached (None for a server inventory)."""
        if not self._cache_files:
            return None
        return self._path.with_name(f"{self._path.name}.{name}.kidx")

    def _load_keypoints(self, cache: Path, name: str) -> tuple[KeypointIndex | None, int]:
        """The cached index and its last row key, or ``(None, 0)`` (logged) when unusable."""
        try:
            index, stamp = load_keypoint_cache(cache)
            last = int(stamp.get("last_pk", -1))
        except (ProvenanceError, ValueError, TypeError) as exc:
            _log.warning("%s; the keypoint index is rebuilt from the inventory", exc)
            return None, 0
        expected = self._db.read(lambda conn: _keypoint_stamp(conn, name, last))
        if index.outgrown:
            return None, 0  # rebuilt with lists sized for its rows, as in memory
        if stamp != expected:
            _log.warning(
                "%s: the keypoint index cache belongs to another inventory or to rows "
                "since replaced (a restored backup); it is rebuilt from the inventory",
                cache,
            )
            return None, 0
        self.keypoint_cache_loads += 1
        self._keypoints_cached[name] = len(index)
        return index, last

    def _save_keypoints(self, index: KeypointIndex, cache: Path, name: str, last: int) -> None:
        """Write the cache file (not for a read-only inventory; a failure costs a rebuild)."""
        if self._read_only or len(index) < KEYPOINT_CACHE_MIN_ROWS:
            return
        stamp = self._db.read(lambda conn: _keypoint_stamp(conn, name, last))
        try:
            save_keypoint_cache(index, cache, stamp=stamp)
        except OSError as exc:
            _log.warning("%s: cannot write the keypoint index cache: %s", cache, exc.strerror)
            return
        self.keypoint_cache_writes += 1
        self._keypoints_cached[name] = len(index)


def _asset_count(conn: sqlite3.Connection) -> int:
    """How many assets the inventory holds."""
    return int(execute(conn, _ASSET_COUNT).fetchone()[0])
