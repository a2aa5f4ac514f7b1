"""Issue 19 part 3: what provenance writes is private where it should be, whatever the umask,
and its temporary files cannot be redirected by a planted symlink."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from provenance._io.atomic import write_atomic
from tests.conftest import ROOT, SAMPLE_MEDIA

JPEG = SAMPLE_MEDIA / "forest-path.jpg"
RECORD_FILE = SAMPLE_MEDIA / "forest-path.jpg.json"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cli(*args: str | Path, umask: int, inventory: Path) -> None:
    path = os.pathsep.join([os.environ.get("PYTHONPATH", ""), str(ROOT / "src")])
    done = subprocess.run(
        [sys.executable, "-m", "provenance", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path, "PROVENANCE_INVENTORY": str(inventory)},
        umask=umask,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_private_files_stay_private_under_any_umask(tmp_path: Path, umask: int) -> None:
    keys = tmp_path / "keys"
    inventory = tmp_path / "state" / "inventory.sqlite"
    out = tmp_path / "signed"
    _cli("keys", "init", keys, umask=umask, inventory=inventory)
    _cli(
        *("sign", JPEG, "--out", out, "--keys", keys, "--record", RECORD_FILE),
        umask=umask,
        inventory=inventory,
    )
    _cli(
        "inventory",
        "export",
        tmp_path / "export.json",
        "--keys",
        keys,
        umask=umask,
        inventory=inventory,
    )
    _cli(
        "inventory",
        "export",
        tmp_path / "export.csv",
        "--keys",
        keys,
        umask=umask,
        inventory=inventory,
    )
    _cli(
        *("audit", "checkpoint", "--keys", keys, "--out", tmp_path / "checkpoint.json"),
        umask=umask,
        inventory=inventory,
    )
    # Keys: the folder 0700 (it was 0777 under umask 000), the private key 0600.
    assert _mode(keys) == 0o700
    assert _mode(keys / "signer.key") == 0o600
    assert _mode(keys / "chain.pem") == 0o644
    # The inventory and what is taken out of it (records, prompts, audit facts): 0600.
    assert _mode(inventory) == 0o600
    assert _mode(inventory.parent) == 0o700
    for name in ("export.json", "export.csv", "checkpoint.json"):
        assert _mode(tmp_path / name) == 0o600, name
    # A signed image is meant to be published: 0644.
    assert _mode(out / "forest-path.jpg") == 0o644
    # No temporary file is left behind.
    leftovers = [p for p in tmp_path.rglob(".*.tmp")]
    assert leftovers == []


def test_a_planted_symlink_at_a_temporary_name_is_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    target = tmp_path / "out" / "image.jpg"
    target.parent.mkdir()
    # The names a temporary file used to get (".NAME.PID.tmp") and plausible others.
    for pid in {os.getpid(), *range(1, 64)}:
        (target.parent / f".{target.name}.{pid}.tmp").symlink_to(victim)
    write_atomic(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert victim.read_bytes() == b"precious"
    assert not target.is_symlink()


def test_temporary_files_are_private_until_complete(tmp_path: Path) -> None:
    seen: list[int] = []
    target = tmp_path / "public.jpg"

    def chunks() -> object:
        # While the content is being written, the temporary file is 0600.
        for tmp in tmp_path.glob(".public.jpg.*.tmp"):
            seen.append(_mode(tmp))
        yield b"data"

    from provenance._io.atomic import write_atomic_chunks

    old = os.umask(0)
    try:
        write_atomic_chunks(target, chunks(), mode=0o644)  # type: ignore[arg-type]
    finally:
        os.umask(old)
    assert seen == [0o600]
    assert _mode(target) == 0o644


def test_a_symlink_under_the_final_name_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    target = tmp_path / "out.jpg"
    target.symlink_to(victim)
    write_atomic(target, b"new")
    assert not target.is_symlink() and target.read_bytes() == b"new"
    assert victim.read_bytes() == b"precious"
