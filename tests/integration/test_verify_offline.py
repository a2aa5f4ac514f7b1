"""Verification never goes on the network, and remote-only manifests say so."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import c2pa
import pytest

from provenance import SigningKey, Status, TrustPolicy, sign, verify, verify_bytes
from provenance._core import containers
from provenance._io.keys import DevKeyPaths
from tests.conftest import ROOT, SAMPLE_MEDIA, SAMPLES, sample_record

REMOTE = "https://manifests.example.invalid/abc.c2pa"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Fail any attempt to open a connection or resolve a name."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access attempted during verification")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    # Audit hooks see every socket use from Python, whichever module makes it;
    # they cannot be removed, so one hook is armed only while this fixture is.
    _ARMED.append(attempts)
    yield attempts
    _ARMED.remove(attempts)


_ARMED: list[list[Any]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _ARMED and event in ("socket.connect", "socket.getaddrinfo", "socket.sendto"):
        _ARMED[-1].append((event, args))
        raise OSError(f"network access attempted during verification: {event}")


sys.addaudithook(_audit)

_REMOTE_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
    b'xmlns:dcterms="http://purl.org/dc/terms/" dcterms:provenance="' + REMOTE.encode() + b'"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


def _remote_only(key: SigningKey, image: bytes) -> bytes:
    """A JPEG whose manifest lives only at a URL (c2pa's no-embed mode)."""
    settings = {
        "builder": {"thumbnail": {"enabled": False}},
        "verify": {"verify_after_sign": False},
    }
    assert key.private_key_pem is not None
    info = c2pa.C2paSignerInfo(
        alg=b"es256",
        sign_cert=key.embedded_chain_pem,
        private_key=key.private_key_pem,
        ta_url=None,
    )
    manifest = {
        "claim_generator_info": [{"name": "test", "version": "1"}],
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/"
                            "trainedAlgorithmicMedia",
                        }
                    ]
                },
            }
        ],
    }
    out = io.BytesIO()
    with (
        c2pa.Context(
            settings=c2pa.Settings.from_dict(settings), signer=c2pa.Signer.from_info(info)
        ) as context,
        c2pa.Builder(manifest, context=context) as builder,
    ):
        builder.set_no_embed()
        builder.set_remote_url(REMOTE)
        builder.sign("image/jpeg", io.BytesIO(image), out)
    return out.getvalue()


def test_remote_only_manifest_is_reported_and_not_fetched(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy, no_network: list[Any]
) -> None:
    data = _remote_only(signing_key, media("forest-path.jpg").read_bytes())
    verdict = verify_bytes(data, name="remote.jpg", trust=trust)
    # Provenance is declared, at a URL: never fetched, never called absent.
    assert verdict.status is Status.REMOTE_MANIFEST
    assert not verdict.status.is_failure
    assert verdict.remote_url == REMOTE
    assert verdict.failure_codes == ("provenance.c2pa.remoteManifest.notFetched",)
    assert REMOTE in verdict.evidence[0].detail
    assert no_network == []


@pytest.mark.parametrize("name", SAMPLES)
def test_verification_opens_no_connection(
    name: str,
    media: Callable[[str], Path],
    signing_key: SigningKey,
    trust: TrustPolicy,
    tmp_path: Path,
    no_network: list[Any],
) -> None:
    dst = tmp_path / name
    sign(media(name), dst, record=sample_record(name), key=signing_key)
    assert verify(dst, trust=trust).status is Status.TRUSTED
    assert verify(dst).status is Status.VALID_UNTRUSTED
    assert no_network == []


@pytest.mark.parametrize("name", SAMPLES)
def test_unsigned_files_and_xmp_remote_references_open_no_connection(
    name: str, trust: TrustPolicy, no_network: list[Any]
) -> None:
    raw = (SAMPLE_MEDIA / name).read_bytes()
    assert verify_bytes(raw, trust=trust).status is Status.NO_PROVENANCE
    # XMP dcterms:provenance is how C2PA points at a remote manifest: never followed.
    pointed = containers.set_xmp(raw, _REMOTE_XMP)
    verdict = verify_bytes(pointed, trust=trust)
    assert verdict.status is Status.REMOTE_MANIFEST
    assert verdict.failure_codes == ("provenance.c2pa.remoteManifest.notFetched",)
    assert no_network == []


def test_the_guard_sees_python_socket_use(no_network: list[Any]) -> None:
    with pytest.raises(OSError, match="network access attempted"):
        socket.getaddrinfo("example.invalid", 443)
    assert no_network


_STRACE_SCRIPT = """
import sys
from provenance import TrustPolicy, verify
trust = TrustPolicy.from_pem(sys.argv[1])
for path in sys.argv[2:]:
    print(path, verify(path, trust=trust).status.value)
"""


def _inet_syscalls(tmp_path: Path, *argv: str) -> list[str]:
    """System calls that open or use an internet socket, from every thread (c2pa-rs
    is native code: a Python guard cannot see what it does)."""
    trace = tmp_path / "strace.txt"
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    strace = ["strace", "-f", "-qq", "-e", "trace=socket,connect,sendto", "-o", str(trace)]
    done = subprocess.run(
        [*strace, sys.executable, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in trace.read_text().splitlines() if "AF_INET" in line]


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (apt install strace)")
def test_native_code_makes_no_network_system_calls(
    media: Callable[[str], Path],
    signing_key: SigningKey,
    dev_keys: DevKeyPaths,
    tmp_path: Path,
) -> None:
    files = []
    for name in SAMPLES:
        dst = tmp_path / f"signed-{name}"
        sign(media(name), dst, record=sample_record(name), key=signing_key)
        files.append(str(dst))
    remote = tmp_path / "remote.jpg"
    remote.write_bytes(_remote_only(signing_key, (SAMPLE_MEDIA / "forest-path.jpg").read_bytes()))
    pointed = tmp_path / "pointed.jpg"
    pointed.write_bytes(
        containers.set_xmp((SAMPLE_MEDIA / "forest-path.jpg").read_bytes(), _REMOTE_XMP)
    )
    files += [str(remote), str(pointed)]
    control = "import socket; socket.socket().connect_ex(('127.0.0.1', 9))"
    assert _inet_syscalls(tmp_path, "-c", control)  # the trace sees a connection attempt
    calls = _inet_syscalls(tmp_path, "-c", _STRACE_SCRIPT, str(dev_keys.ca_certificate), *files)
    assert calls == []
