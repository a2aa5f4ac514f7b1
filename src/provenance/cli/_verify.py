"""``provenance verify``: a verdict per file, offline, against explicit trust anchors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provenance.batch import warm_up
from provenance.cli._common import closing, find_existing, trust_policy, verdict_row
from provenance.cli._options import (
    InventoryOption,
    JsonOption,
    NdjsonOption,
    ProgressOption,
    TrustAnchorsOption,
    WorkersOption,
)
from provenance.cli._output import fail, json_rows, out, progress_bar, reports_errors, table, warn

if TYPE_CHECKING:
    from provenance._core.types import Status, Verdict


# Over 60 lines: typer reads the options from the signature; the body is short.
@reports_errors
def verify_command(
    paths: Annotated[list[Path], typer.Argument(help="Images or folders of images.")],
    trust_anchors: TrustAnchorsOption = None,
    inventory_path: InventoryOption = None,
    require: Annotated[
        str | None,
        typer.Option(
            "--require",
            help="Exit 1 unless every file is this: trusted, or valid_untrusted "
            "(which trusted also meets).",
        ),
    ] = None,
    accept: Annotated[
        str | None,
        typer.Option(
            "--accept",
            help="With --require: statuses that also count, comma-separated "
            "(e.g. known_stripped,synthetic_duplicate).",
        ),
    ] = None,
    workers: WorkersOption = 1,
    progress: ProgressOption = None,
    as_json: JsonOption = False,
    ndjson: NdjsonOption = False,
    no_partial: Annotated[
        bool,
        typer.Option(
            "--no-partial",
            help="Skip the partial-copy search (an asset inside a screenshot or banner, "
            "rotated or cropped off-centre); the perceptual hash still runs.",
        ),
    ] = False,
) -> None:
    """Verify images offline and print a verdict per file.

    With an inventory (--inventory, $PROVENANCE_INVENTORY, or found from this
    folder up: see docs/cli.md), a copy whose provenance was stripped is
    recognised as known_stripped, and a known asset found in or as an altered copy
    (a screenshot, a banner, a rotation, a crop) as synthetic_duplicate; without one,
    a warning says so.

    Without --trust-anchors a good signature is valid_untrusted, never trusted.
    Exit status: 0 nothing failed, 1 something is tampered, invalid_signature,
    invalid_manifest or invalid_identity (or, with --require, some file does not
    meet it), 2 unreadable input or no image at all.

    \b
    Examples:
      provenance verify signed/ --trust-anchors .provenance/keys/ca.pem
      provenance verify --json upload.webp
      provenance verify cdn/ --trust-anchors ca.pem --require trusted --accept known_stripped
    """
    requirement, accepted = _requirement(require, accept)
    warm_up(workers, signing=False)  # workers forked now (decision 1), or a fork server booting
    # Imported after warm_up: forked workers share them, a fork server imports beside us.
    from provenance._core.verdicts import exit_code, meets
    from provenance.batch import verdict_of, verify_many
    from provenance.cli._files import expand

    policy = trust_policy(trust_anchors)
    expanded, notes = expand(paths)
    files = [file for file, _ in expanded]
    inventory, warning = find_existing(inventory_path)
    warn(warning)
    inventory_name = inventory.location if inventory is not None else None
    with closing(inventory):
        verdicts: list[Verdict] = []
        statuses: list[Status] = []
        with (
            progress_bar(progress, "verifying", len(files)) as advance,
            json_rows(as_json, ndjson) as emit,
        ):
            for row in verify_many(
                files, trust=policy, inventory=inventory, workers=workers, partial=not no_partial
            ):
                verdict = verdict_of(row)
                statuses.append(verdict.status)
                if as_json or ndjson:
                    done = verdict_row(verdict.to_dict(), inventory_name, warning)
                    done["warnings"].extend(notes)
                    if requirement is not None:
                        done["meets_requirement"] = meets(verdict.status, requirement, accepted)
                    emit(done)  # streamed: flat memory over any number of files
                else:
                    verdicts.append(verdict)
                advance()
    if not (as_json or ndjson):
        _print_verdicts(verdicts)
    raise typer.Exit(exit_code(statuses, requirement=requirement, accept=accepted))


def _requirement(
    require: str | None, accept: str | None
) -> tuple[Status | None, frozenset[Status]]:
    """Parse --require and --accept (see provenance._core.verdicts.meets)."""
    if require is None:
        if accept is not None:
            fail("--accept only makes sense with --require")
        return None, frozenset()
    from provenance._core.types import Status
    from provenance._core.verdicts import meets

    names = [n.strip() for n in (accept or "").split(",") if n.strip()]
    try:
        required = Status(require.strip())
        accepted = frozenset(Status(n) for n in names)
        meets(Status.TRUSTED, required, accepted)  # validates the combination
    except ValueError as exc:
        known = ", ".join(s.value for s in Status)
        fail(f"--require/--accept: {exc} (statuses: {known})")
    return required, accepted


def _print_verdicts(verdicts: Sequence[Verdict]) -> None:
    shown = table("file", "verdict", "asset id", "model", "signer", "codes", title="verification")
    for v in verdicts:
        model = f"{v.record.model} {v.record.model_version}" if v.record else ""
        codes = v.error or ", ".join(v.failure_codes)
        shown.add_row(v.path, v.status.value, v.asset_id or "", model, v.signer or "", codes)
    out.print(shown)
