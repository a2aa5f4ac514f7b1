"""Spreadsheet cells never run as formulas (OWASP CSV injection)."""

from __future__ import annotations

import pytest

from provenance._core.cells import csv_cell


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "=HYPERLINK()"])
def test_a_formula_start_is_quoted(text: str) -> None:
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize(
    ("value", "cell"), [("shoe.jpg", "shoe.jpg"), (None, ""), (3, "3"), ("a=b", "a=b"), ("", "")]
)
def test_other_values_are_their_text(value: object, cell: str) -> None:
    assert csv_cell(value) == cell
