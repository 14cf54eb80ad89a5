"""WatchQueue fan-out: every task record the core writes, to every watcher, bounded.

The core calls ``publish`` synchronously with each new record (it must not block). Each
watcher has its own bounded queue; a watcher that falls ``buffer`` events behind is cut off
(its stream ends with RESOURCE_EXHAUSTED, naming the bound) instead of slowing the scheduler
or growing memory. When this process stops leading, every watch ends with UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

from symbi.scheduler.v1 import scheduler_pb2
from symbi_common.errors import ResourceExhausted, SymbiError, Unavailable

from .convert import event_name, task_to_proto
from .task import TaskRecord

__all__ = ["WatchHub"]

DROPPED = Counter("symbi_scheduler_watchers_dropped_total", "Watchers cut off for falling behind.")
WATCHERS = Gauge("symbi_scheduler_watchers", "WatchQueue streams open on this process.")


@dataclass(eq=False)
class _Watcher:
    agent_id: str
    queue: asyncio.Queue[scheduler_pb2.QueueEvent]
    ended: SymbiError | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class WatchHub:
    """Fans task records out to watchers."""

    def __init__(self, *, buffer: int, max_watchers: int) -> None:
        self._buffer = buffer
        self._max = max_watchers
        self._watchers: set[_Watcher] = set()
        self._last: TaskRecord | None = None

    def __len__(self) -> int:
        return len(self._watchers)

    def publish(self, rec: TaskRecord) -> None:
        """A new record of a task (the core's ``TaskListener``)."""
        if rec is self._last:
            return  # a failed task is journaled and then dropped: one event, not two
        self._last = rec
        if not self._watchers:
            return
        event: scheduler_pb2.QueueEvent | None = None
        for watcher in self._watchers:
            if watcher.ended is not None or (
                watcher.agent_id and watcher.agent_id != rec.spec.agent_id
            ):
                continue
            if event is None:
                event = scheduler_pb2.QueueEvent(
                    task=task_to_proto(rec),
                    event=event_name(rec),
                    timestamp_ms=round(time.time() * 1000),
                )
            try:
                watcher.queue.put_nowait(event)
            except asyncio.QueueFull:
                DROPPED.inc()
                self._end(
                    watcher,
                    ResourceExhausted(
                        f"watcher fell {self._buffer} events behind; reconnect",
                        reason="WATCHER_TOO_SLOW",
                    ),
                )
            watcher.wake.set()

    def close_all(self, error: SymbiError) -> None:
        """End every watch with ``error`` (this process stopped leading)."""
        for watcher in self._watchers:
            self._end(watcher, error)

    @staticmethod
    def _end(watcher: _Watcher, error: SymbiError) -> None:
        if watcher.ended is None:
            watcher.ended = error
        watcher.wake.set()

    async def watch(
        self, agent_id: str, snapshot: Iterable[TaskRecord] = ()
    ) -> AsyncIterator[scheduler_pb2.QueueEvent]:
        """Events for ``agent_id`` (all when empty), after the ``snapshot`` records."""
        if len(self._watchers) >= self._max:
            raise Unavailable(
                f"too many watchers ({self._max}); retry later", reason="TOO_MANY_WATCHERS"
            )
        watcher = _Watcher(agent_id, asyncio.Queue(maxsize=self._buffer))
        self._watchers.add(watcher)
        WATCHERS.set(len(self._watchers))
        try:
            now_ms = round(time.time() * 1000)
            for rec in snapshot:
                if not agent_id or rec.spec.agent_id == agent_id:
                    yield scheduler_pb2.QueueEvent(
                        task=task_to_proto(rec), event="snapshot", timestamp_ms=now_ms
                    )
            while True:
                while not watcher.queue.empty():
                    yield watcher.queue.get_nowait()
                if watcher.ended is not None:
                    raise watcher.ended
                watcher.wake.clear()
                if watcher.queue.empty() and watcher.ended is None:
                    await watcher.wake.wait()
        finally:
            self._watchers.discard(watcher)
            WATCHERS.set(len(self._watchers))
