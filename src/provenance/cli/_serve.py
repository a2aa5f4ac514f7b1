"""``provenance serve``: the DAM verification endpoint (provenance.integrations.dam)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from provenance.cli._common import existing_inventory, trust_policy
from provenance.cli._options import InventoryOption, JsonOption, TrustAnchorsOption
from provenance.cli._output import fail, out, print_json, reports_errors


# Over 60 lines: typer reads the options from the signature; the body is short.
@reports_errors
def serve_command(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8765,
    trust_anchors: TrustAnchorsOption = None,
    inventory_path: InventoryOption = None,
    max_bytes: Annotated[
        int, typer.Option("--max-bytes", min=1, help="Largest upload accepted (413 above).")
    ] = 64 * 1024 * 1024,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=0.1,
            help="Sets both --header-timeout and --body-timeout (unless given).",
        ),
    ] = None,
    header_timeout: Annotated[
        float | None,
        typer.Option(
            "--header-timeout", min=0.1, help="Seconds to send the request head [default: 10]."
        ),
    ] = None,
    body_timeout: Annotated[
        float | None,
        typer.Option("--body-timeout", min=0.1, help="Seconds to send the body [default: 60]."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes (uvicorn workers).")
    ] = 1,
    verify_threads: Annotated[
        int | None,
        typer.Option(
            "--verify-threads", min=1, help="Verification threads per worker [default: CPUs]."
        ),
    ] = None,
    max_connections: Annotated[
        int,
        typer.Option("--max-connections", min=1, help="Open connections per worker (503 above)."),
    ] = 512,
    backlog: Annotated[
        int, typer.Option("--backlog", min=1, help="Connections queued by the kernel.")
    ] = 2048,
    as_json: JsonOption = False,
) -> None:
    """Run the DAM verification endpoint: POST /verify, GET /healthz (no outbound calls).

    \b
    Examples:
      provenance serve --trust-anchors .provenance/keys/ca.pem --workers 2
      curl --data-binary @upload.jpg 'http://127.0.0.1:8765/verify?filename=upload.jpg'
      curl -F file=@upload.jpg 'http://127.0.0.1:8765/verify?require=trusted'
    """
    from provenance.integrations.dam import ServerConfig, make_server

    policy = trust_policy(trust_anchors)
    inventory = existing_inventory(inventory_path)
    inv_file = inventory.path if inventory is not None else None
    if inventory is not None:
        inventory.close()
    extra: dict[str, Any] = {}
    if verify_threads is not None:
        extra["verify_threads"] = verify_threads
    config = ServerConfig(
        trust=policy,
        inventory_path=inv_file,
        max_bytes=max_bytes,
        header_timeout_s=header_timeout or timeout or 10.0,
        body_timeout_s=body_timeout or timeout or 60.0,
        workers=workers,
        max_connections=max_connections,
        backlog=backlog,
        **extra,
    )
    try:
        server = make_server(host, port, config=config, log=True)
    except ImportError as exc:
        fail(f"serve needs the server extra: pip install 'product-provenance[server]' ({exc})")
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}")
    bound_host, bound_port = server.server_address[:2]
    url = f"http://{bound_host!s}:{bound_port}"
    if as_json:
        print_json({"url": url, "verify": url + "/verify", "healthz": url + "/healthz"})
        sys.stdout.flush()
    else:
        out.line(f"listening on {url} (POST /verify, GET /healthz); Ctrl-C stops")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
