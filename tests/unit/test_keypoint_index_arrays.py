"""The keypoint vote index as arrays (what the inventory caches) and the records' descriptors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance._core import keypoints
from tests.unit.test_keypoints import textured

BLANK = np.zeros((keypoints.INDEXED_FEATURES, 2), np.float32)
COLOUR = np.zeros((16, 16, 3), np.uint8)


def noise_index(count: int, seed: int = 0) -> keypoints.KeypointIndex:
    rng = np.random.default_rng(seed)
    index = keypoints.KeypointIndex()
    noise = rng.integers(0, 256, (count, keypoints.INDEXED_FEATURES, 32), dtype=np.uint8)
    for key in range(count):
        index.add(1000 + key, keypoints.LocalFeatures(BLANK, noise[key], 512, 512, 1.0, COLOUR))
    return index


@pytest.mark.parametrize("others", [0, 5, 700])  # empty-ish, flat, inverted file
def test_an_index_read_back_from_its_arrays_votes_as_the_original(others: int) -> None:
    index = noise_index(others)
    asset = textured(20)
    index.add(7, keypoints.reference_features(asset))
    query = keypoints.query_features(asset.rotate(3))
    votes = index.candidates(query)
    assert votes[0][0] == 7
    arrays, meta = index.to_arrays()
    assert meta["layout"] == ("inverted" if others > 500 else "flat")
    back = keypoints.KeypointIndex.from_arrays(arrays, meta)
    assert back.candidates(query) == votes
    assert (len(back), back.descriptors, back.dropped) == (
        len(index),
        index.descriptors,
        index.dropped,
    )
    # Refreshed after loading: the same votes as the index that never left memory.
    later = textured(21)
    for each in (index, back):
        each.add(8, keypoints.reference_features(later))
    query = keypoints.query_features(later)
    assert back.candidates(query) == index.candidates(query)
    assert back.candidates(query)[0][0] == 8


def test_an_empty_index_round_trips() -> None:
    arrays, meta = keypoints.KeypointIndex().to_arrays()
    assert meta["layout"] == "empty"
    back = keypoints.KeypointIndex.from_arrays(arrays, meta)
    assert len(back) == 0 and back.candidates(keypoints.query_features(textured(1))) == []


def test_inconsistent_arrays_raise_value_error() -> None:
    arrays, meta = noise_index(700).to_arrays()
    with pytest.raises(ValueError, match="list offsets"):
        keypoints.KeypointIndex.from_arrays(
            {**arrays, "list_offsets": arrays["list_offsets"][::-1].copy()}, meta
        )
    with pytest.raises(ValueError, match="inconsistent"):
        keypoints.KeypointIndex.from_arrays({**arrays, "ids": arrays["ids"][:-1]}, meta)
    with pytest.raises(ValueError, match="stored keypoint index"):
        keypoints.KeypointIndex.from_arrays({**arrays, "quantizer": np.zeros(64, np.uint8)}, meta)
    with pytest.raises(ValueError, match="layout"):
        keypoints.KeypointIndex.from_arrays(arrays, {**meta, "layout": "tree"})


def test_stored_descriptors_are_the_records_descriptors_and_orientations() -> None:
    features = keypoints.reference_features(textured(3))
    assert features.angles is not None
    parsed = keypoints.LocalFeatures.from_bytes(features.to_bytes())
    descriptors, angles = keypoints.stored_descriptors(features.to_bytes())
    assert np.array_equal(descriptors, features.descriptors)
    assert angles is not None and np.array_equal(angles, parsed.angles)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_stored_descriptors_of_garbage_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="keypoint record"):
        keypoints.stored_descriptors(data)
