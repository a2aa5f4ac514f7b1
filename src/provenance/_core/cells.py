"""Spreadsheet cells that stay text: one defence against CSV formula injection.

Every CSV this package writes (inventory exports, scan and compliance reports)
passes its cells through :func:`csv_cell`. Pure: strings in, strings out.
"""

from __future__ import annotations

__all__ = ["csv_cell"]

# OWASP "CSV Injection": a cell starting with = + - @ (or tab, carriage return)
# runs as a formula in Excel, LibreOffice and Google Sheets.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """The text of ``value`` for a CSV cell, with a leading ``'`` if it could run as a formula.

    Args:
        value: Any value; None becomes the empty string.

    Returns:
        The cell text.
    """
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
