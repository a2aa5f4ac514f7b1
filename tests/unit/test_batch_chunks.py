"""How a batch's jobs are grouped into chunks, and the tail cut smaller for several workers."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from provenance.batch._jobs import _Job
from provenance.batch._rows import BatchRow, ItemError, RowStatus
from provenance.batch._stream import _CHUNK_MAX_BYTES, _chunks


def _jobs(count: int, *, data: bytes | None = None) -> list[_Job]:
    return [_Job(i, f"item{i}.jpg", f"/in/item{i}.jpg", data) for i in range(count)]


def _bad(index: int) -> BatchRow[Any]:
    error = ItemError("CorruptFile", f"bad{index}.jpg: not an image")
    return BatchRow(index, f"bad{index}.jpg", RowStatus.ERROR, None, error)


def _sizes(groups: list[tuple[list[_Job], list[BatchRow[Any]]]]) -> list[int]:
    return [len(jobs) for jobs, _ in groups]


def test_one_taker_gets_whole_chunks() -> None:
    groups = list(_chunks(iter(_jobs(200)), 16))
    assert _sizes(groups) == [16] * 12 + [8]


def test_two_workers_get_the_last_chunks_cut_smaller() -> None:
    groups = list(_chunks(iter(_jobs(200)), 16, takers=2))
    sizes = _sizes(groups)
    # 176 jobs in whole chunks, then the last two chunks held back (16 + 8): a
    # quarter of what is left each time, never under 4 (a quarter of a chunk).
    assert sizes[:11] == [16] * 11
    assert sizes[11:] == [6, 5, 4, 4, 4, 1]
    assert [job.index for jobs, _ in groups for job in jobs] == list(range(200))


def test_a_batch_smaller_than_the_held_chunks_is_all_tail() -> None:
    assert _sizes(list(_chunks(iter(_jobs(20)), 16, takers=2))) == [5, 4, 4, 4, 3]
    assert list(_chunks(iter([]), 16, takers=2)) == []


def test_the_tail_keeps_the_byte_limit() -> None:
    big = _CHUNK_MAX_BYTES // 3 + 1  # three of these pass the limit
    groups = list(_chunks(iter(_jobs(12, data=b"x" * big)), 16, takers=2))
    assert all(len(jobs) <= 3 for jobs, _ in groups)
    assert [job.index for jobs, _ in groups for job in jobs] == list(range(12))


def test_a_run_of_bad_items_is_passed_on_as_it_comes() -> None:
    # One good item, then bad ones for ever: before, the bad rows were gathered
    # behind the good one until the input ended (never, here).
    for takers in (1, 2):
        endless = itertools.chain(_jobs(1), (_bad(i) for i in itertools.count(1)))
        groups = list(itertools.islice(_chunks(endless, 2, takers=takers), 4))
        assert [(len(jobs), len(early)) for jobs, early in groups] == [(1, 2)] + [(0, 2)] * 3


@given(
    layout=st.lists(st.booleans(), max_size=120),
    size=st.integers(1, 20),
    takers=st.integers(1, 4),
)
def test_every_item_once_in_order_whatever_the_tail(
    layout: list[bool], size: int, takers: int
) -> None:
    items: list[_Job | BatchRow[Any]] = [
        _bad(i) if bad else _Job(i, f"item{i}.jpg", f"/in/item{i}.jpg", None)
        for i, bad in enumerate(layout)
    ]
    groups = list(_chunks(iter(items), size, takers=takers))
    seen = sorted(item.index for jobs, early in groups for item in (*jobs, *early))
    assert seen == list(range(len(items)))
    jobs_in_order = [job.index for jobs, _ in groups for job in jobs]
    assert jobs_in_order == sorted(jobs_in_order)
    # Groups hold jobs, or (a run of bad items) only decided rows, never more than size of either.
    assert all(len(jobs) <= size and len(early) <= size for jobs, early in groups)
    assert all(jobs or early for jobs, early in groups)
    # A decided row rides with the chunk of the jobs around it, never past a later chunk.
    for (_, early), (later, _) in itertools.pairwise(groups):
        if early and later:
            assert max(row.index for row in early) < later[0].index
