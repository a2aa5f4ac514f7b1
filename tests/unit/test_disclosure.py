"""Storefront disclosure markup: attributes, description, escaping (pure)."""

from __future__ import annotations

from datetime import datetime, timezone
from html.parser import HTMLParser

from provenance._core.disclosure import SIGNED, DisclosureOptions, disclosure_for, render_html
from provenance._core.record import DigitalSourceType, ProvenanceRecord
from provenance._core.types import Status, Verdict


def record(**changes: object) -> ProvenanceRecord:
    base = ProvenanceRecord(
        generator="Lumenforge Studio 2.4",
        model="stable-diffusion-xl-base",
        model_version="1.0",
        digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA,
        created_at=datetime(2026, 10, 2, 16, 29, 38, tzinfo=timezone.utc),
    )
    return base.replace(**changes)


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(markup: str) -> Collect:
    parser = Collect()
    parser.feed(markup)
    parser.close()
    return parser


def test_record_gives_attributes_and_description() -> None:
    d = disclosure_for(record())
    assert d.synthetic is True and d.provenance == SIGNED
    assert d.description == "AI-generated image, made with stable-diffusion-xl-base 1.0."
    page = parse(render_html(d, src="/m/shoe.jpg", alt="Red shoe", width=800, height=600))
    (fig, fattrs), (img, iattrs), (span, sattrs) = page.tags
    assert (fig, img, span) == ("figure", "img", "span")
    assert fattrs["data-synthetic"] == "true"
    assert fattrs["data-synthetic-source"] == DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA.uri
    assert fattrs["data-provenance"] == "signed"
    assert iattrs["aria-describedby"] == sattrs["id"]
    assert iattrs["alt"] == "Red shoe" and iattrs["width"] == "800"
    assert "position:absolute" in (sattrs["style"] or "")
    assert "".join(page.text) == d.description


def test_verdict_status_and_asset_id() -> None:
    v = Verdict(path="a.jpg", status=Status.TRUSTED, record=record(), asset_id="abc-123")
    d = disclosure_for(v)
    assert d.provenance == "trusted" and d.key == "abc-123"
    assert 'aria-describedby="provenance-desc-abc-123"' in render_html(d, src="a.jpg", alt="x")


def test_tampered_still_discloses_with_a_note() -> None:
    v = Verdict(path="a.jpg", status=Status.TAMPERED, record=record(), sha256_hex="f" * 64)
    d = disclosure_for(v)
    assert d.synthetic is True and d.provenance == "tampered"
    assert d.description is not None and d.description.endswith("could not be verified.")


def test_no_record_means_unknown_and_no_description() -> None:
    d = disclosure_for(Verdict(path="a.jpg", status=Status.NO_PROVENANCE))
    assert d.synthetic is None and d.description is None
    markup = render_html(d, src="a.jpg", alt="x")
    assert 'data-synthetic="unknown"' in markup and "aria-describedby" not in markup
    assert "data-synthetic-source" not in markup


def test_photograph_is_not_synthetic() -> None:
    d = disclosure_for(record(digital_source_type=DigitalSourceType.DIGITAL_CAPTURE))
    assert d.synthetic is False and d.description is None
    assert 'data-synthetic="false"' in render_html(d, src="a.jpg", alt="x")


def test_composite_wording() -> None:
    rec = record(digital_source_type=DigitalSourceType.COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA)
    assert (disclosure_for(rec).description or "").startswith("Image edited with AI, made with")


def test_everything_is_escaped() -> None:
    evil = '"><script>alert(1)</script>'
    d = disclosure_for(record(model=evil, model_version="1<2"))
    markup = render_html(d, src='x.jpg" onerror="alert(1)', alt=evil)
    assert "<script>" not in markup
    assert 'onerror="' not in markup
    page = parse(markup)
    assert [t for t, _ in page.tags] == ["figure", "img", "span"]
    assert page.tags[1][1]["src"] == 'x.jpg" onerror="alert(1)'
    assert evil in "".join(page.text)


def test_visible_label_and_custom_id() -> None:
    opts = DisclosureOptions(visible_label=True)
    markup = render_html(
        disclosure_for(record()), src="a.jpg", alt="x", element_id="d1", options=opts
    )
    assert 'aria-describedby="d1"' in markup and 'id="d1"' in markup
    assert '<figcaption class="provenance-disclosure__label" aria-hidden="true">' in markup


def test_to_dict_is_json_ready() -> None:
    data = disclosure_for(record()).to_dict()
    assert data["attributes"]["data-provenance"] == "signed"
    assert data["digital_source_type"] == "trainedAlgorithmicMedia"
