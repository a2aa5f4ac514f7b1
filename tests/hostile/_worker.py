"""Run verify and sign over hostile files in a process with bounded memory and time.

Usage: python -m tests.hostile._worker PLAN.json RESULTS.json

The plan names the files, the key files and the limits. Address space is capped
with ``RLIMIT_AS`` before anything is read; each file gets ``faulthandler``'s
watchdog, which kills the process (with a traceback on stderr) if one call takes
longer than the limit, even inside native code. The parent then sees the process
die and reads the name of the file it was on from stderr.
"""

from __future__ import annotations

import faulthandler
import json
import resource
import sys
import traceback
from pathlib import Path
from typing import Any


def _snapshot(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def main(plan_path: str, results_path: str) -> int:
    plan = json.loads(Path(plan_path).read_text("utf-8"))
    limit = int(plan["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    seconds = float(plan["seconds"])

    from provenance._core.record import ProvenanceRecord
    from provenance._io.keys import SigningKey, TrustPolicy
    from provenance.errors import ProvenanceError
    from provenance.sign import sign
    from provenance.verify import verify

    key = SigningKey.from_pem_files(plan["chain"], plan["key"])
    trust = TrustPolicy.from_pem(plan["anchors"])
    record = ProvenanceRecord.from_json(Path(plan["record"]).read_bytes())
    out = Path(plan["out"])
    results: dict[str, Any] = {}

    def attempt(call: Any) -> dict[str, Any]:
        try:
            value = call()
        except ProvenanceError as exc:
            return {"outcome": "error", "type": type(exc).__name__, "message": str(exc)}
        except BaseException as exc:  # the finding: anything but our error
            return {
                "outcome": "crash",
                "type": type(exc).__name__,
                "message": "".join(traceback.format_exception(exc))[-3000:],
            }
        return {"outcome": value}

    for item in plan["files"]:
        path = Path(item["path"])
        print(f"START {path.name}", file=sys.stderr, flush=True)
        faulthandler.dump_traceback_later(seconds, exit=True)
        row: dict[str, Any] = {
            "verify": attempt(lambda: verify(path, trust=trust).status.value)  # noqa: B023
        }
        if item["sign"]:
            before = set(_snapshot(out))
            target = out / path.name
            row["sign"] = attempt(
                lambda: (sign(path, target, record=record, key=key), "ok")[1]  # noqa: B023
            )
            row["out_after_sign"] = sorted(set(_snapshot(out)) - before)
            if target.exists():
                target.unlink()
        faulthandler.cancel_dump_traceback_later()
        results[path.name] = row
    results["__maxrss_kib__"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(results_path).write_text(json.dumps(results), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
