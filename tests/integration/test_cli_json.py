"""Every command's ``--json`` (and ``--ndjson``) output against its schema in docs/json/.

The commands run through the CLI's ``main`` (``run_cli``, in this process) on copies of
sample_media/ files; a command whose output drifts from its documented shape (a
key gone, an object where an array was) fails here. Also: tables at 60 columns
keep ids and paths whole.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
from PIL import Image

from provenance._core.containers import BlockKind, strip
from provenance._core.types import Status
from provenance._io.keys import DevKeyPaths
from provenance.cli import app, main
from tests.conftest import SAMPLE_MEDIA, run_cli

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "json"
MAGENTO_DATA = Path(__file__).resolve().parents[1] / "data" / "magento"
BASE = "https://shop.example/media/"
CACHE = "catalog/product/cache/0f3e5a7c9b1d2f4e6a8c0b2d4f6e8a0c"
LONG_DIR = "a-rather-long-folder-name-for-the-products/and-another-level-of-folders"
LONG_NAME = "kite-blue-sky-product-image-main-view-large.jpg"


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text("utf-8"))
    return loaded


def check(name: str, value: Any) -> None:
    """Validate ``value`` against docs/json/NAME.schema.json, naming every problem."""
    validator = jsonschema.Draft202012Validator(schema(name))
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(value)
    ]
    assert not problems, f"{name}: " + "; ".join(problems[:5])


@dataclass(frozen=True)
class Project:
    root: Path
    keys: Path
    env: dict[str, str]

    def run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=self.env)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, dev_keys: DevKeyPaths) -> Project:
    """Signed files, renditions, a stripped copy, a Magento tree and a feed, one inventory."""
    root = tmp_path_factory.mktemp("shapes")
    env = {"PROVENANCE_INVENTORY": str(root / "inv.sqlite")}
    p = Project(root, dev_keys.directory, env)
    src = root / "src"
    src.mkdir()
    for name in ("forest-path.jpg", "lake-at-dusk.webp"):
        shutil.copyfile(SAMPLE_MEDIA / name, src / name)
        shutil.copyfile(SAMPLE_MEDIA / f"{name}.json", src / f"{name}.json")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    done = p.run("sign", src, "--out", root / "signed", "--keys", p.keys)
    assert done.returncode == 2, done.stderr  # broken.png: reported, the rest signed
    signed = root / "signed" / "forest-path.jpg"
    stripped = root / "stripped.jpg"
    stripped.write_bytes(strip(signed.read_bytes(), frozenset(BlockKind)))
    done = p.run("renditions", signed, "--sizes", "300x300", "--out", root / "r", "--keys", p.keys)
    assert done.returncode == 0, done.stderr
    # A record with personal data for pii-check.
    record = json.loads((SAMPLE_MEDIA / "forest-path.jpg.json").read_text("utf-8"))
    record["prompt"] = "a forest path, send it to jane.doe@example.com"
    (root / "dirty.json").write_text(json.dumps(record), encoding="utf-8")
    # Magento: the import's images, and pub/media with a signed original and its cache copy.
    images = root / "import-images"
    for relative, name in (
        ("kite-blue-sky.jpg", "kite-blue-sky.jpg"),
        ("lake-at-dusk.webp", "lake-at-dusk.webp"),
        ("fallen-maple-leaf.jpg", "fallen-maple-leaf.jpg"),
        ("forest-path.jpg", "forest-path.jpg"),
        ("packshots/packshot-daffodil-white.jpg", "packshot-daffodil-white.jpg"),
        ("packshots/packshot-fire-truck-white.png", "packshot-fire-truck-white.png"),
        ("packshots/packshot-site-dumper-alpha.png", "packshot-site-dumper-alpha.png"),
    ):
        target = images / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SAMPLE_MEDIA / name, target)
        if name != "forest-path.jpg":
            shutil.copyfile(SAMPLE_MEDIA / f"{name}.json", target.with_name(f"{name}.json"))
    product = root / "pub" / "media" / "catalog" / "product"
    original = product / "k" / "i" / "kite-blue-sky.jpg"
    original.parent.mkdir(parents=True)
    shutil.copyfile(SAMPLE_MEDIA / "kite-blue-sky.jpg", original)
    record_file = SAMPLE_MEDIA / "kite-blue-sky.jpg.json"
    done = p.run("sign", original, "--in-place", "--record", record_file, "--keys", p.keys)
    assert done.returncode == 0, done.stderr
    cached = root / "pub" / "media" / CACHE / "k" / "i" / "kite-blue-sky.jpg"
    cached.parent.mkdir(parents=True)
    with Image.open(original) as im:
        im.convert("RGB").resize((200, 200)).save(cached, "JPEG", quality=80)
    (root / "feed.xml").write_text(
        '<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel>'
        "<item><g:id>KITE-1</g:id><g:title>Kite</g:title>"
        f"<g:image_link>{BASE}catalog/product/k/i/kite-blue-sky.jpg</g:image_link>"
        f"<g:additional_image_link>{BASE}{CACHE}/k/i/kite-blue-sky.jpg</g:additional_image_link>"
        "</item></channel></rss>",
        encoding="utf-8",
    )
    return p


def _rendition(p: Project) -> Path:
    return next((p.root / "r").iterdir())


# name -> (arguments, the exit codes this situation gives). Row commands come first.
CASES: dict[str, tuple[Callable[[Project], list[str | Path]], set[int]]] = {
    "sign": (
        lambda p: ["sign", p.root / "src", "--out", p.root / "signed2", "--keys", p.keys],
        {2},
    ),
    "verify": (
        lambda p: ["verify", p.root / "signed", p.root / "stripped.jpg", p.root / "gone.jpg"],
        {2},
    ),
    "scan": (lambda p: ["scan", p.root / "signed", p.root / "stripped.jpg", p.root / "r"], {0}),
    "trace": (lambda p: ["trace", _rendition(p)], {0}),
    "renditions": (
        lambda p: [
            "renditions",
            p.root / "signed" / "lake-at-dusk.webp",
            "--sizes",
            "200x200,90x90",
            "--out",
            p.root / "r2",
            "--keys",
            p.keys,
        ],
        {0},
    ),
    "inventory-list": (lambda p: ["inventory", "list"], {0}),
    "magento-sign-cache": (
        lambda p: ["magento", "sign-cache", p.root / "pub" / "media", "--keys", p.keys],
        {0},
    ),
    "keys-init": (lambda p: ["keys", "init", p.root / "newkeys", "--force"], {0}),
    "inventory-stats": (lambda p: ["inventory", "stats"], {0}),
    "inventory-index": (lambda p: ["inventory", "index"], {0}),
    "inventory-pack": (lambda p: ["inventory", "pack"], {0}),
    "inventory-migrate": (
        lambda p: ["inventory", "migrate", p.root / "inv.sqlite", p.root / "migrated.sqlite"],
        {0},
    ),
    "inventory-export": (
        lambda p: ["inventory", "export", p.root / "export.json", "--keys", p.keys],
        {0},
    ),
    "audit-verify": (lambda p: ["audit", "verify"], {0}),
    "audit-checkpoint": (lambda p: ["audit", "checkpoint", "--keys", p.keys], {0}),
    "pii-check": (lambda p: ["pii-check", p.root / "dirty.json"], {1}),
    "disclosure": (lambda p: ["disclosure", p.root / "signed" / "forest-path.jpg"], {0}),
    "report": (lambda p: ["report", p.root / "signed", "--keys", p.keys], {0, 1}),
    "incident-open": (lambda p: ["incident", "open", "-d", "a tampered image was reported"], {0}),
    "feed-check": (
        lambda p: [
            "feed-check",
            p.root / "feed.xml",
            "--media-root",
            p.root / "pub" / "media",
            "--base-url",
            BASE,
        ],
        {0, 1},
    ),
    "magento-import": (
        lambda p: [
            "magento",
            "import",
            MAGENTO_DATA / "products.csv",
            "--images-dir",
            p.root / "import-images",
            "--out",
            p.root / "magento-out",
            "--keys",
            p.keys,
        ],
        {0},
    ),
}
ROW_COMMANDS = ("sign", "verify", "scan", "trace", "renditions", "inventory-list")
ROW_COMMANDS += ("magento-sign-cache",)


def _leaf_commands() -> dict[str, Any]:
    """Every command of the CLI, by schema name (``inventory list`` -> ``inventory-list``)."""
    found: dict[str, Any] = {}

    def walk(command: Any, prefix: tuple[str, ...]) -> None:
        if hasattr(command, "commands"):  # a group (typer ships its own click)
            for name, sub in command.commands.items():
                walk(sub, (*prefix, name))
        else:
            found["-".join(prefix)] = command

    walk(typer.main.get_command(app), ())
    return found


def _options(command: Any) -> set[str]:
    return {opt for param in command.params for opt in getattr(param, "opts", ())}


def test_every_command_has_a_schema_and_the_rule_decides_its_shape() -> None:
    commands = _leaf_commands()
    missing = set(commands) ^ {*CASES, "serve"}
    assert not missing, f"give each command a docs/json/NAME.schema.json and a case here: {missing}"
    for name, command in commands.items():
        assert "--json" in _options(command), name
        document = schema(name)
        jsonschema.Draft202012Validator.check_schema(document)
        assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        # Rows (an array, and --ndjson) or one object: nothing else.
        is_rows = name in ROW_COMMANDS
        assert document["type"] == ("array" if is_rows else "object"), name
        assert ("--ndjson" in _options(command)) is is_rows, name
        if is_rows and name != "inventory-list":  # file rows: path and status
            assert {"path", "status"} <= set(document["items"]["required"]), name


def test_verdict_enums_in_the_schemas_are_the_statuses() -> None:
    statuses = [s.value for s in Status]
    for name in ("verify", "trace", "scan"):
        properties = schema(name)["items"]["properties"]
        assert properties["status"]["enum"] == statuses, name


@pytest.mark.parametrize("name", list(CASES))
def test_json_output_matches_its_schema(project: Project, name: str) -> None:
    build, codes = CASES[name]
    done = project.run(*build(project), "--json")
    assert done.returncode in codes, f"{name}: exit {done.returncode}: {done.stderr}"
    assert "Traceback" not in done.stderr
    check(name, json.loads(done.stdout))


@pytest.mark.parametrize("name", ROW_COMMANDS)
def test_ndjson_streams_the_same_rows(project: Project, name: str) -> None:
    build, codes = CASES[name]
    args = build(project)
    streamed = project.run(*args, "--ndjson")
    assert streamed.returncode in codes, streamed.stderr
    lines = streamed.stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    assert rows and all(isinstance(row, dict) for row in rows)
    check(name, rows)
    if name in ("verify", "scan", "trace", "inventory-list"):  # same answer twice
        whole = project.run(*args, "--json")
        assert json.loads(whole.stdout) == rows


class _FlushRecorder(io.StringIO):
    """A stdout that notes how many lines it held at each flush."""

    def __init__(self) -> None:
        super().__init__()
        self.lines_at_flush: list[int] = []

    def flush(self) -> None:
        self.lines_at_flush.append(self.getvalue().count("\n"))
        super().flush()


@pytest.mark.parametrize("command", ["verify", "scan"])
def test_ndjson_flushes_each_row_as_it_completes(
    project: Project, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer of a long batch sees row 1 flushed before row 2 exists, and so on."""
    files = [*sorted((project.root / "signed").iterdir()), project.root / "stripped.jpg"]
    stdout = _FlushRecorder()
    monkeypatch.setenv("PROVENANCE_INVENTORY", project.env["PROVENANCE_INVENTORY"])
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main([command, "--ndjson", *map(str, files)]) == 0
    monkeypatch.undo()
    rows = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert [Path(r["path"]).name for r in rows] == [f.name for f in files]
    # Flushed with 1, 2, ... n lines: one row at a time, not all at the end.
    assert set(range(1, len(files) + 1)) <= set(stdout.lines_at_flush)


