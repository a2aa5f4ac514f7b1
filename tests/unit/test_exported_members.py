"""The package root exports a curated, sorted namespace (STYLE.md, after httpx)."""

from __future__ import annotations

import pytest

import provenance


def test_all_is_sorted_and_complete() -> None:
    exported = [name for name in vars(provenance) if not name.startswith("_")]
    exported = [n for n in exported if not isinstance(getattr(provenance, n), type(provenance))]
    assert provenance.__all__ == sorted(provenance.__all__)
    assert set(exported) == set(provenance.__all__) - {"__version__"}


def test_verdict_has_no_truth_value() -> None:
    verdict = provenance.Verdict(path="x.jpg", status=provenance.Status.TRUSTED)
    with pytest.raises(TypeError):
        bool(verdict)
