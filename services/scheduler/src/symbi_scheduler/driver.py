"""``SchedulerDriver``: the loop that keeps a core in step with its leadership and with time.

One per scheduler process. Each ``step`` renews or seeks the lease (when due), activates the
core on becoming leader (re-reading the journal), deactivates it on losing the lease, then —
while leading — ticks and runs a scheduling cycle if one is wanted. ``run`` repeats ``step``,
sleeping until the next deadline (lease, acknowledgements, heartbeats) or until ``wake`` is
called by an event handler (a submission, an acknowledgement, a heartbeat that freed room).

Event handlers call the core directly (``submit``, ``acknowledge``, ...) and then ``wake``;
they get ``Unavailable`` from a core that is not active, which bus handlers turn into a
delayed redelivery and gRPC into UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from symbi_common.errors import SymbiError

from .core import SchedulerCore
from .lease import LeaderElection
from .ports import Clock

__all__ = ["DriverStep", "SchedulerDriver"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DriverStep:
    """What one ``step`` did; ``next_at`` is when the next step is due (monotonic)."""

    leading: bool
    activated: bool
    deactivated: bool
    decisions: int
    next_at: float
    error: str = ""


class SchedulerDriver:
    """Drives one ``SchedulerCore`` with one ``LeaderElection``."""

    def __init__(
        self,
        core: SchedulerCore,
        election: LeaderElection,
        clock: Clock,
        *,
        max_decisions: int = 256,
        max_sleep_s: float = 1.0,
        on_step: Callable[[DriverStep], Awaitable[None]] | None = None,
    ) -> None:
        """``on_step`` runs after every step of ``run`` (the service starts and stops its
        leader-only work there); its errors are the caller's."""
        self._core = core
        self._election = election
        self._clock = clock
        self._max_decisions = max_decisions
        self._max_sleep = max_sleep_s
        self._on_step = on_step
        self._wake = asyncio.Event()
        self._next_election = 0.0
        self._stopping = False

    @property
    def core(self) -> SchedulerCore:
        return self._core

    @property
    def election(self) -> LeaderElection:
        return self._election

    def wake(self) -> None:
        """Ask for a step soon (call after feeding the core an event)."""
        self._wake.set()

    async def step(self) -> DriverStep:
        """One round: lease, (de)activation, tick, cycle. Errors of the core are logged and
        reported (the next step retries); ``CancelledError`` propagates."""
        mono = self._clock.monotonic()
        activated = deactivated = False
        decisions = 0
        error = ""
        if mono >= self._next_election:
            lead = await self._election.step()
            self._next_election = lead.next_step_at
        leading = self._election.is_leader
        try:
            if not leading:
                if self._core.active:
                    await self._core.deactivate()
                    deactivated = True
            else:
                if not self._core.active:
                    await self._core.activate()
                    activated = True
                await self._core.tick()
                rounds = 0
                while (
                    self._core.needs_cycle
                    and rounds < 4
                    and self._clock.monotonic() < self._next_election
                ):
                    # A few cycles per step, so a burst is worked off without starving the
                    # lease renewal of its turn (cycles stop when the renewal is due).
                    report = await self._core.schedule(self._max_decisions)
                    decisions += report.decisions
                    rounds += 1
                    if report.stalled:
                        break
        except SymbiError as exc:
            error = exc.message
            log.warning("scheduler step failed: %s", exc.message)
        next_at = self._next_election
        core_due = self._core.next_deadline()
        if core_due is not None:
            next_at = min(next_at, core_due)
        return DriverStep(
            leading=leading,
            activated=activated,
            deactivated=deactivated,
            decisions=decisions,
            next_at=next_at,
            error=error,
        )

    async def run(self) -> None:
        """Step until ``stop``; sleeps until the next deadline or a ``wake``."""
        self._stopping = False
        while not self._stopping:
            self._wake.clear()
            result = await self.step()
            if self._on_step is not None:
                await self._on_step(result)
            if self._core.needs_cycle:
                continue
            delay = result.next_at - self._clock.monotonic()
            delay = min(max(delay, 0.0), self._max_sleep)
            if result.error:
                delay = max(delay, min(0.1, self._max_sleep))  # no busy loop on a failing store
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def stop(self, *, resign: bool = True) -> None:
        """End ``run`` after its current step, stop acting, and (by default) hand the lease
        over at once. Safe to call while ``run`` is in progress or after it was cancelled."""
        self._stopping = True
        self._wake.set()
        if resign:
            await self._election.resign()
        await self._core.deactivate()
