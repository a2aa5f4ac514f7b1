"""DAM verification: verify_upload in-process, and the HTTP endpoint under uvicorn.

The endpoint tests start the real server (uvicorn, our protocol, the Starlette
app) on 127.0.0.1 on a free port and talk to it over sockets: http.client for
well-formed requests, raw bytes for the malformed ones.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provenance._core.containers import BlockKind, strip
from provenance._io.keys import SigningKey, TrustPolicy
from provenance.integrations.dam import (
    ServerConfig,
    create_app,
    make_server,
    verify_upload,
)
from provenance.inventory import Inventory
from provenance.sign import sign
from tests.conftest import SAMPLE_MEDIA, DevKeyPaths, sample_record

LIMIT = 4 * 1024 * 1024
HEADER_S = 1.0
BODY_S = 1.5


@pytest.fixture
def signed(
    media: Callable[[str], Path], tmp_path: Path, signing_key: SigningKey
) -> tuple[bytes, Path]:
    """A signed sample's bytes, and the inventory it was recorded in."""
    inv_path = tmp_path / "inv.sqlite"
    out = tmp_path / "signed.jpg"
    with Inventory(inv_path) as inventory:
        sign(
            media("forest-path.jpg"),
            out,
            record=sample_record("forest-path.jpg"),
            key=signing_key,
            inventory=inventory,
        )
    return out.read_bytes(), inv_path


def tamper(data: bytes) -> bytes:
    # Flip one byte of entropy-coded data near the end (before EOI): pixels changed.
    changed = bytearray(data)
    changed[-100] ^= 0x55
    return bytes(changed)


def bare(data: bytes) -> bytes:
    return strip(data, frozenset({BlockKind.C2PA, BlockKind.XMP}))


def test_verify_upload_statuses(signed: tuple[bytes, Path], trust: TrustPolicy) -> None:
    data, inv_path = signed
    ok = verify_upload(data, "uploads/../shoe.jpg", trust=trust)
    assert ok["verdict"] == "trusted" and ok["path"] == "shoe.jpg"
    assert ok["record"]["model"] == "stable-diffusion-xl-base"
    assert ok["disclosure"]["attributes"]["data-synthetic"] == "true"
    json.dumps(ok)  # JSON-ready
    assert verify_upload(tamper(data), "t.jpg", trust=trust)["verdict"] == "tampered"
    assert verify_upload(data, "u.jpg")["verdict"] == "valid_untrusted"
    with Inventory(inv_path, create=False, read_only=True) as inventory:
        known = verify_upload(bare(data), "bare.jpg", trust=trust, inventory=inventory)
    assert known["verdict"] == "known_stripped"
    assert verify_upload(bare(data), "bare.jpg", trust=trust)["verdict"] == "no_provenance"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        b"\xff\xd8\xff\xe1\xff\xff",  # JPEG whose APP1 lies about its length
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
        b"RIFF\x10\x00\x00\x00WEBPVP8 ",
    ],
)
def test_verify_upload_never_raises_on_bad_bytes(data: bytes) -> None:
    result = verify_upload(data, "bad.jpg")
    assert result["verdict"] == "error"
    assert result["error"].startswith("bad.jpg: ")
    assert result["disclosure"]["synthetic"] is None


def test_verify_upload_truncated_and_oversized(signed: tuple[bytes, Path]) -> None:
    data, _ = signed
    for cut in (10, 1000, len(data) // 2):
        result = verify_upload(data[:cut], "cut.jpg")
        assert result["verdict"] in ("error", "tampered", "no_provenance"), cut
    big = verify_upload(data, "big.jpg", max_bytes=100)
    assert big["verdict"] == "error" and "100-byte limit" in big["error"]


def test_server_config_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="verify_threads"):
        ServerConfig(verify_threads=0)
    with pytest.raises(ValueError, match="header_timeout_s"):
        ServerConfig(header_timeout_s=0)


# --- the HTTP endpoint --------------------------------------------------------------


@dataclass
class Running:
    host: str
    port: int
    connects: list[Any]


