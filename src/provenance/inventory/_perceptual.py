"""Perceptual rows of the inventory.

Checked inserts, paged reads for the Hamming index, the on-disk index cache,
the refresh interval of the in-memory index and the fleet threshold.

Opening an inventory imports this module, so numpy and the index modules are
imported inside the functions that need them: a verifier that only looks up a
file's hashes loads neither numpy nor Pillow (issue 20).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from provenance._io.database import Conflict, execute, executemany
from provenance.errors import (
    InventoryError,
    ProvenanceError,
)
from provenance.inventory._bindings import _perceptual_row_hash, _stored_perceptual
from provenance.inventory._entries import PerceptualMatch
from provenance.inventory._rows import _PAGE, _load
from provenance.inventory._statements import ASSET_KEY, DESCRIPTOR, SQL

if TYPE_CHECKING:
    import numpy as np

    from provenance._core.phash import ReferenceHashes
    from provenance._io.index import HammingIndex, RowChunk

T = TypeVar("T")

_SCHEME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


# Perceptual rows read from the database per step when the index is built.
_ROWS_PER_READ = 1 << 16


DEFAULT_INDEX_REFRESH_S = 0.0
"""Default of ``Inventory(index_refresh_s=)``: look for new perceptual rows on every lookup."""

INDEX_REFRESH_ENV_VAR = "PROVENANCE_INDEX_REFRESH_S"
"""Environment variable read when ``Inventory(index_refresh_s=None)`` (the default)."""

FLEET_MIN_ASSETS = 100_000
"""Assets from which a verifier searches a SQLite inventory with the FleetIndex.

Below it the exact :class:`~provenance.HammingIndex` answers; from it (and on
every server inventory) one whole :class:`~provenance.FleetIndex` lookup does
(docs/search.md, "When verify switches"; ``benchmarks/index.py``).
"""

FLEET_MIN_ASSETS_ENV_VAR = "PROVENANCE_FLEET_MIN_ASSETS"
"""Environment variable read when ``Inventory(fleet_min_assets=None)``."""


def _scheme(name: str, path: Path) -> str:
    if not isinstance(name, str) or not _SCHEME_NAME.match(name):
        raise InventoryError(
            f"perceptual scheme name must be 1-64 letters, digits, '.', '_' or '-': {name!r}",
            path=path,
        )
    return name


_INSERT_HASH = SQL.insert(
    "insert_perceptual_hash",
    "perceptual_hashes",
    ("asset_pk", "scheme", "variant", "words"),
    conflict=Conflict.IGNORE,
)
_INSERT_DESCRIPTOR = SQL.insert(
    "insert_perceptual_descriptor",
    "perceptual_descriptors",
    ("asset_pk", "scheme", "descriptor"),
    conflict=Conflict.IGNORE,
)


def _rows_after(*, assets: bool, limit: bool) -> Any:
    """Rows of a scheme past a key, in key order (``hash_pk, [asset_pk,] words``)."""

    def build(sa: Any, t: Any) -> Any:
        h = t.perceptual_hashes
        columns = (h.c.hash_pk, h.c.asset_pk, h.c.words) if assets else (h.c.hash_pk, h.c.words)
        query = (
            sa.select(*columns)
            .where(h.c.scheme == sa.bindparam("scheme"), h.c.hash_pk > sa.bindparam("after"))
            .order_by(h.c.hash_pk)
        )
        return query.limit(sa.bindparam("limit")).offset(sa.literal_column("0")) if limit else query

    return build


# Every row of a scheme (an index build): a server streams them.
_ROWS_AFTER = SQL.query(
    "perceptual_rows_after",
    _rows_after(assets=False, limit=False),
    params=("scheme", "after"),
    stream=True,
)
_CHUNK = SQL.query(
    "perceptual_chunk", _rows_after(assets=True, limit=True), params=("scheme", "after", "limit")
)


_LAST_KEY = SQL.query(
    "perceptual_last_key",
    lambda sa, t: sa.select(sa.func.max(t.perceptual_hashes.c.hash_pk)).where(
        t.perceptual_hashes.c.scheme == sa.bindparam("scheme")
    ),
    params=("scheme",),
)


def _rows_in(sa: Any, t: Any, count: int) -> Any:
    h = t.perceptual_hashes
    return sa.select(h.c.hash_pk, h.c.asset_pk, h.c.variant, h.c.words).where(
        h.c.scheme == sa.bindparam("scheme"),
        h.c.hash_pk.in_([sa.bindparam(f"v{i}") for i in range(count)]),
    )


_ROWS_IN = SQL.query("perceptual_rows_in", _rows_in, params=("scheme",), sized=True)


@dataclass(frozen=True, slots=True)
class _PerceptualInsert:
    """One asset's perceptual rows, checked and ready to insert in a transaction."""

    scheme: str
    rows: tuple[tuple[str, bytes], ...]
    descriptor: bytes

    def run(
        self, conn: sqlite3.Connection, asset_id: str, path: Path, *, asset_pk: int | None = None
    ) -> tuple[int, str | None]:
        """Insert (idempotently) for ``asset_id`` (whose row key is ``asset_pk`` when known).

        Returns:
            How many hash rows were added, and the binding hash of every row of
            the scheme now stored for the asset (None when nothing changed).
        """
        pk = _asset_key(conn, asset_id, path) if asset_pk is None else asset_pk
        before = conn.total_changes
        executemany(
            conn,
            _INSERT_HASH,
            [(pk, self.scheme, variant, blob) for variant, blob in self.rows],
        )
        added = conn.total_changes - before
        if self.descriptor:
            execute(conn, _INSERT_DESCRIPTOR, (pk, self.scheme, self.descriptor))
        changed = conn.total_changes - before
        if changed == 0:
            return 0, None
        if added == len(self.rows) and changed == added + (1 if self.descriptor else 0):
            # Nothing was stored before: the rows are exactly these (the usual case).
            rows: Iterable[tuple[str, bytes]] = self.rows
            descriptor = self.descriptor
        else:
            rows, descriptor = _stored_perceptual(conn, pk, self.scheme)
        return added, _perceptual_row_hash(asset_id, self.scheme, rows, descriptor)


