"""The report's glossary and labels: built from enums and their docstrings, nothing hidden."""

from __future__ import annotations

import enum

from provenance._core.types import Status
from provenance.audit import AuditEvent
from provenance.report import DisclosureStatus, Section, glossary, status_label
from provenance.report._terms import _member_docs


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
    from provenance.report._html import STATUS_COLOURS
    from provenance.report._terms import STATUS_LABELS

    assert set(STATUS_LABELS) == set(Status)
    assert set(STATUS_COLOURS) == set(Status)
    assert len(set(STATUS_COLOURS.values())) == len(Status)


def test_every_section_has_words() -> None:
    """Each recovery section has a heading, a meaning, a card label and a fix."""
    for section in Section:
        assert section.title and section.meaning and section.card_label and section.fix
    assert [s["term"] for s in glossary()["sections"]] == [s.value for s in Section]
