"""Pages of perceptual rows packed by the server into one row, unpacked by numpy (issue 16).

A verifier's cold start reads every perceptual row (220M at 10M assets).
Fetched as rows, each costs the driver a Python tuple and an object per value
(about 37k rows/s from PostgreSQL at 1M assets, 68k from MariaDB, here); a page
packed by the server into one row of a few values costs the driver nothing per
row: the count, the row keys and asset keys concatenated (PostgreSQL: big-endian
``int8send`` bytes; MariaDB: 16 hex digits each), the hashes concatenated, and
the least and greatest hash length (one width, or the page is refused). All
aggregates of one query see the same rows in the same order; that order need
not be the keys', so a page whose keys are not ascending is sorted here.

MariaDB's ``GROUP_CONCAT`` is cut at ``group_concat_max_len`` (set per session
by ``_io/database``) and at the server's ``max_allowed_packet``: a page that came
back cut is read again as rows (:func:`packed_page` returns None).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from provenance._io.database import Backend, execute
from provenance._io.index import RowChunk
from provenance.errors import InventoryError
from provenance.inventory._statements import SQL

# MariaDB packs pages of at most this many rows (4 MB of 256-bit hashes, under the
# 16 MB max_allowed_packet of a default server); larger pages are fetched as rows.
MARIADB_PACKED_ROWS = 1 << 17


def _rows(sa: Any, h: Any, *, upto: bool) -> Any:
    """A scheme's perceptual rows after the key ``after`` (and, with ``upto``, at most it)."""
    rows = sa.select(h.c.hash_pk, h.c.asset_pk, h.c.words).where(
        h.c.scheme == sa.bindparam("scheme"), h.c.hash_pk > sa.bindparam("after")
    )
    return rows.where(h.c.hash_pk <= sa.bindparam("upto")) if upto else rows


def _packed(*, upto: bool, hexed: bool) -> Any:
    """A page as one row: ``_perceptual._CHUNK``'s page, or the keys in ``(after, upto]``."""

    def build(sa: Any, t: Any) -> Any:
        h = t.perceptual_hashes
        rows = _rows(sa, h, upto=upto)
        if not upto:
            rows = rows.order_by(h.c.hash_pk).limit(sa.bindparam("limit"))
        if hexed:
            # MariaDB walks the (scheme, hash_pk) index and looks every row up in
            # the primary key (20 us of server CPU a row at 1M assets); the primary
            # key's own range is 2.7 times cheaper (measured on 2.2M rows).
            rows = rows.with_hint(h, "FORCE INDEX (PRIMARY)", "*")
        page = rows.subquery("page")
        if hexed:  # MariaDB: GROUP_CONCAT's SEPARATOR has no function-call spelling
            return sa.select(
                sa.func.count(),
                sa.literal_column("GROUP_CONCAT(LPAD(HEX(page.hash_pk), 16, '0') SEPARATOR '')"),
                sa.literal_column("GROUP_CONCAT(LPAD(HEX(page.asset_pk), 16, '0') SEPARATOR '')"),
                sa.literal_column("GROUP_CONCAT(page.words SEPARATOR '')"),
                sa.func.min(sa.func.length(page.c.words)),
                sa.func.max(sa.func.length(page.c.words)),
            ).select_from(page)
        joined = sa.literal_column("''::bytea")
        return sa.select(
            sa.func.count(),
            sa.func.string_agg(sa.func.int8send(page.c.hash_pk), joined),
            sa.func.string_agg(sa.func.int8send(page.c.asset_pk), joined),
            sa.func.string_agg(page.c.words, joined),
            sa.func.min(sa.func.octet_length(page.c.words)),
            sa.func.max(sa.func.octet_length(page.c.words)),
        )

    return build


