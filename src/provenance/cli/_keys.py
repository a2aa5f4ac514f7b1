"""``provenance keys``: signing keys (a development CA for now)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provenance.cli._options import DEFAULT_KEY_DIR, JsonOption
from provenance.cli._output import err, out, print_json, reports_errors

app = typer.Typer(help="Manage signing keys.", no_args_is_help=True)


@app.command("init")
@reports_errors
def keys_init(
    directory: Annotated[Path, typer.Argument(help="Folder for ca.pem, chain.pem, signer.key.")] = (
        DEFAULT_KEY_DIR
    ),
    organization: Annotated[str, typer.Option(help="O= of the certificates.")] = (
        "provenance development"
    ),
    force: Annotated[bool, typer.Option("--force", help="Replace existing keys.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a DEVELOPMENT CA and an ES256 signing certificate that c2pa accepts.

    Example: provenance keys init .provenance/keys
    """
    from provenance._io.keys import DEV_WARNING, init_dev_keys  # here: cryptography is slow to load

    paths = init_dev_keys(directory, organization=organization, overwrite=force)
    if as_json:
        print_json(
            {
                "ca_certificate": str(paths.ca_certificate),
                "chain": str(paths.chain),
                "private_key": str(paths.private_key),
                "warning": DEV_WARNING,
            }
        )
    else:
        out.line(f"wrote {paths.ca_certificate} (trust anchor)")
        out.line(f"wrote {paths.chain} (signing certificate chain)")
        out.line(f"wrote {paths.private_key} (private key, mode 0600)")
    err.line(f"WARNING: {DEV_WARNING}")
