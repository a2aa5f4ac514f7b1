"""What one write transaction of many results has looked up, and the file rows it holds back.

:class:`Memo` lives as long as one ``Inventory.record_many`` transaction: the
assets of all its results and the renditions waiting for their files are looked
up together (:meth:`Memo.prefetch`), the signer and each parent once, and the
file rows of the assets it inserts are inserted together by one statement
(:meth:`Memo.flush`, issue 20): on SQLite a few microseconds per file, on a
server one round trip instead of one per file. The rows of the new assets are
held too, each given its key when it is held (:meth:`Memo.hold_asset`: on SQLite
and MariaDB the largest key plus one, read once under the write lock, the key
SQLite would choose; on PostgreSQL keys from the column's sequence, taken in one
call), and inserted by one statement before the files that name them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance._io.database import Backend, Conflict, execute, executemany
from provenance.audit import AuditEvent
from provenance.errors import InventoryError
from provenance.inventory._entries import _Pending
from provenance.inventory._rows import _find_parent, _signer_id
from provenance.inventory._statements import SQL

if TYPE_CHECKING:
    from provenance.inventory._keypoints import KeypointInsert
    from provenance.inventory._perceptual import _PerceptualInsert

_ASSET_BY_ID = SQL.query(
    "asset_of_id",
    lambda sa, t: sa.select(
        t.assets.c.asset_pk, t.assets.c.essence_sha256, t.assets.c.record_json
    ).where(t.assets.c.asset_id == sa.bindparam("asset_id")),
    params=("asset_id",),
)
_ASSET_COLUMNS = (
    "asset_id",
    "essence_sha256",
    "parent_pk",
    "digital_source_type",
    "generator",
    "model",
    "model_version",
    "created_at",
    "record_json",
    "signer_id",
    "first_signed_at",
)
# asset_id is looked up first: a duplicate is the essence, caught and named.
_INSERT_ASSET = SQL.insert(
    "insert_asset", "assets", _ASSET_COLUMNS, conflict=Conflict.CAUGHT, key="asset_pk"
)
# The held rows of a transaction's new assets, with the keys given when held (every backend).
_INSERT_KEYED_ASSET = SQL.insert(
    "insert_keyed_asset", "assets", ("asset_pk", *_ASSET_COLUMNS), conflict=Conflict.CAUGHT
)
_LAST_ASSET_KEY = SQL.query(
    "asset_last_key", lambda sa, t: sa.select(sa.func.max(t.assets.c.asset_pk))
)
# PostgreSQL: keys for the held assets, taken from the key column's sequence in one call.
_NEXT_ASSET_KEYS = SQL.query(
    "asset_next_keys",
    lambda sa, t: sa.select(
        sa.func.nextval(sa.func.pg_get_serial_sequence("assets", "asset_pk"))
    ).select_from(sa.func.generate_series(1, sa.bindparam("count"))),
    params=("count",),
    only=Backend.POSTGRESQL,
)
_ASSET_OF_ESSENCE = SQL.query(
    "asset_id_of_essence",
    lambda sa, t: sa.select(t.assets.c.asset_id).where(
        t.assets.c.essence_sha256 == sa.bindparam("essence")
    ),
    params=("essence",),
)
_FILE_COLUMNS = (
    "sha256",
    "asset_pk",
    "input_sha256",
    "parent_sha256",
    "path",
    "source_path",
    "bytes_added",
    "active_manifest",
    "signed_at",
    "signer_id",
    "record_sha256",
    "record_json",
)
# The same file again (caught: idempotent) or a file of another asset.
_INSERT_FILE = SQL.insert("insert_file", "files", _FILE_COLUMNS, conflict=Conflict.CAUGHT)
_FILE_ASSET = SQL.query(
    "asset_key_of_file",
    lambda sa, t: sa.select(t.files.c.asset_pk).where(t.files.c.sha256 == sa.bindparam("sha256")),
    params=("sha256",),
)
# A transaction's results are looked up together, this many values per statement
# (a fixed list, so SQLite's text is in the snapshot; a shorter list repeats its last value).
_BATCH = 32
_BATCH_KEYS = tuple(f"v{i}" for i in range(_BATCH))
_ASSETS_OF_IDS = SQL.query(
    "assets_of_ids",
    lambda sa, t: sa.select(
        t.assets.c.asset_id, t.assets.c.asset_pk, t.assets.c.essence_sha256, t.assets.c.record_json
    ).where(t.assets.c.asset_id.in_([sa.bindparam(k) for k in _BATCH_KEYS])),
    params=_BATCH_KEYS,
)


def _parents_waiting(sa: Any, t: Any) -> Any:
    """Which of these hashes a file of an asset without a parent link names as its parent."""
    f, a = t.files.alias("f"), t.assets.alias("a")
    return (
        sa.select(f.c.parent_sha256)
        .select_from(f.join(a, a.c.asset_pk == f.c.asset_pk))
        .where(
            f.c.parent_sha256.in_([sa.bindparam(k) for k in _BATCH_KEYS]),
            a.c.parent_pk.is_(None),
        )
    )


_PARENTS_WAITING = SQL.query("parents_waiting_among", _parents_waiting, params=_BATCH_KEYS)


def _batched(conn: sqlite3.Connection, statement: Any, values: Sequence[Any]) -> list[Any]:
    """Rows of ``statement`` (an ``IN`` list of :data:`_BATCH` values) for every value."""
    rows: list[Any] = []
    for start in range(0, len(values), _BATCH):
        chunk = list(values[start : start + _BATCH])
        chunk += [chunk[-1]] * (_BATCH - len(chunk))
        rows += execute(conn, statement, chunk).fetchall()
    return rows


class Settled:
    """What this handle's committed transactions found stored that can never change.

    A signer's id (a signer row is never updated, and cannot be deleted while
    an asset or file names it, which every committed one does) and that the
    keypoint rows' ``audit_meta`` mark exists (``audit_meta`` is append-only:
    triggers refuse UPDATE and DELETE). Read by each :class:`Memo`, added to
    only after a commit (:meth:`Memo.settle`): a rolled-back insert is never
    remembered. Saves a transaction two single SELECTs.
    """

    __slots__ = ("keypoints_marked", "signers")

    def __init__(self) -> None:
        self.signers: dict[str, int] = {}
        self.keypoints_marked = False


class Memo:
    """What one write transaction of many results has looked up already, and holds back.

    Valid only inside the transaction it was made for: a signer's id, the
    parent asset found for a parent reference (all the renditions of an import
    name the same original, recorded just before them), and the file rows of
    the assets inserted in it, held back to be inserted together (:meth:`flush`).
    """

    __slots__ = (
        "_absent",
        "_assets",
        "_checked",
        "_files",
        "_held",
        "_held_assets",
        "_marked",
        "_next_key",
        "_parents",
        "_reserved",
        "_settled",
        "_signers",
        "_waiting",
        "bindings",
        "entries",
        "path",
        "segments",
    )

    def __init__(self, path: Path, settled: Settled | None = None) -> None:
        self.path = path
        self._settled = Settled() if settled is None else settled
        self._signers: dict[str, int] = {}
        self._marked = self._settled.keypoints_marked
        self._parents: dict[tuple[Any, ...], tuple[int, str] | None] = {}
        self._assets: dict[str, tuple[int, bytes, str]] = {}
        self._absent: set[str] = set()
        self._checked: set[bytes] = set()
        self._waiting: set[bytes] = set()
        # The audit entries of the transaction's results, appended together at its end
        # (AuditLog.append_all_in: one read of the chain's tail, one batch of rows).
        self.entries: list[tuple[AuditEvent, str | None, dict[str, Any]]] = []
        # The file rows of new assets, inserted by one statement (one round trip on a
        # server) instead of one each, and the hashes of every file stored or held.
        self._held: list[tuple[tuple[Any, ...], str]] = []
        self._files: set[bytes] = set()
        # The serialised text values of the rows it hashes (audit.row_hash): an import's
        # 38 asset and file rows share their signer, times, record and asset ids.
        self.segments: dict[str, bytes] = {}
        # The rows of the new assets (key first), inserted before the files.
        self._held_assets: list[tuple[tuple[Any, ...], _Pending]] = []
        self._next_key: int | None = None
        self._reserved: list[int] = []  # PostgreSQL: keys taken, not yet given (last first)
        # The perceptual and keypoint rows of the transaction's assets, stored after the
        # held rows they refer to, and the payloads that bind them (filled in then).
        self.bindings: list[
            tuple[dict[str, Any], str, int, _PerceptualInsert | None, KeypointInsert | None]
        ] = []

    def prefetch(self, conn: sqlite3.Connection, pending: Sequence[_Pending]) -> None:
        """Look up the assets of all ``pending`` and who waits for their files, together.

        Replaces two statements per result (its asset by id, and the renditions
        recorded before it that name it as parent: almost always none) by two per
        :data:`_BATCH` results.
        """
        ids = list(dict.fromkeys(p.result.asset_id for p in pending))
        for row in _batched(conn, _ASSETS_OF_IDS, ids):
            self._assets[str(row[0])] = (int(row[1]), bytes(row[2]), str(row[3]))
        self._absent.update(i for i in ids if i not in self._assets)
        hashes = list(dict.fromkeys(h for p in pending for h in (p.sha256, p.input_sha256)))
        self._waiting.update(bytes(row[0]) for row in _batched(conn, _PARENTS_WAITING, hashes))
        self._checked.update(hashes)

    def asset(self, conn: sqlite3.Connection, asset_id: str) -> tuple[int, bytes, str] | None:
        """The stored asset ``(asset_pk, essence, record_json)``, or None."""
        found = self._assets.get(asset_id)
        if found is not None or asset_id in self._absent:
            return found
        row = execute(conn, _ASSET_BY_ID, (asset_id,)).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]), str(row[2]))

    def added(self, p: _Pending, asset_pk: int) -> None:
        """Note an asset inserted in this transaction (a later result may be of it)."""
        self._assets[p.result.asset_id] = (asset_pk, p.essence, p.record_json)
        self._absent.discard(p.result.asset_id)

    def may_wait(self, p: _Pending) -> bool:
        """Whether a recorded rendition may name this file (or its input) as parent."""
        sha256, given = p.sha256, p.input_sha256  # membership tests: no sets made per file
        checked, waiting = self._checked, self._waiting
        return (
            sha256 not in checked or given not in checked or sha256 in waiting or given in waiting
        )

    def recorded(self, p: _Pending) -> None:
        """Note a file recorded in this transaction: it may wait for its parent."""
        if p.parent_sha256 is not None:
            self._waiting.add(p.parent_sha256)

    def signer_id(self, conn: sqlite3.Connection, subject: str) -> int:
        """The signer's id: settled, or looked up (or inserted) once per transaction."""
        found = self._settled.signers.get(subject)
        if found is None:
            found = self._signers.get(subject)
        if found is None:
            found = self._signers[subject] = _signer_id(conn, subject)
        return found

    @property
    def keypoints_marked(self) -> bool:
        """Whether the keypoint rows' ``audit_meta`` mark is known to exist."""
        return self._marked

    def mark_keypoints(self) -> None:
        """Note that the keypoint mark exists (read or written in this transaction)."""
        self._marked = True

    def settle(self) -> None:
        """After this transaction committed: keep what can never change for the next ones."""
        self._settled.signers.update(self._signers)
        self._settled.keypoints_marked = self._settled.keypoints_marked or self._marked

    def parent(self, conn: sqlite3.Connection, p: _Pending) -> tuple[int, str] | None:
        """:func:`_find_parent`, once per distinct parent reference; a miss is not kept."""
        if not p.result.record.parents and p.parent_sha256 is None:
            return None  # names no parent
        key = (p.result.record.parents, p.parent_sha256)
        if key in self._parents:
            return self._parents[key]
        found = self._known_parent(p)
        if found is not None:
            self._parents[key] = found
            return found
        self.flush(conn)  # a parent is also found by its file's hash
        found = _find_parent(conn, p)
        if found is not None:
            # A parent not found now may be recorded later in the same transaction.
            self._parents[key] = found
        return found

    def _known_parent(self, p: _Pending) -> tuple[int, str] | None:
        """The parent :func:`_find_parent` would find first, when this transaction knows it.

        Its first step looks the parents up by asset id: an asset of this
        transaction's results (an import's original, for its renditions) is
        known without a statement, and without inserting the held file rows first
        (which then go in together, by one statement).
        """
        for ref in p.result.record.parents:
            if ref.asset_id is not None:
                found = self._assets.get(ref.asset_id)
                return None if found is None else (found[0], ref.asset_id)
        return None

    def hold_asset(self, conn: sqlite3.Connection, row: tuple[Any, ...], p: _Pending) -> int:
        """Hold back a new asset's row (``_ASSET_COLUMNS``) for :meth:`flush`; its key.

        Every asset the transaction inserts is held, and every writer holds the
        write lock first (SQLite's ``BEGIN IMMEDIATE``, a server's writer row):
        on SQLite and MariaDB the keys follow the largest stored key, read at
        the first asset held (SQLite's own choice; MariaDB moves its
        AUTO_INCREMENT counter past a key given). PostgreSQL's come from the key
        column's sequence, as many as the batch has new assets, in one call
        (a key left unused is a gap, as a rolled-back insert leaves).
        """
        if getattr(conn, "backend", None) is Backend.POSTGRESQL:
            if not self._reserved:
                count = max(1, len(self._absent))  # the new assets not yet held, this one too
                found = execute(conn, _NEXT_ASSET_KEYS, (count,)).fetchall()
                self._reserved = sorted((int(r[0]) for r in found), reverse=True)
            key = self._reserved.pop()
        else:
            key = self._next_key or 0
            if not key:
                last = execute(conn, _LAST_ASSET_KEY).fetchone()
                key = 1 if last is None or last[0] is None else int(last[0]) + 1
            self._next_key = key + 1
        self._held_assets.append(((key, *row), p))
        return key

    def hold_file(self, row: tuple[Any, ...], sha256_hex: str) -> bool:
        """Hold back the file row of an asset inserted in this transaction, for :meth:`flush`.

        False when a file with its hash was stored or held in this transaction
        already: the caller inserts it now (after :meth:`flush`), as the same
        file again or a file of another asset.
        """
        if row[0] in self._files:
            return False
        self._files.add(row[0])
        self._held.append((row, sha256_hex))
        return True

    def inserted(self, sha256: bytes) -> None:
        """Note a file the caller inserted itself."""
        self._files.add(sha256)

    def flush(self, conn: sqlite3.Connection) -> None:
        """Insert the held asset rows, then the held file rows.

        Before anything reads ``assets`` or ``files``, or stores a row that
        names a held asset, and before the commit.

        Raises:
            InventoryError: A held asset's essence is recorded for another
                asset, or a held file for another asset (as the insert of that
                row alone says).
        """
        assets, self._held_assets = self._held_assets, []
        if assets:
            before = conn.total_changes
            try:
                executemany(conn, _INSERT_KEYED_ASSET, [row for row, _ in assets])
            except sqlite3.IntegrityError:
                _refuse_assets(conn, [p for _, p in assets], self.path)
            # PostgreSQL skips a duplicate (ON CONFLICT DO NOTHING): fewer rows.
            if conn.total_changes - before < len(assets):
                _refuse_assets(conn, [p for _, p in assets], self.path)
        held, self._held = self._held, []
        if not held:
            return
        before = conn.total_changes
        try:
            executemany(conn, _INSERT_FILE, [row for row, _ in held])
        except sqlite3.IntegrityError:
            pass  # SQLite, MariaDB: a duplicate (PostgreSQL skips it: fewer rows)
        else:
            if conn.total_changes - before == len(held):
                return
        _refuse_held(conn, held, self.path)


