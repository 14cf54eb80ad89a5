"""Pure converters between the scheduler's protobuf messages and its domain types.

API side: ``ScheduleAgentRequest`` → ``TaskSpec`` (defaults for zero fields, the run
specification as the task's payload), ``TaskRecord`` → ``Task``, status and nodes.
Bus side (contract C3): heartbeats → ``NodeHeartbeat``, orders → ``TaskAssignment`` /
``TaskStop``, ``TaskStatus`` → acknowledgements and ``TaskResult``, and the scheduler's own
transitions → ``TaskStatus`` for lifecycle (contract C2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from symbi.bus.v1 import events_pb2
from symbi.common.v1 import common_pb2
from symbi.scheduler.v1 import scheduler_pb2
from symbi_common.errors import InvalidArgument

from .nodes import NodeHeartbeat, NodeView
from .ports import AgentTransition, DispatchOrder, StopOrder, TransitionKind
from .priority import Priority, SandboxTier
from .resources import NodeCapacity, ResourceRequest
from .status import SchedulerStatus
from .task import TaskOutcome, TaskRecord, TaskResult, TaskSpec, TaskState

__all__ = [
    "FINAL_STATES",
    "STATE_FROM_PROTO",
    "NodeDefaults",
    "RequestDefaults",
    "assignment_from_order",
    "event_name",
    "heartbeat_from_proto",
    "node_to_proto",
    "priority_from_proto",
    "priority_to_proto",
    "result_from_status",
    "run_spec_of",
    "spec_from_request",
    "status_for_transition",
    "status_to_proto",
    "stop_from_order",
    "task_to_proto",
    "tier_from_proto",
    "tier_to_proto",
]

_PRIORITY_FROM: dict[int, Priority] = {
    common_pb2.PRIORITY_UNSPECIFIED: Priority.NORMAL,
    common_pb2.PRIORITY_CRITICAL: Priority.CRITICAL,
    common_pb2.PRIORITY_HIGH: Priority.HIGH,
    common_pb2.PRIORITY_NORMAL: Priority.NORMAL,
    common_pb2.PRIORITY_LOW: Priority.LOW,
}
_PRIORITY_TO: dict[Priority, common_pb2.Priority] = {
    Priority.CRITICAL: common_pb2.PRIORITY_CRITICAL,
    Priority.HIGH: common_pb2.PRIORITY_HIGH,
    Priority.NORMAL: common_pb2.PRIORITY_NORMAL,
    Priority.LOW: common_pb2.PRIORITY_LOW,
}
_TIER_FROM: dict[int, SandboxTier] = {
    common_pb2.SANDBOX_TIER_DOCKER: SandboxTier.DOCKER,
    common_pb2.SANDBOX_TIER_GVISOR: SandboxTier.GVISOR,
}
_TIER_TO: dict[SandboxTier, common_pb2.SandboxTier] = {
    SandboxTier.DOCKER: common_pb2.SANDBOX_TIER_DOCKER,
    SandboxTier.GVISOR: common_pb2.SANDBOX_TIER_GVISOR,
}
_STATE_TO = {
    TaskState.QUEUED: scheduler_pb2.TASK_STATE_QUEUED,
    TaskState.DISPATCHED: scheduler_pb2.TASK_STATE_DISPATCHED,
    TaskState.RUNNING: scheduler_pb2.TASK_STATE_RUNNING,
    TaskState.STOPPING: scheduler_pb2.TASK_STATE_PREEMPTED,
    TaskState.COMPLETED: scheduler_pb2.TASK_STATE_SUCCEEDED,
    TaskState.FAILED: scheduler_pb2.TASK_STATE_FAILED,
    TaskState.CANCELLED: scheduler_pb2.TASK_STATE_CANCELLED,
}
#: API task states back to the domain's (PREEMPTED is STOPPING).
STATE_FROM_PROTO = {value: state for state, value in _STATE_TO.items()}

_Status = events_pb2.TaskStatus
#: Node-reported final states and the outcome each means to the scheduler.
FINAL_STATES: Mapping[int, TaskOutcome] = {
    _Status.STATE_SUCCEEDED: TaskOutcome.COMPLETED,
    _Status.STATE_FAILED: TaskOutcome.FAILED,
    _Status.STATE_OOM_KILLED: TaskOutcome.FAILED,
    _Status.STATE_TIMED_OUT: TaskOutcome.FAILED,
    _Status.STATE_REFUSED: TaskOutcome.FAILED,
    _Status.STATE_STOPPED: TaskOutcome.STOPPED,
    _Status.STATE_LOST: TaskOutcome.LOST,
}


# ---------------------------------------------------------------- enums
def priority_from_proto(value: int) -> Priority:
    try:
        return _PRIORITY_FROM[value]
    except KeyError:
        raise InvalidArgument(
            f"unknown priority value {value}; allowed: critical, high, normal, low",
            reason="UNKNOWN_PRIORITY",
            details={"field": "priority"},
        ) from None


def priority_to_proto(priority: Priority) -> common_pb2.Priority:
    return _PRIORITY_TO[priority]


def tier_from_proto(value: int, default: SandboxTier) -> SandboxTier:
    if value == common_pb2.SANDBOX_TIER_UNSPECIFIED:
        return default
    try:
        return _TIER_FROM[value]
    except KeyError:
        raise InvalidArgument(
            f"unknown sandbox tier value {value}; allowed: docker, gvisor",
            reason="UNKNOWN_TIER",
            details={"field": "tier"},
        ) from None


def tier_to_proto(tier: SandboxTier) -> common_pb2.SandboxTier:
    return _TIER_TO[tier]


def _ms(seconds: float | None) -> int:
    return round(seconds * 1000) if seconds is not None else 0


# ---------------------------------------------------------------- requests
@dataclass(frozen=True, slots=True)
class RequestDefaults:
    """What a zero field of a request means."""

    memory_mb: int
    cpu_millicores: int
    execution_timeout_s: float
    tier: SandboxTier


def _timeout_s(limits: common_pb2.ResourceLimits, default: float) -> float:
    if not limits.HasField("execution_timeout"):
        return default
    d = limits.execution_timeout
    seconds = d.seconds + d.nanos / 1e9
    if seconds < 0 or not math.isfinite(seconds):
        raise InvalidArgument(
            f"limits.execution_timeout must not be negative, got {seconds} s",
            reason="INVALID_RESOURCE",
            details={"field": "limits.execution_timeout"},
        )
    return seconds or default


def spec_from_request(
    request: scheduler_pb2.ScheduleAgentRequest, defaults: RequestDefaults, task_id: str
) -> TaskSpec:
    """The task a request asks for (InvalidArgument naming the field when it is malformed)."""
    limits = request.limits
    resources = ResourceRequest(
        memory_mb=limits.memory_mb or defaults.memory_mb,
        cpu_millicores=limits.cpu_millicores or defaults.cpu_millicores,
        disk_io_mbps=limits.disk_io_mbps,
        network_io_mbps=limits.network_io_mbps,
        execution_timeout_s=_timeout_s(limits, defaults.execution_timeout_s),
    )
    run = scheduler_pb2.RunSpec(
        image=request.image,
        command=list(request.command),
        env=dict(request.env),
        code=request.code,
        network=request.network,
        max_processes=limits.max_processes,
    )
    return TaskSpec(
        task_id=task_id,
        agent_id=request.agent_id,
        resources=resources,
        priority=priority_from_proto(request.priority),
        tier=tier_from_proto(request.tier, defaults.tier),
        node_selector=dict(request.node_selector),
        preemptible=request.preemptible if request.HasField("preemptible") else True,
        metadata=dict(request.metadata),
        payload=run.SerializeToString(deterministic=True),
    )


def run_spec_of(spec: TaskSpec) -> scheduler_pb2.RunSpec:
    """The run specification a task carries (empty for a task without one)."""
    run = scheduler_pb2.RunSpec()
    try:
        run.ParseFromString(spec.payload)
    except DecodeError:
        raise InvalidArgument(
            f"task {spec.task_id} carries a malformed run specification", reason="BAD_RUN_SPEC"
        ) from None
    return run


def _limits(spec: TaskSpec, max_processes: int) -> common_pb2.ResourceLimits:
    r = spec.resources
    limits = common_pb2.ResourceLimits(
        memory_mb=r.memory_mb,
        cpu_millicores=r.cpu_millicores,
        disk_io_mbps=r.disk_io_mbps,
        network_io_mbps=r.network_io_mbps,
        max_processes=max_processes,
    )
    limits.execution_timeout.FromNanoseconds(round(r.execution_timeout_s * 1e9))
    return limits


# ---------------------------------------------------------------- API views
def task_to_proto(rec: TaskRecord) -> scheduler_pb2.Task:
    spec = rec.spec
    task = scheduler_pb2.Task(
        task_id=rec.task_id,
        agent_id=spec.agent_id,
        state=_STATE_TO[rec.state],
        priority=priority_to_proto(spec.priority),
        node_id=rec.node_id or "",
        attempt=rec.attempt,
        reason=rec.reason,
        submitted_at_ms=_ms(rec.enqueued_at),
        updated_at_ms=_ms(rec.updated_at),
        exit_code=rec.exit_code or 0,
        has_exit_code=rec.exit_code is not None,
        dispatch_id=rec.dispatch_id or "",
        preempts=list(rec.preempts),
        tier=tier_to_proto(spec.tier),
        limits=_limits(spec, run_spec_of(spec).max_processes),
        node_selector=dict(spec.node_selector),
        preemptible=spec.preemptible,
        started_at_ms=_ms(rec.started_at),
        preemptions=rec.preemptions,
        node_losses=rec.node_losses,
    )
    return task


def event_name(rec: TaskRecord) -> str:
    """The WatchQueue event a new record of a task means."""
    state = rec.state
    if state is TaskState.QUEUED:
        return "requeued" if rec.attempt or rec.preemptions or rec.node_losses else "queued"
    return {
        TaskState.DISPATCHED: "placed",
        TaskState.RUNNING: "started",
        TaskState.STOPPING: "preempted",
        TaskState.COMPLETED: "succeeded",
        TaskState.FAILED: "failed",
        TaskState.CANCELLED: "cancelled",
    }[state]


def status_to_proto(
    status: SchedulerStatus,
    *,
    leader_id: str,
    instance_id: str,
    term: int | None,
    decision_p50_s: float,
    decision_p99_s: float,
    strategy: str,
) -> scheduler_pb2.SystemStatus:
    util = status.utilisation
    return scheduler_pb2.SystemStatus(
        queue_depth={p.label: n for p, n in status.queued.items()},
        nodes_ready=status.nodes_accepting,
        nodes_unreachable=status.nodes_total - status.nodes_reachable,
        running_tasks=status.running,
        memory_utilisation=util.get("memory_mb", 0.0),
        cpu_utilisation=util.get("cpu_millicores", 0.0),
        disk_io_utilisation=util.get("disk_io_mbps", 0.0),
        network_io_utilisation=util.get("network_io_mbps", 0.0),
        decisions_per_second=status.decisions_per_s,
        leader=status.active,
        leader_id=leader_id,
        instance_id=instance_id,
        queued_total=status.queued_total,
        dispatched_tasks=status.dispatched,
        stopping_tasks=status.stopping,
        nodes_total=status.nodes_total,
        decisions_total=status.decisions_total,
        preemptions_total=status.preemptions_total,
        preemptions_in_window=status.preemptions_in_window,
        failed_total=status.failed_total,
        journal_position=status.journal_position,
        term=term or 0,
        decision_p50_ms=decision_p50_s * 1000,
        decision_p99_ms=decision_p99_s * 1000,
        strategy=strategy,
    )


def node_to_proto(view: NodeView) -> scheduler_pb2.Node:
    cap = view.capacity
    alloc = view.allocated
    return scheduler_pb2.Node(
        node_id=view.node_id,
        reachable=view.reachable,
        accepting=view.reachable and view.confirmed and view.schedulable,
        memory_total_mb=cap.memory_mb,
        memory_free_mb=max(0, cap.memory_mb - alloc[0]),
        cpu_total_millicores=cap.cpu_millicores,
        cpu_free_millicores=max(0, cap.cpu_millicores - alloc[1]),
        disk_io_total_mbps=cap.disk_io_mbps,
        disk_io_free_mbps=max(0, cap.disk_io_mbps - alloc[2]),
        network_io_total_mbps=cap.network_io_mbps,
        network_io_free_mbps=max(0, cap.network_io_mbps - alloc[3]),
        running_tasks=view.tasks,
        max_tasks=cap.max_tasks,
        tiers=sorted(tier_to_proto(t) for t in view.tiers),
        labels=dict(view.labels),
        last_heartbeat_ms=_ms(view.last_heartbeat_at),
    )


# ---------------------------------------------------------------- bus (contract C3)
@dataclass(frozen=True, slots=True)
class NodeDefaults:
    """Budgets accounted for what a heartbeat does not report."""

    max_tasks: int
    disk_io_mbps: int
    network_io_mbps: int


def heartbeat_from_proto(hb: events_pb2.NodeHeartbeat, defaults: NodeDefaults) -> NodeHeartbeat:
    """A node's heartbeat in domain terms: its total memory and CPU are its capacity (the
    scheduler does its own accounting of what it placed there); tiers it does not name are
    ignored (a newer node may know more of them). ``disk_io_tiers`` is ``None`` (unknown: disk-
    limited tasks may be placed, as before) from a node that does not report it; otherwise the
    reported tiers, kept to those the node offers."""
    tiers = frozenset(_TIER_FROM[t] for t in hb.tiers if t in _TIER_FROM)
    disk_io_tiers = (
        frozenset(_TIER_FROM[t] for t in hb.disk_io_tiers if t in _TIER_FROM) & tiers
        if hb.disk_io_tiers_reported
        else None
    )
    return NodeHeartbeat(
        node_id=hb.node_id,
        capacity=NodeCapacity(
            memory_mb=hb.memory_total_mb,
            cpu_millicores=hb.cpu_total_millicores,
            disk_io_mbps=defaults.disk_io_mbps,
            network_io_mbps=defaults.network_io_mbps,
            max_tasks=defaults.max_tasks,
        ),
        tiers=tiers,
        labels=dict(hb.labels),
        running=frozenset(hb.running_task_ids),
        disk_io_tiers=disk_io_tiers,
    )


def assignment_from_order(order: DispatchOrder, *, now: float) -> events_pb2.TaskAssignment:
    """The order as the node's ``TaskAssignment`` (``now``: wall-clock seconds)."""
    run = scheduler_pb2.RunSpec()
    try:
        run.ParseFromString(order.payload)
    except DecodeError:
        raise InvalidArgument(
            f"task {order.task_id} carries a malformed run specification", reason="BAD_RUN_SPEC"
        ) from None
    r = order.resources
    limits = common_pb2.ResourceLimits(
        memory_mb=r.memory_mb,
        cpu_millicores=r.cpu_millicores,
        disk_io_mbps=r.disk_io_mbps,
        network_io_mbps=r.network_io_mbps,
        max_processes=run.max_processes,
    )
    limits.execution_timeout.FromNanoseconds(round(r.execution_timeout_s * 1e9))
    return events_pb2.TaskAssignment(
        task_id=order.task_id,
        agent_id=order.agent_id,
        attempt=order.attempt,
        priority=priority_to_proto(order.priority),
        tier=tier_to_proto(order.tier),
        limits=limits,
        image=run.image,
        command=list(run.command),
        env=dict(run.env),
        code=run.code,
        network=run.network,
        dispatched_at_ms=_ms(now),
        dispatch_id=order.dispatch_id,
        not_after_ms=_ms(order.not_after),
        preempts=list(order.preempts),
        node_id=order.node_id,
    )


