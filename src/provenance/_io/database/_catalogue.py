"""Statements written once as SQLAlchemy Core and compiled once per dialect (issue 16).

A store declares each statement it runs as a :class:`Statement` of its
:class:`Catalogue`: a SQLAlchemy Core expression over the store's tables (a
``select``, ``update`` or ``delete``), or an insert of named columns with what
a duplicate row means (:class:`Conflict`). The first time a statement runs on an
engine it is compiled for that dialect (SQLite's ``qmark``, PostgreSQL's and
MariaDB/MySQL's ``format`` parameters) into its text and the order of its
parameters, using the constructs SQLAlchemy provides for what the engines spell
differently (``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL,
``INSERT IGNORE`` on MariaDB, ``RETURNING`` the new row key on PostgreSQL,
``LIMIT offset, count`` on MariaDB). The compiled text is cached on the
statement and runs on the driver's own connection (:mod:`sqlite3`, psycopg,
PyMySQL): a call costs a dict lookup more than the hand-written text did, and
SQLAlchemy is imported only when a statement is first compiled.

Constants of an expression (``depth + 1``, ``IN`` a fixed list of codes) are
written into the text; everything a caller passes is a declared parameter. A
``LIMIT`` without ``OFFSET`` is given ``.offset(sa.literal_column("0"))``: SQLite's
compiler would otherwise add ``OFFSET ?`` with a constant, and the call would
take the slower path that rearranges parameters (1.8x the cost of the audit tail).

The caller passes parameters positionally, in the order the statement names
them (``params``); a dialect that places them otherwise (MariaDB's ``LIMIT``)
gets them rearranged, all other statements pass the caller's tuple untouched.

It never decides what is stored: the tables and the statements belong to the
stores (``inventory``, ``audit``).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from provenance._io.database._url import Backend

Build = Callable[[Any, Any], Any]
"""``build(sa, t)``: the Core expression, from the :mod:`sqlalchemy` module and the tables
(``t.assets``, ``t.files``, ...); ``sa`` is passed so a store need not import SQLAlchemy."""


class Kind(enum.Enum):
    """How a connection runs a compiled statement and what it reports."""

    SELECT = "select"
    STREAM = "stream"  # a SELECT whose rows a server sends as they are read
    INSERT = "insert"
    WRITE = "write"  # UPDATE or DELETE
    PRAGMA = "pragma"  # SQLite's PRAGMA, answered by a server connection itself


class Conflict(enum.Enum):
    """What an insert does with a row that breaks a unique constraint."""

    RAISE = "raise"  # an error, as any other constraint
    CAUGHT = "caught"  # sqlite3.IntegrityError, which the caller catches (see Compiled)
    IGNORE = "ignore"  # skipped silently: rowcount 0


@dataclass(frozen=True, slots=True)
class Compiled:
    """One statement compiled for one dialect.

    Attributes:
        sql: The text, with the driver's placeholders.
        order: For each placeholder, the index of the caller's parameter (past
            them: of :attr:`constants`); None when they are the caller's order.
        kind: How it runs.
        returning: PostgreSQL: the insert returns its new row key (``lastrowid``).
        duplicates: PostgreSQL: a duplicate the caller catches runs ``ON CONFLICT
            DO NOTHING`` (a failed statement aborts a PostgreSQL transaction) and
            "no row" is raised as SQLite raises the duplicate.
        plain: PostgreSQL: the insert without ``RETURNING``, for ``executemany``.
        constants: Values the dialect's compiler added as parameters.
        binary: A server sends the values in its binary format (``bytea`` as
            raw bytes, not hex text): for a few large values.
    """

    sql: str
    order: tuple[int, ...] | None
    kind: Kind
    returning: bool = False
    duplicates: bool = False
    plain: str = ""
    constants: tuple[Any, ...] = ()
    binary: bool = False

    def arrange(self, parameters: Sequence[Any]) -> Sequence[Any]:
        """The caller's parameters (then the constants) in the order of the placeholders."""
        if self.order is None:
            return parameters
        every = (*parameters, *self.constants)
        return tuple(every[i] for i in self.order)


