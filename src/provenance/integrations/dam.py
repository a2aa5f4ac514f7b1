"""DAM integration: verify uploaded bytes, in-process or over a small HTTP endpoint.

Two ways in for a digital-asset-management system:

* :func:`verify_upload` for an upload hook that runs Python: bytes and a file
  name in, a JSON-ready verdict out. It never raises on bad bytes: an empty,
  oversized, truncated or non-image upload is a verdict with status ``error``
  and a message ("couldn't check" stays distinguishable from "checked and
  found wrong").
* :func:`make_server` for a DAM webhook that speaks HTTP: a standard-library
  ``ThreadingHTTPServer`` with ``POST /verify`` (raw body, or
  ``multipart/form-data`` with a ``file`` field) and ``GET /healthz``.

The endpoint makes no outbound connection: verification is offline (no remote
manifest fetch, no OCSP; DESIGN.md decision 1) and the server never resolves or
calls anything. It refuses bodies over ``max_bytes`` with 413 before reading
them, requires ``Content-Length`` (411; no chunked uploads), and drops a client
that stalls for ``timeout_s`` (a slow-loris upload cannot hold a thread
forever). After refusing a body it drains what the client still sends for up
to two seconds before closing, so the client reads the 413 instead of a
connection reset. Bind it to loopback or put it behind the DAM's reverse proxy: it has
no authentication of its own.

Statuses: 200 with the verdict for anything that was checked (a tampered file
is a successful check), 422 with ``verdict: error`` for an upload that could not
be checked, 400 for a malformed request, 404/405 for other paths and methods.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import logging
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from provenance._version import __version__
from provenance.disclosure import disclosure_for
from provenance.errors import ProvenanceError
from provenance.inventory import Inventory
from provenance.keys import TrustPolicy
from provenance.types import Status, Verdict
from provenance.verify import verify_bytes

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT_S",
    "ServerConfig",
    "make_server",
    "verify_upload",
]

_log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""Largest upload checked: a 50 MP JPEG is about 25 MB."""

DEFAULT_TIMEOUT_S = 30.0
"""A client that sends nothing for this long is disconnected."""

_MAX_NAME = 255
_MULTIPART_OVERHEAD = 64 * 1024  # headers and boundaries around the file part
_LINGER_S = 2.0  # at most this long draining a refused body before closing
_LINGER_IDLE_S = 0.5  # ... and at most this long waiting for each piece of it


