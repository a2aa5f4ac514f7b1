"""What every part of :class:`~provenance.inventory.Inventory` stands on: its open handles.

:class:`Inventory` is assembled from mixins, one per job (``_reads``: lookups
and lineage; ``_search``: perceptual hashes and local features); each of them
inherits from :class:`_Handle`, which names the state ``Inventory.__init__``
sets and the one audited write they all go through.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from provenance._io.sqlite import Database
from provenance.audit import AuditLog
from provenance.inventory._memo import Settled

if TYPE_CHECKING:
    from provenance.inventory._indexes import _Indexes

_T = TypeVar("_T")


class _Handle:
    """An open inventory's state, set by ``Inventory.__init__``, and its write transaction."""

    _db: Database
    _path: Path
    _audit: AuditLog
    _make_indexes: Callable[[], _Indexes]
    _durable: bool
    _read_only: bool
    _settled: Settled

    @functools.cached_property
    def _indexes(self) -> _Indexes:
        """The perceptual and keypoint indexes, made on the first search.

        Not when the inventory opens: their modules import numpy and Pillow,
        which a lookup by hash never needs (issue 20).
        """
        return self._make_indexes()

    def _write(self, work: Callable[[sqlite3.Connection], _T], durable: bool | None) -> _T:
        """One audited write transaction, fsynced or not as ``durable`` says (None: as opened).

        ``PRAGMA synchronous`` applies to the commits that follow it on this
        connection, so it is switched for this transaction only and set back.
        """
        if durable is None or durable == self._durable:
            return self._audit.write(work)
        conn = self._db.connection
        if conn.in_transaction:
            return self._audit.write(work)  # joins the caller's transaction and its setting
        conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        try:
            return self._audit.write(work)
        finally:
            conn.execute(f"PRAGMA synchronous = {'FULL' if self._durable else 'NORMAL'}")
