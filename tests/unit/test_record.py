from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provenance._core.record import (
    DigitalSourceType,
    ParentRef,
    ProvenanceRecord,
    canonical_json,
    parse_time,
)
from provenance.errors import RecordError

BASE = {
    "generator": "Acme Packshot Studio 3.2",
    "model": "stable-diffusion-xl-base",
    "model_version": "1.0",
    "digital_source_type": "trainedAlgorithmicMedia",
    "created_at": "2026-10-02T08:30:00Z",
    "parameters": {"seed": 42, "steps": 30, "guidance_scale": 6.5, "sampler": "euler"},
    "prompt": "a red running shoe on white",
}


def test_from_dict_round_trip() -> None:
    record = ProvenanceRecord.from_dict(BASE)
    again = ProvenanceRecord.from_dict(record.to_dict())
    assert again == record
    assert record.digital_source_type is DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA
    assert record.is_synthetic


def test_canonical_json_is_stable_and_sorted() -> None:
    shuffled = dict(reversed(list(BASE.items())))
    shuffled["parameters"] = dict(reversed(list(BASE["parameters"].items())))  # type: ignore[call-overload]
    a = ProvenanceRecord.from_dict(BASE).to_canonical_json()
    b = ProvenanceRecord.from_dict(shuffled).to_canonical_json()
    assert a == b
    decoded = json.loads(a)
    assert list(decoded) == sorted(decoded)
    assert b" " not in a.replace(b"a red running shoe on white", b"").replace(
        b"Acme Packshot Studio 3.2", b""
    )


def test_time_offsets_normalise_to_utc() -> None:
    a = ProvenanceRecord.from_dict({**BASE, "created_at": "2026-10-02T10:30:00+02:00"})
    assert a.to_dict()["created_at"] == "2026-10-02T08:30:00Z"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"digital_source_type": "aiMagic"}, "unknown digital_source_type"),
        ({"created_at": "2026-10-02T08:30:00"}, "no timezone"),
        ({"created_at": "yesterday"}, "not an RFC 3339"),
        ({"generator": ""}, "'generator' must not be empty"),
        ({"model": 7}, "'model' must be a string"),
        ({"parameters": {"customer_email": "x"}}, "not in the allow-list"),
        ({"parameters": {"seed": float("nan")}}, "finite"),
        ({"parameters": {"seed": [1, 2]}}, "string, number or boolean"),
        ({"unexpected": 1}, "unknown record field 'unexpected'"),
        ({"prompt": "bell\x07"}, "control character"),
        ({"version": 2}, "unsupported record version"),
    ],
)
def test_invalid_records_name_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        ProvenanceRecord.from_dict({**BASE, **change})


def test_missing_required_field() -> None:
    data = dict(BASE)
    del data["model"]
    with pytest.raises(RecordError, match="'model' is required"):
        ProvenanceRecord.from_dict(data)


def test_from_json_rejects_non_json() -> None:
    with pytest.raises(RecordError, match="not valid JSON"):
        ProvenanceRecord.from_json("{nope")
    with pytest.raises(RecordError, match="JSON object"):
        ProvenanceRecord.from_json("[1, 2]")


def test_digital_source_type_accepts_uris() -> None:
    uri = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
    parsed = DigitalSourceType.parse(uri)
    assert parsed is DigitalSourceType.COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert parsed.uri == uri
    c2pa_uri = "http://c2pa.org/digitalsourcetype/trainedAlgorithmicMedia"
    assert DigitalSourceType.parse(c2pa_uri) is DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA
    assert not DigitalSourceType.DIGITAL_CAPTURE.is_synthetic


def test_parent_refs_validate_hashes() -> None:
    good = ParentRef(sha256_hex="a" * 64, essence_sha256_hex="b" * 64, asset_id="x")
    record = ProvenanceRecord.from_dict({**BASE, "parents": [good.to_dict()]})
    assert record.parents == (good,)
    with pytest.raises(RecordError, match="64 lowercase hex"):
        ParentRef(sha256_hex="A" * 64)
    with pytest.raises(RecordError, match="parents"):
        ProvenanceRecord.from_dict({**BASE, "parents": [{"sha256": "zz"}]})