class Statement:
    """One statement of a store; get one from :meth:`Catalogue.query` or :meth:`Catalogue.insert`.

    Attributes:
        name: What messages and tests call it.
        params: The names of its parameters, in the order callers pass them.
        sqlite_sql: Its SQLite text once compiled, when SQLite takes the
            parameters in the caller's order (the fast path of :func:`execute`).
        only: The one engine it is written for, or None (every engine).
    """

    __slots__ = (
        "_build",
        "_catalogue",
        "_compiled",
        "_sized",
        "name",
        "only",
        "params",
        "sqlite_sql",
    )

    def __init__(
        self,
        catalogue: Catalogue,
        name: str,
        build: Callable[[str], Any],
        params: tuple[str, ...],
        only: Backend | None = None,
    ) -> None:
        self._catalogue = catalogue
        self.name = name
        self._build = build
        self.params = params
        self.only = only
        self._compiled: dict[str, Compiled] = {}
        self._sized: dict[int, Statement] = {}
        self.sqlite_sql: str | None = None

    def __repr__(self) -> str:
        return f"<Statement {self.name}>"

    def compiled(self, dialect: str) -> Compiled:
        """The statement for ``dialect`` (``sqlite``, ``postgresql``, ``mariadb``), compiled once.

        SQLite's comes from the catalogue's snapshot when it holds the statement
        (see :class:`Catalogue`), without importing SQLAlchemy.

        Raises:
            ValueError: The expression uses a parameter it does not declare, or
                declares one it does not use, or the statement is only for
                another engine (a programming error).
        """
        if self.only is not None and dialect != self.only.value:
            raise ValueError(f"statement {self.name} is only for {self.only.label}")
        found = self._compiled.get(dialect)
        if found is None:
            stored = None
            if dialect == Backend.SQLITE.value:
                stored = self._catalogue.snapshot().get(self.name)
            found = self._compiled[dialect] = stored or self._compile(dialect)
            if dialect == "sqlite" and found.order is None:
                self.sqlite_sql = found.sql
        return found

    def _compile(self, dialect: str) -> Compiled:
        from sqlalchemy.sql import visitors

        expression, kind, extra = self._build(dialect)
        expression = visitors.replacement_traverse(
            expression, {}, functools.partial(_constant_inline, declared=self.params)
        )
        compiled = expression.compile(dialect=_dialect(dialect))
        names = tuple(compiled.positiontup or ())
        # A constant the dialect's compiler adds itself (SQLite's "OFFSET ?" after
        # a LIMIT) is passed with the caller's values.
        constants = [
            name
            for name in dict.fromkeys(names)
            if name not in self.params and _constant(compiled.binds[name].value)
        ]
        unknown = set(names) - set(self.params) - set(constants)
        unused = set(self.params) - set(names)
        if unknown or unused:
            raise ValueError(
                f"statement {self.name}: parameters used but not declared {sorted(unknown)}, "
                f"declared but not used {sorted(unused)}"
            )
        every = (*self.params, *constants)
        order = tuple(every.index(name) for name in names)
        identity = order == tuple(range(len(self.params)))
        return Compiled(
            str(compiled),
            None if identity else order,
            kind,
            constants=tuple(compiled.binds[name].value for name in constants),
            **extra,
        )

    def sized(self, count: int) -> Statement:
        """This statement for a list of ``count`` values (``IN (...)``), compiled once per count.

        Only for a statement made with ``sized=True``, whose build takes the count.
        """
        found = self._sized.get(count)
        if found is None:
            found = self._sized[count] = self._catalogue.sized_variant(self, count)
        return found


@dataclass(frozen=True, slots=True)
class _Query:
    build: Callable[..., Any]
    stream: bool
    sized: bool


