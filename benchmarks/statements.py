"""Per-call cost of a catalogue statement on SQLite against hand-written SQL (issue 16).

Every inventory statement is SQLAlchemy Core compiled per dialect
(``provenance._io.database._catalogue``); on SQLite the compiled text runs on the
same :mod:`sqlite3` connection as the hand-written text did. This measures, in
paired shuffled rounds on one connection to a 2,000-asset inventory:

* ``text``: ``conn.execute(<the hand-written SQL of before>, params)``;
* ``compiled text``: ``conn.execute(<the catalogue's SQLite text>, params)``
  (the SQL SQLAlchemy writes: qualified column names, ``OFFSET`` after ``LIMIT``);
* ``catalogue``: ``execute(conn, statement, params)``, the call the stores make
  (the text above plus the dispatch on the connection's engine);

for three statements of the write and read paths: an asset key by id (a hit), the
audit tail (``LIMIT 1``: SQLite's compiler adds ``OFFSET ?``, so the parameters are
rearranged on each call) and one asset row with its signer by key.

Run::

    .venv/bin/python benchmarks/statements.py            # 15 rounds
    .venv/bin/python benchmarks/statements.py --quick    # 3 rounds

Results go to ``benchmarks/results/statements.json`` and a table on stdout.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    console,
    machine_info,
    machine_line,
    median,
    paired_ratios,
    parse_args,
    run_interleaved,
    table,
)
from provenance._io.database import Statement, execute
from provenance.audit._statements import _TAIL_LINK
from provenance.inventory._rows import _ASSETS_IN
from provenance.inventory._statements import ASSET_KEY

ASSETS = 2000
CALLS = 2000  # back-to-back calls per sample

# What the stores ran before the catalogue, word for word.
_OLD = {
    "asset key by id": "SELECT asset_pk FROM assets WHERE asset_id = ?",
    "audit tail": "SELECT seq, entry_hash FROM audit ORDER BY seq DESC LIMIT 1",
    "asset row by key": """
    SELECT a.asset_pk, a.asset_id, a.essence_sha256, p.asset_id, a.record_json, s.subject,
           a.first_signed_at
    FROM assets AS a
    JOIN signers AS s ON s.signer_id = a.signer_id
    LEFT JOIN assets AS p ON p.asset_pk = a.parent_pk
    WHERE a.asset_pk IN (?)
""",
}


def _inventory(folder: Path) -> sqlite3.Connection:
    """A SQLite inventory of ``ASSETS`` assets (rows written directly), audit entries too."""
    from provenance.inventory import Inventory

    path = folder / "inventory.sqlite"
    Inventory(path).close()  # the schema
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO signers (subject) VALUES ('CN=bench')")
    conn.executemany(
        "INSERT INTO assets (asset_id, essence_sha256, digital_source_type, generator, model, "
        "model_version, created_at, record_json, signer_id, first_signed_at) "
        "VALUES (?, ?, 'trainedAlgorithmicMedia', 'g', 'm', '1', 't', '{}', 1, 't')",
        [(f"asset-{i}", i.to_bytes(32, "big")) for i in range(ASSETS)],
    )
    conn.executemany(
        "INSERT INTO audit (seq, at, event, asset_id, payload, prev_hash, entry_hash) "
        "VALUES (?, 't', 'signed', NULL, '{}', 'p', 'h')",
        [(i,) for i in range(1, ASSETS + 1)],
    )
    return conn


def _tasks(conn: sqlite3.Connection) -> dict[str, Callable[[], object]]:
    cases: dict[str, tuple[Statement, tuple[Any, ...]]] = {
        "asset key by id": (ASSET_KEY, ("asset-1234",)),
        "audit tail": (_TAIL_LINK, ()),
        "asset row by key": (_ASSETS_IN.sized(1), (1234,)),
    }
    tasks: dict[str, Callable[[], object]] = {}
    for name, (statement, params) in cases.items():
        compiled = statement.compiled("sqlite")
        arranged = tuple(compiled.arrange(params))
        old = _OLD[name]

        def text(old: str = old, params: tuple[Any, ...] = params) -> object:
            return conn.execute(old, params).fetchall()

        def compiled_text(sql: str = compiled.sql, params: tuple[Any, ...] = arranged) -> object:
            return conn.execute(sql, params).fetchall()

        def catalogue(statement: Statement = statement, params: tuple[Any, ...] = params) -> object:
            return execute(conn, statement, params).fetchall()

        assert text() == compiled_text() == catalogue() != []
        tasks[f"{name}|text"] = text
        tasks[f"{name}|compiled text"] = compiled_text
        tasks[f"{name}|catalogue"] = catalogue
    return tasks


def main() -> int:
    args = parse_args(
        "statements",
        __doc__.splitlines()[0],
        default_repeats=15,
        quick_repeats=3,
    )
    info = machine_info()
    with tempfile.TemporaryDirectory() as folder:
        conn = _inventory(Path(folder))
        tasks = _tasks(conn)
        samples = run_interleaved(
            tasks, args.repeats, seed=args.seed, number=dict.fromkeys(tasks, CALLS)
        )
        conn.close()
    rows: list[list[str]] = []
    results: dict[str, Any] = {}
    for name in _OLD:
        base = samples[f"{name}|text"]
        entry: dict[str, Any] = {}
        for variant in ("text", "compiled text", "catalogue"):
            series = samples[f"{name}|{variant}"]
            entry[variant] = {
                "median_us": round(median(series) / 1000, 3),
                "ratio_to_text": round(median(paired_ratios(series, base)), 3),
                "samples_ns": series,
            }
        results[name] = entry
        rows.append(
            [
                name,
                *(f"{entry[v]['median_us']:.2f}" for v in ("text", "compiled text", "catalogue")),
                f"{entry['catalogue']['ratio_to_text']:.3f}",
            ]
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"machine": info, "repeats": args.repeats, "calls": CALLS, "results": results},
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    console.print(
        table(
            "SQLite: µs per call (median of paired rounds)",
            ["statement", "text", "compiled text", "catalogue", "catalogue / text"],
            rows,
            caption=machine_line(info),
        )
    )
    console.print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
