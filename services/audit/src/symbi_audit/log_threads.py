"""The audit log behind threads, for the event loop.

:class:`AuditLog` blocks on SQLite and fsync. :class:`LogThreads` runs every write (appends,
checkpoints) on one writer thread, so writes stay in order and never contend, and reads
(queries, proofs, exports, reports) on a bounded pool of reader threads, which WAL lets run
while a batch commits. Followers wait for growth with :meth:`LogThreads.wait_for_growth`
instead of polling.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from symbi_audit.log import AuditLog

__all__ = ["LogThreads", "next_chunk"]

T = TypeVar("T")
P = ParamSpec("P")


class LogThreads:
    """One writer thread and ``readers`` reader threads over one :class:`AuditLog`."""

    def __init__(self, log: AuditLog, *, readers: int = 4) -> None:
        self.log = log
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-writer")
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="audit-reader")
        self._grown = asyncio.Event()
        self._closed = False

    @property
    def size(self) -> int:
        """Entries durably in the log (read without a thread: it is an in-memory value)."""
        return self.log.store.size

    async def write(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on the writer thread; wake followers if the log grew."""
        before = self.size
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._writer, lambda: fn(*args, **kwargs))
        finally:
            if self.size != before:
                self._notify()

    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on a reader thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(*args, **kwargs))

    async def wait_for_growth(self, size: int, timeout: float) -> bool:
        """Wait until the log holds more than ``size`` entries; ``False`` on timeout."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.size <= size:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            grown = self._grown
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await grown.wait()
        return True

    def _notify(self) -> None:
        grown, self._grown = self._grown, asyncio.Event()
        grown.set()

    def close(self) -> None:
        """Wait for running work, stop the threads and close the log (idempotent, blocking)."""
        if self._closed:
            return
        self._closed = True
        self._writer.shutdown(wait=True, cancel_futures=True)
        self._readers.shutdown(wait=True, cancel_futures=True)
        self.log.close()


def next_chunk(lines: Iterator[str], max_bytes: int) -> bytes:
    """Up to about ``max_bytes`` of ``lines`` joined (at least one line); ``b""`` at the end.

    For streaming a lazy export from reader threads one chunk at a time.
    """
    parts: list[bytes] = []
    total = 0
    for line in lines:
        data = line.encode("utf-8")
        parts.append(data)
        total += len(data)
        if total >= max_bytes:
            break
    return b"".join(parts)
