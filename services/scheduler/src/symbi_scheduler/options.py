"""Tunables of the scheduler's domain core, as frozen dataclasses with checked values.

The service's pydantic settings (a later ``config.py``) map onto these; every invalid value
raises ``ConfigError`` naming the field, the value and what is allowed.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from symbi_common.errors import ConfigError

from .priority import Priority

__all__ = [
    "DispatchOptions",
    "LimitOptions",
    "NodeOptions",
    "PlacementOptions",
    "PlacementStrategy",
    "PreemptionOptions",
    "QueueOptions",
    "SchedulerOptions",
]


def _positive(owner: str, name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{owner}.{name} must be a finite number, got {value!r}")
    if value <= 0:
        raise ConfigError(f"{owner}.{name} must be positive, got {value!r}")


def _at_least(owner: str, name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{owner}.{name} must be an integer >= {minimum}, got {value!r}")


class PlacementStrategy(enum.Enum):
    """How a node is chosen among those that fit.

    - ``FIRST_FIT``: the first fitting node in registration order (packs the front).
    - ``BEST_FIT``: the node left with the least free capacity (packs tightly, keeping large
      holes for large tasks).
    - ``SPREAD``: the node left with the most free capacity (least loaded; spreads risk).
    - ``PRIORITY``: per priority, one of the above (``PlacementOptions.by_priority``); by
      default Critical and High spread (headroom, fewer neighbours to disturb) and Normal and
      Low pack with best-fit.

    Ties go to the least-loaded node (lowest dominant share of allocated capacity, then fewest
    tasks), then to registration order.
    """

    FIRST_FIT = "first_fit"
    BEST_FIT = "best_fit"
    SPREAD = "spread"
    PRIORITY = "priority"


_DEFAULT_BY_PRIORITY: Mapping[Priority, PlacementStrategy] = MappingProxyType(
    {
        Priority.CRITICAL: PlacementStrategy.SPREAD,
        Priority.HIGH: PlacementStrategy.SPREAD,
        Priority.NORMAL: PlacementStrategy.BEST_FIT,
        Priority.LOW: PlacementStrategy.BEST_FIT,
    }
)


@dataclass(frozen=True, slots=True)
class QueueOptions:
    """``aging_interval_s``: the A of the aging rule (see ``queue``). ``max_queued``: bound."""

    aging_interval_s: float = 30.0
    max_queued: int = 100_000

    def __post_init__(self) -> None:
        _positive("queue", "aging_interval_s", self.aging_interval_s)
        _at_least("queue", "max_queued", self.max_queued, 1)


@dataclass(frozen=True, slots=True)
class NodeOptions:
    """A node that misses ``missed_heartbeats`` intervals in a row is unreachable; one that
    stays unreachable for ``forget_after_s`` is dropped from the registry (and ListNodes)."""

    heartbeat_interval_s: float = 2.0
    missed_heartbeats: int = 3
    forget_after_s: float = 3600.0

    def __post_init__(self) -> None:
        _positive("nodes", "heartbeat_interval_s", self.heartbeat_interval_s)
        _at_least("nodes", "missed_heartbeats", self.missed_heartbeats, 1)
        _positive("nodes", "forget_after_s", self.forget_after_s)

    @property
    def timeout_s(self) -> float:
        """Silence after which a node is unreachable."""
        return self.heartbeat_interval_s * self.missed_heartbeats


@dataclass(frozen=True, slots=True)
class PlacementOptions:
    """``lookahead``: how many unplaceable tasks one cycle passes over before it stops."""

    strategy: PlacementStrategy = PlacementStrategy.PRIORITY
    by_priority: Mapping[Priority, PlacementStrategy] = field(
        default_factory=lambda: _DEFAULT_BY_PRIORITY
    )
    lookahead: int = 64

    def __post_init__(self) -> None:
        if type(self.strategy) is not PlacementStrategy:
            allowed = ", ".join(s.value for s in PlacementStrategy)
            raise ConfigError(f"placement.strategy {self.strategy!r} unknown; allowed: {allowed}")
        by = dict(_DEFAULT_BY_PRIORITY)
        for prio, strategy in self.by_priority.items():
            if strategy is PlacementStrategy.PRIORITY or not isinstance(
                strategy, PlacementStrategy
            ):
                raise ConfigError(
                    f"placement.by_priority[{prio!r}] must be first_fit, best_fit or spread, "
                    f"got {strategy!r}"
                )
            by[Priority.parse(prio)] = strategy
        object.__setattr__(self, "by_priority", MappingProxyType(by))
        _at_least("placement", "lookahead", self.lookahead, 1)

    def strategy_for(self, priority: Priority) -> PlacementStrategy:
        """The concrete strategy for a task of ``priority``."""
        if self.strategy is PlacementStrategy.PRIORITY:
            return self.by_priority[priority]
        return self.strategy


@dataclass(frozen=True, slots=True)
class PreemptionOptions:
    """The preemption planner and its budget against thrashing.

    Tasks of a priority in ``preemptors`` that cannot be placed may stop running tasks of a
    strictly lower priority. At most ``max_victims`` tasks go for one urgent task, at most
    ``max_per_window`` in any ``window_s`` seconds, and a task preempted less than
    ``cooldown_s`` ago is not preempted again. ``search_budget`` caps the combinations the
    exact minimal-set search visits per decision (then it falls back to a greedy choice).
    """

    enabled: bool = True
    preemptors: frozenset[Priority] = frozenset({Priority.CRITICAL, Priority.HIGH})
    max_victims: int = 8
    max_per_window: int = 20
    window_s: float = 60.0
    cooldown_s: float = 120.0
    search_budget: int = 20_000

    def __post_init__(self) -> None:
        _at_least("preemption", "max_victims", self.max_victims, 1)
        _at_least("preemption", "max_per_window", self.max_per_window, 1)
        _positive("preemption", "window_s", self.window_s)
        if isinstance(self.cooldown_s, bool) or not self.cooldown_s >= 0:
            raise ConfigError(f"preemption.cooldown_s must be >= 0, got {self.cooldown_s!r}")
        _at_least("preemption", "search_budget", self.search_budget, 1)
        if Priority.LOW in self.preemptors:
            raise ConfigError("preemption.preemptors may not include low: nothing ranks below it")


@dataclass(frozen=True, slots=True)
class DispatchOptions:
    """A dispatched task not acknowledged within ``ack_timeout_s`` is retried on another node,
    up to ``max_attempts`` dispatches in a row, then Failed. A task whose node was lost more
    than ``max_node_losses`` times is Failed instead of requeued (it may be what kills them).
    A stop not confirmed within ``ack_timeout_s`` is sent again."""

    ack_timeout_s: float = 10.0
    max_attempts: int = 3
    max_node_losses: int = 3

    def __post_init__(self) -> None:
        _positive("dispatch", "ack_timeout_s", self.ack_timeout_s)
        _at_least("dispatch", "max_attempts", self.max_attempts, 1)
        _at_least("dispatch", "max_node_losses", self.max_node_losses, 0)


@dataclass(frozen=True, slots=True)
class LimitOptions:
    """Hard limits on one request, checked before anything else (InvalidArgument beyond)."""

    max_memory_mb: int = 1024 * 1024
    max_cpu_millicores: int = 256_000
    max_disk_io_mbps: int = 100_000
    max_network_io_mbps: int = 100_000
    max_execution_timeout_s: float = 7 * 24 * 3600.0
    max_metadata_bytes: int = 4096
    max_payload_bytes: int = 256 * 1024

    def __post_init__(self) -> None:
        _at_least("limits", "max_memory_mb", self.max_memory_mb, 1)
        _at_least("limits", "max_cpu_millicores", self.max_cpu_millicores, 1)
        _at_least("limits", "max_disk_io_mbps", self.max_disk_io_mbps, 0)
        _at_least("limits", "max_network_io_mbps", self.max_network_io_mbps, 0)
        _positive("limits", "max_execution_timeout_s", self.max_execution_timeout_s)
        _at_least("limits", "max_metadata_bytes", self.max_metadata_bytes, 0)
        _at_least("limits", "max_payload_bytes", self.max_payload_bytes, 0)


@dataclass(frozen=True, slots=True)
class SchedulerOptions:
    """Everything the core is tuned by.

    ``infeasible_timeout_s``: a queued task that no live node could ever hold (tier, labels
    or size) fails after this long instead of waiting forever (requests that no node could
    hold at submission are refused at once). ``port_timeout_s``: the deadline of every call
    through a port. ``rate_window_s``: the window of the decisions-per-second figure.
    ``cycle_budget_s``: a scheduling cycle holds the core for at most about this long (then
    it yields, and heartbeats and acknowledgements waiting for the core go first; the next
    cycle continues where it stopped). A cycle also yields after any decision when an event
    is waiting for the core.
    """

    queue: QueueOptions = field(default_factory=QueueOptions)
    nodes: NodeOptions = field(default_factory=NodeOptions)
    placement: PlacementOptions = field(default_factory=PlacementOptions)
    preemption: PreemptionOptions = field(default_factory=PreemptionOptions)
    dispatch: DispatchOptions = field(default_factory=DispatchOptions)
    limits: LimitOptions = field(default_factory=LimitOptions)
    infeasible_timeout_s: float = 300.0
    port_timeout_s: float = 5.0
    rate_window_s: float = 10.0
    cycle_budget_s: float = 0.05

    def __post_init__(self) -> None:
        _positive("scheduler", "infeasible_timeout_s", self.infeasible_timeout_s)
        _positive("scheduler", "port_timeout_s", self.port_timeout_s)
        _positive("scheduler", "rate_window_s", self.rate_window_s)
        _positive("scheduler", "cycle_budget_s", self.cycle_budget_s)
