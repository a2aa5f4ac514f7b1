"""Things named like images that are not (empty files, folders, FIFOs, symlinks), and
file names a shell or a log would trip over, through the library and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from provenance import Status, TrustPolicy, sign, verify
from provenance._io.keys import DevKeyPaths, SigningKey
from provenance.errors import CorruptFile, ProvenanceError
from provenance.renditions import sign_renditions
from tests.conftest import SAMPLE_MEDIA, run_cli, sample_record
from tests.hostile.corpus import _compressed_zeros, _png_with_ihdr

RECORD = SAMPLE_MEDIA / "forest-path.jpg.json"


def _cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd)


@pytest.fixture
def not_images(tmp_path: Path) -> dict[str, Path]:
    """Paths named like images that cannot be read as one; none may block a reader."""
    folder = tmp_path / "in"
    folder.mkdir()
    paths = {
        "empty": folder / "empty.jpg",
        "folder": folder / "folder.png",
        "fifo": folder / "fifo.webp",
        "device": folder / "device.jpg",
        "dangling": folder / "dangling.png",
        "loop": folder / "loop.jpg",
    }
    paths["empty"].write_bytes(b"")
    paths["folder"].mkdir()
    os.mkfifo(paths["fifo"])
    paths["device"].symlink_to("/dev/zero")
    paths["dangling"].symlink_to(folder / "nowhere.png")
    paths["loop"].symlink_to(paths["loop"])
    return paths


def test_library_refuses_each_with_an_error_naming_it(
    not_images: dict[str, Path], signing_key: SigningKey, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for what, path in not_images.items():
        with pytest.raises(ProvenanceError) as caught:
            verify(path)
        assert str(caught.value).startswith(str(path)), what
        with pytest.raises(ProvenanceError) as caught:
            sign(path, out / path.name, record=sample_record("forest-path.jpg"), key=signing_key)
        assert str(caught.value).startswith(str(path)), what
    assert sorted(out.iterdir()) == []
    with pytest.raises(CorruptFile):
        verify(not_images["empty"])


def test_cli_reports_each_and_goes_on(
    not_images: dict[str, Path], dev_keys: DevKeyPaths, tmp_path: Path, media: Callable[[str], Path]
) -> None:
    good = media("forest-path.jpg")
    # A folder argument is walked for images (this one holds none), so it adds no row.
    listed = [str(p) for what, p in not_images.items() if what != "folder"]
    verified = _cli("verify", "--json", *listed, good)
    assert "Traceback" not in verified.stderr
    assert verified.returncode == 2
    rows = json.loads(verified.stdout)
    assert [r["path"] for r in rows] == [*listed, str(good)]
    assert [r["verdict"] for r in rows] == ["error"] * len(listed) + ["no_provenance"]
    assert all(r["error"].startswith(r["path"]) for r in rows[:-1])

    out = tmp_path / "signed"
    signed = _cli(
        "sign", "--json", "--no-inventory", "--keys", dev_keys.directory, "--record", RECORD,
        "--out", out, *listed, good,
    )  # fmt: skip
    assert "Traceback" not in signed.stderr
    assert signed.returncode == 2
    rows = json.loads(signed.stdout)
    assert [("error" in r) for r in rows] == [True] * len(listed) + [False]
    assert sorted(p.name for p in out.iterdir()) == [good.name]


NAMES = {
    "unicode": "ünïcødé 商品画像 🛒.jpg",
    "spaces": "  two  spaces .jpg",
    "newline": "first\nsecond.jpg",
    "leading-dash": "-rf.jpg",
    "bidi": "cod\u202egpj.exe.jpg",
}


@pytest.mark.parametrize("kind", list(NAMES))
def test_awkward_names_sign_and_verify_through_the_cli(
    kind: str, dev_keys: DevKeyPaths, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    name = NAMES[kind]
    original = (SAMPLE_MEDIA / "forest-path.jpg").read_bytes()
    (src / name).write_bytes(original)
    (src / f"{name}.json").write_bytes(RECORD.read_bytes())
    out = tmp_path / "out"
    # "--" ends the options, so a name starting with "-" is a file, not a flag.
    signed = _cli(
        "sign", "--json", "--no-inventory", "--keys", dev_keys.directory, "--out", out,
        "--", name, cwd=src,
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    assert [p.name for p in out.iterdir()] == [name]
    verified = _cli(
        "verify", "--json", "--trust-anchors", dev_keys.ca_certificate, "--", out / name
    )
    assert verified.returncode == 0, verified.stderr
    (row,) = json.loads(verified.stdout)
    assert row["path"] == str(out / name) and row["verdict"] == "trusted"
    assert (src / name).read_bytes() == original
    # A folder argument finds the file by walking, whatever its name.
    walked = _cli("verify", "--json", "--trust-anchors", dev_keys.ca_certificate, out)
    assert [r["verdict"] for r in json.loads(walked.stdout)] == ["trusted"]


def test_leading_dash_without_separator_is_a_usage_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "-rf.jpg").write_bytes((SAMPLE_MEDIA / "forest-path.jpg").read_bytes())
    done = _cli("verify", "-rf.jpg", cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "No such option" in done.stderr


def test_a_newline_in_a_name_cannot_forge_a_second_error_line(
    tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    forged = tmp_path / "x.jpg\nprovenance: error: everything.jpg: trusted"
    forged.write_bytes(b"")
    done = _cli("verify", forged)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.startswith("provenance: error:")]
    assert len(lines) <= 1
    # The text table may wrap the name over several cells; errors go to stderr as one line.
    signed = _cli(
        "sign", "--out", tmp_path / "o", "--record", RECORD, "--no-inventory",
        "--keys", dev_keys.directory, forged,
    )  # fmt: skip
    errors = [line for line in signed.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "\\n" in errors[0], signed.stderr


def test_decompression_bomb_original_is_refused_before_decoding(
    tmp_path: Path, signing_key: SigningKey
) -> None:
    # 10000 x 10000 RGBA: over Pillow's MAX_IMAGE_PIXELS (89.5 MP) but under twice
    # that, where Pillow only warns and would decode 400 MB (twice, with the copy).
    original = tmp_path / "bomb.png"
    original.write_bytes(_png_with_ihdr(10000, 10000, _compressed_zeros(400 << 20)))
    out = tmp_path / "renditions"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # as in production, where warnings do not raise
        with pytest.raises(CorruptFile) as caught:
            sign_renditions(
                original,
                out,
                sizes=[(100, 100)],
                key=signing_key,
                record=sample_record("forest-path.jpg"),
            )
    assert str(caught.value).startswith(str(original))
    assert not out.exists() or sorted(out.iterdir()) == []


def test_symlink_to_a_signed_image_is_verified_as_the_image(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    signed = tmp_path / "signed.jpg"
    sign(media("forest-path.jpg"), signed, record=sample_record("forest-path.jpg"), key=signing_key)
    link = tmp_path / "link.jpg"
    link.symlink_to(signed)
    assert verify(link, trust=trust).status is Status.TRUSTED
    # Signing onto a symlink replaces the link, never writes through it.
    sign(
        media("kite-blue-sky.jpg"), link, record=sample_record("kite-blue-sky.jpg"), key=signing_key
    )
    assert not link.is_symlink()
    assert verify(signed, trust=trust).status is Status.TRUSTED
