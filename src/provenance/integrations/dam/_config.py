"""How the DAM endpoint runs: :class:`ServerConfig` and its defaults (no server extra needed)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from provenance._io.keys import TrustPolicy

if TYPE_CHECKING:
    pass

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""Largest upload checked: a 50 MP JPEG is about 25 MB."""

DEFAULT_HEADER_TIMEOUT_S = 10.0
"""A client must send its whole request head within this many seconds."""

DEFAULT_BODY_TIMEOUT_S = 60.0
"""... and its whole body within this many seconds after the head (about 1.1 MB/s
at the default 64 MiB limit)."""

DEFAULT_MAX_CONNECTIONS = 512
"""Open connections one server process serves; requests past it get 503."""


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
