"""Periodic jobs of the context service, each a loop spawned under the process's TaskGroup.

- ``maintain``: the vector store's housekeeping (the embedded engine rebuilds HNSW graphs of
  collections that received ``optimize_after`` new points; on a worker thread).
- ``sweep``: delete expired short-term memories.
- ``purge``: delete knowledge past ``knowledge_retention_days``.

A failing run is logged, counted and retried at the next interval; a dependency that is
down (Unavailable) marks the ``vector-store`` component unhealthy until a run succeeds.
After ``max_consecutive_failures`` failures in a row the loop raises, which stops the
process (the runner's rule for crashed loops) rather than serving from a broken store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import Counter, Histogram

from symbi_common.errors import Unavailable

__all__ = ["Job", "run_periodically"]

log = logging.getLogger(__name__)

RUNS = Counter(
    "symbi_context_job_runs_total", "Housekeeping runs, by job and outcome.", ["job", "outcome"]
)
SECONDS = Histogram(
    "symbi_context_job_seconds",
    "Duration of housekeeping runs.",
    ["job"],
    buckets=(0.001, 0.01, 0.1, 0.5, 1, 5, 30, 120, 600, 1800),
)

HealthSetter = Callable[[bool], Awaitable[None]]


@dataclass(frozen=True)
class Job:
    """One periodic job: ``run`` returns how many items it handled (for the log)."""

    name: str
    interval_s: float
    run: Callable[[], Awaitable[int]]
    max_consecutive_failures: int = 10


async def run_periodically(job: Job, health: HealthSetter) -> None:
    """Run ``job`` every ``interval_s`` until cancelled."""
    failures = 0
    unhealthy = False
    while True:
        await asyncio.sleep(job.interval_s)
        started = time.perf_counter()
        try:
            handled = await job.run()
        except Unavailable as exc:
            failures += 1
            RUNS.labels(job.name, "unavailable").inc()
            log.warning("%s: store unavailable (%s); retrying", job.name, exc.message)
            if not unhealthy:
                await health(False)
                unhealthy = True
        except Exception:
            failures += 1
            RUNS.labels(job.name, "error").inc()
            log.exception("%s failed (%d in a row)", job.name, failures)
            if failures >= job.max_consecutive_failures:
                raise
        else:
            if unhealthy:
                await health(True)
                unhealthy = False
            failures = 0
            RUNS.labels(job.name, "ok").inc()
            if handled:
                log.info("%s handled %d items", job.name, handled)
        finally:
            SECONDS.labels(job.name).observe(time.perf_counter() - started)
        if failures >= job.max_consecutive_failures:
            raise Unavailable(f"{job.name} failed {failures} times in a row")
