"""Coalescing concurrent calls into one request (group commit), with bounded waiting.

While one request is in flight, new calls queue up; the next request carries all of them
(up to ``max_batch``). A lone call goes out at once, so nothing waits for a timer; a burst
(10,000 agents registering) becomes a few hundred requests instead of 10,000.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from symbi_common.errors import DeadlineExceeded, Unavailable

__all__ = ["Batcher"]

log = logging.getLogger(__name__)

I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741


class Batcher(Generic[I, O]):
    """Calls ``send(items)`` for batches of items; each caller gets its item's result."""

    def __init__(
        self,
        name: str,
        send: Callable[[list[I]], Awaitable[Sequence[O]]],
        *,
        max_batch: int = 256,
        queue_size: int = 4096,
        wait_s: float = 10.0,
    ) -> None:
        self.name = name
        self._send = send
        self.max_batch = max_batch
        self.wait_s = wait_s
        self._queue: asyncio.Queue[tuple[I, asyncio.Future[O]]] = asyncio.Queue(queue_size)
        self.running = False

    async def call(self, item: I) -> O:
        """The result for ``item``; DeadlineExceeded when it is not sent and answered in
        ``wait_s``, Unavailable when the batcher does not run."""
        if not self.running:
            raise Unavailable(f"{self.name}: not running", reason="BATCHER_STOPPED")
        future: asyncio.Future[O] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self.wait_s):
                await self._queue.put((item, future))
                return await future  # a cancelled caller cancels its future
        except TimeoutError:
            future.cancel()
            raise DeadlineExceeded(
                f"{self.name}: no answer within {self.wait_s:.0f} s", reason="BATCH_TIMEOUT"
            ) from None

    async def run(self) -> None:
        self.running = True
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < self.max_batch and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                live = [(item, future) for item, future in batch if not future.done()]
                if live:
                    await self._flush(live)
        finally:
            self.running = False
            while not self._queue.empty():
                _, future = self._queue.get_nowait()
                future.cancel()

    async def _flush(self, batch: list[tuple[I, asyncio.Future[O]]]) -> None:
        try:
            results = await self._send([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        if len(results) != len(batch):
            error = Unavailable(
                f"{self.name}: {len(results)} answers for {len(batch)} requests",
                reason="BATCH_MISMATCH",
            )
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
