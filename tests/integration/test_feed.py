"""provenance feed-check: Google RSS/Atom/TSV feeds and Magento CSV over real served files."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from provenance._core.containers import BlockKind, strip
from provenance._io.keys import DevKeyPaths, SigningKey, TrustPolicy
from provenance.errors import ProvenanceError
from provenance.feed import FeedFormat, ImageState, check_feed, read_feed
from provenance.inventory import Inventory
from provenance.sign import sign
from tests.a11y import axe_violations, browser, describe
from tests.conftest import SAMPLE_MEDIA, run_cli, sample_record

BASE = "https://shop.example/media/"
CACHE = "catalog/product/cache/0f3e5a7c9b1d2f4e6a8c0b2d4f6e8a0c"


def _resize(original: Path, target: Path) -> None:
    """What Magento's GD2 adapter does: decode, resize, save without metadata."""
    with Image.open(original) as im:
        copy = im.convert("RGB")
    copy.thumbnail((300, 300))
    target.parent.mkdir(parents=True, exist_ok=True)
    copy.save(target, "JPEG", quality=80)


@pytest.fixture
def shop(tmp_path: Path, signing_key: SigningKey) -> tuple[Path, Path]:
    """pub/media with signed, stripped, re-encoded, tampered and photo images."""
    media = tmp_path / "pub" / "media"
    product = media / "catalog" / "product"
    inv = tmp_path / "inv.sqlite"
    with Inventory(inv) as inventory:
        for rel, name in (
            ("k/i/kite-blue-sky.jpg", "kite-blue-sky.jpg"),
            ("f/o/forest-path.jpg", "forest-path.jpg"),
            ("m/o/moss-close-up.webp", "moss-close-up.webp"),
            ("l/a/lake-at-dusk.webp", "lake-at-dusk.webp"),
        ):
            target = product / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            sign(
                SAMPLE_MEDIA / name,
                target,
                record=sample_record(name),
                key=signing_key,
                inventory=inventory,
            )
    # The storefront rendition of the kite: re-encoded, no metadata at all.
    _resize(product / "k/i/kite-blue-sky.jpg", media / CACHE / "k/i/kite-blue-sky.jpg")
    # The forest, stripped by a CDN (exiftool -all= style: XMP and C2PA gone).
    forest = product / "f/o/forest-path.jpg"
    forest.write_bytes(strip(forest.read_bytes(), frozenset({BlockKind.C2PA, BlockKind.XMP})))
    # The lake keeps its XMP but lost the C2PA manifest.
    lake = product / "l/a/lake-at-dusk.webp"
    lake.write_bytes(strip(lake.read_bytes(), frozenset({BlockKind.C2PA})))
    # The moss was edited after signing.
    moss = product / "m/o/moss-close-up.webp"
    data = bytearray(moss.read_bytes())
    data[-60] ^= 0x55
    moss.write_bytes(bytes(data))
    # A product photo, not AI-generated.
    photo = product / "r/o/rowing-boats-sunset.jpg"
    photo.parent.mkdir(parents=True)
    shutil.copyfile(SAMPLE_MEDIA / "rowing-boats-sunset.jpg", photo)
    return media, inv


PRODUCTS = (
    (
        "KITE-1",
        "Kite & string",
        f"{BASE}{CACHE}/k/i/kite-blue-sky.jpg",
        [f"{BASE}catalog/product/k/i/kite-blue-sky.jpg"],
    ),
    ("FOREST-1", "Forest poster", f"{BASE}catalog/product/f/o/forest-path.jpg", []),
    ("MOSS-1", "Moss print", f"{BASE}catalog/product/m/o/moss-close-up.webp", []),
    ("LAKE-1", "Lake print", f"{BASE}catalog/product/l/a/lake-at-dusk.webp", []),
    (
        "BOAT-1",
        "Rowing boat",
        f"{BASE}catalog/product/r/o/rowing-boats-sunset.jpg",
        ["https://cdn.other.example/x.jpg", f"{BASE}catalog/product/g/o/gone.jpg"],
    ),
)


def rss() -> str:
    items = "".join(
        f"<item><g:id>{pid}</g:id><title>{title.replace('&', '&amp;')}</title>"
        f"<g:image_link>{main}</g:image_link>"
        + "".join(f"<g:additional_image_link>{u}</g:additional_image_link>" for u in extra)
        + "</item>"
        for pid, title, main, extra in PRODUCTS
    )
    return (
        '<?xml version="1.0"?><rss version="2.0" xmlns:g="http://base.google.com/ns/1.0">'
        f"<channel><title>shop</title>{items}</channel></rss>"
    )


