"""A task's egress bandwidth: one token bucket of bytes shared by all its tunnels.

``ResourceLimits.network_io_mbps`` is megabits per second: the bucket fills at
``mbps × 125 000`` bytes/s up to a small burst. Every relayed chunk, in either direction and
on any of the task's tunnels, takes its size from the bucket before it is written on; when
the bucket is short the writer waits. The bucket may go into debt (a 64 KiB chunk against a
smaller balance): the next taker waits for the debt to be repaid first, so concurrent
tunnels share the rate instead of each getting it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["BYTES_PER_MBPS", "ByteRateLimiter", "bytes_per_second"]

#: One megabit per second in bytes per second.
BYTES_PER_MBPS = 125_000


def bytes_per_second(mbps: int) -> int:
    """``network_io_mbps`` → bytes/s; 0 stays 0 (unlimited)."""
    return max(0, mbps) * BYTES_PER_MBPS


class ByteRateLimiter:
    """A byte token bucket; ``rate`` bytes/s, at most ``burst`` bytes saved up.

    ``clock`` and ``sleep`` are injectable for tests (monotonic seconds; an awaitable pause).
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be ≥ 1 byte, got {burst}")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._at = clock()
        self.waited_s = 0.0  # total time takers were held back (for tests and accounting)

    @property
    def tokens(self) -> float:
        """The balance now (negative: debt still to be repaid)."""
        self._refill()
        return self._tokens

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def reserve(self, size: int) -> float:
        """Takes ``size`` bytes now; returns how long the caller must wait before sending."""
        if size <= 0:
            return 0.0
        self._refill()
        self._tokens -= size
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def acquire(self, size: int) -> None:
        """Waits until ``size`` bytes may be sent (cancellable; the bytes stay taken)."""
        delay = self.reserve(size)
        if delay > 0:
            self.waited_s += delay
            await self._sleep(delay)