def test_rows_say_which_inventory_and_warn_without_one(project: Project) -> None:
    for name in ("verify", "scan", "trace"):
        build, _ = CASES[name]
        env = {"PROVENANCE_INVENTORY": str(project.root / "none.sqlite")}
        done = run_cli(*build(project), "--json", env=env)
        rows = json.loads(done.stdout)
        check(name, rows)
        assert all(r["inventory"] is None and "no inventory at" in r["warnings"][0] for r in rows)
        assert done.stderr.count("provenance: warning: no inventory at") == 1, name
        with_one = json.loads(project.run(*build(project), "--json").stdout)
        assert all(r["inventory"] == project.env["PROVENANCE_INVENTORY"] for r in with_one)
        assert all(r["warnings"] == [] for r in with_one)


def test_a_drifted_shape_fails_its_schema(project: Project) -> None:
    """The schemas are strict enough to catch the drifts users would trip over."""
    rows = json.loads(project.run(*CASES["verify"][0](project), "--json").stdout)
    check("verify", rows)
    drifts: list[tuple[str, Any]] = [
        ("verify", {"rows": rows}),  # an object where the array was
        ("verify", [{k: v for k, v in rows[0].items() if k != "status"}]),  # a key gone
        ("verify", [{**rows[0], "verdict": "fine"}]),  # a status nobody knows
        ("trace", {**rows[0], "lineage": []}),  # trace's old top-level object
        ("sign", [{"path": "x.jpg", "status": "error"}]),  # an error row without its error
        ("audit-verify", [{"ok": True}]),  # rows where one object is documented
    ]
    for name, value in drifts:
        with pytest.raises(AssertionError, match=name):
            check(name, value)


