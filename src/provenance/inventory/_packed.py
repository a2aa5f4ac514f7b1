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
back cut is read again as rows (:func:`packed_page` returns None; a cold build's
key range, :func:`perceptual_range`, reads them itself).

A cold build's key ranges (:func:`perceptual_range`, read on two connections by
``inventory._pages``) come as spans: the count and the first and last key stand
for the keys, and the rows at keys divisible by the range's size / 512 come again
with their key, so that a span the server aggregated out of key order is caught
and read again with its keys (:func:`_in_key_order`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
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
    return sa.select(*_span_columns(sa, _span_page(sa, t.perceptual_hashes)))


def _span_page(sa: Any, h: Any) -> Any:
    """The rows with keys in ``(after, upto]``, sorted by key, as a subquery ``page``."""
    return _rows(sa, h, upto=True).order_by(h.c.hash_pk).subquery("page")


def _span_columns(sa: Any, page: Any) -> tuple[Any, ...]:
    """A span's values over ``page``: count, first and last key, assets, hashes, width, check."""
    joined = sa.literal_column("''::bytea")
    keyed = sa.func.int8send(page.c.hash_pk).op("||")(page.c.words)
    return (
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


# MariaDB reads a cold build's key ranges of this many keys: a span's record (16 hex
# digits of the asset, then the hash) is 48 bytes for a 256-bit hash, 6.3 MB a range,
# under the 16 MB max_allowed_packet of a default server (which cuts a GROUP_CONCAT).
MARIADB_RANGE_KEYS = 1 << 17


def _hex16(sa: Any, column: Any) -> Any:
    """A key as 16 hex digits (MariaDB has no binary spelling of a BIGINT)."""
    return sa.func.lpad(sa.func.hex(column), 16, "0")


def _joined(sa: Any, value: Any) -> Any:
    """``GROUP_CONCAT(value SEPARATOR '')``: SEPARATOR has no function-call spelling."""
    return sa.func.group_concat(value.op("SEPARATOR")(sa.literal_column("''")))


def _range_mariadb(*, keyed: bool) -> Any:
    """MariaDB's rows with keys in ``(after, upto]`` as one row: a span, or with the keys.

    Straight from the primary key's range (no derived table: one with ``ORDER BY
    ... LIMIT`` is materialised, a BLOB column making it an on-disk temporary
    table; 1.2-1.4 against 0.6-0.7 us of server CPU a row, measured at 1M assets).
    ``GROUP_CONCAT`` without ``ORDER BY`` appends the rows as the range scan reads
    them, which is key order in practice, not by contract: a span is checked as
    PostgreSQL's (:func:`_span`), and keyed records are sorted if they are not.
    """

    def build(sa: Any, t: Any) -> Any:
        h = t.perceptual_hashes
        lengths = (sa.func.min(sa.func.length(h.c.words)), sa.func.max(sa.func.length(h.c.words)))
        keyed_record = sa.func.concat(_hex16(sa, h.c.hash_pk), h.c.words)
        if keyed:
            record = sa.func.concat(_hex16(sa, h.c.hash_pk), _hex16(sa, h.c.asset_pk), h.c.words)
            columns: tuple[Any, ...] = (sa.func.count(), _joined(sa, record), *lengths)
        else:
            checked = sa.case(
                (sa.func.mod(h.c.hash_pk, sa.bindparam("stride")) == 0, keyed_record),
                else_=sa.null(),
            )
            columns = (
                sa.func.count(),
                sa.func.min(h.c.hash_pk),
                sa.func.max(h.c.hash_pk),
                _joined(sa, sa.func.concat(_hex16(sa, h.c.asset_pk), h.c.words)),
                *lengths,
                _joined(sa, checked),
            )
        return _key_range_mariadb(sa, h, *columns)

    return build


def _key_range_mariadb(sa: Any, h: Any, *columns: Any) -> Any:
    """``columns`` over a scheme's rows with keys in ``(after, upto]``, read by primary key."""
    return (
        sa.select(*columns)
        .select_from(h)
        .where(
            h.c.scheme == sa.bindparam("scheme"),
            h.c.hash_pk > sa.bindparam("after"),
            h.c.hash_pk <= sa.bindparam("upto"),
        )
        .with_hint(h, "FORCE INDEX (PRIMARY)", "*")
    )


_SPAN_MARIADB = SQL.query(
    "perceptual_packed_span_mariadb",
    _range_mariadb(keyed=False),
    params=("scheme", "after", "upto", "stride"),
    only=Backend.MARIADB,
)
_RANGE_MARIADB = SQL.query(
    "perceptual_packed_range_mariadb",
    _range_mariadb(keyed=True),
    params=("scheme", "after", "upto"),
    only=Backend.MARIADB,
)
# A MariaDB range cut short (a server with a smaller max_allowed_packet): its rows.
_RANGE_ROWS = SQL.query(
    "perceptual_range_rows",
    lambda sa, t: _rows(sa, t.perceptual_hashes, upto=True).order_by(t.perceptual_hashes.c.hash_pk),
    params=("scheme", "after", "upto"),
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
    """The rows of ``scheme`` with ``after < hash_pk <= upto``, in key order (a server).

    A span first (no keys: :func:`_span`); one with gaps or aggregated out of
    key order is read again with its keys, and on MariaDB one cut short as rows.

    Raises:
        InventoryError: Hashes of differing lengths.
    """
    stride = max(1, (upto - after) // SPAN_CHECKS)
    if getattr(conn, "backend", None) is Backend.MARIADB:
        row = execute(conn, _SPAN_MARIADB, (scheme, after, upto, stride)).fetchone()
        spanned = _unspanned_mariadb(row, scheme, path, stride=stride)
        if spanned is not None:
            return spanned
        row = execute(conn, _RANGE_MARIADB, (scheme, after, upto)).fetchone()
        keyed = _unkeyed_mariadb(row, scheme, path)
        if keyed is not None:
            return keyed
        rows = execute(conn, _RANGE_ROWS, (scheme, after, upto)).fetchall()
        return fetched_chunk(rows, scheme, path)
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
    if not _checked(hashes, check, first, last, stride, hexed=False):
        return None
    return _spanned(first, last, np.frombuffer(assets, dtype=">i8").astype(np.int64), hashes)


def _unspanned_mariadb(row: Any, scheme: str, path: Path, *, stride: int) -> list[RowChunk] | None:
    """One :data:`_SPAN_MARIADB` row, unpacked (None: gaps, out of order, or cut short).

    Raises:
        InventoryError: Hashes of differing lengths.
    """
    count, first, last, records, shortest, longest, check = row
    if not count:
        return []
    if shortest != longest or longest % 8:
        raise InventoryError(f"perceptual hashes of scheme {scheme} differ in length", path=path)
    if last - first + 1 != count or records is None or len(records) != count * (16 + longest):
        return None
    fields = np.frombuffer(records, dtype=np.dtype([("asset", "S16"), ("hash", f"V{longest}")]))
    hashes = np.frombuffer(fields["hash"].tobytes(), dtype="<u8").reshape(count, longest // 8)
    if not _checked(hashes, check, first, last, stride, hexed=True):
        return None
    return _spanned(first, last, _hex_keys(fields["asset"]), hashes)


def _unkeyed_mariadb(row: Any, scheme: str, path: Path) -> list[RowChunk] | None:
    """One :data:`_RANGE_MARIADB` row, unpacked in key order (None: cut short).

    Raises:
        InventoryError: Hashes of differing lengths.
    """
    count, records, shortest, longest = row
    if not count:
        return []
    if shortest != longest or longest % 8:
        raise InventoryError(f"perceptual hashes of scheme {scheme} differ in length", path=path)
    if records is None or len(records) != count * (32 + longest):
        return None
    layout = np.dtype([("key", "S16"), ("asset", "S16"), ("hash", f"V{longest}")])
    fields = np.frombuffer(records, dtype=layout)
    hashes = np.frombuffer(fields["hash"].tobytes(), dtype="<u8").reshape(count, longest // 8)
    return _in_order(_hex_keys(fields["key"]), _hex_keys(fields["asset"]), hashes)


def fetched_chunk(rows: Sequence[Any], scheme: str, path: Path) -> list[RowChunk]:
    """Rows ``(hash_pk, asset_pk, words)`` as one chunk (``[]``: none).

    Raises:
        InventoryError: Hashes of differing lengths.
    """
    if not rows:
        return []
    ids, assets, blobs = zip(*rows, strict=True)
    width = len(blobs[0])
    if width % 8 or len(set(map(len, blobs))) != 1:
        raise InventoryError(f"perceptual hashes of scheme {scheme} differ in length", path=path)
    words = np.frombuffer(b"".join(blobs), dtype="<u8").reshape(len(rows), width // 8)
    keys = np.array(ids, dtype=np.int64)
    return _in_order(keys, np.array(assets, dtype=np.int64), words)


def _checked(
    hashes: np.ndarray, check: bytes | None, first: int, last: int, stride: int, *, hexed: bool
) -> bool:
    """Whether a span's checked rows (``check``) say it came in key order."""
    checked = _records(check, hashes.shape[1] * 8, hexed=hexed)
    return checked is not None and _in_key_order(hashes, *checked, first, last, stride)


def _spanned(first: int, last: int, owners: np.ndarray, hashes: np.ndarray) -> list[RowChunk]:
    """A checked span as one chunk: keys ``first`` to ``last``, one per row."""
    keys = np.arange(first, last + 1, dtype=np.int64)
    return [RowChunk(row_ids=keys, assets=owners, words=hashes.astype(np.uint64, copy=False))]


def _records(check: bytes | None, width: int, *, hexed: bool) -> tuple[Any, Any] | None:
    """A span's checked rows: their keys and hashes (None: not whole records)."""
    if check is None:
        return np.zeros(0, np.int64), np.zeros((0, width // 8), np.uint64)
    size = (16 if hexed else 8) + width
    if len(check) % size:
        return None
    key = ("key", "S16") if hexed else ("key", ">i8")
    records = np.frombuffer(check, dtype=np.dtype([key, ("hash", "<u8", (width // 8,))]))
    keys = _hex_keys(records["key"]) if hexed else records["key"].astype(np.int64)
    return keys, records["hash"]


def _in_key_order(
    hashes: np.ndarray, keys: np.ndarray, checked: np.ndarray, first: int, last: int, stride: int
) -> bool:
    """Whether each checked row's hash is at its key's place in ``hashes`` (and all came)."""
    expected = last // stride - (first - 1) // stride  # keys in [first, last] divisible by it
    if keys.shape[0] != expected or np.unique(keys).shape[0] != expected:
        return False
    if expected == 0:
        return True
    if np.any(keys % stride) or np.any(keys < first) or np.any(keys > last):
        return False
    return bool(np.array_equal(hashes[keys - first], checked))


# Hex digit (either case) -> its value.
_NIBBLES = np.zeros(256, np.uint8)
_NIBBLES[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_NIBBLES[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)
_NIBBLES[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)


def _hex_keys(column: np.ndarray) -> np.ndarray:
    """16 hex digits each (numpy ``S16``) -> the keys."""
    nibbles = _NIBBLES[np.frombuffer(column.tobytes(), np.uint8).reshape(-1, 16)]
    packed = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    return np.ascontiguousarray(packed).view(">i8").reshape(-1).astype(np.int64)


def _in_order(keys: np.ndarray, owners: np.ndarray, hashes: np.ndarray) -> list[RowChunk]:
    """One chunk, sorted by key if the rows came in another order."""
    if keys.shape[0] > 1 and not bool(np.all(keys[1:] > keys[:-1])):
        order = np.argsort(keys, kind="stable")
        keys, owners, hashes = keys[order], owners[order], hashes[order]
    return [RowChunk(row_ids=keys, assets=owners, words=hashes.astype(np.uint64, copy=False))]


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
    # The aggregates saw the rows in one order, not necessarily the page's.
    return _in_order(keys, owners, np.frombuffer(words, dtype="<u8").reshape(count, shortest // 8))


def _text(value: Any) -> str:
    return value.decode("ascii") if isinstance(value, bytes | bytearray) else str(value)
