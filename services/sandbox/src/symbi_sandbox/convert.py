"""Pure converters between the sandbox's domain types and its protobuf messages."""

from __future__ import annotations

import time

from symbi.bus.v1 import events_pb2
from symbi.common.v1 import common_pb2
from symbi.sandbox.v1 import sandbox_pb2
from symbi_sandbox.logs import LogChunk
from symbi_sandbox.runner import Execution, ExecutionState, NodeInfo, TaskResult
from symbi_sandbox.task import ResourceLimits, TaskSpec
from symbi_sandbox.tiers import Tier

__all__ = [
    "execution_to_proto",
    "final_status",
    "heartbeat_from_node",
    "limits_from_proto",
    "log_chunk_to_proto",
    "node_info_to_proto",
    "status",
    "task_from_assignment",
    "task_from_run_request",
    "tier_from_proto",
    "tier_to_proto",
]

State = events_pb2.TaskStatus.State

_EXECUTION_STATES = {
    ExecutionState.STARTING: sandbox_pb2.EXECUTION_STATE_STARTING,
    ExecutionState.RUNNING: sandbox_pb2.EXECUTION_STATE_RUNNING,
    ExecutionState.EXITED: sandbox_pb2.EXECUTION_STATE_EXITED,
    ExecutionState.OOM_KILLED: sandbox_pb2.EXECUTION_STATE_OOM_KILLED,
    ExecutionState.TIMED_OUT: sandbox_pb2.EXECUTION_STATE_TIMED_OUT,
    ExecutionState.KILLED: sandbox_pb2.EXECUTION_STATE_KILLED,
    ExecutionState.REFUSED: sandbox_pb2.EXECUTION_STATE_REFUSED,
    ExecutionState.LOST: sandbox_pb2.EXECUTION_STATE_LOST,
}


def tier_from_proto(tier: common_pb2.SandboxTier) -> Tier | None:
    """``SANDBOX_TIER_UNSPECIFIED`` → ``None`` (the node's choice); unknown values refused."""
    if tier == common_pb2.SANDBOX_TIER_UNSPECIFIED:
        return None
    return Tier.parse(int(tier))


def tier_to_proto(tier: Tier | None) -> common_pb2.SandboxTier:
    if tier is None:
        return common_pb2.SANDBOX_TIER_UNSPECIFIED
    return common_pb2.SANDBOX_TIER_GVISOR if tier is Tier.GVISOR else common_pb2.SANDBOX_TIER_DOCKER


def limits_from_proto(limits: common_pb2.ResourceLimits) -> ResourceLimits:
    """Zero means "the node's default" (for disk and network I/O: unlimited unless configured)."""
    timeout = limits.execution_timeout.ToTimedelta().total_seconds()
    return ResourceLimits(
        memory_mb=limits.memory_mb or None,
        cpu_millicores=limits.cpu_millicores or None,
        max_processes=limits.max_processes or None,
        timeout_s=timeout if timeout > 0 else None,
        disk_io_mbps=limits.disk_io_mbps or None,
        network_io_mbps=limits.network_io_mbps or None,
    )


def task_from_assignment(assignment: events_pb2.TaskAssignment) -> TaskSpec:
    """The runner's task for a scheduler order; InvalidArgument names a malformed field."""
    return TaskSpec(
        task_id=assignment.task_id,
        agent_id=assignment.agent_id,
        image=assignment.image,
        command=tuple(assignment.command),
        env=dict(assignment.env),
        limits=limits_from_proto(assignment.limits),
        tier=tier_from_proto(assignment.tier),
        code=assignment.code,
        network=assignment.network,
        channel=True,
        attempt=assignment.attempt or 1,
        dispatch_id=assignment.dispatch_id,
    )


def task_from_run_request(request: sandbox_pb2.RunRequest, task_id: str) -> TaskSpec:
    return TaskSpec(
        task_id=task_id,
        agent_id=request.agent_id,
        image=request.image,
        command=tuple(request.command),
        env=dict(request.env),
        limits=limits_from_proto(request.limits),
        tier=tier_from_proto(request.tier),
        code=request.code,
        network=request.network,
        channel=not request.without_channel,
        attempt=request.attempt or 1,
    )


def status(
    state: events_pb2.TaskStatus.State,
    *,
    task_id: str,
    agent_id: str,
    node_id: str,
    attempt: int,
    dispatch_id: str,
    reason: str = "",
    exit_code: int | None = None,
) -> events_pb2.TaskStatus:
    """A TaskStatus; ``exit_code`` -1 when the task has none (never ran, lost)."""
    return events_pb2.TaskStatus(
        task_id=task_id,
        agent_id=agent_id,
        node_id=node_id,
        attempt=attempt,
        state=state,
        exit_code=-1 if exit_code is None else exit_code,
        reason=reason,
        timestamp_ms=int(time.time() * 1000),
        dispatch_id=dispatch_id,
    )


