"""Throw-away PostgreSQL and MariaDB servers for tests and for trying the server backends.

Each server lives in a fresh temporary folder, listens on 127.0.0.1 on a free
port, has one password-protected user (``provenance``) and stops by itself:

* :meth:`ThrowawayServer.stop` (the session fixtures call it; also ``atexit``),
* and, when the Python process that started it dies without cleaning up (a
  crash, ``kill -9``), through ``PR_SET_PDEATHSIG``: the kernel sends the server
  its shutdown signal when its parent goes.

PostgreSQL refuses to run as root, so both servers run as their Debian system
user (``postgres``, ``mysql``) when this process is root; the data folder is
handed to that user. Nothing here touches a system-wide server or its data.

Usage::

    with start_postgresql() as server:
        print(server.url("mydb"))   # postgresql://provenance:...@127.0.0.1:PORT/mydb

``python -m tests.servers postgresql`` (or ``mariadb``) starts one and prints
its URL until Ctrl-C (``make db-postgresql`` / ``make db-mariadb``).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

USER = "provenance"
_PR_SET_PDEATHSIG = 1
_START_TIMEOUT_S = 60.0


class ServerUnavailableError(RuntimeError):
    """The server binaries are not installed (tests skip with this reason)."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent(sig: int) -> Callable[[], None]:
    """A ``preexec_fn`` asking the kernel to send ``sig`` when the parent exits.

    Runs after ``Popen(user=...)`` switched users (a change of user clears it).
    """
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return preexec


def _sweep_stale(prefix: str, pid_file: str) -> None:
    """Remove folders of throw-away servers whose process is gone (a killed test run)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        found = next(iter(folder.glob(pid_file)), None)
        try:
            pid = int(found.read_text().split()[0]) if found is not None else 0
            if pid:
                os.kill(pid, 0)
                continue  # still running: someone else's
        except (OSError, ValueError, IndexError):
            pass
        if time.time() - folder.stat().st_mtime > 600:  # not one being set up right now
            shutil.rmtree(folder, ignore_errors=True)


def _system_user(name: str) -> pwd.struct_passwd | None:
    """The account to run a server as when this process is root, else None (run as we are)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError as exc:
        raise ServerUnavailableError(f"running as root, but there is no {name!r} user") from exc


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{_tail(log)}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server did not listen on {port} in {_START_TIMEOUT_S:g} s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    except OSError:
        return "(no log)"


