"""Storefront disclosure markup in headless Chromium: zero axe-core violations.

The markup from ``render_html`` for real signed samples (trusted, stripped,
tampered, no provenance), and the shipped Magento (.phtml, run by PHP) and
Shopify (Liquid, run by python-liquid) snippets rendered with sample values.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import liquid
import pytest

from provenance._core.containers import BlockKind, strip
from provenance._core.disclosure import disclosure_for, render_html
from provenance._io.keys import SigningKey, TrustPolicy
from provenance.inventory import Inventory
from provenance.sign import sign
from provenance.verify import verify
from tests.a11y import axe_violations, browser, describe, page_for
from tests.conftest import sample_record

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "provenance" / "templates"

PHP_HARNESS = r"""<?php
// The two objects a Magento 2 template receives, reduced to what ours calls.
final class Escaper {
    public function escapeHtml($s) {
        return htmlspecialchars((string) $s, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
    }
    public function escapeHtmlAttr($s) { return $this->escapeHtml($s); }
    public function escapeUrl($s) {
        return $this->escapeHtml(preg_replace('/^\s*javascript:/i', '', (string) $s));
    }
}
final class Block {
    public function __construct(private array $data) {}
    public function getData($key) { return $this->data[$key] ?? null; }
}
$escaper = new Escaper();
$block = new Block(json_decode(file_get_contents($argv[1]), true, 64, JSON_THROW_ON_ERROR));
include $argv[2];
"""


@pytest.fixture
def verdict_markup(
    media: Callable[[str], Path], tmp_path: Path, signing_key: SigningKey, trust: TrustPolicy
) -> list[str]:
    """Figures for a trusted, a stripped, a tampered and an unsigned sample."""
    inventory = Inventory(tmp_path / "inv.sqlite")
    figures: list[str] = []
    for name in ("forest-path.jpg", "lake-at-dusk.webp", "packshot-fire-truck-white.png"):
        src = media(name)
        out = tmp_path / f"signed-{name}"
        sign(src, out, record=sample_record(name), key=signing_key, inventory=inventory)
        figures.append(_figure(verify(out, trust=trust, inventory=inventory), name))
    stripped = tmp_path / "stripped.jpg"
    stripped.write_bytes(
        strip(
            (tmp_path / "signed-forest-path.jpg").read_bytes(),
            frozenset({BlockKind.XMP, BlockKind.C2PA}),
        )
    )
    figures.append(_figure(verify(stripped, trust=trust, inventory=inventory), "stripped.jpg"))
    tampered = tmp_path / "tampered.png"
    data = bytearray((tmp_path / "signed-packshot-fire-truck-white.png").read_bytes())
    data[-20] ^= 0xFF  # inside the last IDAT/IEND region: the image data changed
    tampered.write_bytes(bytes(data))
    figures.append(_figure(verify(tampered, trust=trust, inventory=inventory), "tampered.png"))
    figures.append(_figure(verify(media("kite-blue-sky.jpg"), trust=trust), "kite-blue-sky.jpg"))
    inventory.close()
    statuses = [re.search(r'data-provenance="([a-z_]+)"', f).group(1) for f in figures]  # type: ignore[union-attr]
    assert statuses[:4] == ["trusted", "trusted", "trusted", "known_stripped"]
    assert statuses[4] in ("tampered", "invalid_signature")
    assert statuses[5] == "no_provenance"
    return figures


def _figure(verdict: Any, name: str) -> str:
    return render_html(
        disclosure_for(verdict),
        src=f"/media/{name}",
        alt=f"Product photo {name}",
        width=400,
        height=300,
    )


def test_render_html_has_no_axe_violations(verdict_markup: list[str]) -> None:
    with browser() as b:
        page = b.new_page()
        page.set_content(page_for("".join(verdict_markup)))
        violations = axe_violations(page)
        assert not violations, describe(violations)
        # The description is in the accessibility tree: it is what the image's
        # accessible description resolves to.
        described = page.evaluate(
            "() => [...document.querySelectorAll('img[aria-describedby]')].map("
            "i => document.getElementById(i.getAttribute('aria-describedby')).textContent)"
        )
        assert described[0] == "AI-generated image, made with stable-diffusion-xl-base 1.0."
        # ... yet invisible: one pixel, clipped.
        box = page.locator(".provenance-disclosure__description").first.bounding_box()
        assert box is not None and box["width"] <= 1 and box["height"] <= 1


def _sample_disclosure() -> dict[str, Any]:
    data = disclosure_for(sample_record("forest-path.jpg")).to_dict()
    data["description"] = 'AI-generated image, made with "SDXL" <base> & co 1.0.'
    return data


def test_magento_phtml_renders_escaped_and_accessible(tmp_path: Path) -> None:
    php = shutil.which("php")
    assert php, "PHP is missing: apt-get install -y php-cli (.ci/run does this)"
    harness = tmp_path / "harness.php"
    harness.write_text(PHP_HARNESS, encoding="utf-8")
    figures = []
    for key, disclosure in (
        ("a", _sample_disclosure()),
        ("b", {"synthetic": None, "provenance": "no_provenance", "key": "b"}),
    ):
        data = {
            "image_url": f"/media/catalog/product/f/p/{key}.jpg",
            "image_alt": 'Trail "path" <forest>',
            "image_width": 400,
            "image_height": 300,
            "provenance": {**disclosure, "key": key},
        }
        values = tmp_path / f"{key}.json"
        values.write_text(json.dumps(data), encoding="utf-8")
        done = subprocess.run(
            [php, str(harness), str(values), str(TEMPLATES / "magento" / "disclosure.phtml")],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr + done.stdout
        figures.append(done.stdout)
    assert "<base>" not in figures[0] and "&lt;base&gt;" in figures[0]
    assert 'data-provenance="signed"' in figures[0] and "aria-describedby" not in figures[1]
    _assert_accessible(figures, expect_description="&")


def test_shopify_liquid_renders_escaped_and_accessible() -> None:
    env = liquid.Environment()
    # Shopify's own filters, as Shopify defines them for these inputs.
    env.filters["image_url"] = lambda image, width=None: f"{image['src']}?width={width}"
    env.filters["handleize"] = lambda text: re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")
    template = env.from_string(
        (TEMPLATES / "shopify" / "provenance-disclosure.liquid").read_text("utf-8")
    )
    image = {
        "src": "//cdn.shop/files/path.jpg",
        "alt": 'Trail "path" <forest>',
        "width": 800,
        "height": 500,
    }
    figures = [
        template.render(image=image, disclosure={**_sample_disclosure(), "key": "K1"}, width=600),
        template.render(image=image, disclosure={"provenance": "no_provenance"}, width=600),
    ]
    assert "<base>" not in figures[0] and 'data-synthetic="true"' in figures[0]
    assert 'data-synthetic="unknown"' in figures[1] and "aria-describedby" not in figures[1]
    _assert_accessible(figures, expect_description="&")


def _assert_accessible(figures: list[str], *, expect_description: str) -> None:
    with browser() as b:
        page = b.new_page()
        page.set_content(page_for("".join(figures)))
        violations = axe_violations(page)
        assert not violations, describe(violations)
        attrs = page.evaluate(
            "() => [...document.querySelectorAll('figure')].map(f => ({...f.dataset}))"
        )
        assert attrs[0]["synthetic"] == "true"
        assert attrs[0]["syntheticSource"].endswith("/trainedAlgorithmicMedia")
        text = page.evaluate(
            "() => { const i = document.querySelector('img[aria-describedby]');"
            " return document.getElementById(i.getAttribute('aria-describedby')).textContent; }"
        )
        assert expect_description in text and "<base>" in text
