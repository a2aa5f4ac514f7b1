"""Packed snapshots of sealed key ranges of perceptual rows, in the server (issue 16).

A verifier's cold build reads every perceptual row (220M at 10M assets); read as
key ranges (``inventory._packed``) the server aggregates each row again for
every new verifier (0.6 us of server CPU a row on PostgreSQL, 1.0 on MariaDB).
A pack is one such range aggregated once and stored as a row of
``perceptual_packs``: the count, the first and last key, the width, the 8-byte
big-endian asset keys, the hashes and the span's order check, exactly what
:func:`~provenance.inventory._packed.perceptual_range` reads from a span; a
cold build reads a pack as one sequential BLOB (:func:`read_pack`).

Only **sealed** ranges are packed: ``(k * PACK_KEYS, (k + 1) * PACK_KEYS]`` with
every key present and of the one scheme (``count = PACK_KEYS``), so no open
writer can still add a row to it and a range with a rolled-back key (a gap)
stays unpacked. Packs are written by ``INSERT ... SELECT`` of the span
statement (the data never goes through Python), each range in its own short
transaction, by :func:`pack_perceptual` (``provenance inventory pack``); a
duplicate pack (another packer at once) is skipped by the primary key.

A pack must never hide a change: every UPDATE, DELETE (and PostgreSQL
TRUNCATE) of perceptual rows bumps the ``perceptual_generation`` counter in
``provenance_meta`` (a trigger, ``_io/database/_triggers``), each pack records
the generation it was made at, in the same statement as its rows, and only packs
of the current generation are read. The next :func:`pack_perceptual` drops the
stale ones and packs the ranges again. What no trigger sees (MariaDB's
``TRUNCATE``, a table dropped and loaded again) is caught when the rows at a
pack's two ends are not the ones it holds (read with the pack, by key).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from provenance._io.database import Backend, execute
from provenance._io.index import RowChunk
from provenance.errors import InventoryError
from provenance.inventory._packed import (
    SPAN_CHECKS,
    _checked,
    _hex16,
    _joined,
    _key_range_mariadb,
    _span_columns,
    _span_page,
    _spanned,
    perceptual_range,
)
from provenance.inventory._perceptual import _last_perceptual_pk
from provenance.inventory._statements import PACKS_SCHEMA_VERSION, PERCEPTUAL_GENERATION, SQL

__all__ = [
    "PACK_KEYS",
    "PackReport",
    "note_unpacked",
    "pack_perceptual",
    "packed_ranges",
    "read_pack",
]

PACK_KEYS = 1 << 17
"""Keys of one pack: 131,072 rows, 5.2 MB with 256-bit hashes (8-byte assets, 32-byte
hashes, 20 KB of order check), read as one value: well under the 16 MB
``max_allowed_packet`` of a default MariaDB server (hashes up to 96 bytes fit)."""

# A cold build that finds at least this many full ranges unpacked says so (INFO).
_HINT_RANGES = 4

_log = logging.getLogger("provenance.inventory")

_COLUMNS = ("scheme", "first_pk", "last_pk", "row_count", "width", "generation")
_BLOBS = ("assets", "words", "checks")


def _generation(sa: Any, t: Any) -> Any:
    """The current generation of the perceptual rows (a scalar subquery)."""
    meta = t.provenance_meta
    value = sa.select(sa.cast(meta.c.value, sa.BigInteger())).where(
        meta.c.name == PERCEPTUAL_GENERATION
    )
    return value.scalar_subquery()


def _scheme(sa: Any) -> Any:
    return sa.cast(sa.bindparam("scheme"), sa.String(64))


def _pack_postgresql(sa: Any, t: Any) -> Any:
    """PostgreSQL: the span of ``(after, upto]`` stored as a pack, if sealed (``size`` rows)."""
    from sqlalchemy.dialects.postgresql import insert

    page = _span_page(sa, t.perceptual_hashes)
    count, first, last, assets, words, width, check = _span_columns(sa, page)
    rows = sa.select(
        _scheme(sa), first, last, count, width, _generation(sa, t), assets, words, check
    ).having(
        count == sa.bindparam("size"),
        sa.func.min(sa.func.octet_length(page.c.words)) == width,
    )
    stored = insert(t.perceptual_packs).from_select([*_COLUMNS, *_BLOBS], rows)
    return stored.on_conflict_do_nothing()


def _pack_mariadb(sa: Any, t: Any) -> Any:
    """MariaDB: as :func:`_pack_postgresql`, keys as 8 big-endian bytes (``UNHEX``)."""
    from sqlalchemy.dialects.mysql import insert

    h = t.perceptual_hashes
    length = sa.func.length(h.c.words)
    checked = sa.case(
        (
            sa.func.mod(h.c.hash_pk, sa.bindparam("stride")) == 0,
            sa.func.concat(sa.func.unhex(_hex16(sa, h.c.hash_pk)), h.c.words),
        ),
        else_=sa.null(),
    )
    rows = _key_range_mariadb(
        sa,
        h,
        _scheme(sa),
        sa.func.min(h.c.hash_pk),
        sa.func.max(h.c.hash_pk),
        sa.func.count(),
        sa.func.max(length),
        _generation(sa, t),
        _joined(sa, sa.func.unhex(_hex16(sa, h.c.asset_pk))),
        _joined(sa, h.c.words),
        _joined(sa, checked),
    ).having(sa.func.count() == sa.bindparam("size"), sa.func.min(length) == sa.func.max(length))
    # IGNORE: a pack another packer stored first is kept, and the rowcount says 0
    # (ON DUPLICATE KEY UPDATE counts the duplicate: the dialect's FOUND_ROWS flag).
    # Errors it would turn into warnings cannot corrupt a read: a value cut short
    # fails the reader's length checks and the range is read from the rows.
    return insert(t.perceptual_packs).prefix_with("IGNORE").from_select([*_COLUMNS, *_BLOBS], rows)


def _servers(name: str, build: Any, params: tuple[str, ...], *, binary: bool = False) -> Any:
    """One statement per server engine (SQLite has no packs: none for it, none in its snapshot)."""
    return {
        backend: SQL.query(
            f"{name}_{backend.value}", build, params=params, only=backend, binary=binary
        )
        for backend in (Backend.POSTGRESQL, Backend.MARIADB)
    }


_PARAMS = ("scheme", "after", "upto", "stride", "size")
_PACK = {
    Backend.POSTGRESQL: SQL.query(
        "perceptual_pack_postgresql", _pack_postgresql, params=_PARAMS, only=Backend.POSTGRESQL
    ),
    Backend.MARIADB: SQL.query(
        "perceptual_pack_mariadb", _pack_mariadb, params=_PARAMS, only=Backend.MARIADB
    ),
}


def _current(sa: Any, t: Any) -> Any:
    packs = t.perceptual_packs
    return (packs.c.scheme == sa.bindparam("scheme"), packs.c.generation == _generation(sa, t))


# The packs of the current generation, in key order (a few thousand rows at 10M assets).
_PACKED = _servers(
    "perceptual_packs_current",
    lambda sa, t: (
        sa.select(t.perceptual_packs.c.first_pk, t.perceptual_packs.c.last_pk)
        .where(*_current(sa, t))
        .order_by(t.perceptual_packs.c.first_pk)
    ),
    ("scheme",),
)


def _read(sa: Any, t: Any) -> Any:
    """A current pack by its first key, with the stored rows at both its ends (spot check)."""
    packs, h = t.perceptual_packs, t.perceptual_hashes

    def stored(column: Any, key: Any) -> Any:
        at = sa.select(column).where(h.c.scheme == packs.c.scheme, h.c.hash_pk == key)
        return at.scalar_subquery()

    return sa.select(
        *(
            packs.c[c]
            for c in ("row_count", "first_pk", "last_pk", "width", "assets", "words", "checks")
        ),
        stored(h.c.asset_pk, packs.c.first_pk),
        stored(h.c.words, packs.c.first_pk),
        stored(h.c.asset_pk, packs.c.last_pk),
        stored(h.c.words, packs.c.last_pk),
    ).where(*_current(sa, t), packs.c.first_pk == sa.bindparam("first_pk"))


_READ = _servers("perceptual_pack_read", _read, ("scheme", "first_pk"), binary=True)
_STALE = _servers(
    "perceptual_packs_stale",
    lambda sa, t: sa.delete(t.perceptual_packs).where(
        t.perceptual_packs.c.scheme == sa.bindparam("scheme"),
        t.perceptual_packs.c.generation != _generation(sa, t),
    ),
    ("scheme",),
)


@dataclass(frozen=True, slots=True)
class PackReport:
    """What :meth:`Inventory.pack_perceptual` did for one scheme.

    Attributes:
        scheme: The perceptual scheme.
        ranges_packed: Sealed key ranges packed now.
        rows_packed: Their rows.
        packs: Packs of the current generation after it (those packed before included).
        unsealed: Full-length ranges below the last key left unpacked: a key missing
            (a rolled-back write) or of another scheme; tried again next time.
        stale_dropped: Packs of an older generation dropped (the rows changed since).
        seconds: Wall time.
    """

    scheme: str
    ranges_packed: int
    rows_packed: int
    packs: int
    unsealed: int
    stale_dropped: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``provenance inventory pack --json``)."""
        return {
            "scheme": self.scheme,
            "ranges_packed": self.ranges_packed,
            "rows_packed": self.rows_packed,
            "packs": self.packs,
            "unsealed": self.unsealed,
            "stale_dropped": self.stale_dropped,
            "seconds": round(self.seconds, 3),
        }


