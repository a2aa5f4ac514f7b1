"""A cheap start (issue 20): the root and the command line import the library on first use.

Each check runs in a fresh interpreter: in this one, other tests have imported
everything already.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from provenance import audit
from provenance._io.keys import DevKeyPaths
from provenance.cli import _audit, _command, app
from tests.conftest import fresh_python

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_MEDIA = ROOT / "sample_media"
HEAVY = ("numpy", "PIL", "c2pa", "cryptography", "sqlalchemy", "defusedxml", "cv2", "faiss")


_python = fresh_python


def _loaded_after(statement: str) -> list[str]:
    done = _python(
        f"""
        import json, sys
        {statement}
        print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})))
        """
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout)
    return [name for name in HEAVY if name in loaded]


@pytest.mark.parametrize(
    "statement",
    [
        "import provenance",
        "import provenance.cli",
        "import provenance.batch",
        "import provenance.errors",
    ],
)
def test_importing_the_package_or_the_command_line_loads_no_heavy_dependency(
    statement: str,
) -> None:
    assert _loaded_after(statement) == []


def test_a_public_name_loads_what_it_needs_on_first_use() -> None:
    assert "c2pa" in _loaded_after("from provenance import sign")
    assert "numpy" in _loaded_after("import provenance; provenance.HammingIndex")
    assert "numpy" in _loaded_after("import provenance.inventory as i; i.PackReport")


def test_opening_an_inventory_and_looking_a_hash_up_loads_neither_numpy_nor_pillow(
    tmp_path: Path,
) -> None:
    """The index modules load on the first search (issue 20); a lookup by hash needs none."""
    loaded = _loaded_after(
        f"""
        from provenance.inventory import Inventory
        with Inventory({str(tmp_path / "inv.sqlite")!r}) as inventory:
            assert inventory.find_by_essence("00" * 32) is None
            assert inventory.stats().assets == 0
        """
    )
    assert "numpy" not in loaded and "PIL" not in loaded


def test_every_public_name_resolves_to_its_defining_object_in_a_fresh_process() -> None:
    done = _python(
        """
        import importlib, provenance
        assert set(dir(provenance)) >= set(provenance.__all__)
        for name, module in provenance._WHERE.items():
            assert getattr(provenance, name) is getattr(importlib.import_module(module), name), name
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize("verb", ["fingerprint", "sign", "trace", "verify"])
def test_a_verb_stays_the_function_when_its_submodule_is_imported_first(verb: str) -> None:
    """``provenance.sign`` is a module and a function: the function wins, as before."""
    done = _python(
        f"""
        import types
        import provenance.{verb}
        import provenance
        from provenance import {verb} as imported
        assert not isinstance(provenance.{verb}, types.ModuleType), provenance.{verb}
        assert imported is provenance.{verb}, imported
        assert callable(imported) and imported.__name__ == "{verb}"
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_public_packages_and_batch_modules_are_attributes_after_importing_their_parent() -> None:
    """As when the root and provenance.batch imported them eagerly."""
    done = _python(
        """
        import provenance, provenance.batch
        assert provenance.inventory.Inventory is provenance.Inventory
        assert provenance.audit.Checkpoint is provenance.Checkpoint
        assert provenance.batch._pool._SIGN_WHILE_STARTING is True
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_an_unknown_name_is_an_attribute_error() -> None:
    import provenance

    with pytest.raises(AttributeError, match="no attribute 'sgin'"):
        _ = provenance.sgin  # type: ignore[attr-defined]


def test_the_witness_variable_in_the_help_is_the_audit_logs() -> None:
    assert audit.WITNESS_ENV_VAR == _audit._WITNESS_ENV_VAR


@pytest.mark.parametrize("command", ["sign", "verify"])
def test_the_command_line_starts_the_fork_server_before_it_imports_the_library(
    command: str, tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    """``--workers 2``: warm_up is called before numpy, Pillow or c2pa load, and the batch runs."""
    source = tmp_path / "in"
    source.mkdir()
    for name in ("forest-path.jpg", "fallen-maple-leaf.jpg"):
        (source / name).write_bytes((SAMPLE_MEDIA / name).read_bytes())
        (source / f"{name}.json").write_bytes((SAMPLE_MEDIA / f"{name}.json").read_bytes())
    if command == "sign":
        args = ["sign", str(source), "--out", str(tmp_path / "out"), "--no-inventory"]
        args += ["--keys", str(dev_keys.chain.parent)]
    else:
        args = ["verify", str(source), "--trust-anchors", str(dev_keys.ca_certificate)]
    done = _python(
        """
        import json, sys
        import provenance.batch
        from provenance.batch import _forkserver

        seen = []

        def spy(workers, **options):
            seen.append([m for m in ("numpy", "PIL", "c2pa") if m in sys.modules])
            _forkserver.warm_up(workers, **options)

        provenance.batch.warm_up = spy  # before the command modules import it
        from provenance.cli import main

        code = main([*sys.argv[1:], "--workers", "2", "--json"])
        print(json.dumps({"code": code, "seen": seen}), file=sys.stderr)
        """,
        *args,
    )
    result = json.loads(done.stderr.strip().splitlines()[-1])
    assert result["seen"] == [[]], done.stderr
    assert result["code"] == 0, done.stderr
    rows = json.loads(done.stdout)
    assert len(rows) == 2
    assert all(row["status"] in ("ok", "no_provenance") for row in rows), rows


VERBS = ("provenance.sign", "provenance.verify", "provenance.fingerprint", "provenance.inventory")
COMMAND_MODULES = ("_sign", "_verify", "_scan", "_records", "_serve", "_report", "_keys")
COMMAND_MODULES += ("_inventory", "_audit", "_magento")


def _run_main(*args: str) -> tuple[int, set[str]]:
    """``provenance ARGS`` in a fresh interpreter: its exit status and the modules it loaded."""
    done = _python(
        """
        import json, sys
        from provenance.cli import main

        code = main(sys.argv[1:])
        print(json.dumps({"code": code, "loaded": sorted(sys.modules)}), file=sys.stderr)
        """,
        *args,
    )
    result = json.loads(done.stderr.strip().splitlines()[-1])
    return result["code"], set(result["loaded"])


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        [],
        *([group, "--help"] for group in ("keys", "inventory", "audit", "incident", "magento")),
        ["sign", "--help"],
        ["verify", "--help"],
        ["inventory", "list", "--help"],
    ],
)
def test_help_and_version_load_no_library_nor_verb(args: list[str]) -> None:
    code, loaded = _run_main(*args)
    assert code == (2 if args == [] else 0)  # no arguments: the help, as a usage error
    assert {m.split(".")[0] for m in loaded}.isdisjoint(HEAVY)
    assert loaded.isdisjoint(VERBS)


