"""The DAM endpoint over HTTP: the Starlette application (its server is in ``_server``).

Owns everything of :mod:`provenance.integrations.dam` that needs the ``server``
extra (Starlette, uvicorn, python-multipart); import it through ``dam``. It
never buffers a whole upload in memory more than once: bodies stream into a
spooled temporary file (memory up to ``spool_bytes``, then disk) and are read
back once, in a verification thread, for :func:`~provenance.integrations.dam.verify_upload`.

Who enforces what (uvicorn has no request deadline of its own; its issue #157
lists ``--timeout-request-start``/``--timeout-request-complete`` as never done):

* the application (anywhere it is mounted): the body deadline
  (``_http._BodyDeadline``, a deadline on ``receive()``), the size limit while
  streaming, one file per multipart body (python-multipart through Starlette's
  parser, ``max_files=1``), JSON for every error, one access-log line per request;
* the server (:class:`DamServer`, ``provenance serve``): the header deadline and
  the connection limit with JSON answers (``_server._Protocol``, a subclass of
  uvicorn's h11 protocol), JSON for h11's own 400s (conflicting or non-digit
  ``Content-Length``: h11 rejects them per RFC 9112 section 6.3), the listen
  backlog, keep-alive and worker processes (uvicorn settings).

It must never print (logging only) nor open anything but the configured
inventory and its own temporary files.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http import HTTPStatus
from tempfile import SpooledTemporaryFile
from typing import IO, TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from provenance._core.types import Status
from provenance._core.verdicts import meets
from provenance._version import __version__
from provenance.errors import ProvenanceError
from provenance.integrations.dam._config import ServerConfig
from provenance.integrations.dam._http import (
    _MAX_FIELD_BYTES,
    _MAX_FIELDS,
    _MULTIPART_OVERHEAD,
    _UNASKED_DRAIN_BYTES,
    _VERDICT,
    _AccessLog,
    _BodyDeadline,
    _BodyTimeoutError,
    _Json,
    _log,
    _Refusal,
    _TooLargeError,
)
from provenance.integrations.dam._upload import _clean_name, _error, verify_upload
from provenance.inventory import Inventory

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator


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
