"""Placement end to end: the scheduler process places tasks on simulated nodes over the bus,
asks policy (`allocate`) first, and refuses impossible requests at once."""

from __future__ import annotations

import grpc
from google.protobuf import json_format

from symbi.bus.v1 import events_pb2
from symbi.common.v1 import common_pb2
from symbi.scheduler.v1 import scheduler_pb2 as pb
from symbi_common.errors import FailedPrecondition, InvalidArgument
from symbi_common.grpc import error_from_rpc
from symbi_testing import eventually

from .conftest import POLL_S, Cluster, rpc_error

DOCKER = common_pb2.SANDBOX_TIER_DOCKER
GVISOR = common_pb2.SANDBOX_TIER_GVISOR


def request(task_id: str, **fields: object) -> pb.ScheduleAgentRequest:
    fields.setdefault("agent_id", f"agent-{task_id}")
    fields.setdefault("limits", common_pb2.ResourceLimits(memory_mb=512, cpu_millicores=500))
    return pb.ScheduleAgentRequest(task_id=task_id, image="busybox", command=["true"], **fields)


async def test_tasks_are_placed_by_tier_and_labels_and_run_to_completion(
    cluster: Cluster,
) -> None:
    await cluster.start_node("plain", memory_mb=4096, tiers=(DOCKER,))
    await cluster.start_node(
        "secure", memory_mb=4096, tiers=(DOCKER, GVISOR), labels={"zone": "eu"}
    )
    scheduler = await cluster.start_scheduler("a")
    await cluster.leader()
    await cluster.wait_nodes(scheduler, 2)

    answer = await scheduler.stub.ScheduleAgent(request("g1", tier=GVISOR), timeout=10)
    assert answer.task.state == pb.TASK_STATE_QUEUED
    assert answer.task.tier == GVISOR
    await scheduler.stub.ScheduleAgent(request("eu1", node_selector={"zone": "eu"}), timeout=10)

    async def succeeded(task_id: str) -> pb.Task:
        task = await scheduler.task(task_id)
        assert task.state == pb.TASK_STATE_SUCCEEDED, task
        return task

    for task_id in ("g1", "eu1"):
        task = await eventually(lambda t=task_id: succeeded(t), timeout=20, interval=POLL_S)
        assert task.node_id == "node-secure"
        assert task.dispatch_id == f"{task_id}-1"
    starts = {s.task_id: s for s in cluster.journal.starts}
    assert starts["g1"].node_id == "node-secure"
    assert starts["eu1"].node_id == "node-secure"

    # Policy was asked `allocate` with the node as a request entity (its tiers and labels).
    asked = [q for q in cluster.policy.asked if q.principal.id == "agent-g1"]
    assert asked
    assert asked[0].action == "allocate"
    assert asked[0].resource.type.endswith("Node")
    assert asked[0].resource.id == "node-secure"
    node_entity = json_format.MessageToDict(asked[0].entities[0].attrs)
    assert sorted(node_entity["tiers"]) == ["docker", "gvisor"]
    assert node_entity["labels"] == ["zone=eu"]
    assert json_format.MessageToDict(asked[0].context)["tier"] == "gvisor"


async def test_impossible_requests_are_refused_at_once(cluster: Cluster) -> None:
    await cluster.start_node("small", memory_mb=2048, tiers=(DOCKER,))
    scheduler = await cluster.start_scheduler("a")
    await cluster.leader()
    await cluster.wait_nodes(scheduler, 1)

    async def refused(req: pb.ScheduleAgentRequest) -> Exception:
        return await rpc_error(scheduler.stub.ScheduleAgent(req, timeout=10))

    # Sizes are checked once nodes have had one heartbeat timeout to report after the
    # scheduler became active; a request accepted before that is cancelled here.
    attempts = iter(range(1000))

    async def refused_when_warm() -> Exception:
        task_id = f"big{next(attempts)}"
        req = request(task_id, limits=common_pb2.ResourceLimits(memory_mb=4096))
        try:
            answer = await scheduler.stub.ScheduleAgent(req, timeout=10)
        except grpc.aio.AioRpcError as exc:
            return error_from_rpc(exc)
        await scheduler.stub.Cancel(pb.CancelRequest(task_id=answer.task.task_id), timeout=10)
        raise AssertionError("accepted before the scheduler knew its nodes")

    error = await eventually(refused_when_warm, timeout=10, interval=POLL_S)
    assert isinstance(error, FailedPrecondition)
    assert "largest is node-small" in error.message

    error = await refused(request("gv", tier=GVISOR))
    assert isinstance(error, FailedPrecondition)
    assert "tier gvisor" in error.message

    error = await refused(request("zone", node_selector={"zone": "mars"}))
    assert isinstance(error, FailedPrecondition)
    assert "zone=mars" in error.message

    error = await refused(request("tier7", tier=7))  # type: ignore[arg-type]
    assert isinstance(error, InvalidArgument)
    assert "unknown sandbox tier" in error.message

    error = await refused(request("huge", limits=common_pb2.ResourceLimits(memory_mb=10**7)))
    assert isinstance(error, InvalidArgument)
    assert "exceeds the limit" in error.message

    error = await refused(request("bad id!"))
    assert isinstance(error, InvalidArgument)

    error = await refused(pb.ScheduleAgentRequest(task_id="noagent"))
    assert isinstance(error, InvalidArgument)
    assert "agent_id" in error.message
    status = await scheduler.status()
    assert status.queued_total == 0


async def test_policy_denial_fails_the_task_and_tells_lifecycle(cluster: Cluster) -> None:
    cluster.policy.policies = (
        'permit(principal, action == Symbi::Action::"allocate", resource);\n'
        'forbid(principal == Symbi::Agent::"agent-rogue", '
        'action == Symbi::Action::"allocate", resource);'
    )
    await cluster.start_node("n1")
    scheduler = await cluster.start_scheduler("a")
    await cluster.leader()
    await cluster.wait_nodes(scheduler, 1)

    await scheduler.stub.ScheduleAgent(request("r1", agent_id="agent-rogue"), timeout=10)
    await scheduler.stub.ScheduleAgent(request("ok1"), timeout=10)

    async def failed() -> pb.Task:
        task = await scheduler.task("r1")
        assert task.state == pb.TASK_STATE_FAILED, task
        return task

    task = await eventually(failed, timeout=20, interval=POLL_S)
    assert "policy denied allocate" in task.reason
    assert cluster.journal.started("r1") == []

    # Lifecycle learns it from a FAILED status the scheduler published (contract C2/C3).
    async def lifecycle_told() -> events_pb2.TaskStatus:
        (status,) = [s for sender, s in await cluster.statuses("r1") if sender == "svc-scheduler-a"]
        return status

    status = await eventually(lifecycle_told, timeout=10, interval=POLL_S)
    assert status.state == events_pb2.TaskStatus.STATE_FAILED
    assert "policy denied" in status.reason
    assert status.agent_id == "agent-rogue"

    async def ok_ran() -> bool:
        return (await scheduler.task("ok1")).state == pb.TASK_STATE_SUCCEEDED

    await eventually(ok_ran, timeout=20, interval=POLL_S)
