"""Hostile files through verify and sign (library and CLI): a clear error or a
correct non-trusted verdict, in bounded time and memory, with the input unchanged
and nothing left behind.

The corpus is built by :mod:`tests.hostile.corpus` from copies of sample_media.
The library calls run in a child process (:mod:`tests.hostile._worker`) whose
address space is capped and whose every call has a watchdog, so a bomb or a hang
fails this test instead of taking the machine down.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from provenance import Status, TrustPolicy, verify_bytes
from provenance._io.keys import DevKeyPaths, SigningKey
from provenance.errors import ProvenanceError
from tests.conftest import ROOT, SAMPLE_MEDIA
from tests.hostile import corpus
from tests.hostile.corpus import BASES, DETECTED, ERROR, Bases, Case

# Bounds the issue sets: 5 s per call, and memory a small server can spare. The
# worker's own footprint (Python, Pillow, c2pa) is about 100 MB of address space.
SECONDS_PER_CALL = 5
MEMORY_BYTES = 768 * 1024 * 1024
RECORD = SAMPLE_MEDIA / "forest-path.jpg.json"


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "COLUMNS": "200"}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def cases(signing_key: SigningKey, other_key: SigningKey) -> list[Case]:
    return corpus.build(Bases(signing_key, other_key))


@pytest.fixture(scope="module")
def corpus_dir(cases: list[Case], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    for case in cases:
        (folder / case.filename).write_bytes(case.data)
    return folder


@pytest.fixture(scope="module")
def worker_results(
    cases: list[Case],
    corpus_dir: Path,
    dev_keys: DevKeyPaths,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("worker")
    out = work / "out"
    out.mkdir()
    plan = {
        "memory_bytes": MEMORY_BYTES,
        "seconds": SECONDS_PER_CALL,
        "chain": str(dev_keys.chain),
        "key": str(dev_keys.private_key),
        "anchors": str(dev_keys.ca_certificate),
        "record": str(RECORD),
        "out": str(out),
        "files": [{"path": str(corpus_dir / c.filename), "sign": bool(c.sign)} for c in cases],
    }
    (work / "plan.json").write_text(json.dumps(plan), "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tests.hostile._worker", work / "plan.json", work / "results.json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        check=False,
        timeout=SECONDS_PER_CALL * 2 * len(cases) + 60,
    )
    started = [line for line in done.stderr.splitlines() if line.startswith("START ")]
    assert done.returncode == 0, (
        f"worker died on {started[-1] if started else '?'} "
        f"(exit {done.returncode}; over {SECONDS_PER_CALL} s or {MEMORY_BYTES >> 20} MiB?)\n"
        + done.stderr[-4000:]
    )
    results: dict[str, Any] = json.loads((work / "results.json").read_text("utf-8"))
    assert sorted(out.iterdir()) == [], "sign left files behind"
    return results


def _answer(row: dict[str, Any]) -> str:
    return ERROR if row["outcome"] == "error" else str(row["outcome"])


def test_corpus_covers_every_format_and_attack(cases: list[Case]) -> None:
    names = " ".join(c.name for c in cases)
    for attack in (
        "length",
        "crc",
        "riff-size",
        "jumbf",
        "transplanted",
        "untrusted-key",
        "xmp-edited",
        "xxe",
        "billion-laughs",
        "exif-ifd0-next-loops",
        "zlib-bomb",
        "decompression-bomb",
        "dimensions",
        "polyglot",
    ):
        assert attack in names, attack
    assert {c.fmt for c in cases} == set(BASES)


def test_verify_gives_an_error_or_a_verdict_it_should(
    cases: list[Case], corpus_dir: Path, worker_results: dict[str, Any]
) -> None:
    wrong = []
    for case in cases:
        row = worker_results[case.filename]["verify"]
        answer = _answer(row)
        if row["outcome"] == "crash" or answer not in case.verify:
            wrong.append(f"{case.filename}: {answer} {row.get('message', '')[:2000]}")
        elif answer == ERROR and not row["message"].startswith(str(corpus_dir / case.filename)):
            wrong.append(f"{case.filename}: error does not begin with the path: {row['message']}")
    assert not wrong, "\n".join(wrong)


def test_sign_refuses_or_signs_and_leaves_nothing_behind(
    cases: list[Case], worker_results: dict[str, Any]
) -> None:
    wrong = []
    for case in cases:
        if not case.sign:
            continue
        result = worker_results[case.filename]
        answer = _answer(result["sign"])
        if result["sign"]["outcome"] == "crash" or answer not in case.sign:
            wrong.append(f"{case.filename}: {answer} {result['sign'].get('message', '')[:2000]}")
        expected = [case.filename] if answer == "ok" else []
        if result["out_after_sign"] != expected:
            wrong.append(f"{case.filename}: output folder holds {result['out_after_sign']}")
    assert not wrong, "\n".join(wrong)


def test_inputs_are_unchanged(
    cases: list[Case], corpus_dir: Path, worker_results: dict[str, Any]
) -> None:
    assert worker_results  # the worker has read (and tried to sign) every file
    changed = [
        c.filename
        for c in cases
        if hashlib.sha256((corpus_dir / c.filename).read_bytes()).digest()
        != hashlib.sha256(c.data).digest()
    ]
    assert not changed, changed


def test_memory_stays_bounded(worker_results: dict[str, Any]) -> None:
    # ru_maxrss is in KiB on Linux; the cap on address space is the hard bound,
    # this is what was actually resident at the worst moment.
    assert worker_results["__maxrss_kib__"] * 1024 < MEMORY_BYTES


def test_cli_verify_json_over_the_corpus(
    cases: list[Case], corpus_dir: Path, dev_keys: DevKeyPaths, worker_results: dict[str, Any]
) -> None:
    before = {p.name: _digest(p) for p in corpus_dir.iterdir()}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "provenance",
            "verify",
            "--json",
            "--trust-anchors",
            str(dev_keys.ca_certificate),
            str(corpus_dir),
        ],
        capture_output=True,
        text=True,
        env={**_env(), "PROVENANCE_INVENTORY": str(corpus_dir.parent / "none.sqlite")},
        check=False,
        timeout=300,
    )
    assert "Traceback" not in done.stderr
    assert done.returncode == 1  # tampered files are a finding
    rows = {Path(r["path"]).name: r for r in json.loads(done.stdout)}
    assert sorted(rows) == sorted(c.filename for c in cases)
    for case in cases:
        row = rows[case.filename]
        library = _answer(worker_results[case.filename]["verify"])
        assert (ERROR if row["verdict"] == "error" else row["verdict"]) == library, case.filename
        if row["verdict"] == "error":
            assert row["error"].startswith(str(corpus_dir / case.filename))
    assert {p.name: _digest(p) for p in corpus_dir.iterdir()} == before


@pytest.mark.parametrize("fmt", list(BASES), ids=lambda f: f.value)
def test_truncated_signed_files_are_never_trusted(
    fmt: Any, signing_key: SigningKey, other_key: SigningKey, trust: TrustPolicy
) -> None:
    signed = Bases(signing_key, other_key).signed(BASES[fmt])
    assert verify_bytes(signed, trust=trust).status is Status.TRUSTED
    wrong = []
    for offset in corpus.truncations(signed):
        try:
            status = verify_bytes(signed[:offset], trust=trust).status.value
        except ProvenanceError:
            status = ERROR
        if status not in DETECTED:
            wrong.append((offset, status))
    assert not wrong, "\n".join(wrong)
