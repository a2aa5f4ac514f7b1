"""Inventory facts bound to the audit chain (DESIGN.md decision 17).

Row hashes of assets, files and perceptual rows, and the reconciler that
:meth:`provenance.audit.AuditLog.verify` runs to compare them with the tables
(keypoint rows: ``_keypoints``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from provenance._io.database import execute
from provenance.audit import (
    AuditProblem,
    FactBindings,
    ProblemKind,
    row_hash,
)
from provenance.inventory._keypoints import _reconcile_keypoints
from provenance.inventory._statements import DESCRIPTOR, SQL

_ASSET_FACTS = (
    "asset_id",
    "essence_sha256",
    "digital_source_type",
    "generator",
    "model",
    "model_version",
    "created_at",
    "record_json",
    "signer",
    "first_signed_at",
)
_FILE_FACTS = (
    "sha256",
    "asset_id",
    "input_sha256",
    "parent_sha256",
    "path",
    "source_path",
    "bytes_added",
    "active_manifest",
    "signed_at",
    "signer",
    "record_sha256",
    "record_json",
)


# The same columns, in the same order, as stored (signer and asset ids joined in).
def _asset_facts(sa: Any, t: Any) -> Any:
    a, p, s = t.assets.alias("a"), t.assets.alias("p"), t.signers.alias("s")
    columns = [a.c.asset_pk, p.c.asset_id]
    columns += [s.c.subject if name == "signer" else a.c[name] for name in _ASSET_FACTS]
    return sa.select(*columns).select_from(
        a.outerjoin(s, s.c.signer_id == a.c.signer_id).outerjoin(p, p.c.asset_pk == a.c.parent_pk)
    )


def _file_facts(sa: Any, t: Any) -> Any:
    f, a, s = t.files.alias("f"), t.assets.alias("a"), t.signers.alias("s")
    named = {"asset_id": a.c.asset_id, "signer": s.c.subject}
    columns = [f.c.file_pk, *(named.get(name, f.c.get(name)) for name in _FILE_FACTS)]
    return sa.select(*columns).select_from(
        f.outerjoin(a, a.c.asset_pk == f.c.asset_pk).outerjoin(s, s.c.signer_id == f.c.signer_id)
    )


_ASSET_FACTS_SQL = SQL.query("asset_facts", _asset_facts)
_FILE_FACTS_SQL = SQL.query("file_facts", _file_facts)
_PERCEPTUAL_OF_ASSET = SQL.query(
    "perceptual_rows_of_asset",
    lambda sa, t: sa.select(t.perceptual_hashes.c.variant, t.perceptual_hashes.c.words).where(
        t.perceptual_hashes.c.asset_pk == sa.bindparam("asset_pk"),
        t.perceptual_hashes.c.scheme == sa.bindparam("scheme"),
    ),
    params=("asset_pk", "scheme"),
)
_MARKS = SQL.query(
    "binding_marks",
    lambda sa, t: sa.select(t.audit_meta.c.name, t.audit_meta.c.value),
)
_ALL_PERCEPTUAL = SQL.query(
    "all_perceptual_rows",
    lambda sa, t: sa.select(
        *(t.perceptual_hashes.c[n] for n in ("hash_pk", "asset_pk", "scheme", "variant", "words"))
    ),
)
_ALL_DESCRIPTORS = SQL.query(
    "all_perceptual_descriptors",
    lambda sa, t: sa.select(
        *(t.perceptual_descriptors.c[n] for n in ("asset_pk", "scheme", "descriptor"))
    ),
)


def _asset_row_hash(row: Sequence[Any], segments: dict[str, bytes] | None = None) -> str:
    """The canonical hash of an asset row (``_ASSET_FACTS`` order; the link is bound apart).

    ``segments``: a batch's cache of serialised text values (see :func:`row_hash`).
    """
    return row_hash("asset", row, segments=segments)


def _file_row_hash(row: Sequence[Any], segments: dict[str, bytes] | None = None) -> str:
    """The canonical hash of a file row (``_FILE_FACTS`` order); ``segments`` as above."""
    return row_hash("file", row, segments=segments)


def _perceptual_row_hash(
    asset_id: str, scheme: str, rows: Iterable[tuple[str, bytes]], descriptor: bytes
) -> str:
    """The canonical hash of every perceptual row and the descriptor of one asset and scheme."""
    flat: list[str | bytes] = [asset_id, scheme, descriptor]
    for variant, words in sorted(rows):
        flat += (variant, bytes(words))
    return row_hash("perceptual", flat)


def _stored_perceptual(
    conn: sqlite3.Connection, asset_pk: int, scheme: str
) -> tuple[list[tuple[str, bytes]], bytes]:
    rows = [(str(v), bytes(w)) for v, w in execute(conn, _PERCEPTUAL_OF_ASSET, (asset_pk, scheme))]
    found = execute(conn, DESCRIPTOR, (asset_pk, scheme)).fetchone()
    return rows, b"" if found is None else bytes(found[0])


@dataclass(slots=True)
class _Tally:
    """What a reconciliation found so far: problems, legacy rows, rows checked."""

    problems: list[AuditProblem] = field(default_factory=list)
    legacy: int = 0
    checked: int = 0

    def unbound(self, what: str) -> None:
        self.problems.append(
            AuditProblem(
                0,
                ProblemKind.FACT_UNBOUND,
                f"{what} is stored but no audit entry recorded it: it was added outside the chain",
            )
        )


def _reconcile(
    conn: sqlite3.Connection, bound: FactBindings
) -> tuple[list[AuditProblem], list[str], int]:
    """Compare every fact row with what the chain binds, both ways (one snapshot).

    A row whose hash differs from its binding is FACT_CHANGED; a binding whose
    row is gone is FACT_MISSING; a row no entry binds is FACT_UNBOUND, unless
    it was stored before binding existed (below the ``audit_meta`` marks:
    counted in a note instead).
    """
    marks = {str(k): int(v) for k, v in execute(conn, _MARKS)}
    tally = _Tally()
    ids = _reconcile_assets(conn, bound, marks, tally)
    _reconcile_files(conn, bound, marks, tally)
    _reconcile_perceptual(conn, bound, marks, tally, ids)
    problems, keypoint_legacy, checked = _reconcile_keypoints(conn, bound, ids)
    tally.problems += problems
    tally.checked += checked
    notes = []
    if tally.legacy:
        notes.append(
            f"{tally.legacy} rows were recorded before row binding (schema 3) and are not bound: "
            "only the facts their entries named (hashes, model, source type, signer) are "
            "checked; an edit of any other column is not detected"
        )
    if keypoint_legacy:
        notes.append(
            f"{keypoint_legacy} keypoint rows were stored before keypoint rows were bound "
            "(issue 21) and are not checked; rows stored since are"
        )
    return tally.problems, notes, tally.checked


def _reconcile_assets(
    conn: sqlite3.Connection, bound: FactBindings, marks: dict[str, int], tally: _Tally
) -> dict[int, str]:
    """Asset rows and their lineage links against their bindings; returns pk -> asset id."""
    problems = tally.problems
    ids: dict[int, str] = {}
    asset_mark = marks.get("bound_from_asset_pk", 1)
    for pk, parent, *row in execute(conn, _ASSET_FACTS_SQL):
        tally.checked += 1
        asset_id = str(row[0])
        ids[int(pk)] = asset_id
        binding = bound.assets.pop(asset_id, None)
        link = bound.parents.pop(asset_id, None)
        if binding is None:
            if int(pk) >= asset_mark:
                tally.unbound(f"asset {asset_id}")
                continue
            tally.legacy += 1
            old = bound.legacy_assets.pop(asset_id, None)
            facts = (bytes(row[1]).hex(), row[4], row[5], row[2])
            if old is not None and old[1] != facts:
                problems.append(_legacy_changed(f"asset {asset_id}", old[0]))
            continue
        if _asset_row_hash(row) != binding[1]:
            problems.append(
                AuditProblem(
                    binding[0],
                    ProblemKind.FACT_CHANGED,
                    f"asset {asset_id} differs from what entry {binding[0]} recorded (model, "
                    "source type, record or signer changed in the table)",
                )
            )
        if link is not None and (parent or "") != link[1]:
            problems.append(
                AuditProblem(
                    link[0],
                    ProblemKind.FACT_CHANGED,
                    f"asset {asset_id} descends from {parent or 'nothing'} in the table, but "
                    f"entry {link[0]} recorded {link[1] or 'no parent'}",
                )
            )
    for asset_id, (seq, _) in [*bound.assets.items(), *bound.legacy_assets.items()]:
        problems.append(
            AuditProblem(
                seq, ProblemKind.FACT_MISSING, f"asset {asset_id} recorded by entry {seq} is gone"
            )
        )
    return ids


def _reconcile_files(
    conn: sqlite3.Connection, bound: FactBindings, marks: dict[str, int], tally: _Tally
) -> None:
    """File rows against their bindings."""
    problems = tally.problems
    file_mark = marks.get("bound_from_file_pk", 1)
    for pk, *row in execute(conn, _FILE_FACTS_SQL):
        tally.checked += 1
        sha = bytes(row[0]).hex()
        binding = bound.files.pop(sha, None)
        if binding is None:
            if int(pk) >= file_mark:
                tally.unbound(f"file {sha}")
                continue
            tally.legacy += 1
            old = bound.legacy_files.pop(sha, None)
            facts = (bytes(row[2]).hex(), bytes(row[10]).hex(), row[7], row[9])
            if old is not None and old[1] != facts:
                problems.append(_legacy_changed(f"file {sha}", old[0]))
            continue
        if _file_row_hash(row) != binding[1]:
            problems.append(
                AuditProblem(
                    binding[0],
                    ProblemKind.FACT_CHANGED,
                    f"file {sha} differs from what entry {binding[0]} recorded",
                )
            )
    for sha, (seq, _) in [*bound.files.items(), *bound.legacy_files.items()]:
        problems.append(
            AuditProblem(
                seq, ProblemKind.FACT_MISSING, f"file {sha} recorded by entry {seq} is gone"
            )
        )


def _reconcile_perceptual(
    conn: sqlite3.Connection,
    bound: FactBindings,
    marks: dict[str, int],
    tally: _Tally,
    ids: dict[int, str],
) -> None:
    """Perceptual rows and descriptors, grouped by (asset, scheme), against their bindings."""
    problems = tally.problems
    asset_mark = marks.get("bound_from_asset_pk", 1)
    groups: dict[tuple[int, str], list[Any]] = {}
    for hash_pk, asset_pk, scheme, variant, words in execute(conn, _ALL_PERCEPTUAL):
        group = groups.setdefault((int(asset_pk), str(scheme)), [int(hash_pk), [], b""])
        group[0] = min(group[0], int(hash_pk))
        group[1].append((str(variant), bytes(words)))
    for asset_pk, scheme, descriptor in execute(conn, _ALL_DESCRIPTORS):
        group = groups.setdefault((int(asset_pk), str(scheme)), [0, [], b""])
        group[2] = bytes(descriptor)
    hash_mark = marks.get("bound_from_hash_pk", 1)
    for (asset_pk, scheme), (first_pk, rows, descriptor) in groups.items():
        tally.checked += len(rows) + (1 if descriptor else 0)
        asset_id = ids.get(asset_pk, f"#{asset_pk}")
        binding = bound.perceptual.pop((asset_id, scheme), None)
        if binding is None:
            if (rows and first_pk >= hash_mark) or (not rows and asset_pk >= asset_mark):
                tally.unbound(f"perceptual rows of asset {asset_id} ({scheme})")
            else:
                tally.legacy += len(rows) + (1 if descriptor else 0)
            continue
        if _perceptual_row_hash(asset_id, scheme, rows, descriptor) != binding[1]:
            problems.append(
                AuditProblem(
                    binding[0],
                    ProblemKind.FACT_CHANGED,
                    f"perceptual rows of asset {asset_id} ({scheme}) differ from what entry "
                    f"{binding[0]} recorded",
                )
            )
    for (asset_id, scheme), (seq, _) in bound.perceptual.items():
        problems.append(
            AuditProblem(
                seq,
                ProblemKind.FACT_MISSING,
                f"perceptual rows of asset {asset_id} ({scheme}) recorded by entry {seq} are gone",
            )
        )


def _legacy_changed(what: str, seq: int) -> AuditProblem:
    return AuditProblem(
        seq,
        ProblemKind.FACT_CHANGED,
        f"{what} differs from the facts entry {seq} recorded (hashes, model, source type "
        "or signer; recorded before row binding)",
    )