@pytest.fixture
def server(
    signed: tuple[bytes, Path], trust: TrustPolicy, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Running]:
    """The endpoint on a free loopback port; records every outbound connect."""
    _, inv_path = signed
    connects: list[Any] = []
    real_connect = socket.socket.connect

    def watch(self: socket.socket, address: Any) -> Any:
        connects.append(address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", watch)
    config = ServerConfig(
        trust=trust,
        inventory_path=inv_path,
        max_bytes=LIMIT,
        header_timeout_s=HEADER_S,
        body_timeout_s=BODY_S,
        verify_threads=2,
    )
    with serving(config) as (host, port):
        yield Running(host, port, connects)


class serving:  # noqa: N801 - used as a context manager, like contextlib's
    """Run make_server(config) in a thread for the duration of a with block."""

    def __init__(self, config: ServerConfig) -> None:
        self.srv = make_server("127.0.0.1", 0, config=config)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)

    def __enter__(self) -> tuple[str, int]:
        self.thread.start()
        assert self.srv.wait_started(30)
        return self.srv.server_address

    def __exit__(self, *exc: object) -> None:
        self.srv.shutdown()
        self.thread.join(timeout=30)
        self.srv.server_close()
        assert not self.thread.is_alive()


def request(
    where: Running,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection(where.host, where.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        assert response.getheader("Content-Type") == "application/json; charset=utf-8"
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def raw_exchange(where: Running, payload: bytes, *, wait_s: float = 30) -> tuple[int, bytes, bytes]:
    """Send bytes, read until the server closes: (status, head, body)."""
    with socket.create_connection((where.host, where.port), timeout=wait_s) as sock:
        sock.sendall(payload)
        received = read_to_close(sock)
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return status, head, body


def read_to_close(sock: socket.socket) -> bytes:
    received = b""
    while piece := sock.recv(65536):
        received += piece
    return received


def multipart(parts: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body: (field name, file name or None, bytes) per part."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data
        body += b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_endpoint_over_loopback(server: Running, signed: tuple[bytes, Path]) -> None:
    data, _ = signed
    # Raw body, name in the query string.
    status, body = request(server, "POST", "/verify?filename=shoe.jpg", data)
    assert status == 200 and body["verdict"] == "trusted" and body["path"] == "shoe.jpg"
    assert "meets_requirement" not in body
    # Multipart with a text field beside the file, as a browser form or `curl -F` sends it.
    form, ctype = multipart([("note", None, b"hello"), ("file", "form.jpg", tamper(data))])
    status, body = request(server, "POST", "/verify", form, {"Content-Type": ctype})
    assert status == 200 and body["verdict"] == "tampered" and body["path"] == "form.jpg"
    # Any field name will do for the one file.
    form, ctype = multipart([("upload", "other.jpg", data)])
    status, body = request(server, "POST", "/verify", form, {"Content-Type": ctype})
    assert status == 200 and body["verdict"] == "trusted" and body["path"] == "other.jpg"
    # Stripped copy: the server's inventory knows it.
    status, body = request(server, "POST", "/verify", bare(data), {"X-Filename": "bare.jpg"})
    assert status == 200 and body["verdict"] == "known_stripped"
    # A chunked upload (no Content-Length) is streamed and checked like any other.
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        pieces = [data[i : i + 65536] for i in range(0, len(data), 65536)]
        conn.request("POST", "/verify?filename=c.jpg", body=iter(pieces), encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["verdict"] == "trusted"
    finally:
        conn.close()
    # Garbage: an error verdict, as JSON.
    status, body = request(server, "POST", "/verify?filename=junk.bin", b"\x00garbage" * 10)
    assert status == 422 and body["verdict"] == "error" and body["error"].startswith("junk.bin:")
    # Nothing but loopback was ever connected to (the test client's own connections).
    assert server.connects
    assert all(a[0] in ("127.0.0.1", "::1", "localhost") for a in server.connects)


def test_require_and_accept(server: Running, signed: tuple[bytes, Path]) -> None:
    data, _ = signed
    status, body = request(server, "POST", "/verify?require=trusted", data)
    assert status == 200 and body["meets_requirement"] is True
    assert body["requirement"] == {"require": "trusted", "accept": []}
    status, body = request(server, "POST", "/verify?require=trusted", tamper(data))
    assert status == 200 and body["verdict"] == "tampered" and body["meets_requirement"] is False
    stripped = bare(data)
    _, body = request(server, "POST", "/verify?require=trusted", stripped)
    assert body["verdict"] == "known_stripped" and body["meets_requirement"] is False
    _, body = request(server, "POST", "/verify?require=trusted&accept=known_stripped", stripped)
    assert body["meets_requirement"] is True
    assert body["requirement"] == {"require": "trusted", "accept": ["known_stripped"]}
    both = "/verify?require=trusted&accept=synthetic_duplicate,known_stripped"
    _, body = request(server, "POST", both, stripped)
    assert body["meets_requirement"] is True
    status, body = request(server, "POST", "/verify?require=valid", data)
    assert status == 400 and "require='valid'" in body["error"] and "trusted" in body["error"]
    status, body = request(server, "POST", "/verify?accept=known_stripped", data)
    assert status == 400 and "require=" in body["error"]
    status, body = request(server, "POST", "/verify?require=trusted&accept=tampered", data)
    assert status == 400 and "never acceptable" in body["error"]


def test_healthz_reports_what_is_loaded(
    server: Running, tmp_path: Path, trust: TrustPolicy
) -> None:
    status, body = request(server, "GET", "/healthz")
    assert status == 200 and body["status"] == "ok" and body["version"]
    assert body["trust_anchors"] == {"loaded": True, "count": len(trust.anchors)}
    assert body["inventory"] == {"configured": True, "loaded": True, "error": None}
    # Nothing configured: said so, still ok.
    with serving(ServerConfig()) as (host, port):
        status, body = request(Running(host, port, []), "GET", "/healthz")
    assert status == 200 and body["trust_anchors"]["loaded"] is False
    assert body["inventory"] == {"configured": False, "loaded": False, "error": None}
    # An inventory that cannot be opened: degraded (503), and uploads say why.
    missing = tmp_path / "gone.sqlite"
    with serving(ServerConfig(inventory_path=missing)) as (host, port):
        where = Running(host, port, [])
        status, body = request(where, "GET", "/healthz")
        assert status == 503 and body["status"] == "degraded"
        assert body["inventory"]["loaded"] is False and "gone.sqlite" in body["inventory"]["error"]
        status, body = request(where, "POST", "/verify", b"\xff\xd8 whatever")
        assert status == 422 and "inventory unavailable" in body["error"]


MALFORMED: dict[str, tuple[bytes, int, str]] = {
    # RFC 9112 section 6.3: Content-Length is ASCII digits; conflicting values are an error.
    "superscript_two_length": (
        b"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\nab",
        400,
        "Content-Length",
    ),
    "five_thousand_digit_length": (
        b"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
        400,
        "Content-Length",
    ),
    "conflicting_lengths": (
        b"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        400,
        "conflicting Content-Length",
    ),
    "length_and_chunked": (
        b"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "both Transfer-Encoding and Content-Length",
    ),
    "unknown_transfer_coding": (
        b"POST /verify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
        "Transfer-Encoding",
    ),
    "not_http": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "malformed"),
    "put": (b"PUT /verify HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 405, "PUT"),
    "get_verify": (b"GET /verify HTTP/1.1\r\nHost: x\r\n\r\n", 405, "use POST"),
    "delete_healthz": (b"DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 405, "DELETE is not"),
    "unknown_path": (
        b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
        404,
        "no such endpoint: /nope",
    ),
    "over_the_limit": (
        f"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Length: {LIMIT + 1}\r\n\r\n".encode(),
        413,
        "limit",
    ),
    "chunked_over_the_limit": (
        b"POST /verify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"100000\r\n" + b"x" * 0x100000 + b"\r\n") * 5
        + b"0\r\n\r\n",
        413,
        "limit",
    ),
    "multipart_without_boundary": (
        b"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data\r\n"
        b"Content-Length: 5\r\n\r\nhello",
        400,
        "boundary",
    ),
}


def multipart_request(parts: list[tuple[str, str | None, bytes]]) -> bytes:
    body, ctype = multipart(parts)
    head = (
        f"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


MALFORMED |= {
    "two_files": (
        multipart_request([("file", "a.jpg", b"aaaa"), ("file2", "b.jpg", b"bbbb")]),
        400,
        "Too many files",
    ),
    "no_file": (multipart_request([("note", None, b"hello")]), 400, "no file part"),
    "sixty_thousand_empty_parts": (
        b"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        + f"Content-Length: {53 * 60_000 + 5}\r\n\r\n".encode()
        + b'--b\r\nContent-Disposition: form-data; name="f"\r\n\r\n\r\n' * 60_000
        + b"--b--",
        400,
        "Too many fields",
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_requests_get_a_json_4xx(server: Running, name: str) -> None:
    payload, expected, words = MALFORMED[name]
    status, head, body = raw_exchange(server, payload)
    assert status == expected, (head, body)
    assert b"content-type: application/json; charset=utf-8" in head.lower()
    assert b"connection: close" in head.lower()
    assert words in json.loads(body)["error"]


def test_head_is_answered_without_a_body(server: Running) -> None:
    status, head, body = raw_exchange(server, b"HEAD /verify HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 405 and body == b""
    assert b"content-type: application/json; charset=utf-8" in head.lower()
    status, head, body = raw_exchange(
        server, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status == 200 and body == b""


def test_refused_upload_is_drained_not_reset(server: Running) -> None:
    # A client still sending a refused body after the response was sent must
    # not be answered with a TCP reset: its sends fail before it reads the 413.
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        head = f"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Length: {LIMIT + 1024}\r\n\r\n"
        sock.sendall(head.encode() + b"x" * 1024)
        # The server has answered by now; the client, not reading yet, sends more
        # of its upload. Without the drain the first piece meets a closed socket,
        # the reply is a reset, and the next send fails (broken pipe).
        for _ in range(2):
            time.sleep(0.3)
            sock.sendall(b"y" * 65536)
        response = read_to_close(sock)
    assert response.startswith(b"HTTP/1.1 413")
    assert b"connection: close" in response.lower() and b'"error"' in response


def test_slow_header_sender_is_closed_at_the_deadline(server: Running) -> None:
    # One header line every 0.3 s: each read succeeds, but the head as a whole
    # misses the 1 s deadline.
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /verify HTTP/1.1\r\n")
        received = b""
        for i in range(20):
            time.sleep(0.3)
            try:
                sock.sendall(f"X-Slow-{i}: {i}\r\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                break
            sock.settimeout(0.01)
            try:
                piece = sock.recv(65536)
            except TimeoutError:
                continue
            received += piece
            if not piece or b"\r\n\r\n" in received:
                break
        sock.settimeout(30)
        # The close may race our last header line; the timing below still holds.
        with contextlib.suppress(ConnectionResetError):
            received += read_to_close(sock)
        elapsed = time.monotonic() - started
    assert HEADER_S - 0.05 <= elapsed < HEADER_S + 1.5, elapsed
    if received:
        assert received.startswith(b"HTTP/1.1 408") and b"head not received" in received


def test_slow_body_sender_is_closed_at_the_deadline(server: Running) -> None:
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(b"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
        started = time.monotonic()
        for _ in range(3):
            time.sleep(0.2)
            sock.sendall(b"x")  # each byte on time, the body as a whole late
        response = read_to_close(sock)
        elapsed = time.monotonic() - started
    assert response.startswith(b"HTTP/1.1 408") and b"body not received" in response
    assert BODY_S - 0.1 <= elapsed < BODY_S + 1.5, elapsed


def test_connection_limit_answers_json_503(trust: TrustPolicy) -> None:
    config = ServerConfig(trust=trust, max_connections=2, header_timeout_s=5)
    with serving(config) as (host, port):
        idle = [socket.create_connection((host, port), timeout=30) for _ in range(2)]
        try:
            time.sleep(0.2)  # both accepted
            status, head, body = raw_exchange(
                Running(host, port, []), b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            assert status == 503 and b"retry-after: 1" in head.lower()
            assert "connections" in json.loads(body)["error"]
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.2)
        closing = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        status, _, body = raw_exchange(Running(host, port, []), closing)
        assert status == 200


def test_concurrent_uploads_all_answered(server: Running, signed: tuple[bytes, Path]) -> None:
    data, _ = signed
    results: list[int] = []

    def one() -> None:
        results.append(request(server, "POST", "/verify?filename=c.jpg", data)[0])

    threads = [threading.Thread(target=one) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == [200] * 24


def test_one_access_log_line_per_request(
    server: Running, signed: tuple[bytes, Path], caplog: pytest.LogCaptureFixture
) -> None:
    data, _ = signed
    caplog.set_level(logging.INFO, logger="provenance.integrations.dam.access")
    request(server, "GET", "/healthz")
    request(server, "POST", "/verify?filename=a.jpg", data)
    request(server, "GET", "/nope")
    raw_exchange(server, MALFORMED["conflicting_lengths"][0])

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name.endswith(".access")]

    deadline = time.monotonic() + 5
    while len(lines()) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # and no fifth line follows
    logged = lines()
    assert len(logged) == 4, logged
    # Lines are written when a request ends, so two may swap: find each one.
    by_request = {line.split('"')[1]: line for line in logged}
    assert " 200 " in by_request["GET /healthz HTTP/1.1"]
    post = by_request["POST /verify?filename=a.jpg HTTP/1.1"]
    assert " 200 " in post and f"in={len(data)}" in post and "verdict=trusted" in post
    assert " 404 " in by_request["GET /nope HTTP/1.1"]
    assert by_request["- -"].endswith(" 400 conflicting Content-Length headers")
    assert all(line.startswith("127.0.0.1:") for line in logged)


def test_mounted_in_another_app(signed: tuple[bytes, Path], trust: TrustPolicy) -> None:
    # The user's own app, served by plain uvicorn (not make_server): the app's
    # own limits (body deadline, JSON errors, size) still hold.
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    data, _ = signed

    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse("the user's app")

    config = ServerConfig(trust=trust, max_bytes=LIMIT, body_timeout_s=BODY_S)
    mounted = create_app(config)
    host_app = Starlette(routes=[Route("/", home), Mount("/provenance", app=mounted)])
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(host_app, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        where = Running(*sock.getsockname()[:2], [])
        target = "/provenance/verify?filename=m.jpg&require=trusted"
        status, body = request(where, "POST", target, data)
        assert status == 200 and body["verdict"] == "trusted" and body["meets_requirement"] is True
        status, body = request(where, "GET", "/provenance/healthz")
        assert status == 200 and body["trust_anchors"]["loaded"] is True
        status, body = request(where, "POST", "/provenance/verify", b"")
        assert status == 422 and "empty" in body["error"]
        status, body = request(where, "PUT", "/provenance/verify", b"x")
        assert status == 405
        status, _, raw = raw_exchange(
            where, b"POST /provenance/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nab"
        )
        assert status == 408 and "body not received" in json.loads(raw)["error"]
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        mounted.state.provenance_service.executor.shutdown(wait=True)


def test_serve_command_with_workers(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    env = {**os.environ, "PROVENANCE_INVENTORY": str(tmp_path / "none.sqlite")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provenance",
            "serve",
            "--port",
            "0",
            "--json",
            "--workers",
            "2",
            "--verify-threads",
            "1",
            "--timeout",
            "1",
            "--trust-anchors",
            str(dev_keys.ca_certificate),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = []
        while not lines or lines[-1] != "}\n":
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            lines.append(line)
        url = json.loads("".join(lines))["url"]
        host, port = url.removeprefix("http://").split(":")
        where = Running(host, int(port), [])
        deadline = time.monotonic() + 60
        while True:  # the workers start after the URL is printed
            try:
                status, body = request(where, "GET", "/healthz")
                break
            except (ConnectionError, http.client.HTTPException):
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert status == 200 and body["trust_anchors"]["loaded"] is True
        assert body["limits"]["body_timeout_s"] == 1 and body["limits"]["verify_threads"] == 1
        kite = (SAMPLE_MEDIA / "kite-blue-sky.jpg").read_bytes()
        status, body = request(where, "POST", "/verify?filename=kite.jpg", kite)
        assert status == 200 and body["verdict"] == "no_provenance"
        # --timeout 1 sets the header deadline too: an idle connection is closed.
        with socket.create_connection((where.host, where.port), timeout=30) as sock:
            started = time.monotonic()
            assert read_to_close(sock).startswith(b"HTTP/1.1 408")
            assert time.monotonic() - started < 3
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert '"POST /verify?filename=kite.jpg HTTP/1.1" 200' in err
    assert "verdict=no_provenance" in err


@pytest.mark.parametrize(
    "lengths",
    [[b"\xb2"], [b"\xd9\xa1\xd9\xa2"], [b"9" * 5000], [b"3", b"4"], [b"3, 4"]],
    ids=["superscript_two", "arabic_indic_digits", "5000_digits", "two_headers", "one_list"],
)
def test_app_checks_content_length_itself(lengths: list[bytes]) -> None:
    # Mounted under a server whose parser lets these through, the app refuses
    # them itself (called here directly, as such a server would call it).
    import asyncio

    app = create_app(ServerConfig())
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/verify",
        "raw_path": b"/verify",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"x")] + [(b"content-length", v) for v in lengths],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"abc", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        asyncio.run(app(scope, receive, send))
    finally:
        app.state.provenance_service.executor.shutdown(wait=True)
    assert sent[0]["status"] == 400
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert "Content-Length" in json.loads(body)["error"]
