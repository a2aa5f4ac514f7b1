"""The 1M false-match estimator of ``benchmarks/robustness.py`` on hand-made pair counts.

The estimator's figures go into docs/search.md, so its arithmetic is pinned here:
the benchmark's old inlier-only fit reproduces the figures published with it, the
other rules are credited with the rule of three when no tail pair passes them,
the fits keep to the ks the data support, and listed cross-group look-alikes are
never drawn as unrelated pairs (on real sample photos).
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import robustness  # noqa: E402

# Inliers per unrelated pair (index: the count), as docs/search.md lists them: the
# benchmark's 30,000 pairs of 2026-12-07 and the same draw continued to 300,000.
COUNTS_30K = [21_677, 5_448, 1_900, 701, 203, 47, 15, 2, 2, 2, 1, 0, 2]
COUNTS_300K = [218_227, 52_968, 19_239, 6_758, 2_063, 535, 142, 33, 17, 5, 5, 0, 5, 0, 1, 1, 1]


def _tail(counts: list[int], failed: list[str]) -> list[dict[str, Any]]:
    """One record per pair with at least FULL_LOCATE_FROM inliers, each failing ``failed``."""
    return [
        {"inliers": k, "failed": list(failed)}
        for k, n in enumerate(counts)
        if k >= robustness.FULL_LOCATE_FROM
        for _ in range(n)
    ]


def test_old_fit_reproduces_the_figures_published_with_it() -> None:
    # docs/search.md, "What the long tail is": 2.1e-3 (ks 2..9), 1.4e-4 without the
    # two fireman pairs at 12 inliers (ks 2..8), 8.0e-3 on 300,000 pairs (ks 2..12).
    fit = robustness.inlier_tail_fit(COUNTS_30K, min_inliers=20)
    assert fit["ks"] == list(range(2, 10))
    assert fit["p_pair"] * 1e6 == pytest.approx(2.1e-3, rel=0.02)
    without = [*COUNTS_30K[:12], 0]
    assert robustness.inlier_tail_fit(without, min_inliers=20)["p_pair"] * 1e6 == pytest.approx(
        1.4e-4, rel=0.02
    )
    big = robustness.inlier_tail_fit(COUNTS_300K, min_inliers=20)
    assert big["ks"] == list(range(2, 13))
    assert big["p_pair"] * 1e6 == pytest.approx(8.0e-3, rel=0.01)


def test_rule_of_three_when_no_tail_pair_passes_the_other_rules() -> None:
    tail = _tail(COUNTS_300K, ["coverage", "ratio"])
    est = robustness.chance_estimate(COUNTS_300K, tail, min_inliers=20, k0=6, passes=1)
    above = sum(COUNTS_300K[6:])  # 210 pairs with >= 6 inliers
    assert est["pairs_at_or_above_k0"] == above
    assert est["pass_every_other_rule_at_or_above_k0"] == 0
    assert est["p_other_rules_given_k0"] == pytest.approx(3 / above)
    assert est["chance_part"] == pytest.approx(1e6 * est["p_pair_at_min_inliers"] * 3 / above)
    assert est["chance_part_inlier_only"] == pytest.approx(1e6 * est["p_pair_at_min_inliers"])
    # Two keypoint searches per query: twice the union bound.
    twice = robustness.chance_estimate(COUNTS_300K, tail, min_inliers=20, k0=6, passes=2)
    assert twice["chance_part"] == pytest.approx(2 * est["chance_part"])


def test_a_passing_tail_pair_gives_a_clopper_pearson_bound_not_three_over_n() -> None:
    tail = _tail(COUNTS_300K, ["layout"])
    tail[-1]["failed"] = []  # the 16-inlier pair passes every other rule
    est = robustness.chance_estimate(COUNTS_300K, tail, min_inliers=20, k0=6)
    assert est["pass_every_other_rule_at_or_above_k0"] == 1
    assert est["p_other_rules_given_k0"] == pytest.approx(robustness._clopper_pearson_upper(1, 210))
    assert est["p_other_rules_given_k0"] > 3 / 210
    last = est["bins"][-1]
    assert (last["inliers"], last["pairs"], last["pass_every_other_rule"]) == (16, 1, 1)
    assert last["pass_layout"] == 1


def test_fits_keep_to_the_ks_the_data_support_and_the_highest_is_used() -> None:
    est = robustness.chance_estimate(COUNTS_300K, [], min_inliers=20)
    at_least = np.cumsum(COUNTS_300K[::-1])[::-1]
    for fit in est["fits"]:
        assert len(fit["ks"]) >= 3
        assert all(at_least[k] >= 5 for k in fit["ks"])
        assert fit["ks"][0] >= fit["first"]
        assert fit["ks"][-1] <= fit["last"] <= 12  # 12: the last k with 5 pairs at or above
    for fit in est["geometric_fits"]:
        assert fit["pairs"] >= robustness.GEOMETRIC_MIN_PAIRS
    every = [f["p_pair"] for f in est["fits"] + est["geometric_fits"]]
    assert est["p_pair_at_min_inliers"] == max(every)
    # The flatter end decides: a fit from 8 inliers on, far above the old method's.
    assert est["fit_used"]["first"] == 8
    assert (
        est["p_pair_at_min_inliers"]
        > 10 * robustness.inlier_tail_fit(COUNTS_300K, min_inliers=20)["p_pair"]
    )


def test_geometric_tail_recovers_its_ratio() -> None:
    # 4,096 pairs at 4 inliers and above, halving per inlier: q = 1/2.
    counts = [100_000, 0, 0, 0] + [4096 >> (j + 1) for j in range(12)]
    fit = robustness.geometric_tail_fit(counts, start=4, min_inliers=20)
    assert fit["q"] == pytest.approx(0.5, abs=0.01)
    assert 0.5 < fit["q_upper95"] < 0.55
    share = sum(counts[4:]) / sum(counts)
    assert fit["p_pair"] == pytest.approx(share * fit["q"] ** 16)


def _sample_originals() -> list[robustness.Original]:
    originals = robustness.load_originals(quick=True)
    assert len(originals) >= 6
    # Two stand for the fireman stamps: two groups, one listed pair, and (like them)
    # a real likeness: the second is the first photo cut 10% at the left and top,
    # so a pair of the two would have many inliers if it were drawn as unrelated.
    a, b = robustness.CROSS_GROUP_LOOKALIKES[0]
    first, _, *rest = originals
    width, height = first.image.size
    cut = first.image.crop((width // 10, height // 10, width, height))
    return [
        robustness.Original(a, "packshot", "military", first.image),
        robustness.Original(b, "packshot", "people", cut),
        *rest,
    ]


def test_listed_cross_group_pairs_are_look_alikes_not_unrelated_pairs() -> None:
    # The corpus' one subject in two folders, checked by eye (docs/search.md).
    assert ("military-fireman240a.jpg", "people-fireman200b.jpg") in (
        robustness.CROSS_GROUP_LOOKALIKES
    )
    originals = _sample_originals()
    kin = robustness.kinship(originals)
    assert kin[0, 1] and kin[1, 0]
    assert not kin[0, 2] and not kin[1, 2]  # other groups stay unrelated
    refs = [robustness.keypoints.reference_features(o.image) for o in originals]
    queries = [
        (robustness.keypoints.query_features(robustness.scale(o.image, 0.5)), i, set[int](), None)
        for i, o in enumerate(originals)
    ]
    args = SimpleNamespace(seed=0, quick=False, partial_pairs=200)
    names = [o.name for o in originals]
    pairs = robustness.random_false_pairs(
        queries, refs, robustness.same_photo(originals), kin, args, names=names
    )
    assert pairs["pairs"] == 200
    moved = pairs["cross_group_lookalike_pairs"]
    assert {(m["query"], m["asset"]) for m in moved} == {(names[0], names[1]), (names[1], names[0])}
    assert min(m["inliers"] for m in moved) >= robustness.keypoints.MIN_INLIERS
    # Every unrelated pair drawn is between two groups, and never the listed pair.
    assert all({t["query"], t["asset"]} != {names[0], names[1]} for t in pairs["tail_pairs"])
    rest = range(2, len(originals))
    mates = sum(1 for i in rest for j in rest if i != j and kin[i, j])
    assert pairs["lookalike_pairs"] == 2 + mates
    assert sum(pairs["inlier_counts"].values()) == 200
    assert pairs["shortcut"]["identical_inliers"] == pairs["shortcut"]["pairs_checked_both_ways"]


def test_pooled_runs_add_their_pairs(tmp_path: Path) -> None:
    import json

    def run(counts: list[int], failed: list[str], lookalike: int) -> dict[str, Any]:
        rp = {
            "pairs": sum(counts),
            "inlier_counts": {str(k): n for k, n in enumerate(counts) if n},
            "tail_pairs": [dict(t, confirmed=False) for t in _tail(counts, failed)],
            "cross_group_lookalike_pairs": [],
            "lookalike_pairs": lookalike,
            "lookalike_confirmed": 0,
            "shortcut": {"pairs_checked_both_ways": 10, "identical_inliers": 10},
        }
        return {"unrelated_only": {"random_false_pairs": rp, "queries": 2736}}

    paths = []
    for n, counts in enumerate((COUNTS_30K, COUNTS_300K)):
        path = tmp_path / f"run{n}.json"
        path.write_text(json.dumps(run(counts, ["colour"], 21_296)), "utf-8")
        paths.append(str(path))
    args = SimpleNamespace(keypoint_passes=1, chance_k0=6)
    pooled = robustness.pooled_estimate(paths, args)
    rp, est = pooled["random_false_pairs"], pooled["false_match_estimate"]
    assert rp["pairs"] == sum(COUNTS_30K) + sum(COUNTS_300K)
    assert rp["inlier_counts"][12] == 2 + 5
    assert est["chance"]["pairs_at_or_above_k0"] == sum(COUNTS_30K[6:]) + sum(COUNTS_300K[6:])
    assert est["lookalike_pairs"] == 2 * 21_296
    assert est["lookalikes_per_query"] == pytest.approx(2 * 21_296 / (2 * 2736))