def verify_upload(
    data: bytes,
    filename: str,
    *,
    trust: TrustPolicy | None = None,
    inventory: Inventory | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Verify one uploaded file held in memory; never raises on bad bytes.

    Args:
        data: The file's bytes.
        filename: The name the uploader gave (reported back, never opened).
        trust: Trust anchors; without them a good signature is ``valid_untrusted``.
        inventory: Recognise stripped copies of known assets (``known_stripped``).
        max_bytes: Larger uploads are an ``error`` verdict, not checked.
        now: The time certificates are checked at (default: now).

    Returns:
        The verdict in ``verify --json`` form, plus ``disclosure`` (what a
        storefront should show, see :mod:`provenance.disclosure`).
    """
    name = _clean_name(filename)
    if len(data) > max_bytes:
        verdict = _error(
            name, f"upload is {len(data)} bytes, larger than the {max_bytes}-byte limit"
        )
    elif not data:
        verdict = _error(name, "upload is empty (0 bytes)")
    else:
        try:
            verdict = verify_bytes(data, name=name, trust=trust, inventory=inventory, now=now)
        except ProvenanceError as exc:
            verdict = _error(name, str(exc.with_path(name)))
    out = verdict.to_dict()
    out["disclosure"] = disclosure_for(verdict).to_dict()
    return out


def _error(name: str, message: str) -> Verdict:
    text = message if message.startswith(f"{name}:") else f"{name}: {message}"
    return Verdict(path=name, status=Status.ERROR, error=text)


def _clean_name(filename: str) -> str:
    # The name is echoed back, never used as a path: keep its last component,
    # printable and bounded.
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return cleaned[:_MAX_NAME] or "upload"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How the verification endpoint runs.

    Attributes:
        trust: Trust anchors for every request.
        inventory_path: An inventory to recognise stripped copies; opened
            read-only, once per request.
        max_bytes: Largest request body accepted (413 above it).
        timeout_s: Socket timeout per connection, in seconds.
        now: Fixed verification time (tests); None means the current time.
    """

    trust: TrustPolicy = field(default_factory=TrustPolicy.no_anchors)
    inventory_path: Path | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout_s: float = DEFAULT_TIMEOUT_S
    now: datetime | None = None


def make_server(
    host: str = "127.0.0.1", port: int = 8765, *, config: ServerConfig | None = None
) -> ThreadingHTTPServer:
    """Build (and bind) the verification endpoint; call ``serve_forever()`` on it.

    Args:
        host: The address to bind (loopback by default).
        port: The port; 0 picks a free one (read it from ``server.server_address``).
        config: Trust, inventory, limits.

    Raises:
        OSError: The address cannot be bound.
    """
    cfg = config or ServerConfig()

    class Handler(_VerifyHandler):
        server_config: ClassVar[ServerConfig] = cfg
        timeout = cfg.timeout_s

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


class _VerifyHandler(BaseHTTPRequestHandler):
    server_config: ClassVar[ServerConfig]
    server_version = f"provenance/{__version__}"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    _linger = False

    def log_message(self, format: str, *args: Any) -> None:
        _log.info("%s %s", self.address_string(), format % args)

    def finish(self) -> None:
        super().finish()
        if self._linger:
            _lingering_close(self.connection, self.server_config.max_bytes)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._send(HTTPStatus.OK, {"status": "ok", "version": __version__})
        elif path == "/verify":
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "use POST"}, allow="POST")
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {path}"})

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/verify":
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {parts.path}"})
            return
        cfg = self.server_config
        if self.headers.get("Transfer-Encoding"):
            self._send(
                HTTPStatus.LENGTH_REQUIRED,
                {"error": "chunked uploads are not accepted; send Content-Length"},
                close=True,
            )
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.strip().isdigit():
            self._send(
                HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length is required"}, close=True
            )
            return
        length = int(length_text)
        content_type = self.headers.get("Content-Type", "application/octet-stream")
        multipart = content_type.lower().startswith("multipart/form-data")
        limit = cfg.max_bytes + (_MULTIPART_OVERHEAD if multipart else 0)
        if length > limit:
            # Refuse before reading a byte; close so the unread body is not
            # taken for the next request.
            self._send(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"error": f"body is {length} bytes; the limit is {cfg.max_bytes}"},
                close=True,
            )
            return
        try:
            body = self.rfile.read(length)
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        if len(body) < length:
            self._send(HTTPStatus.BAD_REQUEST, {"error": "body shorter than Content-Length"})
            return
        query = parse_qs(parts.query)
        filename = (query.get("filename") or [self.headers.get("X-Filename", "upload")])[0]
        if multipart:
            found = _file_from_multipart(content_type, body)
            if found is None:
                self._send(
                    HTTPStatus.BAD_REQUEST,
                    {"error": "multipart body has no 'file' part with a file in it"},
                )
                return
            filename, body = found
        result = self._verify(body, filename)
        status = HTTPStatus.UNPROCESSABLE_ENTITY if result["verdict"] == "error" else HTTPStatus.OK
        self._send(status, result)

    def _verify(self, body: bytes, filename: str) -> dict[str, Any]:
        cfg = self.server_config
        inventory: Inventory | None = None
        try:
            if cfg.inventory_path is not None:
                inventory = Inventory(cfg.inventory_path, create=False, read_only=True)
            return verify_upload(
                body,
                filename,
                trust=cfg.trust,
                inventory=inventory,
                max_bytes=cfg.max_bytes,
                now=cfg.now,
            )
        except ProvenanceError as exc:  # the inventory, not the upload
            _log.error("inventory unavailable: %s", exc)
            return _error(_clean_name(filename), f"inventory unavailable: {exc.message}").to_dict()
        finally:
            if inventory is not None:
                inventory.close()

    def _send(
        self,
        status: HTTPStatus,
        payload: Mapping[str, Any],
        *,
        close: bool = False,
        allow: str | None = None,
    ) -> None:
        body = (json.dumps(payload, ensure_ascii=False) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if allow is not None:
            self.send_header("Allow", allow)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
            self._linger = True
        self.end_headers()
        try:
            self.wfile.write(body)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _lingering_close(conn: socket.socket, max_bytes: int) -> None:
    """Half-close, then read and drop what the client is still sending.

    A refused request (413, 411) leaves an unread body in flight. Closing a
    socket with unread input makes the kernel answer with a reset, which can
    reach the client before it has read our response: it sees "broken pipe"
    or "connection reset" instead of the 413. Draining for a bounded time and
    size (as nginx's ``lingering_close`` does) lets the response arrive.
    """
    try:
        conn.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + _LINGER_S
        drained = 0
        while drained <= max_bytes:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            conn.settimeout(min(left, _LINGER_IDLE_S))
            piece = conn.recv(65536)
            if not piece:
                return
            drained += len(piece)
    except OSError:  # timeout, reset: the client is gone or stalling; close anyway
        return


def _file_from_multipart(content_type: str, body: bytes) -> tuple[str, bytes] | None:
    """The ``file`` field's name and bytes (or the first part with a filename)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    try:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    except (ValueError, TypeError, IndexError):
        return None
    if not message.is_multipart():
        return None
    fallback: tuple[str, bytes] | None = None
    for part in message.iter_parts():
        filename = part.get_filename()
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        name = part.get_param("name", header="content-disposition")
        if name == "file":
            return (filename or "upload", payload)
        if filename and fallback is None:
            fallback = (filename, payload)
    return fallback
