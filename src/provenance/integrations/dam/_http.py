"""HTTP pieces of the DAM endpoint: JSON answers, lingering refusals, body deadline, access log."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