class Catalogue:
    """The statements of one store over its tables, compiled per dialect at first use.

    SQLite's compilation of every statement is also kept in a snapshot file
    beside the store (JSON, made by :meth:`fresh_snapshot`; a unit test fails
    when it differs from what SQLAlchemy compiles now): an embedded inventory
    runs without importing SQLAlchemy, which took 0.3-0.6 s of a one-file
    command's start (more under load). A statement missing from it (a list
    length not snapshotted) is compiled as on a server.

    Args:
        tables: Returns the store's SQLAlchemy ``MetaData`` (called once, at the
            first compilation: SQLAlchemy is not imported before).
        snapshot: The snapshot file of SQLite's compiled statements, or None.
    """

    SNAPSHOT_SIZES = (1,)
    """The list lengths of sized statements the snapshot holds (one asset: the write path)."""

    def __init__(self, tables: Callable[[], Any], *, snapshot: Path | None = None) -> None:
        self.tables = tables
        self.snapshot_path = snapshot
        self._snapshot: dict[str, Compiled] | None = None
        self._namespace: Any = None
        self._queries: dict[str, _Query] = {}
        self.statements: list[Statement] = []
        self.sized_statements: list[Statement] = []

    def snapshot(self) -> dict[str, Compiled]:
        """SQLite's compiled statements by name, read from the snapshot file once."""
        if self._snapshot is None:
            self._snapshot = {}
            if self.snapshot_path is not None:
                with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                    stored = json.loads(self.snapshot_path.read_text(encoding="utf-8"))
                    self._snapshot = {name: _from_json(entry) for name, entry in stored.items()}
        return self._snapshot

    def fresh_snapshot(self) -> dict[str, Any]:
        """SQLite's compilation of every statement now (what the snapshot file must hold)."""
        every = [s for s in self.statements if s.only in (None, Backend.SQLITE)]
        every += [s.sized(n) for s in self.sized_statements for n in self.SNAPSHOT_SIZES]
        return {s.name: _to_json(s._compile(Backend.SQLITE.value)) for s in every}

    def _t(self) -> Any:
        if self._namespace is None:
            self._namespace = SimpleNamespace(**self.tables().tables)
        return self._namespace

    def query(
        self,
        name: str,
        build: Callable[..., Any],
        *,
        params: tuple[str, ...] = (),
        stream: bool = False,
        sized: bool = False,
        only: Backend | None = None,
        binary: bool = False,
    ) -> Statement:
        """A SELECT, UPDATE or DELETE: ``build(sa, t)`` returns its Core expression.

        Args:
            name: Its name, for messages and tests.
            build: The expression; parameters are ``sa.bindparam(name)``.
            params: Their names in the order callers pass them.
            stream: A SELECT whose rows a server sends as they are read (a whole
                table); SQLite reads every result that way.
            sized: ``build(sa, t, count)`` takes the length of a list; use
                :meth:`Statement.sized`, whose ``params`` are the names given
                by ``params`` followed by ``v0`` ... ``v{count-1}``.
            only: The one engine it is written for (its functions exist
                nowhere else); compiling it for another raises ``ValueError``
                and SQLite's snapshot leaves it out.
            binary: A server returns its values in binary (see :class:`Compiled`).
        """
        self._queries[name] = _Query(build, stream, sized)

        def make(dialect: str) -> tuple[Any, Kind, dict[str, Any]]:
            import sqlalchemy as sa

            expression = build(sa, self._t())
            return expression, _kind_of(sa, expression, stream=stream), {"binary": binary}

        statement = Statement(self, name, make, params, only)
        (self.sized_statements if sized else self.statements).append(statement)
        return statement

    def sized_variant(self, statement: Statement, count: int) -> Statement:
        """``statement`` for a list of ``count`` values (see :meth:`query`)."""
        query = self._queries[statement.name]
        values = tuple(f"v{i}" for i in range(count))

        def make(dialect: str) -> tuple[Any, Kind, dict[str, Any]]:
            import sqlalchemy as sa

            expression = query.build(sa, self._t(), count)
            return expression, _kind_of(sa, expression, stream=query.stream), {}

        return Statement(self, f"{statement.name}[{count}]", make, statement.params + values)

    def insert(
        self,
        name: str,
        table: str,
        columns: tuple[str, ...],
        *,
        conflict: Conflict = Conflict.RAISE,
        key: str | None = None,
    ) -> Statement:
        """``INSERT INTO table (columns) VALUES (...)``, parameters in ``columns`` order.

        Args:
            name: Its name, for messages and tests.
            table: The table.
            columns: The columns given, in the order callers pass their values.
            conflict: What a duplicate row does.
            key: The integer row key column the caller reads as ``lastrowid``
                (PostgreSQL returns it with ``RETURNING``).
        """

        def make(dialect: str) -> tuple[Any, Kind, dict[str, Any]]:
            import sqlalchemy as sa

            target = getattr(self._t(), table)
            values: dict[str, Any] = {column: sa.bindparam(column) for column in columns}
            # .inline(): no implicit "RETURNING pk" (PostgreSQL), only the one asked for.
            postgres = dialect == Backend.POSTGRESQL.value
            extra: dict[str, Any] = {}
            expression: Any
            if dialect == Backend.SQLITE.value:
                from sqlalchemy.dialects.sqlite import insert as sqlite_insert

                expression = sqlite_insert(target).values(values).inline()
                if conflict is Conflict.IGNORE:
                    expression = expression.on_conflict_do_nothing()
            elif postgres:
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                expression = pg_insert(target).values(values).inline()
                if conflict is not Conflict.RAISE:
                    expression = expression.on_conflict_do_nothing()
                extra = {
                    "returning": key is not None,
                    "duplicates": conflict is Conflict.CAUGHT,
                    # Compiled before RETURNING is added: executemany returns no keys.
                    "plain": str(expression.compile(dialect=_dialect(dialect))),
                }
                if key is not None:
                    expression = expression.returning(target.c[key])
            else:
                from sqlalchemy.dialects.mysql import insert as mysql_insert

                expression = mysql_insert(target).values(values).inline()
                if conflict is Conflict.IGNORE:
                    expression = expression.prefix_with("IGNORE")
            return expression, Kind.INSERT, extra

        statement = Statement(self, name, make, columns)
        self.statements.append(statement)
        return statement


