"""Every statement of the inventory and the audit log compiles for SQLite, PostgreSQL, MariaDB."""

from __future__ import annotations

import importlib
import json
import pkgutil

import pytest

import provenance.audit
import provenance.inventory
from provenance._io.database import Catalogue, Conflict, Statement, execute
from provenance.inventory._statements import SQL

DIALECTS = ("sqlite", "postgresql", "mariadb")


def _catalogues() -> list[Catalogue]:
    # The statements are registered by the modules that run them: import them all.
    for package in (provenance.inventory, provenance.audit):
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{info.name}")
    from provenance.audit._statements import SQL as AUDIT_SQL

    return [SQL, AUDIT_SQL]


def _every() -> list[Statement]:
    found: list[Statement] = []
    for catalogue in _catalogues():
        found += catalogue.statements
        found += [s.sized(n) for s in catalogue.sized_statements for n in (1, 3)]
    return found


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_statement_compiles_for_every_dialect(dialect: str) -> None:
    statements = _every()
    assert len(statements) > 40
    for statement in statements:
        if statement.only is not None and statement.only.value != dialect:
            with pytest.raises(ValueError, match="only for"):
                statement.compiled(dialect)
            continue
        compiled = statement.compiled(dialect)
        placeholder = "?" if dialect == "sqlite" else "%s"
        assert compiled.sql.count(placeholder) == len(compiled.order or statement.params), (
            statement.name
        )


def test_sqlite_takes_every_statements_parameters_as_the_caller_passes_them() -> None:
    # The fast path of execute(): no rearranging, no constants added by the compiler.
    rearranged = {
        s.name for s in _every() if s.only is None and s.compiled("sqlite").order is not None
    }
    assert rearranged == {"ancestors", "descendants"}  # asset_id twice


def test_names_are_unique() -> None:
    names = [s.name for s in _every()]
    assert len(names) == len(set(names))


def test_mariadb_takes_limit_and_offset_the_other_way_round() -> None:
    from provenance.inventory._rows import _KEYS_AT_OFFSET

    assert _KEYS_AT_OFFSET.compiled("sqlite").order is None
    assert _KEYS_AT_OFFSET.compiled("postgresql").order is None
    mariadb = _KEYS_AT_OFFSET.compiled("mariadb")
    assert "LIMIT %s, %s" in mariadb.sql
    assert mariadb.arrange((10, 20)) == (20, 10)  # offset first


def test_inserts_use_each_dialects_conflict_clause() -> None:
    catalogue = Catalogue(SQL.tables)
    ignore = catalogue.insert("t_ignore", "signers", ("subject",), conflict=Conflict.IGNORE)
    caught = catalogue.insert(
        "t_caught", "assets", ("asset_id",), key="asset_pk", conflict=Conflict.CAUGHT
    )
    assert "ON CONFLICT DO NOTHING" in ignore.compiled("sqlite").sql
    assert "ON CONFLICT DO NOTHING" in ignore.compiled("postgresql").sql
    assert ignore.compiled("mariadb").sql.startswith("INSERT IGNORE INTO signers")
    pg = caught.compiled("postgresql")
    assert pg.sql.endswith("ON CONFLICT DO NOTHING RETURNING assets.asset_pk")
    assert pg.returning and pg.duplicates and "RETURNING" not in pg.plain
    assert "ON CONFLICT" not in caught.compiled("sqlite").sql
    assert "IGNORE" not in caught.compiled("mariadb").sql


def test_an_undeclared_parameter_is_refused() -> None:
    catalogue = Catalogue(SQL.tables)
    wrong = catalogue.query(
        "t_wrong",
        lambda sa, t: sa.select(t.assets.c.asset_pk).where(
            t.assets.c.asset_id == sa.bindparam("asset_id")
        ),
        params=("value",),
    )
    with pytest.raises(ValueError, match="t_wrong"):
        wrong.compiled("sqlite")


def test_constants_are_written_into_the_text() -> None:
    import sqlite3

    catalogue = Catalogue(SQL.tables)
    constant = catalogue.query(
        "t_constant",
        lambda sa, t: sa.select(t.assets.c.asset_pk).where(
            t.assets.c.model.in_(("it's", "b")), t.assets.c.asset_pk > sa.bindparam("after")
        ),
        params=("after",),
    )
    sql = constant.compiled("sqlite").sql
    assert "IN ('it''s', 'b')" in sql
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE assets (asset_pk INTEGER PRIMARY KEY, model TEXT)")
    conn.executemany("INSERT INTO assets VALUES (?, ?)", [(1, "it's"), (2, "b"), (3, "c")])
    assert execute(conn, constant, (1,)).fetchall() == [(2,)]


def test_the_sqlite_snapshots_hold_what_sqlalchemy_compiles_now() -> None:
    for catalogue in _catalogues():
        assert catalogue.snapshot_path is not None
        stored = json.loads(catalogue.snapshot_path.read_text(encoding="utf-8"))
        regenerate = "python -m tests.unit.test_statement_catalogue"
        assert stored == catalogue.fresh_snapshot(), (
            f"{catalogue.snapshot_path.name} is stale: {regenerate}"
        )


def _write_snapshots() -> None:
    for catalogue in _catalogues():
        assert catalogue.snapshot_path is not None
        text = json.dumps(catalogue.fresh_snapshot(), indent=1, sort_keys=True)
        catalogue.snapshot_path.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    _write_snapshots()


def test_a_statement_for_one_engine_is_left_out_of_sqlites_snapshot() -> None:
    from provenance._io.database import Backend
    from provenance.inventory._packed import _PACKED_PAGE
    from provenance.inventory._statements import SQL

    assert _PACKED_PAGE.only is Backend.POSTGRESQL
    assert _PACKED_PAGE.compiled("postgresql").binary
    assert "string_agg" in _PACKED_PAGE.compiled("postgresql").sql
    assert _PACKED_PAGE.name not in SQL.fresh_snapshot()