_PACKED_PAGE = SQL.query(
    "perceptual_packed_page",
    _packed(upto=False, hexed=False),
    params=("scheme", "after", "limit"),
    only=Backend.POSTGRESQL,
    binary=True,
)
# The rows with keys in (after, upto]: pages known before any is read, so that
# several connections read them at once (a cold build, inventory._pages).
_PACKED_RANGE = SQL.query(
    "perceptual_packed_range",
    _packed(upto=True, hexed=False),
    params=("scheme", "after", "upto"),
    only=Backend.POSTGRESQL,
    binary=True,
)


# Rows of a span sent again with their key, to check the order the aggregates saw
# the rows in (_unspanned): those whose key is a multiple of the range's size over
# this (every row of a range of at most this many keys). 20 KB a 512K-row page.
SPAN_CHECKS = 512


def _span(sa: Any, t: Any) -> Any:
    """The rows with keys in ``(after, upto]`` as one row, without their keys.

    The count and the least and greatest key stand for the keys when the range
    has no gaps (a store's keys mostly have none): no ``int8send`` and append per
    row, and no least hash length (all of them have the greatest when the
    hashes fill ``count`` times it). The subquery's ``ORDER BY`` hands the
    aggregates the rows in key order: PostgreSQL documents that a sorted
    subquery "will usually work", not that it must, so the rows whose key is a
    multiple of ``stride`` come again with their key (``check``), and a span
    whose hashes are not where those keys say is read with its keys.
    """
    h = t.perceptual_hashes
    page = _rows(sa, h, upto=True).order_by(h.c.hash_pk).subquery("page")
    joined = sa.literal_column("''::bytea")
    keyed = sa.func.int8send(page.c.hash_pk).op("||")(page.c.words)
    return sa.select(
        sa.func.count(),
        sa.func.min(page.c.hash_pk),
        sa.func.max(page.c.hash_pk),
        sa.func.string_agg(sa.func.int8send(page.c.asset_pk), joined),
        sa.func.string_agg(page.c.words, joined),
        sa.func.max(sa.func.octet_length(page.c.words)),
        sa.func.string_agg(keyed, joined).filter(page.c.hash_pk % sa.bindparam("stride") == 0),
    )


# A cold build's key range without its keys (_span); one with gaps, or whose rows
# came in another order, is read again with them (_PACKED_RANGE). Measured at 10M
# assets: 0.80-0.87 s of server CPU a page of 2M rows against 0.96 s with the keys
# and least length (loaded machine), before the order check.
_PACKED_SPAN = SQL.query(
    "perceptual_packed_span",
    _span,
    params=("scheme", "after", "upto", "stride"),
    only=Backend.POSTGRESQL,
    binary=True,
)
_PACKED_PAGE_MARIADB = SQL.query(
    "perceptual_packed_page_mariadb",
    _packed(upto=False, hexed=True),
    params=("scheme", "after", "limit"),
    only=Backend.MARIADB,
)


def packed_page(
    conn: sqlite3.Connection, scheme: str, after: int, limit: int, path: Path
) -> list[RowChunk] | None:
    """``_perceptual.perceptual_page`` packed by a server (None: fetch the rows instead).

    Raises:
        InventoryError: Hashes of differing lengths.
    """
    backend = getattr(conn, "backend", None)
    if backend is Backend.POSTGRESQL:
        row = execute(conn, _PACKED_PAGE, (scheme, after, limit)).fetchone()
        return _unpacked(row, scheme, path, hexed=False)
    if backend is Backend.MARIADB and limit <= MARIADB_PACKED_ROWS:
        row = execute(conn, _PACKED_PAGE_MARIADB, (scheme, after, limit)).fetchone()
        return _unpacked(row, scheme, path, hexed=True)
    return None


