"""provenance disclosure and provenance serve on the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from provenance._io.keys import DevKeyPaths
from tests.conftest import SAMPLE_MEDIA, run_cli


def test_disclosure_command(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    env = {"PROVENANCE_INVENTORY": str(tmp_path / "inv.sqlite")}
    keys = ("--keys", str(dev_keys.directory))
    done = run_cli("sign", SAMPLE_MEDIA / "moss-close-up.webp", "--out", tmp_path, *keys, env=env)
    assert done.returncode == 0, done.stderr
    signed = tmp_path / "moss-close-up.webp"
    anchors = ("--trust-anchors", str(dev_keys.ca_certificate))
    html = run_cli("disclosure", signed, "--alt", "Moss <close>", *anchors, env=env)
    assert html.returncode == 0, html.stderr
    assert html.stdout.startswith('<figure class="provenance-disclosure" data-synthetic="true"')
    assert 'data-provenance="trusted"' in html.stdout and "Moss &lt;close&gt;" in html.stdout
    data = json.loads(run_cli("disclosure", signed, "--format", "json", *anchors, env=env).stdout)
    assert data["provenance"] == "trusted" and data["html"].startswith("<figure")
    record = run_cli("disclosure", SAMPLE_MEDIA / "moss-close-up.webp.json", "--json", env=env)
    assert json.loads(record.stdout)["provenance"] == "signed"
    assert 'src="moss-close-up.webp"' in json.loads(record.stdout)["html"]
    magento = run_cli("disclosure", "--template", "magento", env=env)
    assert magento.returncode == 0 and "$escaper->escapeHtml" in magento.stdout
    assert "| escape" in run_cli("disclosure", "--template", "shopify", env=env).stdout
    bad = run_cli("disclosure", tmp_path / "missing.jpg", env=env)
    assert bad.returncode == 2 and "missing.jpg" in bad.stderr


def test_serve_command(tmp_path: Path, dev_keys: DevKeyPaths) -> None:
    env = {"PROVENANCE_INVENTORY": str(tmp_path / "none.sqlite")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provenance",
            "serve",
            "--port",
            "0",
            "--json",
            "--trust-anchors",
            str(dev_keys.ca_certificate),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    try:
        assert proc.stdout is not None
        lines = []
        while not lines or lines[-1] != "}\n":
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            lines.append(line)
        urls = json.loads("".join(lines))
        assert urls["url"].startswith("http://127.0.0.1:")
        with urllib.request.urlopen(urls["healthz"], timeout=30) as response:  # noqa: S310 - loopback
            assert json.loads(response.read())["status"] == "ok"
        body = (SAMPLE_MEDIA / "kite-blue-sky.jpg").read_bytes()
        req = urllib.request.Request(urls["verify"] + "?filename=kite.jpg", data=body)  # noqa: S310 - loopback
        with urllib.request.urlopen(req, timeout=60) as response:  # noqa: S310 - loopback
            assert json.loads(response.read())["verdict"] == "no_provenance"
    finally:
        proc.terminate()
        proc.communicate(timeout=30)  # also closes the pipes
