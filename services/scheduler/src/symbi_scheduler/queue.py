"""The ready queue: four priorities, FIFO within a priority, aging so nothing starves.

The aging rule
--------------
Every non-critical task gets a *rank* once, when it is first queued::

    rank = enqueued_at + handicap(priority)      handicap: High 0, Normal A, Low 2A

where A is ``aging_interval_s``. The lowest rank goes first (ties: earlier submission).
Equivalently, a task's effective priority rises by one level for every A seconds it has
waited: a Normal task that has waited A seconds ranks with a High task that has just arrived,
and a Low task that has waited 2A with a fresh High one. Because a rank never changes and
every later arrival gets a rank of at least its arrival time, a task with rank r goes before
every task that arrives after r: no High, Normal or Low task waits forever.

Critical tasks are outside aging: they always go before every other task, FIFO among
themselves (Critical work is never queued behind bulk work; a cluster that runs only Critical
work starves the rest, by design).

A task that is requeued through no fault of its own (preempted, its node lost, its start not
acknowledged) keeps its original rank, so it goes back to the front of its line.

Both heaps hold immutable keys, so every operation is O(log n); removal is lazy (the entry is
skipped when it surfaces) and the heaps are compacted when stale entries outnumber live ones.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator

from symbi_common.errors import ConfigError

from .priority import Priority

__all__ = ["TaskQueue"]


class TaskQueue:
    """Task ids in scheduling order. Holds ids only; the records live with the caller."""

    __slots__ = ("_aging", "_critical", "_depth", "_live", "_others", "_push_ids")

    def __init__(self, *, aging_interval_s: float) -> None:
        if not aging_interval_s > 0:
            raise ConfigError(f"aging_interval_s must be positive, got {aging_interval_s!r}")
        self._aging = float(aging_interval_s)
        # (seq, push_id, task_id) — FIFO by submission order.
        self._critical: list[tuple[int, int, str]] = []
        # (rank, seq, push_id, task_id)
        self._others: list[tuple[float, int, int, str]] = []
        # task_id -> (push_id, priority); an entry whose push_id differs is stale.
        self._live: dict[str, tuple[int, Priority]] = {}
        self._depth = dict.fromkeys(Priority, 0)
        self._push_ids = itertools.count()

    @property
    def aging_interval_s(self) -> float:
        return self._aging

    def rank(self, priority: Priority, enqueued_at: float) -> float:
        """The aging rank of a non-critical task (see the module docstring)."""
        return enqueued_at + self._aging * (int(priority) - int(Priority.HIGH))

    def push(self, task_id: str, priority: Priority, *, enqueued_at: float, seq: int) -> None:
        """Queue ``task_id``; ``enqueued_at``/``seq`` are kept from its first submission."""
        if task_id in self._live:
            raise ValueError(f"task {task_id!r} is already queued")
        push_id = next(self._push_ids)
        if priority is Priority.CRITICAL:
            heapq.heappush(self._critical, (seq, push_id, task_id))
        else:
            heapq.heappush(self._others, (self.rank(priority, enqueued_at), seq, push_id, task_id))
        self._live[task_id] = (push_id, priority)
        self._depth[priority] += 1

    def pop(self) -> str | None:
        """Remove and return the next task id, or None when empty."""
        live = self._live
        critical = self._critical
        while critical:
            _, push_id, task_id = heapq.heappop(critical)
            entry = live.get(task_id)
            if entry is not None and entry[0] == push_id:
                return self._forget(task_id, entry[1])
        others = self._others
        while others:
            _, _, push_id, task_id = heapq.heappop(others)
            entry = live.get(task_id)
            if entry is not None and entry[0] == push_id:
                return self._forget(task_id, entry[1])
        return None

    def remove(self, task_id: str) -> bool:
        """Take ``task_id`` out of the queue; False if it was not queued."""
        entry = self._live.get(task_id)
        if entry is None:
            return False
        self._forget(task_id, entry[1])
        self._maybe_compact()
        return True

    def depth(self, priority: Priority) -> int:
        """Queued tasks of ``priority``."""
        return self._depth[priority]

    def depths(self) -> dict[Priority, int]:
        """Queued tasks per priority."""
        return dict(self._depth)

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._live

    def __iter__(self) -> Iterator[str]:
        """Queued ids in scheduling order (O(n log n); for status and tests, not hot paths)."""
        live = self._live
        crit = sorted(e for e in self._critical if live.get(e[2], (-1,))[0] == e[1])
        rest = sorted(e for e in self._others if live.get(e[3], (-1,))[0] == e[2])
        yield from (e[2] for e in crit)
        yield from (e[3] for e in rest)

    def _forget(self, task_id: str, priority: Priority) -> str:
        del self._live[task_id]
        self._depth[priority] -= 1
        return task_id

    def _maybe_compact(self) -> None:
        # Lazy removal leaves entries behind; rebuild once they outnumber live ones so memory
        # stays proportional to the queue, at amortised O(log n) per removal.
        stale = len(self._critical) + len(self._others) - len(self._live)
        if stale <= max(64, len(self._live)):
            return
        live = self._live
        self._critical = [e for e in self._critical if live.get(e[2], (-1,))[0] == e[1]]
        self._others = [e for e in self._others if live.get(e[3], (-1,))[0] == e[2]]
        heapq.heapify(self._critical)
        heapq.heapify(self._others)