def stop_reason(reason: str) -> str:
    """The reason a ``TaskStop`` carries: ``preempted`` and ``cancelled`` exactly (contract
    C2/C3: nodes echo it in their STOPPED status and lifecycle acts on those words); other
    stops (a superseded or unassigned run) keep the scheduler's description."""
    if reason.startswith("preempted"):
        return "preempted"
    if reason.startswith("cancelled"):
        return "cancelled"
    return reason


def stop_from_order(order: StopOrder, *, grace_ms: int) -> events_pb2.TaskStop:
    return events_pb2.TaskStop(
        task_id=order.task_id,
        reason=stop_reason(order.reason),
        grace_ms=grace_ms,
        dispatch_id=order.dispatch_id or "",
    )


def result_from_status(status: events_pb2.TaskStatus) -> TaskResult:
    """A node's final status as the run's result (``status.state`` must be final)."""
    outcome = FINAL_STATES[status.state]
    state_name = events_pb2.TaskStatus.State.Name(status.state).removeprefix("STATE_").lower()
    reason = status.reason
    if status.state not in (_Status.STATE_SUCCEEDED, _Status.STATE_STOPPED, _Status.STATE_LOST):
        reason = f"{state_name}: {reason}" if reason else state_name
    return TaskResult(
        task_id=status.task_id,
        dispatch_id=status.dispatch_id,
        node_id=status.node_id,
        outcome=outcome,
        reason=reason,
        exit_code=status.exit_code,
    )


def status_for_transition(
    transition: AgentTransition, *, now: float
) -> events_pb2.TaskStatus | None:
    """What the scheduler publishes on ``symbi.task.status.<task>`` for a transition it
    caused (contract C2/C3); None when the node's own status says it (RUNNING)."""
    kind = transition.kind
    if kind is TransitionKind.RUNNING:
        return None
    state, reason = {
        TransitionKind.SUSPENDED: (_Status.STATE_STOPPED, "preempted"),
        TransitionKind.CANCELLED: (_Status.STATE_STOPPED, "cancelled"),
        TransitionKind.REQUEUED: (_Status.STATE_LOST, f"{transition.reason}; requeued"),
        TransitionKind.FAILED: (_Status.STATE_FAILED, transition.reason),
    }[kind]
    return events_pb2.TaskStatus(
        task_id=transition.task_id,
        agent_id=transition.agent_id,
        node_id=transition.node_id or "",
        attempt=transition.attempt,
        state=state,
        reason=reason,
        timestamp_ms=_ms(now),
        dispatch_id=transition.dispatch_id or "",
    )
