"""The public module paths (issue 18): faces of private packages, and old paths that warn."""

from __future__ import annotations

import importlib
import sys

import pytest

import provenance

FACES = {
    "provenance.phash": "provenance._core.phash",
    "provenance.containers": "provenance._core.containers",
    "provenance.disclosure": "provenance._core.disclosure",
}
DEPRECATED = {
    "provenance.verdicts": ("provenance._core.verdicts", "meets"),
    "provenance.discovery": ("provenance._io.discovery", "find_inventory"),
    "provenance.index": ("provenance._io.index", "HammingIndex"),
    "provenance.pdf": ("provenance._io.pdf", "html_to_pdf"),
}


def _fresh(name: str) -> object:
    sys.modules.pop(name, None)
    return importlib.import_module(name)


@pytest.mark.parametrize(("face", "private"), sorted(FACES.items()))
def test_a_face_exports_the_private_packages_own_objects(face: str, private: str) -> None:
    module = _fresh(face)
    inner = importlib.import_module(private)
    assert module.__all__
    for name in module.__all__:
        assert getattr(module, name) is getattr(inner, name), name


@pytest.mark.parametrize(("old", "target"), sorted(DEPRECATED.items()))
def test_an_old_path_warns_and_still_works(old: str, target: tuple[str, str]) -> None:
    private, root_name = target
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated.*{root_name}"):
        module = _fresh(old)
    inner = importlib.import_module(private)
    assert set(module.__all__) == set(inner.__all__)
    assert getattr(module, root_name) is getattr(inner, root_name) is getattr(provenance, root_name)
