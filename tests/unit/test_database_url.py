"""Server inventory URLs: which backend, and a password that never shows."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from provenance import find_inventory
from provenance._io.database import Backend, is_server_url, parse_url, redact
from provenance._io.discovery import InventorySource
from provenance.errors import InventoryError
from provenance.inventory import Inventory


@pytest.mark.parametrize(
    ("text", "backend", "driver"),
    [
        ("postgresql://u:p@db.example/inv", Backend.POSTGRESQL, "postgresql+psycopg"),
        ("postgres://u:p@db.example/inv", Backend.POSTGRESQL, "postgresql+psycopg"),
        ("postgresql+psycopg://u:p@db.example/inv", Backend.POSTGRESQL, "postgresql+psycopg"),
        ("mysql://u:p@db.example/inv", Backend.MARIADB, "mysql+pymysql"),
        ("mariadb://u:p@db.example/inv", Backend.MARIADB, "mariadb+pymysql"),
        ("mysql+pymysql://u:p@db.example/inv", Backend.MARIADB, "mysql+pymysql"),
    ],
)
def test_schemes_name_their_backend(text: str, backend: Backend, driver: str) -> None:
    url = parse_url(text)
    assert (url.backend, url.driver, url.host, url.database) == (
        backend,
        driver,
        "db.example",
        "inv",
    )
    assert is_server_url(text)


def test_a_url_that_went_through_pathlib_is_still_one() -> None:
    folded = Path("mysql://bob:hunter2@db.example:3307/inv")
    assert str(folded) == "mysql:/bob:hunter2@db.example:3307/inv"
    assert is_server_url(folded)
    url = parse_url(folded)
    assert (url.host, url.port, url.database, url.password) == (
        "db.example",
        3307,
        "inv",
        "hunter2",
    )
    assert "hunter2" not in redact(str(folded))


def test_a_path_is_not_a_url() -> None:
    assert not is_server_url("/var/lib/inventory.sqlite")
    assert not is_server_url("inventory.sqlite")
    assert not is_server_url("C:inventory.sqlite")


def test_the_password_never_shows() -> None:
    url = parse_url("postgresql://alice:s%40cr3t%2Fpw@db.example:6432/inv?sslmode=require")
    assert url.password == "s@cr3t/pw"  # noqa: S105 - made up
    assert url.port == 6432
    assert url.query == (("sslmode", "require"),)
    for shown in (str(url), repr(url), url.redacted):
        assert "s@cr3t" not in shown
        assert "cr3t" not in shown
    assert url.redacted == "postgresql://alice:***@db.example:6432/inv"
    assert redact("x mysql://bob:hunter2@h/db y") == "x mysql://bob:***@h/db y"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("oracle://u:hunter2@h/db", "unsupported inventory URL scheme"),
        ("postgresql+psycopg2://u:hunter2@h/db", "unsupported driver"),
        ("postgresql://u:hunter2@h/", "without a database name"),
        ("mysql://u:hunter2@/db", "without a host"),
        ("mysql://u:hunter2@h:99999/db", "port"),
    ],
)
def test_a_bad_url_is_one_clear_error_without_the_password(text: str, problem: str) -> None:
    with pytest.raises(InventoryError) as caught:
        parse_url(text)
    message = str(caught.value)
    assert problem in message
    assert "hunter2" not in message
    assert message.startswith(text.split("://")[0])


def test_discovery_finds_a_server_by_flag_variable_or_config(tmp_path: Path) -> None:
    url = "postgresql://alice:hunter2@db.example/inv"
    for found in (
        find_inventory(url, env={}, cwd=tmp_path),
        find_inventory(None, env={"PROVENANCE_INVENTORY": url}, cwd=tmp_path),
    ):
        assert found.is_server
        assert found.exists
        assert parse_url(found.path).database == "inv"
        assert "hunter2" not in found.describe()
    (tmp_path / "provenance.toml").write_text(f'inventory = "{url}"\n')
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    found = find_inventory(None, env={}, cwd=nested)
    assert found.source is InventorySource.CONFIG
    assert found.is_server
    assert parse_url(found.path).host == "db.example"
    assert found.describe().startswith("postgresql://alice:***@db.example/inv (from ")


@pytest.mark.parametrize(
    ("url", "module"),
    [("mysql://u:hunter2@127.0.0.1:1/db", "pymysql"), ("postgresql://u:hunter2@h/db", "psycopg")],
)
def test_a_missing_driver_is_named_with_its_install_command(
    url: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(InventoryError) as caught:
        Inventory(url)
    message = str(caught.value)
    assert f"the {module} driver is missing" in message
    assert "pip install 'product-provenance[database]'" in message
    assert "hunter2" not in message