@dataclass
class ThrowawayServer:
    """A running server; a context manager that stops it and deletes its folder."""

    kind: str
    port: int
    password: str
    folder: Path
    process: subprocess.Popen[bytes]
    stop_signal: int
    create_database: Callable[[str], None] = field(repr=False)
    _stopped: bool = False

    @property
    def scheme(self) -> str:
        """The URL scheme of the backend (``postgresql`` or ``mariadb``)."""
        return self.kind

    def url(self, database: str, *, password: str | None = None) -> str:
        """The URL of ``database`` on this server, for the ``provenance`` user."""
        secret = self.password if password is None else password
        return f"{self.kind}://{USER}:{secret}@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "t") -> str:
        """Create an empty database with a fresh name and return its URL."""
        name = f"{prefix}_{secrets.token_hex(6)}"
        self.create_database(name)
        return self.url(name)

    def query(self, url: str, sql: str) -> list[tuple[object, ...]]:
        """Run one statement as the ``provenance`` user on the database of ``url``; its rows."""
        database = url.rsplit("/", 1)[1]
        if self.kind == "postgresql":
            import psycopg

            dsn = (
                f"host=127.0.0.1 port={self.port} user={USER} password={self.password} "
                f"dbname={database}"
            )
            with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
                cur.execute(sql.encode())
                return list(cur.fetchall()) if cur.description else []
        import pymysql

        conn = pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user=USER,
            password=self.password,
            database=database,
            autocommit=True,
        )
        with conn, conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def stop(self) -> None:
        """Stop the server (idempotent) and remove its folder."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> ThrowawayServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _postgres_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        raise ServerUnavailableError(
            f"PostgreSQL is not installed (no {name}; apt-get install postgresql)"
        )
    return str(candidates[-1])


def start_postgresql() -> ThrowawayServer:
    """Initialise and start a PostgreSQL cluster in a temporary folder.

    Raises:
        ServerUnavailableError: PostgreSQL is not installed.
    """
    initdb, postgres = _postgres_bin("initdb"), _postgres_bin("postgres")
    _sweep_stale("provenance-pg-", "data/postmaster.pid")
    account = _system_user("postgres")
    folder = Path(tempfile.mkdtemp(prefix="provenance-pg-"))
    data, log = folder / "data", folder / "server.log"
    password = secrets.token_urlsafe(16)
    pwfile = folder / "pw"
    pwfile.write_text(password + "\n")
    if account is not None:
        os.chown(folder, account.pw_uid, account.pw_gid)
        os.chown(pwfile, account.pw_uid, account.pw_gid)
    run_as = {"user": account.pw_uid, "group": account.pw_gid} if account else {}
    subprocess.run(
        [initdb, "-D", str(data), "-U", USER, f"--pwfile={pwfile}", "--auth=scram-sha-256",
         "--encoding=UTF8", "--locale=C", "--no-sync"],
        check=True, capture_output=True, cwd=folder, **run_as,  # type: ignore[arg-type]
    )  # fmt: skip
    pwfile.unlink()
    port = _free_port()
    with log.open("wb") as out:
        # SIGQUIT: immediate shutdown; it is a throw-away cluster (fsync off too).
        process = subprocess.Popen(
            [postgres, "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(folder),
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "shared_buffers=32MB", "-c", "max_connections=60"],
            stdout=out, stderr=subprocess.STDOUT, cwd=folder,
            preexec_fn=_die_with_parent(signal.SIGQUIT), **run_as,  # type: ignore[arg-type]
        )  # fmt: skip

    def create(name: str) -> None:
        import psycopg

        url = f"host=127.0.0.1 port={port} user={USER} password={password} dbname=postgres"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    server = ThrowawayServer("postgresql", port, password, folder, process, signal.SIGINT, create)
    atexit.register(server.stop)
    try:
        _wait_for_port(port, process, log)
        _wait_ready(lambda: create("ready_check"))
    except BaseException:
        server.stop()
        raise
    return server


# Long: install, start, wait and grant are one sequence, each step needing the last.
def start_mariadb(*, buffer_pool: str = "64M") -> ThrowawayServer:
    """Initialise and start a MariaDB server in a temporary folder.

    ``buffer_pool`` is InnoDB's buffer pool (64 MB for tests; a benchmark of a
    large inventory sizes it as a deployment would, e.g. ``"2G"``).

    Raises:
        ServerUnavailableError: MariaDB is not installed.
    """
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    mariadbd = shutil.which("mariadbd") or (
        "/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").exists() else None
    )
    if install is None or mariadbd is None:
        raise ServerUnavailableError("MariaDB is not installed (apt-get install mariadb-server)")
    account = _system_user("mysql")
    _sweep_stale("provenance-mariadb-", "mysqld.pid")
    folder = Path(tempfile.mkdtemp(prefix="provenance-mariadb-"))
    data, log, sock = folder / "data", folder / "server.log", folder / "mysqld.sock"
    if account is not None:
        os.chown(folder, account.pw_uid, account.pw_gid)
    # Started as that user (not with --user, whose setuid would clear the death signal).
    run_as = {"user": account.pw_uid, "group": account.pw_gid} if account else {}
    subprocess.run(
        [install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
         "--skip-test-db"],
        check=True, capture_output=True, cwd=folder, **run_as,  # type: ignore[arg-type]
    )  # fmt: skip
    port = _free_port()
    password = secrets.token_urlsafe(16)
    with log.open("wb") as out:
        if account is not None:  # --log-error reopens it as that user
            os.chown(log, account.pw_uid, account.pw_gid)
        process = subprocess.Popen(
            [mariadbd, "--no-defaults", f"--datadir={data}", f"--socket={sock}",
             f"--port={port}", "--bind-address=127.0.0.1", "--skip-name-resolve",
             f"--pid-file={folder / 'mysqld.pid'}", f"--log-error={log}",
             "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
             f"--innodb-buffer-pool-size={buffer_pool}", "--skip-log-bin",
             "--performance-schema=OFF",
             "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin",
             "--max-connections=100"],
            stdout=out, stderr=subprocess.STDOUT, cwd=folder,
            preexec_fn=_die_with_parent(signal.SIGTERM), **run_as,  # type: ignore[arg-type]
        )  # fmt: skip

    def root() -> contextlib.AbstractContextManager[object]:
        import pymysql

        return pymysql.connect(unix_socket=str(sock), user="root", password="", autocommit=True)

    def create(name: str) -> None:
        with root() as conn, conn.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute(f"CREATE DATABASE `{name}`")

    # SIGKILL: nothing of a throw-away server is kept, and InnoDB's clean shutdown takes seconds.
    server = ThrowawayServer("mariadb", port, password, folder, process, signal.SIGKILL, create)
    atexit.register(server.stop)
    try:
        _wait_for_port(port, process, log)

        def grant() -> None:
            with root() as conn, conn.cursor() as cur:  # type: ignore[attr-defined]
                cur.execute(f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{password}'")
                cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'%'")

        _wait_ready(grant)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(action: Callable[[], None]) -> None:
    """Retry ``action`` while the server still starts (the port opens before logins work)."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        try:
            action()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


