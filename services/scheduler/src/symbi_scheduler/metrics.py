"""The scheduler's Prometheus metrics.

Counters and histograms live beside what they count (journal writes, orders, statuses,
heartbeats). This module holds the decision-latency tracker and a collector that reads the
core's status at scrape time, so gauges cost nothing between scrapes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .status import SchedulerStatus

__all__ = ["DecisionLatency", "StatusCollector"]

DECISION_SECONDS = Histogram(
    "symbi_scheduler_decision_seconds",
    "Wall time of one scheduling decision: policy allocate, journal write, orders sent.",
    buckets=(
        0.0001,
        0.00025,
        0.0005,
        0.001,
        0.002,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        1.0,
    ),
)


class DecisionLatency:
    """The last ``window`` decision times, for GetSystemStatus percentiles (and the
    histogram above, for Prometheus)."""

    def __init__(self, window: int = 10_000) -> None:
        self._samples: deque[float] = deque(maxlen=window)

    def observe(self, seconds: float) -> None:
        self._samples.append(seconds)
        DECISION_SECONDS.observe(seconds)

    def percentiles(self) -> tuple[float, float]:
        """(p50, p99) in seconds over the window; zeros before the first decision."""
        if not self._samples:
            return 0.0, 0.0
        ordered = sorted(self._samples)
        n = len(ordered)
        return ordered[(n - 1) // 2], ordered[min(n - 1, round(0.99 * (n - 1)))]

    def clear(self) -> None:
        self._samples.clear()


class StatusCollector(Collector):
    """Gauges from ``status()`` at scrape time. ``register``/``unregister`` with the
    default registry (one per process)."""

    def __init__(self, status: Callable[[], SchedulerStatus]) -> None:
        self._status = status

    def register(self) -> None:
        REGISTRY.register(self)

    def unregister(self) -> None:
        REGISTRY.unregister(self)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # collected lazily; nothing to check at registration

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        s = self._status()
        leader = GaugeMetricFamily(
            "symbi_scheduler_leader", "1 while this process is the active scheduler."
        )
        leader.add_metric([], 1.0 if s.active else 0.0)
        yield leader
        queued = GaugeMetricFamily(
            "symbi_scheduler_queued_tasks", "Queued tasks by priority.", labels=["priority"]
        )
        for priority, count in s.queued.items():
            queued.add_metric([priority.label], count)
        yield queued
        tasks = GaugeMetricFamily(
            "symbi_scheduler_tasks", "Tasks on nodes by state.", labels=["state"]
        )
        tasks.add_metric(["dispatched"], s.dispatched)
        tasks.add_metric(["running"], s.running)
        tasks.add_metric(["stopping"], s.stopping)
        yield tasks
        nodes = GaugeMetricFamily(
            "symbi_scheduler_nodes", "Known nodes by state.", labels=["state"]
        )
        nodes.add_metric(["total"], s.nodes_total)
        nodes.add_metric(["reachable"], s.nodes_reachable)
        nodes.add_metric(["accepting"], s.nodes_accepting)
        yield nodes
        util = GaugeMetricFamily(
            "symbi_scheduler_utilisation",
            "Allocated share of reachable capacity, by resource.",
            labels=["resource"],
        )
        for name, value in s.utilisation.items():
            util.add_metric([name], value)
        yield util
        rate = GaugeMetricFamily(
            "symbi_scheduler_decisions_per_second", "Decisions per second, recent window."
        )
        rate.add_metric([], s.decisions_per_s)
        yield rate
        for name, value, doc in (
            ("decisions", s.decisions_total, "Scheduling decisions while leading."),
            ("preemptions", s.preemptions_total, "Tasks preempted while leading."),
            ("failed", s.failed_total, "Tasks the scheduler failed while leading."),
        ):
            counter = CounterMetricFamily(f"symbi_scheduler_{name}", doc)
            counter.add_metric([], value)
            yield counter