def _asset_key(conn: sqlite3.Connection, asset_id: str, path: Path) -> int:
    """The row key of a recorded asset."""
    found = execute(conn, ASSET_KEY, (asset_id,)).fetchone()
    if found is None:
        raise InventoryError(f"no asset {asset_id} in the inventory", path=path)
    return int(found[0])


def _perceptual_insert(
    reference: ReferenceHashes, scheme: str | None, path: Path
) -> _PerceptualInsert:
    import numpy as np

    name = _scheme(scheme if scheme is not None else reference.scheme, path)
    words = np.ascontiguousarray(np.asarray(reference.words), dtype="<u8")
    if words.ndim != 2 or words.shape[0] != len(reference.variants) or words.shape[1] < 1:
        raise InventoryError(
            f"perceptual hashes must be (K, W) uint64 with one variant name per row, "
            f"got {words.shape} for {len(reference.variants)} names",
            path=path,
        )
    rows = tuple((variant, words[i].tobytes()) for i, variant in enumerate(reference.variants))
    return _PerceptualInsert(name, rows, bytes(reference.descriptor))


def _perceptual_rows(
    conn: sqlite3.Connection, scheme: str, after: int
) -> tuple[np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, np.dtype[np.uint64]]]:
    """Row keys and words of ``scheme`` with ``hash_pk > after``, in key order.

    Read page by page into arrays (fleetindex): a list of every row as Python
    objects took about five times the hashes' own size at 22M rows.
    """
    import numpy as np

    cursor = execute(conn, _ROWS_AFTER, (scheme, after))
    pk_parts: list[np.ndarray[Any, np.dtype[np.int64]]] = []
    word_parts: list[np.ndarray[Any, np.dtype[np.uint64]]] = []
    width = 0
    while page := cursor.fetchmany(_ROWS_PER_READ):
        blobs = [bytes(blob) for _, blob in page]
        width = width or len(blobs[0])
        if any(len(blob) != width for blob in blobs):
            raise InventoryError(f"perceptual hashes of scheme {scheme} differ in length")
        pk_parts.append(np.fromiter((pk for pk, _ in page), dtype=np.int64, count=len(page)))
        words = np.frombuffer(b"".join(blobs), dtype="<u8").astype(np.uint64)
        word_parts.append(words.reshape(len(page), width // 8))
    if not pk_parts:
        return np.zeros(0, np.int64), np.zeros((0, 1), np.uint64)
    if len(pk_parts) == 1:
        return pk_parts[0], word_parts[0]
    return np.concatenate(pk_parts), np.concatenate(word_parts)


def perceptual_page(
    conn: sqlite3.Connection, scheme: str, after: int, limit: int, path: Path
) -> list[RowChunk]:
    """Up to ``limit`` rows of ``scheme`` with ``hash_pk > after``, in key order (``[]``: none).

    One keyset page (``hash_pk > ? ORDER BY hash_pk LIMIT ?`` on the
    ``(scheme, hash_pk)`` index): a reader asks page after page, each its own
    short read, so building an index of millions of rows holds no transaction
    open. A server packs the page into one row of a few values, unpacked by
    numpy (``inventory._packed``); SQLite's rows are fetched.

    Raises:
        InventoryError: Hashes of differing lengths.
    """
    from provenance.inventory._packed import fetched_chunk, packed_page

    packed = packed_page(conn, scheme, after, limit, path)
    if packed is not None:
        return packed
    return fetched_chunk(execute(conn, _CHUNK, (scheme, after, limit)).fetchall(), scheme, path)


def _setting(
    value: T | None,
    *,
    name: str,
    env_var: str,
    default: T,
    parse: Callable[[str], T],
    valid: Callable[[T], bool],
    unit: str,
    path: str | os.PathLike[str],
) -> T:
    """A handle's numeric setting: ``value``, else ``$env_var``, else ``default``.

    Raises:
        InventoryError: Not a valid value, naming the argument or the variable.
    """
    shown = repr(value)
    if value is None:
        configured = os.environ.get(env_var, "").strip()
        if not configured:
            return default
        name, shown = f"${env_var}", repr(configured)
        with contextlib.suppress(ValueError):
            value = parse(configured)
    if value is None or isinstance(value, bool) or not valid(value):
        raise InventoryError(f"{name} must be a number of {unit} >= 0, got {shown}", path=path)
    return value


def _index_refresh_s(value: float | None, path: str | os.PathLike[str]) -> float:
    """The refresh interval: ``value``, else the environment variable, else the default."""
    return float(
        _setting(
            value,
            name="index_refresh_s",
            env_var=INDEX_REFRESH_ENV_VAR,
            default=DEFAULT_INDEX_REFRESH_S,
            parse=float,
            valid=lambda v: isinstance(v, int | float) and v >= 0 and math.isfinite(v),
            unit="seconds",
            path=path,
        )
    )


def _fleet_min_assets(value: int | None, path: str | os.PathLike[str]) -> int:
    """The fleet threshold: ``value``, else the environment variable, else the default."""
    return _setting(
        value,
        name="fleet_min_assets",
        env_var=FLEET_MIN_ASSETS_ENV_VAR,
        default=FLEET_MIN_ASSETS,
        parse=int,
        valid=lambda v: isinstance(v, int) and v >= 0,
        unit="assets",
        path=path,
    )


def _load_cache(path: Path, last: int) -> HammingIndex | None:
    """The cached index, or None when it is unreadable or ahead of the database."""
    from provenance._io.index import HammingIndex

    try:
        index = HammingIndex.load(path)
    except ProvenanceError:
        return None
    if len(index) and int(index.ids[-1]) > last:
        return None
    return index


def _last_perceptual_pk(conn: sqlite3.Connection, scheme: str) -> int:
    """The newest perceptual row key of ``scheme`` (0 when there is none)."""
    latest = execute(conn, _LAST_KEY, (scheme,)).fetchone()[0]
    return int(latest) if latest is not None else 0


def _nearest_assets(
    conn: sqlite3.Connection,
    pks: Sequence[int],
    query: np.ndarray[Any, np.dtype[np.uint64]],
    *,
    scheme: str,
    max_distance: int,
    k: int,
) -> list[PerceptualMatch]:
    """The assets of candidate rows ``pks``, distances checked again against the stored rows."""
    from provenance._core.hamming import hamming_bytes

    best: dict[int, tuple[int, str, int]] = {}
    query_bytes = query.astype("<u8").tobytes()
    for start in range(0, len(pks), _PAGE):
        chunk = pks[start : start + _PAGE]
        for hash_pk, asset_pk, variant, blob in execute(
            conn, _ROWS_IN.sized(len(chunk)), (scheme, *chunk)
        ):
            stored = bytes(blob)
            if len(stored) != len(query_bytes):
                continue
            distance = hamming_bytes(stored, query_bytes)
            if distance > max_distance:
                continue
            key = (distance, int(hash_pk))
            current = best.get(int(asset_pk))
            if current is None or key < (current[0], current[2]):
                best[int(asset_pk)] = (distance, str(variant), int(hash_pk))
    ranked = sorted(best.items(), key=lambda item: (item[1][0], item[1][2]))[:k]
    entries = _load(conn, [pk for pk, _ in ranked])
    out = []
    for entry, (pk, (distance, variant, _)) in zip(entries, ranked, strict=True):
        row = execute(conn, DESCRIPTOR, (pk, scheme)).fetchone()
        out.append(
            PerceptualMatch(
                asset=entry,
                distance=distance,
                variant=variant,
                descriptor=b"" if row is None else bytes(row[0]),
                scheme=scheme,
            )
        )
    return out