def test_the_command_line_imports_only_the_command_it_runs_and_rich_only_to_print() -> None:
    _, loaded = _run_main("--version")
    assert "rich" not in loaded
    assert not {f"provenance.cli.{name}" for name in COMMAND_MODULES} & loaded
    _, loaded = _run_main("keys", "--help")
    assert "provenance.cli._keys" in loaded
    assert not {f"provenance.cli.{name}" for name in ("_sign", "_magento", "_report")} & loaded
    _, loaded = _run_main("--help")
    assert {f"provenance.cli.{name}" for name in COMMAND_MODULES} <= loaded


def test_one_file_verified_without_an_inventory_loads_neither_it_nor_numpy_nor_the_signing_side(
    tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    image = _sign_into(None, tmp_path / "signed", dev_keys)
    anchors = str(dev_keys.ca_certificate)
    code, loaded = _run_main("verify", str(image), "--trust-anchors", anchors, "--json")
    assert code == 0
    assert {"c2pa", "cryptography"} <= {m.split(".")[0] for m in loaded}  # it did verify
    assert {m.split(".")[0] for m in loaded}.isdisjoint({"numpy", "PIL", "cv2", "rich"})
    assert loaded.isdisjoint({"provenance.inventory", "provenance.sign"})


def _sign_into(inventory: Path | None, out: Path, keys: DevKeyPaths) -> Path:
    """``provenance sign forest-path.jpg`` into ``inventory`` (None: none); the signed file."""
    recorded = ("--inventory", str(inventory)) if inventory is not None else ("--no-inventory",)
    done = _python(
        """
        import sys
        from provenance.cli import main

        sys.exit(main(sys.argv[1:]))
        """,
        "sign",
        str(SAMPLE_MEDIA / "forest-path.jpg"),
        "--out",
        str(out),
        "--keys",
        str(keys.directory),
        *recorded,
    )
    assert done.returncode == 0, done.stderr
    return out / "forest-path.jpg"


def _verify_json(*args: str) -> tuple[list[dict[str, Any]], set[str]]:
    """``provenance verify ARGS --json`` in a fresh interpreter: its rows and the modules loaded."""
    done = _python(
        """
        import json, sys
        from provenance.cli import main

        code = main(sys.argv[1:])
        loaded = sorted({m.split(".")[0] for m in sys.modules})
        print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
        """,
        "verify",
        *args,
        "--json",
    )
    result = json.loads(done.stderr.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows, set(result["loaded"])


def test_one_signed_file_the_inventory_knows_is_verified_without_numpy_nor_pillow(
    tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    """The DAM's common case: a file-hash/essence lookup, the verdict as in this process."""
    from provenance import Inventory, TrustPolicy, verify

    inventory = tmp_path / "inv.sqlite"
    image = _sign_into(inventory, tmp_path / "signed", dev_keys)
    anchors = ["--trust-anchors", str(dev_keys.ca_certificate), "--inventory", str(inventory)]
    rows, loaded = _verify_json(str(image), *anchors)
    assert {"c2pa", "cryptography"} <= loaded  # it did verify
    assert loaded.isdisjoint({"numpy", "PIL", "cv2"}), sorted(loaded & {"numpy", "PIL", "cv2"})
    [row] = rows
    assert row["status"] == "trusted"
    codes = [code for item in row["evidence"] for code in item["codes"]]
    assert "provenance.inventory.essence.match" in codes  # the inventory was asked
    # The same verdict as the library gives with everything imported (this process).
    trust = TrustPolicy.from_pem(dev_keys.ca_certificate)
    with Inventory(inventory, read_only=True) as opened:
        expected = verify(image, trust=trust, inventory=opened).to_dict()
    assert {key: row[key] for key in expected} == expected


def test_an_unsigned_file_still_gets_the_perceptual_search(
    tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    """A stripped, resized copy: numpy and Pillow load, and the search finds its asset."""
    from PIL import Image

    inventory = tmp_path / "inv.sqlite"
    image = _sign_into(inventory, tmp_path / "signed", dev_keys)
    copy = tmp_path / "copy.png"
    with Image.open(image) as opened:
        opened.resize((opened.width // 2, opened.height // 2)).save(copy)
    anchors = ["--trust-anchors", str(dev_keys.ca_certificate), "--inventory", str(inventory)]
    [row], loaded = _verify_json(str(copy), *anchors)
    assert {"numpy", "PIL"} <= loaded
    assert row["status"] == "synthetic_duplicate", row


def _paths(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group
            found += _paths(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def _shown(command: Any, args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[Any, str]:
    """What ``provenance ARGS`` prints, and its exit status, through ``command``."""
    with pytest.raises(SystemExit) as exited:
        command.main(args=args, prog_name="provenance", standalone_mode=True)
    captured = capsys.readouterr()
    return exited.value.code, captured.out + captured.err


def test_the_lazy_command_line_shows_what_the_whole_app_shows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every command's help, and a mistyped command's suggestion, as typer makes them."""
    whole = typer.main.get_command(app)
    paths = _paths(whole)
    assert ("inventory", "list") in paths and ("magento", "import") in paths
    for args in [*([*path, "--help"] for path in paths), ["sgin"], ["inventory", "lst"]]:
        lazy = _command()  # made afresh, as each main() makes it
        assert _shown(lazy, args, capsys) == _shown(whole, args, capsys), args
    code, shown = _shown(_command(), ["sgin"], capsys)
    assert code == 2 and "Did you mean 'sign'?" in shown


EXIT = """
import atexit, sys


class Teardown:
    def __del__(self):  # runs only when the interpreter tears its modules down
        print("torn down", file=sys.stderr, flush=True)


kept = Teardown()
atexit.register(lambda: print("atexit ran", file=sys.stderr))
held = open(sys.argv[1]) if sys.argv[1] else None  # a regular file left open
sys.argv = ["provenance", *sys.argv[2:]]
from provenance.cli import run

run()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the quick exit is Linux only")
def test_the_command_line_exits_without_the_teardown_unless_a_file_is_open(
    tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    """Issue 20: ``run`` skips the interpreter's teardown (40-65 ms) once a command is
    over, yet runs the atexit handlers, keeps the exit status and every line printed;
    with a file still open it exits as usual (the teardown closes it)."""
    source = tmp_path / "in"
    source.mkdir()
    names = ("forest-path.jpg", "fallen-maple-leaf.jpg", "kite-blue-sky.jpg")
    for name in names:
        (source / name).write_bytes((SAMPLE_MEDIA / name).read_bytes())
    args = ["verify", str(source), "--trust-anchors", str(dev_keys.ca_certificate), "--json"]
    quick = _python(EXIT, "", *args)
    assert quick.returncode == 0, quick.stderr  # no_provenance: exit status 0
    assert [row["status"] for row in json.loads(quick.stdout)] == ["no_provenance"] * 3
    assert "atexit ran" in quick.stderr
    assert "torn down" not in quick.stderr
    usual = _python(EXIT, str(source / names[0]), *args)
    assert usual.returncode == 0, usual.stderr
    assert usual.stdout == quick.stdout
    assert "atexit ran" in usual.stderr
    assert "torn down" in usual.stderr
    failing = _python(EXIT, "", "verify", str(tmp_path / "missing.jpg"))
    assert failing.returncode == 2
    assert "missing.jpg" in failing.stdout + failing.stderr  # its one line, flushed
    assert "atexit ran" in failing.stderr