def _refuse_held(
    conn: sqlite3.Connection, held: list[tuple[tuple[Any, ...], str]], path: Path
) -> None:
    """Raise for the held file a file of another asset took; return if every row is stored.

    (A driver that does not count the rows of a batch ends here with all of them stored.)
    """
    found = [execute(conn, _FILE_ASSET, (row[0],)).fetchone() for row, _ in held]
    for (row, sha256_hex), stored in zip(held, found, strict=True):
        if stored is not None and int(stored[0]) != row[1]:
            raise InventoryError(
                f"file {sha256_hex} is already recorded for another asset", path=path
            )
    if any(stored is None for stored in found):
        raise InventoryError("the files of this transaction could not all be stored", path=path)


def essence_taken(conn: sqlite3.Connection, p: _Pending, path: Path) -> InventoryError:
    """The error for a new asset whose essence another asset has (the insert refused it)."""
    clash = execute(conn, _ASSET_OF_ESSENCE, (p.essence,)).fetchone()
    return InventoryError(
        f"essence {p.result.essence_sha256_hex} is already recorded as asset "
        f"{clash[0] if clash else '?'}, not {p.result.asset_id}",
        path=path,
    )


def _refuse_assets(conn: sqlite3.Connection, held: list[_Pending], path: Path) -> None:
    """Raise for the first held asset whose essence another asset took; return if all are stored.

    SQLite stops the batch at that row (the rows before it are stored),
    PostgreSQL skips it, MariaDB refuses the whole batch; asset ids were looked
    up first, so the essence is what clashed: with a stored asset, or with an
    earlier asset of the batch. (A driver that does not count the rows of a
    batch ends here with all of them stored.)
    """
    missing = False
    for p in held:
        clash = execute(conn, _ASSET_OF_ESSENCE, (p.essence,)).fetchone()
        if clash is None:
            missing = True
        elif str(clash[0]) != p.result.asset_id:
            raise essence_taken(conn, p, path)
    if not missing:
        return
    first: dict[bytes, str] = {}
    for p in held:
        taken = first.setdefault(p.essence, p.result.asset_id)
        if taken != p.result.asset_id:
            raise InventoryError(
                f"essence {p.result.essence_sha256_hex} is already recorded as asset "
                f"{taken}, not {p.result.asset_id}",
                path=path,
            )
    raise InventoryError("the assets of this transaction could not all be stored", path=path)