STARTERS: dict[str, Callable[[], ThrowawayServer]] = {
    "postgresql": start_postgresql,
    "mariadb": start_mariadb,
}


@contextlib.contextmanager
def running(kind: str) -> Iterator[ThrowawayServer]:
    """Start a server of ``kind`` for the duration of the block."""
    server = STARTERS[kind]()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str]) -> int:
    """``python -m tests.servers postgresql|mariadb``: start one, print its URL, wait for Ctrl-C."""
    if len(argv) != 1 or argv[0] not in STARTERS:
        print("usage: python -m tests.servers postgresql|mariadb", file=sys.stderr)
        return 2
    try:
        server = STARTERS[argv[0]]()
    except ServerUnavailableError as exc:
        print(f"servers: {exc}", file=sys.stderr)
        return 2
    with server:
        url = server.new_database("provenance")
        print(f"{server.kind} is running; its data is deleted when you press Ctrl-C.")
        print(f"  export PROVENANCE_INVENTORY='{url}'")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


# --- pytest fixtures (imported by tests/conftest.py) ---------------------------------

import pytest  # noqa: E402 - the fixtures below are for pytest only

BACKENDS = ("sqlite", "postgresql", "mariadb")
"""The inventory backends integration tests run against."""


def _session_server(kind: str) -> Callable[[], Iterator[ThrowawayServer]]:
    def fixture() -> Iterator[ThrowawayServer]:
        try:
            server = STARTERS[kind]()
        except ServerUnavailableError as exc:
            # Like Chromium and PHP, a server the tests need is installed by .ci/run:
            # without it the server tests fail with the reason, never pass unseen.
            pytest.fail(f"{exc}; install postgresql and mariadb-server (.ci/run does)")
        with server:
            yield server

    fixture.__name__ = f"{kind}_server"
    fixture.__doc__ = f"A throw-away {kind} server for the session (fails when not installed)."
    return fixture


postgresql_server = pytest.fixture(scope="session")(_session_server("postgresql"))
mariadb_server = pytest.fixture(scope="session")(_session_server("mariadb"))


@pytest.fixture(params=BACKENDS)
def inventory_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty inventory location on each backend: a path, or a new server database."""
    kind = str(request.param)
    if kind == "sqlite":
        return str(tmp_path / "inventory.sqlite")
    server: ThrowawayServer = request.getfixturevalue(f"{kind}_server")
    return server.new_database()
