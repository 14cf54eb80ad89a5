"""The ready queue: FIFO within a priority, Critical first, aging, O(log n) bookkeeping."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symbi_scheduler import Priority, TaskQueue

A = 30.0  # aging interval


def drain(q: TaskQueue) -> list[str]:
    out = []
    while (t := q.pop()) is not None:
        out.append(t)
    return out


def test_fifo_within_a_priority_and_critical_first() -> None:
    q = TaskQueue(aging_interval_s=A)
    for i, prio in enumerate([Priority.LOW, Priority.NORMAL, Priority.CRITICAL, Priority.HIGH]):
        q.push(f"{prio.label}-1", prio, enqueued_at=100.0, seq=i)
    for i, prio in enumerate([Priority.CRITICAL, Priority.HIGH, Priority.NORMAL, Priority.LOW]):
        q.push(f"{prio.label}-2", prio, enqueued_at=100.0, seq=10 + i)
    assert drain(q) == [
        "critical-1",
        "critical-2",
        "high-1",
        "high-2",
        "normal-1",
        "normal-2",
        "low-1",
        "low-2",
    ]


def test_aging_one_level_per_interval() -> None:
    q = TaskQueue(aging_interval_s=A)
    q.push("low-old", Priority.LOW, enqueued_at=0.0, seq=0)  # rank 2A
    q.push("normal-mid", Priority.NORMAL, enqueued_at=A / 2, seq=1)  # rank 1.5A
    q.push("high-new", Priority.HIGH, enqueued_at=2 * A + 1, seq=2)  # rank 2A + 1
    q.push("critical-newest", Priority.CRITICAL, enqueued_at=10 * A, seq=3)
    # The Low task has waited 2A: it ranks with a High task that arrived at 2A, so before
    # the High task that arrived a second later; Critical still goes first.
    assert drain(q) == ["critical-newest", "normal-mid", "low-old", "high-new"]


def test_a_rank_tie_goes_to_the_earlier_submission() -> None:
    q = TaskQueue(aging_interval_s=A)
    q.push("high-later", Priority.HIGH, enqueued_at=A, seq=5)
    q.push("normal-earlier", Priority.NORMAL, enqueued_at=0.0, seq=1)
    assert drain(q) == ["normal-earlier", "high-later"]


def test_remove_depths_and_reinsertion_keep_position() -> None:
    q = TaskQueue(aging_interval_s=A)
    for i in range(5):
        q.push(f"t{i}", Priority.NORMAL, enqueued_at=float(i), seq=i)
    assert q.remove("t2")
    assert not q.remove("t2")
    assert q.depth(Priority.NORMAL) == 4
    assert len(q) == 4
    assert "t2" not in q
    assert q.pop() == "t0"
    q.push("t0", Priority.NORMAL, enqueued_at=0.0, seq=0)  # requeued: keeps its place
    assert list(q) == ["t0", "t1", "t3", "t4"]
    with pytest.raises(ValueError, match="already queued"):
        q.push("t1", Priority.NORMAL, enqueued_at=1.0, seq=1)


def test_lazy_removal_is_compacted() -> None:
    q = TaskQueue(aging_interval_s=A)
    for i in range(1000):
        q.push(f"t{i}", Priority.LOW, enqueued_at=float(i), seq=i)
    for i in range(990):
        q.remove(f"t{i}")
    assert len(q) == 10
    assert len(q._others) < 200  # stale entries were dropped, not kept forever
    assert drain(q) == [f"t{i}" for i in range(990, 1000)]


entries = st.lists(
    st.tuples(st.sampled_from(list(Priority)), st.floats(min_value=0, max_value=1000)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(entries, st.sets(st.integers(min_value=0, max_value=59)))
def test_matches_the_reference_order(
    items: list[tuple[Priority, float]], removed: set[int]
) -> None:
    """Against a plain sort by the documented rule."""
    q = TaskQueue(aging_interval_s=A)
    for seq, (prio, at) in enumerate(items):
        q.push(f"t{seq}", prio, enqueued_at=at, seq=seq)
    for i in removed:
        q.remove(f"t{i}")

    def key(i: int) -> tuple[int, float, int]:
        prio, at = items[i]
        if prio is Priority.CRITICAL:
            return (0, 0.0, i)
        return (1, at + A * (int(prio) - 1), i)

    expected = [f"t{i}" for i in sorted(range(len(items)), key=key) if i not in removed]
    assert list(q) == expected
    assert drain(q) == expected


def test_no_starvation_under_a_constant_stream_of_high_work() -> None:
    """One task is served per second while a new High task arrives every second: the Low
    task submitted at t=0 is served by t = 2A + (tasks ahead of it) instead of never."""
    q = TaskQueue(aging_interval_s=A)
    q.push("low", Priority.LOW, enqueued_at=0.0, seq=0)
    served_at = None
    for t in range(1, 500):
        q.push(f"high{t}", Priority.HIGH, enqueued_at=float(t), seq=t)
        if q.pop() == "low":
            served_at = t
            break
    assert served_at is not None
    assert served_at <= 2 * A + 1
