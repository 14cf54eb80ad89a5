"""Task statuses leave the node in the order they were decided, each at least once.

:class:`StatusOutbox` journals a status (fsync) and queues it; :meth:`StatusOutbox.run`
publishes the queue head, marks it sent and moves on, retrying with back-off while the bus
is down. One queue, one publisher: a preempted task's ``STOPPED`` always reaches the stream
before the ``STARTED`` of the task that preempted it (the scheduler relies on that order). The
queue is bounded: deciding a status waits while it is full, which slows the task consumer
down instead of growing memory.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import uuid
from collections.abc import Awaitable, Callable

from symbi.bus.v1 import events_pb2
from symbi_common.errors import SymbiError
from symbi_sandbox.journal import DispatchJournal, JournaledStatus

__all__ = ["StatusOutbox", "status_message_id"]

_log = logging.getLogger(__name__)

Publisher = Callable[[events_pb2.TaskStatus, str], Awaitable[object]]


def status_message_id(node_id: str, status: events_pb2.TaskStatus) -> str:
    """The bus message id of a status: the same on every retry (JetStream de-duplicates)."""
    state = events_pb2.TaskStatus.State.Name(status.state)
    key = f"symbi:task-status:{node_id}:{status.task_id}:{status.dispatch_id}:{state}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


class StatusOutbox:
    """Journaled, ordered, retried publication of task statuses."""

    def __init__(
        self,
        journal: DispatchJournal,
        publish: Publisher,
        *,
        node_id: str,
        max_pending: int = 10_000,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._journal = journal
        self._publish = publish
        self._node_id = node_id
        self._pending: collections.deque[JournaledStatus] = collections.deque()
        self._max_pending = max_pending
        self._room = asyncio.Condition()
        self._changed = asyncio.Event()
        self._empty = asyncio.Event()
        self._max_backoff_s = max_backoff_s
        self.published = 0
        self.failures = 0

    def restore(self, entries: list[JournaledStatus]) -> None:
        """Queues statuses an earlier run journaled but did not publish (in their order)."""
        for entry in entries:
            self._pending.append(entry)
        self._changed.set()

    async def add(self, status: events_pb2.TaskStatus, *, final: bool) -> None:
        """Journals ``status`` durably and queues it for publication."""
        async with self._room:
            await self._room.wait_for(lambda: len(self._pending) < self._max_pending)
            entry = await self._journal.record_status(status, final=final)
            self._pending.append(entry)
        self._changed.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def drained(self) -> None:
        """Returns once everything queued so far is published (tests, shutdown)."""
        while self._pending:
            self._empty.clear()
            await self._empty.wait()

    async def run(self) -> None:
        """Publishes queued statuses until cancelled."""
        backoff = 0.1
        while True:
            if not self._pending:
                self._changed.clear()
                await self._changed.wait()
                continue
            entry = self._pending[0]
            try:
                await self._publish(entry.status, status_message_id(self._node_id, entry.status))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                text = exc.message if isinstance(exc, SymbiError) else repr(exc)
                _log.warning(
                    "publishing status %s of task %s failed (%s); retrying in %.1f s",
                    events_pb2.TaskStatus.State.Name(entry.status.state),
                    entry.status.task_id,
                    text,
                    backoff,
                )
                await asyncio.sleep(backoff)  # back-off between retries, not a wait for state
                backoff = min(backoff * 2, self._max_backoff_s)
                continue
            backoff = 0.1
            self._pending.popleft()
            async with self._room:
                self._room.notify_all()
            if not self._pending:
                self._empty.set()
            self.published += 1
            await self._journal.mark_sent(entry.seq)
