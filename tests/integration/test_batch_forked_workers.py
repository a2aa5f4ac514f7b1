"""Issue 20: a batch's workers forked from the calling process by ``warm_up``.

Each case runs in a fresh interpreter (real processes, real files): whether a
process may fork depends on everything it did before, which pytest's own
process cannot vouch for (its threads, its open capture files).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from provenance._io.keys import DevKeyPaths
from tests.conftest import SAMPLE_MEDIA, fresh_python

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="workers fork from the caller on Linux only"
)

SOURCES = ("forest-path.jpg", "fallen-maple-leaf.jpg", "kite-blue-sky.jpg")


def _python(code: str, *args: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object last."""
    done = fresh_python(code, *args)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def _sources(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in SOURCES:
        (folder / name).write_bytes((SAMPLE_MEDIA / name).read_bytes())
        (folder / f"{name}.json").write_bytes((SAMPLE_MEDIA / f"{name}.json").read_bytes())
    return folder


BATCH = """
import json, os, sys
from pathlib import Path
import multiprocessing.forkserver
import provenance.batch
from provenance.batch import _standby

provenance.batch.warm_up(2)  # first: the workers fork from this process now
import gc

frozen = gc.get_freeze_count()  # frozen for the fork only: this process collects as before
# Forked before this process imported the signing side (c2pa, the verbs): the
# workers import it themselves (issue 20).
signing_side = [m for m in ("c2pa", "provenance.sign", "provenance.verify") if m in sys.modules]
import provenance._io.c2pa as c2pa_io

forked = _standby.waiting()
context_at_fork = c2pa_io.context_built()  # nothing ran since the fork
pids = [p.pid for p in multiprocessing.active_children()]

from provenance import Inventory, SigningKey, TrustPolicy, verify
from provenance.batch import sign_many, verify_many

folder, keys, out = (Path(arg) for arg in sys.argv[1:4])
key = SigningKey.from_pem_files(keys / "chain.pem", keys / "signer.key")
paths = sorted(folder.glob("*.jpg"))
rows = {}
for workers in (2, 1):
    with Inventory(out / f"inventory-{workers}.sqlite") as inventory:
        signed = sign_many(paths, out / str(workers), key=key, inventory=inventory, workers=workers)
        rows[workers] = [(r.index, r.name, r.status.value, r.error) for r in signed]
        assert context_at_fork is False
        if workers == 2:
            used = _standby.waiting() == 0
            server = multiprocessing.forkserver._forkserver._forkserver_pid
trust = TrustPolicy.from_pem(keys / "ca.pem")
verdicts = {
    workers: [verify(out / str(workers) / p.name, trust=trust).status.value for p in paths]
    for workers in (2, 1)
}
# A second batch in this process: its workers come from the fork server.
again = verify_many(sorted((out / "2").glob("*.jpg")), trust=trust, workers=2)
checked = [r.result.status.value for r in again]
print(json.dumps({
    "forked": forked, "children": pids, "context_at_fork": context_at_fork, "frozen": frozen,
    "signing_side": signing_side,
    "used": used, "server": server, "rows": rows, "verdicts": verdicts,
    "checked": checked,
}))
"""


def test_workers_forked_by_warm_up_sign_as_one_worker_does(
    tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    found = _python(BATCH, str(_sources(tmp_path)), str(dev_keys.directory), str(tmp_path))
    # Two workers forked from the caller before it built any c2pa Context ...
    assert found["forked"] == 2
    assert found["frozen"] == 0
    assert len(found["children"]) == 2  # type: ignore[arg-type]
    assert found["context_at_fork"] is False
    assert found["signing_side"] == []
    # ... were the batch's workers: no fork server was started.
    assert found["used"] is True
    assert found["server"] is None
    # The same rows as in this process, and every signed copy verifies.
    rows = found["rows"]
    assert rows["2"] == rows["1"]  # type: ignore[index]
    assert [row[2] for row in rows["2"]] == ["ok"] * len(SOURCES)  # type: ignore[index]
    verdicts = found["verdicts"]
    assert verdicts["2"] == verdicts["1"] == ["trusted"] * len(SOURCES)  # type: ignore[index]
    assert found["checked"] == ["trusted"] * len(SOURCES)


AFTER_CONTEXT = """
import json, sys, threading
from pathlib import Path
import multiprocessing.forkserver
from provenance import SigningKey, TrustPolicy, verify
from provenance.batch import _standby, sign_many, warm_up
from provenance.errors import WorkerPoolError

folder, keys, out = (Path(arg) for arg in sys.argv[1:4])
before = _standby.fork_refusal()
verify(folder / "forest-path.jpg", trust=TrustPolicy.from_pem(keys / "ca.pem"))
after = _standby.fork_refusal()
try:
    _standby.fork_workers(2)
    refused = None
except WorkerPoolError as exc:
    refused = str(exc)
warm_up(2)  # no workers forked now: the fork server instead
waiting = _standby.waiting()
key = SigningKey.from_pem_files(keys / "chain.pem", keys / "signer.key")
rows = [r.status.value for r in sign_many(sorted(folder.glob("*.jpg")), out, key=key, workers=2)]
server = multiprocessing.forkserver._forkserver._forkserver_pid is not None
print(json.dumps({
    "before": before, "after": after, "refused": refused, "waiting": waiting,
    "rows": rows, "server": server,
}))
"""


def test_no_worker_is_forked_from_a_process_that_built_a_c2pa_context(
    tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    found = _python(
        AFTER_CONTEXT, str(_sources(tmp_path)), str(dev_keys.directory), str(tmp_path / "out")
    )
    assert found["before"] is None
    assert "c2pa Context" in str(found["after"])
    assert str(found["refused"]).startswith("cannot fork the batch's workers from this process")
    assert "c2pa Context" in str(found["refused"])
    # warm_up took the fork server's way instead, and the batch ran on it.
    assert found["waiting"] == 0
    assert found["server"] is True
    assert found["rows"] == ["ok"] * len(SOURCES)


REFUSALS = """
import json, sys, threading
from pathlib import Path
from provenance.batch import _standby

found = {}
stop = threading.Event()
thread = threading.Thread(target=stop.wait)
thread.start()
found["thread"] = _standby.fork_refusal()
stop.set()
thread.join()
from provenance import Inventory
with Inventory(Path(sys.argv[1])) as inventory:
    found["inventory"] = _standby.fork_refusal()
found["after"] = _standby.fork_refusal()
print(json.dumps(found))
"""


def test_a_running_thread_or_an_open_inventory_refuses_the_fork(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.sqlite"
    found = _python(REFUSALS, str(inventory))
    assert "1 thread(s) besides the main one" in str(found["thread"])
    assert str(inventory) in str(found["inventory"])
    assert found["after"] is None


SIGNERS = """
import json, multiprocessing, os, sys
from pathlib import Path
import provenance.batch

provenance.batch.warm_up(2)
forked = sorted(p.pid for p in multiprocessing.active_children())
from provenance import SigningKey
from provenance.batch import SignItem, sign_many
from tests._batch_helpers import PidLoggingSigner

source, chain, private_key, out, log = (Path(arg) for arg in sys.argv[1:6])
signer = PidLoggingSigner(private_key.read_bytes(), log)
key = SigningKey.from_callback(signer, chain.read_bytes())
items = [SignItem(source, name=f"{i:03d}.jpg") for i in range(48)]
rows = [r.status.value for r in sign_many(items, out, key=key, workers=2, chunk_size=4)]
signers = sorted({int(pid) for pid in log.read_text().split()})
print(json.dumps({"me": os.getpid(), "forked": forked, "signers": signers, "rows": rows}))
"""


def test_the_forked_workers_do_the_signing_from_the_first_item(
    tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    """Ready at once, they leave the caller nothing to sign while they start."""
    source = _sources(tmp_path) / "forest-path.jpg"
    found = _python(
        SIGNERS,
        *map(str, (source, dev_keys.chain, dev_keys.private_key, tmp_path / "out")),
        str(tmp_path / "signers.log"),
    )
    assert found["rows"] == ["ok"] * 48
    assert found["me"] not in found["signers"]  # type: ignore[operator]
    assert set(found["signers"]) <= set(found["forked"])  # type: ignore[arg-type]
    assert len(found["forked"]) == 2  # type: ignore[arg-type]


def test_a_process_that_chose_spawn_is_not_forked() -> None:
    found = _python(
        """
        import json, multiprocessing
        from provenance.batch import _standby
        multiprocessing.set_start_method("spawn")
        print(json.dumps({"refusal": _standby.fork_refusal()}))
        """
    )
    assert "'spawn' start method" in str(found["refusal"])


CLI = """
import json, sys
from provenance.batch import _standby

forks = []
shared = []
fork_workers = _standby.fork_workers


def spy(count, **options):
    forks.append([m for m in ("c2pa", "provenance.sign", "provenance.verify") if m in sys.modules])
    shared.append("numpy" in sys.modules)
    fork_workers(count, **options)


_standby.fork_workers = spy  # warm_up looks it up on the module when it forks
from provenance.cli import main

code = main(sys.argv[1:])
caller = [m for m in ("c2pa", "provenance.sign", "provenance.verify") if m in sys.modules]
found = {"code": code, "forks": forks, "shared": shared, "caller": caller}
print(json.dumps(found), file=sys.stderr)
"""


def _cli(*args: str) -> tuple[dict[str, object], list[dict[str, object]]]:
    done = fresh_python(CLI, *args, "--json")
    assert "Traceback" not in done.stderr, done.stderr
    found: dict[str, object] = json.loads(done.stderr.strip().splitlines()[-1])
    return found, json.loads(done.stdout)


def test_the_command_line_forks_before_it_imports_the_signing_side_and_never_imports_it(
    tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    """``sign|verify --workers 2`` (issue 20): the workers import c2pa and the verbs
    themselves; the command's process never does, and the rows are one worker's.
    numpy, which a signing command's process needs as much as its workers (to
    record perceptual hashes), is imported once before the fork; a verifying
    command's process does not import it."""
    source = _sources(tmp_path)
    keys = ("--keys", str(dev_keys.directory))
    rows: dict[str, dict[str, list[object]]] = {"sign": {}, "verify": {}}
    for workers in ("2", "1"):
        out, inventory = tmp_path / f"out-{workers}", tmp_path / f"inv-{workers}.sqlite"
        signing = ("sign", str(source), "--out", str(out), *keys, "--inventory", str(inventory))
        verifying = ("verify", str(out), "--trust-anchors", str(dev_keys.ca_certificate))
        for verb, args in (
            ("sign", signing),
            ("verify", (*verifying, "--inventory", str(inventory))),
        ):
            found, printed = _cli(*args, "--workers", workers)
            assert found["code"] == 0, found
            if workers == "2":
                assert found["forks"] == [[]], found  # forked, before the signing side
                assert found["caller"] == [], found  # which this process never imported
                assert found["shared"] == [verb == "sign"], found
            else:
                assert found["forks"] == [], found  # one worker: no pool, no fork
            rows[verb][workers] = [
                (Path(str(row.get("path") or row.get("file"))).name, row["status"])
                for row in printed
            ]
    assert sorted(name for name, _ in rows["sign"]["2"]) == sorted(SOURCES)
    assert rows["sign"]["2"] == rows["sign"]["1"]
    assert [status for _, status in rows["sign"]["2"]] == ["ok"] * len(SOURCES)
    assert rows["verify"]["2"] == rows["verify"]["1"]
    assert [status for _, status in rows["verify"]["2"]] == ["trusted"] * len(SOURCES)


BROKEN_SIGNING_SIDE = """
import importlib.abc, json, sys
from pathlib import Path


class Broken(importlib.abc.MetaPathFinder):
    # Only the forked workers import the per-file work: it fails there alone.
    def find_spec(self, name, path, target=None):
        if name == "provenance.batch._work":
            raise ImportError("the signing side is broken in this test")
        return None


sys.meta_path.insert(0, Broken())
import provenance.batch

provenance.batch.warm_up(2)
from provenance import SigningKey
from provenance.batch import _standby, sign_many
from provenance.errors import WorkerPoolError

folder, keys, out = (Path(arg) for arg in sys.argv[1:4])
key = SigningKey.from_pem_files(keys / "chain.pem", keys / "signer.key")
forked = _standby.waiting()
try:
    rows = list(sign_many(sorted(folder.glob("*.jpg")), out, key=key, workers=2))
    error = None
except WorkerPoolError as exc:
    error = str(exc)
caller = "provenance.batch._work" in sys.modules
print(json.dumps({"forked": forked, "error": error, "caller": caller}))
"""


def test_a_forked_worker_that_cannot_import_the_signing_side_fails_the_batch_with_one_error(
    tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    found = _python(
        BROKEN_SIGNING_SIDE,
        str(_sources(tmp_path)),
        str(dev_keys.directory),
        str(tmp_path / "out"),
    )
    assert found["forked"] == 2
    assert found["caller"] is False  # the calling process never needed it
    assert str(found["error"]).startswith("a worker process could not start: ImportError")
    assert "the signing side is broken in this test" in str(found["error"])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
