"""What the core's operations report back to the process that drives them."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ActivationReport", "CycleReport", "Placement", "TickReport"]


@dataclass(frozen=True, slots=True)
class Placement:
    """One task sent to a node; ``preempted`` were stopped to make room for it."""

    task_id: str
    node_id: str
    dispatch_id: str
    preempted: tuple[str, ...] = ()


@dataclass(slots=True)
class CycleReport:
    """The outcome of one ``SchedulerCore.schedule`` call.

    ``waiting``: tasks looked at and left queued (no room, or holding capacity);
    ``stalled``: why the cycle stopped early (a port did not answer), empty if it did not;
    ``out_of_time``: the cycle yielded (time budget used, or an event waited for the core);
    more may be placeable.
    """

    placements: list[Placement] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    waiting: int = 0
    stalled: str = ""
    out_of_time: bool = False

    @property
    def decisions(self) -> int:
        return len(self.placements) + len(self.failed)


@dataclass(slots=True)
class TickReport:
    """What ``SchedulerCore.tick`` found due."""

    lost_nodes: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    stops_resent: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ActivationReport:
    """What ``SchedulerCore.activate`` rebuilt from the journal."""

    position: int
    queued: int
    dispatched: int
    running: int
    stopping: int
    finished: int  # terminal records found and cleaned up
    redispatched: int  # dispatches re-sent with their original id (still within not_after)
