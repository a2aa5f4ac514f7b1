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

The HTTP parts live in this package's ``_http`` (responses, middleware), ``_app``
(the Starlette application) and ``_server`` (uvicorn) modules and need the
``server`` extra (``pip install 'product-provenance[server]'``): Starlette, uvicorn and
python-multipart. This package's ``__init__``, ``_config`` and ``_upload`` import none of them, so
:func:`verify_upload` works without the extra.

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

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from provenance.integrations.dam._server import DamServer

from provenance.integrations.dam._config import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    ServerConfig,
)
from provenance.integrations.dam._upload import verify_upload

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
    from provenance.integrations.dam._app import create_app as _create

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
    from provenance.integrations.dam._server import LOG_CONFIG, DamServer

    return DamServer(
        config or ServerConfig(), host=host, port=port, log_config=LOG_CONFIG if log else None
    )
