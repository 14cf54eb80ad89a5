"""Domain results → contract C3 statuses (pure)."""

from __future__ import annotations

import pytest
from google.protobuf import duration_pb2

from symbi.bus.v1 import events_pb2
from symbi.common.v1 import common_pb2
from symbi_common.errors import InvalidArgument
from symbi_sandbox.convert import (
    final_status,
    heartbeat_from_node,
    task_from_assignment,
    tier_to_proto,
)
from symbi_sandbox.runner import ExecutionState, NodeInfo, TaskResult
from symbi_sandbox.tiers import Tier

State = events_pb2.TaskStatus.State


def result(state: ExecutionState, code: int | None, reason: str = "r") -> TaskResult:
    return TaskResult("t1", "agent-1", 2, state, code, reason, Tier.DOCKER, "c", 1, 2)


@pytest.mark.parametrize(
    ("state", "code", "stop", "expected", "reason"),
    [
        (ExecutionState.EXITED, 0, None, State.STATE_SUCCEEDED, "r"),
        (ExecutionState.EXITED, 2, None, State.STATE_FAILED, "r"),
        (ExecutionState.OOM_KILLED, 137, None, State.STATE_OOM_KILLED, "r"),
        (ExecutionState.TIMED_OUT, 137, None, State.STATE_TIMED_OUT, "r"),
        (ExecutionState.KILLED, 143, "preempted", State.STATE_STOPPED, "preempted"),
        (ExecutionState.KILLED, 143, None, State.STATE_LOST, "r"),  # the node went down
        (ExecutionState.REFUSED, None, None, State.STATE_REFUSED, "r"),
        (ExecutionState.LOST, None, None, State.STATE_LOST, "r"),
    ],
)
def test_final_states(
    state: ExecutionState, code: int | None, stop: str | None, expected: int, reason: str
) -> None:
    status = final_status(result(state, code), node_id="node-1", dispatch_id="d1", stop_reason=stop)
    assert status.state == expected
    assert status.reason == reason
    assert status.exit_code == (-1 if code is None else code)
    assert (status.dispatch_id, status.node_id, status.attempt) == ("d1", "node-1", 2)


def test_assignment_to_task() -> None:
    order = events_pb2.TaskAssignment(
        task_id="t1",
        agent_id="agent-1",
        image="symbi/busybox",
        command=["true"],
        tier=common_pb2.SANDBOX_TIER_GVISOR,
        limits=common_pb2.ResourceLimits(
            memory_mb=64, execution_timeout=duration_pb2.Duration(seconds=5)
        ),
        dispatch_id="t1-3",
    )
    task = task_from_assignment(order)
    assert (task.tier, task.limits.memory_mb, task.limits.timeout_s) == (Tier.GVISOR, 64, 5.0)
    assert (task.attempt, task.dispatch_id, task.channel) == (1, "t1-3", True)
    assert task.limits.cpu_millicores is None  # the node's default
    assert tier_to_proto(Tier.DOCKER) == common_pb2.SANDBOX_TIER_DOCKER
    order.tier = 7  # type: ignore[assignment]
    with pytest.raises(InvalidArgument):
        task_from_assignment(order)


def node(disk_io_tiers: tuple[Tier, ...]) -> NodeInfo:
    return NodeInfo(
        node_id="node-1",
        memory_total_mb=1024,
        memory_free_mb=1024,
        cpu_total_millicores=2000,
        cpu_free_millicores=2000,
        tiers=(Tier.DOCKER, Tier.GVISOR),
        channel_tiers=(Tier.DOCKER,),
        running_task_ids=(),
        docker_version="27.0",
        disk_io_tiers=disk_io_tiers,
    )


@pytest.mark.parametrize(
    ("disk_io_tiers", "expected"),
    [
        ((Tier.DOCKER,), [common_pb2.SANDBOX_TIER_DOCKER]),
        ((), []),  # no block device to throttle: reported, on no tier
    ],
)
def test_heartbeat_carries_disk_io_tiers(
    disk_io_tiers: tuple[Tier, ...], expected: list[int]
) -> None:
    hb = heartbeat_from_node(node(disk_io_tiers), interval_s=2.0, running_task_ids=("t1",))
    assert list(hb.tiers) == [common_pb2.SANDBOX_TIER_DOCKER, common_pb2.SANDBOX_TIER_GVISOR]
    assert list(hb.disk_io_tiers) == expected
    assert hb.disk_io_tiers_reported  # an empty list means "none", not "unknown"
    assert (hb.running_task_ids, hb.heartbeat_interval_ms) == (["t1"], 2000)
