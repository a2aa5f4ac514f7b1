"""provenance report: inventory, recovery check, timeline; JSON, CSV, HTML (screenshot, axe)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from PIL import Image, ImageStat

from provenance._core.containers import BlockKind, strip
from provenance._core.html_page import CONTENT_SECURITY_POLICY
from provenance._core.pii import PiiAction, PiiPolicy
from provenance._core.types import Status
from provenance._io.keys import DevKeyPaths, SigningKey, TrustPolicy, init_dev_keys
from provenance.audit import Checkpoint
from provenance.inventory import Inventory
from provenance.renditions import sign_renditions
from provenance.report import (
    DisclosureStatus,
    Section,
    build_report,
    load_verdict_rows,
    make_report,
    verdict_rows_for,
)
from provenance.sign import SignOptions, sign
from tests.a11y import axe_violations, browser, describe
from tests.conftest import SAMPLE_MEDIA, run_cli, sample_record

NAMES = (
    "forest-path.jpg",
    "moss-close-up.webp",
    "packshot-fire-truck-white.png",
    "kite-blue-sky.jpg",
)
# After the test certificates' notBefore (they are made today), within their validity.
SIGNED_AT = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
INCIDENT_AT = SIGNED_AT + timedelta(days=1, hours=5, minutes=30)


@pytest.fixture
def incident(tmp_path: Path, signing_key: SigningKey) -> tuple[Path, Path]:
    """Four signed samples, two signed renditions of the truck outside the shop folder;
    then one stripped, one tampered, one deleted, and a re-encoded copy of the truck."""
    inv_path = tmp_path / "inv.sqlite"
    shop = tmp_path / "shop"
    shop.mkdir()
    with Inventory(inv_path) as inventory:
        for name in NAMES:
            sign(
                SAMPLE_MEDIA / name,
                shop / name,
                record=sample_record(name),
                key=signing_key,
                inventory=inventory,
                now=SIGNED_AT,
            )
        sign_renditions(
            shop / "packshot-fire-truck-white.png",
            tmp_path / "cache",
            sizes=((240, 240), (120, 120)),
            key=signing_key,
            inventory=inventory,
            now=SIGNED_AT,
        )
    with Image.open(shop / "packshot-fire-truck-white.png") as truck:
        small = truck.convert("RGB")
        small.thumbnail((400, 400))
        small.save(shop / "truck-cdn.jpg", quality=80)
    forest = shop / "forest-path.jpg"
    forest.write_bytes(strip(forest.read_bytes(), frozenset({BlockKind.C2PA, BlockKind.XMP})))
    moss = shop / "moss-close-up.webp"
    data = bytearray(moss.read_bytes())
    data[-60] ^= 0x55
    moss.write_bytes(bytes(data))
    (shop / "kite-blue-sky.jpg").unlink()
    (shop / "junk.jpg").write_bytes(b"not a jpeg")
    return inv_path, shop


def test_make_report_finds_everything(
    incident: tuple[Path, Path], trust: TrustPolicy, signing_key: SigningKey
) -> None:
    inv_path, shop = incident
    with Inventory(inv_path) as inventory:
        rows = verdict_rows_for(shop, trust=trust, inventory=inventory)
        report = make_report(
            inventory, rows=rows, now=INCIDENT_AT, key=signing_key, source="shop", trust=trust
        )
        # The report's checkpoint is in the log and verifies against it.
        assert report.checkpoint is not None and report.checkpoint.is_signed
        assert inventory.audit.verify(against=report.checkpoint, trust=trust).ok
        # A second run logs no finding twice: "first seen" stays the first time.
        later = INCIDENT_AT + timedelta(hours=5)
        again = make_report(inventory, rows=rows, now=later, key=signing_key)
    data = report.to_dict()
    assert data["verdict_counts"] == {
        "error": 1,
        "known_stripped": 1,
        "trusted": 1,
        "synthetic_duplicate": 1,
    } | {k: 1 for k in data["verdict_counts"] if k in ("tampered", "invalid_signature")}
    rec = data["recovery"]
    assert [r["path"] for r in rec["lost_provenance"]] == [str(shop / "forest-path.jpg")]
    assert rec["lost_provenance"][0]["model"] == "stable-diffusion-xl-base"
    assert rec["lost_provenance"][0]["status_label"] == "Provenance stripped (known image)"
    assert [r["path"] for r in rec["altered"]] == [str(shop / "moss-close-up.webp")]
    # The CDN copy of the truck is a copy of a known asset, not an "unknown duplicate".
    assert [r["path"] for r in rec["copies_of_known"]] == [str(shop / "truck-cdn.jpg")]
    assert rec["synthetic_duplicates"] == []
    # Only the kite's original is not seen; the truck's renditions outside the
    # scanned folder are not reported as missing.
    assert [r["model"] for r in rec["not_seen"]] == ["flux.1-dev"]
    assert [r["path"] for r in rec["unchecked"]] == [str(shop / "junk.jpg")]
    counts = data["counts"]
    assert counts["ai_originals"] == 4 and counts["ai_renditions"] == 2
    assert counts["files_checked"] == 5 and counts["not_seen"] == 1
    status = {a["asset_id"]: a["disclosure_label"] for a in data["synthetic_inventory"]}
    assert sorted(status.values()) == [
        "Altered",
        "Marking lost",  # the forest, stripped
        "Marking lost",  # the truck: intact itself, but its CDN copy lost the marking
        "Not seen in this scan",
    ]
    assert len(data["synthetic_inventory"]) == 4
    (truck,) = [a for a in data["synthetic_inventory"] if a["renditions"]]
    assert len(truck["renditions"]) == 2 and all(not r["copies"] for r in truck["renditions"])
    assert [c["status"] for c in truck["copies"]] == ["trusted", "synthetic_duplicate"]
    inc = data["incident"]
    assert len(inc["affected_assets"]) == 3
    assert inc["first_seen"].startswith(INCIDENT_AT.strftime("%Y-%m-%dT%H:%M:%S"))
    assert inc["signers"] == [signing_key.subject]
    # No personal data declared or found: no 72-hour clock, and it says so.
    gdpr = data["gdpr"]
    assert gdpr["applies"] is False and gdpr["incidents"] == []
    assert "No personal data is involved" in gdpr["statement"]
    assert "deadline" not in json.dumps(inc)
    events = [(t["event"], t["status"]) for t in data["timeline"]]
    assert events.count(("signed", None)) == 3  # the three affected assets, signed
    assert ("verified", "known_stripped") in events
    assert again.incident["first_seen"] == inc["first_seen"]
    assert data["eu_ai_act_art50"]["copies_marking_lost"] == 2
    # Scope and method: versions, the anchor's fingerprint, the verified chain.
    scope = data["scope"]
    assert scope["tool"].startswith("provenance ") and scope["c2pa"]
    (anchor,) = scope["trust_anchors"]
    assert (
        anchor["sha256"] == hashlib.sha256(trust.anchors[0].public_bytes(Encoding.DER)).hexdigest()
    )
    assert scope["audit_chain_verified"] is True and scope["roots"] == ["shop"]
    assert data["signers"] == [
        {"subject": signing_key.subject, "assets_signed": 6, "development": False}
    ]
    # Glossary: every Status, with its docstring.
    terms = {g["term"]: g["meaning"] for g in data["glossary"]["verdicts"]}
    assert set(terms) == {s.value for s in Status}
    assert (
        terms["known_stripped"] == Status.KNOWN_STRIPPED.__doc__
        or "essence" in terms["known_stripped"]
    )
    assert all(terms.values())
    assert [n["function"] for n in data["nist_ai_rmf"]] == ["Map", "Measure", "Manage"]
    json.dumps(data)
    # CSV: one row per asset, finding, timeline event; formulas neutralised.
    rows_csv = list(csv.DictReader(io.StringIO(report.to_csv())))
    sections = {r["section"] for r in rows_csv}
    assert {
        "synthetic_inventory",
        "lost_provenance",
        "altered",
        "copies_of_known",
        "not_seen",
        "rendition",
        "timeline",
        "audit_checkpoint",
    } <= sections


def test_build_report_is_pure_and_escapes(tmp_path: Path) -> None:
    rows = [
        {
            "path": '=HYPERLINK("x")<script>',
            "verdict": "synthetic_duplicate",
            "record": {"model": "<b>m</b>", "model_version": "1"},
        }
    ]
    report = build_report([], rows, [], now=INCIDENT_AT)
    assert report.to_dict()["recovery"]["synthetic_duplicates"][0]["model"] == "<b>m</b>"
    assert report.has_findings
    page = report.to_html()
    assert "<script>" not in page and "&lt;b&gt;m&lt;/b&gt;" in page
    assert "'=HYPERLINK" in report.to_csv()
    unchecked = build_report([], None, [], now=INCIDENT_AT)
    assert unchecked.recovery[Section.NOT_SEEN] == () and not unchecked.has_findings
    # Every page we write carries the same Content-Security-Policy.
    assert f'content="{CONTENT_SECURITY_POLICY}"' in page


def test_load_verdict_rows() -> None:
    assert load_verdict_rows(b'[{"path": "a", "verdict": "trusted"}]')[0]["verdict"] == "trusted"
    assert load_verdict_rows(b'{"rows": [{"path": "a", "status": "x"}]}')[0]["status"] == "x"
    ndjson = b'{"path": "a", "verdict": "trusted"}\n{"path": "b", "verdict": "tampered"}\n'
    assert [r["path"] for r in load_verdict_rows(ndjson)] == ["a", "b"]
    assert load_verdict_rows(b'{"path": "a", "status": "error"}\n')[0]["path"] == "a"
    for bad in (b"nope", b'{"a": 1}', b"[1, 2]"):
        with pytest.raises(Exception, match=r"expected|not JSON"):
            load_verdict_rows(bad, name="v.json")


def test_report_command_html_pdf_screenshot_and_axe(
    incident: tuple[Path, Path], tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    inv_path, shop = incident
    env = {"PROVENANCE_INVENTORY": str(inv_path)}
    anchors = ("--trust-anchors", str(dev_keys.ca_certificate))
    keys = ("--keys", str(dev_keys.directory))
    # From verify --json output (what a scan or another machine produced).
    verdicts = run_cli("verify", "--json", shop, *anchors, env=env)
    assert verdicts.returncode == 1, verdicts.stderr
    (tmp_path / "verdicts.json").write_text(verdicts.stdout, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    # A declared personal-data incident starts the 72-hour clock at its awareness time.
    aware = (datetime.now(timezone.utc) - timedelta(hours=10)).replace(microsecond=0)
    opened = run_cli(
        "incident",
        "open",
        "--personal-data",
        "--aware-at",
        aware.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "-d",
        "customer photos exposed through the CDN",
        env=env,
    )
    assert opened.returncode == 0, opened.stderr
    deadline = (aware + timedelta(hours=72)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert deadline in opened.stdout
    done = run_cli(
        "report",
        tmp_path / "verdicts.json",
        "-o",
        out / "r.json",
        "-o",
        out / "r.csv",
        "-o",
        out / "r.html",
        "-o",
        out / "r.pdf",
        *anchors,
        *keys,
        env=env,
    )
    assert done.returncode == 1, done.stderr  # findings
    assert "1 lost provenance, 1 altered, 1 copies of known assets" in done.stdout
    assert "1 originals not seen in this scan" in done.stdout
    assert f"must be notified by {deadline}" in done.stdout
    document = json.loads((out / "r.json").read_text("utf-8"))
    (incident_row,) = document["gdpr"]["incidents"]
    assert incident_row["deadline"] == deadline and 61 <= incident_row["hours_left"] <= 62
    assert document["gdpr"]["applies"] is True
    checkpoint = Checkpoint.from_dict(document["audit_checkpoint"])
    assert checkpoint.is_signed
    assert Checkpoint.from_json((out / "r.csv.checkpoint.json").read_text("utf-8")) == checkpoint
    audit = run_cli("audit", "verify", "--against", out / "r.json", *anchors, env=env)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    # The folder form gives the same findings.
    folder = run_cli("report", shop, "--json", *anchors, *keys, env=env)
    assert json.loads(folder.stdout)["recovery"]["altered"][0]["path"].endswith(
        "moss-close-up.webp"
    )
    page = (out / "r.html").read_text("utf-8")
    assert page.count('src="data:image/jpeg;base64,') == 3  # forest, moss, truck; kite is gone
    for external in ('src="http', 'href="http', "<script", "@import", "url("):
        assert external not in page
    # Human labels, not raw enum values, in the tables.
    assert "<td>not_found</td>" not in page and "<td>Not seen in this scan</td>" in page
    assert "<td>Provenance stripped (known image)</td>" in page
    with browser() as b:
        # axe is injected as a script, which the page's CSP rightly refuses: bypass it here.
        tab = b.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        tab.goto((out / "r.html").as_uri())
        shot = out / "r.png"
        tab.screenshot(path=str(shot), full_page=True)
        violations = axe_violations(tab)
        assert not violations, describe(violations)
        assert tab.locator("svg[role=img]").count() == 2
        assert tab.get_by_role("heading", name="3. Incidents and GDPR").count() == 1
        assert tab.get_by_role("heading", name="Scope and method").count() == 1
        # Every summary number links to the rows it counts.
        for link in tab.locator(".cards a").all():
            target = str(link.get_attribute("href"))
            assert tab.locator(target).count() == 1, target
        # No word is broken inside a cell: only identifiers (.id) may wrap anywhere.
        broken = tab.evaluate(
            """() => [...document.querySelectorAll('td')].filter(td =>
                getComputedStyle(td).overflowWrap !== 'normal'
                || getComputedStyle(td).wordBreak !== 'normal').length"""
        )
        assert broken == 0
    with Image.open(shot) as img:
        assert img.width == 1280 and img.height > 900
        grey = img.convert("L")
        extrema = grey.getextrema()
        assert extrema[1] - extrema[0] > 200  # text on a background, not a blank page
        assert ImageStat.Stat(grey).stddev[0] > 20
        assert len(img.convert("RGB").getcolors(1 << 24) or []) > 500  # thumbnails, charts
    # The PDF: paginated A4 landscape, words whole, the first page rendered by poppler.
    pdf = (out / "r.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    info = subprocess.run(
        ["pdfinfo", str(out / "r.pdf")], capture_output=True, text=True, check=True
    ).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))  # type: ignore[union-attr]
    assert pages >= 3
    width, height = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", info).groups())  # type: ignore[union-attr]
    assert width > height  # landscape
    text = subprocess.run(
        ["pdftotext", "-layout", str(out / "r.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"page 1 of {pages}" in text and f"page {pages} of {pages}" in text
    assert "Scope and method" in text and "Glossary" in text
    assert text.count("trainedAlgorithmicMedia") == text.count("trainedAlgorithmic") >= 3
    for word in ("Altered", "Marking lost", "Provenance stripped", "development"):
        assert word.split()[0] in text
    for number in (1, 2):
        subprocess.run(
            [
                "pdftoppm",
                "-png",
                "-r",
                "60",
                "-f",
                str(number),
                "-l",
                str(number),
                "-singlefile",
                str(out / "r.pdf"),
                str(out / f"p-{number}"),
            ],
            check=True,
        )
    for name in ("p-1.png", "p-2.png"):
        with Image.open(out / name) as png:
            assert png.width > png.height
            grey = png.convert("L")
            assert ImageStat.Stat(grey).stddev[0] > 15  # text and tables, not a blank page
    if os.environ.get("PROVENANCE_KEEP_REPORT"):
        keep = Path(os.environ["PROVENANCE_KEEP_REPORT"])
        keep.mkdir(parents=True, exist_ok=True)
        for name in ("r.pdf", "p-1.png", "p-2.png", "r.png", "r.html"):
            (keep / name).write_bytes((out / name).read_bytes())


def test_development_keys_are_flagged(tmp_path: Path) -> None:
    keys = init_dev_keys(tmp_path / "keys")  # the default organisation: development keys
    inv = tmp_path / "inv.sqlite"
    env = {"PROVENANCE_INVENTORY": str(inv)}
    signed = run_cli(
        "sign",
        SAMPLE_MEDIA / "kite-blue-sky.jpg",
        "--out",
        tmp_path / "shop",
        "--keys",
        keys.directory,
        env=env,
    )
    assert signed.returncode == 0, signed.stderr
    done = run_cli(
        "report",
        tmp_path / "shop",
        "-o",
        tmp_path / "r.html",
        "--trust-anchors",
        keys.ca_certificate,
        "--keys",
        keys.directory,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "development keys signed assets" in done.stderr
    anchors = json.loads(
        run_cli("report", "--json", "--trust-anchors", keys.ca_certificate, env=env).stdout
    )["scope"]["trust_anchors"]
    assert [a["development"] for a in anchors] == [True]
    page = (tmp_path / "r.html").read_text("utf-8")
    assert "Development keys signed assets in this report" in page
    assert "No personal data is involved" in page and "72 hours" not in page
    data = json.loads(run_cli("report", "--json", "--keys", keys.directory, env=env).stdout)
    assert data["development_keys_used"] is True
    assert data["signers"][0]["development"] is True


def test_incident_open_refuses_bad_input(tmp_path: Path) -> None:
    env = {"PROVENANCE_INVENTORY": str(tmp_path / "inv.sqlite")}
    Inventory(tmp_path / "inv.sqlite").close()
    future = (datetime.now(timezone.utc) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for args, problem in (
        (("--aware-at", future, "-d", "x"), "in the future"),
        (("--aware-at", "yesterday", "-d", "x"), "--aware-at yesterday"),
        (("-d", "leak reported by jane.doe@example.com"), "personal data"),
        (("-d", "   "), "description"),
    ):
        done = run_cli("incident", "open", "--personal-data", *args, env=env)
        assert done.returncode == 2 and problem in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    # An incident without personal data is listed, but runs no GDPR clock.
    ok = run_cli("incident", "open", "-d", "tampered hero image reported", env=env)
    assert ok.returncode == 0 and "GDPR" not in ok.stdout
    data = json.loads(run_cli("report", "--json", env=env).stdout)
    assert data["gdpr"]["applies"] is False
    assert [t["event"] for t in data["timeline"]] == ["incident_opened"]


def test_report_command_bad_input(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    env = {"PROVENANCE_INVENTORY": str(tmp_path / "inv.sqlite")}
    Inventory(tmp_path / "inv.sqlite").close()
    (tmp_path / "v.json").write_text("{", encoding="utf-8")
    done = run_cli("report", tmp_path / "v.json", "-o", tmp_path / "r.html", env=env)
    assert done.returncode == 2 and "v.json" in done.stderr
    done = run_cli("report", "-o", tmp_path / "r.docx", env=env)
    assert done.returncode == 2 and "r.docx" in done.stderr
    # --keys naming a folder without keys is an error, not a silently unsigned checkpoint.
    done = run_cli("report", "-o", tmp_path / "r.json", "--keys", tmp_path / "nokeys", env=env)
    assert done.returncode == 2 and "nokeys" in done.stderr
    # Inventory only, no keys: an unsigned checkpoint, and exit 0 (no finding).
    done = run_cli("report", "-o", tmp_path / "r.json", env=env)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads((tmp_path / "r.json").read_text("utf-8"))
    assert data["audit_checkpoint"]["signature"] is None
    assert data["synthetic_inventory"] == []


def test_personal_data_in_a_record_means_gdpr_applies(
    tmp_path: Path, signing_key: SigningKey
) -> None:
    """The PII screen finds an e-mail address in a signed prompt (signed with ALLOW)."""
    record = sample_record("kite-blue-sky.jpg").replace(
        prompt="kite photo for jane.doe@example.com, blue sky"
    )
    with Inventory(tmp_path / "inv.sqlite") as inventory:
        sign(
            SAMPLE_MEDIA / "kite-blue-sky.jpg",
            tmp_path / "kite.jpg",
            record=record,
            key=signing_key,
            inventory=inventory,
            options=SignOptions(pii_policy=PiiPolicy(default=PiiAction.ALLOW)),
            now=SIGNED_AT,
        )
        report = make_report(inventory, rows=None, now=INCIDENT_AT, thumbnails=False)
    gdpr = report.to_dict()["gdpr"]
    assert gdpr["applies"] is True and gdpr["incidents"] == []
    (found,) = gdpr["personal_data_in_records"]
    assert found == {
        "asset_id": report.assets[0]["asset_id"],
        "field": "prompt",
        "kinds": ["email"],
    }
    assert "PII screen found personal data" in gdpr["statement"]
    assert "jane.doe" not in report.to_html() and "jane.doe" not in report.to_csv()
    assert report.assets[0].disclosure is DisclosureStatus.NOT_CHECKED
    assert report.assets[0]["disclosure_status"] == "not_checked"


def test_a_verdict_the_report_does_not_know_is_listed_not_dropped() -> None:
    rows = [
        {"path": "/shop/a.jpg", "verdict": "remote_manifest", "failure_codes": ["x.y"]},
        {"path": "/shop/b.jpg", "verdict": "no_provenance"},
        {"path": "/shop/c.jpg", "verdict": "trusted"},
    ]
    report = build_report([], rows, [], now=INCIDENT_AT)
    (other,) = report.recovery[Section.OTHER]
    assert report.recovery["other"] == (other,) and report.recovery.get("nonsense") is None
    assert other.path == "/shop/a.jpg" and other.status is Status.REMOTE_MANIFEST
    assert other.status_label == "Remote manifest (not fetched)"
    assert other["status_label"] == other.to_dict()["status_label"]  # read by JSON key too
    assert report.counts["other"] == 1 and report.verdict_counts["remote_manifest"] == 1
    page = report.to_html()
    assert 'href="#t-other"' in page and "<td>Remote manifest (not fetched)</td>" in page


def test_keys_lying_in_the_working_folder_sign_only_their_own_log(tmp_path: Path) -> None:
    """``.provenance/keys`` of the folder a command runs from is used only for its own log."""
    ours = init_dev_keys(tmp_path / "ours" / ".provenance" / "keys")
    stranger = init_dev_keys(tmp_path / "stranger" / ".provenance" / "keys")
    env = {"PROVENANCE_INVENTORY": str(tmp_path / "inv.sqlite")}
    signed = run_cli(
        "sign", SAMPLE_MEDIA / "kite-blue-sky.jpg", "--out", tmp_path / "shop",
        "--keys", ours.directory, env=env,
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    # The log has no key yet: the keys of the folder sign the checkpoint and pin the log.
    first = run_cli("report", "-o", tmp_path / "a.json", env=env, cwd=tmp_path / "ours")
    assert first.returncode == 0, first.stderr
    assert json.loads((tmp_path / "a.json").read_text("utf-8"))["audit_checkpoint"]["signature"]
    # Another folder's keys are not this log's: the checkpoint is unsigned, and we say so.
    second = run_cli("report", "-o", tmp_path / "b.json", env=env, cwd=tmp_path / "stranger")
    assert second.returncode == 0, second.stderr
    assert "not this log's key" in second.stderr
    assert (
        json.loads((tmp_path / "b.json").read_text("utf-8"))["audit_checkpoint"]["signature"]
        is None
    )
    # audit verify pins to the log's own first key by default, wherever it runs.
    audit = run_cli("audit", "verify", env=env, cwd=tmp_path / "stranger")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert stranger.directory != ours.directory


def test_report_rows_on_the_batch_path(
    incident: tuple[Path, Path], trust: TrustPolicy, signing_key: SigningKey
) -> None:
    from provenance._core.types import Verdict
    from provenance._io.image_files import image_files
    from provenance.batch import BatchRow, verdict_of
    from provenance.errors import ProvenanceError
    from provenance.scan import scan
    from provenance.verify import verify

    inv_path, shop = incident
    with Inventory(inv_path) as inventory:
        # The serial loop the report ran before: each file verified, errors as error verdicts.
        before = []
        for file in image_files(shop):
            try:
                before.append(verify(file, trust=trust, inventory=inventory).to_dict())
            except ProvenanceError as exc:
                error = Verdict(path=str(file), status=Status.ERROR, error=str(exc))
                before.append(error.to_dict())
        serial = verdict_rows_for(shop, trust=trust, inventory=inventory)
        seen: list[BatchRow[Verdict]] = []
        pooled = verdict_rows_for(
            shop, trust=trust, inventory=inventory, workers=2, on_row=seen.append
        )
        assert serial == before and pooled == before
        assert [row.name for row in seen] == [row["path"] for row in before]
        assert [verdict_of(row).to_dict() for row in seen] == before
        junk = next(row for row in seen if row.name.endswith("junk.jpg"))
        assert junk.result is None and verdict_of(junk).status is Status.ERROR
        assert junk.error is not None and verdict_of(junk).error == junk.error.message
        # A scan's rows, and its JSON read back, are the same rows.
        scanned = scan([shop], trust=trust, inventory=inventory)
        assert load_verdict_rows(scanned.to_json()) == before
        by_rows = make_report(inventory, rows=before, now=INCIDENT_AT, key=signing_key)
        by_scan = make_report(inventory, rows=scanned.rows, now=INCIDENT_AT, key=signing_key)
        by_batch = make_report(inventory, rows=seen, now=INCIDENT_AT, key=signing_key)
    for other in (by_scan, by_batch):
        assert other.verdict_counts == by_rows.verdict_counts
        assert other.to_dict()["recovery"] == by_rows.to_dict()["recovery"]
    assert by_rows.verdict_counts["error"] == 1 and by_rows.verdict_counts["known_stripped"] == 1


def test_report_command_reads_a_scan_and_takes_workers(
    incident: tuple[Path, Path], tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    inv_path, shop = incident
    env = {"PROVENANCE_INVENTORY": str(inv_path)}
    anchors = ("--trust-anchors", str(dev_keys.ca_certificate))
    scanned = run_cli(
        "scan", shop, *anchors, "--workers", "2", "--json-out", tmp_path / "s.json", env=env
    )
    assert scanned.returncode in (1, 2), scanned.stderr  # altered and unreadable files
    # The bar is drawn on stderr (forced on as if on a terminal); stdout stays JSON rows.
    # A console reads FORCE_COLOR when it is made: these run in a fresh process.
    shown = {**env, "FORCE_COLOR": "1"}
    ndjson = run_cli(
        "scan", shop, *anchors, "--ndjson", "--progress", "-w", "2", env=shown, subprocess=True
    )
    assert len([json.loads(line) for line in ndjson.stdout.splitlines()]) == 5  # kite is gone
    assert "scanning" in ndjson.stderr
    verified = run_cli(
        "verify", shop, *anchors, "--ndjson", "--progress", env=shown, subprocess=True
    )
    assert len(verified.stdout.splitlines()) == 5 and "verifying" in verified.stderr
    (tmp_path / "s.ndjson").write_text(ndjson.stdout, encoding="utf-8")
    counts = []
    for source, extra in (
        (shop, ("--workers", "2", "--progress")),
        (tmp_path / "s.json", ()),
        (tmp_path / "s.ndjson", ()),
    ):
        target = tmp_path / f"r{len(counts)}.json"
        done = run_cli(
            "report",
            source,
            "-o",
            target,
            "--no-record",
            *anchors,
            *extra,
            env=shown,
            subprocess=bool(extra),  # the one whose progress bar is checked
        )
        assert done.returncode == 1, done.stderr
        counts.append(json.loads(target.read_text("utf-8"))["verdict_counts"])
        if extra:
            assert "verifying" in done.stderr
    assert counts[0] == counts[1] == counts[2]
    assert counts[0]["error"] == 1 and counts[0]["known_stripped"] == 1
