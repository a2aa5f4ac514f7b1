"""The audit log's statement catalogue: SQLAlchemy Core over :mod:`provenance.audit._tables`.

Compiled once per dialect by :mod:`provenance._io.database`; SQLite's compilation
is also kept in ``sqlite_statements.json`` beside this module. SQLAlchemy is
imported at the first compilation, not with this module. The queries run in
:mod:`provenance.audit._store`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from provenance._io.database import Catalogue

_ENTRY_COLUMNS = ("seq", "at", "event", "asset_id", "payload", "prev_hash", "entry_hash")
_CHECKPOINT_COLUMNS = (
    "seq",
    "entry_hash",
    "at",
    "algorithm",
    "signature_b64",
    "certificate_chain_json",
    "log_key",
)


def _tables() -> Any:
    from provenance.audit._tables import audit_metadata

    return audit_metadata()


SQL = Catalogue(_tables, snapshot=Path(__file__).with_name("sqlite_statements.json"))
"""The audit log's statements, compiled per dialect at first use."""


def _entries(*, asset: bool = False, first: bool = False, newest: bool = False) -> Any:
    """``SELECT`` whole entries in seq order: after a seq (of one asset), one page; or the tail."""

    def build(sa: Any, t: Any) -> Any:
        audit = t.audit
        query = sa.select(*(audit.c[name] for name in _ENTRY_COLUMNS))
        if newest:
            return (
                query.order_by(audit.c.seq.desc())
                .limit(sa.literal_column("1"))
                .offset(sa.literal_column("0"))
            )
        if asset:
            query = query.where(audit.c.asset_id == sa.bindparam("asset_id"))
        if first:
            query = (
                query.where(audit.c.seq > sa.bindparam("after"))
                .limit(sa.bindparam("limit"))
                .offset(sa.literal_column("0"))
            )
        return query.order_by(audit.c.seq)

    return build


def _signed_checkpoint(*, newest: bool, columns: tuple[str, ...]) -> Any:
    def build(sa: Any, t: Any) -> Any:
        cps = t.audit_checkpoints
        order = cps.c.seq.desc() if newest else cps.c.seq
        return (
            sa.select(*(cps.c[name] for name in columns))
            .where(cps.c.signature_b64.is_not(None))
            .order_by(order)
            .limit(sa.literal_column("1"))
            .offset(sa.literal_column("0"))
        )

    return build


_TAIL_LINK = SQL.query(
    "audit_tail_link",
    lambda sa, t: (
        sa.select(t.audit.c.seq, t.audit.c.entry_hash)
        .order_by(t.audit.c.seq.desc())
        .limit(sa.literal_column("1"))
        .offset(sa.literal_column("0"))
    ),
)
_FIRST_HASH = SQL.query(
    "audit_first_hash",
    lambda sa, t: sa.select(t.audit.c.entry_hash).where(t.audit.c.seq == 1),
)
_CHECKPOINT_AT = SQL.query(
    "audit_checkpoint_at",
    lambda sa, t: sa.select(t.audit_checkpoints.c.entry_hash, t.audit_checkpoints.c.at).where(
        t.audit_checkpoints.c.seq == sa.bindparam("seq")
    ),
    params=("seq",),
)
_INSERT_ENTRY = SQL.insert("audit_insert_entry", "audit", _ENTRY_COLUMNS)
_INSERT_CHECKPOINT = SQL.insert("audit_insert_checkpoint", "audit_checkpoints", _CHECKPOINT_COLUMNS)
_LAST_SIGNED = SQL.query(
    "audit_last_signed_checkpoint", _signed_checkpoint(newest=True, columns=("seq",))
)
_FIRST_SIGNED = SQL.query(
    "audit_first_signed_checkpoint",
    _signed_checkpoint(
        newest=False,
        columns=("log_key", "certificate_chain_json", "algorithm", "signature_b64"),
    ),
)
_PAGE = SQL.query("audit_page", _entries(first=True), params=("after", "limit"))
_ASSET_PAGE = SQL.query(
    "audit_asset_page", _entries(asset=True, first=True), params=("asset_id", "after", "limit")
)
_TAIL = SQL.query("audit_tail", _entries(newest=True))
_ALL_ENTRIES = SQL.query("audit_all_entries", _entries())
_ALL_CHECKPOINTS = SQL.query(
    "audit_all_checkpoints",
    lambda sa, t: sa.select(
        *(t.audit_checkpoints.c[name] for name in _CHECKPOINT_COLUMNS)
    ).order_by(t.audit_checkpoints.c.seq),
)
