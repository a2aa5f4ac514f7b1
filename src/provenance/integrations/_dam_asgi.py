"""The DAM endpoint over HTTP: a Starlette application and its uvicorn server.

Owns everything of :mod:`provenance.integrations.dam` that needs the ``server``
extra (Starlette, uvicorn, python-multipart); import it through ``dam``. It
never buffers a whole upload in memory more than once: bodies stream into a
spooled temporary file (memory up to ``spool_bytes``, then disk) and are read
back once, in a verification thread, for :func:`~provenance.integrations.dam.verify_upload`.

Who enforces what (uvicorn has no request deadline of its own; its issue #157
lists ``--timeout-request-start``/``--timeout-request-complete`` as never done):

* the application (anywhere it is mounted): the body deadline
  (:class:`_BodyDeadline`, a deadline on ``receive()``), the size limit while
  streaming, one file per multipart body (python-multipart through Starlette's
  parser, ``max_files=1``), JSON for every error, one access-log line per request;
* the server (:class:`DamServer`, ``provenance serve``): the header deadline and
  the connection limit with JSON answers (:class:`_Protocol`, a subclass of
  uvicorn's h11 protocol), JSON for h11's own 400s (conflicting or non-digit
  ``Content-Length``: h11 rejects them per RFC 9112 section 6.3), the listen
  backlog, keep-alive and worker processes (uvicorn settings).

It must never print (logging only) nor open anything but the configured
inventory and its own temporary files.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http import HTTPStatus
from tempfile import SpooledTemporaryFile
from typing import IO, TYPE_CHECKING, Any

import h11
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

from provenance._core.types import Status
from provenance._core.verdicts import meets
from provenance._version import __version__
from provenance.errors import ProvenanceError
from provenance.integrations.dam import (
    ServerConfig,
    _clean_name,
    _error,
    verify_upload,
)
from provenance.inventory import Inventory

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator

    from starlette.types import ASGIApp, Message, Receive, Scope, Send
    from uvicorn.server import ServerState

__all__ = ["DamServer", "create_app"]

_log = logging.getLogger("provenance.integrations.dam")
_access = logging.getLogger("provenance.integrations.dam.access")

_MULTIPART_OVERHEAD = 64 * 1024  # headers, boundaries and small fields around the file part
_MAX_FIELDS = 16  # non-file form fields accepted beside the file (60,000 empty parts: refused)
_MAX_FIELD_BYTES = 64 * 1024
_LINGER_S = 2.0  # at most this long draining a refused body before closing
_MAX_HEAD_BYTES = 16 * 1024  # request line + headers (h11's default, said explicitly)
_UNASKED_DRAIN_BYTES = 1024 * 1024  # what a 404/405 drains of a body nobody asked for
_JSON = "application/json; charset=utf-8"
_BODY_DONE = "provenance.body_done"  # scope key: the whole request body was received
_VERDICT = "provenance.verdict"  # scope key: the verdict, for the access log


class _BodyTimeoutError(Exception):
    """The body did not arrive within the body deadline."""


class _TooLargeError(Exception):
    """The body grew past the limit while streaming."""


# --- responses ----------------------------------------------------------------------


def _json_bytes(payload: dict[str, Any]) -> bytes:
    return (json.dumps(payload, ensure_ascii=False) + "\n").encode("utf-8")


def _headers(body: bytes, *, close: bool, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {
        "content-type": _JSON,
        "content-length": str(len(body)),
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
    }
    if close:
        headers["connection"] = "close"
    headers.update(extra or {})
    return headers


class _Json(Response):
    """A JSON answer with the endpoint's headers (no-store, nosniff)."""

    media_type = _JSON

    def __init__(
        self,
        payload: dict[str, Any],
        status: int = 200,
        *,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = _json_bytes(payload)
        super().__init__(body, status, headers=_headers(body, close=close, extra=headers))


class _Refusal(_Json):
    """An error answered before the body was read to its end.

    Closing a socket with unread input makes the kernel answer with a reset,
    which can reach the client before it has read our response (it sees
    "connection reset" instead of the 413). So: send the whole answer with
    ``Connection: close``, then read and drop what the client still sends for
    at most :data:`_LINGER_S` and ``max_bytes`` (as nginx's ``lingering_close``),
    then end the response, upon which uvicorn closes the connection.
    """

    def __init__(
        self,
        payload: dict[str, Any],
        status: int,
        *,
        max_bytes: int,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(payload, status, close=True, headers=headers)
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await send({"type": "http.response.body", "body": self.body, "more_body": True})
        headers = dict(scope["headers"])
        waiting = headers.get(b"expect", b"").lower() == b"100-continue"  # sends nothing more
        has_body = headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers
        if has_body and not waiting and not scope.get(_BODY_DONE):
            await _drain(receive, max_bytes=self._max_bytes)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _drain(receive: Receive, *, max_bytes: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _LINGER_S
    drained = 0
    try:
        while drained <= max_bytes:
            left = deadline - loop.time()
            if left <= 0:
                return
            message = await asyncio.wait_for(receive(), left)
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            drained += len(message.get("body", b""))
    except (asyncio.TimeoutError, _BodyTimeoutError):
        return


# --- middleware ---------------------------------------------------------------------


class _BodyDeadline:
    """A deadline on the whole request body, enforced on ``receive()``.

    The deadline starts when the application is called (the head has arrived)
    and covers every ``receive()`` until the last body piece: a sender that
    trickles a byte now and then is cut off at the deadline, not kept alive by
    each byte as a per-read timeout would be. After the body, ``receive()`` is
    passed through untouched (it then only reports a disconnect).
    """

    def __init__(self, app: ASGIApp, *, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s

        async def timed_receive() -> Message:
            if scope.get(_BODY_DONE):
                return await receive()
            left = deadline - loop.time()
            if left <= 0:
                raise _BodyTimeoutError
            try:
                message = await asyncio.wait_for(receive(), left)
            except asyncio.TimeoutError:
                raise _BodyTimeoutError from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                scope[_BODY_DONE] = True
            return message

        await self.app(scope, timed_receive, send)


class _AccessLog:
    """One log line per request: client, request line, status, bytes, time, verdict."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        sizes = [0, 0]  # bytes received, bytes sent

        async def counting_receive() -> Message:
            message = await receive()
            sizes[0] += len(message.get("body", b""))
            return message

        async def watching_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            sizes[1] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        finally:
            verdict = scope.get(_VERDICT)
            _access.info(
                '%s "%s %s HTTP/%s" %d in=%d out=%d %.1fms%s',
                _client(scope),
                scope["method"],
                _target(scope),
                scope.get("http_version", "1.1"),
                status or 499,  # 499: the client went away before an answer
                sizes[0],
                sizes[1],
                (time.perf_counter() - started) * 1000,
                f" verdict={verdict}" if verdict else "",
            )


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"


def _target(scope: Scope) -> str:
    path = str(scope.get("root_path", "")) + str(scope["path"])
    query = scope.get("query_string", b"")
    text = f"{path}?{query.decode('latin-1')}" if query else path
    return text.replace('"', "%22")[:512]


# --- the application ----------------------------------------------------------------


@dataclass
class _Health:
    """What ``/healthz`` reports about the inventory; updated by verification threads."""

    inventory_loaded: bool
    inventory_error: str | None


class _Service:
    """The endpoints, their verification threads and per-thread inventories."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.executor = ThreadPoolExecutor(
            max_workers=config.verify_threads, thread_name_prefix="provenance-verify"
        )
        self._local = threading.local()
        self.health = _Health(inventory_loaded=False, inventory_error=None)
        if config.inventory_path is not None:
            try:
                Inventory(config.inventory_path, create=False, read_only=True).close()
                self.health.inventory_loaded = True
            except ProvenanceError as exc:
                self.health.inventory_error = str(exc)
                _log.error("inventory unavailable: %s", exc)

    # GET /healthz
    async def healthz(self, request: Request) -> Response:
        cfg = self.config
        degraded = cfg.inventory_path is not None and not self.health.inventory_loaded
        payload = {
            "status": "degraded" if degraded else "ok",
            "version": __version__,
            "trust_anchors": {
                "loaded": cfg.trust.has_anchors,
                "count": len(cfg.trust.anchors),
            },
            "inventory": {
                "configured": cfg.inventory_path is not None,
                "loaded": self.health.inventory_loaded,
                "error": self.health.inventory_error,
            },
            "limits": {
                "max_bytes": cfg.max_bytes,
                "body_timeout_s": cfg.body_timeout_s,
                "verify_threads": cfg.verify_threads,
            },
        }
        return _Json(payload, 503 if degraded else 200)

    # POST /verify
    async def verify(self, request: Request) -> Response:
        cfg = self.config
        refuse = functools.partial(_Refusal, max_bytes=cfg.max_bytes)
        try:
            require, accept = _requirement(request)
        except ValueError as exc:
            return refuse({"error": str(exc)}, 400)
        if "transfer-encoding" in request.headers and "content-length" in request.headers:
            # RFC 9112 section 6.1: a server MAY reject both (a smuggling sign) and
            # MUST close the connection after answering; h11 lets the coding win.
            return refuse({"error": "both Transfer-Encoding and Content-Length sent"}, 400)
        content_type = request.headers.get("content-type", "application/octet-stream")
        multipart = content_type.lower().startswith("multipart/form-data")
        limit = cfg.max_bytes + (_MULTIPART_OVERHEAD if multipart else 0)
        # Under our server h11 has checked Content-Length already (RFC 9112 section
        # 6.3); mounted under another server, check it here too.
        values = ",".join(request.headers.getlist("content-length")).split(",")
        lengths = {v.strip() for v in values if v.strip()}
        if len(lengths) > 1:
            return refuse({"error": "conflicting Content-Length headers"}, 400)
        declared = lengths.pop() if lengths else None
        if declared is not None:
            if not (declared.isascii() and declared.isdigit() and len(declared) <= 20):
                return refuse({"error": "bad Content-Length (1 to 20 ASCII digits)"}, 400)
            if int(declared) > limit:
                return refuse(_too_large(int(declared), cfg.max_bytes), 413)
        try:
            if multipart:
                upload = await self._receive_multipart(request, limit)
            else:
                upload = await self._receive_raw(request, limit)
        except _TooLargeError:
            return refuse({"error": f"body is over the {cfg.max_bytes}-byte limit"}, 413)
        except _BodyTimeoutError:
            return refuse({"error": f"body not received within {cfg.body_timeout_s:g} s"}, 408)
        except MultiPartException as exc:
            return refuse({"error": f"malformed multipart body: {exc.message}"}, 400)
        except ClientDisconnect:
            return _Json({"error": "client disconnected"}, 400, close=True)
        if isinstance(upload, Response):
            return upload
        try:
            if upload.size is not None and upload.size > cfg.max_bytes:
                return refuse(_too_large(upload.size, cfg.max_bytes), 413)
            name = upload.filename or "upload"
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self.executor, self._verify_file, upload.file, name)
        finally:
            await upload.close()
        if require is not None:
            status = Status(result["verdict"])
            result["requirement"] = {
                "require": require.value,
                "accept": sorted(s.value for s in accept),
            }
            result["meets_requirement"] = meets(status, require, accept)
        request.scope[_VERDICT] = result["verdict"]
        return _Json(result, 422 if result["verdict"] == "error" else 200)

    async def _receive_raw(self, request: Request, limit: int) -> UploadFile:
        name = request.query_params.get("filename") or request.headers.get("x-filename", "")
        spool: Any = SpooledTemporaryFile(max_size=self.config.spool_bytes)  # noqa: SIM115
        upload = UploadFile(
            spool,
            size=0,
            filename=name or "upload",
        )
        try:
            async for chunk in request.stream():
                if (upload.size or 0) + len(chunk) > limit:
                    raise _TooLargeError
                await upload.write(chunk)  # in a thread once rolled over to disk
        except BaseException:
            await upload.close()
            raise
        return upload

    async def _receive_multipart(self, request: Request, limit: int) -> UploadFile | Response:
        received = 0

        async def counted() -> AsyncGenerator[bytes, None]:
            nonlocal received
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:  # chunked bodies have no Content-Length to check first
                    raise _TooLargeError
                yield chunk

        parser = MultiPartParser(
            request.headers,
            counted(),
            max_files=1,
            max_fields=_MAX_FIELDS,
            max_part_size=_MAX_FIELD_BYTES,
        )
        parser.spool_max_size = self.config.spool_bytes
        form = await parser.parse()
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            await form.close()
            return _Refusal(
                {"error": "multipart body has no file part (a part with a filename)"},
                400,
                max_bytes=self.config.max_bytes,
            )
        return files[0]

    def _verify_file(self, file: IO[bytes], name: str) -> dict[str, Any]:
        """In a verification thread: read the spooled upload once and verify it."""
        file.seek(0)
        data = file.read()
        cfg = self.config
        try:
            inventory = self._inventory()
        except ProvenanceError as exc:  # the inventory, not the upload
            _log.error("inventory unavailable: %s", exc)
            self.health.inventory_loaded = False
            self.health.inventory_error = str(exc)
            return _error(_clean_name(name), f"inventory unavailable: {exc.message}").to_dict()
        return verify_upload(
            data, name, trust=cfg.trust, inventory=inventory, max_bytes=cfg.max_bytes, now=cfg.now
        )

    def _inventory(self) -> Inventory | None:
        # One read-only connection per verification thread (SQLite connections
        # stay in their thread), kept so the perceptual index is built once and
        # then refreshed incrementally (DESIGN.md decision 15).
        path = self.config.inventory_path
        if path is None:
            return None
        inventory: Inventory | None = getattr(self._local, "inventory", None)
        if inventory is None:
            inventory = Inventory(path, create=False, read_only=True)
            self._local.inventory = inventory
            self.health.inventory_loaded = True
            self.health.inventory_error = None
        return inventory


def _too_large(size: int, max_bytes: int) -> dict[str, Any]:
    return {"error": f"body is {size} bytes; the limit is {max_bytes}"}


def _requirement(request: Request) -> tuple[Status | None, frozenset[Status]]:
    """``?require=trusted&accept=known_stripped,synthetic_duplicate`` as statuses."""
    names = {s.value for s in Status}

    def status(text: str, what: str) -> Status:
        if text not in names:
            raise ValueError(f"{what}={text!r}: say one of {', '.join(sorted(names))}")
        return Status(text)

    required = request.query_params.get("require")
    accepted = [
        part.strip()
        for value in request.query_params.getlist("accept")
        for part in value.split(",")
        if part.strip()
    ]
    if required is None:
        if accepted:
            raise ValueError("accept= needs require= (for example require=trusted)")
        return None, frozenset()
    requirement = status(required, "require")
    accepts = frozenset(status(a, "accept") for a in accepted)
    meets(Status.TRUSTED, requirement, accepts)  # validates the combination (ValueError)
    return requirement, accepts


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 (registered for HTTPException only)
    if exc.status_code == HTTPStatus.NOT_FOUND:
        payload = {"error": f"no such endpoint: {request.url.path}"}
    elif exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        allowed = (exc.headers or {}).get("Allow", "")
        payload = {"error": f"{request.method} is not allowed here; use {allowed}"}
    else:
        payload = {"error": exc.detail}
    return _Refusal(
        payload, exc.status_code, max_bytes=_UNASKED_DRAIN_BYTES, headers=dict(exc.headers or {})
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    _log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return _Json({"error": "internal error; see the server log"}, 500, close=True)


def create_app(config: ServerConfig) -> Starlette:
    """The endpoint as a Starlette app; see :func:`provenance.integrations.dam.create_app`."""
    service = _Service(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Runs under `provenance serve`; a Mount in someone else's app does not
        # run sub-app lifespans, and the threads then end with the interpreter.
        yield
        service.executor.shutdown(wait=True, cancel_futures=True)

    app = Starlette(
        routes=[
            Route("/verify", service.verify, methods=["POST"]),
            Route("/healthz", service.healthz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    # Outermost first: the access log sees the body deadline's refusals too.
    app.add_middleware(_BodyDeadline, timeout_s=config.body_timeout_s)
    app.add_middleware(_AccessLog)
    app.state.provenance_service = service
    return app


# --- the server ---------------------------------------------------------------------


class _Connection(h11.Connection):
    """h11's connection, remembering why it refused a request (for the JSON 400)."""

    last_error: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.last_error = exc
            raise


class _UvicornConfig(uvicorn.Config):
    """uvicorn's settings plus ours, picklable into worker processes."""

    provenance: ServerConfig


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and JSON refusals.

    * Header deadline: armed when a connection opens and when the first byte of
      a later request on it arrives; disarmed once h11 has the whole head. On
      expiry a 408 JSON is written and the connection closed, however steadily
      the client trickles bytes (uvicorn resets its keep-alive timer on every
      byte and has no request timeout).
    * Connection limit: the check of uvicorn's ``limit_concurrency``, answered
      with JSON instead of plain text.
    * h11's refusals (malformed head, conflicting or non-digit Content-Length,
      unknown transfer coding) are answered with JSON instead of plain text.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        settings: ServerConfig = getattr(config, "provenance", ServerConfig())
        self.conn: _Connection = _Connection(h11.SERVER, _MAX_HEAD_BYTES)
        self._header_timeout_s = settings.header_timeout_s
        self._max_connections = settings.max_connections
        self._header_timer: asyncio.TimerHandle | None = None
        self._discarding = 0  # > 0 after a refusal: bytes still dropped before closing
        self._inner_app = self.app
        self.app = self._guarded_app

    async def _guarded_app(self, scope: Any, receive: Any, send: Any) -> None:
        # This request's own task and connection are counted already.
        if len(self.connections) > self._max_connections or len(self.tasks) > self._max_connections:
            body = _json_bytes(
                {"error": f"over the limit of {self._max_connections} connections; retry later"}
            )
            headers = _headers(body, close=True, extra={"retry-after": "1"})
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
                }
            )
            await send({"type": "http.response.body", "body": body, "more_body": False})
            _log_refusal(self.client, scope.get("method", "-"), 503, "over the connection limit")
            return
        await self._inner_app(scope, receive, send)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            self._discarding += len(data)
            if self._discarding > _UNASKED_DRAIN_BYTES:
                self.transport.close()
            return
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm_header_deadline()  # a head in progress (no-op when armed)
        else:
            self._disarm_header_deadline()

    def _arm_header_deadline(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(
                self._header_timeout_s, self._header_deadline_passed
            )

    def _disarm_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline_passed(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # an answer is still being sent on this connection
        message = f"request head not received within {self._header_timeout_s:g} s"
        self._write_raw(408, {"error": message})
        _log_refusal(self.client, "-", 408, message)

    def send_400_response(self, msg: str) -> None:
        error = self.conn.last_error
        status = error.error_status_hint if error is not None else 400
        detail = str(error) if error is not None and str(error) else msg
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # mid-answer: nothing valid can be sent any more
            return
        self._write_raw(status, {"error": f"malformed request: {detail}"}, linger=True)
        _log_refusal(self.client, "-", status, detail)

    def _write_raw(self, status: int, payload: dict[str, Any], *, linger: bool = False) -> None:
        # Written past h11 (which may be in an error state, or not have a
        # request to answer yet), then the connection is closed: at once after
        # a deadline, or after a lingering close (see _Refusal) after a refusal.
        body = _json_bytes(payload)
        reason = HTTPStatus(status).phrase
        head = [f"HTTP/1.1 {status} {reason}"]
        head += [f"{k}: {v}" for k, v in _headers(body, close=True).items()]
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        if linger and self.transport.can_write_eof():
            self.transport.write_eof()
            self._discarding = 1
            self._disarm_header_deadline()
            self.loop.call_later(_LINGER_S, self.transport.close)
        else:
            self.transport.close()


def _log_refusal(client: tuple[str, int] | None, method: str, status: int, why: str) -> None:
    where = f"{client[0]}:{client[1]}" if client else "-"
    _access.info('%s "%s -" %d %s', where, method, status, why)


class DamServer:
    """The endpoint under uvicorn, bound at construction; ``serve_forever()`` runs it.

    Built by :func:`provenance.integrations.dam.make_server`. One worker runs in
    the calling thread (``shutdown()`` from another thread stops it); more
    workers run as uvicorn's worker processes sharing the bound socket.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        host: str,
        port: int,
        log_config: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self._uvicorn = _UvicornConfig(
            functools.partial(create_app, config),
            factory=True,
            host=host,
            port=port,
            http=_Protocol,
            ws="none",
            lifespan="on",
            log_config=log_config,
            access_log=False,  # ours logs one line per request, refusals included
            server_header=False,
            headers=[("server", f"provenance/{__version__}")],
            proxy_headers=False,
            backlog=config.backlog,
            timeout_keep_alive=config.keep_alive_s,
            timeout_graceful_shutdown=max(1, int(config.body_timeout_s)),
            workers=config.workers,
            h11_max_incomplete_event_size=_MAX_HEAD_BYTES,
        )
        self._uvicorn.provenance = config
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto=IPPROTO_TCP, as uvicorn's own bind: asyncio sets TCP_NODELAY only on
        # sockets that say so, and without it each answer (head and body are two
        # writes) waits ~40 ms for the client's delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            # Listen now: a client that connects as soon as the URL is printed
            # waits in the backlog instead of being refused while uvicorn starts.
            sock.listen(config.backlog)
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)  # worker processes inherit it
        self._socket = sock
        self._server = uvicorn.Server(self._uvicorn)
        self._supervisor: Multiprocess | None = None

    @property
    def server_address(self) -> tuple[str, int]:
        """The bound address (the real port when 0 was asked for)."""
        name = self._socket.getsockname()
        return str(name[0]), int(name[1])

    @property
    def started(self) -> bool:
        """Whether the single-process server accepts connections yet."""
        return bool(self._server.started)

    def wait_started(self, timeout_s: float = 10.0) -> bool:
        """Wait until the single-process server accepts connections; False on timeout."""
        end = time.monotonic() + timeout_s
        while not self.started and time.monotonic() < end:
            time.sleep(0.01)
        return self.started

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown`, SIGINT or SIGTERM."""
        if self.config.workers > 1:
            self._supervisor = Multiprocess(self._uvicorn, sockets=[self._socket])
            self._supervisor.run()
        else:
            self._server.run(sockets=[self._socket])

    def shutdown(self) -> None:
        """Ask a running :meth:`serve_forever` (in another thread) to stop."""
        self._server.should_exit = True
        if self._supervisor is not None:
            self._supervisor.should_exit.set()

    def server_close(self) -> None:
        """Close the listening socket."""
        self._socket.close()


# uvicorn's own console format, plus the access lines, for `provenance serve`.
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "access": {"format": "%(asctime)s %(message)s"},
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
        },
        "access": {
            "class": "logging.StreamHandler",
            "formatter": "access",
            "stream": "ext://sys.stderr",
        },
    },
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "provenance.integrations.dam": {
            "handlers": ["stderr"],
            "level": "INFO",
            "propagate": False,
        },
        "provenance.integrations.dam.access": {
            "handlers": ["access"],
            "level": "INFO",
            "propagate": False,
        },
    },
}
