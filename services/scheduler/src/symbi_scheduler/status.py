"""What GetSystemStatus reports, and the decisions-per-second meter behind it."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from .priority import Priority
from .resources import Vector

__all__ = ["DecisionMeter", "SchedulerStatus"]


class DecisionMeter:
    """Counts decisions in one-second buckets over a sliding window (monotonic seconds)."""

    __slots__ = ("_buckets", "_total", "_window")

    def __init__(self, window_s: float) -> None:
        self._window = window_s
        self._buckets: deque[list[int]] = deque()  # [second, count]
        self._total = 0

    def record(self, now: float, count: int = 1) -> None:
        second = math.floor(now)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += count
        else:
            self._buckets.append([second, count])
            self._trim(now)
        self._total += count

    def _trim(self, now: float) -> None:
        horizon = now - self._window
        buckets = self._buckets
        while buckets and buckets[0][0] + 1 <= horizon:
            buckets.popleft()

    def rate(self, now: float) -> float:
        """Decisions per second over the window ending at ``now``."""
        self._trim(now)
        return sum(count for _, count in self._buckets) / self._window

    @property
    def total(self) -> int:
        return self._total


@dataclass(frozen=True, slots=True)
class SchedulerStatus:
    """A snapshot of the scheduler for GetSystemStatus.

    ``capacity``/``allocated`` sum the accounted dimensions (memory_mb, cpu_millicores,
    disk_io_mbps, network_io_mbps) over reachable nodes; ``utilisation`` is their ratio per
    dimension name (0 when there is no capacity).
    """

    active: bool
    queued: Mapping[Priority, int]
    dispatched: int
    running: int
    stopping: int
    nodes_total: int
    nodes_reachable: int
    nodes_accepting: int
    capacity: Vector
    allocated: Vector
    utilisation: Mapping[str, float]
    decisions_per_s: float
    decisions_total: int
    preemptions_total: int
    preemptions_in_window: int
    failed_total: int
    journal_position: int

    @property
    def queued_total(self) -> int:
        return sum(self.queued.values())