def _constant_inline(element: Any, *, declared: tuple[str, ...]) -> Any:
    """A constant of the expression (``depth + 1``, ``IN (codes)``) written into its text.

    Only the store's own constants reach here (never input): an int, a str or
    a sequence of them; every value a caller passes is a declared parameter.
    """
    import sqlalchemy as sa

    if (
        isinstance(element, sa.BindParameter)
        and element.key not in declared
        and isinstance(element.value, int | str | list | tuple)
    ):
        return sa.literal_column(_literal(element.value), type_=element.type)
    return None  # a parameter without a value stays one: _compile names it


def _constant(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _literal(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ")"
    raise ValueError(f"a constant of type {type(value).__name__} cannot be written into SQL")


def _to_json(compiled: Compiled) -> dict[str, Any]:
    return {
        "sql": compiled.sql,
        "order": None if compiled.order is None else list(compiled.order),
        "kind": compiled.kind.value,
        "constants": list(compiled.constants),
    }


def _from_json(entry: dict[str, Any]) -> Compiled:
    order = entry["order"]
    return Compiled(
        str(entry["sql"]),
        None if order is None else tuple(int(i) for i in order),
        Kind(entry["kind"]),
        constants=tuple(entry["constants"]),
    )


def _kind_of(sa: Any, expression: Any, *, stream: bool) -> Kind:
    if isinstance(expression, sa.Insert):
        return Kind.INSERT
    if isinstance(expression, sa.Update | sa.Delete):
        return Kind.WRITE
    return Kind.STREAM if stream else Kind.SELECT


@functools.cache
def _dialect(name: str) -> Any:
    """The SQLAlchemy dialect a statement is compiled for (no driver is imported)."""
    if name == Backend.SQLITE.value:
        from sqlalchemy.dialects.sqlite.base import SQLiteDialect

        return SQLiteDialect(paramstyle="qmark")
    if name == Backend.POSTGRESQL.value:
        from sqlalchemy.dialects.postgresql.base import PGDialect

        return PGDialect(paramstyle="format")  # type: ignore[no-untyped-call]
    from sqlalchemy.dialects.mysql.base import MySQLDialect

    return MySQLDialect(paramstyle="format")


def execute(
    conn: Any,
    statement: Statement,
    parameters: Sequence[Any] = (),
    /,
    _sqlite: type[sqlite3.Connection] = sqlite3.Connection,
) -> Any:
    """Run ``statement`` on a :mod:`sqlite3` or server connection; its cursor.

    Raises:
        sqlite3.IntegrityError: A constraint was violated (on every engine).
    """
    # The hot path (SQLite, the statement compiled): two attribute reads more than
    # conn.execute(text); ``_sqlite`` is bound once instead of looked up per call.
    sql = statement.sqlite_sql
    if sql is not None and type(conn) is _sqlite:
        return conn.execute(sql, parameters)
    if isinstance(conn, sqlite3.Connection):
        compiled = statement.compiled(Backend.SQLITE.value)
        return conn.execute(compiled.sql, compiled.arrange(parameters))
    return conn.run(statement.compiled(conn.backend.value), parameters)


def executemany(conn: Any, statement: Statement, rows: Iterable[Sequence[Any]], /) -> Any:
    """Run ``statement`` once for each parameter row (no row keys are returned).

    Raises:
        sqlite3.IntegrityError: A constraint was violated (on every engine).
    """
    if isinstance(conn, sqlite3.Connection):
        compiled = statement.compiled(Backend.SQLITE.value)
        if compiled.order is None:
            return conn.executemany(compiled.sql, rows)
        return conn.executemany(compiled.sql, (compiled.arrange(row) for row in rows))
    return conn.run_many(statement.compiled(conn.backend.value), rows)