def atom() -> str:
    entries = "".join(
        f"<entry><g:id>{pid}</g:id><title>{title.replace('&', '&amp;')}</title>"
        f"<g:image_link>{main}</g:image_link>"
        + "".join(f"<g:additional_image_link>{u}</g:additional_image_link>" for u in extra)
        + "</entry>"
        for pid, title, main, extra in PRODUCTS
    )
    return (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" '
        f'xmlns:g="http://base.google.com/ns/1.0"><title>shop</title>{entries}</feed>'
    )


def tsv() -> str:
    lines = ["id\ttitle\timage_link\tadditional_image_link"]
    lines += [f"{p}\t{t}\t{m}\t{','.join(e)}" for p, t, m, e in PRODUCTS]
    return "\n".join(lines) + "\n"


EXPECTED = {
    ("KITE-1", "image_link"): ImageState.MISSING_DIGITAL_SOURCE_TYPE,
    ("KITE-1", "additional_image_link"): ImageState.READY,
    ("FOREST-1", "image_link"): ImageState.MISSING_DIGITAL_SOURCE_TYPE,
    ("MOSS-1", "image_link"): ImageState.ALTERED,
    ("LAKE-1", "image_link"): ImageState.READY_WITHOUT_MANIFEST,
    ("BOAT-1", "image_link"): ImageState.NOT_AI,
}


@pytest.mark.parametrize(
    ("name", "text", "fmt"),
    [
        ("feed.xml", rss, FeedFormat.GOOGLE_RSS),
        ("feed.atom", atom, FeedFormat.GOOGLE_ATOM),
        ("feed.tsv", tsv, FeedFormat.GOOGLE_TEXT),
    ],
)
def test_google_feeds(
    shop: tuple[Path, Path],
    trust: TrustPolicy,
    tmp_path: Path,
    name: str,
    text: object,
    fmt: FeedFormat,
) -> None:
    media, inv = shop
    feed = tmp_path / name
    feed.write_text(text(), encoding="utf-8")  # type: ignore[operator]
    with Inventory(inv, create=False, read_only=True) as inventory:
        report = check_feed(feed, media_root=media, base_url=BASE, trust=trust, inventory=inventory)
    assert report.format is fmt and report.products == 5 and not report.ok
    states = {
        (i.product_id, i.role): i.state
        for i in report.images
        if i.product_id != "BOAT-1" or i.role == "image_link"
    }
    assert states == EXPECTED
    by_url = {i.url: i for i in report.images}
    kite = by_url[f"{BASE}{CACHE}/k/i/kite-blue-sky.jpg"]
    assert kite.ai_generated is True and kite.ai_evidence == "inventory"
    assert kite.verdict == "synthetic_duplicate" and kite.digital_source_type is None
    assert kite.fix == f"provenance magento sign-cache {media}"
    forest = by_url[f"{BASE}catalog/product/f/o/forest-path.jpg"]
    assert forest.verdict == "known_stripped" and forest.fix and "--in-place" in forest.fix
    signed = by_url[f"{BASE}catalog/product/k/i/kite-blue-sky.jpg"]
    assert signed.digital_source_type == "trainedAlgorithmicMedia" and signed.verdict == "trusted"
    lake = by_url[f"{BASE}catalog/product/l/a/lake-at-dusk.webp"]
    assert lake.digital_source_type and lake.ai_evidence == "signed_xmp"
    assert by_url["https://cdn.other.example/x.jpg"].state is ImageState.NOT_LOCAL
    assert by_url[f"{BASE}catalog/product/g/o/gone.jpg"].state is ImageState.MISSING_FILE
    assert next(i for i in report.images if i.product_id == "KITE-1").title == "Kite & string"


