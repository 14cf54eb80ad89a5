"""Settings of the scheduler service: the shared sections plus ``[scheduler]``.

Every key can come from the TOML file or the environment (``SYMBI_SCHEDULER__STRATEGY=best_fit``).
``SchedulerSection.options()`` turns the section into the domain core's ``SchedulerOptions``;
both layers check their values, and an invalid one stops the process with exit status 2 and a
message naming the key.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from symbi_common.config import GrpcSection, Section, ServiceSettings, TelemetrySection

from .options import (
    DispatchOptions,
    LimitOptions,
    NodeOptions,
    PlacementOptions,
    PlacementStrategy,
    PreemptionOptions,
    QueueOptions,
    SchedulerOptions,
)
from .priority import Priority

__all__ = ["SchedulerSection", "SchedulerSettings"]

PriorityName = Literal["critical", "high", "normal", "low"]
ConcreteStrategy = Literal["first_fit", "best_fit", "spread"]


class SchedulerSection(Section):
    """``[scheduler]``: placement, queue, nodes, dispatch, preemption, failover, defaults."""

    # ---- placement
    #: first_fit | best_fit | spread | priority (per priority, see strategy_by_priority).
    strategy: Literal["first_fit", "best_fit", "spread", "priority"] = "priority"
    #: With strategy = "priority": the strategy of each priority (defaults: critical and high
    #: spread, normal and low best_fit).
    strategy_by_priority: dict[PriorityName, ConcreteStrategy] = Field(default_factory=dict)
    #: Unplaceable tasks one cycle passes over before it stops.
    lookahead: int = Field(64, ge=1, le=100_000)
    #: Decisions per scheduling cycle before the loop yields to other work.
    max_decisions_per_cycle: int = Field(64, ge=1, le=100_000)

    # ---- queue
    #: A task's priority rises one level for every this many seconds it waits.
    aging_interval_s: float = Field(30.0, gt=0, le=86_400)
    max_queued: int = Field(100_000, ge=1, le=10_000_000)

    # ---- nodes
    #: How often nodes heartbeat (contract C3: 1 s); a node silent for
    #: missed_heartbeats intervals is unreachable and its tasks are requeued.
    heartbeat_interval_s: float = Field(1.0, gt=0, le=300)
    missed_heartbeats: int = Field(3, ge=1, le=100)
    forget_node_after_s: float = Field(3600.0, gt=0)
    #: Heartbeats carry memory, CPU, tiers and labels but no task slots or I/O bandwidth:
    #: these budgets are what the scheduler accounts per node instead.
    node_max_tasks: int = Field(64, ge=1, le=100_000)
    node_disk_io_mbps: int = Field(1000, ge=0)
    node_network_io_mbps: int = Field(1000, ge=0)

    # ---- dispatch
    #: A node must acknowledge (TaskStatus STARTED) within this; otherwise the task is
    #: retried on another node, up to max_dispatch_attempts, then Failed.
    ack_timeout_s: float = Field(10.0, gt=0, le=3600)
    max_dispatch_attempts: int = Field(3, ge=1, le=100)
    max_node_losses: int = Field(3, ge=0, le=100)
    #: Grace a node gives a task it is told to stop, before killing it.
    stop_grace_ms: int = Field(5000, ge=0, le=600_000)
    #: A queued task that no live node could ever hold fails after this long.
    infeasible_timeout_s: float = Field(300.0, gt=0)

    # ---- preemption
    preemption_enabled: bool = True
    #: Priorities that may preempt running tasks of a strictly lower priority.
    preemptors: tuple[PriorityName, ...] = ("critical", "high")
    preemption_max_victims: int = Field(8, ge=1, le=1000)
    #: Budget against thrashing: at most this many preemptions per window.
    preemption_max_per_window: int = Field(20, ge=1, le=100_000)
    preemption_window_s: float = Field(60.0, gt=0)
    #: A task preempted less than this long ago is not preempted again.
    preemption_cooldown_s: float = Field(120.0, ge=0)

    # ---- failover
    #: The leader lease expires this long after its last renewal; a standby takes over
    #: within about lease_ttl_s + lease_renew_interval_s of the leader's death.
    lease_ttl_s: float = Field(3.0, gt=0, le=300)
    lease_renew_interval_s: float = Field(1.0, gt=0, le=100)

    # ---- deadlines
    #: Deadline of every journal, dispatch and lifecycle call.
    port_timeout_s: float = Field(5.0, gt=0, le=300)
    #: Deadline of one `allocate` decision; no answer leaves the task queued.
    policy_timeout_s: float = Field(2.0, gt=0, le=60)
    #: Deadline of a standby forwarding a request to the leader.
    forward_timeout_s: float = Field(5.0, gt=0, le=60)

    # ---- request defaults (a zero field in ResourceLimits) and hard limits
    default_memory_mb: int = Field(512, ge=1)
    default_cpu_millicores: int = Field(1000, ge=1)
    default_execution_timeout_s: float = Field(3600.0, gt=0)
    max_memory_mb: int = Field(1024 * 1024, ge=1)
    max_cpu_millicores: int = Field(256_000, ge=1)
    max_execution_timeout_s: float = Field(7 * 86_400.0, gt=0)
    max_payload_bytes: int = Field(256 * 1024, ge=0, le=768 * 1024)

    # ---- outbox: orders and lifecycle statuses are sent after the journal write, off the
    # decision path, up to outbox_concurrency at once; a full outbox holds decisions back.
    outbox_capacity: int = Field(4096, ge=1, le=1_000_000)
    outbox_concurrency: int = Field(64, ge=1, le=4096)
    #: A cycle holds the core for at most this long before heartbeats and acknowledgements
    #: waiting for it go first (it also steps aside after any decision when they wait).
    cycle_budget_s: float = Field(0.05, gt=0, le=10)

    # ---- WatchQueue
    #: Events buffered per watcher; a watcher that falls further behind is disconnected
    #: (RESOURCE_EXHAUSTED) rather than slowing the scheduler down.
    watch_buffer: int = Field(1024, ge=1, le=1_000_000)
    max_watchers: int = Field(64, ge=1, le=10_000)

    @model_validator(mode="after")
    def _check(self) -> SchedulerSection:
        if self.lease_renew_interval_s * 2 > self.lease_ttl_s:
            raise ValueError(
                f"lease_renew_interval_s ({self.lease_renew_interval_s}) must be at most half "
                f"of lease_ttl_s ({self.lease_ttl_s})"
            )
        if "low" in self.preemptors:
            raise ValueError("preemptors may not include 'low': nothing ranks below it")
        for name, limit, default in (
            ("memory_mb", self.max_memory_mb, self.default_memory_mb),
            ("cpu_millicores", self.max_cpu_millicores, self.default_cpu_millicores),
            (
                "execution_timeout_s",
                self.max_execution_timeout_s,
                self.default_execution_timeout_s,
            ),
        ):
            if default > limit:
                raise ValueError(f"default_{name} ({default}) exceeds max_{name} ({limit})")
        return self

    @property
    def node_timeout_s(self) -> float:
        return self.heartbeat_interval_s * self.missed_heartbeats

    def options(self) -> SchedulerOptions:
        """The domain core's options (ConfigError naming the field if a value is refused)."""
        return SchedulerOptions(
            queue=QueueOptions(aging_interval_s=self.aging_interval_s, max_queued=self.max_queued),
            nodes=NodeOptions(
                heartbeat_interval_s=self.heartbeat_interval_s,
                missed_heartbeats=self.missed_heartbeats,
                forget_after_s=self.forget_node_after_s,
            ),
            placement=PlacementOptions(
                strategy=PlacementStrategy(self.strategy),
                by_priority={
                    Priority.parse(p): PlacementStrategy(s)
                    for p, s in self.strategy_by_priority.items()
                },
                lookahead=self.lookahead,
            ),
            preemption=PreemptionOptions(
                enabled=self.preemption_enabled,
                preemptors=frozenset(Priority.parse(p) for p in self.preemptors),
                max_victims=self.preemption_max_victims,
                max_per_window=self.preemption_max_per_window,
                window_s=self.preemption_window_s,
                cooldown_s=self.preemption_cooldown_s,
            ),
            dispatch=DispatchOptions(
                ack_timeout_s=self.ack_timeout_s,
                max_attempts=self.max_dispatch_attempts,
                max_node_losses=self.max_node_losses,
            ),
            limits=LimitOptions(
                max_memory_mb=self.max_memory_mb,
                max_cpu_millicores=self.max_cpu_millicores,
                max_execution_timeout_s=self.max_execution_timeout_s,
                max_payload_bytes=self.max_payload_bytes,
            ),
            infeasible_timeout_s=self.infeasible_timeout_s,
            port_timeout_s=self.port_timeout_s,
            cycle_budget_s=self.cycle_budget_s,
        )


class SchedulerSettings(ServiceSettings):
    service_name: ClassVar[str] = "scheduler"

    grpc: GrpcSection = GrpcSection(port=50051)
    telemetry: TelemetrySection = TelemetrySection(metrics_port=9464)
    scheduler: SchedulerSection = SchedulerSection()
