"""The DAM endpoint's uvicorn server: header deadline, connection limit, JSON for h11's 400s."""

from __future__ import annotations

import asyncio
import functools
import socket
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

from provenance._version import __version__
from provenance.integrations.dam._app import create_app
from provenance.integrations.dam._config import ServerConfig

if TYPE_CHECKING:
    from uvicorn.server import ServerState
from provenance.integrations.dam._http import (
    _LINGER_S,
    _MAX_HEAD_BYTES,
    _UNASKED_DRAIN_BYTES,
    _access,
    _headers,
    _json_bytes,
)

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