def test_cli_feed_check_fix_and_pass(
    shop: tuple[Path, Path], tmp_path: Path, dev_keys: DevKeyPaths
) -> None:
    """CI: the feed fails, sign-cache fixes the storefront rendition, the feed passes."""
    media, inv = shop
    env = {"PROVENANCE_INVENTORY": str(inv)}
    anchors = ("--trust-anchors", str(dev_keys.ca_certificate))
    feed = tmp_path / "feed.xml"
    only_kite = [p for p in PRODUCTS if p[0] == "KITE-1"]
    feed.write_text(
        '<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel>'
        + "".join(
            f"<item><g:id>{p}</g:id><g:title>{html.escape(t)}</g:title>"
            f"<g:image_link>{m}</g:image_link></item>"
            for p, t, m, _ in only_kite
        )
        + "</channel></rss>",
        encoding="utf-8",
    )
    args = ("feed-check", feed, "--media-root", media, "--base-url", BASE, *anchors)
    first = run_cli(*args, "--html", tmp_path / "feed.html", env=env)
    assert first.returncode == 1, first.stderr
    assert f"fix: provenance magento sign-cache {media}" in first.stdout
    assert "NOT ready" in first.stdout
    fixed = run_cli("magento", "sign-cache", media, "--keys", dev_keys.directory, env=env)
    assert fixed.returncode == 0, fixed.stderr
    second = run_cli(*args, "--json", env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    (image,) = json.loads(second.stdout)["images"]
    assert (
        image["state"] == "ready" and image["iptc_digital_source_type"] == "trainedAlgorithmicMedia"
    )
    page = (tmp_path / "feed.html").read_text("utf-8")
    assert "AI label lost" in page and "KITE-1" in page
    with browser() as b:
        # axe is injected as a script, which the page's CSP rightly refuses: bypass it here.
        tab = b.new_page(bypass_csp=True)
        tab.goto((tmp_path / "feed.html").as_uri())
        violations = axe_violations(tab)
        assert not violations, describe(violations)


def test_magento_export_csv(shop: tuple[Path, Path], trust: TrustPolicy, tmp_path: Path) -> None:
    media, inv = shop
    csv_file = tmp_path / "catalog_product.csv"
    csv_file.write_text(
        "sku,name,base_image,small_image,thumbnail_image,additional_images\n"
        '"KITE-1","Kite, blue",/k/i/kite-blue-sky.jpg,/k/i/kite-blue-sky.jpg,'
        '/k/i/kite-blue-sky.jpg,"/f/o/forest-path.jpg,/r/o/rowing-boats-sunset.jpg"\n'
        "MOSS-1,Moss,/m/o/moss-close-up.webp,,,\n"
        "GONE-1,Gone,/g/o/gone.jpg,,,\n",
        encoding="utf-8",
    )
    with Inventory(inv, create=False, read_only=True) as inventory:
        report = check_feed(
            csv_file, media_root=media, base_url=BASE, trust=trust, inventory=inventory
        )
    assert report.format is FeedFormat.MAGENTO_CSV and report.products == 3
    got = [(i.product_id, i.role, i.state) for i in report.images]
    assert got == [
        ("KITE-1", "base_image", ImageState.READY),
        ("KITE-1", "additional_images", ImageState.MISSING_DIGITAL_SOURCE_TYPE),
        ("KITE-1", "additional_images", ImageState.NOT_AI),
        ("MOSS-1", "base_image", ImageState.ALTERED),
        ("GONE-1", "base_image", ImageState.MISSING_FILE),
    ]
    assert report.images[0].title == "Kite, blue"


def test_bad_feeds_are_one_clear_error(tmp_path: Path) -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<rss><channel><item><g:id>&x;</g:id></item></channel></rss>"
    )
    for data, problem in (
        (xxe, "safe XML"),
        (b"<html><body/></html>", "neither an RSS"),
        (b"name,price\nx,1\n", "needs columns"),
        (b"", "empty"),
        (b"\xff\xfe\x00garbage", "neither XML nor UTF-8"),
    ):
        with pytest.raises(ProvenanceError, match=problem) as caught:
            read_feed(data, name="feed.bin")
        assert str(caught.value).startswith("feed.bin: ")
    media = tmp_path / "media"
    media.mkdir()
    (tmp_path / "feed.xml").write_bytes(xxe)
    done = run_cli("feed-check", tmp_path / "feed.xml", "--media-root", media, "--base-url", BASE)
    assert done.returncode == 2 and "feed.xml" in done.stderr and "Traceback" not in done.stderr


def test_url_cannot_escape_the_media_root(shop: tuple[Path, Path], tmp_path: Path) -> None:
    media, _ = shop
    secret = tmp_path / "secret.jpg"
    shutil.copyfile(SAMPLE_MEDIA / "kite-blue-sky.jpg", secret)
    feed = tmp_path / "feed.tsv"
    feed.write_text(
        "id\ttitle\timage_link\n"
        f"X\tx\t{BASE}../../secret.jpg\n"
        f"Y\ty\t{BASE}%2e%2e/%2e%2e/secret.jpg\n"
        f"Z\tz\t{BASE}/{secret}\n",
        encoding="utf-8",
    )
    report = check_feed(feed, media_root=media, base_url=BASE)
    # "..": refused; an absolute path after the base URL stays under the media root.
    assert [i.state for i in report.images] == [
        ImageState.ERROR,
        ImageState.ERROR,
        ImageState.MISSING_FILE,
    ]
    assert all(i.path is None for i in report.images)