def pack_stride(first: int, last: int) -> int:
    """The order check's stride of a range (``perceptual_range``'s for the same range)."""
    return max(1, (last - first + 1) // SPAN_CHECKS)


def pack_perceptual(db: Any, scheme: str, path: Path, *, keys: int | None = None) -> PackReport:
    """Pack every sealed, unpacked key range of ``scheme`` (a writable server inventory).

    Ranges of ``keys`` keys (default :data:`PACK_KEYS`, read when called).

    Each range is one ``INSERT ... SELECT`` in its own transaction, without the
    writer row: signing goes on meanwhile (a sealed range takes no new row).

    Raises:
        InventoryError: Not a server inventory, opened read-only, the generation
            trigger is missing (a pack could then hide a later DELETE), or the
            server failed (the packs stored so far are kept: each is whole).
    """
    started = time.perf_counter()
    keys = PACK_KEYS if keys is None else keys
    conn = db.connection
    backend = getattr(conn, "backend", None)
    if backend not in _PACK:
        raise InventoryError(
            "an SQLite inventory has no packs: its cold build reads the file itself", path=path
        )
    label = backend.label
    if db.read_only:
        raise InventoryError(f"{label}: inventory is read-only; nothing was packed", path=path)
    if PERCEPTUAL_GENERATION not in conn.tracked_generations:
        raise InventoryError(
            f"{label}: the trigger that records changes to perceptual rows is missing and "
            "could not be created by this role (see the warning when it opened); "
            "nothing was packed",
            path=path,
        )
    dropped = db.retry_busy(lambda c: execute(c, _STALE[backend], (scheme,)).rowcount)
    last = db.read(lambda c: _last_perceptual_pk(c, scheme))
    present = {first for first, _ in db.read(lambda c: packed_ranges(c, scheme))}
    packed = tried = 0
    for lo in range(0, last - keys + 1, keys):
        if lo + 1 in present:
            continue
        params = (scheme, lo, lo + keys, pack_stride(lo + 1, lo + keys), keys)
        stored = db.retry_busy(lambda c, p=params: execute(c, _PACK[backend], p).rowcount)
        packed += int(stored > 0)
        tried += 1
    everything = db.read(lambda c: packed_ranges(c, scheme))
    # Ranges tried and not stored: unsealed, or stored by another packer meanwhile.
    unsealed = tried - packed - (len(everything) - len(present) - packed)
    return PackReport(
        scheme=scheme,
        ranges_packed=packed,
        rows_packed=packed * keys,
        packs=len(everything),
        unsealed=max(0, unsealed),
        stale_dropped=max(0, int(dropped)),
        seconds=time.perf_counter() - started,
    )


def packed_ranges(conn: sqlite3.Connection, scheme: str) -> list[tuple[int, int]]:
    """``(first_pk, last_pk)`` of every current pack of ``scheme``, ascending.

    ``[]`` on SQLite, and on a server at schema version 4 (open read-only, not
    upgraded: it has no packs table).
    """
    backend = getattr(conn, "backend", None)
    if backend not in _PACKED or getattr(conn, "schema_version", 0) < PACKS_SCHEMA_VERSION:
        return []
    return [(int(f), int(la)) for f, la in execute(conn, _PACKED[backend], (scheme,)).fetchall()]


def note_unpacked(packs: list[tuple[int, int]], last: int, scheme: str, path: Path) -> int:
    """Log (INFO) how many rows below ``last`` could be packed and are not; returns it.

    A cold build never packs (a verifier may be read-only): the log names the
    command that does, when at least :data:`_HINT_RANGES` full ranges are unpacked.
    """
    covered = sum(hi - lo + 1 for lo, hi in packs)
    unpacked = (last // PACK_KEYS) * PACK_KEYS - covered
    if unpacked >= _HINT_RANGES * PACK_KEYS:
        _log.info(
            "%s: %d perceptual rows of %s are not packed; `provenance inventory pack` "
            "makes later cold builds read them as packs (docs/inventory.md)",
            path,
            unpacked,
            scheme,
        )
    return max(0, unpacked)


def read_pack(
    conn: sqlite3.Connection, scheme: str, first: int, last: int, path: Path
) -> list[RowChunk]:
    """The rows of the pack ``[first, last]``, in key order, as :func:`perceptual_range`'s.

    A pack gone since it was listed (dropped as stale), or that fails its
    checks, is not trusted: the range is read from the rows instead.

    Raises:
        InventoryError: Hashes of differing lengths in the rows.
    """
    row = execute(conn, _READ[getattr(conn, "backend", None)], (scheme, first)).fetchone()
    chunks = _unpacked(row, first, last) if row is not None else None
    if chunks is None:
        return perceptual_range(conn, scheme, first - 1, last, path)
    return chunks


def _unpacked(row: Any, first: int, last: int) -> list[RowChunk] | None:
    """One pack, unpacked (None: the pack is not to be trusted).

    Not the range asked for, not whole, out of order, or its first or last row is
    not the one stored now (rows replaced without a trigger firing, as by
    MariaDB's ``TRUNCATE`` and a reload).
    """
    count, low, high, width, assets, words, check, *ends = row
    if (low, high) != (first, last) or count != last - first + 1 or width <= 0 or width % 8:
        return None
    if len(assets) != 8 * count or len(words) != width * count:
        return None
    if ends != [
        int.from_bytes(assets[:8], "big", signed=True),
        words[:width],
        int.from_bytes(assets[-8:], "big", signed=True),
        words[-width:],
    ]:
        return None
    hashes = np.frombuffer(words, dtype="<u8").reshape(count, width // 8)
    if not _checked(hashes, check, first, last, pack_stride(first, last), hexed=False):
        return None
    return _spanned(first, last, np.frombuffer(assets, dtype=">i8").astype(np.int64), hashes)
