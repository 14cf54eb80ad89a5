"""Clocks: the system's, and a manual one for deterministic tests and simulations."""

from __future__ import annotations

import time

__all__ = ["ManualClock", "SystemClock"]


class SystemClock:
    """``time.time()`` and ``time.monotonic()``."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to; wall and monotonic time advance together."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall = float(start)
        self._mono = 1000.0

    def now(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds`` (not negative)."""
        if seconds < 0:
            raise ValueError("a manual clock only moves forward; use step_wall to jump back")
        self._wall += seconds
        self._mono += seconds

    def step_wall(self, seconds: float) -> None:
        """Jump the wall clock alone (either way), as NTP might."""
        self._wall += seconds