def test_serve_prints_where_it_listens(project: Project) -> None:
    pytest.importorskip("uvicorn", reason="serve needs the [server] extra")
    process = subprocess.Popen(
        [sys.executable, "-m", "provenance", "serve", "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **project.env},
    )
    try:
        assert process.stdout is not None
        text = ""
        for _ in range(20):  # the object is a few indented lines
            text += process.stdout.readline()
            if text.rstrip().endswith("}"):
                break
        check("serve", json.loads(text))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


# --- tables at 60 columns ----------------------------------------------------------------


def test_tables_keep_ids_and_paths_whole_at_60_columns(project: Project) -> None:
    folder = project.root / LONG_DIR
    folder.mkdir(parents=True)
    long_file = folder / LONG_NAME
    shutil.copyfile(SAMPLE_MEDIA / "kite-blue-sky.jpg", long_file)
    record = SAMPLE_MEDIA / "kite-blue-sky.jpg.json"
    out = project.root / "signed-long" / LONG_DIR
    narrow = {**project.env, "COLUMNS": "60"}
    signed = run_cli(
        "sign", long_file, "--out", out, "--record", record, "--keys", project.keys, env=narrow
    )
    assert signed.returncode == 0, signed.stderr
    copy = out / LONG_NAME
    asset_id = json.loads(project.run("verify", copy, "--json").stdout)[0]["asset_id"]
    assert len(str(long_file)) > 60 and len(str(copy)) > 60
    shown = {
        "sign": signed.stdout,
        "verify": run_cli("verify", copy, env=narrow).stdout,
        "scan": run_cli("scan", out, env=narrow).stdout,
        "inventory list": run_cli("inventory", "list", env=narrow).stdout,
        "renditions": run_cli(
            "renditions",
            copy,
            "--sizes",
            "100x100",
            "--out",
            out / "r",
            "--keys",
            project.keys,
            env=narrow,
        ).stdout,
    }
    for command, text in shown.items():
        assert "…" not in text, command
        if command != "inventory list":
            assert str(copy) in text or (command == "sign" and str(long_file) in text), command
        if command not in ("renditions",):
            assert asset_id in text, command
    assert str(long_file) in shown["sign"] and str(copy) in shown["sign"]
    # Wide enough, it is still a table.
    wide = run_cli("inventory", "list", env={**project.env, "COLUMNS": "200"})
    assert "┃ asset id" in wide.stdout and asset_id in wide.stdout
