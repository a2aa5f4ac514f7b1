"""Server triggers: append-only guard rails, and generation counters of changed rows.

Append-only: UPDATE and DELETE of the named tables are refused.

SQLite's inventory has them as ``RAISE(ABORT)`` triggers (``audit._schema``);
this is the same rail on PostgreSQL (one trigger function raising an exception,
fired before each UPDATE or DELETE row and before TRUNCATE) and on MariaDB/MySQL
(``BEFORE UPDATE`` and ``BEFORE DELETE`` triggers that ``SIGNAL SQLSTATE
'45000'``). Inserts are never blocked, so ``inventory migrate`` copies into the
tables as usual. Verification never relies on the rail: someone with the right to
drop a trigger can still edit a row, and the hash chain finds the edit.

Generation counters: a ``provenance_meta`` row that every UPDATE, DELETE (and,
on PostgreSQL, TRUNCATE) of a table bumps, so that data derived from its rows
(the inventory's packed perceptual snapshots) records the generation it was
made at and is ignored once the rows changed.

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


# A derived table (packed snapshots of rows) records the generation of the rows it
# was made from; any UPDATE, DELETE or TRUNCATE of the rows bumps it.
_PG_GENERATION_FUNCTION = (
    "CREATE OR REPLACE FUNCTION provenance_bump_generation() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE provenance_meta SET value = (CAST(value AS BIGINT) + 1)::text "
    "WHERE name = TG_ARGV[0]; RETURN NULL; "
    "END $$"
)


def generation_trigger_names(
    backend: Backend, counters: tuple[tuple[str, str], ...]
) -> tuple[str, ...]:
    """The names of the triggers :func:`generation_ddl` creates, lower case."""
    if backend is Backend.POSTGRESQL:
        return tuple(f"{table}_generation" for table, _ in counters)
    return tuple(
        f"{table}_generation_{verb.lower()}" for table, _ in counters for verb in _MARIADB_VERBS
    )


def generation_ddl(backend: Backend, counters: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """The statements that bump a ``provenance_meta`` counter whenever a table's rows change.

    PostgreSQL: one statement trigger after UPDATE, DELETE or TRUNCATE (one bump
    a statement). MariaDB/MySQL: a row trigger after each UPDATE and DELETE
    (its ``TRUNCATE`` fires no trigger). Inserts never bump it.

    Args:
        backend: The server engine.
        counters: ``(table, counter name)`` pairs (schema constants, never user input).

    Returns:
        DDL statements, in order; none for no counters.
    """
    if not counters:
        return ()
    if backend is Backend.POSTGRESQL:
        return (
            _PG_GENERATION_FUNCTION,
            *(
                f"CREATE OR REPLACE TRIGGER {table}_generation AFTER UPDATE OR DELETE OR "
                f"TRUNCATE ON {table} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION provenance_bump_generation('{counter}')"
                for table, counter in counters
            ),
        )
    return tuple(
        _mariadb_generation(table, counter, verb)
        for table, counter in counters
        for verb in _MARIADB_VERBS
    )


def _mariadb_generation(table: str, counter: str, verb: str) -> str:
    bump = (
        "UPDATE provenance_meta SET value = CAST(CAST(value AS SIGNED) + 1 AS CHAR) "  # noqa: S608 - constants
        f"WHERE name = '{counter}'"
    )
    name = f"{table}_generation_{verb.lower()}"
    return f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {verb} ON {table} FOR EACH ROW {bump}"


def triggers_present_sql(backend: Backend) -> str:
    """The catalogue query listing the triggers of the connection's schema (one name a row)."""
    if backend is Backend.POSTGRESQL:
        return (
            "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE NOT t.tgisinternal AND n.nspname = current_schema()"
        )
    return "SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = DATABASE()"
