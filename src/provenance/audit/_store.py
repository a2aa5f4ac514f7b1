"""The audit chain stored in the inventory's database: :class:`AuditLog`.

Every query of the audit log runs here; the statements are written in
:mod:`provenance.audit._statements`, SQLite's tables (DDL) in
:mod:`provenance.audit._schema`.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from provenance._io.database import execute, executemany
from provenance._io.keys import (
    SigningKey,
    TrustPolicy,
    key_fingerprint,
)
from provenance._io.sqlite import Database
from provenance.audit._chain import (
    DEFAULT_CHECKPOINT_EVERY,
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    AuditReport,
    _entry_and_json,
    _flat_link,
    _is_flat,
)
from provenance.audit._checkpoint import Checkpoint
from provenance.audit._schema import (
    _entry_from_row,
    _entry_row,
)
from provenance.audit._snapshot import Reconciler, stored_checkpoints, stored_text, verify_snapshot
from provenance.audit._statements import (
    _ASSET_PAGE,
    _CHECKPOINT_AT,
    _FIRST_HASH,
    _FIRST_SIGNED,
    _INSERT_CHECKPOINT,
    _INSERT_ENTRY,
    _LAST_SIGNED,
    _PAGE,
    _TAIL,
    _TAIL_LINK,
)
from provenance.audit._witness import Witness, WitnessRecord, read_witness
from provenance.errors import AuditError

_T = TypeVar("_T")


class AuditLog:
    """The audit chain stored in the inventory database; get it as ``Inventory.audit``.

    Args:
        db: The inventory's database.
        checkpoint_key: Sign a checkpoint automatically every ``checkpoint_every``
            entries with this key; None disables automatic checkpoints.
        checkpoint_every: Entries between automatic checkpoints.
        witness: Where every stored checkpoint is also written, after its
            transaction commits (see :class:`FileWitness`); read back by
            :meth:`verify`.
        reconcile: Compares the stored fact rows with what the chain binds
            (the inventory supplies it); None checks the chain only.

    Attributes:
        witness_error: Why the last checkpoint could not be written to the
            witness (it is retried with the next one), or None.
    """

    def __init__(
        self,
        db: Database,
        *,
        checkpoint_key: SigningKey | None = None,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        witness: Witness | None = None,
        reconcile: Reconciler | None = None,
    ) -> None:
        if checkpoint_every < 1:
            raise AuditError("checkpoint_every must be at least 1")
        self._db = db
        self.checkpoint_key = checkpoint_key
        self.checkpoint_every = checkpoint_every
        self.witness = witness
        self.witness_error: str | None = None
        self._reconcile = reconcile
        self._pending: list[Checkpoint] = []  # taken in the open transaction, not yet witnessed
        self._unwitnessed: list[Checkpoint] = []  # committed; the witness failed, retried
        self._log_key: str | None = None  # cached: the log's identity never changes

    def write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` in one write transaction, then witness the checkpoints it stored.

        The witness is written only after the commit, so it never holds a
        checkpoint the database does not (which verification would call a
        truncation). A witness that cannot be written does not fail the write:
        :attr:`witness_error` says why, and the checkpoint is retried next time.

        Raises:
            InventoryError: As :meth:`Database.write`.
        """
        if self._db.connection.in_transaction:
            return self._db.write(work)
        try:
            result = self._db.write(work)
        except BaseException:
            self._pending.clear()  # rolled back: nothing to witness
            raise
        if self.witness is None:
            self._pending.clear()
        elif self._pending or self._unwitnessed:
            self._flush_witness()
        return result

    def _flush_witness(self) -> None:
        pending = self._unwitnessed + self._pending
        self._pending, self._unwitnessed = [], []
        witness = self.witness
        assert witness is not None  # noqa: S101 - checked by the caller

        def committed(conn: sqlite3.Connection) -> tuple[str, list[Checkpoint]]:
            first = execute(conn, _FIRST_HASH).fetchone()
            kept = []
            for cp in pending:
                # A retried transaction may have taken a checkpoint that was rolled back.
                row = execute(conn, _CHECKPOINT_AT, (cp.seq,)).fetchone()
                if row is not None and (str(row[0]), str(row[1])) == (cp.entry_hash, cp.at):
                    kept.append(cp)
            return ("" if first is None else str(first[0])), kept

        log_id, kept = self._db.read(committed)
        for index, cp in enumerate(kept):
            try:
                witness.append(WitnessRecord(log_id, cp))
            except OSError as exc:
                self.witness_error = f"{witness!r}: checkpoint {cp.seq} not witnessed: {exc}"
                self._unwitnessed = kept[index:]
                return
        self.witness_error = None

    def append(
        self,
        event: AuditEvent,
        *,
        asset_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
        now: datetime,
    ) -> AuditEntry:
        """Append an entry (in its own transaction, or joining the caller's).

        Args:
            event: What happened.
            asset_id: The asset concerned.
            payload: Details: hashes, ids, counts; no paths or free text.
            now: When it happened.

        Raises:
            AuditError: ``now`` has no timezone or the payload is not JSON.
            InventoryError: The database cannot be written.
        """
        return self.write(
            lambda conn: self.append_in(conn, event, asset_id=asset_id, payload=payload, now=now)
        )

    def append_in(
        self,
        conn: sqlite3.Connection,
        event: AuditEvent,
        *,
        asset_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
        now: datetime,
    ) -> AuditEntry:
        """Append inside a write transaction the caller holds (for the inventory).

        Reading the tail under the caller's ``BEGIN IMMEDIATE`` lock is what keeps
        the chain single when several processes write at once.
        """
        row = execute(conn, _TAIL_LINK).fetchone()
        prev_seq, prev_hash = (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))
        entry, payload_json = _entry_and_json(
            prev_seq, prev_hash, event, now=now, asset_id=asset_id, payload=payload
        )
        execute(conn, _INSERT_ENTRY, _entry_row(entry, payload_json))
        key = self.checkpoint_key
        if key is not None and event is not AuditEvent.CHECKPOINT:
            # Newest first by primary key: stops at the first signed row (unsigned
            # ones, from exports made without a key, do not delay the schedule).
            row = execute(conn, _LAST_SIGNED).fetchone()
            if entry.seq - (0 if row is None else int(row[0])) >= self.checkpoint_every:
                pinned = self.log_key_in(conn)
                # A key that is not the log's cannot vouch for it: no automatic
                # checkpoint rather than one that verification refuses.
                if pinned is None or pinned == key_fingerprint(key.leaf):
                    self.checkpoint_in(conn, key, now=now)
        return entry

    # Long by its checkpoint schedule, which must match append_in's entry by entry.
    def append_all_in(
        self,
        conn: sqlite3.Connection,
        items: Sequence[tuple[AuditEvent, str | None, Mapping[str, Any]]],
        *,
        now: datetime,
        entries: bool = True,
    ) -> list[AuditEntry]:
        """:meth:`append_in` for many entries ``(event, asset_id, payload)``, in order.

        The same entries, hashes and automatic checkpoints as one :meth:`append_in`
        per item, with the chain's tail read once and the rows inserted together
        (an import's 19 entries: 18 tail reads and 18 round trips fewer).

        Args:
            conn: The caller's write transaction.
            items: The entries to append.
            now: Their time.
            entries: Return the appended entries (the default); False stores
                the same rows and returns an empty list, without building them.

        Raises:
            AuditError: ``now`` has no timezone or a payload is not JSON.
        """
        if not items:
            return []  # every file was recorded already
        row = execute(conn, _TAIL_LINK).fetchone()
        prev_seq, prev_hash = (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))
        key = self.checkpoint_key
        signed_at = None
        if key is not None:
            found = execute(conn, _LAST_SIGNED).fetchone()
            signed_at = 0 if found is None else int(found[0])
        appended: list[AuditEntry] = []
        rows: list[tuple[Any, ...]] = []
        for event, asset_id, payload in items:
            if not entries and _is_flat(payload):
                seq, at, digest, text = _flat_link(
                    prev_seq, prev_hash, event, now=now, asset_id=asset_id, body=payload
                )
                rows.append((seq, at, event.value, asset_id, text, prev_hash, digest))
                prev_seq, prev_hash = seq, digest
            else:
                entry, payload_json = _entry_and_json(
                    prev_seq, prev_hash, event, now=now, asset_id=asset_id, payload=payload
                )
                if entries:
                    appended.append(entry)
                rows.append(_entry_row(entry, payload_json))
                prev_seq, prev_hash = entry.seq, entry.entry_hash
            if (
                key is None
                or signed_at is None
                or event is AuditEvent.CHECKPOINT
                or prev_seq - signed_at < self.checkpoint_every
            ):
                continue
            # A checkpoint is due after this entry: store what precedes it, then as
            # append_in does (its CHECKPOINT entry moves the tail).
            executemany(conn, _INSERT_ENTRY, rows)
            rows = []
            pinned = self.log_key_in(conn)
            if pinned is None or pinned == key_fingerprint(key.leaf):
                self.checkpoint_in(conn, key, now=now)
            tail = execute(conn, _TAIL_LINK).fetchone()
            prev_seq, prev_hash = int(tail[0]), str(tail[1])
            found = execute(conn, _LAST_SIGNED).fetchone()
            signed_at = 0 if found is None else int(found[0])
        if rows:
            executemany(conn, _INSERT_ENTRY, rows)
        return appended

    def checkpoint(self, key: SigningKey | None, *, now: datetime) -> Checkpoint:
        """Sign and store a checkpoint of the current tail, and log that it was taken.

        With ``key=None`` the checkpoint is stored unsigned (a report made
        without keys); its value is then where a copy of it is kept.

        Raises:
            AuditError: The log is empty.
            SignatureError: The key could not sign.
            InventoryError: The database cannot be written.
        """
        return self.write(lambda conn: self.checkpoint_in(conn, key, now=now))

    def checkpoint_in(
        self, conn: sqlite3.Connection, key: SigningKey | None, *, now: datetime
    ) -> Checkpoint:
        """Take a checkpoint inside the caller's write transaction (unsigned without a key).

        Once a log has a signed checkpoint its checkpoints are pinned to that
        key (the log's identity): an unsigned checkpoint is returned (for an
        export to embed) but not stored, and another key is refused.

        Raises:
            AuditError: The log is empty, or ``key`` is not the log's key.
        """
        tail = execute(conn, _TAIL_LINK).fetchone()
        if tail is None:
            raise AuditError("the audit log is empty: nothing to checkpoint")
        pinned = self.log_key_in(conn)
        if key is not None and pinned is not None and key_fingerprint(key.leaf) != pinned:
            raise AuditError(
                f"this audit log's checkpoints are signed by key {pinned[:16]}; key "
                f"{key.subject!r} ({key_fingerprint(key.leaf)[:16]}) is another one"
            )
        # The tail is never already checkpointed: taking a checkpoint appends a
        # CHECKPOINT entry after the entry it covers.
        cp = Checkpoint.create(int(tail[0]), str(tail[1]), now=now, key=key)
        if key is None and pinned is not None:
            return cp
        execute(
            conn,
            _INSERT_CHECKPOINT,
            (
                cp.seq,
                cp.entry_hash,
                cp.at,
                cp.algorithm,
                cp.signature_b64,
                json.dumps(list(cp.certificate_chain_b64)),
                cp.log_key,
            ),
        )
        self.append_in(conn, AuditEvent.CHECKPOINT, payload=_cp_payload(cp, key), now=now)
        self._pending.append(cp)
        return cp

    def log_key_in(self, conn: sqlite3.Connection) -> str | None:
        """The log's identity: the key of its first signed checkpoint (None before one)."""
        if self._log_key is None:
            row = execute(conn, _FIRST_SIGNED).fetchone()
            if row is None:
                return None
            if row[0] is not None:
                self._log_key = str(row[0])
            else:  # a version-1 checkpoint: the key of its certificate
                try:
                    chain = json.loads(row[1])
                    probe = Checkpoint(0, "", "", str(row[3]), row[2], tuple(chain))
                except (ValueError, TypeError):
                    return None
                self._log_key = probe.signer_fingerprint()
        return self._log_key

    def log_key(self) -> str | None:
        """The log's identity (:meth:`log_key_in`), read in its own transaction."""
        return self._db.read(self.log_key_in)

    def tail(self) -> AuditEntry | None:
        """The last entry, or None for an empty log.

        Raises:
            AuditError: The last row cannot be decoded (it was tampered with).
            InventoryError: The database cannot be read.
        """
        return self._db.read(self._tail)

    def entries(
        self, *, asset_id: str | None = None, after_seq: int = 0, page_size: int = 1000
    ) -> Iterator[AuditEntry]:
        """Entries in seq order, read page by page (no long-lived transaction).

        Args:
            asset_id: Only the entries about this asset.
            after_seq: Start after this seq.
            page_size: Rows per query.

        Raises:
            AuditError: A row cannot be decoded (it was tampered with; run verify).
            InventoryError: The database cannot be read.
        """
        last = after_seq
        while True:
            rows = self._db.read(
                functools.partial(self._page, after=last, asset_id=asset_id, limit=page_size)
            )
            for row in rows:
                yield _entry_from_row(row)
            if len(rows) < page_size:
                return
            last = int(rows[-1][0])

    def checkpoints(self) -> list[Checkpoint]:
        """The stored checkpoints, by seq.

        Raises:
            AuditError: A row cannot be decoded.
            InventoryError: The database cannot be read.
        """
        return self._db.read(stored_checkpoints)

    # Long only by its documentation and keyword arguments; the walk lives in _verify.
    def verify(
        self,
        *,
        against: Checkpoint | None = None,
        trust: TrustPolicy | None = None,
        pin: str | None = None,
        use_witness: bool = True,
    ) -> AuditReport:
        """Verify the whole stored chain, its checkpoints and the facts it binds, on one snapshot.

        Args:
            against: A checkpoint kept outside the database (from an export):
                detects truncation and roll-back that stored checkpoints cannot.
            trust: Require checkpoints signed by a certificate chaining to these
                anchors.
            pin: The log's key (:func:`provenance._io.keys.key_fingerprint`), e.g. of the signing
                certificate at hand: checkpoints signed by any other are refused.
            use_witness: Check every checkpoint the witness holds (the default
                when one is configured): catches truncation and roll-back
                without ``against``.

        Returns:
            The report; see :func:`verify_chain` for what each problem means,
            and the reconciler for FACT_CHANGED, FACT_MISSING, FACT_UNBOUND.

        Raises:
            AuditError: The witness cannot be read.
            InventoryError: The database cannot be read.
        """
        witnessed, log_ids, notes = read_witness(self.witness if use_witness else None)
        check = functools.partial(
            verify_snapshot,
            reconcile=self._reconcile,
            against=against,
            trust=trust,
            pin=pin,
            witnessed=witnessed,
            log_ids=log_ids,
            notes=notes,
        )

        def work(conn: sqlite3.Connection) -> AuditReport:
            if not isinstance(conn, sqlite3.Connection):
                return check(conn)
            # A TEXT value that is not UTF-8 (written by hand) is read as its bytes
            # (surrogate-escaped), so its row is reported as changed instead of
            # the read failing.
            previous = conn.text_factory
            conn.text_factory = stored_text
            try:
                return check(conn)
            finally:
                conn.text_factory = previous

        return self._db.read(work)

    @staticmethod
    def _page(
        conn: sqlite3.Connection, *, after: int, asset_id: str | None, limit: int
    ) -> list[tuple[Any, ...]]:
        if asset_id is None:
            return list(execute(conn, _PAGE, (after, limit)).fetchall())
        return list(execute(conn, _ASSET_PAGE, (asset_id, after, limit)).fetchall())

    @staticmethod
    def _tail(conn: sqlite3.Connection) -> AuditEntry | None:
        row = execute(conn, _TAIL).fetchone()
        return None if row is None else _entry_from_row(row)


def _cp_payload(cp: Checkpoint, key: SigningKey | None) -> dict[str, Any]:
    return {
        "checkpoint_seq": cp.seq,
        "checkpoint_hash": cp.entry_hash,
        "signed": cp.is_signed,
        "signer": key.subject if key is not None else None,
    }