def perceptual_range(
    conn: sqlite3.Connection, scheme: str, after: int, upto: int, path: Path
) -> list[RowChunk]:
    """The rows of ``scheme`` with ``after < hash_pk <= upto``, in key order (PostgreSQL only).

    Raises:
        InventoryError: Hashes of differing lengths.
    """
    stride = max(1, (upto - after) // SPAN_CHECKS)
    row = execute(conn, _PACKED_SPAN, (scheme, after, upto, stride)).fetchone()
    spanned = _unspanned(row, scheme, path, stride=stride)
    if spanned is not None:
        return spanned
    # Keys with gaps, or rows aggregated out of key order: read with their keys.
    row = execute(conn, _PACKED_RANGE, (scheme, after, upto)).fetchone()
    page = _unpacked(row, scheme, path, hexed=False)
    if page is None:
        raise InventoryError(f"a page of scheme {scheme} came back cut short", path=path)
    return page


def _unspanned(row: Any, scheme: str, path: Path, *, stride: int) -> list[RowChunk] | None:
    """One :data:`_PACKED_SPAN` row, unpacked (None: read it with its keys).

    None when its keys have gaps, or when a checked row (a key divisible by
    ``stride``, sent again with its hash) is not where its key puts it: the
    aggregates saw the rows in another order than the keys'.

    Raises:
        InventoryError: Hashes of differing lengths.
    """
    count, first, last, assets, words, longest, check = row
    if not count:
        return []
    if last - first + 1 != count:
        return None
    if longest % 8 or len(words) != longest * count or len(assets) != 8 * count:
        raise InventoryError(f"perceptual hashes of scheme {scheme} differ in length", path=path)
    hashes = np.frombuffer(words, dtype="<u8").reshape(count, longest // 8)
    if not _in_key_order(hashes, check, first, last, stride):
        return None
    keys = np.arange(first, last + 1, dtype=np.int64)
    owners = np.frombuffer(assets, dtype=">i8").astype(np.int64)
    return [RowChunk(row_ids=keys, assets=owners, words=hashes.astype(np.uint64, copy=False))]


def _in_key_order(
    hashes: np.ndarray, check: bytes | None, first: int, last: int, stride: int
) -> bool:
    """Whether each checked row's hash (key, then hash) is at its key's place in ``hashes``."""
    expected = last // stride - (first - 1) // stride  # keys in [first, last] divisible by it
    width = hashes.shape[1] * 8
    if expected == 0:
        return check is None
    if check is None or len(check) != expected * (8 + width):
        return False
    records = np.frombuffer(check, dtype=np.dtype([("key", ">i8"), ("hash", "<u8", (width // 8,))]))
    keys = records["key"].astype(np.int64)
    if np.any(keys % stride) or np.unique(keys).shape[0] != expected:
        return False
    if np.any(keys < first) or np.any(keys > last):
        return False
    return bool(np.array_equal(hashes[keys - first], records["hash"]))


def _unpacked(row: Any, scheme: str, path: Path, *, hexed: bool) -> list[RowChunk] | None:
    """One packed row, unpacked: one chunk in key order (``[]``: no rows; None: cut short)."""
    count, ids, assets, words, shortest, longest = row
    if not count:
        return []
    if shortest != longest or shortest % 8:
        raise InventoryError(f"perceptual hashes of scheme {scheme} differ in length", path=path)
    if ids is None or assets is None or words is None:
        return None
    if hexed:
        if len(ids) != 16 * count or len(assets) != 16 * count:
            return None
        ids, assets = bytes.fromhex(_text(ids)), bytes.fromhex(_text(assets))
    if len(ids) != 8 * count or len(assets) != 8 * count or len(words) != shortest * count:
        return None
    keys = np.frombuffer(ids, dtype=">i8").astype(np.int64)
    owners = np.frombuffer(assets, dtype=">i8").astype(np.int64)
    hashes = np.frombuffer(words, dtype="<u8").reshape(count, shortest // 8)
    if count > 1 and not bool(np.all(keys[1:] > keys[:-1])):
        # The aggregates saw the rows in one order, not necessarily the page's.
        order = np.argsort(keys, kind="stable")
        keys, owners, hashes = keys[order], owners[order], hashes[order]
    return [RowChunk(row_ids=keys, assets=owners, words=hashes.astype(np.uint64, copy=False))]


def _text(value: Any) -> str:
    return value.decode("ascii") if isinstance(value, bytes | bytearray) else str(value)
