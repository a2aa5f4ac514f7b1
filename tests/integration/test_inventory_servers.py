"""The inventory on PostgreSQL and MariaDB: bad input gives one clear error, never a password.

Every test runs against a real, throw-away server (tests/servers.py); they skip
only when the server binaries are not installed.
"""

from __future__ import annotations

import multiprocessing
import secrets
import socket
from typing import Any

import pytest

from provenance._io.database import ServerDatabase, open_server
from provenance._io.keys import SigningKey
from provenance.errors import InventoryError, SchemaVersionError
from provenance.inventory._server import server_schema
from tests.servers import ThrowawayServer

SERVERS = ("postgresql", "mariadb")


def _open(url: str, **options: Any) -> ServerDatabase:
    settings: dict[str, Any] = {"create": True, "read_only": False, "busy_timeout_s": 5.0}
    settings.update(options)
    return open_server(url, server_schema(), **settings)


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> ThrowawayServer:
    found: ThrowawayServer = request.getfixturevalue(f"{request.param}_server")
    return found


def _tables(server: ThrowawayServer, url: str) -> set[str]:
    schema = "current_schema()" if server.kind == "postgresql" else "DATABASE()"
    rows = server.query(
        url,
        f"SELECT table_name FROM information_schema.tables WHERE table_schema = {schema}",  # noqa: S608 - constant
    )
    return {str(r[0]) for r in rows}


def _refused(url: str, password: str, **options: Any) -> str:
    with pytest.raises(InventoryError) as caught:
        _open(url, **options)
    message = str(caught.value)
    assert password not in message
    assert "Traceback" not in message
    return message


def test_a_new_database_gets_the_schema_and_opens_again(server: ThrowawayServer) -> None:
    url = server.new_database()
    _open(url).close()
    assert {"assets", "files", "audit", "provenance_meta", "keypoint_features"} <= _tables(
        server, url
    )
    db = _open(url, create=False)
    assert db.connection.schema_version == server_schema().version
    assert server.password not in db.path
    db.close()


def test_wrong_password(server: ThrowawayServer) -> None:
    url = server.new_database()
    wrong = server.url(url.rsplit("/", 1)[1], password="not-the-password-42")  # noqa: S106 - a wrong one
    message = _refused(wrong, "not-the-password-42")
    assert "wrong user name or password" in message
    assert message.startswith(f"{server.kind}://provenance:***@127.0.0.1")


def test_unknown_database(server: ThrowawayServer) -> None:
    message = _refused(server.url("no_such_inventory"), server.password)
    assert "does not exist" in message


def test_unreachable_server(server: ThrowawayServer) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"{server.kind}://provenance:{server.password}@127.0.0.1:{port}/x"
    message = _refused(url, server.password)
    assert "cannot reach the server" in message


def test_another_applications_database_is_left_alone(server: ThrowawayServer) -> None:
    url = server.new_database()
    server.query(url, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(20))")
    message = _refused(url, server.password)
    assert "not a provenance inventory" in message
    assert _tables(server, url) == {"customers"}


def test_an_empty_database_is_not_created_without_create(server: ThrowawayServer) -> None:
    url = server.new_database()
    message = _refused(url, server.password, create=False)
    assert "empty database" in message
    assert _tables(server, url) == set()


def test_a_newer_schema_is_refused_untouched(server: ThrowawayServer) -> None:
    url = server.new_database()
    _open(url).close()
    server.query(url, "UPDATE provenance_meta SET value = '99' WHERE name = 'schema_version'")
    with pytest.raises(SchemaVersionError) as caught:
        _open(url)
    assert "newer than this provenance supports" in str(caught.value)
    assert server.password not in str(caught.value)
    assert server.query(url, "SELECT value FROM provenance_meta WHERE name = 'schema_version'") == [
        ("99",)
    ]


def _open_once(url: str) -> str:
    try:
        _open(url).close()
    except InventoryError as exc:
        return str(exc)
    return ""


