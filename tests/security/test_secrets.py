"""Private keys never reach an error, a repr, a log line or CLI output; key files are 0600."""

from __future__ import annotations

import base64
import logging
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import c2pa
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provenance import InsecureKeyFileWarning, ProvenanceError, SigningKey, sign
from provenance._io.c2pa import _datahash
from provenance._io.keys import DevKeyPaths, init_dev_keys
from provenance.errors import KeyConfigError, SignatureError
from tests.conftest import SAMPLE_MEDIA, run_cli, sample_record


def _secrets(pem: bytes) -> list[str]:
    """Fragments of key material that must never be shown: base64 of the PEM body
    in 12-character windows, and the private scalar in hex and decimal."""
    body = "".join(pem.decode().splitlines()[1:-1])
    windows = [body[i : i + 12] for i in range(0, len(body) - 12, 6)]
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    scalar = key.private_numbers().private_value
    raw = scalar.to_bytes(32, "big")
    return [*windows, f"{scalar:x}", str(scalar), base64.b64encode(raw).decode()[:16], raw.hex()]


def _leaks(text: str, pem: bytes) -> list[str]:
    return [fragment for fragment in _secrets(pem) if fragment in text]


def _everything(err: BaseException) -> str:
    """Every string a report or a log could take from an error, its causes included."""
    parts = []
    seen: BaseException | None = err
    while seen is not None:
        parts += [str(seen), repr(seen), repr(seen.args)]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


def _corrupted(pem: bytes) -> bytes:
    lines = pem.splitlines()
    lines[2] = lines[2][:10] + b"!!" + lines[2][12:]
    return b"\n".join(lines) + b"\n"


