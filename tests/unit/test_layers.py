"""The import graph keeps its layers (issue 18; docs/architecture.md).

Every module of the package is assigned to one layer. A module may import from
its own layer and the layers below it, never from a layer above; nothing but
``__main__`` imports the CLI; and no module reaches into another module's
private (underscore) names, except a private implementation module and its
public facade in the same package. A new module fails here until it is given a layer
in :data:`LAYERS` (a module under ``_core/`` or ``_io/`` takes its folder's layer):
deciding where it belongs is part of adding it. The core imports nothing that reaches the
file system, a process, the network, SQLite or c2pa.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "provenance"

# Lowest first. Keep in step with the picture in docs/architecture.md. A module takes the
# layer of the longest name listed here that is itself or a package holding it: the
# folder shows the layer (everything under ``_core/`` is core, under ``_io/`` is io), and a
# new top-level module fails until it is listed.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("base", frozenset({"errors", "_version", "_lazy"})),
    # pure: bytes, arrays and values in, values out; no file I/O, no clock, no c2pa
    ("core", frozenset({"_core", "audit._chain", "audit._facts"})),
    ("io", frozenset({"_io"})),  # the outside world: files, SQLite, c2pa, keys, Chromium
    ("stores", frozenset({"inventory", "audit"})),
    (
        "verbs",
        frozenset({"fingerprint", "sign", "verify", "renditions", "trace", "feed"}),
    ),
    ("batch", frozenset({"batch", "scan", "report"})),  # report: verifies on the batch path
    ("adapters", frozenset({"integrations", "cli", "__main__"})),  # people and platforms
    # Public faces of private packages, and module paths kept for one release with a
    # DeprecationWarning: for users only, so nothing in the package may import them.
    (
        "facades",
        frozenset(
            {"phash", "containers", "disclosure"} | {"verdicts", "discovery", "index", "pdf"}
        ),
    ),
)
RANK = {module: rank for rank, (_, modules) in enumerate(LAYERS) for module in modules}
LAYER_NAME = {module: name for name, modules in LAYERS for module in modules}

# What a pure module may not import: the file system, processes, the network, SQLite, c2pa.
IMPURE = frozenset(
    {"os", "pathlib", "shutil", "tempfile", "subprocess", "socket", "sqlite3", "urllib"}
    | {"http", "c2pa", "requests", "httpx", "multiprocessing"}
)


def _listed(module: str) -> str:
    """The name in LAYERS that places ``module``: itself or the closest package holding it."""
    name = module
    while name not in RANK and "." in name:
        name = name.rpartition(".")[0]
    return name


# Private names used across modules today, each to be replaced by a public seam.
# The test fails when one disappears, so the list can only shrink.
KNOWN_PRIVATE_USES: frozenset[tuple[str, str]] = frozenset()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, ast.Module]:
    return {
        _module_name(p): ast.parse(p.read_text(encoding="utf-8"), filename=str(p))
        for p in sorted(PACKAGE.rglob("*.py"))
    }


def _is_module(name: str) -> bool:
    path = PACKAGE.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(tree: ast.Module) -> Iterator[tuple[str, str | None, str]]:
    """(imported module, imported name or None, local alias) for provenance imports."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("provenance."):
                    mod = alias.name.removeprefix("provenance.")
                    yield mod, None, alias.asname or alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module != "provenance" and not node.module.startswith("provenance."):
                continue
            base = node.module.removeprefix("provenance").lstrip(".")
            for alias in node.names:
                full = f"{base}.{alias.name}" if base else alias.name
                if _is_module(full):
                    yield full, None, alias.asname or alias.name
                else:
                    yield base, alias.name, alias.asname or alias.name


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _facade_pair(module: str, used: str) -> bool:
    """A private implementation module and its public facade, side by side in one package.

    (``integrations.dam._app`` holds what needs the server extra and shares the
    facade ``integrations.dam``'s helpers.)
    """
    target = used.rpartition(".")[0]
    same_package = module.rpartition(".")[0] == target.rpartition(".")[0]
    private_side = any(_private(m.rpartition(".")[2]) for m in (module, target))
    return same_package and private_side


def test_every_module_has_a_layer() -> None:
    unassigned = sorted({m for m in _modules() if _listed(m) not in RANK} - {""})
    assert not unassigned, f"give these modules a layer in LAYERS: {unassigned}"


def test_imports_point_down_or_sideways() -> None:
    upward = []
    for module, tree in _modules().items():
        if module == "":  # the root re-exports the public surface
            continue
        for target, _, _ in _imports(tree):
            if target in ("", module) or _listed(target) not in RANK:
                continue
            here, there = _listed(module), _listed(target)
            if RANK[there] > RANK[here]:
                upward.append(
                    f"{module} ({LAYER_NAME[here]}) imports {target} ({LAYER_NAME[there]})"
                )
    assert not upward, "\n".join(upward)


def test_nothing_imports_the_cli() -> None:
    users = [
        module
        for module, tree in _modules().items()
        if module != "__main__"
        and _listed(module) != "cli"
        and any(_listed(t) == "cli" for t, _, _ in _imports(tree))
    ]
    assert not users


def test_private_names_stay_in_their_module() -> None:
    found: set[tuple[str, str]] = set()
    for module, tree in _modules().items():
        aliases: dict[str, str] = {}
        for target, name, alias in _imports(tree):
            if name is None:
                aliases[alias] = target
            elif _private(name) and target != module:
                found.add((module, f"{target}.{name}"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and _private(node.attr)
            ):
                found.add((module, f"{aliases[node.value.id]}.{node.attr}"))
    found = {(module, used) for module, used in found if not _facade_pair(module, used)}
    new = found - KNOWN_PRIVATE_USES
    assert not new, f"private names used across modules: {sorted(new)}"
    gone = KNOWN_PRIVATE_USES - found
    assert not gone, f"no longer used; remove from KNOWN_PRIVATE_USES: {sorted(gone)}"


def test_the_walker_sees_every_import_form() -> None:
    """The walker sees the import forms the package uses."""
    tree = ast.parse(
        "from provenance import batch\n"
        "from provenance._core import phash\n"
        "from provenance.verify import verify_bytes\n"
        "import provenance.inventory as inv\n"
        "x = batch._sign_plan\n"
    )
    got = sorted((t, n) for t, n, _ in _imports(tree))
    assert got == [
        ("_core.phash", None),
        ("batch", None),
        ("inventory", None),
        ("verify", "verify_bytes"),
    ]


def test_modules_take_their_folders_layer() -> None:
    assert LAYER_NAME[_listed("_core.phash._grids")] == "core"
    assert LAYER_NAME[_listed("_io.c2pa")] == "io"
    assert LAYER_NAME[_listed("audit._chain")] == "core"
    assert LAYER_NAME[_listed("audit._store")] == "stores"
    assert LAYER_NAME[_listed("integrations.magento._csv")] == "adapters"
    assert _listed("newmodule") not in RANK  # a new top-level module must be listed


def test_the_core_does_no_io() -> None:
    impure = []
    for module, tree in _modules().items():
        if LAYER_NAME.get(_listed(module)) != "core":
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            impure += [f"{module} imports {n}" for n in names if n.split(".")[0] in IMPURE]
    assert not impure, "\n".join(impure)
