"""The options several commands share, each written once (type, flag and help).

A command takes one by annotating a parameter with it, e.g. ``as_json: JsonOption
= False``. These must be importable at run time: typer reads the annotations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provenance._core.pii import PiiAction

DEFAULT_KEY_DIR = Path(".provenance") / "keys"
PASSPHRASE_ENV = "PROVENANCE_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
NdjsonOption = Annotated[
    bool,
    typer.Option(
        "--ndjson",
        help="Print the JSON rows one per line as each completes (implies --json).",
    ),
]
TrustAnchorsOption = Annotated[
    Path | None, typer.Option("--trust-anchors", help="PEM bundle of trusted root certificates.")
]
CertOption = Annotated[Path | None, typer.Option(help="PEM certificate chain, leaf first.")]
KeyFileOption = Annotated[Path | None, typer.Option(help="PEM private key.")]
KeysDirOption = Annotated[
    Path, typer.Option("--keys", help="Folder with chain.pem and signer.key.")
]
PassphraseEnvOption = Annotated[
    str | None,
    typer.Option(
        "--key-passphrase-env",
        metavar="VAR",
        help="Read an encrypted key's passphrase from this environment variable "
        f"(default: ${PASSPHRASE_ENV} when set). Never on the command line itself.",
    ),
]
PassphraseFileOption = Annotated[
    Path | None,
    typer.Option(
        "--key-passphrase-file",
        help="Read an encrypted key's passphrase from the first line of this file "
        "(or a descriptor: /dev/fd/3).",
    ),
]
SignerOption = Annotated[
    str | None,
    typer.Option(
        "--signer",
        metavar="MODULE:FUNCTION",
        help="Sign through this callback (a KMS or HSM client) instead of a key file; "
        "--cert (default: --keys DIR/chain.pem) is its certificate chain.",
    ),
]
WorkersOption = Annotated[
    int,
    typer.Option(
        "--workers",
        "-w",
        min=0,
        help="Worker processes (0: one per CPU). 1 runs in this process; more pay "
        "off from a few dozen files on.",
    ),
]
ProgressOption = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="A progress bar on stderr (default: when stderr is a terminal).",
        show_default=False,
    ),
]
NamesOption = Annotated[
    Path | None,
    typer.Option("--names", help="A text file of names or customer ids to flag, one per line."),
]
InventoryOption = Annotated[
    Path | None,
    typer.Option(
        "--inventory",
        help="Inventory database (default: $PROVENANCE_INVENTORY, else the inventory key of a "
        "provenance.toml or a .provenance/inventory.sqlite in this folder or a parent).",
    ),
]

PiiOption = Annotated[PiiAction, typer.Option(help="What to do with personal data in free text.")]
NoExifOption = Annotated[bool, typer.Option("--no-exif", help="Do not write EXIF.")]
