"""The package root exports a curated, sorted namespace (STYLE.md, after httpx)."""

from __future__ import annotations

import types

import pytest

import provenance


def test_all_is_sorted_and_complete() -> None:
    # dir(), not vars(): the root imports its names on first use (issue 20).
    exported = [name for name in dir(provenance) if not name.startswith("_")]
    exported = [n for n in exported if not isinstance(getattr(provenance, n), types.ModuleType)]
    assert provenance.__all__ == sorted(provenance.__all__)
    assert set(exported) == set(provenance.__all__) - {"__version__"}


def test_verdict_has_no_truth_value() -> None:
    verdict = provenance.Verdict(path="x.jpg", status=provenance.Status.TRUSTED)
    with pytest.raises(TypeError):
        bool(verdict)