def final_status(
    result: TaskResult, *, node_id: str, dispatch_id: str, stop_reason: str | None
) -> events_pb2.TaskStatus:
    """The final TaskStatus of a run (contract C3).

    A run stopped on the scheduler's request is ``STOPPED`` with the request's reason
    (``preempted`` / ``cancelled``, which lifecycle acts on); a run stopped because the node
    itself went down is ``LOST`` so that the scheduler retries it elsewhere.
    """
    reason = result.reason
    if result.state is ExecutionState.EXITED:
        state = State.STATE_SUCCEEDED if result.exit_code == 0 else State.STATE_FAILED
    elif result.state is ExecutionState.OOM_KILLED:
        state = State.STATE_OOM_KILLED
    elif result.state is ExecutionState.TIMED_OUT:
        state = State.STATE_TIMED_OUT
    elif result.state is ExecutionState.KILLED and stop_reason is not None:
        state, reason = State.STATE_STOPPED, stop_reason
    elif result.state is ExecutionState.REFUSED:
        state = State.STATE_REFUSED
    else:
        state = State.STATE_LOST
    return status(
        state,
        task_id=result.task_id,
        agent_id=result.agent_id,
        node_id=node_id,
        attempt=result.attempt,
        dispatch_id=dispatch_id,
        reason=reason,
        exit_code=result.exit_code,
    )


def execution_to_proto(execution: Execution, node_id: str) -> sandbox_pb2.Execution:
    result = execution.result
    message = sandbox_pb2.Execution(
        task_id=execution.task_id,
        agent_id=execution.task.agent_id,
        state=_EXECUTION_STATES[execution.state],
        tier=tier_to_proto(execution.tier),
        tier_reason=execution.tier_reason,
        container_id=execution.container_id or "",
        started_at_ms=execution.started_at_ms or 0,
        dispatch_id=execution.task.dispatch_id,
        node_id=node_id,
        log_bytes=execution.output.total_bytes,
        attempt=execution.task.attempt,
    )
    if result is not None:
        message.reason = result.reason
        message.finished_at_ms = result.finished_at_ms
        if result.exit_code is not None:
            message.exit_code = result.exit_code
    return message


def log_chunk_to_proto(chunk: LogChunk) -> sandbox_pb2.LogChunk:
    return sandbox_pb2.LogChunk(
        stream=chunk.stream, data=chunk.data, timestamp_ms=chunk.timestamp_ms
    )


def heartbeat_from_node(
    info: NodeInfo, *, interval_s: float, running_task_ids: tuple[str, ...]
) -> events_pb2.NodeHeartbeat:
    """The node's heartbeat: only tiers that work here (and those of them on which a disk I/O
    limit is enforced); the scheduler's tasks it runs."""
    return events_pb2.NodeHeartbeat(
        node_id=info.node_id,
        timestamp_ms=int(time.time() * 1000),
        memory_total_mb=info.memory_total_mb,
        memory_free_mb=info.memory_free_mb,
        cpu_total_millicores=info.cpu_total_millicores,
        cpu_free_millicores=info.cpu_free_millicores,
        running_tasks=info.running_tasks,
        tiers=[tier_to_proto(t) for t in info.tiers],
        labels=dict(info.labels),
        running_task_ids=list(running_task_ids),
        heartbeat_interval_ms=int(interval_s * 1000),
        disk_io_tiers=[tier_to_proto(t) for t in info.disk_io_tiers],
        disk_io_tiers_reported=True,
    )


def node_info_to_proto(
    info: NodeInfo,
    *,
    instance_id: str,
    broken_tiers: dict[Tier, str],
    max_concurrent_tasks: int,
) -> sandbox_pb2.NodeInfoResponse:
    return sandbox_pb2.NodeInfoResponse(
        node_id=info.node_id,
        memory_total_mb=info.memory_total_mb,
        memory_free_mb=info.memory_free_mb,
        cpu_total_millicores=info.cpu_total_millicores,
        cpu_free_millicores=info.cpu_free_millicores,
        tiers=[tier_to_proto(t) for t in info.tiers],
        channel_tiers=[tier_to_proto(t) for t in info.channel_tiers],
        running_tasks=info.running_tasks,
        running_task_ids=list(info.running_task_ids),
        labels=dict(info.labels),
        docker_version=info.docker_version,
        instance_id=instance_id,
        broken_tiers={t.label: why for t, why in broken_tiers.items()},
        max_concurrent_tasks=max_concurrent_tasks,
    )
