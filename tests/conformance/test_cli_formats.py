"""The command line over a folder holding every format: found, signed, verified."""

from __future__ import annotations

import json
from pathlib import Path

from provenance._core.containers import ImageFormat
from provenance._io.keys import DevKeyPaths
from tests._formats import ALL_FORMATS, sample
from tests.conftest import SAMPLE_MEDIA, run_cli


def test_sign_and_verify_a_folder_of_every_format(dev_keys: DevKeyPaths, tmp_path: Path) -> None:
    folder = tmp_path / "dam-upload"
    folder.mkdir()
    names = {fmt: f"image-{fmt.value}.{fmt.extension}" for fmt in ALL_FORMATS}
    names[ImageFormat.HEIC] = "IMG_0001.HEIC"  # as phones name them
    for fmt, name in names.items():
        (folder / name).write_bytes(sample(fmt))
    out = tmp_path / "signed"
    record = SAMPLE_MEDIA / "forest-path.jpg.json"
    signed = run_cli(
        "sign", folder, "--out", out, "--record", record, "--keys", dev_keys.directory, "--json"
    )
    assert signed.returncode == 0, signed.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(names.values())
    verified = run_cli("verify", out, "--trust-anchors", dev_keys.ca_certificate, "--json")
    assert verified.returncode == 0, verified.stderr
    verdicts = {Path(v["path"]).name: v["verdict"] for v in json.loads(verified.stdout)}
    assert verdicts == dict.fromkeys(names.values(), "trusted")
