from __future__ import annotations

from typing import Any

from provenance._core.lineage import MAX_DEPTH, lineage_from_store
from provenance._core.statement import RECORD_ASSERTION_LABEL, statement_from_mapping

RECORD = {
    "generator": "g",
    "model": "m",
    "model_version": "1",
    "digital_source_type": "trainedAlgorithmicMedia",
    "created_at": "2026-01-01T00:00:00Z",
    "parameters": {},
}


def _manifest(asset: str, parent: str | None) -> dict[str, Any]:
    statement = {
        "v": 1,
        "asset_id": asset,
        "essence_sha256": "e" * 64,
        "input_sha256": "f" * 64,
        "record": RECORD,
        "signed_at": "2026-01-01T00:00:00Z",
    }
    ingredients = (
        [] if parent is None else [{"relationship": "parentOf", "active_manifest": parent}]
    )
    return {
        "title": asset,
        "assertions": [{"label": RECORD_ASSERTION_LABEL, "data": statement}],
        "ingredients": ingredients,
    }


def test_walks_parent_of_chain() -> None:
    store = {
        "active_manifest": "m3",
        "manifests": {
            "m3": _manifest("thumb", "m2"),
            "m2": _manifest("medium", "m1"),
            "m1": _manifest("original", None),
        },
    }
    steps = lineage_from_store(store)
    assert [s.asset_id for s in steps] == ["thumb", "medium", "original"]
    assert steps[-1].record is not None and steps[-1].record.model == "m"


def test_the_active_statement_parsed_already_gives_the_same_steps() -> None:
    store = {
        "active_manifest": "m2",
        "manifests": {"m2": _manifest("medium", "m1"), "m1": _manifest("original", None)},
    }
    active = statement_from_mapping(store["manifests"]["m2"]["assertions"][0]["data"])
    assert lineage_from_store(store, active=active) == lineage_from_store(store)
    # Only the active manifest's step takes it; its parents are parsed from the store.
    steps = lineage_from_store(store, active=active)
    assert steps[0].record is active.record
    assert [s.asset_id for s in steps] == ["medium", "original"]


def test_cycles_and_garbage_terminate() -> None:
    loop = {
        "active_manifest": "a",
        "manifests": {"a": _manifest("a", "b"), "b": _manifest("b", "a")},
    }
    assert [s.asset_id for s in lineage_from_store(loop)] == ["a", "b"]
    assert lineage_from_store({}) == ()
    assert lineage_from_store({"active_manifest": 3, "manifests": []}) == ()
    broken = {
        "active_manifest": "a",
        "manifests": {"a": {"assertions": [{"label": RECORD_ASSERTION_LABEL, "data": 5}]}},
    }
    (step,) = lineage_from_store(broken)
    assert step.asset_id is None and step.record is None


def test_depth_is_bounded() -> None:
    manifests = {f"m{i}": _manifest(f"a{i}", f"m{i + 1}") for i in range(MAX_DEPTH * 2)}
    assert len(lineage_from_store({"active_manifest": "m0", "manifests": manifests})) == MAX_DEPTH
