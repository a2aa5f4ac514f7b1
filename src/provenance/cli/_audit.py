"""``provenance audit``: check the hash-chained audit log, and sign checkpoints of it."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provenance._io.atomic import PRIVATE_FILE_MODE, write_atomic
from provenance._io.reading import read_input
from provenance.cli._common import find_existing, load_key, open_inventory, warn_witness
from provenance.cli._options import DEFAULT_KEY_DIR, InventoryOption, JsonOption, KeysDirOption
from provenance.cli._output import EXIT_FAILED, EXIT_OK, fail, out, print_json, reports_errors
from provenance.errors import ProvenanceError

if TYPE_CHECKING:
    from provenance.audit import Checkpoint

_WITNESS_ENV_VAR = "PROVENANCE_AUDIT_WITNESS"
"""``provenance.audit.WITNESS_ENV_VAR``, for the help text: the command line
starts without importing the audit log (issue 20); a test checks they agree."""

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


# Over 60 lines: typer reads the options from the signature; the body is short.
@app.command("verify")
@reports_errors
def audit_verify(
    inventory_path: InventoryOption = None,
    against: Annotated[
        Path | None,
        typer.Option(help="A checkpoint kept elsewhere: an export's JSON or a checkpoint file."),
    ] = None,
    trust_anchors: Annotated[
        Path | None, typer.Option("--trust-anchors", help="Require checkpoints signed by these.")
    ] = None,
    keys_dir: Annotated[
        Path | None,
        typer.Option(
            "--keys",
            help="Pin the log to this key: checkpoints signed by any other are refused "
            "(default: the key of the log's first signed checkpoint).",
        ),
    ] = None,
    witness: Annotated[
        str | None,
        typer.Option(
            "--witness",
            help=f"The witness file or folder (default: ${_WITNESS_ENV_VAR}).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check the audit log: hash chain, checkpoints, witness and every fact row it binds.

    Prints "intact" only when something kept outside the database (the log's
    key, trust anchors, a witness) vouches for it, "unverified" when the log is
    consistent but nothing outside does. Exit status: 0 intact or unverified,
    1 tampered, 2 unreadable.

    \b
    Examples:
      provenance audit verify
      provenance audit verify --witness /mnt/audit-witness/
      provenance audit verify --against inventory-2026-11-01.json
    """
    from provenance._io.keys import TrustPolicy
    from provenance.audit import chain_fingerprint, witness_from

    checkpoint = _load_checkpoint(against) if against is not None else None
    policy = TrustPolicy.from_pem(trust_anchors) if trust_anchors is not None else None
    pin = None
    if keys_dir is not None:
        pin = chain_fingerprint(read_input(keys_dir / "chain.pem", max_bytes=1024 * 1024))
    chosen = witness_from(witness)
    # Read-only, after migrating an older schema once (as verify does).
    inventory, missing = find_existing(inventory_path)
    if inventory is None:
        fail(missing or "no inventory found")
    with inventory:
        if chosen is not None:
            inventory.audit.witness = chosen
        report = inventory.audit.verify(against=checkpoint, trust=policy, pin=pin)
    if as_json:
        print_json(report.to_dict())
    else:
        for problem in report.problems:
            out.line(f"entry {problem.seq}: {problem.kind.value}: {problem.detail}")
        if report.ok:
            out.line(
                f"audit log {'intact' if report.verified else 'UNVERIFIED'}: "
                f"{report.entries_checked} entries, {report.checkpoints_checked} checkpoints, "
                f"{report.facts_checked} rows reconciled, last seq {report.last_seq}"
            )
        for note in report.notes:
            out.line(f"note: {note}")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


@app.command("checkpoint")
@reports_errors
def audit_checkpoint(
    inventory_path: InventoryOption = None,
    keys_dir: KeysDirOption = DEFAULT_KEY_DIR,
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also write the checkpoint here.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Sign a checkpoint of the audit log's current tail; keep a copy elsewhere."""
    key = load_key(None, None, keys_dir)
    with open_inventory(inventory_path, create=False) as inventory:
        checkpoint = inventory.audit.checkpoint(key, now=datetime.now(timezone.utc))
        warn_witness(inventory)
    if out_file is not None:
        try:
            data = (checkpoint.to_json() + "\n").encode("utf-8")
            write_atomic(out_file, data, mode=PRIVATE_FILE_MODE)
        except OSError as exc:
            fail(f"{out_file}: cannot write checkpoint: {exc.strerror}")
    if as_json:
        print_json(checkpoint.to_dict())
    else:
        out.line(f"checkpoint at seq {checkpoint.seq}: {checkpoint.entry_hash}")


def _load_checkpoint(path: Path) -> Checkpoint:
    from provenance.audit import Checkpoint

    try:
        data = json.loads(read_input(path, max_bytes=64 * 1024 * 1024))
        if isinstance(data, dict) and "audit_checkpoint" in data:
            data = data["audit_checkpoint"]
        return Checkpoint.from_dict(data)
    except ValueError as exc:
        fail(f"{path}: not a checkpoint or export JSON: {exc}")
    except ProvenanceError as exc:
        fail(str(exc.with_path(path)))
