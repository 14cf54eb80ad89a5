"""A task's output: chunks in a bounded buffer that any number of readers can follow.

The container's output is pumped into a :class:`LogBuffer` as it arrives; the pump never
waits for readers (a slow gRPC client must not stall the container). The buffer keeps the
most recent ``max_bytes``; a reader that falls behind the retained window skips ahead and is
told how many bytes it missed through a ``stream="gap"`` chunk. Readers may start from the
beginning of what is retained or from now, and end when the buffer is closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

__all__ = ["LogBuffer", "LogChunk"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogChunk:
    """Output of a task: ``stream`` is ``stdout``, ``stderr`` or ``gap`` (bytes skipped)."""

    stream: str
    data: bytes
    timestamp_ms: int


class LogBuffer:
    """Bounded, append-only, multi-reader buffer of :class:`LogChunk` (one event loop)."""

    def __init__(self, max_bytes: int = 1024 * 1024) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self._max_bytes = max_bytes
        self._chunks: deque[LogChunk] = deque()
        self._first_index = 0  # absolute index of self._chunks[0]
        self._retained = 0
        self._dropped_bytes = 0
        self._total_bytes = 0
        self._closed = False
        self._changed = asyncio.Event()
        self._taps: list[Callable[[LogChunk | None], None]] = []

    @property
    def total_bytes(self) -> int:
        """Bytes appended over the buffer's life."""
        return self._total_bytes

    @property
    def dropped_bytes(self) -> int:
        """Bytes no longer retained (older than the window)."""
        return self._dropped_bytes

    @property
    def closed(self) -> bool:
        return self._closed

    def append(self, stream: str, data: bytes) -> None:
        """Adds output; drops the oldest chunks beyond the byte bound. Never blocks."""
        if self._closed or not data:
            return
        if len(data) > self._max_bytes:  # keep the tail of an oversized chunk
            self._dropped_bytes += len(data) - self._max_bytes
            data = data[-self._max_bytes :]
        self._chunks.append(LogChunk(stream, data, int(time.time() * 1000)))
        self._retained += len(data)
        self._total_bytes += len(data)
        self._notify(self._chunks[-1])
        while self._retained > self._max_bytes:
            old = self._chunks.popleft()
            self._first_index += 1
            self._retained -= len(old.data)
            self._dropped_bytes += len(old.data)
        self._wake()

    def close(self) -> None:
        """Marks the end of output; readers finish once they have read what is retained."""
        if not self._closed:
            self._closed = True
            self._wake()
            self._notify(None)

    def tap(self, listener: Callable[[LogChunk | None], None]) -> list[LogChunk]:
        """Calls ``listener`` with every chunk appended from now on (``None`` once closed)
        and returns the chunks retained so far: together, the whole output in order. The
        listener runs inside :meth:`append` — it must be quick and never raise."""
        if not self._closed:
            self._taps.append(listener)
        return self.snapshot()

    def _notify(self, chunk: LogChunk | None) -> None:
        for listener in self._taps:
            try:
                listener(chunk)
            except Exception:  # a failing listener must not stop the output pump
                _log.exception("output listener failed")
        if chunk is None:
            self._taps.clear()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def snapshot(self) -> list[LogChunk]:
        """The retained chunks, oldest first."""
        return list(self._chunks)

    def text(self, stream: str | None = None) -> str:
        """Retained output decoded as UTF-8 (``stream`` filters stdout/stderr)."""
        return b"".join(
            c.data for c in self._chunks if stream is None or c.stream == stream
        ).decode("utf-8", "replace")

    async def follow(self, *, from_start: bool = True) -> AsyncIterator[LogChunk]:
        """Yields retained chunks (or only new ones), then new ones until the buffer closes."""
        position = self._first_index if from_start else self._first_index + len(self._chunks)
        while True:
            if position < self._first_index:
                missed = self._first_index - position
                yield LogChunk("gap", f"{missed} chunks dropped".encode(), int(time.time() * 1000))
                position = self._first_index
            end = self._first_index + len(self._chunks)
            if position < end:
                chunk = self._chunks[position - self._first_index]
                position += 1
                yield chunk
                continue
            if self._closed:
                return
            await self._changed.wait()
