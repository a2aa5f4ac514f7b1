"""DAM integration: verify uploaded bytes, in-process or over an HTTP endpoint.

Two ways in for a digital-asset-management system:

* :func:`verify_upload` for an upload hook that runs Python: bytes and a file
  name in, a JSON-ready verdict out. It never raises on bad bytes: an empty,
  oversized, truncated or non-image upload is a verdict with status ``error``
  and a message ("couldn't check" stays distinguishable from "checked and
  found wrong").
* :func:`create_app` for a DAM webhook that speaks HTTP: an ASGI application
  (Starlette) with ``POST /verify`` (raw body, or ``multipart/form-data`` with
  one file) and ``GET /healthz``, to mount in your own ASGI app or to run with
  :func:`make_server` (uvicorn; what ``provenance serve`` runs).

The HTTP parts live in :mod:`provenance.integrations._dam_asgi` and need the
``server`` extra (``pip install 'product-provenance[server]'``): Starlette, uvicorn and
python-multipart. This module imports none of them, so :func:`verify_upload`
works without the extra.

The endpoint makes no outbound connection: verification is offline (no remote
manifest fetch, no OCSP; DESIGN.md decision 1) and the server never resolves or
calls anything. It has no authentication of its own: bind it to loopback or put
it behind the DAM's reverse proxy.

Statuses: 200 with the verdict for anything that was checked (a tampered file
is a successful check), 422 with ``verdict: error`` for an upload that could not
be checked, and a JSON ``{"error": ...}`` for every refusal: 400 malformed
request, 404/405 other paths and methods, 408 header or body deadline passed,
413 too large, 501 an unknown transfer coding, 503 over the connection limit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance._core.disclosure import disclosure_for
from provenance._core.types import Status, Verdict
from provenance._io.keys import TrustPolicy
from provenance.errors import ProvenanceError
from provenance.inventory import Inventory
from provenance.verify import verify_bytes

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from provenance.integrations._dam_asgi import DamServer

__all__ = [
    "DEFAULT_BODY_TIMEOUT_S",
    "DEFAULT_HEADER_TIMEOUT_S",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_CONNECTIONS",
    "ServerConfig",
    "create_app",
    "make_server",
    "verify_upload",
]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""Largest upload checked: a 50 MP JPEG is about 25 MB."""

DEFAULT_HEADER_TIMEOUT_S = 10.0
"""A client must send its whole request head within this many seconds."""

DEFAULT_BODY_TIMEOUT_S = 60.0
"""... and its whole body within this many seconds after the head (about 1.1 MB/s
at the default 64 MiB limit)."""

DEFAULT_MAX_CONNECTIONS = 512
"""Open connections one server process serves; requests past it get 503."""

_MAX_NAME = 255


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
        storefront should show, see :mod:`provenance._core.disclosure`).
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

    The application settings apply wherever the app runs (mounted in your own
    ASGI app or under :func:`make_server`); the server settings only apply under
    :func:`make_server` / ``provenance serve``, where uvicorn is configured from
    them. Mounted in another server, configure that server's own limits.

    Attributes:
        trust: Trust anchors for every request.
        inventory_path: An inventory to recognise stripped copies; opened
            read-only, once per verification thread.
        max_bytes: Largest upload accepted (413 above it).
        now: Fixed verification time (tests); None means the current time.
        body_timeout_s: The whole body must arrive within this many seconds of
            the request head (408 and the connection closed otherwise): a
            deadline for the body, not a per-read timeout.
        verify_threads: Threads that verify uploads, off the event loop.
        spool_bytes: An upload is kept in memory up to this size, then in a
            temporary file.
        header_timeout_s: (server) The request head must arrive within this
            many seconds of the connection opening or, on a kept-alive
            connection, of its first byte.
        keep_alive_s: (server) An idle kept-alive connection is closed after
            this many seconds.
        max_connections: (server) Open connections per worker process; a
            request beyond it is answered 503.
        backlog: (server) Connections the kernel queues before they are
            accepted.
        workers: (server) Worker processes (uvicorn's ``workers``), each with
            its own ``verify_threads``.
    """

    trust: TrustPolicy = field(default_factory=TrustPolicy.no_anchors)
    inventory_path: Path | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    now: datetime | None = None
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    verify_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    spool_bytes: int = 1024 * 1024
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    keep_alive_s: int = 5
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    backlog: int = 2048
    workers: int = 1

    def __post_init__(self) -> None:
        for name in ("max_bytes", "verify_threads", "max_connections", "backlog", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"ServerConfig.{name} must be at least 1")
        if self.spool_bytes < 0:
            raise ValueError("ServerConfig.spool_bytes must not be negative")
        for name in ("body_timeout_s", "header_timeout_s", "keep_alive_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ServerConfig.{name} must be positive")


def create_app(config: ServerConfig | None = None) -> Starlette:
    """The verification endpoint as an ASGI application, to mount or to serve.

    ``POST /verify`` takes a raw body (name from ``?filename=`` or
    ``X-Filename``) or ``multipart/form-data`` with exactly one file, and
    answers the verdict JSON. ``?require=trusted&accept=known_stripped`` adds
    ``meets_requirement``. ``GET /healthz`` says whether trust anchors and the
    inventory are loaded, and the version. Mount it with
    ``Mount("/provenance", app=create_app(config))``.

    Args:
        config: Trust, inventory, limits.

    Raises:
        ImportError: The ``server`` extra (Starlette, python-multipart) is not
            installed.
    """
    from provenance.integrations._dam_asgi import create_app as _create

    return _create(config or ServerConfig())


def make_server(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    config: ServerConfig | None = None,
    log: bool = False,
) -> DamServer:
    """Bind the endpoint under uvicorn; call ``serve_forever()`` on the result.

    Args:
        host: The address to bind (loopback by default).
        port: The port; 0 picks a free one (read it from ``server.server_address``).
        config: Trust, inventory, limits, workers.
        log: Configure logging (in every worker process) to write uvicorn's
            messages and one access line per request to stderr; otherwise the
            caller's logging setup applies.

    Raises:
        OSError: The address cannot be bound.
        ImportError: The ``server`` extra (uvicorn) is not installed.
    """
    from provenance.integrations._dam_asgi import LOG_CONFIG, DamServer

    return DamServer(
        config or ServerConfig(), host=host, port=port, log_config=LOG_CONFIG if log else None
    )
