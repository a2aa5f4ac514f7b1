"""Shared fixtures: development keys, a second (foreign) key, sample media copies."""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import subprocess as subprocess_
import sys
import tempfile
import textwrap
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from typer.testing import CliRunner

from provenance._core.record import ProvenanceRecord
from provenance._io.keys import DevKeyPaths, SigningKey, TrustPolicy, init_dev_keys

# Throw-away database servers (session-scoped) and a fresh inventory on each backend.
from tests.servers import (  # noqa: F401 - fixtures
    inventory_url,
    mariadb_server,
    postgresql_server,
)

# Hypothesis profiles for every test (not only tests/fuzz, whose conftest is loaded only
# when that folder is collected): ``ci`` is short, deterministic and has no deadline, so a
# loaded machine gives the same answer; ``fuzz`` is the long run (docs/security.md).
_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=_SLOW_IS_FINE,
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "5000")),
    deadline=None,
    suppress_health_check=_SLOW_IS_FINE,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


ROOT = Path(__file__).resolve().parents[1]
SAMPLE_MEDIA = ROOT / "sample_media"


def fresh_python(code: str, *args: str) -> subprocess_.CompletedProcess[str]:
    """Run ``code`` (dedented) in a fresh interpreter importing this checkout; never raises."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess_.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


SAMPLES = sorted(
    p.name for p in SAMPLE_MEDIA.iterdir() if p.suffix.lower() in {".jpg", ".png", ".webp"}
)


@pytest.fixture(autouse=True)
def own_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own default inventory, never the working tree's.

    The CLI's default is ``./.provenance/inventory.sqlite``, and ``make demo``
    leaves one in the repository: a CLI test run from there would otherwise
    verify against the demo's assets (an unsigned sample would become
    ``known_stripped``). Tests of the default location unset the variable.
    """
    path = tmp_path / "cli-inventory.sqlite"
    monkeypatch.setenv("PROVENANCE_INVENTORY", str(path))
    # Nor the developer's audit witness: tests that want one configure their own.
    monkeypatch.delenv("PROVENANCE_AUDIT_WITNESS", raising=False)
    return path


@pytest.fixture(scope="session")
def dev_keys(tmp_path_factory: pytest.TempPathFactory) -> DevKeyPaths:
    return init_dev_keys(tmp_path_factory.mktemp("keys"), organization="provenance tests")


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> DevKeyPaths:
    return init_dev_keys(tmp_path_factory.mktemp("other-keys"), organization="someone else")


@pytest.fixture(scope="session")
def signing_key(dev_keys: DevKeyPaths) -> SigningKey:
    return SigningKey.from_pem_files(dev_keys.chain, dev_keys.private_key)


@pytest.fixture(scope="session")
def other_key(other_keys: DevKeyPaths) -> SigningKey:
    return SigningKey.from_pem_files(other_keys.chain, other_keys.private_key)


@pytest.fixture(scope="session")
def trust(dev_keys: DevKeyPaths) -> TrustPolicy:
    return TrustPolicy.from_pem(dev_keys.ca_certificate)