def _truncated(pem: bytes) -> bytes:
    return pem[: len(pem) // 2]


def _wrong_label(pem: bytes) -> bytes:
    return pem.replace(b"PRIVATE KEY", b"CERTIFICATE")


@pytest.mark.parametrize("mangle", [_corrupted, _truncated, _wrong_label])
def test_key_load_errors_hold_no_key_material(
    mangle: Callable[[bytes], bytes],
    dev_keys: DevKeyPaths,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pem = dev_keys.private_key.read_bytes()
    bad = tmp_path / "bad.key"
    bad.write_bytes(mangle(pem))
    bad.chmod(0o600)
    with caplog.at_level(logging.DEBUG), pytest.raises(KeyConfigError) as caught:
        SigningKey.from_pem_files(dev_keys.chain, bad)
    assert str(caught.value).startswith(str(bad))
    assert _leaks(_everything(caught.value), pem) == []
    assert _leaks(caplog.text, pem) == []


def test_mismatched_key_error_holds_no_key_material(
    dev_keys: DevKeyPaths, other_keys: DevKeyPaths, caplog: pytest.LogCaptureFixture
) -> None:
    pem = other_keys.private_key.read_bytes()
    with caplog.at_level(logging.DEBUG), pytest.raises(KeyConfigError) as caught:
        SigningKey.from_pem_files(dev_keys.chain, other_keys.private_key)
    assert "does not match" in str(caught.value)
    assert _leaks(_everything(caught.value) + caplog.text, pem) == []


def test_repr_and_str_of_a_key_hold_no_key_material(
    signing_key: SigningKey, dev_keys: DevKeyPaths
) -> None:
    pem = dev_keys.private_key.read_bytes()
    assert _leaks(repr(signing_key) + str(signing_key), pem) == []


def test_c2pa_signing_failure_holds_no_key_material(
    dev_keys: DevKeyPaths,
    media: Callable[[str], Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pem = dev_keys.private_key.read_bytes()
    key = SigningKey.from_pem_files(dev_keys.chain, dev_keys.private_key)
    # The native signer gets a damaged copy of the real key, as if memory or a
    # KMS export went wrong after loading: c2pa-rs refuses it with its own text.
    key._key_pem = _corrupted(pem)
    out = tmp_path / "out"
    out.mkdir()
    with caplog.at_level(logging.DEBUG), pytest.raises(SignatureError) as caught:
        sign(
            media("forest-path.jpg"),
            out / "x.jpg",
            record=sample_record("forest-path.jpg"),
            key=key,
        )
    assert _leaks(_everything(caught.value) + caplog.text, pem) == []
    assert sorted(out.iterdir()) == []


@pytest.mark.parametrize("path", ["builder_sign", "data_hashed"])
def test_builder_failure_holds_no_key_material(
    path: str,
    signing_key: SigningKey,
    dev_keys: DevKeyPaths,
    media: Callable[[str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pem = dev_keys.private_key.read_bytes()

    def fail(*args: object, **kwargs: object) -> None:
        raise c2pa.C2paError("Signature: the signer failed")

    # A JPEG is signed data-hashed (c2pa signs our hash); the other formats, and a
    # c2pa library without data-hashed signing, through Builder.sign.
    if path == "builder_sign":
        monkeypatch.setattr(c2pa.Builder, "sign", fail)
    else:
        monkeypatch.setattr(_datahash, "sign_placed", fail)
    src = media("forest-path.jpg" if path == "data_hashed" else "lake-at-dusk.webp")
    with pytest.raises(ProvenanceError) as caught:
        sign(
            src,
            tmp_path / "x.jpg",
            record=sample_record("forest-path.jpg"),
            key=signing_key,
        )
    assert str(caught.value).startswith(str(src))
    assert _leaks(_everything(caught.value), pem) == []


def _cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=env)


@pytest.mark.parametrize("mangle", [_corrupted, _truncated, _wrong_label])
def test_cli_key_errors_print_no_key_material(
    mangle: Callable[[bytes], bytes], dev_keys: DevKeyPaths, tmp_path: Path
) -> None:
    pem = dev_keys.private_key.read_bytes()
    bad = tmp_path / "bad.key"
    bad.write_bytes(mangle(pem))
    bad.chmod(0o600)
    for as_json in ([], ["--json"]):
        done = _cli(
            "sign", *as_json, "--cert", dev_keys.chain, "--key", bad, "--no-inventory",
            "--out", tmp_path / "out", "--record", SAMPLE_MEDIA / "forest-path.jpg.json",
            SAMPLE_MEDIA / "forest-path.jpg",
        )  # fmt: skip
        assert done.returncode == 2
        assert str(bad) in done.stderr and "Traceback" not in done.stderr
        assert _leaks(done.stdout + done.stderr, pem) == []


def test_dev_keys_are_written_0600(tmp_path: Path) -> None:
    old = os.umask(0)  # even a permissive umask must not widen the key file
    try:
        paths = init_dev_keys(tmp_path / "keys")
    finally:
        os.umask(old)
    assert stat.S_IMODE(paths.private_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.chain.stat().st_mode) == 0o644
    again = init_dev_keys(tmp_path / "keys", overwrite=True)
    assert stat.S_IMODE(again.private_key.stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_key_readable_by_others_warns(mode: int, dev_keys: DevKeyPaths, tmp_path: Path) -> None:
    loose = tmp_path / "loose.key"
    loose.write_bytes(dev_keys.private_key.read_bytes())
    loose.chmod(mode)
    with pytest.warns(InsecureKeyFileWarning, match=f"mode {mode:o}"):
        SigningKey.from_pem_files(dev_keys.chain, loose)


def test_a_private_key_file_does_not_warn(dev_keys: DevKeyPaths) -> None:
    SigningKey.from_pem_files(dev_keys.chain, dev_keys.private_key)  # filterwarnings=error


def test_cli_warns_on_stderr_about_a_loose_key(dev_keys: DevKeyPaths, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("chain.pem", "signer.key"):
        (keys / name).write_bytes((dev_keys.directory / name).read_bytes())
    (keys / "signer.key").chmod(0o644)
    done = _cli(
        "sign", "--keys", keys, "--no-inventory", "--out", tmp_path / "out",
        "--record", SAMPLE_MEDIA / "forest-path.jpg.json", SAMPLE_MEDIA / "forest-path.jpg",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    warning = [line for line in done.stderr.splitlines() if "warning" in line]
    assert warning == [
        f"provenance: warning: {keys / 'signer.key'}: private key file is readable by other "
        "users (mode 644); chmod 600 it"
    ]
    assert _leaks(done.stdout + done.stderr, (keys / "signer.key").read_bytes()) == []
