"""Issue 17: keys a deployment can use.

An encrypted PEM private key, its passphrase from an environment variable or a
file descriptor (never a flag value); and a KMS/HSM-style callback signer named
``module:function`` on the command line, on one process and on a worker pool.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from provenance._io.keys import DevKeyPaths, SigningKey, load_sign_callback
from provenance.errors import KeyConfigError
from tests.conftest import ROOT, SAMPLE_MEDIA, run_cli

JPEG = SAMPLE_MEDIA / "forest-path.jpg"
RECORD_FILE = SAMPLE_MEDIA / "forest-path.jpg.json"
PASSPHRASE = "correct horse battery staple"  # noqa: S105 - a test passphrase


def _encrypted_key(dev_keys: DevKeyPaths, folder: Path) -> Path:
    key = serialization.load_pem_private_key(dev_keys.private_key.read_bytes(), password=None)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    )
    path = folder / "encrypted.key"
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


def _cli(
    *args: str | Path,
    env: dict[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
    extra_path: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    if not pass_fds and extra_path is None:
        # In this process, without the developer's passphrase variable.
        return run_cli(*args, env={"PROVENANCE_KEY_PASSPHRASE": None, **(env or {})})
    # A descriptor handed to a new process, a signer module on its import path.
    paths = [os.environ.get("PYTHONPATH", ""), str(ROOT / "src")]
    if extra_path is not None:
        paths.append(str(extra_path))
    return subprocess.run(
        [sys.executable, "-m", "provenance", *map(str, args)],
        capture_output=True,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if k != "PROVENANCE_KEY_PASSPHRASE"},
            "PYTHONPATH": os.pathsep.join(paths),
            **(env or {}),
        },
        pass_fds=pass_fds,
        timeout=120,
        check=False,
    )


def _verified(dev_keys: DevKeyPaths, path: Path) -> str:
    done = _cli("verify", path, "--trust-anchors", dev_keys.ca_certificate, "--json")
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)[0]["verdict"])


def _sign_args(dev_keys: DevKeyPaths, out: Path) -> list[str | Path]:
    return [
        *("sign", JPEG, "--out", out, "--record", RECORD_FILE, "--no-inventory", "--json"),
        *("--cert", dev_keys.chain),
    ]


def test_encrypted_key_from_an_environment_variable(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    key = _encrypted_key(dev_keys, tmp_path)
    out = tmp_path / "out"
    done = _cli(
        *_sign_args(dev_keys, out),
        *("--key", key, "--key-passphrase-env", "SHOP_KEY_PASS"),
        env={"SHOP_KEY_PASS": PASSPHRASE},
    )
    assert done.returncode == 0, done.stderr
    assert _verified(dev_keys, out / JPEG.name) == "trusted"
    assert PASSPHRASE not in done.stdout + done.stderr


def test_encrypted_key_from_the_default_variable_on_workers(
    tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    key = _encrypted_key(dev_keys, tmp_path)
    out = tmp_path / "out"
    done = _cli(
        *_sign_args(dev_keys, out),
        *("--key", key, "--workers", "2"),
        env={"PROVENANCE_KEY_PASSPHRASE": PASSPHRASE},
    )
    assert done.returncode == 0, done.stderr
    assert _verified(dev_keys, out / JPEG.name) == "trusted"


def test_encrypted_key_from_a_file_descriptor(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    key = _encrypted_key(dev_keys, tmp_path)
    out = tmp_path / "out"
    read, write = os.pipe()
    os.write(write, PASSPHRASE.encode() + b"\n")
    os.close(write)
    try:
        done = _cli(
            *_sign_args(dev_keys, out),
            *("--key", key, "--key-passphrase-file", f"/dev/fd/{read}"),
            pass_fds=(read,),
        )
    finally:
        os.close(read)
    assert done.returncode == 0, done.stderr
    assert _verified(dev_keys, out / JPEG.name) == "trusted"


def test_encrypted_key_without_or_with_a_wrong_passphrase_is_one_clear_error(
    tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    key = _encrypted_key(dev_keys, tmp_path)
    missing = _cli(*_sign_args(dev_keys, tmp_path / "a"), "--key", key)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"provenance: error: {key}: private key is encrypted; give its passphrase (the CLI "
        "reads it from --key-passphrase-env VAR, --key-passphrase-file FILE or "
        "$PROVENANCE_KEY_PASSPHRASE)"
    ]
    wrong = _cli(
        *_sign_args(dev_keys, tmp_path / "b"),
        *("--key", key, "--key-passphrase-env", "P"),
        env={"P": "not it"},
    )
    assert wrong.returncode == 2
    assert "cannot decrypt private key (wrong passphrase?)" in wrong.stderr
    assert "Traceback" not in wrong.stderr and "not it" not in wrong.stderr
    unset = _cli(
        *_sign_args(dev_keys, tmp_path / "c"), "--key", key, "--key-passphrase-env", "NOPE"
    )
    assert unset.returncode == 2 and "$NOPE is not set" in unset.stderr
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())


def test_the_library_takes_a_passphrase(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    key = _encrypted_key(dev_keys, tmp_path)
    with pytest.raises(KeyConfigError, match="encrypted"):
        SigningKey.from_pem_files(dev_keys.chain, key)
    with pytest.raises(KeyConfigError, match="wrong passphrase"):
        SigningKey.from_pem_files(dev_keys.chain, key, passphrase=b"nope")
    loaded = SigningKey.from_pem_files(dev_keys.chain, key, passphrase=PASSPHRASE.encode())
    plain = SigningKey.from_pem_files(dev_keys.chain, dev_keys.private_key)
    assert loaded.subject == plain.subject
    # What c2pa and the workers get is the decrypted key; nothing is written.
    assert loaded.private_key_pem is not None
    assert b"ENCRYPTED" not in loaded.private_key_pem
    assert PASSPHRASE not in repr(loaded)


KMS_MODULE = '''
"""A signer whose key stays out of provenance: here, a key file only this module reads."""
import os
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

CALLS = os.environ["KMS_CALL_LOG"]

def sign(data: bytes) -> bytes:
    with open(CALLS, "a") as log:
        log.write(f"{os.getpid()}\\n")
    with open(os.environ["KMS_KEY_FILE"], "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), password=None)
    return key.sign(data, ec.ECDSA(hashes.SHA256()))

NOT_CALLABLE = 3
'''


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_signs_through_a_callback_signer(
    tmp_path: Path, dev_keys: DevKeyPaths, workers: str
) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "shop_kms.py").write_text(KMS_MODULE)
    calls = tmp_path / "calls.log"
    out = tmp_path / "out"
    sources = tmp_path / "in"
    sources.mkdir()
    for i in range(3):
        (sources / f"{i}.jpg").write_bytes(JPEG.read_bytes())
    done = _cli(
        *("sign", sources, "--out", out, "--record", RECORD_FILE, "--no-inventory"),
        *("--cert", dev_keys.chain, "--signer", "shop_kms:sign", "--workers", workers),
        env={"KMS_CALL_LOG": str(calls), "KMS_KEY_FILE": str(dev_keys.private_key)},
        extra_path=modules,
    )
    assert done.returncode == 0, done.stderr
    for i in range(3):
        assert _verified(dev_keys, out / f"{i}.jpg") == "trusted"
    # The callback signed (C2PA claim and signed XMP of each file).
    assert len(calls.read_text().splitlines()) >= 3


def test_a_bad_signer_spec_is_one_clear_error(
    tmp_path: Path, dev_keys: DevKeyPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "shop_kms.py").write_text(KMS_MODULE)
    # In this process: the signer module on sys.path, and imported afresh by each run.
    monkeypatch.syspath_prepend(modules)
    for spec, expected in (
        ("shop_kms", "expected module:function"),
        ("no_such_module_xyz:sign", "cannot import no_such_module_xyz"),
        ("shop_kms:missing", "shop_kms has no missing"),
        ("shop_kms:NOT_CALLABLE", "NOT_CALLABLE is not callable"),
    ):
        sys.modules.pop("shop_kms", None)
        done = _cli(
            *_sign_args(dev_keys, tmp_path / "out"),
            "--signer",
            spec,
            env={"KMS_CALL_LOG": "/dev/null", "KMS_KEY_FILE": "/dev/null"},
        )
        assert done.returncode == 2, (spec, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (spec, lines)
    sys.modules.pop("shop_kms", None)
    with pytest.raises(KeyConfigError, match="module:function"):
        load_sign_callback(":sign")