@pytest.fixture
def media(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a sample_media file (and its record sidecar) into tmp_path."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copyfile(SAMPLE_MEDIA / name, target)
        sidecar = SAMPLE_MEDIA / f"{name}.json"
        if sidecar.exists():
            shutil.copyfile(sidecar, tmp_path / f"{name}.json")
        return target

    return copy


SIGNATURE_SLACK = 8
"""Bytes two signings of the same input may differ by.

ECDSA signs with a random nonce, and a DER signature is 70-72 bytes, carried
base64 in the XMP statement: ``bytes_added`` varies by a few bytes between runs.
"""


def sample_record(name: str) -> ProvenanceRecord:
    """The illustrative record that goes with a sample image."""
    return ProvenanceRecord.from_json((SAMPLE_MEDIA / f"{name}.json").read_text("utf-8"))


_SIGNED_ONCE: dict[tuple[int, str], bytes] = {}


def signed_once(media: Callable[[str], Path], key: SigningKey, name: str) -> bytes:
    """A sample image signed with ``key`` and its sample record, once per key and file.

    For Hypothesis tests that draw offsets from the signed length: two signings
    differ by :data:`SIGNATURE_SLACK` bytes now and then (about one in 400 is 4
    bytes shorter), and Hypothesis refuses draws that change between its runs.
    """
    found = _SIGNED_ONCE.get((id(key), name))
    if found is None:
        from provenance.sign import sign_bytes

        data = media(name).read_bytes()
        found, _ = sign_bytes(data, record=sample_record(name), key=key)
        _SIGNED_ONCE[(id(key), name)] = found
    return found


def run_cli(
    *args: str | Path,
    env: Mapping[str, str | None] | None = None,
    timeout: float = 300,
    cwd: Path | None = None,
    subprocess: bool = False,
) -> subprocess_.CompletedProcess[str]:
    """``provenance ARGS`` with wide output, never raising; its status, stdout and stderr.

    It runs in an empty folder unless ``cwd`` is given: what ``make demo`` leaves in
    the repository (``.provenance/keys``, an inventory) must not change a test's result.
    ``env`` goes on top of this process's environment; a ``None`` value unsets a variable.

    By default the command runs in this process (:func:`run_cli_in_process`): the
    same ``main`` as ``python -m provenance``, without paying for a new interpreter
    and its imports (about 1.5 s a call). ``subprocess=True`` runs
    ``python -m provenance`` instead, for what only a process shows: the entry point,
    signals, exit on a crash, a fresh interpreter's state. Note: a batch's worker
    processes fork from this process's fork server, started once, with the environment
    and working folder it had then: a test of what workers read from ``env`` or ``cwd``
    needs ``subprocess=True`` (as do ``FORCE_COLOR`` and ``NO_COLOR``, which the
    console reads when it is made, and a ``umask``).
    """
    if not subprocess:
        return run_cli_in_process(*args, env=env, cwd=cwd)
    return subprocess_.run(
        [sys.executable, "-m", "provenance", *map(str, args)],
        capture_output=True,
        text=True,
        env={
            name: value
            for name, value in {**os.environ, "COLUMNS": "200", **(env or {})}.items()
            if value is not None
        },
        check=False,
        timeout=timeout,
        cwd=cwd if cwd is not None else _neutral_folder(),
    )


# What a fresh interpreter's warnings filters are (the library's warnings are printed on
# stderr by the command line, not turned into errors as pytest's filterwarnings=error does).
_FRESH_WARNING_FILTERS: tuple[tuple[str, type[Warning], str], ...] = (
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
)


def run_cli_in_process(
    *args: str | Path,
    env: Mapping[str, str | None] | None = None,
    cwd: Path | None = None,
) -> subprocess_.CompletedProcess[str]:
    """``provenance ARGS`` through :func:`provenance.cli.main` in this process.

    What a subprocess would give, as a :class:`subprocess.CompletedProcess`: stdout
    and stderr apart (typer's ``CliRunner``), the environment (``COLUMNS=200`` and
    ``env`` on top of this one, restored afterwards), the working folder, a fresh
    interpreter's warnings filters, and log records on stderr as ``main``'s
    ``logging.basicConfig`` prints them. An exception the command line does not
    handle propagates, failing the test with its traceback (a process would print
    it and exit 1).
    """
    from provenance.cli import main

    argv = [str(arg) for arg in args]
    runner = CliRunner()
    root = logging.getLogger()
    before, level = Path.cwd(), root.level
    with (
        runner.isolation(env={"COLUMNS": "200", **(env or {})}) as (stdout, stderr, _),
        warnings.catch_warnings(),
    ):
        warnings.resetwarnings()
        for action, category, module in _FRESH_WARNING_FILTERS:
            warnings.filterwarnings(action, category=category, module=module)
        # What main's logging.basicConfig sets up in a fresh process (here pytest's
        # handlers are already on the root logger, so basicConfig does nothing).
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("provenance: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
        os.chdir(cwd if cwd is not None else _neutral_folder())
        try:
            code = main(argv)
        finally:
            os.chdir(before)
            root.removeHandler(handler)
            root.setLevel(level)
            sys.stdout.flush()
            sys.stderr.flush()
        return subprocess_.CompletedProcess(
            ["provenance", *argv],
            code,
            stdout.getvalue().decode("utf-8"),
            stderr.getvalue().decode("utf-8", "backslashreplace"),
        )


@functools.cache
def _neutral_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="provenance-cli-cwd-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # one per test process
    return folder
