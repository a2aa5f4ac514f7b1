"""An embedded (SQLite) inventory runs its statements from the snapshot, without SQLAlchemy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_SCRIPT = """
import sys
from provenance.inventory import Inventory
from tests.integration.test_inventory import NOW, fake_result

with Inventory(sys.argv[1]) as inv:
    original = fake_result(1)
    inv.record_signing(original, signer="CN=snapshot", now=NOW)
    inv.record_signing(fake_result(2, parent=original), signer="CN=snapshot", now=NOW)
    assert inv.find_by_sha256(original.sha256_hex) is not None
    assert inv.audit.verify().ok
print("sqlalchemy" in sys.modules)
"""


def test_recording_on_sqlite_does_not_import_sqlalchemy(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path / "inventory.sqlite")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=root,
    )
    assert out.stdout.split() == ["False"], out.stderr
