"""Crash safety (issue 9): SIGKILL a signing batch of 1,000 files, restart it, check.

The batch is the real CLI (``provenance sign DIR --out OUT --workers 2``) in its
own process group; the whole group (the CLI, its forkserver and its workers) is
killed with SIGKILL at seeded random moments, as a power cut or the OOM killer
would, then the same command is run again until it finishes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provenance._core.hashing import sha256_hex
from provenance._core.types import Status
from provenance._io.keys import DevKeyPaths, TrustPolicy
from provenance.batch import RowStatus, verify_many
from provenance.inventory import Inventory
from tests.conftest import SAMPLE_MEDIA
from tests.integration.test_batch import small_images

FILES = 1000
KILLS = 3


def _outputs(folder: Path) -> int:
    try:
        return sum(1 for p in folder.iterdir() if not p.name.startswith("."))
    except FileNotFoundError:
        return 0


def start(args: list[str | Path]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "provenance", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: we kill all of it
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


@pytest.mark.slow
def test_sigkill_mid_batch_then_resume(
    tmp_path: Path, dev_keys: DevKeyPaths, trust: TrustPolicy
) -> None:
    inputs = small_images(tmp_path / "in", FILES)
    before = {p: sha256_hex(p.read_bytes()) for p in inputs}
    out = tmp_path / "out"
    db = tmp_path / "inventory.sqlite"
    command: list[str | Path] = [
        "sign",
        tmp_path / "in",
        "--out",
        out,
        "--keys",
        dev_keys.directory,
        "--record",
        SAMPLE_MEDIA / "forest-path.jpg.json",
        "--inventory",
        db,
        "--workers",
        "2",
        "--no-progress",
    ]
    # Kill moments: after a seeded random number of outputs (so the test does not
    # depend on the machine's speed), plus a seeded random few milliseconds.
    rng = random.Random(9)  # noqa: S311 - test schedule, not cryptography
    targets = sorted(rng.sample(range(50, 850), KILLS))
    killed_mid_batch = 0
    for target in targets:
        proc = start(command)
        while proc.poll() is None and _outputs(out) < target:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            killed_mid_batch += 1
        proc.wait(timeout=60)
        assert proc.stderr is not None
        proc.stderr.close()
    assert killed_mid_batch == KILLS

    # After the kills, before the restart:
    # 1. no original modified;
    assert {p: sha256_hex(p.read_bytes()) for p in inputs} == before
    # 2. nothing partial under a final name: every visible output verifies;
    #    temporary files are dot-prefixed and can be cleaned away;
    visible = sorted(p for p in out.iterdir() if not p.name.startswith("."))
    temporary = [p for p in out.iterdir() if p.name.startswith(".")]
    assert all(p.name.endswith(".tmp") for p in temporary)
    assert 0 < len(visible) < FILES
    rows = list(verify_many(visible, trust=trust, workers=2))
    assert [r.result.status for r in rows if r.result is not None] == [Status.TRUSTED] * len(
        visible
    )
    for p in temporary:
        p.unlink()
    # 3. every inventory row matches a complete output file; the audit chain verifies.
    with Inventory(db, create=False, read_only=True) as inventory:
        recorded = {f.path: f.sha256_hex for a in inventory.assets() for f in a.files}
        assert inventory.audit.verify().ok
    assert recorded
    for path, sha in recorded.items():
        assert path is not None and sha256_hex(Path(path).read_bytes()) == sha

    # 4. The resumed batch finishes the rest, skipping what was recorded.
    done = subprocess.run(
        [sys.executable, "-m", "provenance", *map(str, command), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    statuses = [row["status"] for row in json.loads(done.stdout)]
    assert len(statuses) == FILES
    assert statuses.count(RowStatus.SKIPPED.value) == len(recorded)
    assert statuses.count(RowStatus.OK.value) == FILES - len(recorded)
    assert {p: sha256_hex(p.read_bytes()) for p in inputs} == before
    finals = sorted(out.iterdir())
    assert [p.name for p in finals] == sorted(p.name for p in inputs)
    with Inventory(db, create=False, read_only=True) as inventory:
        recorded = {f.path: f.sha256_hex for a in inventory.assets() for f in a.files}
        assert inventory.audit.verify().ok
    assert len(recorded) == FILES
    for path, sha in recorded.items():
        assert path is not None and sha256_hex(Path(path).read_bytes()) == sha
