"""Deadlines for what the scheduler has asked of nodes and is waiting to hear back about.

Two kinds: a dispatched task waits for its node's *start* acknowledgement; a preempted task
waits for its node to confirm the *stop*. A task has at most one outstanding expectation at
a time (it is either dispatched or stopping). Deadlines are monotonic seconds; expiry is
O(log n) per entry with lazy removal.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from dataclasses import dataclass

__all__ = ["DispatchTracker", "Expectation", "ExpectationKind"]


class ExpectationKind(enum.Enum):
    START = "start"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class Expectation:
    """``node_id`` should confirm ``kind`` for ``task_id`` (dispatch ``dispatch_id``) by
    ``deadline``."""

    kind: ExpectationKind
    task_id: str
    dispatch_id: str
    node_id: str
    deadline: float


class DispatchTracker:
    """Outstanding start and stop confirmations, by task id."""

    __slots__ = ("_heap", "_pending", "_tokens")

    def __init__(self) -> None:
        self._pending: dict[str, tuple[int, Expectation]] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._tokens = itertools.count()

    def expect(self, expectation: Expectation) -> None:
        """Wait for ``expectation`` (replacing any earlier one for the same task)."""
        token = next(self._tokens)
        self._pending[expectation.task_id] = (token, expectation)
        heapq.heappush(self._heap, (expectation.deadline, token, expectation.task_id))
        if len(self._heap) > 2 * len(self._pending) + 64:
            self._compact()

    def get(self, task_id: str) -> Expectation | None:
        entry = self._pending.get(task_id)
        return entry[1] if entry is not None else None

    def resolve(self, task_id: str) -> Expectation | None:
        """Stop waiting for ``task_id``; the expectation it had, if any."""
        entry = self._pending.pop(task_id, None)
        return entry[1] if entry is not None else None

    def expired(self, now: float) -> list[Expectation]:
        """Remove and return the expectations whose deadline is at or before ``now``."""
        out: list[Expectation] = []
        heap = self._heap
        pending = self._pending
        while heap and heap[0][0] <= now:
            _, token, task_id = heapq.heappop(heap)
            entry = pending.get(task_id)
            if entry is not None and entry[0] == token:
                del pending[task_id]
                out.append(entry[1])
        return out

    def next_deadline(self) -> float | None:
        """The earliest live deadline."""
        heap = self._heap
        pending = self._pending
        while heap:
            _, token, task_id = heap[0]
            entry = pending.get(task_id)
            if entry is not None and entry[0] == token:
                return heap[0][0]
            heapq.heappop(heap)
        return None

    def __len__(self) -> int:
        return len(self._pending)

    def count(self, kind: ExpectationKind) -> int:
        return sum(1 for _, e in self._pending.values() if e.kind is kind)

    def _compact(self) -> None:
        self._heap = [(e.deadline, tok, tid) for tid, (tok, e) in self._pending.items()]
        heapq.heapify(self._heap)
