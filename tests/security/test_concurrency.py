"""Several processes signing and verifying against one inventory at once: no lost
rows, and no "database is locked" reaching the user."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from provenance import Inventory, SigningKey, Status, TrustPolicy, sign, verify
from provenance._io.keys import DevKeyPaths
from provenance.errors import ProvenanceError
from tests.conftest import ROOT, SAMPLE_MEDIA, SAMPLES, sample_record

WORKERS = 4


def _sign_and_verify(
    keys: tuple[str, str, str], inventory: str, out: str, start_at: float
) -> list[str]:
    """Sign and verify every sample into ``out``, then verify what every worker wrote."""
    key = SigningKey.from_pem_files(keys[0], keys[1])
    trust = TrustPolicy.from_pem(keys[2])
    problems: list[str] = []
    while time.time() < start_at:  # start together, to collide
        time.sleep(0.001)
    folder = Path(out)

    def check(path: Path, inv: Inventory) -> None:
        try:
            verdict = verify(path, trust=trust, inventory=inv)
            inv.record_verification(verdict, now=datetime.now(timezone.utc))
        except ProvenanceError as exc:
            problems.append(f"verify {path}: {exc}")
        else:
            if verdict.status is not Status.TRUSTED:
                problems.append(f"verify {path}: {verdict.status.value}")

    with Inventory(inventory) as inv:
        for name in SAMPLES:
            try:
                sign(
                    SAMPLE_MEDIA / name,
                    folder / name,
                    record=sample_record(name),
                    key=key,
                    inventory=inv,
                )
            except ProvenanceError as exc:
                problems.append(f"sign {name}: {exc}")
            check(folder / name, inv)
        # Then every output of every worker so far (others may still be writing).
        for other in sorted(folder.parent.glob("*/*")):
            if not other.name.startswith("."):  # skip others' temporary files
                check(other, inv)
    return problems


def test_four_processes_sign_and_verify_one_inventory(
    dev_keys: DevKeyPaths, tmp_path: Path
) -> None:
    inventory = tmp_path / "shared.sqlite"
    Inventory(inventory).close()
    outs = [tmp_path / "out" / f"w{i}" for i in range(WORKERS)]
    for out in outs:
        out.mkdir(parents=True)
    keys = (str(dev_keys.chain), str(dev_keys.private_key), str(dev_keys.ca_certificate))
    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS) as pool:
        start_at = time.time() + 2.0
        problems = pool.starmap(
            _sign_and_verify, [(keys, str(inventory), str(out), start_at) for out in outs]
        )
    assert problems == [[]] * WORKERS
    with Inventory(inventory) as inv:
        stats = inv.stats()
        # The same sample signed by four workers is one asset with four files.
        assert stats.assets == len(SAMPLES)
        assert stats.files == WORKERS * len(SAMPLES)
        report = inv.audit.verify()
        assert report.ok, report.problems
        signed = [e for e in inv.audit.entries() if e.payload.get("signer")]
        assert len(signed) == WORKERS * len(SAMPLES)
    for out in outs:
        assert sorted(p.name for p in out.iterdir()) == SAMPLES


def test_four_cli_signers_at_once_all_succeed(dev_keys: DevKeyPaths, tmp_path: Path) -> None:
    inventory = tmp_path / "shared.sqlite"
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "PROVENANCE_INVENTORY": str(inventory)}
    runs = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "provenance", "sign", "--json"),
                *("--keys", str(dev_keys.directory), "--out", str(tmp_path / f"out{i}")),
                str(SAMPLE_MEDIA),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(WORKERS)
    ]
    results = [run.communicate(timeout=300) for run in runs]
    for run, (stdout, stderr) in zip(runs, results, strict=True):
        assert run.returncode == 0, stderr
        assert "locked" not in stderr and "Traceback" not in stderr
        assert all("error" not in row for row in json.loads(stdout))
    with Inventory(inventory) as inv:
        assert inv.stats().files == WORKERS * len(SAMPLES)
        assert inv.audit.verify().ok
