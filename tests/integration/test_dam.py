"""DAM verification: verify_upload in-process, and the HTTP endpoint over loopback."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provenance.containers import BlockKind, strip
from provenance.integrations.dam import ServerConfig, make_server, verify_upload
from provenance.inventory import Inventory
from provenance.keys import SigningKey, TrustPolicy
from provenance.sign import sign
from tests.conftest import sample_record


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


def test_verify_upload_statuses(signed: tuple[bytes, Path], trust: TrustPolicy) -> None:
    data, inv_path = signed
    ok = verify_upload(data, "uploads/../shoe.jpg", trust=trust)
    assert ok["verdict"] == "trusted" and ok["path"] == "shoe.jpg"
    assert ok["record"]["model"] == "stable-diffusion-xl-base"
    assert ok["disclosure"]["attributes"]["data-synthetic"] == "true"
    json.dumps(ok)  # JSON-ready
    assert verify_upload(tamper(data), "t.jpg", trust=trust)["verdict"] == "tampered"
    assert verify_upload(data, "u.jpg")["verdict"] == "valid_untrusted"
    bare = strip(data, frozenset({BlockKind.C2PA, BlockKind.XMP}))
    with Inventory(inv_path, create=False, read_only=True) as inventory:
        known = verify_upload(bare, "bare.jpg", trust=trust, inventory=inventory)
    assert known["verdict"] == "known_stripped"
    assert verify_upload(bare, "bare.jpg", trust=trust)["verdict"] == "no_provenance"


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


# --- the HTTP endpoint --------------------------------------------------------------


@pytest.fixture
def server(
    signed: tuple[bytes, Path], trust: TrustPolicy, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, int, list[Any]]]:
    """The endpoint on an ephemeral loopback port; records every outbound connect."""
    _, inv_path = signed
    connects: list[Any] = []
    real_connect = socket.socket.connect

    def watch(self: socket.socket, address: Any) -> Any:
        connects.append(address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", watch)
    config = ServerConfig(trust=trust, inventory_path=inv_path, max_bytes=4 * 1024 * 1024)
    srv = make_server("127.0.0.1", 0, config=config)
    host, port = srv.server_address[:2]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield str(host), int(port), connects
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)


def request(
    where: tuple[str, int, list[Any]],
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection(where[0], where[1], timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        assert response.getheader("Content-Type") == "application/json; charset=utf-8"
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def multipart(name: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_endpoint_over_loopback(
    server: tuple[str, int, list[Any]], signed: tuple[bytes, Path]
) -> None:
    data, _ = signed
    status, body = request(server, "GET", "/healthz")
    assert (status, body["status"]) == (200, "ok")
    # Raw body, name in the query string.
    status, body = request(server, "POST", "/verify?filename=shoe.jpg", data)
    assert status == 200 and body["verdict"] == "trusted" and body["path"] == "shoe.jpg"
    # Multipart, as a browser form or `curl -F file=@...` sends it.
    form, ctype = multipart("file", "form.jpg", tamper(data))
    status, body = request(server, "POST", "/verify", form, {"Content-Type": ctype})
    assert status == 200 and body["verdict"] == "tampered" and body["path"] == "form.jpg"
    # Stripped copy: the server's inventory knows it.
    bare = strip(data, frozenset({BlockKind.C2PA, BlockKind.XMP}))
    status, body = request(server, "POST", "/verify", bare, {"X-Filename": "bare.jpg"})
    assert status == 200 and body["verdict"] == "known_stripped"
    # Garbage: an error verdict, as JSON.
    status, body = request(server, "POST", "/verify?filename=junk.bin", b"\x00garbage" * 10)
    assert status == 422 and body["verdict"] == "error" and body["error"].startswith("junk.bin:")
    # Nothing but loopback was ever connected to (the test client's own connections).
    assert connects_only_loopback(server[2])


def connects_only_loopback(addresses: list[Any]) -> bool:
    return bool(addresses) and all(a[0] in ("127.0.0.1", "::1", "localhost") for a in addresses)


def test_endpoint_limits_and_errors(server: tuple[str, int, list[Any]]) -> None:
    # Oversized: refused from Content-Length, before the body is read.
    conn = http.client.HTTPConnection(server[0], server[1], timeout=60)
    try:
        conn.putrequest("POST", "/verify")
        conn.putheader("Content-Length", str(5 * 1024 * 1024))
        conn.endheaders()
        conn.send(b"x" * 1024)  # a little, not all of it
        response = conn.getresponse()
        assert response.status == 413
        assert "limit" in json.loads(response.read())["error"]
    finally:
        conn.close()
    # One byte over the limit is over it.
    conn = http.client.HTTPConnection(server[0], server[1], timeout=60)
    try:
        conn.putrequest("POST", "/verify?filename=a.jpg")
        conn.putheader("Content-Length", str(4 * 1024 * 1024 + 1))
        conn.endheaders()
        assert conn.getresponse().status == 413
    finally:
        conn.close()
    # Chunked upload: no Content-Length.
    conn = http.client.HTTPConnection(server[0], server[1], timeout=60)
    try:
        conn.request("POST", "/verify", body=iter([b"abc"]), encode_chunked=True)
        assert conn.getresponse().status == 411
    finally:
        conn.close()
    assert request(server, "GET", "/verify")[0] == 405
    assert request(server, "GET", "/nope")[0] == 404
    assert request(server, "POST", "/nope", b"x")[0] == 404
    form, ctype = multipart("other", "", b"no file here")
    status, body = request(server, "POST", "/verify", form, {"Content-Type": ctype})
    assert status == 400 and "file" in body["error"]


@pytest.mark.parametrize(
    "head",
    [
        b"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Length: 5242880\r\n\r\n",
        b"POST /verify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
    ids=["413", "411"],
)
def test_refused_upload_is_drained_not_reset(
    server: tuple[str, int, list[Any]], head: bytes
) -> None:
    # A client still sending a refused body after the response was sent must
    # not be answered with a TCP reset: its sends fail before it reads the 413.
    with socket.create_connection(server[:2], timeout=30) as sock:
        sock.sendall(head + b"x" * 1024)
        # The server has answered by now; the client, not reading yet, sends the
        # rest of its upload. Without the drain the first piece meets a closed
        # socket, the reply is a reset, and the next send fails (broken pipe).
        for _ in range(2):
            time.sleep(0.3)
            sock.sendall(b"y" * 1024)
        response = b""
        while piece := sock.recv(65536):
            response += piece
        assert response.startswith((b"HTTP/1.1 413", b"HTTP/1.1 411"))
        assert b"Connection: close" in response and b'"error"' in response


def test_endpoint_drops_a_stalled_client(signed: tuple[bytes, Path], trust: TrustPolicy) -> None:
    srv = make_server("127.0.0.1", 0, config=ServerConfig(trust=trust, timeout_s=0.5))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(srv.server_address[:2], timeout=30) as sock:
            sock.sendall(b"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
            # The server gives up on the missing 997 bytes and closes the connection.
            assert sock.recv(65536) == b""
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)
