"""provenance report: inventory, recovery check, timeline; JSON, CSV, HTML (screenshot, axe)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

from provenance.audit import Checkpoint
from provenance.containers import BlockKind, strip
from provenance.inventory import Inventory
from provenance.keys import DevKeyPaths, SigningKey, TrustPolicy
from provenance.report import build_report, load_verdict_rows, make_report, verdict_rows_for
from provenance.sign import sign
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
    """Four signed samples; then one stripped, one tampered, one deleted."""
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
        report = make_report(inventory, rows=rows, now=INCIDENT_AT, key=signing_key, source="shop")
        # The report's checkpoint is in the log and verifies against it.
        assert report.checkpoint is not None and report.checkpoint.is_signed
        assert inventory.audit.verify(against=report.checkpoint, trust=trust).ok
        # A second run logs no finding twice: "first seen" stays the first time.
        later = INCIDENT_AT + timedelta(hours=5)
        again = make_report(inventory, rows=rows, now=later, key=signing_key)
    data = report.to_dict()
    assert data["verdict_counts"] == {"error": 1, "known_stripped": 1, "trusted": 1} | {
        k: 1 for k in data["verdict_counts"] if k in ("tampered", "invalid_signature")
    }
    rec = data["recovery"]
    assert [r["path"] for r in rec["lost_provenance"]] == [str(shop / "forest-path.jpg")]
    assert rec["lost_provenance"][0]["model"] == "stable-diffusion-xl-base"
    assert [r["path"] for r in rec["altered"]] == [str(shop / "moss-close-up.webp")]
    assert [r["model"] for r in rec["missing"]] == ["flux.1-dev"]  # the kite
    assert [r["path"] for r in rec["unchecked"]] == [str(shop / "junk.jpg")]
    assert rec["synthetic_duplicates"] == []
    status = {
        a["model"] + a["created_at"]: a["disclosure_status"] for a in data["synthetic_inventory"]
    }
    assert sorted(status.values()) == ["altered", "marked", "marking_lost", "not_found"]
    assert len(data["synthetic_inventory"]) == 4
    inc = data["incident"]
    assert len(inc["affected_assets"]) == 2
    assert inc["first_seen"].startswith(INCIDENT_AT.strftime("%Y-%m-%dT%H:%M:%S"))
    deadline = INCIDENT_AT + timedelta(hours=72)
    assert inc["gdpr_notification_deadline"] == deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert inc["gdpr_hours_left"] == 72.0
    assert inc["signers"] == [signing_key.subject]
    events = [(t["event"], t["status"]) for t in data["timeline"]]
    assert events.count(("signed", None)) == 2  # the two affected assets, signed
    assert ("verified", "known_stripped") in events
    assert again.incident["first_seen"] == inc["first_seen"]
    assert again.incident["gdpr_hours_left"] == 67.0
    assert data["eu_ai_act_art50"]["copies_marking_lost"] == 1
    json.dumps(data)
    # CSV: one row per asset, finding, timeline event; formulas neutralised.
    rows_csv = list(csv.DictReader(io.StringIO(report.to_csv())))
    sections = {r["section"] for r in rows_csv}
    assert {
        "synthetic_inventory",
        "lost_provenance",
        "altered",
        "missing",
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
    assert unchecked.recovery["missing"] == () and not unchecked.has_findings


def test_load_verdict_rows() -> None:
    assert load_verdict_rows(b'[{"path": "a", "verdict": "trusted"}]')[0]["verdict"] == "trusted"
    assert load_verdict_rows(b'{"rows": [{"path": "a", "status": "x"}]}')[0]["status"] == "x"
    for bad in (b"nope", b'{"a": 1}', b"[1, 2]"):
        with pytest.raises(Exception, match=r"expected|not JSON"):
            load_verdict_rows(bad, name="v.json")


def test_report_command_html_screenshot_and_axe(
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
    done = run_cli(
        "report",
        tmp_path / "verdicts.json",
        "-o",
        out / "r.json",
        "-o",
        out / "r.csv",
        "-o",
        out / "r.html",
        *anchors,
        *keys,
        env=env,
    )
    assert done.returncode == 1, done.stderr  # findings
    assert "1 lost provenance, 1 altered" in done.stdout
    document = json.loads((out / "r.json").read_text("utf-8"))
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
    for external in ('src="http', "href=", "<script", "@import", "url("):
        assert external not in page
    with browser() as b:
        tab = b.new_page(viewport={"width": 1280, "height": 900})
        tab.goto((out / "r.html").as_uri())
        shot = out / "r.png"
        tab.screenshot(path=str(shot), full_page=True)
        violations = axe_violations(tab)
        assert not violations, describe(violations)
        assert tab.locator("svg[role=img]").count() == 2
        assert tab.get_by_role("heading", name="3. Incident timeline").count() == 1
    with Image.open(shot) as img:
        assert img.width == 1280 and img.height > 900
        grey = img.convert("L")
        extrema = grey.getextrema()
        assert extrema[1] - extrema[0] > 200  # text on a background, not a blank page
        assert ImageStat.Stat(grey).stddev[0] > 20
        assert len(img.convert("RGB").getcolors(1 << 24) or []) > 500  # thumbnails, charts


def test_report_command_bad_input(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    env = {"PROVENANCE_INVENTORY": str(tmp_path / "inv.sqlite")}
    Inventory(tmp_path / "inv.sqlite").close()
    (tmp_path / "v.json").write_text("{", encoding="utf-8")
    done = run_cli("report", tmp_path / "v.json", "-o", tmp_path / "r.html", env=env)
    assert done.returncode == 2 and "v.json" in done.stderr
    done = run_cli("report", "-o", tmp_path / "r.pdf", env=env)
    assert done.returncode == 2 and "r.pdf" in done.stderr
    # Inventory only, no keys: an unsigned checkpoint, and exit 0 (no finding).
    done = run_cli("report", "-o", tmp_path / "r.json", "--keys", tmp_path / "nokeys", env=env)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads((tmp_path / "r.json").read_text("utf-8"))
    assert data["audit_checkpoint"]["signature"] is None
    assert data["synthetic_inventory"] == []
