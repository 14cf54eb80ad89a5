"""Bus sends taken off the core's critical path.

The core journals a change and then sends orders (TaskAssignment, TaskStop) and lifecycle
statuses; each send is a JetStream publish the server syncs to disk, so awaiting them one by
one inside the core would make every decision wait for two more disk writes. The outbox
takes them in a bounded queue (a full queue makes the core wait: backpressure) and sends up
to ``concurrency`` at once, retrying a retryable failure a few times.

What happens when a send still fails is what happened before: orders are best effort after
the journal write (docs/adr/0052) — a dispatch that never arrives is retried at its
acknowledgement deadline, a stop at its stop deadline and on rebuild; a lost lifecycle
status is corrected by the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from symbi_common.errors import SymbiError

__all__ = ["Outbox"]

log = logging.getLogger(__name__)

SENDS = Counter("symbi_scheduler_outbox_sends_total", "Outbox sends, by outcome.", ["outcome"])
DEPTH = Gauge("symbi_scheduler_outbox_depth", "Sends waiting in the outbox.")


@dataclass(frozen=True, slots=True)
class _Send:
    what: str
    send: Callable[[], Awaitable[None]]


class Outbox:
    """A bounded queue of sends, drained by ``run`` with bounded concurrency."""

    def __init__(
        self,
        *,
        capacity: int = 4096,
        concurrency: int = 64,
        attempts: int = 3,
        retry_delay_s: float = 0.2,
    ) -> None:
        self._queue: asyncio.Queue[_Send] = asyncio.Queue(maxsize=capacity)
        self._concurrency = concurrency
        self._attempts = attempts
        self._retry_delay = retry_delay_s
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def put(self, what: str, send: Callable[[], Awaitable[None]]) -> None:
        """Queue a send (waits while the outbox is full)."""
        self._idle.clear()
        await self._queue.put(_Send(what, send))
        DEPTH.set(self._queue.qsize())

    async def drained(self) -> None:
        """Wait until every queued send has been attempted."""
        await self._idle.wait()

    async def run(self) -> None:
        """Send until cancelled."""
        slots = asyncio.Semaphore(self._concurrency)
        async with asyncio.TaskGroup() as tg:
            while True:
                item = await self._queue.get()
                DEPTH.set(self._queue.qsize())
                await slots.acquire()
                self._in_flight += 1
                tg.create_task(self._send(item, slots), name=f"outbox: {item.what}")

    async def _send(self, item: _Send, slots: asyncio.Semaphore) -> None:
        try:
            for attempt in range(1, self._attempts + 1):
                try:
                    await item.send()
                    SENDS.labels("sent").inc()
                    return
                except SymbiError as exc:
                    if not exc.retryable or attempt == self._attempts:
                        SENDS.labels("failed").inc()
                        log.warning("%s failed: %s", item.what, exc.message)
                        return
                except Exception:
                    SENDS.labels("failed").inc()
                    log.exception("%s failed", item.what)
                    return
                await asyncio.sleep(self._retry_delay * attempt)
        finally:
            self._in_flight -= 1
            slots.release()
            if self._in_flight == 0 and self._queue.empty():
                self._idle.set()
