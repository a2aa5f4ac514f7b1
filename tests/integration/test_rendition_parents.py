"""C2PA renditions: c2pa reads each parent once per process, readers see the same lineage."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from provenance import RenditionMark, SigningKey, SignResult, Status, TrustPolicy, sign_bytes, trace
from provenance._io.c2pa import read_c2pa
from provenance._io.c2pa._parents import MIN_BYTES, forget_parents, kept_parents
from provenance.renditions import sign_rendition
from tests.conftest import sample_record

Media = Callable[[str], Path]
BOXES = [(600, 400), (300, 200), (120, 80)]


@pytest.fixture(autouse=True)
def no_kept_parents() -> Iterator[None]:
    forget_parents()
    yield
    forget_parents()


# Parents over MIN_BYTES, whose ingredient c2pa keeps: a 0.95 MB JPEG, a 0.98 MB PNG.
BIG_JPEG = "rowing-boats-sunset.jpg"
BIG_PNG = "packshot-tractor-wheel-alpha.png"


def _original(media: Media, name: str, key: SigningKey, *, now: datetime) -> tuple[bytes, Any]:
    data = media(name).read_bytes()
    record = sample_record(BIG_JPEG if name == BIG_PNG else name)
    return sign_bytes(data, record=record, key=key, now=now, path=name)


def _small(data: bytes, box: tuple[int, int]) -> bytes:
    with Image.open(io.BytesIO(data)) as im:
        copy = im.convert("RGB")
    copy.thumbnail(box)
    out = io.BytesIO()
    copy.save(out, "JPEG", quality=80)
    return out.getvalue()


def _mark(
    parent: bytes, original: SignResult, key: SigningKey, box: tuple[int, int], path: str
) -> bytes:
    signed, _ = sign_rendition(
        _small(parent, box),
        original,
        key=key,
        mark=RenditionMark.C2PA,
        parent_data=parent,
        path=path,
    )
    return signed


def _parent_of(signed: bytes, trust: TrustPolicy) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The rendition's one ingredient and the parent manifest it points at, read Trusted."""
    report = read_c2pa(signed, "image/jpeg", trust)
    assert report is not None
    assert report.state == "Trusted"
    assert report.failure_codes == ()
    # The ingredient's validation as c2pa recorded it at signing is compared whole
    # (validation_results) with the one c2pa records reading the parent itself.
    manifests = report.store["manifests"]
    (ingredient,) = manifests[report.active_manifest]["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    return ingredient, manifests[ingredient["active_manifest"]]


def _asset_id(manifest: Mapping[str, Any]) -> str:
    (statement,) = [a for a in manifest["assertions"] if a["label"] == "dev.provenance.statement"]
    return str(statement["data"]["asset_id"])


def test_three_renditions_of_one_original_read_its_parent_once(
    media: Media, signing_key: SigningKey, trust: TrustPolicy, tmp_path: Path
) -> None:
    now = datetime.now(timezone.utc)
    parent, original = _original(media, BIG_JPEG, signing_key, now=now)
    assert len(parent) >= MIN_BYTES
    paths = []
    for box in BOXES:
        path = tmp_path / f"forest-path-{box[0]}.jpg"
        path.write_bytes(_mark(parent, original, signing_key, box, str(path)))
        paths.append(path)
        assert kept_parents() == 1
    # What c2pa wrote when it read the parent itself, for comparison.
    forget_parents()
    unkept, _ = _parent_of(_mark(parent, original, signing_key, (200, 200), "x.jpg"), trust)
    for path in paths:
        ingredient, manifest = _parent_of(path.read_bytes(), trust)
        assert ingredient == unkept
        assert ingredient["active_manifest"] == original.active_manifest
        assert _asset_id(manifest) == original.asset_id
        traced = trace(path, trust=trust)
        assert traced.verdict.status is Status.TRUSTED
        assert traced.found_by == "manifest"
        assert [s.asset_id for s in traced.steps][-1] == original.asset_id
        assert len(traced.steps) == 2


def test_each_rendition_gets_its_own_parent(
    media: Media, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    now = datetime.now(timezone.utc)
    first, first_result = _original(media, BIG_JPEG, signing_key, now=now)
    second, second_result = _original(media, BIG_PNG, signing_key, now=now)
    # Interleaved: first, second, first again (from its kept archive).
    for parent, result in ((first, first_result), (second, second_result), (first, first_result)):
        ingredient, manifest = _parent_of(
            _mark(parent, result, signing_key, (300, 300), "r.jpg"), trust
        )
        assert ingredient["active_manifest"] == result.active_manifest
        assert _asset_id(manifest) == result.asset_id
    assert first_result.active_manifest != second_result.active_manifest
    assert kept_parents() == 2


def test_the_kept_parents_are_bounded(
    media: Media, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    start = datetime.now(timezone.utc)
    last: tuple[bytes, SignResult] | None = None
    for i in range(11):
        # The same picture signed at another time: another file, another parent.
        last = _original(media, BIG_JPEG, signing_key, now=start + timedelta(seconds=i))
        _mark(*last, signing_key, (100, 100), f"r{i}.jpg")
    assert 0 < kept_parents() <= 8
    assert last is not None
    ingredient, _ = _parent_of(_mark(*last, signing_key, (90, 90), "again.jpg"), trust)
    assert ingredient["active_manifest"] == last[1].active_manifest


def test_a_small_parent_is_read_by_c2pa_each_time(
    media: Media, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    # Under MIN_BYTES, loading an archive would cost c2pa as much as reading the parent.
    parent, original = _original(
        media, "forest-path.jpg", signing_key, now=datetime.now(timezone.utc)
    )
    assert len(parent) < MIN_BYTES
    for box in BOXES:
        ingredient, manifest = _parent_of(_mark(parent, original, signing_key, box, "r.jpg"), trust)
        assert ingredient["active_manifest"] == original.active_manifest
        assert _asset_id(manifest) == original.asset_id
    assert kept_parents() == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
def test_a_forked_child_keeps_none_of_its_parents(
    media: Media, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    parent, original = _original(media, BIG_JPEG, signing_key, now=datetime.now(timezone.utc))
    _mark(parent, original, signing_key, (100, 100), "r.jpg")
    assert kept_parents() == 1
    pid = os.fork()
    if pid == 0:  # the child: reports through its exit status only
        os._exit(0 if kept_parents() == 0 else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert kept_parents() == 1


def test_other_bytes_passed_for_the_same_result_get_their_own_ingredient(
    media: Media, signing_key: SigningKey, trust: TrustPolicy
) -> None:
    # A caller's mistake: the parent's SignResult with another file of the same length.
    # The ingredient must be the bytes passed, never the kept one of the named parent.
    now = datetime.now(timezone.utc)
    parent, original = _original(media, BIG_JPEG, signing_key, now=now)
    # Two signings differ in length now and then (an ECDSA signature a few bytes
    # shorter, about one in 400: conftest.SIGNATURE_SLACK); sign again until equal.
    for second in range(1, 6):
        other, other_result = _original(
            media, BIG_JPEG, signing_key, now=now + timedelta(seconds=second)
        )
        if len(other) == len(parent):
            break
    assert len(other) == len(parent) and other != parent
    _mark(parent, original, signing_key, (100, 100), "r.jpg")
    ingredient, _ = _parent_of(_mark(other, original, signing_key, (90, 90), "o.jpg"), trust)
    assert ingredient["active_manifest"] == other_result.active_manifest
    assert kept_parents() == 2
