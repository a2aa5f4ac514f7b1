"""``provenance report``, ``feed-check`` and ``incident open``: compliance output.

The report reads the incidents ``incident open`` declares (its GDPR clock);
``feed-check`` reports on a shopping feed's images.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provenance._io.atomic import PRIVATE_FILE_MODE, write_atomic
from provenance._io.reading import read_input
from provenance.batch import warm_up
from provenance.cli._common import (
    checkpoint_key,
    closing,
    existing_inventory,
    open_inventory,
    trust_policy,
)
from provenance.cli._options import (
    InventoryOption,
    JsonOption,
    ProgressOption,
    TrustAnchorsOption,
    WorkersOption,
)
from provenance.cli._output import (
    EXIT_FAILED,
    EXIT_OK,
    err,
    fail,
    one_line,
    out,
    print_json,
    progress_bar,
    reports_errors,
)
from provenance.errors import ProvenanceError

if TYPE_CHECKING:
    from provenance.report import ComplianceReport

_REPORT_SUFFIXES = (".json", ".csv", ".html", ".htm", ".pdf")

incident_app = typer.Typer(
    help="Declare incidents in the audit log (the report's GDPR clock reads them).",
    no_args_is_help=True,
)


# Over 60 lines: typer reads the options from the signature; the body is short.
@reports_errors
def report_command(
    source: Annotated[
        Path | None,
        typer.Argument(help="A folder to verify, or verify --json / scan JSON output."),
    ] = None,
    out_files: Annotated[
        list[Path] | None,
        typer.Option(
            "--out", "-o", help="Report file(s): .json, .csv, .html or .pdf (repeatable)."
        ),
    ] = None,
    trust_anchors: TrustAnchorsOption = None,
    inventory_path: InventoryOption = None,
    keys_dir: Annotated[
        Path | None,
        typer.Option(
            "--keys",
            help="Sign the report's audit checkpoint with these keys "
            "(default: .provenance/keys when it holds the log's key).",
        ),
    ] = None,
    no_record: Annotated[
        bool, typer.Option("--no-record", help="Do not log findings in the audit log.")
    ] = False,
    workers: WorkersOption = 1,
    progress: ProgressOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compliance report: scope, inventory, recovery check, incidents, obligations, glossary.

    The PDF is the HTML page printed by headless Chromium (set
    $PROVENANCE_CHROMIUM if it is not on PATH). The GDPR 72-hour clock shows
    only for incidents declared with 'provenance incident open --personal-data'.
    Exit status: 0 no finding, 1 copies lost provenance, were altered or
    copied without it, or the audit log failed verification, 2 unreadable input.

    \b
    Examples:
      provenance report storefront-media/ --out report.pdf --out report.json
      provenance verify --json cdn-copies/ > verdicts.json
      provenance report verdicts.json -o report.csv
    """
    targets = list(out_files or [])
    for target in targets:
        if target.suffix.lower() not in _REPORT_SUFFIXES:
            fail(f"{target}: a report file ends in .json, .csv, .html or .pdf")
    if source is not None and source.is_dir():
        warm_up(workers, signing=False)  # workers forked now (decision 1), or a fork server
    # Imported after warm_up: forked workers share them, a fork server imports beside us.
    from provenance._io.image_files import image_files
    from provenance.report import load_verdict_rows, make_report, verdict_rows_for

    policy = trust_policy(trust_anchors)
    now = datetime.now(timezone.utc)
    with open_inventory(inventory_path, create=False) as inventory:
        key = checkpoint_key(keys_dir, inventory)
        if source is None:
            rows = None
        elif source.is_dir():
            # Listed once more for the bar's total: cheap next to verifying.
            total = sum(1 for _ in image_files(source))
            with progress_bar(progress, "verifying", total) as advance:
                rows = verdict_rows_for(
                    source,
                    trust=policy,
                    inventory=inventory,
                    workers=workers,
                    on_row=lambda _row: advance(),
                )
        else:
            rows = load_verdict_rows(read_input(source), name=str(source))
        report = make_report(
            inventory,
            rows=rows,
            now=now,
            key=key,
            source=None if source is None else str(source),
            record_findings=not no_record,
            trust=policy,
        )
    for target in targets:
        _write_report(report, target)
    if as_json or not targets:
        print_json(report.to_dict())
    else:
        _print_report_summary(report, targets)
    if report.scope.audit_verified is False:
        # The log was altered: the report says so, carries no new checkpoint, and
        # the command fails like 'audit verify' does (exit 1).
        problems = "; ".join(report.scope.audit_problems[:3]) or "no detail"
        err.line(
            f"provenance: error: the audit log failed verification, so the report has no "
            f"checkpoint and nothing was logged: {one_line(problems)} "
            "(run 'provenance audit verify' for every problem)"
        )
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_FAILED if report.has_findings else EXIT_OK)


def _write_report(report: ComplianceReport, target: Path) -> None:
    """Write the report in the format ``target``'s suffix names (and a CSV's checkpoint)."""
    kind = target.suffix.lower().lstrip(".")
    if kind == "pdf":
        from provenance._io.pdf import html_to_pdf

        data = html_to_pdf(report.to_html(), name=str(target))
    else:
        text = (
            report.to_json()
            if kind == "json"
            else report.to_csv()
            if kind == "csv"
            else report.to_html()
        )
        data = text.encode("utf-8")
    try:
        write_atomic(target, data, mode=PRIVATE_FILE_MODE)
        if kind == "csv" and report.checkpoint is not None:
            sidecar = target.with_name(target.name + ".checkpoint.json")
            write_atomic(
                sidecar,
                (report.checkpoint.to_json() + "\n").encode("utf-8"),
                mode=PRIVATE_FILE_MODE,
            )
    except OSError as exc:
        fail(f"{target}: cannot write the report: {exc.strerror}")


