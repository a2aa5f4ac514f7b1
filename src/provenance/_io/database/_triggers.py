"""Append-only guard rails on a server: UPDATE and DELETE of the named tables are refused.

SQLite's inventory has them as ``RAISE(ABORT)`` triggers (``audit._schema``);
this is the same rail on PostgreSQL (one trigger function raising an exception,
fired before each UPDATE or DELETE row and before TRUNCATE) and on MariaDB/MySQL
(``BEFORE UPDATE`` and ``BEFORE DELETE`` triggers that ``SIGNAL SQLSTATE
'45000'``). Inserts are never blocked, so ``inventory migrate`` copies into the
tables as usual. Verification never relies on the rail: someone with the right to
drop a trigger can still edit a row, and the hash chain finds the edit.

Every statement can run again (``CREATE OR REPLACE`` / ``IF NOT EXISTS``): a
MariaDB creation that stopped half-way is finished by the next process.
"""

from __future__ import annotations

from provenance._io.database._url import Backend

APPEND_ONLY_MESSAGE = "is append-only"
"""What the refusal says after the table's name (``audit is append-only``)."""

_PG_FUNCTION = (
    "CREATE OR REPLACE FUNCTION provenance_append_only() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN "
    f"RAISE EXCEPTION '% {APPEND_ONLY_MESSAGE}', TG_TABLE_NAME "
    "USING ERRCODE = 'P0001'; "
    "END $$"
)


def _pg_names(table: str) -> tuple[str, str]:
    """PostgreSQL: the row trigger (UPDATE, DELETE) and the statement one (TRUNCATE)."""
    return f"{table}_append_only", f"{table}_no_truncate"


def _mariadb_name(table: str, verb: str) -> str:
    return f"{table}_no_{verb.lower()}"


_MARIADB_VERBS = ("UPDATE", "DELETE")


def append_only_trigger_names(backend: Backend, tables: tuple[str, ...]) -> tuple[str, ...]:
    """The names of the triggers :func:`append_only_ddl` creates, lower case."""
    if backend is Backend.POSTGRESQL:
        return tuple(name for t in tables for name in _pg_names(t))
    return tuple(_mariadb_name(t, verb) for t in tables for verb in _MARIADB_VERBS)


def append_only_ddl(backend: Backend, tables: tuple[str, ...]) -> tuple[str, ...]:
    """The statements that make ``tables`` refuse UPDATE and DELETE on ``backend``.

    Args:
        backend: The server engine.
        tables: Table names (schema constants, never user input).

    Returns:
        DDL statements, in order; none for no tables.
    """
    if not tables:
        return ()
    if backend is Backend.POSTGRESQL:
        statements = [_PG_FUNCTION]
        for table in tables:
            rows, truncate = _pg_names(table)
            statements += [
                f"CREATE OR REPLACE TRIGGER {rows} BEFORE UPDATE OR DELETE "
                f"ON {table} FOR EACH ROW EXECUTE FUNCTION provenance_append_only()",
                f"CREATE OR REPLACE TRIGGER {truncate} BEFORE TRUNCATE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION provenance_append_only()",
            ]
        return tuple(statements)
    return tuple(
        f"CREATE TRIGGER IF NOT EXISTS {_mariadb_name(table, verb)} BEFORE {verb} ON {table} "
        f"FOR EACH ROW SIGNAL SQLSTATE '45000' "
        f"SET MESSAGE_TEXT = '{table} {APPEND_ONLY_MESSAGE}'"
        for table in tables
        for verb in _MARIADB_VERBS
    )
