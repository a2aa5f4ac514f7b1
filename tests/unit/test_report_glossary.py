"""The report's glossary and labels: built from enums and their docstrings, nothing hidden."""

from __future__ import annotations

import enum

from provenance.audit import AuditEvent
from provenance.report import DisclosureStatus, _member_docs, glossary, status_label
from provenance.types import Status


class _Example(enum.Enum):
    """A stand-in for a status enum that grows."""

    OLD = "old"
    """The old one."""
    NEW_KIND = "new_kind"
    """A status added later,
    over two lines."""
    UNDOCUMENTED = "undocumented"


def test_member_docstrings_are_read_from_the_source() -> None:
    assert _member_docs(_Example) == {
        "OLD": "The old one.",
        "NEW_KIND": "A status added later, over two lines.",
    }


def test_every_status_event_and_disclosure_is_explained() -> None:
    g = glossary(["assertion.dataHash.mismatch", "some.unknown.code"])
    assert [v["term"] for v in g["verdicts"]] == [s.value for s in Status]
    assert all(v["meaning"] and v["label"] for v in g["verdicts"])
    assert [e["term"] for e in g["events"]] == [e.value for e in AuditEvent]
    assert all(e["meaning"] for e in g["events"])
    assert [d["term"] for d in g["disclosure"]] == [d.value for d in DisclosureStatus]
    codes = {c["term"]: c["meaning"] for c in g["codes"]}
    assert "changed after signing" in codes["assertion.dataHash.mismatch"]
    assert "C2PA" in codes["some.unknown.code"]  # unknown codes get a generic line


def test_labels_never_show_raw_values() -> None:
    assert status_label("known_stripped") == "Provenance stripped (known image)"
    assert status_label("remote_manifest") == "Remote manifest (not fetched)"
    assert status_label("some_future_status") == "Some future status"  # spelled out
    assert DisclosureStatus.NOT_SEEN.label == "Not seen in this scan"


def test_every_status_has_a_label_and_a_chart_colour() -> None:
    """A status added later must be named in words and drawn in its own colour."""
    from provenance.report import _STATUS_COLOURS, _STATUS_LABELS

    values = {status.value for status in Status}
    assert set(_STATUS_LABELS) == values
    assert set(_STATUS_COLOURS) == values
    assert len(set(_STATUS_COLOURS.values())) == len(values)