def _print_report_summary(report: ComplianceReport, targets: list[Path]) -> None:
    c = report.counts
    out.line(
        f"wrote {', '.join(map(str, targets))}: {c['ai_originals']} AI-generated originals "
        f"({c['ai_renditions']} renditions); {c['lost_provenance']} lost provenance, "
        f"{c['altered']} altered, {c['copies_of_known']} copies of known assets, "
        f"{c['synthetic_duplicates']} of unknown assets, "
        f"{c['not_seen']} originals not seen in this scan"
    )
    if report.development_keys_used:
        err.line("provenance: warning: development keys signed assets in this report")
    for inc in report.gdpr.get("incidents", ()):
        out.line(
            f"GDPR Art. 33: incident {inc['seq']} must be notified by "
            f"{inc['deadline']} ({inc['hours_left']} hours left)"
        )


# Over 60 lines: typer reads the options from the signature; the body is short.
@reports_errors
def feed_check_command(
    feed: Annotated[
        Path,
        typer.Argument(help="Google feed (RSS/Atom XML, TSV/CSV) or Magento product export CSV."),
    ],
    media_root: Annotated[
        Path,
        typer.Option("--media-root", help="Folder the image URLs are served from (pub/media)."),
    ],
    base_url: Annotated[
        str,
        typer.Option(
            "--base-url", help="URL prefix that maps to --media-root, e.g. https://shop/media/."
        ),
    ],
    html_out: Annotated[
        Path | None, typer.Option("--html", help="Also write an HTML page here.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json-out", help="Also write the JSON report here.")
    ] = None,
    trust_anchors: TrustAnchorsOption = None,
    inventory_path: InventoryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check that a shopping feed's AI-generated images keep IPTC DigitalSourceType.

    Google Merchant Center requires AI-generated product images to carry IPTC
    DigitalSourceType (trainedAlgorithmicMedia); a re-encoded storefront copy
    loses it. Each image URL is mapped to the file under --media-root and
    checked; each image that needs action says what to run.
    Exit status: 0 ready, 1 some AI images lost their label or could not be
    checked, 2 unreadable feed or bad options (for CI).

    \b
    Examples:
      provenance feed-check feed.xml --media-root pub/media \\
        --base-url https://shop.example/media/ --html feed-check.html
      provenance feed-check export.csv --media-root pub/media --base-url https://shop.example/media/
    """
    from provenance.feed import check_feed, summary_lines

    policy = trust_policy(trust_anchors)
    with closing(existing_inventory(inventory_path)) as inventory:
        if inventory is None:
            err.line(
                "provenance: warning: no inventory: an image that lost all its metadata "
                "cannot be recognised as AI-generated (give --inventory or set "
                "PROVENANCE_INVENTORY)"
            )
        report = check_feed(
            feed, media_root=media_root, base_url=base_url, trust=policy, inventory=inventory
        )
    for target, text in ((html_out, report.to_html()), (json_out, report.to_json())):
        if target is not None:
            try:
                write_atomic(target, text.encode("utf-8"))
            except OSError as exc:
                fail(f"{target}: cannot write: {exc.strerror}")
    if as_json:
        print_json(report.to_dict())
    else:
        for line in summary_lines(report):
            out.line(line)
        counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in report.counts.items())
        out.line(
            f"{feed}: {report.products} products, {len(report.images)} images: {counts}; "
            + ("ready" if report.ok else "NOT ready")
        )
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


@incident_app.command("open")
@reports_errors
def incident_open(
    description: Annotated[
        str, typer.Option("--description", "-d", help="One sentence, without personal data.")
    ],
    aware_at: Annotated[
        str | None,
        typer.Option(
            "--aware-at",
            help="When you became aware of it, RFC 3339 (e.g. 2026-03-02T09:30:00Z); default: now.",
        ),
    ] = None,
    personal_data: Annotated[
        bool,
        typer.Option(
            "--personal-data/--no-personal-data",
            help="Personal data is involved: GDPR Art. 33's 72-hour clock runs from --aware-at.",
        ),
    ] = False,
    asset: Annotated[
        list[str] | None, typer.Option("--asset", help="An asset id concerned (repeatable).")
    ] = None,
    inventory_path: InventoryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record an incident (with its awareness time) in the hash-chained audit log.

    \b
    Examples:
      provenance incident open --personal-data --aware-at 2026-03-02T09:30:00Z \\
        -d "customer photos exposed through the CDN"
      provenance incident open -d "tampered hero image reported by a customer"
    """
    from provenance._core.record import format_time, parse_time
    from provenance.report import GDPR_NOTIFICATION_HOURS, open_incident

    now = datetime.now(timezone.utc)
    try:
        aware = parse_time(aware_at) if aware_at else now
    except ProvenanceError:
        fail(f"--aware-at {aware_at}: not an RFC 3339 time with a zone, e.g. 2026-03-02T09:30:00Z")
    with open_inventory(inventory_path, create=False) as inventory:
        entry = open_incident(
            inventory,
            aware_at=aware,
            description=description,
            personal_data=personal_data,
            asset_ids=tuple(asset or ()),
            now=now,
        )
    if as_json:
        print_json(entry.to_dict())
        return
    out.line(f"incident recorded as audit entry {entry.seq}")
    if personal_data:
        deadline = format_time(aware + timedelta(hours=GDPR_NOTIFICATION_HOURS))
        out.line(f"GDPR Art. 33: notify the supervisory authority by {deadline}")