def test_record_is_immutable() -> None:
    record = ProvenanceRecord.from_dict(BASE)
    with pytest.raises(AttributeError):
        record.model = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        record.parameters["seed"] = 1  # type: ignore[index]


def test_replace_validates_again() -> None:
    record = ProvenanceRecord.from_dict(BASE)
    assert record.replace(prompt=None).prompt is None
    with pytest.raises(RecordError):
        record.replace(model="")


def test_replacing_only_the_parents_gives_the_validated_record() -> None:
    record = ProvenanceRecord.from_dict(BASE)
    ref = ParentRef(sha256_hex="ab" * 32, essence_sha256_hex="cd" * 32, asset_id="asset-1")
    fast = record.replace(parents=[ref])
    assert type(fast) is ProvenanceRecord
    assert fast.parents == (ref,)
    assert fast == ProvenanceRecord(**{**_fields(record), "parents": (ref,)})
    rebuilt = ProvenanceRecord.from_dict(fast.to_dict())
    assert fast.to_canonical_json() == rebuilt.to_canonical_json()
    assert fast.replace(parents=()) == record
    assert record.parents == ()  # the original is left as it was
    with pytest.raises(RecordError, match="ParentRef"):
        record.replace(parents=[{"sha256": "ab" * 32}])


def _fields(record: ProvenanceRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in ("generator", "model", "model_version",
            "digital_source_type", "created_at", "parameters", "prompt")}  # fmt: skip


def test_naive_datetime_refused() -> None:
    with pytest.raises(RecordError, match="timezone-aware"):
        ProvenanceRecord.from_dict(BASE).replace(created_at=datetime(2026, 1, 1))


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(RecordError):
        canonical_json({"x": float("inf")})


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.just(timezone(timedelta(hours=3))),
    )
)
def test_time_round_trip(moment: datetime) -> None:
    record = ProvenanceRecord.from_dict(BASE).replace(created_at=moment)
    again = ProvenanceRecord.from_dict(record.to_dict())
    assert again.created_at == moment.replace(microsecond=0)
    assert parse_time(record.to_dict()["created_at"]).tzinfo is not None


@given(st.text(min_size=1, max_size=200))
def test_from_json_raises_only_record_errors(text: str) -> None:
    with contextlib.suppress(RecordError):
        ProvenanceRecord.from_json(text)


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(value=_JSON_VALUES)
def test_canonical_json_is_json_dumps_sorted_compact_and_unescaped(value: object) -> None:
    # canonical_json reuses one C encoder (issue 20): the bytes json.dumps gives.
    expected = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    assert canonical_json(value) == expected.encode("utf-8")


@pytest.mark.parametrize(
    "value",
    [float("nan"), {"a": float("inf")}, {"a": object()}, {1: "a", "b": 2}, [b"bytes"]],
)
def test_canonical_json_refuses_what_json_cannot_write_canonically(value: object) -> None:
    with pytest.raises(RecordError, match="canonical JSON"):
        canonical_json(value)


def test_canonical_json_refuses_a_cycle() -> None:
    cycle: list[object] = []
    cycle.append(cycle)
    with pytest.raises(RecordError, match="canonical JSON"):
        canonical_json(cycle)


def test_canonical_json_without_the_c_encoder_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the json module has no C encoder (or another signature), the slow path serves."""
    from provenance._core import canonical as module

    values: list[object] = [BASE, {"b": [1, 2.5, None, True], "a": "\u00e9\n"}, "x", 3, []]
    fast = [canonical_json(v) for v in values]
    monkeypatch.setattr(module, "_ENCODE", None)
    assert [canonical_json(v) for v in values] == fast
    with pytest.raises(RecordError, match="canonical JSON"):
        canonical_json({"a": float("nan")})