def test_processes_creating_one_inventory_at_once_all_succeed(server: ThrowawayServer) -> None:
    url = server.new_database()
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        errors = pool.map(_open_once, [url] * 4)
    assert errors == [""] * 4
    # application, schema_version, writer, perceptual_generation: once each
    assert server.query(url, "SELECT COUNT(*) FROM provenance_meta") == [(4,)]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit SET payload = '{}' WHERE seq = 1",
        "DELETE FROM audit WHERE seq = 2",
        "UPDATE audit_checkpoints SET at = 'x'",
        "DELETE FROM audit_checkpoints",
    ],
)
def test_audit_rows_cannot_be_updated_or_deleted(
    server: ThrowawayServer, statement: str, signing_key: SigningKey
) -> None:
    from provenance.inventory import Inventory
    from tests.integration.test_inventory import NOW, fake_result

    url = server.new_database()
    with Inventory(url) as inv:
        for seed in (1, 2):
            inv.record_signing(fake_result(seed), signer="CN=append-only test", now=NOW)
        inv.audit.checkpoint(signing_key, now=NOW)
        before = [e.entry_hash for e in inv.audit.entries()]
    driver_error = _driver_error(server)
    with pytest.raises(driver_error, match="append-only"):
        server.query(url, statement)
    with Inventory(url, create=False) as inv:
        assert [e.entry_hash for e in inv.audit.entries()] == before
        assert len(inv.audit.checkpoints()) == 1
        report = inv.audit.verify()
        assert report.ok, report.problems


def test_audit_tables_cannot_be_truncated_on_postgresql(
    postgresql_server: ThrowawayServer,
) -> None:
    import psycopg

    url = postgresql_server.new_database()
    _open(url).close()
    with pytest.raises(psycopg.Error, match="append-only"):
        postgresql_server.query(url, "TRUNCATE audit")


def _drop_append_only_triggers(server: ThrowawayServer, url: str) -> None:
    from provenance._io.database._triggers import append_only_trigger_names
    from provenance._io.database._url import Backend

    backend = Backend.POSTGRESQL if server.kind == "postgresql" else Backend.MARIADB
    for name in append_only_trigger_names(backend, ("audit", "audit_checkpoints")):
        table = "audit_checkpoints" if name.startswith("audit_checkpoints") else "audit"
        on = f" ON {table}" if server.kind == "postgresql" else ""
        server.query(url, f"DROP TRIGGER {name}{on}")


def test_an_older_inventory_without_triggers_gets_them_on_a_writable_open(
    server: ThrowawayServer,
) -> None:
    from provenance.inventory import Inventory
    from tests.integration.test_inventory import NOW, fake_result

    url = server.new_database()
    with Inventory(url) as inv:
        inv.record_signing(fake_result(1), signer="CN=older server", now=NOW)
    _drop_append_only_triggers(server, url)  # as an inventory made before the triggers
    with Inventory(url, read_only=True) as inv:
        assert inv.audit.verify().ok
    server.query(url, "UPDATE audit SET event = event WHERE seq = 1")  # read-only added none
    with Inventory(url, create=False) as inv:
        assert inv.audit.verify().ok
    with pytest.raises(_driver_error(server), match="append-only"):
        server.query(url, "UPDATE audit SET event = event WHERE seq = 1")
    with pytest.raises(_driver_error(server), match="append-only"):
        server.query(url, "DELETE FROM audit WHERE seq = 1")


def test_a_role_that_cannot_create_triggers_still_opens_with_a_warning(
    postgresql_server: ThrowawayServer, caplog: pytest.LogCaptureFixture
) -> None:
    from provenance.inventory import Inventory

    url = postgresql_server.new_database()
    _open(url).close()
    _drop_append_only_triggers(postgresql_server, url)
    role = f"clerk_{secrets.token_hex(4)}"
    secret = secrets.token_hex(8)
    for statement in (
        f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
    ):
        postgresql_server.query(url, statement)
    clerk = url.replace(f"//{url.split('//')[1].split(':')[0]}:", f"//{role}:").replace(
        f":{postgresql_server.password}@", f":{secret}@"
    )
    with caplog.at_level("WARNING", logger="provenance.inventory"), Inventory(clerk) as inv:
        assert inv.audit.verify().ok
    warned = [r.getMessage() for r in caplog.records if "append-only" in r.getMessage()]
    assert warned, caplog.text
    assert "audit_append_only" in warned[0]
    assert secret not in caplog.text


def _driver_error(server: ThrowawayServer) -> type[Exception]:
    if server.kind == "postgresql":
        import psycopg

        return psycopg.Error
    import pymysql

    return pymysql.Error
